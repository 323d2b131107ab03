"""The store in PostgreSQL + PostGIS."""

from __future__ import annotations

import contextlib
import datetime as dt
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from jngis.errors import CRSError, NotFoundError, ParameterError, SchemaError
from jngis.layers import KINDS, SCHEMAS, City
from jngis.store.base import _LAYER_KINDS, _ORDER_COLUMNS, _TIME_COLUMNS, _TRAIL_COLUMNS, DEFAULT_CRS, Store
from jngis.workorders import CALENDAR, WorkCalendar

_PG_TYPES = {"code": "text", "id": "text", "str": "text", "count": "bigint", "number": "double precision",
             "datetime": "timestamp"}
_STORE_LOCK = 4_548_012_345  # advisory lock key serialising schema creation


class PostGISStore(Store):
    """The store in PostgreSQL + PostGIS (``postgresql://user@host:port/db``).

    Layers are tables named after their kind with a ``geom`` column (SRID of
    the layer's CRS) and a GiST index; orders likewise (``orders.geom``).
    Each thread uses its own connection.
    """

    _paramstyle = "format"

    def __init__(self, dsn: str, *, calendar: WorkCalendar = CALENDAR) -> None:
        super().__init__(calendar)
        try:
            import psycopg  # noqa: F401
        except ImportError:  # pragma: no cover - the extra is installed in development
            raise ParameterError('PostGISStore needs psycopg 3: pip install "psycopg[binary]" '
                                 '(or pip install "jngis[postgis]")') from None
        if not isinstance(dsn, str) or not re.match(r"postgres(ql)?://", dsn):
            raise ParameterError(f"PostGISStore: dsn={dsn!r}; expected 'postgresql://user@host:port/database'")
        self.url = re.sub(r"//([^:@/]+):[^@/]*@", r"//\1:***@", dsn)  # never show a password
        self._dsn = dsn
        conn = self._conn()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_STORE_LOCK,))
            has_postgis = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone()
            if has_postgis is None:
                try:
                    with conn.transaction():
                        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
                except Exception as exc:
                    raise SchemaError(f"PostGISStore: {self.url} has no PostGIS and it cannot be created ({exc}); "
                                      "expected CREATE EXTENSION postgis by the database owner") from None
            conn.execute("CREATE TABLE IF NOT EXISTS jngis_store (key text PRIMARY KEY, value text)")
            row = conn.execute("SELECT value FROM jngis_store WHERE key = 'srid'").fetchone()
            if row is None:
                srid = self._layer_srid(conn, "districts") or pyproj.CRS.from_user_input(DEFAULT_CRS).to_epsg()
                conn.execute("INSERT INTO jngis_store VALUES ('srid', %s)", (str(srid),))
            else:
                srid = int(row[0])
            self._srid = int(srid)
            self._crs = pyproj.CRS.from_epsg(self._srid)
            columns = ", ".join(
                f"{c} {'timestamp' if c in _TIME_COLUMNS else 'double precision' if c in ('lon', 'lat', 'x', 'y') else 'integer' if c == 'extended_days' else 'boolean' if c == 'satisfied' else 'text'}"
                + (" NOT NULL UNIQUE" if c == "order_id" else " NOT NULL" if c in ("category", "status", "received_at") else "")
                for c in _ORDER_COLUMNS)
            conn.execute(f"CREATE TABLE IF NOT EXISTS orders (fid bigserial PRIMARY KEY, {columns}, "
                         f"geom geometry(Point, {self._srid}))")
            for column in ("status", "grid_code", "community_code", "street_code", "district_code", "due_at",
                           "received_at"):
                conn.execute(f"CREATE INDEX IF NOT EXISTS orders_{column} ON orders({column})")
            conn.execute("CREATE INDEX IF NOT EXISTS orders_geom ON orders USING gist(geom)")
            conn.execute("CREATE TABLE IF NOT EXISTS callers (order_id text PRIMARY KEY REFERENCES orders(order_id), "
                         "caller_name text, caller_phone text)")
            conn.execute("CREATE TABLE IF NOT EXISTS trail (trail_id bigserial PRIMARY KEY, order_id text NOT NULL, "
                         "action text NOT NULL, from_state text, to_state text NOT NULL, who text NOT NULL, "
                         "at timestamp NOT NULL, note text)")
            conn.execute("CREATE INDEX IF NOT EXISTS trail_order_id ON trail(order_id)")
            conn.execute("CREATE TABLE IF NOT EXISTS order_counters (day text PRIMARY KEY, last bigint NOT NULL)")

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

    def _lock_order_sql(self) -> str:
        return self._select_orders("WHERE order_id = ? FOR UPDATE")

    def _insert_order_sql(self) -> str:
        return (f"INSERT INTO orders({', '.join(_ORDER_COLUMNS)}, geom) VALUES "
                f"({', '.join('?' * len(_ORDER_COLUMNS))}, ST_SetSRID(ST_MakePoint(?, ?), {self._srid}))")

    def _order_geometry_params(self, x: float, y: float) -> tuple:
        return (x, y)

    def _to_db(self, value):
        if isinstance(value, pd.Timestamp):
            return None if pd.isna(value) else value.to_pydatetime()
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return float(value)
        if isinstance(value, np.bool_):
            return bool(value)
        return value

    @property
    def crs(self) -> pyproj.CRS:
        return self._crs

    def _layer_srid(self, conn, kind: str) -> int | None:
        row = conn.execute("SELECT srid FROM geometry_columns WHERE f_table_schema = current_schema() "
                           "AND f_table_name = %s", (kind,)).fetchone()
        return None if row is None else int(row[0])

    def layer_names(self) -> list[str]:
        conn = self._conn()
        held = {r[0] for r in conn.execute("SELECT f_table_name FROM geometry_columns "
                                           "WHERE f_table_schema = current_schema()")}
        held &= set(_LAYER_KINDS)
        if self._has_orders():
            held.add("workorders")
        return [k for k in KINDS if k in held]

    def _read_city_layer(self, kind: str) -> gpd.GeoDataFrame:
        conn = self._conn()
        srid = self._layer_srid(conn, kind)
        if srid is None:
            raise NotFoundError(f"read_layer: the store {self.url} holds no {kind!r} layer")
        names = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = %s AND column_name NOT IN ('geom', 'fid') ORDER BY ordinal_position", (kind,))]
        cursor = conn.execute(f'SELECT ST_AsBinary(geom), {", ".join(chr(34) + n + chr(34) for n in names)} '
                              f'FROM "{kind}" ORDER BY fid')
        rows = cursor.fetchall()
        frame = pd.DataFrame([r[1:] for r in rows], columns=names)
        for name in names:
            if frame[name].map(lambda v: isinstance(v, dt.datetime)).any():
                frame[name] = pd.to_datetime(frame[name])
            elif frame[name].map(lambda v: isinstance(v, bool)).any():
                frame[name] = pd.array(frame[name], dtype="boolean")
            elif frame[name].map(lambda v: isinstance(v, int) and not isinstance(v, bool)).any() \
                    and frame[name].isna().any():
                frame[name] = pd.array(frame[name], dtype="Int64")
        geoms = shapely.from_wkb([bytes(r[0]) for r in rows])
        return gpd.GeoDataFrame(frame, geometry=geoms, crs=pyproj.CRS.from_epsg(srid))

    def _pg_type(self, series: pd.Series, kind: str) -> str:
        schema = {c.name: c for c in SCHEMAS[kind].columns}
        if series.name in schema and schema[series.name].dtype in ("code", "id", "str"):
            return "text"
        if pd.api.types.is_bool_dtype(series.dtype):
            return "boolean"
        if pd.api.types.is_integer_dtype(series.dtype):
            return "bigint"
        if pd.api.types.is_float_dtype(series.dtype):
            return "double precision"
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            return "timestamp"
        return "text"

    def _write_city_layers(self, city: City) -> None:
        conn = self._conn()
        with conn.transaction():
            for kind in [k for k in city.kinds() if k != "workorders"]:
                layer = getattr(city, kind)
                srid = layer.crs.to_epsg()
                if srid is None:
                    raise CRSError(f"write_city: {kind} is in {layer.crs.to_string()!r}; expected an EPSG CRS")
                attributes = [c for c in layer.columns if c != layer.geometry.name]
                types = {c: self._pg_type(layer[c], kind) for c in attributes}
                conn.execute(f'DROP TABLE IF EXISTS "{kind}"')
                columns = ", ".join(f'"{c}" {types[c]}' for c in attributes)
                conn.execute(f'CREATE TABLE "{kind}" (fid bigserial PRIMARY KEY, {columns}'
                             f'{", " if columns else ""}geom geometry(Geometry, {srid}))')
                wkb = shapely.to_wkb(layer.geometry.values, hex=True, include_srid=False)
                values = layer[attributes].astype(object).where(layer[attributes].notna(), None)
                with conn.cursor().copy(f'COPY "{kind}" ({", ".join(chr(34) + c + chr(34) for c in attributes)}'
                                        f'{", " if attributes else ""}geom) FROM STDIN') as copy:
                    for row, geom in zip(values.itertuples(index=False, name=None), wkb):
                        copy.write_row([_pg_value(v) for v in row] + [f"SRID={srid};{geom}"])
                conn.execute(f'CREATE INDEX "{kind}_geom" ON "{kind}" USING gist(geom)')
                key = SCHEMAS[kind].key
                conn.execute(f'CREATE INDEX "{kind}_{key}" ON "{kind}" ("{key}")')
            if not self._has_orders() and city.districts is not None:
                srid = city.districts.crs.to_epsg()
                if srid != self._srid:
                    conn.execute(f"ALTER TABLE orders ALTER COLUMN geom TYPE geometry(Point, {srid}) "
                                 f"USING ST_SetSRID(geom, {srid})")
                    conn.execute("UPDATE jngis_store SET value = %s WHERE key = 'srid'", (str(srid),))
                    self._srid, self._crs = srid, pyproj.CRS.from_epsg(srid)
            conn.execute("ANALYZE")

    def _bulk_orders(self, conn, frame, callers, trail, progress) -> None:
        points = shapely.points(frame["x"].to_numpy(float), frame["y"].to_numpy(float))
        wkb = shapely.to_wkb(points, hex=True)
        table = frame[list(_ORDER_COLUMNS)].astype(object)
        table = table.where(table.notna(), None)
        step = 20_000
        with conn.cursor().copy(f"COPY orders ({', '.join(_ORDER_COLUMNS)}, geom) FROM STDIN") as copy:
            for n, (row, geom) in enumerate(zip(table.itertuples(index=False, name=None), wkb), 1):
                copy.write_row([_pg_value(v) for v in row] + [f"SRID={self._srid};{geom}"])
                if progress is not None and n % step == 0:
                    progress(step)
        if progress is not None and len(frame) % step:
            progress(len(frame) % step)
        if len(callers):
            with conn.cursor().copy("COPY callers (order_id, caller_name, caller_phone) FROM STDIN") as copy:
                for row in callers[["order_id", "caller_name", "caller_phone"]].astype(object) \
                        .where(callers.notna(), None).itertuples(index=False, name=None):
                    copy.write_row(row)
        trail = trail[list(_TRAIL_COLUMNS)].astype(object)
        with conn.cursor().copy(f"COPY trail ({', '.join(_TRAIL_COLUMNS)}) FROM STDIN") as copy:
            for row in trail.where(trail.notna(), None).itertuples(index=False, name=None):
                copy.write_row([_pg_value(v) for v in row])


def _pg_value(value):
    """A Python value COPY can write: Timestamps as ISO text, numpy scalars as Python ones."""
    if value is None:
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return None if pd.isna(value) else value.isoformat(sep=" ")
    if isinstance(value, np.generic):
        return value.item()
    return value
