"""Management grids (网格): each community divided into grids of 300-500 households.

How :func:`make_grids` draws the grids of one community
------------------------------------------------------
1. **Land.** The community polygon minus the union of its units is its open
   land (roads, squares, parks, campuses), split into connected parts. A part
   of at least ``dedicated_min_area`` m² becomes a dedicated grid (专属网格).
2. **Number of grids.** Units holding more than ``max_households`` cannot
   be split, so each gets a grid of its own; the other households get the
   number of grids ``k`` whose mean size is nearest the middle of the bounds
   among those that fit (``ceil(H / max) <= k <= floor(H / min)``), the
   least-violating ``k`` when none fits. A community with fewer than
   ``2 * min_households`` households is one grid.
3. **Units.** The unit contiguity graph (:func:`jngis.adjacency.shared_edges`)
   is cut by recursive bisection on spanning trees: for several minimum
   spanning trees of the centroid distances (randomly perturbed with
   ``np.random.default_rng([seed, community_code])``), every tree edge splits
   the units into two connected sets; the split kept is the one whose sides
   can hold their share of grids within the bounds, closest to the mean size,
   with the shortest shared boundary (compact grids). Then single boundary
   units move between neighbouring grids while that lowers the total
   violation of the bounds, never disconnecting a grid. Each grid is
   therefore contiguous and no unit is ever split.
4. **Open land to grids.** A part touching the units of one grid joins it; a
   part touching several (a road between blocks) is divided between them by
   the Voronoi diagram of points on the edges it shares with each grid, so
   each grid takes the land nearest to it; leftover pieces join the grid they
   share the longest edge with.
5. **Tiling check.** Each grid is the union of its units and land; the gap,
   overlap and outside areas against the community polygon are measured
   (:func:`jngis.topology.coverage_errors`) and must be under 1 m².

Codes
-----
``grid_code`` is the 12-digit community code plus a 3-digit sequence
(001-999). The grids of a community are numbered north→south, then
west→east: rows of height ``h = sqrt(community area / number of grids)``
(the side of an average grid) are counted down from the community's
northernmost point, each grid falls in the row of its centroid, and inside
a row grids go by centroid x (then y). The same input gives the same codes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from jngis.adjacency import shared_edges
from jngis.errors import CRSError, GeometryError, InputTypeError, ParameterError, SchemaError
from jngis.layers import validate
from jngis.regions import Graph, Regions, steepest_descent
from jngis.topology import coverage_errors, overlaps, polsby_popper

__all__ = ["Staffing", "make_grids", "grid_summary", "grid_quality", "regular_grid", "polsby_popper"]

#: Largest gap, overlap or outside area (m²) allowed between a community and its grids.
TILING_TOLERANCE = 1.0
# Spanning trees tried per bisection (more: better cuts, slower).
_TREES = 8
# Weight of the cut length (compactness) against the deviation from the mean grid size.
_COMPACTNESS = 1.0
_STAFF_COLUMNS = ("grid_leaders", "full_time_workers", "part_time_workers", "enforcement_officers")


class Staffing(NamedTuple):
    """Staff of one grid under the "1+1+N+X" model.

    One grid leader, one full-time grid worker, N part-time workers (building
    heads, volunteers) and X enforcement officers (police, urban management)
    per grid. ``households_per_part_time_worker`` overrides the fixed N with
    ``ceil(households / households_per_part_time_worker)`` per residential grid.

    Examples
    --------
    >>> Staffing(part_time_workers=2).per_grid(450)
    (1, 1, 2, 0)
    >>> Staffing(households_per_part_time_worker=100).per_grid(450)
    (1, 1, 5, 0)
    """

    grid_leaders: int = 1
    full_time_workers: int = 1
    part_time_workers: int = 0
    enforcement_officers: int = 0
    households_per_part_time_worker: int | None = None

    def per_grid(self, households: int) -> tuple[int, int, int, int]:
        """Staff of a grid with ``households`` households, in column order."""
        part_time = self.part_time_workers
        if self.households_per_part_time_worker:
            part_time = math.ceil(households / self.households_per_part_time_worker)
        return self.grid_leaders, self.full_time_workers, part_time, self.enforcement_officers


# --------------------------------------------------------------------------- validation


def _check_metric(gdf: gpd.GeoDataFrame, parameter: str, function: str) -> None:
    if gdf.crs is None:
        raise CRSError(f"{function}: {parameter} has no CRS; expected a projected CRS in metres such as "
                       "EPSG:4548 (use gdf.set_crs)")
    if gdf.crs.is_geographic:
        raise CRSError(
            f"{function}: {parameter} is in {gdf.crs.to_string()} (degrees); expected a projected CRS in "
            "metres such as EPSG:4548 (convert with jngis.crs.to_metric)"
        )


def _check_count(value, parameter: str, function: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or \
            not np.isfinite(value) or value != int(value) or value < minimum:
        raise ParameterError(f"{function}: {parameter}={value!r}; expected a whole number >= {minimum}")
    return int(value)


def _check_staffing(staffing) -> Staffing:
    if staffing is None:
        return Staffing()
    if isinstance(staffing, dict):
        unknown = set(staffing) - set(Staffing._fields)
        if unknown:
            raise ParameterError(f"make_grids: staffing has unknown keys {sorted(unknown)}; expected some of "
                                 f"{list(Staffing._fields)}")
        staffing = Staffing(**staffing)
    if not isinstance(staffing, Staffing):
        raise InputTypeError(f"make_grids: staffing is a {type(staffing).__name__}; expected a Staffing or a dict")
    for name in _STAFF_COLUMNS:
        _check_count(getattr(staffing, name), f"staffing.{name}", "make_grids")
    if staffing.households_per_part_time_worker is not None:
        _check_count(staffing.households_per_part_time_worker, "staffing.households_per_part_time_worker",
                     "make_grids", minimum=1)
    return staffing


def _unit_community(units: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> np.ndarray:
    """Position of each unit's community; raises on units outside or in the wrong community."""
    codes = communities["community_code"].to_numpy()
    position = pd.Series(np.arange(len(codes)), index=codes)
    unknown = ~units["community_code"].isin(position.index).to_numpy()
    inside = shapely.point_on_surface(units.geometry.values)
    tree = shapely.STRtree(communities.geometry.values)
    unit_index, community_index = tree.query(inside, predicate="intersects")
    found = np.full(len(units), -1)
    found[unit_index] = community_index
    outside = found < 0
    if outside.any():
        first = np.flatnonzero(outside)[0]
        raise GeometryError(
            f"make_grids: {int(outside.sum())} unit(s) lie outside every community, first unit_id="
            f"{units['unit_id'].iloc[first]!r} at ({inside[first].x:.0f}, {inside[first].y:.0f}); expected every "
            "unit inside a community polygon (same CRS? units of another area?)"
        )
    if unknown.any():
        first = np.flatnonzero(unknown)[0]
        raise SchemaError(
            f"make_grids: unit_id={units['unit_id'].iloc[first]!r} has community_code="
            f"{units['community_code'].iloc[first]!r}, which is not in communities; expected the code of the "
            f"community it lies in ({codes[found[first]]!r})"
        )
    stated = position.reindex(units["community_code"].to_numpy()).to_numpy()
    # A unit on a community boundary may have its inner point in either polygon.
    wrong = stated != found
    if wrong.any():
        geoms = units.geometry.values
        own = communities.geometry.values[stated[wrong]]
        share = shapely.area(shapely.intersection(geoms[wrong], own)) / shapely.area(geoms[wrong])
        really = np.flatnonzero(wrong)[share < 0.5]
        if len(really):
            first = really[0]
            raise GeometryError(
                f"make_grids: unit_id={units['unit_id'].iloc[first]!r} has community_code="
                f"{units['community_code'].iloc[first]!r} but lies in community {codes[found[first]]!r}; "
                "expected units inside the community their code names"
            )
    return stated


