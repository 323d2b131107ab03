"""Community rebalancing: redraw communities so each holds 1,000–3,000 households.

:func:`rebalance` takes the units layer (buildings or residential blocks, each
with its current community) and proposes new communities that are, in this
order: (1) within ``[min_households, max_households]`` wherever the data
allows, (2) as close to today's plan as possible (fewest households moved),
(3) compact (Polsby-Popper). Hard rules hold throughout: a community lies in
one 街道, is contiguous, never splits a gated compound (unless the compound
alone exceeds the maximum) and leaves ``fixed`` communities untouched.

Algorithm
---------
The 街道 nesting cuts a city into independent problems of a few hundred units
each, solved one by one (or in a process pool of 2 workers for large inputs).
In each 街道:

1. **Atoms and graph.** Units are grouped into atoms: a gated compound that
   fits under the maximum is one indivisible atom (one per connected piece).
   Atoms are joined by shared edges longer than 1 m
   (:func:`jngis.adjacency.shared_edges`); a unit with no land neighbour in
   its 街道 is linked to the nearest unit there
   (:func:`jngis.adjacency.island_links`) and the plan lists it.
   A community that is not contiguous today starts as its largest piece plus
   separate fragments, which the search then places.
2. **Lower bound.** A small mixed-integer programme per 街道 (HiGHS via
   :func:`scipy.optimize.milp`) on community totals: every old community
   either survives within the bounds keeping at most its own households, or
   is dissolved; new communities within the bounds take the rest. Its optimum
   is the fewest households any plan can move; it relaxes contiguity and the
   indivisibility of units, so it is valid whatever the adjacency. (The
   per-community bound "each community above the maximum loses at least
   h − max, each below the minimum gains min − h or dissolves" double counts
   a transfer between an oversized and an undersized neighbour, so it is not
   used as such.)
3. **Repair** (a constructive local search in the spirit of the
   contiguity-safe moves of CM-Tabu — Duque, Anselin & Rey 2012, "The
   max-p-regions problem", J. Regional Science 52(3) — and the
   "peel boundary units from donors to recipients" moves of redistricting
   heuristics, Ricca & Simeone 2008): the region furthest outside the bounds
   is fixed first.

   - *Too large*: shed boundary atoms to neighbours with room; if that is not
     enough, split off the smallest compact part that brings it within
     bounds (best of several seeds grown by distance, so the part that keeps
     the code keeps most households); else push the excess along the
     shortest chain of neighbouring communities to one with room.
   - *Too small*: gain boundary atoms from neighbours with households to
     spare, or dissolve into the neighbour that can take it (whichever moves
     fewer households first); else pull along a chain; else merge with a
     neighbour and split the union again.

   An atom only leaves a community if the rest stays connected (never an
   articulation point alone), so every intermediate plan is contiguous. Each
   accepted step strictly lowers the total bound violation; a step that does
   not is undone, so the search ends.
4. **Polish.** Atoms away from their old community return to it where the
   bounds allow (fewer moved households), then boundary moves that raise
   the Polsby-Popper sum of the two communities without moving more
   households.
5. **Codes.** Old and new communities are matched one-to-one by
   :func:`scipy.optimize.linear_sum_assignment` on the household overlap
   table; a matched new community keeps the old code, the others get the
   next free 12-digit code in their 街道. Households moved = all households
   minus those kept under that matching, i.e. the households of units whose
   code changes.

Community polygons are the exact union of their units (shapely
``coverage_union``, no slivers; a plain union where a 街道's units are not a
valid coverage). Open land that is part of a community today but is not a
unit is not in any unit, so it is not in the new polygons either: both the
before and the after Polsby-Popper are measured on dissolved units, so they
compare like with like.
"""

from __future__ import annotations

import math
import multiprocessing
import numbers
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Iterable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from jngis._rebalance_search import NO_HOME, StreetProblem, lower_bound, solve
from jngis.adjacency import island_links, shared_edges
from jngis.crs import to_metric
from jngis.errors import GeometryError, InputTypeError, NotFoundError, ParameterError, SchemaError
from jngis.regions import Graph
from jngis.topology import polsby_popper

__all__ = ["RebalancePlan", "rebalance", "polsby_popper"]

#: Community service floor area norm: square metres per 100 households.
SERVICE_AREA_PER_100_HOUSEHOLDS = 30.0
#: Inputs with at least this many units are solved in a process pool.
POOL_MIN_UNITS = 5000

_STATUS_ZH = {"kept": "不变", "adjusted": "边界调整", "split": "拆分", "merged": "合并",
              "new": "新设", "dissolved": "撤销"}


