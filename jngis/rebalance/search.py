"""The per-街道 search behind :func:`jngis.rebalance.rebalance` (private).

One :class:`StreetProblem` holds one 街道 as plain arrays of *atoms* (a unit,
or a gated compound kept whole) and their contiguity graph; :func:`solve`
runs the phases below on a :class:`jngis.regions.Regions` state and returns a
region label per atom, with notes on what it had to give up. Everything here
is pure Python/numpy with no geometry, so problems pickle cheaply to a worker
process.

The phases, in order: :func:`repair` (the region furthest outside the bounds
first: :func:`fix_over` / :func:`fix_under`), :func:`send_home`,
:func:`prefer` (with a preferred band), :func:`polish`, :func:`exchange_polish`,
:func:`polish`. With headroom (a working band inside the hard bounds) or a
preferred band first, :func:`repair` runs on the tightest band, then on each
looser one down to the hard bounds; where that leaves the 街道 further outside
the hard bounds than the plain search, the plain search's plan is kept. Every move keeps every
region contiguous (the engine's contiguity-safe moves), so stopping at any
moment — time limit, Ctrl-C in the parent — leaves a valid, if less
balanced, plan.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import add

import numpy as np

from jngis.regions import NO_HOME, Graph, Regions, soft_descent

__all__ = ["StreetProblem", "StreetResult", "solve", "lower_bound", "NO_HOME", "EXCHANGES"]

#: Run :func:`exchange_polish` in the polish (False: the plan without it, for comparison in one process).
EXCHANGES = True
#: Let :func:`exchange_polish` take an atom home with up to two neighbours and make up for it with a third
#: region's atoms (False: exchanges between two regions only, as before, for comparison in one process).
CHAINS = True
#: Groups :func:`exchange_polish` may read per atom of the 街道 for the exchanges :data:`CHAINS` adds (then
#: only those of two regions): a few 街道 with giant communities around many returning atoms would cost most
#: of the time.
CHAIN_ROWS_PER_ATOM = 20


@dataclass
class StreetProblem:
    """One 街道: atoms, their graph and their starting regions (local indices)."""

    street: str
    weight: np.ndarray  # households per atom (int64)
    graph: Graph  # contiguity between atoms, with shared edge lengths (0 for island links)
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
    codes: list[str] = field(default_factory=list)  # the old community codes, by local index
    notes: list[str] = field(default_factory=list)  # what the preparation found (islands, fragments...)
    band: tuple[int, int] | None = None  # the working band inside the bounds (headroom); None: the bounds
    preferred: tuple[int, int] | None = None  # the preferred (soft) band
    preferred_weight: float = 0.0  # households moved one household outside the preferred band is worth
    preferred_first: bool = False  # lexicographic: repair into the preferred band first
    bound_totals: np.ndarray | None = None  # households per old community for the lower bound; None: no bound

    @property
    def hard(self) -> tuple[int, int]:
        """The bounds no plan may break where the plain search meets them."""
        return self.min_households, self.max_households

    def repair_bands(self) -> list[tuple[int, int]]:
        """The bands :func:`repair` runs on, tightest first, ending with the hard bounds."""
        bands = [self.preferred] if self.preferred_first and self.preferred is not None else []
        bands += [self.band] if self.band is not None else []
        return [b for i, b in enumerate(bands + [self.hard]) if b not in bands[:i]]

    def regions(self) -> Regions:
        """The engine state this problem starts from."""
        lo, hi = self.band or self.hard
        return Regions(self.graph, self.weight, self.region, lo=lo, hi=hi, hard=self.hard, soft=self.preferred,
                       area=self.area, perimeter=self.perimeter, x=self.x, y=self.y, origin=self.origin,
                       home=self.home, locked=self.locked, seed=self.seed, deadline=self.deadline)

    def plain(self) -> StreetProblem:
        """The same 街道 without headroom or a preferred band (the default search)."""
        return dataclasses.replace(self, band=None, preferred=None, preferred_weight=0.0, preferred_first=False)


@dataclass
class StreetResult:
    """The search's answer for one 街道."""

    street: str
    label: np.ndarray  # final region per atom
    notes: list[str]  # the problem's notes, then what the search gave up
    timed_out: bool
    lower_bound: int | None = None  # of households moved (:func:`lower_bound` of ``bound_totals``)


