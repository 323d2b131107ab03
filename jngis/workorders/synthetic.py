"""The trail implied by a historical work-order layer (as in the sample city).

Examples
--------
>>> import pandas as pd
>>> orders = pd.DataFrame({"order_id": ["A"], "status": ["returned"],
...     "received_at": pd.to_datetime(["2025-10-09 08:00"]), "dispatched_at": pd.to_datetime(["2025-10-09 09:00"]),
...     "resolved_at": pd.to_datetime([None]), "closed_at": pd.to_datetime([None])})
>>> synthetic_trail(orders)[["action", "at"]].values.tolist()[-1]
['returned', Timestamp('2025-10-09 09:30:00')]
"""

from __future__ import annotations

from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd

from jngis import _checks
from jngis.errors import SchemaError
from jngis.workorders.clocks import CALENDAR, WorkCalendar
from jngis.workorders.loop import DEFAULT_RULES, LoopRules
from jngis.workorders.states import FINISHED_STATES, STATES

__all__ = ["LOOP_HISTORY_COLUMNS", "CALL_HISTORY_COLUMNS", "synthetic_loop", "synthetic_trail", "synthetic_calls",
           "plant_duplicates"]

_HOUR = np.timedelta64(3600, "s")
_SECOND = np.timedelta64(1, "s")
_TIME_COLUMNS = ("received_at", "dispatched_at", "resolved_at", "closed_at")
_RETURN_NOTE = "历史工单：非本单位职责，退回派单"
_REPLY_NOTE = "历史工单：已按要求办理并答复"
_SUPERVISE_NOTE = "红牌督办：已超过办理时限，请尽快办结"
_HANDLED = ("in_progress", *FINISHED_STATES)
#: The department-loop times a historical layer may carry (the sample city's do, from
#: :func:`synthetic_loop`): :func:`synthetic_trail` writes the 签收, 联系, 到场, 督办, 回访 (重办 after
#: an unsatisfied first answer) and 核查 steps they imply. ``callback`` is the citizen's first answer
#: (``satisfied``, ``basically_satisfied``, ``not_satisfied``: the one the evaluation counts).
LOOP_HISTORY_COLUMNS: tuple[str, ...] = ("signed_at", "contacted_at", "on_site_at", "supervised_at",
                                         "rehandled_at", "callback", "verified_at")


class _History(NamedTuple):
    """The recorded times of historical orders (datetime64[ns], NaT where not reached)."""

    status: np.ndarray
    received: np.ndarray
    dispatched: np.ndarray
    resolved: np.ndarray
    closed: np.ndarray


