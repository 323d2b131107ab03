"""Mapbox Vector Tiles and their TileJSON, straight from ``jngis.tiles.VectorTiles``."""

from __future__ import annotations

import gzip
import hashlib

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response

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
    z: int = Path(..., ge=0, le=30, description="zoom"),
    x: int = Path(..., ge=0, description="column, 0 .. 2^z - 1"),
    y: int = Path(..., ge=0, description="row, 0 .. 2^z - 1 (XYZ, north first)"),
    store: Backend = Depends(backend),
) -> Response:
    """One tile; gzip when the client accepts it; 304 when its ETag still holds."""
    data = _tiles(store).tile(layer, z, x, y)
    etag = f'"{hashlib.blake2b(data, digest_size=12).hexdigest()}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if data and "gzip" in request.headers.get("accept-encoding", ""):
        data = gzip.compress(data, compresslevel=6, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(data, media_type=MVT, headers=headers)
