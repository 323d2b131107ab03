"""Reading many orders: lists, counts, trails and frames, each filtered to the principal's scope in SQL.

:class:`OrderReads` is mixed into :class:`jngis.store.Store` (both stores).
The keyword filters (place codes, status, overdue), a :class:`jngis.query.Query`
and the principal's scope (:func:`jngis.store._scope.scope_sql`) are AND-ed into
one WHERE clause with bound parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from jngis import access
from jngis.access import Principal
from jngis.errors import InputTypeError, ParameterError
from jngis.store._scope import OrderAccess, missing_order, require_read
from jngis.store.frames import order_filters, typed_orders, wanted_columns
from jngis.store.schema import MAX_OFFSET, ORDER_COLUMNS, TRAIL_COLUMNS
from jngis.workorders import now_cst, public_order, to_cst

__all__ = ["OrderReads"]


class OrderReads(OrderAccess):
    """The store's reads of many orders (mixed into :class:`jngis.store.Store`)."""

    def _filters(self, places: dict, status: Any, overdue: Any, now: Any) -> tuple[str, list]:
        if overdue is not None and not isinstance(overdue, (bool, np.bool_)):
            raise InputTypeError(f"overdue is a {type(overdue).__name__}; expected True, False or None")
        at = None if overdue is None else self._to_db(now_cst() if now is None else to_cst(now, "now"))
        return order_filters(places, status=status, overdue=overdue, now=at)

    def _where(self, conn, places: dict, status: Any, overdue: Any, query: Any, now: Any,
               principal: Principal) -> tuple[str, list]:
        """The WHERE clause of list/count: the keywords AND-ed with ``query`` and the principal's scope."""
        from jngis import query as jquery

        where, params = self._filters(places, status, overdue, now)
        scope, scope_params = self._scope_sql(conn, principal)
        where, params = (f"{where} AND {scope}" if where else f" WHERE {scope}"), params + scope_params
        if query is None:
            return where, params
        if not isinstance(query, jquery.Query):
            raise InputTypeError(f"query is a {type(query).__name__}; expected a jngis.query.Query")
        dialect = "postgis" if self._paramstyle == "format" else "sqlite"
        if dialect == "sqlite":
            jquery.sqlite_functions(conn)
        clause, extra = jquery.to_sql(query, dialect=dialect, to_db=self._to_db)
        return (f"{where} AND {clause}" if where else f" WHERE {clause}"), params + extra

    def list_orders(self, *, grid_code: str | None = None, community_code: str | None = None,
                    street_code: str | None = None, district_code: str | None = None,
                    status: str | Sequence[str] | None = None, overdue: bool | None = None,
                    limit: int = 100, offset: int = 0, now: Any = None, query: Any = None,
                    sortby: Sequence[tuple[str, bool]] = (), principal: Principal = access.ADMIN,
                    personal: bool = False) -> list[dict]:
        """Records as ``principal`` may see them (:meth:`get_order`), newest first, in its scope,
        filtered by place, status and overdue (open and past due).

        ``query`` (a :class:`jngis.query.Query` on :data:`jngis.query.ORDER_FIELDS`) is AND-ed
        in as SQL with bound parameters; ``sortby`` ``[(field, ascending), ...]`` orders the
        orders before the newest-first order.
        """
        from jngis.query import ORDER_FIELDS, order_by_sql

        # (an offset past 2**63 - 1 cannot even reach SQLite or PostgreSQL)
        limit = _whole_number("list_orders", "limit", limit, 1, 10_000)
        offset = _whole_number("list_orders", "offset", offset, 0, MAX_OFFSET)
        unknown = [name for name, _ in sortby if name not in ORDER_FIELDS or name == "geometry"]
        if unknown:
            raise ParameterError(f"list_orders: sortby names {unknown}; expected fields among "
                                 f"{', '.join(ORDER_FIELDS)}")
        places = {"grid_code": grid_code, "community_code": community_code, "street_code": street_code,
                  "district_code": district_code}
        principal = require_read(principal)
        conn = self._conn()
        where, params = self._where(conn, places, status, overdue, query, now, principal)
        first = order_by_sql(sortby) + ", " if sortby else ""
        rows = self._execute(
            conn, _select_orders(f"{where} ORDER BY {first}received_at DESC, order_id DESC LIMIT ? OFFSET ?"),
            params + [limit, offset],
        ).fetchall()
        now = now_cst() if now is None else to_cst(now, "now")  # one instant for the page's deadlines
        return self._shown([public_order(self._row_dict(row), now) for row in rows], principal, personal)

    def count_orders(self, *, grid_code: str | None = None, community_code: str | None = None,
                     street_code: str | None = None, district_code: str | None = None,
                     status: str | Sequence[str] | None = None, overdue: bool | None = None,
                     now: Any = None, query: Any = None, principal: Principal = access.ADMIN) -> int:
        """How many orders :meth:`list_orders` would page through (``query`` and the scope AND-ed in)."""
        places = {"grid_code": grid_code, "community_code": community_code, "street_code": street_code,
                  "district_code": district_code}
        principal = require_read(principal)
        conn = self._conn()
        where, params = self._where(conn, places, status, overdue, query, now, principal)
        return int(self._execute(conn, f"SELECT count(*) FROM orders{where}", params).fetchone()[0])

    def trail(self, order_id: str, *, principal: Principal = access.ADMIN) -> list[dict]:
        """The audit trail of one order, oldest first (order_id, action, from_state, to_state, who, at, note).

        An order outside ``principal``'s scope raises the NotFoundError of a missing one.
        """
        order_id = _order_id("trail", order_id)
        principal = require_read(principal)
        conn = self._conn()
        scope, params = self._scope_sql(conn, principal)
        if self._execute(conn, f"SELECT 1 FROM orders WHERE order_id = ? AND {scope}",
                         (order_id, *params)).fetchone() is None:
            raise missing_order(order_id)
        rows = self._execute(conn, f"SELECT trail_id, {', '.join(TRAIL_COLUMNS)} FROM trail "
                                   "WHERE order_id = ? ORDER BY trail_id", (order_id,)).fetchall()
        out = []
        for row in rows:
            record = dict(zip(("trail_id",) + TRAIL_COLUMNS, row))
            record["at"] = self._from_db_time(record["at"])
            out.append(record)
        return out

    def trail_frame(self) -> pd.DataFrame:
        """The whole trail as a DataFrame, in the order it was written."""
        rows = self._execute(self._conn(), f"SELECT trail_id, {', '.join(TRAIL_COLUMNS)} FROM trail "
                                           "ORDER BY trail_id").fetchall()
        frame = pd.DataFrame(rows, columns=("trail_id",) + TRAIL_COLUMNS)
        frame["at"] = pd.to_datetime(frame["at"], format="ISO8601")
        return frame

    def orders_frame(self, public: bool = True, *, now: Any = None, columns: Sequence[str] | None = None,
                     principal: Principal = access.ADMIN) -> gpd.GeoDataFrame:
        """Every order as a GeoDataFrame in :attr:`crs` with a ``deadline`` column.

        Columns: the public fields (``description`` only with
        ``public=False``), or just `columns` of them (what a caller needs:
        reading 100,000 orders costs about 1.5 s with every column, a third
        of that with the handful ``grid_stats`` reads); never a caller's
        name or phone. Fits the ``workorders`` layer schema, for
        ``grid_stats`` and tiles. Only the orders in ``principal``'s scope;
        descriptions with their phones and ID numbers masked unless the
        principal has personal-data rights.
        """
        if not isinstance(public, (bool, np.bool_)):
            raise InputTypeError(f"public is a {type(public).__name__}; expected True or False")
        principal = require_read(principal)
        wanted, fetch = wanted_columns(bool(public), columns)
        conn = self._conn()
        scope, params = self._scope_sql(conn, principal)
        rows = self._execute(conn, _select_orders(f"WHERE {scope} ORDER BY received_at, order_id", fetch),
                             params).fetchall()
        frame = typed_orders(rows, fetch, deadline="deadline" in wanted, now=now)
        if "description" in frame.columns and access.personal_access(principal) == "none":
            frame["description"] = frame["description"].map(access.mask_text)
        return gpd.GeoDataFrame(frame[wanted], geometry=gpd.points_from_xy(frame["x"], frame["y"]), crs=self.crs)

def _select_orders(extra: str = "", columns: Sequence[str] = ORDER_COLUMNS) -> str:
    return f"SELECT {', '.join(columns)} FROM orders {extra}"
def _order_id(func: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputTypeError(f"{func}: order_id={value!r}; expected a non-empty string such as '20261009000001'")
    return value.strip()
def _whole_number(func: str, name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ParameterError(f"{func}: {name}={value!r}; expected a whole number from {low} to {high:,}")
    return int(value)
