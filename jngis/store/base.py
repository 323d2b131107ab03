"""The store interface, :class:`Store`, and the logic both implementations share."""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import threading
import time
from typing import Any, Callable, Iterable, NamedTuple, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from jngis import crs as jcrs
from jngis.errors import (
    CRSError,
    GeometryError,
    InputTypeError,
    NotFoundError,
    ParameterError,
    SchemaError,
)
from jngis.layers import KINDS, SCHEMAS, City, validate
from jngis.workorders import (
    CALENDAR,
    INPUT_CRS,
    OPEN_STATES,
    PERSONAL_FIELDS,
    PUBLIC_FIELDS,
    RESOLVE_WORKING_DAYS,
    STATES,
    WARNING_WORKING_DAYS,
    WorkCalendar,
    deadlines,
    now_cst,
    plan_creation,
    plan_transition,
    public_order,
    synthetic_trail,
    to_cst,
)

#: The CRS of a store created empty (orders are kept in the city's CRS otherwise).
DEFAULT_CRS = "EPSG:4548"

# Columns of the orders table (besides the geometry), in order.
_ORDER_COLUMNS = (
    "order_id", "category", "description", "status", "received_at", "dispatched_at", "due_at",
    "warn_at", "resolved_at", "closed_at", "extended_days", "satisfied", "district_code",
    "street_code", "community_code", "grid_code", "lon", "lat", "x", "y", "updated_at",
)
#: Largest ``offset`` of list_orders (a billion orders: far beyond any city's hotline).
MAX_OFFSET = 1_000_000_000
_TIME_COLUMNS = ("received_at", "dispatched_at", "due_at", "warn_at", "resolved_at", "closed_at", "updated_at")
_TRAIL_COLUMNS = ("order_id", "action", "from_state", "to_state", "who", "at", "note")
_CODE_COLUMNS = ("district_code", "street_code", "community_code", "grid_code")
_LAYER_KINDS = tuple(k for k in KINDS if k != "workorders")
_PLACEMENT_LEVELS = (("grids", "grid_code"), ("communities", "community_code"),
                     ("streets", "street_code"), ("districts", "district_code"))


class ImportResult(NamedTuple):
    """What a bulk import did: ``imported`` orders (their ids) and the refused rows."""

    imported: int
    order_ids: list[str]
    bad: pd.DataFrame  # columns row, reason
    seconds: float


# --------------------------------------------------------------------------- placement


class _Placer:
    """One :class:`jngis.assign.PolygonIndex` per administrative level, built once and reused."""

    def __init__(self, layers: dict[str, gpd.GeoDataFrame]) -> None:
        from jngis.assign import PolygonIndex

        if layers.get("districts") is None or len(layers["districts"]) == 0:
            raise NotFoundError(
                "the store holds no districts layer, so a location cannot be placed; "
                "expected a city written with store.write_city(city)"
            )
        self.crs = layers["districts"].crs
        self.indexes = {}
        for kind, key in _PLACEMENT_LEVELS:
            layer = layers.get(kind)
            if layer is not None and len(layer):
                self.indexes[kind] = PolygonIndex(layer.to_crs(self.crs), key=key)
        self.to_store = jcrs.transformer("EPSG:4326", self.crs)

    def place(self, lon: np.ndarray, lat: np.ndarray) -> pd.DataFrame:
        """x, y in the store CRS and the four codes (None where a level has no polygon there)."""
        x, y = self.to_store.transform(np.asarray(lon, float), np.asarray(lat, float))
        x, y = np.atleast_1d(x), np.atleast_1d(y)
        codes = {key: np.full(len(x), None, dtype=object) for _, key in _PLACEMENT_LEVELS}
        for kind, key in _PLACEMENT_LEVELS:
            index = self.indexes.get(kind)
            if index is None:
                continue
            todo = np.flatnonzero(pd.isna(codes[key]))
            if len(todo) == 0:
                continue
            found = _as_objects(index.locate_xy(x[todo], y[todo]))
            codes[key][todo] = found
            # the finer code fixes the coarser ones: codes extend their parents
            for _, parent in _PLACEMENT_LEVELS[_PLACEMENT_LEVELS.index((kind, key)) + 1:]:
                digits = {"community_code": 12, "street_code": 9, "district_code": 6}[parent]
                have = np.array([isinstance(c, str) for c in found])
                codes[parent][todo[have]] = [c[:digits] for c in found[have]]
        return pd.DataFrame({"x": x, "y": y, **codes})


