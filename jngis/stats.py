"""Indicators per grid and their roll-up; service-station coverage and siting.

:func:`grid_stats` places stations, party organisations and 12345 work orders
in their grids (with one :class:`~jngis.assign.PolygonIndex`) and counts
them; :func:`rollup` sums a grid table to communities, 街道 or districts so
that every sum equals the sum of its grids exactly, and recomputes rates and
medians from their parts. :func:`coverage` measures how far each block is
from a community party-and-public service centre and a grid station, the
share of households within the 5/10/15-minute life circles (300/500/1000 m,
GB 50180-2018), and each community's service floor area against the norm of
30 m² per 100 households. :func:`suggest_sites` picks the candidate sites
that newly cover the most households (maximal covering, greedy with lazy
evaluation).

Work-order rules (as of ``at``)
-------------------------------
- an order counts only if it was received at or before ``at``;
- *open*: its status is not ``resolved`` / ``closed``, or it was resolved or
  closed after ``at`` (when ``resolved_at`` / ``closed_at`` are given);
- *overdue*: open and ``due_at < at``;
- *orders_30d*: received in the 30 days up to ``at`` (``at - 30 days < received_at <= at``);
- *median_days_to_resolve*: median of ``resolved_at - received_at`` in days
  over the orders resolved at or before ``at``;
- *satisfaction_rate*: ``satisfied_orders / rated_orders`` over the orders
  with a citizen evaluation (``satisfied`` not missing), NaN with none.

Datetimes are naive China Standard Time, as in the work-order layer; a
timezone-aware ``at`` is converted to Asia/Shanghai first. No column of a
work order other than these is read, so personal data never reaches a table.
"""

from __future__ import annotations

import datetime as dt
import heapq
import warnings
from typing import Any, NamedTuple, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from jngis.assign import PolygonIndex
from jngis.errors import (
    CRSError,
    InputTypeError,
    ParameterError,
    SchemaError,
    UnassignedPointsWarning,
)

__all__ = [
    "grid_stats",
    "rollup",
    "coverage",
    "suggest_sites",
    "Coverage",
    "LEVELS",
    "AREA_NORM_M2_PER_100_HOUSEHOLDS",
    "LIFE_CIRCLE_RADII",
]

#: Levels :func:`rollup` sums to, and the code column each uses.
LEVELS = {"community": "community_code", "street": "street_code", "district": "district_code"}
#: Digits of each level's code (a prefix of the 15-digit grid code).
_LEVEL_DIGITS = {"community_code": 12, "street_code": 9, "district_code": 6}
#: Service floor area norm: at least 30 m² per 100 households.
AREA_NORM_M2_PER_100_HOUSEHOLDS = 30.0
#: 5-, 10- and 15-minute community life circles (GB 50180-2018), metres.
LIFE_CIRCLE_RADII = (300, 500, 1000)
_FINISHED = ("resolved", "closed")
_STAFF_COLUMNS = ("grid_leaders", "full_time_workers", "part_time_workers",
                  "enforcement_officers")
#: Columns of a grid table that are sums (rollup adds them up).
_SUM_COLUMNS = (
    "grids", "households", "population", "stations", "station_area_m2", "party_orgs",
    "party_members", "orders", "open_orders", "overdue_orders", "orders_30d",
    "resolved_orders", "rated_orders", "satisfied_orders", *_STAFF_COLUMNS,
)
_DAYS_ATTR = "jngis.resolve_days"
_CST = "Asia/Shanghai"


# ----------------------------------------------------------------------------
# grid_stats / rollup
# ----------------------------------------------------------------------------


