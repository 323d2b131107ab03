"""The store in one GeoPackage / SQLite file (WAL mode)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from jngis.errors import CRSError, InputTypeError, NotFoundError, ParameterError, SchemaError
from jngis.layers import KINDS, City
from jngis.store.base import _LAYER_KINDS, _ORDER_COLUMNS, _TIME_COLUMNS, _TRAIL_COLUMNS, DEFAULT_CRS, Store
from jngis.workorders import CALENDAR, WorkCalendar, now_cst

_GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
_GPKG_USER_VERSION = 10400
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
_SQLITE_TIME = "%Y-%m-%dT%H:%M:%S"


def _gpkg_wkb(blob: bytes | None) -> bytes | None:
    """The WKB inside a GeoPackage geometry blob (GeoPackage 1.2 §2.1.3)."""
    if blob is None:
        return None
    flags = blob[3]
    return bytes(blob[8 + _ENVELOPE_BYTES[(flags >> 1) & 7]:])


def _gpkg_points(x: np.ndarray, y: np.ndarray, srs_id: int) -> list[bytes]:
    """GeoPackage blobs of 2-D points, vectorised (little-endian header, no envelope, WKB point)."""
    record = np.dtype([("magic", "S2"), ("version", "u1"), ("flags", "u1"), ("srs", "<i4"),
                       ("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])
    out = np.zeros(len(x), dtype=record)
    out["magic"], out["flags"], out["srs"], out["order"], out["type"] = b"GP", 1, srs_id, 1, 1
    out["x"], out["y"] = x, y
    raw = out.tobytes()
    size = record.itemsize
    return [raw[i * size:(i + 1) * size] for i in range(len(x))]


class SQLiteStore(Store):
    """The store in one GeoPackage / SQLite file (WAL mode), e.g. the sample city's file.

    Parameters
    ----------
    path : path
        A city GeoPackage (opened, tables added), or a new file to create.
    calendar : WorkCalendar
        Working days for deadlines.
    import_history : bool
        On first open, import the file's ``workorders`` layer into the orders (default).
    progress : bool
        Show a progress bar for that import.
    """

    def __init__(self, path: str | os.PathLike, *, calendar: WorkCalendar = CALENDAR,
                 import_history: bool = True, progress: bool = False) -> None:
        super().__init__(calendar)
        if not isinstance(path, (str, os.PathLike)):
            raise InputTypeError(f"SQLiteStore: path is a {type(path).__name__}; expected a file path")
        self.path = Path(path)
        self.url = str(self.path)
        if self.path.suffix.lower() not in (".gpkg", ".sqlite", ".db"):
            raise ParameterError(f"SQLiteStore: path {self.url!r} must end in .gpkg (a GeoPackage)")
        if self.path.is_dir():
            raise ParameterError(f"SQLiteStore: path {self.url!r} is a folder; expected a GeoPackage file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._srs_id = None
        conn = self._conn()
        if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
            raise SchemaError(f"SQLiteStore: {self.url!r} cannot be put in WAL mode (a network file system?)")
        try:
            self._initialise(conn)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise SchemaError(f"SQLiteStore: {self.url!r} is not a GeoPackage/SQLite file ({exc})") from None
        if import_history:
            self._import_layer_history(progress)

    def _connect(self):
        conn = sqlite3.connect(self.path, timeout=120, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 120000")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _lock_order_sql(self) -> str:
        return self._select_orders("WHERE order_id = ?")  # BEGIN IMMEDIATE already holds the write lock

    def _insert_order_sql(self) -> str:
        return (f"INSERT INTO orders({', '.join(_ORDER_COLUMNS)}, geom) "
                f"VALUES ({', '.join('?' * (len(_ORDER_COLUMNS) + 1))})")

    def _order_geometry_params(self, x: float, y: float) -> tuple:
        return (_gpkg_points(np.array([x]), np.array([y]), self._srs_id)[0],)

    def _to_db(self, value):
        if isinstance(value, (dt.datetime, pd.Timestamp)):
            return None if pd.isna(value) else value.strftime(_SQLITE_TIME)
        if isinstance(value, (np.bool_, bool)):
            return int(value)
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return float(value)
        return value

    def _from_db_time(self, value):
        return None if value is None else dt.datetime.fromisoformat(value)

    @property
    def crs(self) -> pyproj.CRS:
        return self._crs

    # -- schema
    def _tables(self, conn) -> set[str]:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}

    def _srs_crs(self, conn, srs_id: int) -> pyproj.CRS:
        row = conn.execute("SELECT organization, organization_coordsys_id, definition FROM gpkg_spatial_ref_sys "
                           "WHERE srs_id = ?", (srs_id,)).fetchone()
        if row is None:
            raise CRSError(f"SQLiteStore: srs_id {srs_id} is not in gpkg_spatial_ref_sys of {self.url!r}")
        if row[0] and row[0].upper() == "EPSG":
            return pyproj.CRS.from_epsg(int(row[1]))
        return pyproj.CRS.from_wkt(row[2])

    def _ensure_srs(self, conn, crs: pyproj.CRS) -> int:
        epsg = crs.to_epsg()
        if epsg is None:
            raise CRSError(f"the store needs an EPSG CRS; got {crs.to_string()!r}, expected e.g. EPSG:4548")
        conn.execute(
            "INSERT OR IGNORE INTO gpkg_spatial_ref_sys(srs_name, srs_id, organization, organization_coordsys_id, "
            "definition) VALUES (?, ?, 'EPSG', ?, ?)",
            (crs.name, epsg, epsg, crs.to_wkt(pyproj.enums.WktVersion.WKT1_GDAL)))
        return epsg

    def _initialise(self, conn) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = self._tables(conn)
            if "gpkg_contents" not in tables:
                if tables - {"sqlite_sequence"}:
                    raise SchemaError(f"SQLiteStore: {self.url!r} is an SQLite file but not a GeoPackage")
                conn.execute(f"PRAGMA application_id = {_GPKG_APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {_GPKG_USER_VERSION}")
                _run_script(conn, """
                    CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY,
                        organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT NULL,
                        definition TEXT NOT NULL, description TEXT);
                    INSERT INTO gpkg_spatial_ref_sys VALUES
                        ('Undefined Cartesian SRS', -1, 'NONE', -1, 'undefined', NULL),
                        ('Undefined geographic SRS', 0, 'NONE', 0, 'undefined', NULL);
                    CREATE TABLE gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL,
                        identifier TEXT UNIQUE, description TEXT DEFAULT '',
                        last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
                        min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
                        CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
                    CREATE TABLE gpkg_geometry_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL,
                        geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL, z TINYINT NOT NULL,
                        m TINYINT NOT NULL, CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
                        CONSTRAINT uk_gc_table_name UNIQUE (table_name));
                """)
                tables = self._tables(conn)
            if "orders" not in tables:
                row = conn.execute("SELECT srs_id FROM gpkg_geometry_columns WHERE table_name = 'districts'").fetchone()
                crs = self._srs_crs(conn, row[0]) if row else pyproj.CRS.from_user_input(DEFAULT_CRS)
                srs_id = self._ensure_srs(conn, crs)
                columns = ", ".join(
                    f"{c} {'DATETIME' if c in _TIME_COLUMNS else 'REAL' if c in ('lon', 'lat', 'x', 'y') else 'INTEGER' if c == 'extended_days' else 'BOOLEAN' if c == 'satisfied' else 'TEXT'}"
                    + (" NOT NULL UNIQUE" if c == "order_id" else " NOT NULL" if c in ("category", "status", "received_at") else "")
                    for c in _ORDER_COLUMNS)
                conn.execute(f"CREATE TABLE orders (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, geom POINT, {columns})")
                for column in ("status", "grid_code", "community_code", "street_code", "district_code", "due_at",
                               "received_at"):
                    conn.execute(f"CREATE INDEX orders_{column} ON orders({column})")
                conn.execute("INSERT INTO gpkg_contents(table_name, data_type, identifier, description, srs_id) "
                             "VALUES ('orders', 'features', 'orders', '12345 work orders (no personal data)', ?)",
                             (srs_id,))
                conn.execute("INSERT INTO gpkg_geometry_columns VALUES ('orders', 'geom', 'POINT', ?, 0, 0)", (srs_id,))
                _run_script(conn, """
                    CREATE TABLE callers (order_id TEXT PRIMARY KEY REFERENCES orders(order_id),
                        caller_name TEXT, caller_phone TEXT);
                    CREATE TABLE trail (trail_id INTEGER PRIMARY KEY AUTOINCREMENT, order_id TEXT NOT NULL,
                        action TEXT NOT NULL, from_state TEXT, to_state TEXT NOT NULL, who TEXT NOT NULL,
                        at DATETIME NOT NULL, note TEXT);
                    CREATE INDEX trail_order_id ON trail(order_id);
                    CREATE TABLE order_counters (day TEXT PRIMARY KEY, last INTEGER NOT NULL);
                    CREATE TABLE IF NOT EXISTS jngis_store (key TEXT PRIMARY KEY, value TEXT);
                """)
            row = conn.execute("SELECT srs_id FROM gpkg_geometry_columns WHERE table_name = 'orders'").fetchone()
            self._srs_id = int(row[0])
            self._crs = self._srs_crs(conn, self._srs_id)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _import_layer_history(self, progress: bool) -> None:
        conn = self._conn()
        done = conn.execute("SELECT value FROM jngis_store WHERE key = 'history_imported'").fetchone()
        if done is not None or "workorders" not in self._gpkg_layers(conn):
            return
        # one importer at a time: the others wait on the flag
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute("SELECT value FROM jngis_store WHERE key = 'history_imported'").fetchone()
        finally:
            conn.execute("ROLLBACK")
        if done is not None:
            return
        history = self._read_city_layer("workorders")
        self.import_history(history, who="history", progress=progress)
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO jngis_store(key, value) VALUES ('history_imported', ?)",
                         (now_cst().strftime(_SQLITE_TIME),))

    def _gpkg_layers(self, conn) -> list[str]:
        return [r[0] for r in conn.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'features'")]

    def layer_names(self) -> list[str]:
        conn = self._conn()
        held = set(self._gpkg_layers(conn)) & set(_LAYER_KINDS)
        if self._has_orders():
            held.add("workorders")
        return [k for k in KINDS if k in held]

    def _read_city_layer(self, kind: str) -> gpd.GeoDataFrame:
        conn = self._conn()
        row = conn.execute("SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE table_name = ?",
                           (kind,)).fetchone()
        if row is None:
            raise NotFoundError(f"read_layer: the store {self.url!r} holds no {kind!r} layer")
        geometry_column, srs_id = row
        info = conn.execute(f'PRAGMA table_info("{kind}")').fetchall()
        columns = [(name, (ctype or "").upper()) for _, name, ctype, _, _, pk in info
                   if name != geometry_column and not pk]
        rows = conn.execute(
            f'SELECT "{geometry_column}", {", ".join(chr(34) + n + chr(34) for n, _ in columns)} FROM "{kind}"'
            f' ORDER BY rowid').fetchall()
        geoms = shapely.from_wkb([_gpkg_wkb(r[0]) for r in rows])
        frame = pd.DataFrame([r[1:] for r in rows], columns=[n for n, _ in columns])
        for name, ctype in columns:
            if ctype in ("DATETIME", "DATE"):
                stamps = pd.to_datetime(frame[name], format="ISO8601")
                frame[name] = stamps.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None) \
                    if stamps.dt.tz is not None else stamps
            elif ctype == "BOOLEAN":
                frame[name] = pd.array([None if v is None else bool(v) for v in frame[name]], dtype="boolean")
            elif ctype in ("INTEGER", "INT", "MEDIUMINT", "SMALLINT", "TINYINT") and frame[name].isna().any():
                frame[name] = pd.array(frame[name], dtype="Int64")
        return gpd.GeoDataFrame(frame, geometry=geoms, crs=self._srs_crs(conn, srs_id))

    def _write_city_layers(self, city: City) -> None:
        """Write the layers with pyogrio into a scratch GeoPackage, then copy them in one transaction."""
        import pyogrio

        kinds = [kind for kind in city.kinds() if kind != "workorders"]
        if not kinds:
            return
        scratch = Path(tempfile.mkdtemp(prefix="jngis-store-")) / "city.gpkg"
        try:
            for kind in kinds:
                pyogrio.write_dataframe(getattr(city, kind), scratch, layer=kind, driver="GPKG",
                                        append=scratch.exists(), use_arrow=True)
            conn = self._conn()
            conn.execute("ATTACH DATABASE ? AS scratch", (str(scratch),))
            try:
                with self._write() as conn:
                    self._copy_layers(conn, kinds)
            finally:
                conn.execute("DETACH DATABASE scratch")
        finally:
            for leftover in scratch.parent.glob("*"):
                leftover.unlink()
            scratch.parent.rmdir()

    def _copy_layers(self, conn, kinds: list[str]) -> None:
        main_tables = self._tables(conn)
        for table, sql in conn.execute("SELECT name, sql FROM scratch.sqlite_master WHERE type = 'table' "
                                       "AND name LIKE 'gpkg%'").fetchall():
            if table not in main_tables:
                conn.execute(sql)
        conn.execute("INSERT OR IGNORE INTO main.gpkg_spatial_ref_sys SELECT * FROM scratch.gpkg_spatial_ref_sys")
        meta = [t for t in ("gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents")
                if t in self._tables(conn)]
        for kind in kinds:
            # drop the old layer: its rtree, then the table (its triggers go with it)
            for (name,) in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table' AND "
                                        "name = ? AND sql LIKE 'CREATE VIRTUAL TABLE%'", (f"rtree_{kind}_geom",)):
                conn.execute(f'DROP TABLE main."{name}"')
            conn.execute(f'DROP TABLE IF EXISTS main."{kind}"')
            for table in meta:
                conn.execute(f"DELETE FROM main.{table} WHERE table_name = ?", (kind,))
            objects = conn.execute("SELECT type, name, tbl_name, sql FROM scratch.sqlite_master WHERE "
                                   "(tbl_name = ? OR name = ?) AND sql IS NOT NULL",
                                   (kind, f"rtree_{kind}_geom")).fetchall()
            for kind_, name, _, sql in objects:
                if kind_ == "table":
                    conn.execute(sql)
                    conn.execute(f'INSERT INTO main."{name}" SELECT * FROM scratch."{name}"')
            for kind_, _, _, sql in objects:
                if kind_ in ("index", "trigger"):
                    conn.execute(sql)
            for table in meta:
                if table in {r[0] for r in conn.execute("SELECT name FROM scratch.sqlite_master")}:
                    conn.execute(f"INSERT INTO main.{table} SELECT * FROM scratch.{table} WHERE table_name = ?",
                                 (kind,))

    def _bulk_orders(self, conn, frame, callers, trail, progress) -> None:
        chunk = 20_000
        blobs = _gpkg_points(frame["x"].to_numpy(float), frame["y"].to_numpy(float), self._srs_id)
        columns = []
        for column in _ORDER_COLUMNS:  # column-wise conversion: no Python call per value
            values = frame[column]
            if column in _TIME_COLUMNS:
                columns.append(_iso(values).tolist())
            elif column in ("lon", "lat", "x", "y"):
                columns.append(values.to_numpy(float).tolist())
            elif column in ("satisfied", "extended_days"):
                columns.append([None if v is None or pd.isna(v) else int(v) for v in values.astype(object)])
            else:
                columns.append(values.astype(object).where(values.notna(), None).tolist())
        records = list(zip(*columns, blobs))
        for start in range(0, len(records), chunk):
            conn.executemany(self._insert_order_sql(), records[start:start + chunk])
            if progress is not None:
                progress(min(chunk, len(records) - start))
        if len(callers):
            conn.executemany("INSERT INTO callers(order_id, caller_name, caller_phone) VALUES (?, ?, ?)",
                             callers[["order_id", "caller_name", "caller_phone"]].astype(object)
                             .where(callers.notna(), None).itertuples(index=False, name=None))
        trail = trail.astype(object)
        trail["at"] = _iso(pd.to_datetime(trail["at"]))
        conn.executemany("INSERT INTO trail(order_id, action, from_state, to_state, who, at, note) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         trail[list(_TRAIL_COLUMNS)].where(trail.notna(), None).itertuples(index=False, name=None))


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated statements inside the open transaction (executescript would commit it)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _iso(values) -> np.ndarray:
    """Datetimes as ISO text (SQLite's storage), None for NaT."""
    stamps = pd.to_datetime(pd.Series(values))
    text = stamps.dt.strftime(_SQLITE_TIME).to_numpy(object)
    text[stamps.isna().to_numpy()] = None
    return text
