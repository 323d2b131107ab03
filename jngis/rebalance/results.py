"""The phases of :func:`jngis.rebalance.rebalance` after the search: codes, tables, metrics.

:func:`outcome` turns the per-街道 labels into new community codes
(:class:`Outcome`); :func:`measure` dissolves and measures one side, before
or after (:class:`Side`); :func:`assemble` builds the
:class:`~jngis.rebalance.plan.RebalancePlan` from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis.codes import SERVICE_AREA_M2_PER_100_HOUSEHOLDS
from jngis.errors import ParameterError
from jngis.rebalance.growth import growth_table, refuse_growth
from jngis.rebalance.options import RebalanceOptions
from jngis.rebalance.plan import RebalancePlan
from jngis.rebalance.prepare import Atoms, StartingRegions, Streets, UnitGraph, Units, unit_rows
from jngis.rebalance.search import StreetResult
from jngis.regions import contiguous
from jngis.topology import polsby_popper, union_coverage

__all__ = ["Outcome", "Side", "outcome", "measure", "measure_before", "assemble", "check_growth"]


@dataclass
class Outcome:
    """The search's answer: the new community of every unit, and per 街道 its notes and time-out."""

    community: np.ndarray
    notes: dict[str, list[str]]
    timed_out: set[str]


@dataclass
class Side:
    """The communities of one side of the plan (before or after), dissolved and measured."""

    households: pd.Series
    units: pd.Series
    street: pd.Series
    geometry: dict
    polsby_popper: pd.Series
    contiguous: pd.Series


def outcome(units: Units, atoms: Atoms, streets: Streets, results: list[StreetResult],
            retired: frozenset[str] = frozenset()) -> Outcome:
    """New codes: old and new communities matched one-to-one by household overlap in each 街道.

    A new community that matches none takes the next code of its 街道 that is neither in use nor ``retired``.
    """
    atom_group = np.empty(atoms.n, dtype=object)
    notes: dict[str, list[str]] = {}
    timed_out: set[str] = set()
    for name, members, result in zip(streets.names, streets.members, results):
        atom_group[members] = [f"{name}#{label}" for label in result.label.tolist()]
        notes[name] = result.notes
        if result.timed_out:
            timed_out.add(name)
    group = atom_group[atoms.of_unit]
    code_of = _match_codes(units, group, retired)
    names, index = np.unique(group.astype(str), return_inverse=True)
    return Outcome(np.array([code_of[g] for g in names.tolist()], dtype=object)[index], notes, timed_out)


def _match_codes(units: Units, group: np.ndarray, retired: frozenset[str]) -> dict[str, str]:
    """A matched new community keeps the old code; the others take the next free code of their 街道."""
    from scipy.optimize import linear_sum_assignment  # scipy.optimize costs 0.3 s to import

    old_names, old_index = np.unique(units.community.astype(str), return_inverse=True)
    new_names, new_index = np.unique(group.astype(str), return_inverse=True)
    code_of: dict[str, str] = {}
    for street, rows in zip(*unit_rows(units.street)):
        olds, old_local = np.unique(old_index[rows], return_inverse=True)
        news, new_local = np.unique(new_index[rows], return_inverse=True)
        # the overlap table in households (codes in sorted order), ties broken by the number of units
        shape = (len(olds), len(news))
        table = np.bincount(old_local * shape[1] + new_local, weights=units.households[rows],
                            minlength=shape[0] * shape[1]).reshape(shape)
        counts = np.bincount(old_local * shape[1] + new_local, minlength=shape[0] * shape[1]).reshape(shape)
        score = table + 1e-6 * counts
        old_codes, new_codes = old_names[olds].tolist(), new_names[news].tolist()
        for r, c in zip(*linear_sum_assignment(score, maximize=True)):
            if score[r, c] > 0:
                code_of[new_codes[c]] = old_codes[r]
        unmatched = [g for g in new_codes if g not in code_of]
        code_of.update(zip(unmatched, _free_codes(street, [*old_codes, *retired], len(unmatched))))
    return code_of


