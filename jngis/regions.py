"""The region engine of jngis: a partition of a contiguity graph into regions of bounded weight.

Both redraws of jngis are the same problem on a graph: the nodes are *atoms*
(a unit, or a gated compound kept whole) with a weight (households), and each
region (a community of a 街道, a grid of a community) must stay connected
while its weight is brought within ``[lo, hi]``. :mod:`jngis.rebalance`
searches the communities of each 街道 with it, :mod:`jngis.grids` repairs the
bisection of each community into grids with it.

The engine keeps, for every region, its members, weight, area and perimeter
up to date under :meth:`Regions.move`, with an undo log
(:meth:`Regions.rollback`), and offers the moves that never disconnect a
region (:meth:`Regions.can_leave`, :meth:`Regions.leaving_block`):

- :meth:`Regions.shed` and :meth:`Regions.gain` — peel boundary atoms from a
  region that is too large to neighbours with room, or pull them into one
  that is too small (the boundary moves of redistricting heuristics, Ricca &
  Simeone 2008, and the composite contiguity-safe moves of CM-Tabu — Duque,
  Anselin & Rey 2012);
- :meth:`Regions.merge`, :meth:`Regions.region_paths` (chains of regions to
  pass households along);
- :func:`steepest_descent` — move the one boundary atom that lowers the total
  violation most, until none does.

The *violation* of a region is its distance to the bounds in households;
an atom heavier than ``hi`` cannot be divided, so with ``cap_heavy`` a
region's ceiling is its heaviest atom. Like spopt's ``region/base.py`` the
pieces are small and separate; everything is plain Python on lists (no
geometry), so a state pickles cheaply to a worker process.

Examples
--------
Four blocks in a row, 1500 | 1200 | 500 | 900 households, the first three in
region 0 (3,200: above 3,000), the last in region 1 (900: below 1,000):

>>> import numpy as np
>>> graph = Graph.from_edges(4, np.array([0, 1, 2]), np.array([1, 2, 3]))
>>> regions = Regions(graph, [1500, 1200, 500, 900], [0, 0, 0, 1], lo=1000, hi=3000)
>>> regions.total_violation()
300
>>> regions.shed(0)
500
>>> regions.label, regions.total_violation()
([0, 0, 1, 1], 0)
"""

from __future__ import annotations

import math
import numbers
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from jngis import _checks
from jngis.errors import InputTypeError

__all__ = ["NO_HOME", "Graph", "Regions", "steepest_descent", "soft_descent", "contiguous", "headroom_band",
           "preferred_band"]

#: Per-atom values: a sequence or a numpy array.
Ints = Sequence[int] | np.ndarray
Floats = Sequence[float] | np.ndarray

#: ``home`` of a region that continues no old region (a new one, or a detached fragment).
NO_HOME = -1


@dataclass(frozen=True)
class Graph:
    """A symmetric graph in CSR form: the neighbours of node ``i`` are
    ``indices[indptr[i]:indptr[i + 1]]``, each with the length of the shared edge."""

    indptr: np.ndarray
    indices: np.ndarray
    edge_length: np.ndarray

    @classmethod
    def from_edges(cls, n: int, left: np.ndarray, right: np.ndarray,
                   length: np.ndarray | None = None) -> Graph:
        """The graph of ``n`` nodes with the undirected edges ``left[i] -- right[i]``.

        Examples
        --------
        >>> import numpy as np
        >>> g = Graph.from_edges(3, np.array([0, 1]), np.array([1, 2]), np.array([5.0, 2.0]))
        >>> g.indptr.tolist(), g.indices.tolist(), g.edge_length.tolist()
        ([0, 1, 3, 4], [1, 2, 0, 1], [5.0, 2.0, 5.0, 2.0])
        """
        left = np.asarray(left, dtype=np.int64)
        right = np.asarray(right, dtype=np.int64)
        length = np.zeros(len(left)) if length is None else np.asarray(length, dtype=float)
        source = np.r_[left, right]
        target = np.r_[right, left]
        lengths = np.r_[length, length]
        order = np.argsort(source, kind="stable")
        indptr = np.r_[0, np.cumsum(np.bincount(source, minlength=n))].astype(np.int64)
        return cls(indptr, target[order], lengths[order])

    @property
    def n(self) -> int:
        """Number of nodes."""
        return len(self.indptr) - 1

    def neighbour_lists(self) -> tuple[list[list[int]], list[list[float]]]:
        """Per node, its neighbours and the shared edge lengths, as Python lists."""
        p, idx, length = self.indptr, self.indices, self.edge_length
        return ([idx[p[i]:p[i + 1]].tolist() for i in range(self.n)],
                [length[p[i]:p[i + 1]].tolist() for i in range(self.n)])