def synthetic_loop(orders: pd.DataFrame, *, seed: int = 2026, now: object = None, rules: LoopRules = DEFAULT_RULES,
                   calendar: WorkCalendar = CALENDAR, late_sign_share: float = 0.12,
                   supervised_share: float = 0.35) -> pd.DataFrame:
    """Department-loop times for historical orders: :data:`LOOP_HISTORY_COLUMNS`, one row per order.

    Every order that was handled (``in_progress``, ``resolved`` or ``closed``)
    was signed (签收) by the unit it was dispatched to: most within the
    signing clock (``rules.sign_working_hours`` office hours, clock hours for
    emergency categories), a ``late_sign_share`` later (the share varies by
    category); then the caller was contacted (联系, mostly within
    ``rules.contact_hours``) and, for ``rules.on_site_categories``, visited on
    site (到场). A ``supervised_share`` of the orders that showed a red card
    while open (past ``due_at`` before they were resolved, or by ``now``) got a
    supervision notice (督办) some hours after the due time. A closed order's
    citizen answered the callback (回访): ``satisfied`` True as 满意 or
    基本满意, False as 不满意, which re-opened it for re-handling (重办) before
    the reply it was closed on; orders of ``rules.verify_categories`` were
    verified (核查) before closing. Every step lies strictly between the
    recorded times around it, so :func:`synthetic_trail` replays through the
    state table (:func:`jngis.workorders.plan_step` accepts every step).
    Deterministic for a ``seed``; ``now`` (default: the latest recorded time)
    bounds the steps of open orders.

    Examples
    --------
    >>> import pandas as pd
    >>> orders = pd.DataFrame({"order_id": ["A"], "status": ["closed"], "category": ["邻里纠纷"],
    ...     "received_at": pd.to_datetime(["2026-10-09 08:00"]), "dispatched_at": pd.to_datetime(["2026-10-09 09:00"]),
    ...     "due_at": pd.to_datetime(["2026-10-16 09:00"]), "resolved_at": pd.to_datetime(["2026-10-12 09:00"]),
    ...     "closed_at": pd.to_datetime(["2026-10-13 09:00"]), "satisfied": [True]})
    >>> loop = synthetic_loop(orders, seed=1)
    >>> bool(loop.loc[0, "signed_at"] < loop.loc[0, "contacted_at"] < orders.loc[0, "resolved_at"])
    True
    >>> synthetic_trail(orders.join(loop))["action"].tolist()
    ['received', 'dispatched', 'sign', 'contact', 'reply', 'callback', 'closed']
    """
    func = "synthetic_loop"
    history = _history(orders)
    _checks.columns(func, "orders", orders, ["category", "due_at", "satisfied"])
    late_sign_share = _checks.number(func, "late_sign_share", late_sign_share, minimum=0, maximum=1)
    supervised_share = _checks.number(func, "supervised_share", supervised_share, minimum=0, maximum=1)
    n = len(orders)
    rng = np.random.default_rng(seed)
    category = orders["category"].astype(str).to_numpy(object)
    due = pd.to_datetime(orders["due_at"]).to_numpy("datetime64[ns]")
    last = max((t[~np.isnat(t)].max() for t in history[1:] if (~np.isnat(t)).any()), default=np.datetime64("NaT"))
    now64 = np.datetime64(pd.Timestamp(now), "ns") if now is not None else last
    handled = np.isin(history.status, _HANDLED) & ~np.isnat(history.dispatched)
    finished = np.isin(history.status, FINISHED_STATES)
    closed = history.status == "closed"
    answer = orders["satisfied"].astype(object).to_numpy(object)
    unsatisfied = closed & handled & np.array([a is False or a is np.False_ for a in answer])
    answered = closed & handled & ~pd.isna(answer)
    end = np.where(finished, history.resolved, now64)
    span = np.maximum((end - history.dispatched) / _SECOND, 4.0)  # seconds from dispatch to the reply (or now)
    # 签收: the share signed late differs by category (some units are slower), around late_sign_share
    kinds, category_index = np.unique(category, return_inverse=True)
    late_share = np.clip(late_sign_share * rng.lognormal(0, 0.6, len(kinds)), 0, 0.6)[category_index]
    late = rng.random(n) < late_share
    hours = np.where(late, rng.uniform(1.15, 8.0, n), rng.uniform(0.03, 0.95, n)) * rules.sign_working_hours
    emergency = np.isin(category, list(rules.emergency_categories))
    dispatched = pd.DatetimeIndex(np.where(handled, history.dispatched, np.datetime64("2026-01-05T09:00", "ns")))
    signed = np.where(emergency, dispatched.to_numpy() + (hours * 3600).astype("timedelta64[s]"),
                      calendar.add_working_hours(dispatched, hours).to_numpy("datetime64[ns]"))
    # rehandled orders take their first reply, callback and second visit inside the same span
    fractions = np.where(unsatisfied[:, None], [0.15, 0.3, 0.4], [0.3, 0.6, 0.85])

    def capped(when: np.ndarray, after: np.ndarray, share: np.ndarray) -> np.ndarray:
        limit = history.dispatched + (span * share).astype("timedelta64[s]")
        return np.maximum(np.minimum(when, limit), after + _SECOND)

    signed = capped(signed, history.dispatched, fractions[:, 0])
    contact_hours = np.where(rng.random(n) < 0.06, rng.uniform(24, 48, n), rng.uniform(0.3, 20, n))
    contacted = capped(signed + (contact_hours * 3600).astype("timedelta64[s]"), signed, fractions[:, 1])
    on_site_wanted = np.isin(category, list(rules.on_site_categories))
    on_site = capped(contacted + (rng.uniform(0.5, 30, n) * 3600).astype("timedelta64[s]"), contacted,
                     fractions[:, 2])
    before_reply = np.where(on_site_wanted, on_site, contacted)
    rehandled = before_reply + ((end - before_reply) * 0.5).astype("timedelta64[ns]")
    first_reply = _midpoint(before_reply, rehandled)
    # 督办: on a red card (past the due time), before the (first) reply
    replied = np.where(unsatisfied, first_reply, end)
    supervised = np.maximum(due + (rng.uniform(0.5, 16, n) * 3600).astype("timedelta64[s]"),
                            before_reply + 60 * _SECOND)
    red = handled & ~np.isnat(due) & (due < end) & (supervised < replied - 60 * _SECOND)
    supervised_kept = red & (rng.random(n) < supervised_share)
    happy_level = np.where(rng.random(n) < 0.78, "satisfied", "basically_satisfied")
    callback = np.where(unsatisfied, "not_satisfied", happy_level).astype(object)
    verified = history.closed - ((history.closed - history.resolved) * 0.25).astype("timedelta64[ns]")
    verify = closed & handled & answered & np.isin(category, list(rules.verify_categories))
    nat = np.datetime64("NaT", "ns")
    signed, contacted, on_site, supervised, rehandled, verified = (
        np.asarray(t).astype("datetime64[s]").astype("datetime64[ns]")  # whole seconds, as the stores keep them
        for t in (signed, contacted, on_site, supervised, rehandled, verified))
    return pd.DataFrame({
        "signed_at": np.where(handled, signed, nat), "contacted_at": np.where(handled, contacted, nat),
        "on_site_at": np.where(handled & on_site_wanted, on_site, nat),
        "supervised_at": np.where(supervised_kept, supervised, nat),
        "rehandled_at": np.where(unsatisfied, rehandled, nat),
        "callback": pd.Series(callback, dtype=object).where(answered, None).to_numpy(object),
        "verified_at": np.where(verify, verified, nat),
    }, index=orders.index)


