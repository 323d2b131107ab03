"""The orders that changed since a reader last looked (:meth:`OrderFeed.orders_changes`).

Every write of an order adds a row to the audit trail (``trail``, numbered by
``trail_id``) in the same transaction, so the orders named by the trail rows
numbered above some mark are the orders written since. A reader such as the
server's per-grid table (:class:`jngis.gridtable.LiveTable`) keeps an
:class:`OrdersCursor` and asks for what changed since it: a handful of rows
instead of the whole city.

Numbers are handed out when a row is written, not when its transaction
commits: on PostgreSQL a write that began first can commit after a later
one, with a lower number than one already seen. So a cursor looks again at
the numbers handed out in the last :data:`SETTLE` seconds (and, after a full
read, at the last :data:`FULL_OVERLAP` numbers below it); re-reading an
order is harmless, it only replaces the order with itself. A write whose
transaction stays open longer than that is caught by the reader's next full
read (the server's table makes one every :data:`jngis.gridtable.RESET`
seconds).

Examples
--------
>>> import tempfile, pathlib
>>> from jngis.store import open_store
>>> store = open_store(pathlib.Path(tempfile.mkdtemp()) / "feed.gpkg")
>>> first = store.orders_changes()
>>> first.complete, len(first.orders)
(True, 0)
>>> store.orders_changes(first.cursor).complete
False
>>> store.close()
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import geopandas as gpd
import pandas as pd

from jngis.errors import InputTypeError
from jngis.store.frames import typed_orders, wanted_columns

__all__ = ["FULL_OVERLAP", "OrderChanges", "OrderFeed", "OrdersCursor", "SETTLE", "WHOLE_SHARE"]

#: Seconds during which the trail numbers handed out are looked at again (a write's transaction
#: committing after later ones').
SETTLE = 10.0
#: Rows a full read turns into a frame at a time.
FULL_READ_ROWS = 20_000
#: Trail numbers below a full read's mark looked at again during the first SETTLE seconds after it.
FULL_OVERLAP = 1_000
#: Above this share of the orders changed (a bulk import), the changes are the whole orders instead.
WHOLE_SHARE = 0.25
_CHUNK = 500  # order ids per IN (...) list
_MANY = 2_000  # changed orders from which the share is checked (counting every order costs)


@dataclass(frozen=True)
class OrdersCursor:
    """Where a reader of :meth:`OrderFeed.orders_changes` stands.

    ``marks`` are ``(time.monotonic() reading, highest trail number seen)``
    pairs, oldest first; the next read looks at the numbers above the mark
    taken :data:`SETTLE` seconds ago. A cursor belongs to the process that
    got it (monotonic time).
    """

    marks: tuple[tuple[float, int], ...]

    @property
    def high(self) -> int:
        """The highest trail number seen."""
        return self.marks[-1][1]

    def low(self, now: float) -> int:
        """The trail number above which to look at ``now``: the mark of SETTLE seconds ago."""
        settled = [mark for at, mark in self.marks if at <= now - SETTLE]
        return settled[-1] if settled else self.marks[0][1]

    def moved(self, now: float, high: int) -> OrdersCursor:
        """This cursor after a read at ``now`` that saw trail numbers up to ``high``."""
        marks = (*self.marks, (now, max(high, self.high)))
        settled = [i for i, (at, _) in enumerate(marks) if at <= now - SETTLE]
        return OrdersCursor(marks[settled[-1]:] if settled else marks)


class OrderChanges(NamedTuple):
    """What :meth:`OrderFeed.orders_changes` found.

    ``orders``: the orders (an ``orders_frame`` of them, ``order_id``
    included); ``complete``: they are every order of the store (a first read,
    or more changed than :data:`WHOLE_SHARE`), not only the changed ones;
    ``cursor``: to pass next time.
    """

    orders: gpd.GeoDataFrame
    cursor: OrdersCursor
    complete: bool


class OrderFeed:
    """The orders' change feed (mixed into :class:`jngis.store.Store`)."""

    if TYPE_CHECKING:  # what the Store this is mixed into provides
        crs: Any

        def _conn(self) -> Any: ...
        def _execute(self, conn: Any, query: str, params: Sequence = ()) -> Any: ...

    def orders_changes(self, cursor: OrdersCursor | None = None, *,
                       columns: Sequence[str] | None = None) -> OrderChanges:
        """The orders written since ``cursor`` (None: every order), with the cursor to pass next time.

        Parameters
        ----------
        cursor : OrdersCursor, optional
            What the previous call returned; None reads every order.
        columns : list of str, optional
            The public columns to give (as for ``orders_frame``); ``order_id``
            is always given. Default: every public column.

        Returns
        -------
        OrderChanges
            The orders (all of them when ``complete``; in no particular order),
            the next cursor.

        Notes
        -----
        The trail is read before the orders, so an order is never older than
        the cursor says: one written in between is read again next time.
        Every order of the store is in scope (the feed is for the city-wide
        figures; a principal's lists go through ``orders_frame``).
        """
        if cursor is not None and not isinstance(cursor, OrdersCursor):
            raise InputTypeError(f"orders_changes: cursor is a {type(cursor).__name__}; expected None or the "
                                 "OrdersCursor a previous orders_changes returned")
        if isinstance(columns, str):
            raise InputTypeError(f"orders_changes: columns={columns!r}; expected a list of column names")
        wanted, fetch = wanted_columns(True, None if columns is None else ["order_id", *columns])
        conn = self._conn()
        now = time.monotonic()
        if cursor is None:
            return self._all_changes(conn, now, wanted, fetch)
        # a range of the key (no GROUP BY: SQLite would then walk the whole trail by its order_id index)
        numbered = self._execute(conn, "SELECT trail_id, order_id FROM trail WHERE trail_id > ?",
                                 (cursor.low(now),)).fetchall()
        if not numbered:
            return OrderChanges(self._orders_geoframe([], wanted, fetch), cursor.moved(now, cursor.high), False)
        high = max(int(number) for number, _ in numbered)
        ids = list(dict.fromkeys(order_id for _, order_id in numbered))
        if len(ids) > _MANY and len(ids) > WHOLE_SHARE * int(
                self._execute(conn, "SELECT count(*) FROM orders").fetchone()[0]):
            return self._all_changes(conn, now, wanted, fetch)
        found: list = []
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            found += self._execute(conn, f"SELECT {', '.join(fetch)} FROM orders WHERE order_id IN "
                                         f"({', '.join('?' * len(chunk))})", chunk).fetchall()
        return OrderChanges(self._orders_geoframe(found, wanted, fetch), cursor.moved(now, high), False)

    def _all_changes(self, conn: Any, now: float, wanted: list[str], fetch: list[str]) -> OrderChanges:
        high = self._execute(conn, "SELECT max(trail_id) FROM trail").fetchone()[0]
        high = 0 if high is None else int(high)
        # In slices: a whole city's rows as Python tuples at once were ~80 MiB on the sample city's
        # 100,000 orders, and the heap they grew stayed with the server (a step in its memory at
        # each periodic full read, benchmarks/RESULTS.md "reliability"); a slice at a time is a fifth.
        result = self._execute(conn, f"SELECT {', '.join(fetch)} FROM orders")
        parts = []
        while rows := result.fetchmany(FULL_READ_ROWS):
            parts.append(self._orders_geoframe(rows, wanted, fetch))
            del rows
        orders = (self._orders_geoframe([], wanted, fetch) if not parts else parts[0] if len(parts) == 1
                  else gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=self.crs))
        cursor = OrdersCursor(((-math.inf, max(high - FULL_OVERLAP, 0)), (now, high)))
        return OrderChanges(orders, cursor, True)

    def _orders_geoframe(self, rows: list, wanted: list[str], fetch: list[str]) -> gpd.GeoDataFrame:
        frame = typed_orders(rows, fetch, deadline="deadline" in wanted)
        return gpd.GeoDataFrame(frame[wanted], geometry=gpd.points_from_xy(frame["x"], frame["y"]), crs=self.crs)

