"""GCJ-02 and BD-09 <-> WGS84 on longitude/latitude arrays (see :mod:`jngis.crs`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from jngis.crs._docs import array_converter
from jngis.crs.base import CHINA_BOUNDS, Coordinates, _lonlat_arrays

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

# ----------------------------------------------------------------------------
# GCJ-02 and BD-09 on arrays
# ----------------------------------------------------------------------------


@array_converter("WGS84 (or CGCS2000)", "GCJ-02", """
    Convert WGS84 longitude/latitude to GCJ-02 (Amap, Tencent).

    Points outside :data:`CHINA_BOUNDS` are returned unchanged.
    """, """
    >>> lon, lat = wgs84_to_gcj02(116.377817, 39.911954)
    >>> round(lon, 6), round(lat, 6)
    (116.384047, 39.913345)
    >>> wgs84_to_gcj02(139.7, 35.7)  # Tokyo: outside China, unchanged
    (139.7, 35.7)
    """)
def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coordinates:
    return _convert("wgs84_to_gcj02", _wgs84_to_gcj02, lon, lat)


@array_converter("GCJ-02", "WGS84", """
    Convert GCJ-02 longitude/latitude to WGS84, iterated to < 1 mm.

    Starts from the usual one-step inverse (off by up to a few metres) and
    iterates ``wgs <- gcj - offset(wgs)`` until ``wgs84_to_gcj02(wgs)``
    reproduces the input to 1e-10 degrees. Points outside
    :data:`CHINA_BOUNDS` are returned unchanged.
    """, """
    >>> import numpy as np
    >>> lon, lat = gcj02_to_wgs84(np.array([116.384047225]), np.array([39.913345455]))
    >>> np.round(lon, 6), np.round(lat, 6)
    (array([116.377817]), array([39.911954]))
    """)
def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coordinates:
    return _convert("gcj02_to_wgs84", _gcj02_to_wgs84, lon, lat)


@array_converter("GCJ-02", "BD-09", """
    Convert GCJ-02 longitude/latitude to BD-09 (Baidu).

    Points outside :data:`CHINA_BOUNDS` are returned unchanged.
    """, """
    >>> lon, lat = gcj02_to_bd09(123.0, 45.0)
    >>> round(lon, 6), round(lat, 6)
    (123.006365, 45.006369)
    """)
def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coordinates:
    return _convert("gcj02_to_bd09", _gcj02_to_bd09, lon, lat)


@array_converter("BD-09", "GCJ-02", """
    Convert BD-09 longitude/latitude to GCJ-02, iterated to < 1 mm.

    Starts from the usual closed-form inverse (off by up to about 0.25 m)
    and iterates until ``gcj02_to_bd09`` of the answer reproduces the input
    to 1e-10 degrees. Points outside :data:`CHINA_BOUNDS` are returned
    unchanged.
    """, """
    >>> lon, lat = bd09_to_gcj02(*gcj02_to_bd09(117.0, 36.65))
    >>> round(lon, 9), round(lat, 9)
    (117.0, 36.65)
    """)
def bd09_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coordinates:
    return _convert("bd09_to_gcj02", _bd09_to_gcj02, lon, lat)


@array_converter("WGS84 (or CGCS2000)", "BD-09", """
    Convert WGS84 longitude/latitude to BD-09 (via GCJ-02).
    """, """
    >>> lon, lat = wgs84_to_bd09(123.0, 45.0)
    >>> round(lon, 5), round(lat, 5)
    (123.01245, 45.00833)
    """)
def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coordinates:
    return _convert("wgs84_to_bd09", _wgs84_to_bd09, lon, lat)


@array_converter("BD-09", "WGS84", """
    Convert BD-09 longitude/latitude to WGS84 (via GCJ-02), to < 1 mm.
    """, """
    >>> lon, lat = bd09_to_wgs84(*wgs84_to_bd09([117.0, 117.1], [36.65, 36.7]))
    >>> lon.round(9).tolist(), lat.round(9).tolist()
    ([117.0, 117.1], [36.65, 36.7])
    """)
def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> Coordinates:
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