def _free_codes(street: str, used, count: int) -> list[str]:
    """``count`` codes of ``street`` after the highest of ``used`` (in use or retired), then in the gaps."""
    numbers_used = {int(code[len(street):]) for code in used
                    if code.startswith(street) and code[len(street):].isdigit()}
    next_number = max(numbers_used, default=0) + 1
    codes = []
    for _ in range(count):
        while next_number in numbers_used:
            next_number += 1
        if next_number > 999:  # keep the 3-digit suffix: take the first number never used
            next_number = next((i for i in range(1, 1000) if i not in numbers_used), 0)
            if not next_number:
                raise ParameterError(f"rebalance: 街道 {street!r} needs {count} new community codes but every "
                                     "3-digit code is in use or retired; expected fewer retired codes or "
                                     "fewer new communities")
        numbers_used.add(next_number)
        codes.append(f"{street}{next_number:03d}")
    return codes


def measure(units: Units, codes: np.ndarray, graph: UnitGraph, valid_coverage: dict[str, bool]) -> Side:
    """Dissolve the units of each code (exactly, where the 街道's units form a coverage) and measure."""
    households = pd.Series(units.households).groupby(codes).sum()
    geometry = {}
    for code, rows in pd.Series(np.arange(units.n)).groupby(codes).indices.items():
        geometry[code] = union_coverage(units.geoms[rows], coverage=valid_coverage[units.street[rows[0]]])
    pp = polsby_popper(np.array([geometry[c] for c in households.index], dtype=object))
    return Side(households, pd.Series(1, index=range(units.n)).groupby(codes).sum(),
                pd.Series(units.street).groupby(codes).first(), geometry,
                pd.Series(pp, index=households.index), contiguous(codes, graph.left, graph.right))


def measure_before(units: Units, graph: UnitGraph) -> tuple[Side, dict[str, bool]]:
    """Today's communities measured, and whether each 街道's units form a valid coverage."""
    valid = {name: bool(shapely.coverage_is_valid(units.geoms[rows])) for name, rows in zip(*unit_rows(units.street))}
    return measure(units, units.community.astype(object), graph, valid), valid


def assemble(units: Units, graph: UnitGraph, atoms: Atoms, start: StartingRegions, streets: Streets,
             result: Outcome, options: RebalanceOptions, stations: gpd.GeoDataFrame | None,
             crs, workers: int, measured: tuple[Side, dict[str, bool]] | None = None) -> RebalancePlan:
    """The plan: assignment, moves, changes, communities, infeasible 街道, metrics, stations, streets."""
    lo, hi = options.bounds
    old_cm, new_cm = units.community.astype(object), result.community
    before, valid = measured if measured is not None else measure_before(units, graph)
    after = measure(units, new_cm, graph, valid)
    moved = new_cm != old_cm
    moves = pd.DataFrame({"unit_id": units.uid[moved], "from": old_cm[moved], "to": new_cm[moved],
                          "households": units.households[moved], "street_code": units.street[moved]})
    changes = _changes(before, after, moves.groupby(["from", "to"])["households"].sum())
    metrics = _metrics(units, streets, before, after, moved, options)
    infeasible = _infeasible(units, atoms, streets, after, result, options)
    metrics.update({"infeasible_streets": len(infeasible), "islands": len(graph.islands),
                    "fragments": start.fragments, "seconds": math.nan, "workers": workers})
    for key, band in (("preferred", options.preferred), ("headroom_band", options.band)):
        if band is not None:
            metrics.update({f"within_{key}_before": int(before.households.between(*band).sum()),
                            f"within_{key}_after": int(after.households.between(*band).sum())})
    station_table = None
    if stations is not None:
        station_table, met_before, met_after = _station_norm(stations, units, new_cm, before, after)
        metrics.update({"stations_norm_met_before": met_before, "stations_norm_met_after": met_after})
    return RebalancePlan(
        assignment=pd.Series(new_cm, index=pd.Index(units.uid, name=options.unit_id), name="community_code"),
        communities=_communities(after, changes, options, units.metric.crs, crs), moves=moves.reset_index(drop=True),
        changes=changes, infeasible=infeasible, islands=graph.islands, metrics=metrics, min_households=lo,
        max_households=hi, stations=station_table, streets=_streets(streets, result), preferred=options.preferred,
        band=options.band)


def check_growth(plan: RebalancePlan, added: np.ndarray, options: RebalanceOptions, horizon: int | None,
                 policy: str) -> None:
    """Put the horizon's households on ``plan`` (``growth``, metrics); refuse it if asked and any leave the band."""
    lo, hi = options.bounds
    table = growth_table(plan.communities, added, plan.assignment.to_numpy(), lo, hi, horizon)
    plan.growth, plan.horizon = table, horizon
    plan.metrics.update({"added_households": int(added.sum()),
                         "leaving_band_by_horizon": int(table["leaves_band"].sum()),
                         "max_households_horizon": int(table["households_horizon"].max())})
    if policy == "refuse":
        refuse_growth(table, hi, horizon)


