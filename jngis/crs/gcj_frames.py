"""GCJ-02 and BD-09 on GeoDataFrames: every coordinate of every geometry at once."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from jngis.crs._docs import frame_converter
from jngis.crs.base import (
    CGCS2000,
    WGS84,
    _check_geodataframe,
    _crs_label,
    _is_cgcs2000,
    _is_lonlat_wgs84_like,
    _require_crs,
    _validate_lonlat,
)
from jngis.crs.gcj import Converter, _bd09_to_wgs84, _gcj02_to_wgs84, _wgs84_to_bd09, _wgs84_to_gcj02
from jngis.errors import CRSError

# ----------------------------------------------------------------------------
# GCJ-02 and BD-09 on GeoDataFrames
# ----------------------------------------------------------------------------


@frame_converter("any", "GCJ-02", """
    Return `gdf` with its coordinates in GCJ-02 longitude/latitude.

    `gdf` may be in any CRS; it is first brought to WGS84 longitude/latitude
    (CGCS2000 data is taken as is: the two agree at map accuracy). There is
    no EPSG code for GCJ-02, so the result is *labelled* EPSG:4490 if `gdf`
    was in EPSG:4490 and EPSG:4326 otherwise, although its coordinates are
    GCJ-02: do not combine it with real WGS84/CGCS2000 data; use it only to
    feed GCJ-02 consumers (Amap, Tencent). Points outside
    :data:`CHINA_BOUNDS` are unchanged.
    """, """
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> gdf = gpd.GeoDataFrame(geometry=[Point(116.377817, 39.911954)], crs="EPSG:4326")
    >>> gcj = to_gcj02(gdf)
    >>> point = gcj.geometry.iloc[0]
    >>> round(point.x, 6), round(point.y, 6)
    (116.384047, 39.913345)
    """)
def to_gcj02(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return _shift_geodataframe("to_gcj02", gdf, _wgs84_to_gcj02, source="any")


@frame_converter("lonlat", "GCJ-02", """
    Return `gdf`, whose coordinates are GCJ-02, in WGS84 longitude/latitude.

    GCJ-02 data (Amap, Tencent) usually arrives labelled EPSG:4326, EPSG:4490
    or with no CRS; any of these is accepted and the coordinates are taken as
    GCJ-02 longitude/latitude. The result is in EPSG:4490 if `gdf` was
    labelled EPSG:4490, else EPSG:4326. Inverted to < 1 mm (see
    :func:`gcj02_to_wgs84`). Points outside :data:`CHINA_BOUNDS` are
    unchanged.
    """, """
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> gdf = gpd.GeoDataFrame(geometry=[Point(116.384047225, 39.913345455)])
    >>> wgs = from_gcj02(gdf)
    >>> point = wgs.geometry.iloc[0]
    >>> wgs.crs.to_epsg(), round(point.x, 6), round(point.y, 6)
    (4326, 116.377817, 39.911954)
    """)
def from_gcj02(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return _shift_geodataframe("from_gcj02", gdf, _gcj02_to_wgs84, source="lonlat")


@frame_converter("any", "BD-09", """
    Return `gdf` with its coordinates in BD-09 longitude/latitude (Baidu).

    As :func:`to_gcj02`: any input CRS; the result is *labelled* EPSG:4490
    if `gdf` was in EPSG:4490, else EPSG:4326, although its coordinates are
    BD-09.
    """, """
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> gdf = gpd.GeoDataFrame(geometry=[Point(123.0, 45.0)], crs="EPSG:4490")
    >>> bd = to_bd09(gdf)
    >>> point = bd.geometry.iloc[0]
    >>> bd.crs.to_epsg(), round(point.x, 5), round(point.y, 5)
    (4490, 123.01245, 45.00833)
    """)
def to_bd09(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return _shift_geodataframe("to_bd09", gdf, _wgs84_to_bd09, source="any")


@frame_converter("lonlat", "BD-09", """
    Return `gdf`, whose coordinates are BD-09, in WGS84 longitude/latitude.

    As :func:`from_gcj02`: CRS EPSG:4326, EPSG:4490 or none is accepted and
    the coordinates are taken as BD-09; the result is in EPSG:4490 if `gdf`
    was labelled EPSG:4490, else EPSG:4326. Inverted to < 1 mm.
    """, """
    >>> import geopandas as gpd
    >>> from shapely import LineString
    >>> line = LineString([(117.0, 36.65), (117.1, 36.7)])
    >>> bd = to_bd09(gpd.GeoDataFrame(geometry=[line], crs="EPSG:4326"))
    >>> back = from_bd09(bd)
    >>> back.geometry.iloc[0].equals_exact(line, tolerance=1e-9)
    True
    """)
def from_bd09(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
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