@dataclass
class RebalancePlan:
    """A redraw proposal returned by :func:`rebalance`.

    Attributes
    ----------
    assignment : pandas.Series
        unit_id -> new community code, for every unit.
    communities : geopandas.GeoDataFrame
        One row per new community: ``community_code``, ``street_code``,
        ``households``, ``units``, ``status``, ``within_bounds``,
        ``polsby_popper`` and the dissolved geometry.
    moves : pandas.DataFrame
        Every unit whose community changes: ``unit_id``, ``from``, ``to``,
        ``households``, ``street_code``.
    changes : pandas.DataFrame
        One row per old or new code: ``community_code``, ``street_code``,
        ``status`` (kept / adjusted / split / merged / new / dissolved),
        ``households_before``, ``households_after``, ``households_in``,
        ``households_out``, ``partners`` (codes households went to or came
        from).
    infeasible : pandas.DataFrame
        One row per 街道 left with a community outside the bounds (or cut
        short by the time limit): ``street_code``, ``reason``, ``reason_zh``,
        ``communities`` (codes still outside the bounds).
    islands : pandas.DataFrame
        Links added for units with no land neighbour in their 街道:
        ``unit_id``, ``linked_to``, ``gap_m``, ``street_code``.
    metrics : dict
        Before/after measures (see :func:`rebalance`).
    stations : pandas.DataFrame or None
        With ``stations=``: per new community the service floor area and
        whether it meets 30 m² per 100 households.
    """

    assignment: pd.Series
    communities: gpd.GeoDataFrame
    moves: pd.DataFrame
    changes: pd.DataFrame
    infeasible: pd.DataFrame
    islands: pd.DataFrame
    metrics: dict
    min_households: int
    max_households: int
    stations: pd.DataFrame | None = None
    streets: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __repr__(self) -> str:
        m = self.metrics
        return (f"RebalancePlan({m['communities_before']} -> {m['communities_after']} communities, "
                f"within {self.min_households}-{self.max_households}: {m['within_bounds_before']} -> "
                f"{m['within_bounds_after']}, moved {m['moved_households']:,} households "
                f"({m['moved_share']:.1%}), {len(self.infeasible)} 街道 infeasible)")

    def to_excel(self, path, **kwargs):
        """The change list as an Excel workbook, one sheet per 街道 (see :func:`jngis.viz.plan_to_excel`)."""
        from jngis.viz import plan_to_excel

        return plan_to_excel(self, path, **kwargs)

    def report(self, *, max_rows: int | None = 20) -> str:
        """A plain-text report for planners (Chinese headings): summary, then one
        table per touched community listing its status and the units moved in or out.

        Parameters
        ----------
        max_rows : int or None
            Most unit rows shown per community (None: all of them).
        """
        m = self.metrics
        lines = [
            f"社区规模调整方案 (community rebalancing plan), {self.min_households:,}–{self.max_households:,} 户",
            f"社区数 communities: {m['communities_before']} → {m['communities_after']}",
            f"规模达标 within bounds: {m['within_bounds_before']} ({m['within_bounds_share_before']:.1%}) → "
            f"{m['within_bounds_after']} ({m['within_bounds_share_after']:.1%})",
            f"户数 min/中位/max: {m['min_households_before']:,}/{m['median_households_before']:,.0f}/"
            f"{m['max_households_before']:,} → {m['min_households_after']:,}/"
            f"{m['median_households_after']:,.0f}/{m['max_households_after']:,}",
            f"调整户数 moved households: {m['moved_households']:,} ({m['moved_share']:.1%}); "
            f"下界 lower bound {m['lower_bound']:,}; 比值 ratio {m['moved_over_lower_bound']:.2f}",
            f"紧凑度 mean Polsby-Popper: {m['mean_polsby_popper_before']:.3f} → {m['mean_polsby_popper_after']:.3f}",
            f"连通 contiguous: {m['contiguous_share_after']:.0%}",
        ]
        if "stations_norm_met_after" in m:
            lines.append(f"服务用房达标 (30 m²/百户): {m['stations_norm_met_before']} → {m['stations_norm_met_after']}")
        if len(self.islands):
            lines.append(f"飞地/孤岛单元 island units linked to their nearest unit: {len(self.islands)}")
        for row in self.infeasible.itertuples():
            lines.append(f"无法达标 {row.street_code}: {row.reason_zh} ({row.reason})")
        touched = self.changes[self.changes["status"] != "kept"]
        for row in touched.itertuples():
            lines.append("")
            lines.append(f"社区 {row.community_code} [{_STATUS_ZH[row.status]} {row.status}] "
                         f"{row.households_before:,} → {row.households_after:,} 户 "
                         f"(迁入 in {row.households_in:,}, 迁出 out {row.households_out:,})"
                         + (f"; 关联 with {row.partners}" if row.partners else ""))
            rows = self.moves[(self.moves["from"] == row.community_code) | (self.moves["to"] == row.community_code)]
            if len(rows):
                shown = rows if max_rows is None else rows.head(max_rows)
                lines.append(shown[["unit_id", "from", "to", "households"]].to_string(index=False))
                if len(shown) < len(rows):
                    lines.append(f"... 另有 {len(rows) - len(shown)} 个单元 (more units, see plan.moves)")
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# validation

def _check_int(name: str, value, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value).is_integer():
        raise ParameterError(f"rebalance: {name}={value!r}; expected a whole number of households")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ParameterError(f"rebalance: {name}={value!r}; expected at least {minimum}")
    return value