class Regions:
    """Regions of a graph's nodes, kept contiguous, with incremental weights and an undo log.

    Parameters
    ----------
    graph : Graph
        Contiguity of the atoms, with shared edge lengths (0 for links across water).
    weight : sequence of int
        Households per atom.
    label : sequence of int
        Starting region of every atom (0..k-1; each region should be connected).
    lo, hi : int
        The bounds of a region's weight.
    area, perimeter, x, y : sequence of float, optional
        Per atom, for compactness (Polsby-Popper of a region from its area and
        perimeter) and for seeding splits; zeros when not given.
    origin : sequence of int, optional
        The old region each atom's households belong to (for "households moved").
    home : sequence of int, optional
        Per starting region, the old region it continues, or :data:`NO_HOME`.
    locked : sequence of bool, optional
        Atoms that never move; their region counts as within bounds.
    cap_heavy : bool
        A region holding an atom heavier than ``hi`` is measured against that
        atom's weight instead of ``hi`` (it cannot be divided).
    hard : (int, int), optional
        The bounds no move may break (default ``(lo, hi)``); ``lo``/``hi`` may
        be a tighter working band inside them (headroom), changed with
        :meth:`set_band`.
    soft : (int, int), optional
        A preferred band inside the bounds: :meth:`soft_violation` and
        :meth:`soft_delta` measure the distance to it (None: no preference).
    seed : int
        Seed of :attr:`rng` (``np.random.default_rng``).
    deadline : float
        ``time.time()`` after which :meth:`out_of_time` is true.
    """

    def __init__(self, graph: Graph, weight: Ints, label: Ints, *, lo: int, hi: int,
                 area: Floats | None = None, perimeter: Floats | None = None,
                 x: Floats | None = None, y: Floats | None = None,
                 origin: Ints | None = None, home: Ints | None = None,
                 locked: Sequence[bool] | np.ndarray | None = None, cap_heavy: bool = True, seed: int = 0,
                 deadline: float = math.inf, hard: tuple[int, int] | None = None,
                 soft: tuple[int, int] | None = None):
        n = len(weight)
        self.n = n
        self.w = [int(v) for v in weight]
        self.nbrs, self.nlen = graph.neighbour_lists()
        self.area = _floats(area, n)
        self.perim = _floats(perimeter, n)
        self.x = _floats(x, n)
        self.y = _floats(y, n)
        self.origin = list(label) if origin is None else [int(v) for v in origin]
        self.locked_atom = [False] * n if locked is None else [bool(v) for v in locked]
        self.label = [int(v) for v in label]
        n_regions = max(self.label) + 1 if n else 0
        home = list(range(n_regions)) if home is None else [int(v) for v in home]
        self.home = home + [NO_HOME] * (n_regions - len(home))
        self.cap_heavy = cap_heavy
        self.hard = (int(lo), int(hi)) if hard is None else (int(hard[0]), int(hard[1]))
        self.soft = None if soft is None else (int(soft[0]), int(soft[1]))
        self.set_band(lo, hi)
        self._start_regions(n_regions)
        self.rng = np.random.default_rng(seed)
        self.log: list[tuple[int, int]] = []
        self.deadline = deadline
        self.timed_out = False

    def _start_regions(self, n_regions: int) -> None:
        self.members: list[set[int]] = [set() for _ in range(n_regions)]
        self.rw = [0] * n_regions
        self.rp = [0.0] * n_regions
        self.ra = [0.0] * n_regions
        self.rlocked = [False] * n_regions
        for a in range(self.n):
            r = self.label[a]
            self.members[r].add(a)
            self.rw[r] += self.w[a]
            self.ra[r] += self.area[a]
            self.rp[r] += self.perim[a]
            if self.locked_atom[a]:
                self.rlocked[r] = True
        for a in range(self.n):
            r = self.label[a]
            for b, length in zip(self.nbrs[a], self.nlen[a]):
                if self.label[b] == r:
                    self.rp[r] -= length  # each internal edge is seen from both sides

    # ---- bookkeeping -------------------------------------------------
    def set_band(self, lo: int, hi: int) -> None:
        """Measure :meth:`violation` against ``[lo, hi]`` from now on (a band inside :attr:`hard`)."""
        self.lo, self.hi = int(lo), int(hi)
        # an atom heavier than the maximum cannot be divided: its region's cap is its own weight
        self.heavy = [a for a in range(self.n) if self.w[a] > self.hi]

    def out_of_time(self) -> bool:
        """Whether the deadline has passed (sticky: once true, stays true)."""
        if time.time() > self.deadline:
            self.timed_out = True
        return self.timed_out

    def new_region(self, home: int = NO_HOME) -> int:
        """A new empty region; returns its label."""
        self.members.append(set())
        self.rw.append(0)
        self.rp.append(0.0)
        self.ra.append(0.0)
        self.rlocked.append(False)
        self.home.append(home)
        return len(self.rw) - 1

    def shared(self, a: int, r: int) -> float:
        """Length of the edge atom ``a`` shares with region ``r``."""
        label = self.label
        return sum(length for b, length in zip(self.nbrs[a], self.nlen[a]) if label[b] == r)

    def move(self, a: int, s: int, *, log: bool = True) -> None:
        """Put atom ``a`` in region ``s`` (no contiguity check: see :meth:`can_leave`)."""
        r = self.label[a]
        if r == s:
            return
        sr = self.shared(a, r)
        ss = self.shared(a, s)
        self.members[r].discard(a)
        self.members[s].add(a)
        wa = self.w[a]
        self.rw[r] -= wa
        self.rw[s] += wa
        self.ra[r] -= self.area[a]
        self.ra[s] += self.area[a]
        self.rp[r] -= self.perim[a] - 2 * sr
        self.rp[s] += self.perim[a] - 2 * ss
        self.label[a] = s
        if log:
            self.log.append((a, r))

    def rollback(self, mark: int) -> None:
        """Undo every move logged after ``mark`` (a former ``len(self.log)``)."""
        while len(self.log) > mark:
            a, r = self.log.pop()
            self.move(a, r, log=False)

    # ---- measures ------------------------------------------------------
    def violation(self, r: int) -> int:
        """Households region ``r`` is outside the bounds by (0 for locked or empty regions)."""
        if self.rlocked[r] or not self.members[r]:
            return 0
        v = self.rw[r]
        if v < self.lo:
            return self.lo - v
        if v > self.hi:
            cap = self.hi
            if self.cap_heavy:
                cap = max([self.w[a] for a in self.heavy if self.label[a] == r], default=self.hi)
            return max(0, v - cap)
        return 0

    def hard_violation(self) -> int:
        """The total violation measured against the :attr:`hard` bounds (whatever the working band)."""
        band = self.lo, self.hi
        self.set_band(*self.hard)
        total = self.total_violation()
        self.set_band(*band)
        return total

    def soft_distance(self, weight: int) -> int:
        """Households a region of ``weight`` lies outside the preferred band (0 without one)."""
        if self.soft is None:
            return 0
        return max(0, self.soft[0] - weight, weight - self.soft[1])

    def soft_violation(self, r: int) -> int:
        """:meth:`soft_distance` of region ``r`` (0 for locked or empty regions)."""
        return 0 if self.rlocked[r] or not self.members[r] else self.soft_distance(self.rw[r])

    def soft_delta(self, a: int, s: int) -> int:
        """Change of the two regions' distance to the preferred band if ``a`` joins ``s``."""
        r, wa, rw = self.label[a], self.w[a], self.rw
        if self.soft is None or r == s:
            return 0
        return (self.soft_distance(rw[r] - wa) + self.soft_distance(rw[s] + wa)
                - self.soft_distance(rw[r]) - self.soft_distance(rw[s]))

    def keeps_bands(self, r: int, change: int) -> bool:
        """Whether region ``r`` changed by ``change`` households gets no further from the working
        band and, if inside the hard bounds now, stays inside them."""
        if self.rlocked[r]:
            return False
        now, then = self.rw[r], self.rw[r] + change
        if _distance(then, self.lo, self.hi) > _distance(now, self.lo, self.hi):
            return False
        return self.keeps_hard(r, change)

    def keeps_hard(self, r: int, change: int) -> bool:
        """Whether region ``r`` changed by ``change`` households stays inside the hard bounds if it is now."""
        lo, hi = self.hard
        now = self.rw[r]
        return not (lo <= now <= hi) or lo <= now + change <= hi

    def total_violation(self) -> int:
        """The sum of :meth:`violation` over all regions."""
        return sum(self.violation(r) for r in range(len(self.rw)))

    def moved_delta(self, a: int, s: int) -> int:
        """Change in households away from their old region if ``a`` joins ``s``."""
        o = self.origin[a]
        r = self.label[a]
        wa = self.w[a]
        return (wa if self.home[r] == o else 0) - (wa if self.home[s] == o else 0)

    @staticmethod
    def pp(area: float, perim: float) -> float:
        """Polsby-Popper ``4πA / P²`` of an area and perimeter."""
        return 4 * math.pi * area / (perim * perim) if perim > 0 else 0.0

    def compact_delta(self, a: int, s: int) -> float:
        """Change of the two regions' Polsby-Popper sum if ``a`` joins ``s``."""
        r = self.label[a]
        sr = self.shared(a, r)
        ss = self.shared(a, s)
        before = self.pp(self.ra[r], self.rp[r]) + self.pp(self.ra[s], self.rp[s])
        after_r = self.pp(self.ra[r] - self.area[a], self.rp[r] - self.perim[a] + 2 * sr)
        after_s = self.pp(self.ra[s] + self.area[a], self.rp[s] + self.perim[a] - 2 * ss)
        return after_r + after_s - before

    # ---- contiguity ------------------------------------------------------
    def can_leave(self, a: int) -> bool:
        """Whether region ``label[a]`` stays connected (and non-empty) without ``a``."""
        r = self.label[a]
        if len(self.members[r]) <= 1:
            return False
        label = self.label
        inside = [b for b in self.nbrs[a] if label[b] == r]
        if len(inside) <= 1:
            return len(inside) == 1
        targets = set(inside)
        start = inside[0]
        seen = {a, start}
        targets.discard(start)
        queue = deque([start])
        nbrs = self.nbrs
        while queue and targets:
            c = queue.popleft()
            for b in nbrs[c]:
                if b not in seen and label[b] == r:
                    seen.add(b)
                    targets.discard(b)
                    queue.append(b)
        return not targets

    def leaving_block(self, a: int) -> list[int] | None:
        """Atoms that must leave with ``a`` to keep its region connected.

        ``[a]`` when ``a`` is not an articulation point of its region;
        otherwise ``a`` plus every piece cut off by removing it except the
        heaviest (the composite move of CM-Tabu). None if that would empty
        the region or carry a locked atom.
        """
        if self.can_leave(a):
            return [a]
        r = self.label[a]
        if len(self.members[r]) <= 1:
            return None
        pieces = self.components(self.members[r] - {a})
        pieces.sort(key=lambda piece: (-sum(self.w[b] for b in piece), -len(piece)))
        block = [a]
        for piece in pieces[1:]:
            block.extend(piece)
        if any(self.locked_atom[b] for b in block):
            return None
        return block

    def components(self, atoms: set[int]) -> list[set[int]]:
        """The connected pieces of a set of atoms."""
        left = set(atoms)
        out = []
        while left:
            start = left.pop()
            piece = {start}
            queue = deque([start])
            while queue:
                c = queue.popleft()
                for b in self.nbrs[c]:
                    if b in left:
                        left.discard(b)
                        piece.add(b)
                        queue.append(b)
            out.append(piece)
        return out

    def neighbour_regions(self, r: int) -> dict[int, float]:
        """Regions bordering ``r``, with the length of the shared boundary."""
        out: dict[int, float] = {}
        label = self.label
        for a in self.members[r]:
            for b, length in zip(self.nbrs[a], self.nlen[a]):
                s = label[b]
                if s != r:
                    out[s] = out.get(s, 0.0) + length + 1e-9
        return out

    def boundary_pairs(self, r: int, towards: int | None = None) -> Iterator[tuple[int, int]]:
        """(atom of r, neighbour region) pairs along r's boundary."""
        label = self.label
        for a in self.members[r]:
            seen = set()
            for b in self.nbrs[a]:
                s = label[b]
                if s != r and s not in seen and (towards is None or s == towards):
                    seen.add(s)
                    yield a, s

    def region_paths(self, r: int, wanted: Callable[[int], bool], limit: int = 6) -> Iterator[list[int]]:
        """Shortest chains of free neighbouring regions from r to regions where ``wanted``."""
        parent: dict[int, int | None] = {r: None}
        queue = deque([r])
        found = 0
        while queue and found < limit:
            q = queue.popleft()
            for s in self.neighbour_regions(q):
                if s in parent or self.rlocked[s]:
                    continue
                parent[s] = q
                if wanted(s):
                    path = [s]
                    step = parent[s]
                    while step is not None:
                        path.append(step)
                        step = parent[step]
                    yield path[::-1]
                    found += 1
                queue.append(s)

    # ---- moves -----------------------------------------------------------
    def best_transfer(self, pairs: Iterable[tuple[int, int]], need: int, *, respect_room: bool,
                      respect_floor: bool) -> tuple[tuple, list[int], int] | None:
        """Cheapest (key, block, target) among candidate (atom, target) pairs.

        The key orders by households moved beyond those the transfer needs,
        then targets outside the bounds first, then compactness.
        """
        best = None
        for a, s in pairs:
            r = self.label[a]
            if self.locked_atom[a] or self.rlocked[s] or self.rlocked[r]:
                continue
            wa = self.w[a]
            if respect_room and self.rw[s] + wa > self.hi:
                continue
            if respect_floor and self.rw[r] - wa < self.lo:
                continue
            # 0 beyond the need for any atom that fits it, so among those the most compact wins
            key = (self.moved_delta(a, s) - min(wa, need), 0 if self.violation(s) else 1,
                   -self.compact_delta(a, s))
            if best is not None and key >= best[0]:
                continue
            block = self.leaving_block(a)
            if block is None:
                continue
            if len(block) > 1:
                wb = sum(self.w[b] for b in block)
                if respect_room and self.rw[s] + wb > self.hi:
                    continue
                if respect_floor and self.rw[r] - wb < self.lo:
                    continue
                key = (sum(self.moved_delta(b, s) for b in block) - min(wb, need),
                       0 if self.violation(s) else 1, 0.0)
                if best is not None and key >= best[0]:
                    continue
            best = (key, block, s)
        return best

    def shed(self, r: int, *, towards: int | None = None, amount: int | None = None,
             respect_room: bool = True) -> int:
        """Move boundary atoms out of ``r`` (into regions with room); households moved."""
        need = (self.rw[r] - self.hi) if amount is None else amount
        return self._transfer(lambda: list(self.boundary_pairs(r, towards)), need,
                              respect_room=respect_room, respect_floor=True)

    def gain(self, r: int, *, source: int | None = None, amount: int | None = None,
             respect_floor: bool = True) -> int:
        """Pull boundary atoms of neighbours into ``r``; households gained."""
        need = (self.lo - self.rw[r]) if amount is None else amount
        return self._transfer(lambda: [(b, r) for b in self._bordering_atoms(r, source)], need,
                              respect_room=True, respect_floor=respect_floor)

    def _bordering_atoms(self, r: int, source: int | None) -> set[int]:
        """Atoms outside ``r`` (in ``source`` only, if given) that touch it."""
        label = self.label
        return {b for a in self.members[r] for b in self.nbrs[a]
                if label[b] != r and (source is None or label[b] == source)}

    def _transfer(self, candidates: Callable[[], list[tuple[int, int]]], need: int, *, respect_room: bool,
                  respect_floor: bool) -> int:
        """Apply the cheapest transfer among ``candidates()`` until ``need`` households moved; how many did."""
        done = 0
        while need - done > 0 and not self.out_of_time():
            best = self.best_transfer(candidates(), need - done, respect_room=respect_room,
                                      respect_floor=respect_floor)
            if best is None:
                break
            _, block, s = best
            for a in block:
                self.move(a, s)
                done += self.w[a]
        return done

    def merge(self, r: int, s: int) -> None:
        """Join regions r and s; the heavier one's label (and old region) survives."""
        keep, drop = (s, r) if self.rw[s] >= self.rw[r] else (r, s)
        for a in list(self.members[drop]):
            self.move(a, keep)

    def dissolve(self, r: int) -> bool:
        """Give all of ``r`` to neighbours with room; False (and undone) if impossible."""
        mark = len(self.log)
        options = []
        for s, length in self.neighbour_regions(r).items():
            if self.rlocked[s] or self.rw[s] + self.rw[r] > self.hi:
                continue
            options.append((min(self.rw[r], self.rw[s]), -length, s))
        if options:
            self.merge(r, min(options)[2])
            return True
        # spread atom by atom, peeling atoms that keep the rest connected
        progress = True
        while self.members[r] and progress and not self.out_of_time():
            progress = False
            for a, s in sorted(self.boundary_pairs(r), key=lambda pair: -self.w[pair[0]]):
                if self.rlocked[s] or self.rw[s] + self.w[a] > self.hi:
                    continue
                if len(self.members[r]) == 1 or self.can_leave(a):
                    self.move(a, s)
                    progress = True
                    break
        if self.members[r]:
            self.rollback(mark)
            return False
        return True


