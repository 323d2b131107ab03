"""The input checks of :mod:`jngis.assign`: polygons, their keys, points."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from jngis import _checks
from jngis import _threads as parallel
from jngis.crs.base import JINAN_GK
from jngis.errors import GeometryError, ParameterError, SchemaError

# From this many points on, their x and y are read in two threads (GEOS releases the GIL).
_PARALLEL_POINTS = 100_000


def key_ranks(func: str, keys: np.ndarray, key: str) -> np.ndarray:
    """Rank of each polygon: 0 for the lowest key (ties: the earlier row)."""
    try:
        order = np.argsort(keys, kind="stable")
    except TypeError:
        raise SchemaError(
            f"{func}: polygons[{key!r}] mixes values that cannot be ordered "
            f"(types {sorted({type(k).__name__ for k in keys})}); expected keys of one "
            "type (all strings or all integers)"
        ) from None
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys))
    return rank


def check_polygons(func: str, polygons: Any, key: str) -> tuple[np.ndarray, np.ndarray, pyproj.CRS]:
    """The polygons' geometries, keys (object arrays) and CRS, or the error naming what is wrong.

    Validity is checked apart (:func:`start_validity`), while the index is built.
    """
    _checks.instance(func, "polygons", polygons, gpd.GeoDataFrame,
                     "a geopandas.GeoDataFrame of (Multi)Polygons", show_value=False)
    _checks.instance(func, "key", key, str, "a column name (str)")
    if key not in polygons.columns or key == polygons.geometry.name:
        raise SchemaError(
            f"{func}: key={key!r} is not a column of polygons; expected one of "
            f"{[c for c in polygons.columns if c != polygons.geometry.name]}"
        )
    if len(polygons) == 0:
        raise ParameterError(f"{func}: polygons has 0 rows; expected at least one polygon")
    crs = _checks.has_crs(func, "polygons", polygons,
                          f"polygons with a CRS (e.g. polygons.set_crs('{JINAN_GK}'))")
    values = polygons[key]
    if values.isna().any():
        raise SchemaError(
            f"{func}: polygons[{key!r}] has {int(values.isna().sum())} missing value(s) "
            f"(first at row {values.index[values.isna()][0]!r}); expected a key on every polygon"
        )
    geoms = np.array(polygons.geometry.values, dtype=object)
    _check_polygon_geometries(func, polygons, geoms)
    keys = np.asarray(values.to_numpy(dtype=object), dtype=object)
    return geoms, keys, crs


def start_validity(geoms: np.ndarray) -> Future[np.ndarray]:
    """``shapely.is_valid(geoms)`` started in the pool (GEOS releases the GIL).

    The grid may be built meanwhile: it needs (Multi)Polygons with finite
    coordinates (:func:`check_polygons`), not valid ones; an invalid polygon
    is refused by :func:`check_validity` before the index is used.
    """
    if parallel.workers() > 1:
        return parallel.submit(shapely.is_valid, geoms)
    done: Future[np.ndarray] = Future()
    done.set_result(shapely.is_valid(geoms))
    return done


def check_validity(func: str, polygons: gpd.GeoDataFrame, geoms: np.ndarray,
                   valid: Future[np.ndarray]) -> None:
    """GeometryError naming the first invalid polygon, if :func:`start_validity` found any."""
    bad = ~valid.result()
    if bad.any():
        reason = shapely.is_valid_reason(geoms[np.flatnonzero(bad)[0]])
        raise GeometryError(
            f"{func}: polygons has {int(bad.sum())} invalid geometry(ies) (rows "
            f"{list(polygons.index[bad][:5])}; first: {reason}); expected valid polygons "
            "(repair with shapely.make_valid or jngis.topology)"
        )


def _check_polygon_geometries(func: str, polygons: gpd.GeoDataFrame, geoms: np.ndarray) -> None:
    kind = shapely.get_type_id(geoms)
    bad = ~np.isin(kind, (3, 6))  # Polygon, MultiPolygon (None gives -1)
    if bad.any():
        rows = polygons.index[bad]
        types = sorted({str(t) for t in polygons.geometry[bad].geom_type})
        raise GeometryError(
            f"{func}: polygons has {int(bad.sum())} geometry(ies) that are not "
            f"Polygon/MultiPolygon (types {types}, rows {list(rows[:5])}); expected "
            "(Multi)Polygons"
        )
    bad = shapely.is_empty(geoms)
    if bad.any():
        raise GeometryError(
            f"{func}: polygons has {int(bad.sum())} empty geometry(ies) (rows "
            f"{list(polygons.index[bad][:5])}); expected non-empty (Multi)Polygons"
        )
    coords = shapely.get_coordinates(geoms)
    if not np.isfinite(coords).all():
        raise GeometryError(
            f"{func}: polygons has NaN or infinite coordinates; expected finite coordinates"
        )


def point_coordinates(func: str, points: Any) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """x, y (NaN for a missing or empty point) and the index of Point geometries."""
    series, geoms = point_geometries(func, points)
    return checked_coordinates(func, series, geoms, start_reading(geoms))


def point_geometries(func: str, points: Any) -> tuple[gpd.GeoSeries, np.ndarray]:
    """The points' GeoSeries and its geometries (object array), or InputTypeError."""
    _checks.instance(func, "points", points, (gpd.GeoDataFrame, gpd.GeoSeries),
                     "a geopandas.GeoDataFrame or GeoSeries of Points", show_value=False)
    series = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
    return series, np.asarray(series.values, dtype=object)


