"""How far each block is from a service station, life-circle shares, the floor-area norm (:func:`coverage`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from jngis import _checks
from jngis.assign import PolygonIndex
from jngis.codes import LIFE_CIRCLE_M, SERVICE_AREA_M2_PER_100_HOUSEHOLDS
from jngis.errors import CRSError, GeometryError, InputTypeError, ParameterError
from jngis.stats.grid import require_columns

__all__ = ["coverage", "Coverage", "AREA_NORM_M2_PER_100_HOUSEHOLDS", "LIFE_CIRCLE_RADII"]

#: Service floor area norm: at least 30 m² per 100 households (:data:`jngis.codes.SERVICE_AREA_M2_PER_100_HOUSEHOLDS`).
AREA_NORM_M2_PER_100_HOUSEHOLDS = SERVICE_AREA_M2_PER_100_HOUSEHOLDS
#: 5-, 10- and 15-minute community life circles (GB 50180-2018), metres.
LIFE_CIRCLE_RADII: tuple[int, ...] = tuple(sorted(LIFE_CIRCLE_M.values()))
GDF = "a geopandas.GeoDataFrame"


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


def coverage(units: gpd.GeoDataFrame, stations: gpd.GeoDataFrame, *, radii: Sequence[float] = LIFE_CIRCLE_RADII,
             communities: gpd.GeoDataFrame | None = None) -> Coverage:
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
    metric_units, metric_stations, households = coverage_inputs(func, units, stations)
    require_columns(func, "units", units, ("unit_id", "community_code"))
    require_columns(func, "stations", stations, ("level",))
    radii_arr = distances(func, "radii", radii)
    table = _unit_distances(metric_units, metric_stations, units, stations, households, radii_arr)
    out = _life_circle_shares(table, radii_arr)
    station_community = _station_communities(func, metric_stations, metric_units, units, communities)
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


def _unit_distances(metric_units: gpd.GeoDataFrame, metric_stations: gpd.GeoDataFrame,
                    units: gpd.GeoDataFrame, stations: gpd.GeoDataFrame, households: np.ndarray,
                    radii: np.ndarray) -> pd.DataFrame:
    """Per unit: the distance to the nearest station of each level, and whether it is within each radius."""
    demand = representative_xy(metric_units)
    station_xy = shapely.get_coordinates(metric_stations.geometry.values)
    level = stations["level"].astype(str).to_numpy()
    table = pd.DataFrame(
        {"community_code": units["community_code"].astype(str).to_numpy(), "households": households},
        index=pd.Index(units["unit_id"].to_numpy(), name="unit_id"),
    )
    for name, which in (("to_community_centre_m", level == "community"), ("to_grid_station_m", level == "grid")):
        table[name] = nearest_distance(demand, station_xy[which])
    table["to_station_m"] = np.fmin(table["to_community_centre_m"], table["to_grid_station_m"])
    for radius in radii:
        table[f"within_{_radius_label(radius)}m"] = (table["to_station_m"] <= radius).to_numpy()
    return table


def _life_circle_shares(table: pd.DataFrame, radii: np.ndarray) -> pd.DataFrame:
    """Per community: households, and the share of them within each radius of a station."""
    by_community = table.groupby("community_code", sort=True)
    out = pd.DataFrame({"households": by_community["households"].sum()})
    for radius in radii:
        label = _radius_label(radius)
        covered = (table["households"] * table[f"within_{label}m"]).groupby(table["community_code"]).sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"share_within_{label}m"] = (covered / out["households"]).where(out["households"] > 0)
    return out


# --------------------------------------------------------------------------- shared with suggest_sites


def coverage_inputs(func: str, units: Any, stations: Any, *, allow_none: bool = False
                    ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None, np.ndarray]:
    """Units in their metric CRS, stations in the same CRS, households as whole numbers, all checked."""
    from jngis.crs import to_metric

    _checks.instance(func, "units", units, gpd.GeoDataFrame, GDF, show_value=False)
    if not (stations is None and allow_none):
        _checks.instance(func, "stations", stations, gpd.GeoDataFrame, GDF, show_value=False)
    require_columns(func, "units", units, ("households",))
    for name, layer in (("units", units), ("stations", stations)):
        if layer is not None:
            require_crs(func, name, layer)
    households = pd.to_numeric(units["households"], errors="coerce").to_numpy(float)
    if np.isnan(households).any() or (households < 0).any():
        bad = np.flatnonzero(np.isnan(households) | (households < 0))
        raise ParameterError(
            f"{func}: units['households'] has {bad.size} missing or negative value(s) "
            f"(first at row {units.index[bad[0]]!r}: {units['households'].iloc[bad[0]]!r}); "
            "expected counts >= 0"
        )
    metric_units = to_metric(units)
    metric_stations = None
    if stations is not None:
        metric_stations = stations.to_crs(metric_units.crs)
        kinds = set(metric_stations.geom_type.dropna())
        if kinds - {"Point"}:
            raise GeometryError(f"{func}: stations has geometry types {sorted(kinds)}; expected Points")
    return metric_units, metric_stations, households.astype(np.int64)


def require_crs(func: str, name: str, layer: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if layer.crs is None:
        raise CRSError(f"{func}: {name}.crs is None; expected a CRS (e.g. {name}.set_crs('EPSG:4548'))")
    return layer


def distances(func: str, name: str, value: Any) -> np.ndarray:
    """A non-empty sequence of finite positive distances in metres, as a float array."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise InputTypeError(
            f"{func}: {name}={value!r} has type {type(value).__name__}; expected a "
            "sequence of numbers (metres), e.g. (300, 500, 1000)"
        )
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputTypeError(f"{func}: {name}={value!r} is not numeric; expected number(s) of metres") from None
    if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all() or (arr <= 0).any():
        raise ParameterError(f"{func}: {name}={value!r}; expected finite positive distance(s) in metres")
    return arr


def representative_xy(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """The coordinates of a point inside each geometry."""
    return shapely.get_coordinates(shapely.point_on_surface(np.asarray(gdf.geometry.values)))


def nearest_distance(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The distance from each point to the nearest target (NaN when there is none)."""
    if len(targets) == 0:
        return np.full(len(points), np.nan)
    if len(points) == 0:
        return np.empty(0)
    distance, _ = cKDTree(targets).query(points, k=1)
    return np.asarray(distance, dtype=float)


def _radius_label(radius: float) -> str:
    return str(int(radius)) if float(radius).is_integer() else f"{radius:g}"


def _station_communities(func: str, metric_stations: gpd.GeoDataFrame,
                         metric_units: gpd.GeoDataFrame, units: gpd.GeoDataFrame,
                         communities: gpd.GeoDataFrame | None) -> np.ndarray:
    if len(metric_stations) == 0:
        return np.empty(0, dtype=object)
    if communities is not None:
        _checks.instance(func, "communities", communities, gpd.GeoDataFrame, GDF, show_value=False)
        require_columns(func, "communities", communities, ("community_code",))
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