# ---- the bands of a redraw's parameters -----------------------------------

def preferred_band(func: str, value, lo: int, hi: int) -> tuple[int, int] | None:
    """The ``preferred=`` parameter of ``func`` as a checked ``(low, high)`` inside ``[lo, hi]``, or None."""
    if value is None:
        return None
    ok = isinstance(value, (tuple, list)) and len(value) == 2
    _checks.require(func, "preferred", value, ok, "a pair (low, high) of household counts or None", InputTypeError)
    low = _checks.whole(func, "preferred", value[0], expected="whole numbers of households")
    high = _checks.whole(func, "preferred", value[1], expected="whole numbers of households")
    _checks.require(func, "preferred", value, lo <= low < high <= hi,
                    f"min_households={lo} <= low < high <= max_households={hi}")
    return low, high


def _headroom_side(func: str, value, bound: int) -> int:
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < float(value) < 1:
        return int(round(float(value) * bound))  # a share of the bound it is kept from
    return _checks.whole(func, "headroom", value, minimum=0,
                         expected="a share in (0, 1) or a whole number of households >= 0")


def headroom_band(func: str, headroom, lo: int, hi: int) -> tuple[int, int] | None:
    """The band the ``headroom=`` parameter of ``func`` leaves: ``(lo + above_min, hi - below_max)``.

    ``headroom`` is one value for both sides or a pair ``(above_min, below_max)``;
    each a share of its bound (``0 < share < 1``) or a number of households.

    Examples
    --------
    >>> headroom_band("rebalance", 0.1, 1000, 3000), headroom_band("make_grids", (0, 50), 300, 500)
    ((1100, 2700), (300, 450))
    """
    if headroom is None:
        return None
    sides = headroom if isinstance(headroom, (tuple, list)) else (headroom, headroom)
    _checks.require(func, "headroom", headroom, len(sides) == 2,
                    "a share, a number of households or a pair (above_min, below_max)", InputTypeError)
    low, high = lo + _headroom_side(func, sides[0], lo), hi - _headroom_side(func, sides[1], hi)
    _checks.require(func, "headroom", headroom, low < high,
                    f"a headroom that leaves a band inside {lo}-{hi} (it leaves {low}-{high})")
    return low, high


