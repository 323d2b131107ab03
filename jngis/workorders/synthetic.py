"""The trail implied by a historical work-order layer (as in the sample city).

Examples
--------
>>> import pandas as pd
>>> orders = pd.DataFrame({"order_id": ["A"], "status": ["returned"],
...     "received_at": pd.to_datetime(["2025-10-09 08:00"]), "dispatched_at": pd.to_datetime(["2025-10-09 09:00"]),
...     "resolved_at": pd.to_datetime([None]), "closed_at": pd.to_datetime([None])})
>>> synthetic_trail(orders)[["action", "at"]].values.tolist()[-1]
['returned', Timestamp('2025-10-09 09:30:00')]
"""

from __future__ import annotations

from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd

from jngis import _checks
from jngis.errors import SchemaError
from jngis.workorders.states import FINISHED_STATES, STATES

__all__ = ["synthetic_trail", "plant_duplicates"]

_HOUR = np.timedelta64(3600, "s")
_TIME_COLUMNS = ("received_at", "dispatched_at", "resolved_at", "closed_at")
_RETURN_NOTE = "历史工单：非本单位职责，退回派单"


class _History(NamedTuple):
    """The recorded times of historical orders (datetime64[ns], NaT where not reached)."""

    status: np.ndarray
    received: np.ndarray
    dispatched: np.ndarray
    resolved: np.ndarray
    closed: np.ndarray


