"""Duplicate reports (并单): the same matter reported again, nearby and soon after.

Two orders are **proposed as duplicates** when they have the same category,
lie within ``distance_m`` metres of each other and were received within
``hours`` of each other. Each order, taken in the order of receipt, follows
the earliest earlier order of its category within reach that is itself not a
duplicate (its **master**); so a chain of reports never drifts: every
duplicate lies within ``distance_m`` and ``hours`` of its master. Merging
(:meth:`jngis.store.Store.step` with ``"merge"``) then makes the duplicate
follow its master, and the evaluation counts the matter once.

The search is one spatial-temporal neighbour query: orders as points
``(x, y, t * distance_m / window)`` in a :class:`scipy.spatial.cKDTree`, so a
pair within both limits lies within ``distance_m * sqrt(2)`` in that space;
candidate pairs are then checked exactly. A year of a city's orders (100,000)
takes well under a second.

Examples
--------
>>> import geopandas as gpd, pandas as pd, shapely
>>> orders = gpd.GeoDataFrame({"order_id": ["A", "B", "C"], "category": ["环境卫生"] * 3,
...     "received_at": pd.to_datetime(["2026-10-09 09:00", "2026-10-09 11:00", "2026-10-12 09:00"])},
...     geometry=[shapely.Point(500000, 4060000), shapely.Point(500020, 4060000), shapely.Point(500010, 4060000)],
...     crs="EPSG:4548")
>>> find_duplicates(orders)[["order_id", "master_id"]].values.tolist()
[['B', 'A']]
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from jngis import _checks

__all__ = ["DUPLICATE_DISTANCE_M", "DUPLICATE_HOURS", "find_duplicates", "duplicate_scores"]

#: Default reach of a duplicate: 50 m and 24 hours.
DUPLICATE_DISTANCE_M = 50.0
DUPLICATE_HOURS = 24.0


def _candidate_pairs(x: np.ndarray, y: np.ndarray, t: np.ndarray, distance_m: float, window_s: float) -> np.ndarray:
    """Pairs (i, j), i received no later than j, within both limits (exact check after the tree's query)."""
    from scipy.spatial import cKDTree

    # unitless: a pair within both limits lies within sqrt(2) (origins moved for precision)
    points = np.column_stack([(x - x.min()) / distance_m, (y - y.min()) / distance_m, (t - t.min()) / window_s])
    tree = cKDTree(points)
    pairs = tree.query_pairs(np.sqrt(2.0) * (1 + 1e-9), output_type="ndarray")
    if not len(pairs):
        return np.empty((0, 2), dtype=np.int64)
    i, j = pairs[:, 0], pairs[:, 1]
    near = np.hypot(x[i] - x[j], y[i] - y[j]) <= distance_m
    soon = np.abs(t[i] - t[j]) <= window_s
    i, j = i[near & soon], j[near & soon]
    first = (t[i] < t[j]) | ((t[i] == t[j]) & (i < j))
    return np.column_stack([np.where(first, i, j), np.where(first, j, i)])


def _masters(pairs: np.ndarray, t: np.ndarray, n: int) -> np.ndarray:
    """Each order's master position (-1: it is a master), earliest earlier non-duplicate neighbour."""
    master = np.full(n, -1, dtype=np.int64)
    if not len(pairs):
        return master
    # visit each later order once, its earlier neighbours earliest first
    key = np.lexsort((t[pairs[:, 0]], pairs[:, 0], t[pairs[:, 1]]))
    pairs = pairs[key]
    for earlier, later in pairs:
        if master[later] == -1 and master[earlier] == -1 and earlier != later:
            master[later] = earlier
    return master


def find_duplicates(orders: gpd.GeoDataFrame, *, distance_m: float = DUPLICATE_DISTANCE_M,
                    hours: float = DUPLICATE_HOURS, exclude: Any = None) -> pd.DataFrame:
    """The duplicates proposed among ``orders``: ``order_id, master_id, distance_m, hours``.

    Parameters
    ----------
    orders : geopandas.GeoDataFrame
        Points with ``order_id``, ``category``, ``received_at``; in any CRS
        (geographic coordinates are taken to their metric zone first).
    distance_m, hours : float
        The reach of a duplicate (default 50 m, 24 h; 0.01 m-100 km, 0.01 h-a year).
    exclude : array of bool, optional
        Orders that take no part (e.g. already merged ones).
    """
    func = "find_duplicates"
    _checks.geodataframe(func, "orders", orders)
    _checks.columns(func, "orders", orders, ["order_id", "category", "received_at"])
    distance_m = _checks.number(func, "distance_m", distance_m, minimum=0.01, maximum=100_000, hint="metres")
    hours = _checks.number(func, "hours", hours, minimum=0.01, maximum=24 * 366, hint="hours")
    if orders.crs is not None and orders.crs.is_geographic:
        from jngis.crs import to_metric

        orders = to_metric(orders)
    keep = np.ones(len(orders), bool) if exclude is None else ~np.asarray(exclude, dtype=bool)
    # an order without a location or a time cannot be matched (it is not proposed, nor a master)
    keep &= ~(orders.geometry.is_empty | orders.geometry.isna()).to_numpy() & orders["received_at"].notna().to_numpy()
    frame = orders.loc[keep]
    x, y = frame.geometry.x.to_numpy(float), frame.geometry.y.to_numpy(float)
    t = pd.to_datetime(frame["received_at"]).to_numpy("datetime64[s]").astype(np.int64).astype(float)
    ids = frame["order_id"].astype(str).to_numpy(object)
    found = []
    for _, members in frame.groupby(frame["category"].astype(str), sort=False).indices.items():
        pairs = _candidate_pairs(x[members], y[members], t[members], distance_m, hours * 3600)
        master = _masters(pairs, t[members], len(members))
        later = np.flatnonzero(master >= 0)
        a, b = members[later], members[master[later]]
        found.append(pd.DataFrame({"order_id": ids[a], "master_id": ids[b],
                                   "distance_m": np.hypot(x[a] - x[b], y[a] - y[b]),
                                   "hours": (t[a] - t[b]) / 3600}))
    if not found:
        return pd.DataFrame(columns=["order_id", "master_id", "distance_m", "hours"])
    return pd.concat(found, ignore_index=True).sort_values("order_id", kind="stable").reset_index(drop=True)


def duplicate_scores(proposed: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Precision and recall of proposed duplicates against known ones.

    ``truth`` has ``order_id`` (a planted duplicate) and ``original_id``. A
    proposal is right when its order is a planted duplicate and its master is
    the planted original or another duplicate of the same original.

    Examples
    --------
    >>> import pandas as pd
    >>> truth = pd.DataFrame({"order_id": ["B", "C"], "original_id": ["A", "A"]})
    >>> duplicate_scores(pd.DataFrame({"order_id": ["B", "D"], "master_id": ["A", "E"]}), truth)
    {'proposed': 2, 'planted': 2, 'right': 1, 'precision': 0.5, 'recall': 0.5}
    """
    group = dict(zip(truth["order_id"].astype(str), truth["original_id"].astype(str)))
    group.update({o: o for o in truth["original_id"].astype(str)})
    order = proposed["order_id"].astype(str).map(group)
    master = proposed["master_id"].astype(str).map(group)
    right = int((order.notna() & (order == master) & proposed["order_id"].astype(str).isin(truth["order_id"]
                                                                                          .astype(str))).sum())
    planted = len(truth)
    return {"proposed": len(proposed), "planted": planted, "right": right,
            "precision": right / len(proposed) if len(proposed) else float("nan"),
            "recall": right / planted if planted else float("nan")}