def _midpoint(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Halfway from ``start`` to ``end``, in whole seconds (as the stores keep times)."""
    return (start + ((end - start) * 0.5).astype("timedelta64[ns]")).astype("datetime64[s]").astype("datetime64[ns]")


def synthetic_trail(orders: pd.DataFrame, *, who: str = "history") -> pd.DataFrame:
    """The trail implied by a historical work-order layer (as in the sample city).

    Uses ``received_at``, ``dispatched_at``, ``resolved_at``, ``closed_at``
    and ``status``; the acceptance (``in_progress``) is put halfway to the
    next event, at most one hour after dispatch; a returned order was
    returned half an hour after dispatch. An order that carries the
    department loop's times (:data:`LOOP_HISTORY_COLUMNS`, e.g. from
    :func:`synthetic_loop`; ``signed_at`` set) takes the loop's steps instead:
    签收 (``sign``), 联系 (``contact``), 到场 (``on_site``), 督办
    (``supervise``), 回复 (``reply``, at ``resolved_at``), 回访 (``callback``;
    an unsatisfied first answer is followed by 重办, a second visit where the
    category needs one, and the reply at ``resolved_at``), 核查 (``verify``)
    and 结案. Replaying each order's rows gives its ``status``. Columns:
    order_id, action, from_state, to_state, who, at, note; sorted by order
    then time.

    Examples
    --------
    >>> import pandas as pd
    >>> orders = pd.DataFrame({"order_id": ["A"], "status": ["closed"],
    ...     "received_at": pd.to_datetime(["2025-10-09 08:00"]), "dispatched_at": pd.to_datetime(["2025-10-09 09:00"]),
    ...     "resolved_at": pd.to_datetime(["2025-10-10 09:00"]), "closed_at": pd.to_datetime(["2025-10-11 09:00"])})
    >>> synthetic_trail(orders)["action"].tolist()
    ['received', 'dispatched', 'in_progress', 'resolved', 'closed']
    """
    history = _history(orders)
    status = history.status
    loop = _loop_times(orders, history)
    old = ~loop.signed
    next_event = np.where(np.isnat(history.resolved), history.dispatched + 2 * _HOUR, history.resolved)
    accepted = history.dispatched + np.minimum((next_event - history.dispatched) // 2, _HOUR)
    ids = orders["order_id"].astype(str).to_numpy(object)
    order_pos = np.arange(len(orders))
    finished = np.isin(status, FINISHED_STATES)
    rehandled = ~np.isnat(loop.rehandled)
    before_second = np.where(np.isnat(loop.on_site), loop.contacted, loop.on_site)
    callback_at = _midpoint(history.resolved, history.closed)
    # (which orders, rank within an order, action, from, to, when, note)
    steps: list[tuple[np.ndarray, int, str, str | None, str, np.ndarray, object]] = [
        (np.ones(len(orders), bool), 0, "received", None, "received", history.received, None),
        (status != "received", 1, "dispatched", "received", "dispatched", history.dispatched, None),
        (status == "returned", 2, "returned", "dispatched", "returned", history.dispatched + _HOUR // 2,
         _RETURN_NOTE),
        (old & np.isin(status, _HANDLED), 2, "in_progress", "dispatched", "in_progress", accepted, None),
        (old & finished, 10, "resolved", "in_progress", "resolved", history.resolved, None),
        (loop.signed, 2, "sign", "dispatched", "signed", loop.signed_at, None),
        (loop.signed, 3, "contact", "signed", "in_progress", loop.contacted, None),
        (~np.isnat(loop.on_site), 4, "on_site", "in_progress", "in_progress", loop.on_site, None),
        (~np.isnat(loop.supervised), 5, "supervise", "in_progress", "in_progress", loop.supervised,
         _SUPERVISE_NOTE),
        (rehandled, 6, "reply", "in_progress", "resolved", _midpoint(before_second, loop.rehandled), _REPLY_NOTE),
        (rehandled, 7, "callback", "resolved", "resolved", loop.rehandled, "not_satisfied"),
        (rehandled, 8, "rehandle", "resolved", "in_progress", loop.rehandled, "回访不满意，重办"),
        (rehandled & ~np.isnat(loop.on_site), 9, "on_site", "in_progress", "in_progress",
         _midpoint(loop.rehandled, history.resolved), None),
        (loop.signed & finished, 10, "reply", "in_progress", "resolved", history.resolved, _REPLY_NOTE),
        (loop.answered, 11, "callback", "resolved", "resolved", callback_at,
         np.where(rehandled, "basically_satisfied", loop.callback)),
        (~np.isnat(loop.verified), 12, "verify", "resolved", "resolved", loop.verified, "核查通过"),
        (status == "closed", 13, "closed", "resolved", "closed", history.closed, None),
    ]
    parts = [pd.DataFrame({
        "_order": order_pos[mask], "_rank": rank, "order_id": ids[mask], "action": action,
        "from_state": from_state, "to_state": to_state, "who": who, "at": at[mask],
        "note": note[mask] if isinstance(note, np.ndarray) else note,
    }) for mask, rank, action, from_state, to_state, at, note in steps]
    trail = pd.concat(parts, ignore_index=True).sort_values(["_order", "_rank"], kind="stable")
    return trail.drop(columns=["_order", "_rank"]).reset_index(drop=True)


def _history(orders: pd.DataFrame) -> _History:
    """The states and times of ``orders``, checked: every state reached has its time."""
    missing = [c for c in ("order_id", "status", *_TIME_COLUMNS) if c not in orders.columns]
    if missing:
        raise SchemaError(f"synthetic_trail: orders lack the columns {missing}")
    status = orders["status"].to_numpy(object)
    unknown = ~np.isin(status, STATES)
    if unknown.any():
        raise SchemaError(f"synthetic_trail: status {status[unknown][0]!r}; expected one of {', '.join(STATES)}")
    history = _History(status, *(pd.to_datetime(orders[c]).to_numpy("datetime64[ns]") for c in _TIME_COLUMNS))
    if np.isnat(history.dispatched[status != "received"]).any():
        raise SchemaError("synthetic_trail: an order past 'received' has no dispatched_at")
    done = np.isin(status, FINISHED_STATES)
    if np.isnat(history.resolved[done]).any() or np.isnat(history.closed[status == "closed"]).any():
        raise SchemaError("synthetic_trail: a resolved or closed order lacks resolved_at / closed_at")
    return history


class _LoopTimes(NamedTuple):
    signed: np.ndarray        # per order: takes the department loop's steps
    signed_at: np.ndarray
    contacted: np.ndarray
    on_site: np.ndarray
    supervised: np.ndarray
    rehandled: np.ndarray
    answered: np.ndarray      # a closed loop order with its callback answer
    callback: np.ndarray
    verified: np.ndarray


def _loop_times(orders: pd.DataFrame, history: _History) -> _LoopTimes:
    """The loop's times of the orders that carry them (checked: in order, between the recorded times)."""
    n = len(orders)
    nat = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")

    def times(column: str) -> np.ndarray:
        return pd.to_datetime(orders[column]).to_numpy("datetime64[ns]") if column in orders.columns else nat

    signed_at = times("signed_at")
    signed = ~np.isnat(signed_at) & np.isin(history.status, _HANDLED)
    keep = {name: np.where(signed, times(column), np.datetime64("NaT")).astype("datetime64[ns]")
            for name, column in (("contacted", "contacted_at"), ("on_site", "on_site_at"),
                                 ("supervised", "supervised_at"), ("rehandled", "rehandled_at"),
                                 ("verified", "verified_at"))}
    callback = (orders["callback"].astype(object).where(orders["callback"].notna(), None).to_numpy(object)
                if "callback" in orders.columns else np.full(n, None, object))
    closed = history.status == "closed"
    answered = signed & closed & ~pd.isna(callback)
    if (signed & np.isnat(keep["contacted"])).any():
        raise SchemaError("synthetic_trail: an order with signed_at has no contacted_at")
    if (signed & closed & ~answered).any():
        raise SchemaError("synthetic_trail: a closed order with signed_at has no callback answer (回访)")
    loop = _LoopTimes(signed, signed_at, answered=answered, callback=callback, **keep)
    _check_order(loop, history)
    return loop


