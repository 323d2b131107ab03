"""A city's :func:`~jngis.stats.grid_stats` kept by applying the orders that changed (:class:`GridTally`).

``grid_stats`` reads every order and places it in its grid: on the sample
city's 100,000 orders that is most of a second, and a server recomputing it
after every burst of writes spent half its CPU there. A tally places each
order once, keeps the few columns the figures need, and takes the orders a
write changed (:meth:`GridTally.update`); its :meth:`GridTally.table` as of
any moment is ``grid_stats`` of all the orders it holds, figure for figure,
from arrays already in memory (the masks and counts of ``grid_stats`` itself,
:func:`jngis.stats.grid.placed_order_columns`).

Examples
--------
>>> import geopandas as gpd, pandas as pd, shapely
>>> grids = gpd.GeoDataFrame({"grid_code": ["370102001001001", "370102001001002"],
...                           "community_code": ["370102001001"] * 2},
...                          geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)], crs="EPSG:4548")
>>> def orders(ids, status, x):
...     return gpd.GeoDataFrame({"order_id": ids, "status": status,
...                              "received_at": pd.to_datetime(["2026-10-01 09:00"] * len(ids)),
...                              "due_at": pd.to_datetime(["2026-10-20 18:00"] * len(ids))},
...                             geometry=gpd.points_from_xy(x, [50] * len(ids)), crs="EPSG:4548")
>>> tally = GridTally(grids, workorders=orders(["A", "B"], ["received", "received"], [50, 150]))
>>> tally.table(at="2026-10-10")["open_orders"].tolist()
[1, 1]
>>> tally.update(orders(["B", "C"], ["closed", "received"], [150, 60]))  # B closed, C new
>>> tally.table(at="2026-10-10")["open_orders"].tolist(), len(tally)
([2, 0], 3)
"""

from __future__ import annotations

from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd

from jngis import _checks
from jngis.errors import InputTypeError, SchemaError
from jngis.stats.grid import (
    GridPlacer,
    OrderTimes,
    _check_layers,
    _datetime_column,
    as_cst_timestamp,
    assemble,
    order_times,
    placed_order_columns,
    require_columns,
    static_columns,
)

__all__ = ["GridTally", "TALLY_COLUMNS"]

#: The order columns a tally keeps (with each order's grid position): what grid_stats's figures read.
TALLY_COLUMNS: tuple[str, ...] = ("status", "received_at", "due_at", "resolved_at", "closed_at", "satisfied")
_REQUIRED = ("order_id", "status", "received_at", "due_at")
_WHERE = "_grid_position"


