"""The steps a principal may take on one order now, with the fields each one asks for.

The viewer's order detail renders these as buttons and small forms; the
server's routes take the same field names. What is allowed comes from three
places only: the state table (:func:`jngis.workorders.states.allowed_actions`),
the role (:func:`jngis.access.may_take_step`) and the principal's scope
(:func:`jngis.access.order_scope`); the order's department-loop fields, when
the record carries them, leave out steps that would be refused anyway (a
second extension request, a decision with no request waiting, supervision
without a red card, a second callback).

Examples
--------
>>> from jngis import access
>>> order = {"order_id": "W1", "status": "dispatched", "department_code": "370102-CG",
...          "street_code": "370102003", "grid_code": "370102003001001"}
>>> department = access.Principal("u-9", "王五", "department", ("370102-CG",))
>>> [a["action"] for a in actions_for(order, department)]
['returned', 'sign', 'extension_request']
>>> actions_for(order, department)[1]["label"]
'签收'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from jngis import access
from jngis.codes import VALUE_LABELS, label
from jngis.errors import InputTypeError
from jngis.workorders.clocks import MAX_EXTENSION_WORKING_DAYS, RESOLVE_WORKING_DAYS
from jngis.workorders.loop import CALLBACK_LEVELS, card
from jngis.workorders.states import STATES, allowed_actions

__all__ = ["OFFERED_FIELDS", "actions_for"]

# Steps the table keeps for old trails but no one is offered any more (延期 is now request + decision).
_NOT_OFFERED = frozenset({"extended"})


def _field(name: str, kind: str, required: bool = False, heading: str | None = None, **more: Any) -> dict[str, Any]:
    return {"name": name, "label": label(heading or name), "type": kind, "required": required, **more}


def _note(required: bool) -> dict[str, Any]:
    return _field("note", "text", required, max_length=4000)


def _choices(column: str, values: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"value": v, "label": VALUE_LABELS[column][v]} for v in values]


#: step -> the fields its form asks for (name, Chinese label, type, required, limits).
OFFERED_FIELDS: dict[str, list[dict[str, Any]]] = {
    "dispatched": [_field("department_code", "department"), _note(False)],
    "in_progress": [_note(False)],
    "resolved": [_note(False)],
    "closed": [_note(False)],
    "returned": [_note(True)],
    "reopened": [_note(True)],
    "sign": [_note(False)],
    "contact": [_note(False)],
    "on_site": [_note(False)],
    "reply": [_note(True)],
    "extension_request": [_note(True), _field("days", "integer", False, minimum=1,
                                              maximum=MAX_EXTENSION_WORKING_DAYS)],
    "extension_decision": [_field("granted", "boolean", True), _note(False)],
    "supervise": [_note(True), _field("days", "integer", False, minimum=1, maximum=RESOLVE_WORKING_DAYS)],
    "callback": [_field("level", "choice", True, "callback_level", choices=_choices("callback", CALLBACK_LEVELS)),
                 _note(False)],
    "rehandle": [_note(False)],
    "verify": [_field("passed", "boolean", False), _note(False)],
    "merge": [_field("master_id", "text", True, max_length=40), _note(False)],
    "call": [_field("department_codes", "departments", True), _note(True)],
}


def _present(value: Any) -> bool:
    return value is not None and not (not isinstance(value, str) and pd.isna(value))


# The hotline's shortcuts that an order dispatched to a department takes as the department's steps.
_DEPARTMENT_INSTEAD = {"in_progress": "sign", "resolved": "reply"}


def _refused_anyway(order: Mapping[str, Any], step: str) -> bool:
    """Whether the order's own fields (when the record carries them) already rule ``step`` out."""
    if step in _DEPARTMENT_INSTEAD and _present(order.get("department_code")):
        return True
    if step == "extension_request":
        return _present(order.get("extended_days")) or _present(order.get("extension_requested_at"))
    if step == "extension_decision":
        return not _present(order.get("extension_requested_at")) or _present(order.get("extension_decision"))
    if step == "supervise":
        return card(order.get("status"), order.get("due_at"), order.get("warn_at")) != "red" \
            if "due_at" in order else False
    if step == "callback":
        return _present(order.get("callback"))
    return False


def actions_for(order: Mapping[str, Any], principal: access.Principal) -> list[dict[str, Any]]:
    """The steps ``principal`` may take on ``order`` now: ``[{"action", "label", "fields"}, ...]``.

    ``order`` is the order's record (at least ``status`` and the columns of
    its scope: ``street_code``, ``grid_code``, ``department_code`` ...). A
    principal who may not see the order, or may not move orders, gets ``[]``.
    The label of a re-dispatch (``dispatched`` from ``returned``) is 改派.
    """
    if not isinstance(order, Mapping):
        raise InputTypeError(f"actions_for: order is a {type(order).__name__}; expected the order's record")
    who = access.principal(principal)
    state = str(order.get("status"))
    if state not in STATES:
        allowed_actions(state)  # the refusal naming the states
    if not access.order_scope(who).contains(order):
        return []
    out = []
    for step in allowed_actions(state):
        if step in _NOT_OFFERED or not access.may_take_step(who, step) or _refused_anyway(order, step):
            continue
        if step == "call" and not access.can(who, "departments.call"):
            continue
        name = "redispatch" if step == "dispatched" and state == "returned" else step
        out.append({"action": step, "label": VALUE_LABELS["action"][name],
                    "fields": [dict(f) for f in OFFERED_FIELDS.get(step, [_note(False)])]})
    return out