def _check_order(loop: _LoopTimes, history: _History) -> None:
    """Each loop step lies after the one before it and before the reply (or closing) it leads to."""
    end = np.where(np.isnat(history.resolved), np.datetime64("2262-01-01", "ns"), history.resolved)
    before_reply = np.where(np.isnat(loop.on_site), loop.contacted, loop.on_site)
    pairs = (("dispatched_at", history.dispatched, "signed_at", loop.signed_at),
             ("signed_at", loop.signed_at, "contacted_at", loop.contacted),
             ("contacted_at", loop.contacted, "on_site_at", loop.on_site),
             ("contacted_at", loop.contacted, "supervised_at", loop.supervised),
             ("signed_at", before_reply, "resolved_at", np.where(np.isnat(loop.rehandled), end, loop.rehandled)),
             ("rehandled_at", loop.rehandled, "resolved_at", end),
             ("resolved_at", history.resolved, "verified_at", loop.verified),
             ("verified_at", loop.verified, "closed_at", history.closed))
    for first_name, first, then_name, then in pairs:
        bad = loop.signed & ~np.isnat(first) & ~np.isnat(then) & (then <= first)
        if bad.any():
            raise SchemaError(f"synthetic_trail: an order's {then_name} is not after its {first_name}; expected "
                              "the department loop's times in the order of its steps")


