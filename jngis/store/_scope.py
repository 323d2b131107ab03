"""A principal's scope as SQL, and the checks every order method of the store shares.

:func:`jngis.access.order_scope` says, as data, which orders a principal may
see; :func:`scope_sql` turns it into a WHERE clause with bound parameters,
AND-ed into every read of ``orders`` (lists, counts, items, trails, frames) and
into the read that locks an order before a transition. An order outside the
scope is answered exactly like a missing one (:func:`missing_order`), so
nobody learns what exists outside their scope; a write the principal may read
but not make is a :class:`~jngis.errors.ForbiddenError`.

Examples
--------
>>> from jngis.access import Principal
>>> scope_sql(Principal("u-1", "李四", "street", ("370102003",)), {"street_code"})
('(street_code IN (?))', ['370102003'])
>>> scope_sql(Principal("u-2", "赵六", "department", ("370102-CG",)), {"street_code"})
('1=0', [])
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from jngis import _checks, access
from jngis.access import Principal
from jngis.errors import ForbiddenError, InputTypeError, NotFoundError, ParameterError
from jngis.store.schema import CALLER_FIELDS, ORDER_COLUMNS
from jngis.workorders import public_order, to_cst

__all__ = ["StorePart", "scope_sql", "missing_order", "trail_who", "require_read", "require_step",
           "check_reason", "OrderAccess"]


class StorePart:
    """What the store's mixins (users, access log) use of :class:`jngis.store.Store` (for type checkers)."""

    if TYPE_CHECKING:  # pragma: no cover - the Store provides them
        _paramstyle: str
        url: str

        def _conn(self) -> Any: ...

        def _write(self) -> Any: ...

        def _execute(self, conn: Any, query: str, params: Sequence = ()) -> Any: ...

        def _to_db(self, value: Any) -> Any: ...

        def _from_db_time(self, value: Any) -> Any: ...

        def _held_layers(self, conn: Any) -> set[str]: ...

        @property
        def crs(self) -> Any: ...

        def _row_dict(self, row: Sequence) -> dict: ...

        def announce(self, kind: str, version: int | None = None) -> int: ...

        def change_versions(self) -> dict[str, int]: ...

        def _log(self, conn: Any, principal: Principal, action: str, *, target: Any = None, detail: Any = None,
                 reason: Any = None, client: Any = None) -> None: ...


def scope_sql(principal: Principal, columns: Collection[str], prefix: str = "") -> tuple[str, list[str]]:
    """``(clause, parameters)`` of the orders ``principal`` may see, ``?`` placeholders.

    ``columns`` are the columns the orders table has: a clause on a column the
    store does not hold (``department_code`` before departments exist) lets
    nothing through, never everything.
    """
    scope = access.order_scope(principal)
    if not scope.everything:
        scope = access.Scope(tuple(clause for clause in scope.clauses if clause[0] in columns))
    return scope.sql("?", prefix)


def missing_order(order_id: str) -> NotFoundError:
    """The one answer for an order that does not exist and for one outside the scope (no existence leak)."""
    return NotFoundError(f"work order {order_id!r} does not exist")


def require_read(principal: Any) -> Principal:
    """``principal`` checked, and allowed to read orders at all (else ForbiddenError)."""
    principal = access.principal(principal)
    access.require(principal, "orders.read")
    return principal


def require_step(principal: Principal, order_id: str, step: str) -> None:
    """ForbiddenError unless ``principal`` (who can read the order) may move it by ``step``."""
    if not access.may_take_step(principal, step):
        raise ForbiddenError(f"{principal.label} {principal.name!r} ({principal.role}) may not move work order "
                             f"{order_id!r} to {step!r}", action="orders.transition")


def trail_who(func: str, principal: Principal, who: Any) -> str:
    """The trail's ``who``: the principal's id.

    Library callers acting as the administrator (the default principal, the CLI,
    notebooks) may still name the operator with ``who=`` (the hotline's own
    staff number); any other principal is who it is, and a ``who`` beside it is refused.
    """
    if who is None:
        return principal.id
    if principal in (access.ADMIN, access.SYSTEM):
        return _checks.text(func, "who", who, max_length=100, required=True)
    raise ParameterError(f"{func}: who={who!r} was given with principal {principal.id!r}; expected no who "
                         "(the trail's who is the principal)")


def check_reason(func: str, reason: Any) -> str:
    """The reason of a reveal: required, at least 2 characters, at most 500."""
    text = _checks.text(func, "reason", reason, max_length=500, required=True)
    if len(text) < 2:
        raise ParameterError(f"{func}: reason={reason!r}; expected the reason of the reveal in words "
                             "(e.g. 回访核实诉求)")
    return text


