"""Mapbox Vector Tiles and their TileJSON, straight from ``jngis.tiles.VectorTiles``.

Tiles are addressed by boundary version: the TileJSON of a layer names
``/tiles/{layer}/v{n}/{z}/{x}/{y}.mvt`` of the version in force, and such a
tile never changes (``Cache-Control: immutable``, a year), so no cache ever
needs invalidating: a new version has new addresses. The unversioned address
serves the version in force and may change with it (a minute). A version
this server no longer holds answers 404 (its tiles would be another
version's geometry under an address that promises it never changes); one
newer than it serves is waited for a few seconds (another process switched
first; this one is building it), then 404 too. Every answer carries its
version in ``X-Jngis-Version``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response

from jngis.access import Principal
from jngis.codes import MAX_ZOOM
from jngis.errors import NotFoundError
from ..auth import layer_reader
from ..deps import Backend, backend
from ..switch import Served

router = APIRouter(tags=["tiles"])

MVT = "application/vnd.mapbox-vector-tile"
class MVTResponse(Response):
    """Declares the vector-tile media type in the OpenAPI schema."""

    media_type = MVT


#: A versioned tile never changes; the unversioned one follows the version in force.
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT_LIVED = "public, max-age=60"
#: The TileJSON names the version in force: revalidated on every use (its ETag makes that cheap).
TILEJSON_CACHE = "no-cache"
#: Header naming the boundary version an answer is of.
VERSION_HEADER = "X-Jngis-Version"
#: Seconds a request for a version newer than this server's waits for its switch.
NEWER_WAIT = 10.0


def _tiles(served: Served):
    if served.tiles is None:
        raise NotFoundError("this store holds no layer to draw as vector tiles")
    return served.tiles


@router.get("/tiles/{layer}.json", name="tilejson")
def tilejson(layer: str, request: Request, store: Backend = Depends(backend),
             who: Principal = Depends(layer_reader)) -> Response:
    """TileJSON 3.0 for one layer, with the versioned tile addresses of the version in force."""
    served = store.served()
    template = str(request.url_for("versioned_tile", layer=layer, version=str(served.version),
                                   z="{z}", x="{x}", y="{y}"))
    template = template.replace("%7B", "{").replace("%7D", "}")
    document = _tiles(served).tilejson(layer, template)
    document["version"] = f"{served.version}.0.0"  # TileJSON's semver of the tileset
    headers = {"Cache-Control": TILEJSON_CACHE, "ETag": f'"v{served.version}-{layer}"',
               VERSION_HEADER: str(served.version)}
    if headers["ETag"] in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return JSONResponse(document, headers=headers)


_Z = Path(..., ge=0, json_schema_extra={"maximum": MAX_ZOOM}, description="zoom")
_X = Path(..., ge=0, description="column, 0 .. 2^z - 1")
_Y = Path(..., ge=0, description="row, 0 .. 2^z - 1 (XYZ, north first)")


@router.get("/tiles/{layer}/v{version}/{z}/{x}/{y}.mvt", name="versioned_tile", response_class=MVTResponse)
def versioned_tile(request: Request, layer: str,
                   version: int = Path(..., ge=0, description="boundary version (its TileJSON names it)"),
                   # The library checks the upper bound (its message names z); the schema states it.
                   z: int = _Z, x: int = _X, y: int = _Y, store: Backend = Depends(backend),
                   who: Principal = Depends(layer_reader)) -> Response:
    """One tile of one boundary version: never changes, cached for a year."""
    return _answer(request, store.served(version, wait=NEWER_WAIT), layer, z, x, y, _shared(store, IMMUTABLE))


@router.get("/tiles/{layer}/{z}/{x}/{y}.mvt", name="tile", response_class=MVTResponse)
def tile(request: Request, layer: str, z: int = _Z, x: int = _X, y: int = _Y,
         store: Backend = Depends(backend), who: Principal = Depends(layer_reader)) -> Response:
    """One tile of the version in force; gzip when the client accepts it; 304 when its ETag still holds."""
    return _answer(request, store.served(), layer, z, x, y, _shared(store, SHORT_LIVED))


def _shared(store: Backend, cache: str) -> str:
    """Tiles carry no personal data and are the same for every principal: shared caches keep them
    while anonymous reading is on; when it is off only the signed-in browser may (private)."""
    return cache if store.settings.anonymous else cache.replace("public", "private")


def _answer(request: Request, served: Served, layer: str, z: int, x: int, y: int, cache: str) -> Response:
    found = _tiles(served).served(layer, z, x, y)
    headers = {"ETag": found.etag, "Cache-Control": cache, "Vary": "Accept-Encoding",
               VERSION_HEADER: str(served.version)}
    if found.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if found.data and "gzip" in request.headers.get("accept-encoding", ""):
        return Response(found.gzip, media_type=MVT, headers={**headers, "Content-Encoding": "gzip"})
    return Response(found.data, media_type=MVT, headers=headers)