#: The columns of :func:`synthetic_calls`: a call's fields and one called department's times and rating.
CALL_HISTORY_COLUMNS: tuple[str, ...] = (
    "call_id", "order_id", "street_code", "problem", "who", "called_at", "department_code", "signed_at",
    "contacted_at", "on_site_at", "done_at", "rating", "rating_note", "rated_at",
)
# Standing problems a 街道 calls a department on, by the department's code suffix (or code).
_CALL_PROBLEMS = {
    "CG": ("夜市占道经营反复出现", "背街小巷建筑垃圾乱堆", "沿街商户油烟扰民"),
    "ZJ": ("老旧小区改造后楼道渗水", "无物业小区管理缺位", "小区电梯长期停运"),
    "SJ": ("农贸市场无证摊点", "校园周边食品店卫生"),
    "GA": ("夜间路口聚集滋事", "学校门口秩序混乱"),
    "ST": ("工地夜间施工噪音", "餐饮店排污异味"),
    "SF": ("邻里宅基地纠纷反复", "拆迁补偿矛盾调处"),
    "ZF": ("多部门职责交叉的积案",),
    "3701-SZ": ("主干道路灯成片不亮", "雨水井盖破损积水"),
    "3701-JJ": ("早晚高峰路口拥堵", "违停占用消防通道"),
    "RL": ("供暖管网跑冒滴漏", "片区供暖温度不达标"),
    "U-RQ": ("老旧燃气管线隐患",),
}