def _validate(units, min_households, max_households, community, street, households, keep_together,
              fixed, seed, time_limit, stations, unit_id, workers):
    if not isinstance(units, gpd.GeoDataFrame):
        raise InputTypeError(f"rebalance: units is a {type(units).__name__}; expected a GeoDataFrame "
                             "of units (buildings / residential blocks)")
    lo = _check_int("min_households", min_households, minimum=0)
    hi = _check_int("max_households", max_households, minimum=1)
    if lo >= hi:
        raise ParameterError(f"rebalance: min_households={lo} >= max_households={hi}; "
                             "expected min_households < max_households")
    for name, value in (("community", community), ("street", street), ("households", households),
                        ("unit_id", unit_id)):
        if not isinstance(value, str):
            raise InputTypeError(f"rebalance: {name}={value!r}; expected a column name (str)")
        if value not in units.columns:
            raise SchemaError(f"rebalance: units has no column {value!r} ({name}={value!r}); "
                              f"columns are {list(units.columns)}")
    if keep_together is not None and not isinstance(keep_together, str):
        raise InputTypeError(f"rebalance: keep_together={keep_together!r}; expected a column name or None")
    if keep_together is not None and keep_together not in units.columns and keep_together != "compound_id":
        raise SchemaError(f"rebalance: units has no column {keep_together!r} (keep_together); "
                          f"columns are {list(units.columns)}")
    if isinstance(fixed, str):
        fixed = (fixed,)
    try:
        fixed = {str(code) for code in fixed}
    except TypeError:
        raise InputTypeError(f"rebalance: fixed={fixed!r}; expected an iterable of community codes") from None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InputTypeError(f"rebalance: seed={seed!r}; expected an int")
    if time_limit is not None and (isinstance(time_limit, bool) or not isinstance(time_limit, numbers.Real)
                                   or not time_limit > 0 or not math.isfinite(time_limit)):
        raise ParameterError(f"rebalance: time_limit={time_limit!r}; expected a positive number of seconds or None")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, numbers.Integral)
                                or workers < 1):
        raise ParameterError(f"rebalance: workers={workers!r}; expected a positive int or None (automatic)")
    if len(units) == 0:
        raise SchemaError("rebalance: units is empty; expected at least one unit")
    values = units[households]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise SchemaError(f"rebalance: column {households!r} (households) has dtype {values.dtype}; "
                          "expected whole numbers of households")
    numeric = values.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(numeric) | (numeric < 0) | (numeric != np.round(numeric))
    if bad.any():
        rows = units.index[bad][:5].tolist()
        raise SchemaError(f"rebalance: column {households!r} (households) has {int(bad.sum())} values that are "
                          f"negative, missing or not whole numbers, e.g. rows {rows} "
                          f"({values[bad].head(5).tolist()}); expected non-negative integers")
    for name, column in (("community", community), ("street", street), ("unit_id", unit_id)):
        missing = units[column].isna().to_numpy()
        if missing.any():
            raise SchemaError(f"rebalance: column {column!r} ({name}) is missing in rows "
                              f"{units.index[missing][:5].tolist()}; expected a value for every unit")
    ids = units[unit_id].astype(str)
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        table = pd.DataFrame({"id": ids[dup], "community": units[community].astype(str)[dup]})
        spread = table.groupby("id")["community"].nunique()
        if (spread > 1).any():
            first = spread[spread > 1].index[0]
            codes = sorted(table.loc[table["id"] == first, "community"].unique())
            raise SchemaError(f"rebalance: unit {first!r} is in two communities {codes}; "
                              f"expected each {unit_id!r} in exactly one community")
        raise SchemaError(f"rebalance: {unit_id!r} values are not unique, e.g. {ids[dup].iloc[0]!r}; "
                          "expected one row per unit")
    streets_per = units.groupby(units[community].astype(str))[street].nunique()
    if (streets_per > 1).any():
        code = streets_per[streets_per > 1].index[0]
        raise SchemaError(f"rebalance: community {code!r} has units in {int(streets_per[code])} 街道 "
                          f"(column {street!r}); expected every community inside one 街道")
    unknown = fixed - set(units[community].astype(str))
    if unknown:
        raise NotFoundError(f"rebalance: fixed has codes {sorted(unknown)[:5]} that no unit's {community!r} has; "
                            "expected codes of current communities")
    geoms = units.geometry.values
    empty = shapely.is_empty(geoms) | shapely.is_missing(geoms)
    if empty.any():
        raise GeometryError(f"rebalance: units has empty or missing geometry in rows "
                            f"{units.index[empty][:5].tolist()}; expected a polygon for every unit")
    kinds = shapely.get_type_id(geoms)
    not_polygon = ~np.isin(kinds, (3, 6))
    if not_polygon.any():
        raise GeometryError(f"rebalance: units has {int(not_polygon.sum())} geometries that are not polygons, "
                            f"e.g. rows {units.index[not_polygon][:5].tolist()}; expected (Multi)Polygons")
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        rows = units.index[invalid][:5].tolist()
        why = shapely.is_valid_reason(geoms[invalid][0])
        raise GeometryError(f"rebalance: units has {int(invalid.sum())} invalid geometries, e.g. rows {rows} "
                            f"({why}); expected valid polygons (repair them first, e.g. shapely.make_valid)")
    if stations is not None:
        if not isinstance(stations, gpd.GeoDataFrame):
            raise InputTypeError(f"rebalance: stations is a {type(stations).__name__}; expected a GeoDataFrame "
                                 "of points with an 'area_m2' column")
        if "area_m2" not in stations.columns:
            raise SchemaError(f"rebalance: stations has no column 'area_m2'; columns are {list(stations.columns)}")
        if len(stations) and not (shapely.get_type_id(stations.geometry.values) == 0).all():
            raise GeometryError("rebalance: stations has geometries that are not points; expected Points")
    return lo, hi, fixed


# ---------------------------------------------------------------------------
# the work

def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool


