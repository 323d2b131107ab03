"""Units of one community cut into connected groups: the number of grids, spanning-tree bisection, repair.

:func:`partition` cuts the unit graph by recursive bisection on randomly
perturbed minimum spanning trees, then :func:`repair_bounds` moves single
boundary units with the region engine (:func:`jngis.regions.steepest_descent`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from jngis.regions import Graph, Regions, soft_descent, steepest_descent

__all__ = ["choose_k", "choose_k_with_big", "partition", "repair_bounds"]

# Spanning trees tried per bisection (more: better cuts, slower).
_TREES = 8
# Weight of the cut length (compactness) against the deviation from the mean grid size.
_COMPACTNESS = 1.0


def choose_k(households: float, low: int, high: int) -> int:
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


def partition(households, xy, areas, edge_a, edge_b, edge_length, k, low, high, rng, *,
              band: tuple[int, int] | None = None, preferred: tuple[int, int] | None = None,
              perimeters: np.ndarray | None = None) -> np.ndarray:
    """Labels 0..k-1 of n units: k connected groups within [low, high] households where possible.

    With ``band`` (headroom) the cuts aim at it, then the repair meets the
    band and the bounds; with ``preferred`` boundary units then move towards
    it (:func:`repair_bounds`), paying for the compactness it costs when the
    units' ``perimeters`` are given.
    """
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
    aim_low, aim_high = band or (low, high)
    big = households > high
    k = min(k, n)
    middle_rest = households[~big].sum() / max(k - big.sum(), 1)
    middle = min(max(middle_rest, aim_low), aim_high) if k > big.sum() else (aim_low + aim_high) / 2
    pending = [(np.arange(n), k)]
    groups = []
    while pending:
        nodes, grids = pending.pop()
        if grids <= 1 or len(nodes) <= 1:
            groups.append(nodes)
            continue
        grids = min(grids, len(nodes))
        left, k1, right, k2 = _bisect(nodes, grids, households, big, xy, areas, edge_a, edge_b, edge_length,
                                      aim_low, aim_high, middle, rng)
        pending.append((right, k2))
        pending.append((left, k1))
    for label, nodes in enumerate(groups):
        labels[nodes] = label
    shape = {"areas": areas, "perimeters": perimeters} if perimeters is not None else {}
    return repair_bounds(labels, households, edge_a, edge_b, edge_length, low, high, band=band, preferred=preferred,
                         **shape)


def repair_bounds(labels, households, edge_a, edge_b, edge_length, low, high, *,
                  band: tuple[int, int] | None = None, preferred: tuple[int, int] | None = None,
                  areas: np.ndarray | None = None, perimeters: np.ndarray | None = None) -> np.ndarray:
    """Move single boundary units between neighbouring grids while that lowers the bound violations
    (:func:`jngis.regions.steepest_descent`: never disconnecting a grid, ties to the longest edge).

    With ``band`` first towards it, then towards ``[low, high]``; with ``preferred``
    then towards the preferred band (:func:`jngis.regions.soft_descent`), never
    leaving the band or the bounds.
    """
    graph = Graph.from_edges(len(labels), edge_a, edge_b, edge_length)
    regions = Regions(graph, households, labels, lo=low, hi=high, cap_heavy=False, hard=(low, high), soft=preferred,
                      area=areas, perimeter=perimeters)
    for lo, hi in ([band] if band else []) + [(low, high)]:
        regions.set_band(lo, hi)
        steepest_descent(regions)
    regions.set_band(*(band or (low, high)))
    soft_descent(regions)
    return np.asarray(regions.label, dtype=np.int64)


def choose_k_with_big(households: np.ndarray, low: int, high: int) -> int:
    big = households > high
    rest = float(households[~big].sum())
    if not big.any():
        return choose_k(rest, low, high)
    # leftovers too small for a grid of their own join the big units' grids
    return int(big.sum()) + (choose_k(rest, low, high) if rest >= low else 0)
