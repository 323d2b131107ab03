"""Clocks of the closed loop: China Standard Time, official working days, deadlines.

See :mod:`jngis.workorders` for the Shandong deadline rule and the choice of
the working-day calendar.

Examples
--------
>>> import datetime as dt
>>> CALENDAR.add_working_days(dt.datetime(2025, 9, 26, 15, 0), 5)
datetime.datetime(2025, 10, 10, 15, 0)
"""

from __future__ import annotations

import datetime as dt
import warnings
import zoneinfo
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from jngis.codes import CST, to_cst_naive
from jngis.errors import CalendarRangeError, CalendarWarning, InputTypeError, ParameterError
from jngis.workorders.states import FINISHED_STATES, MERGED_STATES

#: China Standard Time as a tzinfo, for the scalar paths (pandas is ~50x slower on one value).
_CST_ZONE = zoneinfo.ZoneInfo(CST)

__all__ = [
    "RESOLVE_WORKING_DAYS",
    "MAX_EXTENSION_WORKING_DAYS",
    "WARNING_WORKING_DAYS",
    "OFFICE_HOURS",
    "DEADLINES",
    "WorkCalendar",
    "CALENDAR",
    "now_cst",
    "to_cst",
    "due_fields",
    "deadline",
    "deadlines",
]

RESOLVE_WORKING_DAYS = 5
MAX_EXTENSION_WORKING_DAYS = 10
WARNING_WORKING_DAYS = 1
#: Values of an order's ``deadline``: open orders ok / warning / overdue, finished ones met / late.
DEADLINES = ("ok", "warning", "overdue", "met", "late")
#: Office hours of a working day (the working-hour clocks: 签收 within 1 working hour).
OFFICE_HOURS: tuple[tuple[str, str], ...] = (("08:30", "12:00"), ("13:30", "17:30"))
# With beyond="weekends" the table runs on 20 years of plain weeks past the schedule.
_PLAIN_WEEKS_DAYS = 7305


# --------------------------------------------------------------------------- time


def now_cst() -> dt.datetime:
    """The current time in China Standard Time, naive, to the second."""
    return dt.datetime.now(_CST_ZONE).replace(tzinfo=None, microsecond=0)


def to_cst(value: Any, parameter: str = "at") -> dt.datetime:
    """A time as a naive China-Standard-Time datetime to the second.

    Accepts datetimes, pandas Timestamps and ISO strings; aware times are
    converted to China Standard Time, naive ones are taken as already in it.

    Examples
    --------
    >>> to_cst("2025-10-01T02:00:00Z")
    datetime.datetime(2025, 10, 1, 10, 0)
    """
    if type(value) is dt.datetime:  # the common case, without pandas (a work order's times)
        if value.tzinfo is not None:
            value = value.astimezone(_CST_ZONE).replace(tzinfo=None)
        return value.replace(microsecond=0)
    if isinstance(value, (dt.date, pd.Timestamp, np.datetime64)):
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
    return to_cst_naive(stamp).floor("s").to_pydatetime()


# --------------------------------------------------------------------------- calendar


def _official_dates(holidays: Iterable[dt.date], workdays: Iterable[dt.date]) -> tuple[set, set]:
    """Days off and make-up working days: chinese-calendar's, corrected by the operator's."""
    import chinese_calendar

    extra_holidays = {pd.Timestamp(d).date() for d in holidays}
    extra_workdays = {pd.Timestamp(d).date() for d in workdays}
    off = (set(chinese_calendar.constants.holidays) | extra_holidays) - extra_workdays
    on = (set(chinese_calendar.constants.workdays) - extra_holidays) | extra_workdays
    return off, on