def _solve_all(problems: list[StreetProblem], workers: int, show: bool) -> list:
    from tqdm.auto import tqdm

    order = sorted(range(len(problems)), key=lambda i: -len(problems[i].weight))
    results = [None] * len(problems)
    bar = tqdm(total=len(problems), desc="rebalance 街道", disable=not show, leave=False)
    try:
        if workers <= 1 or len(problems) < 2:
            for i in order:
                results[i] = solve(problems[i])
                bar.update()
        else:
            # fork: workers start at once and never re-import the caller's script (spawn would
            # re-run an unguarded `__main__`); they only run the pure-Python search
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            context = multiprocessing.get_context(method)
            pool = context.Pool(workers, initializer=_worker_init)
            try:
                ordered = [problems[i] for i in order]
                for position, result in enumerate(pool.imap(solve, ordered, chunksize=1)):
                    results[order[position]] = result
                    bar.update()
                pool.close()
            except BaseException:
                pool.terminate()  # Ctrl-C or an error: stop the workers now, leave nothing running
                raise
            finally:
                pool.join()
    finally:
        bar.close()
    return results


def _dissolve(geoms: np.ndarray, codes: np.ndarray, streets: np.ndarray, valid_coverage: dict) -> dict:
    """Exact union of the units of each code (coverage union where the 街道 allows)."""
    out = {}
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    bounds = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1], True])
    for start, stop in zip(bounds[:-1], bounds[1:]):
        idx = order[start:stop]
        parts = geoms[idx]
        if valid_coverage.get(streets[idx[0]], False):
            out[sorted_codes[start]] = shapely.coverage_union_all(parts)
        else:
            out[sorted_codes[start]] = shapely.union_all(parts)
    return out


def _side_metrics(households: pd.Series, pp: pd.Series, contiguous: pd.Series, lo: int, hi: int,
                  suffix: str) -> dict:
    within = households.between(lo, hi)
    return {
        f"communities_{suffix}": int(len(households)),
        f"within_bounds_{suffix}": int(within.sum()),
        f"within_bounds_share_{suffix}": float(within.mean()) if len(households) else 1.0,
        f"above_max_{suffix}": int((households > hi).sum()),
        f"below_min_{suffix}": int((households < lo).sum()),
        f"min_households_{suffix}": int(households.min()),
        f"median_households_{suffix}": float(households.median()),
        f"max_households_{suffix}": int(households.max()),
        f"mean_polsby_popper_{suffix}": float(pp.mean()),
        f"contiguous_share_{suffix}": float(contiguous.mean()),
    }


def _contiguous(codes: np.ndarray, left: np.ndarray, right: np.ndarray) -> pd.Series:
    """Per code: whether its units form one connected piece of the unit graph."""
    same = codes[left] == codes[right]
    n = len(codes)
    graph = coo_matrix((np.ones(int(same.sum())), (left[same], right[same])), shape=(n, n))
    _, piece = connected_components(graph, directed=False)
    pieces = pd.Series(piece).groupby(codes).nunique()
    return pieces == 1


