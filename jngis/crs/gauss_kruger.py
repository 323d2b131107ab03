"""CGCS2000 3-degree Gauss-Kruger zones, :func:`to_metric` and the shared pyproj Transformers."""

from __future__ import annotations

import functools
from numbers import Integral
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pyproj

from jngis import _checks
from jngis.crs.base import (
    CGCS2000,
    CHINA_BOUNDS,
    GK_CENTRAL_MERIDIANS,
    JINAN_CENTRAL_MERIDIAN,
    _as_float_array,
    _check_geodataframe,
    _crs_label,
    _first_index,
    _is_lonlat_wgs84_like,
    _require_crs,
)
from jngis.errors import CRSError, GeometryError, ParameterError

_GK_EPSG_BASE = 4534  # EPSG code of the CM 75E zone; the zones are consecutive
_GK_LON_MIN = GK_CENTRAL_MERIDIANS[0] - 1.5
_GK_LON_MAX = GK_CENTRAL_MERIDIANS[-1] + 1.5

# ----------------------------------------------------------------------------
# Gauss-Kruger zones
# ----------------------------------------------------------------------------


def gk_zone_epsg(central_meridian: int) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss-Kruger zone with this meridian.

    The zones "without zone prefix" (false easting 500 000 m) are
    EPSG:4534 (CM 75E) to EPSG:4554 (CM 135E).

    Parameters
    ----------
    central_meridian : int
        Central meridian in degrees east: a multiple of 3 from 75 to 135.

    Returns
    -------
    int
        The EPSG code, ``4534 + (central_meridian - 75) // 3``.

    Raises
    ------
    InputTypeError
        If `central_meridian` is not an integer.
    ParameterError
        If it is not a multiple of 3 in 75..135.

    Examples
    --------
    >>> gk_zone_epsg(117)
    4548
    >>> gk_zone_epsg(75), gk_zone_epsg(135)
    (4534, 4554)
    """
    _check_central_meridian("gk_zone_epsg", central_meridian)
    return _GK_EPSG_BASE + (int(central_meridian) - GK_CENTRAL_MERIDIANS[0]) // 3


def gk_zone_for_lon(lon: npt.ArrayLike) -> Any:
    """Central meridian of the 3-degree Gauss-Kruger zone containing `lon`.

    The zone of CM ``c`` covers ``c - 1.5 <= lon < c + 1.5``, i.e.
    ``CM = 3 * floor(lon / 3 + 0.5)``; a longitude exactly on a zone edge
    (e.g. 118.5) belongs to the eastern zone.

    Parameters
    ----------
    lon : float or array_like of float
        Longitude(s) in degrees east, in China's zones: 73.5 <= lon < 136.5.

    Returns
    -------
    int or numpy.ndarray of int
        Central meridian(s) in degrees east; an ``int`` for a scalar, an
        array of the same shape otherwise.

    Raises
    ------
    InputTypeError
        If `lon` is not numeric.
    ParameterError
        If a longitude is not finite or lies outside China's zones.

    Examples
    --------
    >>> gk_zone_for_lon(117.02)
    117
    >>> gk_zone_for_lon([115.4, 115.5, 118.5]).tolist()
    [114, 117, 120]
    """
    lon_arr = _as_float_array("gk_zone_for_lon", "lon", lon)
    bad = ~np.isfinite(lon_arr) | (lon_arr < _GK_LON_MIN) | (lon_arr >= _GK_LON_MAX)
    if bad.any():
        where = _first_index(bad)
        at = "" if where == () else f"first at index {where}: "
        raise ParameterError(
            f"gk_zone_for_lon: lon has {int(bad.sum())} value(s) outside China's "
            f"3-degree Gauss-Kruger zones ({at}lon={float(lon_arr[where])!r}); "
            "expected finite longitudes with "
            f"{_GK_LON_MIN} <= lon < {_GK_LON_MAX} (CM 75E-135E)"
        )
    zones = (3 * np.floor(lon_arr / 3.0 + 0.5)).astype(np.int64)
    return int(zones) if zones.ndim == 0 else zones


def _check_central_meridian(func: str, central_meridian: object) -> None:
    expected = f"a multiple of 3 from 75 to 135 (e.g. {JINAN_CENTRAL_MERIDIAN} for Jinan)"
    _checks.instance(func, "central_meridian", central_meridian, Integral, f"an int, {expected}")
    if int(central_meridian) not in GK_CENTRAL_MERIDIANS:  # type: ignore[call-overload]
        raise ParameterError(
            f"{func}: central_meridian={central_meridian!r} is not the central "
            f"meridian of a CGCS2000 3-degree Gauss-Kruger zone; expected {expected}"
        )


# ----------------------------------------------------------------------------
# to_metric
# ----------------------------------------------------------------------------


def to_metric(
    gdf: gpd.GeoDataFrame, *, central_meridian: int | None = None
) -> gpd.GeoDataFrame:
    """Project `gdf` to the CGCS2000 3-degree Gauss-Kruger zone of its data.

    The zone is the one containing the data's longitudes (EPSG:4548, CM 117E,
    for Jinan). Data whose longitudes reach into more than one zone is
    refused unless `central_meridian` picks the zone: a single zone keeps the
    scale error below 0.03 %, and silently picking one for a province-wide
    layer would hide a choice the caller should make.

    Data already in a projected CRS with metre units is returned as an
    unchanged copy, except Mercator-family CRSs (EPSG:3857 web maps,
    EPSG:3395), which are metres in name only (scale about 1.25 at Jinan's
    latitude) and so are projected like longitude/latitude data. With
    `central_meridian` given, the data is always projected to that zone.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Data with a CRS, in China (longitudes 73.5-136.5, latitudes 0.8293-55.8271).
    central_meridian : int, optional
        Central meridian of the zone to use: a multiple of 3 from 75 to 135.
        Needed when the data spans several zones.

    Returns
    -------
    geopandas.GeoDataFrame
        A new GeoDataFrame; `gdf` is never changed.

    Raises
    ------
    InputTypeError
        `gdf` not a GeoDataFrame, or `central_meridian` not an int.
    CRSError
        `gdf` without a CRS, outside China's zones, or across zones without `central_meridian`.
    GeometryError
        `gdf` without a finite extent (no non-empty geometry) and without `central_meridian`.
    ParameterError
        `central_meridian` not a zone's central meridian.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> gdf = gpd.GeoDataFrame(geometry=[Point(117.0, 36.65)], crs="EPSG:4490")
    >>> metric = to_metric(gdf)
    >>> metric.crs.to_epsg()
    4548
    >>> round(metric.geometry.x.iloc[0])
    500000
    """
    func = "to_metric"
    _check_geodataframe(func, gdf)
    if central_meridian is not None:
        _check_central_meridian(func, central_meridian)
    source_crs = _require_crs(func, gdf)
    if central_meridian is None and _is_measurable_projected(source_crs):
        return gdf.copy()
    return gdf.to_crs(f"EPSG:{gk_zone_epsg(_zone_for(func, gdf, source_crs, central_meridian))}")


def _zone_for(func: str, gdf: gpd.GeoDataFrame, source_crs: pyproj.CRS, central_meridian: int | None) -> int:
    """The zone's central meridian: the one asked for, else the data's; the data must lie in China."""
    bounds = np.asarray(gdf.total_bounds, dtype=np.float64)
    if np.isfinite(bounds).all():
        lonlat = _lonlat_bounds(source_crs, bounds)
        _check_in_china(func, source_crs, lonlat)
        return _single_zone(func, lonlat) if central_meridian is None else central_meridian
    if central_meridian is None:
        raise GeometryError(
            f"{func}: gdf has {len(gdf)} row(s) and no finite bounds (geometries "
            "all missing or empty, or with NaN/inf coordinates), so there is no "
            "extent to pick a Gauss-Kruger zone from; expected non-empty "
            f"geometries, or pass central_meridian= (e.g. {JINAN_CENTRAL_MERIDIAN}) "
            "to choose the zone"
        )
    return central_meridian


def _check_in_china(func: str, source_crs: pyproj.CRS, lonlat: tuple[float, float, float, float]) -> None:
    """Refuse an extent outside China's Gauss-Kruger zones (usually a wrong ``gdf.crs``)."""
    min_lon, min_lat, max_lon, max_lat = lonlat
    in_china = (
        _GK_LON_MIN <= min_lon
        and max_lon < _GK_LON_MAX
        and CHINA_BOUNDS[1] <= min_lat
        and max_lat <= CHINA_BOUNDS[3]
    )
    if not in_china:
        raise CRSError(
            f"{func}: data spans longitudes {min_lon:.3f}°–{max_lon:.3f}° and "
            f"latitudes {min_lat:.3f}°–{max_lat:.3f}° (gdf.crs={_crs_label(source_crs)}), "
            "outside China's CGCS2000 3-degree Gauss-Kruger zones; expected "
            f"longitudes {_GK_LON_MIN}°–{_GK_LON_MAX}° and latitudes "
            f"{CHINA_BOUNDS[1]}°–{CHINA_BOUNDS[3]}° (check that gdf.crs is the CRS "
            "the coordinates are really in, or project with gdf.to_crs(...))"
        )


