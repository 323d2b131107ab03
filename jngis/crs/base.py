"""CRS constants and the checks every conversion shares (lon/lat arrays, GeoDataFrames, CRS kinds)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj

from jngis import _checks
from jngis.errors import GeometryError, InputTypeError, ParameterError

CGCS2000 = "EPSG:4490"
"""China Geodetic Coordinate System 2000, longitude/latitude: official data."""

WGS84 = "EPSG:4326"
"""WGS 84 longitude/latitude (GPS); equal to CGCS2000 at map accuracy."""

WEB_MERCATOR = "EPSG:3857"
"""WGS 84 / Pseudo-Mercator: web map tiles. Not for measuring."""

JINAN_GK = "EPSG:4548"
"""CGCS2000 / 3-degree Gauss-Kruger CM 117E: metric CRS covering all of Jinan."""

JINAN_CENTRAL_MERIDIAN = 117
"""Central meridian (degrees east) of Jinan's 3-degree Gauss-Kruger zone."""

GK_CENTRAL_MERIDIANS = tuple(range(75, 136, 3))
"""Central meridians of the CGCS2000 3-degree Gauss-Kruger zones: 75, 78, ..., 135."""

CHINA_BOUNDS = (72.004, 0.8293, 137.8347, 55.8271)
"""(min lon, min lat, max lon, max lat): the published "out of China" rectangle.

GCJ-02 / BD-09 conversions leave points outside it unchanged.
"""

Coordinates = tuple[Any, Any]
"""(lon, lat): two floats, or two float64 arrays of the same shape."""


def _check_geodataframe(func: str, gdf: object) -> gpd.GeoDataFrame:
    return _checks.instance(func, "gdf", gdf, gpd.GeoDataFrame, "a geopandas.GeoDataFrame", show_value=False)


def _require_crs(func: str, gdf: gpd.GeoDataFrame) -> pyproj.CRS:
    return _checks.has_crs(
        func, "gdf", gdf,
        f"a GeoDataFrame with a CRS: call gdf.set_crs(...) first, e.g. gdf.set_crs('{CGCS2000}') for "
        "CGCS2000 longitude/latitude",
    )


def _is_lonlat_wgs84_like(crs: pyproj.CRS) -> bool:
    """EPSG:4326 or EPSG:4490 (or OGC:CRS84): lon/lat equal to WGS84 at map accuracy."""
    return _is_cgcs2000(crs) or crs.equals(pyproj.CRS(WGS84), ignore_axis_order=True)


def _is_cgcs2000(crs: pyproj.CRS) -> bool:
    return crs.equals(pyproj.CRS(CGCS2000), ignore_axis_order=True)


def _crs_label(crs: pyproj.CRS, *, with_name: bool = True) -> str:
    """'EPSG:4548 (CGCS2000 / 3-degree Gauss-Kruger CM 117E)', or the name alone without an authority."""
    authority = crs.to_authority()
    if not authority:
        return repr(crs.name)
    return f"{authority[0]}:{authority[1]}" + (f" ({crs.name})" if with_name else "")


def _as_float_array(func: str, name: str, value: Any, unit: str | None = "degrees") -> np.ndarray:
    """`value` as a float64 array, or InputTypeError naming `func`, `name` and the expected `unit`."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputTypeError(
            f"{func}: {name}={value!r} has type {type(value).__name__}; expected a "
            f"number or an array of numbers{f' ({unit})' if unit else ''}"
        ) from None


def _lonlat_arrays(func: str, lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    lon_arr = _as_float_array(func, "lon", lon)
    lat_arr = _as_float_array(func, "lat", lat)
    if lon_arr.shape != lat_arr.shape:
        raise ParameterError(
            f"{func}: lon has shape {lon_arr.shape} and lat has shape "
            f"{lat_arr.shape}; expected lon and lat of the same shape"
        )
    _validate_lonlat(
        func, lon_arr, lat_arr, "lon/lat",
        locate=lambda i: "the scalar input" if i == () else f"index {i}",
    )
    return lon_arr, lat_arr


def _first_index(mask: np.ndarray) -> Any:
    """Index of the first True in `mask`: an int for 1-D, a tuple for N-D, () for 0-D."""
    first = tuple(int(i) for i in np.argwhere(mask)[0])
    return first[0] if len(first) == 1 else first


def _validate_lonlat(
    func: str,
    lon: np.ndarray,
    lat: np.ndarray,
    what: str,
    *,
    locate: Callable[[Any], str],
) -> None:
    """Raise GeometryError for NaN/inf, ParameterError for out-of-range lon/lat."""
    finite = np.isfinite(lon) & np.isfinite(lat)
    if not finite.all():
        where = _first_index(~finite)
        raise GeometryError(
            f"{func}: {what} has {int((~finite).sum())} coordinate(s) that are NaN "
            f"or infinite (first at {locate(where)}: lon={float(lon[where])!r}, "
            f"lat={float(lat[where])!r}); expected finite longitude/latitude in degrees"
        )
    out_of_range = (np.abs(lon) > 180.0) | (np.abs(lat) > 90.0)
    if out_of_range.any():
        where = _first_index(out_of_range)
        raise ParameterError(
            f"{func}: {what} has {int(out_of_range.sum())} coordinate(s) outside "
            f"lon [-180, 180] / lat [-90, 90] (first at {locate(where)}: "
            f"lon={float(lon[where])!r}, lat={float(lat[where])!r}); expected "
            "longitude/latitude in degrees (projected coordinates, or lon and lat "
            "swapped?)"
        )
