"""The store's own tables: their columns, once, and their SQL in either dialect.

Both stores hold the same tables beside the city's layers: ``orders`` (a
point layer without personal data), ``callers`` (the personal data, apart),
``trail`` (the audit trail), ``order_counters`` (the daily order numbers),
``jngis_store`` (the store's own settings), ``jngis_changes`` (the change
channel), ``versions``, ``<kind>_history`` and ``lineage`` (boundary versions). Only the SQL type names differ
between SQLite and PostgreSQL; :func:`store_tables_sql` writes both.

Examples
--------
>>> statements = store_tables_sql(SQLITE_TYPES, point="POINT")
>>> statements[0].split("(")[0]
'CREATE TABLE IF NOT EXISTS orders '
>>> personal_columns(ORDER_COLUMNS), CALLER_FIELDS
([], ('caller_name', 'caller_phone'))

PostgreSQL can hold the orders partitioned by month of ``received_at``
(``partitioned=True``): the primary key then includes the partition key, and
the ids are kept unique by the ``order_ids`` table that the callers refer to.

>>> store_tables_sql(POSTGIS_TYPES, point="geometry(Point)", partitioned=True)[0].split(") ")[-1]
'PARTITION BY RANGE (received_at)'
"""

from __future__ import annotations

from typing import NamedTuple

from jngis.codes import LEVELS, personal_columns
from jngis.layers import KINDS
from jngis.store.changes import CHANGE_KINDS, changes_table_sql
from jngis.workorders import PERSONAL_FIELDS

__all__ = [
    "DEFAULT_CRS", "MAX_OFFSET", "ORDER_COLUMNS", "TIME_COLUMNS", "COORDINATE_COLUMNS", "CODE_COLUMNS",
    "TRAIL_COLUMNS", "CALLER_FIELDS", "CALLER_COLUMNS", "LAYER_KINDS", "SqlTypes", "SQLITE_TYPES",
    "POSTGIS_TYPES", "store_tables_sql", "ADDED_ORDER_COLUMNS",
    "department_tables_sql", "VERSIONED_KINDS", "changes_tables_sql", "versions_tables_sql",
]

#: The CRS of a store created empty (orders are kept in the city's CRS otherwise).
DEFAULT_CRS = "EPSG:4548"
#: Largest ``offset`` of list_orders (a billion orders: far beyond any city's hotline).
MAX_OFFSET = 1_000_000_000

#: Columns of the orders table (besides the geometry), in order. None is personal data.
ORDER_COLUMNS: tuple[str, ...] = (
    "order_id", "category", "description", "status", "received_at", "dispatched_at", "due_at",
    "warn_at", "resolved_at", "closed_at", "extended_days", "satisfied", "district_code",
    "street_code", "community_code", "grid_code", "lon", "lat", "x", "y", "updated_at", "department_code",
)
TIME_COLUMNS: tuple[str, ...] = ("received_at", "dispatched_at", "due_at", "warn_at", "resolved_at", "closed_at",
                                 "updated_at")
COORDINATE_COLUMNS: tuple[str, ...] = ("lon", "lat", "x", "y")
#: The administrative codes an order is placed in, coarsest first.
CODE_COLUMNS: tuple[str, ...] = tuple(lv.key for lv in LEVELS)
TRAIL_COLUMNS: tuple[str, ...] = ("order_id", "action", "from_state", "to_state", "who", "at", "note")
#: The personal data of an order: the only columns of the private ``callers`` table.
CALLER_FIELDS: tuple[str, ...] = tuple(personal_columns(PERSONAL_FIELDS))
CALLER_COLUMNS: tuple[str, ...] = ("order_id", *CALLER_FIELDS)
#: The city's layers a store holds as tables (work orders live in ``orders``).
LAYER_KINDS: tuple[str, ...] = tuple(k for k in KINDS if k != "workorders")
#: The layers whose every version the store keeps (``<kind>_history``), with the key of each.
VERSIONED_KINDS: dict[str, str] = {"streets": "street_code", "communities": "community_code",
                                   "units": "unit_id", "grids": "grid_code"}

