"""The phases of :func:`jngis.rebalance.rebalance` that turn units into one search problem per 街道.

:func:`read_units` → :class:`Units`; :func:`unit_graph` → :class:`UnitGraph`;
:func:`atoms` → :class:`Atoms`; :func:`starting_regions` →
:class:`StartingRegions`; :func:`street_problems` → :class:`Streets`. Each
phase is a plain function of the phases before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from jngis.adjacency import island_links, shared_edges
from jngis.crs import to_metric
from jngis.rebalance.options import RebalanceOptions
from jngis.rebalance.search import NO_HOME, StreetProblem
from jngis.regions import Graph

__all__ = ["Units", "UnitGraph", "Atoms", "StartingRegions", "Streets", "read_units", "unit_graph", "atoms",
           "starting_regions", "street_problems", "unit_rows"]


@dataclass
class Units:
    """The units as arrays, in a metric CRS."""

    metric: gpd.GeoDataFrame
    geoms: np.ndarray
    uid: np.ndarray
    households: np.ndarray  # int64
    street: np.ndarray  # 街道 code (str)
    community: np.ndarray  # current community code (str)
    compound: np.ndarray  # gated compound id (str; "" where none)
    has_compound: np.ndarray  # bool
    fixed: np.ndarray  # bool: in a fixed community

    @property
    def n(self) -> int:
        return len(self.geoms)


@dataclass
class UnitGraph:
    """Shared edges inside each 街道 plus links (length 0) for units with no land neighbour."""

    left: np.ndarray
    right: np.ndarray
    length: np.ndarray
    islands: pd.DataFrame  # unit_id, linked_to, gap_m, street_code


@dataclass
class Atoms:
    """Units grouped into atoms (a compound that fits under the maximum moves as one piece)."""

    of_unit: np.ndarray  # atom of each unit
    first_unit: np.ndarray  # the first unit of each atom
    weight: np.ndarray  # households (int64)
    area: np.ndarray
    perimeter: np.ndarray
    x: np.ndarray
    y: np.ndarray
    street: np.ndarray
    fixed: np.ndarray
    community: np.ndarray  # the old community holding most of the atom's households
    pair_low: np.ndarray  # atom adjacency, low < high, with the shared length
    pair_high: np.ndarray
    pair_length: np.ndarray

    @property
    def n(self) -> int:
        return len(self.weight)


@dataclass
class StartingRegions:
    """Each old community's largest connected piece starts as its region; other pieces apart."""

    piece: np.ndarray  # connected piece of each atom within its old community
    main_piece: set
    fragments: int  # pieces that are not the largest of their community


@dataclass
class Streets:
    """One search problem per 街道, with its atoms (in local order) and lower bound."""

    names: np.ndarray
    members: list[np.ndarray]
    problems: list[StreetProblem]
    lower_bounds: dict[str, int | None]
    households: pd.Series


def read_units(units: gpd.GeoDataFrame, options: RebalanceOptions) -> Units:
    """The columns :func:`rebalance` reads, as arrays, in a metric CRS."""
    metric = to_metric(units)
    n = len(metric)
    community = metric[options.community].astype(str).to_numpy()
    if options.keep_together is not None and options.keep_together in metric.columns:
        compound = metric[options.keep_together]
        has_compound = compound.notna().to_numpy()
        compound = compound.astype(str).to_numpy()
    else:
        has_compound = np.zeros(n, dtype=bool)
        compound = np.full(n, "", dtype=object)
    return Units(
        metric=metric, geoms=np.asarray(metric.geometry.values, dtype=object),
        uid=metric[options.unit_id].to_numpy(),
        households=metric[options.households].to_numpy(dtype=float).astype(np.int64),
        street=metric[options.street].astype(str).to_numpy(), community=community, compound=compound,
        has_compound=has_compound,
        fixed=np.isin(community, list(options.fixed)) if options.fixed else np.zeros(n, dtype=bool))


def unit_graph(units: Units) -> UnitGraph:
    """Shared edges longer than 1 m inside each 街道; each island linked to its nearest unit there."""
    st = units.street
    left, right, length = shared_edges(units.geoms, min_length=1.0)
    inside = st[left] == st[right]
    left, right, length = left[inside], right[inside], length[inside]
    link_left, link_right, gap = island_links(units.geoms, left, right, groups=st)
    islands = pd.DataFrame({"unit_id": units.uid[link_left], "linked_to": units.uid[link_right],
                            "gap_m": np.round(gap, 1), "street_code": st[link_left]})
    return UnitGraph(np.r_[left, link_left], np.r_[right, link_right], np.r_[length, np.zeros(len(link_left))],
                     islands)


