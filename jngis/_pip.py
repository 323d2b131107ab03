"""Numba kernels of :class:`jngis.assign.PolygonIndex`: an exact point-in-polygon grid.

The polygons' bounding box is cut into square cells. Every ring edge is listed
in each cell it comes near (:func:`bin_edges`), and the polygons containing
each cell's centre are found once by a scanline (:func:`centre_states`). A
point then starts from its cell's centre, whose answer is known, and walks the
straight segment to itself: each polygon edge the segment crosses toggles that
polygon (:func:`locate`). The segment stays inside the cell, so only the
cell's own edges can cross it; a cell without edges answers at once.

Exactness: the side tests use Shewchuk's orientation filter (the sign of the
floating-point determinant is trusted only beyond its proven error bound), so
a point is answered here only when every test is certain and no degeneracy
occurs. Anything else — the point on an edge or on an edge's line, the segment
through a vertex, a centre near a crossing, two polygons overlapping at a
centre — is returned as :data:`FALLBACK` and the caller decides it with GEOS.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from jngis._numba import warm_once

#: Returned by :func:`locate` for points the grid cannot decide with certainty.
FALLBACK = -9
#: Cell states besides polygon positions (>= 0).
NONE = -1  # the centre lies in no polygon
MULTI = -2  # the centre lies in several polygons (they overlap there)
UNKNOWN = -3  # a crossing passes too near the centre to tell its side

# Shewchuk's ccwerrboundA = (3 + 16 eps) eps with eps = 2**-53.
_CCW_BOUND = 3.3306690738754716e-16
# block_order groups points by blocks of 2**_BLOCK_SHIFT cells a side (8: fastest of 8-64).
_BLOCK_SHIFT = 3
# Most polygons a point walk may toggle at once (overlaps beyond go to GEOS).
_MAX_SET = 16


@njit(cache=True, nogil=True)
def _orient(ax, ay, bx, by, cx, cy):
    """+1 if c is certainly left of a->b, -1 if certainly right, 0 if on it or uncertain."""
    detleft = (ax - cx) * (by - cy)
    detright = (ay - cy) * (bx - cx)
    det = detleft - detright
    bound = _CCW_BOUND * (abs(detleft) + abs(detright))
    if det > bound:
        return 1
    if -det > bound:
        return -1
    return 0


@njit(cache=True, nogil=True)
def ring_edges(coords, coord_ring, ring_geom):
    """Ends ``ax, ay, bx, by`` and polygon of every non-degenerate ring edge, in one pass.

    ``coords`` (n, 2) are the rings' coordinates in order, ``coord_ring`` the
    ring of each coordinate and ``ring_geom`` the polygon of each ring: an edge
    joins two consecutive coordinates of one ring.
    """
    n = coords.shape[0]
    ax = np.empty(max(n - 1, 0), dtype=np.float64)
    ay = np.empty_like(ax)
    bx = np.empty_like(ax)
    by = np.empty_like(ax)
    poly = np.empty(ax.size, dtype=np.int32)
    m = 0
    for k in range(n - 1):
        r = coord_ring[k]
        if coord_ring[k + 1] != r:
            continue
        x0 = coords[k, 0]
        y0 = coords[k, 1]
        x1 = coords[k + 1, 0]
        y1 = coords[k + 1, 1]
        if x0 == x1 and y0 == y1:
            continue
        ax[m] = x0
        ay[m] = y0
        bx[m] = x1
        by[m] = y1
        poly[m] = ring_geom[r]
        m += 1
    return ax[:m].copy(), ay[:m].copy(), bx[:m].copy(), by[:m].copy(), poly[:m].copy()


@njit(cache=True, nogil=True)
def _edge_cells(ax, ay, bx, by, x0, y0, cell, nx, ny, margin, out):
    """Cells (flat ids) within `margin` of the segment a-b, written to `out`; returns the count.

    Row by row, the segment is clipped to the row's band grown by `margin`
    and the columns its x-range (grown by `margin`) spans are taken: a
    superset of the cells the segment passes within `margin` of.
    """
    lo_y = min(ay, by) - margin
    hi_y = max(ay, by) + margin
    j0 = max(int(np.floor((lo_y - y0) / cell)), 0)
    j1 = min(int(np.floor((hi_y - y0) / cell)), ny - 1)
    dy = by - ay
    dx = bx - ax
    count = 0
    for j in range(j0, j1 + 1):
        band0 = y0 + j * cell - margin
        band1 = y0 + (j + 1) * cell + margin
        if dy == 0.0:
            xa = min(ax, bx)
            xb = max(ax, bx)
        else:
            t0 = (band0 - ay) / dy
            t1 = (band1 - ay) / dy
            if t0 > t1:
                t0, t1 = t1, t0
            t0 = max(t0, 0.0)
            t1 = min(t1, 1.0)
            if t0 > t1:
                continue
            xa = ax + t0 * dx
            xb = ax + t1 * dx
            if xa > xb:
                xa, xb = xb, xa
        i0 = max(int(np.floor((xa - margin - x0) / cell)), 0)
        i1 = min(int(np.floor((xb + margin - x0) / cell)), nx - 1)
        for i in range(i0, i1 + 1):
            if out.size > 0:
                out[count] = j * nx + i
            count += 1
    return count


@njit(cache=True, nogil=True)
def bin_edges(ax, ay, bx, by, x0, y0, cell, nx, ny, margin):
    """CSR lists of the edges near each cell: ``start`` (ncells + 1) and ``edges``."""
    n = ax.size
    ncells = nx * ny
    counts = np.zeros(ncells + 1, dtype=np.int64)
    empty = np.empty(0, dtype=np.int64)
    per_edge = np.empty(n, dtype=np.int64)
    biggest = 0
    for e in range(n):
        k = _edge_cells(ax[e], ay[e], bx[e], by[e], x0, y0, cell, nx, ny, margin, empty)
        per_edge[e] = k
        biggest = max(biggest, k)
    scratch = np.empty(max(biggest, 1), dtype=np.int64)
    for e in range(n):
        k = _edge_cells(ax[e], ay[e], bx[e], by[e], x0, y0, cell, nx, ny, margin, scratch)
        for u in range(k):
            counts[scratch[u] + 1] += 1
    start = np.cumsum(counts)
    fill = start[:-1].copy()
    edges = np.empty(start[-1], dtype=np.int32)
    for e in range(n):
        k = _edge_cells(ax[e], ay[e], bx[e], by[e], x0, y0, cell, nx, ny, margin, scratch)
        for u in range(k):
            c = scratch[u]
            edges[fill[c]] = e
            fill[c] += 1
    return start, edges


@njit(cache=True, nogil=True)
def _centre_rows(ay, by, y0, cell, ny):
    """Rows whose centre line the edge's y-range may reach (a superset; callers test exactly)."""
    if ay == by:
        return 0, -1
    j0 = max(int(np.floor((min(ay, by) - y0) / cell - 0.5)) - 1, 0)
    j1 = min(int(np.floor((max(ay, by) - y0) / cell - 0.5)) + 1, ny - 1)
    return j0, j1


