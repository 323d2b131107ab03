"""Indicators per grid: households, facilities, party organisations, work orders (:func:`grid_stats`)."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import geopandas as gpd
import numpy as np
import pandas as pd

from jngis import _checks
from jngis.assign import PolygonIndex
from jngis.codes import CST, FINISHED_STATES, LEVEL_LABELS, STAFF_COLUMNS, parent, to_cst_naive
from jngis.errors import ParameterError, SchemaError, UnassignedPointsWarning

__all__ = ["grid_stats"]

#: The work-order columns of a grid table, in their order.
ORDER_COUNT_COLUMNS = ("orders", "open_orders", "overdue_orders", "orders_30d",
                       "resolved_orders", "rated_orders", "satisfied_orders")
#: Where grid_stats keeps the per-order durations in ``table.attrs`` (for rollup's exact medians).
DAYS_ATTR = "jngis.resolve_days"
_GDF = "a geopandas.GeoDataFrame"
# Columns summed per grid, checked before summing: (layer, column, blanks allowed, whole numbers).
_COUNTED = (("grids", "households", False, True), ("grids", "population", True, True),
            ("party_orgs", "members", False, True), ("units", "households", False, True),
            ("units", "population", True, True), ("stations", "area_m2", True, False))


class ResolveDurations(NamedTuple):
    """Each resolved order's grid code and days to resolve, kept in a grid table's ``attrs``.

    pandas deep-copies ``attrs`` on every selection of a table; the arrays are
    read-only, so a copy shares them (100,000 codes copied on each ``table[...]``
    made a roll-up of the sample city take seconds).
    """

    codes: np.ndarray
    days: np.ndarray

    @classmethod
    def frozen(cls, codes: np.ndarray, days: np.ndarray) -> ResolveDurations:
        for array in (codes, days):
            array.setflags(write=False)
        return cls(codes, days)

    def __deepcopy__(self, memo: dict) -> ResolveDurations:
        return self


def grid_stats(grids: gpd.GeoDataFrame, *, stations: gpd.GeoDataFrame | None = None,
               party_orgs: gpd.GeoDataFrame | None = None, workorders: gpd.GeoDataFrame | None = None,
               units: gpd.GeoDataFrame | None = None, at: Any = None) -> pd.DataFrame:
    """Indicators per grid: households, facilities, party organisations, work orders.

    Every point layer is placed in the grids with one :class:`~jngis.assign.PolygonIndex`
    (exact; points in no grid are counted in an :class:`~jngis.errors.UnassignedPointsWarning`
    and left out of every grid's figures).

    Parameters
    ----------
    grids : geopandas.GeoDataFrame
        Grid polygons with ``grid_code`` (unique) and ``community_code``; ``households``,
        ``population``, the staffing columns (``grid_leaders``, ``full_time_workers``,
        ``part_time_workers``, ``enforcement_officers``) and ``grid_type`` are passed through.
    stations, party_orgs, workorders : geopandas.GeoDataFrame, optional
        Point layers (schemas of :mod:`jngis.layers`); any CRS. ``party_orgs`` needs
        ``members``; ``stations`` may have ``area_m2``; ``workorders`` needs ``status``,
        ``received_at``, ``due_at`` and may have ``resolved_at``, ``closed_at``, ``satisfied``.
    units : geopandas.GeoDataFrame, optional
        Blocks with ``households`` (and ``population``), placed in grids by their
        representative point: supplies ``households`` / ``population`` where the grids have none.
    at : datetime-like, optional
        The moment the work-order figures are "as of" (naive China Standard Time, or
        timezone-aware). Default: now in China.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``grid_code`` in the grids' order, with ``community_code``, ``street_code``,
        ``district_code``, ``grids`` (1), ``households``, ``population`` (nullable Int64),
        ``stations``, ``station_area_m2``, ``party_orgs``, ``party_members``, ``orders``,
        ``open_orders``, ``overdue_orders``, ``orders_30d``, ``resolved_orders``,
        ``rated_orders``, ``satisfied_orders``, ``median_days_to_resolve``,
        ``satisfaction_rate`` and the passed-through columns. Layers not given give zeros
        (NaN for the median and rate).

    Raises
    ------
    InputTypeError
        A layer is not a GeoDataFrame, or `at` not a datetime.
    SchemaError
        A needed column is missing, a grid code duplicated, a community code too short for
        its 街道 and district, a work-order time column not a datetime.
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
    layers = {"grids": grids, "stations": stations, "party_orgs": party_orgs, "workorders": workorders,
              "units": units}
    _check_layers(func, layers)
    at_ts = as_cst_timestamp(func, at)
    index = pd.Index(grids["grid_code"].astype(str).to_numpy(), name="grid_code")
    placer = GridPlacer(func, grids, index)
    static = static_columns(func, grids, stations, party_orgs, units, placer)
    return assemble(static, *_order_columns(func, workorders, at_ts, placer), placer)


def static_columns(func: str, grids: gpd.GeoDataFrame, stations: gpd.GeoDataFrame | None,
                   party_orgs: gpd.GeoDataFrame | None, units: gpd.GeoDataFrame | None,
                   placer: GridPlacer) -> dict[str, Any]:
    """The columns of a grid table that do not depend on the orders, in the table's order.

    The codes, households and facilities first, the staffing columns last
    (:func:`assemble` puts the order columns between them).
    """
    columns = {**_code_columns(func, grids), "grids": 1,
               **_household_columns(grids, units, placer),
               **_facility_columns(stations, party_orgs, placer)}
    columns.update({c: grids[c].to_numpy() for c in (*STAFF_COLUMNS, "grid_type") if c in grids.columns})
    return columns


def assemble(static: dict[str, Any], order_columns: dict[str, Any], durations: ResolveDurations,
             placer: GridPlacer) -> pd.DataFrame:
    """The grid table: the static columns with the order columns after the facilities."""
    passed = [c for c in (*STAFF_COLUMNS, "grid_type") if c in static]
    columns = {c: v for c, v in static.items() if c not in passed}
    columns.update(order_columns)
    columns.update({c: static[c] for c in passed})
    table = pd.DataFrame(columns, index=placer.codes)
    # The per-order durations let rollup recompute medians exactly.
    table.attrs[DAYS_ATTR] = durations
    return table


# --------------------------------------------------------------------------- checks


def _check_layers(func: str, layers: dict[str, gpd.GeoDataFrame | None]) -> None:
    """Refuse what would give a wrong figure: wrong types, missing columns, bad codes and counts."""
    grids = _checks.instance(func, "grids", layers["grids"], gpd.GeoDataFrame, _GDF, show_value=False)
    require_columns(func, "grids", grids, ("grid_code", "community_code"))
    codes = grids["grid_code"]
    if codes.isna().any() or codes.duplicated().any():
        bad = codes[codes.isna() | codes.duplicated(keep=False)]
        raise SchemaError(
            f"{func}: grids['grid_code'] has {len(bad)} missing or duplicated value(s) "
            f"(e.g. {list(bad.unique()[:3])}); expected one unique code per grid"
        )
    if grids["community_code"].isna().any():
        raise SchemaError(f"{func}: grids['community_code'] has missing values; expected a code in every row")
    for name in ("stations", "party_orgs", "workorders", "units"):
        if layers[name] is not None:
            _checks.instance(func, name, layers[name], gpd.GeoDataFrame, _GDF, show_value=False)
    for name, required in (("party_orgs", ("members",)), ("units", ("households",))):
        if layers[name] is not None:
            require_columns(func, name, layers[name], required)
    for name, column, missing_ok, whole in _COUNTED:
        layer = layers[name]
        if layer is not None and column in layer.columns:
            _checks.counts(func, name, layer, column, missing_ok=missing_ok, whole=whole)
    if layers["workorders"] is not None:
        require_columns(func, "workorders", layers["workorders"], ("status", "received_at", "due_at"))


def require_columns(func: str, name: str, frame: pd.DataFrame, required: Sequence[str]) -> pd.DataFrame:
    """``frame`` holding every column of ``required``.

    Like :func:`jngis._checks.columns`, in the words the indicator functions have always used
    ("has no column(s)"; their callers' tests pin them, as other modules' tests pin "lacks").
    """
    missing = [c for c in required if c not in frame.columns]
    if missing:
        present = [c for c in frame.columns if c != "geometry"]
        raise SchemaError(f"{func}: {name} has no column(s) {missing}; expected {list(required)} "
                          f"(columns present: {present})")
    return frame


def as_cst_timestamp(func: str, at: Any) -> pd.Timestamp:
    """``at`` (default now) as a naive China-Standard-Time Timestamp in nanoseconds."""
    if at is None:
        return to_cst_naive(pd.Timestamp.now(tz=CST))
    _checks.instance(func, "at", at, (str, dt.datetime, dt.date, np.datetime64, pd.Timestamp),
                     "a datetime, a pandas.Timestamp or an ISO string (China Standard Time)")
    try:
        stamp = pd.Timestamp(at)
    except (TypeError, ValueError):
        raise ParameterError(
            f"{func}: at={at!r} is not a date/time; expected e.g. '2026-10-31 18:00'"
        ) from None
    if stamp is pd.NaT:
        raise ParameterError(f"{func}: at={at!r} is not a date/time; expected a real moment")
    return to_cst_naive(stamp).as_unit("ns")


def parent_codes(func: str, name: str, codes: np.ndarray, level: str) -> np.ndarray:
    """:func:`jngis.codes.parent` of an array of codes, refusing a code too short for ``level``
    as a SchemaError naming ``name``."""
    # 18,900 grids have some 850 distinct communities: derive each parent once
    positions, distinct = pd.factorize(codes, use_na_sentinel=False)
    try:
        parents = parent(np.asarray(distinct, dtype=object), level)
    except ParameterError as exc:
        raise SchemaError(f"{func}: {name} holds a {exc}; expected community codes (12 digits)") from None
    return parents[positions]


# --------------------------------------------------------------------------- columns


class GridPlacer:
    """Places point layers in the grids (with one PolygonIndex) and sums them per grid."""

    def __init__(self, func: str, grids: gpd.GeoDataFrame, index: pd.Index) -> None:
        self.func = func
        self.codes = index
        self.n = len(index)
        self.index = PolygonIndex(grids.assign(grid_code=index.to_numpy()), key="grid_code") if self.n else None

    def positions(self, layer: gpd.GeoDataFrame, what: str) -> np.ndarray:
        """Grid position of each point of `layer` (-1 outside), warning once."""
        if self.index is None:
            return np.full(len(layer), -1, dtype=np.int64)
        where = self.index.positions(layer)
        outside = int((where < 0).sum())
        if outside:
            warnings.warn(
                f"{self.func}: {outside} of {len(layer)} {what} lie in no grid; they are left out "
                f"of the grid figures. {outside} 个{LEVEL_LABELS.get(what, what)}不在任何网格内。",
                UnassignedPointsWarning, stacklevel=4,  # the caller of grid_stats
            )
        return where

    def per_grid(self, where: np.ndarray, weights: Any = None) -> np.ndarray:
        inside = where >= 0
        w = None if weights is None else np.asarray(weights, dtype=np.float64)[inside]
        return np.bincount(where[inside], weights=w, minlength=self.n)


def _code_columns(func: str, grids: gpd.GeoDataFrame) -> dict[str, np.ndarray]:
    community = grids["community_code"].astype(str).to_numpy(object)
    name = "grids['community_code']"
    return {"community_code": community, "street_code": parent_codes(func, name, community, "street"),
            "district_code": parent_codes(func, name, community, "district")}


def _household_columns(grids: gpd.GeoDataFrame, units: gpd.GeoDataFrame | None,
                       placer: GridPlacer) -> dict[str, Any]:
    """Households and population: the grids' own, else summed from the units inside them."""
    unknown = pd.array([pd.NA] * placer.n, dtype="Int64")
    columns: dict[str, Any] = {"households": unknown, "population": unknown}
    if units is not None:
        reps = units.geometry.representative_point()
        unit_where = placer.positions(gpd.GeoDataFrame(geometry=reps, crs=units.crs), "units")
        columns["households"] = placer.per_grid(unit_where, units["households"]).astype(np.int64)
        if "population" in units.columns:
            summed = placer.per_grid(unit_where, units["population"]).astype(np.int64)
            columns["population"] = pd.array(summed, dtype="Int64")
    if "households" in grids.columns:
        columns["households"] = grids["households"].to_numpy().astype(np.int64)
    if "population" in grids.columns:
        columns["population"] = pd.array(grids["population"].to_numpy(), dtype="Int64")
    return columns


def _facility_columns(stations: gpd.GeoDataFrame | None, party_orgs: gpd.GeoDataFrame | None,
                      placer: GridPlacer) -> dict[str, Any]:
    """Service stations (and their floor area), party organisations (and their members)."""
    columns: dict[str, Any] = {"stations": 0, "station_area_m2": 0.0, "party_orgs": 0, "party_members": 0}
    if stations is not None:
        where = placer.positions(stations, "stations")
        area = stations["area_m2"] if "area_m2" in stations.columns else np.zeros(len(stations))
        columns["stations"] = placer.per_grid(where).astype(np.int64)
        columns["station_area_m2"] = placer.per_grid(where, np.nan_to_num(np.asarray(area, float)))
    if party_orgs is not None:
        where = placer.positions(party_orgs, "party_orgs")
        columns["party_orgs"] = placer.per_grid(where).astype(np.int64)
        columns["party_members"] = placer.per_grid(where, party_orgs["members"]).astype(np.int64)
    return columns


def _order_columns(func: str, workorders: gpd.GeoDataFrame | None, at: pd.Timestamp,
                   placer: GridPlacer) -> tuple[dict[str, Any], ResolveDurations]:
    """The work-order counts, median days to resolve and satisfaction rate as of ``at``."""
    columns: dict[str, Any] = {c: 0 for c in ORDER_COUNT_COLUMNS}
    columns.update(median_days_to_resolve=np.nan, satisfaction_rate=np.nan)
    if workorders is None:
        return columns, ResolveDurations.frozen(np.empty(0, dtype=object), np.empty(0, dtype=np.float64))
    return placed_order_columns(func, workorders, placer.positions(workorders, "workorders"), at, placer)


def placed_order_columns(func: str, workorders: pd.DataFrame, where: np.ndarray, at: pd.Timestamp,
                         placer: GridPlacer, times: OrderTimes | None = None
                         ) -> tuple[dict[str, Any], ResolveDurations]:
    """:func:`_order_columns` of orders already placed: ``where`` is each order's grid position (-1: none).

    ``times``: :func:`order_times` of ``workorders``, when the caller keeps them (a tally).
    """
    columns: dict[str, Any] = {}
    figures = _figures_at(order_times(func, workorders) if times is None else times, at)
    counted = figures.received & (where >= 0)
    masks = (counted, counted & figures.open, counted & figures.overdue, counted & figures.recent,
             counted & figures.resolved, counted & figures.rated, counted & figures.satisfied)
    for column, mask in zip(ORDER_COUNT_COLUMNS, masks):
        columns[column] = np.bincount(where[mask], minlength=placer.n).astype(np.int64)
    done = counted & figures.resolved
    durations = ResolveDurations.frozen(placer.codes.to_numpy()[where[done]], figures.days[done])
    columns["median_days_to_resolve"] = _median_by_position(where[done], durations.days, placer.n)
    rated, satisfied = columns["rated_orders"], columns["satisfied_orders"]
    with np.errstate(invalid="ignore", divide="ignore"):
        columns["satisfaction_rate"] = np.where(rated > 0, satisfied / rated, np.nan)
    return columns, durations


class _OrderFigures(NamedTuple):
    """Per order, as of ``at`` (see :mod:`jngis.stats`): masks and days to resolve."""

    received: np.ndarray
    open: np.ndarray
    overdue: np.ndarray
    recent: np.ndarray
    resolved: np.ndarray
    days: np.ndarray
    rated: np.ndarray
    satisfied: np.ndarray


class OrderTimes(NamedTuple):
    """What the figures read of each order, whatever the moment asked about: numpy arrays.

    Times are naive China Standard Time ``datetime64[ns]`` (NaT: none);
    ``resolved`` and ``finish`` (resolved, else closed) are None when the
    orders carry no such column.
    """

    received: np.ndarray
    due: np.ndarray
    resolved: np.ndarray | None
    finish: np.ndarray | None
    finished_now: np.ndarray
    days: np.ndarray
    rated: np.ndarray
    happy: np.ndarray


def order_times(func: str, orders: pd.DataFrame) -> OrderTimes:
    """The :class:`OrderTimes` of ``orders`` (columns checked as :func:`grid_stats` checks them)."""
    # required columns: never None
    received = cast(pd.Series, _datetime_column(func, orders, "received_at"))
    due = cast(pd.Series, _datetime_column(func, orders, "due_at"))
    resolved_at = _datetime_column(func, orders, "resolved_at", required=False)
    closed_at = _datetime_column(func, orders, "closed_at", required=False)
    finish = resolved_at.fillna(closed_at) if resolved_at is not None and closed_at is not None else (
        resolved_at if resolved_at is not None else closed_at)
    if resolved_at is not None:
        days = ((resolved_at - received).dt.total_seconds() / 86400.0).to_numpy(float)
    else:
        days = np.full(len(orders), np.nan)
    if "satisfied" in orders.columns:
        rated = orders["satisfied"].notna().to_numpy()
        happy = rated & orders["satisfied"].fillna(False).astype(bool).to_numpy()
    else:
        rated = happy = np.zeros(len(orders), dtype=bool)
    return OrderTimes(
        received=received.to_numpy("datetime64[ns]"), due=due.to_numpy("datetime64[ns]"),
        resolved=None if resolved_at is None else resolved_at.to_numpy("datetime64[ns]"),
        finish=None if finish is None else finish.to_numpy("datetime64[ns]"),
        finished_now=np.isin(orders["status"].astype(str).to_numpy(), FINISHED_STATES),
        days=days, rated=rated, happy=happy,
    )


def _figures_at(times: OrderTimes, at: pd.Timestamp) -> _OrderFigures:
    """The figures of orders as of ``at``, from their times alone (numpy; NaT compares false)."""
    moment = np.datetime64(pd.Timestamp(at).to_datetime64(), "ns")
    was_received = times.received <= moment
    # Finished as of `at`: finished now, and not after `at` when the times say so.
    finished = times.finished_now if times.finish is None else times.finished_now & ~(times.finish > moment)
    is_open = was_received & ~finished
    if times.resolved is not None:
        resolved = (times.resolved <= moment) & was_received
    else:
        resolved = np.zeros(len(times.received), dtype=bool)
    rated = times.rated & finished
    return _OrderFigures(
        received=was_received, open=is_open, overdue=is_open & (times.due < moment),
        recent=was_received & (times.received > moment - np.timedelta64(30, "D")),
        resolved=resolved, days=times.days, rated=rated, satisfied=rated & times.happy,
    )


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
    return to_cst_naive(values).astype("datetime64[ns]")


def _median_by_position(positions: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """The median of ``values`` per grid position 0..n-1 (NaN where it has none): :func:`group_median`
    on the positions, which pandas groups by far faster than by the codes' text."""
    medians = np.full(n, np.nan)
    if len(positions):
        found = pd.Series(values).groupby(positions).median()
        medians[found.index.to_numpy()] = found.to_numpy(dtype=float)
    return medians


def group_median(codes: np.ndarray, values: np.ndarray, index: pd.Index) -> np.ndarray:
    """The median of ``values`` per code, for each code of ``index`` (NaN where it has none)."""
    if len(codes) == 0:
        return np.full(len(index), np.nan)
    medians = pd.Series(values).groupby(pd.Index(codes, dtype=object)).median()
    return medians.reindex(index.astype(object)).to_numpy(dtype=float)
