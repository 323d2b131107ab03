"""The state table of the 12345 closed loop: states, their groups, the steps between them.

A leaf module: it imports nothing from jngis but :mod:`jngis.errors`, so
:mod:`jngis.layers` (the layer schema) and :mod:`jngis.codes` (the
vocabulary) can take the states from here without an import cycle.

Examples
--------
>>> allowed_actions("resolved")[:2]
('closed', 'reopened')
>>> set(OPEN_STATES) | set(FINISHED_STATES) | set(MERGED_STATES) == set(STATES)
True
"""

from __future__ import annotations

from jngis.errors import InvalidTransition, ParameterError

__all__ = [
    "STATES",
    "OPEN_STATES",
    "FINISHED_STATES",
    "MERGED_STATES",
    "LEGACY_ACTIONS",
    "DEPARTMENT_ACTIONS",
    "ACTIONS",
    "TRANSITIONS",
    "NOTE_REQUIRED",
    "allowed_actions",
    "next_state",
]

#: Every state of an order: the closed loop, ``returned`` (wrongly routed), ``signed`` (签收 by the
#: department or 街道 it was dispatched to) and ``duplicate`` (a report merged into its master order, 并单).
STATES: tuple[str, ...] = ("received", "dispatched", "in_progress", "resolved", "closed", "returned",
                           "signed", "duplicate")
#: States in which the problem is solved (resolved, possibly closed after feedback).
FINISHED_STATES: tuple[str, ...] = ("resolved", "closed")
#: States of a duplicate report merged into its master (并单): neither open nor finished, counted once
#: (with its master).
MERGED_STATES: tuple[str, ...] = ("duplicate",)
#: States in which the order still waits for its problem to be solved: all the others.
OPEN_STATES: tuple[str, ...] = tuple(state for state in STATES
                                     if state not in FINISHED_STATES and state not in MERGED_STATES)
#: The steps of the hotline's own loop (before the departments' steps; orders and trails written
#: with them stay valid: every one is still in :data:`TRANSITIONS`).
LEGACY_ACTIONS: tuple[str, ...] = (
    "dispatched", "in_progress", "resolved", "closed", "returned", "reopened", "extended",
)
#: The department loop's steps (街呼区应): 签收, 联系, 到场, 回复, 延期申请 and 审批, 督办, 回访,
#: 重办 (after an unsatisfied callback), 核查, 并单 and the 街道's call (街呼) on an order.
DEPARTMENT_ACTIONS: tuple[str, ...] = (
    "sign", "contact", "on_site", "reply", "extension_request", "extension_decision", "supervise",
    "callback", "rehandle", "verify", "merge", "call",
)
#: Steps an order can take (the ``to`` of :meth:`Store.transition` and the store's step methods).
ACTIONS: tuple[str, ...] = (*LEGACY_ACTIONS, *DEPARTMENT_ACTIONS)
# Steps that keep the state, taken while an order is being handled.
_WHILE_OPEN = {"extension_request": None, "extension_decision": None, "supervise": None,
               "call": None, "merge": "duplicate"}
#: state -> {step: state after the step}. Anything missing is refused. The hotline's own steps come
#: first in each row (refusals list the allowed steps in this order).
TRANSITIONS: dict[str, dict[str, str]] = {
    "received": {"dispatched": "dispatched", "merge": "duplicate"},
    "dispatched": {"in_progress": "in_progress", "returned": "returned", "extended": "dispatched",
                   "sign": "signed"},
    "signed": {"returned": "returned", "contact": "in_progress"},
    "in_progress": {"resolved": "resolved", "returned": "returned", "extended": "in_progress",
                    "on_site": "in_progress", "reply": "resolved"},
    "returned": {"dispatched": "dispatched", "merge": "duplicate"},
    "resolved": {"closed": "closed", "reopened": "in_progress", "callback": "resolved",
                 "rehandle": "in_progress", "verify": "resolved"},
    "closed": {},
    "duplicate": {},
}
for _state in ("dispatched", "signed", "in_progress"):
    TRANSITIONS[_state].update({step: after or _state for step, after in _WHILE_OPEN.items()})
#: Steps that must give a reason (``note``).
NOTE_REQUIRED = frozenset({"returned", "reopened", "extended", "extension_request", "supervise", "reply",
                           "call"})


def allowed_actions(state: str) -> tuple[str, ...]:
    """The steps allowed from ``state``.

    Examples
    --------
    >>> allowed_actions("in_progress")[:3]
    ('resolved', 'returned', 'extended')
    >>> allowed_actions("signed")[:2]
    ('returned', 'contact')
    """
    if state not in TRANSITIONS:
        raise ParameterError(f"state={state!r} is not a work-order state; expected one of {', '.join(STATES)}")
    return tuple(TRANSITIONS[state])


def check_action(action: str) -> str:
    """``action`` if it is one of :data:`ACTIONS`, else :class:`ParameterError`."""
    if action not in ACTIONS:
        raise ParameterError(f"to={action!r} is not a work-order step; expected one of {', '.join(ACTIONS)}")
    return action


def next_state(order_id: str, state: str, action: str) -> str:
    """The state after ``action``, or :class:`InvalidTransition`.

    Examples
    --------
    >>> next_state("W1", "resolved", "reopened")
    'in_progress'
    >>> next_state("W1", "closed", "reopened")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    jngis.errors.InvalidTransition: work order 'W1' is 'closed': it cannot go to 'reopened'; allowed next: none ...
    """
    check_action(action)
    allowed = allowed_actions(state)
    if action not in allowed:
        raise InvalidTransition(order_id, state, action, allowed)
    return TRANSITIONS[state][action]

#: Trail rows that record an event without a step: the state stays (``from_state == to_state``).
#: ``replaced``: a boundary version moved an open order into another grid (jngis.store.versions).
RECORD_ACTIONS = frozenset({"replaced"})