_INDEXED_ORDER_COLUMNS = ("status", *CODE_COLUMNS, "due_at", "received_at", "department_code")
_REQUIRED_ORDER_COLUMNS = ("category", "status", "received_at")


class SqlTypes(NamedTuple):
    """The type names of one SQL dialect."""

    serial: str  # an auto-numbered primary key
    text: str
    integer: str
    big_integer: str
    real: str
    boolean: str
    time: str
    date: str
    blob: str


SQLITE_TYPES = SqlTypes("INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL", "TEXT", "INTEGER", "INTEGER", "REAL",
                        "BOOLEAN", "DATETIME", "DATE", "BLOB")
POSTGIS_TYPES = SqlTypes("bigserial PRIMARY KEY", "text", "integer", "bigint", "double precision", "boolean",
                         "timestamp", "date", "bytea")


def _order_column_sql(column: str, types: SqlTypes, partitioned: bool) -> str:
    kind = (types.time if column in TIME_COLUMNS else types.real if column in COORDINATE_COLUMNS
            else types.integer if column == "extended_days" else types.boolean if column == "satisfied"
            else types.text)
    # a unique index of a partitioned table must hold the partition key: order_ids keeps the ids unique
    constraint = (" NOT NULL" + ("" if partitioned else " UNIQUE") if column == "order_id"
                  else " NOT NULL" if column in _REQUIRED_ORDER_COLUMNS else "")
    return f"{column} {kind}{constraint}"


def store_tables_sql(types: SqlTypes, *, point: str, partitioned: bool = False) -> list[str]:
    """The statements creating the store's tables and indexes (each ``IF NOT EXISTS``).

    ``point`` is the dialect's type of the orders' geometry column. ``partitioned``
    (PostgreSQL only): orders ``PARTITION BY RANGE (received_at)``, keyed by
    ``(fid, received_at)``, their ids held unique in ``order_ids`` (which the
    PostGIS store fills from a trigger and the callers refer to); the monthly
    partitions are the store's to create.
    """
    columns = ", ".join(_order_column_sql(c, types, partitioned) for c in ORDER_COLUMNS)
    callers = ", ".join(f"{c} {types.text}" for c in CALLER_FIELDS)
    if partitioned:
        orders = [f"CREATE TABLE IF NOT EXISTS orders (fid {types.serial.split()[0]}, {columns}, geom {point}, "
                  "PRIMARY KEY (fid, received_at)) PARTITION BY RANGE (received_at)",
                  f"CREATE TABLE IF NOT EXISTS order_ids (order_id {types.text} PRIMARY KEY)",
                  "CREATE INDEX IF NOT EXISTS orders_order_id ON orders(order_id)"]
    else:
        orders = [f"CREATE TABLE IF NOT EXISTS orders (fid {types.serial}, {columns}, geom {point})"]
    return [
        *orders,
        *(f"CREATE INDEX IF NOT EXISTS orders_{c} ON orders({c})" for c in _INDEXED_ORDER_COLUMNS),
        f"CREATE TABLE IF NOT EXISTS callers (order_id {types.text} PRIMARY KEY REFERENCES "
        f"{'order_ids' if partitioned else 'orders'}(order_id), {callers})",
        f"CREATE TABLE IF NOT EXISTS trail (trail_id {types.serial}, order_id {types.text} NOT NULL, "
        f"action {types.text} NOT NULL, from_state {types.text}, to_state {types.text} NOT NULL, "
        f"who {types.text} NOT NULL, at {types.time} NOT NULL, note {types.text})",
        "CREATE INDEX IF NOT EXISTS trail_order_id ON trail(order_id)",
        f"CREATE TABLE IF NOT EXISTS order_counters (day {types.text} PRIMARY KEY, last {types.big_integer} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS jngis_store (key {types.text} PRIMARY KEY, value {types.text})",
        *changes_tables_sql(types),
        *versions_tables_sql(types),
        *department_tables_sql(types),
    ]


