"""The exact fewest households moved in one 街道, where HiGHS can prove it: :func:`exact_moved`.

The programme is the search's own problem on atoms (units, or gated compounds
kept whole), with every hard rule: each atom in one community, each used
community within the bounds, contiguous over the same atom graph (shared
edges and island links), fixed communities untouched. The old communities
keep their codes; new ones keep nothing, and there are at most
``heuristic moved // min_households`` of them (each new community's
households are all moved, so a plan with more cannot beat the heuristic).
Households kept = households of each atom's units whose community the atom
stays in; moved = the 街道's households − kept, the measure of
:func:`~jngis.rebalance.rebalance` (codes matched one-to-one).

Contiguity is added lazily: the programme is solved without it; when its
optimum is contiguous it is the optimum of the real problem (the relaxation
can only be lower). Otherwise each detached piece C of a community r gets a
vertex-separator cut ``x[a, r] + x[b, r] - 1 <= sum of x[c, r] over the
neighbours c of C`` (a in C, b in the community's largest piece; the cuts of
the contiguity polytope of Oehrlein & Haunert 2017, "A cutting-plane method
for contiguity-constrained spatial aggregation", J. Spatial Information
Science 15) and the programme is solved again, until its optimum is
contiguous, reaches the heuristic's households moved (whose plan is
contiguous, so it is then proven optimal) or ``time_limit`` is reached; then
the last optimum is still a proven lower bound.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from jngis import _checks
from jngis.codes import COMMUNITY_HOUSEHOLDS
from jngis.errors import NotFoundError
from jngis.rebalance.options import RebalanceOptions, check_units, fixed_codes
from jngis.rebalance.plan import RebalancePlan
from jngis.rebalance.prepare import atoms, read_units, starting_regions, street_problems, unit_graph
from jngis.rebalance.redraw import rebalance
from jngis.regions import contiguous

__all__ = ["ExactMoved", "exact_moved"]

FUNC = "exact_moved"


@dataclass
class ExactMoved:
    """The exact optimum of households moved in one 街道 beside the heuristic's.

    ``status`` is ``"optimal"`` (``optimum`` proven), ``"time limit"``
    (``bound`` is the best lower bound proven by then), ``"infeasible"`` (no
    plan puts every community within bounds) or ``"heavy unit"`` (a unit
    alone exceeds the maximum; the programme is not run). ``cut_rounds``:
    how often contiguity cuts were added (0: the relaxation's optimum was
    contiguous).
    """

    street_code: str
    heuristic: int
    optimum: int | None
    bound: int | None
    status: str
    seconds: float
    atoms: int
    cut_rounds: int

    @property
    def gap(self) -> float | None:
        """The heuristic's excess over the optimum (0.05: 5 % more households moved), None if not proven."""
        if self.optimum is None:
            return None
        return self.heuristic / self.optimum - 1 if self.optimum else (0.0 if self.heuristic == 0 else np.inf)


def exact_moved(units: gpd.GeoDataFrame, street_code: str, *, time_limit: float = 5.0,
                plan: RebalancePlan | None = None, min_households: int = COMMUNITY_HOUSEHOLDS[0],
                max_households: int = COMMUNITY_HOUSEHOLDS[1], community: str = "community_code",
                street: str = "street_code", households: str = "households",
                keep_together: str | None = "compound_id", fixed=(), unit_id: str = "unit_id",
                seed: int = 0) -> ExactMoved:
    """The fewest households any plan of one 街道 can move, proven by HiGHS within ``time_limit``.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        The units layer, as for :func:`~jngis.rebalance.rebalance`.
    street_code : str
        The 街道 to solve exactly.
    time_limit : float
        Seconds for HiGHS (default 5).
    plan : RebalancePlan, optional
        A plan of these units (e.g. the whole city's): its households moved in
        this 街道 are the heuristic's figure. Default: :func:`rebalance` of the
        街道 alone.
    min_households, max_households, community, street, households, keep_together, fixed, unit_id, seed
        As for :func:`~jngis.rebalance.rebalance`.

    Returns
    -------
    ExactMoved

    Raises
    ------
    NotFoundError
        No unit has ``street_code``.
    ParameterError, InputTypeError, SchemaError, GeometryError, CRSError
        As :func:`~jngis.rebalance.rebalance`; ``time_limit`` not positive.

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> result = exact_moved(load_slice().units, "370102003", time_limit=2)
    >>> result.status in ("optimal", "time limit")
    True
    >>> result.bound is None or result.bound <= result.heuristic  # no bound yet if HiGHS ran out of time
    True
    """
    _checks.number(FUNC, "time_limit", time_limit, minimum=0.0, exclusive_minimum=True)
    options = RebalanceOptions(min_households=min_households, max_households=max_households, community=community,
                               street=street, households=households, keep_together=keep_together,
                               fixed=fixed_codes(fixed), unit_id=unit_id, seed=seed, workers=1)
    check_units(units, options)
    inside = units[street].astype(str).to_numpy() == str(street_code)
    if not inside.any():
        raise NotFoundError(f"{FUNC}: street_code={street_code!r}; expected the 街道 code of some unit")
    subset = units[inside]
    if plan is None:
        plan = rebalance(subset, min_households=min_households, max_households=max_households,
                         community=community, street=street, households=households, keep_together=keep_together,
                         fixed=fixed, unit_id=unit_id, seed=seed, workers=1)
    moves = plan.moves
    heuristic = int(moves.loc[moves["street_code"].astype(str) == str(street_code), "households"].sum())
    return _solve_exact(subset, options, str(street_code), heuristic, time_limit)


