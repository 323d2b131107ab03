"""One order's steps through the loop and its trail: plan them, check them, replay them.

The functions here are pure: the stores call them inside their transaction
and write what they return (the changed fields and the trail row) together.

Examples
--------
>>> fields, row = plan_creation(category="环境卫生", description=None, who="话务员", at="2025-10-09 09:00")
>>> changes, row = plan_transition({"order_id": "W1", **fields}, "dispatched", who="派单员",
...                                at="2025-10-09 10:00")
>>> changes["status"], changes["due_at"]  # Saturday 11 October is a make-up working day
('dispatched', datetime.datetime(2025, 10, 15, 10, 0))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Literal, overload

import numpy as np
import pandas as pd

from jngis.errors import InputTypeError, InvalidTransition, ParameterError, SchemaError
from jngis.workorders.clocks import (
    CALENDAR,
    MAX_EXTENSION_WORKING_DAYS,
    RESOLVE_WORKING_DAYS,
    WorkCalendar,
    deadline,
    due_fields,
    now_cst,
    to_cst,
)
from jngis.workorders.states import (
    DEPARTMENT_ACTIONS,
    NOTE_REQUIRED,
    RECORD_ACTIONS,
    TRANSITIONS,
    allowed_actions,
    check_action,
    next_state,
)

__all__ = [
    "PUBLIC_FIELDS",
    "PERSONAL_FIELDS",
    "plan_creation",
    "plan_transition",
    "public_order",
    "state_from_trail",
    "check_trail",
]

#: The fields of an order anyone may see (API, tiles, GeoJSON, stats).
PUBLIC_FIELDS: tuple[str, ...] = (
    "order_id", "category", "description", "status", "deadline",
    "received_at", "dispatched_at", "due_at", "warn_at", "resolved_at", "closed_at",
    "extended_days", "satisfied",
    "district_code", "street_code", "community_code", "grid_code", "department_code",
    "lon", "lat", "updated_at",
)
#: The personal data a store keeps with an order (each one :func:`jngis.codes.is_personal`),
#: shown only by the store's explicitly private methods.
PERSONAL_FIELDS: tuple[str, ...] = ("caller_name", "caller_phone")
#: The longest free text (description, note) an order takes.
MAX_TEXT = 4000
_TRAIL_COLUMNS = ("order_id", "action", "from_state", "to_state")


@overload
def _text(value: Any, parameter: str, *, required: Literal[True], limit: int = ...) -> str: ...
@overload
def _text(value: Any, parameter: str, *, required: bool, limit: int = ...) -> str | None: ...
def _text(value: Any, parameter: str, *, required: bool, limit: int = MAX_TEXT) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        if required:
            raise ParameterError(f"{parameter} is missing; expected a non-empty text")
        return None
    if not isinstance(value, str):
        raise InputTypeError(f"{parameter} is a {type(value).__name__} ({value!r}); expected a text")
    value = value.strip()
    if not value:
        if required:
            raise ParameterError(f"{parameter}={value!r} is empty; expected a non-empty text")
        return None
    if len(value) > limit:
        raise ParameterError(f"{parameter} has {len(value)} characters; expected at most {limit}")
    return value


def plan_creation(*, category: str, description: str | None, who: str, at: Any = None,
                  calendar: WorkCalendar = CALENDAR) -> tuple[dict, dict]:
    """The fields of a new order (state ``received``, due time set) and its first trail row.

    The order id and location are the store's business; this checks the
    rest. Returns ``(fields, trail_row)``.

    Examples
    --------
    >>> fields, row = plan_creation(category="环境卫生", description="楼道堆物", who="话务员01",
    ...                             at="2025-09-30 16:00")
    >>> fields["status"], fields["due_at"]
    ('received', datetime.datetime(2025, 10, 14, 16, 0))
    """
    category = _text(category, "category", required=True, limit=50)
    description = _text(description, "description", required=False)
    who = _text(who, "who", required=True, limit=100)
    at = now_cst() if at is None else to_cst(at)
    fields = {
        "category": category, "description": description, "status": "received",
        "received_at": at, "dispatched_at": None, **due_fields(at, RESOLVE_WORKING_DAYS, calendar),
        "resolved_at": None, "closed_at": None, "extended_days": None, "satisfied": None,
        "updated_at": at,
    }
    trail = {"action": "received", "from_state": None, "to_state": "received", "who": who, "at": at,
             "note": None}
    return fields, trail


def plan_transition(order: Mapping[str, Any], action: str, *, who: str, at: Any = None,
                    note: str | None = None, days: int | None = None, satisfied: bool | None = None,
                    last_at: dt.datetime | None = None,
                    calendar: WorkCalendar = CALENDAR) -> tuple[dict, dict]:
    """Check one step of ``order`` and return ``(changed_fields, trail_row)``.

    Pure: the stores call it inside their transaction, on the row they have
    locked, and write both results together.

    Parameters
    ----------
    order : mapping
        At least ``order_id``, ``status``, ``due_at`` and ``extended_days``.
    action : str
        One of :data:`ACTIONS`.
    who : str
        The person or system taking the step (kept in the trail).
    at : datetime, optional
        When (default: now, China Standard Time); not before ``last_at``.
    note : str, optional
        The reason; required for ``returned``, ``reopened`` and ``extended``.
    days : int, optional
        ``extended`` only: working days to add, 1-10 (default 10).
    satisfied : bool, optional
        ``closed`` only: the citizen's answer at the follow-up call.
    last_at : datetime, optional
        Time of the order's last trail row.

    Examples
    --------
    >>> import datetime as dt
    >>> order = {"order_id": "W1", "status": "in_progress", "due_at": dt.datetime(2025, 9, 30, 9),
    ...          "extended_days": None}
    >>> changes, row = plan_transition(order, "extended", who="区城管局", note="需协调产权单位",
    ...                                days=3, at="2025-09-29 10:00")
    >>> changes["due_at"], row["to_state"]
    (datetime.datetime(2025, 10, 11, 9, 0), 'in_progress')
    """
    state = order["status"]
    if action in DEPARTMENT_ACTIONS:
        raise ParameterError(f"to={action!r} is a step of the department loop, with options of its own; "
                             "expected jngis.workorders.plan_step (the store's step methods call it)")
    new_state = _legal_step(order, action)
    who = _text(who, "who", required=True, limit=100)
    note = _text(note, "note", required=action in NOTE_REQUIRED)
    at = _step_time(at, last_at)
    _check_step_options(action, days, satisfied)
    changes = {"status": new_state, "updated_at": at, **_step_changes(order, action, at, days, satisfied, calendar)}
    trail = {"action": action, "from_state": state, "to_state": new_state, "who": who, "at": at, "note": note}
    return changes, trail


def _legal_step(order: Mapping[str, Any], action: str) -> str:
    """The state ``action`` leads ``order`` to; an order is extended once at most."""
    order_id, state = str(order["order_id"]), order["status"]
    new_state = next_state(order_id, state, check_action(action))
    if action == "extended" and order.get("extended_days") is not None and not pd.isna(order["extended_days"]):
        allowed = tuple(a for a in allowed_actions(state) if a != "extended")
        raise InvalidTransition(order_id, state, action, allowed,
                                f"already extended once, by {int(order['extended_days'])} working days")
    return new_state


def _step_time(at: Any, last_at: dt.datetime | None) -> dt.datetime:
    """The step's time (default now), never before the order's last step."""
    at = now_cst() if at is None else to_cst(at)
    if last_at is not None and at < last_at:
        raise ParameterError(
            f"at={at:%Y-%m-%d %H:%M:%S} is before the order's last step at {last_at:%Y-%m-%d %H:%M:%S}; "
            "expected a time at or after it"
        )
    return at


def _check_step_options(action: str, days: Any, satisfied: Any) -> None:
    if days is not None and action != "extended":
        raise ParameterError(f"days={days!r} is only for the 'extended' step, not {action!r}")
    if satisfied is not None and action != "closed":
        raise ParameterError(f"satisfied={satisfied!r} is only for the 'closed' step, not {action!r}")
    if satisfied is not None and not isinstance(satisfied, (bool, np.bool_)):
        raise InputTypeError(f"satisfied is a {type(satisfied).__name__}; expected True or False")


def _step_changes(order: Mapping[str, Any], action: str, at: dt.datetime, days: Any, satisfied: Any,
                  calendar: WorkCalendar) -> dict[str, Any]:
    """The fields ``action`` changes besides the status: times, the clock, the citizen's answer."""
    if action in ("dispatched", "reopened"):
        # each dispatch and each reopening restarts the 5-working-day clock
        changes = due_fields(at, RESOLVE_WORKING_DAYS, calendar)
        if action == "dispatched":
            changes["dispatched_at"] = at
        else:
            changes.update(resolved_at=None, satisfied=False)
        return changes
    if action == "resolved":
        return {"resolved_at": at}
    if action == "closed":
        return {"closed_at": at} if satisfied is None else {"closed_at": at, "satisfied": bool(satisfied)}
    if action == "extended":
        return _extension(order, at, days, calendar)
    return {}


