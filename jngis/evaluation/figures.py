"""The monthly evaluation of the 12345 loop (月比月评): figures per unit, rankings, the Excel report.

Every figure of a period is computed **as of the period's end**: the orders
counted are those *received* in the period, and their states come from the
trail rows written before the period ended, so a report on November reads
the same in December as it did on 1 December. The definitions, for one unit
(a district, 街道, community, grid or department) and a period
``[start, end)`` (a calendar month, China Standard Time):

``received`` (受理量)
    orders with ``start <= received_at < end`` placed in the unit.
``state at end``
    ``to_state`` of the order's last trail row with ``at < end`` (rows of one
    order in the order they were written, ties in time kept in that order).
``resolved`` (办结量)
    received orders whose state at end is ``resolved`` or ``closed``; their
    *resolve time* is the last ``resolved`` trail row before ``end``.
``resolved_on_time`` (按时办结量)
    resolved orders whose resolve time is ``<= due_at`` (the order's due time;
    the trail does not record how many days an extension added, so an
    extension granted after ``end`` is not undone).
``closed`` (结案量)
    received orders whose state at end is ``closed``.
``overdue_now`` (当前超期量)
    received orders still open at end (state in ``OPEN_STATES``) with ``due_at < end``.
``returned`` / ``extended`` (退单量 / 延期量)
    received orders with at least one ``returned`` / ``extended`` trail row before ``end``
    (orders, not steps).
``callback`` (回访量)
    closed orders with a callback answer. The answer is the order's
    ``callback`` column when it has one (``satisfied`` 满意,
    ``basically_satisfied`` 基本满意, ``not_satisfied`` 不满意), else the
    boolean ``satisfied`` column of the sample city and older exports:
    ``True`` counts as 满意 or 基本满意 (the two-level answer cannot tell them
    apart), ``False`` as 不满意, a blank as no answer.
``satisfied`` / ``dissatisfied`` (满意量 / 不满意量)
    callbacks answered 满意 or 基本满意 / 不满意.
``on_time_rate`` (按时办结率) = resolved_on_time / received
``closure_rate`` (结案率) = closed / received
``callback_rate`` (回访率) = callback / closed
``satisfaction_rate`` (满意率) = satisfied / callback
``dissatisfaction_rate`` (不满意率) = dissatisfied / callback
    each NaN when its denominator is 0. The on-time and closure rates are over
    all orders received, so orders received in the last days of the month that
    are still within their time limit lower them (as in the city's monthly
    tables, which count the month's 受理量).
``median_hours_to_resolve`` (办结用时中位数)
    median over resolved orders of (resolve time - ``received_at``) in hours.
``signed`` / ``signed_on_time`` (签收量 / 按时签收量)
    received orders with a ``sign`` trail row before ``end`` / those whose first
    sign row is no later than the sign deadline: ``sign_working_hours`` (1)
    office hours after the last ``dispatched`` row before it
    (:meth:`jngis.workorders.WorkCalendar.add_working_hours`; for the rules'
    emergency categories, clock hours).
``sign_rate`` (按时签收率) = signed_on_time / signed
``median_hours_to_sign`` (签收用时中位数)
    median over signed orders of (first sign row - the dispatch before it) in clock hours.
``supervised`` (督办量)
    received orders with at least one ``supervise`` row before ``end``.
``rehandled`` (重办量)
    received orders with at least one ``rehandle`` (重办) or ``reopened`` row before ``end``.
``extended`` also counts an extension granted through the department loop: an
``extension_decision`` row before ``end`` of an order whose ``extension_decision``
column (the store's loop row) is ``granted``.
``ratings`` / ``rating_sum`` (街道评价次数 / 评分合计)
    department level only (zero at the others): ratings (1-5) given by 街道 to
    the unit's responses to calls (``calls``: one row per called department)
    made in the period and rated before ``end``.
``mean_rating`` (街道评价均分) = rating_sum / ratings

Duplicates merged into a master (state ``duplicate`` at ``end``) are not counted:
the matter is counted once, with its master.

Counts roll up exactly: summed over the 街道 of a district they give the
district's counts, and over all units the city's (``report.totals``); rates
are recomputed from the summed counts, medians are not summable and are
computed afresh at each level.

**Rankings** (:data:`RANKINGS`): units are ranked on each rate (the best first:
highest, but lowest for 不满意率), ties sharing the better rank (``min``);
units with fewer than ``minimum`` received orders, or with the rate undefined,
are listed in ``report.unranked``, not ranked. Month-on-month: each ranking row
carries the unit's rate and rank in the previous period (same rules, as of
that period's end), ``change`` = rate - previous rate and ``rank_change`` =
previous rank - rank (positive: moved up).

Examples
--------
>>> import pandas as pd
>>> orders = pd.DataFrame({"order_id": ["A", "B"], "category": ["环境卫生"] * 2,
...     "street_code": ["370102001", "370102001"], "satisfied": [True, None],
...     "received_at": pd.to_datetime(["2026-10-05 09:00", "2026-10-20 09:00"]),
...     "due_at": pd.to_datetime(["2026-10-12 09:00", "2026-10-27 09:00"])})
>>> trail = pd.DataFrame({"order_id": ["A", "A", "A", "A", "A", "B", "B"],
...     "action": ["received", "dispatched", "in_progress", "resolved", "closed", "received", "dispatched"],
...     "to_state": ["received", "dispatched", "in_progress", "resolved", "closed", "received", "dispatched"],
...     "at": pd.to_datetime(["2026-10-05 09:00", "2026-10-05 10:00", "2026-10-05 11:00", "2026-10-06 09:00",
...                           "2026-10-07 09:00", "2026-10-20 09:00", "2026-10-20 10:00"])})
>>> report = evaluate(orders, trail, period="2026-10", level="street", minimum=1)
>>> report.figures.loc["370102001", ["received", "resolved_on_time", "closed", "overdue_now"]].tolist()
[2, 1, 1, 1]
>>> float(report.figures.loc["370102001", "median_hours_to_resolve"])
24.0
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from jngis import _checks
from jngis.codes import CODE_DIGITS, KEY_OF_LEVEL, LEVEL_LABELS, LEVEL_NAMES, LEVELS, parent
from jngis.errors import ParameterError, SchemaError, UnassignedPointsWarning
from jngis.workorders.clocks import CALENDAR, WorkCalendar
from jngis.workorders.departments import departments_of
from jngis.workorders.loop import CALLBACK_LEVELS, DEFAULT_RULES, LoopRules
from jngis.workorders.states import FINISHED_STATES, MERGED_STATES, OPEN_STATES

__all__ = ["EVALUATION_LEVELS", "COUNT_COLUMNS", "RATE_COLUMNS", "RANKINGS", "DEPARTMENT_RANKINGS", "Evaluation",
           "evaluate"]

#: Levels a period can be evaluated at.
EVALUATION_LEVELS: tuple[str, ...] = (*LEVEL_NAMES, "department")
#: The counts per unit (they roll up by summing).
COUNT_COLUMNS: tuple[str, ...] = (
    "received", "resolved", "resolved_on_time", "closed", "overdue_now", "returned", "extended",
    "callback", "satisfied", "dissatisfied", "signed", "signed_on_time", "supervised", "rehandled",
    "ratings", "rating_sum",
)
#: rate -> (numerator, denominator).
RATE_COLUMNS: dict[str, tuple[str, str]] = {
    "on_time_rate": ("resolved_on_time", "received"),
    "closure_rate": ("closed", "received"),
    "callback_rate": ("callback", "closed"),
    "satisfaction_rate": ("satisfied", "callback"),
    "dissatisfaction_rate": ("dissatisfied", "callback"),
    "sign_rate": ("signed_on_time", "signed"),
    "mean_rating": ("rating_sum", "ratings"),
}
#: The rates units are ranked on -> True when higher is better.
RANKINGS: dict[str, bool] = {
    "on_time_rate": True, "closure_rate": True, "satisfaction_rate": True, "dissatisfaction_rate": False,
    "sign_rate": True,
}
#: Rankings of departments only: the 街道's ratings of their responses.
DEPARTMENT_RANKINGS: dict[str, bool] = {"mean_rating": True}
_ORDER_COLUMNS = ("order_id", "received_at", "due_at")
_TRAIL_COLUMNS = ("order_id", "action", "to_state", "at")
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_CALLBACK_VALUES = CALLBACK_LEVELS
_CALL_COLUMNS = ("department_code", "called_at", "rating", "rated_at")


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """The figures and rankings of one period at one level (see :mod:`jngis.evaluation`).

    ``figures``: one row per unit (index: the unit's code), the counts of
    :data:`COUNT_COLUMNS`, the rates of :data:`RATE_COLUMNS`,
    ``median_hours_to_resolve`` and ``name`` when names were given.
    ``previous``: the same for the period before. ``rankings``: rate -> table
    (rank, unit, name, rate, received, previous, change, previous_rank,
    rank_change). ``unranked``: units with fewer than ``minimum`` orders.
    ``totals``: the counts summed over all units, with their rates.
    ``unplaced``: orders of the period that have no unit (left out).
    """

    period: str
    level: str
    start: pd.Timestamp
    end: pd.Timestamp
    minimum: int
    figures: pd.DataFrame
    previous: pd.DataFrame
    rankings: dict[str, pd.DataFrame]
    unranked: pd.DataFrame
    totals: pd.Series
    unplaced: int = 0


def evaluate(orders: pd.DataFrame, trail: pd.DataFrame, *, period: str = "2026-11", level: str = "street",
             minimum: int = 10, departments: pd.DataFrame | None = None, catalogue: pd.DataFrame | None = None,
             names: Any = None, calls: pd.DataFrame | None = None, rules: LoopRules = DEFAULT_RULES,
             calendar: WorkCalendar = CALENDAR) -> Evaluation:
    """The figures and rankings of ``period`` at ``level``, as of the period's end.

    Parameters
    ----------
    orders : pandas.DataFrame
        ``order_id``, ``received_at``, ``due_at``, ``satisfied`` or ``callback``,
        and a code column at least as fine as ``level`` (``grid_code``,
        ``community_code``, ``street_code`` or ``district_code``; place points
        first with :func:`jngis.assign`). The department level uses
        ``department_code`` where an order has one, else the catalogue's
        department for its (``category``, district).
    trail : pandas.DataFrame
        ``order_id``, ``action``, ``to_state``, ``at``, rows of an order in
        the order they were written (e.g. :func:`jngis.workorders.synthetic_trail`).
    period : str
        A month, ``"YYYY-MM"``.
    level : {"district", "street", "community", "grid", "department"}
    minimum : int
        Units with fewer received orders are listed in ``unranked``, not ranked.
    departments, catalogue : pandas.DataFrame, optional
        The registry (for names) and the dispatch catalogue
        (:mod:`jngis.workorders.departments`), for ``level="department"``.
    names : mapping or pandas.DataFrame, optional
        Unit code -> name (a DataFrame with the level's key column and ``name``).
    calls : pandas.DataFrame, optional
        The 街道's calls, one row per called department: ``department_code``,
        ``called_at``, ``rating``, ``rated_at`` (:meth:`jngis.store.Store.calls_frame`);
        their ratings feed the department level.
    rules, calendar : LoopRules, WorkCalendar
        The signing clock (office hours and emergency categories).

    Returns
    -------
    Evaluation
    """
    func = "evaluate"
    _checks.choice(func, "level", level, EVALUATION_LEVELS)
    minimum = _checks.integer(func, "minimum", minimum, minimum=1)
    start, end = _period_bounds(func, period)
    _checks.dataframe(func, "orders", orders)
    _checks.dataframe(func, "trail", trail)
    _checks.columns(func, "orders", orders, _ORDER_COLUMNS)
    _checks.columns(func, "trail", trail, _TRAIL_COLUMNS)
    units = _unit_codes(func, orders, level, catalogue)
    unit_names = _unit_names(func, level, names, departments)
    previous_start = (start - pd.DateOffset(months=1))
    loop = _prepare(func, orders, trail, units, rules)
    ratings = _ratings(func, calls) if level == "department" and calls is not None else None
    current, unplaced = _period_figures(loop, start, end, ratings, calendar, rules)
    previous, _ = _period_figures(loop, previous_start, start, ratings, calendar, rules)
    if unplaced:
        warnings.warn(f"{func}: {unplaced} order(s) of {period} have no {level}; they are left out. "
                      f"{unplaced} 件工单无法归属到{level_label(level)}。", UnassignedPointsWarning, stacklevel=2)
    for table in (current, previous):
        if unit_names is not None:
            table.insert(0, "name", table.index.map(lambda c: unit_names.get(c, c)))
    rankings, unranked = _rankings(current, previous, minimum,
                                   {**RANKINGS, **DEPARTMENT_RANKINGS} if level == "department" else RANKINGS)
    return Evaluation(period=period, level=level, start=start, end=end, minimum=minimum, figures=current,
                      previous=previous, rankings=rankings, unranked=unranked,
                      totals=_totals(current), unplaced=unplaced)


# --------------------------------------------------------------------------- inputs


def _period_bounds(func: str, period: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    match = _PERIOD.match(period) if isinstance(period, str) else None
    if match is None:
        raise ParameterError(f"{func}: period={period!r}; expected a month as 'YYYY-MM', e.g. '2026-11'")
    start = pd.Timestamp(int(match.group(1)), int(match.group(2)), 1)
    return start, start + pd.DateOffset(months=1)


def _unit_codes(func: str, orders: pd.DataFrame, level: str, catalogue: pd.DataFrame | None) -> np.ndarray:
    """The unit of each order (None where it has none)."""
    if level == "department":
        return _department_codes(func, orders, catalogue)
    key = KEY_OF_LEVEL[level]
    finer = [lv.key for lv in LEVELS if lv.digits >= CODE_DIGITS[key] and lv.key in orders.columns]
    if not finer:
        raise SchemaError(f"{func}: orders lack a code column for level={level!r}; expected one of "
                          f"{[lv.key for lv in LEVELS if lv.digits >= CODE_DIGITS[key]]} "
                          "(place the orders with jngis.assign first)")
    codes = orders[finer[-1]].astype(object).where(orders[finer[-1]].notna(), None)
    return np.asarray(_parents(func, finer[-1], codes.to_numpy(object), level), dtype=object)


def _parents(func: str, column: str, codes: np.ndarray, level: str) -> np.ndarray:
    positions, distinct = pd.factorize(codes, use_na_sentinel=True)
    try:
        parents = np.asarray(parent(np.asarray(distinct, dtype=object), level), dtype=object)
    except ParameterError as exc:
        raise SchemaError(f"{func}: orders[{column!r}] holds a {exc}") from None
    out = np.full(len(codes), None, dtype=object)
    out[positions >= 0] = parents[positions[positions >= 0]]
    return out


def _department_codes(func: str, orders: pd.DataFrame, catalogue: pd.DataFrame | None) -> np.ndarray:
    given = (orders["department_code"].astype(object).where(orders["department_code"].notna(), None)
             .to_numpy(object) if "department_code" in orders.columns else np.full(len(orders), None, object))
    lacking = pd.isna(given)
    if not lacking.any():
        return given
    if catalogue is None:
        raise ParameterError(f"{func}: {int(lacking.sum())} order(s) have no department_code and catalogue=None; "
                             "expected a dispatch catalogue (jngis.workorders.sample_catalogue or read_catalogue)")
    _checks.columns(func, "orders", orders, ["category"])
    district = _unit_codes(func, orders.loc[lacking], "district", None)
    out = given.copy()
    out[lacking] = departments_of(orders.loc[lacking, "category"].to_numpy(object), district, catalogue, func=func)
    return out


def _unit_names(func: str, level: str, names: Any, departments: pd.DataFrame | None) -> dict | None:
    if names is None and level == "department" and departments is not None:
        names = dict(zip(departments["code"], departments["name"]))
    if names is None:
        return None
    if isinstance(names, pd.DataFrame):
        key = "code" if level == "department" else KEY_OF_LEVEL[level]
        _checks.columns(func, "names", names, [key, "name"])
        return dict(zip(names[key].astype(str), names["name"]))
    _checks.instance(func, "names", names, dict, "a mapping code -> name or a DataFrame", show_value=False)
    return dict(names)


def _times(func: str, frame: pd.DataFrame, name: str, column: str) -> np.ndarray:
    values = frame[column]
    if not pd.api.types.is_datetime64_any_dtype(values.dtype):
        raise SchemaError(f"{func}: {name}[{column!r}] has dtype {values.dtype}; expected datetimes "
                          "(naive China Standard Time), e.g. pd.to_datetime(...)")
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
    return values.to_numpy("datetime64[ns]")


def _answers(func: str, orders: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(answered, satisfied or basically satisfied) per order, from ``callback`` or ``satisfied``."""
    if "callback" in orders.columns:
        values = orders["callback"].astype(object).where(orders["callback"].notna(), None).to_numpy(object)
        bad = ~pd.isna(values) & ~np.isin(values.astype(str), _CALLBACK_VALUES)
        if bad.any():
            raise SchemaError(f"{func}: orders['callback'] holds {values[bad][0]!r}; expected one of "
                              f"{list(_CALLBACK_VALUES)} or blank")
        answered = ~pd.isna(values)
        return answered, answered & (values != "not_satisfied")
    _checks.columns(func, "orders", orders, ["satisfied"])
    values = orders["satisfied"].to_numpy(object)
    answered = ~pd.isna(values)
    bad = answered & ~np.isin(values, [True, False])
    if bad.any():
        raise SchemaError(f"{func}: orders['satisfied'] holds {values[bad][0]!r}; expected True, False or blank")
    return answered, answered & (values == True)  # noqa: E712 (object array of bools)


# --------------------------------------------------------------------------- figures


class _Loop(NamedTuple):
    """The orders and their trail as arrays, prepared once per :func:`evaluate` call."""

    received: np.ndarray      # per order, datetime64[ns]
    due: np.ndarray
    answered: np.ndarray      # per order: a callback answer, and 满意 or 基本满意
    happy: np.ndarray
    units: np.ndarray         # per order: the unit code (None where it has none)
    row_order: np.ndarray     # per trail row: the order's position (-1: not among the orders)
    row_at: np.ndarray
    row_state: np.ndarray
    row_action: np.ndarray
    emergency: np.ndarray     # per order: the signing clock runs in clock hours
    granted: np.ndarray       # per order: its extension request was granted (the loop row)


def _prepare(func: str, orders: pd.DataFrame, trail: pd.DataFrame, units: np.ndarray, rules: LoopRules) -> _Loop:
    # one factorisation of both id columns (not Index.get_indexer on object strings: 4x faster)
    n = len(orders)
    codes, _ = pd.factorize(pd.concat([orders["order_id"].astype(str), trail["order_id"].astype(str)],
                                      ignore_index=True))
    position = np.full(int(codes.max()) + 1 if len(codes) else 0, -1, dtype=np.int64)
    position[codes[:n]] = np.arange(n)
    if n and (position >= 0).sum() < n:
        repeated = orders["order_id"][orders["order_id"].duplicated()].iloc[0]
        raise SchemaError(f"{func}: orders['order_id'] repeats {repeated!r}; expected one row per order")
    answered, happy = _answers(func, orders)
    return _Loop(
        received=_times(func, orders, "orders", "received_at"), due=_times(func, orders, "orders", "due_at"),
        answered=answered, happy=happy, units=units,
        row_order=position[codes[n:]],
        row_at=_times(func, trail, "trail", "at"), row_state=trail["to_state"].to_numpy(object),
        row_action=trail["action"].to_numpy(object),
        emergency=(orders["category"].isin(list(rules.emergency_categories)).to_numpy() if "category" in orders
                   else np.zeros(n, bool)),
        granted=(orders["extension_decision"].eq("granted").to_numpy() if "extension_decision" in orders
                 else np.zeros(n, bool)),
    )


def _last_rows(row_order: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Per order, the position of its last row among ``rows`` (-1 where it has none)."""
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, row_order[rows], rows)
    return last


def _order_facts(loop: _Loop, start: pd.Timestamp, end: pd.Timestamp, calendar: WorkCalendar,
                 rules: LoopRules) -> tuple[np.ndarray, pd.DataFrame]:
    """Positions of the orders received in ``[start, end)`` and their facts as of ``end``."""
    end64 = np.datetime64(end, "ns")
    in_period = (loop.received >= np.datetime64(start, "ns")) & (loop.received < end64)
    take = np.flatnonzero(in_period)
    n = len(in_period)
    counted = (loop.row_order >= 0) & (loop.row_at < end64)
    counted[counted] = in_period[loop.row_order[counted]]
    rows = np.flatnonzero(counted)
    last = _last_rows(loop.row_order, rows, n)[take]
    state = np.asarray(np.where(last >= 0, loop.row_state[np.maximum(last, 0)], None), dtype=object)
    actions = loop.row_action[rows]
    resolved_row = _last_rows(loop.row_order, rows[np.isin(actions, ("resolved", "reply"))], n)[take]
    resolve_time = np.where(resolved_row >= 0, loop.row_at[np.maximum(resolved_row, 0)], np.datetime64("NaT"))

    def stepped(*names: str) -> np.ndarray:
        return np.isin(take, loop.row_order[rows[np.isin(actions, names)]])

    granted = np.isin(take, loop.row_order[rows[actions == "extension_decision"]]) & loop.granted[take]
    finished = np.isin(state, FINISHED_STATES) & (resolved_row >= 0)
    closed = state == "closed"
    due = loop.due[take]
    callback = closed & loop.answered[take]
    hours = (resolve_time - loop.received[take]) / np.timedelta64(3600, "s")
    signed, on_time, sign_hours = _sign_facts(loop, rows, take, calendar, rules)
    facts = pd.DataFrame({
        "received": np.ones(len(take), bool), "resolved": finished,
        "resolved_on_time": finished & (resolve_time <= due), "closed": closed,
        "overdue_now": np.isin(state, OPEN_STATES) & (due < end64), "returned": stepped("returned"),
        "extended": stepped("extended") | granted,
        "callback": callback, "satisfied": callback & loop.happy[take], "dissatisfied": callback & ~loop.happy[take],
        "signed": signed, "signed_on_time": on_time, "supervised": stepped("supervise"),
        "rehandled": stepped("rehandle", "reopened"), "ratings": 0, "rating_sum": 0,
        "hours": np.where(finished, hours, np.nan), "sign_hours": sign_hours,
        "duplicate": np.isin(state, MERGED_STATES),
    })
    return take, facts


def _sign_facts(loop: _Loop, rows: np.ndarray, take: np.ndarray, calendar: WorkCalendar,
                rules: LoopRules) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per order taken: signed, signed within the signing clock, clock hours from dispatch to first sign."""
    actions, owner, at = loop.row_action[rows], loop.row_order[rows], loop.row_at[rows]
    # the time of the last dispatch before each row, within its order (rows are in the order written)
    dispatched = pd.Series(np.where(actions == "dispatched", at, np.datetime64("NaT")).astype("datetime64[ns]"))
    dispatched = dispatched.groupby(owner).ffill().to_numpy("datetime64[ns]")
    first = np.full(len(loop.received), len(rows), dtype=np.int64)
    signs = np.flatnonzero(actions == "sign")
    np.minimum.at(first, owner[signs], signs)
    signed = first[take] < len(rows)
    where = first[take][signed]
    sign_at, from_at = at[where], dispatched[where]
    emergency = loop.emergency[take][signed]
    limit = from_at + np.timedelta64(int(round(rules.sign_working_hours * 3600)), "s")
    if (~emergency).any():
        limit[~emergency] = calendar.add_working_hours(pd.DatetimeIndex(from_at[~emergency]),
                                                       rules.sign_working_hours).to_numpy("datetime64[ns]")
    on_time = np.zeros(len(take), bool)
    on_time[signed] = sign_at <= limit
    hours = np.full(len(take), np.nan)
    hours[signed] = (sign_at - from_at) / np.timedelta64(3600, "s")
    return signed, on_time, hours


def _ratings(func: str, calls: pd.DataFrame) -> pd.DataFrame:
    """The calls' ratings: department_code, called_at, rated_at, rating (rated rows only)."""
    _checks.dataframe(func, "calls", calls)
    _checks.columns(func, "calls", calls, _CALL_COLUMNS)
    rated = calls[calls["rating"].notna()]
    bad = ~rated["rating"].isin(list(range(1, 6)))
    if bad.any():
        raise SchemaError(f"{func}: calls['rating'] holds {rated['rating'][bad].iloc[0]!r}; expected 1 to 5 or blank")
    return pd.DataFrame({"department_code": rated["department_code"].astype(str).to_numpy(),
                         "called_at": _times(func, rated, "calls", "called_at"),
                         "rated_at": _times(func, rated, "calls", "rated_at"),
                         "rating": rated["rating"].astype(np.int64).to_numpy()})


def _period_figures(loop: _Loop, start: pd.Timestamp, end: pd.Timestamp, ratings: pd.DataFrame | None,
                    calendar: WorkCalendar, rules: LoopRules) -> tuple[pd.DataFrame, int]:
    take, facts = _order_facts(loop, start, end, calendar, rules)
    unit = loop.units[take]
    placed = ~pd.isna(unit)
    keep = placed & ~facts["duplicate"].to_numpy()
    facts = facts[keep]
    codes, uniques = pd.factorize(unit[keep].astype(str), sort=True)
    grouped = facts.groupby(codes, sort=True)
    table = grouped[list(COUNT_COLUMNS)].sum().astype(np.int64)
    medians = {"median_hours_to_resolve": grouped["hours"].median(),
               "median_hours_to_sign": grouped["sign_hours"].median()}
    table.index = pd.Index(np.asarray(uniques, dtype=object)[table.index.to_numpy()], dtype=object)
    for series in medians.values():
        series.index = table.index
    if ratings is not None:
        table = _with_ratings(table, ratings, start, end)
    table = _with_rates(table)
    for name, series in medians.items():
        table[name] = series.reindex(table.index)
    return table, int((~placed).sum())


def _with_ratings(table: pd.DataFrame, ratings: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The ratings of calls made in ``[start, end)`` and rated before ``end``, summed per department."""
    start64, end64 = np.datetime64(start, "ns"), np.datetime64(end, "ns")
    inside = ((ratings["called_at"] >= start64) & (ratings["called_at"] < end64)
              & (ratings["rated_at"] < end64)).to_numpy()
    summed = ratings[inside].groupby("department_code")["rating"].agg(["count", "sum"])
    table = table.reindex(table.index.union(pd.Index(summed.index, dtype=object)), fill_value=0)
    table["ratings"] = summed["count"].reindex(table.index, fill_value=0).astype(np.int64)
    table["rating_sum"] = summed["sum"].reindex(table.index, fill_value=0).astype(np.int64)
    return table


def _with_rates(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    for rate, (numerator, denominator) in RATE_COLUMNS.items():
        with np.errstate(invalid="ignore", divide="ignore"):
            table[rate] = np.where(table[denominator] > 0, table[numerator] / table[denominator].where(
                table[denominator] > 0, 1), np.nan)
    return table


def _totals(figures: pd.DataFrame) -> pd.Series:
    summed = figures[list(COUNT_COLUMNS)].sum().astype(np.int64).to_frame().T
    return _with_rates(summed).iloc[0]


def _rank_one(table: pd.DataFrame, rate: str, higher: bool, minimum: int) -> pd.Series:
    eligible = (table["received"] >= minimum) & table[rate].notna()
    return table.loc[eligible, rate].rank(ascending=not higher, method="min").astype(np.int64)


def _rankings(current: pd.DataFrame, previous: pd.DataFrame, minimum: int, ranked: dict[str, bool]
              ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    rankings = {}
    for rate, higher in ranked.items():
        rank = _rank_one(current, rate, higher, minimum)
        before = _rank_one(previous, rate, higher, minimum)
        table = pd.DataFrame({"rank": rank.to_numpy(), "unit": rank.index.to_numpy()}, index=rank.index)
        if "name" in current.columns:
            table["name"] = current.loc[rank.index, "name"]
        table[rate] = current.loc[rank.index, rate]
        table["received"] = current.loc[rank.index, "received"]
        table["previous"] = previous[rate].reindex(rank.index)
        table["change"] = table[rate] - table["previous"]
        table["previous_rank"] = before.reindex(rank.index).astype("Int64")
        table["rank_change"] = table["previous_rank"] - table["rank"]
        rankings[rate] = table.sort_values(["rank", "unit"], kind="stable").reset_index(drop=True)
    small = current[current["received"] < minimum]
    unranked = small[[c for c in ("name", "received") if c in small.columns]].rename_axis("unit").reset_index()
    return rankings, unranked


def level_label(level: str) -> str:
    """The Chinese name of an evaluation level (部门 for departments)."""
    return "部门" if level == "department" else LEVEL_LABELS[level]
