"""Benchmark of jngis.make_grids on the full sample city (850 communities, 39,807 units).

Reports wall time, grids, share of residential grids within the household
bounds, mean Polsby-Popper compactness, contiguity and the worst coverage
error (gap / overlap / outside area against the community, m²), for the
default 300-500 households and for smaller bounds that give the real city's
~18,900 grids. Side by side: the same communities cut into regular square
cells of the mean grid's area (jngis.regular_grid), the naive alternative
that ignores households, and make_grids with `previous` (no change: every
community kept).

With --coverage: whether the layers are exact coverages of their parent (per community for grids,
per 街道 for communities and units): parents failing shapely.coverage_is_valid, polygons with edges
their neighbours do not share, overlapping pairs, parents whose children's union misses one of their
vertices or strays from their outline, and polygons invalid in the metric CRS, in WGS84 and in
CGCS2000 degrees; for the sample's units and communities, make_grids' grids, a whole-city plan's
communities (plan_communities) and their regridding (make_grids with previous=).

Run: .venv/bin/python benchmarks/grids.py [--quick] [--coverage]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import shapely

import jngis
from jngis.grids import grid_quality, make_grids, polsby_popper, regular_grid
from jngis.sample import load_sample, load_slice
from jngis.topology import overlaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the committed slice only")
    parser.add_argument("--coverage", action="store_true", help="the coverage figures only")
    args = parser.parse_args()
    city = load_slice() if args.quick else load_sample()
    if args.coverage:
        coverage(city)
        return
    communities, units = city.communities, city.units
    print(f"{len(communities):,} communities, {len(units):,} units, "
          f"{int(units['households'].sum()):,} households")
    rows = []
    for low, high, dedicated, workers in ((300, 500, None, 1), (300, 500, None, 2), (300, 500, 500_000, 1),
                                          (80, 120, None, 1)):
        started, cpu = time.perf_counter(), time.process_time()
        grids = make_grids(communities, units, min_households=low, max_households=high,
                           dedicated_min_area=dedicated, workers=workers)
        # CPU of this process only: with workers=2 the children's time is not counted
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        quality = grid_quality(grids, communities, units=units, min_households=low, max_households=high)
        name = (f"make_grids {low}-{high}" + (f", dedicated>={dedicated / 1e4:.0f} ha" if dedicated else "")
                + (f", workers={workers}" if workers > 1 else ""))
        rows.append((name, seconds, cpu, quality))
        if low == 300 and dedicated is None and workers == 1:
            default = grids
        elif low == 300 and dedicated is None:
            same_in_two = grids.equals(default)
    started, cpu = time.perf_counter(), time.process_time()
    again = make_grids(communities, units, previous=default)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    identical = bool((shapely.to_wkb(again.geometry.values) == shapely.to_wkb(default.geometry.values)).all()
                     and again.drop(columns="geometry").equals(default.drop(columns="geometry")))
    rows.append(("make_grids previous= (no change)", seconds, cpu, grid_quality(again, communities, units=units)))

    # Naive peer: square cells of the mean grid's area, cut by each community boundary.
    side = math.sqrt(default.geometry.area.mean())
    started, cpu_cells = time.perf_counter(), time.process_time()
    cells = regular_grid(communities, side)
    pieces = []
    tree = shapely.STRtree(communities.geometry.values)
    cell_index, community_index = tree.query(cells.geometry.values, predicate="intersects")
    pieces = shapely.intersection(cells.geometry.values[cell_index], communities.geometry.values[community_index])
    pieces = pieces[shapely.area(pieces) > 0]
    seconds_cells, cpu_cells = time.perf_counter() - started, time.process_time() - cpu_cells
    unit_points = shapely.point_on_surface(units.geometry.values)
    piece_tree = shapely.STRtree(pieces)
    point_index, piece_index = piece_tree.query(unit_points, predicate="within")
    households = np.bincount(piece_index, weights=units["households"].to_numpy()[point_index],
                             minlength=len(pieces))
    within_cells = float(((households >= 300) & (households <= 500)).mean())

    print(f"\n{'method':<42}{'wall s':>7}{'cpu s':>7}{'grids':>8}{'dedic.':>7}{'in bounds':>10}"
          f"{'(feasible)':>11}{'mean PP':>8}{'contig.':>8}{'worst err m²':>13}")
    for name, seconds, cpu, q in rows:
        print(f"{name:<42}{seconds:>7.1f}{cpu:>7.1f}{q['grids']:>8,}{q['dedicated']:>7,}"
              f"{q['within_bounds']:>10.1%}{q['within_bounds_feasible']:>11.1%}"
              f"{q['mean_polsby_popper']:>8.3f}{q['contiguous']:>8.1%}{q['worst_coverage_error']:>13.2e}")
    print(f"{'square cells of the mean grid area':<42}{seconds_cells:>7.1f}{cpu_cells:>7.1f}{len(pieces):>8,}"
          f"{0:>7}{within_cells:>10.1%}{'-':>11}{polsby_popper(pieces).mean():>8.3f}"
          f"{(shapely.get_num_geometries(pieces) == 1).mean():>8.1%}{'0 (clip)':>13}")
    print(f"\nprevious= with no change keeps every grid byte-identical: {identical}; "
          f"{rows[0][2] / rows[-1][2]:.1f}x less CPU than regridding")
    print("(feasible): share within bounds among grids without a unit that alone exceeds max_households, "
          "outside communities whose households no number of grids within the bounds can hold")
    print(f"workers=2 gives the same grids as workers=1: {same_in_two}")
    for name, _, _, q in rows[:4]:
        print(f"{name}: {q['above']:,} above, {q['below']:,} below; {q['unsplittable']:,} hold a unit "
              f"over the maximum; {q['unsplittable_community']:,} in communities no grid count fits")


def matches_parent(children: np.ndarray, whole) -> bool:
    """Children whose union is ``whole``: every vertex of it theirs, their outline within 1e-6 m of its."""
    try:
        union = shapely.coverage_union_all(children)
    except shapely.errors.GEOSException:
        return False
    ours = {tuple(c) for c in shapely.get_coordinates(children).tolist()}
    return (bool(union.is_valid) and all(tuple(c) in ours for c in shapely.get_coordinates(whole).tolist())
            and bool(shapely.hausdorff_distance(shapely.boundary(union), shapely.boundary(whole)) < 1e-6))


def coverage_figures(layer, key: str, parents=None) -> dict:
    """Per ``key`` (the parent's code): the coverage figures of ``layer`` (see the module docstring)."""
    geoms = np.asarray(layer.geometry.values, dtype=object)
    outline = dict(zip(parents[key], parents.geometry.values)) if parents is not None else {}
    groups = layer.groupby(key).indices
    figures = dict.fromkeys(("failing", "unmatched",
                             "overlaps", "off parent"), 0)
    for code, rows in groups.items():
        mine = geoms[rows]
        figures["failing"] += int(not shapely.coverage_is_valid(mine))
        figures["unmatched"] += int((~shapely.is_empty(shapely.coverage_invalid_edges(mine))).sum())
        figures["overlaps"] += len(overlaps(mine)[0])
        if code in outline:
            figures["off parent"] += int(not matches_parent(mine, outline[code]))
    figures["invalid m"] = int((~shapely.is_valid(geoms)).sum())
    for crs in ("EPSG:4326", "EPSG:4490"):
        figures[f"invalid {crs[5:]}"] = int((~shapely.is_valid(layer.to_crs(crs).geometry.values)).sum())
    return {"parents": len(groups), "polygons": len(layer), **figures}


def coverage(city) -> None:
    """The coverage figures of the city's units, communities, grids, and of a whole-city plan's layers."""
    from jngis.versions import Boundaries, proposal

    tables = {"units per community": coverage_figures(city.units, "community_code"),
              "units per 街道": coverage_figures(city.units, "street_code"),
              "communities per 街道": coverage_figures(city.communities, "street_code", city.streets)}
    edges = shapely.coverage_invalid_edges(np.asarray(city.units.geometry.values, dtype=object))
    print(f"units of the whole city (across 街道 too): {int((~shapely.is_empty(edges)).sum()):,} with "
          "unmatched edges")
    started, cpu = time.perf_counter(), time.process_time()
    grids = make_grids(city.communities, city.units)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    quality = grid_quality(grids, city.communities, units=city.units)
    print(f"make_grids 300-500: {seconds:.1f} s wall, {cpu:.1f} s CPU, {len(grids):,} grids, feasible within "
          f"bounds {quality['within_bounds_feasible']:.2%}, worst coverage error "
          f"{quality['worst_coverage_error']:.2e} m²")
    tables["make_grids per community"] = coverage_figures(grids, "community_code", city.communities)
    if city.streets["street_code"].nunique() > 1:
        plan = jngis.rebalance(city.units, min_households=1000, max_households=3000, workers=2, progress=False)
        before = Boundaries.of(city)
        started = time.perf_counter()
        proposed = proposal(plan, before, grids=city.grids)
        print(f"plan_communities (in proposal): {time.perf_counter() - started:.1f} s, "
              f"{len(proposed.communities):,} communities")
        tables["a plan's communities per 街道"] = coverage_figures(proposed.communities, "street_code", city.streets)
        regridded = make_grids(proposed.communities, proposed.units, previous=city.grids)
        tables["its regridding per community"] = coverage_figures(regridded, "community_code",
                                                                  proposed.communities)
    names = list(next(iter(tables.values())))
    print(f"\n{'layer':<32}" + "".join(f"{n:>13}" for n in names))
    for layer, figures in tables.items():
        print(f"{layer:<32}" + "".join(f"{figures[n]:>13,}" for n in names))
    print("failing: parents failing coverage_is_valid; unmatched: polygons with edges a neighbour does not share; "
          "overlaps: overlapping pairs; off parent: parents whose children's union misses one of their vertices or "
          "strays from their outline; invalid m / 4326 / 4490: invalid polygons in the metric CRS, WGS84, CGCS2000")


if __name__ == "__main__":
    main()