def grid_stats(
    grids: gpd.GeoDataFrame,
    *,
    stations: gpd.GeoDataFrame | None = None,
    party_orgs: gpd.GeoDataFrame | None = None,
    workorders: gpd.GeoDataFrame | None = None,
    units: gpd.GeoDataFrame | None = None,
    at: Any = None,
) -> pd.DataFrame:
    """Indicators per grid: households, facilities, party organisations, work orders.

    Every point layer is placed in the grids with one
    :class:`~jngis.assign.PolygonIndex` (exact; points in no grid are
    counted in an :class:`~jngis.errors.UnassignedPointsWarning` and left
    out of every grid's figures).

    Parameters
    ----------
    grids : geopandas.GeoDataFrame
        Grid polygons with ``grid_code`` (unique) and ``community_code``;
        ``households`` and ``population`` are used when present, as are the
        staffing columns (``grid_leaders``, ``full_time_workers``,
        ``part_time_workers``, ``enforcement_officers``) and ``grid_type``,
        which are passed through.
    stations, party_orgs, workorders : geopandas.GeoDataFrame, optional
        Point layers (schemas of :mod:`jngis.layers`); any CRS.
        ``party_orgs`` needs ``members``; ``stations`` may have ``area_m2``;
        ``workorders`` needs ``status``, ``received_at``, ``due_at`` and may
        have ``resolved_at``, ``closed_at``, ``satisfied``.
    units : geopandas.GeoDataFrame, optional
        Blocks with ``households`` (and ``population``), placed in grids by
        their representative point: supplies ``households`` /
        ``population`` where the grids have none.
    at : datetime-like, optional
        The moment the work-order figures are "as of" (naive China Standard
        Time, or timezone-aware). Default: now in China.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``grid_code`` in the grids' order, with ``community_code``,
        ``street_code``, ``district_code``, ``grids`` (1), ``households``,
        ``population`` (nullable Int64), ``stations``, ``station_area_m2``,
        ``party_orgs``, ``party_members``, ``orders``, ``open_orders``,
        ``overdue_orders``, ``orders_30d``, ``resolved_orders``,
        ``median_days_to_resolve``, ``rated_orders``, ``satisfied_orders``,
        ``satisfaction_rate`` and the passed-through columns. Layers not given
        give zeros (NaN for the median and rate).

    Raises
    ------
    InputTypeError
        If a layer is not a GeoDataFrame or `at` is not a datetime.
    SchemaError
        If a needed column is missing, a grid code is duplicated, or a
        work-order time column is not a datetime.
    CRSError, GeometryError
        From the point assignment (a layer without a CRS, invalid grids).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> grids = gpd.GeoDataFrame(
    ...     {"grid_code": ["370102001001001", "370102001001002"],
    ...      "community_code": ["370102001001"] * 2, "households": [400, 350]},
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)],
    ...     crs="EPSG:4548")
    >>> orgs = gpd.GeoDataFrame({"org_id": ["P1", "P2"], "members": [30, 12]},
    ...     geometry=gpd.points_from_xy([50, 60], [50, 50]), crs="EPSG:4548")
    >>> table = grid_stats(grids, party_orgs=orgs)
    >>> table[["households", "party_orgs", "party_members"]].to_dict("index")["370102001001001"]
    {'households': 400, 'party_orgs': 2, 'party_members': 42}
    """
    func = "grid_stats"
    _check_gdf(func, "grids", grids)
    _require_columns(func, "grids", grids, ("grid_code", "community_code"))
    codes = grids["grid_code"]
    if codes.isna().any() or codes.duplicated().any():
        bad = codes[codes.isna() | codes.duplicated(keep=False)]
        raise SchemaError(
            f"{func}: grids['grid_code'] has {len(bad)} missing or duplicated value(s) "
            f"(e.g. {list(bad.unique()[:3])}); expected one unique code per grid"
        )
    if grids["community_code"].isna().any():
        raise SchemaError(f"{func}: grids['community_code'] has missing values; expected a code in every row")
    layers = {"stations": stations, "party_orgs": party_orgs, "workorders": workorders,
              "units": units}
    for name, layer in layers.items():
        if layer is not None:
            _check_gdf(func, name, layer)
    if party_orgs is not None:
        _require_columns(func, "party_orgs", party_orgs, ("members",))
    if units is not None:
        _require_columns(func, "units", units, ("households",))
    # Counts are summed per grid: a string, a NaN or a negative would give a wrong sum or a crash.
    for name, layer, column, missing_ok, whole in (
            ("grids", grids, "households", False, True), ("grids", grids, "population", True, True),
            ("party_orgs", party_orgs, "members", False, True), ("units", units, "households", False, True),
            ("units", units, "population", True, True), ("stations", stations, "area_m2", True, False)):
        if layer is not None and column in layer.columns:
            _require_counts(func, name, layer, column, missing_ok=missing_ok, whole=whole)
    if workorders is not None:
        _require_columns(func, "workorders", workorders, ("status", "received_at", "due_at"))
    at_ts = _as_cst_timestamp(func, at)

    index = pd.Index(codes.astype(str).to_numpy(), name="grid_code")
    community = grids["community_code"].astype(str).to_numpy()
    table = pd.DataFrame(index=index)
    table["community_code"] = community
    table["street_code"] = [c[:9] for c in community]
    table["district_code"] = [c[:6] for c in community]
    table["grids"] = 1
    n = len(index)

    polygon_index = PolygonIndex(grids.assign(grid_code=index.to_numpy()), key="grid_code") \
        if n else None

    def positions(layer: gpd.GeoDataFrame, what: str) -> np.ndarray:
        """Grid position of each point of `layer` (-1 outside), warning once."""
        if polygon_index is None:
            return np.full(len(layer), -1, dtype=np.int64)
        where = polygon_index.positions(layer)
        outside = int((where < 0).sum())
        if outside:
            warnings.warn(
                f"{func}: {outside} of {len(layer)} {what} lie in no grid; they are left out "
                f"of the grid figures. {outside} 个{_WHAT_ZH.get(what, what)}不在任何网格内。",
                UnassignedPointsWarning, stacklevel=3,
            )
        return where

    def per_grid(where: np.ndarray, weights: Any = None) -> np.ndarray:
        inside = where >= 0
        w = None if weights is None else np.asarray(weights, dtype=np.float64)[inside]
        return np.bincount(where[inside], weights=w, minlength=n)

    # Households and population.
    unit_where = None
    if units is not None:
        reps = units.geometry.representative_point()
        unit_where = positions(gpd.GeoDataFrame(geometry=reps, crs=units.crs), "units")
    if "households" in grids.columns:
        table["households"] = grids["households"].to_numpy().astype(np.int64)
    elif unit_where is not None:
        table["households"] = per_grid(unit_where, units["households"]).astype(np.int64)
    else:
        table["households"] = pd.array([pd.NA] * n, dtype="Int64")
    if "population" in grids.columns:
        table["population"] = pd.array(grids["population"].to_numpy(), dtype="Int64")
    elif unit_where is not None and "population" in units.columns:
        table["population"] = pd.array(
            per_grid(unit_where, units["population"]).astype(np.int64), dtype="Int64")
    else:
        table["population"] = pd.array([pd.NA] * n, dtype="Int64")

    # Facilities and party organisations.
    if stations is not None:
        where = positions(stations, "stations")
        table["stations"] = per_grid(where).astype(np.int64)
        area = stations["area_m2"] if "area_m2" in stations.columns else np.zeros(len(stations))
        table["station_area_m2"] = per_grid(where, np.nan_to_num(np.asarray(area, float)))
    else:
        table["stations"] = 0
        table["station_area_m2"] = 0.0
    if party_orgs is not None:
        where = positions(party_orgs, "party_orgs")
        table["party_orgs"] = per_grid(where).astype(np.int64)
        table["party_members"] = per_grid(where, party_orgs["members"]).astype(np.int64)
    else:
        table["party_orgs"] = 0
        table["party_members"] = 0

    # Work orders.
    resolve_codes = np.empty(0, dtype=object)
    resolve_days = np.empty(0, dtype=np.float64)
    for column in ("orders", "open_orders", "overdue_orders", "orders_30d",
                   "resolved_orders", "rated_orders", "satisfied_orders"):
        table[column] = 0
    table["median_days_to_resolve"] = np.nan
    table["satisfaction_rate"] = np.nan
    if workorders is not None:
        figures = _order_figures(func, workorders, at_ts)
        where = positions(workorders, "workorders")
        counted = figures["received"] & (where >= 0)
        for column, mask in (
            ("orders", counted),
            ("open_orders", counted & figures["open"]),
            ("overdue_orders", counted & figures["overdue"]),
            ("orders_30d", counted & figures["recent"]),
            ("resolved_orders", counted & figures["resolved"]),
            ("rated_orders", counted & figures["rated"]),
            ("satisfied_orders", counted & figures["satisfied"]),
        ):
            table[column] = np.bincount(where[mask], minlength=n).astype(np.int64)
        done = counted & figures["resolved"]
        resolve_codes = index.to_numpy()[where[done]]
        resolve_days = figures["days"][done]
        table["median_days_to_resolve"] = _group_median(resolve_codes, resolve_days, index)
        with np.errstate(invalid="ignore", divide="ignore"):
            table["satisfaction_rate"] = (table["satisfied_orders"] / table["rated_orders"]
                                          ).where(table["rated_orders"] > 0)

    for column in (*_STAFF_COLUMNS, "grid_type"):
        if column in grids.columns:
            table[column] = grids[column].to_numpy()
    # The per-order durations let rollup recompute medians exactly.
    table.attrs[_DAYS_ATTR] = (resolve_codes, resolve_days)
    return table