def rebalance(
    units: gpd.GeoDataFrame,
    *,
    min_households: int = 1000,
    max_households: int = 3000,
    community: str = "community_code",
    street: str = "street_code",
    households: str = "households",
    keep_together: str | None = "compound_id",
    fixed: Iterable[str] = (),
    seed: int = 0,
    time_limit: float | None = None,
    stations: gpd.GeoDataFrame | None = None,
    unit_id: str = "unit_id",
    workers: int | None = None,
    progress: bool | None = None,
) -> RebalancePlan:
    """Redraw communities so each holds ``min_households``–``max_households`` households.

    See the module docstring for the algorithm. Each 街道 is solved on its
    own; where one cannot be brought within the bounds it is improved as far
    as possible and listed in ``plan.infeasible`` with the reason — this
    function never raises for that.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        The units layer: polygons with ``unit_id``, households, 街道 and
        current community. Geographic CRSs are projected with
        :func:`jngis.crs.to_metric`; the plan's polygons come back in the
        input's CRS.
    min_households, max_households : int
        The bounds (defaults: the 1,000–3,000 of the Residents' Committee
        Organization Law, Art. 3).
    community, street, households : str
        Column names of the current community code, the 街道 code and the
        household count.
    keep_together : str or None
        Column of gated-compound ids (missing values: not in a compound).
        A compound is never split unless its households alone exceed
        ``max_households``. None, or the default name absent from ``units``:
        no compounds.
    fixed : iterable of str
        Community codes to leave untouched (no unit leaves or joins them).
    seed : int
        Seed for the tie-breaking random choices (the plan is reproducible).
    time_limit : float, optional
        Wall-clock seconds for the search; when reached, every 街道 keeps
        the best contiguous plan found so far (listed in ``infeasible`` if
        not within bounds).
    stations : geopandas.GeoDataFrame, optional
        Service stations (points with ``area_m2``; with a ``level`` column
        only ``level == "community"`` counts). Each station counts for the
        community of the unit it stands in (or the nearest unit): the
        metrics then give how many communities meet 30 m² per 100
        households before and after.
    unit_id : str
        Column of unit ids.
    workers : int, optional
        Processes for the search; default 2 for inputs of at least
        5,000 units (when the machine has 2 cores), else 1.
    progress : bool, optional
        Show a tqdm progress bar (default: when stderr is a terminal).

    Returns
    -------
    RebalancePlan
        ``metrics`` holds, before and after: ``communities``,
        ``within_bounds`` (count and share), ``above_max``, ``below_min``,
        min/median/max households, ``mean_polsby_popper``,
        ``contiguous_share``; and ``moved_households``, ``moved_share``,
        ``lower_bound`` (over the 街道 where every community can be within
        bounds), ``moved_over_lower_bound`` (moved households in those same
        街道 / lower bound), ``islands``, ``infeasible_streets``,
        ``seconds``.

    Raises
    ------
    InputTypeError
        ``units`` is not a GeoDataFrame, or a parameter has the wrong type.
    ParameterError
        ``min_households >= max_households``, a bound or ``time_limit`` out of range.
    SchemaError
        A column is missing, households are negative or not whole numbers,
        a unit is listed in two communities, a community spans two 街道.
    GeometryError
        Empty, invalid or non-polygon geometry.
    CRSError
        ``units`` has no CRS.
    NotFoundError
        ``fixed`` names a code no unit has.

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> units = load_slice().units
    >>> plan = rebalance(units, min_households=1000, max_households=3000)
    >>> plan.metrics["within_bounds_before"], plan.metrics["within_bounds_after"]
    (3, 5)
    >>> bool(plan.communities["households"].between(1000, 3000).all())
    True
    >>> plan.metrics["contiguous_share_after"]
    1.0
    """
    started = time.time()
    lo, hi, fixed = _validate(units, min_households, max_households, community, street, households,
                              keep_together, fixed, seed, time_limit, stations, unit_id, workers)
    deadline = started + time_limit if time_limit is not None else math.inf
    metric = to_metric(units)
    n = len(metric)
    geoms = np.asarray(metric.geometry.values, dtype=object)
    uid = metric[unit_id].to_numpy()
    hh = metric[households].to_numpy(dtype=float).astype(np.int64)
    st = metric[street].astype(str).to_numpy()
    cm = metric[community].astype(str).to_numpy()
    if keep_together is not None and keep_together in metric.columns:
        compound = metric[keep_together]
        has_compound = compound.notna().to_numpy()
        compound = compound.astype(str).to_numpy()
    else:
        has_compound = np.zeros(n, dtype=bool)
        compound = np.full(n, "", dtype=object)
    is_fixed = np.isin(cm, list(fixed)) if fixed else np.zeros(n, dtype=bool)

    # ---- graph: shared edges inside each 街道, plus links for islands
    left, right, length = shared_edges(geoms, min_length=1.0)
    inside = st[left] == st[right]
    left, right, length = left[inside], right[inside], length[inside]
    link_left, link_right, gap = island_links(geoms, left, right, groups=st)
    islands = pd.DataFrame({"unit_id": uid[link_left], "linked_to": uid[link_right],
                            "gap_m": np.round(gap, 1), "street_code": st[link_left]})
    g_left = np.r_[left, link_left]
    g_right = np.r_[right, link_right]
    g_length = np.r_[length, np.zeros(len(link_left))]

    # ---- atoms: a compound that fits under the maximum moves as one piece
    key = pd.Series(np.where(has_compound, st + "|" + np.where(is_fixed, cm, "") + "|" + compound.astype(str), ""))
    group_total = pd.Series(hh).groupby(key).transform("sum").to_numpy()
    group = np.where(has_compound & (group_total <= hi), pd.factorize(key)[0], -1)
    together = (group[g_left] == group[g_right]) & (group[g_left] >= 0)
    graph = coo_matrix((np.ones(int(together.sum())), (g_left[together], g_right[together])), shape=(n, n))
    n_atoms, atom = connected_components(graph, directed=False)
    area_u = shapely.area(geoms)
    perim_u = shapely.length(geoms)
    centroid = shapely.get_coordinates(shapely.centroid(geoms))
    weight = np.bincount(atom, weights=hh, minlength=n_atoms).astype(np.int64)
    area = np.bincount(atom, weights=area_u, minlength=n_atoms)
    internal = atom[g_left] == atom[g_right]
    perimeter = (np.bincount(atom, weights=perim_u, minlength=n_atoms)
                 - 2 * np.bincount(atom[g_left[internal]], weights=g_length[internal], minlength=n_atoms))
    safe_area = np.where(area > 0, area, 1.0)
    ax = np.bincount(atom, weights=centroid[:, 0] * area_u, minlength=n_atoms) / safe_area
    ay = np.bincount(atom, weights=centroid[:, 1] * area_u, minlength=n_atoms) / safe_area
    first_unit = np.full(n_atoms, n, dtype=np.int64)
    np.minimum.at(first_unit, atom, np.arange(n))
    atom_street = st[first_unit]
    atom_fixed = is_fixed[first_unit]
    # old community of an atom: where most of its households are (a compound split across
    # two communities today is joined in the one holding most of it)
    votes = pd.DataFrame({"atom": atom, "cm": cm, "hh": hh + 1e-6})
    votes = votes.groupby(["atom", "cm"], sort=False)["hh"].sum().reset_index()
    votes = votes.sort_values(["atom", "hh"], ascending=[True, False]).drop_duplicates("atom")
    atom_cm = np.empty(n_atoms, dtype=object)
    atom_cm[votes["atom"].to_numpy()] = votes["cm"].to_numpy()

    a_left, a_right = atom[g_left], atom[g_right]
    cross = a_left != a_right
    pair_low = np.minimum(a_left[cross], a_right[cross])
    pair_high = np.maximum(a_left[cross], a_right[cross])
    pairs, pair_index = np.unique(pair_low * n_atoms + pair_high, return_inverse=True)
    pair_length = np.bincount(pair_index, weights=g_length[cross], minlength=len(pairs))
    p_low, p_high = pairs // n_atoms, pairs % n_atoms

    # ---- starting regions: each old community's largest connected piece, plus fragments
    same_cm = atom_cm[p_low] == atom_cm[p_high]
    graph = coo_matrix((np.ones(int(same_cm.sum())), (p_low[same_cm], p_high[same_cm])),
                       shape=(n_atoms, n_atoms))
    _, piece = connected_components(graph, directed=False)
    piece_weight = pd.DataFrame({"piece": piece, "cm": atom_cm, "w": weight.astype(float) + 1e-6})
    piece_weight = piece_weight.groupby(["cm", "piece"])["w"].sum().reset_index()
    main_piece = set(piece_weight.sort_values(["cm", "w"], ascending=[True, False])
                     .drop_duplicates("cm")["piece"].tolist())
    fragments = int(piece_weight["piece"].nunique() - len(main_piece))

    # ---- one problem per 街道
    street_order = np.argsort(atom_street, kind="stable")
    local = np.empty(n_atoms, dtype=np.int64)
    street_names, street_start = np.unique(atom_street[street_order], return_index=True)
    street_stop = np.r_[street_start[1:], n_atoms]
    for start, stop in zip(street_start, street_stop):
        local[street_order[start:stop]] = np.arange(stop - start)
    edge_street = atom_street[p_low]
    edges = pd.DataFrame({"s": edge_street, "a": local[p_low], "b": local[p_high], "len": pair_length})
    edges_by_street = {name: frame for name, frame in edges.groupby("s", sort=False)}
    problems: list[StreetProblem] = []
    street_codes: list[list[str]] = []
    lower_bounds: dict[str, int | None] = {}
    street_hh = pd.Series(hh).groupby(st).sum()
    for index, (name, start, stop) in enumerate(zip(street_names, street_start, street_stop)):
        members = street_order[start:stop]
        k = len(members)
        codes = sorted(set(atom_cm[members]))
        code_index = {c: i for i, c in enumerate(codes)}
        origin = np.array([code_index[c] for c in atom_cm[members]], dtype=np.int64)
        region = origin.copy()
        home = list(range(len(codes)))
        fragment_region: dict[int, int] = {}
        for j, a in enumerate(members):
            if piece[a] not in main_piece:
                if piece[a] not in fragment_region:
                    fragment_region[piece[a]] = len(home)
                    home.append(NO_HOME)
                region[j] = fragment_region[piece[a]]
        frame = edges_by_street.get(name)
        if frame is None:
            ea = eb = np.zeros(0, dtype=np.int64)
            el = np.zeros(0)
        else:
            ea, eb, el = frame["a"].to_numpy(), frame["b"].to_numpy(), frame["len"].to_numpy()
        problems.append(StreetProblem(
            street=name, weight=weight[members], graph=Graph.from_edges(k, ea, eb, el), codes=codes,
            perimeter=perimeter[members], area=area[members], x=ax[members], y=ay[members],
            origin=origin, region=region, home=np.asarray(home, dtype=np.int64), locked=atom_fixed[members],
            min_households=lo, max_households=hi, seed=int(np.random.SeedSequence([seed, index]).generate_state(1)[0]),
            deadline=deadline))
        street_codes.append(codes)
        free = [c for c in codes if c not in fixed]
        totals = pd.Series(hh[np.isin(cm, free) & (st == name)]).groupby(cm[np.isin(cm, free) & (st == name)]).sum()
        heavy = weight[members][~atom_fixed[members]]
        lower_bounds[name] = (None if (heavy > hi).any() else
                              lower_bound(totals.to_numpy(), lo, hi, time_limit=2.0))

    if workers is None:
        workers = 2 if n >= POOL_MIN_UNITS and (os.cpu_count() or 1) >= 2 else 1
    show = progress if progress is not None else bool(getattr(__import__("sys").stderr, "isatty", lambda: False)())
    results = _solve_all(problems, workers, show)

    # ---- new groups per unit
    atom_group = np.empty(n_atoms, dtype=object)
    notes: dict[str, list[str]] = {}
    timed_out: set[str] = set()
    for (name, start, stop), result in zip(zip(street_names, street_start, street_stop), results):
        members = street_order[start:stop]
        atom_group[members] = [f"{name}#{label}" for label in result.label.tolist()]
        notes[name] = result.notes
        if result.timed_out:
            timed_out.add(name)
    unit_group = atom_group[atom]

    # ---- codes: one-to-one matching of old to new by household overlap
    from scipy.optimize import linear_sum_assignment  # scipy.optimize costs 0.3 s to import

    overlap = pd.DataFrame({"st": st, "old": cm, "new": unit_group, "hh": hh})
    new_code_of: dict[str, str] = {}
    for name, frame in overlap.groupby("st", sort=False):
        table = frame.pivot_table(index="old", columns="new", values="hh", aggfunc="sum", fill_value=0)
        counts = frame.pivot_table(index="old", columns="new", values="hh", aggfunc="size", fill_value=0)
        score = table.to_numpy(dtype=float) + 1e-6 * counts.reindex_like(table).to_numpy(dtype=float)
        rows, cols = linear_sum_assignment(score, maximize=True)
        for r, c in zip(rows, cols):
            if score[r, c] > 0:
                new_code_of[table.columns[c]] = table.index[r]
        used = {code for code in table.index}
        numbers_used = {int(code[len(name):]) for code in used
                        if code.startswith(name) and code[len(name):].isdigit()}
        next_number = max(numbers_used, default=0) + 1
        for group_name in table.columns:
            if group_name in new_code_of:
                continue
            while next_number in numbers_used:
                next_number += 1
            if next_number > 999:  # keep the 3-digit suffix: reuse the first free number
                next_number = next(i for i in range(1, 1000) if i not in numbers_used)
            numbers_used.add(next_number)
            new_code_of[group_name] = f"{name}{next_number:03d}"
    new_cm = np.array([new_code_of[g] for g in unit_group], dtype=object)

    # ---- tables
    assignment = pd.Series(new_cm, index=pd.Index(uid, name=unit_id), name="community_code")
    moved_mask = new_cm != cm
    moves = pd.DataFrame({"unit_id": uid[moved_mask], "from": cm[moved_mask], "to": new_cm[moved_mask],
                          "households": hh[moved_mask], "street_code": st[moved_mask]})
    moved_households = int(hh[moved_mask].sum())
    flows = moves.groupby(["from", "to"])["households"].sum()

    coverage_ok = {}
    for name in street_names:
        mask = st == name
        coverage_ok[name] = bool(shapely.coverage_is_valid(geoms[mask]))
    old_geom = _dissolve(geoms, cm.astype(object), st, coverage_ok)
    new_geom = _dissolve(geoms, new_cm, st, coverage_ok)
    old_hh = pd.Series(hh).groupby(cm).sum()
    new_hh = pd.Series(hh).groupby(new_cm).sum()
    new_units = pd.Series(1, index=range(n)).groupby(new_cm).sum()
    new_street = pd.Series(st).groupby(new_cm).first()
    old_street = pd.Series(st).groupby(cm).first()
    old_pp = pd.Series(polsby_popper(np.array([old_geom[c] for c in old_hh.index], dtype=object)), index=old_hh.index)
    new_pp = pd.Series(polsby_popper(np.array([new_geom[c] for c in new_hh.index], dtype=object)), index=new_hh.index)
    old_contiguous = _contiguous(cm.astype(object), g_left, g_right)
    new_contiguous = _contiguous(new_cm, g_left, g_right)

    # changes: status per old or new code
    old_codes, new_codes = set(old_hh.index), set(new_hh.index)
    sent: dict[str, set] = {}
    received: dict[str, set] = {}
    for (source, target), _ in flows.items():
        sent.setdefault(source, set()).add(target)
        received.setdefault(target, set()).add(source)
    out_flow = flows.groupby(level="from").sum()
    in_flow = flows.groupby(level="to").sum()
    dissolved = old_codes - new_codes
    brand_new = new_codes - old_codes
    change_rows = []
    for code in sorted(old_codes | new_codes):
        partners = sorted(sent.get(code, set()) | received.get(code, set()))
        gets = int(in_flow.get(code, 0))
        gives = int(out_flow.get(code, 0))
        if code in dissolved:
            status = "dissolved"
        elif code in brand_new:
            status = "new"
        elif sent.get(code, set()) & brand_new:
            status = "split"
        elif received.get(code, set()) & dissolved:
            status = "merged"
        elif gets or gives:
            status = "adjusted"
        else:
            status = "kept"
        change_rows.append({
            "community_code": code,
            "street_code": old_street.get(code, new_street.get(code)),
            "status": status,
            "households_before": int(old_hh.get(code, 0)),
            "households_after": int(new_hh.get(code, 0)),
            "households_in": gets,
            "households_out": gives,
            "partners": ", ".join(partners),
        })
    changes = pd.DataFrame(change_rows)
    status_of = changes.set_index("community_code")["status"]

    crs_out = units.crs
    communities = gpd.GeoDataFrame({
        "community_code": new_hh.index.to_numpy(),
        "street_code": new_street.reindex(new_hh.index).to_numpy(),
        "households": new_hh.to_numpy().astype(np.int64),
        "units": new_units.reindex(new_hh.index).to_numpy().astype(np.int64),
        "status": status_of.reindex(new_hh.index).to_numpy(),
        "within_bounds": new_hh.between(lo, hi).to_numpy(),
        "polsby_popper": new_pp.to_numpy(),
    }, geometry=[new_geom[c] for c in new_hh.index], crs=metric.crs)
    if crs_out is not None and not crs_out.equals(metric.crs):
        communities = communities.to_crs(crs_out)

    # infeasible 街道
    infeasible_rows = []
    for name in street_names:
        codes_out = new_hh[(new_street.reindex(new_hh.index) == name) & ~new_hh.between(lo, hi)].index.tolist()
        if not codes_out and name not in timed_out:
            continue
        reasons, reasons_zh = [], []
        free_total = int(hh[(st == name) & ~is_fixed].sum())
        if 0 < free_total < lo:
            reasons.append(f"the 街道's {free_total:,} households (outside fixed communities) are fewer than "
                           f"min_households={lo:,}")
            reasons_zh.append(f"街道可调整户数 {free_total:,} 低于下限 {lo:,}")
        fixed_out = [c for c in codes_out if c in fixed]
        if fixed_out:
            reasons.append(f"fixed communities {fixed_out} are outside the bounds and may not change")
            reasons_zh.append(f"固定社区 {fixed_out} 超出范围且不得调整")
        big = [c for c in codes_out if new_hh[c] > hi and (new_cm == c).sum() and
               weight[np.unique(atom[new_cm == c])].max() > hi]
        if big:
            reasons.append(f"communities {big} hold one unit with more than max_households={hi:,} households, "
                           "which cannot be divided")
            reasons_zh.append(f"社区 {big} 含单个超过上限 {hi:,} 户的单元，无法拆分")
        if name in timed_out:
            reasons.append("the time limit was reached before this 街道 was balanced")
            reasons_zh.append("达到时间上限，未完成调整")
        if not reasons:
            reasons.append("no contiguous move is left: fixed communities, indivisible compounds or the "
                           "adjacency (chokepoints) block every change that would bring these within bounds")
            reasons_zh.append("受固定社区、不可拆分小区或连通性限制，无可行调整")
        infeasible_rows.append({"street_code": name, "reason": "; ".join(reasons),
                                "reason_zh": "；".join(reasons_zh), "communities": codes_out})
    infeasible = pd.DataFrame(infeasible_rows, columns=["street_code", "reason", "reason_zh", "communities"])

    # metrics
    bounded = [name for name, bound in lower_bounds.items() if bound is not None]
    bound_total = int(sum(lower_bounds[name] for name in bounded))
    moved_in_bounded = int(hh[moved_mask & np.isin(st, bounded)].sum())
    metrics = {}
    metrics.update(_side_metrics(old_hh, old_pp, old_contiguous, lo, hi, "before"))
    metrics.update(_side_metrics(new_hh, new_pp, new_contiguous, lo, hi, "after"))
    total_hh = int(hh.sum())
    metrics.update({
        "households": total_hh,
        "moved_households": moved_households,
        "moved_share": moved_households / total_hh if total_hh else 0.0,
        "moved_units": int(moved_mask.sum()),
        "lower_bound": bound_total,
        "lower_bound_streets": len(bounded),
        "moved_households_in_bounded_streets": moved_in_bounded,
        "moved_over_lower_bound": (moved_in_bounded / bound_total if bound_total
                                   else (1.0 if moved_in_bounded == 0 else math.inf)),
        "streets": len(street_names),
        "infeasible_streets": len(infeasible),
        "islands": len(islands),
        "fragments": fragments,
        "seconds": time.time() - started,
        "workers": workers,
    })

    station_table = None
    if stations is not None:
        station_table, before_met, after_met = _station_norm(stations, metric, cm, new_cm, old_hh, new_hh)
        metrics["stations_norm_met_before"] = before_met
        metrics["stations_norm_met_after"] = after_met
    streets_table = pd.DataFrame({"street_code": street_names,
                                  "households": street_hh.reindex(street_names).to_numpy(),
                                  "lower_bound": [lower_bounds[s] for s in street_names],
                                  "notes": ["; ".join(notes[s]) for s in street_names]})
    return RebalancePlan(assignment=assignment, communities=communities, moves=moves.reset_index(drop=True),
                         changes=changes, infeasible=infeasible, islands=islands, metrics=metrics,
                         min_households=lo, max_households=hi, stations=station_table, streets=streets_table)


