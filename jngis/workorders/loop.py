"""The departments' steps of the loop (街呼区应): plan each one, check it, return what to write.

Pure like :mod:`jngis.workorders.orders`: a store calls :func:`plan_step`
inside its transaction with the order's row, its department-loop row (the
``order_loop`` table: :data:`LOOP_COLUMNS`) and writes the three results
together, so a refused step writes nothing.

The rules (:class:`LoopRules`, Shandong practice as the defaults):

- **dispatch** (派单) to the order's 街道 (``department_code=None``) or straight
  to a department (一单直达); each dispatch, re-dispatch (改派) after a return
  included, restarts the 5-working-day clock and the signing clock;
- **sign** (签收) within ``sign_working_hours`` (1) office hours of the dispatch
  (office hours of working days, :meth:`WorkCalendar.add_working_hours`;
  emergency categories: clock hours), **contact** the caller within
  ``contact_hours`` (24) clock hours of signing, **on_site** where the category
  requires it (:attr:`LoopRules.on_site_categories`) before the **reply** (回复);
  a late step is taken and counted late, never refused;
- **return** (退单) only within ``return_working_days`` (2) working days of the
  dispatch, with a reason;
- **extension_request** (延期申请, a reason, 1-10 working days) at most once per
  order, then **extension_decision** (granted / refused) by the dispatcher;
- **supervise** (督办) only on a red card (the order is past its due time), with
  the notice's own deadline (``supervision_working_days``, 2);
- **callback** (回访) after the reply: ``satisfied`` / ``basically_satisfied`` /
  ``not_satisfied``; not satisfied re-opens the order for **rehandle** (重办,
  the clock restarts); **verify** (核查) before closing where the category
  requires it (:attr:`LoopRules.verify_categories`); an order handled in the
  department loop closes only after a satisfied callback (and its verification);
- **merge** (并单): a duplicate follows its master order (state ``duplicate``).

Examples
--------
>>> import datetime as dt
>>> order = {"order_id": "W1", "status": "received", "category": "环境卫生", "due_at": None,
...          "extended_days": None, "updated_at": dt.datetime(2025, 9, 30, 16)}
>>> changes, loop, rows = plan_step(order, {}, "dispatched", who="派单员", at="2025-09-30 17:00",
...                                 department_code="370102-CG", departments={"370102-CG"})
>>> changes["department_code"], loop["sign_due_at"]  # 30 min left on 30 Sep, then National Day
('370102-CG', datetime.datetime(2025, 10, 9, 9, 0))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from jngis.errors import InputTypeError, InvalidTransition, NotFoundError, ParameterError
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
from jngis.workorders.orders import _text, plan_transition
from jngis.workorders.states import DEPARTMENT_ACTIONS, NOTE_REQUIRED, allowed_actions, check_action, next_state

__all__ = ["CALLBACK_LEVELS", "LOOP_COLUMNS", "LoopRules", "DEFAULT_RULES", "plan_step", "replay_loop", "card"]

#: The callback's answers (回访): 满意, 基本满意, 不满意.
CALLBACK_LEVELS: tuple[str, ...] = ("satisfied", "basically_satisfied", "not_satisfied")
#: The columns of an order's department-loop row (table ``order_loop``), besides ``order_id``.
LOOP_COLUMNS: tuple[str, ...] = (
    "sign_due_at", "signed_at", "contact_due_at", "contacted_at", "on_site_at", "replied_at",
    "extension_days", "extension_requested_at", "extension_decision", "supervised_at",
    "supervision_due_at", "callback", "verified_at", "master_id",
)
#: The loop columns holding times.
LOOP_TIME_COLUMNS: tuple[str, ...] = tuple(c for c in LOOP_COLUMNS if c.endswith("_at"))
# What a re-handling (重办) or a re-dispatch clears: the steps must be taken again.
_REDONE = ("on_site_at", "replied_at", "callback", "verified_at")
_REDISPATCHED = ("signed_at", "contacted_at", *_REDONE)


class LoopRules(NamedTuple):
    """The department loop's time limits and the categories with extra steps (all configurable)."""

    sign_working_hours: float = 1.0
    contact_hours: float = 24.0
    return_working_days: int = 2
    supervision_working_days: int = 2
    #: Categories whose reply needs an on-site visit first (到场).
    on_site_categories: frozenset[str] = frozenset({"违章建筑", "市政设施", "供水供暖", "环境卫生"})
    #: Categories verified (核查) before closing: the city-management matters.
    verify_categories: frozenset[str] = frozenset({"环境卫生", "违章建筑", "市政设施"})
    #: Categories whose signing clock runs around the clock (clock hours, not office hours).
    emergency_categories: frozenset[str] = frozenset({"供水供暖", "治安隐患"})


