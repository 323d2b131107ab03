"""The store in one GeoPackage / SQLite file (WAL mode), e.g. the sample city's file.

What differs from PostGIS: the connection (Python's ``sqlite3``, WAL), the
locking (``BEGIN IMMEDIATE`` serialises writers, readers go on), times stored as
ISO text, points as GeoPackage geometry blobs, and the layers read and copied
with plain SQL.

The file is touched only through Python's ``sqlite3``: GDAL carries its own
SQLite library, and two SQLite libraries on one file in one process defeat its
locks (SQLite's "multiple copies" warning). Layers are written with pyogrio
into a scratch GeoPackage and copied in with SQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import struct
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from jngis.codes import to_cst_naive
from jngis.errors import CRSError, InputTypeError, NotFoundError, ParameterError, SchemaError
from jngis.layers import City
from jngis.store.audit import access_log_sql
from jngis.store.base import Store, no_store
from jngis.store.frames import SQL_TIME
from jngis.store.schema import (
    ADDED_ORDER_COLUMNS,
    DEFAULT_CRS,
    SQLITE_TYPES,
    changes_tables_sql,
    department_tables_sql,
    store_tables_sql,
    versions_tables_sql,
)
from jngis.store.users import users_sql
from jngis.workorders import CALENDAR, WorkCalendar, now_cst

__all__ = ["SQLiteStore"]

_GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
_GPKG_USER_VERSION = 10400
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
_GPKG_TABLES = """
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
        CONSTRAINT uk_gc_table_name UNIQUE (table_name))