def atoms(units: Units, graph: UnitGraph, max_households: int) -> Atoms:
    """Group units into atoms and measure them; a compound above the maximum is not kept whole."""
    n, hh, g_left, g_right = units.n, units.households, graph.left, graph.right
    key = pd.Series(np.where(units.has_compound, units.street + "|" + np.where(units.fixed, units.community, "")
                             + "|" + units.compound.astype(str), ""))
    group_total = pd.Series(hh).groupby(key).transform("sum").to_numpy()
    group = np.where(units.has_compound & (group_total <= max_households), pd.factorize(key)[0], -1)
    together = (group[g_left] == group[g_right]) & (group[g_left] >= 0)
    joined = coo_matrix((np.ones(int(together.sum())), (g_left[together], g_right[together])), shape=(n, n))
    n_atoms, atom = connected_components(joined, directed=False)
    atom = atom.astype(np.int64)  # scipy labels are int32: pair keys (low * n_atoms + high) overflow past 46,340 atoms
    area_u = shapely.area(units.geoms)
    centroid = shapely.get_coordinates(shapely.centroid(units.geoms))
    area = np.bincount(atom, weights=area_u, minlength=n_atoms)
    internal = atom[g_left] == atom[g_right]
    perimeter = (np.bincount(atom, weights=shapely.length(units.geoms), minlength=n_atoms)
                 - 2 * np.bincount(atom[g_left[internal]], weights=graph.length[internal], minlength=n_atoms))
    safe_area = np.where(area > 0, area, 1.0)
    first_unit = np.full(n_atoms, n, dtype=np.int64)
    np.minimum.at(first_unit, atom, np.arange(n))
    low, high, length = _atom_pairs(atom, n_atoms, graph)
    return Atoms(
        of_unit=atom, first_unit=first_unit,
        weight=np.bincount(atom, weights=hh, minlength=n_atoms).astype(np.int64), area=area, perimeter=perimeter,
        x=np.bincount(atom, weights=centroid[:, 0] * area_u, minlength=n_atoms) / safe_area,
        y=np.bincount(atom, weights=centroid[:, 1] * area_u, minlength=n_atoms) / safe_area,
        street=units.street[first_unit], fixed=units.fixed[first_unit],
        community=_majority_community(atom, n_atoms, units), pair_low=low, pair_high=high, pair_length=length)


def _majority_community(atom: np.ndarray, n_atoms: int, units: Units) -> np.ndarray:
    # a compound split across two communities today is joined in the one holding most of it
    votes = pd.DataFrame({"atom": atom, "cm": units.community, "hh": units.households + 1e-6})
    votes = votes.groupby(["atom", "cm"], sort=False)["hh"].sum().reset_index()
    votes = votes.sort_values(["atom", "hh"], ascending=[True, False]).drop_duplicates("atom")
    community = np.empty(n_atoms, dtype=object)
    community[votes["atom"].to_numpy()] = votes["cm"].to_numpy()
    return community


