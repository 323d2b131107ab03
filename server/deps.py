"""What the routes share, loaded once at startup, and the dependencies that hand it out.

:class:`Backend` opens the store, reads the city layers once and builds the
heavy indexes (vector tiles) so no request pays for them; it holds objects
only: what is computed lazily goes through :class:`jngis.cache.Cache`, the
place names through :class:`jngis.places.Places` and the per-grid table
through :class:`jngis.gridtable.LiveTable`. Routes get it with
``Depends(backend)`` and the write guard with ``Depends(require_writer)``.
"""

from __future__ import annotations

import hmac
import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from jngis.cache import Cache
from jngis.crs import WGS84
from jngis.errors import NotFoundError
from jngis.gridtable import MAX_AGE, GridTable, LiveTable
from jngis.layers import SCHEMAS
from jngis.places import LABELLED, Places
from .settings import Settings

log = logging.getLogger("jngis.server")

#: The layers the map and the features API publish, in drawing order, with
#: their Chinese titles. Work orders are published through the store (live).
PUBLISHED = {
    "districts": "区县",
    "streets": "街道",
    "communities": "社区",
    "grids": "网格",
    "units": "楼栋地块",
    "stations": "党群服务站点",
    "party_orgs": "党组织",
    "workorders": "12345工单",
}

#: Layers drawn as vector tiles (work orders are shown as per-grid counts).
TILED = ("districts", "streets", "communities", "grids", "units", "stations", "party_orgs")

#: Age after which a per-grid table is recomputed in the background, and work orders are
#: re-read (writes through this server do both at once; the age matters for orders written
#: by another process and for deadlines passing as time goes on).
STATS_SECONDS = MAX_AGE

#: Entries of :attr:`Backend.live` (work orders in WGS84, encoded counts): the current ones
#: and the one being replaced.
LIVE_ENTRIES = 4

#: Lowest zoom each layer is tiled at: below it, its features are too small to see.
MINZOOM = {"districts": 0, "streets": 0, "communities": 0, "grids": 0, "units": 13,
           "stations": 8, "party_orgs": 10}

#: Zoom from which tiles carry every column of a layer; the city and district views carry the
#: key and name only (the viewer joins counts by key and fetches cards by key).
DETAIL_ZOOM = 12

#: Zooms whose tile geometry is built at startup: the city view (a whole city fits z8-z9
#: on a desktop screen); the others are built on first use, not to compete with requests.
WARM_ZOOMS = (8, 9, 10)

GEOJSON = "application/geo+json"


def default_store() -> str:
    """The sample city GeoPackage, built once (about 20 s) if it is missing."""
    from jngis.sample import load_sample, sample_path

    path = sample_path()
    if not path.exists():
        load_sample()
    return str(path)