def _station_norm(stations, metric_units, old_cm, new_cm, old_hh, new_hh):
    """Service floor area per community before and after (30 m² per 100 households)."""
    pts = stations
    if "level" in pts.columns:
        pts = pts[pts["level"] == "community"]
    if pts.crs is not None and metric_units.crs is not None and not pts.crs.equals(metric_units.crs):
        pts = pts.to_crs(metric_units.crs)
    area = pd.to_numeric(pts["area_m2"], errors="coerce").fillna(0).to_numpy()
    tree = shapely.STRtree(metric_units.geometry.values)
    point_geoms = pts.geometry.values
    unit_of = np.full(len(pts), -1, dtype=np.int64)
    if len(pts):
        hit_point, hit_unit = tree.query(point_geoms, predicate="within")
        unit_of[hit_point[::-1]] = hit_unit[::-1]
        missing = np.flatnonzero(unit_of < 0)
        if len(missing):  # a centre on open land counts for the nearest unit's community
            _, nearest = tree.query_nearest(point_geoms[missing], all_matches=False)
            unit_of[missing] = nearest
    before = pd.Series(area).groupby(old_cm[unit_of]).sum().reindex(old_hh.index, fill_value=0)
    after = pd.Series(area).groupby(new_cm[unit_of]).sum().reindex(new_hh.index, fill_value=0)
    need = SERVICE_AREA_PER_100_HOUSEHOLDS / 100
    table = pd.DataFrame({"community_code": new_hh.index, "households": new_hh.to_numpy(),
                          "service_area_m2": after.to_numpy(),
                          "required_m2": new_hh.to_numpy() * need})
    table["meets_norm"] = table["service_area_m2"] >= table["required_m2"]
    before_met = int((before.to_numpy() >= old_hh.to_numpy() * need).sum())
    return table, before_met, int(table["meets_norm"].sum())
