"""The boundary version a server serves, and the switch to the next one without a restart.

A :class:`Served` is everything the routes read that depends on the city's
layers: the layers of one version, their names, tiles and per-grid table.
The :class:`~jngis.server.deps.Backend` holds the one in force and answers
every request from one :class:`Served` taken once, so a response never mixes
two versions (each carries its number in the ``X-Jngis-Version`` header).

:class:`Switcher` keeps it current in every process sharing a store: it
listens on the store's change channel (``store.listen``: PostgreSQL
LISTEN/NOTIFY, or a once-a-second check of a SQLite table), and when the
version in force is no longer the one served it builds the next
:class:`Served` on one background worker, reusing the tile geometry of the
layers whose geometry did not change and updating the others' from the
previous version's, recomputed only where they changed
(:meth:`jngis.tiles.VectorTiles.replaced`),
prepares the rebuilt layers' geometry and the new per-grid table while the
old version keeps serving, then swaps one reference. Order writes announced
by any process refresh the per-grid table. Scheduled versions take effect
through ``store.apply_due_versions``, called every :data:`SCHEDULE_SECONDS`.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd

from jngis.cache import Cache
from jngis.gridtable import MAX_AGE, LiveTable
from jngis.places import LABELLED, Places

if TYPE_CHECKING:
    from .deps import Backend
    from .settings import Settings

log = logging.getLogger("jngis.server")

#: Layers the map and the features API publish besides the live work orders.
STORED_LAYERS = ("districts", "streets", "communities", "grids", "units", "stations", "party_orgs")

#: Layers drawn as vector tiles (work orders are shown as per-grid counts).
TILED = STORED_LAYERS

#: Lowest zoom each layer is tiled at: below it, its features are too small to see.
MINZOOM = {"districts": 0, "streets": 0, "communities": 0, "grids": 0, "units": 13,
           "stations": 8, "party_orgs": 10}
MAXZOOM = 16

#: Zoom from which tiles carry every column of a layer; the city and district views carry the
#: key and name only (the viewer joins counts by key and fetches cards by key).
DETAIL_ZOOM = 12

#: Zooms whose tile geometry is built at startup: the city view (a whole city fits z8-z9
#: on a desktop screen); the others are built on first use, not to compete with requests.
WARM_ZOOMS = (8, 9, 10)

#: Zooms of a changed layer built before a new version is served: the city view a page opens
#: with (benchmarks/adopt_serve.py: z8-z14 before the switch took 72 s on the loaded machine for
#: the whole-city plan, z8-z10 about half of that).
SWITCH_ZOOMS = WARM_ZOOMS
#: Zooms built right after the switch, while the new version serves (a tile asked for sooner
#: waits for its zoom, built once).
AFTER_SWITCH_ZOOMS = tuple(range(11, 15))

#: Versions whose tiles a server keeps (the one in force and the ones before it): a page
#: opened before a switch keeps getting the tiles of the version it shows until it redraws.
HELD_VERSIONS = 3

#: Seconds between two calls of ``store.apply_due_versions`` (scheduled adoptions).
SCHEDULE_SECONDS = 30.0

#: Retries when an adoption commits while a version's layers are being read.
READ_ATTEMPTS = 5


@dataclass
class Served:
    """The layers of one boundary version and everything derived from them, for the routes."""

    version: int
    layers: dict[str, gpd.GeoDataFrame]
    places: Places
    table: LiveTable | None
    tiles: Any = None
    #: Layers in WGS84 by kind (they never change within a version).
    wgs84_layers: Cache = field(default_factory=Cache, repr=False)
    #: Built on first use, once: the address index.
    indexes: Cache = field(default_factory=Cache, repr=False)
    #: Answers that change with the orders (figures and stats bodies by scope, orders in WGS84): the newest few.
    live: Cache = field(default_factory=lambda: Cache(max_bytes=8), repr=False)
    #: The store's record of the version (effective date, note ...); None before the first version.
    record: dict | None = None

    def warm(self, zooms) -> None:
        """Build the label points and the tile geometry of ``zooms`` of the rebuilt layers now."""
        for kind in LABELLED:  # the page's label sources, asked for with the first tiles
            if kind in self.layers:
                self.places.label_points(kind)
        if self.tiles is not None:
            for z in zooms:
                self.tiles.prepare(layers=self.tiles.rebuilt, zooms=[z])


def version_in_force(store: Any) -> int:
    """The version whose rows the store's layer tables hold (0 for a store that keeps no versions yet)."""
    method = getattr(store, "version_in_force", None)
    return int(method() or 0) if callable(method) else 0  # None: no version recorded yet


def read_version(store: Any) -> tuple[int, dict[str, gpd.GeoDataFrame]]:
    """The version in force and its layers, read as one (re-read if an adoption came in between)."""
    for _ in range(READ_ATTEMPTS):
        version = version_in_force(store)
        held = store.layer_names()
        layers = {kind: store.read_layer(kind) for kind in STORED_LAYERS if kind in held}
        if version_in_force(store) == version:
            return version, layers
    raise RuntimeError(f"the version in force changed during each of {READ_ATTEMPTS} reads of the layers")


def version_record(store: Any, version: int) -> dict | None:
    """The store's record of ``version`` (None for 0, a store that keeps no versions yet)."""
    return store.version(version) if version > 0 else None