# --------------------------------------------------------------------------- partition


def _choose_k(households: float, low: int, high: int) -> int:
    """Number of grids for ``households``: mean nearest the middle of [low, high] among the k that fit."""
    if households < 2 * low:
        return 1
    k_min = max(1, math.ceil(households / high))
    k_max = max(1, math.floor(households / low))
    if k_min <= k_max:
        middle = (low + high) / 2
        candidates = np.arange(k_min, k_max + 1)
        return int(candidates[np.argmin(np.abs(households / candidates - middle))])
    over = households / k_max / high - 1  # k_max grids: each a little above high
    under = 1 - households / k_min / low  # k_min grids: each a little below low
    return k_max if over <= under else k_min


def _side_violation(weight, big_weight, big_count, grids, low, high, middle):
    """Violation and deviation of a side of a cut that must hold ``grids`` grids."""
    rest = weight - big_weight
    rest_grids = grids - big_count
    span = max(high - low, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(rest_grids > 0, rest / np.maximum(rest_grids, 1), 0.0)
        violation = np.where(
            rest_grids > 0,
            np.maximum.reduce([np.zeros_like(mean), rest_grids * low - rest, rest - rest_grids * high]) / span,
            np.where(rest_grids == 0, rest / span * 0.25, 1e3),
        )
        deviation = np.where(rest_grids > 0, np.abs(mean - middle) / span, 0.0)
    return violation, deviation


def _spanning_tree(n: int, a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum spanning tree (Kruskal) as a BFS order from node 0 and each node's parent."""
    root = list(range(n))

    def find(x: int) -> int:
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    neighbours: list[list[int]] = [[] for _ in range(n)]
    joined = 0
    for e in np.argsort(weight, kind="stable").tolist():
        u, v = int(a[e]), int(b[e])
        ru, rv = find(u), find(v)
        if ru != rv:
            root[ru] = rv
            neighbours[u].append(v)
            neighbours[v].append(u)
            joined += 1
            if joined == n - 1:
                break
    parent = np.full(n, -1)
    order = [0]
    seen = [False] * n
    seen[0] = True
    for u in order:  # grows while iterating: breadth-first
        for v in neighbours[u]:
            if not seen[v]:
                seen[v] = True
                parent[v] = u
                order.append(v)
    return np.asarray(order), parent


def _bisect(nodes, k, households, big, xy, areas, edge_a, edge_b, edge_length, low, high, middle, rng):
    """Split connected ``nodes`` into two connected sets holding k1 and k - k1 grids."""
    n = len(nodes)
    local = np.full(households.shape[0], -1)
    local[nodes] = np.arange(n)
    keep = (local[edge_a] >= 0) & (local[edge_b] >= 0)
    a, b, length = local[edge_a[keep]], local[edge_b[keep]], edge_length[keep]
    weight = households[nodes].astype(float)
    big_weight = np.where(big[nodes], weight, 0.0)
    big_flag = big[nodes].astype(float)
    distance = np.hypot(*(xy[nodes][a] - xy[nodes][b]).T) + 1e-6
    # cut length in units of the side of the set: comparable across communities
    length_scale = max(math.sqrt(float(areas[nodes].sum())), 1e-9)
    total, bw_total, bc_total = weight.sum(), big_weight.sum(), big_flag.sum()
    best_score, best_side = np.inf, None
    trees = _TREES if n > 6 else 3
    for attempt in range(trees):
        jitter = 1.0 if attempt == 0 else rng.uniform(0.6, 1.4, len(distance))
        order, parent = _spanning_tree(n, a, b, distance * jitter)
        if len(order) < n:  # cannot happen for a connected graph; guarded by the caller
            continue
        member = np.eye(n, dtype=bool)
        for v in order[:0:-1]:
            member[parent[v]] |= member[v]
        inside = member[order[1:]]
        w1 = inside @ weight
        bw1 = inside @ big_weight
        bc1 = inside @ big_flag
        cut = (inside[:, a] != inside[:, b]) @ length
        # the side's share of grids: its big units plus its other households over the mean, +-1
        base = np.rint(bc1 + (w1 - bw1) / middle)
        k1 = np.clip(base[:, None] + np.array([-1, 0, 1])[None, :], 1, k - 1)
        v1, d1 = _side_violation(w1[:, None], bw1[:, None], bc1[:, None], k1, low, high, middle)
        v2, d2 = _side_violation((total - w1)[:, None], (bw_total - bw1)[:, None], (bc_total - bc1)[:, None],
                                 k - k1, low, high, middle)
        score = 100 * (v1 + v2) + (d1 + d2) + _COMPACTNESS * (cut / length_scale)[:, None]
        i, j = np.unravel_index(int(np.argmin(score)), score.shape)
        if score[i, j] < best_score:
            best_score = score[i, j]
            best_side = (inside[i].copy(), int(k1[i, j]))
    if best_side is None:  # pragma: no cover - only for a disconnected set, which the caller prevents
        side = np.zeros(n, dtype=bool)
        side[np.argsort(xy[nodes][:, 0], kind="stable")[: n // 2]] = True
        best_side = (side, max(1, k // 2))
    side, k1 = best_side
    return nodes[side], k1, nodes[~side], k - k1


def _partition(households, xy, areas, edge_a, edge_b, edge_length, k, low, high, rng) -> np.ndarray:
    """Labels 0..k-1 of n units: k connected groups within [low, high] households where possible."""
    n = len(households)
    labels = np.zeros(n, dtype=np.int64)
    if k <= 1 or n <= 1:
        return labels
    # Islands (units touching no other unit): link each extra component to its nearest unit
    # so that the tree cuts see one graph; such a grid may be multi-part, as its land is.
    graph = coo_matrix((np.ones(len(edge_a)), (edge_a, edge_b)), shape=(n, n))
    n_components, component = connected_components(graph, directed=False)
    if n_components > 1:
        extra_a, extra_b = [], []
        linked = component == np.bincount(component).argmax()
        while not linked.all():
            # the unit outside the linked set nearest to it joins, with its whole component
            mine, others = np.flatnonzero(~linked), np.flatnonzero(linked)
            d = np.hypot(xy[mine, 0][:, None] - xy[others, 0][None], xy[mine, 1][:, None] - xy[others, 1][None])
            i, j = np.unravel_index(np.argmin(d), d.shape)
            extra_a.append(mine[i])
            extra_b.append(others[j])
            linked |= component == component[mine[i]]
        edge_a = np.concatenate([edge_a, extra_a])
        edge_b = np.concatenate([edge_b, extra_b])
        edge_length = np.concatenate([edge_length, np.zeros(len(extra_a))])
    big = households > high
    k = min(k, n)
    middle_rest = households[~big].sum() / max(k - big.sum(), 1)
    middle = min(max(middle_rest, low), high) if k > big.sum() else (low + high) / 2
    pending = [(np.arange(n), k)]
    groups = []
    while pending:
        nodes, grids = pending.pop()
        if grids <= 1 or len(nodes) <= 1:
            groups.append(nodes)
            continue
        grids = min(grids, len(nodes))
        left, k1, right, k2 = _bisect(nodes, grids, households, big, xy, areas, edge_a, edge_b, edge_length,
                                      low, high, middle, rng)
        pending.append((right, k2))
        pending.append((left, k1))
    for label, nodes in enumerate(groups):
        labels[nodes] = label
    return _repair_bounds(labels, households, edge_a, edge_b, edge_length, low, high)


def _repair_bounds(labels, households, edge_a, edge_b, edge_length, low, high) -> np.ndarray:
    """Move single boundary units between neighbouring grids while that lowers the bound violations
    (:func:`jngis.regions.steepest_descent`: never disconnecting a grid, ties to the longest edge)."""
    graph = Graph.from_edges(len(labels), edge_a, edge_b, edge_length)
    regions = Regions(graph, households, labels, lo=low, hi=high, cap_heavy=False)
    steepest_descent(regions)
    return np.asarray(regions.label, dtype=np.int64)


# --------------------------------------------------------------------------- land


def _shared_length(pieces: np.ndarray, owners: list) -> np.ndarray:
    """Length of boundary each piece shares with each owner geometry (pieces x owners)."""
    boundaries = shapely.boundary(pieces)
    owner_boundaries = shapely.boundary(np.asarray(owners, dtype=object))
    return shapely.length(shapely.intersection(boundaries[:, None], owner_boundaries[None, :]))


def _split_land(part, grid_units: list, touching: np.ndarray, spacing: float) -> list[tuple[int, object]]:
    """Divide one land part among the grids it touches by the Voronoi diagram of their shared edges."""
    points, labels = [], []
    for g in touching:
        edge = shapely.intersection(shapely.boundary(part), shapely.boundary(grid_units[g]))
        coords = shapely.get_coordinates(shapely.segmentize(edge, spacing))
        points.append(coords)
        labels.append(np.full(len(coords), g))
    points = np.concatenate(points)
    labels = np.concatenate(labels)
    points, first = np.unique(np.round(points, 6), axis=0, return_index=True)
    labels = labels[first]
    if len(points) < 3 or len(np.unique(labels)) < 2:
        return [(int(labels[0]), part)]
    envelope = shapely.box(*shapely.buffer(shapely.envelope(part), spacing * 4 + 10).bounds)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(points), extend_to=envelope,
                                                       ordered=True))
    pieces = []
    for g in np.unique(labels):
        territory = shapely.coverage_union_all(cells[labels == g])  # Voronoi cells: a valid coverage
        piece = shapely.intersection(part, territory)
        pieces.extend((int(g), p) for p in shapely.get_parts(piece) if p.area > 0)
    return pieces


def _assign_land(land_parts: np.ndarray, grid_units: list, spacing: float) -> list[list]:
    """Open land pieces per residential grid."""
    k = len(grid_units)
    land = [[] for _ in range(k)]
    if len(land_parts) == 0:
        return land
    if k == 1:
        land[0].extend(land_parts)
        return land
    shared = _shared_length(land_parts, grid_units)
    pieces: list[tuple[int, object]] = []
    for i, part in enumerate(land_parts):
        touching = np.flatnonzero(shared[i] > 1e-6)
        if len(touching) == 0:
            nearest = int(np.argmin(shapely.distance(part, np.asarray(grid_units, dtype=object))))
            land[nearest].append(part)
        elif len(touching) == 1:
            land[int(touching[0])].append(part)
        else:
            pieces.extend(_split_land(part, grid_units, touching, spacing))
    if pieces:
        geoms = np.array([p for _, p in pieces], dtype=object)
        owner = np.array([g for g, _ in pieces])
        contact = _shared_length(geoms, grid_units)
        for i in range(len(geoms)):
            # a piece cut off from its grid's units joins the grid it borders most
            if contact[i, owner[i]] <= 1e-6 and contact[i].max() > 1e-6:
                owner[i] = int(np.argmax(contact[i]))
            land[owner[i]].append(geoms[i])
    return land


# --------------------------------------------------------------------------- one community


def _union(geometries: np.ndarray, robust: bool):
    """Union of units: the fast coverage union, or a full overlay when units may overlap."""
    if not robust:
        try:
            return shapely.coverage_union_all(geometries)
        except shapely.errors.GEOSException:
            pass
    return shapely.union_all(geometries)


def _community_grids(code, polygon, unit_geoms, households, population, edges, low, high,
                     dedicated_min_area, rng, robust=False):
    """Grids of one community: list of (geometry, grid_type, households, population, n_units)."""
    n = len(unit_geoms)
    shapely.prepare(polygon)
    results = []
    if n:
        clipped = unit_geoms.copy()
        out = ~shapely.covered_by(unit_geoms, polygon)
        if out.any():
            clipped[out] = shapely.intersection(unit_geoms[out], polygon)
        units_union = _union(clipped, robust)
        open_land = shapely.difference(polygon, units_union)
    else:
        clipped = unit_geoms
        open_land = polygon
    land_parts = shapely.get_parts(open_land)
    land_parts = land_parts[shapely.get_type_id(land_parts) == 3] if len(land_parts) else land_parts
    land_parts = land_parts[shapely.area(land_parts) > 0]
    if dedicated_min_area is not None and len(land_parts):
        dedicated = shapely.area(land_parts) >= dedicated_min_area
        for part in land_parts[dedicated]:
            results.append((part, "dedicated", 0, 0, 0))
        land_parts = land_parts[~dedicated]
    if n == 0:
        if len(land_parts):
            results.append((shapely.union_all(land_parts), "residential", 0, 0, 0))
        return results
    k = _choose_k_with_big(households, low, high)
    if k + len(results) > 999:
        raise ParameterError(f"make_grids: community {code!r} needs {k + len(results)} grids, more than the 999 a "
                             "3-digit code allows; expected larger max_households")
    xy = shapely.get_coordinates(shapely.centroid(clipped))
    edge_a, edge_b, edge_length = edges
    labels = _partition(households, xy, shapely.area(clipped), edge_a, edge_b, edge_length, k, low, high, rng)
    k = int(labels.max()) + 1
    members = [np.flatnonzero(labels == g) for g in range(k)]
    grid_units = [_union(clipped[m], robust) for m in members]
    spacing = max(2.0, math.sqrt(float(np.median(shapely.area(clipped)))) / 8)
    land = _assign_land(land_parts, grid_units, spacing)
    geometries = [shapely.union_all(np.array([grid_units[g], *land[g]], dtype=object)) if land[g]
                  else grid_units[g] for g in range(k)]
    geometries = _reconnect(geometries, grid_units, [r[0] for r in results])
    for g in range(k):
        results.append((geometries[g], "residential", int(households[members[g]].sum()),
                        int(population[members[g]].sum()), len(members[g])))
    return results


def _reconnect(geometries: list, grid_units: list, fixed: list) -> list:
    """Give land pieces cut off from their grid's units to the grid they share the longest edge with."""
    geometries = list(geometries)
    for _ in range(3):
        moved = False
        for g in range(len(geometries)):
            parts = shapely.get_parts(geometries[g])
            if len(parts) <= 1:
                continue
            holds_units = shapely.area(shapely.intersection(parts, grid_units[g])) > 1e-6
            stray = parts[~holds_units]
            if len(stray) == 0 or not holds_units.any():
                continue
            others = [h for h in range(len(geometries)) if h != g]
            if not others:
                continue
            contact = _shared_length(stray, [geometries[h] for h in others] + fixed)
            kept = list(parts[holds_units])
            for i, piece in enumerate(stray):
                if contact[i].max() <= 1e-6:
                    kept.append(piece)
                    continue
                target = int(np.argmax(contact[i]))
                if target < len(others):
                    h = others[target]
                    geometries[h] = shapely.union(geometries[h], piece)
                else:  # borders a dedicated grid only: keep it rather than enlarge the dedicated grid
                    kept.append(piece)
                    continue
                moved = True
            geometries[g] = shapely.union_all(np.array(kept, dtype=object))
        if not moved:
            break
    return geometries


def _choose_k_with_big(households: np.ndarray, low: int, high: int) -> int:
    big = households > high
    rest = float(households[~big].sum())
    if not big.any():
        return _choose_k(rest, low, high)
    # leftovers too small for a grid of their own join the big units' grids
    return int(big.sum()) + (_choose_k(rest, low, high) if rest >= low else 0)


def _polygonal(geometry):
    """Keep only the polygons of an overlay result (drop stray lines and points)."""
    if shapely.get_type_id(geometry) in (3, 6):
        return geometry
    parts = shapely.get_parts(geometry)
    parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
    return shapely.union_all(parts) if len(parts) else shapely.Polygon()


def _repair(polygon, geometries: list) -> list:
    """Make grids tile ``polygon``: clip, remove overlaps in order, give gaps to the longest edge."""
    fixed, covered = [], shapely.Polygon()
    for geometry in geometries:
        piece = _polygonal(shapely.difference(shapely.intersection(geometry, polygon), covered))
        fixed.append(piece)
        covered = shapely.union(covered, piece)
    gap = _polygonal(shapely.difference(polygon, covered))
    for part in shapely.get_parts(gap):
        if part.area <= 0:
            continue
        contact = _shared_length(np.array([part], dtype=object), fixed)[0]
        target = int(np.argmax(contact)) if contact.max() > 0 else \
            int(np.argmin(shapely.distance(part, np.asarray(fixed, dtype=object))))
        fixed[target] = _polygonal(shapely.union(fixed[target], part))
    return fixed


def _one_community(task) -> list[tuple]:
    """Grid rows of one community (code order), tiling checked and repaired."""
    code, street_code, polygon, unit_geoms, households, population, edges, low, high, dedicated_min_area, seed = task
    arguments = (code, polygon, unit_geoms, households, population, edges, low, high, dedicated_min_area)
    grids = _community_grids(*arguments, np.random.default_rng([seed, int(code)]))
    geometries = [g[0] for g in grids]
    if coverage_errors(geometries, polygon).worst > TILING_TOLERANCE:
        # units that overlap or leave slivers: redo with full overlays, then repair what is left
        grids = _community_grids(*arguments, np.random.default_rng([seed, int(code)]), robust=True)
        geometries = [g[0] for g in grids]
    if coverage_errors(geometries, polygon).worst > TILING_TOLERANCE:
        geometries = _repair(polygon, geometries)
        errors = coverage_errors(geometries, polygon)
        if errors.worst > TILING_TOLERANCE:  # pragma: no cover - defensive
            raise GeometryError(f"make_grids: the grids of community {code!r} do not tile it ({errors}); "
                                "expected gaps and overlaps under 1 m² (are the units valid?)")
    geometries = np.asarray(geometries, dtype=object)
    rows = []
    for rank, i in enumerate(_code_order(geometries, polygon)):
        _, grid_type, grid_households, grid_population, n_units = grids[i]
        rows.append((f"{code}{rank + 1:03d}", code, street_code, grid_type, grid_households,
                     grid_population, n_units, geometries[i]))
    return rows


def _batch(tasks: list) -> tuple[list[tuple], int]:
    rows = []
    for task in tasks:
        rows.extend(_one_community(task))
    return rows, len(tasks)


def _code_order(geometries: np.ndarray, polygon) -> np.ndarray:
    """Positions of grids in code order: north→south rows of an average grid's side, west→east inside."""
    centroids = shapely.get_coordinates(shapely.centroid(geometries))
    row_height = max(math.sqrt(shapely.area(polygon) / max(len(geometries), 1)), 1e-9)
    top = shapely.bounds(polygon)[3]
    row = np.floor((top - centroids[:, 1]) / row_height)
    return np.lexsort((-centroids[:, 1], centroids[:, 0], row))


# --------------------------------------------------------------------------- previous


def _unchanged(previous: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, units: gpd.GeoDataFrame,
               unit_points: np.ndarray) -> set:
    """Communities whose previous grids still tile them and hold the same households."""
    if previous is None or len(previous) == 0:
        return set()
    keep = set()
    by_code = previous.groupby("community_code").indices
    tree = shapely.STRtree(previous.geometry.values)
    point_index, grid_index = tree.query(unit_points, predicate="within")
    counted = np.zeros(len(previous), dtype=np.int64)
    np.add.at(counted, grid_index, units["households"].to_numpy()[point_index])
    placed = np.zeros(len(units), dtype=bool)
    placed[point_index] = True
    unit_codes = units["community_code"].to_numpy()
    stray = set(unit_codes[~placed].tolist())  # a unit in no previous grid: its community changed
    stored = previous["households"].to_numpy()
    for code, polygon in zip(communities["community_code"].to_numpy(), communities.geometry.values):
        rows = by_code.get(code)
        if rows is None or code in stray:
            continue
        if not np.array_equal(counted[rows], stored[rows]):
            continue
        if coverage_errors(previous.geometry.values[rows], polygon).worst > TILING_TOLERANCE:
            continue
        keep.add(code)
    return keep


# --------------------------------------------------------------------------- public


def make_grids(
    communities: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    *,
    min_households: int = 300,
    max_households: int = 500,
    dedicated_min_area: float | None = None,
    previous: gpd.GeoDataFrame | None = None,
    seed: int = 0,
    staffing: Staffing | dict | None = None,
    progress: bool = False,
    workers: int = 1,
) -> gpd.GeoDataFrame:
    """Divide every community into management grids that tile it exactly.

    Parameters
    ----------
    communities : GeoDataFrame
        Kind "communities", in a projected CRS (metres). They must not overlap.
    units : GeoDataFrame
        Kind "units" (residential blocks or buildings), same CRS, each inside
        the community its ``community_code`` names. Land of a community not
        covered by units is open land.
    min_households, max_households : int
        Household bounds of a residential grid (default 300-500).
    dedicated_min_area : float, optional
        Connected open land (no units, no households) of at least this many
        m² becomes a dedicated grid (专属网格: campus, park, market). ``None``
        (default): all open land joins the neighbouring residential grids.
    previous : GeoDataFrame, optional
        Grids from an earlier run (kind "grids"). A community whose previous
        grids still tile it and still hold the same households (each unit in
        the same grid) keeps those rows unchanged; only the others are regridded.
    seed : int
        Seed of the spanning-tree sampling; the same input and seed give the
        same grids.
    staffing : Staffing or dict, optional
        Staff per grid ("1+1+N+X"); default one grid leader and one full-time
        grid worker.
    progress : bool
        Show a tqdm progress bar over communities.
    workers : int
        Processes to use (communities are independent); 1 (default) runs in
        this process. The result does not depend on it.

    Returns
    -------
    GeoDataFrame
        Kind "grids", one row per grid, in the input CRS: ``grid_code``,
        ``community_code``, ``street_code``, ``grid_type`` ("residential" /
        "dedicated"), ``households``, ``population``, ``units``, ``area_m2``,
        ``grid_leaders``, ``full_time_workers``, ``part_time_workers``,
        ``enforcement_officers``, ``workers_needed``, ``geometry``. Sorted by
        ``grid_code`` (see the module docstring for the numbering rule).

    Raises
    ------
    CRSError
        A geographic or missing CRS, or communities and units in different CRSs.
    ParameterError
        ``min_households > max_households``, non-positive bounds, bad options.
    GeometryError
        A unit outside every community, or communities that overlap.
    SchemaError
        A layer that does not validate, or a unit whose community is missing.

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> city = load_slice()
    >>> grids = make_grids(city.communities, city.units)
    >>> grids.groupby("community_code").size().tolist()
    [8, 4, 5, 6, 2]
    >>> grids["grid_code"].iloc[0], bool(grids["households"].between(300, 500).mean() > 0.8)
    ('370102003001001', True)
    """
    function = "make_grids"
    for name, layer in (("communities", communities), ("units", units)):
        if not isinstance(layer, gpd.GeoDataFrame):
            raise InputTypeError(f"{function}: {name} is a {type(layer).__name__}; expected a GeoDataFrame")
        _check_metric(layer, name, function)
    validate(communities, "communities")
    validate(units, "units")
    if communities.crs != units.crs:
        raise CRSError(f"{function}: communities are in {communities.crs.to_string()} but units in "
                       f"{units.crs.to_string()}; expected one CRS (reproject with .to_crs)")
    low = _check_count(min_households, "min_households", function, minimum=1)
    high = _check_count(max_households, "max_households", function, minimum=1)
    if low > high:
        raise ParameterError(f"{function}: min_households={low} > max_households={high}; expected "
                             "min_households <= max_households")
    if dedicated_min_area is not None and (
            isinstance(dedicated_min_area, bool) or not isinstance(dedicated_min_area, (int, float, np.number))
            or not np.isfinite(dedicated_min_area) or dedicated_min_area <= 0):
        raise ParameterError(f"{function}: dedicated_min_area={dedicated_min_area!r}; expected None or a "
                             "positive area in m²")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"{function}: seed={seed!r}; expected a non-negative integer")
    staff = _check_staffing(staffing)
    workers = _check_count(workers, "workers", function, minimum=1)
    if previous is not None:
        if not isinstance(previous, gpd.GeoDataFrame):
            raise InputTypeError(f"{function}: previous is a {type(previous).__name__}; expected a GeoDataFrame "
                                 "of kind 'grids' or None")
        validate(previous, "grids")
        if previous.crs != communities.crs:
            raise CRSError(f"{function}: previous grids are in {previous.crs} but communities in "
                           f"{communities.crs}; expected one CRS")
    left, right, area = overlaps(communities.geometry.values, min_area=TILING_TOLERANCE)
    if len(left):
        codes = communities["community_code"].to_numpy()
        raise GeometryError(
            f"{function}: {len(left)} pair(s) of communities overlap, first {codes[left[0]]!r} and "
            f"{codes[right[0]]!r} by {area[0]:.1f} m²; expected communities that do not overlap"
        )
    community_of = _unit_community(units, communities)

    # Sort units by community then unit_id so the row order of the input does not matter.
    order = np.lexsort((units["unit_id"].astype(str).to_numpy(), community_of))
    unit_geoms = np.asarray(units.geometry.values, dtype=object)[order]
    community_of = community_of[order]
    households = units["households"].to_numpy(dtype=np.int64)[order]
    population = (units["population"].to_numpy(dtype=np.int64)[order] if "population" in units.columns
                  else np.zeros(len(units), dtype=np.int64))
    edge_a, edge_b, edge_length = shared_edges(unit_geoms, min_length=0.01)
    same = community_of[edge_a] == community_of[edge_b]
    edge_a, edge_b, edge_length = edge_a[same], edge_b[same], edge_length[same]
    starts = np.searchsorted(community_of, np.arange(len(communities) + 1))
    edge_community = community_of[edge_a]
    edge_sort = np.argsort(edge_community, kind="stable")
    edge_a, edge_b, edge_length = edge_a[edge_sort], edge_b[edge_sort], edge_length[edge_sort]
    edge_community = edge_community[edge_sort]
    edge_starts = np.searchsorted(edge_community, np.arange(len(communities) + 1))

    unit_points = shapely.point_on_surface(np.asarray(units.geometry.values, dtype=object))
    keep = _unchanged(previous, communities, units, unit_points)

    codes = communities["community_code"].to_numpy()
    street_codes = communities["street_code"].to_numpy()
    polygons = communities.geometry.values
    tasks, kept = [], []
    for c in range(len(communities)):
        code = codes[c]
        if code in keep:
            kept.append(code)
            continue
        s, e = starts[c], starts[c + 1]
        es, ee = edge_starts[c], edge_starts[c + 1]
        edges = (edge_a[es:ee] - s, edge_b[es:ee] - s, edge_length[es:ee])
        tasks.append((code, street_codes[c], polygons[c], unit_geoms[s:e], households[s:e], population[s:e],
                      edges, low, high, dedicated_min_area, seed))
    rows = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc="grids", unit="community")
    try:
        if workers == 1 or len(tasks) < 2 * workers:
            for task in tasks:
                rows.extend(_one_community(task))
                if bar is not None:
                    bar.update(1)
        else:
            from concurrent.futures import ProcessPoolExecutor

            # a few batches per worker: little pickling, even load
            size = max(1, math.ceil(len(tasks) / (workers * 8)))
            batches = [tasks[i:i + size] for i in range(0, len(tasks), size)]
            with ProcessPoolExecutor(max_workers=workers) as executor:
                try:
                    for batch_rows, done in executor.map(_batch, batches):
                        rows.extend(batch_rows)
                        if bar is not None:
                            bar.update(done)
                except BaseException:  # Ctrl-C or an error in a worker: stop the others at once
                    executor.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        if bar is not None:
            bar.close()
    columns = ["grid_code", "community_code", "street_code", "grid_type", "households", "population",
               "units", "geometry"]
    fresh = gpd.GeoDataFrame(rows, columns=columns, geometry="geometry", crs=communities.crs)
    fresh["area_m2"] = shapely.area(fresh.geometry.values)
    staff_table = np.array([staff.per_grid(h) for h in fresh["households"]], dtype=np.int64).reshape(-1, 4)
    for j, name in enumerate(_STAFF_COLUMNS):
        fresh[name] = staff_table[:, j]
    fresh["workers_needed"] = staff_table.sum(axis=1)
    for name in ("households", "population", "units"):
        fresh[name] = fresh[name].astype(np.int64)
    fresh = fresh[[c for c in fresh.columns if c != "geometry"] + ["geometry"]]
    if kept:
        old = previous[previous["community_code"].isin(kept)]
        result = pd.concat([old, fresh], ignore_index=True) if len(fresh) else old.copy()
        result = gpd.GeoDataFrame(result, geometry=previous.geometry.name, crs=communities.crs)
    else:
        result = fresh
    result = result.sort_values("grid_code", kind="stable").reset_index(drop=True)
    return validate(result, "grids")


def grid_quality(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame | None = None, *,
                 units: gpd.GeoDataFrame | None = None,
                 min_households: int = 300, max_households: int = 500) -> dict:
    """Quality figures of a grids layer: share within bounds, compactness, contiguity, tiling error.

    Returns a dict with ``grids``, ``residential``, ``dedicated``,
    ``within_bounds`` (share of residential grids within the bounds),
    ``below``, ``above``, ``mean_polsby_popper`` (residential grids),
    ``contiguous`` (share of single-polygon grids) and, when ``communities``
    is given, ``worst_coverage_error`` (m²). With ``units``, also
    ``unsplittable`` (grids above the bounds because one of their units alone
    exceeds them) and ``within_bounds_feasible`` (the share within bounds
    among the other residential grids).

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> city = load_slice()
    >>> q = grid_quality(make_grids(city.communities, city.units), city.communities)
    >>> q["worst_coverage_error"] < 1, q["contiguous"]
    (True, 1.0)
    """
    validate(grids, "grids")
    low = _check_count(min_households, "min_households", "grid_quality", minimum=1)
    high = _check_count(max_households, "max_households", "grid_quality", minimum=1)
    residential = grids[grids["grid_type"] == "residential"]
    households = residential["households"].to_numpy()
    geoms = np.asarray(grids.geometry.values, dtype=object)
    quality = {
        "grids": len(grids),
        "residential": len(residential),
        "dedicated": int((grids["grid_type"] == "dedicated").sum()),
        "within_bounds": float(((households >= low) & (households <= high)).mean()) if len(households) else 1.0,
        "below": int((households < low).sum()),
        "above": int((households > high).sum()),
        "mean_polsby_popper": float(polsby_popper(residential).mean()) if len(residential) else float("nan"),
        "contiguous": float((shapely.get_num_geometries(geoms) == 1).mean()) if len(geoms) else 1.0,
    }
    if units is not None:
        validate(units, "units")
        tree = shapely.STRtree(residential.geometry.values)
        unit_index, grid_index = tree.query(shapely.point_on_surface(units.geometry.values), predicate="within")
        largest = np.zeros(len(residential))
        np.maximum.at(largest, grid_index, units["households"].to_numpy(dtype=float)[unit_index])
        unsplittable = largest > high
        others = households[~unsplittable]
        quality["unsplittable"] = int(unsplittable.sum())
        quality["within_bounds_feasible"] = float(((others >= low) & (others <= high)).mean()) \
            if len(others) else 1.0
    if communities is not None:
        from jngis.topology import check_tiling

        table = check_tiling(grids, communities, "community_code")
        quality["worst_coverage_error"] = float(table[["gap", "overlap", "outside"]].to_numpy().max())
    return quality


def grid_summary(grids: gpd.GeoDataFrame, by: str = "community") -> pd.DataFrame:
    """Grids, households and staff needed per community, 街道 or district.

    Parameters
    ----------
    grids : GeoDataFrame
        Kind "grids" (as from :func:`make_grids`).
    by : {"community", "street", "district"}
        The level to sum to; the code is taken from ``grid_code``'s prefix.

    Returns
    -------
    DataFrame
        Indexed by ``community_code`` / ``street_code`` / ``district_code``:
        ``grids``, ``residential_grids``, ``dedicated_grids``, ``households``,
        ``population`` (when present), the staff columns and ``workers_needed``.

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> city = load_slice()
    >>> table = grid_summary(make_grids(city.communities, city.units), by="street")
    >>> table[["grids", "workers_needed"]].to_dict("index")
    {'370102003': {'grids': 25, 'workers_needed': 50}}
    """
    validate(grids, "grids")
    digits = {"community": 12, "street": 9, "district": 6}
    if by not in digits:
        raise ParameterError(f"grid_summary: by={by!r}; expected one of 'community', 'street', 'district'")
    key = f"{by}_code"
    frame = pd.DataFrame({
        key: grids["grid_code"].str[: digits[by]].to_numpy(),
        "grids": 1,
        "residential_grids": (grids["grid_type"] == "residential").to_numpy().astype(int),
        "dedicated_grids": (grids["grid_type"] == "dedicated").to_numpy().astype(int),
        "households": grids["households"].to_numpy(),
    })
    extra = [c for c in ("population", *_STAFF_COLUMNS) if c in grids.columns]
    for column in extra:
        frame[column] = grids[column].to_numpy()
    if "workers_needed" in grids.columns:
        frame["workers_needed"] = grids["workers_needed"].to_numpy()
    else:  # grids from elsewhere: the default 1+1 per grid
        frame["workers_needed"] = sum(Staffing()[:2])
    return frame.groupby(key).sum().astype(np.int64)


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
    function = "regular_grid"
    if isinstance(area, (gpd.GeoDataFrame, gpd.GeoSeries)):
        _check_metric(area if isinstance(area, gpd.GeoDataFrame) else gpd.GeoDataFrame(geometry=area),
                      "area", function)
        out_crs = area.crs
        boundary = shapely.union_all(np.asarray(area.geometry.values if isinstance(area, gpd.GeoDataFrame)
                                                else area.values, dtype=object))
    elif isinstance(area, shapely.Geometry):
        if crs is None:
            raise CRSError(f"{function}: area is a bare {area.geom_type} and crs is None; expected crs= "
                           "naming a projected CRS in metres (e.g. 'EPSG:4548')")
        _check_metric(gpd.GeoDataFrame(geometry=[area], crs=crs), "area", function)
        out_crs, boundary = crs, area
    else:
        raise InputTypeError(f"{function}: area is a {type(area).__name__}; expected a GeoDataFrame, a GeoSeries "
                             "or a shapely polygon")
    if shapely.is_empty(boundary) or shapely.get_type_id(boundary) not in (3, 6) or not shapely.is_valid(boundary):
        raise GeometryError(f"{function}: area is {boundary.geom_type if not boundary.is_empty else 'empty'}"
                            f"{'' if shapely.is_valid(boundary) else ' and invalid'}; expected a valid "
                            "(Multi)Polygon")
    if isinstance(cell_size, bool) or not isinstance(cell_size, (int, float, np.number)) or \
            not np.isfinite(cell_size) or cell_size <= 0:
        raise ParameterError(f"{function}: cell_size={cell_size!r}; expected a positive length in metres")
    if shape not in ("square", "hex"):
        raise ParameterError(f"{function}: shape={shape!r}; expected 'square' or 'hex'")
    minx, miny, maxx, maxy = shapely.bounds(boundary)
    if shape == "square":
        width, height = cell_size, cell_size
    else:
        width, height = cell_size, cell_size * 3 / (2 * math.sqrt(3))  # column spacing, row spacing
    n_cols = int(math.ceil((maxx - minx) / width)) + (1 if shape == "hex" else 0)
    n_rows = int(math.ceil((maxy - miny) / height)) + (1 if shape == "hex" else 0)
    if n_cols * n_rows > 5_000_000:
        raise ParameterError(f"{function}: cell_size={cell_size!r} gives {n_cols * n_rows:,} cells over the "
                             "area; expected at most 5,000,000 (use a larger cell_size)")
    row, col = np.divmod(np.arange(n_rows * n_cols), n_cols)
    if shape == "square":
        x0 = minx + col * width
        y1 = maxy - row * height
        cells = shapely.box(x0, y1 - height, x0 + width, y1)
    else:
        radius = cell_size / math.sqrt(3)  # centre to vertex
        cx = minx + col * width + np.where(row % 2 == 1, width / 2, 0.0)
        cy = maxy - row * height
        angles = np.deg2rad(np.arange(30, 390, 60))
        ring = np.stack([cx[:, None] + radius * np.cos(angles)[None], cy[:, None] + radius * np.sin(angles)[None]],
                        axis=-1)
        cells = shapely.polygons(np.concatenate([ring, ring[:, :1]], axis=1))
    shapely.prepare(boundary)
    hit = shapely.intersects(boundary, cells)
    cells, row, col = cells[hit], row[hit], col[hit]
    inside = shapely.contains_properly(boundary, cells)
    clipped = cells.copy()
    clipped[~inside] = shapely.intersection(cells[~inside], boundary)
    clipped = np.array([_polygonal(g) for g in clipped], dtype=object) if (~inside).any() else clipped
    keep = shapely.area(clipped) > 0
    return gpd.GeoDataFrame(
        {"cell_id": np.arange(int(keep.sum())), "row": row[keep], "col": col[keep],
         "area_m2": shapely.area(clipped[keep])},
        geometry=clipped[keep], crs=out_crs,
    )