def _floats(values: Floats | None, n: int) -> list[float]:
    return [0.0] * n if values is None else [float(v) for v in values]


def _distance(weight: float, lo: int, hi: int) -> float:
    return max(0.0, lo - weight, weight - hi)


def steepest_descent(regions: Regions, max_rounds: int | None = None) -> None:
    """Move single boundary atoms while that lowers the total distance to the bounds.

    Each round applies, among the moves that lower it, the one that lowers it
    most (ties to the longest shared edge, the most compact result) and keeps
    both regions connected. The distance here is the plain one,
    ``max(0, lo - w, w - hi)``: the caller has sized the regions for atoms
    heavier than ``hi``.

    Examples
    --------
    >>> import numpy as np
    >>> graph = Graph.from_edges(3, np.array([0, 1]), np.array([1, 2]), np.array([1.0, 1.0]))
    >>> regions = Regions(graph, [300, 300, 200], [0, 0, 1], lo=300, hi=500)
    >>> steepest_descent(regions)
    >>> regions.label
    [0, 1, 1]
    """
    lo, hi, label, rw = regions.lo, regions.hi, regions.label, regions.rw
    for _ in range(4 * regions.n if max_rounds is None else max_rounds):
        if all(_distance(w, lo, hi) == 0 for w in rw):
            return
        moves = []
        for u in range(regions.n):
            g = label[u]
            shared: dict[int, float] = {}
            for v, length in zip(regions.nbrs[u], regions.nlen[u]):
                h = label[v]
                if h != g:
                    shared[h] = shared.get(h, 0.0) + length
            w = regions.w[u]
            for h, length in shared.items():
                before = _distance(rw[g], lo, hi) + _distance(rw[h], lo, hi)
                after = _distance(rw[g] - w, lo, hi) + _distance(rw[h] + w, lo, hi)
                if after < before - 1e-9:
                    moves.append((after - before, -length, u, h))
        for _, _, u, h in sorted(moves):
            if regions.can_leave(u):
                regions.move(u, h, log=False)
                break
        else:
            return