_WHAT_ZH = {"stations": "服务站点", "party_orgs": "党组织", "workorders": "工单", "units": "楼栋"}


def rollup(table: pd.DataFrame, level: str = "community") -> pd.DataFrame:
    """Sum a :func:`grid_stats` table to communities, 街道 or districts.

    Count and area columns are summed, so each sum equals the sum of its
    grids exactly. ``satisfaction_rate`` is recomputed as
    ``satisfied_orders / rated_orders``; ``median_days_to_resolve`` is the
    median over the level's resolved orders, recomputed from the per-order
    durations that :func:`grid_stats` keeps in ``table.attrs`` (if a table
    has lost them, e.g. after a round trip through a file, it is the
    median of the grid medians weighted by resolved orders, and a
    :class:`~jngis.errors.JngisWarning` says so).

    Parameters
    ----------
    table : pandas.DataFrame
        A grid table from :func:`grid_stats` (it needs ``community_code``).
    level : {"community", "street", "district"}
        The level to sum to.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``community_code`` / ``street_code`` / ``district_code``
        (sorted), with the parent codes, ``grids`` (number of grids) and the
        summed and recomputed columns.

    Raises
    ------
    InputTypeError
        If `table` is not a DataFrame.
    ParameterError
        If `level` is not one of the levels.
    SchemaError
        If `table` lacks ``community_code``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> grids = gpd.GeoDataFrame(
    ...     {"grid_code": ["370102001001001", "370102001001002", "370102001002001"],
    ...      "community_code": ["370102001001", "370102001001", "370102001002"],
    ...      "households": [400, 350, 500]},
    ...     geometry=[shapely.box(i * 100, 0, i * 100 + 100, 100) for i in range(3)],
    ...     crs="EPSG:4548")
    >>> rollup(grid_stats(grids), "street")[["grids", "households"]].to_dict("index")
    {'370102001': {'grids': 3, 'households': 1250}}
    """
    func = "rollup"
    if not isinstance(table, pd.DataFrame):
        raise InputTypeError(
            f"{func}: table has type {type(table).__name__}; expected the pandas.DataFrame "
            "returned by grid_stats"
        )
    if not isinstance(level, str) or level not in LEVELS:
        raise ParameterError(f"{func}: level={level!r}; expected one of {list(LEVELS)}")
    if "community_code" not in table.columns:
        raise SchemaError(
            f"{func}: table has no 'community_code' column (columns: {list(table.columns)}); "
            "expected a grid table from jngis.grid_stats"
        )
    column = LEVELS[level]
    digits = _LEVEL_DIGITS[column]
    community = table["community_code"].astype(str)
    groups = community.str[:digits].to_numpy()
    sums = [c for c in _SUM_COLUMNS if c in table.columns]
    out = table[sums].groupby(groups, sort=True).sum(min_count=0)
    if "population" in out.columns and "population" in table.columns:
        # A level with any grid of unknown population has unknown population.
        unknown = table["population"].isna().groupby(groups, sort=True).any()
        out["population"] = out["population"].astype("Int64").mask(unknown)
    out.index.name = column
    parents = [p for p in ("street_code", "district_code") if _LEVEL_DIGITS[p] < digits]
    for parent in parents:
        out.insert(0, parent, [code[: _LEVEL_DIGITS[parent]] for code in out.index])
    if {"satisfied_orders", "rated_orders"} <= set(out.columns):
        with np.errstate(invalid="ignore", divide="ignore"):
            out["satisfaction_rate"] = (out["satisfied_orders"] / out["rated_orders"]
                                        ).where(out["rated_orders"] > 0)
    if "median_days_to_resolve" in table.columns:
        durations = table.attrs.get(_DAYS_ATTR)
        if durations is not None:
            codes, days = durations
            code_map = pd.Series(groups, index=table.index.astype(str))
            level_codes = code_map.reindex(pd.Index(codes, dtype=object)).to_numpy()
            out["median_days_to_resolve"] = _group_median(level_codes, days, out.index)
        else:
            from jngis.errors import JngisWarning

            warnings.warn(
                f"{func}: table.attrs has no per-order durations (was it read back from a "
                "file?); median_days_to_resolve is the median of the grid medians weighted "
                "by resolved orders, not the exact median",
                JngisWarning, stacklevel=2,
            )
            out["median_days_to_resolve"] = _weighted_median_by(
                groups, table["median_days_to_resolve"].to_numpy(float),
                table.get("resolved_orders", pd.Series(1, index=table.index)).to_numpy(float),
                out.index)
    return out