def _solve_exact(subset: gpd.GeoDataFrame, options: RebalanceOptions, name: str, heuristic: int,
                 time_limit: float) -> ExactMoved:
    started = time.perf_counter()
    table = read_units(subset, options)
    graph = unit_graph(table)
    atom_table = atoms(table, graph, options.max_households)
    problem = street_problems(table, graph, atom_table, starting_regions(atom_table), options, np.inf).problems[0]
    n = len(problem.weight)
    if problem.bound_totals is None:
        return ExactMoved(name, heuristic, None, None, "heavy unit", time.perf_counter() - started, n, 0)
    # kept[a, c]: households of atom a's units in old community c (a compound's minority part keeps nothing)
    code_index = {code: i for i, code in enumerate(problem.codes)}
    unit_code = np.array([code_index.get(str(c), -1) for c in table.community], dtype=np.int64)
    ok = unit_code >= 0
    kept = np.zeros((n, len(problem.codes)))
    np.add.at(kept, (atom_table.of_unit[ok], unit_code[ok]), table.households[ok])
    total = int(table.households.sum())
    model = _Model(problem, kept, heuristic // max(1, options.min_households))
    deadline = started + time_limit
    rounds = 0
    while True:
        result = model.solve(deadline)
        if result.status != 0 or model.moved(result.x, total) >= heuristic:
            break  # a bound the heuristic's (contiguous) plan meets proves that plan optimal
        if not model.cut(result.x) or time.perf_counter() >= deadline:
            break
        rounds += 1
    seconds = time.perf_counter() - started
    if result.status == 2:
        return ExactMoved(name, heuristic, None, None, "infeasible", seconds, n, rounds)
    value = None if result.x is None else model.moved(result.x, total)
    if result.status == 0 and model.connected(result.x):
        return ExactMoved(name, heuristic, value, value, "optimal", seconds, n, rounds)
    bound = value if result.status == 0 else getattr(result, "mip_dual_bound", None)
    if result.status != 0:
        bound = None if bound is None or not np.isfinite(bound) else max(0, int(np.ceil(total + bound - 1e-6)))
    if bound is not None and bound >= heuristic:
        return ExactMoved(name, heuristic, heuristic, heuristic, "optimal", seconds, n, rounds)
    return ExactMoved(name, heuristic, None, bound, "time limit", seconds, n, rounds)


class _Model:
    """The assignment programme of one 街道 (x[a, r], y[r]), with contiguity cuts added on demand."""

    def __init__(self, problem, kept: np.ndarray, new_slots: int) -> None:
        self.n, self.k = kept.shape
        self.regions = self.k + new_slots
        self.weight = problem.weight.astype(float)
        self.kept = kept
        self.lo, self.hi = problem.hard
        graph = problem.graph
        source = np.repeat(np.arange(self.n), np.diff(graph.indptr))
        self.arc_from, self.arc_to = source, graph.indices  # both directions of every edge
        self.locked, self.origin = problem.locked, problem.origin
        self.cuts: list[tuple[np.ndarray, np.ndarray]] = []  # (x columns, coefficients) of each cut, <= 1

    def x(self, a, r):
        return np.asarray(r) * self.n + np.asarray(a)

    def solve(self, deadline: float):
        from scipy.optimize import Bounds, LinearConstraint, milp

        n, regions = self.n, self.regions
        nx = n * regions
        y0 = nx
        nv = y0 + regions
        rows: list[sparse.coo_matrix] = []
        lower: list[np.ndarray] = []
        upper: list[np.ndarray] = []

        def add(row, col, val, lb, ub, count):
            rows.append(sparse.coo_matrix((val, (row, col)), shape=(count, nv)))
            lower.append(np.broadcast_to(np.asarray(lb, dtype=float), (count,)))
            upper.append(np.broadcast_to(np.asarray(ub, dtype=float), (count,)))

        a_grid, r_grid = np.meshgrid(np.arange(n), np.arange(regions), indexing="ij")
        a_all, r_all = a_grid.ravel(), r_grid.ravel()
        add(a_all, self.x(a_all, r_all), np.ones(nx), 1, 1, n)  # one region per atom
        bounded = np.array([not (r < self.k and self.locked[self.origin == r].any()) for r in range(regions)])
        low = np.where(bounded, self.lo, 0.0)  # lo y <= size <= hi y (a fixed community: any size)
        high = np.where(bounded, self.hi, self.weight.sum())
        for sign, bound in ((1.0, low), (-1.0, high)):
            add(np.r_[r_all, np.arange(regions)], np.r_[self.x(a_all, r_all), y0 + np.arange(regions)],
                np.r_[sign * self.weight[a_all], -sign * bound], 0, np.inf, regions)
        add(np.r_[r_all, np.arange(regions)], np.r_[self.x(a_all, r_all), y0 + np.arange(regions)],
            np.r_[np.ones(nx), -n * np.ones(regions)], -np.inf, 0, regions)  # atoms only in used regions
        new = np.arange(self.k, regions - 1)  # new regions used in order (symmetry)
        add(np.r_[np.arange(len(new)), np.arange(len(new))], np.r_[y0 + new, y0 + new + 1],
            np.r_[np.ones(len(new)), -np.ones(len(new))], 0, np.inf, len(new))
        if self.cuts:
            add(np.concatenate([np.full(len(c), i) for i, (c, _) in enumerate(self.cuts)]),
                np.concatenate([c for c, _ in self.cuts]), np.concatenate([v for _, v in self.cuts]),
                -np.inf, 1, len(self.cuts))
        cost = np.zeros(nv)
        cost[: self.n * self.k] = -self.kept.T.ravel()  # x is region-major: r * n + a
        # ties (households-free atoms, equal plans) go to atoms staying in their old community: fewer
        # scattered optima for the cuts to chase; 0.5 / n in all, so households moved decide first
        home = self.origin < self.k
        cost[self.x(np.flatnonzero(home), self.origin[home])] -= 0.5 / max(1, n)
        ub = np.ones(nv)
        lb = np.zeros(nv)
        locked = np.flatnonzero(self.locked)
        lb[self.x(locked, self.origin[locked])] = 1
        for r in range(self.k):  # nothing joins a fixed community
            if not bounded[r]:
                ub[self.x(np.flatnonzero(~self.locked), r)] = 0
        integrality = np.ones(nv)
        return milp(cost, constraints=LinearConstraint(sparse.vstack(rows).tocsr(), np.concatenate(lower),
                                                       np.concatenate(upper)),
                    integrality=integrality, bounds=Bounds(lb, ub),
                    options={"time_limit": max(0.1, deadline - time.perf_counter()), "disp": False,
                             "mip_rel_gap": 0.25 / max(1.0, float(self.kept.sum()))})

    def moved(self, solution: np.ndarray, total: int) -> int:
        """Households moved by an assignment: the 街道's households minus those staying in their community."""
        label = self.labels(solution)
        stays = label < self.k
        return int(round(total - self.kept[np.flatnonzero(stays), label[stays]].sum()))

    def labels(self, solution: np.ndarray) -> np.ndarray:
        return solution[: self.n * self.regions].reshape(self.regions, self.n).argmax(axis=0)

    def connected(self, solution: np.ndarray) -> bool:
        """Whether every region of an assignment is connected over the atom graph."""
        return bool(contiguous(self.labels(solution), self.arc_from, self.arc_to).all())

    def cut(self, solution: np.ndarray) -> bool:
        """Add a separator cut for every detached piece of the solution's regions; False when there is none."""
        label = self.labels(solution)
        same = label[self.arc_from] == label[self.arc_to]
        graph = sparse.coo_matrix((np.ones(int(same.sum())), (self.arc_from[same], self.arc_to[same])),
                                  shape=(self.n, self.n))
        _, piece = connected_components(graph, directed=False)
        added = 0
        for r in np.unique(label):
            pieces = np.unique(piece[label == r])
            if len(pieces) < 2:
                continue
            weight = np.array([self.weight[piece == q].sum() for q in pieces])
            main = np.flatnonzero(piece == pieces[weight.argmax()])
            for q in pieces:
                if q == pieces[weight.argmax()]:
                    continue
                members = np.flatnonzero(piece == q)
                inside = np.isin(self.arc_from, members)
                border = np.setdiff1d(self.arc_to[inside], members)
                b = main[self.weight[main].argmax()]
                for a in members[np.argsort(-self.weight[members], kind="stable")[:8]]:  # a few atoms of C
                    columns = self.x(np.r_[a, b, border], np.full(len(border) + 2, r))
                    self.cuts.append((columns, np.r_[1.0, 1.0, -np.ones(len(border))]))
                    added += 1
        return added > 0

