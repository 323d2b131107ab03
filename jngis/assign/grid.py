"""The cell grid of the point-in-polygon pre-pass (see :mod:`jngis.assign`, "How it works")."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import shapely

from jngis import _pip
from jngis import _threads as parallel
from jngis.errors import ParameterError

# The default grid has about this many cells per polygon edge (see build_grid).
_CELLS_PER_EDGE = 8.0
# Largest grid (cells) built: 8 bytes a cell, so about 400 MB.
_MAX_CELLS = 50_000_000


class Grid(NamedTuple):
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


def ring_edges(geoms: np.ndarray) -> tuple[np.ndarray, ...]:
    """Both ends of every non-degenerate edge of every ring, and its polygon's position.

    Polygons without holes (blocks, grids) have one ring each, so
    ``shapely.get_coordinates`` with the polygon of each coordinate says it all
    (4x quicker than the ragged array); otherwise read through
    ``shapely.to_ragged_array`` (coordinates plus ring and part offsets), not
    ``get_rings``, which builds a geometry per ring (5x slower).
    """
    if ((shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON).all()
            and not shapely.get_num_interior_rings(geoms).any()):
        coords, coord_ring = shapely.get_coordinates(geoms, return_index=True)
        ring_geom = np.arange(len(geoms))
    else:
        kind, coords, offsets = shapely.to_ragged_array(geoms, include_z=False)
        if kind == shapely.GeometryType.POLYGON:
            ring_geom = np.repeat(np.arange(len(geoms)), np.diff(offsets[1]))
        else:  # MULTIPOLYGON: rings -> parts -> geometries
            part_geom = np.repeat(np.arange(len(geoms)), np.diff(offsets[2]))
            ring_geom = part_geom[np.repeat(np.arange(offsets[1].size - 1), np.diff(offsets[1]))]
        coord_ring = np.repeat(np.arange(offsets[0].size - 1), np.diff(offsets[0]))
    _pip.warm()
    return _pip.ring_edges(np.ascontiguousarray(coords, dtype=np.float64), coord_ring.astype(np.int64, copy=False),
                           ring_geom.astype(np.int32, copy=False))


def _layout(bounds: tuple[float, float, float, float], cell: float) -> tuple[float, float, int, int]:
    """Origin and size (x0, y0, nx, ny) of a grid of ``cell`` over ``bounds``."""
    minx, miny, maxx, maxy = bounds
    # The origin sits at an odd fraction of a cell below the polygons, so
    # that cell centres do not fall on round coordinates (where edges are).
    x0 = minx - 0.3183098861837907 * cell
    y0 = miny - 0.2718281828459045 * cell
    return x0, y0, int(np.floor((maxx - x0) / cell)) + 1, int(np.floor((maxy - y0) / cell)) + 1


def _cell_size(func: str, bounds: tuple[float, float, float, float], n_edges: int,
               given: float | None) -> tuple[float, tuple[float, float, int, int]]:
    """The cell side (``given``, else the default) and its layout; refuse a grid too large."""
    minx, miny, maxx, maxy = bounds
    width, height = maxx - minx, maxy - miny
    cell_size = given
    if cell_size is None:
        # About _CELLS_PER_EDGE cells per edge: with the edges spread over a
        # city's built-up part, a cell then lists a few to a few dozen
        # edges, and the grid costs about as much memory as the edges.
        area = max(width * height, 1e-300)
        cell_size = np.sqrt(area / (_CELLS_PER_EDGE * max(n_edges, 1)))
        cell_size = max(cell_size, np.sqrt(area / _MAX_CELLS) * 1.01, max(width, height) * 1e-9)
    layout = _layout(bounds, cell_size)
    while given is None and layout[2] * layout[3] > _MAX_CELLS:  # the default never refuses: it grows
        cell_size *= 1.25
        layout = _layout(bounds, cell_size)
    if layout[2] * layout[3] > _MAX_CELLS:
        raise ParameterError(
            f"{func}: cell_size={cell_size!r} cuts the polygons' {width:.6g} x {height:.6g} "
            f"bounding box into {layout[2] * layout[3]:,} cells; expected at most {_MAX_CELLS:,} "
            "(use a larger cell_size, or None for the default)"
        )
    return cell_size, layout


def build_grid(func: str, geoms: np.ndarray, cell_size: float | None) -> tuple[Grid, dict[str, Any]]:
    """The grid pre-pass over ``geoms`` and its build figures."""
    ax, ay, bx, by, poly = ring_edges(geoms)
    bounds = tuple(float(v) for v in shapely.total_bounds(geoms))
    cell_size, (x0, y0, nx, ny) = _cell_size(func, bounds, ax.size, cell_size)  # type: ignore[arg-type]
    scale = max(abs(v) for v in bounds)
    # Covers the rounding of floor((x - x0) / cell) and of the clipping
    # (a few ulps of the coordinates) many times over.
    margin = 1e-6 * cell_size + 1e-12 * scale
    _pip.warm()
    # The two halves of the build are independent: the centres' states in the pool
    # (the numba kernels release the GIL), the edges' cells here.
    states = parallel.submit(_pip.centre_states, ax, ay, bx, by, poly, x0, y0, cell_size, nx, ny,
                             len(geoms), margin)
    try:
        start, edges = _pip.bin_edges(ax, ay, bx, by, x0, y0, cell_size, nx, ny, margin)
        # each cell's edges in one contiguous block (what a lookup reads)
        seg, side, segpoly = _pip.gather_edges(ax, ay, bx, by, poly, start, edges, x0, y0,
                                               cell_size, nx)
    finally:
        state = states.result()
    grid = Grid(x0, y0, float(cell_size), nx, ny, state, start, seg, side, segpoly)
    stats = {
        "cell_size": float(cell_size),
        "cells": int(nx * ny),
        "edges": int(ax.size),
        "listed_edges": int(edges.size),
        "cells_with_edges": int(np.count_nonzero(np.diff(start))),
        "undecided_cells": int(np.count_nonzero(state <= _pip.MULTI)),
        "bytes": int(state.nbytes + start.nbytes + seg.nbytes + side.nbytes + 4 * edges.nbytes),
    }
    return grid, stats
