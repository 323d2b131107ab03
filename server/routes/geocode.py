"""Address lookup: the unit, point, grid, community and 街道 an address names.

The dispatcher's lookup is answered in the event loop when it can be: the
in-memory :class:`jngis.AddressIndex` answers in microseconds without I/O, so
a request that needs no store round trip (anonymous, or its principal already
known) takes no thread-pool hop. What does need I/O or seconds runs in the
thread pool as before: a bearer token's check (the store, scrypt), the index's
first build, and ``JNGIS_ADDRESS_LOOKUP=store`` (SQL).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from jngis.access import Principal
from jngis.address import AddressIndex
from ..auth import layer_reader
from ..deps import encode_json

router = APIRouter(tags=["addresses"])


@router.get("/geocode", name="geocode")
async def geocode(request: Request,
                  q: str = Query(..., min_length=1, max_length=200, description="an address, e.g. 文化东路68号3号楼"),
                  who: Principal = Depends(layer_reader)) -> Response:
    """``{"status": "matched" | "ambiguous" | "not_found", "unit_id", "lon", "lat", "grid_code", ...,
    "candidates", "reason"}`` (:meth:`jngis.AddressIndex.locate`; the text asked is not echoed)."""
    store = request.app.state.backend
    index = store.current.indexes.get("addresses")  # what Backend.addresses() keeps, once built
    if index is None:  # the first lookup of this version builds the index (seconds): not in the loop
        index = await run_in_threadpool(store.addresses)
    if isinstance(index, AddressIndex):
        answer = index.locate(q)
    else:  # the store's search table (JNGIS_ADDRESS_LOOKUP=store): SQL, in the thread pool
        answer = await run_in_threadpool(index.locate, q)
    return Response(encode_json({key: value for key, value in answer.items() if key != "input"}),
                    media_type="application/json")
