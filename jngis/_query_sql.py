"""The SQL translation of :mod:`jngis.query` (SQLite and PostGIS, values bound, never formatted)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import shapely

from jngis.errors import ParameterError

if TYPE_CHECKING:
    from jngis.query import Query

__all__ = ["to_sql", "order_by_sql", "sqlite_functions"]




def to_sql(query: Query | None, columns: Mapping[str, str] | None = None, *, dialect: str = "sqlite",
           to_db: Callable[[Any], Any] = lambda v: v, placeholder: str = "?") -> tuple[str, list]:
    """``(where_clause, parameters)`` for ``query``; ``1=1`` for None.

    ``columns`` maps queryable names to SQL column names (default: the same);
    ``geometry`` is a point held as ``lon``/``lat`` in WGS84. ``dialect`` is
    ``sqlite`` (S_INTERSECTS through :func:`sqlite_functions`) or ``postgis``.
    """
    if dialect not in ("sqlite", "postgis"):
        raise ParameterError(f"dialect={dialect!r}; expected 'sqlite' or 'postgis'")
    if query is None or query.node is None:
        return "1=1", []
    params: list = []
    sql = _sql(query.node, dict(columns or {}), dialect, to_db, placeholder, params)
    return sql, params


def _sql(node: tuple, columns: dict, dialect: str, to_db: Callable, mark: str, params: list) -> str:
    op = node[0]
    if op in ("and", "or"):
        if not node[1]:
            return "1=1" if op == "and" else "1=0"
        parts = [_sql(part, columns, dialect, to_db, mark, params) for part in node[1]]
        return "(" + f" {op.upper()} ".join(parts) + ")"
    if op == "not":
        return f"NOT COALESCE({_sql(node[1], columns, dialect, to_db, mark, params)}, 1=0)"
    name = node[1]
    column = columns.get(name, name)
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", column):  # queryable names only, never user text
        raise ParameterError(f"column {column!r} is not a plain SQL name")
    if op == "intersects":
        params.append(node[2].wkt)
        if dialect == "postgis":
            return f"ST_Intersects(ST_SetSRID(ST_MakePoint(lon, lat), 4326), ST_GeomFromText({mark}, 4326))"
        return f"COALESCE(jngis_intersects(lon, lat, {mark}), 0) = 1"
    if op == "null":
        return f"{column} IS NULL"
    if op == "like":
        params.append(node[2])
        return f"{column} LIKE {mark} ESCAPE '\\'"
    if op == "in":
        params.extend(to_db(v) for v in node[2])
        return f"COALESCE({column} IN ({', '.join([mark] * len(node[2]))}), 1=0)" if node[2] else "1=0"
    params.append(to_db(node[3]))
    return f"COALESCE({column} {node[2]} {mark}, 1=0)"


def order_by_sql(sortby: Sequence[tuple[str, bool]], columns: Mapping[str, str] | None = None) -> str:
    """``ORDER BY`` terms for ``sortby`` (missing values last, in SQLite and PostgreSQL alike)."""
    terms = []
    for name, ascending in sortby:
        column = (columns or {}).get(name, name)
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", column):
            raise ParameterError(f"column {column!r} is not a plain SQL name")
        terms.append(f"{column} IS NULL, {column} {'ASC' if ascending else 'DESC'}")
    return ", ".join(terms)


@functools.lru_cache(maxsize=64)
def _prepared(wkt: str):
    geometry = shapely.from_wkt(wkt)
    shapely.prepare(geometry)
    return geometry


def _intersects(lon, lat, wkt) -> int | None:
    if lon is None or lat is None:
        return None
    return int(shapely.intersects_xy(_prepared(wkt), lon, lat))


def sqlite_functions(conn) -> None:
    """Register ``jngis_intersects(lon, lat, wkt)`` (a prepared shapely test) on a sqlite3 connection."""
    conn.create_function("jngis_intersects", 3, _intersects, deterministic=True)