def synthetic_calls(streets: pd.DataFrame, departments: pd.DataFrame, *, start: Any, end: Any,
                    per_month: float = 2.0, seed: int = 2026, calendar: WorkCalendar = CALENDAR) -> pd.DataFrame:
    """The 街道's calls to departments (街呼) on standing problems between ``start`` and ``end``, with ratings.

    Each 街道 (``street_code``, ``district_code``) calls ``per_month`` times a
    month on average (Poisson), on a working day's office hours, one department
    serving its district (a second one in 3 of 10 calls). Each department has
    its own promptness: most sign (签收) within an office hour, contact,
    often go on site, and are done (办结) some days later; the 街道 rates
    (1-5) each response it saw done, better for a prompt one. A step that
    would fall after ``end`` was not reached (NaT, no rating). One row per
    called department (:data:`CALL_HISTORY_COLUMNS`), ``order_id`` empty;
    deterministic for a ``seed``.

    Examples
    --------
    >>> import pandas as pd
    >>> from jngis.workorders import sample_departments
    >>> streets = pd.DataFrame({"street_code": ["370102001"], "district_code": ["370102"]})
    >>> departments = sample_departments(pd.DataFrame({"district_code": ["370102"], "name": ["历下区"]}))
    >>> calls = synthetic_calls(streets, departments, start="2026-01-01", end="2026-12-01", seed=1)
    >>> bool(calls["rating"].dropna().between(1, 5).all()), bool((calls["signed_at"] > calls["called_at"]).all())
    (True, True)
    """
    func = "synthetic_calls"
    _checks.columns(func, "streets", streets, ["street_code", "district_code"])
    _checks.columns(func, "departments", departments, ["code", "districts"])
    per_month = _checks.number(func, "per_month", per_month, minimum=0, maximum=100)
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if not start < end:
        raise SchemaError(f"{func}: start={start} is not before end={end}; expected a period")
    rng = np.random.default_rng(seed)
    # in code order, so the same registry and streets in any row order give the same calls
    serving = {str(code): set(served) for code, served in zip(departments["code"], departments["districts"])}
    codes = sorted(serving)
    streets = streets.sort_values("street_code", kind="stable")
    promptness = dict(zip(codes, rng.normal(0, 0.7, len(codes))))
    days = pd.date_range(start.normalize(), end - pd.Timedelta("1s"), freq="D")
    working = days[[calendar.is_working_day(d) for d in days]] if len(days) else days
    months = max((end - start) / pd.Timedelta(days=30.4), 1 / 30.4)
    rows: list[tuple[str, str, pd.Timestamp, str]] = []
    for street, district in zip(streets["street_code"].astype(str), streets["district_code"].astype(str)):
        local = [c for c in codes if district in serving[c]]
        if not local or not len(working):
            continue
        for _ in range(rng.poisson(per_month * months)):
            day = working[rng.integers(len(working))]
            called = (day + pd.Timedelta(hours=float(rng.uniform(8.5, 17.0)))).floor("s")
            if not start <= called < end:
                continue
            picked = rng.choice(local, size=min(len(local), 2 if rng.random() < 0.3 else 1), replace=False)
            problem = _call_problem(str(picked[0]), rng)
            rows.extend((street, problem, called, str(code)) for code in picked)
    calls = pd.DataFrame(rows, columns=["street_code", "problem", "called_at", "department_code"])
    calls = calls.sort_values(["called_at", "street_code", "department_code"], kind="stable", ignore_index=True)
    calls.insert(0, "call_id", (calls.groupby(["street_code", "called_at"], sort=False).ngroup() + 1).astype(np.int64))
    calls.insert(1, "order_id", None)
    calls.insert(4, "who", "history")
    responses = _responses(calls, np.array([promptness[c] for c in calls["department_code"]]), end, rng, calendar)
    return pd.concat([calls, responses], axis=1)[list(CALL_HISTORY_COLUMNS)]