"""
_INTEGER_TYPES = ("INTEGER", "INT", "MEDIUMINT", "SMALLINT", "TINYINT")


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


def _run_script(conn: sqlite3.Connection, statements: str | Sequence[str]) -> None:
    """Run statements inside the open transaction (executescript would commit it)."""
    for statement in statements.split(";") if isinstance(statements, str) else statements:
        if statement.strip():
            conn.execute(statement)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


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
    create : bool
        Create the file if it does not exist (default); with False a missing
        file raises :class:`~jngis.errors.NotFoundError` and nothing is created.
    """

    def __init__(self, path: str | os.PathLike, *, calendar: WorkCalendar = CALENDAR,
                 import_history: bool = True, progress: bool = False, create: bool = True) -> None:
        super().__init__(calendar)
        if not isinstance(path, (str, os.PathLike)):
            raise InputTypeError(f"SQLiteStore: path is a {type(path).__name__}; expected a file path")
        self.path = Path(path)
        self.url = str(self.path)
        if self.path.suffix.lower() not in (".gpkg", ".sqlite", ".db"):
            raise ParameterError(f"SQLiteStore: path {self.url!r} must end in .gpkg (a GeoPackage)")
        if self.path.is_dir():
            raise ParameterError(f"SQLiteStore: path {self.url!r} is a folder; expected a GeoPackage file")
        if not create and not (self.path.is_file() and self.path.stat().st_size > 0):
            raise no_store(self.url, "the file does not exist",
                           f"a city GeoPackage (make one with `jngis sample --out {self.url}`)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._conn()
        if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
            raise SchemaError(f"SQLiteStore: {self.url!r} cannot be put in WAL mode (a network file system?)")
        try:
            with _transaction(conn):
                self._initialise(conn)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise SchemaError(f"SQLiteStore: {self.url!r} is not a GeoPackage/SQLite file ({exc})") from None
        if import_history:
            self._import_layer_history(progress)

    # -- what differs from PostGIS
    def _connect(self):
        conn = sqlite3.connect(self.path, timeout=120, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 120000")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock at once: a transition's read of the
        # order row is already inside it (no row lock needed)
        return _transaction(self._conn())

    def _db_time(self, value: dt.datetime) -> str:
        return value.strftime(SQL_TIME)

    def _from_db_time(self, value: str | None) -> dt.datetime | None:
        return None if value is None else dt.datetime.fromisoformat(value)

    def _point_values(self, x: np.ndarray, y: np.ndarray) -> list[bytes]:
        return _gpkg_points(x, y, self._srs_id)

    def _insert_many(self, conn, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        conn.executemany(f"INSERT INTO {table}({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                         rows)

    def _held_layers(self, conn) -> set[str]:
        return set(self._gpkg_layers(conn))

    # -- schema
    def _tables(self, conn) -> set[str]:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}

    def _gpkg_layers(self, conn) -> list[str]:
        return [r[0] for r in conn.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'features'")]

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
        """Make the file a GeoPackage if it is a new one, and add the store's tables (in the open transaction)."""
        tables = self._tables(conn)
        if "gpkg_contents" not in tables:
            if tables - {"sqlite_sequence"}:
                raise SchemaError(f"SQLiteStore: {self.url!r} is an SQLite file but not a GeoPackage")
            conn.execute(f"PRAGMA application_id = {_GPKG_APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {_GPKG_USER_VERSION}")
            _run_script(conn, _GPKG_TABLES)
        if "orders" not in tables:
            row = conn.execute("SELECT srs_id FROM gpkg_geometry_columns WHERE table_name = 'districts'").fetchone()
            crs = self._srs_crs(conn, row[0]) if row else pyproj.CRS.from_user_input(DEFAULT_CRS)
            srs_id = self._ensure_srs(conn, crs)
            _run_script(conn, store_tables_sql(SQLITE_TYPES, point="POINT"))
            conn.execute("INSERT INTO gpkg_contents(table_name, data_type, identifier, description, srs_id) "
                         "VALUES ('orders', 'features', 'orders', '12345 work orders (no personal data)', ?)",
                         (srs_id,))
            conn.execute("INSERT INTO gpkg_geometry_columns VALUES ('orders', 'geom', 'POINT', ?, 0, 0)", (srs_id,))
        # (a store made before the change channel, versions, departments, users or the access log gets
        # their tables now)
        _run_script(conn, changes_tables_sql(SQLITE_TYPES) + versions_tables_sql(SQLITE_TYPES)
                    + department_tables_sql(SQLITE_TYPES) + users_sql(SQLITE_TYPES)
                    + access_log_sql(SQLITE_TYPES, "sqlite"))
        held = {r[1] for r in conn.execute("PRAGMA table_info(orders)")}
        for column in ADDED_ORDER_COLUMNS:
            if column not in held:
                conn.execute(f"ALTER TABLE orders ADD COLUMN {column} TEXT")
                conn.execute(f"CREATE INDEX IF NOT EXISTS orders_{column} ON orders({column})")
        row = conn.execute("SELECT srs_id FROM gpkg_geometry_columns WHERE table_name = 'orders'").fetchone()
        self._srs_id = int(row[0])
        self._crs = self._srs_crs(conn, self._srs_id)

    def _import_layer_history(self, progress: bool) -> None:
        """Import the file's ``workorders`` layer once (the first opener does; the others wait on the flag)."""
        conn = self._conn()
        flag = "SELECT value FROM jngis_store WHERE key = 'history_imported'"
        if conn.execute(flag).fetchone() is not None or "workorders" not in self._gpkg_layers(conn):
            return
        conn.execute("BEGIN IMMEDIATE")  # waits for an importer in another process
        try:
            done = conn.execute(flag).fetchone()
        finally:
            conn.execute("ROLLBACK")
        if done is not None:
            return
        self.import_history(self._read_city_layer("workorders"), who="history", progress=progress)
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO jngis_store(key, value) VALUES ('history_imported', ?)",
                         (now_cst().strftime(SQL_TIME),))

    # -- layers
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
                frame[name] = to_cst_naive(pd.to_datetime(frame[name], format="ISO8601"))
            elif ctype == "BOOLEAN":
                frame[name] = pd.array([None if v is None else bool(v) for v in frame[name]], dtype="boolean")
            elif ctype in _INTEGER_TYPES and frame[name].isna().any():
                frame[name] = pd.array(frame[name], dtype="Int64")
        return gpd.GeoDataFrame(frame, geometry=geoms, crs=self._srs_crs(conn, srs_id))

    def _write_city_layers(self, city: City, kinds: list[str], orders_crs: pyproj.CRS | None) -> None:
        """Write the layers with pyogrio into a scratch GeoPackage, then copy them in one transaction."""
        if not kinds:
            return
        with self._staged_layers({kind: getattr(city, kind) for kind in kinds}) as replace:
            with self._write() as conn:
                replace(conn)
                srs_id = None if orders_crs is None else self._move_orders_crs(conn, orders_crs)
                self.announce("layers")
        if srs_id is not None:
            self._srs_id, self._crs = srs_id, self._srs_crs(conn, srs_id)

    @contextlib.contextmanager
    def _staged_layers(self, layers: dict[str, gpd.GeoDataFrame]) -> Iterator[Callable[[sqlite3.Connection], None]]:
        """Layers written into a scratch GeoPackage and attached (outside any transaction: SQLite
        cannot attach inside one); yields ``replace(conn)``, which copies them in inside the write."""
        import pyogrio

        with tempfile.TemporaryDirectory(prefix="jngis-store-") as folder:
            scratch = Path(folder) / "city.gpkg"
            for kind, layer in layers.items():
                pyogrio.write_dataframe(layer, scratch, layer=kind, driver="GPKG", append=scratch.exists(),
                                        use_arrow=True)
            conn = self._conn()
            conn.execute("ATTACH DATABASE ? AS scratch", (str(scratch),))
            try:
                yield lambda conn: self._copy_layers(conn, list(layers))
            finally:
                conn.execute("DETACH DATABASE scratch")

    def _history_view(self, conn, kind: str, columns: list[tuple[str, str]], crs: pyproj.CRS,
                      version: int) -> None:
        """The feature table ``<kind>_versions``: the rows of ``<kind>_history`` as a GeoPackage layer.

        A table, not a view: GDAL (and so QGIS) types a view's computed columns as text and does not
        take a computed geometry for one. Its rows are ``<kind>_history``'s, copied by SQL (the stored
        WKB behind a GeoPackage geometry header: little-endian, no envelope); an adoption copies only
        the rows it opened or closed, and the whole table when the layer's columns changed.
        """
        srs_id = self._ensure_srs(conn, crs)
        name = f"{kind}_versions"
        types = {"integer": "INTEGER", "real": "REAL", "boolean": "BOOLEAN", "time": "DATETIME", "text": "TEXT"}
        wanted = ["fid", "version_from", "version_to", "valid_from", "valid_to", *(c for c, _ in columns), "geom"]
        header = (b"GP\x00\x01" + struct.pack("<i", srs_id)).hex()
        select = ("SELECT hid, version_from, version_to, valid_from, valid_to, " + "".join(
            f"json_extract(attributes, '$.\"{c}\"'), " for c, _ in columns) + f"CAST(X'{header}' || geom AS BLOB) "
            f"FROM {kind}_history")
        held = [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')]
        if held == wanted:
            v = int(version)
            touched = f"SELECT hid FROM {kind}_history WHERE version_from = {v} OR version_to = {v}"
            conn.execute(f'DELETE FROM "{name}" WHERE fid IN ({touched})')
            conn.execute(f'INSERT INTO "{name}" {select} WHERE hid IN ({touched})')
            return
        conn.execute(f'DROP TABLE IF EXISTS "{name}"')
        attributes = "".join(f'"{c}" {types[k]}, ' for c, k in columns)
        conn.execute(f'CREATE TABLE "{name}" (fid INTEGER PRIMARY KEY, version_from INTEGER NOT NULL, version_to '
                     f"INTEGER, valid_from DATE, valid_to DATE, {attributes}geom GEOMETRY)")
        conn.execute(f'INSERT INTO "{name}" {select}')
        for table in ("gpkg_contents", "gpkg_geometry_columns"):
            conn.execute(f"DELETE FROM {table} WHERE table_name = ?", (name,))
        conn.execute("INSERT INTO gpkg_contents(table_name, data_type, identifier, description, srs_id) VALUES "
                     "(?, 'features', ?, ?, ?)", (name, name, f"every version of {kind} (valid_from, valid_to)",
                                                  srs_id))
        conn.execute("INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', 'GEOMETRY', ?, 0, 0)", (name, srs_id))

    def _move_orders_crs(self, conn, crs: pyproj.CRS) -> int:
        """Register the (empty) orders layer in ``crs``; returns its srs_id."""
        srs_id = self._ensure_srs(conn, crs)
        for table in ("gpkg_geometry_columns", "gpkg_contents"):
            conn.execute(f"UPDATE {table} SET srs_id = ? WHERE table_name = 'orders'", (srs_id,))
        return srs_id

    def _copy_layers(self, conn, kinds: list[str]) -> None:
        main_tables = self._tables(conn)
        for table, sql in conn.execute("SELECT name, sql FROM scratch.sqlite_master WHERE type = 'table' "
                                       "AND name LIKE 'gpkg%'").fetchall():
            if table not in main_tables:
                conn.execute(sql)
        conn.execute("INSERT OR IGNORE INTO main.gpkg_spatial_ref_sys SELECT * FROM scratch.gpkg_spatial_ref_sys")
        meta: list[str] = [t for t in ("gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents")
                if t in self._tables(conn)]
        scratch_tables = {r[0] for r in conn.execute("SELECT name FROM scratch.sqlite_master")}
        for kind in kinds:
            self._drop_layer(conn, kind, meta)
            objects = conn.execute("SELECT type, name, sql FROM scratch.sqlite_master WHERE "
                                   "(tbl_name = ? OR name = ?) AND sql IS NOT NULL",
                                   (kind, f"rtree_{kind}_geom")).fetchall()
            for kind_, name, sql in objects:
                if kind_ == "table":
                    conn.execute(sql)
                    conn.execute(f'INSERT INTO main."{name}" SELECT * FROM scratch."{name}"')
            for kind_, _, sql in objects:
                if kind_ in ("index", "trigger"):
                    conn.execute(sql)
            for table in meta:
                if table in scratch_tables:
                    conn.execute(f"INSERT INTO main.{table} SELECT * FROM scratch.{table} WHERE table_name = ?",
                                 (kind,))

    def _drop_layer(self, conn, kind: str, meta: list[str]) -> None:
        """Drop a layer: its rtree, then the table (its triggers go with it), then its metadata rows."""
        for (name,) in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table' AND "
                                    "name = ? AND sql LIKE 'CREATE VIRTUAL TABLE%'", (f"rtree_{kind}_geom",)):
            conn.execute(f'DROP TABLE main."{name}"')
        conn.execute(f'DROP TABLE IF EXISTS main."{kind}"')
        for table in meta:
            conn.execute(f"DELETE FROM main.{table} WHERE table_name = ?", (kind,))