def split(regions: Regions, r: int) -> bool:
    """Cut a new region off ``r``: the smallest part that brings r within bounds."""
    total = regions.rw[r]
    if total < 2 * regions.lo:
        return False
    target = min(regions.hi, max(regions.lo, total - regions.hi))
    members = [a for a in regions.members[r] if not regions.locked_atom[a]]
    if len(members) < 2:
        return False
    cx = sum(regions.x[a] * regions.w[a] for a in members) / max(1, sum(regions.w[a] for a in members))
    cy = sum(regions.y[a] * regions.w[a] for a in members) / max(1, sum(regions.w[a] for a in members))
    far = sorted(members, key=lambda a: -((regions.x[a] - cx) ** 2 + (regions.y[a] - cy) ** 2))
    seeds = far[:6]
    if len(far) > 6:
        seeds += [far[int(i)] for i in regions.rng.choice(len(far) - 6, size=min(4, len(far) - 6),
                                                       replace=False) + 6]
    # households moved decide first, but within a small tolerance the more compact cut wins
    tolerance = max(1, int(0.03 * target))
    region_perim = regions.rp[r]
    region_area = regions.ra[r]
    best = None
    for seed in seeds:
        part = _grow(regions, r, seed, target)
        if part is None:
            continue
        weight = sum(regions.w[a] for a in part)
        rest = total - weight
        violation = (max(0, regions.lo - weight) + max(0, weight - regions.hi)
                     + max(0, regions.lo - rest) + max(0, rest - regions.hi))
        moved = sum(regions.w[a] for a in part if regions.origin[a] == regions.home[r])
        area = sum(regions.area[a] for a in part)
        inner = sum(length for a in part for b, length in zip(regions.nbrs[a], regions.nlen[a]) if b in part)
        perim = sum(regions.perim[a] for a in part) - inner
        cut = sum(length for a in part for b, length in zip(regions.nbrs[a], regions.nlen[a])
                  if b not in part and regions.label[b] == r)
        rest_pp = regions.pp(region_area - area, region_perim - perim + 2 * cut)
        key = (violation, moved // tolerance, -(regions.pp(area, perim) + rest_pp))
        if best is None or key < best[0]:
            best = (key, part)
    if best is None or best[0][0] >= regions.violation(r):
        return False
    new = regions.new_region()
    for a in best[1]:
        regions.move(a, new)
    return True


def _grow(regions: Regions, r: int, seed: int, target: int) -> set[int] | None:
    """A compact connected part of r grown from ``seed`` up to ``target`` households."""
    label = regions.label
    sx, sy = regions.x[seed], regions.y[seed]
    part: set[int] = set()
    weight = 0
    heap = [(0.0, seed)]
    queued = {seed}
    while heap and weight < target:
        _, a = heapq.heappop(heap)
        if regions.locked_atom[a] or weight + regions.w[a] > regions.hi:
            continue
        part.add(a)
        weight += regions.w[a]
        for b in regions.nbrs[a]:
            if b not in queued and label[b] == r:
                queued.add(b)
                heapq.heappush(heap, ((regions.x[b] - sx) ** 2 + (regions.y[b] - sy) ** 2, b))
    rest = regions.members[r] - part
    if not part or not rest:
        return None
    # the rest must stay connected: hand its smaller pieces to the new part
    pieces = regions.components(rest)
    if len(pieces) > 1:
        pieces.sort(key=lambda piece: -sum(regions.w[a] for a in piece))
        for piece in pieces[1:]:
            if any(regions.locked_atom[a] for a in piece):
                return None
            part |= piece
    return part


def merge_and_split(regions: Regions, r: int, before: int) -> bool:
    """Join r with a neighbour and cut the union again; kept only if it helps."""
    for s in sorted(regions.neighbour_regions(r), key=lambda s: regions.rw[s]):
        if regions.rlocked[s] or regions.out_of_time():
            continue
        mark = len(regions.log)
        regions.merge(r, s)
        keep = s if regions.members[s] else r
        for _ in range(8):
            if regions.rw[keep] <= regions.hi or not split(regions, keep):
                break
        if regions.total_violation() < before:
            return True
        regions.rollback(mark)
    return False


def fix_over(regions: Regions, r: int) -> bool:
    """Bring a region above the maximum down: shed, split, pass along a chain, merge and split."""
    before = regions.total_violation()
    regions.shed(r)
    if regions.rw[r] > regions.hi:
        split(regions, r)
    if regions.rw[r] > regions.hi and regions.total_violation() >= before:
        # push the excess along a chain to a region with room
        for path in regions.region_paths(r, lambda s: regions.rw[s] < regions.hi):
            mark = len(regions.log)
            amount = regions.rw[r] - regions.hi
            for q, s in zip(path, path[1:]):
                if regions.shed(q, towards=s, amount=amount, respect_room=False) == 0:
                    break
                amount = regions.rw[s] - regions.hi
                if amount <= 0:
                    break
            if regions.total_violation() < before:
                break
            regions.rollback(mark)
    if regions.rw[r] > regions.hi and regions.total_violation() >= before:
        merge_and_split(regions, r, before)
    return regions.total_violation() < before


def fix_under(regions: Regions, r: int) -> bool:
    """Bring a region below the minimum up: gain or dissolve, pull along a chain, merge and split."""
    before = regions.total_violation()
    mark = len(regions.log)
    deficit = regions.lo - regions.rw[r]
    order = (regions.gain, regions.dissolve) if deficit < regions.rw[r] else (regions.dissolve, regions.gain)
    for step in order:
        if regions.violation(r) == 0 or not regions.members[r]:
            break
        step(r)
    if regions.members[r] and regions.violation(r) > 0:
        # pull from a region with households to spare, along a chain
        for path in regions.region_paths(r, lambda s: regions.rw[s] > regions.lo):
            inner = len(regions.log)
            amount = regions.lo - regions.rw[r]
            chain = path[::-1]
            for q, s in zip(chain, chain[1:]):
                if regions.shed(q, towards=s, amount=amount, respect_room=False) == 0:
                    break
            if regions.total_violation() < before:
                break
            regions.rollback(inner)
    if regions.members[r] and regions.violation(r) > 0 and regions.total_violation() >= before:
        regions.rollback(mark)
        merge_and_split(regions, r, before)
    if regions.total_violation() >= before:
        regions.rollback(mark)
        return False
    return True


def repair(regions: Regions) -> None:
    """Fix the region furthest outside the bounds first, until none can be fixed."""
    stuck: set[int] = set()
    for _ in range(20 * regions.n + 100):
        if regions.out_of_time():
            return
        worst = None
        for r in range(len(regions.rw)):
            v = regions.violation(r)
            if v and r not in stuck and (worst is None or v > worst[0]):
                worst = (v, r)
        if worst is None:
            return
        r = worst[1]
        ok = fix_over(regions, r) if regions.rw[r] > regions.hi else fix_under(regions, r)
        if ok:
            stuck.clear()
        else:
            stuck.add(r)


def _away_from_home(regions: Regions, region_of_home: dict[int, int]) -> Iterator[tuple[int, int]]:
    """(atom, its old community's region) for each free atom away from, and touching, that region.

    Stops when the time is up; read lazily, so each atom is judged on the plan as it is then.
    """
    for a in range(regions.n):
        if regions.out_of_time():
            return
        home = region_of_home.get(regions.origin[a])
        here = regions.label[a]
        if home is None or home == here or regions.locked_atom[a] or regions.rlocked[home] or regions.rlocked[here]:
            continue
        if any(regions.label[b] == home for b in regions.nbrs[a]):
            yield a, home


def _home_regions(regions: Regions) -> dict[int, int]:
    return {h: r for r, h in enumerate(regions.home) if h != NO_HOME and regions.members[r]}


def send_home(regions: Regions, *, compact_first: bool = False) -> None:
    """Return moved atoms to their old community's region where bounds allow.

    In atom order, or with ``compact_first`` the returns that make both shapes
    most compact first (the bounds then decide which of the others still fit).
    """
    region_of_home = _home_regions(regions)
    for _ in range(10):
        changed = False
        candidates: Iterable[tuple[int, int]] = _away_from_home(regions, region_of_home)
        if compact_first:
            candidates = sorted(candidates, key=lambda pair: -regions.compact_delta(*pair))
        for a, s in candidates:
            r = regions.label[a]
            if r == s or not any(regions.label[b] == s for b in regions.nbrs[a]):
                continue  # an earlier return changed the plan around a
            wa = regions.w[a]
            v_before = regions.violation(r) + regions.violation(s)
            if regions.rw[s] + wa > regions.hi and regions.rw[s] <= regions.hi:
                continue
            if regions.rw[r] - wa < regions.lo and regions.rw[r] >= regions.lo:
                continue
            if not (regions.keeps_hard(r, -wa) and regions.keeps_hard(s, wa)) or regions.soft_delta(a, s) > 0:
                continue
            if not regions.can_leave(a):
                continue
            regions.move(a, s)
            if regions.violation(r) + regions.violation(s) > v_before:
                regions.move(a, r)
                continue
            changed = True
        if not changed or regions.timed_out:
            return


def polish(regions: Regions, rounds: int = 3) -> None:
    """Boundary moves that make shapes more compact without moving more households."""
    for _ in range(rounds):
        changed = False
        for a in range(regions.n):
            if regions.out_of_time():
                return
            r = regions.label[a]
            if regions.locked_atom[a]:
                continue
            wa = regions.w[a]
            if regions.rw[r] - wa < regions.lo:
                continue
            for s in {regions.label[b] for b in regions.nbrs[a]} - {r}:
                if regions.rlocked[s] or regions.rw[s] + wa > regions.hi:
                    continue
                if regions.moved_delta(a, s) > 0 or regions.soft_delta(a, s) > 0:
                    continue
                if regions.compact_delta(a, s) > 1e-4 and regions.can_leave(a):
                    regions.move(a, s)
                    changed = True
                    break
        if not changed:
            return


def exchange_polish(regions: Regions, rounds: int = 3, chains: bool = True) -> None:
    """Exchange small groups of atoms across borders when that raises the regions' Polsby-Popper sum and
    moves no more households.

    An atom ``a`` away from its old community starts each exchange: it, alone or with one neighbour in
    its region r, joins a neighbouring region t, and one, two or three connected atoms of t, one of them
    on the r-t border, join r. The exchange's change in households moved must be zero or less; the two
    sides' households need not match (three atoms of 20, 20 and 10 may go back for one of 50), which is
    what frees plans whose communities sit at the bounds with households moved at the lower bound, where
    one-for-one swaps rarely balance.

    With ``chains``, where t is a's old community (a goes home, so the exchange saves a's households and
    can pay for more), a may also take two neighbours along, and the atoms that make up for it may come
    from a third region: a group of a region u bordering r joins r (r, grown to the minimum from t,
    takes its households from u instead), or a group of t joins a region v bordering t (t, at the
    maximum, passes its households on to v). Two regions of equal households would rarely be found
    otherwise where both of a's neighbours are held by the bounds. These read at most
    :data:`CHAIN_ROWS_PER_ATOM` groups per atom of the 街道, then only exchanges of two regions go on.

    Every region involved ends within the working band (an exchange of two regions, one outside it now:
    only with unchanged households; a chain: only among regions inside it), no further from the preferred
    band, and contiguous. The exchange gaining most per (a, t) is taken; an (a, t) that found none is
    tried again only after r or t has changed (or, for a chain, a region bordering them).
    """
    s = regions
    cache: dict[tuple[int, int], _Groups] = {}  # (x, y): groups of y that may join x
    around: dict[int, list[int]] = {}  # region -> the free, non-empty regions bordering it
    version = [0] * len(s.rw)  # bumped when an exchange changes a region
    edges = _EdgeSums(s)
    tried: dict[tuple[int, int], tuple[int, ...]] = {}  # (atom, region) -> versions it found nothing at
    left = [CHAIN_ROWS_PER_ATOM * s.n]  # groups of third regions still to read

    def groups_of(x: int, y: int) -> _Groups:
        if (x, y) not in cache:
            cache[(x, y)] = _border_groups(s, x, y, edges)
        return cache[(x, y)]

    def bordering(q: int) -> list[int]:
        if q not in around:
            around[q] = [p for p in s.neighbour_regions(q) if not s.rlocked[p] and s.members[p]]
        return around[q]

    for _ in range(rounds):
        changed = False
        for a in range(s.n):
            if s.out_of_time():
                return
            r = s.label[a]
            if s.locked_atom[a] or s.rlocked[r] or s.home[r] == s.origin[a]:
                continue  # only away atoms start an exchange: an exchange of atoms at home moves both
            for t in {s.label[c] for c in s.nbrs[a]} - {r}:
                if s.rlocked[t]:
                    continue
                stamp: tuple[int, ...] = (r, version[r], version[t])
                chain = chains and left[0] > 0
                if chain and s.home[t] == s.origin[a]:  # the exchanges with a third region (see _best_exchange)
                    stamp += (sum(version[q] for q in bordering(r)) + sum(version[q] for q in bordering(t)),)
                if tried.get((a, t)) == stamp:
                    continue
                best = _best_exchange(s, a, r, t, groups_of, bordering if chain else None, edges, left)
                mark = len(s.log)
                if best is not None and _apply_exchange(s, best[1]):
                    touched = {q for _, source, target in best[1] for q in (source, target)}
                    for key in [key for key in cache if key[0] in touched or key[1] in touched]:
                        del cache[key]
                    for q in touched | {s.label[y] for group, _, _ in best[1] for x in group for y in s.nbrs[x]}:
                        around.pop(q, None)  # a region touching a moved atom may have gained or lost a neighbour
                    for q in touched:
                        version[q] += 1
                    changed = True
                    break
                s.rollback(mark)
                tried[(a, t)] = stamp
        if not changed:
            return


def _border_groups(s: Regions, r: int, t: int, edge_sums: _EdgeSums) -> _Groups:
    """The groups t may give r in an exchange: one atom of t on their border, or a connected two or
    three with one on it, each with (households, change in households moved, area, perimeter, edge
    shared with r, with t, inside the group, atoms)."""
    label, nbrs, nlen, locked = s.label, s.nbrs, s.nlen, s.locked_atom
    if len(s.members[r]) <= len(s.members[t]):
        border = {c for x in s.members[r] for c in nbrs[x] if label[c] == t and not locked[c]}
    else:
        border = {c for c in s.members[t] if not locked[c] and any(label[d] == r for d in nbrs[c])}
    inner: dict[int, list[int]] = {}  # free neighbours in t of the atoms in play

    def inside_t(x: int) -> list[int]:
        if x not in inner:
            inner[x] = [d for d in dict.fromkeys(nbrs[x]) if label[d] == t and not locked[d]]
        return inner[x]

    groups: set[tuple[int, ...]] = {(b,) for b in border}
    pairs = {tuple(sorted((b, c))) for b in border for c in inside_t(b)}
    groups |= pairs
    groups |= {tuple(sorted((*p, d))) for p in pairs for x in p for d in inside_t(x) if d not in p}
    atoms = {x for g in groups for x in g}
    one = {}
    for x in atoms:
        to_r = to_t = 0.0
        for b, length in zip(nbrs[x], nlen[x]):
            if label[b] == r:
                to_r += length
            elif label[b] == t:
                to_t += length
        one[x] = (s.w[x], s.moved_delta(x, r), s.area[x], s.perim[x], to_r, to_t)
    edges = edge_sums
    rows = []
    for g in groups:
        if len(g) == 1:
            rows.append((*one[g[0]], 0.0, g))
            continue
        sums = map(add, one[g[0]], one[g[1]])
        inside = edges[g[0]].get(g[1], 0.0)
        if len(g) == 3:
            sums = map(add, sums, one[g[2]])
            inside += edges[g[0]].get(g[2], 0.0) + edges[g[1]].get(g[2], 0.0)
        rows.append((*sums, inside, g))
    return _Groups(rows)


class _Groups:
    """The rows of :func:`_border_groups` in two lists sorted by households: the groups whose every
    household would be moved (change in households moved = households: atoms at home in their region,
    the most common) and the others, so that a search for a group of at most so many households moved
    reads only the first list's rows light enough."""

    def __init__(self, rows: list[tuple]):
        rows.sort(key=lambda row: (row[0], row[-1]))
        self.home = [row for row in rows if row[1] == row[0]]
        self.other = [row for row in rows if row[1] != row[0]]
        self.home_weights = [row[0] for row in self.home]
        self.other_weights = [row[0] for row in self.other]

    def within(self, low: int, high: int, most_moved: int) -> Iterator[tuple]:
        """The groups of ``low`` to ``high`` households that move at most ``most_moved`` households."""
        top = min(high, most_moved)
        if top >= low:
            yield from self.home[bisect.bisect_left(self.home_weights, low):
                                 bisect.bisect_right(self.home_weights, top)]
        yield from self.other[bisect.bisect_left(self.other_weights, low):
                              bisect.bisect_right(self.other_weights, high)]


def _best_exchange(s: Regions, a: int, r: int, t: int, groups_of: Callable[[int, int], _Groups],
                   bordering: Callable[[int], list[int]] | None, edge_sums: _EdgeSums,
                   left: list[int]) -> tuple[float, list] | None:
    """The exchange of :func:`exchange_polish` started by ``a`` (in r, joining t) that gains most
    Polsby-Popper: (gain, [(atoms, from, to), ...] in the order to move them), or None when none gains.
    Third regions and three atoms leaving r only with ``bordering`` (region -> the free regions bordering
    it); each group read for them is taken off ``left[0]``."""
    label, w, nbrs, locked, pp, soft = s.label, s.w, s.nbrs, s.locked_atom, s.pp, s.soft_distance
    lo, hi, rw_r, rw_t, has_soft = s.lo, s.hi, s.rw[r], s.rw[t], s.soft is not None
    ra_r, rp_r, ra_t, rp_t = s.ra[r], s.rp[r], s.ra[t], s.rp[t]
    pp_r, pp_t = pp(ra_r, rp_r), pp(ra_t, rp_t)
    inside = lo <= rw_r <= hi and lo <= rw_t <= hi
    # a going back to its old community saves its households, which can pay for more: groups of three
    # atoms leaving r, and groups of a third region making up for it
    home = bordering is not None and s.home[t] == s.origin[a]
    partners = [c for c in dict.fromkeys(nbrs[a]) if label[c] == r and not locked[c]]
    starts: list[tuple[int, ...]] = [(a,)] + [(a, c) for c in partners]
    if home:
        starts += dict.fromkeys((a, *sorted((c, d))) for c in partners for d in dict.fromkeys(nbrs[c] + nbrs[a])
                                if d != a and d != c and label[d] == r and not locked[d])
    thirds_in: list = []
    thirds_out: list = []
    if home and inside and bordering is not None:
        # (region, households, area, perimeter, Polsby-Popper) of the third regions within the bounds; their
        # groups are built only where some could fit
        thirds_in = [(u, s.rw[u], s.ra[u], s.rp[u], pp(s.ra[u], s.rp[u])) for u in bordering(r)
                     if u != t and lo <= s.rw[u] <= hi]
        thirds_out = [(v, s.rw[v], s.ra[v], s.rp[v], pp(s.ra[v], s.rp[v])) for v in bordering(t)
                      if v != r and lo <= s.rw[v] <= hi]
    groups = groups_of(r, t)
    best = None
    for ga in starts:
        if len(ga) == 1:
            edges, e_aa = edge_sums[a], 0.0
        else:
            edges = {}
            for x in ga:
                for y, length in edge_sums[x].items():
                    edges[y] = edges.get(y, 0.0) + length
            e_aa = sum(edges.get(x, 0.0) for x in ga) / 2  # each edge inside ga seen from both ends
        touching = edges.keys()
        sa_r = sa_t = 0.0
        for y, length in edges.items():
            if label[y] == r:
                sa_r += length
            elif label[y] == t:
                sa_t += length
        wa = sum(w[x] for x in ga)
        ma = sum(s.moved_delta(x, t) for x in ga)
        area_a, perim_a = sum(s.area[x] for x in ga), sum(s.perim[x] for x in ga)
        # 1. a group of t joins r. Both regions within the bounds afterwards: the window of households
        # t's group may hold
        low = max(lo - rw_r + wa, rw_t + wa - hi)
        high = min(hi - rw_r + wa, rw_t + wa - lo)
        if not inside:
            low, high = wa, wa  # a region outside the bounds now: only exchanges of equal weight
        triple = len(ga) == 3
        for wb, mb, area_b, perim_b, sb_r, sb_t, e_bb, gb in groups.within(low, high, -ma):
            if triple:
                left[0] -= 1
            if ma + mb > 0:
                continue
            if has_soft and soft(rw_r - wa + wb) + soft(rw_t + wa - wb) > soft(rw_r) + soft(rw_t):
                continue
            e_ab = 0.0 if touching.isdisjoint(gb) else sum(edges.get(y, 0.0) for y in gb)
            # r loses ga's edges inside it and gains gb's edges with what is left of r; t the other way
            rp = rp_r - perim_a + perim_b + 2 * (sa_r - e_aa) - 2 * (sb_r - e_ab + e_bb)
            tp = rp_t - perim_b + perim_a + 2 * (sb_t - e_bb) - 2 * (sa_t - e_ab + e_aa)
            gain = pp(ra_r - area_a + area_b, rp) + pp(ra_t + area_a - area_b, tp) - pp_r - pp_t
            if gain > 1e-4 and (best is None or gain > best[0]):
                best = (gain, [(ga, r, t), (gb, t, r)])
        if not (thirds_in or thirds_out):
            continue
        # r without ga, t with it
        r_area, r_perim = ra_r - area_a, rp_r - perim_a + 2 * (sa_r - e_aa)
        t_area, t_perim = ra_t + area_a, rp_t + perim_a - 2 * (sa_t + e_aa)
        if rw_t + wa <= hi:
            # 2. a group of a third region u bordering r makes up r's households
            gain_t = pp(t_area, t_perim) - pp_t
            for u, rw_u, ra_u, rp_u, pp_u in thirds_in:
                low, high = max(lo - rw_r + wa, rw_u - hi), min(hi - rw_r + wa, rw_u - lo)
                if low > high:
                    continue
                for wb, mb, area_b, perim_b, sb_r, sb_u, e_bb, gb in groups_of(r, u).within(low, high, -ma):
                    left[0] -= 1
                    if ma + mb > 0:
                        continue
                    if has_soft and (soft(rw_r - wa + wb) + soft(rw_t + wa) + soft(rw_u - wb)
                                               > soft(rw_r) + soft(rw_t) + soft(rw_u)):
                        continue
                    e_ab = 0.0 if touching.isdisjoint(gb) else sum(edges.get(y, 0.0) for y in gb)
                    gain = (gain_t + pp(r_area + area_b, r_perim + perim_b - 2 * (sb_r - e_ab + e_bb)) - pp_r
                            + pp(ra_u - area_b, rp_u - perim_b + 2 * (sb_u - e_bb)) - pp_u)
                    if gain > 1e-4 and (best is None or gain > best[0]):
                        best = (gain, [(ga, r, t), (gb, u, r)])
        if rw_r - wa >= lo:
            # 3. t passes households on to a third region v bordering it
            gain_r = pp(r_area, r_perim) - pp_r
            for v, rw_v, ra_v, rp_v, pp_v in thirds_out:
                low, high = max(rw_t + wa - hi, lo - rw_v), min(rw_t + wa - lo, hi - rw_v)
                if low > high:
                    continue
                for wc, mc, area_c, perim_c, sc_v, sc_t, e_cc, gc in groups_of(v, t).within(low, high, -ma):
                    left[0] -= 1
                    if ma + mc > 0:
                        continue
                    if has_soft and (soft(rw_r - wa) + soft(rw_t + wa - wc) + soft(rw_v + wc)
                                               > soft(rw_r) + soft(rw_t) + soft(rw_v)):
                        continue
                    e_ac = 0.0 if touching.isdisjoint(gc) else sum(edges.get(y, 0.0) for y in gc)
                    # t with ga loses gc's edges inside it, ga's edges with gc among them
                    gain = (gain_r + pp(t_area - area_c, t_perim - perim_c + 2 * (sc_t - e_cc + e_ac)) - pp_t
                            + pp(ra_v + area_c, rp_v + perim_c - 2 * (sc_v + e_cc)) - pp_v)
                    if gain > 1e-4 and (best is None or gain > best[0]):
                        best = (gain, [(ga, r, t), (gc, t, v)])
    return best


class _EdgeSums(dict):
    """Atom -> {neighbour: total length of the edges shared with it}, built when first asked for."""

    def __init__(self, regions: Regions):
        super().__init__()
        self.regions = regions

    def __missing__(self, a: int) -> dict[int, float]:
        out: dict[int, float] = {}
        for b, length in zip(self.regions.nbrs[a], self.regions.nlen[a]):
            out[b] = out.get(b, 0.0) + length
        self[a] = out
        return out


def _apply_exchange(s: Regions, moves: list[tuple[Sequence[int], int, int]]) -> bool:
    """Make the moves of an exchange, (atoms, from, to) in order, each atom only while both its regions stay
    connected; False when one cannot (the caller rolls back)."""
    for atoms, source, target in moves:
        left = list(atoms)
        while left:
            # the next atom to cross: one that touches the target now and can leave its region
            step = next((y for y in left if s.label[y] == source and any(s.label[c] == target for c in s.nbrs[y])
                         and s.can_leave(y)), None)
            if step is None:
                return False
            s.move(step, target)
            left.remove(step)
    return True


def prefer(regions: Regions, weight: float) -> None:
    """Boundary moves towards the preferred band, each household outside it worth ``weight``
    households moved (:func:`jngis.regions.soft_descent`)."""
    soft_descent(regions, weight, moved=True)


def search(regions: Regions, problem: StreetProblem) -> None:
    """The phases on one engine state: repair on each band, then send home, prefer and polish, then
    exchanges (:func:`exchange_polish`) and polish again.

    The polish runs twice from the repaired plan, returning atoms home in atom
    order and most compact first; the plan moving fewer households is kept,
    then the more compact one (so compactness never costs households moved).
    The exchanges, which never move more households either, run once, on that plan.
    """
    for band in problem.repair_bands():
        regions.set_band(*band)
        repair(regions)
    regions.set_band(*(problem.band or problem.hard))
    mark = len(regions.log)
    finished = []
    for compact_first in (False, True):
        regions.rollback(mark)
        send_home(regions, compact_first=compact_first)
        prefer(regions, problem.preferred_weight)
        polish(regions)
        finished.append((_score(regions, problem.preferred_weight), list(regions.label)))
        if regions.timed_out:
            break
    best = min(finished, key=lambda pair: pair[0])[1]
    for a, r in enumerate(best):
        if regions.label[a] != r:
            regions.move(a, r)
    if EXCHANGES:
        exchange_polish(regions, chains=CHAINS)
        polish(regions)


def _score(regions: Regions, weight: float) -> tuple[float, float]:
    """(households moved plus the preferred band's cost, minus the Polsby-Popper sum): lower is better."""
    moved = sum(regions.w[a] for a in range(regions.n) if regions.home[regions.label[a]] != regions.origin[a])
    soft = sum(regions.soft_violation(r) for r in range(len(regions.rw)))
    shape = sum(regions.pp(regions.ra[r], regions.rp[r]) for r in range(len(regions.rw)) if regions.members[r])
    return moved + weight * soft, -shape


def solve(problem: StreetProblem) -> StreetResult:
    """Balance one 街道; returns the final region label of every atom and the notes."""
    regions = problem.regions()
    notes = list(problem.notes)
    if regions.n and not regions.out_of_time():
        search(regions, problem)
        if (problem.band or problem.preferred) and regions.hard_violation() and not regions.timed_out:
            # the tighter bands must never cost the hard bounds: keep the plain plan where it does better
            plain = problem.plain().regions()
            search(plain, problem.plain())
            if plain.hard_violation() < regions.hard_violation():
                notes.append("headroom / preferred band dropped: they left more households outside the bounds "
                             "than the plain search")
                regions = plain
    regions.set_band(*problem.hard)
    notes += gave_up(regions, problem.codes)
    # the bound is computed here, not in the parent, so the 街道's programmes run in the worker processes too
    bound = (None if problem.bound_totals is None else
             lower_bound(problem.bound_totals, *problem.hard, time_limit=2.0))
    return StreetResult(problem.street, np.asarray(regions.label, dtype=np.int64), notes,
                        regions.timed_out, bound)


def gave_up(regions: Regions, codes: Sequence[str] = ()) -> list[str]:
    """What the search had to give up: one note per region it left outside the bounds."""
    notes = []
    for r in range(len(regions.rw)):
        excess = regions.violation(r)
        if not excess:
            continue
        name = _region_name(regions, r, codes)
        side = "above the maximum" if regions.rw[r] > regions.hi else "below the minimum"
        if regions.timed_out:
            why = "when the time limit was reached"
        elif regions.rw[r] > regions.hi:
            why = "no contiguous shed, split or chain of neighbours could take the excess"
        else:
            why = ("no neighbour could give it households or take it whole without leaving "
                   "the bounds or breaking contiguity")
        notes.append(f"{name}: {regions.rw[r]:,} households, {excess:,} {side}, {why}")
    return notes


def _region_name(regions: Regions, r: int, codes: Sequence[str]) -> str:
    def code(index: int) -> str:
        return codes[index] if 0 <= index < len(codes) else f"#{index}"

    if regions.home[r] != NO_HOME:
        return f"community {code(regions.home[r])}"
    origins = [regions.origin[a] for a in regions.members[r]]
    return f"a part of {code(max(set(origins), key=origins.count))}"


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
    from scipy.optimize import milp

    h = np.asarray(households, dtype=float)
    total = float(h.sum())
    if len(h) == 0 or total == 0:
        return 0
    cost, constraints, integrality, bounds = _lower_bound_programme(h, float(min_households),
                                                                    float(max_households))
    result = milp(cost, constraints=constraints, integrality=integrality, bounds=bounds,
                  options={"time_limit": time_limit, "disp": False})
    if result.status == 0:
        return int(math.ceil(total + result.fun - 1e-6))
    bound = getattr(result, "mip_dual_bound", None)
    if result.status == 1 and bound is not None and np.isfinite(bound):
        return max(0, int(math.ceil(total + bound - 1e-6)))
    return None


def _lower_bound_programme(h: np.ndarray, lo: float, hi: float):
    """The MIP of :func:`lower_bound`: cost, constraints, integrality and bounds for ``scipy.optimize.milp``."""
    from scipy.optimize import Bounds, LinearConstraint

    k = len(h)
    total = float(h.sum())
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
    return c, LinearConstraint(np.array(rows), lower, upper), integrality, Bounds(np.zeros(nv), ub)
