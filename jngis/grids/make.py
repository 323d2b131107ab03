"""The phases of :func:`make_grids`: checks, one task per community, the run, the grids layer."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis import _checks
from jngis.adjacency import shared_edges
from jngis.codes import GRID_HOUSEHOLDS
from jngis.errors import CRSError, GeometryError, InputTypeError, ParameterError, SchemaError
from jngis.grids.community import TILING_TOLERANCE, CommunityTask, batch, one_community
from jngis.grids.staffing import STAFF_COLUMNS, Staffing, check_staffing
from jngis.layers import validate
from jngis.regions import headroom_band, preferred_band
from jngis.topology import coverage_errors, overlaps

__all__ = ["make_grids", "GridOptions"]

FUNC = "make_grids"


@dataclass(frozen=True)
class GridOptions:
    """The checked parameters of one :func:`make_grids` call."""

    low: int
    high: int
    dedicated_min_area: float | None
    seed: int
    staff: Staffing
    workers: int
    progress: bool
    band: tuple[int, int] | None = None
    preferred: tuple[int, int] | None = None
    retired: frozenset[str] = frozenset()


# Long only by its numpydoc docstring (parameters, returns, raises, example); the body is the phases.
def make_grids(
    communities: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    *,
    min_households: int = GRID_HOUSEHOLDS[0],
    max_households: int = GRID_HOUSEHOLDS[1],
    dedicated_min_area: float | None = None,
    previous: gpd.GeoDataFrame | None = None,
    seed: int = 0,
    staffing: Staffing | dict | None = None,
    progress: bool = False,
    workers: int = 1,
    preferred: tuple[int, int] | None = None,
    headroom: float | tuple[float, float] | None = None,
    retired: Iterable[str] = (),
) -> gpd.GeoDataFrame:
    """Divide every community into management grids that tile it exactly.

    Parameters
    ----------
    communities : GeoDataFrame
        Kind "communities", in a projected CRS (metres). They must not overlap.
    units : GeoDataFrame
        Kind "units" (residential blocks or buildings), same CRS, each inside
        the community its ``community_code`` names. Land of a community not
        covered by units is open land.
    min_households, max_households : int
        Household bounds of a residential grid (default 300-500).
    dedicated_min_area : float, optional
        Connected open land (no units, no households) of at least this many
        m² becomes a dedicated grid (专属网格: campus, park, market). ``None``
        (default): all open land joins the neighbouring residential grids.
    previous : GeoDataFrame, optional
        Grids from an earlier run (kind "grids"). A community whose previous
        grids still tile it (as a valid coverage: neighbours share their edges
        vertex for vertex) and still hold the same households (each unit in
        the same grid) keeps those rows unchanged; only the others are regridded.
    seed : int
        Seed of the spanning-tree sampling; the same input and seed give the
        same grids.
    staffing : Staffing or dict, optional
        Staff per grid ("1+1+N+X"); default one grid leader and one full-time
        grid worker.
    progress : bool
        Show a tqdm progress bar over communities.
    workers : int
        Processes to use (communities are independent); 1 (default) runs in
        this process. The result does not depend on it.
    preferred : (int, int), optional
        A preferred grid size inside the bounds (say 350–450): after the
        bounds are met, boundary units move towards it; the bounds stay hard.
    headroom : float, int or (above_min, below_max), optional
        Households kept free below ``max_households`` and above
        ``min_households`` (a share of the bound or a number, one value or a
        pair, as in :func:`jngis.rebalance.rebalance`): the number of grids
        and the cuts aim at the band it leaves, and a community whose grids
        would then leave the bounds more often than without it keeps the
        plain grids.
    retired : iterable of str
        Grid codes retired by earlier boundary versions
        (``store.retired_codes("grids")``): no new grid takes one (a retired
        code is never given to another area); the grids of a community are
        numbered in the same order, skipping them.

    Returns
    -------
    GeoDataFrame
        Kind "grids", one row per grid, in the input CRS: ``grid_code``,
        ``community_code``, ``street_code``, ``grid_type`` ("residential" /
        "dedicated"), ``households``, ``population``, ``units``, ``area_m2``,
        ``grid_leaders``, ``full_time_workers``, ``part_time_workers``,
        ``enforcement_officers``, ``workers_needed``, ``geometry``. Sorted by
        ``grid_code`` (see the module docstring for the numbering rule).

    Raises
    ------
    CRSError
        A geographic or missing CRS, or communities and units in different CRSs.
    ParameterError
        ``min_households > max_households``, non-positive bounds, bad options,
        ``retired`` codes that are not 15 digits or that a kept grid of
        ``previous`` still has.
    GeometryError
        A unit outside every community, or communities that overlap.
    SchemaError
        A layer that does not validate, or a unit whose community is missing.

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> city = load_slice()
    >>> grids = make_grids(city.communities, city.units)
    >>> grids.groupby("community_code").size().tolist()
    [8, 4, 5, 6, 2]
    >>> grids["grid_code"].iloc[0], bool(grids["households"].between(300, 500).mean() > 0.8)
    ('370102003001001', True)
    """
    _check_layers(communities, units, previous)
    options = GridOptions(
        low=_checks.whole(FUNC, "min_households", min_households, minimum=1),
        high=_checks.whole(FUNC, "max_households", max_households, minimum=1),
        dedicated_min_area=None if dedicated_min_area is None else _checks.require(
            FUNC, "dedicated_min_area", dedicated_min_area, _positive(dedicated_min_area),
            "None or a positive area in m²"),
        seed=_checks.require(FUNC, "seed", seed, isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
                             and seed >= 0, "a non-negative integer"),
        staff=check_staffing(staffing), workers=_checks.whole(FUNC, "workers", workers, minimum=1),
        progress=bool(progress))
    if options.low > options.high:
        raise ParameterError(f"{FUNC}: min_households={options.low} > max_households={options.high}; expected "
                             "min_households <= max_households")
    options = dataclasses.replace(options, band=headroom_band(FUNC, headroom, options.low, options.high),
                                  preferred=preferred_band(FUNC, preferred, options.low, options.high),
                                  retired=_checks.codes(FUNC, "retired", retired, digits=15,
                                                        what="retired grid codes"))
    _check_overlaps(communities)
    community_of = _unit_community(units, communities)
    keep = _unchanged(previous, communities, units,
                      shapely.point_on_surface(np.asarray(units.geometry.values, dtype=object)))
    _check_retired_kept(options.retired, previous, keep)
    tasks = _tasks(communities, units, community_of, keep, options)
    rows = _run(tasks, options.workers, options.progress)
    return _grids_layer(rows, communities, options.staff, previous, keep)


def _positive(value) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float, np.number)) and bool(np.isfinite(value))
            and bool(value > 0))


def _check_layers(communities, units, previous) -> None:
    """Both layers valid, in one metric CRS; ``previous`` a valid grids layer in it too, or None."""
    for name, layer in (("communities", communities), ("units", units)):
        _checks.geodataframe(FUNC, name, layer)
        _checks.metric_crs(FUNC, name, layer)
    validate(communities, "communities")
    validate(units, "units")
    if communities.crs != units.crs:
        raise CRSError(f"{FUNC}: communities are in {communities.crs.to_string()} but units in "
                       f"{units.crs.to_string()}; expected one CRS (reproject with .to_crs)")
    if previous is not None:
        if not isinstance(previous, gpd.GeoDataFrame):
            raise InputTypeError(f"{FUNC}: previous is a {type(previous).__name__}; expected a GeoDataFrame "
                                 "of kind 'grids' or None")
        validate(previous, "grids")
        if previous.crs != communities.crs:
            raise CRSError(f"{FUNC}: previous grids are in {previous.crs} but communities in "
                           f"{communities.crs}; expected one CRS")


def _check_overlaps(communities: gpd.GeoDataFrame) -> None:
    left, right, area = overlaps(communities.geometry.values, min_area=TILING_TOLERANCE)
    if len(left):
        codes = communities["community_code"].to_numpy()
        raise GeometryError(
            f"{FUNC}: {len(left)} pair(s) of communities overlap, first {codes[left[0]]!r} and "
            f"{codes[right[0]]!r} by {area[0]:.1f} m²; expected communities that do not overlap"
        )


def _unit_community(units: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> np.ndarray:
    """Position of each unit's community; raises on units outside or in the wrong community."""
    codes = communities["community_code"].to_numpy()
    position = pd.Series(np.arange(len(codes)), index=codes)
    unknown = ~units["community_code"].isin(position.index).to_numpy()
    inside = shapely.point_on_surface(units.geometry.values)
    tree = shapely.STRtree(communities.geometry.values)
    unit_index, community_index = tree.query(inside, predicate="intersects")
    found = np.full(len(units), -1)
    found[unit_index] = community_index
    outside = found < 0
    if outside.any():
        first = np.flatnonzero(outside)[0]
        raise GeometryError(
            f"make_grids: {int(outside.sum())} unit(s) lie outside every community, first unit_id="
            f"{units['unit_id'].iloc[first]!r} at ({inside[first].x:.0f}, {inside[first].y:.0f}); expected every "
            "unit inside a community polygon (same CRS? units of another area?)"
        )
    if unknown.any():
        first = np.flatnonzero(unknown)[0]
        raise SchemaError(
            f"make_grids: unit_id={units['unit_id'].iloc[first]!r} has community_code="
            f"{units['community_code'].iloc[first]!r}, which is not in communities; expected the code of the "
            f"community it lies in ({codes[found[first]]!r})"
        )
    stated = position.reindex(units["community_code"].to_numpy()).to_numpy()
    # A unit on a community boundary may have its inner point in either polygon.
    wrong = stated != found
    if wrong.any():
        geoms = units.geometry.values
        own = communities.geometry.values[stated[wrong]]
        share = shapely.area(shapely.intersection(geoms[wrong], own)) / shapely.area(geoms[wrong])
        really = np.flatnonzero(wrong)[share < 0.5]
        if len(really):
            first = really[0]
            raise GeometryError(
                f"make_grids: unit_id={units['unit_id'].iloc[first]!r} has community_code="
                f"{units['community_code'].iloc[first]!r} but lies in community {codes[found[first]]!r}; "
                "expected units inside the community their code names"
            )
    return stated