@njit(cache=True, nogil=True)
def centre_states(ax, ay, bx, by, epoly, x0, y0, cell, nx, ny, npoly, tol):
    """The polygon containing each cell centre (or NONE / MULTI / UNKNOWN), by scanline.

    Along the horizontal line through a row of centres, each edge crossing it
    (half-open rule in y, exact) toggles its polygon; the crossings are swept
    from the west. A centre within `tol` of a crossing is UNKNOWN.
    """
    state = np.full(nx * ny, NONE, dtype=np.int32)
    n = ax.size
    counts = np.zeros(ny + 1, dtype=np.int64)
    for e in range(n):
        j0, j1 = _centre_rows(ay[e], by[e], y0, cell, ny)
        for j in range(j0, j1 + 1):
            yc = y0 + (j + 0.5) * cell
            if (ay[e] <= yc) != (by[e] <= yc):
                counts[j + 1] += 1
    start = np.cumsum(counts)
    fill = start[:-1].copy()
    row_edges = np.empty(start[-1], dtype=np.int64)
    for e in range(n):
        j0, j1 = _centre_rows(ay[e], by[e], y0, cell, ny)
        for j in range(j0, j1 + 1):
            yc = y0 + (j + 0.5) * cell
            if (ay[e] <= yc) != (by[e] <= yc):
                row_edges[fill[j]] = e
                fill[j] += 1
    inside = np.zeros(npoly, dtype=np.bool_)
    active = np.empty(npoly, dtype=np.int64)
    for j in range(ny):
        a = start[j]
        b = start[j + 1]
        m = b - a
        if m == 0:
            continue
        yc = y0 + (j + 0.5) * cell
        xs = np.empty(m, dtype=np.float64)
        ps = np.empty(m, dtype=np.int64)
        for u in range(m):
            e = row_edges[a + u]
            xs[u] = ax[e] + (yc - ay[e]) * (bx[e] - ax[e]) / (by[e] - ay[e])
            ps[u] = epoly[e]
        order = np.argsort(xs)
        nactive = 0
        k = 0
        for i in range(nx):
            xc = x0 + (i + 0.5) * cell
            while k < m and xs[order[k]] < xc - tol:
                p = ps[order[k]]
                if inside[p]:
                    for v in range(nactive):
                        if active[v] == p:
                            active[v] = active[nactive - 1]
                            break
                    nactive -= 1
                else:
                    active[nactive] = p
                    nactive += 1
                inside[p] = not inside[p]
                k += 1
            if k < m and xs[order[k]] <= xc + tol:
                state[j * nx + i] = UNKNOWN
            elif nactive == 1:
                state[j * nx + i] = active[0]
            elif nactive > 1:
                state[j * nx + i] = MULTI
        # rings cross a whole line an even number of times: clear what is left
        for u in range(nactive):
            inside[active[u]] = False
    return state


