"""The per-街道 search behind :func:`jngis.rebalance.rebalance` (private).

One :class:`StreetProblem` holds one 街道 as plain arrays of *atoms* (a unit,
or a gated compound kept whole) and their contiguity graph; :func:`solve`
returns a region label per atom. Everything here is pure Python/numpy with no
geometry, so problems pickle cheaply to a worker process.

The search keeps every region contiguous at every step (a unit leaves its
region only if the rest stays connected), so stopping at any moment — time
limit, Ctrl-C in the parent — leaves a valid, if less balanced, plan.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

NO_HOME = -1


@dataclass
class StreetProblem:
    """One 街道: atoms, their graph and their starting regions (local indices)."""

    street: str
    weight: np.ndarray  # households per atom (int64)
    indptr: np.ndarray  # CSR adjacency between atoms (symmetric)
    indices: np.ndarray
    edge_length: np.ndarray  # shared boundary length per CSR entry (0 for island links)
    perimeter: np.ndarray  # perimeter of each atom (m)
    area: np.ndarray  # area of each atom (m²)
    x: np.ndarray  # centroid of each atom
    y: np.ndarray
    origin: np.ndarray  # old community (local index) each atom's households belong to
    region: np.ndarray  # starting region per atom (old community, or a fragment of one)
    home: np.ndarray  # per starting region: the old community it continues, or NO_HOME
    locked: np.ndarray  # per atom: in a fixed community, never moves
    min_households: int
    max_households: int
    seed: int = 0
    deadline: float = math.inf
    notes: list[str] = field(default_factory=list)


@dataclass
class StreetResult:
    street: str
    label: np.ndarray  # final region per atom
    notes: list[str]
    timed_out: bool


class _Search:
    """Region state with incremental weights/perimeters and an undo log."""

    def __init__(self, p: StreetProblem):
        self.p = p
        n = len(p.weight)
        self.n = n
        self.w = [int(v) for v in p.weight]
        self.nbrs = [p.indices[p.indptr[i]:p.indptr[i + 1]].tolist() for i in range(n)]
        self.nlen = [p.edge_length[p.indptr[i]:p.indptr[i + 1]].tolist() for i in range(n)]
        self.perim = p.perimeter.tolist()
        self.area = p.area.tolist()
        self.x = p.x.tolist()
        self.y = p.y.tolist()
        self.origin = p.origin.tolist()
        self.locked_atom = p.locked.tolist()
        self.label = p.region.tolist()
        n_regions = int(p.region.max()) + 1 if n else 0
        self.home = p.home.tolist() + [NO_HOME] * (n_regions - len(p.home))
        self.members: list[set[int]] = [set() for _ in range(n_regions)]
        self.rw = [0] * n_regions
        self.rp = [0.0] * n_regions
        self.ra = [0.0] * n_regions
        self.rlocked = [False] * n_regions
        for a in range(n):
            r = self.label[a]
            self.members[r].add(a)
            self.rw[r] += self.w[a]
            self.ra[r] += self.area[a]
            self.rp[r] += self.perim[a]
            if self.locked_atom[a]:
                self.rlocked[r] = True
        for a in range(n):
            r = self.label[a]
            for b, length in zip(self.nbrs[a], self.nlen[a]):
                if self.label[b] == r:
                    self.rp[r] -= length  # each internal edge is seen from both sides
        self.lo = p.min_households
        self.hi = p.max_households
        # an atom heavier than the maximum cannot be divided: its region's cap is its own weight
        self.heavy = [a for a in range(n) if self.w[a] > self.hi]
        self.rng = np.random.default_rng(p.seed)
        self.log: list[tuple[int, int]] = []
        self.deadline = p.deadline
        self.timed_out = False

    # ---- bookkeeping -------------------------------------------------
    def out_of_time(self) -> bool:
        if time.time() > self.deadline:
            self.timed_out = True
        return self.timed_out

    def new_region(self, home: int = NO_HOME) -> int:
        self.members.append(set())
        self.rw.append(0)
        self.rp.append(0.0)
        self.ra.append(0.0)
        self.rlocked.append(False)
        self.home.append(home)
        return len(self.rw) - 1

    def shared(self, a: int, r: int) -> float:
        label = self.label
        return sum(length for b, length in zip(self.nbrs[a], self.nlen[a]) if label[b] == r)

    def move(self, a: int, s: int, *, log: bool = True) -> None:
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
        while len(self.log) > mark:
            a, r = self.log.pop()
            self.move(a, r, log=False)

    def violation(self, r: int) -> int:
        if self.rlocked[r] or not self.members[r]:
            return 0
        v = self.rw[r]
        if v < self.lo:
            return self.lo - v
        if v > self.hi:
            cap = max([self.w[a] for a in self.heavy if self.label[a] == r], default=self.hi)
            return max(0, v - cap)
        return 0

    def total_violation(self) -> int:
        return sum(self.violation(r) for r in range(len(self.rw)))

    def moved_delta(self, a: int, s: int) -> int:
        """Change in households away from their old community if ``a`` joins ``s``."""
        o = self.origin[a]
        r = self.label[a]
        wa = self.w[a]
        return (wa if self.home[r] == o else 0) - (wa if self.home[s] == o else 0)

    def pp(self, area: float, perim: float) -> float:
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

    def safe_to_remove(self, a: int) -> bool:
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

    def block_of(self, a: int) -> list[int] | None:
        """Atoms that must leave with ``a`` to keep its region connected.

        ``[a]`` when ``a`` is not an articulation point of its region;
        otherwise ``a`` plus every piece cut off by removing it except the
        heaviest (the composite move of CM-Tabu). None if that would empty
        the region or carry a fixed atom.
        """
        if self.safe_to_remove(a):
            return [a]
        r = self.label[a]
        if len(self.members[r]) <= 1:
            return None
        pieces = self._components(self.members[r] - {a})
        pieces.sort(key=lambda piece: (-sum(self.w[b] for b in piece), -len(piece)))
        block = [a]
        for piece in pieces[1:]:
            block.extend(piece)
        if any(self.locked_atom[b] for b in block):
            return None
        return block

    def neighbour_regions(self, r: int) -> dict[int, float]:
        out: dict[int, float] = {}
        label = self.label
        for a in self.members[r]:
            for b, length in zip(self.nbrs[a], self.nlen[a]):
                s = label[b]
                if s != r:
                    out[s] = out.get(s, 0.0) + length + 1e-9
        return out

    def boundary_pairs(self, r: int, towards: int | None = None):
        """(atom of r, neighbour region) pairs along r's boundary."""
        label = self.label
        for a in self.members[r]:
            seen = set()
            for b in self.nbrs[a]:
                s = label[b]
                if s != r and s not in seen and (towards is None or s == towards):
                    seen.add(s)
                    yield a, s

    # ---- moves ---------------------------------------------------------
    def _best_transfer(self, pairs, need: int, *, respect_room: bool, respect_floor: bool):
        """Cheapest (block, target) among candidate (atom, target) pairs."""
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
            # households moved beyond those the transfer needs: 0 for any atom that fits
            # the need, so among those the most compact choice wins
            key = (self.moved_delta(a, s) - min(wa, need), 0 if self.violation(s) else 1,
                   -self.compact_delta(a, s))
            if best is not None and key >= best[0]:
                continue
            block = self.block_of(a)
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
        done = 0
        while need - done > 0 and not self.out_of_time():
            best = self._best_transfer(list(self.boundary_pairs(r, towards)), need - done,
                                       respect_room=respect_room, respect_floor=True)
            if best is None:
                break
            _, block, s = best
            for a in block:
                self.move(a, s)
                done += self.w[a]
        return done

    def gain(self, r: int, *, source: int | None = None, amount: int | None = None,
             respect_floor: bool = True) -> int:
        """Pull boundary atoms of neighbours into ``r``; households gained."""
        need = (self.lo - self.rw[r]) if amount is None else amount
        done = 0
        label = self.label
        while need - done > 0 and not self.out_of_time():
            candidates = set()
            for a in self.members[r]:
                for b in self.nbrs[a]:
                    s = label[b]
                    if s != r and (source is None or s == source):
                        candidates.add(b)
            best = self._best_transfer([(b, r) for b in candidates], need - done,
                                       respect_room=True, respect_floor=respect_floor)
            if best is None:
                break
            _, block, _ = best
            for b in block:
                self.move(b, r)
                done += self.w[b]
        return done

    def merge(self, r: int, s: int) -> None:
        """Join regions r and s; the larger one's label (and old code) survives."""
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
                if len(self.members[r]) == 1 or self.safe_to_remove(a):
                    self.move(a, s)
                    progress = True
                    break
        if self.members[r]:
            self.rollback(mark)
            return False
        return True

    def split(self, r: int) -> bool:
        """Cut a new region off ``r``: the smallest part that brings r within bounds."""
        total = self.rw[r]
        if total < 2 * self.lo:
            return False
        target = min(self.hi, max(self.lo, total - self.hi))
        members = [a for a in self.members[r] if not self.locked_atom[a]]
        if len(members) < 2:
            return False
        cx = sum(self.x[a] * self.w[a] for a in members) / max(1, sum(self.w[a] for a in members))
        cy = sum(self.y[a] * self.w[a] for a in members) / max(1, sum(self.w[a] for a in members))
        far = sorted(members, key=lambda a: -((self.x[a] - cx) ** 2 + (self.y[a] - cy) ** 2))
        seeds = far[:6]
        if len(far) > 6:
            seeds += [far[int(i)] for i in self.rng.choice(len(far) - 6, size=min(4, len(far) - 6),
                                                           replace=False) + 6]
        # households moved decide first, but within a small tolerance the more compact cut wins
        tolerance = max(1, int(0.03 * target))
        region_perim = self.rp[r]
        region_area = self.ra[r]
        best = None
        for seed in seeds:
            part = self._grow(r, seed, target)
            if part is None:
                continue
            weight = sum(self.w[a] for a in part)
            rest = total - weight
            violation = (max(0, self.lo - weight) + max(0, weight - self.hi)
                         + max(0, self.lo - rest) + max(0, rest - self.hi))
            moved = sum(self.w[a] for a in part if self.origin[a] == self.home[r])
            area = sum(self.area[a] for a in part)
            inner = sum(length for a in part for b, length in zip(self.nbrs[a], self.nlen[a]) if b in part)
            perim = sum(self.perim[a] for a in part) - inner
            cut = sum(length for a in part for b, length in zip(self.nbrs[a], self.nlen[a])
                      if b not in part and self.label[b] == r)
            rest_pp = self.pp(region_area - area, region_perim - perim + 2 * cut)
            key = (violation, moved // tolerance, -(self.pp(area, perim) + rest_pp))
            if best is None or key < best[0]:
                best = (key, part)
        if best is None or best[0][0] >= self.violation(r):
            return False
        new = self.new_region()
        for a in best[1]:
            self.move(a, new)
        return True

    def _grow(self, r: int, seed: int, target: int) -> set[int] | None:
        """A compact connected part of r grown from ``seed`` up to ``target`` households."""
        label = self.label
        sx, sy = self.x[seed], self.y[seed]
        part: set[int] = set()
        weight = 0
        heap = [(0.0, seed)]
        queued = {seed}
        while heap and weight < target:
            _, a = heapq.heappop(heap)
            if self.locked_atom[a] or weight + self.w[a] > self.hi:
                continue
            part.add(a)
            weight += self.w[a]
            for b in self.nbrs[a]:
                if b not in queued and label[b] == r:
                    queued.add(b)
                    heapq.heappush(heap, ((self.x[b] - sx) ** 2 + (self.y[b] - sy) ** 2, b))
        rest = self.members[r] - part
        if not part or not rest:
            return None
        # the rest must stay connected: hand its smaller pieces to the new part
        pieces = self._components(rest)
        if len(pieces) > 1:
            pieces.sort(key=lambda piece: -sum(self.w[a] for a in piece))
            for piece in pieces[1:]:
                if any(self.locked_atom[a] for a in piece):
                    return None
                part |= piece
        return part

    def _components(self, atoms: set[int]) -> list[set[int]]:
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

    def region_paths(self, r: int, wanted, limit: int = 6):
        """Shortest chains of free neighbouring regions from r to regions where ``wanted``."""
        parent = {r: None}
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
                    while parent[path[-1]] is not None:
                        path.append(parent[path[-1]])
                    yield path[::-1]
                    found += 1
                queue.append(s)

    def merge_and_split(self, r: int, before: int) -> bool:
        """Join r with a neighbour and cut the union again; kept only if it helps."""
        for s in sorted(self.neighbour_regions(r), key=lambda s: self.rw[s]):
            if self.rlocked[s] or self.out_of_time():
                continue
            mark = len(self.log)
            self.merge(r, s)
            keep = s if self.members[s] else r
            for _ in range(8):
                if self.rw[keep] <= self.hi or not self.split(keep):
                    break
            if self.total_violation() < before:
                return True
            self.rollback(mark)
        return False

    # ---- the phases ------------------------------------------------------
    def fix_over(self, r: int) -> bool:
        before = self.total_violation()
        self.shed(r)
        if self.rw[r] > self.hi:
            self.split(r)
        if self.rw[r] > self.hi and self.total_violation() >= before:
            # push the excess along a chain to a region with room
            for path in self.region_paths(r, lambda s: self.rw[s] < self.hi):
                mark = len(self.log)
                amount = self.rw[r] - self.hi
                for q, s in zip(path, path[1:]):
                    if self.shed(q, towards=s, amount=amount, respect_room=False) == 0:
                        break
                    amount = self.rw[s] - self.hi
                    if amount <= 0:
                        break
                if self.total_violation() < before:
                    break
                self.rollback(mark)
        if self.rw[r] > self.hi and self.total_violation() >= before:
            self.merge_and_split(r, before)
        return self.total_violation() < before

    def fix_under(self, r: int) -> bool:
        before = self.total_violation()
        mark = len(self.log)
        deficit = self.lo - self.rw[r]
        order = (self.gain, self.dissolve) if deficit < self.rw[r] else (self.dissolve, self.gain)
        for step in order:
            if self.violation(r) == 0 or not self.members[r]:
                break
            step(r)
        if self.members[r] and self.violation(r) > 0:
            # pull from a region with households to spare, along a chain
            for path in self.region_paths(r, lambda s: self.rw[s] > self.lo):
                inner = len(self.log)
                amount = self.lo - self.rw[r]
                chain = path[::-1]
                for q, s in zip(chain, chain[1:]):
                    if self.shed(q, towards=s, amount=amount, respect_room=False) == 0:
                        break
                if self.total_violation() < before:
                    break
                self.rollback(inner)
        if self.members[r] and self.violation(r) > 0 and self.total_violation() >= before:
            self.rollback(mark)
            self.merge_and_split(r, before)
        if self.total_violation() >= before:
            self.rollback(mark)
            return False
        return True

    def repair(self) -> None:
        stuck: set[int] = set()
        for _ in range(20 * self.n + 100):
            if self.out_of_time():
                return
            worst = None
            for r in range(len(self.rw)):
                v = self.violation(r)
                if v and r not in stuck and (worst is None or v > worst[0]):
                    worst = (v, r)
            if worst is None:
                return
            r = worst[1]
            ok = self.fix_over(r) if self.rw[r] > self.hi else self.fix_under(r)
            if ok:
                stuck.clear()
            else:
                stuck.add(r)

    def send_home(self) -> None:
        """Return moved atoms to their old community's region where bounds allow."""
        region_of_home = {h: r for r, h in enumerate(self.home) if h != NO_HOME and self.members[r]}
        for _ in range(10):
            changed = False
            for a in range(self.n):
                if self.out_of_time():
                    return
                s = region_of_home.get(self.origin[a])
                r = self.label[a]
                if s is None or s == r or self.locked_atom[a] or self.rlocked[s]:
                    continue
                if not any(self.label[b] == s for b in self.nbrs[a]):
                    continue
                wa = self.w[a]
                v_before = self.violation(r) + self.violation(s)
                if self.rw[s] + wa > self.hi and self.rw[s] <= self.hi:
                    continue
                if self.rw[r] - wa < self.lo and self.rw[r] >= self.lo:
                    continue
                if not self.safe_to_remove(a):
                    continue
                self.move(a, s)
                if self.violation(r) + self.violation(s) > v_before:
                    self.move(a, r)
                    continue
                changed = True
            if not changed:
                return

    def polish(self, rounds: int = 3) -> None:
        """Boundary moves that make shapes more compact without moving more households."""
        for _ in range(rounds):
            changed = False
            for a in range(self.n):
                if self.out_of_time():
                    return
                r = self.label[a]
                if self.locked_atom[a]:
                    continue
                wa = self.w[a]
                if self.rw[r] - wa < self.lo:
                    continue
                for s in {self.label[b] for b in self.nbrs[a]} - {r}:
                    if self.rlocked[s] or self.rw[s] + wa > self.hi:
                        continue
                    if self.moved_delta(a, s) > 0:
                        continue
                    if self.compact_delta(a, s) > 1e-4 and self.safe_to_remove(a):
                        self.move(a, s)
                        changed = True
                        break
            if not changed:
                return


def _swap_polish(search: "_Search", rounds: int = 2) -> None:
    """Re-choose which atoms a community gave away: swap a given-away atom back for a
    nearby one of no more households when that makes both shapes more compact.

    Households moved never rise (the returning atom weighs at least as much as the
    one leaving) and both communities stay within bounds and contiguous.
    """
    s = search
    region_of_home = {h: r for r, h in enumerate(s.home) if h != NO_HOME and s.members[r]}
    for _ in range(rounds):
        changed = False
        for a in range(s.n):
            if s.out_of_time():
                return
            r = region_of_home.get(s.origin[a])
            here = s.label[a]
            if r is None or r == here or s.locked_atom[a] or s.rlocked[here] or s.rlocked[r]:
                continue
            if not any(s.label[b] == r for b in s.nbrs[a]):
                continue
            wa = s.w[a]
            # candidates: atoms of r near a that touch a's current region
            near = {c for b in s.nbrs[a] if s.label[b] == r for c in [b, *s.nbrs[b]] if s.label[c] == r}
            best = None
            for b in near:
                wb = s.w[b]
                if wb > wa or s.locked_atom[b] or not any(s.label[c] == here for c in s.nbrs[b]):
                    continue
                if s.rw[r] + wa - wb > s.hi or s.rw[here] - wa + wb < s.lo:
                    continue
                pp_before = s.pp(s.ra[r], s.rp[r]) + s.pp(s.ra[here], s.rp[here])
                if not s.safe_to_remove(a):
                    break
                mark = len(s.log)
                s.move(a, r)
                # b must still touch a's old region once a has left it
                if s.safe_to_remove(b) and any(s.label[c] == here for c in s.nbrs[b]):
                    s.move(b, here)
                    gain = s.pp(s.ra[r], s.rp[r]) + s.pp(s.ra[here], s.rp[here]) - pp_before
                    if gain > 1e-4 and (best is None or gain > best[0]):
                        best = (gain, b)
                s.rollback(mark)
            if best is not None:
                s.move(a, r)
                s.move(best[1], here)
                changed = True
        if not changed:
            return


def solve(problem: StreetProblem) -> StreetResult:
    """Balance one 街道; returns the final region label of every atom."""
    search = _Search(problem)
    notes = list(problem.notes)
    if search.n and not search.out_of_time():
        search.repair()
        search.send_home()
        search.polish()
        _swap_polish(search)
        search.polish()
    if search.timed_out:
        notes.append("time limit reached")
    return StreetResult(problem.street, np.asarray(search.label, dtype=np.int64), notes,
                        search.timed_out)


def lower_bound(households: np.ndarray, min_households: int, max_households: int,
                time_limit: float = 2.0) -> int | None:
    """Fewest households that must change community in one 街道 (a MIP on totals).

    Relaxes contiguity and the indivisibility of units: each old community
    either survives (sized within bounds, keeping at most its own households)
    or is dissolved; any number of new communities within bounds take the
    rest. Households moved = total − kept. Valid for any plan, whatever the
    adjacency (a new community matched to an old one may gather households
    from communities that are not neighbours of it). ``None`` when no plan can
    put every community within bounds (the total is too small, or cannot be
    cut into pieces within bounds).
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    h = np.asarray(households, dtype=float)
    k = len(h)
    total = float(h.sum())
    if k == 0 or total == 0:
        return 0
    lo, hi = float(min_households), float(max_households)
    # variables: z_i (survives), kept_i, size_i for each old community; n_new, size_new
    nv = 3 * k + 2
    z = np.arange(k) * 3
    kept = z + 1
    size = z + 2
    n_new, size_new = 3 * k, 3 * k + 1
    c = np.zeros(nv)
    c[kept] = -1.0
    rows, lower, upper = [], [], []

    def row(entries, lb, ub):
        r = np.zeros(nv)
        for j, v in entries:
            r[j] = v
        rows.append(r)
        lower.append(lb)
        upper.append(ub)

    for i in range(k):
        row([(kept[i], 1), (z[i], -h[i])], -np.inf, 0)  # kept <= h z
        row([(kept[i], 1), (size[i], -1)], -np.inf, 0)  # kept <= size
        row([(size[i], 1), (z[i], -lo)], 0, np.inf)  # size >= lo z
        row([(size[i], 1), (z[i], -hi)], -np.inf, 0)  # size <= hi z
    row([(size_new, 1), (n_new, -lo)], 0, np.inf)
    row([(size_new, 1), (n_new, -hi)], -np.inf, 0)
    row([(j, 1) for j in size] + [(size_new, 1)], total, total)
    integrality = np.zeros(nv)
    integrality[z] = 1
    integrality[n_new] = 1
    ub = np.full(nv, np.inf)
    ub[z] = 1
    ub[kept] = h
    ub[n_new] = math.ceil(total / lo) if lo > 0 else k + total
    result = milp(c, constraints=LinearConstraint(np.array(rows), lower, upper), integrality=integrality,
                  bounds=Bounds(np.zeros(nv), ub), options={"time_limit": time_limit, "disp": False})
    if result.status == 0:
        return int(math.ceil(total + result.fun - 1e-6))
    bound = getattr(result, "mip_dual_bound", None)
    if result.status == 1 and bound is not None and np.isfinite(bound):
        return max(0, int(math.ceil(total + bound - 1e-6)))
    return None