def _status(code: str, dissolved: set, brand_new: set, sent: dict, received: dict, moved: bool) -> str:
    if code in dissolved:
        return "dissolved"
    if code in brand_new:
        return "new"
    if sent.get(code, set()) & brand_new:
        return "split"
    if received.get(code, set()) & dissolved:
        return "merged"
    return "adjusted" if moved else "kept"


def _changes(before: Side, after: Side, flows: pd.Series) -> pd.DataFrame:
    """Status per old or new code: kept / adjusted / split / merged / new / dissolved."""
    old_codes, new_codes = set(before.households.index), set(after.households.index)
    sent: dict[str, set] = {}
    received: dict[str, set] = {}
    for source, target in flows.index:
        sent.setdefault(source, set()).add(target)
        received.setdefault(target, set()).add(source)
    out_flow = flows.groupby(level="from").sum()
    in_flow = flows.groupby(level="to").sum()
    rows = []
    for code in sorted(old_codes | new_codes):
        gets, gives = int(in_flow.get(code, 0)), int(out_flow.get(code, 0))
        rows.append({
            "community_code": code,
            "street_code": before.street.get(code, after.street.get(code)),
            "status": _status(code, old_codes - new_codes, new_codes - old_codes, sent, received,
                              bool(gets or gives)),
            "households_before": int(before.households.get(code, 0)),
            "households_after": int(after.households.get(code, 0)),
            "households_in": gets,
            "households_out": gives,
            "partners": ", ".join(sorted(sent.get(code, set()) | received.get(code, set()))),
        })
    return pd.DataFrame(rows)


def _communities(after: Side, changes: pd.DataFrame, options: RebalanceOptions, metric_crs,
                 crs) -> gpd.GeoDataFrame:
    codes = after.households.index
    status = changes.set_index("community_code")["status"]
    frame = gpd.GeoDataFrame({
        "community_code": codes.to_numpy(),
        "street_code": after.street.reindex(codes).to_numpy(),
        "households": after.households.to_numpy().astype(np.int64),
        "units": after.units.reindex(codes).to_numpy().astype(np.int64),
        "status": status.reindex(codes).to_numpy(),
        "within_bounds": after.households.between(*options.bounds).to_numpy(),
        "polsby_popper": after.polsby_popper.to_numpy(),
    }, geometry=[after.geometry[c] for c in codes], crs=metric_crs)
    if crs is not None and not crs.equals(metric_crs):
        frame = frame.to_crs(crs)
    return frame


def _infeasible(units: Units, atoms: Atoms, streets: Streets, after: Side, result: Outcome,
                options: RebalanceOptions) -> pd.DataFrame:
    """One row per 街道 left with a community outside the bounds, or cut short by the time limit."""
    lo, hi = options.bounds
    hh, new_cm = after.households, result.community
    rows = []
    for name in streets.names:
        codes_out = hh[(after.street.reindex(hh.index) == name) & ~hh.between(lo, hi)].index.tolist()
        if not codes_out and name not in result.timed_out:
            continue
        reasons: list[tuple[str, str]] = []
        free_total = int(units.households[(units.street == name) & ~units.fixed].sum())
        if 0 < free_total < lo:
            reasons.append((f"the 街道's {free_total:,} households (outside fixed communities) are fewer than "
                            f"min_households={lo:,}", f"街道可调整户数 {free_total:,} 低于下限 {lo:,}"))
        fixed_out = [c for c in codes_out if c in options.fixed]
        if fixed_out:
            reasons.append((f"fixed communities {fixed_out} are outside the bounds and may not change",
                            f"固定社区 {fixed_out} 超出范围且不得调整"))
        big = [c for c in codes_out if hh[c] > hi and (new_cm == c).sum()
               and atoms.weight[np.unique(atoms.of_unit[new_cm == c])].max() > hi]
        if big:
            reasons.append((f"communities {big} hold one unit with more than max_households={hi:,} households, "
                            "which cannot be divided", f"社区 {big} 含单个超过上限 {hi:,} 户的单元，无法拆分"))
        if name in result.timed_out:
            reasons.append(("the time limit was reached before this 街道 was balanced", "达到时间上限，未完成调整"))
        if not reasons:
            reasons.append(("no contiguous move is left: fixed communities, indivisible compounds or the "
                            "adjacency (chokepoints) block every change that would bring these within bounds",
                            "受固定社区、不可拆分小区或连通性限制，无可行调整"))
        rows.append({"street_code": name, "reason": "; ".join(r for r, _ in reasons),
                     "reason_zh": "；".join(z for _, z in reasons), "communities": codes_out})
    return pd.DataFrame(rows, columns=["street_code", "reason", "reason_zh", "communities"])