@njit(cache=True, nogil=True)
def gather_edges(ax, ay, bx, by, epoly, start, edges, x0, y0, cell, nx):
    """The listed edges in the cells' order: ends ``seg`` (listed, 4), ``side``, ``segpoly``.

    ``side`` is the side (+1 / -1 / 0 uncertain) of each listed edge its cell's
    centre lies on, computed once here rather than per point.
    """
    m = edges.size
    seg = np.empty((m, 4), dtype=np.float64)
    side = np.empty(m, dtype=np.int8)
    segpoly = np.empty(m, dtype=np.int32)
    for c in range(start.size - 1):
        a = start[c]
        b = start[c + 1]
        if a == b:
            continue
        j = c // nx
        i = c - j * nx
        rx = x0 + (i + 0.5) * cell
        ry = y0 + (j + 0.5) * cell
        for t in range(a, b):
            e = edges[t]
            seg[t, 0] = ax[e]
            seg[t, 1] = ay[e]
            seg[t, 2] = bx[e]
            seg[t, 3] = by[e]
            segpoly[t] = epoly[e]
            side[t] = _orient(ax[e], ay[e], bx[e], by[e], rx, ry)
    return seg, side, segpoly


@njit(cache=True, nogil=True)
def block_order(px, py, x0, y0, cell, nx, ny):
    """A permutation of the points grouping them by block of 8 x 8 cells (a counting sort).

    :func:`locate` on points in this order reads the grid block by block
    instead of at random: 2-3x fewer cache misses on a city's million
    points, for a sort that costs a sixth of that. Points off the grid (and
    NaN) come first.
    """
    bx = (nx >> _BLOCK_SHIFT) + 1
    by = (ny >> _BLOCK_SHIFT) + 1
    n = px.size
    key = np.empty(n, dtype=np.int32)
    counts = np.zeros(bx * by + 2, dtype=np.int64)
    for q in range(n):
        fx = (px[q] - x0) / cell
        fy = (py[q] - y0) / cell
        b = 0
        if fx >= 0 and fy >= 0 and fx < nx and fy < ny:  # False for NaN
            b = 1 + (int(fy) >> _BLOCK_SHIFT) * bx + (int(fx) >> _BLOCK_SHIFT)
        key[q] = b
        counts[b + 1] += 1
    for b in range(counts.size - 1):
        counts[b + 1] += counts[b]
    order = np.empty(n, dtype=np.int64)
    for q in range(n):
        b = key[q]
        order[counts[b]] = q
        counts[b] += 1
    return order


