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

from jngis.access import ANONYMOUS, Principal, can
from jngis.codes import MAX_ZOOM
from jngis.errors import NotFoundError
from ..auth import layer_reader
from ..deps import Backend, backend
from ..switch import Served
from ..tilestore import SharedTiles
from ..urls import url_for

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
    template = url_for(request, "versioned_tile", layer=layer, version=str(served.version),
                       z="{z}", x="{x}", y="{y}")
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
    keep(request.app.state.shared_tiles, served, layer, z, x, y, found)
    headers = {"ETag": found.etag, "Cache-Control": cache, "Vary": "Accept-Encoding",
               VERSION_HEADER: str(served.version)}
    if found.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if found.data and "gzip" in request.headers.get("accept-encoding", ""):
        return Response(found.gzip, media_type=MVT, headers={**headers, "Content-Encoding": "gzip"})
    return Response(found.data, media_type=MVT, headers=headers)


def keep(shared: SharedTiles | None, served: Served, layer: str, z: int, x: int, y: int, found) -> None:
    """Write a tile cut here into the file every process reads (:mod:`server.tilestore`)."""
    if shared is None:
        return
    key = shared.key(shared.fingerprint(layer, served.layers[layer]), z, x, y)
    if shared.get(key) is None:
        shared.put(key, found.etag, found.gzip)


# -- the lean path ---------------------------------------------------------------------

_MVT_HEADERS = [(b"content-type", MVT.encode()), (b"vary", b"Accept-Encoding")]
_CACHE = {True: IMMUTABLE.encode(), False: SHORT_LIVED.encode()}
#: The access table's word on an anonymous map reader (the routes ask it through ``layer_reader``).
_ANONYMOUS_READS = can(ANONYMOUS, "layers.read")


class LeanTiles:
    """ASGI middleware: a warm tile for an anonymous reader, straight from the shared tile file.

    The tile routes above go through FastAPI's routing, parameter validation,
    dependencies and a worker thread: about as much CPU again as sending the
    tile. A request this middleware can answer exactly as those routes would
    is answered here, on the event loop: a GET of a tile address with no query,
    no credentials and gzip accepted, while anonymous map reading is on
    (issue 15's switch: off, every request takes the routes and signs in), of
    the version in force or one still held, whose tile some process has
    already cut and kept (:mod:`server.tilestore`). Everything else (a cold
    tile, a bad address, a version being switched to, a token) goes on to the
    routes, which answer it as before and keep the tile for the next request.
    The answer is the routes' one: the same body, ETag, Cache-Control, Vary and
    ``X-Jngis-Version``, and 304 when ``If-None-Match`` holds the ETag.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].startswith("/tiles/") \
                and not scope["query_string"]:
            answer = _lean(scope)
            if answer is not None:
                status, headers, body = answer
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _lean(scope) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """``(status, headers, body)`` of a warm anonymous tile request, or None: the routes answer it."""
    parts = scope["path"][7:].split("/")
    if len(parts) == 5 and parts[1][:1] == "v" and parts[1][1:].isdecimal():
        layer, version, z, x, name = parts[0], int(parts[1][1:]), parts[2], parts[3], parts[4]
    elif len(parts) == 4:
        layer, version, z, x, name = parts[0], None, parts[1], parts[2], parts[3]
    else:
        return None
    y = name[:-4]
    if not (name.endswith(".mvt") and z.isdecimal() and x.isdecimal() and y.isdecimal() and z.isascii()
            and x.isascii() and y.isascii()):
        return None
    accepts, condition = b"", b""
    for header, value in scope["headers"]:
        if header == b"authorization":
            return None
        if header == b"accept-encoding":
            accepts = value
        elif header == b"if-none-match":
            condition = value
    if b"gzip" not in accepts:
        return None
    state = scope["app"].state
    backend, shared = state.backend, state.shared_tiles
    if shared is None or not backend.settings.anonymous or not _ANONYMOUS_READS:
        return None
    current = backend.current
    served = current if version is None or version == current.version else backend.held.get(version)
    features = None if served is None else served.layers.get(layer)
    print_ = None if features is None else shared.known(features)
    if print_ is None:
        return None
    kept = shared.get(shared.key(print_, int(z), int(x), int(y)))
    if kept is None:
        return None
    headers = [(b"etag", kept.etag), (b"cache-control", _CACHE[version is not None]),
               (b"x-jngis-version", str(served.version).encode())]
    if kept.etag in condition:
        return 304, headers + [(b"vary", b"Accept-Encoding")], b""
    headers += _MVT_HEADERS + [(b"content-length", str(len(kept.gzip)).encode())]
    if kept.gzip:
        headers.append((b"content-encoding", b"gzip"))
    return 200, headers, kept.gzip
