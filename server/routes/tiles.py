"""Mapbox Vector Tiles and their TileJSON, straight from ``jngis.tiles.VectorTiles``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response

from jngis.codes import MAX_ZOOM
from jngis.errors import NotFoundError
from ..deps import Backend, backend

router = APIRouter(tags=["tiles"])

MVT = "application/vnd.mapbox-vector-tile"
class MVTResponse(Response):
    """Declares the vector-tile media type in the OpenAPI schema."""

    media_type = MVT


# Layers only change when the server restarts on new data; ETags catch that.
CACHE_CONTROL = "public, max-age=3600"


def _tiles(store: Backend):
    if store.tiles is None:
        raise NotFoundError("this store holds no layer to draw as vector tiles")
    return store.tiles


@router.get("/tiles/{layer}.json", name="tilejson")
def tilejson(layer: str, request: Request, store: Backend = Depends(backend)) -> JSONResponse:
    """TileJSON 3.0 for one layer, with absolute tile addresses for this server."""
    template = str(request.url_for("tile", layer=layer, z="{z}", x="{x}", y="{y}"))
    template = template.replace("%7B", "{").replace("%7D", "}")
    document = _tiles(store).tilejson(layer, template)
    return JSONResponse(document, headers={"Cache-Control": CACHE_CONTROL})


@router.get("/tiles/{layer}/{z}/{x}/{y}.mvt", name="tile", response_class=MVTResponse)
def tile(
    request: Request,
    layer: str,
    # The library checks the upper bound (its message names z); the schema states it.
    z: int = Path(..., ge=0, json_schema_extra={"maximum": MAX_ZOOM}, description="zoom"),
    x: int = Path(..., ge=0, description="column, 0 .. 2^z - 1"),
    y: int = Path(..., ge=0, description="row, 0 .. 2^z - 1 (XYZ, north first)"),
    store: Backend = Depends(backend),
) -> Response:
    """One tile; gzip when the client accepts it; 304 when its ETag still holds."""
    served = _tiles(store).served(layer, z, x, y)
    headers = {"ETag": served.etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if served.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if served.data and "gzip" in request.headers.get("accept-encoding", ""):
        return Response(served.gzip, media_type=MVT, headers={**headers, "Content-Encoding": "gzip"})
    return Response(served.data, media_type=MVT, headers=headers)
