"""What the routes share, loaded once at startup, and the dependencies that hand it out.

:class:`Backend` opens the store, reads the city layers once and builds the
heavy indexes (vector tiles) so no request pays for them; it holds objects
only: what is computed lazily goes through :class:`jngis.cache.Cache`, the
place names through :class:`jngis.places.Places` and the per-grid table
through :class:`jngis.gridtable.LiveTable`. Routes get it with
``Depends(backend)`` and who is asking with ``Depends(current_principal)``
(:mod:`jngis.server.auth`); they pass the principal to the store and the
library, which decide what it may see and do.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from jngis import access
from jngis.access import ANONYMOUS, Principal
from jngis.cache import Cache
from jngis.crs import WGS84
from jngis.errors import NotFoundError
from jngis.gridtable import MAX_AGE, GridTable, LiveTable
from jngis.layers import SCHEMAS
from jngis.places import Places
from .auth import Authenticator
from .settings import Settings
from .switch import (
    HELD_VERSIONS,
    WARM_ZOOMS,
    Served,
    Switcher,
    build_served,
    read_version,
    version_in_force,
    version_record,
)

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

#: Age after which work orders are re-read (writes through this server and orders announced
#: by other processes on the store's change channel re-read them at once; the age matters for
#: deadlines passing as time goes on).
STATS_SECONDS = MAX_AGE

#: Layers as in force on past days kept for ``datetime=`` queries.
HISTORY_LAYERS = 16

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
    """The objects one running server holds: the store, the version served, the switch.

    What depends on the city's layers (layers, names, tiles, per-grid table,
    their caches) is one :class:`~jngis.server.switch.Served` per boundary
    version; :attr:`current` is the one in force, replaced in one assignment
    by :meth:`switch` (:class:`~jngis.server.switch.Switcher` builds the next
    one when a version takes effect). A route that reads several of them takes
    :meth:`served` once, so its answer is of one version.
    """

    settings: Settings
    store: Any
    current: Served
    #: Whether the store is the sample city (whose addresses are generated, not stored).
    sample: bool = False
    #: The versions whose tiles are still served, by number (the current one included).
    held: Cache = field(default_factory=lambda: Cache(max_bytes=HELD_VERSIONS), repr=False)
    switcher: Switcher | None = field(default=None, repr=False)
    #: Layers of past and pending versions in WGS84, by (kind, version): what ``datetime=`` reads.
    history: Cache = field(default_factory=lambda: Cache(max_bytes=HISTORY_LAYERS), repr=False)
    #: Turns a request's credentials into its principal (:mod:`jngis.server.auth`).
    auth: Any = field(default=None, repr=False)
    _writes: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)
    _orders_generation: int = field(default=0, repr=False)
    #: Set (and replaced) at each switch: what requests for a newer version wait on.
    _switched: threading.Event = field(default_factory=threading.Event, repr=False)

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
        version, layers = read_version(store)
        served = build_served(store, settings, version, layers, record=version_record(store, version))
        # The table the last run saved, if the orders and layers are still the same, colours the
        # first page at once; a fresh one is computed in the background from now on (warm).
        if served.table is not None:
            served.table.warm()
        backend = cls(settings=settings, store=store, current=served,
                      sample=settings.store is None or _is_sample(url), auth=Authenticator.open(settings, store))
        backend.held.insert(version, served)
        if "districts" in layers:
            # the PolygonIndex a new work order is placed with: built now, not on the first report
            store.placer()
            if backend.sample:  # the sample city's departments, dispatch catalogue and 街道 calls, once
                store.load_sample_departments()
                store.load_sample_calls()
        threading.Thread(target=backend._warm_tiles, name="jngis-warm-tiles", daemon=True).start()
        backend.switcher = Switcher(backend)
        backend.switcher.start()
        return backend

    def _warm_tiles(self) -> None:
        try:
            self.current.warm(WARM_ZOOMS)
        except Exception:
            log.exception("preparing the tiles at startup failed")

    # -- the version served
    def served(self, version: int | None = None, *, wait: float = 0.0) -> Served:
        """The :class:`Served` of ``version`` (default: the one in force), if this server holds it.

        A version newer than the one served is waited for up to ``wait``
        seconds (another process may have switched first: this one is building
        it). NotFoundError names the versions held.
        """
        current = self.current
        if version is None or version == current.version:
            return current
        found = self.held.get(version)
        if found is None and version > current.version and wait > 0 \
                and version <= version_in_force(self.store):
            if self.switcher is not None:
                self.switcher.check()  # in case this process has not heard of it yet
            deadline = time.monotonic() + wait
            while True:
                switched = self._switched  # taken before the check: a switch after it sets it
                left = deadline - time.monotonic()
                if self.current.version >= version or left <= 0:
                    break
                switched.wait(left)
            found = self.held.get(version)
        if found is None:
            raise NotFoundError(f"version {version} is not served here; this server serves version "
                                f"{current.version} (its TileJSON names its tile addresses)")
        return found

    def switch(self, served: Served) -> None:
        """Serve ``served`` from now on (one assignment: a request sees the old or the new one)."""
        self.held.insert(served.version, served)
        switched, self._switched = self._switched, threading.Event()
        self.current = served
        switched.set()  # wakes the requests waiting for a newer version

    def close(self) -> None:
        """Stop listening for changes (the store stays open for the routes still running)."""
        if self.switcher is not None:
            self.switcher.stop()
        self.auth.close()  # the failed sign-ins still being counted go to the access log

    # What the routes read, of the version in force.
    @property
    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        return self.current.layers

    @property
    def places(self) -> Places:
        return self.current.places

    @property
    def table(self) -> LiveTable | None:
        return self.current.table

    @property
    def tiles(self):
        return self.current.tiles

    @property
    def live(self) -> Cache:
        return self.current.live

    def layer(self, kind: str, who: Principal = ANONYMOUS) -> gpd.GeoDataFrame:
        """A published layer in its own (metric) CRS; NotFoundError names the choices.

        Work orders are the ones ``who`` may see (the store filters them).
        """
        if kind == "workorders":
            return self.store.orders_frame(principal=who)
        layers = self.current.layers
        if kind not in layers:
            raise NotFoundError(
                f"layer {kind!r} does not exist; expected one of {', '.join(self.kinds(who))}")
        return layers[kind]

    def kinds(self, who: Principal = ANONYMOUS) -> list[str]:
        """The layers published to ``who``: work orders only to roles that read orders."""
        layers, orders = self.current.layers, access.can(who, "orders.read")
        return [kind for kind in PUBLISHED if kind in layers or (kind == "workorders" and orders)]

    def wgs84(self, kind: str, who: Principal = ANONYMOUS) -> gpd.GeoDataFrame:
        """A layer in WGS84 (what GeoJSON and the OGC API speak), cached.

        Work orders are those ``who`` may see, cached under its role and scope;
        they are re-read after a write (through this server or announced by
        another), and at the latest ``STATS_SECONDS`` after they were read
        (deadlines).
        """
        served = self.current
        if kind == "workorders":
            key = ("workorders", self._orders_generation, int(time.monotonic() // STATS_SECONDS),
                   scope_key(who))
            return served.live.get_or_insert(key, lambda: self.layer(kind, who).to_crs(WGS84))
        if kind not in served.layers:
            self.layer(kind, who)  # the NotFoundError naming the layers ``who`` may read
        return served.wgs84_layers.get_or_insert(kind, lambda: self.layer(kind).to_crs(WGS84))

    def wgs84_at(self, kind: str, datetime: str | None, who: Principal = ANONYMOUS) -> gpd.GeoDataFrame:
        """The features of a layer valid at some instant of ``datetime`` (all versions then in force).

        Layers that are not versioned, or no ``datetime``: :meth:`wgs84`. The
        layer in force on a day is read from the store's history once (cached).
        """
        from jngis.features import VERSIONED_KINDS, days_in_force, in_force, parse_datetime

        interval = parse_datetime(datetime)
        if interval is None or kind not in VERSIONED_KINDS:
            return self.wgs84(kind, who)
        listed = self.store.versions()
        if listed.empty:
            return self.wgs84(kind, who)
        days = days_in_force(interval, [None if pd.isna(day) else day for day in listed["effective"]])
        return in_force([self._history_layer(kind, day) for day in days], kind)

    def _history_layer(self, kind: str, day: date) -> gpd.GeoDataFrame:
        # keyed by the version in force that day, not the day: a later adoption may take effect on it
        version = self.store.version_in_force(at=day)
        return self.history.get_or_insert((kind, version),
                                          lambda: self.store.read_layer(kind, at=day).to_crs(WGS84))

    def addresses(self):
        """The :class:`jngis.AddressIndex` of the city's units, built once on first use."""
        served = self.current
        return served.indexes.get_or_insert("addresses", lambda: self._address_index(served.layers))

    def _address_index(self, layers: dict[str, gpd.GeoDataFrame]):
        from jngis.address import JINAN_PREFIXES, AddressIndex, sample_addresses

        units = layers.get("units")
        if units is None:
            raise NotFoundError("this city has no units layer: addresses cannot be looked up")
        prefixes: tuple[str, ...] = ()
        if self.sample:  # the sample city's addresses are generated from its units, as its tests do
            prefixes = JINAN_PREFIXES
            if "road" not in units.columns:
                units = units.join(sample_addresses(units, districts=layers.get("districts")))
        if "road" not in units.columns or "door_number" not in units.columns:
            raise NotFoundError("this city's units carry no addresses; expected the columns road and "
                                "door_number (optional compound_name, building, aliases) in the units layer")
        if self.settings.address_lookup == "store":  # the store's search table, not every address here
            if self.store._search_version(self.store._conn()) is None:
                self.store.index_addresses(units)
            return StoreAddresses(self.store, prefixes)
        return AddressIndex(units, districts=layers.get("districts"), streets=layers.get("streets"),
                            communities=layers.get("communities"), grids=layers.get("grids"),
                            prefixes=prefixes)

    def grid_table(self, served: Served | None = None) -> GridTable:
        """The ``grid_stats`` table of the city, as of the time it carries (:class:`LiveTable`)."""
        table = (served or self.current).table
        if table is None:
            raise NotFoundError("this city has no grids layer yet; make them with jngis.grids.make_grids")
        return table.current()

    def figures(self, who: Principal, served: Served | None = None) -> tuple[GridTable, pd.DataFrame, tuple]:
        """``(table, the rows who may see, their cache key)``: the per-grid figures ``who`` may read.

        The figures are aggregated (no personal data, whatever the role); a role scoped to
        places sees its grids, the others the whole city (:func:`figure_scope`).
        """
        access.require(who, "stats.read")
        current = self.grid_table(served)
        scope = figure_scope(who)
        if scope.everything:
            return current, current.table, _key(scope)
        return current, current.table[scope.mask(current.table.reset_index())], _key(scope)

    def orders_changed(self) -> None:
        """Orders were written: recompute the grid table (in the background) and re-read the orders."""
        self._orders_generation = next(self._writes)  # a new key: the orders read before are not reused
        table = self.current.table
        if table is not None:
            table.refresh()


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


