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

import warnings
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from jngis import _pip
from jngis import crs as jcrs
from jngis.errors import (
    CRSError,
    GeometryError,
    InputTypeError,
    ParameterError,
    SchemaError,
    UnassignedPointsWarning,
)

__all__ = ["assign", "PolygonIndex", "COORDS"]

COORDS = ("wgs84", "cgcs2000", "gcj02", "bd09")
"""Values of ``coords=``: what the points' longitude/latitude really are."""

# The default grid has about this many cells per polygon edge (see _build_grid).
_CELLS_PER_EDGE = 8.0
# Largest grid (cells) built: 8 bytes a cell, so about 400 MB.
_MAX_CELLS = 50_000_000
# assign() builds the grid when there are at least this many points per polygon edge;
# with fewer it tests the points' own geometries through the STRtree.
_GRID_POINTS_PER_EDGE = 0.25


class PolygonIndex:
    """Polygons prepared for repeated point-in-polygon lookups.

    Build it once (a fraction of a second for a city's 40,000 blocks) and call
    :meth:`assign` or :meth:`locate_xy` as often as needed. A single-point
    lookup takes some microseconds. The index is read-only after
    construction and safe to share between threads (the STRtree is built
    eagerly in ``__init__``; the grid's arrays are never written again).

    Parameters
    ----------
    polygons : geopandas.GeoDataFrame
        Polygons or MultiPolygons, valid and non-empty, with a CRS. They may
        overlap or leave gaps; the boundary rule (see :mod:`jngis.assign`)
        decides points claimed by several polygons.
    key : str, default "grid_code"
        Column whose value is returned for each point. Need not be unique
        (e.g. units located by ``community_code``); must not be missing.
    cell_size : float, optional
        Side of a grid cell in the polygons' CRS units. By default sized so
        that the grid has about eight cells per polygon edge.
    raster : bool, default True
        Build the grid pre-pass. Without it every point goes through the
        STRtree (as geopandas.sjoin does): no build time, for a few points.

    Attributes
    ----------
    crs : pyproj.CRS
        The polygons' CRS; points in other CRSs are transformed to it.
    key : str
        The key column.
    keys : numpy.ndarray
        The key of each polygon, in row order (object array).
    cell_size : float
        The grid cell side used (NaN without the grid).
    stats : dict
        Build figures: cells, edges, listed edges, undecided cells, memory in
        bytes, seconds.

    Raises
    ------
    InputTypeError
        If `polygons` is not a GeoDataFrame, or a parameter has the wrong type.
    SchemaError
        If `key` is not a column or has missing values.
    CRSError
        If `polygons` has no CRS.
    GeometryError
        If a geometry is missing, empty, invalid or not a (Multi)Polygon, or
        has non-finite coordinates.
    ParameterError
        If `polygons` is empty or `cell_size` is not positive or makes a
        grid of more than 50,000,000 cells.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> communities = gpd.GeoDataFrame(
    ...     {"community_code": ["370102001001", "370102001002"]},
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)],
    ...     crs="EPSG:4548")
    >>> index = PolygonIndex(communities, key="community_code")
    >>> index.locate_xy([10.0, 150.0, 500.0], [10.0, 10.0, 10.0]).tolist()
    ['370102001001', '370102001002', None]
    """

    def __init__(
        self,
        polygons: gpd.GeoDataFrame,
        *,
        key: str = "grid_code",
        cell_size: float | None = None,
        raster: bool = True,
    ) -> None:
        import time

        started = time.perf_counter()
        func = "PolygonIndex"
        geoms, keys, crs = _check_polygons(func, polygons, key)
        if cell_size is not None:
            cell_size = _check_positive_float(func, "cell_size", cell_size)

        self.key = key
        self.crs = crs
        self.keys = keys
        self._key_values = polygons[key]
        self._geoms = geoms
        # Rank of each polygon under the boundary rule: lowest key first, then row.
        self._rank = _key_ranks(func, keys, key)
        self._tree = shapely.STRtree(self._geoms)
        self._tree.query(shapely.points(shapely.total_bounds(self._geoms)[:2]))  # built now

        if not isinstance(raster, bool):
            raise InputTypeError(
                f"{func}: raster={raster!r} has type {type(raster).__name__}; expected a bool"
            )
        self.raster = raster
        if raster:
            self._build_grid(func, cell_size)
        else:
            self.cell_size = float("nan")
            self.stats = {"bytes": 0}
        self.stats["seconds"] = time.perf_counter() - started

    # ------------------------------------------------------------------ public

    def __len__(self) -> int:
        return len(self._geoms)

    def __repr__(self) -> str:
        return (
            f"PolygonIndex({len(self)} polygons, key={self.key!r}, "
            f"crs={_crs_label(self.crs)}, cell_size={self.cell_size:.4g})"
        )

    def locate_xy(self, x: Any, y: Any, crs: Any = None) -> np.ndarray:
        """Keys of the polygons containing the points ``(x, y)``.

        Parameters
        ----------
        x, y : float or array_like of float
            Coordinates, same shape (any number of dimensions).
        crs : CRS-like, optional
            CRS of `x` / `y` (anything ``pyproj.CRS`` accepts); default: the
            polygons' CRS.

        Returns
        -------
        numpy.ndarray
            Object array of the same shape as `x`, holding each point's key,
            or None where the point lies in no polygon or has a NaN
            coordinate.

        Raises
        ------
        InputTypeError
            If `x` or `y` is not numeric.
        ParameterError
            If `x` and `y` differ in shape.
        CRSError
            If `crs` is not a valid CRS.

        Examples
        --------
        >>> import geopandas as gpd, shapely
        >>> grids = gpd.GeoDataFrame({"grid_code": ["370102001001001"]},
        ...     geometry=[shapely.box(500000, 4060000, 500300, 4060300)], crs="EPSG:4548")
        >>> index = PolygonIndex(grids)
        >>> index.locate_xy(500100.0, 4060100.0).tolist()
        '370102001001001'
        >>> index.locate_xy([117.0], [36.67], crs="EPSG:4490").tolist()
        [None]
        """
        func = "PolygonIndex.locate_xy"
        x_arr = jcrs._as_float_array(func, "x", x, unit=None)
        y_arr = jcrs._as_float_array(func, "y", y, unit=None)
        if x_arr.shape != y_arr.shape:
            raise ParameterError(
                f"{func}: x has shape {x_arr.shape} and y has shape {y_arr.shape}; "
                "expected x and y of the same shape"
            )
        shape = x_arr.shape
        x_flat, y_flat = x_arr.ravel(), y_arr.ravel()
        if crs is not None:
            x_flat, y_flat = self._transform(func, "crs", crs, x_flat, y_flat)
        positions = self.locate_positions(x_flat, y_flat)
        out = np.empty(positions.shape, dtype=object)
        found = positions >= 0
        out[found] = self.keys[positions[found]]
        return out.reshape(shape)

    def locate_positions(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Row positions (0-based) of the polygons containing ``(x, y)``.

        The low-level form of :meth:`locate_xy` (as shapely's STRtree returns
        integer indices): float64 1-D arrays in the polygons' CRS in,
        ``int64`` positions out, -1 for no polygon or a NaN coordinate. No
        input checks.

        Examples
        --------
        >>> import geopandas as gpd, shapely
        >>> index = PolygonIndex(gpd.GeoDataFrame({"grid_code": ["a", "b"]},
        ...     geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs="EPSG:4548"))
        >>> index.locate_positions(np.array([0.5, 1.0, 1.5, 9.0]), np.array([0.5] * 4)).tolist()
        [0, 0, 1, -1]
        """
        # contiguous float64: the one array type the numba kernel is compiled for (a strided
        # view would compile another version, possibly in a request thread)
        x = np.ascontiguousarray(x, dtype=np.float64)
        y = np.ascontiguousarray(y, dtype=np.float64)
        if not self.raster:
            return self._exact(x, y)
        g = self._grid
        result = np.empty(x.shape, dtype=np.int64)
        _pip.locate(x, y, g.x0, g.y0, g.cell, g.nx, g.ny, g.state, g.start, g.seg, g.segside,
                    g.segpoly, self._rank, result)
        undecided = np.flatnonzero(result == _pip.FALLBACK)
        if undecided.size:
            result[undecided] = self._exact(x[undecided], y[undecided])
        return result

    def assign(self, points: gpd.GeoDataFrame | gpd.GeoSeries, *, coords: str | None = None,
               warn: bool = True) -> pd.Series:
        """Key of the polygon containing each point; see :func:`assign`.

        Examples
        --------
        >>> import geopandas as gpd, shapely
        >>> index = PolygonIndex(gpd.GeoDataFrame({"grid_code": ["370102001001001"]},
        ...     geometry=[shapely.box(0, 0, 100, 100)], crs="EPSG:4548"))
        >>> points = gpd.GeoSeries.from_xy([10, 20], [10, 20], crs="EPSG:4548")
        >>> index.assign(points).tolist()
        ['370102001001001', '370102001001001']
        """
        return self._assign("PolygonIndex.assign", points, coords=coords, warn=warn)

    def positions(self, points: gpd.GeoDataFrame | gpd.GeoSeries, *,
                  coords: str | None = None) -> np.ndarray:
        """Row positions of the polygons containing `points` (-1: none), no warning.

        The integer form of :meth:`assign`, for callers that aggregate by
        polygon (e.g. :func:`jngis.grid_stats`).

        Examples
        --------
        >>> import geopandas as gpd, shapely
        >>> index = PolygonIndex(gpd.GeoDataFrame({"grid_code": ["a", "b"]},
        ...     geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs="EPSG:4548"))
        >>> index.positions(gpd.GeoSeries.from_xy([1.5, 5], [0.5, 5], crs="EPSG:4548")).tolist()
        [1, -1]
        """
        func = "PolygonIndex.positions"
        x, y, _ = _point_coordinates(func, points)
        return self._positions_of(func, points, coords, x, y)

    def _positions_of(self, func: str, points: Any, coords: str | None, x: np.ndarray,
                      y: np.ndarray) -> np.ndarray:
        tx, ty = self._points_to_own_crs(func, points, coords, x, y)
        if not self.raster and tx is x:
            # Untransformed points: query the tree with their own geometries
            # rather than building new ones (the costly part of this path).
            series = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
            return self._exact(x, y, np.asarray(series.values, dtype=object))
        return self.locate_positions(tx, ty)

    # ----------------------------------------------------------------- private

    def _assign(self, func: str, points: Any, *, coords: str | None, warn: bool,
                xy: tuple[np.ndarray, np.ndarray, pd.Index] | None = None) -> pd.Series:
        x, y, index = _point_coordinates(func, points) if xy is None else xy
        positions = self._positions_of(func, points, coords, x, y)
        missing = ~(np.isfinite(x) & np.isfinite(y))
        found = positions >= 0
        values = self._key_values
        if pd.api.types.is_integer_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
            values = values.astype("Int64" if not pd.api.types.is_bool_dtype(values.dtype)
                                   else "boolean")
        taken = values.array.take(np.where(found, positions, -1), allow_fill=True)
        result = pd.Series(taken, index=index, name=self.key)
        unassigned = int((~found).sum())
        if warn and unassigned:
            n_missing = int(missing.sum())
            detail = (f" ({n_missing} of them without a location)" if n_missing else "")
            warnings.warn(
                f"{func}: {unassigned} of {len(positions)} point(s) lie in no polygon{detail}; "
                f"their {self.key} is NA (kept, not dropped). 有 {unassigned} 个点不在任何"
                "多边形内，已保留为空值。",
                UnassignedPointsWarning,
                stacklevel=3,
            )
        return result

    def _points_to_own_crs(
        self, func: str, points: Any, coords: str | None, x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        source = points.crs
        if coords is not None:
            if coords not in COORDS:
                raise ParameterError(
                    f"{func}: coords={coords!r}; expected one of {COORDS} or None "
                    "(None: the points' coordinates are in points.crs)"
                )
            if source is not None and not jcrs._is_lonlat_wgs84_like(pyproj.CRS(source)):
                raise CRSError(
                    f"{func}: coords={coords!r} says the points are longitude/latitude, "
                    f"but points.crs is {_crs_label(pyproj.CRS(source))}; expected "
                    "points.crs EPSG:4326, EPSG:4490 or None with coords="
                    f"{coords!r}, or coords=None for projected points"
                )
            finite = np.isfinite(x) & np.isfinite(y)
            if coords in ("gcj02", "bd09"):
                convert = jcrs.gcj02_to_wgs84 if coords == "gcj02" else jcrs.bd09_to_wgs84
                x, y = x.copy(), y.copy()
                if finite.any():
                    x[finite], y[finite] = convert(x[finite], y[finite])
            source = jcrs.CGCS2000 if coords == "cgcs2000" else jcrs.WGS84
        if source is None:
            raise CRSError(
                f"{func}: points.crs is None; expected points with a CRS (e.g. "
                f"points.set_crs('{jcrs.CGCS2000}')), or coords='wgs84' / 'gcj02' / "
                "'bd09' for longitude/latitude from GPS, Amap/Tencent or Baidu"
            )
        return self._transform(func, "points.crs", source, x, y)

    def _transform(
        self, func: str, what: str, source: Any, x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        try:
            source_crs = pyproj.CRS.from_user_input(source)
        except pyproj.exceptions.CRSError as error:
            raise CRSError(
                f"{func}: {what}={source!r} is not a CRS pyproj understands ({error}); "
                "expected e.g. 'EPSG:4490' or 'EPSG:4548'"
            ) from None
        if source_crs == self.crs:
            return x, y
        with np.errstate(invalid="ignore"):
            tx, ty = jcrs.transformer(source_crs, self.crs).transform(x, y, errcheck=False)
        return np.asarray(tx, dtype=np.float64), np.asarray(ty, dtype=np.float64)

    def _exact(self, x: np.ndarray, y: np.ndarray, geoms: np.ndarray | None = None
               ) -> np.ndarray:
        """The boundary rule for any points, with STRtree candidates.

        `geoms`, if given, are the points as geometries (saves building them).
        The tree tests ``intersects`` with each point prepared (as
        ``geopandas.sjoin`` does); only points claimed by several polygons
        are tested again, for their interior.
        """
        answer = np.full(x.shape, -1, dtype=np.int64)
        finite = np.isfinite(x) & np.isfinite(y)
        if not finite.any():
            return answer
        rows = np.flatnonzero(finite)
        query = shapely.points(x[rows], y[rows]) if geoms is None else geoms[rows]
        point_idx, poly_idx = self._tree.query(query, predicate="intersects")
        answer[rows] = self._decide(point_idx, poly_idx, x[rows], y[rows])
        return answer

    def _decide(
        self, point_idx: np.ndarray, poly_idx: np.ndarray, x: np.ndarray, y: np.ndarray
    ) -> np.ndarray:
        """Apply the boundary rule to the pairs (point, polygon that covers it).

        Returns, for each of the ``len(x)`` points, the chosen polygon or -1.
        """
        answer = np.full(x.shape, -1, dtype=np.int64)
        if point_idx.size == 0:
            return answer
        hits = np.bincount(point_idx, minlength=x.size)
        single = hits[point_idx] == 1
        answer[point_idx[single]] = poly_idx[single]
        contested = ~single
        if contested.any():
            # Claimed by several polygons: interior beats boundary, then rank.
            point_idx, poly_idx = point_idx[contested], poly_idx[contested]
            interior = shapely.contains_xy(self._geoms[poly_idx], x[point_idx], y[point_idx])
            score = interior.astype(np.int64) * (len(self._geoms) + 1) - self._rank[poly_idx]
            best = np.lexsort((-score, point_idx))
            first = np.ones(best.size, dtype=bool)
            first[1:] = point_idx[best][1:] != point_idx[best][:-1]
            chosen = best[first]
            answer[point_idx[chosen]] = poly_idx[chosen]
        return answer

    def _build_grid(self, func: str, cell_size: float | None) -> None:
        """The cell grid of the pre-pass (see the module docstring)."""
        ax, ay, bx, by, poly = _ring_edges(self._geoms)
        minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(self._geoms))
        width, height = maxx - minx, maxy - miny
        given = cell_size
        if cell_size is None:
            # About _CELLS_PER_EDGE cells per edge: with the edges spread over a
            # city's built-up part, a cell then lists a few to a few dozen
            # edges, and the grid costs about as much memory as the edges.
            area = max(width * height, 1e-300)
            cell_size = np.sqrt(area / (_CELLS_PER_EDGE * max(ax.size, 1)))
            cell_size = max(cell_size, np.sqrt(area / _MAX_CELLS) * 1.01,
                            max(width, height) * 1e-9)
        def layout(cell: float) -> tuple[float, float, int, int]:
            # The origin sits at an odd fraction of a cell below the polygons, so
            # that cell centres do not fall on round coordinates (where edges are).
            x0 = minx - 0.3183098861837907 * cell
            y0 = miny - 0.2718281828459045 * cell
            return x0, y0, int(np.floor((maxx - x0) / cell)) + 1, int(np.floor((maxy - y0) / cell)) + 1

        x0, y0, nx, ny = layout(cell_size)
        while given is None and nx * ny > _MAX_CELLS:  # the default never refuses: it grows
            cell_size *= 1.25
            x0, y0, nx, ny = layout(cell_size)
        if nx * ny > _MAX_CELLS:
            raise ParameterError(
                f"{func}: cell_size={cell_size!r} cuts the polygons' {width:.6g} x {height:.6g} "
                f"bounding box into {nx * ny:,} cells; expected at most {_MAX_CELLS:,} "
                "(use a larger cell_size, or None for the default)"
            )
        scale = max(abs(minx), abs(maxx), abs(miny), abs(maxy))
        # Covers the rounding of floor((x - x0) / cell) and of the clipping
        # (a few ulps of the coordinates) many times over.
        margin = 1e-6 * cell_size + 1e-12 * scale
        _pip.warm()
        start, edges = _pip.bin_edges(ax, ay, bx, by, x0, y0, cell_size, nx, ny, margin)
        state = _pip.centre_states(ax, ay, bx, by, poly, x0, y0, cell_size, nx, ny,
                                   len(self._geoms), margin)
        # each cell's edges in one contiguous block (what a lookup reads)
        seg = np.column_stack([ax, ay, bx, by])[edges]
        side = _pip.centre_sides(seg, start, x0, y0, cell_size, nx)
        self._grid = _Grid(x0, y0, float(cell_size), nx, ny, state, start, seg, side,
                           poly[edges])
        self.cell_size = float(cell_size)
        self.stats = {
            "cell_size": float(cell_size),
            "cells": int(nx * ny),
            "edges": int(ax.size),
            "listed_edges": int(edges.size),
            "cells_with_edges": int(np.count_nonzero(np.diff(start))),
            "undecided_cells": int(np.count_nonzero(state <= _pip.MULTI)),
            "bytes": int(state.nbytes + start.nbytes + seg.nbytes + side.nbytes + 4 * edges.nbytes),
        }



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
    finds exactly one polygon. Unless the points are few against the
    polygons' edges (fewer than one per four edges) the call builds the grid
    pre-pass; otherwise it tests the points' own geometries through an STRtree
    (about sjoin's speed). To place points against the same polygons many times,
    build a :class:`PolygonIndex` once (several times faster per call).

    Parameters
    ----------
    points : geopandas.GeoDataFrame or geopandas.GeoSeries
        Point geometries. Missing or empty geometries and NaN coordinates are
        allowed and give NA (counted in the warning). Any CRS: points are
        transformed to the polygons' CRS.
    polygons : geopandas.GeoDataFrame
        Valid (Multi)Polygons with a CRS and a `key` column.
    key : str, default "grid_code"
        Column of `polygons` to return.
    coords : {"wgs84", "cgcs2000", "gcj02", "bd09"}, optional
        What the points' longitude/latitude really are, when ``points.crs``
        cannot say: "gcj02" (Amap, Tencent) and "bd09" (Baidu) are converted
        to WGS84 with :mod:`jngis.crs` before the points are projected.
        ``points.crs`` must then be EPSG:4326, EPSG:4490 or None. Default:
        the coordinates are in ``points.crs``.

    Returns
    -------
    pandas.Series
        Named `key`, indexed like `points`, with the key's dtype (integers
        as nullable ``Int64``); NA where a point lies in no polygon.

    Warns
    -----
    UnassignedPointsWarning
        With the number of points in no polygon (or without a location).

    Raises
    ------
    InputTypeError
        If `points` / `polygons` are not GeoDataFrames (points may be a
        GeoSeries).
    SchemaError
        If `key` is not a column of `polygons` or has missing values.
    CRSError
        If either side has no CRS (and `coords` does not say what the points
        are), or `coords` contradicts ``points.crs``.
    GeometryError
        If a point geometry is not a Point, or a polygon is missing, empty,
        invalid or not a (Multi)Polygon.
    ParameterError
        If `coords` is not one of the allowed values, or `polygons` is empty.

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> city = load_slice()
    >>> codes = assign(city.stations, city.communities, key="community_code")
    >>> bool(codes.notna().all()), codes.index.equals(city.stations.index)
    (True, True)
    """
    xy = _point_coordinates("assign", points)  # type errors first, before the build
    # A one-off call pays for the grid: it is worth it unless the points are
    # few against the polygons' edges (then the STRtree over the points' own
    # geometries is quicker than listing every edge in its cells).
    n_edges = int(shapely.get_num_coordinates(np.asarray(polygons.geometry.values)).sum()) \
        if isinstance(polygons, gpd.GeoDataFrame) else 0
    raster = len(points) >= _GRID_POINTS_PER_EDGE * n_edges
    index = PolygonIndex(polygons, key=key, raster=raster)
    return index._assign("assign", points, coords=coords, warn=True, xy=xy)


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


class _Grid(NamedTuple):
    """The arrays of the grid pre-pass (read-only once built)."""

    x0: float
    y0: float
    cell: float
    nx: int
    ny: int
    state: np.ndarray  # int32 per cell: polygon at the centre, or _pip.NONE/MULTI/UNKNOWN
    start: np.ndarray  # int64, ncells + 1: each cell's rows in seg
    seg: np.ndarray  # float64 (listed, 4): ends ax, ay, bx, by of the edges listed per cell
    segside: np.ndarray  # int8: side of each listed edge its cell's centre lies on (0: unsure)
    segpoly: np.ndarray  # int32: the polygon position of each listed edge


def _ring_edges(geoms: np.ndarray) -> tuple[np.ndarray, ...]:
    """Both ends of every non-degenerate edge of every ring, and its polygon's position.

    Read through ``shapely.to_ragged_array`` (coordinates plus ring and part
    offsets), not ``get_rings``, which builds a geometry per ring (5x slower).
    """
    kind, coords, offsets = shapely.to_ragged_array(geoms, include_z=False)
    ring_start = offsets[0]
    n_rings = ring_start.size - 1
    if kind == shapely.GeometryType.POLYGON:
        ring_geom = np.repeat(np.arange(len(geoms)), np.diff(offsets[1]))
    else:  # MULTIPOLYGON: rings -> parts -> geometries
        part_geom = np.repeat(np.arange(len(geoms)), np.diff(offsets[2]))
        ring_geom = part_geom[np.repeat(np.arange(offsets[1].size - 1), np.diff(offsets[1]))]
    coord_ring = np.repeat(np.arange(n_rings), np.diff(ring_start))
    same_ring = coord_ring[1:] == coord_ring[:-1]
    start = coords[:-1][same_ring]
    end = coords[1:][same_ring]
    poly = ring_geom[coord_ring[:-1][same_ring]].astype(np.int32)
    keep = (start != end).any(axis=1)
    return (np.ascontiguousarray(start[keep, 0]), np.ascontiguousarray(start[keep, 1]),
            np.ascontiguousarray(end[keep, 0]), np.ascontiguousarray(end[keep, 1]), poly[keep])


def _key_ranks(func: str, keys: np.ndarray, key: str) -> np.ndarray:
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


def _check_polygons(
    func: str, polygons: Any, key: str
) -> tuple[np.ndarray, np.ndarray, pyproj.CRS]:
    if not isinstance(polygons, gpd.GeoDataFrame):
        raise InputTypeError(
            f"{func}: polygons has type {type(polygons).__name__}; expected a "
            "geopandas.GeoDataFrame of (Multi)Polygons"
        )
    if not isinstance(key, str):
        raise InputTypeError(
            f"{func}: key={key!r} has type {type(key).__name__}; expected a column name (str)"
        )
    if key not in polygons.columns or key == polygons.geometry.name:
        raise SchemaError(
            f"{func}: key={key!r} is not a column of polygons; expected one of "
            f"{[c for c in polygons.columns if c != polygons.geometry.name]}"
        )
    if len(polygons) == 0:
        raise ParameterError(f"{func}: polygons has 0 rows; expected at least one polygon")
    if polygons.crs is None:
        raise CRSError(
            f"{func}: polygons.crs is None; expected polygons with a CRS (e.g. "
            f"polygons.set_crs('{jcrs.JINAN_GK}'))"
        )
    values = polygons[key]
    if values.isna().any():
        raise SchemaError(
            f"{func}: polygons[{key!r}] has {int(values.isna().sum())} missing value(s) "
            f"(first at row {values.index[values.isna()][0]!r}); expected a key on every polygon"
        )
    geoms = np.array(polygons.geometry.values, dtype=object)
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
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        reason = shapely.is_valid_reason(geoms[np.flatnonzero(bad)[0]])
        raise GeometryError(
            f"{func}: polygons has {int(bad.sum())} invalid geometry(ies) (rows "
            f"{list(polygons.index[bad][:5])}; first: {reason}); expected valid polygons "
            "(repair with shapely.make_valid or jngis.topology)"
        )
    keys = np.asarray(values.to_numpy(dtype=object), dtype=object)
    return geoms, keys, pyproj.CRS.from_user_input(polygons.crs)


def _point_coordinates(func: str, points: Any) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    if isinstance(points, gpd.GeoDataFrame):
        series = points.geometry
    elif isinstance(points, gpd.GeoSeries):
        series = points
    else:
        raise InputTypeError(
            f"{func}: points has type {type(points).__name__}; expected a "
            "geopandas.GeoDataFrame or GeoSeries of Points"
        )
    geoms = np.asarray(series.values, dtype=object)
    kind = shapely.get_type_id(geoms)
    bad = (kind != 0) & (kind != -1)  # Point, or missing
    if bad.any():
        types = sorted({str(t) for t in series[bad].geom_type})
        raise GeometryError(
            f"{func}: points has {int(bad.sum())} geometry(ies) that are not Points "
            f"(types {types}, rows {list(series.index[bad][:5])}); expected Point "
            "geometries (use .centroid or .representative_point() for polygons)"
        )
    # Missing and empty points have no coordinates: they stay NaN (NA later).
    coords = shapely.get_coordinates(geoms)
    if coords.shape[0] == len(geoms):  # one coordinate per point, in order
        return coords[:, 0].copy(), coords[:, 1].copy(), series.index
    coords, rows = shapely.get_coordinates(geoms, return_index=True)
    x = np.full(len(geoms), np.nan)
    y = np.full(len(geoms), np.nan)
    x[rows], y[rows] = coords[:, 0], coords[:, 1]
    return x, y, series.index


def _check_positive_float(func: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputTypeError(
            f"{func}: {name}={value!r} has type {type(value).__name__}; expected a number"
        )
    if not np.isfinite(value) or value <= 0:
        raise ParameterError(
            f"{func}: {name}={value!r}; expected a finite number > 0 (in the polygons' "
            "CRS units)"
        )
    return float(value)


def _crs_label(crs: pyproj.CRS) -> str:
    authority = crs.to_authority()
    return f"{authority[0]}:{authority[1]}" if authority else repr(crs.name)