def _order_figures(func: str, orders: gpd.GeoDataFrame, at: pd.Timestamp) -> dict:
    """Per-order masks and durations as of `at` (see the module docstring)."""
    received = _datetime_column(func, orders, "received_at")
    due = _datetime_column(func, orders, "due_at")
    resolved_at = _datetime_column(func, orders, "resolved_at", required=False)
    closed_at = _datetime_column(func, orders, "closed_at", required=False)
    status = orders["status"].astype(str).to_numpy()
    finished_now = np.isin(status, _FINISHED)
    was_received = (received <= at).to_numpy()
    # Finished as of `at`: finished now, and not after `at` when the times say so.
    finish_time = resolved_at.fillna(closed_at) if resolved_at is not None else closed_at
    if finish_time is not None:
        finished = finished_now & ~(finish_time > at).to_numpy()
    else:
        finished = finished_now
    is_open = was_received & ~finished
    overdue = is_open & (due < at).to_numpy()
    recent = was_received & (received > at - pd.Timedelta(days=30)).to_numpy()
    if resolved_at is not None:
        resolved = (resolved_at <= at).to_numpy() & was_received
        days = ((resolved_at - received).dt.total_seconds() / 86400.0).to_numpy(float)
    else:
        resolved = np.zeros(len(orders), dtype=bool)
        days = np.full(len(orders), np.nan)
    if "satisfied" in orders.columns:
        satisfied = orders["satisfied"]
        rated = satisfied.notna().to_numpy() & finished
        happy = rated & satisfied.fillna(False).astype(bool).to_numpy()
    else:
        rated = happy = np.zeros(len(orders), dtype=bool)
    return {"received": was_received, "open": is_open, "overdue": overdue, "recent": recent,
            "resolved": resolved, "days": days, "rated": rated, "satisfied": happy}