def _single_zone(func: str, lonlat: tuple[float, float, float, float]) -> int:
    """The central meridian of the one zone the extent lies in; refuse an extent across zones."""
    min_lon, _, max_lon, _ = lonlat
    west, east = gk_zone_for_lon(min_lon), gk_zone_for_lon(max_lon)
    if west != east:
        zones = ", ".join(f"{cm}E" for cm in range(west, east + 1, 3))
        suggested = gk_zone_for_lon((min_lon + max_lon) / 2.0)
        raise CRSError(
            f"{func}: data spans longitudes {min_lon:.3f}°–{max_lon:.3f}°, which "
            f"crosses 3-degree Gauss-Kruger zones CM {zones}; pass "
            f"central_meridian={suggested} to choose one"
        )
    return int(west)


def transformer(source: Any, target: Any) -> pyproj.Transformer:
    """An ``always_xy`` pyproj Transformer from `source` to `target`, made once per pair.

    Making one costs 70-100 ms (PROJ searches its database for the best
    operation), more than reprojecting a whole city layer; pyproj's
    Transformers are thread-safe (pyproj >= 3.1), so one is shared. pyproj
    makes its PROJ object again in each thread that uses it, though, with the
    same search (0.1-0.7 s: the first work order each server thread placed,
    benchmarks/RESULTS.md "the mixed load"): so when PROJ finds one operation
    for the pair, ``transform`` goes through that operation's pipeline, which a
    thread makes in under a millisecond, giving the same numbers; everything
    else (``transform_bounds``, the CRS attributes) is pyproj's as it was.

    Examples
    --------
    >>> t = transformer("EPSG:4326", "EPSG:4548")
    >>> t is transformer("EPSG:4326", "EPSG:4548")
    True
    >>> transformer("EPSG:4326", "Jinan")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    jngis.errors.CRSError: transformer: target='Jinan' is not a CRS pyproj understands; expected e.g. ...
    """
    crs = []
    for name, value in (("source", source), ("target", target)):
        try:
            crs.append(pyproj.CRS.from_user_input(value))
        except pyproj.exceptions.CRSError:
            raise CRSError(f"transformer: {name}={value!r} is not a CRS pyproj understands; "
                           "expected e.g. 'EPSG:4490' or 'EPSG:4548'") from None
    return _transformer(*crs)


