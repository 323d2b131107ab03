"""numba loops of snap rounding (Hobby's hot pixels) for :mod:`jngis.tiles.arcs`.

Every vertex rounded to the integer grid makes a *hot pixel* (the unit
square around the integer point); every segment is replaced by the polyline
through the centres of the hot pixels it passes, in the order it enters
them. Segments that did not cross before rounding do not cross after it:
parts thinner than a pixel collapse onto shared fragments instead of
overlapping, which is what keeps a simplified coverage a coverage on the
integer grid of a zoom.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from jngis.tiles._arc_kernels import CELL_SHIFT, cell_pairs, cells, orientations


@njit(cache=True, nogil=True)
def _enters(px, py, dx, dy, hx, hy):
    """Where segment p + t d (0 <= t <= 1) enters the square of hot pixel h, or -1 if it misses."""
    t0, t1 = 0.0, 1.0
    for delta, low, high in ((dx, hx - 0.5 - px, hx + 0.5 - px), (dy, hy - 0.5 - py, hy + 0.5 - py)):
        if delta == 0.0:
            if low > 0.0 or high < 0.0:
                return -1.0
        else:
            a, b = low / delta, high / delta
            if a > b:
                a, b = b, a
            t0, t1 = max(t0, a), min(t1, b)
            if t0 > t1:
                return -1.0
    return t0


@njit(cache=True, nogil=True)
def _segments(coords, offsets):
    """Every segment of every arc as (x0, y0, x1, y1) rows, and the index of its first vertex."""
    seg_x = np.empty((max(len(coords) - len(offsets) + 1, 0), 4), coords.dtype)
    first = np.empty(len(seg_x), np.int64)
    m = 0
    for a in range(len(offsets) - 1):
        for i in range(offsets[a], offsets[a + 1] - 1):
            seg_x[m, 0], seg_x[m, 1] = coords[i, 0], coords[i, 1]
            seg_x[m, 2], seg_x[m, 3] = coords[i + 1, 0], coords[i + 1, 1]
            first[m] = i
            m += 1
    return seg_x[:m], first[:m]


@njit(cache=True, nogil=True)
def _hits(seg_x, keys, owners, hot, cell):
    """Every (segment, entry parameter, hot pixel) where a segment passes a hot pixel's square."""
    n = 0
    capacity = 2 * len(seg_x) + 16
    segment = np.empty(capacity, np.int64)
    entry = np.empty(capacity, np.float64)
    pixel = np.empty(capacity, np.int64)
    for h in range(len(hot)):
        hx, hy = hot[h, 0], hot[h, 1]
        key = np.int64(np.floor(hx / cell)) * CELL_SHIFT + np.int64(np.floor(hy / cell))
        k = np.searchsorted(keys, key)
        while k < len(keys) and keys[k] == key:
            i = owners[k]
            k += 1
            px, py = seg_x[i, 0], seg_x[i, 1]
            t = _enters(px, py, seg_x[i, 2] - px, seg_x[i, 3] - py, hx, hy)
            if t < 0.0:
                continue
            if n == capacity:
                capacity *= 2
                segment = np.concatenate((segment, np.empty(n, np.int64)))
                entry = np.concatenate((entry, np.empty(n, np.float64)))
                pixel = np.concatenate((pixel, np.empty(n, np.int64)))
            segment[n], entry[n], pixel[n] = i, t, h
            n += 1
    return segment[:n], entry[:n], pixel[:n]


@njit(cache=True, nogil=True)
def snap_arcs(coords, offsets, hot, cell):
    """Every arc as the polyline through the centres of the hot pixels its segments pass."""
    seg_x, first = _segments(coords, offsets)
    keys, owners = cells(seg_x, cell, 0.5)
    segment, entry, pixel = _hits(seg_x, keys, owners, hot, cell)
    segment = first[segment]
    # by segment, then by where the segment enters the pixel
    order = np.argsort(segment.astype(np.float64) * 4.0 + entry, kind="mergesort")
    out = np.empty((len(segment) + len(offsets), 2), np.int64)
    new_offsets = np.zeros(len(offsets), np.int64)
    m = 0
    q = 0
    for a in range(len(offsets) - 1):
        begin = m
        while q < len(order) and segment[order[q]] < offsets[a + 1] - 1:
            h = pixel[order[q]]
            q += 1
            if m > begin and out[m - 1, 0] == hot[h, 0] and out[m - 1, 1] == hot[h, 1]:
                continue
            out[m, 0], out[m, 1] = hot[h, 0], hot[h, 1]
            m += 1
        if m - begin == 1:  # both ends on one pixel
            out[m] = out[m - 1]
            m += 1
        new_offsets[a + 1] = m
    return out[:m], new_offsets


@njit(cache=True, nogil=True)
def _strictly_inside(ax, ay, bx, by, px, py):
    """Whether p lies on segment ab, not at an end (p on the line assumed)."""
    if (px == ax and py == ay) or (px == bx and py == by):
        return False
    return min(ax, bx) <= px <= max(ax, bx) and min(ay, by) <= py <= max(ay, by)


@njit(cache=True, nogil=True)
def _bad_pair(seg, s, t):
    """Segments that cross, or where an end of one lies inside the other (not noded)."""
    meet, o1, o2, o3, o4 = orientations(seg, s, t)
    if not meet:
        return False
    ax, ay, bx, by = seg[s, 0], seg[s, 1], seg[s, 2], seg[s, 3]
    cx, cy, dx, dy = seg[t, 0], seg[t, 1], seg[t, 2], seg[t, 3]
    if o1 * o2 < 0 and o3 * o4 < 0:
        return True
    if o1 == 0 and _strictly_inside(ax, ay, bx, by, cx, cy):
        return True
    if o2 == 0 and _strictly_inside(ax, ay, bx, by, dx, dy):
        return True
    if o3 == 0 and _strictly_inside(cx, cy, dx, dy, ax, ay):
        return True
    if o4 == 0 and _strictly_inside(cx, cy, dx, dy, bx, by):
        return True
    return False


@njit(cache=True, nogil=True)
def unnoded(seg, cell):
    """Per unique segment: does it cross another or hold another's end inside it?"""
    bad = np.zeros(len(seg), np.bool_)
    first, second = cell_pairs(*cells(seg, cell, 0))
    for k in range(len(first)):
        if _bad_pair(seg, first[k], second[k]):
            bad[first[k]] = bad[second[k]] = True
    return bad