class StoreJSON(JSONResponse):
    """A JSON answer of the store's values (times, numpy scalars) by :func:`encode_json`: a quarter of the
    CPU of ``JSONResponse(jsonable_encoder(...))`` on a page of orders; NaN is refused as there."""

    def render(self, content: Any) -> bytes:
        return encode_json(content, allow_nan=False)


def json_response(payload: Any, media_type: str = "application/json") -> Response:
    """``payload`` serialised once (:func:`encode_json`)."""
    return Response(encode_json(payload), media_type=media_type)


def _plain(value: Any) -> Any:
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass(frozen=True)
class StoreAddresses:
    """``locate`` as :class:`jngis.AddressIndex` has it, answered by the store (``JNGIS_ADDRESS_LOOKUP=store``)."""

    store: Any
    prefixes: tuple[str, ...]

    def locate(self, text: str) -> dict:
        return self.store.locate_address(text, prefixes=self.prefixes)


async def backend(request: Request) -> Backend:
    """The server's Backend (a coroutine: FastAPI calls it in the event loop, not through the thread pool)."""
    return request.app.state.backend


def _key(scope: access.Scope) -> tuple:
    key = scope.key
    return key() if callable(key) else key


def scope_key(who: Principal) -> tuple:
    """The part of a cache key that tells apart what principals may see of the orders.

    The store's answer depends on the role (what it may read, whether descriptions are
    masked) and the scope, never on who the principal is: ``(role, Scope.key)``.
    """
    return who.role, _key(access.order_scope(who))


def figure_scope(who: Principal) -> access.Scope:
    """Which grids' figures ``who`` sees: its places, or the whole city for a role not scoped to places.

    Figures are aggregated and public where anonymous reading is on; a department's scope
    is not a place, so it sees the city's figures as anonymous does.
    """
    scope = access.order_scope(who)
    if scope.everything or who.role in ("anonymous", "department"):
        return access.Scope(everything=True)
    return scope


def static_dir() -> Path:
    return Path(__file__).resolve().parent / "static"