def _side_metrics(side: Side, lo: int, hi: int, suffix: str) -> dict:
    households = side.households
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
        f"mean_polsby_popper_{suffix}": float(side.polsby_popper.mean()),
        f"contiguous_share_{suffix}": float(side.contiguous.mean()),
    }


def _metrics(units: Units, streets: Streets, before: Side, after: Side, moved: np.ndarray,
             options: RebalanceOptions) -> dict:
    lo, hi = options.bounds
    hh = units.households
    bounded = [name for name, bound in streets.lower_bounds.items() if bound is not None]
    bound_total = int(sum(streets.lower_bounds[name] or 0 for name in bounded))
    moved_in_bounded = int(hh[moved & np.isin(units.street, bounded)].sum())
    moved_households = int(hh[moved].sum())
    total = int(hh.sum())
    return {
        **_side_metrics(before, lo, hi, "before"),
        **_side_metrics(after, lo, hi, "after"),
        "households": total,
        "moved_households": moved_households,
        "moved_share": moved_households / total if total else 0.0,
        "moved_units": int(moved.sum()),
        "lower_bound": bound_total,
        "lower_bound_streets": len(bounded),
        "moved_households_in_bounded_streets": moved_in_bounded,
        "moved_over_lower_bound": (moved_in_bounded / bound_total if bound_total
                                   else (1.0 if moved_in_bounded == 0 else math.inf)),
        "streets": len(streets.names),
    }


def _streets(streets: Streets, result: Outcome) -> pd.DataFrame:
    names = streets.names
    return pd.DataFrame({"street_code": names,
                         "households": streets.households.reindex(names).to_numpy(),
                         "lower_bound": [streets.lower_bounds[s] for s in names],
                         "timed_out": [s in result.timed_out for s in names],
                         "notes": ["; ".join(result.notes[s]) for s in names]})


def _station_norm(stations: gpd.GeoDataFrame, units: Units, new_cm: np.ndarray, before: Side,
                  after: Side) -> tuple[pd.DataFrame, int, int]:
    """Service floor area per community before and after (30 m² per 100 households)."""
    pts = stations
    if "level" in pts.columns:
        pts = pts[pts["level"] == "community"]
    metric = units.metric
    if pts.crs is not None and metric.crs is not None and not pts.crs.equals(metric.crs):
        pts = pts.to_crs(metric.crs)
    area = pd.to_numeric(pts["area_m2"], errors="coerce").fillna(0).to_numpy()
    tree = shapely.STRtree(metric.geometry.values)
    point_geoms = pts.geometry.values
    unit_of = np.full(len(pts), -1, dtype=np.int64)
    if len(pts):
        hit_point, hit_unit = tree.query(point_geoms, predicate="within")
        unit_of[hit_point[::-1]] = hit_unit[::-1]
        missing = np.flatnonzero(unit_of < 0)
        if len(missing):  # a centre on open land counts for the nearest unit's community
            _, nearest = tree.query_nearest(point_geoms[missing], all_matches=False)
            unit_of[missing] = nearest
    old_hh, new_hh = before.households, after.households
    area_before = pd.Series(area).groupby(units.community[unit_of]).sum().reindex(old_hh.index, fill_value=0)
    area_after = pd.Series(area).groupby(new_cm[unit_of]).sum().reindex(new_hh.index, fill_value=0)
    need = SERVICE_AREA_M2_PER_100_HOUSEHOLDS / 100
    table = pd.DataFrame({"community_code": new_hh.index, "households": new_hh.to_numpy(),
                          "service_area_m2": area_after.to_numpy(), "required_m2": new_hh.to_numpy() * need})
    table["meets_norm"] = table["service_area_m2"] >= table["required_m2"]
    met_before = int((area_before.to_numpy() >= old_hh.to_numpy() * need).sum())
    return table, met_before, int(table["meets_norm"].sum())