def _call_problem(code: str, rng: np.random.Generator) -> str:
    key = code if code in _CALL_PROBLEMS else ("RL" if code.endswith("RL") else code.rsplit("-", 1)[-1])
    choices = _CALL_PROBLEMS.get(key, _CALL_PROBLEMS["ZF"])
    return str(choices[rng.integers(len(choices))])


def _responses(calls: pd.DataFrame, promptness: np.ndarray, end: pd.Timestamp, rng: np.random.Generator,
               calendar: WorkCalendar) -> pd.DataFrame:
    """Each called department's times (NaT when not reached by ``end``) and the 街道's rating of it."""
    n = len(calls)
    on_time = rng.random(n) < 1 / (1 + np.exp(-(2.0 + promptness)))
    hours = np.where(on_time, rng.uniform(0.05, 0.95, n), rng.uniform(1.2, 8, n))
    called = pd.DatetimeIndex(calls["called_at"])
    signed = calendar.add_working_hours(called, hours).to_numpy("datetime64[ns]") if n else np.array([], "M8[ns]")
    contacted = signed + (rng.uniform(0.5, 20, n) * 3600).astype("timedelta64[s]")
    visited = rng.random(n) < 0.6
    on_site = contacted + (rng.uniform(1, 48, n) * 3600).astype("timedelta64[s]")
    done = np.where(visited, on_site, contacted) + (
        rng.gamma(2.0, 2.5 - 0.8 * np.tanh(promptness), n) * 86400).astype("timedelta64[s]")
    rated = done + (rng.uniform(2, 72, n) * 3600).astype("timedelta64[s]")
    score = 3.6 + 0.6 * promptness + np.where(on_time, 0.6, -0.6) + rng.normal(0, 0.6, n)
    rating = np.clip(np.rint(score), 1, 5).astype(np.int64)
    end64 = np.datetime64(end, "ns")
    nat = np.datetime64("NaT", "ns")
    # a step is reached by ``end`` only after the ones before it (on site may be skipped)
    reached_sign = signed < end64
    reached_contact = reached_sign & (contacted < end64)
    reached_done = reached_contact & (done < end64)
    reached_rating = reached_done & (rated < end64)
    return pd.DataFrame({
        "signed_at": np.where(reached_sign, signed, nat), "contacted_at": np.where(reached_contact, contacted, nat),
        "on_site_at": np.where(reached_contact & visited & (on_site < end64), on_site, nat),
        "done_at": np.where(reached_done, done, nat),
        "rating": pd.array([int(r) if ok else None for r, ok in zip(rating, reached_rating)], dtype="Int64"),
        "rating_note": [_RATING_NOTES[int(r)] if ok else None for r, ok in zip(rating, reached_rating)],
        "rated_at": np.where(reached_rating, rated, nat),
    }, index=calls.index)


