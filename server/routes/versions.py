"""Boundary versions: the list, the one in force (cheap, polled by open pages), one version's diff, adoption.

``/versions/current`` answers from memory (the version this process serves),
so a page can ask every few seconds. ``/versions/{id}`` is the store's record
with the diff against the version before it (:meth:`jngis.store.Store.diff`:
summary, changed communities and grids, moved units, lineage, re-placed
orders). ``POST /versions`` adopts a GeoPackage (``communities`` and/or
``grids`` layers) as the next version (:meth:`jngis.store.Store.adopt`);
once it is in force every server process sharing the store switches to it.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path as FilePath

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from jngis import access
from jngis.errors import ParameterError
from ..auth import layer_reader, permits
from ..deps import Backend, backend, encode_json, json_response
from ..urls import url_for
from .tiles import VERSION_HEADER

#: Who may adopt at all (the store checks the district of a planner's plan).
_ADOPTER = permits("versions.adopt")
router = APIRouter(tags=["versions"])

#: The first bytes of every SQLite file (a GeoPackage is one).
SQLITE_MAGIC = b"SQLite format 3\x00"


def _records(frame) -> list[dict]:
    return frame.to_dict("records")


@router.get("/versions", name="versions")
def versions(request: Request, store: Backend = Depends(backend),
             who: access.Principal = Depends(layer_reader)) -> Response:
    """Every boundary version, oldest first, with its status (in_force, past, pending) and summary."""
    listed = _records(store.store.versions())
    for record in listed:
        record["href"] = url_for(request, "version", version_id=str(record["version_id"]))
    return json_response({"served": store.current.version, "versions": listed})


@router.get("/versions/current", name="current_version")
def current_version(request: Request, store: Backend = Depends(backend),
                    who: access.Principal = Depends(layer_reader)) -> Response:
    """The version this server serves now (from memory: cheap enough to poll every few seconds)."""
    served = store.served()
    record = served.record or {}
    body = encode_json({"version": served.version, "effective": record.get("effective"),
                        "note": record.get("note")})
    etag = f'"v{served.version}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", VERSION_HEADER: str(served.version)}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.get("/versions/{version_id}", name="version")
def version(version_id: int = Path(..., ge=1), store: Backend = Depends(backend),
            who: access.Principal = Depends(layer_reader)) -> Response:
    """One version: its record, and the diff against the version before it (none for the first)."""
    record = store.store.version(version_id)
    if version_id > 1:
        diff = store.current.indexes.get_or_insert(("diff", version_id),
                                                   lambda: store.store.diff(version_id - 1, version_id))
        record["diff"] = {"from": diff.version_a, "to": diff.version_b, "summary": diff.summary,
                          **{part: _records(getattr(diff, part))
                             for part in ("communities", "grids", "units", "lineage", "orders")}}
    return json_response(record)


#: What ``POST /versions`` takes, for the OpenAPI document (the form is read by Starlette).
_UPLOAD = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "a GeoPackage with the new communities and/or grids layers"},
        "effective": {"type": "string", "format": "date", "description": "the day it takes effect (default today)"},
        "note": {"type": "string", "maxLength": 2000, "description": "the decision, e.g. its document number"},
    }}}}}}


@router.post("/versions", name="adopt", status_code=201, openapi_extra=_UPLOAD)
async def adopt(request: Request, who: access.Principal = Depends(_ADOPTER),
                store: Backend = Depends(backend)) -> Response:
    """Adopt the uploaded boundaries as the next version (today or on ``effective``): 201 and its record.

    Every check runs before anything is written (units, coverage, codes, the
    date); a refusal is a 4xx naming what is wrong, and the store is unchanged.
    """
    async with request.form(max_files=1, max_fields=3) as form:
        upload, effective, note = form.get("file"), form.get("effective"), form.get("note")
        if not isinstance(upload, UploadFile):
            raise ParameterError("file is missing; expected a GeoPackage uploaded as the form field 'file'")
        if effective is not None and not isinstance(effective, str) or note is not None and not isinstance(note, str):
            raise ParameterError("effective and note are text fields; expected a date (YYYY-MM-DD) and a note")
        day = _date(effective)
        record = await run_in_threadpool(_adopt_file, store, upload, day, note or None, who)
    if store.switcher is not None:
        store.switcher.check()  # this process switches at once; the others hear of it from the store
    location = url_for(request, "version", version_id=str(record["version_id"]))
    return Response(encode_json(record), status_code=201, media_type="application/json",
                    headers={"Location": location})


def _date(text: str | None) -> dt.date | None:
    if text is None or not text.strip():
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ParameterError(f"effective={text!r} is not a date; expected YYYY-MM-DD") from None


def _adopt_file(store: Backend, upload: UploadFile, day: dt.date | None, note: str | None,
                who: access.Principal) -> dict:
    with tempfile.TemporaryDirectory(prefix="jngis-adopt-") as folder:
        path = FilePath(folder) / "plan.gpkg"
        with path.open("wb") as target:
            shutil.copyfileobj(upload.file, target)
        with path.open("rb") as written:
            if written.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                raise ParameterError(f"file={upload.filename!r} is not a GeoPackage; expected a .gpkg file "
                                     "with communities and/or grids layers")
        return store.store.adopt(path, effective=day, note=note, principal=who)
