"""numba loops of :mod:`jngis.tiles.arcs`: arc extraction, simplification, rounding, assembly, conflicts.

Private to :mod:`jngis.tiles.arcs`. Arrays follow shapely's ragged layout
(coordinates with ring / polygon / feature offsets); an arc is a run of
vertex ids between two junctions of the coverage (or a closed ring with none).
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Grid cells (cx, cy) as one key cx * CELL_SHIFT + cy.
CELL_SHIFT = 1 << 31


@njit(cache=True, nogil=True)
def ring_edges(vid, rings):
    """Directed edges (a, b) of every ring, repeated vertices skipped, and each ring's first edge."""
    n_rings = len(rings) - 1
    start = np.empty(len(vid), np.int64)
    end = np.empty(len(vid), np.int64)
    offsets = np.zeros(n_rings + 1, np.int64)
    m = 0
    for r in range(n_rings):
        for i in range(rings[r], rings[r + 1] - 1):
            a, b = vid[i], vid[i + 1]
            if a != b:
                start[m] = a
                end[m] = b
                m += 1
        offsets[r + 1] = m
    return start[:m], end[:m], offsets


@njit(cache=True, nogil=True)
def mark_junctions(low, high, owner_low, owner_high, degree, n_vertices):
    """Junction vertices: degree other than 2, or two edges with different owners meeting there."""
    junction = degree != 2
    first = np.full(n_vertices, -1, np.int64)
    for e in range(len(low)):
        for v in (low[e], high[e]):
            if junction[v]:
                continue
            f = first[v]
            if f < 0:
                first[v] = e
            elif owner_low[f] != owner_low[e] or owner_high[f] != owner_high[e]:
                junction[v] = True
    return junction


@njit(cache=True, nogil=True)
def walk_arcs(low, high, incident_offsets, incident, junction):
    """Chains of edges between junctions (then the closed loops left): the arcs.

    Returns the arcs' vertex ids with offsets, and per edge its arc, its position
    along the arc and whether the arc runs from its low to its high vertex.
    """
    n_edges = len(low)
    n_vertices = len(junction)
    edge_arc = np.full(n_edges, -1, np.int64)
    edge_position = np.zeros(n_edges, np.int64)
    edge_forward = np.zeros(n_edges, np.bool_)
    vertices = np.empty(2 * n_edges + 1, np.int64)
    offsets = np.zeros(n_edges + 1, np.int64)
    n_arcs = 0
    m = 0
    for closed_loops in (False, True):
        for s in range(n_vertices):
            if junction[s] == closed_loops:
                continue
            for k in range(incident_offsets[s], incident_offsets[s + 1]):
                e = incident[k]
                if edge_arc[e] >= 0:
                    continue
                vertices[m] = s
                m += 1
                current = s
                position = 0
                while True:
                    edge_arc[e] = n_arcs
                    edge_position[e] = position
                    edge_forward[e] = low[e] == current
                    following = high[e] if low[e] == current else low[e]
                    vertices[m] = following
                    m += 1
                    position += 1
                    if junction[following] or following == s:
                        break
                    a = incident[incident_offsets[following]]
                    b = incident[incident_offsets[following] + 1]
                    e = b if a == e else a
                    if edge_arc[e] >= 0:
                        break
                    current = following
                n_arcs += 1
                offsets[n_arcs] = m
    return vertices[:m], offsets[:n_arcs + 1], edge_arc, edge_position, edge_forward