_RATING_NOTES = {1: "响应迟缓，问题未解决", 2: "响应较慢，效果一般", 3: "基本解决", 4: "响应及时，解决较好",
                 5: "响应迅速，彻底解决"}


def plant_duplicates(orders: gpd.GeoDataFrame, *, share: float = 0.03, distance_m: float = 30.0,
                     hours: float = 12.0, seed: int = 2026) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """``orders`` with duplicate reports planted, and which they are: ``(orders, truth)``.

    A ``share`` of the orders (chosen at random) is reported again: the copy
    has the same category, lies up to ``distance_m`` away (uniform in a disc)
    and was received up to ``hours`` later (uniform, at least 5 minutes); it
    keeps the original's state and times shifted by the same delay, and its
    id is the original's with ``-D`` appended. ``truth`` has ``order_id``
    (the copy) and ``original_id``. The orders must be in a metric CRS.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd, shapely
    >>> orders = gpd.GeoDataFrame({"order_id": ["A", "B"], "category": ["环境卫生"] * 2,
    ...     "received_at": pd.to_datetime(["2026-10-09 09:00", "2026-10-10 09:00"])},
    ...     geometry=[shapely.Point(500000, 4060000), shapely.Point(501000, 4060000)], crs="EPSG:4548")
    >>> planted, truth = plant_duplicates(orders, share=0.5, seed=1)
    >>> len(planted), truth["original_id"].str.len().tolist()
    (3, [1])
    """
    func = "plant_duplicates"
    _checks.geodataframe(func, "orders", orders)
    _checks.metric_crs(func, "orders", orders)
    _checks.columns(func, "orders", orders, ["order_id", "category", "received_at"])
    share = _checks.number(func, "share", share, minimum=0, maximum=1)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(orders), size=int(round(share * len(orders))), replace=False))
    copies = orders.iloc[chosen].copy()
    delay = pd.to_timedelta(rng.uniform(300, max(hours * 3600, 301), len(chosen)).round(), unit="s")
    for column in [c for c in copies.columns if pd.api.types.is_datetime64_any_dtype(copies[c])]:
        copies[column] = copies[column] + delay.to_numpy()
    radius = distance_m * np.sqrt(rng.uniform(0, 1, len(chosen)))
    angle = rng.uniform(0, 2 * np.pi, len(chosen))
    copies = copies.set_geometry(gpd.points_from_xy(copies.geometry.x + radius * np.cos(angle),
                                                    copies.geometry.y + radius * np.sin(angle), crs=orders.crs))
    truth = pd.DataFrame({"order_id": copies["order_id"].astype(str) + "-D",
                          "original_id": copies["order_id"].astype(str).to_numpy()})
    copies["order_id"] = truth["order_id"].to_numpy()
    planted = pd.concat([orders, copies], ignore_index=True)
    return gpd.GeoDataFrame(planted, geometry=planted.geometry.name, crs=orders.crs), truth.reset_index(drop=True)