def _extension(order: Mapping[str, Any], at: dt.datetime, days: Any, calendar: WorkCalendar) -> dict[str, Any]:
    days = MAX_EXTENSION_WORKING_DAYS if days is None else days
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) \
            or not 1 <= days <= MAX_EXTENSION_WORKING_DAYS:
        raise ParameterError(
            f"days={days!r}; expected a whole number of working days from 1 to {MAX_EXTENSION_WORKING_DAYS}"
        )
    base = order.get("due_at")
    if base is None or pd.isna(base):
        base = at
    return {**due_fields(pd.Timestamp(base).to_pydatetime(), int(days), calendar), "extended_days": int(days)}


def public_order(record: Mapping[str, Any], now: Any = None) -> dict:
    """The public view of an order: :data:`PUBLIC_FIELDS` only (never a caller's name or phone)."""
    out = {field: record.get(field) for field in PUBLIC_FIELDS if field != "deadline"}
    for key, value in out.items():
        if isinstance(value, pd.Timestamp):
            out[key] = None if pd.isna(value) else value.to_pydatetime()
        elif value is not None and not isinstance(value, str) and pd.isna(value):
            out[key] = None
    out["deadline"] = deadline(out["status"], out["due_at"], out["warn_at"], out["resolved_at"], now)
    return {field: out[field] for field in PUBLIC_FIELDS}


