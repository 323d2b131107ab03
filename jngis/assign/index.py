"""The :class:`PolygonIndex`: polygons prepared once for many exact point lookups."""

from __future__ import annotations

import time
import warnings
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from jngis import _checks, _pip
from jngis import _threads as parallel
from jngis.assign.grid import build_grid
from jngis.assign.inputs import cell_size as check_cell_size
from jngis.assign.inputs import (
    check_polygons,
    check_validity,
    key_ranks,
    point_coordinates,
    start_validity,
)
from jngis.codes import INPUT_CRS_NAMES
from jngis.crs.base import CGCS2000, WGS84, _as_float_array, _crs_label, _is_lonlat_wgs84_like
from jngis.crs.gauss_kruger import transformer
from jngis.crs.gcj import bd09_to_wgs84, gcj02_to_wgs84
from jngis.errors import CRSError, ParameterError, UnassignedPointsWarning

__all__ = ["PolygonIndex"]

# From this many points on, locate_positions runs one slice per core.
_PARALLEL_POINTS = 100_000
# From this many points on, locate_positions sorts them by block of cells first.
_SORTED_POINTS = 20_000


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
        started = time.perf_counter()
        func = "PolygonIndex"
        geoms, keys, crs = check_polygons(func, polygons, key)
        valid = start_validity(geoms)  # in the pool, while the index is built here
        try:
            self._build(func, polygons, key, geoms, keys, crs, cell_size, raster)
        except Exception:
            check_validity(func, polygons, geoms, valid)  # an invalid polygon is named first
            raise
        check_validity(func, polygons, geoms, valid)
        self.stats["seconds"] = time.perf_counter() - started

    def _build(self, func: str, polygons: gpd.GeoDataFrame, key: str, geoms: np.ndarray,
               keys: np.ndarray, crs: pyproj.CRS, cell_size: float | None, raster: bool) -> None:
        if cell_size is not None:
            cell_size = check_cell_size(func, cell_size)
        self.key = key
        self.crs = crs
        self.keys = keys
        self._key_values = polygons[key]
        self._geoms = geoms
        # Rank of each polygon under the boundary rule: lowest key first, then row.
        self._rank = key_ranks(func, keys, key)
        self._tree = shapely.STRtree(self._geoms)
        self._tree.query(shapely.points(shapely.total_bounds(self._geoms)[:2]))  # built now

        self.raster = _checks.instance(func, "raster", raster, bool, "a bool")
        self.stats: dict[str, Any]
        if raster:
            self._grid, self.stats = build_grid(func, self._geoms, cell_size)
            self.cell_size = self.stats["cell_size"]
        else:
            self.cell_size = float("nan")
            self.stats = {"bytes": 0}

    # ------------------------------------------------------------------ public

    def __len__(self) -> int:
        return len(self._geoms)

    def __repr__(self) -> str:
        return (
            f"PolygonIndex({len(self)} polygons, key={self.key!r}, "
            f"crs={_crs_label(self.crs, with_name=False)}, cell_size={self.cell_size:.4g})"
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
        x_arr = _as_float_array(func, "x", x, unit=None)
        y_arr = _as_float_array(func, "y", y, unit=None)
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
        order = None
        sx, sy = x, y
        if x.size >= _SORTED_POINTS:  # grouped by block of cells: the grid read in order
            order = _pip.block_order(x, y, g.x0, g.y0, g.cell, g.nx, g.ny)
            sx, sy = x[order], y[order]
        found = np.empty(x.shape, dtype=np.int64)

        def locate(part: slice) -> None:
            _pip.locate(sx[part], sy[part], g.x0, g.y0, g.cell, g.nx, g.ny, g.state, g.start,
                        g.seg, g.segside, g.segpoly, self._rank, found[part])

        # one slice per core (the kernel releases the GIL) for a large batch; one call for a few
        parallel.run_sliced(locate, x.size, parallel.workers() if x.size >= _PARALLEL_POINTS else 1)
        if order is None:
            result = found
        else:
            result = np.empty_like(found)
            result[order] = found
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
        x, y, _ = point_coordinates(func, points)
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
        x, y, index = point_coordinates(func, points) if xy is None else xy
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
            if coords not in INPUT_CRS_NAMES:
                raise ParameterError(
                    f"{func}: coords={coords!r}; expected one of {INPUT_CRS_NAMES} or None "
                    "(None: the points' coordinates are in points.crs)"
                )
            if source is not None and not _is_lonlat_wgs84_like(pyproj.CRS(source)):
                raise CRSError(
                    f"{func}: coords={coords!r} says the points are longitude/latitude, "
                    f"but points.crs is {_crs_label(pyproj.CRS(source), with_name=False)}; expected "
                    "points.crs EPSG:4326, EPSG:4490 or None with coords="
                    f"{coords!r}, or coords=None for projected points"
                )
            finite = np.isfinite(x) & np.isfinite(y)
            if coords in ("gcj02", "bd09"):
                convert = gcj02_to_wgs84 if coords == "gcj02" else bd09_to_wgs84
                x, y = x.copy(), y.copy()
                if finite.any():
                    x[finite], y[finite] = convert(x[finite], y[finite])
            source = CGCS2000 if coords == "cgcs2000" else WGS84
        if source is None:
            raise CRSError(
                f"{func}: points.crs is None; expected points with a CRS (e.g. "
                f"points.set_crs('{CGCS2000}')), or coords='wgs84' / 'gcj02' / "
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
            tx, ty = transformer(source_crs, self.crs).transform(x, y, errcheck=False)
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