def synthetic_trail(orders: pd.DataFrame, *, who: str = "history") -> pd.DataFrame:
    """The trail implied by a historical work-order layer (as in the sample city).

    Uses ``received_at``, ``dispatched_at``, ``resolved_at``, ``closed_at``
    and ``status``; the acceptance (``in_progress``) is put halfway to the
    next event, at most one hour after dispatch; a returned order was
    returned half an hour after dispatch. Replaying each order's rows gives
    its ``status``. Columns: order_id, action, from_state, to_state, who,
    at, note; sorted by order then time.

    Examples
    --------
    >>> import pandas as pd
    >>> orders = pd.DataFrame({"order_id": ["A"], "status": ["closed"],
    ...     "received_at": pd.to_datetime(["2025-10-09 08:00"]), "dispatched_at": pd.to_datetime(["2025-10-09 09:00"]),
    ...     "resolved_at": pd.to_datetime(["2025-10-10 09:00"]), "closed_at": pd.to_datetime(["2025-10-11 09:00"])})
    >>> synthetic_trail(orders)["action"].tolist()
    ['received', 'dispatched', 'in_progress', 'resolved', 'closed']
    """
    history = _history(orders)
    status = history.status
    next_event = np.where(np.isnat(history.resolved), history.dispatched + 2 * _HOUR, history.resolved)
    accepted = history.dispatched + np.minimum((next_event - history.dispatched) // 2, _HOUR)
    ids = orders["order_id"].astype(str).to_numpy(object)
    order_pos = np.arange(len(orders))
    steps = (  # (which orders, rank within an order, action, from, to, when, note)
        (np.ones(len(orders), bool), 0, "received", None, "received", history.received, None),
        (status != "received", 1, "dispatched", "received", "dispatched", history.dispatched, None),
        (status == "returned", 2, "returned", "dispatched", "returned", history.dispatched + _HOUR // 2,
         _RETURN_NOTE),
        (np.isin(status, ["in_progress", *FINISHED_STATES]), 2, "in_progress", "dispatched", "in_progress",
         accepted, None),
        (np.isin(status, FINISHED_STATES), 3, "resolved", "in_progress", "resolved", history.resolved, None),
        (status == "closed", 4, "closed", "resolved", "closed", history.closed, None),
    )
    parts = [pd.DataFrame({
        "_order": order_pos[mask], "_rank": rank, "order_id": ids[mask], "action": action,
        "from_state": from_state, "to_state": to_state, "who": who, "at": at[mask], "note": note,
    }) for mask, rank, action, from_state, to_state, at, note in steps]
    trail = pd.concat(parts, ignore_index=True).sort_values(["_order", "_rank"], kind="stable")
    return trail.drop(columns=["_order", "_rank"]).reset_index(drop=True)


def _history(orders: pd.DataFrame) -> _History:
    """The states and times of ``orders``, checked: every state reached has its time."""
    missing = [c for c in ("order_id", "status", *_TIME_COLUMNS) if c not in orders.columns]
    if missing:
        raise SchemaError(f"synthetic_trail: orders lack the columns {missing}")
    status = orders["status"].to_numpy(object)
    unknown = ~np.isin(status, STATES)
    if unknown.any():
        raise SchemaError(f"synthetic_trail: status {status[unknown][0]!r}; expected one of {', '.join(STATES)}")
    history = _History(status, *(pd.to_datetime(orders[c]).to_numpy("datetime64[ns]") for c in _TIME_COLUMNS))
    if np.isnat(history.dispatched[status != "received"]).any():
        raise SchemaError("synthetic_trail: an order past 'received' has no dispatched_at")
    done = np.isin(status, FINISHED_STATES)
    if np.isnat(history.resolved[done]).any() or np.isnat(history.closed[status == "closed"]).any():
        raise SchemaError("synthetic_trail: a resolved or closed order lacks resolved_at / closed_at")
    return history


def plant_duplicates(orders: gpd.GeoDataFrame, *, share: float = 0.03, distance_m: float = 30.0,
                     hours: float = 12.0, seed: int = 2026) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """``orders`` with duplicate reports planted, and which they are: ``(orders, truth)``.

    A ``share`` of the orders (chosen at random) is reported again: the copy
    has the same category, lies up to ``distance_m`` away (uniform in a disc)
    and was received up to ``hours`` later (uniform, at least 5 minutes); it
    keeps the original's state and times shifted by the same delay, and its
    id is the original's with ``-D`` appended. ``truth`` has ``order_id``
    (the copy) and ``original_id``. The orders must be in a metric CRS.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd, shapely
    >>> orders = gpd.GeoDataFrame({"order_id": ["A", "B"], "category": ["环境卫生"] * 2,
    ...     "received_at": pd.to_datetime(["2026-10-09 09:00", "2026-10-10 09:00"])},
    ...     geometry=[shapely.Point(500000, 4060000), shapely.Point(501000, 4060000)], crs="EPSG:4548")
    >>> planted, truth = plant_duplicates(orders, share=0.5, seed=1)
    >>> len(planted), truth["original_id"].str.len().tolist()
    (3, [1])
    """
    func = "plant_duplicates"
    _checks.geodataframe(func, "orders", orders)
    _checks.metric_crs(func, "orders", orders)
    _checks.columns(func, "orders", orders, ["order_id", "category", "received_at"])
    share = _checks.number(func, "share", share, minimum=0, maximum=1)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(orders), size=int(round(share * len(orders))), replace=False))
    copies = orders.iloc[chosen].copy()
    delay = pd.to_timedelta(rng.uniform(300, max(hours * 3600, 301), len(chosen)).round(), unit="s")
    for column in [c for c in copies.columns if pd.api.types.is_datetime64_any_dtype(copies[c])]:
        copies[column] = copies[column] + delay.to_numpy()
    radius = distance_m * np.sqrt(rng.uniform(0, 1, len(chosen)))
    angle = rng.uniform(0, 2 * np.pi, len(chosen))
    copies = copies.set_geometry(gpd.points_from_xy(copies.geometry.x + radius * np.cos(angle),
                                                    copies.geometry.y + radius * np.sin(angle), crs=orders.crs))
    truth = pd.DataFrame({"order_id": copies["order_id"].astype(str) + "-D",
                          "original_id": copies["order_id"].astype(str).to_numpy()})
    copies["order_id"] = truth["order_id"].to_numpy()
    planted = pd.concat([orders, copies], ignore_index=True)
    return gpd.GeoDataFrame(planted, geometry=planted.geometry.name, crs=orders.crs), truth.reset_index(drop=True)