def _tasks(communities: gpd.GeoDataFrame, units: gpd.GeoDataFrame, community_of: np.ndarray, keep: set,
           options: GridOptions) -> list[CommunityTask]:
    """One task per community to grid, its units sorted by unit_id (the input's row order does not matter)."""
    order = np.lexsort((units["unit_id"].astype(str).to_numpy(), community_of))
    unit_geoms = np.asarray(units.geometry.values, dtype=object)[order]
    community_of = community_of[order]
    households = units["households"].to_numpy(dtype=np.int64)[order]
    population = (units["population"].to_numpy(dtype=np.int64)[order] if "population" in units.columns
                  else np.zeros(len(units), dtype=np.int64))
    edge_a, edge_b, edge_length = shared_edges(unit_geoms, min_length=0.01)
    same = community_of[edge_a] == community_of[edge_b]
    edge_a, edge_b, edge_length = edge_a[same], edge_b[same], edge_length[same]
    edge_sort = np.argsort(community_of[edge_a], kind="stable")
    edge_a, edge_b, edge_length = edge_a[edge_sort], edge_b[edge_sort], edge_length[edge_sort]
    starts = np.searchsorted(community_of, np.arange(len(communities) + 1))
    retired: dict[str, set[int]] = {}
    for grid_code in options.retired:
        retired.setdefault(grid_code[:12], set()).add(int(grid_code[12:]))
    edge_starts = np.searchsorted(community_of[edge_a], np.arange(len(communities) + 1))
    tasks = []
    for c, (code, street_code, polygon) in enumerate(zip(communities["community_code"].to_numpy(),
                                                         communities["street_code"].to_numpy(),
                                                         communities.geometry.values)):
        if code in keep:
            continue
        s, e = starts[c], starts[c + 1]
        es, ee = edge_starts[c], edge_starts[c + 1]
        tasks.append(CommunityTask(
            code, street_code, polygon, unit_geoms[s:e], households[s:e], population[s:e],
            (edge_a[es:ee] - s, edge_b[es:ee] - s, edge_length[es:ee]), options.low, options.high,
            options.dedicated_min_area, options.seed, options.band, options.preferred,
            frozenset(retired.get(code, ()))))
    return tasks


