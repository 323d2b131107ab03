"""Points -> polygons: fast, exact point-in-polygon assignment.

:func:`assign` places every point (a station, a party organisation, a 12345
work order) in the polygon that contains it and returns the polygon's key
(``grid_code``, ``community_code``...) as a Series aligned with the points.
:class:`PolygonIndex` builds the search structure once and answers many calls:
the work-order service and the map server locate single points per request.

How it works
------------
Two steps, both exact:

1. A grid pre-pass (numba kernels in :mod:`jngis._pip`). The polygons'
   bounding box is cut into square cells; every ring edge is listed in the
   cells it comes near, and the polygons containing each cell's centre are
   found once by a scanline. A point in a cell without edges gets the
   centre's answer; otherwise it walks the straight segment from the centre
   to itself, and each of the cell's edges it crosses toggles that edge's
   polygon. The side tests use Shewchuk's orientation filter: a sign is
   trusted only beyond the determinant's proven rounding bound.
   A batch of 20,000 points or more is first sorted by block of 8 x 8 cells
   (the grid is then read in order, not at random), and from 100,000 points
   on it is located in one slice per core (:mod:`jngis._threads`); a
   one-off :func:`assign` reads the points' coordinates and checks the
   polygons' validity in those threads while it builds the grid.
2. Points the pre-pass cannot decide with certainty — on an edge or an
   edge's line, a walk through a vertex, a centre next to a crossing or
   inside overlapping polygons — go through shapely's STRtree with the
   ``intersects`` predicate (GEOS, exact in floating point), then
   ``contains_xy`` for points several polygons claim.

Measured alternatives (benchmarks/RESULTS.md): the previous two-level raster
(scipy.ndimage regions, fine cells near edges, GEOS for every near-edge
point) built the sample's grids in 2.6-3.5 s and answered a one-off million
points at 1.1-1.5x sjoin; the STRtree path alone is about half sjoin's speed.

Boundary rule
-------------
Polygons are closed: a point on a polygon's edge belongs to it. Where
several polygons could claim a point the rule is deterministic and does not
depend on row order:

1. polygons that contain the point in their interior win over polygons that
   only have it on their boundary (so the answer equals
   ``geopandas.sjoin(..., predicate="within")`` wherever that gives exactly
   one polygon);
2. among those, the polygon with the lowest key wins (ties between equal keys:
   the first row).

So a point on the shared edge of grids ``...001`` and ``...002`` goes to
``...001``; a point on the outer edge of the city goes to the one polygon
whose edge it is on; a point in no polygon is NA and counted in an
:class:`~jngis.errors.UnassignedPointsWarning`, never dropped.

CRS
---
Points in another CRS than the polygons are transformed to the polygons' CRS
with pyproj (never compared raw). Consumer-map coordinates have no EPSG code:
pass ``coords="gcj02"`` (Amap, Tencent) or ``coords="bd09"`` (Baidu) and the
points' longitude/latitude are converted to WGS84 with :mod:`jngis.crs` first.

Examples
--------
>>> import geopandas as gpd, shapely
>>> grids = gpd.GeoDataFrame(
...     {"grid_code": ["370102001001001", "370102001001002"]},
...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)],
...     crs="EPSG:4548")
>>> points = gpd.GeoDataFrame(
...     geometry=gpd.points_from_xy([50, 100, 150], [50, 50, 50]), crs="EPSG:4548")
>>> assign(points, grids).tolist()
['370102001001001', '370102001001001', '370102001001002']
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis.assign.index import PolygonIndex
from jngis.assign.inputs import checked_coordinates, point_geometries, start_reading
from jngis.codes import INPUT_CRS_NAMES

__all__ = ["assign", "PolygonIndex", "COORDS"]

COORDS = INPUT_CRS_NAMES
"""Values of ``coords=``: what the points' longitude/latitude really are (:data:`jngis.codes.INPUT_CRS_NAMES`)."""

# assign() builds the grid when there are at least this many points per polygon edge;
# with fewer it tests the points' own geometries through the STRtree.
_GRID_POINTS_PER_EDGE = 0.25


def assign(
    points: gpd.GeoDataFrame | gpd.GeoSeries,
    polygons: gpd.GeoDataFrame,
    *,
    key: str = "grid_code",
    coords: str | None = None,
) -> pd.Series:
    """Key of the polygon containing each point, aligned with `points`.

    Exact and deterministic (see the boundary rule in :mod:`jngis.assign`):
    interior beats boundary, then the lowest key, with the same answer as
    ``geopandas.sjoin(points, polygons, predicate="within")`` wherever sjoin
    finds exactly one polygon. To place points against the same polygons many
    times, build a :class:`PolygonIndex` once (several times faster per call).

    Parameters
    ----------
    points : geopandas.GeoDataFrame or geopandas.GeoSeries
        Point geometries in any CRS (transformed to the polygons' CRS). Missing
        or empty geometries and NaN coordinates give NA (counted in the warning).
    polygons : geopandas.GeoDataFrame
        Valid (Multi)Polygons with a CRS and a `key` column.
    key : str, default "grid_code"
        Column of `polygons` to return.
    coords : {"wgs84", "cgcs2000", "gcj02", "bd09"}, optional
        What the points' longitude/latitude really are when ``points.crs``
        cannot say (then EPSG:4326, EPSG:4490 or None): "gcj02" (Amap, Tencent)
        and "bd09" (Baidu) are converted to WGS84 with :mod:`jngis.crs` first.

    Returns
    -------
    pandas.Series
        Named `key`, indexed like `points`, with the key's dtype (integers
        as nullable ``Int64``); NA where a point lies in no polygon, counted in
        an :class:`~jngis.errors.UnassignedPointsWarning`.

    Raises
    ------
    InputTypeError
        `points` / `polygons` of another type (points may be a GeoSeries).
    SchemaError
        `key` not a column of `polygons`, or missing on a polygon.
    CRSError
        No CRS on either side (and no `coords`), or `coords` contradicting ``points.crs``.
    GeometryError
        A point that is not a Point; a polygon missing, empty, invalid or not a (Multi)Polygon.
    ParameterError
        `coords` not one of the allowed values, or `polygons` empty.

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> city = load_slice()
    >>> codes = assign(city.stations, city.communities, key="community_code")
    >>> bool(codes.notna().all()), codes.index.equals(city.stations.index)
    (True, True)
    """
    series, geoms = point_geometries("assign", points)
    # The points' coordinates are read in the pool while the index is built here.
    reading = start_reading(geoms)
    try:
        index = PolygonIndex(polygons, key=key, raster=_worth_a_grid(points, polygons))
    except Exception:
        checked_coordinates("assign", series, geoms, reading)  # the points' errors come first
        raise
    xy = checked_coordinates("assign", series, geoms, reading)
    return index._assign("assign", points, coords=coords, warn=True, xy=xy)


def _worth_a_grid(points: gpd.GeoDataFrame | gpd.GeoSeries, polygons: gpd.GeoDataFrame) -> bool:
    """Whether a one-off call should build the grid pre-pass.

    It pays unless the points are few against the polygons' edges (fewer than one
    per four): then the STRtree over the points' own geometries is quicker than
    listing every edge in its cells (about sjoin's speed).
    """
    n_edges = int(shapely.get_num_coordinates(np.asarray(polygons.geometry.values)).sum()) \
        if isinstance(polygons, gpd.GeoDataFrame) else 0
    return len(points) >= _GRID_POINTS_PER_EDGE * n_edges