class OrderAccess(StorePart):
    """What the store's order methods share about access: scope SQL, masking, reveal (mixed into the Store)."""

    _order_columns: frozenset[str] | None

    def _shown(self, records: list[dict], principal: Principal, personal: Any) -> list[dict]:
        """Orders masked for ``principal``, with their callers' masked details if ``personal``."""
        if not isinstance(personal, (bool, np.bool_)):
            raise InputTypeError(f"personal is a {type(personal).__name__}; expected True or False")
        if personal and records and access.personal_access(principal) != "none":
            callers = self._callers(self._conn(), [r["order_id"] for r in records])
            empty = dict.fromkeys(CALLER_FIELDS)
            records = [{**r, **callers.get(r["order_id"], empty)} for r in records]
        return [access.mask_record(r, principal) for r in records]

    def _callers(self, conn, order_ids: list[str]) -> dict[str, dict]:
        rows = self._execute(conn, f"SELECT order_id, {', '.join(CALLER_FIELDS)} FROM callers WHERE order_id IN "
                                   f"({', '.join('?' * len(order_ids))})", order_ids).fetchall()
        return {row[0]: dict(zip(CALLER_FIELDS, row[1:])) for row in rows}

    def reveal(self, order_id: str, *, principal: Principal, reason: str, client: str | None = None) -> dict:
        """One order in full, the caller's name and phone included, written to the access log.

        Needs ``personal.reveal`` and a ``reason``; the log row (who, when, which
        order, what, why, from where) is written in the same transaction as the
        read, so no reveal goes unlogged. Leaders never see personal data.
        """
        order_id = _checks.text("reveal", "order_id", order_id, max_length=64, required=True)
        principal = require_read(principal)
        access.require(principal, "personal.reveal")
        reason = check_reason("reveal", reason)
        with self._write() as conn:
            scope, params = self._scope_sql(conn, principal)
            row = self._execute(conn, f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE order_id = ? AND {scope}",
                                (order_id, *params)).fetchone()
            if row is None:
                raise missing_order(order_id)
            record = public_order(self._row_dict(row))
            record.update(self._callers(conn, [order_id]).get(order_id, dict.fromkeys(CALLER_FIELDS)))
            self._log(conn, principal, "personal.reveal", target=order_id, detail=", ".join(CALLER_FIELDS),
                      reason=reason, client=client)
        return record

    def forget_callers(self, closed_before: Any, *, principal: Principal = access.ADMIN) -> int:
        """Delete the callers' details of the orders closed before ``closed_before``; returns how many orders.

        PIPL art. 19 and 47: personal data kept no longer than needed. The callers'
        rows are deleted and the phone and ID numbers in those orders' descriptions
        masked for good (:func:`jngis.access.mask_text`), in one transaction that
        also writes the access log (``personal.erase``). Needs ``users.manage``.
        """
        principal = access.principal(principal)
        access.require(principal, "users.manage")
        cutoff = to_cst(closed_before, "closed_before")
        with self._write() as conn:
            closed = "SELECT order_id FROM orders WHERE status = 'closed' AND closed_at < ?"
            rows = self._execute(conn, f"SELECT order_id, description FROM orders WHERE order_id IN ({closed})",
                                 (self._to_db(cutoff),)).fetchall()
            erased = self._execute(conn, f"DELETE FROM callers WHERE order_id IN ({closed})",
                                   (self._to_db(cutoff),)).rowcount
            for order_id, description in rows:
                masked = access.mask_text(description)
                if masked != description:
                    self._execute(conn, "UPDATE orders SET description = ? WHERE order_id = ?", (masked, order_id))
            self._log(conn, principal, "personal.erase", detail=f"closed before {cutoff:%Y-%m-%d %H:%M}: "
                                                                f"{erased} callers deleted, {len(rows)} orders")
            self.announce("orders")
        return int(erased)

    def private_record(self, order_id: str) -> dict:
        """Deprecated: :meth:`reveal` as the administrator (logged, reason "private_record")."""
        return self.reveal(order_id, principal=access.ADMIN, reason="private_record (library call)")

    def _scope_sql(self, conn, principal: Principal, prefix: str = "") -> tuple[str, list[str]]:
        """The principal's scope as a clause on ``orders`` (see :func:`jngis.store.scope_sql`)."""
        if self._order_columns is None:
            cursor = self._execute(conn, "SELECT * FROM orders LIMIT 0")
            self._order_columns = frozenset(d[0] for d in cursor.description)
        return scope_sql(principal, self._order_columns, prefix)