# Long on purpose: one numba kernel whose per-point walk stays in one loop body; splitting it into
# calls cost 15-50 % per call in the same experiment on _mvt.polygon_tile.
@njit(cache=True, nogil=True)
def locate(px, py, x0, y0, cell, nx, ny, state, start, seg, segside, segpoly, rank, out):
    """Polygon position of each point, -1 for none, FALLBACK where uncertain.

    ``seg`` holds the ends (ax, ay, bx, by) of the edges listed in each cell,
    in the cells' order (``start`` gives each cell's rows), ``segside`` the
    side of each the cell's centre lies on (:func:`gather_edges`) and
    ``segpoly`` their polygons: a cell's edges are read from one contiguous block.
    """
    buf = np.empty(_MAX_SET, dtype=np.int64)
    for q in range(px.size):
        x = px[q]
        y = py[q]
        if not (np.isfinite(x) and np.isfinite(y)):
            out[q] = NONE
            continue
        fx = np.floor((x - x0) / cell)
        fy = np.floor((y - y0) / cell)
        if fx < 0 or fy < 0 or fx >= nx or fy >= ny:
            out[q] = NONE
            continue
        i = int(fx)
        j = int(fy)
        c = j * nx + i
        s = state[c]
        if s <= MULTI:
            out[q] = FALLBACK
            continue
        a = start[c]
        b = start[c + 1]
        if a == b:
            out[q] = s
            continue
        rx = x0 + (i + 0.5) * cell
        ry = y0 + (j + 0.5) * cell
        sx0 = min(rx, x)
        sx1 = max(rx, x)
        sy0 = min(ry, y)
        sy1 = max(ry, y)
        nset = 0
        if s >= 0:
            buf[0] = s
            nset = 1
        certain = True
        for t in range(a, b):
            eax = seg[t, 0]
            eay = seg[t, 1]
            ebx = seg[t, 2]
            eby = seg[t, 3]
            if (max(eax, ebx) < sx0 or min(eax, ebx) > sx1
                    or max(eay, eby) < sy0 or min(eay, eby) > sy1):
                continue
            o1 = segside[t]
            o2 = _orient(eax, eay, ebx, eby, x, y)
            if o1 == 0 or o2 == 0:
                certain = False
                break
            if o1 == o2:
                continue
            o3 = _orient(rx, ry, x, y, eax, eay)
            o4 = _orient(rx, ry, x, y, ebx, eby)
            if o3 == 0 or o4 == 0:
                certain = False
                break
            if o3 == o4:
                continue
            p = segpoly[t]
            found = -1
            for u in range(nset):
                if buf[u] == p:
                    found = u
                    break
            if found >= 0:
                buf[found] = buf[nset - 1]
                nset -= 1
            elif nset == _MAX_SET:
                certain = False
                break
            else:
                buf[nset] = p
                nset += 1
        if not certain:
            out[q] = FALLBACK
        elif nset == 0:
            out[q] = NONE
        else:
            best = buf[0]
            for u in range(1, nset):
                if rank[buf[u]] < rank[best]:
                    best = buf[u]
            out[q] = best


def warm() -> None:
    """Compile (or load from numba's cache) every kernel once, in the calling thread.

    Through :func:`jngis._numba.warm_once`: no two numba compilations of jngis
    run at once (CPython 3.11.7's ``ast`` is not thread-safe).
    """
    warm_once("pip", _compile)


def _compile() -> None:
    ring_edges(np.zeros((5, 2)), np.zeros(5, dtype=np.int64), np.zeros(1, dtype=np.int32))
    ax = np.array([0.0, 1.0, 1.0, 0.0])
    ay = np.array([0.0, 0.0, 1.0, 1.0])
    bx = np.array([1.0, 1.0, 0.0, 0.0])
    by = np.array([0.0, 1.0, 1.0, 0.0])
    epoly = np.zeros(4, dtype=np.int32)
    start, edges = bin_edges(ax, ay, bx, by, -0.5, -0.5, 1.0, 3, 3, 1e-6)
    state = centre_states(ax, ay, bx, by, epoly, -0.5, -0.5, 1.0, 3, 3, 1, 1e-9)
    out = np.empty(1, dtype=np.int64)
    block_order(np.array([0.25]), np.array([0.25]), -0.5, -0.5, 1.0, 3, 3)
    seg, side, segpoly = gather_edges(ax, ay, bx, by, epoly, start, edges, -0.5, -0.5, 1.0, 3)
    locate(np.array([0.25]), np.array([0.25]), -0.5, -0.5, 1.0, 3, 3, state, start, seg,
           side, segpoly, np.zeros(1, dtype=np.int64), out)
