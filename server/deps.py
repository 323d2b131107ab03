"""What the routes share, loaded once at startup, and the dependencies that hand it out.

:class:`Backend` opens the store, reads the city layers once and builds the
heavy indexes (vector tiles) so no request pays for them. Routes get it with
``Depends(backend)`` and the write guard with ``Depends(require_writer)``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

import geopandas as gpd
import pandas as pd
import shapely
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from jngis.crs import WGS84
from jngis.errors import NotFoundError, ParameterError
from jngis.layers import SCHEMAS
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

#: Age after which a per-grid table is recomputed in the background (writes through this
#: server start a recomputation at once; the age matters for orders written by another
#: process and for deadlines passing as time goes on).
STATS_SECONDS = 60.0

#: Saved per-grid tables kept in the stats cache (one per state of a store's data), and their format.
STATS_CACHE_KEEP = 8
STATS_CACHE_FORMAT = 1

#: The work-order columns grid_stats reads (the rest is not fetched for the table).
STATS_COLUMNS = ("status", "received_at", "due_at", "resolved_at", "closed_at", "satisfied")

#: Lowest zoom each layer is tiled at: below it, its features are too small to see.
MINZOOM = {"districts": 0, "streets": 0, "communities": 0, "grids": 0, "units": 13,
           "stations": 8, "party_orgs": 10}

#: Zoom from which tiles carry every column of a layer; the city and district views carry the
#: key and name only (the viewer joins counts by key and fetches cards by key).
DETAIL_ZOOM = 12

#: Zooms whose tile geometry is built at startup: the city view (a whole city fits z8-z9
#: on a desktop screen); the others are built on first use, not to compete with requests.
WARM_ZOOMS = (8, 9, 10)

#: Layers whose names label the map and feed the search box.
LABELLED = ("districts", "streets", "communities")


def default_store() -> str:
    """The sample city GeoPackage, built once (about 20 s) if it is missing."""
    from jngis.sample import load_sample, sample_path

    path = sample_path()
    if not path.exists():
        load_sample()
    return str(path)


@dataclass
class Backend:
    """The store, the layers and the tile index of one running server."""

    settings: Settings
    store: object
    layers: dict[str, gpd.GeoDataFrame]
    tiles: object | None
    store_url: str = ""
    stats_dir: Path = field(default_factory=lambda: Path("."))
    _wgs84: dict[str, gpd.GeoDataFrame] = field(default_factory=dict, repr=False)
    _labels: dict[str, gpd.GeoSeries] = field(default_factory=dict, repr=False)
    _name_tables: dict[str, dict] = field(default_factory=dict, repr=False)
    _table: "GridTable | None" = field(default=None, repr=False)
    _table_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _versions: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)
    _refreshing: bool = field(default=False, repr=False)
    _pending: bool = field(default=False, repr=False)
    _memo: dict = field(default_factory=dict, repr=False)
    _orders: tuple | None = field(default=None, repr=False)
    _orders_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, settings: Settings) -> "Backend":
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
        backend = cls(settings=settings, store=store, layers=layers, tiles=None, store_url=url,
                      stats_dir=_cache_subdir(settings.stats_cache_dir, "stats"))
        if "grids" in layers:
            # The table the last run saved, if the orders and layers are still the same:
            # the first page is coloured at once, and a fresh table follows in the background.
            backend._table = backend._saved_table()
        # What the first page needs is built while the server starts and the page
        # loads, in two threads: the per-grid table (the map's colours, the longest
        # wait: 100,000 orders read and placed) from now on, and the city-view tile
        # geometry once the tiles exist.
        threading.Thread(target=backend._warm_table, name="jngis-warm-stats", daemon=True).start()
        if "districts" in layers:
            # the PolygonIndex a new work order is placed with: built now, not on the first report
            # (building it holds the store's lock, which every request thread needs once)
            store.placer()
        backend.tiles = _vector_tiles(layers, settings)
        threading.Thread(target=backend._warm_tiles, name="jngis-warm-tiles", daemon=True).start()
        return backend

    def _warm_table(self) -> None:
        try:
            if "grids" in self.layers:
                self.grid_table()
        except Exception:  # the request that needs it shows the error with its message
            log.exception("computing the grid table at startup failed")

    def _warm_tiles(self) -> None:
        try:
            for kind in LABELLED:  # the page's label sources, asked for with the first tiles
                if kind in self.layers:
                    self.label_points(kind)
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
        latest ``STATS_SECONDS`` after the last read (other writers, deadlines).
        """
        if kind == "workorders":
            with self._orders_lock:
                cached = self._orders
                if cached is None or time.monotonic() - cached[1] > STATS_SECONDS:
                    cached = self._orders = (self.layer(kind).to_crs(WGS84), time.monotonic())
                return cached[0]
        with self._lock:
            if kind not in self._wgs84:
                self._wgs84[kind] = self.layer(kind).to_crs(WGS84)
            return self._wgs84[kind]

    def grid_table(self) -> "GridTable":
        """The ``grid_stats`` table of the city, as of the time it carries.

        Only the very first read waits for it (and the server starts computing
        it at startup). After that a read never waits for a whole-city
        recomputation: a write through this server, or a table older than
        ``STATS_SECONDS``, starts a recomputation in the background and reads
        keep getting the last table until the new one is ready (its ``at`` and
        the ETag tell them apart).
        """
        if "grids" not in self.layers:
            raise NotFoundError("this city has no grids layer yet; make them with jngis.grids.make_grids")
        with self._table_lock:
            if self._table is None:
                self._table = self._compute_table(next(self._versions))
            elif time.monotonic() - self._table.made > STATS_SECONDS:
                self._request_refresh()
            return self._table

    def _compute_table(self, version: int) -> "GridTable":
        from jngis.stats import grid_stats
        from jngis.workorders import now_cst

        fingerprint = self._fingerprint()  # before reading: a write meanwhile makes it outdated
        at = now_cst()
        table = grid_stats(self.layers["grids"], stations=self.layers.get("stations"),
                           party_orgs=self.layers.get("party_orgs"),
                           workorders=self.store.orders_frame(now=at, columns=STATS_COLUMNS), at=at)
        # grid_stats keeps every order's resolve time in attrs (for rollup), and pandas deep-copies
        # attrs on every selection: the server never rolls up, so it drops them (1 s -> 1 ms a card)
        table.attrs = {}
        fresh = GridTable(table, at.isoformat(), version, time.monotonic())
        self._save_table(fresh, fingerprint)
        return fresh

    # -- the saved table: what a restart colours the first page with
    def _fingerprint(self) -> str:
        """What the grid table is computed from: the store, its orders, the grids and the points."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(self._layers_digest())
        digest.update(repr(self.store.orders_version()).encode())
        return digest.hexdigest()

    def _layers_digest(self) -> bytes:
        """The store, jngis's version and the layers the table reads, hashed once (they never
        change while the server runs; the orders do, and are read on every fingerprint)."""
        def build() -> bytes:
            import jngis

            digest = hashlib.blake2b(digest_size=16)
            digest.update(f"{STATS_CACHE_FORMAT} {jngis.__version__} {self.store_url}".encode())
            for kind in ("grids", "stations", "party_orgs"):
                layer = self.layers.get(kind)
                if layer is None:
                    continue
                digest.update(kind.encode())
                digest.update(pd.util.hash_pandas_object(pd.DataFrame(layer.drop(columns=layer.geometry.name)),
                                                         index=False).to_numpy().tobytes())
                digest.update(b"".join(shapely.to_wkb(layer.geometry.values)))
            return digest.digest()

        return self.memo("layers_digest", 0, build)

    def _table_path(self, fingerprint: str) -> Path:
        return self.stats_dir / f"grid-table-{fingerprint}.parquet"

    def _saved_table(self) -> "GridTable | None":
        """The saved table whose fingerprint is the store's now (stale at once: refreshed on first read)."""
        try:
            path = self._table_path(self._fingerprint())
            if not path.exists():
                return None
            table = pd.read_parquet(path)
            at = json.loads(path.with_suffix(".json").read_text())["at"]
        except Exception:  # a missing, partial or foreign file: compute the table instead
            log.warning("could not read the saved grid table; computing it", exc_info=True)
            return None
        return GridTable(table, at, next(self._versions), -math.inf)

    def _save_table(self, table: "GridTable", fingerprint: str) -> None:
        """Write the table for the next start (atomically) and keep the few newest ones."""
        try:
            self.stats_dir.mkdir(parents=True, exist_ok=True)
            path = self._table_path(fingerprint)
            for target, write in ((path.with_suffix(".json"),
                                   lambda f: f.write_text(json.dumps({"at": table.at}))),
                                  (path, lambda f: table.table.to_parquet(f))):
                partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
                write(partial)
                os.replace(partial, target)
            saved = sorted(self.stats_dir.glob("grid-table-*.parquet"), key=lambda p: p.stat().st_mtime)
            for old in saved[:-STATS_CACHE_KEEP]:
                old.unlink(missing_ok=True)
                old.with_suffix(".json").unlink(missing_ok=True)
        except Exception:  # the cache only saves time; serving goes on without it
            log.warning("could not save the grid table for the next start", exc_info=True)

    def _request_refresh(self) -> None:
        """Ask for a recomputation (the caller holds ``_table_lock``); one runs at a time."""
        self._pending = True
        if not self._refreshing:
            self._refreshing = True
            threading.Thread(target=self._refresh_tables, name="jngis-stats", daemon=True).start()

    def _refresh_tables(self) -> None:
        while True:
            with self._table_lock:
                if not self._pending:
                    self._refreshing = False
                    return
                self._pending = False
            try:
                fresh = self._compute_table(next(self._versions))
            except Exception:
                log.exception("recomputing the grid table failed; the last one is still served")
                with self._table_lock:
                    self._refreshing = False
                return
            with self._table_lock:
                if self._table is None or self._table.version < fresh.version:
                    self._table = fresh

    def orders_changed(self) -> None:
        """Orders were written: recompute the grid table (in the background) and re-read the orders."""
        with self._table_lock:
            if self._table is not None:
                self._request_refresh()
        with self._orders_lock:
            self._orders = None

    def memo(self, name: str, version: int, build):
        """``build()``, remembered under ``name`` while ``version`` stays the same."""
        cached = self._memo.get(name)
        if cached is None or cached[0] != version:
            cached = self._memo[name] = (version, build())
        return cached[1]

    def places(self, grid_code: str) -> dict:
        """The names of the community, 街道 and district a grid lies in."""
        out = {}
        for kind, digits, field_name in (("communities", 12, "community"), ("streets", 9, "street"),
                                         ("districts", 6, "district")):
            code = grid_code[:digits]
            out[f"{field_name}_code"] = code
            out[f"{field_name}_name"] = self._names(kind).get(code)
        return out

    def _names(self, kind: str) -> dict[str, str]:
        with self._lock:
            if kind not in self._name_tables:
                layer = self.layers.get(kind)
                self._name_tables[kind] = ({} if layer is None else
                                           dict(zip(layer[key_of(kind)], layer["name"])))
            return self._name_tables[kind]

    def label_points(self, kind: str) -> gpd.GeoSeries:
        """A point inside each feature of a polygon layer (WGS84), for labels; cached."""
        with self._lock:
            if kind not in self._labels:
                self._labels[kind] = self.layer(kind).representative_point().to_crs(WGS84)
            return self._labels[kind]


