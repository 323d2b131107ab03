"""The 12345 work-order closed loop: states, transitions, working-day deadlines, the trail.

A citizen's call to the 12345 hotline becomes a work order that moves through
a closed loop and is never lost::

    received -> dispatched -> in_progress -> resolved -> closed
                    |  ^           |            |
           returned |  | dispatched|returned    | reopened (citizen not
                    v  |           v            v  satisfied: back to in_progress)
                  returned <-------+        in_progress

plus ``extended``: one due-date extension of up to 10 working days, with a
reason, while the order is dispatched or in progress. :data:`TRANSITIONS`
is the whole table; any other step raises
:class:`~jngis.errors.InvalidTransition` naming the order, its state and the
steps allowed from it. ``returned``, ``reopened`` and ``extended`` need a
note (the reason).

Deadlines (Shandong rule)
-------------------------
An order must be resolved within :data:`RESOLVE_WORKING_DAYS` (5) working
days of its dispatch: the due time is the same time of day on the 5th working
day after the dispatch day (an order dispatched on a Saturday is due on the
5th working day after that Saturday). Creating an order already sets a due
time, counted from its receipt; each dispatch (re-dispatch after a return
included) and each reopening restarts the 5-day clock. One extension adds
up to :data:`MAX_EXTENSION_WORKING_DAYS` (10) working days to the due time.
The deadline of an open order is ``"warning"`` from one working day before
its due time (``warn_at``) and ``"overdue"`` after it; a resolved or closed
order's deadline is ``"met"`` or ``"late"``.

Working days
------------
Working days follow the official calendar of the State Council: weekends
and public holidays are off, and the make-up working days (调休, e.g. Sunday
28 September and Saturday 11 October 2025 around National Day) are on. The
dates come from the ``chinese-calendar`` package (PyPI ``chinese-calendar``),
chosen because it is the maintained source that records the make-up working
days, not only the holidays, for every year since 2004, and is updated each
November when the next year's schedule is published (``holidays``'s China
calendar does not know every make-up working day). Past the last year it
knows (2026 for chinese-calendar 1.11) no one knows the holidays yet, so
:class:`WorkCalendar` never guesses: by default a count that reaches an
unknown year raises :class:`~jngis.errors.CalendarRangeError`. An operator
can enter the official dates as soon as they are published
(``WorkCalendar(holidays=..., workdays=..., last_year=2027)``) or choose
``WorkCalendar(beyond="weekends")``, which counts weekends only there and
issues a :class:`~jngis.errors.CalendarWarning` on every such count.

Times are naive datetimes in China Standard Time (as in the sample city);
timezone-aware times are converted to it.

Examples
--------
>>> import datetime as dt
>>> from jngis.workorders import CALENDAR, allowed_actions
>>> allowed_actions("resolved")
('closed', 'reopened')
>>> # dispatched on Friday 26 Sep 2025: National Day week off, Sunday 28 Sep and
>>> # Saturday 11 Oct are make-up working days
>>> CALENDAR.add_working_days(dt.datetime(2025, 9, 26, 15, 0), 5)
datetime.datetime(2025, 10, 10, 15, 0)
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jngis import crs as jcrs
from jngis.errors import (
    CalendarRangeError,
    CalendarWarning,
    CRSError,
    InputTypeError,
    InvalidTransition,
    NotFoundError,
    ParameterError,
    SchemaError,
)
from jngis.layers import WORKORDER_STATES

__all__ = [
    "STATES",
    "OPEN_STATES",
    "FINISHED_STATES",
    "ACTIONS",
    "TRANSITIONS",
    "NOTE_REQUIRED",
    "RESOLVE_WORKING_DAYS",
    "MAX_EXTENSION_WORKING_DAYS",
    "WARNING_WORKING_DAYS",
    "DEADLINES",
    "PUBLIC_FIELDS",
    "PERSONAL_FIELDS",
    "INPUT_CRS",
    "WorkCalendar",
    "CALENDAR",
    "allowed_actions",
    "next_state",
    "plan_creation",
    "plan_transition",
    "state_from_trail",
    "check_trail",
    "deadline",
    "deadlines",
    "public_order",
    "now_cst",
    "to_cst",
    "synthetic_trail",
    "read_order_table",
    "clean_order_rows",
]

#: Every state of an order (the same tuple as :data:`jngis.layers.WORKORDER_STATES`).
STATES: tuple[str, ...] = WORKORDER_STATES
#: States in which the order still waits for its problem to be solved.
OPEN_STATES: tuple[str, ...] = ("received", "dispatched", "in_progress", "returned")
#: States in which the problem is solved (resolved, possibly closed after feedback).
FINISHED_STATES: tuple[str, ...] = ("resolved", "closed")
#: Steps an order can take (the ``to`` of :meth:`Store.transition`).
ACTIONS: tuple[str, ...] = (
    "dispatched", "in_progress", "resolved", "closed", "returned", "reopened", "extended",
)
#: state -> {step: state after the step}. Anything missing is refused.
TRANSITIONS: dict[str, dict[str, str]] = {
    "received": {"dispatched": "dispatched"},
    "dispatched": {"in_progress": "in_progress", "returned": "returned", "extended": "dispatched"},
    "in_progress": {"resolved": "resolved", "returned": "returned", "extended": "in_progress"},
    "returned": {"dispatched": "dispatched"},
    "resolved": {"closed": "closed", "reopened": "in_progress"},
    "closed": {},
}
#: Steps that must give a reason (``note``).
NOTE_REQUIRED = frozenset({"returned", "reopened", "extended"})
RESOLVE_WORKING_DAYS = 5
MAX_EXTENSION_WORKING_DAYS = 10
WARNING_WORKING_DAYS = 1
#: Values of an order's ``deadline``: open orders ok / warning / overdue, finished ones met / late.
DEADLINES = ("ok", "warning", "overdue", "met", "late")
#: The fields of an order anyone may see (API, tiles, GeoJSON, stats).
PUBLIC_FIELDS: tuple[str, ...] = (
    "order_id", "category", "description", "status", "deadline",
    "received_at", "dispatched_at", "due_at", "warn_at", "resolved_at", "closed_at",
    "extended_days", "satisfied",
    "district_code", "street_code", "community_code", "grid_code",
    "lon", "lat", "updated_at",
)
#: Personal data: stored, shown only by the store's explicitly private methods.
PERSONAL_FIELDS: tuple[str, ...] = ("caller_name", "caller_phone")
#: Coordinate systems a location may come in, and the function that turns it into WGS84.
INPUT_CRS = {
    "wgs84": None,
    "cgcs2000": None,  # equal to WGS84 at map accuracy
    "gcj02": jcrs.gcj02_to_wgs84,
    "bd09": jcrs.bd09_to_wgs84,
}

_CST = "Asia/Shanghai"
_MAX_TEXT = 4000


# --------------------------------------------------------------------------- time


def now_cst() -> dt.datetime:
    """The current time in China Standard Time, naive, to the second."""
    return pd.Timestamp.now(tz=_CST).tz_localize(None).floor("s").to_pydatetime()


def to_cst(value: Any, parameter: str = "at") -> dt.datetime:
    """A time as a naive China-Standard-Time datetime to the second.

    Accepts datetimes, pandas Timestamps and ISO strings; aware times are
    converted to China Standard Time, naive ones are taken as already in it.

    Examples
    --------
    >>> to_cst("2025-10-01T02:00:00Z")
    datetime.datetime(2025, 10, 1, 10, 0)
    """
    if isinstance(value, (dt.datetime, pd.Timestamp, np.datetime64)):
        stamp = pd.Timestamp(value)
    elif isinstance(value, dt.date):
        stamp = pd.Timestamp(value)
    elif isinstance(value, str):
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError):
            raise ParameterError(
                f"{parameter}={value!r} is not a time; expected an ISO time such as '2025-10-09 14:30'"
            ) from None
    else:
        raise InputTypeError(f"{parameter} is a {type(value).__name__}; expected a datetime or an ISO string")
    if pd.isna(stamp):
        raise ParameterError(f"{parameter}={value!r} is not a time; expected a datetime")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(_CST).tz_localize(None)
    return stamp.floor("s").to_pydatetime()


# --------------------------------------------------------------------------- calendar


class WorkCalendar:
    """Official Chinese working days (holidays and make-up working days).

    Parameters
    ----------
    beyond : {"raise", "weekends"}
        What a count reaching a year the schedule does not cover does:
        raise :class:`~jngis.errors.CalendarRangeError` (default) or count
        Monday-Friday there and warn with :class:`~jngis.errors.CalendarWarning`.
    holidays, workdays : iterable of dates
        Official dates to add to chinese-calendar's (e.g. next year's schedule
        as soon as the State Council publishes it).
    last_year : int, optional
        The last year the schedule (with ``holidays``/``workdays``) covers.

    Examples
    --------
    >>> import datetime as dt
    >>> cal = WorkCalendar()
    >>> cal.is_working_day(dt.date(2025, 10, 11))   # Saturday, make-up working day
    True
    >>> cal.is_working_day(dt.date(2025, 10, 6))    # Monday in the National Day week
    False
    """

    def __init__(self, *, beyond: str = "raise", holidays: Iterable[dt.date] = (),
                 workdays: Iterable[dt.date] = (), last_year: int | None = None) -> None:
        import chinese_calendar

        if beyond not in ("raise", "weekends"):
            raise ParameterError(f"WorkCalendar: beyond={beyond!r}; expected 'raise' or 'weekends'")
        try:
            self.source = f"chinese-calendar {chinese_calendar.__version__}"
        except AttributeError:  # pragma: no cover - every release has __version__
            self.source = "chinese-calendar"
        extra_holidays = [pd.Timestamp(d).date() for d in holidays]
        extra_workdays = [pd.Timestamp(d).date() for d in workdays]
        off = set(chinese_calendar.constants.holidays) | set(extra_holidays)
        on = (set(chinese_calendar.constants.workdays) - set(extra_holidays)) | set(extra_workdays)
        off -= set(extra_workdays)
        package_years = {d.year for d in chinese_calendar.constants.holidays}
        self.first_year = min(package_years)
        self.last_year = max(package_years) if last_year is None else int(last_year)
        if self.last_year < self.first_year:
            raise ParameterError(
                f"WorkCalendar: last_year={last_year!r}; expected a year from {self.first_year} on"
            )
        self.beyond = beyond
        self._known_start = np.datetime64(f"{self.first_year}-01-01", "D")
        self._known_end = np.datetime64(f"{self.last_year + 1}-01-01", "D")
        # with beyond="weekends" the table runs on 20 years of plain weeks past the schedule
        end = self._known_end + (np.timedelta64(7305, "D") if beyond == "weekends" else np.timedelta64(0, "D"))
        days = np.arange(self._known_start, end)
        weekday = (days.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        working = weekday < 5
        index = {d: i for d, i in zip(days.astype(object), range(len(days)))}
        for day in off:
            if day in index:
                working[index[day]] = False
        for day in on:
            if day in index:
                working[index[day]] = True
        self._workdays = days[working]

    def __repr__(self) -> str:
        return f"WorkCalendar({self.source}, years {self.first_year}-{self.last_year}, beyond={self.beyond!r})"

    def _check(self, days: np.ndarray, results: np.ndarray | None = None) -> None:
        probe = days if results is None else np.concatenate([days, results])
        if probe.size == 0:
            return
        early = probe < self._known_start
        late = probe >= self._known_end
        if early.any() or (late.any() and self.beyond == "raise"):
            raise self._range_error(f"the count reaches {probe[early | late][0]}")
        if late.any():
            warnings.warn(
                f"working days: {probe[late][0]} lies after {self.last_year}, the last year {self.source} "
                "knows; counted Monday-Friday only, holidays and make-up days unknown",
                CalendarWarning, stacklevel=3,
            )

    def _range_error(self, what: str) -> CalendarRangeError:
        return CalendarRangeError(
            f"working days: {what}, outside {self.first_year}-{self.last_year}, the years whose official "
            f"holidays and make-up working days {self.source} knows; expected dates inside them. The "
            "schedule of a new year is published each November: upgrade (pip install -U chinese-calendar), "
            "or pass the official dates with WorkCalendar(holidays=..., workdays=..., last_year=...), or "
            "choose WorkCalendar(beyond='weekends') to count weekends only there, with a warning"
        )

    def is_working_day(self, day: dt.date | str) -> bool:
        """Whether ``day`` is an official working day."""
        day64 = np.datetime64(pd.Timestamp(day).date(), "D")
        self._check(np.array([day64]))
        pos = np.searchsorted(self._workdays, day64)
        return bool(pos < len(self._workdays) and self._workdays[pos] == day64)

    def add_working_days(self, when, days):
        """The same time of day ``days`` working days after (or before, if negative) ``when``.

        For ``days > 0`` the result falls on the ``days``-th working day after
        the day of ``when`` (whether or not that day is itself a working day);
        for ``days < 0`` on the ``-days``-th working day before it; ``days == 0``
        returns ``when``. Vectorised: ``when`` may be a datetime or an array /
        Series / DatetimeIndex of them (NaT stays NaT), ``days`` an int or an
        array of the same length.

        Raises
        ------
        CalendarRangeError
            If the count reaches a year the schedule does not cover (see the
            class's ``beyond``).

        Examples
        --------
        >>> import datetime as dt
        >>> CALENDAR.add_working_days(dt.datetime(2025, 10, 13, 15, 0), -1)  # the Saturday make-up day
        datetime.datetime(2025, 10, 11, 15, 0)
        """
        scalar = isinstance(when, (dt.datetime, pd.Timestamp, np.datetime64, str))
        if scalar:
            stamps = pd.DatetimeIndex([to_cst(when, "when")])
        else:
            try:
                stamps = pd.DatetimeIndex(when)
            except (TypeError, ValueError):
                raise InputTypeError(
                    f"add_working_days: when is a {type(when).__name__}; expected datetimes"
                ) from None
            if stamps.tz is not None:
                stamps = stamps.tz_convert(_CST).tz_localize(None)
        steps = np.asarray(days)
        if not np.issubdtype(steps.dtype, np.integer):
            raise ParameterError(f"add_working_days: days={days!r}; expected whole numbers of working days")
        steps = np.broadcast_to(steps, stamps.shape).astype(np.int64)
        present = ~stamps.isna()
        out = np.full(stamps.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
        if present.any():
            stamp = stamps[present]
            step = steps[present]
            day = stamp.normalize().to_numpy().astype("datetime64[D]")
            time_of_day = (stamp - stamp.normalize()).to_numpy()
            after = np.searchsorted(self._workdays, day, side="right") + step - 1
            before = np.searchsorted(self._workdays, day, side="left") + step
            position = np.where(step > 0, after, before)
            outside = (position < 0) | (position >= len(self._workdays))
            if outside.any():
                where = "before" if step[outside][0] < 0 else "past"
                raise self._range_error(f"counting {int(step[outside][0])} working days from "
                                        f"{day[outside][0]} goes {where} the schedule")
            result_day = np.where(step == 0, day, self._workdays[np.clip(position, 0, len(self._workdays) - 1)])
            self._check(day, result_day)
            out[present] = result_day.astype("datetime64[ns]") + time_of_day
        if scalar:
            return pd.Timestamp(out[0]).to_pydatetime()
        if isinstance(when, pd.Series):
            return pd.Series(out, index=when.index, name=when.name)
        return pd.DatetimeIndex(out)


#: The default calendar: chinese-calendar's schedule; raises past the years it knows.
CALENDAR = WorkCalendar()


# --------------------------------------------------------------------------- transitions


def allowed_actions(state: str) -> tuple[str, ...]:
    """The steps allowed from ``state``.

    Examples
    --------
    >>> allowed_actions("in_progress")
    ('resolved', 'returned', 'extended')
    """
    if state not in TRANSITIONS:
        raise ParameterError(f"state={state!r} is not a work-order state; expected one of {', '.join(STATES)}")
    return tuple(TRANSITIONS[state])


def next_state(order_id: str, state: str, action: str) -> str:
    """The state after ``action``, or :class:`InvalidTransition`.

    Examples
    --------
    >>> next_state("W1", "resolved", "reopened")
    'in_progress'
    >>> next_state("W1", "closed", "reopened")
    Traceback (most recent call last):
    ...
    jngis.errors.InvalidTransition: work order 'W1' is 'closed': it cannot go to 'reopened'; allowed next: none (the order is closed)
    """
    if action not in ACTIONS:
        raise ParameterError(f"to={action!r} is not a work-order step; expected one of {', '.join(ACTIONS)}")
    allowed = allowed_actions(state)
    if action not in allowed:
        raise InvalidTransition(order_id, state, action, allowed)
    return TRANSITIONS[state][action]


def _text(value: Any, parameter: str, *, required: bool, limit: int = _MAX_TEXT) -> str | None:
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
    due = calendar.add_working_days(at, RESOLVE_WORKING_DAYS)
    fields = {
        "category": category, "description": description, "status": "received",
        "received_at": at, "dispatched_at": None, "due_at": due,
        "warn_at": calendar.add_working_days(due, -WARNING_WORKING_DAYS),
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
    order_id = str(order["order_id"])
    state = order["status"]
    if action not in ACTIONS:
        raise ParameterError(f"to={action!r} is not a work-order step; expected one of {', '.join(ACTIONS)}")
    new_state = next_state(order_id, state, action)
    if action == "extended" and order.get("extended_days") is not None and not pd.isna(order["extended_days"]):
        allowed = tuple(a for a in allowed_actions(state) if a != "extended")
        raise InvalidTransition(order_id, state, action, allowed,
                                f"already extended once, by {int(order['extended_days'])} working days")
    who = _text(who, "who", required=True, limit=100)
    note = _text(note, "note", required=action in NOTE_REQUIRED)
    at = now_cst() if at is None else to_cst(at)
    if last_at is not None and at < last_at:
        raise ParameterError(
            f"at={at:%Y-%m-%d %H:%M:%S} is before the order's last step at {last_at:%Y-%m-%d %H:%M:%S}; "
            "expected a time at or after it"
        )
    if days is not None and action != "extended":
        raise ParameterError(f"days={days!r} is only for the 'extended' step, not {action!r}")
    if satisfied is not None and action != "closed":
        raise ParameterError(f"satisfied={satisfied!r} is only for the 'closed' step, not {action!r}")
    if satisfied is not None and not isinstance(satisfied, (bool, np.bool_)):
        raise InputTypeError(f"satisfied is a {type(satisfied).__name__}; expected True or False")
    changes: dict[str, Any] = {"status": new_state, "updated_at": at}
    if action in ("dispatched", "reopened"):
        due = calendar.add_working_days(at, RESOLVE_WORKING_DAYS)
        changes.update(due_at=due, warn_at=calendar.add_working_days(due, -WARNING_WORKING_DAYS))
        if action == "dispatched":
            changes["dispatched_at"] = at
        else:
            changes.update(resolved_at=None, satisfied=False)
    elif action == "resolved":
        changes["resolved_at"] = at
    elif action == "closed":
        changes["closed_at"] = at
        if satisfied is not None:
            changes["satisfied"] = bool(satisfied)
    elif action == "extended":
        days = MAX_EXTENSION_WORKING_DAYS if days is None else days
        if isinstance(days, bool) or not isinstance(days, (int, np.integer)) \
                or not 1 <= days <= MAX_EXTENSION_WORKING_DAYS:
            raise ParameterError(
                f"days={days!r}; expected a whole number of working days from 1 to {MAX_EXTENSION_WORKING_DAYS}"
            )
        base = order.get("due_at")
        if base is None or pd.isna(base):
            base = at
        due = calendar.add_working_days(pd.Timestamp(base).to_pydatetime(), int(days))
        changes.update(due_at=due, warn_at=calendar.add_working_days(due, -WARNING_WORKING_DAYS),
                       extended_days=int(days))
    trail = {"action": action, "from_state": state, "to_state": new_state, "who": who, "at": at, "note": note}
    return changes, trail


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
    missing = [c for c in ("order_id", "action", "from_state", "to_state") if c not in trail.columns]
    if missing:
        raise SchemaError(f"check_trail: trail lacks the columns {missing}")
    rows = trail[["order_id", "action", "from_state", "to_state"]].reset_index(drop=True)
    groups = rows.groupby("order_id", sort=False)
    first = (groups.cumcount() == 0).to_numpy()
    previous = groups["to_state"].shift().to_numpy(object)
    steps = {(state, action): after for state, table in TRANSITIONS.items() for action, after in table.items()}
    expected = np.array([steps.get(pair) for pair in zip(rows["from_state"], rows["action"])], dtype=object)
    action, from_state, to_state = (rows[c].to_numpy(object) for c in ("action", "from_state", "to_state"))
    legal = np.where(first, (action == "received") & (to_state == "received"),
                     (from_state == previous) & (to_state == expected))
    rows["legal"], rows["first"] = legal, first
    last = groups["to_state"].last()
    broken = rows.loc[~legal].groupby("order_id", sort=False).head(1).set_index("order_id")
    problems = []
    status = pd.Series(orders["status"].to_numpy(), index=orders["order_id"].to_numpy())
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


# --------------------------------------------------------------------------- deadlines


def deadline(status: str, due_at, warn_at, resolved_at=None, now: Any = None) -> str | None:
    """``"ok"``, ``"warning"``, ``"overdue"`` (open orders) or ``"met"``, ``"late"`` (finished ones).

    ``None`` when the order has no due time.

    Examples
    --------
    >>> import datetime as dt
    >>> due, warn = dt.datetime(2025, 10, 13, 15), dt.datetime(2025, 10, 11, 15)
    >>> [deadline("in_progress", due, warn, now=dt.datetime(2025, 10, d, 16)) for d in (10, 11, 13)]
    ['ok', 'warning', 'overdue']
    """
    now = now_cst() if now is None else to_cst(now, "now")
    if due_at is None or pd.isna(due_at):
        return None
    due_at = pd.Timestamp(due_at)
    if status in ("resolved", "closed"):
        if resolved_at is None or pd.isna(resolved_at):
            return None
        return "met" if pd.Timestamp(resolved_at) <= due_at else "late"
    if now > due_at:
        return "overdue"
    if warn_at is not None and not pd.isna(warn_at) and now >= pd.Timestamp(warn_at):
        return "warning"
    return "ok"


def deadlines(frame: pd.DataFrame, now: Any = None) -> pd.Series:
    """:func:`deadline` for every row of a table with status, due_at, warn_at, resolved_at."""
    now = np.datetime64(now_cst() if now is None else to_cst(now, "now"), "ns")
    due = pd.to_datetime(frame["due_at"]).to_numpy("datetime64[ns]")
    warn = pd.to_datetime(frame["warn_at"]).to_numpy("datetime64[ns]") if "warn_at" in frame else due
    resolved = pd.to_datetime(frame["resolved_at"]).to_numpy("datetime64[ns]")
    finished = frame["status"].isin(["resolved", "closed"]).to_numpy()
    out = np.where(now > due, "overdue", np.where(now >= warn, "warning", "ok")).astype(object)
    out[finished] = np.where(resolved[finished] <= due[finished], "met", "late")
    out[np.isnat(due) | (finished & np.isnat(resolved))] = None
    return pd.Series(out, index=frame.index, name="deadline", dtype=object)


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


# --------------------------------------------------------------------------- history


def synthetic_trail(orders: pd.DataFrame, *, who: str = "history") -> pd.DataFrame:
    """The trail implied by a historical work-order layer (as in the sample city).

    Uses ``received_at``, ``dispatched_at``, ``resolved_at``, ``closed_at``
    and ``status``; the acceptance (``in_progress``) is put halfway to the
    next event, at most one hour after dispatch; a returned order was
    returned half an hour after dispatch. Replaying each order's rows gives
    its ``status``. Columns: order_id, action, from_state, to_state, who,
    at, note; sorted by order then time.

    Examples
    --------
    >>> import pandas as pd
    >>> orders = pd.DataFrame({"order_id": ["A"], "status": ["closed"],
    ...     "received_at": pd.to_datetime(["2025-10-09 08:00"]), "dispatched_at": pd.to_datetime(["2025-10-09 09:00"]),
    ...     "resolved_at": pd.to_datetime(["2025-10-10 09:00"]), "closed_at": pd.to_datetime(["2025-10-11 09:00"])})
    >>> synthetic_trail(orders)["action"].tolist()
    ['received', 'dispatched', 'in_progress', 'resolved', 'closed']
    """
    missing = [c for c in ("order_id", "status", "received_at", "dispatched_at", "resolved_at", "closed_at")
               if c not in orders.columns]
    if missing:
        raise SchemaError(f"synthetic_trail: orders lack the columns {missing}")
    status = orders["status"].to_numpy(object)
    unknown = ~np.isin(status, STATES)
    if unknown.any():
        raise SchemaError(f"synthetic_trail: status {status[unknown][0]!r}; expected one of {', '.join(STATES)}")
    ids = orders["order_id"].astype(str).to_numpy(object)
    received = pd.to_datetime(orders["received_at"]).to_numpy("datetime64[ns]")
    dispatched = pd.to_datetime(orders["dispatched_at"]).to_numpy("datetime64[ns]")
    resolved = pd.to_datetime(orders["resolved_at"]).to_numpy("datetime64[ns]")
    closed = pd.to_datetime(orders["closed_at"]).to_numpy("datetime64[ns]")
    hour = np.timedelta64(3600, "s")
    next_event = np.where(np.isnat(resolved), dispatched + 2 * hour, resolved)
    accepted = dispatched + np.minimum((next_event - dispatched) // 2, hour)
    needs_dispatch = status != "received"
    accepted_rows = np.isin(status, ["in_progress", "resolved", "closed"])
    if np.isnat(dispatched[needs_dispatch]).any():
        raise SchemaError("synthetic_trail: an order past 'received' has no dispatched_at")
    parts = []
    order_pos = np.arange(len(orders))

    def rows(mask, rank, action, from_state, to_state, at, note=None):
        parts.append(pd.DataFrame({
            "_order": order_pos[mask], "_rank": rank, "order_id": ids[mask], "action": action,
            "from_state": from_state, "to_state": to_state, "who": who, "at": at[mask], "note": note,
        }))

    everyone = np.ones(len(orders), bool)
    rows(everyone, 0, "received", None, "received", received)
    rows(needs_dispatch, 1, "dispatched", "received", "dispatched", dispatched)
    rows(status == "returned", 2, "returned", "dispatched", "returned", dispatched + hour // 2,
         "历史工单：非本单位职责，退回派单")
    rows(accepted_rows, 2, "in_progress", "dispatched", "in_progress", accepted)
    done = np.isin(status, ["resolved", "closed"])
    if np.isnat(resolved[done]).any() or np.isnat(closed[status == "closed"]).any():
        raise SchemaError("synthetic_trail: a resolved or closed order lacks resolved_at / closed_at")
    rows(done, 3, "resolved", "in_progress", "resolved", resolved)
    rows(status == "closed", 4, "closed", "resolved", "closed", closed)
    trail = pd.concat(parts, ignore_index=True).sort_values(["_order", "_rank"], kind="stable")
    return trail.drop(columns=["_order", "_rank"]).reset_index(drop=True)


# --------------------------------------------------------------------------- bulk import

#: Column names accepted in a hotline export, per field (lower-cased, stripped).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "lon": ("lon", "lng", "long", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
    "category": ("category", "type", "类别", "问题类别", "问题类型", "事项类别", "工单类型"),
    "description": ("description", "content", "text", "诉求内容", "问题描述", "内容", "描述"),
    "caller_name": ("caller_name", "name", "来电人", "来电人姓名", "姓名", "联系人"),
    "caller_phone": ("caller_phone", "phone", "tel", "来电号码", "联系电话", "电话"),
    "received_at": ("received_at", "received", "time", "受理时间", "来电时间", "登记时间"),
    "order_id": ("order_id", "id", "工单编号", "工单号", "编号"),
}


def read_order_table(path: str | Path) -> pd.DataFrame:
    """Read a hotline export (CSV, or Excel .xlsx/.xls) as text, one column per field.

    Columns are matched by :data:`COLUMN_ALIASES` (English or Chinese
    headers); every value is kept as text for :func:`clean_order_rows`.
    The index is the spreadsheet row number (the header is row 1).
    """
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"import: file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        elif suffix in (".xlsx", ".xlsm", ".xls"):
            table = pd.read_excel(path, dtype=str, keep_default_na=False)
        else:
            raise ParameterError(f"import: file {str(path)!r} has the suffix {suffix!r}; expected .csv or .xlsx")
    except UnicodeDecodeError:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="gb18030")
    except (ValueError, OSError) as exc:
        if isinstance(exc, ParameterError):
            raise
        raise SchemaError(f"import: cannot read {str(path)!r} as a table ({exc})") from None
    lookup = {str(c).strip().lower(): c for c in table.columns}
    renamed = {}
    for field, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in lookup and lookup[alias] not in renamed:
                renamed[lookup[alias]] = field
                break
    table = table.rename(columns=renamed)[[c for c in renamed.values()]]
    for field in ("lon", "lat", "category"):
        if field not in table.columns:
            raise SchemaError(
                f"import: {str(path)!r} has no {field} column; expected one named "
                f"{' / '.join(COLUMN_ALIASES[field])} (columns found: {list(lookup)})"
            )
    table.index = pd.RangeIndex(2, len(table) + 2, name="row")
    return table


def clean_order_rows(table: pd.DataFrame, *, crs: str = "wgs84",
                     calendar: WorkCalendar = CALENDAR) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check the rows of a hotline export; return ``(good, bad)``.

    ``good`` has WGS84 ``lon``/``lat`` and typed fields (``received_at`` a
    datetime, missing ones filled by the store), indexed by row number;
    ``bad`` has columns ``row`` and ``reason``. Placement (inside Jinan) is
    checked by the store.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"lon": ["117.02", "abc"], "lat": ["36.66", "36.6"],
    ...                       "category": ["环境卫生", "环境卫生"]}, index=[2, 3])
    >>> good, bad = clean_order_rows(table)
    >>> len(good), bad.reason.tolist()
    (1, ["lon 'abc' is not a number"])
    """
    if crs not in INPUT_CRS:
        raise _crs_error(crs)
    table = table.copy()
    for field in COLUMN_ALIASES:
        if field not in table.columns:
            table[field] = ""
    text = {c: table[c].fillna("").astype(str).str.strip() for c in COLUMN_ALIASES}
    reasons = pd.Series("", index=table.index, dtype=object)

    def flag(mask, message):
        mask = pd.Series(mask, index=table.index) & (reasons == "")
        reasons[mask] = message if isinstance(message, str) else message[mask]

    numbers = {}
    for axis, low, high in (("lon", -180, 180), ("lat", -90, 90)):
        values = pd.to_numeric(text[axis], errors="coerce")
        flag(text[axis] == "", f"{axis} is missing")
        flag(values.isna(), axis + " " + text[axis].map(repr) + " is not a number")
        flag(~values.between(low, high), axis + " " + text[axis] + f" is outside {low}..{high} degrees")
        numbers[axis] = values
    flag(text["category"] == "", "category is missing")
    flag(text["category"].str.len() > 50, "category is longer than 50 characters")
    flag(text["description"].str.len() > _MAX_TEXT, f"description is longer than {_MAX_TEXT} characters")
    received = pd.to_datetime(text["received_at"].where(text["received_at"] != ""), errors="coerce",
                              format="mixed")
    flag((text["received_at"] != "") & received.isna(),
         "received_at " + text["received_at"].map(repr) + " is not a time")
    if received.dt.tz is not None:  # pragma: no cover - mixed strings parse naive
        received = received.dt.tz_convert(_CST).dt.tz_localize(None)
    ids = text["order_id"]
    repeated = (ids != "") & ids.duplicated(keep="first")
    flag(repeated, "order_id " + ids + " appears earlier in the file")
    good_mask = reasons == ""
    lon = numbers["lon"][good_mask].to_numpy(float)
    lat = numbers["lat"][good_mask].to_numpy(float)
    convert = INPUT_CRS[crs]
    if convert is not None and len(lon):
        lon, lat = convert(lon, lat)
    good = pd.DataFrame({
        "lon": np.asarray(lon, float), "lat": np.asarray(lat, float),
        "category": text["category"][good_mask],
        "description": text["description"][good_mask].replace("", None),
        "caller_name": text["caller_name"][good_mask].replace("", None),
        "caller_phone": text["caller_phone"][good_mask].replace("", None),
        "received_at": received[good_mask].dt.floor("s"),
        "order_id": ids[good_mask].replace("", None),
    }, index=table.index[good_mask])
    bad = pd.DataFrame({"row": table.index[~good_mask], "reason": reasons[~good_mask].to_numpy()})
    return good, bad


def _crs_error(crs: Any) -> CRSError:
    return CRSError(f"crs={crs!r} is not a supported input coordinate system; expected one of "
                    f"{', '.join(map(repr, INPUT_CRS))} (GCJ-02 is Amap/Tencent, BD-09 Baidu)")