def _run(tasks: list[CommunityTask], workers: int, progress: bool) -> list[tuple]:
    """The grid rows of every task, in this process or in a pool of ``workers`` processes."""
    rows: list[tuple] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc="grids", unit="community")
    try:
        if workers == 1 or len(tasks) < 2 * workers:
            for task in tasks:
                rows.extend(one_community(task))
                if bar is not None:
                    bar.update(1)
        else:
            from concurrent.futures import ProcessPoolExecutor

            # a few batches per worker: little pickling, even load
            size = max(1, math.ceil(len(tasks) / (workers * 8)))
            batches = [tasks[i:i + size] for i in range(0, len(tasks), size)]
            with ProcessPoolExecutor(max_workers=workers) as executor:
                try:
                    for batch_rows, done in executor.map(batch, batches):
                        rows.extend(batch_rows)
                        if bar is not None:
                            bar.update(done)
                except BaseException:  # Ctrl-C or an error in a worker: stop the others at once
                    executor.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        if bar is not None:
            bar.close()
    return rows


def _grids_layer(rows: list[tuple], communities: gpd.GeoDataFrame, staff: Staffing,
                 previous: gpd.GeoDataFrame | None, keep: set) -> gpd.GeoDataFrame:
    """The grids layer: new rows with area and staff, plus the kept previous grids, in code order."""
    columns = ["grid_code", "community_code", "street_code", "grid_type", "households", "population",
               "units", "geometry"]
    fresh = gpd.GeoDataFrame(rows, columns=columns, geometry="geometry", crs=communities.crs)
    fresh["area_m2"] = shapely.area(fresh.geometry.values)
    staff_table = np.array([staff.per_grid(h) for h in fresh["households"]], dtype=np.int64).reshape(-1, 4)
    for j, name in enumerate(STAFF_COLUMNS):
        fresh[name] = staff_table[:, j]
    fresh["workers_needed"] = staff_table.sum(axis=1)
    for name in ("households", "population", "units"):
        fresh[name] = fresh[name].astype(np.int64)
    fresh = fresh[[c for c in fresh.columns if c != "geometry"] + ["geometry"]]
    kept = [code for code in communities["community_code"].to_numpy() if code in keep]
    if kept and previous is not None:
        old = previous[previous["community_code"].isin(kept)]
        result = pd.concat([old, fresh], ignore_index=True) if len(fresh) else old.copy()
        result = gpd.GeoDataFrame(result, geometry=previous.geometry.name, crs=communities.crs)
    else:
        result = fresh
    result = result.sort_values("grid_code", kind="stable").reset_index(drop=True)
    return validate(result, "grids")


