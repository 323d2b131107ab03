"""12345 work orders: report, list, read, move along the closed loop, reveal a caller.

Every route passes the principal (:func:`jngis.server.auth.current_principal`)
to the store, which filters in SQL and refuses what the role may not do: an
order outside the scope reads as missing (404, the same answer as an order
that does not exist) and refuses writes (403). Reads show a caller's name and
phone masked (roles with a need) or not at all; the full values come only from
``POST /workorders/{id}/reveal`` with a reason, which the access log records.
The trail's ``who`` is the principal: a body naming one is refused (422).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from jngis.access import Principal
from jngis.codes import INPUT_CRS_NAMES
from jngis.errors import ParameterError
from jngis.features import parse_datetime
from jngis.query import FILTER_LANGS, MAX_FILTER_CHARS, ORDER_FIELDS, build_query, card_query, parse_sortby
from jngis.query import Query as FeatureQuery
from jngis.store import MAX_OFFSET
from jngis.workorders import actions_for
from jngis.workorders import card as card_of
from ..auth import client_of, current_principal
from ..deps import Backend, StoreJSON, backend
from ..urls import url_for

router = APIRouter(tags=["work orders"])


class Body(BaseModel):
    """A request body: no unknown field, and no ``who`` (the actor is the signed-in principal)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_who(cls, data):
        if isinstance(data, dict) and "who" in data:
            raise ValueError("who: a request body names no actor; the trail records the signed-in principal")
        return data


class Caller(BaseModel):
    """Who called: kept in the store for call-backs, never shown by a read."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, max_length=40)


class Report(Body):
    """A citizen's report at a location: lon/lat, or an address placed at its unit."""
    lon: float | None = Field(None, description="longitude in the system named by crs")
    lat: float | None = Field(None, description="latitude in the system named by crs")
    address: str | None = Field(None, min_length=1, max_length=200,
                                description="instead of lon/lat: an address, e.g. 文化东路68号山大新村3号楼")
    crs: Literal[INPUT_CRS_NAMES] = Field(  # type: ignore[valid-type]
        "wgs84", description="wgs84 (GPS), cgcs2000 (official data), gcj02 (Amap, Tencent) or bd09 (Baidu)")
    category: str = Field(..., max_length=50, description="one of the 11 categories of grid matters")
    description: str | None = Field(None, max_length=4000)
    caller: Caller | None = None

    @model_validator(mode="after")
    def _one_location(self) -> Report:
        if (self.address is None) == (self.lon is None or self.lat is None) or (
                self.address is not None and (self.lon is not None or self.lat is not None)):
            raise ValueError("give either lon and lat, or address (not both)")
        return self


class Step(Body):
    """One step of an order along the closed loop."""
    to: str = Field(..., description="dispatched, in_progress, resolved, closed, returned, reopened, extended")
    note: str | None = Field(None, max_length=4000, description="the reason (needed to return, reopen, extend)")
    days: int | None = Field(None, description="working days of an extension (1-10, default 10)")
    satisfied: bool | None = Field(None, description="the citizen's answer when closing")


class Reveal(Body):
    """Why the full caller details are needed (kept in the access log with who, when and from where)."""

    reason: str = Field(..., min_length=2, max_length=500, description="e.g. 回访来电人核实处理结果")


def _encoded(payload, status_code: int = 200, headers=None) -> JSONResponse:
    return StoreJSON(payload, status_code=status_code, headers=headers)


#: The step of the loop each department-loop route takes (server/routes/departments.py names them).
def _step_routes() -> dict[str, str]:
    from .departments import STEP_NAMES

    return {step: name for name, step in STEP_NAMES.items()}


def _with_actions(order: dict, who: Principal, request: Request) -> dict:
    """An order with the steps ``who`` may take on it now (:func:`jngis.workorders.actions_for`),
    each with the address that takes it (``href``) and the fixed part of its body: the viewer
    draws buttons and forms from this alone."""
    routes, actions = _step_routes(), []
    for action in actions_for(order, who):
        step = action["action"]
        if step in routes:
            href = url_for(request, "workorder_step", order_id=order["order_id"], step=routes[step])
            actions.append({**action, "href": href, "body": {}})
        elif step in ("in_progress", "resolved", "reopened"):
            href = url_for(request, "transition_workorder", order_id=order["order_id"])
            actions.append({**action, "href": href, "body": {"to": step}})
        # a call on departments (街呼) is made from its own form (POST /calls), not an order button
    return {**order, "actions": actions}


@router.post("/workorders", status_code=201, name="create_workorder")
def create(report: Report, request: Request, who: Principal = Depends(current_principal),
           store: Backend = Depends(backend)) -> JSONResponse:
    """Place a report in its grid, community, 街道 and district at once; 201 with its due time."""
    caller = report.caller or Caller(name=None, phone=None)
    lon, lat, crs, found = report.lon, report.lat, report.crs, None
    if report.address is not None:
        found = store.addresses().locate(report.address)
        if found["status"] != "matched":  # never placed on a guess: the dispatcher chooses
            return _encoded({"detail": f"address {report.address!r} is {found['status']}: {found['reason']}",
                             "status": found["status"], "candidates": found["candidates"]}, 422)
        lon, lat, crs = found["lon"], found["lat"], "cgcs2000"
    order = store.store.create_order(
        lon, lat, crs=crs, category=report.category,
        description=report.description, caller_name=caller.name, caller_phone=caller.phone,
        principal=who)
    store.orders_changed()
    if found is not None:
        order = {**order, "geocode": {k: found[k] for k in ("input", "unit_id", "score", "level")}}
    location = url_for(request, "get_workorder", order_id=order["order_id"])
    return _encoded(_with_actions(order, who, request), 201, headers={"Location": location})