def start_reading(geoms: np.ndarray) -> list[Future[np.ndarray]]:
    """``shapely.get_x`` and ``get_y`` of `geoms` started in the pool (GEOS releases the GIL)."""
    if len(geoms) >= _PARALLEL_POINTS and parallel.workers() > 1:
        return [parallel.submit(shapely.get_x, geoms), parallel.submit(shapely.get_y, geoms)]
    done: list[Future[np.ndarray]] = [Future(), Future()]
    for future, read in zip(done, (shapely.get_x, shapely.get_y)):
        try:
            future.set_result(read(geoms))
        except shapely.errors.GEOSException as error:
            future.set_exception(error)
    return done


def checked_coordinates(func: str, series: gpd.GeoSeries, geoms: np.ndarray,
                        reading: list[Future[np.ndarray]]) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """``(x, y, index)`` from :func:`start_reading`, once every geometry is known to be a Point.

    ``get_x`` is NaN for anything but a non-empty Point (and for a missing
    geometry), so only those rows need their type read: a million points are
    checked without another pass over their geometries. An empty Point makes
    GEOS refuse ``get_x``; then every type and coordinate is read the long way.
    """
    x: np.ndarray | None
    y: np.ndarray | None
    try:
        x, y = (future.result() for future in reading)
    except shapely.errors.GEOSException:
        unsure = np.arange(len(geoms))
        x = y = None
    else:
        unsure = np.flatnonzero(np.isnan(x))
    if unsure.size:
        kind = shapely.get_type_id(geoms[unsure])
        bad = unsure[(kind != 0) & (kind != -1)]  # Point, or missing
        if bad.size:
            types = sorted({str(t) for t in series.iloc[bad].geom_type})
            raise GeometryError(
                f"{func}: points has {bad.size} geometry(ies) that are not Points "
                f"(types {types}, rows {list(series.index[bad[:5]])}); expected Point "
                "geometries (use .centroid or .representative_point() for polygons)"
            )
    if x is None or y is None:
        # Missing and empty points have no coordinates: they stay NaN (NA later).
        coords, rows = shapely.get_coordinates(geoms, return_index=True)
        x = np.full(len(geoms), np.nan)
        y = np.full(len(geoms), np.nan)
        x[rows], y[rows] = coords[:, 0], coords[:, 1]
    elif unsure.size:
        y = y.copy()
        y[unsure] = np.nan  # a point without x has no location
    return x, y, series.index


def cell_size(func: str, value: Any) -> float:
    """A cell side: a finite number > 0 in the polygons' CRS units."""
    _checks.instance(func, "cell_size", value, (int, float, np.integer, np.floating), "a number")
    return _checks.number(func, "cell_size", value, minimum=0, exclusive_minimum=True,
                          hint="in the polygons' CRS units")