DEFAULT_RULES = LoopRules()


def card(status: Any, due_at: Any, warn_at: Any, now: Any = None) -> str | None:
    """The deadline card of an open order: ``"yellow"`` from ``warn_at`` (1 working day before due),
    ``"red"`` after ``due_at``, else None (no card; finished and merged orders have none).

    Examples
    --------
    >>> import datetime as dt
    >>> card("in_progress", dt.datetime(2025, 10, 13, 15), dt.datetime(2025, 10, 11, 15), dt.datetime(2025, 10, 12))
    'yellow'
    """
    if status in ("resolved", "closed", "duplicate"):
        return None
    state = deadline(status, due_at, warn_at, None, now)
    return {"warning": "yellow", "overdue": "red"}.get(state or "")


def plan_step(order: Mapping[str, Any], loop: Mapping[str, Any], action: str, *, who: str, at: Any = None,
              note: str | None = None, department_code: str | None = None,
              departments: Collection[str] | None = None, days: int | None = None, level: str | None = None,
              granted: bool | None = None, passed: bool | None = None, satisfied: bool | None = None,
              master: Mapping[str, Any] | None = None, rules: LoopRules = DEFAULT_RULES,
              calendar: WorkCalendar = CALENDAR) -> tuple[dict, dict, list[dict]]:
    """Check one step of ``order`` and return ``(order_changes, loop_changes, trail_rows)``.

    ``order`` is the order's row (``order_id``, ``status``, ``category``,
    ``dispatched_at``, ``due_at``, ``warn_at``, ``extended_days``,
    ``updated_at``); ``loop`` its department-loop row (empty when it has none).
    Options by step: ``department_code`` and ``departments`` (the registry's
    codes) for ``dispatched``; ``days`` for ``extension_request``,
    ``supervise`` and the old ``extended``; ``granted`` for
    ``extension_decision``; ``level`` (:data:`CALLBACK_LEVELS`) for
    ``callback``; ``passed`` for ``verify``; ``master`` (the master's row) for
    ``merge``; ``satisfied`` for the old ``closed``. Refusals name the order,
    its state and the steps allowed from it.
    """
    order_id, state = str(order["order_id"]), order["status"]
    check_action(action)
    next_state(order_id, state, action)
    _only_options(action, department_code=department_code, days=days, level=level, granted=granted,
                  passed=passed, master=master)
    at = _when(at, order.get("updated_at"))
    who = _text(who, "who", required=True, limit=100)
    step = _Step(order_id, state, dict(order), dict(loop), at, who, note, rules, calendar)
    if action in DEPARTMENT_ACTIONS:
        note = _text(note, "note", required=action in NOTE_REQUIRED)
        step = step._replace(note=note)
        return _PLANNERS[action](step, days=days, level=level, granted=granted, passed=passed, master=master)
    return _old_step(step, action, department_code=department_code, departments=departments, days=days,
                     satisfied=satisfied)


class _Step(NamedTuple):
    order_id: str
    state: str
    order: dict
    loop: dict
    at: dt.datetime
    who: str
    note: str | None
    rules: LoopRules
    calendar: WorkCalendar

    def row(self, action: str, to_state: str | None = None, note: str | None = None,
            from_state: str | None = None) -> dict:
        return {"action": action, "from_state": from_state or self.state,
                "to_state": to_state or next_state(self.order_id, from_state or self.state, action),
                "who": self.who, "at": self.at, "note": self.note if note is None else note}

    def refuse(self, action: str, reason: str, state: str | None = None) -> InvalidTransition:
        state = state or self.state
        allowed = tuple(a for a in allowed_actions(state) if a != action)
        return InvalidTransition(self.order_id, state, action, allowed, reason)


_OPTIONS = {"department_code": ("dispatched",), "days": ("extension_request", "supervise", "extended"),
            "level": ("callback",), "granted": ("extension_decision",), "passed": ("verify",),
            "master": ("merge",)}


def _only_options(action: str, **options: Any) -> None:
    for name, value in options.items():
        if value is not None and action not in _OPTIONS[name]:
            raise ParameterError(f"{name}={value!r} is only for the {' / '.join(map(repr, _OPTIONS[name]))} "
                                 f"step, not {action!r}")


def _when(at: Any, last_at: Any) -> dt.datetime:
    at = now_cst() if at is None else to_cst(at)
    if last_at is not None and not pd.isna(last_at) and at < pd.Timestamp(last_at):
        raise ParameterError(f"at={at:%Y-%m-%d %H:%M:%S} is before the order's last step at "
                             f"{pd.Timestamp(last_at):%Y-%m-%d %H:%M:%S}; expected a time at or after it")
    return at