def _check_retired_kept(retired: frozenset[str], previous: gpd.GeoDataFrame | None, keep: set) -> None:
    """Refuse retired codes that grids kept from ``previous`` still have."""
    if previous is None or not retired or not keep:
        return
    kept = previous.loc[previous["community_code"].isin(keep), "grid_code"]
    in_use = sorted(retired & set(kept))
    if in_use:
        raise ParameterError(f"{FUNC}: retired has {in_use[0]!r} ({len(in_use)} codes), which a kept grid of "
                             "previous still has; expected codes no longer in use (e.g. "
                             "store.retired_codes('grids'))")


def _unchanged(previous: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, units: gpd.GeoDataFrame,
               unit_points: np.ndarray) -> set:
    """Communities whose previous grids still tile them and hold the same households."""
    if previous is None or len(previous) == 0:
        return set()
    keep = set()
    by_code = previous.groupby("community_code").indices
    tree = shapely.STRtree(previous.geometry.values)
    point_index, grid_index = tree.query(unit_points, predicate="within")
    counted = np.zeros(len(previous), dtype=np.int64)
    np.add.at(counted, grid_index, units["households"].to_numpy()[point_index])
    placed = np.zeros(len(units), dtype=bool)
    placed[point_index] = True
    unit_codes = units["community_code"].to_numpy()
    stray = set(unit_codes[~placed].tolist())  # a unit in no previous grid: its community changed
    stored = previous["households"].to_numpy()
    for code, polygon in zip(communities["community_code"].to_numpy(), communities.geometry.values):
        rows = by_code.get(code)
        if rows is None or code in stray:
            continue
        if not np.array_equal(counted[rows], stored[rows]):
            continue
        held = np.asarray(previous.geometry.values, dtype=object)[rows]
        # grids drawn before make_grids cleaned them may tile by area only (unmatched edges): redrawn
        if coverage_errors(held, polygon).worst > TILING_TOLERANCE or not shapely.coverage_is_valid(held):
            continue
        keep.add(code)
    return keep