class GridTally:
    """``grid_stats`` of a city's grids and a changing set of work orders, kept order by order.

    Parameters
    ----------
    grids, stations, party_orgs
        As for :func:`jngis.stats.grid_stats` (the layers do not change; a new
        boundary version makes a new tally).
    workorders : geopandas.GeoDataFrame, optional
        The orders to start from, with ``order_id`` (unique), ``status``,
        ``received_at``, ``due_at`` and optionally ``resolved_at``,
        ``closed_at``, ``satisfied``; any CRS.

    Notes
    -----
    :meth:`update` replaces the orders it is given by id and adds the new
    ones; :meth:`reset` replaces all of them. Orders are never removed one
    by one (a store never deletes one). Each placement is checked the way
    ``grid_stats`` checks it, so an update that ``grid_stats`` would refuse
    is refused and changes nothing.
    """

    def __init__(self, grids: gpd.GeoDataFrame, *, stations: gpd.GeoDataFrame | None = None,
                 party_orgs: gpd.GeoDataFrame | None = None, workorders: gpd.GeoDataFrame | None = None) -> None:
        func = "GridTally"
        _check_layers(func, {"grids": grids, "stations": stations, "party_orgs": party_orgs,
                             "workorders": None, "units": None})
        index = pd.Index(grids["grid_code"].astype(str).to_numpy(), name="grid_code")
        self._placer = GridPlacer(func, grids, index)
        self._crs = grids.crs
        self._static = static_columns(func, grids, stations, party_orgs, None, self._placer)
        self.reset(workorders)

    def __len__(self) -> int:
        """The number of orders held."""
        return len(self._where)

    def reset(self, workorders: gpd.GeoDataFrame | None) -> None:
        """Hold exactly ``workorders`` (None: no orders)."""
        func = "GridTally.reset" if hasattr(self, "_where") else "GridTally"
        placed = self._placed(func, workorders)
        times = order_times(func, placed)
        # The orders as arrays (what the figures read) and each one's row there, by order id:
        # an update then costs its own orders, not a copy of a whole city's frame.
        self._times, self._where = times, placed[_WHERE].to_numpy()
        self._rows = dict(zip(placed.index.tolist(), range(len(placed))))

    def update(self, workorders: gpd.GeoDataFrame) -> None:
        """Take the orders in ``workorders``: those held already are replaced, the others added."""
        if workorders is None:
            raise InputTypeError("GridTally.update: workorders is None; expected a geopandas.GeoDataFrame of "
                                 "the orders that changed (reset(None) empties the tally)")
        changed = self._placed("GridTally.update", workorders)
        if changed.empty:
            return
        times = order_times("GridTally.update", changed)  # checked before anything held changes
        rows = np.array([self._rows.get(order_id, -1) for order_id in changed.index.tolist()], dtype=np.int64)
        held, added = rows >= 0, np.flatnonzero(rows < 0)
        merged = OrderTimes(*cast(list[np.ndarray], [_merged(old, new, rows[held], held, added)
                                                      for old, new in zip(self._times, times)]))
        where = _merged(self._where, changed[_WHERE].to_numpy(), rows[held], held, added)
        count = len(self._where)
        self._rows.update(zip(changed.index[added].tolist(), range(count, count + len(added))))
        self._times, self._where = merged, where

    def table(self, at: Any = None) -> pd.DataFrame:
        """The grid table as of ``at`` (default now in China): ``grid_stats`` of the orders held."""
        at_ts = as_cst_timestamp("GridTally.table", at)
        columns, durations = placed_order_columns("GridTally.table", None, self._where, at_ts, self._placer,
                                                  times=self._times)
        return assemble(self._static, columns, durations, self._placer)

    def _placed(self, func: str, workorders: gpd.GeoDataFrame | None) -> pd.DataFrame:
        """The orders' tally columns indexed by order id, with each one's grid position."""
        if workorders is None:
            workorders = gpd.GeoDataFrame({c: pd.Series(dtype="datetime64[ns]" if c.endswith("_at") else object)
                                           for c in ("order_id", *TALLY_COLUMNS)},
                                          geometry=gpd.GeoSeries([], crs=self._crs))
        _checks.instance(func, "workorders", workorders, gpd.GeoDataFrame, "a geopandas.GeoDataFrame",
                         show_value=False)
        require_columns(func, "workorders", workorders, _REQUIRED)
        ids = workorders["order_id"]
        if ids.isna().any() or ids.duplicated().any():
            bad = ids[ids.isna() | ids.duplicated(keep=False)]
            raise SchemaError(f"{func}: workorders['order_id'] has {len(bad)} missing or duplicated value(s) "
                              f"(e.g. {list(bad.unique()[:3])}); expected one row per order")
        n = len(workorders)
        kept: dict[str, Any] = {"status": workorders["status"].astype(str).to_numpy(object)}
        for column in ("received_at", "due_at", "resolved_at", "closed_at"):  # naive CST, as grid_stats reads them
            values = _datetime_column(func, workorders, column, required=column in _REQUIRED)
            kept[column] = (np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]") if values is None
                            else values.to_numpy())
        satisfied = workorders["satisfied"] if "satisfied" in workorders.columns else [pd.NA] * n
        try:
            kept["satisfied"] = pd.array(satisfied, dtype="boolean")
        except (TypeError, ValueError):
            raise SchemaError(f"{func}: workorders['satisfied'] holds values that are not true/false/missing; "
                              "expected the citizen's answer as booleans") from None
        kept[_WHERE] = self._placer.positions(workorders, "workorders").astype(np.int64)
        return pd.DataFrame(kept, index=pd.Index(ids.astype(str).to_numpy(), name="order_id"))


def _merged(old: np.ndarray | None, new: np.ndarray | None, rows: np.ndarray, held: np.ndarray,
            added: np.ndarray) -> np.ndarray | None:
    """``old`` with ``new[held]`` written at ``rows`` and ``new[added]`` appended (a new array)."""
    if old is None or new is None:  # never for a tally's orders: _placed gives every time column
        return None
    out = np.concatenate([old, new[added]])
    out[rows] = new[held]
    return out