# --------------------------------------------------------------------------- the trail


def state_from_trail(trail: Iterable[Mapping[str, Any]], order_id: str = "?") -> str:
    """Replay an order's trail (oldest first) through :data:`TRANSITIONS`; return its state.

    Raises :class:`InvalidTransition` if a row is not a legal step from the
    state the rows before it lead to, and ParameterError if the trail does
    not start with ``received``.

    Examples
    --------
    >>> state_from_trail([{"action": "received"}, {"action": "dispatched"}, {"action": "returned"}])
    'returned'
    """
    state = None
    for row in trail:
        if state is None:
            if row["action"] != "received":
                raise ParameterError(f"trail of {order_id!r} starts with {row['action']!r}; expected 'received'")
            state = "received"
            continue
        state = next_state(order_id, state, row["action"])
    if state is None:
        raise ParameterError(f"trail of {order_id!r} is empty; expected at least the 'received' row")
    return state


def check_trail(orders: pd.DataFrame, trail: pd.DataFrame) -> pd.DataFrame:
    """Orders whose stored state differs from the state their trail replays to.

    ``trail`` needs ``order_id``, ``action``, ``from_state``, ``to_state``
    in the order rows were written (e.g. sorted by ``trail_id``). Every row
    must be a legal step (:data:`TRANSITIONS`) starting where the row before
    it ended, the first one ``received``. Vectorised (a whole city's trail
    in about a second). Returns the offending orders with columns
    ``order_id, status, replayed, problem`` (empty when all is consistent).

    Examples
    --------
    >>> import pandas as pd
    >>> trail = pd.DataFrame({"order_id": ["A", "A"], "action": ["received", "dispatched"],
    ...                       "from_state": [None, "received"], "to_state": ["received", "dispatched"]})
    >>> check_trail(pd.DataFrame({"order_id": ["A"], "status": ["dispatched"]}), trail).empty
    True
    """
    missing = [c for c in _TRAIL_COLUMNS if c not in trail.columns]
    if missing:
        raise SchemaError(f"check_trail: trail lacks the columns {missing}")
    rows, last = _replayed_rows(trail)
    broken = rows.loc[~rows["legal"]].groupby("order_id", sort=False).head(1).set_index("order_id")
    status = pd.Series(orders["status"].to_numpy(), index=orders["order_id"].to_numpy())
    problems = []
    for order_id, row in broken.iterrows():
        what = (f"trail starts with {row['action']!r}; expected 'received'" if row["first"] else
                f"trail row {row['from_state']!r} -{row['action']}-> {row['to_state']!r} is not a legal step "
                "from where the row before it ended")
        problems.append((order_id, status.get(order_id), None, what))
    consistent = last.drop(broken.index, errors="ignore")
    held = consistent.index.intersection(status.index)
    differs = held[status[held].to_numpy() != consistent[held].to_numpy()]
    problems += [(o, status[o], consistent[o], "stored state differs from the trail") for o in differs]
    problems += [(o, status[o], None, "no trail") for o in status.index.difference(last.index)]
    problems += [(o, None, None, "trail rows of an unknown order") for o in last.index.difference(status.index)]
    return pd.DataFrame(problems, columns=["order_id", "status", "replayed", "problem"])


def _replayed_rows(trail: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The trail rows with ``first`` (an order's first row) and ``legal`` (a legal step from the row
    before), and each order's last state."""
    rows = trail[list(_TRAIL_COLUMNS)].reset_index(drop=True)
    groups = rows.groupby("order_id", sort=False)
    last = groups["to_state"].last()
    first = (groups.cumcount() == 0).to_numpy()
    previous = groups["to_state"].shift().to_numpy(object)
    steps = {(state, action): after for state, table in TRANSITIONS.items() for action, after in table.items()}
    action, from_state, to_state = (rows[c].to_numpy(object) for c in ("action", "from_state", "to_state"))
    # zip over numpy object arrays: iterating pandas' string columns costs ten times as much
    # a record row (e.g. "replaced") keeps the state it starts from
    expected = np.array([state if act in RECORD_ACTIONS else steps.get((state, act))
                         for state, act in zip(from_state, action)], dtype=object)
    rows["legal"] = np.where(first, (action == "received") & (to_state == "received"),
                             (from_state == previous) & (to_state == expected))
    rows["first"] = first
    return rows, last
