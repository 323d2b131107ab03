"""The server's per-grid table after writes: recomputed whole (before) against kept order by order (now).

Before, every burst of writes made the server read every order of the city
and place it in its grid again (``orders_frame`` + ``compute_table``). Now a
:class:`jngis.gridtable.LiveTable` keeps a :class:`jngis.stats.tally.GridTally`
and reads only the orders written since (``store.orders_changes``). Both run
here on the whole sample city (100,000 orders, 4,622 grids), on SQLite (a copy
of the sample GeoPackage) and on PostGIS (a throw-away cluster from
tests/pgcluster.py, or $JNGIS_BENCH_POSTGIS_DSN), side by side, and the two
tables are compared figure for figure.

    .venv/bin/python benchmarks/gridtable.py [--rounds 5] [--writes 1 20 200] [--skip-postgis]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pgcluster import postgis_cluster, schema_dsn  # noqa: E402

from jngis.gridtable import ORDER_COLUMNS, LiveTable, compute_table  # noqa: E402
from jngis.sample import load_sample, sample_path  # noqa: E402
from jngis.store import feed, open_store  # noqa: E402
from jngis.workorders import now_cst  # noqa: E402


def _spots(store, n: int) -> list[tuple[float, float]]:
    points = store.read_layer("communities").geometry.representative_point().to_crs("EPSG:4326")
    return [(points.x.iloc[i % len(points)], points.y.iloc[i % len(points)]) for i in range(n)]


def _write(store, spots, n: int, day: int) -> None:
    for i in range(n):
        lon, lat = spots[i % len(spots)]
        store.create_order(lon, lat, category="环境卫生", who="bench", at=dt.datetime(2026, 11, day, 9, 0, i % 60))


def _median_s(samples: list[float]) -> float:
    return statistics.median(samples)


def run(url: str, rounds: int, writes: list[int]) -> list[dict]:
    rows = []
    with open_store(url) as store:
        layers = {kind: store.read_layer(kind) for kind in ("grids", "stations", "party_orgs")}
        spots = _spots(store, max(writes))
        before = []
        for _ in range(rounds):  # what LiveTable did for every burst of writes before
            started = time.perf_counter()
            at = now_cst()
            compute_table(layers, store.orders_frame(now=at, columns=ORDER_COLUMNS), at)
            before.append(time.perf_counter() - started)
        live = LiveTable(store, layers, rest=0)
        started = time.perf_counter()
        live._compute(1)
        first = time.perf_counter() - started
        rows.append({"what": "every order read (first table)", "before": _median_s(before), "now": first})
        version = 1
        feed.SETTLE = 0.0  # the look-back re-reads up to FULL_OVERLAP orders for 10 s after a full read;
        # the figures below are the steady state, where it re-reads only the last 10 s of writes
        day = 1
        for n in writes:
            samples = []
            for _ in range(rounds):
                day = day % 28 + 1
                _write(store, spots, n, day)
                version += 1
                started = time.perf_counter()
                table = live._compute(version)
                samples.append(time.perf_counter() - started)
            rows.append({"what": f"after {n} write(s)", "before": _median_s(before), "now": _median_s(samples)})
        feed.SETTLE = 10.0
        at = pd.Timestamp(table.at)
        pd.testing.assert_frame_equal(table.table, compute_table(
            layers, store.orders_frame(now=at, columns=ORDER_COLUMNS), at))
        rows.append({"what": "tables equal (assert_frame_equal)", "before": float("nan"), "now": float("nan")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writes", type=int, nargs="+", default=[1, 20, 200])
    parser.add_argument("--skip-postgis", action="store_true")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "city.gpkg"
        shutil.copy(sample_path(), path)
        results["SQLite"] = run(str(path), args.rounds, args.writes)
        if not args.skip_postgis:
            with contextlib.ExitStack() as stack:
                dsn = os.environ.get("JNGIS_BENCH_POSTGIS_DSN") or stack.enter_context(postgis_cluster())
                url = schema_dsn(dsn)
                print("importing the sample city into PostGIS ...", flush=True)
                with open_store(url) as store:
                    store.write_city(load_sample())
                results["PostGIS"] = run(url, args.rounds, args.writes)
    print(f"\nmedian of {args.rounds} rounds, seconds; load average at end: {os.getloadavg()[0]:.2f}\n")
    print("| store | table computed | before (whole city) | now (tally) | ratio |")
    print("|---|---|---|---|---|")
    for backend, rows in results.items():
        for row in rows:
            if row["before"] != row["before"]:
                print(f"| {backend} | {row['what']} | | yes | |")
                continue
            print(f"| {backend} | {row['what']} | {row['before']:.3f} | {row['now']:.4f} | "
                  f"{row['before'] / row['now']:.1f}x |")


if __name__ == "__main__":
    main()
