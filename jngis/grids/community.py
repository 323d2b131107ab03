"""The grids of one community: land, partition, land to grids, tiling check, codes.

A :class:`CommunityTask` holds one community as plain arrays (it pickles
cheaply to a worker process); :func:`one_community` returns its grid rows.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import shapely

from jngis.errors import GeometryError, ParameterError
from jngis.grids.land import assign_land, polygonal, reconnect, repair_tiling
from jngis.grids.partition import choose_k_with_big, partition
from jngis.topology import clean_coverage, coverage_errors, union_coverage

__all__ = ["TILING_TOLERANCE", "CommunityTask", "one_community", "batch"]

#: Largest gap, overlap or outside area (m²) allowed between a community and its grids.
TILING_TOLERANCE = 1.0


class CommunityTask(NamedTuple):
    """One community to grid: its polygon, its units (sorted by unit_id) and their graph."""

    code: str
    street_code: str
    polygon: shapely.Geometry
    unit_geoms: np.ndarray
    households: np.ndarray
    population: np.ndarray
    edges: tuple[np.ndarray, np.ndarray, np.ndarray]  # local unit positions a, b and the shared length
    low: int
    high: int
    dedicated_min_area: float | None
    seed: int
    band: tuple[int, int] | None = None  # the band headroom leaves inside [low, high]
    preferred: tuple[int, int] | None = None
    retired: frozenset[int] = frozenset()  # sequence numbers of the community's retired grid codes


def _open_land(task: CommunityTask, robust: bool) -> tuple[np.ndarray, np.ndarray]:
    """The units clipped to the community, and its open land (polygon minus units) in connected parts."""
    polygon, unit_geoms = task.polygon, task.unit_geoms
    shapely.prepare(polygon)
    if len(unit_geoms):
        clipped = unit_geoms.copy()
        out = ~shapely.covered_by(unit_geoms, polygon)
        if out.any():
            clipped[out] = shapely.intersection(unit_geoms[out], polygon)
        open_land = shapely.difference(polygon, union_coverage(clipped, coverage=not robust))
    else:
        clipped, open_land = unit_geoms, polygon
    land_parts = shapely.get_parts(open_land)
    land_parts = land_parts[shapely.get_type_id(land_parts) == 3] if len(land_parts) else land_parts
    return clipped, land_parts[shapely.area(land_parts) > 0]


def _community_grids(task: CommunityTask, rng: np.random.Generator, robust: bool = False) -> list[tuple]:
    """Grids of one community: list of (geometry, grid_type, households, population, n_units)."""
    clipped, land_parts = _open_land(task, robust)
    results: list[tuple] = []
    if task.dedicated_min_area is not None and len(land_parts):
        dedicated = shapely.area(land_parts) >= task.dedicated_min_area
        results.extend((part, "dedicated", 0, 0, 0) for part in land_parts[dedicated])
        land_parts = land_parts[~dedicated]
    if len(clipped) == 0:
        if len(land_parts):
            results.append((union_coverage(land_parts, coverage=False), "residential", 0, 0, 0))
        return results
    households, low, high = task.households, task.low, task.high
    k = choose_k_with_big(households, *(task.band or (low, high)))
    if k + len(results) > 999 - len(task.retired):
        retired = f" once {len(task.retired)} retired are left out" if task.retired else ""
        raise ParameterError(f"make_grids: community {task.code!r} needs {k + len(results)} grids, more than the "
                             f"{999 - len(task.retired)} a 3-digit code allows{retired}; expected larger "
                             "max_households")
    xy = shapely.get_coordinates(shapely.centroid(clipped))
    areas = shapely.area(clipped)
    shape = {"perimeters": shapely.length(clipped)} if task.preferred is not None else {}
    labels = partition(households, xy, areas, *task.edges, k, low, high, rng, band=task.band,
                       preferred=task.preferred, **shape)
    if task.band is not None and _outside(labels, households, low, high):
        # headroom must never cost the bounds: keep the plain cut where it leaves fewer households outside
        # the plain cut is the one make_grids draws without headroom: the same seed, afresh
        plain_k = choose_k_with_big(households, low, high)
        plain = partition(households, xy, areas, *task.edges, plain_k, low, high,
                          np.random.default_rng([task.seed, int(task.code)]), preferred=task.preferred, **shape)
        if _outside(plain, households, low, high):
            plain = _retry(task, plain, (households, xy, areas, *task.edges), plain_k, shape)
        if _outside(plain, households, low, high) < _outside(labels, households, low, high):
            labels = plain
    elif _outside(labels, households, low, high):
        labels = _retry(task, labels, (households, xy, areas, *task.edges), k, shape)
    members = [np.flatnonzero(labels == g) for g in range(int(labels.max()) + 1)]
    grid_units = [union_coverage(clipped[m], coverage=not robust) for m in members]
    spacing = max(2.0, math.sqrt(float(np.median(shapely.area(clipped)))) / 8)
    land = assign_land(land_parts, grid_units, spacing)
    geometries = [union_coverage(np.array([units, *pieces], dtype=object), coverage=False) if pieces else units
                  for units, pieces in zip(grid_units, land)]
    # an overlay can leave a stray line beside a polygon (a GeometryCollection): keep the polygons
    geometries = [polygonal(g) for g in reconnect(geometries, grid_units, [r[0] for r in results])]
    results.extend((geometry, "residential", int(households[m].sum()), int(task.population[m].sum()), len(m))
                   for geometry, m in zip(geometries, members))
    return results


# Further cuts tried (seeds x grid counts k, k + 1, k - 1) where the first leaves households outside the bounds.
RETRIES = 4


def _retry(task: CommunityTask, labels: np.ndarray, data: tuple, k: int, shape: dict) -> np.ndarray:
    """The cut leaving the fewest households outside the bounds among the first and a few fresh ones.

    Only communities whose first cut leaves some outside are cut again, each try from its own seed,
    so make_grids stays reproducible and every community the first cut fits keeps it.
    """
    households, low, high = task.households, task.low, task.high
    best, best_outside = labels, _outside(labels, households, low, high)
    for attempt in range(1, RETRIES + 1):
        for grids in (k, k + 1, k - 1):
            if grids < 1 or grids > len(households):
                continue
            rng = np.random.default_rng([task.seed, int(task.code), attempt])
            candidate = partition(data[0], data[1], data[2], data[3], data[4], data[5], grids, low, high, rng,
                                  preferred=task.preferred, **shape)
            outside = _outside(candidate, households, low, high)
            if outside < best_outside:
                best, best_outside = candidate, outside
            if best_outside == 0:
                return best
    return best


def _outside(labels: np.ndarray, households: np.ndarray, low: int, high: int) -> int:
    """Households the grids lie outside ``[low, high]`` by (a grid of one unit above ``high`` cannot do better)."""
    sizes = np.bincount(labels, weights=households).astype(np.int64)
    largest = np.zeros(len(sizes), dtype=np.int64)
    np.maximum.at(largest, labels, households)
    return int(np.maximum(low - sizes, 0).sum() + np.maximum(sizes - np.maximum(high, largest), 0).sum())


def one_community(task: CommunityTask) -> list[tuple]:
    """Grid rows of one community (code order), tiling checked and repaired."""
    code, polygon = task.code, task.polygon
    grids = _community_grids(task, np.random.default_rng([task.seed, int(code)]))
    geometries = [g[0] for g in grids]
    if coverage_errors(geometries, polygon).worst > TILING_TOLERANCE:
        # units that overlap or leave slivers: redo with full overlays, then repair what is left
        grids = _community_grids(task, np.random.default_rng([task.seed, int(code)]), robust=True)
        geometries = [g[0] for g in grids]
    if coverage_errors(geometries, polygon).worst > TILING_TOLERANCE:
        geometries = repair_tiling(polygon, geometries)
        errors = coverage_errors(geometries, polygon)
        if errors.worst > TILING_TOLERANCE:  # pragma: no cover - defensive
            raise GeometryError(f"make_grids: the grids of community {code!r} do not tile it ({errors}); "
                                "expected gaps and overlaps under 1 m² (are the units valid?)")
    # the unions tile the community only up to float noise (edges a hair apart, zero-width spikes that
    # reprojection to degrees turns into self-intersections): one cleaning of the whole community
    shapes = clean_coverage(geometries, polygon)
    # in code order, each grid takes the next sequence number that was never retired
    numbers = [n for n in range(1, 1000) if n not in task.retired]
    rows = []
    for rank, i in enumerate(_code_order(shapes, polygon)):
        _, grid_type, grid_households, grid_population, n_units = grids[i]
        rows.append((f"{code}{numbers[rank]:03d}", code, task.street_code, grid_type, grid_households,
                     grid_population, n_units, shapes[i]))
    return rows


def batch(tasks: list[CommunityTask]) -> tuple[list[tuple], int]:
    """The rows of several communities, and how many they were (for a progress bar)."""
    rows = []
    for task in tasks:
        rows.extend(one_community(task))
    return rows, len(tasks)


def _code_order(geometries: np.ndarray, polygon) -> np.ndarray:
    """Positions of grids in code order: north→south rows of an average grid's side, west→east inside."""
    centroids = shapely.get_coordinates(shapely.centroid(geometries))
    row_height = max(math.sqrt(shapely.area(polygon) / max(len(geometries), 1)), 1e-9)
    top = shapely.bounds(polygon)[3]
    row = np.floor((top - centroids[:, 1]) / row_height)
    return np.lexsort((-centroids[:, 1], centroids[:, 0], row))