def _present(value: Any) -> bool:
    return value is not None and not (not isinstance(value, str) and pd.isna(value))


def _flag(name: str, value: Any, required: bool = True) -> bool | None:
    if value is None and not required:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise InputTypeError(f"{name} is a {type(value).__name__} ({value!r}); expected True or False")
    return bool(value)


def _clock(step: _Step, start: dt.datetime, hours: float) -> dt.datetime:
    """``hours`` after ``start``: office hours, or clock hours for an emergency category."""
    if step.order.get("category") in step.rules.emergency_categories:
        return start + dt.timedelta(hours=hours)
    return step.calendar.add_working_hours(start, hours)


# --------------------------------------------------------------------------- the hotline's steps


def _old_step(step: _Step, action: str, *, department_code: Any, departments: Any, days: Any,
              satisfied: Any) -> tuple[dict, dict, list[dict]]:
    """The hotline's own steps (:data:`LEGACY_ACTIONS`) with the department loop's rules added."""
    loop: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    _text(step.note, "note", required=action in NOTE_REQUIRED)  # a missing reason is named first
    if action == "dispatched":
        extra["department_code"] = _department(step, department_code, departments)
        loop = {c: None for c in _REDISPATCHED}
        loop["sign_due_at"] = _clock(step, step.at, step.rules.sign_working_hours)
    elif action == "returned":
        _check_return(step)
    elif action == "closed" and _present(step.loop.get("signed_at")):
        satisfied = _check_close(step, satisfied)
    elif action == "reopened":
        loop = {c: None for c in _REDONE}
    changes, row = plan_transition(step.order, action, who=step.who, at=step.at, note=step.note, days=days,
                                   satisfied=satisfied, calendar=step.calendar)
    return {**changes, **extra}, loop, [row]


def _department(step: _Step, code: Any, departments: Collection[str] | None) -> str | None:
    if code is None:
        return None  # to the order's 街道
    if not isinstance(code, str) or not code.strip():
        raise InputTypeError(f"department_code={code!r}; expected a department's code or None (the 街道)")
    if departments is None or code.strip() not in departments:
        known = sorted(departments or ())
        raise NotFoundError(f"work order {step.order_id!r}: department_code={code!r} is not a department of the "
                            f"registry; expected one of {known[:8]}{' ...' if len(known) > 8 else ''} or none "
                            "(dispatch to the 街道)")
    return code.strip()


def _check_return(step: _Step) -> None:
    dispatched = step.order.get("dispatched_at")
    if not _present(dispatched):
        return
    limit = step.calendar.add_working_days(pd.Timestamp(dispatched).to_pydatetime(), step.rules.return_working_days)
    if step.at > limit:
        raise step.refuse("returned", f"an order is returned only within {step.rules.return_working_days} working "
                                      f"days of its dispatch; dispatched {pd.Timestamp(dispatched):%Y-%m-%d %H:%M}, "
                                      f"the limit was {limit:%Y-%m-%d %H:%M}")


def _check_close(step: _Step, satisfied: Any) -> bool:
    """A department-loop order closes after a satisfied callback and, where required, its verification."""
    if satisfied is not None:
        raise ParameterError("satisfied is not taken when closing an order handled by a department; its "
                             "callback (step 'callback') gives the citizen's answer")
    if step.loop.get("callback") not in ("satisfied", "basically_satisfied"):
        raise step.refuse("closed", "no satisfied callback yet: call the citizen back first (回访)")
    if step.order.get("category") in step.rules.verify_categories and not _present(step.loop.get("verified_at")):
        raise step.refuse("closed", f"category {step.order.get('category')!r} is verified before closing (核查)")
    return True


# --------------------------------------------------------------------------- the departments' steps


def _sign(step: _Step, **_: Any) -> tuple[dict, dict, list[dict]]:
    due = step.at + dt.timedelta(hours=step.rules.contact_hours)  # the caller is contacted in clock hours
    return _moved(step, "sign"), {"signed_at": step.at, "contact_due_at": due}, [step.row("sign")]


def _contact(step: _Step, **_: Any) -> tuple[dict, dict, list[dict]]:
    return _moved(step, "contact"), {"contacted_at": step.at}, [step.row("contact")]


def _on_site(step: _Step, **_: Any) -> tuple[dict, dict, list[dict]]:
    return _moved(step, "on_site"), {"on_site_at": step.at}, [step.row("on_site")]