@njit(cache=True, nogil=True)
def ring_arcs(start, edge_offsets, edge_id, low, edge_arc, edge_position, edge_forward,
              arc_offsets):
    """Every ring as a sequence of arc traversals (arc id, forward) with offsets per ring."""
    n_rings = len(edge_offsets) - 1
    arcs = np.empty(len(start), np.int64)
    forward = np.empty(len(start), np.bool_)
    offsets = np.zeros(n_rings + 1, np.int64)
    m = 0
    for r in range(n_rings):
        first, last = edge_offsets[r], edge_offsets[r + 1]
        n = last - first
        begin = -1
        for i in range(first, last):
            e = edge_id[i]
            along = (start[i] == low[e]) == edge_forward[e]
            length = arc_offsets[edge_arc[e] + 1] - arc_offsets[edge_arc[e]] - 1
            if (along and edge_position[e] == 0) or (not along and edge_position[e] == length - 1):
                begin = i - first
                break
        if begin < 0 and n > 0:  # one closed arc without a junction
            e = edge_id[first]
            arcs[m] = edge_arc[e]
            forward[m] = (start[first] == low[e]) == edge_forward[e]
            m += 1
        elif n > 0:
            done = 0
            while done < n:
                i = first + (begin + done) % n
                e = edge_id[i]
                arcs[m] = edge_arc[e]
                forward[m] = (start[i] == low[e]) == edge_forward[e]
                m += 1
                done += arc_offsets[edge_arc[e] + 1] - arc_offsets[edge_arc[e]] - 1
        offsets[r + 1] = m
    return arcs[:m], forward[:m], offsets


