"""Coordinate reference systems for Chinese city data, and GCJ-02 / BD-09.

CRS constants
-------------
Official data is in CGCS2000 longitude/latitude (:data:`CGCS2000`,
EPSG:4490), which equals WGS84 (:data:`WGS84`, EPSG:4326) at map accuracy.
Metric work (areas, distances, buffers) happens in the CGCS2000 3-degree
Gauss-Kruger zone of the data, "without zone prefix": EPSG:4534 (CM 75E) to
EPSG:4554 (CM 135E), EPSG code = 4534 + (CM - 75) / 3. Jinan lies in the
zone of CM 117E, :data:`JINAN_GK` (EPSG:4548). Web maps use
:data:`WEB_MERCATOR` (EPSG:3857), which is not fit for measuring: its scale
at Jinan's latitude is about 1.25. :func:`to_metric` picks the zone from the
data.

GCJ-02 and BD-09
----------------
Consumer map data is shifted: Amap, Tencent and Google China use GCJ-02,
Baidu uses BD-09 (an extra rotation and scaling on top of GCJ-02). In Jinan
GCJ-02 is 480-570 m and BD-09 1.2-1.4 km away from WGS84, so such data must
be converted before it is mixed with official layers.

- WGS84 -> GCJ-02 is the published algorithm (as in coordtransform and
  eviltransform): an offset from the ``transformLat`` / ``transformLon``
  polynomials, turned into degrees on the Krasovsky 1940 ellipsoid
  (a = 6378245.0 m, e² = 0.00669342162296594323).
- GCJ-02 -> BD-09 is the published closed form
  (``z = sqrt(x² + y²) + 0.00002 sin(y·x_pi)``,
  ``θ = atan2(y, x) + 0.000003 cos(x·x_pi)``, x_pi = π·3000/180,
  BD-09 = (z cos θ + 0.0065, z sin θ + 0.006)).
- Neither has an exact closed-form inverse. The one-step GCJ-02 -> WGS84
  inverse most libraries ship (subtract the offset evaluated at the GCJ-02
  point) is off by up to a few metres, and the usual BD-09 -> GCJ-02 formula
  by up to about 0.25 m. Both inverses here start from those formulas and
  then run a fixed-point iteration, vectorised over the whole array, until
  the forward transform of the answer reproduces the input to 1e-10 degrees
  (about 0.01 mm); it takes 2-3 rounds. Round trips are exact to well under
  a millimetre.

Pass-through rule: as in the published algorithm, a point outside the
rectangle 72.004 <= lon <= 137.8347, 0.8293 <= lat <= 55.8271 ("out of
China") is returned unchanged, in every direction, the test being made on the
input of each step. Compositions (WGS84 <-> BD-09) apply the rule at each of
their two steps, so within about 1.5 km of that rectangle's edge a round
trip may not return exactly its input; that edge is nowhere near a Chinese
city.

All array functions take scalars or arrays (any shape, lon and lat the same
shape) and return the same shape: Python floats for scalars, float64 arrays
otherwise. The GeoDataFrame functions transform every coordinate of every
geometry at once with :func:`shapely.transform`, keep Z values, and return
new GeoDataFrames.

Examples
--------
>>> from jngis import crs
>>> crs.gk_zone_epsg(crs.gk_zone_for_lon(117.0))
4548
>>> lon, lat = crs.wgs84_to_gcj02(117.0, 36.65)
>>> back = crs.gcj02_to_wgs84(lon, lat)
>>> round(back[0], 9), round(back[1], 9)
(117.0, 36.65)
"""

from __future__ import annotations

import functools
from numbers import Integral
from typing import Any, Callable

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pyproj
import shapely

from jngis.errors import CRSError, GeometryError, InputTypeError, ParameterError

__all__ = [
    "CGCS2000",
    "WGS84",
    "WEB_MERCATOR",
    "JINAN_GK",
    "JINAN_CENTRAL_MERIDIAN",
    "GK_CENTRAL_MERIDIANS",
    "CHINA_BOUNDS",
    "gk_zone_epsg",
    "gk_zone_for_lon",
    "to_metric",
    "wgs84_to_gcj02",
    "gcj02_to_wgs84",
    "gcj02_to_bd09",
    "bd09_to_gcj02",
    "wgs84_to_bd09",
    "bd09_to_wgs84",
    "to_gcj02",
    "from_gcj02",
    "to_bd09",
    "from_bd09",
]

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

