"""The FastAPI application: ``create_app(settings)``.

Run it with ``jngis serve`` or ``uvicorn jngis.server.app:create_app --factory``.
Everything heavy (the store, the layers, the tile index) is loaded once, here,
so the first page needs no more than reading the city.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from jngis import __version__
from . import errors
from .deps import Backend, static_dir
from .routes import auth, departments, evaluation, features, geocode, layers, stats, tiles, users, versions, workorders
from .settings import Settings
from .switch import cache_subdir
from .tilestore import shared_tiles

#: glibc malloc arenas for the server process (``MALLOC_ARENA_MAX`` in the environment wins).
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas, as ``MALLOC_ARENA_MAX`` would, before the server starts its threads.

    glibc gives threads arenas of their own (up to 8 per core) and keeps what
    they freed: on the full sample city, request threads building tile
    geometry and grid tables left the server at 2.3 GiB after warm-up;
    capped at 2 arenas, 0.7 GiB with the same requests per second
    (benchmarks/RESULTS.md, "reliability"). Returns whether the cap was set
    (False off glibc, or when ``MALLOC_ARENA_MAX`` is already set).
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, int(arenas)))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        logging.getLogger("jngis.server").info("malloc arenas not capped: no glibc mallopt")
        return False


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, declared or streamed.

    ``uploads`` maps the paths that take files (``/versions``) to their own, larger, bound.
    """

    def __init__(self, app, limit: int, uploads: dict[str, int] | None = None) -> None:
        self.app, self.limit, self.uploads = app, limit, uploads or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.uploads.get(scope["path"], self.limit)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await self._refuse(send, limit)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(send, limit)

    async def _refuse(self, send, limit: int) -> None:
        body = f'{{"detail": "request body is larger than {limit} bytes"}}'.encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(HTTPException):
    """Raised while the body streams in: FastAPI passes HTTPExceptions through its body
    parsing (any other exception there becomes a 400), so the client gets the 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than {limit} bytes")


class SecurityHeaders:
    """Standard hardening headers on every response; a strict CSP that keeps the page offline."""

    def __init__(self, app, basemap_url: str | None, token_endpoint: str | None = None) -> None:
        self.app = app
        extra = ""
        if basemap_url:
            parts = urlsplit(basemap_url.replace("{", "").replace("}", ""))
            extra = f" {parts.scheme}://{parts.netloc}"
        # the viewer trades its sign-in code at the identity provider's token endpoint (signin.js)
        provider = ""
        if token_endpoint:
            parts = urlsplit(token_endpoint)
            provider = f" {parts.scheme}://{parts.netloc}"
        # MapLibre's UMD build starts its worker from a blob: URL and sets inline styles.
        policy = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                  f"img-src 'self' data: blob:{extra}; connect-src 'self'{extra}{provider}; "
                  "worker-src 'self' blob:; child-src blob:; object-src 'none'; "
                  "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
        self.headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"geolocation=(), camera=(), microphone=()"),
            (b"content-security-policy", policy.encode()),
        ]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _declared(dependant) -> set[str]:
    """The query parameter names a route declares, its dependencies' included."""
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared(sub)
    return names


async def refuse_unknown_parameters(request: Request) -> None:
    """400 naming the query parameters a route does not take, with the ones it does.

    One dependency of the whole application: FastAPI would otherwise drop a
    misspelt filter and answer as if there were none (``/workorders?grid_cod=...``
    would list the whole city). A route whose names depend on its data (the
    property filters of a collection) sets ``endpoint.extra_parameters(request)``.
    Routes left out of the schema (the viewer page) are not checked.

    Checked in the event loop (a plain function would cost every request of the server
    a hop through the thread pool and back); only ``extra_parameters``, which may read
    the store, runs in the thread pool.
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return
    allowed = _declared(route.dependant)
    unknown = set(request.query_params) - allowed
    extra = getattr(route.endpoint, "extra_parameters", None)
    if unknown and extra is not None:
        more = set(await run_in_threadpool(extra, request))
        allowed |= more
        unknown -= more
    if unknown:
        raise HTTPException(400, f"unknown query parameter{'s' if len(unknown) > 1 else ''} "
                                 f"{', '.join(map(repr, sorted(unknown)))}; {request.url.path} takes "
                                 f"{', '.join(sorted(allowed)) or 'none'}")


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI):
    import anyio.to_thread

    # the threads the synchronous routes run in (JNGIS_THREADS; starlette's default is 40)
    anyio.to_thread.current_default_thread_limiter().total_tokens = app.state.settings.threads
    yield
    app.state.backend.close()  # the change listener and the scheduler of versions


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the server for ``settings`` (default: read from ``JNGIS_*`` variables).

    Examples
    --------
    >>> from fastapi.testclient import TestClient  # doctest: +SKIP
    >>> client = TestClient(create_app())  # doctest: +SKIP
    >>> client.get("/healthz").json()["status"]  # doctest: +SKIP
    'ok'
    """
    settings = settings or Settings()
    limit_malloc_arenas()  # before Backend.open starts the warm-up threads
    app = FastAPI(
        title="jngis 济南基层治理地图服务",
        version=__version__,
        description="Vector tiles, OGC API - Features, per-grid counts and 12345 work orders.",
        # Swagger UI and ReDoc load their code from a CDN; this server sends nothing off-site.
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(refuse_unknown_parameters)],
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.backend = Backend.open(settings)
    # Tiles cut by any process on this machine, read by all (one copy in the page cache).
    app.state.shared_tiles = shared_tiles(cache_subdir(settings.tile_geometry_dir, "tiles"))
    errors.install(app)

    for module in (layers, tiles, features, stats, workorders, geocode, departments, evaluation, versions, users,
                   auth):
        app.include_router(module.router, responses=errors.RESPONSES)

    @app.get("/", name="root", include_in_schema=False)
    def root(request: Request, f: str | None = None) -> Response:
        """The viewer for browsers; the OGC API landing page for clients asking for JSON."""
        accept = request.headers.get("accept", "")
        if f in ("json", "geojson") or (f is None and "text/html" not in accept):
            return features.landing_page(request)
        return FileResponse(static_dir() / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/healthz", tags=["server"])
    def healthz() -> dict:
        backend = app.state.backend
        return {"status": "ok", "version": __version__,
                "layers": {kind: len(layer) for kind, layer in backend.layers.items()}}

    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    plain_openapi = app.openapi
    app.openapi = lambda: features.collection_paths(plain_openapi(), app.state.backend)  # type: ignore[method-assign]

    # The middleware added last is the outermost: the headers wrap everything, the 413 included;
    # the lean tile path is the innermost, so its answers get the same headers as the routes'.
    app.add_middleware(tiles.LeanTiles)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes,
                       uploads={"/versions": settings.max_upload_bytes})
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"],
                           expose_headers=["ETag"], max_age=600)
    provider = app.state.backend.auth.provider
    app.add_middleware(SecurityHeaders, basemap_url=settings.basemap_url,
                       token_endpoint=provider.token_endpoint if provider is not None else None)
    return app
