"""Boundary versions: what an adoption brings, the checks before it, its lineage and the diff of two versions.

Pure functions on GeoDataFrames; the store (:mod:`jngis.store.versions`)
persists what they compute. A version is a :class:`Boundaries` (streets,
communities, grids, units). An adoption turns a source -- a
:class:`~jngis.rebalance.RebalancePlan`, grids from :func:`jngis.make_grids`
(with or without new communities) or a GeoPackage holding ``communities``
and/or ``grids`` -- into the next :class:`Boundaries` (:func:`proposal`),
checks it against the last one (:func:`check_adoption`) and records where
every unit and household went (:func:`lineage`). :func:`diff` says what
changed between two versions.

A redraw's communities are the unions of their units (roads and open land
left out); :func:`plan_communities` gives each 街道's open land to the new
communities so that they tile their 街道 again, keeping the communities the
plan did not touch exactly as they were.

Examples
--------
>>> from jngis.sample import load_slice
>>> import jngis
>>> city = load_slice()
>>> before = Boundaries.of(city)
>>> plan = jngis.rebalance(city.units, min_households=1000, max_households=3000)
>>> communities = plan_communities(plan, before)
>>> bool(jngis.topology.check_tiling(communities, city.streets, "street_code")["ok"].all())
True
>>> grids = jngis.make_grids(communities, proposal(plan, before, grids=city.grids).units, previous=city.grids)
>>> after = proposal(plan, before, grids=grids)
>>> check_adoption(before, after)
>>> d = diff(before, after)
>>> d.summary["units_moved"] > 0, sorted(d.communities["change"].unique())
(True, ['adjusted'])
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis.codes import extends, parent
from jngis.errors import (
    CodeConflictError,
    CoverageMismatchError,
    InputTypeError,
    NotFoundError,
    UnitsMismatchError,
)
from jngis.layers import validate
from jngis.topology import CLEAN_SNAPPING, check_tiling, clean_coverage, coverage_errors, union_coverage

__all__ = ["Boundaries", "VersionDiff", "KEYS", "proposal", "plan_communities", "check_adoption", "lineage",
           "diff", "changed_codes", "attribute_text"]

#: The key column of each versioned layer.
KEYS: dict[str, str] = {"streets": "street_code", "communities": "community_code", "units": "unit_id",
                        "grids": "grid_code"}
#: Largest gap or overlap (m²) a tiling may have.
TOLERANCE = 1.0
#: Names given to communities a plan creates.
NEW_COMMUNITY = "新社区"


@dataclass(frozen=True)
class Boundaries:
    """The versioned layers of one version (each a GeoDataFrame in the store's CRS; grids may be None)."""

    streets: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    units: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame | None = None

    @classmethod
    def of(cls, city: Any) -> Boundaries:
        """The boundaries of a :class:`~jngis.layers.City` (or anything with those attributes)."""
        return cls(city.streets, city.communities, city.units, getattr(city, "grids", None))

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """The layers held, by kind."""
        return {kind: getattr(self, kind) for kind in KEYS if getattr(self, kind) is not None}


@dataclass
class VersionDiff:
    """What changed from ``version_a`` to ``version_b``.

    ``summary``: units_moved, households_moved, communities_/grids_ created,
    split, merged, dissolved, adjusted, and orders_replaced. ``communities``
    and ``grids``: one row per changed code (code, change, households_before,
    households_after, partners). ``units``: every unit whose community changed
    (unit_id, from, to, households). ``lineage``: kind, from_code, to_code,
    households, units. ``orders``: open orders re-placed (order_id, from_grid,
    to_grid, version_id).
    """

    version_a: int | None
    version_b: int | None
    summary: dict
    communities: pd.DataFrame
    grids: pd.DataFrame
    units: pd.DataFrame
    lineage: pd.DataFrame
    orders: pd.DataFrame = field(default_factory=lambda: _no_orders())

    def __repr__(self) -> str:
        s = self.summary
        return (f"VersionDiff({self.version_a} -> {self.version_b}: {s['units_moved']} units "
                f"({s['households_moved']:,} households) moved, communities +{s['communities_created']} "
                f"-{s['communities_dissolved']} ~{s['communities_adjusted']}, grids +{s['grids_created']} "
                f"-{s['grids_dissolved']} ~{s['grids_adjusted']}, {s['orders_replaced']} orders re-placed)")


# --------------------------------------------------------------------------- sources


def proposal(source: Any, before: Boundaries, *, grids: gpd.GeoDataFrame | None = None,
             communities: gpd.GeoDataFrame | None = None) -> Boundaries:
    """The boundaries an adoption of ``source`` would make, from the last version ``before``.

    ``source`` is a :class:`~jngis.rebalance.RebalancePlan` (its communities
    made to tile their 街道 with :func:`plan_communities`, or ``communities=``
    when that was done already; pass the regridding as ``grids=``), a grids
    GeoDataFrame (with its new ``communities=``, or within the communities of
    ``before``), or the path of a GeoPackage with a
    ``communities`` and/or ``grids`` layer. Units keep their ids and
    households; their community follows the plan, or the community their
    representative point lies in.

    A plan may cover some 街道 only (a redraw of one district or one 街道:
    ``rebalance`` of their units), each of them whole. The 街道 outside it
    keep the communities, grids and units of ``before`` exactly, so they are
    not changed in the lineage or the diff; rows given for them in
    ``communities=`` or ``grids=`` must be those of ``before`` (as
    ``make_grids(previous=)`` keeps them), and any other is refused with
    :class:`~jngis.errors.CoverageMismatchError`.
    """
    from jngis.rebalance import RebalancePlan

    if isinstance(source, RebalancePlan):
        units, streets = _units_of_plan(source, before)
        drawn = plan_communities(source, before) if communities is None else communities
        drawn = _kept_outside(validate(drawn, "communities"), before.communities, streets)
        if grids is not None and before.grids is not None:
            grids = _kept_outside(validate(grids, "grids"), before.grids, streets)
        return _completed(before, drawn, units, grids)
    if isinstance(source, (str, os.PathLike)):
        return _from_file(Path(source), before)
    if isinstance(source, gpd.GeoDataFrame):
        if grids is not None:
            raise InputTypeError("proposal: grids given twice (as source and as grids=); expected one")
        return _completed(before, communities, None, validate(source, "grids"))
    raise InputTypeError(f"proposal: source is a {type(source).__name__}; expected a RebalancePlan, a grids "
                         "GeoDataFrame (from make_grids) or the path of a GeoPackage with communities/grids")


def _from_file(path: Path, before: Boundaries) -> Boundaries:
    import pyogrio

    if not path.is_file():
        raise NotFoundError(f"adopt: no GeoPackage at {str(path)!r}; expected a file with a communities "
                            "and/or grids layer")
    held = {name for name, _ in pyogrio.list_layers(path)}
    if not held & {"communities", "grids"}:
        raise NotFoundError(f"adopt: {str(path)!r} holds the layers {sorted(held)}; expected a communities "
                            "and/or grids layer")
    layers = {kind: validate(gpd.read_file(path, layer=kind), kind) for kind in ("communities", "grids", "units")
              if kind in held}
    units = layers.get("units")
    if units is not None:
        _same_units(before.units, units)
    return _completed(before, layers.get("communities"), units, layers.get("grids"))


def _completed(before: Boundaries, communities: gpd.GeoDataFrame | None, units: gpd.GeoDataFrame | None,
               grids: gpd.GeoDataFrame | None) -> Boundaries:
    """The new boundaries: layers not given stay; units follow new communities."""
    crs = before.communities.crs
    communities = before.communities if communities is None else validate(communities, "communities").to_crs(crs)
    if units is None:
        units = before.units
        if communities is not before.communities:
            units = _units_in(before.units, communities)
    else:
        units = units.to_crs(crs)
    grids = before.grids if grids is None else validate(grids, "grids").to_crs(crs)
    return Boundaries(before.streets, communities, units, grids)


def _units_in(units: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Units placed in the community their representative point lies in."""
    from jngis.assign import assign

    points = gpd.GeoSeries(shapely.point_on_surface(np.asarray(units.geometry.values, dtype=object)),
                           index=units.index, crs=units.crs)
    found = assign(points, communities, key="community_code")
    if found.isna().any():
        lost = units.loc[found.isna().to_numpy(), "unit_id"]
        raise UnitsMismatchError(f"adopt: {len(lost)} units lie in no community of the proposal, e.g. unit_id="
                                 f"{lost.iloc[0]!r}; expected communities covering every unit")
    out = units.copy()
    out["community_code"] = found.astype(str).to_numpy()
    return out


def _units_of_plan(plan: Any, before: Boundaries) -> tuple[gpd.GeoDataFrame, set[str]]:
    """The units with the plan's communities, and the 街道 the plan covers (each of them whole)."""
    assignment = plan.assignment
    units = before.units
    ids = units["unit_id"].astype(str)
    planned = set(assignment.index.astype(str))
    extra = sorted(planned - set(ids))
    if extra:
        raise UnitsMismatchError(
            f"adopt: the plan's units do not match the store's: {len(extra)} plan units not in the store (e.g. "
            f"unit_id={extra[0]!r}); expected a plan made from store.read_layer('units')")
    inside = ids.isin(planned).to_numpy()
    street = units["street_code"].astype(str).to_numpy()
    streets = set(street[inside])
    left = ~inside & np.isin(street, list(streets))
    if left.any():
        where = sorted(set(street[left]))[0]
        missing = ids[left & (street == where)]
        raise UnitsMismatchError(
            f"adopt: the plan covers part of 街道 street_code={where!r}: {len(missing)} store units not in the "
            f"plan (e.g. unit_id={missing.iloc[0]!r}), {int((inside & (street == where)).sum())} in it; expected "
            "whole 街道 (every unit of each 街道 the plan touches, from store.read_layer('units'))")
    out = units.copy()
    lookup = dict(zip(assignment.index.astype(str), assignment.astype(str)))
    old = units["community_code"].astype(str).tolist()
    out["community_code"] = [lookup.get(u, c) for u, c in zip(ids, old)]
    return out, streets


def _kept_outside(given: gpd.GeoDataFrame, held: gpd.GeoDataFrame, streets: set[str]) -> gpd.GeoDataFrame:
    """``given`` in the plan's ``streets``, ``held`` (the layer in force) in every other 街道.

    Rows ``given`` for another 街道 must be the ones in force (same code, same polygon), as
    ``make_grids(previous=)`` keeps them; a row that differs is refused, not dropped.
    """
    key = "community_code" if "grid_code" not in given.columns else "grid_code"
    mine = np.isin(parent(given[key].astype(str).to_numpy(), "street"), list(streets))
    theirs = ~np.isin(parent(held[key].astype(str).to_numpy(), "street"), list(streets))
    if mine.all() and not theirs.any():
        return given
    kept = held[theirs].to_crs(given.crs)
    _same_outside(given[~mine], kept, key)
    return pd.concat([given[mine], kept[[c for c in kept.columns if c in given.columns]]],
                     ignore_index=True).sort_values(key, ignore_index=True)


def _same_outside(extra: gpd.GeoDataFrame, kept: gpd.GeoDataFrame, key: str) -> None:
    """Rows given for 街道 outside the plan are the ones in force, or the proposal is refused."""
    if not len(extra):
        return
    held = kept.set_index(kept[key].astype(str)).geometry
    codes = extra[key].astype(str).to_numpy()
    known = np.isin(codes, held.index.to_numpy())
    same = np.zeros(len(extra), dtype=bool)
    same[known] = shapely.equals_exact(extra.geometry.to_numpy()[known], held.loc[codes[known]].to_numpy(),
                                       tolerance=1e-6)
    if not same.all():
        code = codes[~same][0]
        street = str(parent(code, "street"))
        raise CoverageMismatchError(
            f"proposal: {key}={code!r} lies in 街道 street_code={street!r}, which the plan does not cover, "
            f"and is {'not in force' if code not in held.index else 'drawn otherwise than in force'} "
            f"({int((~same).sum())} such rows); expected the plan's 街道 only, or the rows in force elsewhere")


def _same_units(store_units: gpd.GeoDataFrame, units: gpd.GeoDataFrame) -> None:
    """The units of a proposal are the store's: same ids, same households."""
    held = store_units.set_index("unit_id")["households"]
    given = units.set_index("unit_id")["households"]
    if set(held.index) != set(given.index):
        differ = sorted(set(held.index) ^ set(given.index))
        raise UnitsMismatchError(f"adopt: the units differ from the store's: {len(differ)} unit ids are in only "
                                 f"one of them (e.g. {differ[0]!r}); expected the store's units")
    changed = held.index[held.to_numpy() != given.reindex(held.index).to_numpy()]
    if len(changed):
        raise UnitsMismatchError(
            f"adopt: unit_id={changed[0]!r} has households={int(given[changed[0]])} in the proposal but "
            f"{int(held[changed[0]])} in the store ({len(changed)} units differ); expected the store's households")


# --------------------------------------------------------------------------- a plan's communities


def plan_communities(plan: Any, before: Boundaries) -> gpd.GeoDataFrame:
    """The plan's communities as a layer that tiles its 街道 (``community_code, name, street_code``).

    Communities whose units stay the same keep their polygon; in each 街道 the plan
    changed, the open land not in a kept community goes to the new
    communities it borders (split along the Voronoi diagram of their shared
    edges, as :func:`jngis.make_grids` gives open land to grids). Each 街道's
    communities are an exact coverage of it (neighbours share every edge vertex
    for vertex, each polygon valid in WGS84 too); a kept community takes the
    corner of a new neighbour lying on its edge, or, where float noise leaves a
    sliver between them, the cleaned polygon (:func:`_exact`). Only the 街道
    the plan covers are in the layer (:func:`proposal` adds the others as they are).
    """
    crs = before.communities.crs
    units = before.units[before.units["unit_id"].astype(str).isin(list(plan.assignment.index.astype(str)))]
    untouched = _untouched(units, plan.assignment)
    drawn = plan.communities.to_crs(crs).set_index("community_code")
    old = before.communities.set_index("community_code")
    names = old["name"] if "name" in old else pd.Series(dtype=object)
    rows = []
    for street, street_geom in zip(before.streets["street_code"], before.streets.geometry.values):
        codes = drawn.index[drawn["street_code"].to_numpy() == street]
        if not len(codes):
            continue
        kept = [c for c in codes if c in untouched and c in old.index]
        changed = [c for c in codes if c not in kept]
        if not changed:
            rows += [(c, old.at[c, "geometry"]) for c in kept]
            continue
        held = np.array([old.at[c, "geometry"] for c in kept], dtype=object)
        rest = shapely.difference(street_geom, union_coverage(held)) if kept else street_geom
        shared = _share_land(rest, [drawn.at[c, "geometry"] for c in changed])
        rows += zip(kept + changed, _exact(held, shared, rest, street_geom))
    frame = gpd.GeoDataFrame({"community_code": [c for c, _ in rows]},
                             geometry=[g for _, g in rows], crs=crs)
    frame["name"] = [names.get(c, f"{NEW_COMMUNITY}{c[-3:]}") for c in frame["community_code"]]
    frame["street_code"] = drawn["street_code"].reindex(frame["community_code"]).to_numpy()
    return frame[["community_code", "name", "street_code", "geometry"]].sort_values(
        "community_code", ignore_index=True)


def _untouched(units: gpd.GeoDataFrame, assignment: pd.Series) -> set:
    """Communities whose units are the same before and after (the plan's "kept" may have swapped units)."""
    new = assignment.reindex(units["unit_id"]).astype(str).to_numpy()
    old = units["community_code"].astype(str).to_numpy()
    touched = set(old[old != new]) | set(new[old != new])
    return set(old) - touched


def _exact(held: np.ndarray, shared: list, rest: shapely.Geometry, street: shapely.Geometry) -> np.ndarray:
    """The kept communities ``held`` and the new ones ``shared`` (tiling ``rest``) as one exact coverage.

    The new communities, grown by overlays, meet the kept ones and the 街道 boundary only up to float
    noise. First, one cleaning (:func:`jngis.topology.clean_coverage`) of the new ones against ``rest``
    (the 街道 less the kept communities) puts their outer edges on the kept communities' own vertices,
    and a kept community takes the corners of new neighbours lying on its edges (vertices added, none
    moved). Where that leaves unmatched edges or a gap (``rest`` holding slivers of float noise along
    a kept community), the whole 街道 is cleaned at once and a kept community keeps its own polygon
    only where the cleaning left its point set unchanged.
    """
    new = clean_coverage(np.asarray(shared, dtype=object), rest)
    if not len(held):
        return new
    parts = np.concatenate([held, new])
    unmatched = np.flatnonzero(~shapely.is_empty(shapely.coverage_invalid_edges(parts)[:len(held)]))
    if len(unmatched):
        corners = shapely.multipoints(shapely.get_coordinates(new))
        parts[unmatched] = shapely.snap(held[unmatched], corners, CLEAN_SNAPPING)
    if shapely.is_valid(parts[unmatched]).all() and _tiles_exactly(parts, street):
        return parts
    cleaned = clean_coverage(np.concatenate([held, np.asarray(shared, dtype=object)]), street)
    parts = cleaned.copy()
    same = np.flatnonzero(shapely.equals(cleaned[:len(held)], held))
    parts[same] = held[same]
    unmatched = np.flatnonzero(~shapely.is_empty(shapely.coverage_invalid_edges(parts)[:len(held)]))
    parts[unmatched] = cleaned[unmatched]
    return parts if _tiles_exactly(parts, street) else cleaned


def _tiles_exactly(parts: np.ndarray, whole: shapely.Geometry) -> bool:
    """A valid coverage whose union has the outline of ``whole``: no gap of no area between parts, be it
    a hole or an inlet from the outside (an area check cannot see either)."""
    if not shapely.coverage_is_valid(parts):
        return False
    union = shapely.coverage_union_all(parts)
    return bool(union.is_valid) and bool(shapely.hausdorff_distance(shapely.boundary(union),
                                                                     shapely.boundary(whole)) < CLEAN_SNAPPING)


def _share_land(area: shapely.Geometry, unions: list) -> list:
    """Polygons of ``unions`` (the new communities' units) grown over the open land to tile ``area``."""
    from jngis.grids.land import assign_land, polygonal, reconnect, repair_tiling

    unions = [shapely.intersection(u, area) for u in unions]
    land = shapely.get_parts(shapely.difference(area, union_coverage(np.array(unions, dtype=object),
                                                                     coverage=False)))
    land = land[(shapely.get_type_id(land) == 3) & (shapely.area(land) > 0)] if len(land) else land
    spacing = max(2.0, math.sqrt(float(np.median(shapely.area(np.array(unions, dtype=object))))) / 8)
    pieces = assign_land(land, unions, spacing)
    geometries = [union_coverage(np.array([u, *p], dtype=object), coverage=False) if p else u
                  for u, p in zip(unions, pieces)]
    geometries = [polygonal(g) for g in reconnect(geometries, unions, [])]
    if coverage_errors(geometries, area).worst > TOLERANCE:
        geometries = repair_tiling(area, geometries)
    return geometries


# --------------------------------------------------------------------------- checks


def check_adoption(before: Boundaries, after: Boundaries, *, retired: Mapping[str, Mapping[str, int]] | None = None,
                   scope: tuple[str, ...] = (), changes: Mapping[str, dict[str, set]] | None = None) -> None:
    """Refuse, naming what is wrong, boundaries that cannot be adopted over ``before``.

    Checks that the units are the store's, that communities tile their
    街道 and grids their community (by area, then as an exact coverage: shared
    edges vertex for vertex, each polygon valid in CGCS2000 degrees), that codes extend their parents, that no
    code retired in an earlier version (``retired``: kind -> {code: version
    that retired it}) comes back, and (``scope``, a planner's codes) that
    every changed community lies inside the scope.
    """
    changes = all_changes(before, after) if changes is None else changes
    _same_units(before.units, after.units)
    _codes_extend(after)
    # only the 街道 and communities something changed in (the others were checked when adopted)
    communities = set().union(*changes["communities"].values())
    streets = {c[:9] for c in communities}
    _tiles(_among(after.communities, "street_code", streets), _among(after.streets, "street_code", streets),
           "street_code", "communities", "街道")
    _units_inside(after)
    if after.grids is not None:
        touched = communities | {g[:12] for g in set().union(*changes["grids"].values())}
        _tiles(_among(after.grids, "community_code", touched),
               _among(after.communities, "community_code", touched), "community_code", "grids", "community")
    for kind, codes in (retired or {}).items():
        layer = getattr(after, kind)
        if layer is None:
            continue
        back = layer[KEYS[kind]][layer[KEYS[kind]].isin(list(codes))]
        if len(back):
            code = back.iloc[0]
            raise CodeConflictError(f"adopt: {kind} code {code!r} was retired by version {codes[code]}; expected "
                                    "a new code (a retired code is never given to another area)")
    if scope:
        changed = changes["communities"]
        outside = sorted(c for c in changed["created"] | changed["changed"] | changed["retired"]
                         if not any(c.startswith(s) for s in scope))
        if outside:
            from jngis.errors import ForbiddenError

            raise ForbiddenError(f"adopt: community {outside[0]!r} is outside the principal's scope {list(scope)}; "
                                 "expected changes only inside it", "versions.adopt")


def _codes_extend(after: Boundaries) -> None:
    pairs = [("communities", after.communities, "community_code", "street_code"),
             ("units", after.units, "community_code", "street_code")]
    if after.grids is not None:
        pairs.append(("grids", after.grids, "grid_code", "community_code"))
    for kind, layer, code, mother in pairs:
        bad = ~extends(layer[code].astype(object), layer[mother].astype(object)).to_numpy()
        if bad.any():
            row = layer[bad].iloc[0]
            raise CodeConflictError(f"adopt: {kind} {code}={row[code]!r} does not extend its {mother}="
                                    f"{row[mother]!r} ({int(bad.sum())} rows); expected codes that extend their "
                                    "parent's")
    known = set(after.communities["community_code"])
    homeless = after.units.loc[~after.units["community_code"].isin(known), "community_code"]
    if len(homeless):
        raise UnitsMismatchError(f"adopt: units name community_code={homeless.iloc[0]!r}, which the proposal does "
                                 "not hold; expected every unit in one of its communities")


def _units_inside(after: Boundaries) -> None:
    """Every unit lies (by its representative point) in the community its code names."""
    placed = _units_in(after.units, after.communities)["community_code"].to_numpy()
    wrong = placed != after.units["community_code"].astype(str).to_numpy()
    if wrong.any():
        unit = after.units[wrong].iloc[0]
        raise UnitsMismatchError(f"adopt: unit_id={unit['unit_id']!r} has community_code={unit['community_code']!r} "
                                 f"but lies in community {placed[wrong][0]!r} ({int(wrong.sum())} units); expected "
                                 "units inside the community their code names")


def _among(layer: gpd.GeoDataFrame, key: str, codes: set) -> gpd.GeoDataFrame:
    return layer[layer[key].astype(str).isin(list(codes))]


def _tiles(parts: gpd.GeoDataFrame, wholes: gpd.GeoDataFrame, key: str, kind: str, whole: str) -> None:
    table = check_tiling(parts, wholes, key, tolerance=TOLERANCE)
    if not table["ok"].all():
        bad = table[~table["ok"]]
        worst = bad.loc[bad[["gap", "overlap", "outside"]].max(axis=1).idxmax()]
        raise CoverageMismatchError(
            f"adopt: the {kind} do not tile their {whole} in {len(bad)} places; worst {key}={worst[key]!r}: gap "
            f"{worst['gap']:.1f} m², overlap {worst['overlap']:.1f} m², outside {worst['outside']:.1f} m² "
            f"(expected at most {TOLERANCE} m²)" + (
                "; a redraw needs its regridding: pass grids=make_grids(...)" if kind == "grids" else ""))
    _exact_coverages(parts, key, kind, whole)


#: The geographic CRS every adopted polygon must stay valid in (CGCS2000, what tiles and exports reproject to).
GEOGRAPHIC = "EPSG:4490"


def _exact_coverages(parts: gpd.GeoDataFrame, key: str, kind: str, whole: str) -> None:
    """Refuse parts that tile by area but are no exact coverage, or break once reprojected to degrees.

    An area check passes neighbours whose shared edge has vertices on one side only and zero-width
    spikes; a tile builder then draws two edges where there is one, and in degrees a spike is a
    self-intersection. Per ``key``: :func:`shapely.coverage_is_valid`, then each part's validity in
    :data:`GEOGRAPHIC`.
    """
    geoms = np.asarray(parts.geometry.values, dtype=object)
    codes = parts[key].astype(str).to_numpy()
    unmatched = np.zeros(len(parts), dtype=bool)
    for rows in pd.Series(np.arange(len(parts))).groupby(codes).indices.values():
        if len(rows) > 1 and not shapely.coverage_is_valid(geoms[rows]):
            unmatched[rows] = ~shapely.is_empty(shapely.coverage_invalid_edges(geoms[rows]))
    name = KEYS[kind]
    if unmatched.any():
        edges = shapely.coverage_invalid_edges(geoms[unmatched])
        first = np.flatnonzero(unmatched)[0]
        x, y = shapely.get_coordinates(edges[0])[0]
        raise CoverageMismatchError(
            f"adopt: the {kind} of {key}={codes[first]!r} are no exact coverage of their {whole}: "
            f"{name}={parts[name].iloc[first]!r} has edges its neighbours do not share vertex for vertex, "
            f"first near ({x:.2f}, {y:.2f}) ({int(unmatched.sum())} {kind} in "
            f"{len(set(codes[unmatched]))} {whole}, {float(shapely.length(edges).sum()):.1f} m of unmatched "
            "edges); expected neighbours sharing every edge (as make_grids and plan_communities draw them)")
    degrees = np.asarray(parts.to_crs(GEOGRAPHIC).geometry.values, dtype=object)
    broken = np.flatnonzero(~shapely.is_valid(degrees))
    if len(broken):
        first = broken[0]
        raise CoverageMismatchError(
            f"adopt: {name}={parts[name].iloc[first]!r} is valid in {parts.crs.to_string()} but not in "
            f"{GEOGRAPHIC} ({shapely.is_valid_reason(degrees[first])}; {len(broken)} {kind}): a zero-width "
            "spike or edges a hair apart; expected polygons that stay valid in degrees (as make_grids and "
            "plan_communities draw them)")


# --------------------------------------------------------------------------- lineage and diff


def attribute_text(layer: gpd.GeoDataFrame) -> pd.Series:
    """Each row's attributes (everything but the geometry) as JSON text, by key order of the columns."""
    plain = pd.DataFrame(layer.drop(columns=layer.geometry.name))
    if len(plain) == 0:
        return pd.Series([], index=layer.index, dtype=object)
    # one C-level serialisation for the whole layer (a JSON line per row: strings hold no raw newlines)
    lines = plain.to_json(orient="records", lines=True, force_ascii=False, date_format="iso").splitlines()
    return pd.Series(lines, index=layer.index, dtype=object)


def all_changes(before: Boundaries, after: Boundaries) -> dict[str, dict[str, set]]:
    """:func:`changed_codes` of communities, units and grids (computed once, passed to the others)."""
    return {kind: changed_codes(getattr(before, kind), getattr(after, kind), KEYS[kind])
            for kind in ("communities", "units", "grids")}


def changed_codes(before: gpd.GeoDataFrame | None, after: gpd.GeoDataFrame | None, key: str) -> dict[str, set]:
    """Codes ``created`` (only after), ``retired`` (only before) and ``changed`` (in both, geometry or
    attributes differ)."""
    old = pd.Index([] if before is None else before[key].astype(str).to_numpy(), dtype=object)
    new = pd.Index([] if after is None else after[key].astype(str).to_numpy(), dtype=object)
    both = old.intersection(new)
    out = {"created": set(new.difference(old)), "retired": set(old.difference(new)), "changed": set()}
    if len(both) == 0 or before is None or after is None:
        return out
    at_old, at_new = old.get_indexer(both), new.get_indexer(both)
    differs = ~shapely.equals_identical(np.asarray(before.geometry.values, dtype=object)[at_old],
                                        np.asarray(after.geometry.values, dtype=object)[at_new])
    columns = [c for c in dict.fromkeys([*before.columns, *after.columns])
               if c not in (before.geometry.name, after.geometry.name)]
    for column in columns:
        if column not in before.columns or column not in after.columns:
            differs[:] = True
            break
        differs |= ~_same_values(before[column].to_numpy(object)[at_old], after[column].to_numpy(object)[at_new])
    out["changed"] = set(both[differs])
    return out


def _same_values(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise equality of two object arrays, missing values (None, NaN, NA, NaT) equal to each other."""
    missing_a, missing_b = pd.isna(a), pd.isna(b)
    same = missing_a & missing_b
    both = ~missing_a & ~missing_b
    same[both] = np.asarray(a[both] == b[both], dtype=bool)
    return same


def _grid_of_units(geometries: Any, grids: gpd.GeoDataFrame | None) -> np.ndarray:
    """The grid each unit's representative point lies in (units in the grids' CRS), None outside."""
    if grids is None or len(grids) == 0:
        return np.full(len(geometries), None, dtype=object)
    from jngis.assign import PolygonIndex

    points = shapely.point_on_surface(np.asarray(geometries, dtype=object))
    found = PolygonIndex(grids, key="grid_code").locate_xy(shapely.get_x(points), shapely.get_y(points))
    return np.array([None if pd.isna(v) else str(v) for v in pd.Series(found).astype(object)], dtype=object)


def _flows(kind: str, before_of: np.ndarray, after_of: np.ndarray, households: np.ndarray,
           touched: set) -> pd.DataFrame:
    frame = pd.DataFrame({"from_code": before_of, "to_code": after_of, "households": households, "units": 1})
    keep = frame["from_code"].isin(touched) | frame["to_code"].isin(touched)
    flows = frame[keep].groupby(["from_code", "to_code"], dropna=False, sort=True)[["households", "units"]].sum()
    flows = flows.reset_index()
    flows.insert(0, "kind", kind)
    return flows.astype({"households": np.int64, "units": np.int64})


def lineage(before: Boundaries, after: Boundaries, *, changes: Mapping[str, dict[str, set]] | None = None
            ) -> pd.DataFrame:
    """Where the units and households of every changed community and grid went.

    One row per (kind, from_code, to_code) touching a changed code:
    ``households`` and ``units`` that were in ``from_code`` and are in
    ``to_code`` (a kept part has ``from_code == to_code``; None where a unit
    was in no grid).
    """
    units = after.units.set_index("unit_id")
    old_units = before.units.set_index("unit_id").reindex(units.index)
    households = units["households"].to_numpy(np.int64)
    parts = []
    changes = all_changes(before, after) if changes is None else changes
    touched = changes["communities"]
    away = old_units["community_code"].to_numpy() != units["community_code"].to_numpy()
    moved = set(old_units["community_code"][away]) | set(units["community_code"][away])
    parts.append(_flows("communities", old_units["community_code"].to_numpy(object),
                        units["community_code"].to_numpy(object), households,
                        moved | touched["created"] | touched["retired"] | touched["changed"]))
    grid_touched = changes["grids"]
    parts.append(_flows("grids", _grid_of_units(old_units.geometry.values, before.grids),
                        _grid_of_units(units.geometry.values, after.grids),
                        households, set().union(*grid_touched.values())))
    return pd.concat(parts, ignore_index=True)


def _changes(flows: pd.DataFrame, codes: dict[str, set]) -> pd.DataFrame:
    """One row per changed code: created, dissolved, split (units went to a new code as well),
    merged (units came from a dissolved code as well) or adjusted."""
    real = flows[flows["households"].gt(0) | flows["units"].gt(0)]
    crossing = real[real["from_code"].to_numpy() != real["to_code"].to_numpy()]
    listed = codes["created"] | codes["retired"] | codes["changed"] | \
        set(crossing["from_code"].dropna()) | set(crossing["to_code"].dropna())
    targets: dict[str, set] = {}
    sources: dict[str, set] = {}
    for a, b in zip(real["from_code"].astype(object), real["to_code"].astype(object)):
        if isinstance(a, str) and isinstance(b, str):
            targets.setdefault(a, set()).add(b)
            sources.setdefault(b, set()).add(a)
    before = real.groupby("from_code")["households"].sum()
    after = real.groupby("to_code")["households"].sum()
    rows = []
    for code in sorted(listed):
        out, into = targets.get(code, set()), sources.get(code, set())
        change = ("dissolved" if code in codes["retired"] else "created" if code in codes["created"]
                  else "split" if len(out) > 1 and out & codes["created"]
                  else "merged" if len(into) > 1 and into & codes["retired"] else "adjusted")
        rows.append((code, change, int(before.get(code, 0)), int(after.get(code, 0)),
                     ", ".join(sorted((out | into) - {code}))))
    return pd.DataFrame(rows, columns=["code", "change", "households_before", "households_after", "partners"])


def _no_orders() -> pd.DataFrame:
    return pd.DataFrame(columns=["order_id", "from_grid", "to_grid", "version_id"])


def diff(before: Boundaries, after: Boundaries, *, version_a: int | None = None, version_b: int | None = None,
         flows: pd.DataFrame | None = None, orders: pd.DataFrame | None = None,
         changes: Mapping[str, dict[str, set]] | None = None) -> VersionDiff:
    """What changed from ``before`` to ``after`` (``flows``: their :func:`lineage`, ``changes``: their
    :func:`all_changes`, computed if None)."""
    changes = all_changes(before, after) if changes is None else changes
    flows = lineage(before, after, changes=changes) if flows is None else flows
    units = after.units.set_index("unit_id")
    old = before.units.set_index("unit_id").reindex(units.index)
    moved = old["community_code"].to_numpy() != units["community_code"].to_numpy()
    moves = pd.DataFrame({"unit_id": units.index[moved], "from": old["community_code"].to_numpy()[moved],
                          "to": units["community_code"].to_numpy()[moved],
                          "households": units["households"].to_numpy(np.int64)[moved]})
    parts = {}
    for kind in ("communities", "grids"):
        mine = flows[flows["kind"] == kind]
        codes = changes[kind]
        parts[kind] = _changes(mine, codes)
    orders = _no_orders() if orders is None else orders
    summary = {"units_moved": int(moved.sum()), "households_moved": int(moves["households"].sum()),
               "orders_replaced": int(len(orders))}
    for kind, table in parts.items():
        for change in ("created", "split", "merged", "dissolved", "adjusted"):
            summary[f"{kind}_{change}"] = int((table["change"] == change).sum())
    return VersionDiff(version_a, version_b, summary, parts["communities"], parts["grids"], moves, flows, orders)