@njit(cache=True, nogil=True)
def _distance2(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    if length2 == 0.0:
        return (px - ax) ** 2 + (py - ay) ** 2
    t = ((px - ax) * dx + (py - ay) * dy) / length2
    t = min(1.0, max(0.0, t))
    qx, qy = ax + t * dx - px, ay + t * dy - py
    return qx * qx + qy * qy


@njit(cache=True, nogil=True)
def _farthest(coords, first, last, ax, ay, bx, by):
    best, where = -1.0, -1
    for i in range(first + 1, last):
        d = _distance2(coords[i, 0], coords[i, 1], ax, ay, bx, by)
        if d > best:
            best, where = d, i
    return where, best


@njit(cache=True, nogil=True)
def _douglas_peucker(coords, first, last, tolerance2, keep, stack):
    top = 0
    stack[0, 0], stack[0, 1] = first, last
    top = 1
    while top > 0:
        top -= 1
        a, b = stack[top, 0], stack[top, 1]
        if b - a < 2:
            continue
        where, d = _farthest(coords, a, b, coords[a, 0], coords[a, 1], coords[b, 0], coords[b, 1])
        if d > tolerance2:
            keep[where] = True
            stack[top, 0], stack[top, 1] = a, where
            stack[top + 1, 0], stack[top + 1, 1] = where, b
            top += 2


@njit(cache=True, nogil=True)
def simplify(coords, arc_offsets, chosen, tolerance, keep):
    """Douglas-Peucker of the ``chosen`` arcs into ``keep`` (endpoints always kept).

    A closed arc keeps its start, the vertex farthest from it and the vertex
    farthest from each half's chord, so a lone ring stays a ring.
    """
    stack = np.empty((len(coords) + 2, 2), np.int64)
    tolerance2 = tolerance * tolerance
    for a in chosen:
        first, last = arc_offsets[a], arc_offsets[a + 1] - 1
        keep[first:last + 1] = False
        keep[first] = keep[last] = True
        x, y = coords[first, 0], coords[first, 1]
        if coords[last, 0] == x and coords[last, 1] == y:
            far, _ = _farthest(coords, first, last, x, y, x, y)
            if far < 0:
                continue
            keep[far] = True
            for a0, b0 in ((first, far), (far, last)):
                inner, _ = _farthest(coords, a0, b0, coords[a0, 0], coords[a0, 1],
                                     coords[b0, 0], coords[b0, 1])
                if inner >= 0:
                    keep[inner] = True
                _douglas_peucker(coords, a0, b0, tolerance2, keep, stack)
        else:
            _douglas_peucker(coords, first, last, tolerance2, keep, stack)


@njit(cache=True, nogil=True)
def round_arcs(coords, arc_offsets, keep, scale):
    """The kept vertices times ``scale`` rounded half up (as GEOS rounds), repeats dropped."""
    out = np.empty((len(coords), 2), np.int64)
    offsets = np.zeros(len(arc_offsets), np.int64)
    m = 0
    for a in range(len(arc_offsets) - 1):
        first, last = arc_offsets[a], arc_offsets[a + 1] - 1
        begin = m
        for i in range(first, last + 1):
            if not keep[i]:
                continue
            x = np.int64(np.floor(coords[i, 0] * scale + 0.5))
            y = np.int64(np.floor(coords[i, 1] * scale + 0.5))
            if m > begin and out[m - 1, 0] == x and out[m - 1, 1] == y:
                if i == last and m - 1 > begin:
                    m -= 1  # the arc's end replaces an interior vertex on the same pixel
                else:
                    continue
            out[m, 0], out[m, 1] = x, y
            m += 1
        if m - begin == 1:  # both ends on one pixel: keep the arc's two ends
            out[m] = out[m - 1]
            m += 1
        offsets[a + 1] = m
    return out[:m], offsets


@njit(cache=True, nogil=True)
def _same(out, i, j):
    return out[i, 0] == out[j, 0] and out[i, 1] == out[j, 1]


@njit(cache=True, nogil=True)
def _close_ring(out, begin, m):
    """Trim spikes across the ring's start and close it; returns the new end."""
    s0 = begin
    while m - s0 >= 3:
        if _same(out, m - 1, s0):
            m -= 1
        elif _same(out, m - 1, s0 + 1):  # the start is a spike's tip
            s0 += 1
            m -= 1
        elif _same(out, m - 2, s0):  # the last vertex is a spike's tip
            m -= 2
        else:
            break
    if s0 > begin:
        for k in range(m - s0):
            out[begin + k] = out[s0 + k]
        m = begin + m - s0
    if m > begin:
        out[m] = out[begin]
        m += 1
    return m


@njit(cache=True, nogil=True)
def assemble(coords, arc_offsets, ring_arc, ring_forward, ring_arc_offsets, rings_of_polygon,
             polygons_of_feature, chosen, check_area):
    """Rings of the ``chosen`` features from their arcs, as a multipolygon ragged array.

    Repeated vertices are dropped; a ring left with fewer than three distinct
    vertices, or zero area when ``check_area``, is dropped, and a polygon
    whose exterior is dropped goes with its holes. Returns the coordinates,
    ring, polygon and feature offsets.
    """
    total = 0
    for f in chosen:
        for p in range(polygons_of_feature[f], polygons_of_feature[f + 1]):
            for r in range(rings_of_polygon[p], rings_of_polygon[p + 1]):
                total += 1
                for t in range(ring_arc_offsets[r], ring_arc_offsets[r + 1]):
                    a = ring_arc[t]
                    total += arc_offsets[a + 1] - arc_offsets[a]
    out = np.empty((total + 1, 2), coords.dtype)
    rings = np.zeros(total + 1, np.int64)
    polygons = np.zeros(total + 1, np.int64)
    features = np.zeros(len(chosen) + 1, np.int64)
    m = n_rings = n_polygons = 0
    for i in range(len(chosen)):
        f = chosen[i]
        for p in range(polygons_of_feature[f], polygons_of_feature[f + 1]):
            for r in range(rings_of_polygon[p], rings_of_polygon[p + 1]):
                begin = m
                for t in range(ring_arc_offsets[r], ring_arc_offsets[r + 1]):
                    a = ring_arc[t]
                    first, last = arc_offsets[a], arc_offsets[a + 1] - 1
                    for k in range(last - first + 1):
                        v = first + k if ring_forward[t] else last - k
                        x, y = coords[v, 0], coords[v, 1]
                        if m > begin and out[m - 1, 0] == x and out[m - 1, 1] == y:
                            continue
                        if m - begin >= 2 and out[m - 2, 0] == x and out[m - 2, 1] == y:
                            m -= 1  # a spike (there and straight back): a part collapsed
                            continue
                        out[m, 0], out[m, 1] = x, y
                        m += 1
                m = _close_ring(out, begin, m)
                area2 = 0.0  # about the first vertex: world-pixel products lose precision
                for k in range(begin + 1, m - 2):
                    area2 += ((out[k, 0] - out[begin, 0]) * (out[k + 1, 1] - out[begin, 1])
                              - (out[k + 1, 0] - out[begin, 0]) * (out[k, 1] - out[begin, 1]))
                exterior = r == rings_of_polygon[p]
                if m - begin < 4 or (check_area and area2 == 0.0):
                    m = begin
                    if exterior:
                        break
                    continue
                n_rings += 1
                rings[n_rings] = m
            if n_rings > polygons[n_polygons]:
                n_polygons += 1
                polygons[n_polygons] = n_rings
        features[i + 1] = n_polygons
    return out[:m], rings[:n_rings + 1], polygons[:n_polygons + 1], features


@njit(cache=True, nogil=True)
def _orient(ax, ay, bx, by, cx, cy):
    v = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    return 1 if v > 0 else (-1 if v < 0 else 0)


@njit(cache=True, nogil=True)
def _touch_allowed(px, py, s, t, seg_x, seg_arc, seg_index, arc_length, arc_start, arc_end):
    """Whether segments ``s`` and ``t`` may meet at their common end point (px, py)."""
    a, b = seg_arc[s], seg_arc[t]
    k, j = seg_index[s], seg_index[t]
    if a == b:
        if abs(k - j) == 1:
            return True
        if arc_start[a] == arc_end[a] and ((k == 0 and j == arc_length[a] - 1)
                                           or (j == 0 and k == arc_length[a] - 1)):
            return True
    vs = -1
    if k == 0 and seg_x[s, 0] == px and seg_x[s, 1] == py:
        vs = arc_start[a]
    elif k == arc_length[a] - 1 and seg_x[s, 2] == px and seg_x[s, 3] == py:
        vs = arc_end[a]
    vt = -2
    if j == 0 and seg_x[t, 0] == px and seg_x[t, 1] == py:
        vt = arc_start[b]
    elif j == arc_length[b] - 1 and seg_x[t, 2] == px and seg_x[t, 3] == py:
        vt = arc_end[b]
    return vs == vt


@njit(cache=True, nogil=True)
def orientations(seg_x, s, t):
    """Whether the boxes of segments ``s`` and ``t`` meet, and the sides each one's ends lie on
    of the other (signs of ab x c, ab x d, cd x a, cd x b)."""
    ax, ay, bx, by = seg_x[s, 0], seg_x[s, 1], seg_x[s, 2], seg_x[s, 3]
    cx, cy, dx, dy = seg_x[t, 0], seg_x[t, 1], seg_x[t, 2], seg_x[t, 3]
    if max(ax, bx) < min(cx, dx) or max(cx, dx) < min(ax, bx) or max(ay, by) < min(cy, dy) \
            or max(cy, dy) < min(ay, by):
        return False, 0, 0, 0, 0
    return (True, _orient(ax, ay, bx, by, cx, cy), _orient(ax, ay, bx, by, dx, dy),
            _orient(cx, cy, dx, dy, ax, ay), _orient(cx, cy, dx, dy, bx, by))


@njit(cache=True, nogil=True)
def _conflict(s, t, seg_x, seg_arc, seg_index, arc_length, arc_start, arc_end):
    meet, o1, o2, o3, o4 = orientations(seg_x, s, t)
    if not meet or o1 * o2 > 0 or o3 * o4 > 0:
        return False
    ax, ay, bx, by = seg_x[s, 0], seg_x[s, 1], seg_x[s, 2], seg_x[s, 3]
    cx, cy, dx, dy = seg_x[t, 0], seg_x[t, 1], seg_x[t, 2], seg_x[t, 3]
    if o1 == 0 and o2 == 0:  # collinear: overlapping along a length is a conflict
        horizontal = abs(bx - ax) + abs(dx - cx) >= abs(by - ay) + abs(dy - cy)
        p0, p1 = (min(ax, bx), max(ax, bx)) if horizontal else (min(ay, by), max(ay, by))
        q0, q1 = (min(cx, dx), max(cx, dx)) if horizontal else (min(cy, dy), max(cy, dy))
        if min(p1, q1) > max(p0, q0):
            return True
        if min(p1, q1) < max(p0, q0):
            return False
    elif o1 * o2 < 0 and o3 * o4 < 0:
        return True
    # They meet at one point: allowed only at an end they share as neighbours along an
    # arc or at the same junction.
    for px, py in ((ax, ay), (bx, by)):
        if (px == cx and py == cy) or (px == dx and py == dy):
            if not _touch_allowed(px, py, s, t, seg_x, seg_arc, seg_index, arc_length,
                                  arc_start, arc_end):
                return True
            return False
    return True  # an end lies inside the other segment


@njit(cache=True, nogil=True)
def conflicts(coords, arc_offsets, arc_start, arc_end, cell, changed):
    """Arcs whose segments cross, overlap or touch where the coverage says they must not.

    Only pairs with a ``changed`` arc are tested: the input coverage has no such contact.
    """
    n_arcs = len(arc_offsets) - 1
    n_segments = len(coords) - n_arcs
    seg_x = np.empty((max(n_segments, 1), 4), coords.dtype)
    seg_arc = np.empty(max(n_segments, 1), np.int64)
    seg_index = np.empty(max(n_segments, 1), np.int64)
    arc_length = np.zeros(n_arcs, np.int64)
    m = 0
    for a in range(n_arcs):
        for i in range(arc_offsets[a], arc_offsets[a + 1] - 1):
            if coords[i, 0] == coords[i + 1, 0] and coords[i, 1] == coords[i + 1, 1]:
                continue  # a collapsed arc: its merged ends show as other arcs' contacts
            seg_x[m, 0], seg_x[m, 1] = coords[i, 0], coords[i, 1]
            seg_x[m, 2], seg_x[m, 3] = coords[i + 1, 0], coords[i + 1, 1]
            seg_arc[m], seg_index[m] = a, i - arc_offsets[a]
            m += 1
        arc_length[a] = arc_offsets[a + 1] - arc_offsets[a] - 1
    dirty = np.zeros(n_arcs, np.bool_)
    if m == 0:
        return dirty
    # every segment in every grid cell its box reaches, then the pairs of each cell
    first, second = cell_pairs(*cells(seg_x[:m], cell, 0.0))
    for k in range(len(first)):
        s, t = first[k], second[k]
        if dirty[seg_arc[s]] and dirty[seg_arc[t]]:
            continue
        if not (changed[seg_arc[s]] or changed[seg_arc[t]]):
            continue
        if _conflict(s, t, seg_x, seg_arc, seg_index, arc_length, arc_start, arc_end):
            dirty[seg_arc[s]] = True
            dirty[seg_arc[t]] = True
    return dirty


@njit(cache=True, nogil=True)
def _cell_box(seg_x, s, cell, grow):
    x0 = np.int64(np.floor((min(seg_x[s, 0], seg_x[s, 2]) - grow) / cell))
    x1 = np.int64(np.floor((max(seg_x[s, 0], seg_x[s, 2]) + grow) / cell))
    y0 = np.int64(np.floor((min(seg_x[s, 1], seg_x[s, 3]) - grow) / cell))
    y1 = np.int64(np.floor((max(seg_x[s, 1], seg_x[s, 3]) + grow) / cell))
    return x0, x1, y0, y1


@njit(cache=True, nogil=True)
def cells(seg_x, cell, grow):
    """(cell key, segment) for every grid cell each segment's box (grown by ``grow``) reaches,
    sorted by key."""
    total = 0
    for s in range(len(seg_x)):
        x0, x1, y0, y1 = _cell_box(seg_x, s, cell, grow)
        total += (x1 - x0 + 1) * (y1 - y0 + 1)
    keys = np.empty(total, np.int64)
    owners = np.empty(total, np.int64)
    q = 0
    for s in range(len(seg_x)):
        x0, x1, y0, y1 = _cell_box(seg_x, s, cell, grow)
        for cx in range(x0, x1 + 1):
            for cy in range(y0, y1 + 1):
                keys[q] = cx * CELL_SHIFT + cy
                owners[q] = s
                q += 1
    order = np.argsort(keys)
    return keys[order], owners[order]


@njit(cache=True, nogil=True)
def splice(coords, rings, polygons, features, chosen, new_coords, new_rings, new_polygons,
           new_features):
    """A multipolygon ragged array whose features ``chosen`` (sorted) come from the new one, in order."""
    n = len(features) - 1
    replace = np.full(n, -1, np.int64)
    for i in range(len(chosen)):
        replace[chosen[i]] = i
    total = len(coords) + len(new_coords)
    out = np.empty((total, 2), coords.dtype)
    out_rings = np.zeros(len(rings) + len(new_rings), np.int64)
    out_polygons = np.zeros(len(polygons) + len(new_polygons), np.int64)
    out_features = np.zeros(n + 1, np.int64)
    m = n_rings = n_polygons = 0
    for f in range(n):
        i = replace[f]
        if i < 0:
            src, src_rings, src_polygons, first, last = coords, rings, polygons, features[f], \
                features[f + 1]
        else:
            src, src_rings, src_polygons, first, last = new_coords, new_rings, new_polygons, \
                new_features[i], new_features[i + 1]
        for p in range(first, last):
            for r in range(src_polygons[p], src_polygons[p + 1]):
                for v in range(src_rings[r], src_rings[r + 1]):
                    out[m, 0], out[m, 1] = src[v, 0], src[v, 1]
                    m += 1
                n_rings += 1
                out_rings[n_rings] = m
            n_polygons += 1
            out_polygons[n_polygons] = n_rings
        out_features[f + 1] = n_polygons
    return out[:m], out_rings[:n_rings + 1], out_polygons[:n_polygons + 1], out_features


@njit(cache=True, nogil=True)
def feature_bounds(coords, rings, polygons, features):
    """xmin, ymin, xmax, ymax of every feature (zeros for a feature without polygons)."""
    n = len(features) - 1
    out = np.zeros((n, 4), np.int64)
    for f in range(n):
        first = True
        for p in range(features[f], features[f + 1]):
            for v in range(rings[polygons[p]], rings[polygons[p + 1]]):
                x, y = coords[v, 0], coords[v, 1]
                if first:
                    out[f, 0] = out[f, 2] = x
                    out[f, 1] = out[f, 3] = y
                    first = False
                else:
                    out[f, 0] = min(out[f, 0], x)
                    out[f, 1] = min(out[f, 1], y)
                    out[f, 2] = max(out[f, 2], x)
                    out[f, 3] = max(out[f, 3], y)
    return out


@njit(cache=True, nogil=True)
def cell_pairs(keys, owners):
    """Every pair of segments sharing a grid cell (``keys`` sorted), as two index arrays."""
    total = 0
    begin = 0
    while begin < len(keys):
        end = begin + 1
        while end < len(keys) and keys[end] == keys[begin]:
            end += 1
        total += (end - begin) * (end - begin - 1) // 2
        begin = end
    first = np.empty(total, np.int64)
    second = np.empty(total, np.int64)
    q = 0
    begin = 0
    while begin < len(keys):
        end = begin + 1
        while end < len(keys) and keys[end] == keys[begin]:
            end += 1
        for i in range(begin, end):
            for j in range(i + 1, end):
                first[q], second[q] = owners[i], owners[j]
                q += 1
        begin = end
    return first, second