def _working_days(start: np.datetime64, end: np.datetime64, off: set, on: set) -> np.ndarray:
    """The sorted working days in ``[start, end)``: Monday-Friday, minus ``off``, plus ``on``."""
    days = np.arange(start, end)
    weekday = (days.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    working = weekday < 5
    first = days[0].astype(object) if len(days) else None
    for flagged, value in ((off, False), (on, True)):
        for day in flagged:
            position = (day - first).days if first is not None else -1
            if 0 <= position < len(days):
                working[position] = value
    return days[working]


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
    office_hours : sequence of (start, end)
        The office hours of a working day as ``"HH:MM"`` pairs, in order
        (default :data:`OFFICE_HOURS`, 08:30-12:00 and 13:30-17:30), for
        :meth:`add_working_hours` and :meth:`working_hours_between`.

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
                 workdays: Iterable[dt.date] = (), last_year: int | None = None,
                 office_hours: Iterable[tuple[str, str]] = OFFICE_HOURS) -> None:
        import chinese_calendar

        self.office_hours, self._segments = _office_segments(office_hours)

        if beyond not in ("raise", "weekends"):
            raise ParameterError(f"WorkCalendar: beyond={beyond!r}; expected 'raise' or 'weekends'")
        self.source = f"chinese-calendar {getattr(chinese_calendar, '__version__', '')}".rstrip()
        off, on = _official_dates(holidays, workdays)
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
        end = self._known_end + np.timedelta64(_PLAIN_WEEKS_DAYS if beyond == "weekends" else 0, "D")
        self._workdays = _working_days(self._known_start, end, off, on)

    def __repr__(self) -> str:
        return f"WorkCalendar({self.source}, years {self.first_year}-{self.last_year}, beyond={self.beyond!r})"

    def _check(self, days: np.ndarray, results: np.ndarray | None = None, stacklevel: int = 3) -> None:
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
                CalendarWarning, stacklevel=stacklevel,
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

    def add_working_days(self, when: Any, days: Any) -> Any:
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
        steps = np.asarray(days)
        if not np.issubdtype(steps.dtype, np.integer):
            raise ParameterError(f"add_working_days: days={days!r}; expected whole numbers of working days")
        if scalar:  # one time (a work order's due time): numpy on the day alone, no DatetimeIndex
            start = to_cst(when, "when")
            shifted = self._shift_days(np.array([np.datetime64(start.date(), "D")]),
                                       np.broadcast_to(steps, (1,)).astype(np.int64))
            return dt.datetime.combine(shifted[0].astype(dt.date), start.time())
        stamps = _stamps(when)
        steps = np.broadcast_to(steps, stamps.shape).astype(np.int64)
        present = ~stamps.isna()
        out = np.full(stamps.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
        if present.any():
            out[present] = self._shift(stamps[present], steps[present])
        if isinstance(when, pd.Series):
            return pd.Series(out, index=when.index, name=when.name)
        return pd.DatetimeIndex(out)

    def _shift(self, stamps: pd.DatetimeIndex, steps: np.ndarray) -> np.ndarray:
        """``stamps`` moved by ``steps`` working days each (no NaT), as datetime64[ns]."""
        day = stamps.normalize().to_numpy().astype("datetime64[D]")
        time_of_day = (stamps - stamps.normalize()).to_numpy()
        return self._shift_days(day, steps, stacklevel=5).astype("datetime64[ns]") + time_of_day

    def _shift_days(self, day: np.ndarray, steps: np.ndarray, stacklevel: int = 4) -> np.ndarray:
        """Days (datetime64[D]) moved by ``steps`` working days each."""
        after = np.searchsorted(self._workdays, day, side="right") + steps - 1
        before = np.searchsorted(self._workdays, day, side="left") + steps
        position = np.where(steps > 0, after, before)
        outside = (position < 0) | (position >= len(self._workdays))
        if outside.any():
            where = "before" if steps[outside][0] < 0 else "past"
            raise self._range_error(f"counting {int(steps[outside][0])} working days from "
                                    f"{day[outside][0]} goes {where} the schedule")
        result_day = np.where(steps == 0, day, self._workdays[np.clip(position, 0, len(self._workdays) - 1)])
        self._check(day, result_day, stacklevel=stacklevel)  # the caller of add_working_days
        return result_day

    # -- office hours
    def _work_seconds(self, stamps: pd.DatetimeIndex) -> np.ndarray:
        """Office seconds from the first day of the schedule to each time (no NaT), int64."""
        day = stamps.normalize().to_numpy().astype("datetime64[D]")
        self._check(day, stacklevel=4)
        time_of_day = (stamps - stamps.normalize()).to_numpy().astype("timedelta64[s]").astype(np.int64)
        position = np.searchsorted(self._workdays, day, side="left")
        on_day = (position < len(self._workdays)) & (
            self._workdays[np.minimum(position, len(self._workdays) - 1)] == day)
        starts, ends = self._segments[:, 0], self._segments[:, 1]
        elapsed = np.clip(time_of_day[:, None] - starts[None, :], 0, (ends - starts)[None, :]).sum(axis=1)
        return position.astype(np.int64) * self._day_seconds + np.where(on_day, elapsed, 0)

    @property
    def _day_seconds(self) -> int:
        return int((self._segments[:, 1] - self._segments[:, 0]).sum())

    def _from_work_seconds(self, work: np.ndarray) -> np.ndarray:
        """The times (datetime64[ns]) of office-second counts: a count ending a day is that day's close."""
        whole, offset = np.divmod(work, self._day_seconds)
        at_close = (offset == 0) & (whole > 0)
        whole, offset = np.where(at_close, whole - 1, whole), np.where(at_close, self._day_seconds, offset)
        if (whole >= len(self._workdays)).any() or (whole < 0).any():
            raise self._range_error("a working-hour count goes past the schedule")
        lengths = self._segments[:, 1] - self._segments[:, 0]
        before = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        segment = np.clip(np.searchsorted(before, offset, side="left") - 1, 0, len(lengths) - 1)
        segment = np.where(offset == 0, 0, segment)
        time_of_day = self._segments[segment, 0] + offset - before[segment]
        days = self._workdays[whole]
        self._check(days, stacklevel=5)
        return days.astype("datetime64[ns]") + time_of_day.astype("timedelta64[s]").astype("timedelta64[ns]")

    def add_working_hours(self, when: Any, hours: Any) -> Any:
        """The time ``hours`` office hours after ``when`` (office hours of working days only).

        A time outside office hours counts from the next opening; a count that
        ends exactly at a closing time ends there (not at the next opening).
        Vectorised like :meth:`add_working_days` (``hours`` >= 0, may be fractional).

        Examples
        --------
        >>> import datetime as dt
        >>> CALENDAR.add_working_hours(dt.datetime(2025, 9, 30, 17, 0), 1)  # National Day week follows
        datetime.datetime(2025, 10, 9, 9, 0)
        >>> CALENDAR.add_working_hours(dt.datetime(2025, 10, 10, 11, 30), 1)  # over the lunch break
        datetime.datetime(2025, 10, 10, 14, 0)
        """
        scalar = isinstance(when, (dt.datetime, pd.Timestamp, np.datetime64, str))
        stamps = pd.DatetimeIndex([to_cst(when, "when")]) if scalar else _stamps(when)
        steps = np.broadcast_to(np.asarray(hours, dtype=float), stamps.shape)
        if not np.isfinite(steps).all() or (steps < 0).any():
            raise ParameterError(f"add_working_hours: hours={hours!r}; expected a number of hours >= 0")
        present = ~stamps.isna()
        out = np.full(stamps.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
        if present.any():
            work = self._work_seconds(stamps[present]) + np.round(steps[present] * 3600).astype(np.int64)
            out[present] = self._from_work_seconds(work)
        if scalar:
            return pd.Timestamp(out[0]).to_pydatetime()
        return pd.Series(out, index=when.index, name=when.name) if isinstance(when, pd.Series) \
            else pd.DatetimeIndex(out)

    def working_hours_between(self, start: Any, end: Any) -> Any:
        """Office hours from ``start`` to ``end`` (negative when ``end`` is earlier); vectorised, NaN for NaT.

        Examples
        --------
        >>> # 1 h before lunch, 4 h after, then 1 h on Saturday (a make-up working day)
        >>> CALENDAR.working_hours_between("2025-10-10 11:00", "2025-10-11 09:30")
        6.0
        """
        scalar = isinstance(start, (dt.datetime, pd.Timestamp, np.datetime64, str))
        first = pd.DatetimeIndex([to_cst(start, "start")]) if scalar else _stamps(start)
        last = pd.DatetimeIndex([to_cst(end, "end")]) if scalar else _stamps(end)
        present = ~(first.isna() | last.isna())
        out = np.full(first.shape, np.nan)
        if present.any():
            out[present] = (self._work_seconds(last[present]) - self._work_seconds(first[present])) / 3600
        return float(out[0]) if scalar else out


def _office_segments(office_hours: Iterable[tuple[str, str]]) -> tuple[tuple[tuple[str, str], ...], np.ndarray]:
    """The office hours checked, and as an array of (start, end) seconds of the day."""
    pairs = tuple((str(pair[0]), str(pair[1])) if len(pair) == 2 else ("", "") for pair in office_hours)
    seconds = []
    for pair in pairs:
        try:
            start, end = (int(t[:2]) * 3600 + int(t[3:5]) * 60 for t in pair if len(t) == 5 and t[2] == ":")
        except (ValueError, TypeError):
            raise ParameterError(f"WorkCalendar: office_hours={office_hours!r}; expected pairs of 'HH:MM' "
                                 "times such as ('08:30', '12:00')") from None
        seconds.append((start, end))
    ordered = all(0 <= s < e <= 86400 for s, e in seconds) and all(
        seconds[i][1] <= seconds[i + 1][0] for i in range(len(seconds) - 1))
    if not seconds or not ordered:
        raise ParameterError(f"WorkCalendar: office_hours={office_hours!r}; expected one or more ('HH:MM', "
                             "'HH:MM') pairs, each starting before it ends, in order, not overlapping")
    return pairs, np.array(seconds, dtype=np.int64)


def _stamps(when: Any) -> pd.DatetimeIndex:
    """Many times as a naive China-Standard-Time DatetimeIndex."""
    try:
        stamps = pd.DatetimeIndex(when)
    except (TypeError, ValueError):
        raise InputTypeError(f"add_working_days: when is a {type(when).__name__}; expected datetimes") from None
    return to_cst_naive(stamps)


#: The default calendar: chinese-calendar's schedule; raises past the years it knows.
CALENDAR = WorkCalendar()


def due_fields(start: Any, working_days: int, calendar: WorkCalendar = CALENDAR) -> dict[str, Any]:
    """``due_at`` ``working_days`` working days after ``start`` and ``warn_at`` one working day before it.

    Examples
    --------
    >>> import datetime as dt
    >>> due_fields(dt.datetime(2025, 9, 30, 16), RESOLVE_WORKING_DAYS)["warn_at"]
    datetime.datetime(2025, 10, 13, 16, 0)
    """
    due = calendar.add_working_days(start, working_days)
    return {"due_at": due, "warn_at": calendar.add_working_days(due, -WARNING_WORKING_DAYS)}


# --------------------------------------------------------------------------- deadlines


def deadline(status: str | None, due_at: Any, warn_at: Any, resolved_at: Any = None, now: Any = None) -> str | None:
    """``"ok"``, ``"warning"``, ``"overdue"`` (open orders) or ``"met"``, ``"late"`` (finished ones).

    ``None`` when the order has no due time, and for a duplicate merged into its master.

    Examples
    --------
    >>> import datetime as dt
    >>> due, warn = dt.datetime(2025, 10, 13, 15), dt.datetime(2025, 10, 11, 15)
    >>> [deadline("in_progress", due, warn, now=dt.datetime(2025, 10, d, 16)) for d in (10, 11, 13)]
    ['ok', 'warning', 'overdue']
    """
    now = now_cst() if now is None else to_cst(now, "now")
    if due_at is None or pd.isna(due_at) or status in MERGED_STATES:
        return None
    due_at = _instant(due_at)
    if status in FINISHED_STATES:
        if resolved_at is None or pd.isna(resolved_at):
            return None
        return "met" if _instant(resolved_at) <= due_at else "late"
    if now > due_at:
        return "overdue"
    if warn_at is not None and not pd.isna(warn_at) and now >= _instant(warn_at):
        return "warning"
    return "ok"


def _instant(value: Any) -> Any:
    """A time to compare: datetimes (Timestamps included) as they are, anything else through pandas."""
    return value if isinstance(value, dt.datetime) else pd.Timestamp(value)


def deadlines(frame: pd.DataFrame, now: Any = None) -> pd.Series:
    """:func:`deadline` for every row of a table with status, due_at, warn_at, resolved_at."""
    now = np.datetime64(now_cst() if now is None else to_cst(now, "now"), "ns")
    due = pd.to_datetime(frame["due_at"]).to_numpy("datetime64[ns]")
    warn = pd.to_datetime(frame["warn_at"]).to_numpy("datetime64[ns]") if "warn_at" in frame else due
    resolved = pd.to_datetime(frame["resolved_at"]).to_numpy("datetime64[ns]")
    finished = frame["status"].isin(FINISHED_STATES).to_numpy()
    out = np.where(now > due, "overdue", np.where(now >= warn, "warning", "ok")).astype(object)
    out[finished] = np.where(resolved[finished] <= due[finished], "met", "late")
    out[np.isnat(due) | (finished & np.isnat(resolved)) | frame["status"].isin(MERGED_STATES).to_numpy()] = None
    return pd.Series(out, index=frame.index, name="deadline", dtype=object)
