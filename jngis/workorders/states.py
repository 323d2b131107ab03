"""The state table of the 12345 closed loop: states, their groups, the steps between them.

A leaf module: it imports nothing from jngis but :mod:`jngis.errors`, so
:mod:`jngis.layers` (the layer schema) and :mod:`jngis.codes` (the
vocabulary) can take the states from here without an import cycle.

Examples
--------
>>> allowed_actions("resolved")
('closed', 'reopened')
>>> set(OPEN_STATES) | set(FINISHED_STATES) == set(STATES)
True
"""

from __future__ import annotations

from jngis.errors import InvalidTransition, ParameterError

__all__ = [
    "STATES",
    "OPEN_STATES",
    "FINISHED_STATES",
    "ACTIONS",
    "TRANSITIONS",
    "NOTE_REQUIRED",
    "allowed_actions",
    "next_state",
]

#: Every state of an order: the closed loop, plus ``returned`` (wrongly routed).
STATES: tuple[str, ...] = ("received", "dispatched", "in_progress", "resolved", "closed", "returned")
#: States in which the problem is solved (resolved, possibly closed after feedback).
FINISHED_STATES: tuple[str, ...] = ("resolved", "closed")
#: States in which the order still waits for its problem to be solved: all the others.
OPEN_STATES: tuple[str, ...] = tuple(state for state in STATES if state not in FINISHED_STATES)
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
