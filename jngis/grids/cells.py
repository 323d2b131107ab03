"""Regular analysis cells (squares or hexagons) over an area: :func:`regular_grid`."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely

from jngis import _checks
from jngis.errors import CRSError, GeometryError, InputTypeError, ParameterError
from jngis.grids.land import polygonal
from jngis.topology import union_coverage

__all__ = ["regular_grid"]

FUNC = "regular_grid"
#: Most cells one call lays over the area's bounding box.
MAX_CELLS = 5_000_000


def regular_grid(area, cell_size: float, shape: str = "square", *, crs=None) -> gpd.GeoDataFrame:
    """Regular analysis cells (squares or hexagons) covering ``area``, clipped to it.

    Parameters
    ----------
    area : GeoDataFrame, GeoSeries or shapely polygon
        The boundary, in a projected CRS (metres); several features are unioned.
    cell_size : float
        Side of a square, or the distance between opposite flat sides of a
        (pointy-top) hexagon, in metres.
    shape : {"square", "hex"}
    crs : optional
        The CRS when ``area`` is a bare shapely geometry (required then).

    Returns
    -------
    GeoDataFrame
        ``cell_id`` (0, 1, ... north→south, west→east), ``row``, ``col``,
        ``area_m2`` and the clipped cell; cells outside ``area`` are dropped.

    Examples
    --------
    >>> import shapely
    >>> cells = regular_grid(shapely.box(0, 0, 1000, 500), 250, crs="EPSG:4548")
    >>> len(cells), float(cells.area_m2.sum())
    (8, 500000.0)
    >>> hexes = regular_grid(shapely.box(0, 0, 1000, 500), 250, shape="hex", crs="EPSG:4548")
    >>> round(hexes.area_m2.sum())
    500000
    """
    boundary, out_crs = _boundary(area, crs)
    _checks.require(FUNC, "cell_size", cell_size, not isinstance(cell_size, bool)
                    and isinstance(cell_size, (int, float, np.number)) and bool(np.isfinite(cell_size))
                    and cell_size > 0, "a positive length in metres")
    _checks.require(FUNC, "shape", shape, shape in ("square", "hex"), "'square' or 'hex'")
    cells, row, col = _cells(boundary, cell_size, shape)
    clipped, row, col = _clip(cells, row, col, boundary)
    return gpd.GeoDataFrame({"cell_id": np.arange(len(clipped)), "row": row, "col": col,
                             "area_m2": shapely.area(clipped)}, geometry=clipped, crs=out_crs)


def _boundary(area, crs) -> tuple[shapely.Geometry, object]:
    """The (unioned) boundary of ``area`` and its CRS, checked: metric, a valid (Multi)Polygon."""
    if isinstance(area, (gpd.GeoDataFrame, gpd.GeoSeries)):
        frame = area if isinstance(area, gpd.GeoDataFrame) else gpd.GeoDataFrame(geometry=area)
        _checks.metric_crs(FUNC, "area", frame)
        out_crs = area.crs
        boundary = union_coverage(np.asarray(frame.geometry.values, dtype=object), coverage=False)
    elif isinstance(area, shapely.Geometry):
        if crs is None:
            raise CRSError(f"{FUNC}: area is a bare {area.geom_type} and crs is None; expected crs= "
                           "naming a projected CRS in metres (e.g. 'EPSG:4548')")
        _checks.metric_crs(FUNC, "area", gpd.GeoDataFrame(geometry=[area], crs=crs))
        out_crs, boundary = crs, area
    else:
        raise InputTypeError(f"{FUNC}: area is a {type(area).__name__}; expected a GeoDataFrame, a GeoSeries "
                             "or a shapely polygon")
    if shapely.is_empty(boundary) or shapely.get_type_id(boundary) not in (3, 6) or not shapely.is_valid(boundary):
        raise GeometryError(f"{FUNC}: area is {boundary.geom_type if not boundary.is_empty else 'empty'}"
                            f"{'' if shapely.is_valid(boundary) else ' and invalid'}; expected a valid "
                            "(Multi)Polygon")
    return boundary, out_crs


def _cells(boundary: shapely.Geometry, cell_size: float, shape: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cell over the boundary's bounding box, row by row from the north-west, with its row and column."""
    minx, miny, maxx, maxy = shapely.bounds(boundary)
    if shape == "square":
        width, height = cell_size, cell_size
    else:
        width, height = cell_size, cell_size * 3 / (2 * math.sqrt(3))  # column spacing, row spacing
    n_cols = int(math.ceil((maxx - minx) / width)) + (1 if shape == "hex" else 0)
    n_rows = int(math.ceil((maxy - miny) / height)) + (1 if shape == "hex" else 0)
    if n_cols * n_rows > MAX_CELLS:
        raise ParameterError(f"{FUNC}: cell_size={cell_size!r} gives {n_cols * n_rows:,} cells over the "
                             f"area; expected at most {MAX_CELLS:,} (use a larger cell_size)")
    row, col = np.divmod(np.arange(n_rows * n_cols), n_cols)
    if shape == "square":
        x0 = minx + col * width
        y1 = maxy - row * height
        return shapely.box(x0, y1 - height, x0 + width, y1), row, col
    radius = cell_size / math.sqrt(3)  # centre to vertex
    cx = minx + col * width + np.where(row % 2 == 1, width / 2, 0.0)
    cy = maxy - row * height
    angles = np.deg2rad(np.arange(30, 390, 60))
    ring = np.stack([cx[:, None] + radius * np.cos(angles)[None], cy[:, None] + radius * np.sin(angles)[None]],
                    axis=-1)
    return shapely.polygons(np.concatenate([ring, ring[:, :1]], axis=1)), row, col


def _clip(cells: np.ndarray, row: np.ndarray, col: np.ndarray,
          boundary: shapely.Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cells that meet the boundary, cut to it; cells left with no area are dropped."""
    shapely.prepare(boundary)
    hit = shapely.intersects(boundary, cells)
    cells, row, col = cells[hit], row[hit], col[hit]
    inside = shapely.contains_properly(boundary, cells)
    clipped = cells.copy()
    clipped[~inside] = shapely.intersection(cells[~inside], boundary)
    clipped = np.array([polygonal(g) for g in clipped], dtype=object) if (~inside).any() else clipped
    keep = shapely.area(clipped) > 0
    return clipped[keep], row[keep], col[keep]
