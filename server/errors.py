"""One table from library exceptions to HTTP status codes.

The library's messages already name the parameter, the value and what was
expected, so they are passed through unchanged as ``{"detail": message}``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from jngis import errors
from .auth import CHALLENGE, NOT_VALID, SIGN_IN

log = logging.getLogger("jngis.server")

#: Library exception -> HTTP status. The first class in this table that the
#: exception is an instance of wins, so subclasses come before their bases.
STATUS_CODES: dict[type[Exception], int] = {
    errors.InvalidTransition: 409,
    errors.ForbiddenError: 403,
    errors.NotFoundError: 404,
    errors.QueryError: 400,
    errors.AuthenticationError: 401,
    errors.ForbiddenError: 403,
    errors.TileError: 422,
    errors.CalendarRangeError: 422,
    errors.ParameterError: 422,
    errors.SchemaError: 422,
    errors.GeometryError: 422,
    errors.CRSError: 422,
    errors.InputTypeError: 422,
    errors.JngisError: 400,
}



class Problem(BaseModel):
    """Every error answer: one message naming the parameter, the value and what was expected."""

    detail: str


#: The error answers declared on every route of the OpenAPI schema. They replace
#: FastAPI's default 422 (a list of objects), which the handlers below never send.
#: Given as content rather than a model so they stay JSON on GeoJSON and tile routes.
RESPONSES: dict[int | str, dict] = {
    status: {"description": description,
             "content": {"application/json": {"schema": Problem.model_json_schema()}}}
    for status, description in (
        (400, "a query parameter of the OGC API Features is not valid"),
        (401, "no valid bearer token (sign in), or one that is not valid"),
        (403, "the signed-in principal may not take this action, or not on this order"),
        (404, "no such layer, feature, grid, tile layer or work order"),
        (409, "the work order cannot take this step from its state"),
        (413, "the request body is too large"),
        (422, "a parameter or a body field is not valid"),
        (429, "too many failed sign-ins from this client (see Retry-After)"),
    )
}

# OGC API Features wants 400 for a bad query parameter; elsewhere FastAPI's 422.
_OGC_PREFIXES = ("/collections",)


def status_for(exc: Exception) -> int:
    """The HTTP status for a library exception (500 for anything unexpected)."""
    for cls, status in STATUS_CODES.items():
        if isinstance(exc, cls):
            return status
    return 500


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(errors.JngisError)
    async def _library_error(request: Request, exc: errors.JngisError) -> JSONResponse:
        status = status_for(exc)
        if status == 422 and request.url.path.startswith(_OGC_PREFIXES):
            status = 400
        who = getattr(request.state, "principal", None)
        if status == 401 or (status == 403 and who is not None and who.role == "anonymous"):
            # not signed in (or not validly): the answer asks for credentials, never says why a token failed
            message = NOT_VALID if status == 401 else SIGN_IN
            return JSONResponse({"detail": message}, status_code=401, headers=CHALLENGE)
        return error_response(status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
            problems.append(f"{where}: {error.get('msg')} (got {error.get('input')!r})"
                            if "input" in error else f"{where}: {error.get('msg')}")
        status = 400 if request.url.path.startswith(_OGC_PREFIXES) else 422
        return error_response(status, "; ".join(problems) or "invalid request")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error")
