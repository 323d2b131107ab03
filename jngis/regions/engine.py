"""The region engine's state: the contiguity :class:`Graph` and the :class:`Regions` on it (:mod:`jngis.regions`)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

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
        """Give all of ``r`` to neighbours with room; False (and undone) if impossible.

        Where one neighbour can take it whole, the merge is compared with spreading ``r`` atom by atom
        (the most compact move first) and the one moving fewer households, then leaving the regions more
        compact (Polsby-Popper sum), is kept.
        """
        mark = len(self.log)
        options = []
        for s, length in self.neighbour_regions(r).items():
            if self.rlocked[s] or self.rw[s] + self.rw[r] > self.hi:
                continue
            options.append((min(self.rw[r], self.rw[s]), -length, s))
        if options:
            self.merge(r, min(options)[2])
            # spreading r over its neighbours may leave them more compact than one union, at as many moved
            merged = self._dissolve_score()
            self.rollback(mark)
            if self._spread(r, compact=True) and self._dissolve_score() < merged:
                return True
            self.rollback(mark)
            self.merge(r, min(options)[2])
            return True
        if self._spread(r, compact=False):
            return True
        self.rollback(mark)
        return False

    def _spread(self, r: int, *, compact: bool) -> bool:
        """Peel r atom by atom into neighbours with room, keeping the rest connected (heaviest first,
        or the most compact move first); whether r was emptied (the moves are left for the caller)."""
        progress = True
        while self.members[r] and progress and not self.out_of_time():
            progress = False
            pairs = list(self.boundary_pairs(r))
            pairs.sort(key=(lambda pair: -self.compact_delta(*pair)) if compact else (lambda pair: -self.w[pair[0]]))
            for a, s in pairs:
                if self.rlocked[s] or self.rw[s] + self.w[a] > self.hi:
                    continue
                if len(self.members[r]) == 1 or self.can_leave(a):
                    self.move(a, s)
                    progress = True
                    break
        return not self.members[r]

    def _dissolve_score(self) -> tuple[int, float]:
        """(households away from their old region, minus the Polsby-Popper sum): lower is better."""
        moved = sum(self.w[a] for a in range(self.n) if self.home[self.label[a]] != self.origin[a])
        return moved, -sum(self.pp(self.ra[q], self.rp[q]) for q in range(len(self.rw)) if self.members[q])


def _floats(values: Floats | None, n: int) -> list[float]:
    return [0.0] * n if values is None else [float(v) for v in values]


def _distance(weight: float, lo: int, hi: int) -> float:
    return max(0.0, lo - weight, weight - hi)
