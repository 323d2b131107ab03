"""The department loop (街呼区应): steps on an order, duplicates, the 街道's calls and their ratings.

Each route is one call to the store (:mod:`jngis.store.steps`); refusals come
back as 409 (a step out of order, naming the allowed ones), 404 (no such order,
department or call) or 422 (a bad option). The principal is the signed-in one
(:func:`jngis.server.auth.current_principal`), passed to the store.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from jngis import access
from jngis.workorders import CALL_STEPS, MAX_TEXT
from ..auth import current_principal, layer_reader, permits
from ..deps import Backend, backend

router = APIRouter(tags=["department loop"])
_ORDER_READER = permits("orders.read")

#: URL name of a step -> the step (the loop's own names; 派单 and 退单 keep the hotline's).
STEP_NAMES: dict[str, str] = {
    "dispatch": "dispatched", "sign": "sign", "contact": "contact", "on_site": "on_site", "reply": "reply",
    "return": "returned", "extension_request": "extension_request", "extension_decision": "extension_decision",
    "supervise": "supervise", "callback": "callback", "rehandle": "rehandle", "verify": "verify",
    "merge": "merge", "close": "closed",
}
StepName = Literal[tuple(STEP_NAMES)]  # type: ignore[valid-type]
CallStep = Literal[CALL_STEPS]  # type: ignore[valid-type]
CallId = Path(..., ge=1, le=2**63 - 1, description="the call's number")


def writer_principal(who: access.Principal = Depends(current_principal)) -> access.Principal:
    """The principal of a write: the signed-in one (the store decides what it may do)."""
    return who


class StepBody(BaseModel):
    """The options of one step (each only for its own step; ``who`` is the token's principal)."""

    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=MAX_TEXT, description="the reason or the result")
    department_code: str | None = Field(None, max_length=40,
                                        description="dispatch: a department, 'catalogue', or none (the 街道)")
    days: int | None = Field(None, ge=1, le=10, description="extension_request / supervise: working days")
    granted: bool | None = Field(None, description="extension_decision: granted or refused")
    level: Literal["satisfied", "basically_satisfied", "not_satisfied"] | None = Field(
        None, description="callback: 满意 / 基本满意 / 不满意")
    passed: bool | None = Field(None, description="verify: passed (default) or not (re-handling)")
    master_id: str | None = Field(None, max_length=64, description="merge: the master order")
    satisfied: bool | None = Field(None, description="close (hotline loop only): the citizen's answer")


def _encoded(payload, status_code: int = 200) -> JSONResponse:
    return JSONResponse(jsonable_encoder(payload), status_code=status_code)


@router.get("/departments", name="list_departments")
def list_departments(store: Backend = Depends(backend), who: access.Principal = Depends(layer_reader)) -> JSONResponse:
    """The departments registry and the dispatch catalogue."""
    departments = store.store.departments()
    departments["districts"] = departments["districts"].map(list)
    return _encoded({"departments": departments.to_dict("records"),
                     "catalogue": store.store.catalogue().to_dict("records")})


@router.get("/workorders/{order_id}/loop", name="workorder_loop")
def order_loop(order_id: str, request: Request, store: Backend = Depends(backend),
               who: access.Principal = Depends(current_principal)) -> JSONResponse:
    """An order's department-loop fields, its deadline card, its trail and the steps the caller may take."""
    return _encoded(store.store.loop_view(order_id, principal=who, actor=who))


@router.post("/workorders/{order_id}/{step}", name="workorder_step")
def take_step(order_id: str, step: StepName, body: StepBody,  # type: ignore[valid-type]
              who: access.Principal = Depends(writer_principal),
              store: Backend = Depends(backend)) -> JSONResponse:
    """One step of the loop: dispatch, sign, contact, on_site, reply, return, extension_request,
    extension_decision, supervise, callback, rehandle, verify, merge, close."""
    options = {k: v for k, v in body.model_dump(exclude={"note"}).items() if v is not None}
    if step == "dispatch" and "department_code" not in options:
        options["department_code"] = None
    record = store.store.step(order_id, STEP_NAMES[step], principal=who, note=body.note, **options)
    store.orders_changed()
    return _encoded(record)


@router.get("/duplicates", name="propose_duplicates")
def propose_duplicates(distance_m: float = Query(50.0, ge=1, le=5000), hours: float = Query(24.0, ge=0.1, le=720),
                       limit: int = Query(200, ge=1, le=5000), store: Backend = Depends(backend),
                       who: access.Principal = Depends(current_principal)) -> JSONResponse:
    """Open orders proposed as duplicates (same category, within ``distance_m`` and ``hours``)."""
    proposed = store.store.propose_duplicates(distance_m=distance_m, hours=hours, principal=who)
    return _encoded({"total": len(proposed), "duplicates": proposed.head(limit).to_dict("records")})


class MergeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pairs: list[tuple[str, str]] = Field(..., min_length=1, max_length=1000,
                                         description="[order_id, master_id] pairs; all merged or none")


@router.post("/duplicates/merge", name="merge_duplicates")
def merge_duplicates(body: MergeBody, who: access.Principal = Depends(writer_principal),
                     store: Backend = Depends(backend)) -> JSONResponse:
    """Merge duplicates into their masters in one write (one refusal and none is merged)."""
    merged = store.store.merge_duplicates([tuple(p) for p in body.pairs], principal=who)
    store.orders_changed()
    return _encoded({"merged": merged})


class CallBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department_codes: list[str] = Field(..., min_length=1, max_length=20)
    problem: str = Field(..., min_length=1, max_length=MAX_TEXT)
    order_id: str | None = Field(None, max_length=64, description="the order called on (none: a standing problem)")
    street_code: str | None = Field(None, min_length=9, max_length=9, description="the calling 街道")


@router.post("/calls", status_code=201, name="call_departments")
def call_departments(body: CallBody, who: access.Principal = Depends(writer_principal),
                     store: Backend = Depends(backend)) -> JSONResponse:
    """A 街道 calls departments (街呼) on an order or a standing problem."""
    call = store.store.call_departments(body.department_codes, problem=body.problem, order_id=body.order_id,
                                        street_code=body.street_code, principal=who)
    store.orders_changed()
    return _encoded(call, 201)


@router.get("/calls/{call_id}", name="get_call")
def get_call(call_id: int = CallId, store: Backend = Depends(backend),
             who: access.Principal = Depends(_ORDER_READER)) -> JSONResponse:
    """One call with each called department's times and rating."""
    return _encoded(store.store.call(call_id, principal=who))


class RatingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: int = Field(..., description="1 (poor) to 5 (excellent)")
    note: str | None = Field(None, max_length=MAX_TEXT)


@router.post("/calls/{call_id}/departments/{department_code}/rating", name="rate_department")
def rate(body: RatingBody, call_id: int = CallId, department_code: str = Path(..., max_length=40),
         who: access.Principal = Depends(writer_principal), store: Backend = Depends(backend)) -> JSONResponse:
    """The calling 街道 rates a called department's response, once (refused for a department not called)."""
    return _encoded(store.store.rate(call_id, department_code, body.rating, note=body.note, principal=who))


@router.post("/calls/{call_id}/departments/{department_code}/{step}", name="call_step")
def call_step(step: CallStep, call_id: int = CallId,
              department_code: str = Path(..., max_length=40), who: access.Principal = Depends(writer_principal),
              store: Backend = Depends(backend)) -> JSONResponse:
    """A called department signs, contacts, goes on site or is done."""
    return _encoded(store.store.call_step(call_id, department_code, step, principal=who))
