"""A polygon coverage as shared arcs: simplified once per shared edge, snap-rounded per zoom.

:class:`Arcs` splits a valid coverage (neighbours share vertex-matched edges)
into *arcs*, the runs of edges between junctions, and records each ring as a
sequence of arc traversals. A zoom's geometry then costs a few numba loops
over the arcs:

1. Douglas-Peucker per arc, so both neighbours get the same simplified edge;
   arcs that the simplification made cross or touch another are simplified
   less (:data:`_RETRIES`), down to their input vertices;
2. snap rounding (:mod:`jngis.tiles._snap_kernels`): every rounded vertex is a
   hot pixel, every segment goes through the hot pixels it passes, so parts
   thinner than a pixel collapse onto shared fragments instead of crossing;
3. rings assembled from the snapped arcs, spikes of collapsed parts removed;
4. a check that no edge crosses another, ends inside one or is used twice on
   one side; only if it finds one does the zoom go through GEOS
   (:func:`snap_round_coverage`, the previous whole-layer method).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely
from shapely import GeometryType

from jngis import _mvt
from jngis._numba import warm_once
from jngis.tiles import _arc_kernels as kernels
from jngis.tiles import _snap_kernels as snap

#: A multipolygon ragged array: coordinates, ring, polygon and feature offsets.
RaggedArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

#: Simplification is retried on conflicting arcs with these fractions of the tolerance.
_RETRIES = (0.25, 0.0)
#: Grid steps within which arcs affect each other's result at a zoom: a conflict needs their
#: boxes to meet, a hot pixel is within half a step of a vertex and acts half a step around.
_NEAR = 1.5
#: When more than this share of a layer changed, an update builds it as a cold build does (the
#: bookkeeping of the unchanged part would cost more than it saves).
MOSTLY = 0.5


@dataclass(frozen=True)
class Arcs:
    """The arcs of a coverage and the rings they make.

    ``coords`` are the arcs' vertices one arc after another (``offsets``),
    ``start`` / ``end`` the vertex ids of each arc's ends; ring ``r`` is the
    traversals ``ring_arc[ring_offsets[r]:ring_offsets[r + 1]]`` (each
    forward or not); ``rings`` / ``polygons`` are the polygon and feature
    offsets of the input's multipolygon layout, ``owners`` the (up to two)
    features on the sides of each arc (-1: none).
    """

    coords: np.ndarray
    offsets: np.ndarray
    start: np.ndarray
    end: np.ndarray
    ring_arc: np.ndarray
    ring_forward: np.ndarray
    ring_offsets: np.ndarray
    rings: np.ndarray
    polygons: np.ndarray
    owners: np.ndarray

    @classmethod
    def of(cls, coords: np.ndarray, rings: np.ndarray, polygons: np.ndarray,
           features: np.ndarray) -> Arcs:
        """The arcs of a coverage given as a multipolygon ragged array (closed rings)."""
        unique, vid = _unique_rows(coords)
        n_vertices = len(unique)
        start, end, edge_offsets = kernels.ring_edges(vid, rings)
        low, high = np.minimum(start, end), np.maximum(start, end)
        keys, edge_id, counts = np.unique(low * n_vertices + high, return_inverse=True,
                                          return_counts=True)
        edge_id = edge_id.ravel()
        u_low, u_high = keys // n_vertices, keys % n_vertices
        ring_feature = np.repeat(np.repeat(np.arange(len(features) - 1), np.diff(features)),
                                 np.diff(polygons))
        edge_feature = np.repeat(ring_feature, np.diff(edge_offsets))
        owner_low = np.full(len(keys), np.iinfo(np.int64).max)
        owner_high = np.full(len(keys), -1)
        np.minimum.at(owner_low, edge_id, edge_feature)
        np.maximum.at(owner_high, edge_id, edge_feature)
        owner_high[counts == 1] = -1
        degree = np.bincount(u_low, minlength=n_vertices) + np.bincount(u_high,
                                                                        minlength=n_vertices)
        junction = kernels.mark_junctions(u_low, u_high, owner_low, owner_high, degree, n_vertices)
        junction[u_low[counts > 2]] = junction[u_high[counts > 2]] = True  # not a coverage there
        ends = np.concatenate([u_low, u_high])
        order = np.argsort(ends, kind="stable")
        incident = np.concatenate([np.arange(len(keys))] * 2)[order]
        incident_offsets = np.zeros(n_vertices + 1, np.int64)
        np.cumsum(np.bincount(ends, minlength=n_vertices), out=incident_offsets[1:])
        vertices, offsets, edge_arc, position, forward = kernels.walk_arcs(
            u_low, u_high, incident_offsets, incident, junction)
        ring_arc, ring_forward, ring_offsets = kernels.ring_arcs(
            start, edge_offsets, edge_id, u_low, edge_arc, position, forward, offsets)
        owners = np.full((len(offsets) - 1, 2), -1, np.int64)
        first = np.flatnonzero(position == 0)
        owners[edge_arc[first], 0] = owner_low[first]
        owners[edge_arc[first], 1] = owner_high[first]
        return cls(unique[vertices], offsets, vertices[offsets[:-1]], vertices[offsets[1:] - 1],
                   ring_arc, ring_forward, ring_offsets, polygons, features, owners)

    @property
    def n_features(self) -> int:
        return len(self.polygons) - 1

    @property
    def n_arcs(self) -> int:
        return len(self.offsets) - 1

    @cached_property
    def boxes(self) -> np.ndarray:
        """xmin, ymin, xmax, ymax of every arc (every simplified or snapped form lies within)."""
        if self.n_arcs == 0:
            return np.zeros((0, 4))
        starts = self.offsets[:-1]
        return np.column_stack([np.minimum.reduceat(self.coords[:, 0], starts),
                                np.minimum.reduceat(self.coords[:, 1], starts),
                                np.maximum.reduceat(self.coords[:, 0], starts),
                                np.maximum.reduceat(self.coords[:, 1], starts)])

    @cached_property
    def _tree(self) -> shapely.STRtree:
        return shapely.STRtree(shapely.box(*self.boxes.T))

    def keys(self) -> list[bytes]:
        """Each arc's exact coordinates as bytes: an arc with the same key simplifies the same."""
        flat = self.coords.tobytes()
        width = self.coords.itemsize * 2
        return [flat[a * width:b * width] for a, b in zip(self.offsets[:-1].tolist(),
                                                          self.offsets[1:].tolist())]

    def near(self, boxes: np.ndarray, margin: float) -> np.ndarray:
        """Sorted ids of the arcs whose boxes come within ``margin`` of any of ``boxes``."""
        if len(boxes) == 0 or self.n_arcs == 0:
            return np.zeros(0, np.int64)
        query = shapely.box(boxes[:, 0] - margin, boxes[:, 1] - margin, boxes[:, 2] + margin,
                            boxes[:, 3] + margin)
        return np.unique(self._tree.query(query)[1]).astype(np.int64)

    def zoom(self, scale: float, tolerance: float) -> ArcZoom:
        """Every arc simplified at ``scale`` and snap-rounded to the integer grid."""
        every = np.arange(self.n_arcs)
        flags, ints, offsets = self._window(every, np.full(self.n_arcs, -1, np.int8), scale,
                                            tolerance)
        return ArcZoom(flags, ints, offsets)

    def zoom_since(self, previous: Arcs, before: ArcZoom, match: np.ndarray, scale: float,
                   tolerance: float) -> tuple[ArcZoom, np.ndarray, np.ndarray]:
        """:meth:`zoom`, recomputed only around the arcs that are new since ``previous``.

        ``before`` is ``previous.zoom(scale, tolerance)`` and ``match[a]`` the
        arc of ``previous`` with arc ``a``'s exact coordinates (-1: none). An
        arc's result depends only on its coordinates and on the arcs within
        :data:`_NEAR` grid steps (the conflicts between simplified arcs, the hot
        pixels it passes), so the arcs near new or vanished ones are recomputed
        with two rings of neighbours around them (the outer one replays its
        recorded retries); where the inner ring comes out different from
        ``before``, the recomputed part grows and the step repeats. The
        result is what :meth:`zoom` gives. Returns it, the arcs whose result
        may differ from ``before`` and those whose neighbours were all seen.
        """
        margin = _NEAR / scale
        taken = np.zeros(previous.n_arcs, np.bool_)
        taken[match[match >= 0]] = True
        fresh = np.flatnonzero(match < 0)
        seeds = np.concatenate([self.boxes[fresh], previous.boxes[~taken]])
        changed = np.union1d(fresh, self.near(seeds, margin))
        if len(changed) == 0:  # the same arcs, renumbered
            offsets = np.zeros(self.n_arcs + 1, np.int64)
            np.cumsum(np.diff(before.offsets)[match], out=offsets[1:])
            return (ArcZoom(before.flags[match], before.ints[_pieces(before.offsets, match)],
                            offsets), changed, changed)
        while True:
            if len(changed) > self.n_arcs * MOSTLY:
                every = np.arange(self.n_arcs)
                return self.zoom(scale, tolerance), every, every
            ring = np.setdiff1d(self.near(self.boxes[changed], margin), changed)
            seen = np.union1d(changed, ring)
            outer = np.setdiff1d(self.near(self.boxes[seen], margin), seen)
            window = np.union1d(seen, outer)
            replay = np.full(len(window), -1, np.int8)
            in_outer = np.isin(window, outer)
            replay[in_outer] = before.flags[match[window[in_outer]]]
            flags, ints, offsets = self._window(window, replay, scale, tolerance)
            position = np.searchsorted(window, ring)
            same = flags[position] == before.flags[match[ring]]
            same &= _same_polylines(ints, offsets, position, before.ints, before.offsets,
                                    match[ring])
            if same.all():
                break
            changed = np.union1d(changed, ring[~same])
        inside = np.searchsorted(window, seen)
        result_flags = before.flags[np.maximum(match, 0)].copy()
        result_flags[seen] = flags[inside]
        lengths = np.zeros(self.n_arcs, np.int64)
        old = np.setdiff1d(np.arange(self.n_arcs), seen)
        lengths[old] = np.diff(before.offsets)[match[old]]
        lengths[seen] = np.diff(offsets)[inside]
        result_offsets = np.zeros(self.n_arcs + 1, np.int64)
        np.cumsum(lengths, out=result_offsets[1:])
        out = np.empty((result_offsets[-1], 2), np.int64)
        out[_pieces(result_offsets, old)] = before.ints[_pieces(before.offsets, match[old])]
        out[_pieces(result_offsets, seen)] = ints[_pieces(offsets, inside)]
        return ArcZoom(result_flags, out, result_offsets), changed, seen

    def _window(self, chosen: np.ndarray, replay: np.ndarray, scale: float,
                tolerance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The arcs ``chosen`` (sorted ids) simplified and snapped as among all arcs.

        Exact for the arcs whose neighbours (within :data:`_NEAR`) are all
        chosen; ``replay[i] >= 0`` gives arc ``chosen[i]``'s conflict flags
        instead of testing them (its neighbours are not all there). Returns
        the flags (bit ``r``: retried after round ``r``), the snapped
        vertices and their offsets, per chosen arc.
        """
        if len(chosen) == self.n_arcs:
            coords, offsets = self.coords, self.offsets
        else:
            coords = self.coords[_pieces(self.offsets, chosen)]
            offsets = np.zeros(len(chosen) + 1, np.int64)
            np.cumsum(np.diff(self.offsets)[chosen], out=offsets[1:])
        start, end = self.start[chosen], self.end[chosen]
        scaled = coords * scale
        keep = np.zeros(len(scaled), np.bool_)
        kernels.simplify(scaled, offsets, np.arange(len(chosen)), tolerance, keep)
        fixed = replay >= 0
        flags = np.zeros(len(chosen), np.int8)
        for attempt in range(len(_RETRIES) + 1):
            floats, kept = _kept(scaled, offsets, keep)
            # Douglas-Peucker is not topology-preserving: arcs it made cross are simplified less.
            changed = np.diff(kept) < np.diff(offsets)
            dirty = kernels.conflicts(floats, kept, start, end, _cell(floats, kept), changed)
            if attempt == len(_RETRIES):
                break
            dirty[fixed] = (replay[fixed] >> attempt) & 1 == 1
            if not dirty.any():
                break
            flags[dirty] |= 1 << attempt
            kernels.simplify(scaled, offsets, np.flatnonzero(dirty), tolerance * _RETRIES[attempt],
                             keep)
        hot, _ = _unique_rows(np.floor(floats + 0.5).astype(np.int64))
        ints, int_offsets = snap.snap_arcs(floats, kept, hot, _cell(floats, kept))
        return flags, ints, int_offsets

    def assemble(self, zoom: ArcZoom, chosen: np.ndarray | None = None) -> RaggedArrays:
        """The features ``chosen`` (default: all) from the snapped arcs of a zoom, unchecked."""
        every = np.arange(self.n_features) if chosen is None else chosen
        return kernels.assemble(zoom.ints, zoom.offsets, self.ring_arc, self.ring_forward,
                                self.ring_offsets, self.rings, self.polygons, every, True)

    def simplified(self, scale: float, tolerance: float) -> tuple[RaggedArrays, int, ArcZoom]:
        """Every feature at ``scale`` on the integer grid, as a multipolygon ragged array.

        A feature that collapses has no polygon. Returns the arrays (integer
        coordinates), how many features GEOS had to repair (then the whole
        zoom went through :func:`snap_round_coverage`) and the arcs of the zoom.
        """
        zoom = self.zoom(scale, tolerance)
        arrays = self.assemble(zoom)
        bad = _unnoded_features(*arrays, self.n_features)
        if bad.any():
            return ragged_integers(snap_round_coverage(_shapes(arrays))), int(bad.sum()), zoom
        return mend_pinched(arrays), 0, zoom


@dataclass(frozen=True)
class ArcZoom:
    """The arcs of a coverage at one zoom: the retries each needed and its snapped polyline."""

    flags: np.ndarray  #: per arc, bit r set when round r of the conflict check retried it
    ints: np.ndarray  #: the snapped vertices (int64), arc after arc
    offsets: np.ndarray  #: where each arc's vertices start in ``ints``


def mend_pinched(arrays: RaggedArrays) -> RaggedArrays:
    """The features with a ring pinched at a vertex split into parts there (else unchanged)."""
    pinched = _pinched_features(*arrays)
    if not len(pinched):
        return arrays
    fixed = ragged_integers(shapely.make_valid(_shapes(arrays, pinched), method="structure"))
    return kernels.splice(*arrays, pinched, *fixed)


def unnoded(arrays: RaggedArrays) -> bool:
    """Whether any edge of the features crosses another, ends inside one or is used twice on one side."""
    return bool(_unnoded_features(*arrays, len(arrays[3]) - 1).any())


def _pieces(offsets: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """The positions of the runs ``chosen`` of a ragged array with ``offsets``, one after another."""
    return _mvt.ranges(offsets[chosen], offsets[chosen + 1])


def _same_polylines(coords: np.ndarray, offsets: np.ndarray, chosen: np.ndarray,
                    other: np.ndarray, other_offsets: np.ndarray, other_chosen: np.ndarray) -> np.ndarray:
    """Per pair, whether run ``chosen[i]`` of one ragged array equals run ``other_chosen[i]`` of another."""
    lengths = np.diff(offsets)[chosen]
    same = lengths == np.diff(other_offsets)[other_chosen]
    if not same.any():
        return same
    pick, other_pick = chosen[same], other_chosen[same]
    differ = np.any(coords[_pieces(offsets, pick)] != other[_pieces(other_offsets, other_pick)],
                    axis=1)
    counts = lengths[same]
    run = np.repeat(np.arange(len(pick)), counts)
    wrong = np.bincount(run[differ], minlength=len(pick)) > 0
    same[np.flatnonzero(same)[wrong]] = False
    return same


def _cell(coords: np.ndarray, offsets: np.ndarray) -> float:
    """A grid cell for segment pairs: about twice the median segment length."""
    steps = np.abs(np.diff(coords, axis=0)).sum(axis=1)
    inside = np.ones(len(steps), np.bool_)
    inside[offsets[1:-1] - 1] = False
    steps = steps[inside]
    return float(max(2.0, 2 * np.median(steps))) if len(steps) else 2.0


def _hot_cell(hot: np.ndarray) -> int:
    """A grid cell holding a few hot pixels on average."""
    if len(hot) < 2:
        return 8
    extent = np.ptp(hot, axis=0).astype(np.float64) + 1
    return int(max(4, np.sqrt(extent[0] * extent[1] / len(hot)) * 2))


def _unnoded_features(out: np.ndarray, rings: np.ndarray, polygons: np.ndarray,
                      features: np.ndarray, n_features: int) -> np.ndarray:
    """Features with an edge that crosses another, ends inside one, or runs the same way as one."""
    bad = np.zeros(n_features, np.bool_)
    if len(out) < 2:
        return bad
    last = np.zeros(len(out), np.bool_)
    last[rings[1:] - 1] = True
    first = np.flatnonzero(~last)
    ring_of = np.repeat(np.arange(len(rings) - 1), np.diff(rings))
    feature_of = np.repeat(np.repeat(np.arange(len(features) - 1), np.diff(features)),
                           np.diff(polygons))[ring_of[first]]
    edges = np.concatenate([out[first], out[first + 1]], axis=1)  # x0, y0, x1, y1
    _, directed = _unique_rows(edges)
    bad[feature_of[np.bincount(directed)[directed] > 1]] = True  # two features on one side
    swap = (edges[:, 0] > edges[:, 2]) | ((edges[:, 0] == edges[:, 2]) & (edges[:, 1] > edges[:, 3]))
    edges[swap] = edges[swap][:, [2, 3, 0, 1]]
    seg, inverse = _unique_rows(edges)
    crossing = snap.unnoded(seg, _hot_cell(seg[:, :2]))
    bad[feature_of[crossing[inverse]]] = True
    return bad


def _shapes(arrays: RaggedArrays, chosen: np.ndarray | None = None) -> np.ndarray:
    """Shapely multipolygons of (some) features of a ragged array."""
    coords, rings, polygons, features = arrays
    if chosen is not None:
        coords, rings, polygons, features = _mvt.take(coords, rings, polygons, features, chosen)
    return shapely.from_ragged_array(GeometryType.MULTIPOLYGON, coords.astype(np.float64),
                                     (rings, polygons, features))


def ragged_integers(geoms: np.ndarray) -> RaggedArrays:
    """:func:`ragged` with the coordinates rounded to int64 (geometry already on the grid)."""
    coords, rings, polygons, features = ragged(geoms)
    return np.rint(coords).astype(np.int64), rings, polygons, features


def _pinched_features(coords: np.ndarray, rings: np.ndarray, polygons: np.ndarray,
                      features: np.ndarray) -> np.ndarray:
    """Sorted features with a ring that passes one vertex twice (invalid for GEOS)."""
    last = np.zeros(len(coords), np.bool_)
    last[rings[1:] - 1] = True  # the closing vertex repeats the first by design
    ring_of = np.repeat(np.arange(len(rings) - 1), np.diff(rings))[~last]
    points = coords[~last]
    _, inverse = _unique_rows(np.column_stack([ring_of, points]))
    twice = np.bincount(inverse)[inverse] > 1
    if not twice.any():
        return np.zeros(0, np.int64)
    feature_of = np.repeat(np.repeat(np.arange(len(features) - 1), np.diff(features)),
                           np.diff(polygons))
    return np.unique(feature_of[ring_of[twice]])


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of an (N, k) array in lexicographic order and each row's index among them.

    Integer columns are packed two by two into one key where they fit, then one
    sort (or lexsort) instead of ``np.unique(axis=0)``, which sorts rows as bytes.
    """
    keys = _packed(rows)
    if len(keys) == 1:
        order = np.argsort(keys[0], kind="stable")
    else:
        order = np.lexsort(keys[::-1])
    new = np.ones(len(rows), np.bool_)
    if len(rows) > 1:
        new[1:] = np.logical_or.reduce([key[order][1:] != key[order][:-1] for key in keys])
    inverse = np.empty(len(rows), np.int64)
    inverse[order] = np.cumsum(new) - 1
    return np.ascontiguousarray(rows[order[new]]), inverse


def _packed(rows: np.ndarray) -> list[np.ndarray]:
    """Columns of ``rows`` as sort keys, two non-negative int columns below 2**31 as one."""
    columns = [rows[:, j] for j in range(rows.shape[1])]
    if rows.dtype.kind != "i" or len(rows) == 0 or rows.min() < 0 or rows.max() >= 1 << 31:
        return columns
    keys = [columns[j] << 31 | columns[j + 1] for j in range(0, len(columns) - 1, 2)]
    return keys + columns[len(keys) * 2:]


def _kept(coords: np.ndarray, offsets: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kept vertices of every arc, with new offsets."""
    counts = np.add.reduceat(keep.astype(np.int64), offsets[:-1]) if len(offsets) > 1 else \
        np.zeros(0, np.int64)
    new = np.zeros(len(offsets), np.int64)
    np.cumsum(counts, out=new[1:])
    return np.ascontiguousarray(coords[keep]), new


def ragged(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates and offsets of polygons / multipolygons as one multipolygon structure."""
    if len(geoms) == 0:
        zero = np.zeros(1, np.int64)
        return np.zeros((0, 2)), zero, zero, zero
    geom_type, coords, offsets = shapely.to_ragged_array(geoms)
    if geom_type == GeometryType.POLYGON:
        rings, polygons = offsets
        return coords, rings.astype(np.int64), polygons.astype(np.int64), np.arange(len(geoms) + 1)
    rings, polygons, features = offsets
    return coords, rings.astype(np.int64), polygons.astype(np.int64), features.astype(np.int64)


def snap_clean(polygons: np.ndarray, grid: float,
               around: np.ndarray | None = None) -> np.ndarray | None:
    """Polygons edge-matched by snap rounding on a grid of ``1 / grid`` units, or None.

    Neighbours whose shared edges differ by float noise (a vertex a hair off
    the other side's edge, T-junctions) come out with vertex-matched edges, the
    input :class:`Arcs` needs, for a fraction of GEOS's coverage cleaning. Run
    it in the layer's own CRS: projected to web mercator, a straight shared
    edge bends and the vertex one side has on it moves off the other side's
    chord by centimetres. None when snapping is not enough: an edge still
    crosses another, ends inside one or is used twice on one side
    (overlapping input: the caller cleans with GEOS). ``around``: the
    polygons whose vertices make the hot pixels (default ``polygons``): with
    every polygon within a few grid steps of ``polygons``, the result is what
    a run over all of them gives for these.
    """
    coords, rings, polygons_of, features = ragged(polygons)
    fine = coords * grid
    hot_vertices = fine if around is None else shapely.get_coordinates(around) * grid
    hot, _ = _unique_rows(np.floor(hot_vertices + 0.5).astype(np.int64))
    ints, ring_offsets = snap.snap_arcs(fine, rings, hot, _cell(fine, rings))
    if (np.diff(ring_offsets) < 4).any() or \
            _unnoded_features(ints, ring_offsets, polygons_of, features, len(polygons)).any():
        return None
    return shapely.from_ragged_array(GeometryType.MULTIPOLYGON, ints / grid,
                                     (ring_offsets, polygons_of, features))


def warm() -> None:
    """Compile the arc kernels once per process, before threads build zooms side by side.

    Concurrent numba compilations are not safe (see :mod:`jngis._numba`).
    """
    warm_once("arcs", _compile)


def _compile() -> None:
    squares = shapely.box([0.0, 10.0], [0.0, 0.0], [10.0, 20.0], [10.0, 10.0])
    snapped = snap_clean(squares, 1000.0)  # two squares sharing an edge: a coverage
    arrays, _, _ = Arcs.of(*ragged(squares if snapped is None else snapped)).simplified(1.0, 1.0)
    kernels.feature_bounds(*arrays)
    kernels.splice(*arrays, np.array([0]), *arrays)


def snap_round_coverage(polygons: np.ndarray) -> np.ndarray:
    """A polygonal coverage moved onto the integer grid, still a valid coverage.

    Rounding each vertex on its own keeps shared edges shared but can push a
    vertex across a nearly collinear neighbouring edge (sub-unit overlaps).
    Instead the whole linework is snap-rounded and noded at once (GEOS
    overlay with ``grid_size=1``), polygonised, and each face goes back to the
    polygon its interior point lies in. Polygons left with no face (smaller
    than the grid) come back empty.
    """
    out = np.empty(len(polygons), dtype=object)
    out[:] = shapely.Polygon()
    if len(polygons) == 0:
        return out
    lines = shapely.union_all(shapely.boundary(polygons), grid_size=1.0)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    if len(faces) == 0:
        return out
    face, owner = shapely.STRtree(polygons).query(shapely.point_on_surface(faces),
                                                  predicate="within")
    face, first = np.unique(face, return_index=True)  # a face belongs to one polygon
    owner = owner[first]
    order = np.argsort(owner, kind="stable")
    face, owner = face[order], owner[order]
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    ends = np.r_[starts[1:], len(owner)]
    single = ends - starts == 1
    out[owner[starts[single]]] = faces[face[starts[single]]]
    for start, end in zip(starts[~single], ends[~single]):
        out[owner[start]] = shapely.coverage_union_all(faces[face[start:end]])
    return out