def build_served(store: Any, settings: Settings, version: int, layers: dict[str, gpd.GeoDataFrame],
                 previous: Served | None = None, record: dict | None = None) -> Served:
    """The :class:`Served` of ``layers``; what did not change is shared with ``previous``.

    A layer equal to the previous version's is the previous object (one copy in memory, its
    WGS84 copy and tiles reused); tiles share the unchanged geometry of the others.
    """
    shared: list[str] = []
    if previous is not None:
        layers = dict(layers)
        for kind, layer in layers.items():
            before = previous.layers.get(kind)
            if before is not None and before.equals(layer):
                layers[kind] = before
                shared.append(kind)
    table = None
    if "grids" in layers:
        table = LiveTable(store, layers, directory=cache_subdir(settings.stats_cache_dir, "stats"),
                          source=store.url, max_age=MAX_AGE)
    tiled = {kind: layers[kind] for kind in TILED if kind in layers}
    if previous is not None and previous.tiles is not None and set(previous.tiles.layers) == set(tiled):
        tiles = previous.tiles.replaced(tiled)
    else:
        tiles = _vector_tiles(tiled, settings) if tiled else None
    served = Served(version=version, layers=layers, places=Places(layers), table=table, tiles=tiles,
                    record=record)
    for kind in shared:
        if previous is not None and kind in previous.wgs84_layers:
            served.wgs84_layers.insert(kind, previous.wgs84_layers.get(kind))
    return served


def _vector_tiles(tiled: dict[str, gpd.GeoDataFrame], settings: Settings):
    from jngis.tiles import VectorTiles

    geometry_dir = cache_subdir(settings.tile_geometry_dir, "tiles")
    geometry_dir.mkdir(parents=True, exist_ok=True)  # restarts reuse the per-zoom geometry
    return VectorTiles(tiled, minzoom={k: v for k, v in MINZOOM.items() if k in tiled},
                       maxzoom=MAXZOOM, cache_mb=settings.tile_cache_mb, cache_dir=geometry_dir,
                       detail_zoom={k: DETAIL_ZOOM for k in tiled})


def cache_subdir(setting: str | None, name: str) -> Path:
    """The directory a setting names, or ``name`` in the jngis cache."""
    from jngis.sample import cache_dir

    return Path(setting) if setting else cache_dir() / name


class Switcher:
    """Keeps a :class:`Backend` on the version in force: listens, builds the next version, swaps.

    One worker builds versions (two adoptions in a row are built one after
    the other; a check that finds the served version in force does nothing).
    :meth:`stop` ends the listener and the scheduler.
    """

    def __init__(self, backend: Backend, *, schedule_seconds: float = SCHEDULE_SECONDS) -> None:
        self.backend = backend
        self.schedule_seconds = schedule_seconds
        self.stop_event = threading.Event()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jngis-switch")
        self._threads: list[threading.Thread] = []
        #: Seconds the last switch took, from noticing the new version to serving it.
        self.last_switch_seconds: float | None = None

    def start(self) -> None:
        store = self.backend.store
        if callable(getattr(store, "listen", None)):
            self._threads.append(store.listen(self._changed, self.stop_event))
        if callable(getattr(store, "apply_due_versions", None)):
            scheduler = threading.Thread(target=self._schedule, name="jngis-schedule", daemon=True)
            scheduler.start()
            self._threads.append(scheduler)

    def stop(self) -> None:
        self.stop_event.set()
        self._worker.shutdown(wait=False, cancel_futures=True)

    def _changed(self, kind: str, version: int) -> None:
        if kind == "orders":
            self.backend.orders_changed()
        elif kind in ("layers", "versions"):
            self.check()

    def check(self):
        """Look for a new version in force (in the background); a Future of the version served after."""
        return self._worker.submit(self._switch_if_new)

    def _switch_if_new(self) -> int:
        backend = self.backend
        try:
            if version_in_force(backend.store) == backend.current.version:
                return backend.current.version
            started = time.monotonic()
            version, layers = read_version(backend.store)
            served = build_served(backend.store, backend.settings, version, layers, previous=backend.current,
                                  record=version_record(backend.store, version))
            if served.table is not None:
                served.table.warm()  # the counts of the new grids, on its own worker meanwhile
            served.warm(SWITCH_ZOOMS)
            if served.table is not None:
                served.table.current()  # ready before anyone sees the new grids
            backend.switch(served)
            self.last_switch_seconds = time.monotonic() - started
            log.info("now serving version %s (built in %.1f s; tile geometry rebuilt for %s)",
                     version, self.last_switch_seconds, ", ".join(served.tiles.rebuilt) if served.tiles else "-")
            if not self.stop_event.is_set():
                served.warm(AFTER_SWITCH_ZOOMS)
        except Exception:
            log.exception("switching to the version in force failed; the previous one is still served")
        return backend.current.version

    def _schedule(self) -> None:
        from jngis.workorders import now_cst

        while not self.stop_event.wait(self.schedule_seconds):
            try:
                self.backend.store.apply_due_versions(now_cst())
            except Exception:
                log.exception("applying the scheduled versions failed; trying again in %s s",
                              self.schedule_seconds)
