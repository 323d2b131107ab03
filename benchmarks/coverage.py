"""jngis.suggest_sites (greedy, lazy gains) against spopt's MCLP (exact, CBC via PuLP).

Same input for both: the units of one district of the sample city as demand
(households at each unit's representative point), existing stations' coverage
taken out (demand already within the radius of a station weighs 0 for MCLP,
which is what suggest_sites does), candidate sites drawn among the units'
points, k sites, radius 500 m. Prints households newly covered and seconds.
Also times jngis.coverage on the whole city.

    .venv/bin/python benchmarks/coverage.py [--district 370112] [--candidates 400]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# This file is named coverage.py: keep its folder off sys.path, or numba (via
# spopt) would import it instead of the coverage.py package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import pulp  # noqa: E402
import shapely  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402
from spopt.locate import MCLP  # noqa: E402

from jngis.sample import load_sample  # noqa: E402
from jngis.stats import coverage, suggest_sites  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--district", default="370112")
    parser.add_argument("--candidates", type=int, default=400)
    parser.add_argument("--radius", type=float, default=500.0)
    args = parser.parse_args()
    city = load_sample()

    start = time.perf_counter()
    result = coverage(city.units, city.stations, communities=city.communities)
    print(f"coverage(): {len(city.units):,} units, {len(city.stations):,} stations: "
          f"{time.perf_counter() - start:.2f} s; city share within 300/500/1000 m: "
          + ", ".join(f"{(result.units['households'] * result.units[f'within_{r}m']).sum() / result.units['households'].sum():.3f}"  # noqa: E501
                      for r in (300, 500, 1000)))

    units = city.units[city.units["street_code"].str.startswith(args.district)]
    rng = np.random.default_rng(0)
    demand = shapely.get_coordinates(shapely.point_on_surface(units.geometry.values))
    picks = rng.choice(len(demand), min(args.candidates, len(demand)), replace=False)
    sites = gpd.GeoDataFrame({"site": picks}, geometry=gpd.points_from_xy(*demand[picks].T),
                             crs=units.crs)
    station_xy = shapely.get_coordinates(city.stations.geometry.values)
    covered = cKDTree(station_xy).query(demand, k=1)[0] <= args.radius
    weights = np.where(covered, 0, units["households"].to_numpy())
    cost = np.hypot(demand[:, None, 0] - demand[None, picks, 0],
                    demand[:, None, 1] - demand[None, picks, 1])
    print(f"district {args.district}: {len(units):,} units, {units['households'].sum():,} "
          f"households, {int(units['households'].to_numpy()[covered].sum()):,} already within "
          f"{args.radius:.0f} m of a station; {len(picks)} candidate sites")
    print(f"{'k':>3} | {'jngis new hh':>12} {'jngis s':>8} | {'MCLP new hh':>11} {'MCLP s':>8} | "
          f"{'jngis/MCLP':>10}")
    for k in (1, 5, 10, 20):
        start = time.perf_counter()
        ours = suggest_sites(units, city.stations, sites, k, radius=args.radius)
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        model = MCLP.from_cost_matrix(cost, weights, service_radius=args.radius, p_facilities=k)
        model = model.solve(pulp.PULP_CBC_CMD(msg=False))
        t_mclp = time.perf_counter() - start
        chosen = [j for j in range(len(picks)) if model.fac2cli[j]]
        reach = (cost[:, chosen] <= args.radius).any(axis=1) if chosen else np.zeros(len(units), bool)
        mclp_new = int(weights[reach].sum())
        ours_new = int(ours["new_households"].sum())
        print(f"{k:>3} | {ours_new:>12,} {t_ours:>8.3f} | {mclp_new:>11,} {t_mclp:>8.2f} | "
              f"{ours_new / mclp_new if mclp_new else float('nan'):>10.4f}", flush=True)


if __name__ == "__main__":
    main()
