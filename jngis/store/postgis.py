"""The store in PostgreSQL + PostGIS (``postgresql://user@host:port/db``).

What differs from SQLite: the connection (psycopg 3, one per thread,
autocommit outside transactions), the locking (``SELECT ... FOR UPDATE`` on the
order row; an advisory lock while the schema is created), times as
``timestamp``, points as EWKB, and bulk rows written with ``COPY``. Layers are
tables named after their kind with a ``geom`` column (the layer's SRID) and a
GiST index; orders likewise (``orders.geom``).

A store created with ``orders_partitions="month"`` holds its orders partitioned
by the month of ``received_at`` (``orders_mYYYYMM``, created by the store as the
first order of a month is written); the ids stay unique through ``order_ids``.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from jngis.errors import CRSError, NotFoundError, ParameterError, SchemaError
from jngis.layers import SCHEMAS, City
from jngis.store.audit import access_log_sql
from jngis.store.base import Store, no_store
from jngis.store.changes import CHANNEL, notification
from jngis.store.frames import column_kind, python_value
from jngis.store.schema import ADDED_ORDER_COLUMNS, DEFAULT_CRS, POSTGIS_TYPES, store_tables_sql
from jngis.store.users import users_sql
from jngis.workorders import CALENDAR, WorkCalendar

__all__ = ["PostGISStore", "POSTGRES_URL", "ORDER_PARTITIONS"]

#: What a PostgreSQL URL starts with.
POSTGRES_URL = re.compile(r"postgres(ql)?://")
_DEFAULT_SRID = int(DEFAULT_CRS.removeprefix("EPSG:"))
#: Orders written by one bulk import from which the store analyses the order tables (:meth:`PostGISStore._after_bulk`).
ANALYZE_ROWS = 1_000
_STORE_LOCK = 4_548_012_345  # advisory lock key serialising schema creation
# the advisory lock key of the one due-version scheduler, per schema (stores in one database are apart)
_SCHEDULER_LOCK = "hashtextextended('jngis.scheduler.' || current_schema(), 0)"
_HAS_STORE = ("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
              "AND table_name = 'jngis_store'")
#: How a new store may partition its orders (None: one table).
ORDER_PARTITIONS = (None, "month")
# the ids of the orders a statement inserted go to order_ids, whose primary key refuses a repeated id
# (a partitioned table's own unique indexes must hold the partition key)
_ORDER_IDS_TRIGGER = (
    "CREATE OR REPLACE FUNCTION jngis_order_ids() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO order_ids(order_id) SELECT order_id FROM added; RETURN NULL; END $$",
    "CREATE OR REPLACE TRIGGER orders_ids AFTER INSERT ON orders REFERENCING NEW TABLE AS added "
    "FOR EACH STATEMENT EXECUTE FUNCTION jngis_order_ids()")
_PARTITIONS = ("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
               "WHERE i.inhparent = 'orders'::regclass")


class PostGISStore(Store):
    """The store in PostgreSQL + PostGIS (``postgresql://user@host:port/db``).

    Layers are tables named after their kind with a ``geom`` column (SRID of
    the layer's CRS) and a GiST index; orders likewise (``orders.geom``).
    Each thread uses its own connection. With ``create=False`` a database
    (schema) that holds no store raises :class:`~jngis.errors.NotFoundError`
    and nothing is created. ``orders_partitions="month"`` creates the orders
    table of a new store partitioned by month (an existing store keeps its
    layout; asking a store with one orders table for partitions is refused).
    """

    _paramstyle = "format"
    _lock_row = " FOR UPDATE"
    _share_row = " FOR SHARE"

    def __init__(self, dsn: str, *, calendar: WorkCalendar = CALENDAR, create: bool = True,
                 orders_partitions: str | None = None) -> None:
        super().__init__(calendar)
        if orders_partitions not in ORDER_PARTITIONS:
            raise ParameterError(f"PostGISStore: orders_partitions={orders_partitions!r}; expected one of "
                                 f"{ORDER_PARTITIONS}")
        try:
            import psycopg  # noqa: F401
        except ImportError:  # pragma: no cover - the extra is installed in development
            raise ParameterError('PostGISStore needs psycopg 3: pip install "psycopg[binary]" '
                                 '(or pip install "jngis[postgis]")') from None
        if not isinstance(dsn, str) or not POSTGRES_URL.match(dsn):
            raise ParameterError(f"PostGISStore: dsn={dsn!r}; expected 'postgresql://user@host:port/database'")
        self.url = re.sub(r"//([^:@/]+):[^@/]*@", r"//\1:***@", dsn)  # never show a password
        self._dsn = dsn
        conn = self._conn()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_STORE_LOCK,))
            if not create and conn.execute(_HAS_STORE).fetchone() is None:
                raise no_store(self.url, "the database (its current schema) holds no jngis tables",
                               "a database a city was written to (store.write_city(city))")
            self._initialise(conn, orders_partitions)

    def _initialise(self, conn, orders_partitions: str | None = None) -> None:
        """PostGIS, the store's SRID (the districts' or the default) and its tables (in the open transaction)."""
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone() is None:
            try:
                with conn.transaction():
                    conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            except Exception as exc:
                raise SchemaError(f"PostGISStore: {self.url} has no PostGIS and it cannot be created ({exc}); "
                                  "expected CREATE EXTENSION postgis by the database owner") from None
        conn.execute("CREATE TABLE IF NOT EXISTS jngis_store (key text PRIMARY KEY, value text)")
        row = conn.execute("SELECT value FROM jngis_store WHERE key = 'srid'").fetchone()
        if row is None:
            srid = self._layer_srid(conn, "districts") or _DEFAULT_SRID
            conn.execute("INSERT INTO jngis_store VALUES ('srid', %s)", (str(srid),))
        else:
            srid = int(row[0])
        self._srid = srid
        self._crs = pyproj.CRS.from_epsg(self._srid)
        # the store's own schema (the first of the search path), not an "orders" further along it, such
        # as another store's in public
        orders = conn.execute("SELECT format('%I.orders', current_schema())").fetchone()[0]
        for column in ADDED_ORDER_COLUMNS:  # a store made before them gets them now
            conn.execute(f"ALTER TABLE IF EXISTS {orders} ADD COLUMN IF NOT EXISTS {column} text")
        held = conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (orders,)).fetchone()
        if held is not None and held[0] != "p" and orders_partitions is not None:
            raise ParameterError(f"PostGISStore: orders_partitions={orders_partitions!r}, but the store at "
                                 f"{self.url} holds its orders in one table; expected a new store (the layout "
                                 "is chosen when the store is created)")
        self._partitioned = held[0] == "p" if held is not None else orders_partitions == "month"
        for statement in (store_tables_sql(POSTGIS_TYPES, point=f"geometry(Point, {self._srid})",
                                           partitioned=self._partitioned)
                          + users_sql(POSTGIS_TYPES) + access_log_sql(POSTGIS_TYPES, "postgis")):
            conn.execute(statement)
        conn.execute("CREATE INDEX IF NOT EXISTS orders_geom ON orders USING gist(geom)")
        if self._partitioned:
            for statement in _ORDER_IDS_TRIGGER:
                conn.execute(statement)

    # -- orders partitioned by month
    @property
    def orders_partitions(self) -> str | None:
        """``"month"`` when the orders are partitioned by the month of ``received_at``, else None."""
        return "month" if self._partitioned else None

    def order_partitions(self) -> list[str]:
        """The names of the orders' monthly partitions (``orders_mYYYYMM``), oldest first; [] unpartitioned."""
        if not self._partitioned:
            return []
        return sorted(r[0] for r in self._conn().execute(_PARTITIONS))

    def _ensure_months(self, conn, received_at: Any) -> None:
        """Attach the monthly partitions that orders received at ``received_at`` need (in the open write).

        ``ATTACH PARTITION`` takes only a SHARE UPDATE EXCLUSIVE lock on ``orders``, so
        readers and writers of other months go on; an advisory lock per month lets one
        writer create it while the others wait for it and then find it.
        """
        if not self._partitioned:
            return
        months = pd.DatetimeIndex(pd.to_datetime(pd.Series(received_at)).dropna()).to_period("M").unique()
        held = {r[0] for r in conn.execute(_PARTITIONS)}
        for month in sorted(months):
            name = f"orders_m{month.year:04d}{month.month:02d}"
            if name in held:
                continue
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || %s, 0))", (name,))
            if conn.execute("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE c.relname = %s AND n.nspname = current_schema()", (name,)).fetchone():
                continue
            start, end = month.start_time, (month + 1).start_time
            conn.execute(f"CREATE TABLE {name} (LIKE orders INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
            conn.execute(f"ALTER TABLE orders ATTACH PARTITION {name} FOR VALUES FROM ('{start:%Y-%m-%d}') "
                         f"TO ('{end:%Y-%m-%d}')")

    def _insert_order(self, conn, record: dict, caller: dict, first_row: dict) -> None:
        self._ensure_months(conn, [record["received_at"]])
        super()._insert_order(conn, record, caller, first_row)

    def _bulk_orders(self, conn, frame: pd.DataFrame, callers: pd.DataFrame, trail: pd.DataFrame,
                     progress: Callable[[int], None] | None) -> None:
        self._ensure_months(conn, frame["received_at"])
        super()._bulk_orders(conn, frame, callers, trail, progress)

    def _after_bulk(self, rows: int) -> None:
        """Statistics for the tables a bulk write filled (from :data:`ANALYZE_ROWS` orders).

        Without them the planner guesses: right after the sample city's history was imported, the change
        feed's ``trail_id > ?`` was a sequential scan of 800,000 trail rows (120-200 ms) instead of a
        primary-key range (0.5 ms); autovacuum would analyse the tables only later.
        """
        if rows >= ANALYZE_ROWS:
            self._conn().execute("ANALYZE orders, trail, order_loop")

    # -- what differs from SQLite
    def _connect(self):
        import psycopg

        try:
            return psycopg.connect(self._dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            raise NotFoundError(f"PostGISStore: cannot connect to {self.url} ({str(exc).strip()})") from None

    @contextlib.contextmanager
    def _write(self):
        conn = self._conn()
        with conn.transaction():
            yield conn

    @contextlib.contextmanager
    def _staged_layers(self, layers: dict[str, gpd.GeoDataFrame]) -> Iterator[Callable[[Any], None]]:
        """Yields ``replace(conn)``, which writes the layers' tables inside the open write."""
        def replace(conn) -> None:
            for kind, layer in layers.items():
                self._write_layer(conn, kind, layer)

        yield replace

    @contextlib.contextmanager
    def _one_scheduler(self) -> Iterator[bool]:
        """A session advisory lock on this thread's connection: one due-version scheduler at a time."""
        conn = self._conn()
        mine = bool(conn.execute(f"SELECT pg_try_advisory_lock({_SCHEDULER_LOCK})").fetchone()[0])
        try:
            yield mine
        finally:
            if mine:
                conn.execute(f"SELECT pg_advisory_unlock({_SCHEDULER_LOCK})")

    def _history_view(self, conn, kind: str, columns: list[tuple[str, str]], crs: pyproj.CRS,
                      version: int) -> None:
        """The view ``<kind>_versions`` over ``<kind>_history``: a typed geometry column with the layer's SRID
        (so ``geometry_columns`` lists it) and the attributes as typed columns."""
        srid = crs.to_epsg()
        casts = {"integer": "::numeric::bigint", "real": "::double precision", "boolean": "::boolean",
                 "time": "::timestamp", "text": ""}
        attributes = "".join(f"(attributes::jsonb ->> '{c}'){casts[k]} AS \"{c}\", " for c, k in columns)
        name = f"{kind}_versions"
        conn.execute(f'DROP VIEW IF EXISTS "{name}"')
        conn.execute(f'CREATE VIEW "{name}" AS SELECT hid AS fid, version_from, version_to, valid_from, valid_to, '
                     f"{attributes}ST_SetSRID(ST_GeomFromWKB(geom), {srid})::geometry(Geometry, {srid}) AS geom "
                     f"FROM {kind}_history")

    # -- the change channel
    def _notify(self, conn, kind: str, version: int) -> None:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, notification(kind, version)))

    def _listen_loop(self, callback: Callable[[str, int], None], stop: threading.Event, interval: float) -> None:
        """LISTEN on a connection of its own (reconnecting after an error) until ``stop`` is set."""
        import psycopg

        while not stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not stop.is_set():
                        for note in conn.notifies(timeout=interval):
                            with contextlib.suppress(Exception):
                                payload = json.loads(note.payload)
                                callback(str(payload["kind"]), int(payload["version"]))
            except psycopg.Error:
                stop.wait(interval)

    def _point_values(self, x: np.ndarray, y: np.ndarray) -> list[str]:
        # EWKB text: COPY reads it, and PostGIS casts it to geometry as a bound parameter
        wkb = shapely.to_wkb(shapely.points(np.asarray(x, float), np.asarray(y, float)), hex=True)
        return [f"SRID={self._srid};{geom}" for geom in wkb]

    def _insert_many(self, conn, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _held_layers(self, conn) -> set[str]:
        return {r[0] for r in conn.execute("SELECT f_table_name FROM geometry_columns "
                                           "WHERE f_table_schema = current_schema()")}

    def _layer_srid(self, conn, kind: str) -> int | None:
        row = conn.execute("SELECT srid FROM geometry_columns WHERE f_table_schema = current_schema() "
                           "AND f_table_name = %s", (kind,)).fetchone()
        return None if row is None else int(row[0])

    # -- layers
    def _read_city_layer(self, kind: str) -> gpd.GeoDataFrame:
        conn = self._conn()
        srid = self._layer_srid(conn, kind)
        if srid is None:
            raise NotFoundError(f"read_layer: the store {self.url} holds no {kind!r} layer")
        types = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = %s AND column_name NOT IN ('geom', 'fid') ORDER BY ordinal_position", (kind,)).fetchall())
        names = list(types)
        cursor = conn.execute(f'SELECT ST_AsBinary(geom), {", ".join(chr(34) + n + chr(34) for n in names)} '
                              f'FROM "{kind}" ORDER BY fid')
        rows = cursor.fetchall()
        frame = pd.DataFrame([r[1:] for r in rows], columns=names)
        # the column's SQL type says what it holds (no scan of its values)
        for name, kind_ in types.items():
            if kind_.startswith("timestamp"):
                frame[name] = pd.to_datetime(frame[name])
            elif kind_ == "boolean":
                frame[name] = pd.array(frame[name], dtype="boolean")
            elif kind_ in ("bigint", "integer", "smallint") and frame[name].isna().any():
                frame[name] = pd.array(frame[name], dtype="Int64")
        geoms = shapely.from_wkb([bytes(r[0]) for r in rows])
        return gpd.GeoDataFrame(frame, geometry=geoms, crs=pyproj.CRS.from_epsg(srid))

    def _write_city_layers(self, city: City, kinds: list[str], orders_crs: pyproj.CRS | None) -> None:
        conn = self._conn()
        with conn.transaction():
            for kind in kinds:
                self._write_layer(conn, kind, getattr(city, kind))
            srid = None if orders_crs is None else orders_crs.to_epsg()
            if srid is not None:
                conn.execute(f"ALTER TABLE orders ALTER COLUMN geom TYPE geometry(Point, {srid}) "
                             f"USING ST_SetSRID(geom, {srid})")
                conn.execute("UPDATE jngis_store SET value = %s WHERE key = 'srid'", (str(srid),))
            self.announce("layers")
        conn.execute("ANALYZE")
        if srid is not None:
            self._srid, self._crs = srid, pyproj.CRS.from_epsg(srid)

    def _write_layer(self, conn, kind: str, layer: gpd.GeoDataFrame) -> None:
        """Replace the table of one layer (its rows by COPY, its GiST and key indexes)."""
        srid = layer.crs.to_epsg()
        if srid is None:
            raise CRSError(f"write_city: {kind} is in {layer.crs.to_string()!r}; expected an EPSG CRS")
        attributes = [c for c in layer.columns if c != layer.geometry.name]
        quoted = [f'"{c}"' for c in attributes]
        conn.execute(f'DROP TABLE IF EXISTS "{kind}"')
        columns = "".join(f"{name} {_pg_type(layer[c], kind)}, " for name, c in zip(quoted, attributes))
        conn.execute(f'CREATE TABLE "{kind}" (fid bigserial PRIMARY KEY, {columns}geom geometry(Geometry, {srid}))')
        wkb = shapely.to_wkb(layer.geometry.values, hex=True, include_srid=False)
        values = [_copy_values(layer[c]) for c in attributes]
        geoms = [f"SRID={srid};{geom}" for geom in wkb]
        with conn.cursor().copy(f'COPY "{kind}" ({"".join(q + ", " for q in quoted)}geom) FROM STDIN') as copy:
            for row in zip(*values, geoms):
                copy.write_row(row)
        conn.execute(f'CREATE INDEX "{kind}_geom" ON "{kind}" USING gist(geom)')
        key = SCHEMAS[kind].key
        conn.execute(f'CREATE INDEX "{kind}_{key}" ON "{kind}" ("{key}")')


#: The PostgreSQL column type of each kind of attribute (:func:`jngis.store.frames.column_kind`).
_PG_TYPES = {"boolean": "boolean", "integer": "bigint", "real": "double precision", "time": "timestamp",
             "text": "text"}


def _pg_type(series: pd.Series, kind: str) -> str:
    """The column type of a layer attribute: codes and names stay text, numbers by their dtype."""
    schema = {c.name: c for c in SCHEMAS[kind].columns}
    if series.name in schema and schema[series.name].dtype in ("code", "id", "str"):
        return "text"
    return _PG_TYPES[column_kind(series)]


def _copy_values(series: pd.Series) -> list:
    """A column as the Python values COPY writes (times as ISO text, missing as None), converted at once."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return [None if pd.isna(v) else v.isoformat(sep=" ") for v in series]
    values = series.astype(object).where(series.notna(), None).tolist()
    # numeric and boolean columns give Python scalars; an object column may hold numpy ones
    return [python_value(v) for v in values] if series.dtype == object else values