_GK_EPSG_BASE = 4534  # EPSG code of the CM 75E zone; the zones are consecutive
_GK_LON_MIN = GK_CENTRAL_MERIDIANS[0] - 1.5
_GK_LON_MAX = GK_CENTRAL_MERIDIANS[-1] + 1.5

# GCJ-02 constants: the Krasovsky 1940 ellipsoid, as published.
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
# BD-09 constants, as published.
_BD_X_PI = np.pi * 3000.0 / 180.0
_BD_DLON = 0.0065
_BD_DLAT = 0.006

# The inverses iterate until the forward image matches to this many degrees
# (1e-10 deg is about 0.01 mm): far below the 1 cm promised, far above the
# ~1e-14 deg that float64 can resolve at these magnitudes.
_INVERSE_TOLERANCE_DEG = 1e-10
# Each round shrinks the error about a thousandfold; 2-3 rounds are needed.
_INVERSE_MAX_ITERATIONS = 20

Coordinates = tuple[Any, Any]
"""(lon, lat): two floats, or two float64 arrays of the same shape."""


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
    if isinstance(central_meridian, bool) or not isinstance(central_meridian, Integral):
        raise InputTypeError(
            f"{func}: central_meridian={central_meridian!r} has type "
            f"{type(central_meridian).__name__}; expected an int, a multiple of 3 "
            f"from 75 to 135 (e.g. {JINAN_CENTRAL_MERIDIAN} for Jinan)"
        )
    if int(central_meridian) not in GK_CENTRAL_MERIDIANS:
        raise ParameterError(
            f"{func}: central_meridian={central_meridian!r} is not the central "
            f"meridian of a CGCS2000 3-degree Gauss-Kruger zone; expected a multiple "
            f"of 3 from 75 to 135 (e.g. {JINAN_CENTRAL_MERIDIAN} for Jinan)"
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
        Data with a CRS, lying in China (longitudes 73.5-136.5, latitudes
        0.8293-55.8271).
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
        If `gdf` is not a GeoDataFrame, or `central_meridian` not an int.
    CRSError
        If `gdf` has no CRS, lies outside China's zones, or spans several
        zones and `central_meridian` is not given.
    GeometryError
        If `gdf` has no finite extent (no non-empty geometry) and
        `central_meridian` is not given.
    ParameterError
        If `central_meridian` is not a zone's central meridian.

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

    bounds = np.asarray(gdf.total_bounds, dtype=np.float64)
    if not np.isfinite(bounds).all():
        if central_meridian is None:
            raise GeometryError(
                f"{func}: gdf has {len(gdf)} row(s) and no finite bounds (geometries "
                "all missing or empty, or with NaN/inf coordinates), so there is no "
                "extent to pick a Gauss-Kruger zone from; expected non-empty "
                f"geometries, or pass central_meridian= (e.g. {JINAN_CENTRAL_MERIDIAN}) "
                "to choose the zone"
            )
        return gdf.to_crs(f"EPSG:{gk_zone_epsg(central_meridian)}")

    min_lon, min_lat, max_lon, max_lat = _lonlat_bounds(source_crs, bounds)
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

    if central_meridian is None:
        west, east = gk_zone_for_lon(min_lon), gk_zone_for_lon(max_lon)
        if west != east:
            zones = ", ".join(f"{cm}E" for cm in range(west, east + 1, 3))
            suggested = gk_zone_for_lon((min_lon + max_lon) / 2.0)
            raise CRSError(
                f"{func}: data spans longitudes {min_lon:.3f}°–{max_lon:.3f}°, which "
                f"crosses 3-degree Gauss-Kruger zones CM {zones}; pass "
                f"central_meridian={suggested} to choose one"
            )
        central_meridian = west
    return gdf.to_crs(f"EPSG:{gk_zone_epsg(central_meridian)}")


def transformer(source: Any, target: Any) -> pyproj.Transformer:
    """An ``always_xy`` pyproj Transformer from `source` to `target`, made once per pair.

    Making one costs 70-100 ms (PROJ searches its database for the best
    operation), more than reprojecting a whole city layer; pyproj's
    Transformers are thread-safe (pyproj >= 3.1), so one is shared.

    Examples
    --------
    >>> t = transformer("EPSG:4326", JINAN_GK)
    >>> t is transformer("EPSG:4326", JINAN_GK)
    True
    >>> transformer("EPSG:4326", "Jinan")
    Traceback (most recent call last):
    ...
    jngis.errors.CRSError: transformer: target='Jinan' is not a CRS pyproj understands; expected e.g. 'EPSG:4490' or 'EPSG:4548'
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
    return pyproj.Transformer.from_crs(source, target, always_xy=True)


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
    if not _is_lonlat_wgs84_like(crs):
        bounds = np.asarray(transformer(crs, CGCS2000).transform_bounds(*bounds, densify_pts=21))
    min_lon, min_lat, max_lon, max_lat = (float(value) for value in bounds)
    return min_lon, min_lat, max_lon, max_lat


# ----------------------------------------------------------------------------
# GCJ-02 and BD-09 on arrays
# ----------------------------------------------------------------------------


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coordinates:
    """Convert WGS84 longitude/latitude to GCJ-02 (Amap, Tencent).

    Points outside :data:`CHINA_BOUNDS` are returned unchanged.

    Parameters
    ----------
    lon, lat : float or array_like of float
        WGS84 (or CGCS2000) longitude and latitude in degrees, same shape.

    Returns
    -------
    (lon, lat) : tuple of float or of numpy.ndarray
        GCJ-02 coordinates, the same shape as the input.

    Raises
    ------
    InputTypeError
        If `lon` or `lat` is not numeric.
    ParameterError
        If the shapes differ or a value is outside lon [-180, 180] /
        lat [-90, 90].
    GeometryError
        If a coordinate is NaN or infinite.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(116.377817, 39.911954)
    >>> round(lon, 6), round(lat, 6)
    (116.384047, 39.913345)
    >>> wgs84_to_gcj02(139.7, 35.7)  # Tokyo: outside China, unchanged
    (139.7, 35.7)
    """
    return _convert("wgs84_to_gcj02", _wgs84_to_gcj02, lon, lat)


def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coordinates:
    """Convert GCJ-02 longitude/latitude to WGS84, iterated to < 1 mm.

    Starts from the usual one-step inverse (off by up to a few metres) and
    iterates ``wgs <- gcj - offset(wgs)`` until ``wgs84_to_gcj02(wgs)``
    reproduces the input to 1e-10 degrees. Points outside
    :data:`CHINA_BOUNDS` are returned unchanged.

    Parameters
    ----------
    lon, lat : float or array_like of float
        GCJ-02 longitude and latitude in degrees, same shape.

    Returns
    -------
    (lon, lat) : tuple of float or of numpy.ndarray
        WGS84 coordinates, the same shape as the input.

    Raises
    ------
    InputTypeError
        If `lon` or `lat` is not numeric.
    ParameterError
        If the shapes differ or a value is outside lon [-180, 180] /
        lat [-90, 90].
    GeometryError
        If a coordinate is NaN or infinite.

    Examples
    --------
    >>> import numpy as np
    >>> lon, lat = gcj02_to_wgs84(np.array([116.384047225]), np.array([39.913345455]))
    >>> np.round(lon, 6), np.round(lat, 6)
    (array([116.377817]), array([39.911954]))
    """
    return _convert("gcj02_to_wgs84", _gcj02_to_wgs84, lon, lat)


def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coordinates:
    """Convert GCJ-02 longitude/latitude to BD-09 (Baidu).

    Points outside :data:`CHINA_BOUNDS` are returned unchanged.

    Parameters
    ----------
    lon, lat : float or array_like of float
        GCJ-02 longitude and latitude in degrees, same shape.

    Returns
    -------
    (lon, lat) : tuple of float or of numpy.ndarray
        BD-09 coordinates, the same shape as the input.

    Raises
    ------
    InputTypeError
        If `lon` or `lat` is not numeric.
    ParameterError
        If the shapes differ or a value is outside lon [-180, 180] /
        lat [-90, 90].
    GeometryError
        If a coordinate is NaN or infinite.

    Examples
    --------
    >>> lon, lat = gcj02_to_bd09(123.0, 45.0)
    >>> round(lon, 6), round(lat, 6)
    (123.006365, 45.006369)
    """
    return _convert("gcj02_to_bd09", _gcj02_to_bd09, lon, lat)


def bd09_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coordinates:
    """Convert BD-09 longitude/latitude to GCJ-02, iterated to < 1 mm.

    Starts from the usual closed-form inverse (off by up to about 0.25 m)
    and iterates until ``gcj02_to_bd09`` of the answer reproduces the input
    to 1e-10 degrees. Points outside :data:`CHINA_BOUNDS` are returned
    unchanged.

    Parameters
    ----------
    lon, lat : float or array_like of float
        BD-09 longitude and latitude in degrees, same shape.

    Returns
    -------
    (lon, lat) : tuple of float or of numpy.ndarray
        GCJ-02 coordinates, the same shape as the input.

    Raises
    ------
    InputTypeError
        If `lon` or `lat` is not numeric.
    ParameterError
        If the shapes differ or a value is outside lon [-180, 180] /
        lat [-90, 90].
    GeometryError
        If a coordinate is NaN or infinite.

    Examples
    --------
    >>> lon, lat = bd09_to_gcj02(*gcj02_to_bd09(117.0, 36.65))
    >>> round(lon, 9), round(lat, 9)
    (117.0, 36.65)
    """
    return _convert("bd09_to_gcj02", _bd09_to_gcj02, lon, lat)


def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coordinates:
    """Convert WGS84 longitude/latitude to BD-09 (via GCJ-02).

    Parameters
    ----------
    lon, lat : float or array_like of float
        WGS84 (or CGCS2000) longitude and latitude in degrees, same shape.

    Returns
    -------
    (lon, lat) : tuple of float or of numpy.ndarray
        BD-09 coordinates, the same shape as the input.

    Raises
    ------
    InputTypeError
        If `lon` or `lat` is not numeric.
    ParameterError
        If the shapes differ or a value is outside lon [-180, 180] /
        lat [-90, 90].
    GeometryError
        If a coordinate is NaN or infinite.

    Examples
    --------
    >>> lon, lat = wgs84_to_bd09(123.0, 45.0)
    >>> round(lon, 5), round(lat, 5)
    (123.01245, 45.00833)
    """
    return _convert("wgs84_to_bd09", _wgs84_to_bd09, lon, lat)


def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coordinates:
    """Convert BD-09 longitude/latitude to WGS84 (via GCJ-02), to < 1 mm.

    Parameters
    ----------
    lon, lat : float or array_like of float
        BD-09 longitude and latitude in degrees, same shape.

    Returns
    -------
    (lon, lat) : tuple of float or of numpy.ndarray
        WGS84 coordinates, the same shape as the input.

    Raises
    ------
    InputTypeError
        If `lon` or `lat` is not numeric.
    ParameterError
        If the shapes differ or a value is outside lon [-180, 180] /
        lat [-90, 90].
    GeometryError
        If a coordinate is NaN or infinite.

    Examples
    --------
    >>> lon, lat = bd09_to_wgs84(*wgs84_to_bd09([117.0, 117.1], [36.65, 36.7]))
    >>> lon.round(9).tolist(), lat.round(9).tolist()
    ([117.0, 117.1], [36.65, 36.7])
    """
    return _convert("bd09_to_wgs84", _bd09_to_wgs84, lon, lat)


Converter = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _convert(func: str, converter: Converter, lon: Any, lat: Any) -> Coordinates:
    lon_arr, lat_arr = _lonlat_arrays(func, lon, lat)
    out_lon, out_lat = converter(lon_arr.ravel(), lat_arr.ravel())
    if lon_arr.ndim == 0:
        return float(out_lon[0]), float(out_lat[0])
    return out_lon.reshape(lon_arr.shape), out_lat.reshape(lat_arr.shape)


def _in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    min_lon, min_lat, max_lon, max_lat = CHINA_BOUNDS
    return (lon >= min_lon) & (lon <= max_lon) & (lat >= min_lat) & (lat <= max_lat)


def _gcj02_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 minus WGS84 at a WGS84 point, in degrees (the published formula)."""
    x = lon - 105.0
    y = lat - 35.0
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    dlat = (
        -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
        + common
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
        + common
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    rad_lat = lat / 180.0 * np.pi
    magic = 1.0 - _KRASOVSKY_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    meridian_radius = (_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrt_magic)
    parallel_radius = _KRASOVSKY_A / sqrt_magic * np.cos(rad_lat)
    dlat = (dlat * 180.0) / (meridian_radius * np.pi)
    dlon = (dlon * 180.0) / (parallel_radius * np.pi)
    return dlon, dlat


def _wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inside = _in_china(lon, lat)
    dlon, dlat = _gcj02_offset(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def _gcj02_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out_lon, out_lat = lon.copy(), lat.copy()
    inside = _in_china(lon, lat)
    gcj_lon, gcj_lat = lon[inside], lat[inside]

    def forward(wgs_lon: np.ndarray, wgs_lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dlon, dlat = _gcj02_offset(wgs_lon, wgs_lat)
        return wgs_lon + dlon, wgs_lat + dlat

    dlon, dlat = _gcj02_offset(gcj_lon, gcj_lat)
    out_lon[inside], out_lat[inside] = _refine_inverse(
        forward, gcj_lon, gcj_lat, gcj_lon - dlon, gcj_lat - dlat
    )
    return out_lon, out_lat


def _bd09_forward(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 -> BD-09, the published closed form, without the China test."""
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _BD_X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _BD_X_PI)
    return z * np.cos(theta) + _BD_DLON, z * np.sin(theta) + _BD_DLAT


def _gcj02_to_bd09(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inside = _in_china(lon, lat)
    bd_lon, bd_lat = _bd09_forward(lon, lat)
    return np.where(inside, bd_lon, lon), np.where(inside, bd_lat, lat)


def _bd09_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out_lon, out_lat = lon.copy(), lat.copy()
    inside = _in_china(lon, lat)
    bd_lon, bd_lat = lon[inside], lat[inside]
    # The widely used closed-form inverse: a start within ~0.25 m.
    x = bd_lon - _BD_DLON
    y = bd_lat - _BD_DLAT
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_X_PI)
    out_lon[inside], out_lat[inside] = _refine_inverse(
        _bd09_forward, bd_lon, bd_lat, z * np.cos(theta), z * np.sin(theta)
    )
    return out_lon, out_lat


def _refine_inverse(
    forward: Converter,
    target_lon: np.ndarray,
    target_lat: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``forward(p) = target`` by fixed-point iteration from `(lon, lat)`.

    ``p <- p - (forward(p) - target)`` converges because both forward
    transforms are the identity plus a term whose derivative is about 1e-3.
    """
    for _ in range(_INVERSE_MAX_ITERATIONS):
        fwd_lon, fwd_lat = forward(lon, lat)
        err_lon = fwd_lon - target_lon
        err_lat = fwd_lat - target_lat
        if lon.size == 0:
            break
        if max(np.abs(err_lon).max(), np.abs(err_lat).max()) <= _INVERSE_TOLERANCE_DEG:
            break
        lon = lon - err_lon
        lat = lat - err_lat
    return lon, lat


def _wgs84_to_bd09(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _gcj02_to_bd09(*_wgs84_to_gcj02(lon, lat))


def _bd09_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _gcj02_to_wgs84(*_bd09_to_gcj02(lon, lat))


# ----------------------------------------------------------------------------
# GCJ-02 and BD-09 on GeoDataFrames
# ----------------------------------------------------------------------------


def to_gcj02(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return `gdf` with its coordinates in GCJ-02 longitude/latitude.

    `gdf` may be in any CRS; it is first brought to WGS84 longitude/latitude
    (CGCS2000 data is taken as is: the two agree at map accuracy). There is
    no EPSG code for GCJ-02, so the result is *labelled* EPSG:4490 if `gdf`
    was in EPSG:4490 and EPSG:4326 otherwise, although its coordinates are
    GCJ-02: do not combine it with real WGS84/CGCS2000 data; use it only to
    feed GCJ-02 consumers (Amap, Tencent). Points outside
    :data:`CHINA_BOUNDS` are unchanged.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Data with a CRS.

    Returns
    -------
    geopandas.GeoDataFrame
        A new GeoDataFrame with the same index, columns and geometry types;
        `gdf` is never changed.

    Raises
    ------
    InputTypeError
        If `gdf` is not a GeoDataFrame.
    CRSError
        If `gdf` has no CRS.
    GeometryError
        If a coordinate is NaN or infinite.
    ParameterError
        If a coordinate is outside lon [-180, 180] / lat [-90, 90].

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> gdf = gpd.GeoDataFrame(geometry=[Point(116.377817, 39.911954)], crs="EPSG:4326")
    >>> gcj = to_gcj02(gdf)
    >>> point = gcj.geometry.iloc[0]
    >>> round(point.x, 6), round(point.y, 6)
    (116.384047, 39.913345)
    """
    return _shift_geodataframe("to_gcj02", gdf, _wgs84_to_gcj02, source="any")


def from_gcj02(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return `gdf`, whose coordinates are GCJ-02, in WGS84 longitude/latitude.

    GCJ-02 data (Amap, Tencent) usually arrives labelled EPSG:4326, EPSG:4490
    or with no CRS; any of these is accepted and the coordinates are taken as
    GCJ-02 longitude/latitude. The result is in EPSG:4490 if `gdf` was
    labelled EPSG:4490, else EPSG:4326. Inverted to < 1 mm (see
    :func:`gcj02_to_wgs84`). Points outside :data:`CHINA_BOUNDS` are
    unchanged.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Data with GCJ-02 longitude/latitude coordinates; CRS EPSG:4326,
        EPSG:4490 or none.

    Returns
    -------
    geopandas.GeoDataFrame
        A new GeoDataFrame with the same index, columns and geometry types;
        `gdf` is never changed.

    Raises
    ------
    InputTypeError
        If `gdf` is not a GeoDataFrame.
    CRSError
        If `gdf` has a CRS other than EPSG:4326 / EPSG:4490.
    GeometryError
        If a coordinate is NaN or infinite.
    ParameterError
        If a coordinate is outside lon [-180, 180] / lat [-90, 90].

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> gdf = gpd.GeoDataFrame(geometry=[Point(116.384047225, 39.913345455)])
    >>> wgs = from_gcj02(gdf)
    >>> point = wgs.geometry.iloc[0]
    >>> wgs.crs.to_epsg(), round(point.x, 6), round(point.y, 6)
    (4326, 116.377817, 39.911954)
    """
    return _shift_geodataframe("from_gcj02", gdf, _gcj02_to_wgs84, source="lonlat")


def to_bd09(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return `gdf` with its coordinates in BD-09 longitude/latitude (Baidu).

    As :func:`to_gcj02`: any input CRS; the result is *labelled* EPSG:4490
    if `gdf` was in EPSG:4490, else EPSG:4326, although its coordinates are
    BD-09.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Data with a CRS.

    Returns
    -------
    geopandas.GeoDataFrame
        A new GeoDataFrame with the same index, columns and geometry types;
        `gdf` is never changed.

    Raises
    ------
    InputTypeError
        If `gdf` is not a GeoDataFrame.
    CRSError
        If `gdf` has no CRS.
    GeometryError
        If a coordinate is NaN or infinite.
    ParameterError
        If a coordinate is outside lon [-180, 180] / lat [-90, 90].

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> gdf = gpd.GeoDataFrame(geometry=[Point(123.0, 45.0)], crs="EPSG:4490")
    >>> bd = to_bd09(gdf)
    >>> point = bd.geometry.iloc[0]
    >>> bd.crs.to_epsg(), round(point.x, 5), round(point.y, 5)
    (4490, 123.01245, 45.00833)
    """
    return _shift_geodataframe("to_bd09", gdf, _wgs84_to_bd09, source="any")


def from_bd09(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return `gdf`, whose coordinates are BD-09, in WGS84 longitude/latitude.

    As :func:`from_gcj02`: CRS EPSG:4326, EPSG:4490 or none is accepted and
    the coordinates are taken as BD-09; the result is in EPSG:4490 if `gdf`
    was labelled EPSG:4490, else EPSG:4326. Inverted to < 1 mm.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Data with BD-09 longitude/latitude coordinates; CRS EPSG:4326,
        EPSG:4490 or none.

    Returns
    -------
    geopandas.GeoDataFrame
        A new GeoDataFrame with the same index, columns and geometry types;
        `gdf` is never changed.

    Raises
    ------
    InputTypeError
        If `gdf` is not a GeoDataFrame.
    CRSError
        If `gdf` has a CRS other than EPSG:4326 / EPSG:4490.
    GeometryError
        If a coordinate is NaN or infinite.
    ParameterError
        If a coordinate is outside lon [-180, 180] / lat [-90, 90].

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import LineString
    >>> line = LineString([(117.0, 36.65), (117.1, 36.7)])
    >>> bd = to_bd09(gpd.GeoDataFrame(geometry=[line], crs="EPSG:4326"))
    >>> back = from_bd09(bd)
    >>> back.geometry.iloc[0].equals_exact(line, tolerance=1e-9)
    True
    """
    return _shift_geodataframe("from_bd09", gdf, _bd09_to_wgs84, source="lonlat")


def _shift_geodataframe(
    func: str, gdf: gpd.GeoDataFrame, converter: Converter, *, source: str
) -> gpd.GeoDataFrame:
    """Apply a GCJ-02/BD-09 `converter` to every coordinate of `gdf`.

    source="any" (the to_* functions): `gdf` needs a CRS and is brought to
    WGS84 lon/lat first. source="lonlat" (the from_* functions): `gdf` holds
    shifted lon/lat already, labelled EPSG:4326, EPSG:4490 or not at all.
    """
    _check_geodataframe(func, gdf)
    if source == "any":
        crs = _require_crs(func, gdf)
        if _is_lonlat_wgs84_like(crs):
            lonlat = gdf
        else:
            lonlat = gdf.to_crs(WGS84)
    else:
        crs = gdf.crs
        if crs is not None and not _is_lonlat_wgs84_like(crs):
            raise CRSError(
                f"{func}: gdf.crs is {_crs_label(crs)}; expected the longitude/latitude "
                "CRS the shifted coordinates are usually labelled with, EPSG:4326 or "
                "EPSG:4490, or no CRS"
            )
        lonlat = gdf
    target_crs = CGCS2000 if crs is not None and _is_cgcs2000(crs) else WGS84

    geoms = lonlat.geometry.values
    coords, rows = shapely.get_coordinates(geoms, return_index=True)
    _validate_lonlat(
        func, coords[:, 0], coords[:, 1], "gdf.geometry",
        locate=lambda i: f"row {lonlat.index[rows[i]]!r}",
    )

    def shift(points: np.ndarray) -> np.ndarray:
        shifted = points.copy()
        shifted[:, 0], shifted[:, 1] = converter(points[:, 0], points[:, 1])
        return shifted

    # include_z=None keeps each geometry's own dimensionality (Z kept as is).
    shifted_geoms = shapely.transform(np.asarray(geoms), shift, include_z=None)
    result = gdf.copy()
    geometry = gpd.GeoSeries(shifted_geoms, index=gdf.index, crs=target_crs)
    result[gdf.geometry.name] = geometry
    return result.set_crs(target_crs, allow_override=True)


# ----------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------


def _check_geodataframe(func: str, gdf: object) -> None:
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputTypeError(
            f"{func}: gdf has type {type(gdf).__name__}; expected a "
            "geopandas.GeoDataFrame"
        )


def _require_crs(func: str, gdf: gpd.GeoDataFrame) -> pyproj.CRS:
    if gdf.crs is None:
        raise CRSError(
            f"{func}: gdf.crs is None; expected a GeoDataFrame with a CRS: call "
            f"gdf.set_crs(...) first, e.g. gdf.set_crs('{CGCS2000}') for CGCS2000 "
            "longitude/latitude"
        )
    return pyproj.CRS.from_user_input(gdf.crs)


def _is_lonlat_wgs84_like(crs: pyproj.CRS) -> bool:
    """EPSG:4326 or EPSG:4490 (or OGC:CRS84): lon/lat equal to WGS84 at map accuracy."""
    return _is_cgcs2000(crs) or crs.equals(pyproj.CRS(WGS84), ignore_axis_order=True)


def _is_cgcs2000(crs: pyproj.CRS) -> bool:
    return crs.equals(pyproj.CRS(CGCS2000), ignore_axis_order=True)


def _crs_label(crs: pyproj.CRS) -> str:
    authority = crs.to_authority()
    return f"{authority[0]}:{authority[1]} ({crs.name})" if authority else repr(crs.name)


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