def _datetime_column(func: str, frame: pd.DataFrame, column: str, *, required: bool = True
                     ) -> pd.Series | None:
    if column not in frame.columns:
        if required:
            raise SchemaError(f"{func}: workorders has no {column!r} column")
        return None
    values = frame[column]
    if not pd.api.types.is_datetime64_any_dtype(values.dtype):
        if values.isna().all():
            return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
        raise SchemaError(
            f"{func}: workorders[{column!r}] has dtype {values.dtype}; expected datetimes "
            "(naive China Standard Time), e.g. pd.to_datetime(...)"
        )
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert(_CST).dt.tz_localize(None)
    return values.astype("datetime64[ns]")


def _as_cst_timestamp(func: str, at: Any) -> pd.Timestamp:
    if at is None:
        return pd.Timestamp.now(tz=_CST).tz_localize(None)
    if isinstance(at, bool) or not isinstance(at, (str, dt.datetime, dt.date, np.datetime64,
                                                   pd.Timestamp)):
        raise InputTypeError(
            f"{func}: at={at!r} has type {type(at).__name__}; expected a datetime, a "
            "pandas.Timestamp or an ISO string (China Standard Time)"
        )
    try:
        stamp = pd.Timestamp(at)
    except (TypeError, ValueError):
        raise ParameterError(
            f"{func}: at={at!r} is not a date/time; expected e.g. '2026-10-31 18:00'"
        ) from None
    if stamp is pd.NaT:
        raise ParameterError(f"{func}: at={at!r} is not a date/time; expected a real moment")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(_CST).tz_localize(None)
    return stamp.as_unit("ns")


def _group_median(codes: np.ndarray, values: np.ndarray, index: pd.Index) -> np.ndarray:
    if len(codes) == 0:
        return np.full(len(index), np.nan)
    medians = pd.Series(values).groupby(pd.Index(codes, dtype=object)).median()
    return medians.reindex(index.astype(object)).to_numpy(dtype=float)


def _weighted_median_by(groups: np.ndarray, values: np.ndarray, weights: np.ndarray,
                        index: pd.Index) -> np.ndarray:
    out = pd.Series(np.nan, index=index)
    frame = pd.DataFrame({"g": groups, "v": values, "w": weights}).dropna()
    frame = frame[frame["w"] > 0]
    for code, part in frame.groupby("g"):
        part = part.sort_values("v")
        cumulative = part["w"].cumsum().to_numpy()
        out[code] = part["v"].to_numpy()[np.searchsorted(cumulative, cumulative[-1] / 2.0)]
    return out.to_numpy(dtype=float)


# ----------------------------------------------------------------------------
# coverage / suggest_sites
# ----------------------------------------------------------------------------


class Coverage(NamedTuple):
    """Result of :func:`coverage`.

    Attributes
    ----------
    units : pandas.DataFrame
        Per unit (indexed by ``unit_id``): ``community_code``, ``households``,
        ``to_community_centre_m`` and ``to_grid_station_m`` (distance from the
        unit's representative point to the nearest station of that level, NaN
        if there is none), ``to_station_m`` (the nearer of the two) and
        ``within_<r>m`` (bool) for each radius.
    communities : pandas.DataFrame
        Per community: ``households``, ``share_within_<r>m`` (households
        within r of a station / households), ``service_area_m2`` (floor area
        of the stations in the community), ``required_area_m2``
        (30 m² per 100 households), ``area_ratio`` and ``meets_area_norm``.
    """

    units: pd.DataFrame
    communities: pd.DataFrame


