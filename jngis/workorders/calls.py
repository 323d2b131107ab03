"""The 街道's call to departments (街呼区应): who was called, how each responded, how the 街道 rated them.

A 街道 calls one or more departments on an order or on a standing problem
(a matter with no single order: a market street's evening noise, a broken
drain that keeps returning). Each called department's response is kept step
by step — **sign** (签收), **contact** (联系), **on_site** (到场, optional),
**done** (办结) — and the 街道 **rates** each department's response once,
1 (poor) to 5 (excellent); a department that was not called cannot be rated.
The ratings feed the monthly evaluation of departments
(:func:`jngis.evaluation.evaluate`, ``mean_rating``).

Pure: the stores call these inside their transaction and write what they return.

Examples
--------
>>> call = plan_call(street_code="370102003", department_codes=["370102-CG", "370102-ZJ"],
...                  problem="芙蓉街夜间油烟扰民", departments={"370102-CG", "370102-ZJ"})
>>> call["department_codes"]
('370102-CG', '370102-ZJ')
>>> plan_call_step({"call_id": 1, "department_code": "370102-CG"}, "contact",
...                at="2026-11-02 10:00")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
jngis.errors.InvalidTransition: work order 'call 1' is 'called': it cannot go to 'contact' (370102-CG has not ...
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pandas as pd

from jngis import _checks
from jngis.codes import CODE_DIGITS
from jngis.errors import InvalidTransition, NotFoundError, ParameterError
from jngis.workorders.clocks import now_cst, to_cst

__all__ = ["CALL_STEPS", "CALL_STEP_COLUMNS", "RATINGS", "plan_call", "plan_call_step", "plan_rating"]

#: A called department's steps, in order (on_site may be skipped), and the column each one fills.
CALL_STEPS: tuple[str, ...] = ("sign", "contact", "on_site", "done")
CALL_STEP_COLUMNS: dict[str, str] = {"sign": "signed_at", "contact": "contacted_at", "on_site": "on_site_at",
                                     "done": "done_at"}
#: The 街道's rating of a department's response: 1 (poor) to 5 (excellent).
RATINGS: tuple[int, ...] = (1, 2, 3, 4, 5)
# step -> the steps that must have been taken before it
_BEFORE = {"sign": (), "contact": ("sign",), "on_site": ("sign", "contact"), "done": ("sign", "contact")}
_STAGES = ("called", "signed", "contacted", "on_site", "done")


def _taken(row: Mapping[str, Any], step: str) -> bool:
    value = row.get(CALL_STEP_COLUMNS[step])
    return value is not None and not pd.isna(value)


def _stage(row: Mapping[str, Any]) -> str:
    """Where a called department's response stands: called, signed, contacted, on_site or done."""
    reached = [stage for step, stage in zip(CALL_STEPS, _STAGES[1:]) if _taken(row, step)]
    return reached[-1] if reached else "called"


def _next_steps(row: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(s for s in CALL_STEPS if not _taken(row, s) and all(_taken(row, b) for b in _BEFORE[s]))


def plan_call(*, street_code: Any, department_codes: Any, problem: Any, departments: Collection[str],
              order: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A call checked: the 街道 (9 digits; an order's own 街道), the departments (known, each once), the problem.

    ``order`` is the order called on (None: a standing problem).
    """
    func = "call_departments"
    digits = CODE_DIGITS["street_code"]
    if not isinstance(street_code, str) or not (street_code.isdigit() and len(street_code) == digits):
        raise ParameterError(f"{func}: street_code={street_code!r}; expected the calling 街道's {digits}-digit code")
    if order is not None and order.get("street_code") != street_code:
        raise ParameterError(f"{func}: work order {order['order_id']!r} lies in 街道 {order.get('street_code')!r}, "
                             f"not {street_code!r}; expected the 街道 of the order")
    if isinstance(department_codes, str) or not isinstance(department_codes, Sequence) or not department_codes:
        raise ParameterError(f"{func}: department_codes={department_codes!r}; expected a list of one or more "
                             "department codes")
    codes = tuple(str(code).strip() for code in department_codes)
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    unknown = [c for c in codes if c not in departments]
    if repeated:
        raise ParameterError(f"{func}: department_codes name {repeated} more than once; expected each once")
    if unknown:
        raise NotFoundError(f"{func}: {unknown} are not departments of the registry; expected codes such as "
                            f"{sorted(departments)[:5]}")
    problem = _checks.text(func, "problem", problem, max_length=4000, required=True)
    return {"street_code": street_code, "department_codes": codes, "problem": problem}


def plan_call_step(row: Mapping[str, Any], step: str, *, at: Any = None) -> dict[str, Any]:
    """The column a called department's ``step`` fills (``{"signed_at": at}`` ...), or the refusal.

    ``row`` is the department's row of the call (``call_id``, ``department_code``
    and the times so far). The refusal names the call, where the department's
    response stands and the steps allowed next.
    """
    _checks.choice("call_step", "step", step, CALL_STEPS)
    allowed = _next_steps(row)
    if step not in allowed:
        missing = [b for b in _BEFORE[step] if not _taken(row, b)]
        reason = (f"{row['department_code']} has not {'signed' if missing[0] == 'sign' else 'contacted'} yet"
                  if missing else f"{row['department_code']} already took it")
        raise InvalidTransition(f"call {row['call_id']}", _stage(row), step, allowed, reason)
    return {CALL_STEP_COLUMNS[step]: now_cst() if at is None else to_cst(at)}


def plan_rating(call: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], department_code: Any, rating: Any,
                note: Any = None, *, at: Any = None) -> dict[str, Any]:
    """The 街道's rating of one called department (1-5, once), or the refusal.

    ``rows`` are the call's department rows; a department not among them was
    not called and cannot be rated.
    """
    func = "rate"
    called = [r["department_code"] for r in rows]
    if department_code not in called:
        raise ParameterError(f"{func}: call {call['call_id']} did not call department {department_code!r}; it "
                             f"called {called} (only a called department's response is rated)")
    row = next(r for r in rows if r["department_code"] == department_code)
    if row.get("rating") is not None and not pd.isna(row["rating"]):
        raise ParameterError(f"{func}: call {call['call_id']}: {department_code} was already rated "
                             f"({int(row['rating'])}); a response is rated once")
    if isinstance(rating, bool) or not isinstance(rating, int) or rating not in RATINGS:
        raise ParameterError(f"{func}: rating={rating!r}; expected a whole number from 1 (poor) to 5 (excellent)")
    note = _checks.text(func, "note", note, max_length=4000)
    return {"rating": int(rating), "rating_note": note, "rated_at": now_cst() if at is None else to_cst(at)}
