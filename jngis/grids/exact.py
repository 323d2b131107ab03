"""Grids made an exact coverage of their community: one noded linework, its faces shared out.

Grids drawn as unions of units and open land tile their community only up to
float noise: units whose shared edges do not have the same vertices leave
slivers of 1e-9 m² and edges that cross at a hair's angle. An area check
passes them, but GEOS's coverage union refuses them and a tile builder
cannot keep one shared edge per pair of neighbours. :func:`exact_tiling`
nodes the community boundary and every grid boundary into one linework
(``shapely.union_all``), polygonizes it, gives each face inside the
community to the grid it overlaps most (a face no grid overlaps, to the
neighbouring face's grid it shares the longest edge with) and dissolves each
grid's faces: neighbours then share every edge vertex for vertex, and the
grids cover the community with its own vertices.
"""

from __future__ import annotations

import numpy as np
import shapely

__all__ = ["exact_tiling", "tiles_exactly", "same_rings"]

#: Grid vertices this close (m) to a community vertex move onto it before noding.
SNAP = 1e-6


def tiles_exactly(parts, whole) -> bool:
    """Whether ``parts`` tile ``whole`` exactly: a valid coverage whose coverage union is ``whole``.

    A valid coverage (shared edges vertex-matched, :func:`shapely.coverage_is_valid`) may still
    leave a gap of no area between neighbours; its union then has a hole ``whole`` lacks. So the
    union must have ``whole``'s parts and holes (a hole of ``whole`` under float noise may close)
    and differ from it by float noise only.
    """
    geoms = np.asarray(parts, dtype=object)
    if not len(geoms) or not shapely.is_valid(geoms).all() or not shapely.coverage_is_valid(geoms):
        return False
    try:
        union = shapely.coverage_union_all(geoms)
    except shapely.errors.GEOSException:
        return False
    noise = 1e-9 * max(whole.area, 1.0)
    return bool(union.is_valid) and same_rings(union, whole, noise) and \
        bool(shapely.area(shapely.symmetric_difference(union, whole)) <= noise)


def same_rings(union, whole, noise: float) -> bool:
    """``union`` has the polygons and holes of ``whole``, no other hole, and no other polygon but slivers.

    Polygons and holes of ``whole`` under ``noise`` m² (slivers of its own float noise) may be missing.
    """
    mine, theirs = shapely.get_parts(union), shapely.get_parts(whole)
    mine_holes, their_holes = (np.array([shapely.Polygon(ring).area for p in parts for ring in p.interiors])
                               for parts in (mine, theirs))
    return (len(mine_holes) <= len(their_holes) and (mine_holes > noise).sum() == (their_holes > noise).sum()
            and (shapely.area(mine) > noise).sum() == (shapely.area(theirs) > noise).sum())


def exact_tiling(polygon, geometries) -> list:
    """``geometries`` (nearly tiling ``polygon``) redrawn as an exact coverage of it, in the same order.

    Returns the input unchanged when a part would be left with no face (a part thinner than
    float noise), so the caller's tiling check decides.
    """
    parts = np.asarray(geometries, dtype=object)
    if len(parts) == 0:
        return list(parts)
    boundary = shapely.boundary(polygon)
    lines = shapely.snap(shapely.boundary(parts), boundary, SNAP)
    noded = shapely.union_all(np.concatenate([[boundary], lines]))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if len(faces) == 0:
        return list(parts)
    shapely.prepare(polygon)
    # inside by area, not by an inner point: a sliver face's inner point may fall either side
    faces = faces[shapely.area(shapely.intersection(faces, polygon)) > 0.5 * shapely.area(faces)]
    owner = _owners(faces, parts)
    if (owner < 0).any() or len(np.unique(owner)) < len(parts):
        return list(parts)
    order = np.argsort(owner, kind="stable")
    starts = np.searchsorted(owner[order], np.arange(len(parts) + 1))
    out = []
    for p in range(len(parts)):
        mine = faces[order[starts[p]:starts[p + 1]]]
        out.append(mine[0] if len(mine) == 1 else shapely.coverage_union_all(mine))
    return out


def _owners(faces: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """The part each face belongs to: most overlap, else the neighbouring face sharing the longest edge."""
    owner = np.full(len(faces), -1, dtype=np.int64)
    face_index, part_index = shapely.STRtree(parts).query(faces, predicate="intersects")
    area = shapely.area(shapely.intersection(faces[face_index], parts[part_index]))
    useful = area > 0
    face_index, part_index, area = face_index[useful], part_index[useful], area[useful]
    best = np.lexsort((-area, face_index))  # per face, the largest overlap first
    face_index, part_index = face_index[best], part_index[best]
    first = np.r_[True, face_index[1:] != face_index[:-1]] if len(face_index) else np.zeros(0, dtype=bool)
    owner[face_index[first]] = part_index[first]
    left = np.flatnonzero(owner < 0)
    if len(left):
        tree = shapely.STRtree(faces)
        edges = shapely.boundary(faces)
        while len(left):
            a, b = tree.query(faces[left], predicate="touches")
            a = left[a]
            known = owner[b] >= 0
            a, b = a[known], b[known]
            if len(a) == 0:
                break
            length = shapely.length(shapely.intersection(edges[a], edges[b]))
            best = np.lexsort((-length, a))
            a, b = a[best], b[best]
            first = np.r_[True, a[1:] != a[:-1]]
            owner[a[first]] = owner[b[first]]
            left = np.flatnonzero(owner < 0)
    return owner