def coverage(
    units: gpd.GeoDataFrame,
    stations: gpd.GeoDataFrame,
    *,
    radii: Sequence[float] = LIFE_CIRCLE_RADII,
    communities: gpd.GeoDataFrame | None = None,
) -> Coverage:
    """Distance to service stations, life-circle shares and floor-area norm.

    Distances are straight lines in metres, measured in the Gauss-Kruger
    zone of the units (:func:`jngis.crs.to_metric`) from each unit's
    representative point (a point inside it). Stations of level
    ``"community"`` are the community party-and-public service centres, of
    level ``"grid"`` the grid (compound) stations; a unit is within a radius
    when a station of either level is.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Blocks with ``unit_id``, ``households`` and ``community_code``.
    stations : geopandas.GeoDataFrame
        Points with ``level`` ("community" / "grid") and ``area_m2``; any CRS.
    radii : sequence of float, default (300, 500, 1000)
        Radii in metres (5-, 10- and 15-minute life circles, GB 50180-2018).
    communities : geopandas.GeoDataFrame, optional
        Community polygons (``community_code``) to place stations in for the
        floor-area norm. Default: a station belongs to the community of the
        nearest unit (the unit containing it, if any).

    Returns
    -------
    Coverage
        ``(units, communities)`` tables, see :class:`Coverage`.

    Raises
    ------
    InputTypeError
        If a layer is not a GeoDataFrame or `radii` is not a sequence.
    SchemaError
        If a needed column is missing.
    ParameterError
        If a radius is not a finite positive number, or households < 0.
    CRSError
        If a layer has no CRS.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> units = gpd.GeoDataFrame(
    ...     {"unit_id": ["U1", "U2"], "households": [100, 300],
    ...      "community_code": ["370102001001"] * 2},
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(900, 0, 1000, 100)],
    ...     crs="EPSG:4548")
    >>> stations = gpd.GeoDataFrame({"level": ["community"], "area_m2": [150.0]},
    ...     geometry=gpd.points_from_xy([50], [50]), crs="EPSG:4548")
    >>> result = coverage(units, stations, radii=(300, 1000))
    >>> result.communities[["share_within_300m", "share_within_1000m", "area_ratio"]].iloc[0].tolist()
    [0.25, 1.0, 1.25]
    """
    func = "coverage"
    metric_units, metric_stations, households = _coverage_inputs(func, units, stations)
    _require_columns(func, "units", units, ("unit_id", "community_code"))
    _require_columns(func, "stations", stations, ("level",))
    radii_arr = _check_radii(func, radii)
    demand = _representative_xy(metric_units)
    station_xy = shapely.get_coordinates(metric_stations.geometry.values)
    level = stations["level"].astype(str).to_numpy()

    table = pd.DataFrame(
        {"community_code": units["community_code"].astype(str).to_numpy(),
         "households": households},
        index=pd.Index(units["unit_id"].to_numpy(), name="unit_id"),
    )
    for name, which in (("to_community_centre_m", level == "community"),
                        ("to_grid_station_m", level == "grid")):
        table[name] = _nearest_distance(demand, station_xy[which])
    table["to_station_m"] = np.fmin(table["to_community_centre_m"], table["to_grid_station_m"])
    for radius in radii_arr:
        table[f"within_{_radius_label(radius)}m"] = (table["to_station_m"] <= radius).to_numpy()

    by_community = table.groupby("community_code", sort=True)
    out = pd.DataFrame({"households": by_community["households"].sum()})
    for radius in radii_arr:
        label = _radius_label(radius)
        covered = (table["households"] * table[f"within_{label}m"]).groupby(
            table["community_code"]).sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"share_within_{label}m"] = (covered / out["households"]).where(
                out["households"] > 0)
    # Floor area of the stations in each community.
    station_community = _station_communities(func, metric_stations, metric_units, units,
                                             communities)
    area = (stations["area_m2"].to_numpy(float) if "area_m2" in stations.columns
            else np.zeros(len(stations)))
    area_by = pd.Series(np.nan_to_num(area)).groupby(station_community).sum()
    out["service_area_m2"] = area_by.reindex(out.index, fill_value=0.0).to_numpy()
    out["required_area_m2"] = out["households"] * AREA_NORM_M2_PER_100_HOUSEHOLDS / 100.0
    with np.errstate(invalid="ignore", divide="ignore"):
        out["area_ratio"] = (out["service_area_m2"] / out["required_area_m2"]).where(
            out["required_area_m2"] > 0)
    out["meets_area_norm"] = out["service_area_m2"] >= out["required_area_m2"]
    return Coverage(units=table, communities=out)


