"""Open land of a community given to its grids, and the repair that makes grids tile the community."""

from __future__ import annotations

import numpy as np
import shapely

from jngis.topology import union_coverage

__all__ = ["shared_length", "assign_land", "reconnect", "polygonal", "repair_tiling"]


def shared_length(pieces: np.ndarray, owners: list) -> np.ndarray:
    """Length of boundary each piece shares with each owner geometry (pieces x owners)."""
    boundaries = shapely.boundary(pieces)
    owner_boundaries = shapely.boundary(np.asarray(owners, dtype=object))
    return shapely.length(shapely.intersection(boundaries[:, None], owner_boundaries[None, :]))


def _split_land(part, grid_units: list, touching: np.ndarray, spacing: float) -> list[tuple[int, object]]:
    """Divide one land part among the grids it touches by the Voronoi diagram of their shared edges."""
    point_lists, label_lists = [], []
    for g in touching:
        edge = shapely.intersection(shapely.boundary(part), shapely.boundary(grid_units[g]))
        coords = shapely.get_coordinates(shapely.segmentize(edge, spacing))
        point_lists.append(coords)
        label_lists.append(np.full(len(coords), g))
    points = np.concatenate(point_lists)
    labels = np.concatenate(label_lists)
    points, first = np.unique(np.round(points, 6), axis=0, return_index=True)
    labels = labels[first]
    if len(points) < 3 or len(np.unique(labels)) < 2:
        return [(int(labels[0]), part)]
    envelope = shapely.box(*shapely.buffer(shapely.envelope(part), spacing * 4 + 10).bounds)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(points), extend_to=envelope,
                                                       ordered=True))
    pieces: list[tuple[int, object]] = []
    for g in np.unique(labels):
        territory = union_coverage(cells[labels == g])  # Voronoi cells: a valid coverage
        piece = shapely.intersection(part, territory)
        pieces.extend((int(g), p) for p in shapely.get_parts(piece) if p.area > 0)
    return pieces


def assign_land(land_parts: np.ndarray, grid_units: list, spacing: float) -> list[list]:
    """Open land pieces per residential grid."""
    k = len(grid_units)
    land: list[list] = [[] for _ in range(k)]
    if len(land_parts) == 0:
        return land
    if k == 1:
        land[0].extend(land_parts)
        return land
    shared = shared_length(land_parts, grid_units)
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
        contact = shared_length(geoms, grid_units)
        for i in range(len(geoms)):
            # a piece cut off from its grid's units joins the grid it borders most
            if contact[i, owner[i]] <= 1e-6 and contact[i].max() > 1e-6:
                owner[i] = int(np.argmax(contact[i]))
            land[owner[i]].append(geoms[i])
    return land


def reconnect(geometries: list, grid_units: list, fixed: list) -> list:
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
            contact = shared_length(stray, [geometries[h] for h in others] + fixed)
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


def polygonal(geometry):
    """Keep only the polygons of an overlay result (drop stray lines and points)."""
    if shapely.get_type_id(geometry) in (3, 6):
        return geometry
    parts = shapely.get_parts(geometry)
    parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
    return shapely.union_all(parts) if len(parts) else shapely.Polygon()


def repair_tiling(polygon, geometries: list) -> list:
    """Make grids tile ``polygon``: clip, remove overlaps in order, give gaps to the longest edge."""
    fixed, covered = [], shapely.Polygon()
    for geometry in geometries:
        piece = polygonal(shapely.difference(shapely.intersection(geometry, polygon), covered))
        fixed.append(piece)
        covered = shapely.union(covered, piece)
    gap = polygonal(shapely.difference(polygon, covered))
    for part in shapely.get_parts(gap):
        if part.area <= 0:
            continue
        contact = shared_length(np.array([part], dtype=object), fixed)[0]
        target = int(np.argmax(contact)) if contact.max() > 0 else \
            int(np.argmin(shapely.distance(part, np.asarray(fixed, dtype=object))))
        fixed[target] = polygonal(shapely.union(fixed[target], part))
    return fixed
