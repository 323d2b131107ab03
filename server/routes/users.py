"""Administration: users and their tokens, and the access log as CSV (administrators only).

The store decides who may (``users.manage``, ``audit.export``) and logs every
change; a token's text is in the answer that creates or rotates it, once, and
never again (``Cache-Control: no-store``).
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field

from jngis.access import Principal
from jngis.features import csv_chunks
from ..auth import client_of, current_principal
from ..deps import Backend, backend
from .workorders import Body

router = APIRouter(tags=["administration"])

_NO_STORE = {"Cache-Control": "no-store"}
CSV = "text/csv; charset=utf-8"


class NewUser(Body):
    """A user to add: a name, a role and the codes of its scope."""

    name: str = Field(..., min_length=1, max_length=100)
    role: str = Field(..., description="admin, planner, hotline, street, department, grid or leader")
    scope: list[str] = Field(default_factory=list, max_length=200,
                             description="administrative codes (6/9/12/15 digits) or department codes")
    expires: str | None = Field(None, max_length=40, description="90d, 12h, an ISO date, or none (never)")


def _json(payload, status_code: int = 200) -> JSONResponse:
    return JSONResponse(jsonable_encoder(payload), status_code=status_code, headers=_NO_STORE)


@router.get("/users", name="list_users")
def list_users(store: Backend = Depends(backend), who: Principal = Depends(current_principal)) -> JSONResponse:
    """Every user (never a token or its hash)."""
    return _json({"users": store.store.list_users(principal=who)})


@router.post("/users", status_code=201, name="add_user")
def add_user(user: NewUser, store: Backend = Depends(backend),
             who: Principal = Depends(current_principal)) -> JSONResponse:
    """Add a user; the answer holds its token, shown this once."""
    record, token = store.store.add_user(user.name, role=user.role, scope=tuple(user.scope),
                                         expires=user.expires, principal=who)
    return _json({**record, "token": token}, 201)


@router.post("/users/{user_id}/disable", name="disable_user")
def disable_user(user_id: str, store: Backend = Depends(backend),
                 who: Principal = Depends(current_principal)) -> JSONResponse:
    """Disable a user: its token is refused from the next request on, in every process."""
    store.store.disable_user(user_id, principal=who)
    return _json({"user_id": user_id, "disabled": True})


@router.post("/users/{user_id}/rotate", name="rotate_token")
def rotate_token(user_id: str, store: Backend = Depends(backend),
                 who: Principal = Depends(current_principal)) -> JSONResponse:
    """A new token for the user (shown this once); the old one is refused from now on."""
    return _json({"user_id": user_id, "token": store.store.rotate_token(user_id, principal=who)})


@router.get("/audit", name="audit", responses={200: {"content": {CSV.split(";")[0]: {}}}})
def audit(request: Request, since: str | None = Query(None, description="ISO time: rows from then on"),
          until: str | None = Query(None, description="ISO time: rows before then"),
          store: Backend = Depends(backend), who: Principal = Depends(current_principal)) -> StreamingResponse:
    """The access log as CSV (who, when, what, which order or user, why, from where); the export is logged."""
    rows = store.store.access_log(since, until, principal=who)  # refuses non-administrators first
    store.store.log_access("audit.export", principal=who, target="access_log.csv",
                           detail=f"since={since} until={until} rows={len(rows)}", client=client_of(request))
    headers = {**_NO_STORE, "Content-Disposition": f"attachment; filename*=UTF-8''{quote('访问日志.csv')}"}
    return StreamingResponse(csv_chunks(rows), media_type=CSV, headers=headers)