def suggest_sites(
    units: gpd.GeoDataFrame,
    stations: gpd.GeoDataFrame | None,
    candidates: gpd.GeoDataFrame,
    k: int,
    *,
    radius: float = 500.0,
) -> gpd.GeoDataFrame:
    """The `k` candidate sites that newly cover the most households (maximal covering).

    Households already within `radius` of an existing station count as
    covered; each pick is the candidate covering the most households not yet
    covered (greedy, with lazy re-evaluation of the gains (CELF), which gives
    the same picks as plain greedy and at least 63 % of the optimum; in the
    benchmark it matches spopt's MCLP optimum). Ties go to the earlier
    candidate; candidates that would add nothing are not picked, so fewer
    than `k` rows may come back.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Blocks with ``households`` (demand at their representative points).
    stations : geopandas.GeoDataFrame or None
        Existing stations (points; any CRS), or None for none.
    candidates : geopandas.GeoDataFrame
        Candidate sites (points; any CRS).
    k : int
        Number of sites to pick (>= 1).
    radius : float, default 500
        Coverage radius in metres (10-minute life circle).

    Returns
    -------
    geopandas.GeoDataFrame
        The picked rows of `candidates` (in pick order, their own index and
        columns) with ``rank`` (1..), ``new_households`` (newly covered by this
        pick), ``covered_households`` (cumulative, incl. existing stations)
        and ``covered_share``.

    Raises
    ------
    InputTypeError
        If a layer is not a GeoDataFrame, or `k` / `radius` has the wrong type.
    SchemaError
        If `units` has no ``households``.
    ParameterError
        If `k` < 1 or `radius` is not a finite positive number.
    CRSError
        If a layer has no CRS.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> units = gpd.GeoDataFrame({"households": [100, 300, 200]},
    ...     geometry=[shapely.box(x, 0, x + 10, 10) for x in (0, 1000, 2000)], crs="EPSG:4548")
    >>> sites = gpd.GeoDataFrame({"site": ["A", "B", "C"]},
    ...     geometry=gpd.points_from_xy([5, 1005, 2005], [5, 5, 5]), crs="EPSG:4548")
    >>> suggest_sites(units, None, sites, 2, radius=100)[["site", "new_households"]].values.tolist()
    [['B', 300], ['C', 200]]
    """
    func = "suggest_sites"
    metric_units, _, households = _coverage_inputs(func, units, stations, allow_none=True)
    _check_gdf(func, "candidates", candidates)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InputTypeError(f"{func}: k={k!r} has type {type(k).__name__}; expected an int")
    if k < 1:
        raise ParameterError(f"{func}: k={k!r}; expected an int >= 1")
    if isinstance(radius, bool) or not isinstance(radius, (int, float, np.integer, np.floating)):
        raise InputTypeError(
            f"{func}: radius={radius!r} has type {type(radius).__name__}; expected a number "
            "of metres"
        )
    radius = float(_check_radii(func, [radius], name="radius")[0])
    target = metric_units.crs
    demand = _representative_xy(metric_units)
    site_xy = _points_xy(func, "candidates", candidates, target)
    covered = np.zeros(len(demand), dtype=bool)
    if stations is not None and len(stations):
        existing = _points_xy(func, "stations", stations, target)
        covered = np.isfinite(_nearest_distance(demand, existing)) & (
            _nearest_distance(demand, existing) <= radius)
    picks, gains = _greedy_max_cover(demand, households, site_xy, radius, covered, int(k))
    total = float(households.sum())
    already = int(households[covered].sum())
    result = candidates.iloc[picks].copy()
    result["rank"] = np.arange(1, len(picks) + 1)
    result["new_households"] = np.asarray(gains, dtype=np.int64)
    result["covered_households"] = already + np.cumsum(result["new_households"].to_numpy())
    result["covered_share"] = result["covered_households"] / total if total else np.nan
    return result


def _greedy_max_cover(
    demand: np.ndarray, weights: np.ndarray, sites: np.ndarray, radius: float,
    covered: np.ndarray, k: int,
) -> tuple[list[int], list[int]]:
    """Greedy maximal covering with lazy gains; returns picks and their gains."""
    if len(sites) == 0 or len(demand) == 0:
        return [], []
    tree = cKDTree(demand)
    reach = tree.query_ball_point(sites, r=radius)
    covered = covered.copy()
    weights = np.asarray(weights, dtype=np.int64)

    def gain(site: int) -> int:
        members = np.asarray(reach[site], dtype=np.int64)
        return int(weights[members[~covered[members]]].sum()) if members.size else 0

    # Max-heap of (-gain, site): a popped gain is an upper bound (gains only
    # shrink as more is covered), so a fresh gain still on top is the best.
    heap = [(-gain(site), site) for site in range(len(sites))]
    heapq.heapify(heap)
    picks: list[int] = []
    gains: list[int] = []
    while heap and len(picks) < k:
        negative, site = heapq.heappop(heap)
        fresh = gain(site)
        if fresh <= 0:
            continue
        if heap and fresh < -heap[0][0] or (heap and fresh == -heap[0][0] and heap[0][1] < site):
            heapq.heappush(heap, (-fresh, site))
            continue
        picks.append(site)
        gains.append(fresh)
        members = np.asarray(reach[site], dtype=np.int64)
        covered[members] = True
    return picks, gains


def _coverage_inputs(func: str, units: Any, stations: Any, *, allow_none: bool = False
                     ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None, np.ndarray]:
    from jngis.crs import to_metric

    _check_gdf(func, "units", units)
    if stations is None and allow_none:
        metric_stations = None
    else:
        _check_gdf(func, "stations", stations)
    _require_columns(func, "units", units, ("households",))
    for name, layer in (("units", units), ("stations", stations)):
        if layer is not None and layer.crs is None:
            raise CRSError(
                f"{func}: {name}.crs is None; expected a CRS (e.g. {name}.set_crs('EPSG:4548'))"
            )
    households = pd.to_numeric(units["households"], errors="coerce").to_numpy(float)
    if np.isnan(households).any() or (households < 0).any():
        bad = np.flatnonzero(np.isnan(households) | (households < 0))
        raise ParameterError(
            f"{func}: units['households'] has {bad.size} missing or negative value(s) "
            f"(first at row {units.index[bad[0]]!r}: {units['households'].iloc[bad[0]]!r}); "
            "expected counts >= 0"
        )
    metric_units = to_metric(units)
    if stations is not None:
        metric_stations = stations.to_crs(metric_units.crs)
        kinds = set(metric_stations.geom_type.dropna())
        if kinds - {"Point"}:
            from jngis.errors import GeometryError

            raise GeometryError(
                f"{func}: stations has geometry types {sorted(kinds)}; expected Points"
            )
    return metric_units, metric_stations, households.astype(np.int64)


