"""The store interface, :class:`Store`, and everything both implementations share.

A backend (:class:`~jngis.store.sqlite.SQLiteStore`,
:class:`~jngis.store.postgis.PostGISStore`) provides only what differs: the
connection and its transactions (locking), how a point and a time are written,
how many rows go in at once, and how the city's layers are read and written.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from jngis import _checks, access
from jngis.access import Principal
from jngis.cache import Cache
from jngis.codes import personal_columns
from jngis.errors import (
    CRSError,
    ForbiddenError,
    GeometryError,
    InputTypeError,
    NotFoundError,
    ParameterError,
    SchemaError,
)
from jngis.layers import KINDS, SCHEMAS, City, validate
from jngis.store import _scope, bulk
from jngis.store.addresses import AddressSearch
from jngis.store.changes import ChangeChannel
from jngis.store.feed import OrderFeed
from jngis.store.frames import python_value, records
from jngis.store.placement import PLACEMENT_LAYERS, Placer, check_location
from jngis.store.reads import OrderReads, _order_id, _select_orders
from jngis.store.schema import (
    CALLER_COLUMNS,
    CALLER_FIELDS,
    CODE_COLUMNS,
    LAYER_KINDS,
    ORDER_COLUMNS,
    TIME_COLUMNS,
    TRAIL_COLUMNS,
)
from jngis.store.steps import DepartmentSteps
from jngis.store.users import Users
from jngis.store.versions import BoundaryVersions
from jngis.workorders import (
    CALENDAR,
    WorkCalendar,
    plan_creation,
    plan_step,
    public_order,
)

__all__ = ["Store", "no_store"]

#: Rows written per statement (or COPY) in a bulk write, and per step of its progress bar.
BULK_ROWS = 20_000
_INSERT_ORDER = (f"INSERT INTO orders({', '.join(ORDER_COLUMNS)}, geom) "
                 f"VALUES ({', '.join('?' * (len(ORDER_COLUMNS) + 1))})")


class Store(ChangeChannel, Users, OrderReads, OrderFeed, DepartmentSteps, BoundaryVersions, AddressSearch,
            abc.ABC):
    """City layers, work orders, users and the access log behind one interface (see :mod:`jngis.store`).

    Every method that reads or changes orders takes ``principal=`` (default
    :data:`jngis.access.ADMIN`, the CLI's and notebooks'): reads are filtered to
    its scope in SQL, an order outside it is answered like a missing one
    (NotFoundError), a write it may not make is a ForbiddenError.
    """

    #: ``?`` placeholders are rewritten for drivers that use ``%s``.
    _paramstyle = "qmark"
    #: What locks the order row read before a transition (inside the write transaction).
    _lock_row = ""
    #: What share-locks a row read inside a write (the layers' change row, against an adoption).
    _share_row = ""
    url: str
    _crs: pyproj.CRS

    def __init__(self, calendar: WorkCalendar = CALENDAR) -> None:
        if not isinstance(calendar, WorkCalendar):
            raise InputTypeError(f"calendar is a {type(calendar).__name__}; expected a jngis.workorders.WorkCalendar")
        self.calendar = calendar
        self._local = threading.local()
        self._connections: list[tuple[threading.Thread, Any]] = []  # (owner thread, connection)
        self._connections_lock = threading.Lock()
        # One placer, for the layers as last written: a write_city moves the generation on.
        self._placers: Cache[Placer] = Cache(max_bytes=1)
        self._layers_generation = 0
        self._closed = False
        self._token_cache = Cache(max_bytes=10_000)  # verified tokens (see jngis.store.users)
        self._order_columns: frozenset[str] | None = None

    # -- what a backend provides
    @abc.abstractmethod
    def _connect(self): ...

    @abc.abstractmethod
    def _write(self) -> contextlib.AbstractContextManager:
        """A write transaction on this thread's connection (yields the connection)."""

    @abc.abstractmethod
    def _point_values(self, x: np.ndarray, y: np.ndarray) -> list:
        """The geometry column's values of points in the store CRS."""

    @abc.abstractmethod
    def _insert_many(self, conn, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        """Insert rows of plain values (see :func:`jngis.store.frames.column_values`) at once."""

    @abc.abstractmethod
    def _held_layers(self, conn) -> set[str]:
        """The names of the layer tables present."""

    @abc.abstractmethod
    def _read_city_layer(self, kind: str) -> gpd.GeoDataFrame: ...

    @abc.abstractmethod
    def _write_city_layers(self, city: City, kinds: list[str], orders_crs: pyproj.CRS | None) -> None:
        """Replace the layers ``kinds`` in one transaction; move the (empty) orders to ``orders_crs``."""

    def _db_time(self, value: dt.datetime) -> Any:
        """A time as the driver binds it."""
        return value

    def _from_db_time(self, value: Any) -> dt.datetime | None:
        return value

    @property
    def crs(self) -> pyproj.CRS:
        """The CRS of the store's orders (the city's CRS)."""
        return self._crs

    # -- connections
    def _conn(self):
        if self._closed:
            raise ParameterError(f"{self!r} is closed; expected an open store")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._connections_lock:
                # Servers retire idle worker threads: close the connections of threads
                # that have ended, or every retired thread would keep a file handle open.
                for thread, old in self._connections:
                    if not thread.is_alive():
                        with contextlib.suppress(Exception):
                            old.close()
                self._connections = [pair for pair in self._connections if pair[0].is_alive()]
                self._connections.append((threading.current_thread(), conn))
        return conn

    def _sql(self, query: str) -> str:
        return query.replace("?", "%s") if self._paramstyle == "format" else query

    def _execute(self, conn, query: str, params: Sequence = ()):
        return conn.execute(self._sql(query), tuple(params))

    def _to_db(self, value: Any) -> Any:
        value = python_value(value)
        return self._db_time(value) if isinstance(value, dt.datetime) else value

    def close(self) -> None:
        """Close every connection the store opened (in any thread)."""
        with self._connections_lock:
            for _, conn in self._connections:
                with contextlib.suppress(Exception):
                    conn.close()
            self._connections.clear()
            self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- layers
    def layer_names(self) -> list[str]:
        """Layer kinds held, in hierarchy order (``"workorders"`` when orders exist)."""
        held = self._held_layers(self._conn()) & set(LAYER_KINDS)
        if self._has_orders():
            held.add("workorders")
        return [k for k in KINDS if k in held]

    def read_layer(self, kind: str, *, at: Any = None) -> gpd.GeoDataFrame:
        """One layer of the city as a validated GeoDataFrame; ``"workorders"`` is :meth:`orders_frame`.

        ``at`` (a date): the boundaries in force that day (streets, communities,
        units and grids are versioned; see :mod:`jngis.store.versions`).
        """
        if kind not in SCHEMAS:
            raise SchemaError(f"read_layer: kind={kind!r} is not a layer kind; expected one of {', '.join(KINDS)}")
        if kind == "workorders":
            return self.orders_frame()
        if at is not None:
            then = self._layer_at(kind, at)
            if then is not None:
                return then
        if kind not in self.layer_names():
            raise NotFoundError(f"read_layer: the store {self.url} holds no {kind!r} layer; "
                                f"it holds {self.layer_names()}")
        layer = validate(self._read_city_layer(kind), kind)
        _refuse_personal("read_layer", kind, layer.columns)
        return layer

    def read_city(self) -> City:
        """Every layer held, as a :class:`~jngis.layers.City` (work orders: the live public frame)."""
        city = City()
        for kind in self.layer_names():
            setattr(city, kind, self.read_layer(kind))
        return city

    def write_city(self, city: City) -> None:
        """Replace the city's layers with those of ``city`` (validated first).

        Work orders already in the store are kept. A ``workorders`` layer in
        ``city`` (historical orders) is imported with a synthetic trail;
        orders whose ``order_id`` the store already holds are skipped. A
        store without orders takes the CRS of the city's districts.
        """
        if not isinstance(city, City):
            raise InputTypeError(f"write_city: city is a {type(city).__name__}; expected a jngis.City")
        city.validate()
        kinds = [kind for kind in city.kinds() if kind != "workorders"]
        for kind in kinds:
            _refuse_personal("write_city", kind, getattr(city, kind).columns)
        self._refuse_versioned_write(kinds)
        self._write_city_layers(city, kinds, self._orders_crs_for(city))
        self._layers_generation += 1
        self._placers.clear()
        if city.workorders is not None and len(city.workorders):
            self.import_history(city.workorders)

    def _orders_crs_for(self, city: City) -> pyproj.CRS | None:
        """The CRS the orders must move to for ``city`` (None: they stay), or a CRSError."""
        if city.districts is None or city.districts.crs.to_epsg() == self.crs.to_epsg():
            return None
        if self._has_orders():
            raise CRSError(
                f"write_city: the city is in {city.districts.crs.to_string()} but the store's orders are "
                f"in {self.crs.to_string()}; expected the same CRS (use city.to_crs(store.crs))"
            )
        if city.districts.crs.to_epsg() is None:
            raise CRSError(f"write_city: districts are in {city.districts.crs.to_string()!r}; "
                           "expected an EPSG CRS (e.g. EPSG:4548) for the store's orders")
        return city.districts.crs

    def placer(self) -> Placer:
        """The placement indexes of the layers in force (rebuilt when they change, in any process)."""
        return self._placer_at(self.change_versions()["layers"])

    def _placer_at(self, layers_version: int) -> Placer:
        """The placer of the layers as of change ``layers_version`` (what the store holds then)."""
        return self._placers.get_or_insert((self._layers_generation, layers_version), self._build_placer)

    def _build_placer(self) -> Placer:
        names = self.layer_names()
        return Placer({kind: self._read_city_layer(kind) for kind in PLACEMENT_LAYERS if kind in names})

    def _placed_in_force(self, conn, lon: np.ndarray, lat: np.ndarray, layers_version: int) -> pd.DataFrame | None:
        """Inside a write: None if the layers are still those of ``layers_version``, else the new places.

        An adoption that took effect between placing and writing moved the
        boundaries: the rows are placed again in the new ones (PostgreSQL
        waits here, on the layers' change row, for an adoption under way).
        """
        row = self._execute(conn, f"SELECT version FROM jngis_changes WHERE kind = 'layers'{self._share_row}")
        now = int(row.fetchone()[0])
        return None if now == layers_version else self._placer_at(now).place(lon, lat)

    def orders_version(self) -> tuple[str, str, str]:
        """A value that changes whenever an order is created or moves along.

        ``(orders, trail rows, latest updated_at)`` read in one statement (one
        snapshot): every write adds a trail row, so two states of the store
        with the same version hold the same orders. Used to tell whether a
        saved per-grid table is still the table of the store.
        """
        row = self._execute(self._conn(), "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM trail), "
                                          "(SELECT max(updated_at) FROM orders)").fetchone()
        return str(row[0]), str(row[1]), str(row[2])

    def _has_orders(self) -> bool:
        return self._execute(self._conn(), "SELECT 1 FROM orders LIMIT 1").fetchone() is not None

    # -- order ids
    def _next_ids(self, conn, day: dt.date, count: int) -> list[str]:
        """``count`` new ids of ``day`` (``YYYYMMDD`` + a 6-digit number) from the atomic counter."""
        key = day.strftime("%Y%m%d")
        last = self._execute(
            conn,
            "INSERT INTO order_counters(day, last) VALUES (?, ?) ON CONFLICT(day) "
            "DO UPDATE SET last = order_counters.last + excluded.last RETURNING last",
            (key, count),
        ).fetchone()[0]
        return [f"{key}{n:06d}" for n in range(last - count + 1, last + 1)]

    def _bump_counters(self, conn, order_ids: Iterable[str]) -> None:
        """Move the counters past given ids of the counter's own form, so no new id repeats them."""
        ids = pd.Series(list(order_ids), dtype=object)
        ids = ids[ids.str.fullmatch(r"\d{14}").fillna(False).astype(bool)]
        highest = ids.str[8:].astype(int).groupby(ids.str[:8]).max()
        for day, value in highest.items():
            self._execute(
                conn,
                "INSERT INTO order_counters(day, last) VALUES (?, ?) ON CONFLICT(day) "
                "DO UPDATE SET last = CASE WHEN order_counters.last > excluded.last "
                "THEN order_counters.last ELSE excluded.last END",
                (day, int(value)),
            )

    def _held_ids(self, conn, ids: list[str]) -> set[str]:
        """Which of ``ids`` the store already holds."""
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = self._execute(conn, f"SELECT order_id FROM orders WHERE order_id IN ({', '.join('?' * len(chunk))})",
                                 chunk).fetchall()
            found.update(r[0] for r in rows)
        return found

    # -- one order
    def create_order(self, lon: float, lat: float, *, crs: str = "wgs84", category: str,
                     description: str | None = None, caller_name: str | None = None,
                     caller_phone: str | None = None, who: str | None = None, at: Any = None,
                     order_id: str | None = None, principal: Principal = access.ADMIN) -> dict:
        """Create an order at a location: placed, given its due time, written with its first trail row.

        Parameters
        ----------
        lon, lat : float
            The location in degrees, in ``crs``.
        crs : {"wgs84", "cgcs2000", "gcj02", "bd09"}
            Coordinate system of the location (:data:`jngis.codes.INPUT_CRS_NAMES`;
            GCJ-02: Amap/Tencent; BD-09: Baidu).
        category, description : str
            The kind of matter and the citizen's words.
        caller_name, caller_phone : str, optional
            Personal data: stored apart, shown masked, in full only by :meth:`reveal`.
        who : str, optional
            The trail's who: ``principal.id`` by default; only the administrator
            principal (library callers) may name the operator instead.
        at : datetime, optional
            Time of receipt (default now, China Standard Time).
        order_id : str, optional
            The hotline system's id; by default ``YYYYMMDD`` + a daily number.

        Returns
        -------
        dict
            The public record (:data:`jngis.workorders.PUBLIC_FIELDS`).

        principal : Principal
            Who creates it: needs ``orders.create``, and the place must lie in its scope.

        Raises
        ------
        GeometryError
            If the location lies outside every district of the city.
        ForbiddenError
            If the principal may not create orders, or not at this place.
        """
        principal = access.principal(principal)
        access.require(principal, "orders.create")
        who = _scope.trail_who("create_order", principal, who)
        record, caller, first_row = self._plan_order(lon, lat, crs=crs, category=category, description=description,
                                                     caller_name=caller_name, caller_phone=caller_phone, who=who,
                                                     at=at, order_id=order_id)
        if not access.order_scope(principal).contains(record):
            raise ForbiddenError(f"create_order: the place (grid {record['grid_code']}, 街道 {record['street_code']}) "
                                 f"is outside the scope of {principal.name!r} ({principal.role}: "
                                 f"{', '.join(principal.scope)})", action="orders.create")
        with self._write() as conn:
            moved = self._placed_in_force(conn, np.array([record["lon"]]), np.array([record["lat"]]),
                                          record.pop("layers_version"))
            if moved is not None:
                record.update({key: moved[key].iloc[0] for key in ("x", "y", *CODE_COLUMNS)})
            record["order_id"] = self._claim_order_id(conn, record["order_id"], record["received_at"])
            self._insert_order(conn, record, caller, first_row)
            self.announce("orders")
        return public_order(record)

    def _plan_order(self, lon: Any, lat: Any, *, crs: Any, category: Any, description: Any, caller_name: Any,
                    caller_phone: Any, who: Any, at: Any, order_id: Any) -> tuple[dict, dict, dict]:
        """Check and place a new order: ``(record, caller's personal data, first trail row)``."""
        lon, lat = check_location("create_order", lon, lat, crs)
        fields, first_row = plan_creation(category=category, description=description, who=who, at=at,
                                          calendar=self.calendar)
        caller = {"caller_name": _checks.text("create_order", "caller_name", caller_name, max_length=100),
                  "caller_phone": _checks.text("create_order", "caller_phone", caller_phone, max_length=40)}
        order_id = _checks.text("create_order", "order_id", order_id, max_length=64)
        layers_version = self.change_versions()["layers"]
        place = self._placer_at(layers_version).place_one(lon, lat)
        if place["district_code"] is None:
            raise GeometryError(
                f"location lon={lon:.6f}, lat={lat:.6f} (WGS84) lies outside every district of the city; "
                "expected a location inside it (was crs= right? GCJ-02/BD-09 points are 0.5-1.4 km off)"
            )
        record = {**fields, "order_id": order_id, "lon": lon, "lat": lat, "x": place["x"],
                  "y": place["y"], **{key: place[key] for key in CODE_COLUMNS},
                  "layers_version": layers_version}
        return record, caller, first_row

    def _claim_order_id(self, conn, order_id: str | None, received_at: dt.datetime) -> str:
        """A new id from the counter, or the given one if the store does not hold it yet."""
        if order_id is None:
            return self._next_ids(conn, received_at.date(), 1)[0]
        if self._execute(conn, "SELECT 1 FROM orders WHERE order_id = ?", (order_id,)).fetchone():
            raise ParameterError(f"order_id={order_id!r} already exists; expected a new id")
        self._bump_counters(conn, [order_id])
        return order_id

    def _insert_order(self, conn, record: dict, caller: dict, first_row: dict) -> None:
        point = self._point_values(np.array([record["x"]]), np.array([record["y"]]))[0]
        self._execute(conn, _INSERT_ORDER, [self._to_db(record.get(c)) for c in ORDER_COLUMNS] + [point])
        if any(caller[field] is not None for field in CALLER_FIELDS):
            self._execute(conn, f"INSERT INTO callers({', '.join(CALLER_COLUMNS)}) "
                                f"VALUES ({', '.join('?' * len(CALLER_COLUMNS))})",
                          [record["order_id"]] + [caller[field] for field in CALLER_FIELDS])
        self._execute(conn, f"INSERT INTO trail({', '.join(TRAIL_COLUMNS)}) "
                            f"VALUES ({', '.join('?' * len(TRAIL_COLUMNS))})",
                      [self._to_db({**first_row, "order_id": record["order_id"]}[c]) for c in TRAIL_COLUMNS])

    def transition(self, order_id: str, to: str, *, who: str | None = None, note: str | None = None,
                   at: Any = None, days: int | None = None, satisfied: bool | None = None,
                   principal: Principal = access.ADMIN) -> dict:
        """Move an order one step along the closed loop; the order and its trail row are written together.

        ``to`` is one of :data:`jngis.workorders.ACTIONS`; ``note`` is the
        reason (required for returned / reopened / extended); ``days`` the
        extension in working days (1-10, default 10); ``satisfied`` the
        citizen's answer when closing. Returns the public record.

        Raises
        ------
        NotFoundError
            No such order, or one outside the principal's scope (the same message).
        ForbiddenError
            The principal can read the order but may not take this step.
        InvalidTransition
            The step is not allowed from the order's state (names the allowed ones).
        """
        order_id = _order_id("transition", order_id)
        principal = _scope.require_read(principal)
        who = _scope.trail_who("transition", principal, who)
        with self._write() as conn:
            scope, params = self._scope_sql(conn, principal)
            row = self._execute(conn, _select_orders(f"WHERE order_id = ? AND {scope}{self._lock_row}"),
                                (order_id, *params)).fetchone()
            if row is None:
                raise _scope.missing_order(order_id)
            _scope.require_step(principal, order_id, to)
            order = self._row_dict(row)
            # the department loop's rules apply here too (2-day return, callback before closing ...)
            loop = self._loop_row(conn, order_id)
            changes, loop_changes, rows = plan_step(order, loop, to, who=who, at=at, note=note, days=days,
                                                    satisfied=satisfied, rules=self.rules, calendar=self.calendar)
            self._write_step(conn, order_id, changes, {**loop, **loop_changes} if loop_changes else None, rows)
        order.update(changes)
        return public_order(order)

    def _row_dict(self, row: Sequence) -> dict:
        record = dict(zip(ORDER_COLUMNS, row))
        for column in TIME_COLUMNS:
            record[column] = self._from_db_time(record[column])
        if record["satisfied"] is not None:
            record["satisfied"] = bool(record["satisfied"])
        return record

    def get_order(self, order_id: str, *, now: Any = None, principal: Principal = access.ADMIN,
                  personal: bool = False) -> dict:
        """One order as ``principal`` may see it: public fields, phones in the description masked.

        With ``personal=True`` the caller's name and phone are added, masked
        (``张*``, ``138****5678``), for roles with personal-data rights; never
        in full (that is :meth:`reveal`). An order outside the scope raises the
        NotFoundError of a missing one.
        """
        order_id = _order_id("get_order", order_id)
        principal = _scope.require_read(principal)
        conn = self._conn()
        scope, params = self._scope_sql(conn, principal)
        row = self._execute(conn, _select_orders(f"WHERE order_id = ? AND {scope}"), (order_id, *params)).fetchone()
        if row is None:
            raise _scope.missing_order(order_id)
        return self._shown([public_order(self._row_dict(row), now)], principal, personal)[0]

    # -- bulk
    def import_orders(self, rows: pd.DataFrame, *, who: str | None = None, progress: bool = False,
                      principal: Principal = access.ADMIN) -> bulk.ImportResult:
        """Create many orders at once: every good row lands, in one transaction, or none does.

        ``rows`` is the ``good`` table of
        :func:`jngis.workorders.clean_order_rows` (WGS84 ``lon``/``lat``,
        ``category``, optional ``description``, ``caller_name``,
        ``caller_phone``, ``received_at``, ``order_id``; indexed by row
        number). Rows outside every district, or whose ``order_id`` the store
        already holds, are refused and reported in ``bad`` with their row
        number. Ctrl-C rolls everything back. ``principal`` needs ``orders.create``;
        rows placed outside its scope are refused in ``bad`` too.
        """
        principal = access.principal(principal)
        access.require(principal, "orders.create")
        who = _scope.trail_who("import_orders", principal, who)
        return bulk.import_orders(self, rows, who=who, progress=progress, scope=access.order_scope(principal))

    def import_history(self, workorders: gpd.GeoDataFrame, *, who: str = "history",
                       progress: bool = False) -> int:
        """Import a historical ``workorders`` layer (states as given) with its synthetic trail.

        Orders whose id the store already holds are skipped; returns how many
        were added. Points are placed like new orders; those outside every
        district keep no codes (history is kept, not refused).
        """
        return bulk.import_history(self, workorders, who=who, progress=progress)

    def _after_bulk(self, rows: int) -> None:
        """After a committed bulk write of ``rows`` orders: what the database needs (nothing here)."""

    def _bulk_orders(self, conn, frame: pd.DataFrame, callers: pd.DataFrame, trail: pd.DataFrame,
                     progress: Callable[[int], None] | None) -> None:
        """Write new orders, their callers and trail rows inside the open transaction ``conn``."""
        rows = [(*values, point) for values, point in
                zip(records(frame, ORDER_COLUMNS), self._point_values(frame["x"].to_numpy(float),
                                                                      frame["y"].to_numpy(float)))]
        for start in range(0, len(rows), BULK_ROWS):
            chunk = rows[start:start + BULK_ROWS]
            self._insert_many(conn, "orders", (*ORDER_COLUMNS, "geom"), chunk)
            if progress is not None:
                progress(len(chunk))
        if len(callers):
            self._insert_many(conn, "callers", CALLER_COLUMNS, records(callers, CALLER_COLUMNS))
        self._insert_many(conn, "trail", TRAIL_COLUMNS, records(trail, TRAIL_COLUMNS))
        self.announce("orders")


def no_store(where: str, why: str, expected: str) -> NotFoundError:
    """The refusal to open, without creating it, a store that is not there."""
    return NotFoundError(f"no store at {where!r}: {why}; check the path or URL (nothing was created), "
                         f"expected {expected}")




def _refuse_personal(func: str, kind: str, columns: Iterable[Any]) -> None:
    """A layer is public (map, tiles, features): personal data never goes into one."""
    personal = personal_columns(columns, kind)
    if personal:
        raise SchemaError(f"{func}: the {kind} layer has the column {personal[0]!r}, which holds personal "
                          "data; expected none in a layer (a caller's details live only in the store's "
                          "callers table)")