def _as_objects(values) -> np.ndarray:
    """Located keys as an object array with None where nothing was found."""
    array = np.asarray(pd.Series(values).astype(object), dtype=object)
    return np.array([None if (v is None or (not isinstance(v, str) and pd.isna(v))) else str(v) for v in array],
                    dtype=object)


def _check_lonlat(lon: Any, lat: Any, crs: str) -> tuple[float, float]:
    if crs not in INPUT_CRS:
        raise CRSError(f"crs={crs!r} is not a supported input coordinate system; expected one of "
                       f"{', '.join(map(repr, INPUT_CRS))} (GCJ-02 is Amap/Tencent, BD-09 Baidu)")
    for name, value, low, high in (("lon", lon, -180, 180), ("lat", lat, -90, 90)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InputTypeError(f"{name} is a {type(value).__name__} ({value!r}); expected a number in degrees")
        if not (np.isfinite(value) and low <= value <= high):
            raise GeometryError(f"{name}={value!r} is not a {name} in degrees; expected {low}..{high}")
    convert = INPUT_CRS[crs]
    if convert is not None:
        lon, lat = convert(float(lon), float(lat))
    return float(lon), float(lat)


# --------------------------------------------------------------------------- the interface


class Store(abc.ABC):
    """City layers and work orders behind one interface (see the module docstring)."""

    #: ``?`` placeholders are rewritten for drivers that use ``%s``.
    _paramstyle = "qmark"

    def __init__(self, calendar: WorkCalendar = CALENDAR) -> None:
        if not isinstance(calendar, WorkCalendar):
            raise InputTypeError(f"calendar is a {type(calendar).__name__}; expected a jngis.workorders.WorkCalendar")
        self.calendar = calendar
        self._local = threading.local()
        self._connections: list[tuple[threading.Thread, Any]] = []  # (owner thread, connection)
        self._lock = threading.RLock()
        self._placer: _Placer | None = None
        self._closed = False

    # -- plumbing every backend provides
    @abc.abstractmethod
    def _connect(self): ...

    @abc.abstractmethod
    def _write(self) -> contextlib.AbstractContextManager: ...

    @abc.abstractmethod
    def _lock_order_sql(self) -> str: ...

    @abc.abstractmethod
    def _insert_order_sql(self) -> str: ...

    @abc.abstractmethod
    def _order_geometry_params(self, x: float, y: float) -> tuple: ...

    @abc.abstractmethod
    def _bulk_orders(self, conn, frame: pd.DataFrame, callers: pd.DataFrame, trail: pd.DataFrame,
                     progress: Callable[[int], None] | None) -> None: ...

    @abc.abstractmethod
    def layer_names(self) -> list[str]:
        """Layer kinds held, in hierarchy order (``"workorders"`` when orders exist)."""

    @abc.abstractmethod
    def _read_city_layer(self, kind: str) -> gpd.GeoDataFrame: ...

    @abc.abstractmethod
    def _write_city_layers(self, city: City) -> None: ...

    @property
    @abc.abstractmethod
    def crs(self) -> pyproj.CRS:
        """The CRS of the store's orders (the city's CRS)."""

    # -- connections
    def _conn(self):
        if self._closed:
            raise ParameterError(f"{self!r} is closed; expected an open store")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                # Servers retire idle worker threads: close the connections of threads
                # that have ended, or every retired thread would keep a file handle open.
                ended = [(thread, old) for thread, old in self._connections if not thread.is_alive()]
                for _, old in ended:
                    with contextlib.suppress(Exception):
                        old.close()
                self._connections = [pair for pair in self._connections if pair[0].is_alive()]
                self._connections.append((threading.current_thread(), conn))
        return conn

    def _sql(self, query: str) -> str:
        return query.replace("?", "%s") if self._paramstyle == "format" else query

    def _execute(self, conn, query: str, params: Sequence = ()):
        return conn.execute(self._sql(query), tuple(params))

    def _to_db(self, value):
        return value

    def _from_db_time(self, value):
        return value

    def close(self) -> None:
        """Close every connection the store opened (in any thread)."""
        with self._lock:
            for _, conn in self._connections:
                with contextlib.suppress(Exception):
                    conn.close()
            self._connections.clear()
            self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- layers
    def read_layer(self, kind: str) -> gpd.GeoDataFrame:
        """One layer of the city as a validated GeoDataFrame; ``"workorders"`` is :meth:`orders_frame`."""
        if kind not in SCHEMAS:
            raise SchemaError(f"read_layer: kind={kind!r} is not a layer kind; expected one of {', '.join(KINDS)}")
        if kind == "workorders":
            return self.orders_frame()
        if kind not in self.layer_names():
            raise NotFoundError(f"read_layer: the store {self.url} holds no {kind!r} layer; "
                                f"it holds {self.layer_names()}")
        return validate(self._read_city_layer(kind), kind)

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
        orders whose ``order_id`` the store already holds are skipped.
        """
        if not isinstance(city, City):
            raise InputTypeError(f"write_city: city is a {type(city).__name__}; expected a jngis.City")
        city.validate()
        if city.districts is not None and self._has_orders():
            epsg = city.districts.crs.to_epsg()
            if epsg != self.crs.to_epsg():
                raise CRSError(
                    f"write_city: the city is in {city.districts.crs.to_string()} but the store's orders are "
                    f"in {self.crs.to_string()}; expected the same CRS (use city.to_crs(store.crs))"
                )
        self._write_city_layers(city)
        self._placer = None
        if city.workorders is not None and len(city.workorders):
            self.import_history(city.workorders)

    def _layers_for_placement(self) -> dict[str, gpd.GeoDataFrame]:
        names = self.layer_names()
        return {kind: self._read_city_layer(kind) for kind, _ in _PLACEMENT_LEVELS if kind in names}

    def placer(self) -> _Placer:
        """The placement indexes (built on first use, rebuilt after :meth:`write_city`)."""
        if self._placer is None:
            with self._lock:
                if self._placer is None:
                    self._placer = _Placer(self._layers_for_placement())
        return self._placer

    def orders_version(self) -> tuple[str, str, str]:
        """A value that changes whenever an order is created or moves along.

        ``(orders, trail rows, latest updated_at)`` read in one statement (one
        snapshot): every write adds a trail row, so two states of the store
        with the same version hold the same orders. Used to tell whether a
        saved per-grid table is still the table of the store.
        """
        row = self._execute(self._conn(), "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM trail), "
                                          "(SELECT max(updated_at) FROM orders)").fetchone()
        return tuple(str(value) for value in row)

    def _has_orders(self) -> bool:
        row = self._execute(self._conn(), "SELECT 1 FROM orders LIMIT 1").fetchone()
        return row is not None

    # -- orders
    def _next_ids(self, conn, day: dt.date, count: int) -> list[str]:
        key = day.strftime("%Y%m%d")
        last = self._execute(
            conn,
            "INSERT INTO order_counters(day, last) VALUES (?, ?) ON CONFLICT(day) "
            "DO UPDATE SET last = order_counters.last + excluded.last RETURNING last",
            (key, count),
        ).fetchone()[0]
        return [f"{key}{n:06d}" for n in range(last - count + 1, last + 1)]

    def _bump_counters(self, conn, order_ids: Iterable[str]) -> None:
        ids = pd.Series(list(order_ids), dtype=object)
        ids = ids[ids.str.fullmatch(r"\d{14}").fillna(False)]
        if ids.empty:
            return
        highest = ids.str[8:].astype(int).groupby(ids.str[:8]).max()
        for day, value in highest.items():
            self._execute(
                conn,
                "INSERT INTO order_counters(day, last) VALUES (?, ?) ON CONFLICT(day) "
                "DO UPDATE SET last = CASE WHEN order_counters.last > excluded.last "
                "THEN order_counters.last ELSE excluded.last END",
                (day, int(value)),
            )

    def create_order(self, lon: float, lat: float, *, crs: str = "wgs84", category: str,
                     description: str | None = None, caller_name: str | None = None,
                     caller_phone: str | None = None, who: str, at: Any = None,
                     order_id: str | None = None) -> dict:
        """Create an order at a location: placed, given its due time, written with its first trail row.

        Parameters
        ----------
        lon, lat : float
            The location in degrees, in ``crs``.
        crs : {"wgs84", "cgcs2000", "gcj02", "bd09"}
            Coordinate system of the location (GCJ-02: Amap/Tencent; BD-09: Baidu).
        category, description : str
            The kind of matter and the citizen's words.
        caller_name, caller_phone : str, optional
            Personal data: stored apart, only shown by :meth:`private_record`.
        who : str
            Who took the call (kept in the trail).
        at : datetime, optional
            Time of receipt (default now, China Standard Time).
        order_id : str, optional
            The hotline system's id; by default ``YYYYMMDD`` + a daily number.

        Returns
        -------
        dict
            The public record (:data:`jngis.workorders.PUBLIC_FIELDS`).

        Raises
        ------
        GeometryError
            If the location lies outside every district of the city.
        """
        lon, lat = _check_lonlat(lon, lat, crs)
        fields, first_row = plan_creation(category=category, description=description, who=who, at=at,
                                          calendar=self.calendar)
        caller_name = _optional_text(caller_name, "caller_name", 100)
        caller_phone = _optional_text(caller_phone, "caller_phone", 40)
        if order_id is not None:
            order_id = _optional_text(order_id, "order_id", 64)
        place = self.placer().place(np.array([lon]), np.array([lat])).iloc[0]
        if place["district_code"] is None:
            raise GeometryError(
                f"location lon={lon:.6f}, lat={lat:.6f} (WGS84) lies outside every district of the city; "
                "expected a location inside it (was crs= right? GCJ-02/BD-09 points are 0.5-1.4 km off)"
            )
        record = {**fields, "lon": lon, "lat": lat, "x": float(place["x"]), "y": float(place["y"]),
                  **{key: place[key] for key in _CODE_COLUMNS}}
        with self._write() as conn:
            if order_id is None:
                order_id = self._next_ids(conn, fields["received_at"].date(), 1)[0]
            elif self._execute(conn, "SELECT 1 FROM orders WHERE order_id = ?", (order_id,)).fetchone():
                raise ParameterError(f"order_id={order_id!r} already exists; expected a new id")
            else:
                self._bump_counters(conn, [order_id])
            record["order_id"] = order_id
            values = [self._to_db(record.get(c)) for c in _ORDER_COLUMNS]
            self._execute(conn, self._insert_order_sql(), values + list(self._order_geometry_params(record["x"],
                                                                                                 record["y"])))
            if caller_name is not None or caller_phone is not None:
                self._execute(conn, "INSERT INTO callers(order_id, caller_name, caller_phone) VALUES (?, ?, ?)",
                              (order_id, caller_name, caller_phone))
            self._insert_trail(conn, {**first_row, "order_id": order_id})
        return public_order(record)

    def _insert_trail(self, conn, row: dict) -> None:
        self._execute(conn, "INSERT INTO trail(order_id, action, from_state, to_state, who, at, note) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)", [self._to_db(row[c]) for c in _TRAIL_COLUMNS])

    def transition(self, order_id: str, to: str, *, who: str, note: str | None = None, at: Any = None,
                   days: int | None = None, satisfied: bool | None = None) -> dict:
        """Move an order one step along the closed loop; the order and its trail row are written together.

        ``to`` is one of :data:`jngis.workorders.ACTIONS`; ``note`` is the
        reason (required for returned / reopened / extended); ``days`` the
        extension in working days (1-10, default 10); ``satisfied`` the
        citizen's answer when closing. Returns the public record.

        Raises
        ------
        NotFoundError
            No such order.
        InvalidTransition
            The step is not allowed from the order's state (names the allowed ones).
        """
        order_id = _order_id(order_id)
        with self._write() as conn:
            row = self._execute(conn, self._lock_order_sql(), (order_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"work order {order_id!r} does not exist")
            order = self._row_dict(row)
            changes, trail_row = plan_transition(
                order, to, who=who, at=at, note=note, days=days, satisfied=satisfied,
                last_at=order["updated_at"], calendar=self.calendar)
            assignments = ", ".join(f"{c} = ?" for c in changes)
            self._execute(conn, f"UPDATE orders SET {assignments} WHERE order_id = ?",
                          [self._to_db(v) for v in changes.values()] + [order_id])
            self._insert_trail(conn, {**trail_row, "order_id": order_id})
        order.update(changes)
        return public_order(order)

    def _select_orders(self, extra: str = "", columns: Sequence[str] = _ORDER_COLUMNS) -> str:
        return f"SELECT {', '.join(columns)} FROM orders {extra}"

    def _row_dict(self, row: Sequence) -> dict:
        record = dict(zip(_ORDER_COLUMNS, row))
        for column in _TIME_COLUMNS:
            record[column] = self._from_db_time(record[column])
        if record["satisfied"] is not None:
            record["satisfied"] = bool(record["satisfied"])
        return record

    def get_order(self, order_id: str, *, now: Any = None) -> dict:
        """The public record of one order (never the caller's name or phone)."""
        order_id = _order_id(order_id)
        row = self._execute(self._conn(), self._select_orders("WHERE order_id = ?"), (order_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"work order {order_id!r} does not exist")
        return public_order(self._row_dict(row), now)

    def private_record(self, order_id: str) -> dict:
        """The full record of one order, personal data included: for the hotline's own staff only."""
        record = self.get_order(order_id)
        row = self._execute(self._conn(), "SELECT caller_name, caller_phone FROM callers WHERE order_id = ?",
                            (record["order_id"],)).fetchone()
        record.update(zip(PERSONAL_FIELDS, row if row is not None else (None, None)))
        return record

    def _filters(self, grid_code, community_code, street_code, district_code, status, overdue, now):
        clauses, params = [], []
        for column, value in (("grid_code", grid_code), ("community_code", community_code),
                              ("street_code", street_code), ("district_code", district_code)):
            if value is not None:
                if not isinstance(value, str):
                    raise InputTypeError(f"{column} is a {type(value).__name__}; expected a code string")
                clauses.append(f"{column} = ?")
                params.append(value)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            bad = [s for s in statuses if s not in STATES]
            if bad or not statuses:
                raise ParameterError(f"status={status!r}; expected one or more of {', '.join(STATES)}")
            clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
            params += statuses
        if overdue is not None:
            if not isinstance(overdue, (bool, np.bool_)):
                raise InputTypeError(f"overdue is a {type(overdue).__name__}; expected True, False or None")
            now = now_cst() if now is None else to_cst(now, "now")
            open_list = ", ".join("?" * len(OPEN_STATES))
            condition = f"(status IN ({open_list}) AND due_at < ?)"
            clauses.append(condition if overdue else f"NOT {condition}")
            params += list(OPEN_STATES) + [self._to_db(now)]
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def list_orders(self, *, grid_code: str | None = None, community_code: str | None = None,
                    street_code: str | None = None, district_code: str | None = None,
                    status: str | Sequence[str] | None = None, overdue: bool | None = None,
                    limit: int = 100, offset: int = 0, now: Any = None) -> list[dict]:
        """Public records, newest first, filtered by place, status and overdue (open and past due)."""
        for name, value, low, high in (("limit", limit, 1, 10_000), ("offset", offset, 0, MAX_OFFSET)):
            # (an offset past 2**63 - 1 cannot even reach SQLite or PostgreSQL)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
                raise ParameterError(f"{name}={value!r}; expected a whole number from {low} to {high:,}")
        where, params = self._filters(grid_code, community_code, street_code, district_code, status, overdue, now)
        rows = self._execute(
            self._conn(),
            self._select_orders(f"{where} ORDER BY received_at DESC, order_id DESC LIMIT ? OFFSET ?"),
            params + [int(limit), int(offset)],
        ).fetchall()
        return [public_order(self._row_dict(row), now) for row in rows]

    def count_orders(self, *, grid_code: str | None = None, community_code: str | None = None,
                     street_code: str | None = None, district_code: str | None = None,
                     status: str | Sequence[str] | None = None, overdue: bool | None = None,
                     now: Any = None) -> int:
        """How many orders :meth:`list_orders` would page through."""
        where, params = self._filters(grid_code, community_code, street_code, district_code, status, overdue, now)
        return int(self._execute(self._conn(), f"SELECT count(*) FROM orders{where}", params).fetchone()[0])

    def trail(self, order_id: str) -> list[dict]:
        """The audit trail of one order, oldest first (order_id, action, from_state, to_state, who, at, note)."""
        order_id = _order_id(order_id)
        conn = self._conn()
        rows = self._execute(conn, f"SELECT trail_id, {', '.join(_TRAIL_COLUMNS)} FROM trail "
                                   "WHERE order_id = ? ORDER BY trail_id", (order_id,)).fetchall()
        if not rows and self._execute(conn, "SELECT 1 FROM orders WHERE order_id = ?", (order_id,)).fetchone() is None:
            raise NotFoundError(f"work order {order_id!r} does not exist")
        out = []
        for row in rows:
            record = dict(zip(("trail_id",) + _TRAIL_COLUMNS, row))
            record["at"] = self._from_db_time(record["at"])
            out.append(record)
        return out

    def trail_frame(self) -> pd.DataFrame:
        """The whole trail as a DataFrame, in the order it was written."""
        rows = self._execute(self._conn(), f"SELECT trail_id, {', '.join(_TRAIL_COLUMNS)} FROM trail "
                                           "ORDER BY trail_id").fetchall()
        frame = pd.DataFrame(rows, columns=("trail_id",) + _TRAIL_COLUMNS)
        frame["at"] = pd.to_datetime(frame["at"], format="ISO8601")
        return frame

    def orders_frame(self, public: bool = True, *, now: Any = None,
                     columns: Sequence[str] | None = None) -> gpd.GeoDataFrame:
        """Every order as a GeoDataFrame in :attr:`crs` with a ``deadline`` column.

        Columns: the public fields (``description`` only with
        ``public=False``), or just `columns` of them (what a caller needs:
        reading 100,000 orders costs about 1.5 s with every column, a third
        of that with the handful ``grid_stats`` reads); never a caller's
        name or phone. Fits the ``workorders`` layer schema, for
        ``grid_stats`` and tiles.
        """
        if not isinstance(public, (bool, np.bool_)):
            raise InputTypeError(f"public is a {type(public).__name__}; expected True or False")
        allowed = [c for c in PUBLIC_FIELDS if public is False or c != "description"]
        if columns is None:
            wanted = allowed
        else:
            if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
                raise InputTypeError(f"columns={columns!r}; expected a list of column names")
            unknown = [c for c in columns if c not in allowed]
            if unknown:
                raise ParameterError(f"columns={list(columns)!r} names {unknown}, which orders_frame "
                                     f"(public={public}) does not give; expected some of {allowed}")
            wanted = [c for c in allowed if c in columns]
        needed = set(wanted) | {"x", "y"}
        if "deadline" in needed:
            needed |= {"status", "due_at", "warn_at", "resolved_at"}
        fetch = [c for c in _ORDER_COLUMNS if c in needed]
        rows = self._execute(self._conn(), self._select_orders("ORDER BY received_at, order_id", fetch)).fetchall()
        frame = pd.DataFrame(rows, columns=fetch)
        for column in _TIME_COLUMNS:
            if column in needed:
                frame[column] = pd.to_datetime(frame[column], format="ISO8601")
        if "satisfied" in needed:
            frame["satisfied"] = pd.array([None if v is None else bool(v) for v in frame["satisfied"]],
                                          dtype="boolean")
        if "extended_days" in needed:
            frame["extended_days"] = pd.array(frame["extended_days"], dtype="Int64")
        for column in _CODE_COLUMNS:
            if column in needed:
                frame[column] = frame[column].astype(object)
        if "deadline" in needed:
            frame["deadline"] = deadlines(frame, now)
        return gpd.GeoDataFrame(frame[wanted], geometry=gpd.points_from_xy(frame["x"], frame["y"]), crs=self.crs)

    # -- bulk
    def import_orders(self, rows: pd.DataFrame, *, who: str, progress: bool = False) -> ImportResult:
        """Create many orders at once: every good row lands, in one transaction, or none does.

        ``rows`` is the ``good`` table of
        :func:`jngis.workorders.clean_order_rows` (WGS84 ``lon``/``lat``,
        ``category``, optional ``description``, ``caller_name``,
        ``caller_phone``, ``received_at``, ``order_id``; indexed by row
        number). Rows outside every district, or whose ``order_id`` the store
        already holds, are refused and reported in ``bad`` with their row
        number. Ctrl-C rolls everything back.
        """
        started = time.perf_counter()
        if not isinstance(rows, pd.DataFrame):
            raise InputTypeError(f"import_orders: rows is a {type(rows).__name__}; expected a DataFrame")
        missing = [c for c in ("lon", "lat", "category") if c not in rows.columns]
        if missing:
            raise SchemaError(f"import_orders: rows lack the columns {missing}; expected clean_order_rows output")
        who = _optional_text(who, "who", 100)
        if who is None:
            raise ParameterError("who is missing; expected the name of the person or system importing")
        rows = rows.copy()
        for column in ("description", "caller_name", "caller_phone", "received_at", "order_id"):
            if column not in rows.columns:
                rows[column] = None
        place = self.placer().place(rows["lon"].to_numpy(float), rows["lat"].to_numpy(float))
        place.index = rows.index
        outside = place["district_code"].isna().to_numpy()
        bad = [pd.DataFrame({"row": rows.index[outside],
                             "reason": [f"location lon={lo:.6f}, lat={la:.6f} (WGS84) is outside every district"
                                        for lo, la in zip(rows["lon"][outside], rows["lat"][outside])]})]
        rows, place = rows[~outside], place[~outside]
        now = now_cst()
        received = pd.to_datetime(rows["received_at"]).fillna(pd.Timestamp(now)).dt.floor("s")
        due = self.calendar.add_working_days(pd.DatetimeIndex(received), RESOLVE_WORKING_DAYS)
        warn = self.calendar.add_working_days(due, -WARNING_WORKING_DAYS)
        frame = pd.DataFrame({
            "order_id": rows["order_id"].astype(object).where(rows["order_id"].notna(), None),
            "category": rows["category"], "description": rows["description"], "status": "received",
            "received_at": received.to_numpy(), "dispatched_at": pd.NaT, "due_at": due, "warn_at": warn,
            "resolved_at": pd.NaT, "closed_at": pd.NaT, "extended_days": None, "satisfied": None,
            **{c: place[c] for c in _CODE_COLUMNS},
            "lon": rows["lon"].to_numpy(float), "lat": rows["lat"].to_numpy(float),
            "x": place["x"].to_numpy(float), "y": place["y"].to_numpy(float),
            "updated_at": received.to_numpy(),
        }, index=rows.index)
        with self._write() as conn:
            given = frame["order_id"].dropna()
            existing = self._existing_ids(conn, given.tolist())
            taken = frame["order_id"].isin(existing).to_numpy()
            bad.append(pd.DataFrame({"row": frame.index[taken],
                                     "reason": [f"order_id {i!r} is already in the store"
                                                for i in frame["order_id"][taken]]}))
            frame, rows = frame[~taken], rows[~taken]
            self._bump_counters(conn, frame["order_id"].dropna())
            need = frame["order_id"].isna().to_numpy()
            if need.any():
                days = frame["received_at"][need].dt.date
                new_ids = pd.Series(index=frame.index[need], dtype=object)
                for day, members in days.groupby(days).groups.items():
                    new_ids[members] = self._next_ids(conn, day, len(members))
                frame.loc[need, "order_id"] = new_ids
            callers = pd.DataFrame({"order_id": frame["order_id"], "caller_name": rows["caller_name"],
                                    "caller_phone": rows["caller_phone"]})
            callers = callers[callers["caller_name"].notna() | callers["caller_phone"].notna()]
            trail = pd.DataFrame({"order_id": frame["order_id"], "action": "received", "from_state": None,
                                  "to_state": "received", "who": who, "at": frame["received_at"], "note": None})
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=len(frame), unit="order", desc="importing", leave=False)
            try:
                self._bulk_orders(conn, frame.reset_index(drop=True), callers, trail,
                                  bar.update if bar is not None else None)
            finally:
                if bar is not None:
                    bar.close()
        bad_rows = pd.concat(bad, ignore_index=True).sort_values("row", kind="stable").reset_index(drop=True)
        return ImportResult(len(frame), frame["order_id"].tolist(), bad_rows, time.perf_counter() - started)

    def _existing_ids(self, conn, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = self._execute(conn, f"SELECT order_id FROM orders WHERE order_id IN ({', '.join('?' * len(chunk))})",
                                 chunk).fetchall()
            found.update(r[0] for r in rows)
        return found

    def import_history(self, workorders: gpd.GeoDataFrame, *, who: str = "history",
                       progress: bool = False) -> int:
        """Import a historical ``workorders`` layer (states as given) with its synthetic trail.

        Orders whose id the store already holds are skipped; returns how many
        were added. Points are placed like new orders; those outside every
        district keep no codes (history is kept, not refused).
        """
        validate(workorders, "workorders")
        layer = workorders.to_crs(self.crs) if workorders.crs != self.crs else workorders
        layer = layer[~layer["order_id"].astype(str).isin(self._existing_ids(self._conn(),
                                                                              layer["order_id"].astype(str).tolist()))]
        if layer.empty:
            return 0
        wgs = layer.geometry.to_crs("EPSG:4326")
        lon, lat = wgs.x.to_numpy(), wgs.y.to_numpy()
        place = self.placer().place(lon, lat)
        frame = pd.DataFrame({"order_id": layer["order_id"].astype(str).to_numpy()})
        for column in ("category", "status"):
            frame[column] = layer[column].to_numpy()
        frame["description"] = layer["description"].to_numpy() if "description" in layer else None
        for column in _TIME_COLUMNS:
            frame[column] = pd.to_datetime(layer[column]).to_numpy() if column in layer else pd.NaT
        if "warn_at" not in layer:
            frame["warn_at"] = self.calendar.add_working_days(pd.DatetimeIndex(frame["due_at"]), -WARNING_WORKING_DAYS)
        frame["extended_days"] = None
        frame["satisfied"] = None
        if "satisfied" in layer:  # only a closed order has the citizen's answer
            closed = (frame["status"] == "closed").to_numpy()
            frame["satisfied"] = np.where(closed, layer["satisfied"].astype(object).to_numpy(), None)
        for column in _CODE_COLUMNS:
            frame[column] = place[column].to_numpy()
        frame["lon"], frame["lat"] = lon, lat
        frame["x"], frame["y"] = layer.geometry.x.to_numpy(), layer.geometry.y.to_numpy()
        trail = synthetic_trail(frame, who=who)
        last = trail.groupby("order_id", sort=False)["at"].max()
        frame["updated_at"] = frame["order_id"].map(last).to_numpy()
        frame = frame[list(_ORDER_COLUMNS)]
        with self._write() as conn:
            self._bump_counters(conn, frame["order_id"])
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=len(frame), unit="order", desc="history", leave=False)
            try:
                self._bulk_orders(conn, frame, pd.DataFrame(columns=["order_id", "caller_name", "caller_phone"]),
                                  trail, bar.update if bar is not None else None)
            finally:
                if bar is not None:
                    bar.close()
        return len(frame)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def _optional_text(value: Any, parameter: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputTypeError(f"{parameter} is a {type(value).__name__} ({value!r}); expected a text")
    value = value.strip()
    if len(value) > limit:
        raise ParameterError(f"{parameter} has {len(value)} characters; expected at most {limit}")
    return value or None


def _order_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputTypeError(f"order_id={value!r}; expected a non-empty string such as '20261009000001'")
    return value.strip()