def _station_communities(func: str, metric_stations: gpd.GeoDataFrame,
                         metric_units: gpd.GeoDataFrame, units: gpd.GeoDataFrame,
                         communities: gpd.GeoDataFrame | None) -> np.ndarray:
    if len(metric_stations) == 0:
        return np.empty(0, dtype=object)
    if communities is not None:
        _check_gdf(func, "communities", communities)
        _require_columns(func, "communities", communities, ("community_code",))
        index = PolygonIndex(communities, key="community_code")
        where = index.positions(metric_stations)
        out = np.full(len(where), None, dtype=object)
        out[where >= 0] = index.keys[where[where >= 0]]
        return out
    tree = shapely.STRtree(np.asarray(metric_units.geometry.values))
    station_idx, unit_idx = tree.query_nearest(metric_stations.geometry.values, all_matches=False)
    out = np.full(len(metric_stations), None, dtype=object)
    out[station_idx] = units["community_code"].astype(str).to_numpy()[unit_idx]
    return out


def _representative_xy(gdf: gpd.GeoDataFrame) -> np.ndarray:
    geoms = np.asarray(gdf.geometry.values)
    points = shapely.point_on_surface(geoms)
    return shapely.get_coordinates(points)


def _points_xy(func: str, name: str, layer: gpd.GeoDataFrame, crs: Any) -> np.ndarray:
    if layer.crs is None:
        raise CRSError(
            f"{func}: {name}.crs is None; expected a CRS (e.g. {name}.set_crs('EPSG:4548'))"
        )
    geoms = np.asarray(layer.to_crs(crs).geometry.values)
    if len(geoms) and (shapely.get_type_id(geoms) != 0).any():
        from jngis.errors import GeometryError

        raise GeometryError(f"{func}: {name} has non-Point geometries; expected Points")
    return shapely.get_coordinates(geoms)


def _nearest_distance(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    if len(targets) == 0:
        return np.full(len(points), np.nan)
    if len(points) == 0:
        return np.empty(0)
    distance, _ = cKDTree(targets).query(points, k=1)
    return np.asarray(distance, dtype=float)


def _check_radii(func: str, radii: Any, *, name: str = "radii") -> np.ndarray:
    if isinstance(radii, (str, bytes)) or not hasattr(radii, "__len__"):
        raise InputTypeError(
            f"{func}: {name}={radii!r} has type {type(radii).__name__}; expected a "
            "sequence of numbers (metres), e.g. (300, 500, 1000)"
        )
    try:
        arr = np.asarray(radii, dtype=float)
    except (TypeError, ValueError):
        raise InputTypeError(
            f"{func}: {name}={radii!r} is not numeric; expected number(s) of metres"
        ) from None
    if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all() or (arr <= 0).any():
        raise ParameterError(
            f"{func}: {name}={radii!r}; expected finite positive distance(s) in metres"
        )
    return arr


def _radius_label(radius: float) -> str:
    return str(int(radius)) if float(radius).is_integer() else f"{radius:g}"


def _check_gdf(func: str, name: str, layer: Any) -> None:
    if not isinstance(layer, gpd.GeoDataFrame):
        raise InputTypeError(
            f"{func}: {name} has type {type(layer).__name__}; expected a geopandas.GeoDataFrame"
        )


def _require_counts(func: str, name: str, layer: pd.DataFrame, column: str, *, missing_ok: bool,
                    whole: bool) -> None:
    """Refuse a column that is not made of finite numbers >= 0 (whole ones when ``whole``)."""
    raw = layer[column]
    present = raw.notna().to_numpy()
    numbers = pd.to_numeric(raw, errors="coerce").astype("float64").to_numpy()
    with np.errstate(invalid="ignore"):
        bad = present & (~np.isfinite(numbers) | (numbers < 0))
        if whole:
            bad |= present & np.isfinite(numbers) & (numbers != np.floor(numbers))
    if not missing_ok:
        bad |= ~present
    if bad.any():
        examples = raw[bad].head(3).tolist()
        raise SchemaError(
            f"{func}: {name}['{column}'] has {int(bad.sum())} value(s) that are not "
            f"{'whole ' if whole else ''}numbers >= 0 (e.g. {examples}); expected "
            f"{'counts' if whole else 'areas'} >= 0{'' if missing_ok else ' in every row'}"
        )


def _require_columns(func: str, name: str, layer: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in layer.columns]
    if missing:
        raise SchemaError(
            f"{func}: {name} has no column(s) {missing}; expected {list(columns)} "
            f"(columns present: {[c for c in layer.columns if c != 'geometry']})"
        )