@router.get("/workorders", name="list_workorders")
def list_orders(
    grid_code: str | None = Query(None, max_length=15, description="the grid's code (15 digits)"),
    grid: str | None = Query(None, max_length=15, description="the older name of grid_code (an alias)"),
    community_code: str | None = Query(None, max_length=12),
    street_code: str | None = Query(None, max_length=9),
    district_code: str | None = Query(None, max_length=6),
    status: str | None = Query(None, description="received, dispatched, in_progress, returned, resolved, "
                                                 "closed; several comma separated"),
    category: str | None = Query(None, max_length=50),
    department_code: str | None = Query(None, max_length=50, description="the department the order is "
                                                                         "dispatched to"),
    received_at: str | None = Query(None, description="an RFC 3339 instant or start/end interval "
                                                      "(.. an open end), as OGC datetime"),
    overdue: bool | None = Query(None, description="only open orders past (true) or within (false) their due time"),
    card: str | None = Query(None, description="yellow, red: open orders showing that deadline card; comma separated"),
    filter_: str | None = Query(None, alias="filter", max_length=MAX_FILTER_CHARS,
                                description="a CQL2 filter on " + ", ".join(ORDER_FIELDS)),
    filter_lang: str | None = Query(None, alias="filter-lang", description=" or ".join(FILTER_LANGS)),
    sortby: str | None = Query(None, description="[+|-]field,... (newest first after them)"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    store: Backend = Depends(backend),
    who: Principal = Depends(current_principal),
) -> JSONResponse:
    """Orders, newest first, filtered by place, status, category, time, overdue, card and CQL2:
    ``{"total", "orders", ...}``. The filters are those of the ``workorders`` collection, AND-ed
    by the store with the principal's scope; a bad filter, filter-lang, sortby or received_at is a
    400, as on the collections."""
    if grid is not None and grid_code is not None and grid != grid_code:
        raise ParameterError(f"grid={grid!r} and grid_code={grid_code!r} differ; grid is an alias of grid_code")
    named = {name: value for name, value in (("category", category), ("department_code", department_code))
             if value is not None}
    query = build_query(named, ORDER_FIELDS, filter=filter_, filter_lang=filter_lang)
    interval = parse_datetime(received_at)
    if interval is not None:
        bounds = [("cmp", "received_at", op, at) for op, at in ((">=", interval.start), ("<=", interval.end))
                  if at is not None]
        query = query & FeatureQuery(("and", bounds), ORDER_FIELDS)
    if card is not None:
        query = query & card_query(card)
    statuses = status.split(",") if status is not None else None
    filters = {"grid_code": grid_code or grid, "community_code": community_code, "street_code": street_code,
               "district_code": district_code, "status": statuses, "overdue": overdue, "query": query}
    orders = store.store.list_orders(**filters, limit=limit, offset=offset, principal=who,
                                     sortby=parse_sortby(sortby, ORDER_FIELDS))
    # each order with its deadline card (黄牌/红牌, jngis.workorders.card), as the ``card`` filter sees it
    orders = [{**order, "card": card_of(order.get("status"), order.get("due_at"), order.get("warn_at"))}
              for order in orders]
    return _encoded({"total": store.store.count_orders(**filters, principal=who), "limit": limit,
                     "offset": offset, "orders": orders})


@router.get("/workorders/{order_id}", name="get_workorder")
def get_order(order_id: str, request: Request, store: Backend = Depends(backend),
              who: Principal = Depends(current_principal)) -> JSONResponse:
    """One order as the principal may see it (the caller masked, for roles with a need), with
    ``actions``: the steps it may take now."""
    order = store.store.get_order(order_id, principal=who, personal=True)
    return _encoded(_with_actions(order, who, request))


@router.get("/workorders/{order_id}/trail", name="workorder_trail")
def trail(order_id: str, store: Backend = Depends(backend),
          who: Principal = Depends(current_principal)) -> JSONResponse:
    """The order's trail, oldest first: every step, who took it, when and why."""
    return _encoded({"order_id": order_id, "trail": store.store.trail(order_id, principal=who)})


@router.post("/workorders/{order_id}/transitions", name="transition_workorder")
def transition(order_id: str, step: Step, request: Request, who: Principal = Depends(current_principal),
               store: Backend = Depends(backend)) -> JSONResponse:
    """Move an order one step; 409 with the allowed steps when the step is not allowed."""
    order = store.store.transition(order_id, step.to, principal=who, note=step.note,
                                   days=step.days, satisfied=step.satisfied)
    store.orders_changed()
    return _encoded(_with_actions(order, who, request))


@router.post("/workorders/{order_id}/reveal", name="reveal_caller")
def reveal(order_id: str, body: Reveal, request: Request, who: Principal = Depends(current_principal),
           store: Backend = Depends(backend)) -> JSONResponse:
    """The caller's full name and phone, for a reason; the access log records who, when, why, from where."""
    revealed = store.store.reveal(order_id, principal=who, reason=body.reason, client=client_of(request))
    return _encoded(revealed, headers={"Cache-Control": "no-store"})