def _atom_pairs(atom: np.ndarray, n_atoms: int, graph: UnitGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a_left, a_right = atom[graph.left], atom[graph.right]  # int64 labels (see atoms)
    cross = a_left != a_right
    low = np.minimum(a_left[cross], a_right[cross])
    high = np.maximum(a_left[cross], a_right[cross])
    pairs, pair_index = np.unique(low * n_atoms + high, return_inverse=True)
    length = np.bincount(pair_index, weights=graph.length[cross], minlength=len(pairs))
    return pairs // n_atoms, pairs % n_atoms, length


def starting_regions(atoms: Atoms) -> StartingRegions:
    """Each old community's largest connected piece (by households); the other pieces are fragments."""
    cm, low, high = atoms.community, atoms.pair_low, atoms.pair_high
    same = cm[low] == cm[high]
    graph = coo_matrix((np.ones(int(same.sum())), (low[same], high[same])), shape=(atoms.n, atoms.n))
    _, piece = connected_components(graph, directed=False)
    weight = pd.DataFrame({"piece": piece, "cm": cm, "w": atoms.weight.astype(float) + 1e-6})
    weight = weight.groupby(["cm", "piece"])["w"].sum().reset_index()
    main_piece = set(weight.sort_values(["cm", "w"], ascending=[True, False]).drop_duplicates("cm")["piece"].tolist())
    return StartingRegions(piece, main_piece, int(weight["piece"].nunique() - len(main_piece)))


def street_problems(units: Units, graph: UnitGraph, atoms: Atoms, start: StartingRegions,
                    options: RebalanceOptions, deadline: float) -> Streets:
    """One :class:`StreetProblem` per 街道 (atoms renumbered locally), with its lower bound and notes."""
    order = np.argsort(atoms.street, kind="stable")
    names, first = np.unique(atoms.street[order], return_index=True)
    members = np.split(order, first[1:])
    local = np.empty(atoms.n, dtype=np.int64)
    for street_atoms in members:
        local[street_atoms] = np.arange(len(street_atoms))
    edges = pd.DataFrame({"s": atoms.street[atoms.pair_low], "a": local[atoms.pair_low],
                          "b": local[atoms.pair_high], "len": atoms.pair_length})
    edges_by_street = {name: frame for name, frame in edges.groupby("s", sort=False)}
    rows_of = dict(zip(*unit_rows(units.street)))
    islands = dict(tuple(graph.islands.groupby("street_code", sort=False)))
    problems = []
    for index, (name, street_atoms) in enumerate(zip(names, members)):
        problem = _street_problem(name, street_atoms, edges_by_street.get(name), atoms, start, options, deadline,
                                  int(np.random.SeedSequence([options.seed, index]).generate_state(1)[0]))
        rows = rows_of[name]
        problem.notes.extend(_notes(street_atoms, rows, units, islands.get(name), atoms, start, options))
        problem.bound_totals = _bound_totals(street_atoms, rows, units, atoms, options)
        problems.append(problem)
    bounds: dict[str, int | None] = dict.fromkeys(names.tolist())  # filled in from the search's results
    return Streets(names, members, problems, bounds, pd.Series(units.households).groupby(units.street).sum())


def _street_problem(name: str, members: np.ndarray, frame: pd.DataFrame | None, atoms: Atoms,
                    start: StartingRegions, options: RebalanceOptions, deadline: float, seed: int) -> StreetProblem:
    k = len(members)
    codes = sorted(set(atoms.community[members]))
    code_index = {c: i for i, c in enumerate(codes)}
    origin = np.array([code_index[c] for c in atoms.community[members]], dtype=np.int64)
    region = origin.copy()
    home = list(range(len(codes)))
    fragment_region: dict[int, int] = {}
    for j, a in enumerate(members):
        if start.piece[a] not in start.main_piece:
            if start.piece[a] not in fragment_region:
                fragment_region[start.piece[a]] = len(home)
                home.append(NO_HOME)
            region[j] = fragment_region[start.piece[a]]
    if frame is None:
        graph = Graph.from_edges(k, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    else:
        graph = Graph.from_edges(k, frame["a"].to_numpy(), frame["b"].to_numpy(), frame["len"].to_numpy())
    return StreetProblem(
        street=name, weight=atoms.weight[members], graph=graph, codes=codes,
        perimeter=atoms.perimeter[members], area=atoms.area[members], x=atoms.x[members], y=atoms.y[members],
        origin=origin, region=region, home=np.asarray(home, dtype=np.int64), locked=atoms.fixed[members],
        min_households=options.min_households, max_households=options.max_households, seed=seed,
        deadline=deadline, band=options.band, preferred=options.preferred, preferred_weight=options.weight,
        preferred_first=options.priority == "preferred")


def unit_rows(street: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """Each 街道 code with the rows of its units (computed once, not by a mask per 街道)."""
    order = np.argsort(street, kind="stable")
    names, first = np.unique(street[order], return_index=True)
    return names.tolist(), np.split(order, first[1:])


def _totals(rows: np.ndarray, units: Units, keep: np.ndarray) -> dict[str, int]:
    """Households per current community code over ``rows[keep]``, codes in sorted order."""
    codes, index = np.unique(units.community[rows[keep]].astype(str), return_inverse=True)
    totals = np.bincount(index, weights=units.households[rows[keep]], minlength=len(codes))
    return dict(zip(codes.tolist(), totals.astype(np.int64).tolist()))


def _bound_totals(members: np.ndarray, rows: np.ndarray, units: Units, atoms: Atoms,
                  options: RebalanceOptions) -> np.ndarray | None:
    """The old communities' households :func:`~jngis.rebalance.search.lower_bound` reads; None: no bound."""
    heavy = atoms.weight[members][~atoms.fixed[members]]
    if (heavy > options.bounds[1]).any():
        return None
    # the units of the communities the atoms belong to (a compound's minority part counts for no community)
    codes = list(set(atoms.community[members]))
    totals = _totals(rows, units, ~units.fixed[rows] & np.isin(units.community[rows], codes))
    return np.array(list(totals.values()), dtype=np.int64)


def _notes(members: np.ndarray, rows: np.ndarray, units: Units, links: pd.DataFrame | None, atoms: Atoms,
           start: StartingRegions, options: RebalanceOptions) -> list[str]:
    """What the preparation of one 街道 found: islands, communities in pieces, heavy atoms, fixed out of bounds."""
    lo, hi = options.bounds
    notes = [] if links is None else [
        f"island link: unit {row.unit_id} - unit {row.linked_to} across {row.gap_m:,.1f} m (no shared edge "
        "joins their parts of the 街道)" for row in links.itertuples()]
    pieces = pd.Series(start.piece[members]).groupby(atoms.community[members].astype(str)).nunique()
    notes += [f"community {code} is in {count} pieces today: the search placed its detached parts"
              for code, count in pieces[pieces > 1].items()]
    # an atom above the maximum is one unit: a compound is only kept whole when it fits
    notes += [f"unit {units.uid[atoms.first_unit[a]]} holds {atoms.weight[a]:,} households, more than "
              f"max_households={hi:,}, and cannot be divided"
              for a in members[(atoms.weight[members] > hi) & ~atoms.fixed[members]]]
    totals = _totals(rows, units, units.fixed[rows])
    notes += [f"fixed community {code} holds {total:,} households, outside {lo:,}-{hi:,}, and may not change"
              for code, total in totals.items() if not lo <= total <= hi]
    return notes