def soft_descent(regions: Regions, weight: float = 1.0, *, moved: bool = False, rounds: int = 4,
                 compactness: float = 1.0) -> None:
    """Boundary moves towards the preferred band (:attr:`Regions.soft`), never leaving the bounds.

    A move is taken when ``weight × (households outside the preferred band)``
    plus, with ``moved``, the households away from their old region, minus
    ``compactness × (width of the preferred band) × (gain of the two regions'
    Polsby-Popper sum)`` falls; neither region gets further from the working
    band nor leaves the hard bounds, and both stay contiguous. (Without the
    compactness term the moves that bring communities into the band chew
    their shapes: on 历下 and 市中 of the sample city mean Polsby-Popper fell
    from 0.290 to 0.271; with it, 0.313.)

    Examples
    --------
    >>> import numpy as np
    >>> graph = Graph.from_edges(4, np.array([0, 1, 2]), np.array([1, 2, 3]), np.ones(3))
    >>> regions = Regions(graph, [100, 100, 100, 100], [0, 0, 0, 1], lo=100, hi=300, soft=(150, 250))
    >>> soft_descent(regions)
    >>> regions.label
    [0, 0, 1, 1]
    """
    s = regions
    if s.soft is None:
        return
    shape_worth = max(compactness * (s.soft[1] - s.soft[0]), 1e-3)  # households one unit of PP sum is worth
    for _ in range(rounds):
        changed = False
        for a in range(s.n):
            if s.out_of_time():
                return
            r = s.label[a]
            if s.locked_atom[a] or s.rlocked[r]:
                continue
            if not s.soft_violation(r) and not any(s.soft_violation(s.label[b]) for b in s.nbrs[a]):
                continue  # this atom's region and its neighbours are all in the preferred band
            wa = s.w[a]
            if not s.keeps_bands(r, -wa):
                continue
            best = None
            for t in {s.label[b] for b in s.nbrs[a]} - {r}:
                if not s.keeps_bands(t, wa):
                    continue
                cost = (weight * s.soft_delta(a, t) + (s.moved_delta(a, t) if moved else 0)
                        - shape_worth * s.compact_delta(a, t))
                if cost < -1e-6 and (best is None or cost < best[0]):
                    best = (cost, t)
            if best is not None and s.can_leave(a):
                s.move(a, best[1])
                changed = True
        if not changed:
            return


def contiguous(labels: np.ndarray, left: np.ndarray, right: np.ndarray) -> pd.Series:
    """Per label: whether its nodes form one connected piece of the graph ``(left, right)``.

    Examples
    --------
    >>> import numpy as np
    >>> contiguous(np.array(["a", "a", "b", "a"]), np.array([0, 1]), np.array([1, 2])).to_dict()
    {'a': False, 'b': True}
    """
    same = labels[left] == labels[right]
    n = len(labels)
    graph = coo_matrix((np.ones(int(same.sum())), (left[same], right[same])), shape=(n, n))
    _, piece = connected_components(graph, directed=False)
    return pd.Series(piece).groupby(labels).nunique() == 1

