"""Address lookup: the unit, point, grid, community and 街道 an address names."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from jngis.access import Principal
from ..auth import layer_reader
from ..deps import Backend, backend, json_response

router = APIRouter(tags=["addresses"])


@router.get("/geocode", name="geocode")
def geocode(q: str = Query(..., min_length=1, max_length=200, description="an address, e.g. 文化东路68号3号楼"),
            store: Backend = Depends(backend), who: Principal = Depends(layer_reader)) -> Response:
    """``{"status": "matched" | "ambiguous" | "not_found", "unit_id", "lon", "lat", "grid_code", ...,
    "candidates", "reason"}`` (:meth:`jngis.AddressIndex.locate`; the text asked is not echoed)."""
    answer = store.addresses().locate(q)
    return json_response({key: value for key, value in answer.items() if key != "input"})
