"""The store's department loop: the registry, the catalogue, each step of an order, the 街道's calls.

:class:`DepartmentSteps` is mixed into :class:`jngis.store.Store`, so both
stores have these methods. Each step reads the order's row (locked), its
department-loop row (``order_loop``) and, for a merge, the master's row, asks
:func:`jngis.workorders.plan_step` what to write and writes the order, the loop
row and the trail rows in one transaction: a refused step writes nothing.
Every method takes ``principal=`` (default :data:`jngis.access.ADMIN`): the
trail's ``who`` is the principal's id, its role must allow the step
(:func:`jngis.access.may_take_step`) and the order must lie in its scope.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from jngis import _checks, access, codes
from jngis.errors import ForbiddenError, InputTypeError, NotFoundError
from jngis.store._scope import missing_order, require_read
from jngis.store.schema import ORDER_COLUMNS, TRAIL_COLUMNS
from jngis.workorders import departments as registry
from jngis.workorders.actions import actions_for
from jngis.workorders.calls import CALL_STEP_COLUMNS, plan_call, plan_call_step, plan_rating
from jngis.workorders.clocks import WorkCalendar
from jngis.workorders.duplicates import DUPLICATE_DISTANCE_M, DUPLICATE_HOURS, find_duplicates
from jngis.workorders.loop import DEFAULT_RULES, LOOP_COLUMNS, LOOP_TIME_COLUMNS, LoopRules, card, plan_step
from jngis.workorders.orders import public_order
from jngis.workorders.states import ACTIONS

__all__ = ["DepartmentSteps", "CALL_COLUMNS", "CALL_DEPARTMENT_COLUMNS"]

CALL_COLUMNS = ("call_id", "order_id", "street_code", "problem", "who", "called_at")
CALL_DEPARTMENT_COLUMNS = ("call_id", "department_code", "signed_at", "contacted_at", "on_site_at", "done_at",
                           "rating", "rating_note", "rated_at")
_MAX_ID = 2**63 - 1  # the largest id SQLite and PostgreSQL hold
_CALL_TIMES = ("called_at", "signed_at", "contacted_at", "on_site_at", "done_at", "rated_at")


class DepartmentSteps:
    """The department loop's store methods (mixed into :class:`jngis.store.Store`)."""

    #: The loop's time limits and category rules (see :class:`jngis.workorders.LoopRules`).
    rules: LoopRules = DEFAULT_RULES

    if TYPE_CHECKING:  # what the Store this is mixed into provides
        calendar: WorkCalendar
        _lock_row: str

        def _conn(self) -> Any: ...
        def _write(self) -> contextlib.AbstractContextManager[Any]: ...
        def _execute(self, conn: Any, query: str, params: Sequence = ()) -> Any: ...
        def _insert_many(self, conn: Any, table: str, columns: Sequence[str], rows: list[tuple]) -> None: ...
        def _to_db(self, value: Any) -> Any: ...
        def _from_db_time(self, value: Any) -> dt.datetime | None: ...
        def _row_dict(self, row: Sequence) -> dict: ...
        def announce(self, kind: str, version: int | None = None) -> int: ...
        def orders_frame(self, public: bool = True, *, now: Any = None,
                         columns: Sequence[str] | None = None) -> Any: ...
        def read_layer(self, kind: str) -> Any: ...
        def trail(self, order_id: str, *, principal: access.Principal = access.ADMIN) -> list[dict]: ...

    # -- the registry and the catalogue
    def write_departments(self, departments: pd.DataFrame, catalogue: pd.DataFrame | None = None, *,
                          principal: access.Principal = access.ADMIN) -> None:
        """Replace the departments registry (and the dispatch catalogue), both checked first, in one write."""
        who = access.principal(principal)
        access.require(who, "users.manage")
        departments = registry.check_departments(departments)
        catalogue = None if catalogue is None else registry.check_catalogue(catalogue, departments)
        with self._write() as conn:
            if catalogue is not None:
                self._execute(conn, "DELETE FROM dispatch_catalogue")
            held = set(catalogue["department_code"]) if catalogue is not None else set(self._catalogue_codes(conn))
            missing = held - set(departments["code"])
            if missing:
                raise NotFoundError(f"write_departments: the catalogue routes to {sorted(missing)[:5]}, which the new "
                                    "registry lacks; expected a registry with every catalogued department")
            self._execute(conn, "DELETE FROM departments")
            self._insert_many(conn, "departments", ("code", "name", "kind", "districts"),
                              [(c, n, k, ";".join(d)) for c, n, k, d in departments.itertuples(index=False)])
            if catalogue is not None:
                self._insert_many(conn, "dispatch_catalogue", registry.CATALOGUE_COLUMNS,
                                  list(catalogue.itertuples(index=False, name=None)))
            self.announce("orders")

    def _catalogue_codes(self, conn) -> list[str]:
        return [r[0] for r in self._execute(conn, "SELECT DISTINCT department_code FROM dispatch_catalogue")]

    def departments(self) -> pd.DataFrame:
        """The registry (code, name, kind, districts as tuples), ordered by code."""
        rows = self._execute(self._conn(), "SELECT code, name, kind, districts FROM departments ORDER BY code")
        frame = pd.DataFrame(rows.fetchall(), columns=list(registry.DEPARTMENT_COLUMNS))
        frame["districts"] = [tuple(d.split(";")) for d in frame["districts"]]
        return frame

    def catalogue(self) -> pd.DataFrame:
        """The dispatch catalogue (category, district_code, department_code)."""
        rows = self._execute(self._conn(), "SELECT category, district_code, department_code FROM dispatch_catalogue "
                                           "ORDER BY category, district_code")
        return pd.DataFrame(rows.fetchall(), columns=list(registry.CATALOGUE_COLUMNS))

    def load_sample_departments(self) -> int:
        """Give a store of the sample city (or any city) the sample's departments and catalogue, once.

        Does nothing when the store already holds a registry; returns how many departments were written.
        """
        if len(self.departments()):
            return 0
        districts = self.read_layer("districts")
        departments = registry.sample_departments(districts)
        self.write_departments(departments, registry.sample_catalogue(departments))
        return len(departments)

    def load_sample_calls(self, *, seed: int = 2026) -> int:
        """Give a store of the sample city a year of 街道 calls (街呼) with ratings, once.

        The calls (:func:`jngis.workorders.synthetic_calls`) are on standing problems, in the
        year before the store's latest order. Does nothing when the store holds calls already or
        no departments; returns how many calls were written.
        """
        from jngis.workorders.synthetic import synthetic_calls

        conn = self._conn()
        departments = self.departments()
        latest = self._execute(conn, "SELECT MAX(received_at) FROM orders").fetchone()[0]
        held = self._execute(conn, "SELECT COUNT(*) FROM calls").fetchone()[0]
        if held or not len(departments) or latest is None or "streets" not in self.layer_names():  # type: ignore[attr-defined]
            return 0
        end = pd.Timestamp(self._from_db_time(latest))
        streets = pd.DataFrame(self.read_layer("streets").drop(columns="geometry"))
        calls = synthetic_calls(streets, departments, start=end - pd.Timedelta(days=365), end=end, seed=seed,
                                calendar=self.calendar)
        calls = calls.sort_values("call_id", kind="stable")
        firsts = calls.drop_duplicates("call_id")
        with self._write() as conn:
            stored = {}  # the generator's call id -> the store's
            for row in firsts[["call_id", "street_code", "problem", "who", "called_at"]].itertuples(index=False):
                stored[row.call_id] = self._execute(
                    conn, "INSERT INTO calls(order_id, street_code, problem, who, called_at) "
                          "VALUES (?, ?, ?, ?, ?) RETURNING call_id",
                    (None, row.street_code, row.problem, row.who, self._to_db(row.called_at))).fetchone()[0]
            columns = [calls[c].astype(object).where(calls[c].notna(), None) for c in CALL_DEPARTMENT_COLUMNS[1:]]
            self._insert_many(conn, "call_departments", CALL_DEPARTMENT_COLUMNS,
                              [(int(stored[call_id]), *(None if v is None else self._to_db(v) for v in values))
                               for call_id, *values in zip(calls["call_id"], *columns)])
            self.announce("orders")
        return int(calls["call_id"].nunique())

    # -- one order's steps
    def step(self, order_id: str, action: str, *, principal: access.Principal = access.ADMIN, at: Any = None,
             note: str | None = None, **options: Any) -> dict:
        """Take one step of the loop on an order (any of :data:`jngis.workorders.ACTIONS`).

        ``options`` are the step's own (:func:`jngis.workorders.plan_step`):
        ``department_code`` (a code, None for the 街道, or ``"catalogue"`` for
        the catalogue's department of the order's category and district),
        ``days``, ``granted``, ``level``, ``passed``, ``master_id``,
        ``satisfied``. Returns :meth:`order_detail` after the step.
        """
        who = _acting(principal, action)
        with self._write() as conn:
            return self._step_in(conn, who, order_id, action, at=at, note=note, **options)

    def _step_in(self, conn, who: access.Principal, order_id: Any, action: str, *, at: Any, note: Any,
                 **options: Any) -> dict:
        """One step inside the open write transaction ``conn``."""
        order_id = _checks.text("step", "order_id", order_id, max_length=64, required=True)
        order = self._order_row(conn, order_id, lock=True)
        _in_scope(who, order, action)
        loop = self._loop_row(conn, order_id)
        if "master_id" in options:
            options["master"] = self._order_row(conn, _checks.text(
                "merge", "master_id", options.pop("master_id"), max_length=64, required=True), lock=True)
        if action == "dispatched":
            options.update(self._dispatch_target(conn, order, options.get("department_code")))
        changes, loop_changes, rows = plan_step(order, loop, action, who=who.id, at=at, note=note,
                                                rules=self.rules, calendar=self.calendar, **options)
        self._write_step(conn, order_id, changes, {**loop, **loop_changes} if loop_changes else None, rows)
        order.update(changes)
        return self._detail(order, {**loop, **loop_changes}, principal=who)

    # -- duplicates (并单)
    def propose_duplicates(self, *, distance_m: float = DUPLICATE_DISTANCE_M, hours: float = DUPLICATE_HOURS,
                           principal: access.Principal = access.ADMIN, open_only: bool = True) -> pd.DataFrame:
        """Duplicates proposed among the orders ``principal`` may see (:func:`jngis.workorders.find_duplicates`).

        Orders already merged take no part; with ``open_only`` (default) neither do resolved or closed ones.
        """
        who = access.principal(principal)
        access.require(who, "orders.read")
        frame = self.orders_frame(columns=["order_id", "category", "status", "received_at", "street_code",
                                           "grid_code", "community_code", "district_code", "department_code"])
        frame = frame.loc[access.order_scope(who).mask(frame)]
        finished = ("duplicate", "resolved", "closed") if open_only else ("duplicate",)
        return find_duplicates(frame, distance_m=distance_m, hours=hours,
                               exclude=frame["status"].isin(finished).to_numpy())

    def merge_duplicates(self, pairs: Sequence[tuple[str, str]], *, principal: access.Principal = access.ADMIN,
                         at: Any = None) -> list[dict]:
        """Merge each ``(order_id, master_id)`` pair, all in one write: one refusal and none is merged."""
        who = _acting(principal, "merge")
        if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence) or not pairs:
            raise InputTypeError(f"merge_duplicates: pairs={pairs!r}; expected a list of (order_id, master_id)")
        with self._write() as conn:
            return [self._step_in(conn, who, order_id, "merge", at=at, note=None, master_id=master_id)
                    for order_id, master_id in pairs]

    def _dispatch_target(self, conn, order: dict, code: Any) -> dict[str, Any]:
        if code == "catalogue":
            found = self._execute(conn, "SELECT department_code FROM dispatch_catalogue WHERE category = ? AND "
                                        "district_code = ?", (order["category"], order["district_code"])).fetchone()
            if found is None:
                raise NotFoundError(f"work order {order['order_id']!r}: the dispatch catalogue has no department for "
                                    f"category {order['category']!r} in district {order['district_code']!r}; "
                                    "expected a row of the catalogue, or a department_code")
            code = found[0]
        if code is None:
            return {"department_code": None}
        known = {r[0] for r in self._execute(conn, "SELECT code FROM departments")}
        return {"department_code": code, "departments": known}

    def _order_row(self, conn, order_id: str, *, lock: bool = False) -> dict:
        lock_sql = self._lock_row if lock else ""
        row = self._execute(conn, f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE order_id = ?{lock_sql}",
                            (order_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"work order {order_id!r} does not exist")
        return self._row_dict(row)

    def _loop_row(self, conn, order_id: str) -> dict:
        row = self._execute(conn, f"SELECT {', '.join(LOOP_COLUMNS)} FROM order_loop WHERE order_id = ?",
                            (order_id,)).fetchone()
        if row is None:
            return {}
        loop = dict(zip(LOOP_COLUMNS, row))
        for column in LOOP_TIME_COLUMNS:
            loop[column] = self._from_db_time(loop[column])
        return loop

    def _write_step(self, conn, order_id: str, changes: dict, loop: dict | None, rows: list[dict]) -> None:
        assignments = ", ".join(f"{c} = ?" for c in changes)
        self._execute(conn, f"UPDATE orders SET {assignments} WHERE order_id = ?",
                      [self._to_db(v) for v in changes.values()] + [order_id])
        if loop is not None:
            values = [self._to_db(loop.get(c)) for c in LOOP_COLUMNS]
            updates = ", ".join(f"{c} = excluded.{c}" for c in LOOP_COLUMNS)
            self._execute(conn, f"INSERT INTO order_loop(order_id, {', '.join(LOOP_COLUMNS)}) VALUES "
                                f"({', '.join('?' * (len(LOOP_COLUMNS) + 1))}) ON CONFLICT(order_id) DO UPDATE "
                                f"SET {updates}", [order_id, *values])
        for row in rows:
            self._execute(conn, f"INSERT INTO trail({', '.join(TRAIL_COLUMNS)}) "
                                f"VALUES ({', '.join('?' * len(TRAIL_COLUMNS))})",
                          [self._to_db({**row, "order_id": order_id}[c]) for c in TRAIL_COLUMNS])
        self.announce("orders")

    def _detail(self, order: dict, loop: dict, now: Any = None,
                principal: access.Principal = access.ADMIN) -> dict:
        # phones and ID numbers written into a description are masked, as in every public answer
        record = access.mask_record(public_order(order, now), principal)
        record.update({c: loop.get(c) for c in LOOP_COLUMNS})
        record["card"] = card(record["status"], record["due_at"], record["warn_at"], now)
        return record

    def order_detail(self, order_id: str, *, principal: access.Principal = access.ADMIN, now: Any = None) -> dict:
        """An order's public record with its department-loop fields (签收, 联系 ... times, extension,
        supervision, callback, master) and its deadline ``card``; NotFoundError outside the scope."""
        who = require_read(principal)  # a role that reads no orders is refused as in get_order
        order_id = _checks.text("order_detail", "order_id", order_id, max_length=64, required=True)
        conn = self._conn()
        order = self._order_row(conn, order_id)
        if not access.order_scope(who).contains(order):
            raise missing_order(order_id)
        return self._detail(order, self._loop_row(conn, order_id), now, who)

    def loop_view(self, order_id: str, *, principal: access.Principal = access.ADMIN,
                  actor: access.Principal | None = None, now: Any = None) -> dict:
        """What an order's page shows: :meth:`order_detail`, its trail (notes masked) and the steps
        ``actor`` may take now (:func:`jngis.workorders.actions_for`; none without an actor)."""
        detail = self.order_detail(order_id, principal=principal, now=now)
        trail = [{**row, "note": access.mask_text(row["note"])} for row in self.trail(detail["order_id"])]
        return {"order": detail, "trail": trail, "actions": actions_for(detail, actor) if actor else [],
                "calls": self.order_calls(detail["order_id"], principal=principal)}

    def order_calls(self, order_id: str, *, principal: access.Principal = access.ADMIN) -> list[dict]:
        """The 街道's calls on an order (:meth:`call` each, oldest first) that ``principal`` may see."""
        ids = [r[0] for r in self._execute(self._conn(), "SELECT call_id FROM calls WHERE order_id = ? ORDER BY "
                                                         "call_id", (order_id,)).fetchall()]
        calls = []
        for call_id in ids:
            with contextlib.suppress(NotFoundError):
                calls.append(self.call(int(call_id), principal=principal))
        return calls

    def loop_frame(self) -> pd.DataFrame:
        """Every order's department-loop row (order_id and :data:`jngis.workorders.LOOP_COLUMNS`)."""
        rows = self._execute(self._conn(), f"SELECT order_id, {', '.join(LOOP_COLUMNS)} FROM order_loop "
                                           "ORDER BY order_id").fetchall()
        frame = pd.DataFrame(rows, columns=["order_id", *LOOP_COLUMNS])
        for column in LOOP_TIME_COLUMNS:
            frame[column] = pd.to_datetime(frame[column], format="ISO8601")
        return frame

    def evaluation_orders(self) -> pd.DataFrame:
        """The orders as :func:`jngis.evaluation.evaluate` takes them: codes, times, department, callback."""
        frame = pd.DataFrame(self.orders_frame(columns=["order_id", "category", "status", "received_at", "due_at",
                                                        "dispatched_at", "satisfied", "district_code", "street_code",
                                                        "community_code", "grid_code", "department_code"]))
        frame = frame.drop(columns="geometry")
        loop = self.loop_frame()[["order_id", "callback", "master_id"]]
        frame = frame.merge(loop, on="order_id", how="left")
        # an order closed in the hotline's own loop has only the two-level answer
        legacy = frame["callback"].isna() & frame["satisfied"].notna()
        frame.loc[legacy, "callback"] = frame.loc[legacy, "satisfied"].map(
            {True: "satisfied", False: "not_satisfied"})
        return frame

    # -- the 街道's calls (街呼)
    def call_departments(self, department_codes: Sequence[str], *, problem: str, order_id: str | None = None,
                         street_code: str | None = None, principal: access.Principal = access.ADMIN,
                         at: Any = None) -> dict:
        """A 街道 calls departments on an order (its 街道 by default) or a standing problem (``street_code``).

        On an order the call is also a trail row (``call``). Returns :meth:`call`.
        """
        who = access.principal(principal)
        access.require(who, "departments.call")
        with self._write() as conn:
            order = None
            if order_id is not None:
                order = self._order_row(conn, _checks.text("call_departments", "order_id", order_id, max_length=64,
                                                           required=True), lock=True)
                _in_scope(who, order, "call")
                street_code = order["street_code"] if street_code is None else street_code
            elif not access.order_scope(who).contains({"street_code": street_code}):
                raise ForbiddenError(f"{who.label} {who.name!r} may not call departments for 街道 {street_code!r}",
                                     action="departments.call")
            known = {r[0] for r in self._execute(conn, "SELECT code FROM departments")}
            call = plan_call(street_code=street_code, department_codes=department_codes, problem=problem,
                             departments=known, order=order)
            when = _time(at)
            if order is not None:
                changes, _, rows = plan_step(order, self._loop_row(conn, order["order_id"]), "call", who=who.id,
                                             at=when, note=call["problem"], rules=self.rules, calendar=self.calendar)
                self._write_step(conn, order["order_id"], changes, None, rows)
            call_id = self._execute(conn, "INSERT INTO calls(order_id, street_code, problem, who, called_at) VALUES "
                                          "(?, ?, ?, ?, ?) RETURNING call_id",
                                    (order_id, street_code, call["problem"], who.id, self._to_db(when))).fetchone()[0]
            self._insert_many(conn, "call_departments", ("call_id", "department_code"),
                              [(int(call_id), code) for code in call["department_codes"]])
            self.announce("orders")
        return self.call(int(call_id))

    def call(self, call_id: int, *, principal: Any = access.ADMIN, masked: bool = True) -> dict:
        """One call: its fields and each called department's times and rating (``departments``).

        ``principal`` sees the call when it may read the call's order, when the calling 街道 lies in
        its scope, or when one of its departments was called; any other call answers exactly like a
        missing one (no existence leak). Phones and ID numbers written into the problem or a
        rating's note are masked unless ``masked=False``.
        """
        principal = require_read(principal)
        call_id = _checks.integer("call", "call_id", call_id, minimum=1, maximum=_MAX_ID)
        conn = self._conn()
        row = self._execute(conn, f"SELECT {', '.join(CALL_COLUMNS)} FROM calls WHERE call_id = ?",
                            (call_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"call {call_id} does not exist")
        record = self._call_times(dict(zip(CALL_COLUMNS, row)))
        rows = self._execute(conn, f"SELECT {', '.join(CALL_DEPARTMENT_COLUMNS)} FROM call_departments WHERE "
                                   "call_id = ? ORDER BY department_code", (call_id,)).fetchall()
        record["departments"] = [self._call_times(dict(zip(CALL_DEPARTMENT_COLUMNS, r))) for r in rows]
        if not self._call_visible(record, principal):
            raise NotFoundError(f"call {call_id} does not exist")
        if masked:
            record["problem"] = access.mask_text(record["problem"])
            for row in record["departments"]:
                row["rating_note"] = access.mask_text(row["rating_note"])
        return record

    def _call_visible(self, record: dict, principal: access.Principal) -> bool:
        scope = access.order_scope(principal)
        if scope.everything:
            return True
        street = record["street_code"]
        if street and scope.contains({"street_code": street, "district_code": codes.parent(street, "district_code")}):
            return True
        if any(scope.contains({"department_code": row["department_code"]}) for row in record["departments"]):
            return True
        if record["order_id"]:
            try:
                self.get_order(record["order_id"], principal=principal)  # type: ignore[attr-defined]
            except NotFoundError:
                return False
            return True
        return False

    def _call_times(self, record: dict) -> dict:
        for column in _CALL_TIMES:
            if column in record:
                record[column] = self._from_db_time(record[column])
        return record

    def call_step(self, call_id: int, department_code: str, step: str, *,
                  principal: access.Principal = access.ADMIN, at: Any = None) -> dict:
        """A called department signs, contacts, goes on site or is done (in that order; on site optional)."""
        who = access.principal(principal)
        access.require(who, "orders.transition")
        # only the called department itself (or the administrator) answers a call
        if who.role != "admin" and (who.role != "department" or department_code not in who.scope):
            raise ForbiddenError(f"{who.label} {who.name!r} acts for {list(who.scope) or who.role}, "
                                 f"not {department_code!r}", action="orders.transition")
        with self._write() as conn:
            rows = self.call(call_id)["departments"]
            row = next((r for r in rows if r["department_code"] == department_code), None)
            if row is None:
                raise NotFoundError(f"call {call_id} did not call department {department_code!r}; it called "
                                    f"{[r['department_code'] for r in rows]}")
            changes = plan_call_step(row, step, at=at)
            column = CALL_STEP_COLUMNS[step]
            self._execute(conn, f"UPDATE call_departments SET {column} = ? WHERE call_id = ? AND department_code = ?",
                          (self._to_db(changes[column]), int(call_id), department_code))
            self.announce("orders")
        return self.call(call_id)

    def rate(self, call_id: int, department_code: str, rating: int, *, note: str | None = None,
             principal: access.Principal = access.ADMIN, at: Any = None) -> dict:
        """The calling 街道 rates one called department's response (1-5, once)."""
        who = access.principal(principal)
        access.require(who, "departments.call")
        with self._write() as conn:
            call = self.call(call_id)
            if not access.order_scope(who).contains({"street_code": call["street_code"]}):
                raise ForbiddenError(f"{who.label} {who.name!r} may not rate the calls of 街道 "
                                     f"{call['street_code']!r}", action="departments.call")
            changes = plan_rating(call, call["departments"], department_code, rating, note, at=at)
            self._execute(conn, "UPDATE call_departments SET rating = ?, rating_note = ?, rated_at = ? "
                                "WHERE call_id = ? AND department_code = ?",
                          (changes["rating"], changes["rating_note"], self._to_db(changes["rated_at"]),
                           int(call_id), department_code))
            self.announce("orders")
        return self.call(call_id)

    def calls_frame(self) -> pd.DataFrame:
        """Every called department's row with its call's fields (for the evaluation's ratings)."""
        columns = [f"c.{c}" for c in CALL_COLUMNS] + [f"d.{c}" for c in CALL_DEPARTMENT_COLUMNS[1:]]
        rows = self._execute(self._conn(), f"SELECT {', '.join(columns)} FROM calls c JOIN call_departments d "
                                           "ON d.call_id = c.call_id ORDER BY c.call_id, d.department_code").fetchall()
        frame = pd.DataFrame(rows, columns=[*CALL_COLUMNS, *CALL_DEPARTMENT_COLUMNS[1:]])
        for column in _CALL_TIMES:
            frame[column] = pd.to_datetime(frame[column], format="ISO8601")
        frame["rating"] = pd.array(frame["rating"], dtype="Int64")
        return frame


def _acting(principal: Any, action: str) -> access.Principal:
    """The principal, allowed by role to take ``action``."""
    who = access.principal(principal)
    if action not in ACTIONS:
        _checks.choice("step", "action", action, ACTIONS)
    if not access.may_take_step(who, action):
        raise ForbiddenError(f"{who.label} {who.name!r} ({who.role}) may not take the step {action!r}",
                             action="orders.transition")
    return who


def _in_scope(who: access.Principal, order: dict, action: str) -> None:
    # outside the scope an order is answered exactly like a missing one (a 403 would say it exists)
    if not access.order_scope(who).contains(order):
        raise missing_order(order["order_id"])


def _time(at: Any) -> dt.datetime:
    from jngis.workorders.clocks import now_cst, to_cst

    if at is not None and not isinstance(at, (str, dt.date, pd.Timestamp)):
        raise InputTypeError(f"at is a {type(at).__name__}; expected a datetime or an ISO string")
    return now_cst() if at is None else to_cst(at)