class GridTable(NamedTuple):
    """One computation of ``grid_stats``: the table, the time it is as of, its version."""

    table: pd.DataFrame
    at: str
    version: int
    made: float


def key_of(kind: str) -> str:
    """The key column of a layer kind (``grid_code``, ``station_id`` ...)."""
    return SCHEMAS[kind].key


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


def parse_bbox(bbox: str | None) -> tuple[float, float, float, float] | None:
    """``minlon,minlat,maxlon,maxlat`` (or the 6-number 3D form) -> a tuple, or ParameterError."""
    if bbox is None or bbox == "":
        return None
    parts = bbox.split(",")
    try:
        numbers = [float(part) for part in parts]
    except ValueError:
        raise ParameterError(
            f"bbox={bbox!r} is not a list of numbers; expected minlon,minlat,maxlon,maxlat") from None
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4:
        raise ParameterError(f"bbox={bbox!r} has {len(parts)} numbers; expected 4 (or 6)")
    west, south, east, north = numbers
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise ParameterError(
            f"bbox={bbox!r} is not minlon,minlat,maxlon,maxlat within -180..180 / -90..90 "
            "with min <= max (boxes across the antimeridian are not supported)")
    return west, south, east, north


def static_dir() -> Path:
    return Path(__file__).resolve().parent / "static"