#: Columns a store made before them lacks and gets on opening (``ALTER TABLE orders ADD COLUMN``).
ADDED_ORDER_COLUMNS: tuple[str, ...] = ("department_code",)


def department_tables_sql(types: SqlTypes) -> list[str]:
    """The departments registry, the dispatch catalogue, each order's department-loop row, the 街道's calls."""
    from jngis.workorders.loop import LOOP_COLUMNS, LOOP_TIME_COLUMNS

    kinds = {c: types.time if c in LOOP_TIME_COLUMNS else types.integer if c == "extension_days" else types.text
             for c in LOOP_COLUMNS}
    loop = ", ".join(f"{c} {kind}" for c, kind in kinds.items())
    times = ", ".join(f"{c} {types.time}" for c in ("signed_at", "contacted_at", "on_site_at", "done_at", "rated_at"))
    return [
        f"CREATE TABLE IF NOT EXISTS departments (code {types.text} PRIMARY KEY, name {types.text} NOT NULL, "
        f"kind {types.text} NOT NULL, districts {types.text} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS dispatch_catalogue (category {types.text} NOT NULL, district_code "
        f"{types.text} NOT NULL, department_code {types.text} NOT NULL, PRIMARY KEY (category, district_code))",
        f"CREATE TABLE IF NOT EXISTS order_loop (order_id {types.text} PRIMARY KEY, {loop})",
        f"CREATE TABLE IF NOT EXISTS calls (call_id {types.serial}, order_id {types.text}, street_code "
        f"{types.text} NOT NULL, problem {types.text} NOT NULL, who {types.text} NOT NULL, called_at {types.time} "
        "NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS call_departments (call_id {types.big_integer} NOT NULL, department_code "
        f"{types.text} NOT NULL, {times}, rating {types.integer}, rating_note {types.text}, "
        "PRIMARY KEY (call_id, department_code))",
    ]


def changes_tables_sql(types: SqlTypes) -> list[str]:
    """The change channel's table, with a row per kind (so a reader can lock it: see jngis.store.changes)."""
    return [changes_table_sql(types.text, types.big_integer),
            *(f"INSERT INTO jngis_changes(kind, version) VALUES ('{kind}', 0) ON CONFLICT(kind) DO NOTHING"
              for kind in CHANGE_KINDS)]


def versions_tables_sql(types: SqlTypes) -> list[str]:
    """The boundary versions, every version's rows of the versioned layers, and the lineage."""
    history = [
        f"CREATE TABLE IF NOT EXISTS {kind}_history (hid {types.serial}, code {types.text} NOT NULL, "
        f"version_from {types.integer} NOT NULL, version_to {types.integer}, valid_from {types.date}, "
        f"valid_to {types.date}, srid {types.integer} NOT NULL, attributes {types.text} NOT NULL, "
        f"geom {types.blob} NOT NULL)"
        for kind in VERSIONED_KINDS]
    return [
        f"CREATE TABLE IF NOT EXISTS versions (version_id {types.integer} PRIMARY KEY, effective {types.date}, "
        f"adopted_at {types.time} NOT NULL, adopted_by {types.text} NOT NULL, note {types.text}, "
        f"summary {types.text} NOT NULL, applied {types.boolean} NOT NULL)",
        *history,
        *(f"CREATE INDEX IF NOT EXISTS {kind}_history_span ON {kind}_history(version_from, version_to)"
          for kind in VERSIONED_KINDS),
        *(f"CREATE INDEX IF NOT EXISTS {kind}_history_code ON {kind}_history(code)" for kind in VERSIONED_KINDS),
        f"CREATE TABLE IF NOT EXISTS lineage (version_id {types.integer} NOT NULL, kind {types.text} NOT NULL, "
        f"from_code {types.text}, to_code {types.text}, households {types.big_integer} NOT NULL, "
        f"units {types.big_integer} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS lineage_version ON lineage(version_id, kind)",
    ]