@functools.lru_cache(maxsize=64)
def _transformer(source: pyproj.CRS, target: pyproj.CRS) -> pyproj.Transformer:
    chosen = pyproj.Transformer.from_crs(source, target, always_xy=True)
    group = pyproj.transformer.TransformerGroup(source, target, always_xy=True)
    if len(group.transformers) == 1 and not group.unavailable_operations:
        return _PipelineTransform(chosen, pyproj.Transformer.from_pipeline(group.transformers[0].definition))
    return chosen  # several candidates (PROJ picks per point, or one needs a missing grid): PROJ's way


class _PipelineTransform(pyproj.Transformer):
    """A pyproj Transformer whose ``transform`` runs its one operation's pipeline (see :func:`transformer`)."""

    def __init__(self, chosen: pyproj.Transformer, pipeline: pyproj.Transformer) -> None:
        self.__dict__.update(chosen.__dict__)  # chosen as pyproj made it (not made a second time)
        self._pipeline = pipeline

    def transform(self, *args: Any, **kwargs: Any) -> Any:
        return self._pipeline.transform(*args, **kwargs)


def _is_measurable_projected(crs: pyproj.CRS) -> bool:
    """Projected, in metres, and not a (pseudo-)Mercator."""
    if not crs.is_projected:
        return False
    if not crs.axis_info or any(axis.unit_name != "metre" for axis in crs.axis_info[:2]):
        return False
    operation = crs.coordinate_operation
    method = operation.method_name.lower() if operation is not None else ""
    return not ("mercator" in method and "transverse" not in method)


def _lonlat_bounds(
    crs: pyproj.CRS, bounds: np.ndarray
) -> tuple[float, float, float, float]:
    """(min lon, min lat, max lon, max lat) of `bounds` (in `crs`) in CGCS2000."""
    min_x, min_y, max_x, max_y = (float(value) for value in bounds)
    if _is_lonlat_wgs84_like(crs):
        return min_x, min_y, max_x, max_y
    lonlat = transformer(crs, CGCS2000).transform_bounds(min_x, min_y, max_x, max_y, densify_pts=21)
    min_lon, min_lat, max_lon, max_lat = (float(value) for value in lonlat)
    return min_lon, min_lat, max_lon, max_lat