def _reply(step: _Step, **_: Any) -> tuple[dict, dict, list[dict]]:
    category = step.order.get("category")
    if category in step.rules.on_site_categories and not _present(step.loop.get("on_site_at")):
        raise step.refuse("reply", f"category {category!r} needs an on-site visit (到场) before the reply")
    changes = {**_moved(step, "reply"), "resolved_at": step.at}
    return changes, {"replied_at": step.at}, [step.row("reply")]


def _moved(step: _Step, action: str) -> dict[str, Any]:
    return {"status": next_state(step.order_id, step.state, action), "updated_at": step.at}


def _extension_request(step: _Step, *, days: Any, **_: Any) -> tuple[dict, dict, list[dict]]:
    if _present(step.order.get("extended_days")) or _present(step.loop.get("extension_requested_at")):
        raise step.refuse("extension_request", "an order is extended at most once and its extension was "
                                               "already requested")
    days = MAX_EXTENSION_WORKING_DAYS if days is None else days
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or not 1 <= days <= MAX_EXTENSION_WORKING_DAYS:
        raise ParameterError(f"days={days!r}; expected a whole number of working days from 1 to "
                             f"{MAX_EXTENSION_WORKING_DAYS}")
    loop = {"extension_days": int(days), "extension_requested_at": step.at, "extension_decision": None}
    return _moved(step, "extension_request"), loop, [step.row("extension_request")]


def _extension_decision(step: _Step, *, granted: Any, **_: Any) -> tuple[dict, dict, list[dict]]:
    granted = _flag("granted", granted)
    if not _present(step.loop.get("extension_requested_at")) or _present(step.loop.get("extension_decision")):
        raise step.refuse("extension_decision", "no extension request is waiting for a decision")
    changes = _moved(step, "extension_decision")
    if granted:
        days = int(step.loop["extension_days"])
        base = step.order.get("due_at")
        base = step.at if not _present(base) else pd.Timestamp(base).to_pydatetime()
        changes.update(due_fields(base, days, step.calendar), extended_days=days)
    decision = "granted" if granted else "refused"
    note = step.note or ("同意延期" if granted else "不同意延期")
    return changes, {"extension_decision": decision}, [step.row("extension_decision", note=note)]


def _supervise(step: _Step, *, days: Any, **_: Any) -> tuple[dict, dict, list[dict]]:
    colour = card(step.state, step.order.get("due_at"), step.order.get("warn_at"), step.at)
    if colour != "red":
        raise step.refuse("supervise", f"a supervision notice (督办单) is raised on a red card only; the order is "
                                       f"due {pd.Timestamp(step.order.get('due_at')):%Y-%m-%d %H:%M}")
    days = step.rules.supervision_working_days if days is None else days
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or not 1 <= days <= RESOLVE_WORKING_DAYS:
        raise ParameterError(f"days={days!r}; expected the notice's time limit in working days, 1 to "
                             f"{RESOLVE_WORKING_DAYS}")
    loop = {"supervised_at": step.at, "supervision_due_at": step.calendar.add_working_days(step.at, int(days))}
    return _moved(step, "supervise"), loop, [step.row("supervise")]


def _callback(step: _Step, *, level: Any, **_: Any) -> tuple[dict, dict, list[dict]]:
    if level not in CALLBACK_LEVELS:
        raise ParameterError(f"level={level!r}; expected one of {list(CALLBACK_LEVELS)}")
    if _present(step.loop.get("callback")):
        raise step.refuse("callback", f"the citizen was already called back ({step.loop['callback']})")
    rows = [step.row("callback", note=step.note or level)]
    changes = {**_moved(step, "callback"), "satisfied": level != "not_satisfied"}
    if level != "not_satisfied":
        return changes, {"callback": level}, rows
    rehandle_changes, loop, more = _rehandle(step, note="回访不满意，重办")
    return {**changes, **rehandle_changes}, {**loop, "callback": None}, rows + more


def _rehandle(step: _Step, note: str | None = None, **_: Any) -> tuple[dict, dict, list[dict]]:
    changes = {**_moved(step, "rehandle"), "resolved_at": None,
               **due_fields(step.at, RESOLVE_WORKING_DAYS, step.calendar)}
    return changes, {c: None for c in _REDONE}, [step.row("rehandle", note=note)]


def _verify(step: _Step, *, passed: Any, **_: Any) -> tuple[dict, dict, list[dict]]:
    passed = _flag("passed", True if passed is None else passed)
    rows = [step.row("verify", note=step.note or ("核查通过" if passed else "核查未通过"))]
    if passed:
        return _moved(step, "verify"), {"verified_at": step.at}, rows
    changes, loop, more = _rehandle(step, note="核查未通过，重办")
    return changes, loop, rows + more


