"""jngis.assign against geopandas.sjoin(points, polygons, predicate="within").

Side by side in one run, on the sample city's communities (850), its grids
(when the sample has them) and its 39,807 units (the ~19,000-grid scale and
finer), for 10k, 100k and 1M points: 95 % drawn in units weighted by
households (where work orders come from: dense, small polygons), 5 % uniform
over the city's bounding box (many outside). Prints points/s and the ratio,
and checks that the answers are identical wherever sjoin finds exactly one
polygon. Also timed: the STRtree + prepared-geometry path alone (what the
grid pre-pass saves) and a reused PolygonIndex. Wall seconds are the best of
alternating rounds; the CPU seconds (all threads) beside them show what the
threads of jngis.assign cost, and the load average printed first says how
busy the machine was.

    .venv/bin/python benchmarks/assign.py [--sizes 10000 100000 1000000]
        [--sets communities grids units] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import geopandas as gpd
import numpy as np
import shapely

from jngis.assign import PolygonIndex, assign
from jngis.errors import UnassignedPointsWarning
from jngis.sample import load_sample


def make_points(units: gpd.GeoDataFrame, n: int, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    weights = units["households"].to_numpy(float) + 1.0
    n_in = int(n * 0.95)
    pick = rng.choice(len(units), n_in, p=weights / weights.sum())
    bounds = shapely.bounds(np.asarray(units.geometry.values))[pick]
    minx, miny, maxx, maxy = units.total_bounds
    x = np.r_[rng.uniform(bounds[:, 0], bounds[:, 2]), rng.uniform(minx, maxx, n - n_in)]
    y = np.r_[rng.uniform(bounds[:, 1], bounds[:, 3]), rng.uniform(miny, maxy, n - n_in)]
    return gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=units.crs)


def timed(func, *args, **kwargs):
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - start


def timed_cpu(func, *args, **kwargs):
    """Result, wall seconds and CPU seconds (all threads of the process)."""
    cpu = time.process_time()
    result, wall = timed(func, *args, **kwargs)
    return result, wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--sets", nargs="+", default=["communities", "grids", "units"],
                        choices=["communities", "grids", "units"],
                        help="polygon sets to measure (grids only when the sample has them)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds per size; the best time of each is shown")
    args = parser.parse_args()
    warnings.simplefilter("ignore", UnassignedPointsWarning)
    city = load_sample()
    sets = [("communities", city.communities, "community_code")]
    if city.grids is not None:
        sets.append(("grids", city.grids, "grid_code"))
    sets.append(("units", city.units, "unit_id"))
    sets = [s for s in sets if s[0] in args.sets]
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} on "
          f"{len(os.sched_getaffinity(0))} cores")
    print(f"{'polygons':>12} {'n':>8} {'points':>9} | {'sjoin pts/s':>12} {'jngis pts/s':>12} "
          f"{'ratio':>6} | {'index pts/s':>12} {'ratio':>6} | {'strtree pts/s':>13} | "
          f"{'build s':>7} {'same':>5} | {'cpu s sjoin/jngis/index':>23}")
    for name, polygons, key in sets:
        index, build = timed(PolygonIndex, polygons, key=key)
        right = polygons[[key, "geometry"]]
        for n in args.sizes:
            points = make_points(city.units, n)
            # Alternating rounds, best of each: the machine is shared and its
            # load swings within seconds, which a single timing would carry.
            t_sjoin = t_assign = t_index = float("inf")
            c_sjoin = c_assign = c_index = float("inf")
            for _ in range(args.rounds):
                joined, t, c = timed_cpu(gpd.sjoin, points, right, predicate="within")
                t_sjoin, c_sjoin = min(t_sjoin, t), min(c_sjoin, c)
                ours, t, c = timed_cpu(assign, points, polygons, key=key)
                t_assign, c_assign = min(t_assign, t), min(c_assign, c)
                reused, t, c = timed_cpu(index.assign, points)
                t_index, c_index = min(t_index, t), min(c_index, c)
            x = shapely.get_x(points.geometry.values)
            y = shapely.get_y(points.geometry.values)
            _, t_tree = timed(index._exact, x, y)
            single = joined[~joined.index.duplicated(keep=False)]
            same = bool((ours.loc[single.index] == single[key]).all()
                        and reused.equals(ours))
            print(f"{name:>12} {len(polygons):>8} {n:>9,} | {n / t_sjoin:>12,.0f} "
                  f"{n / t_assign:>12,.0f} {t_sjoin / t_assign:>6.2f} | {n / t_index:>12,.0f} "
                  f"{t_sjoin / t_index:>6.2f} | {n / t_tree:>13,.0f} | {build:>7.2f} {str(same):>5} | "
                  f"{c_sjoin:>7.2f} {c_assign:>7.2f} {c_index:>7.2f}",
                  flush=True)
        print(f"{'':>12} index: {index.stats}")
    # A single-point lookup, as the work-order service does it.
    index = PolygonIndex(city.units, key="unit_id")
    rng = np.random.default_rng(1)
    minx, miny, maxx, maxy = city.units.total_bounds
    xs, ys = rng.uniform(minx, maxx, 2000), rng.uniform(miny, maxy, 2000)
    timings = []
    for x, y in zip(xs, ys):
        start = time.perf_counter()
        index.locate_xy(x, y)
        timings.append(time.perf_counter() - start)
    print(f"single-point locate_xy on units: median {np.median(timings) * 1e6:.0f} µs, "
          f"p99 {np.quantile(timings, 0.99) * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