@dataclass
class Backend:
    """The objects one running server holds: store, layers, tiles, names, per-grid table, caches."""

    settings: Settings
    store: Any
    layers: dict[str, gpd.GeoDataFrame]
    places: Places
    table: LiveTable | None
    tiles: Any = None
    #: Layers in WGS84 by kind (they never change while the server runs).
    wgs84_layers: Cache = field(default_factory=Cache, repr=False)
    #: What changes with the orders (work orders in WGS84, encoded counts): the newest few.
    live: Cache = field(default_factory=lambda: Cache(max_bytes=LIVE_ENTRIES), repr=False)
    #: Built on first use, once: the address index (:meth:`addresses`).
    indexes: Cache = field(default_factory=Cache, repr=False)
    #: Whether the store is the sample city (whose addresses are generated, not stored).
    sample: bool = False
    _writes: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)
    _orders_generation: int = field(default=0, repr=False)

    @classmethod
    def open(cls, settings: Settings) -> Backend:
        from jngis.store import open_store
        from jngis.workorders import WorkCalendar

        url = settings.store or default_store()
        if not url.startswith(("postgresql://", "postgres://")) and not Path(url).is_file():
            # opening a missing GeoPackage would create an empty city: refuse the typo instead
            raise NotFoundError(f"JNGIS_STORE={url!r} does not exist; expected a city GeoPackage "
                                "(e.g. from `jngis sample --out city.gpkg`) or a postgresql:// DSN")
        store = open_store(url, calendar=WorkCalendar(beyond=settings.calendar_beyond))
        held = store.layer_names()
        layers = {kind: store.read_layer(kind) for kind in PUBLISHED
                  if kind in held and kind != "workorders"}
        # The table the last run saved, if the orders and layers are still the same, colours the
        # first page at once; a fresh one is computed in the background from now on (warm).
        table = None
        if "grids" in layers:
            table = LiveTable(store, layers, directory=_cache_subdir(settings.stats_cache_dir, "stats"),
                              source=url, max_age=STATS_SECONDS)
            table.warm()
        backend = cls(settings=settings, store=store, layers=layers, places=Places(layers), table=table,
                      sample=settings.store is None or _is_sample(url))
        if "districts" in layers:
            # the PolygonIndex a new work order is placed with: built now, not on the first report
            store.placer()
        backend.tiles = _vector_tiles(layers, settings)
        threading.Thread(target=backend._warm_tiles, name="jngis-warm-tiles", daemon=True).start()
        return backend

    def _warm_tiles(self) -> None:
        try:
            for kind in LABELLED:  # the page's label sources, asked for with the first tiles
                if kind in self.layers:
                    self.places.label_points(kind)
            if self.tiles is not None:
                for z in WARM_ZOOMS:
                    self.tiles.prepare(zooms=[z])
        except Exception:
            log.exception("preparing the tiles at startup failed")

    def layer(self, kind: str) -> gpd.GeoDataFrame:
        """A published layer in its own (metric) CRS; NotFoundError names the choices."""
        if kind == "workorders":
            return self.store.orders_frame()
        if kind not in self.layers:
            raise NotFoundError(
                f"layer {kind!r} does not exist; expected one of {', '.join(self.kinds())}")
        return self.layers[kind]

    def kinds(self) -> list[str]:
        return [kind for kind in PUBLISHED if kind in self.layers or kind == "workorders"]

    def wgs84(self, kind: str) -> gpd.GeoDataFrame:
        """A layer in WGS84 (what GeoJSON and the OGC API speak), cached.

        Work orders are re-read after a write through this server, and at the
        latest ``STATS_SECONDS`` after they were read (other writers, deadlines).
        """
        if kind == "workorders":
            key = ("workorders", self._orders_generation, int(time.monotonic() // STATS_SECONDS))
            return self.live.get_or_insert(key, lambda: self.layer(kind).to_crs(WGS84))
        return self.wgs84_layers.get_or_insert(kind, lambda: self.layer(kind).to_crs(WGS84))

    def addresses(self):
        """The :class:`jngis.AddressIndex` of the city's units, built once on first use."""
        return self.indexes.get_or_insert("addresses", self._address_index)

    def _address_index(self):
        from jngis.address import JINAN_PREFIXES, AddressIndex, sample_addresses

        units = self.layers.get("units")
        if units is None:
            raise NotFoundError("this city has no units layer: addresses cannot be looked up")
        prefixes: tuple[str, ...] = ()
        if self.sample:  # the sample city's addresses are generated from its units, as its tests do
            prefixes = JINAN_PREFIXES
            if "road" not in units.columns:
                units = units.join(sample_addresses(units, districts=self.layers.get("districts")))
        if "road" not in units.columns or "door_number" not in units.columns:
            raise NotFoundError("this city's units carry no addresses; expected the columns road and "
                                "door_number (optional compound_name, building, aliases) in the units layer")
        return AddressIndex(units, districts=self.layers.get("districts"), streets=self.layers.get("streets"),
                            communities=self.layers.get("communities"), grids=self.layers.get("grids"),
                            prefixes=prefixes)

    def grid_table(self) -> GridTable:
        """The ``grid_stats`` table of the city, as of the time it carries (:class:`LiveTable`)."""
        if self.table is None:
            raise NotFoundError("this city has no grids layer yet; make them with jngis.grids.make_grids")
        return self.table.current()

    def orders_changed(self) -> None:
        """Orders were written: recompute the grid table (in the background) and re-read the orders."""
        self._orders_generation = next(self._writes)  # a new key: the orders read before are not reused
        if self.table is not None:
            self.table.refresh()


def _is_sample(url: str) -> bool:
    from jngis.sample import sample_path

    try:
        return Path(url).resolve() == sample_path().resolve()
    except (OSError, ValueError):
        return False


def key_of(kind: str) -> str:
    """The key column of a layer kind (``grid_code``, ``station_id`` ...)."""
    return SCHEMAS[kind].key


class GeoJSONResponse(JSONResponse):
    """Declares ``application/geo+json`` in the OpenAPI schema for the routes that answer with it."""

    media_type = GEOJSON


def encode_json(payload: Any, *, allow_nan: bool = True) -> bytes:
    """``payload`` as UTF-8 JSON (times as ISO 8601, missing values as null)."""
    return json.dumps(payload, ensure_ascii=False, default=_plain, allow_nan=allow_nan).encode()


def json_response(payload: Any, media_type: str = "application/json") -> Response:
    """``payload`` serialised once (:func:`encode_json`)."""
    return Response(encode_json(payload), media_type=media_type)


def _plain(value: Any) -> Any:
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _vector_tiles(layers: dict[str, gpd.GeoDataFrame], settings: Settings):
    from jngis.tiles import VectorTiles

    tiled = {kind: layers[kind] for kind in TILED if kind in layers}
    if not tiled:
        return None
    geometry_dir = _cache_subdir(settings.tile_geometry_dir, "tiles")
    geometry_dir.mkdir(parents=True, exist_ok=True)  # restarts reuse the per-zoom geometry
    return VectorTiles(tiled, minzoom={k: v for k, v in MINZOOM.items() if k in tiled},
                       maxzoom=16, cache_mb=settings.tile_cache_mb, cache_dir=geometry_dir,
                       detail_zoom={k: DETAIL_ZOOM for k in tiled})


def _cache_subdir(setting: str | None, name: str) -> Path:
    """The directory a setting names, or ``name`` in the jngis cache."""
    from jngis.sample import cache_dir

    return Path(setting) if setting else cache_dir() / name


def backend(request: Request) -> Backend:
    return request.app.state.backend


_bearer = HTTPBearer(auto_error=False)


def require_writer(request: Request,
                   credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> str:
    """Let a write through only with ``Authorization: Bearer <JNGIS_WRITE_TOKEN>``.

    Returns the name recorded as the actor of the write. The comparison is
    constant-time so the token cannot be guessed byte by byte from timings.
    """
    from fastapi import HTTPException

    token = request.app.state.settings.write_token
    if token is None:
        raise HTTPException(403, "writes are disabled on this server: set JNGIS_WRITE_TOKEN to enable them")
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "this write needs an 'Authorization: Bearer <token>' header",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(credentials.credentials.encode(), token.get_secret_value().encode()):
        raise HTTPException(401, "the bearer token is not valid", headers={"WWW-Authenticate": "Bearer"})
    return "api"


def static_dir() -> Path:
    return Path(__file__).resolve().parent / "static"