def _merge(step: _Step, *, master: Any, **_: Any) -> tuple[dict, dict, list[dict]]:
    if not isinstance(master, Mapping):
        raise InputTypeError(f"master is a {type(master).__name__}; expected the master order's record")
    if str(master["order_id"]) == step.order_id:
        raise ParameterError(f"work order {step.order_id!r} cannot be merged into itself")
    if master["status"] in ("duplicate", "closed"):
        raise ParameterError(f"master order {master['order_id']!r} is {master['status']!r}; expected an order "
                             "that is neither merged nor closed")
    if master.get("category") != step.order.get("category"):
        raise ParameterError(f"work order {step.order_id!r} is {step.order.get('category')!r} but master "
                             f"{master['order_id']!r} is {master.get('category')!r}; expected the same category")
    note = step.note or f"并入 {master['order_id']}"
    return _moved(step, "merge"), {"master_id": str(master["order_id"])}, [step.row("merge", note=note)]


def _call(step: _Step, **_: Any) -> tuple[dict, dict, list[dict]]:
    return _moved(step, "call"), {}, [step.row("call")]


def replay_loop(order: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], *, rules: LoopRules = DEFAULT_RULES,
                calendar: WorkCalendar = CALENDAR, extension_days: int | None = None,
                granted: bool | None = None) -> tuple[dict, dict | None]:
    """Take an order's trail ``rows`` (after its creation) through :func:`plan_step`, as a store would.

    ``order`` is the order as created (``order_id``, ``category``,
    ``status`` ``received``, ``due_at``, ``warn_at``, ``updated_at`` ...);
    ``rows`` its later trail rows (``action``, ``who``, ``at``, ``note``) in
    the order they were written. Returns ``(order, loop)``: the order after
    the last step and its department-loop row, None when no step wrote one
    (as :meth:`jngis.store.Store.step` writes it only then). What a trail row
    does not record is taken as follows: a callback's level is its note when
    that is a level, ``not_satisfied`` when the re-handling it planned
    follows, else ``satisfied``; a verification failed when the re-handling
    follows; an extension asked for ``extension_days`` (default: the most)
    and was ``granted`` (default: True); a dispatch went to the order's 街道
    (the loop row does not depend on who). A row the loop refuses raises
    its refusal, naming the order.

    Examples
    --------
    >>> import datetime as dt
    >>> order = {"order_id": "W1", "status": "received", "category": "环境卫生", "due_at": None,
    ...          "extended_days": None, "updated_at": dt.datetime(2025, 10, 9, 9)}
    >>> rows = [{"action": a, "who": "x", "at": dt.datetime(2025, 10, 9, 10 + i), "note": None}
    ...         for i, a in enumerate(["dispatched", "sign", "contact", "on_site"])]
    >>> order, loop = replay_loop(order, rows)
    >>> order["status"], loop["on_site_at"]
    ('in_progress', datetime.datetime(2025, 10, 9, 13, 0))
    """
    order, written = dict(order), False
    loop: dict[str, Any] = {}
    position = 0
    while position < len(rows):
        row = rows[position]
        action, note = row["action"], row.get("note")
        follows = rows[position + 1] if position + 1 < len(rows) else None
        redone = follows is not None and follows["action"] == "rehandle" and follows["at"] == row["at"]
        options: dict[str, Any] = {}
        if action == "callback":
            options["level"] = note if note in CALLBACK_LEVELS else "not_satisfied" if redone else "satisfied"
            note = None if note in CALLBACK_LEVELS else note
        elif action == "verify":
            options["passed"] = not redone
        elif action == "extension_request":
            options["days"] = extension_days
        elif action == "extension_decision":
            options["granted"] = True if granted is None else granted
        elif action == "extended":
            options["days"] = extension_days
        changes, loop_changes, planned = plan_step(order, loop, action, who=row["who"], at=row["at"], note=note,
                                                   rules=rules, calendar=calendar, **options)
        order.update(changes)
        if loop_changes:
            loop.update(loop_changes)
            written = True
        position += len(planned)  # a step that planned a re-handling took the row after it too
    return order, ({c: loop.get(c) for c in LOOP_COLUMNS} if written else None)


_PLANNERS: dict[str, Any] = {
    "sign": _sign, "contact": _contact, "on_site": _on_site, "reply": _reply,
    "extension_request": _extension_request, "extension_decision": _extension_decision, "supervise": _supervise,
    "callback": _callback, "rehandle": _rehandle, "verify": _verify, "merge": _merge, "call": _call,
}
