"""Store speed: bulk import (orders/s), single creates and transitions, concurrent writers.

Runs the same work against SQLiteStore (a copy of the sample city GeoPackage)
and PostGISStore (a throw-away PostgreSQL + PostGIS cluster from
tests/pgcluster.py, or $JNGIS_BENCH_POSTGIS_DSN) and prints them side by side.

    .venv/bin/python benchmarks/store.py [--orders 20000] [--threads 4] [--processes 2]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pgcluster import postgis_cluster  # noqa: E402

from jngis.errors import InvalidTransition  # noqa: E402
from jngis.sample import load_sample, sample_path  # noqa: E402
from jngis.store import open_store  # noqa: E402
from jngis.workorders import check_trail  # noqa: E402

FORWARD = {"received": "dispatched", "dispatched": "in_progress", "in_progress": "resolved",
           "resolved": "closed"}
AT = dt.datetime(2026, 10, 20, 9)


def postgis_dsn() -> contextlib.AbstractContextManager[str]:
    """$JNGIS_BENCH_POSTGIS_DSN, or a throw-away cluster (tests/pgcluster.py) for the run."""
    dsn = os.environ.get("JNGIS_BENCH_POSTGIS_DSN")
    return contextlib.nullcontext(dsn) if dsn else postgis_cluster()


def synthetic_rows(city, n: int, seed: int = 7) -> pd.DataFrame:
    """n orders at random unit centroids, as clean_order_rows would return them."""
    rng = np.random.default_rng(seed)
    points = city.units.geometry.representative_point().to_crs("EPSG:4326")
    pick = rng.integers(len(points), size=n)
    return pd.DataFrame({
        "lon": points.x.to_numpy()[pick], "lat": points.y.to_numpy()[pick], "category": "环境卫生",
        "description": "楼道堆物", "caller_name": "市民", "caller_phone": "13800000000",
        "received_at": pd.Timestamp("2026-10-20 08:00"), "order_id": None,
    }, index=pd.RangeIndex(2, n + 2))


def _worker(url, lonlat, shared, creates, steps, seed, out=None):
    rng = np.random.default_rng(seed)
    done = refused = 0
    with open_store(url) as store:
        for _ in range(creates):
            store.create_order(*lonlat, category="c", who=f"w{seed}", at=AT)
        while done < steps:
            order_id = shared[rng.integers(len(shared))]
            state = store.get_order(order_id)["status"]
            if state not in FORWARD:
                if all(store.get_order(o)["status"] == "closed" for o in shared):
                    raise RuntimeError("every shared order is closed: raise the number of shared orders")
                continue
            try:
                store.transition(order_id, FORWARD[state], who=f"w{seed}", at=AT)
                done += 1
            except InvalidTransition:
                refused += 1
    if out is not None:
        out.append((done, refused))
    return done, refused


def _proc(args):
    return _worker(*args)


def measure(label: str, url: str, city, rows: pd.DataFrame, threads: int, processes: int) -> dict:
    figures = {}
    started = time.perf_counter()
    with open_store(url) as store:
        figures["open (history import, first time) s"] = time.perf_counter() - started
        if not store.count_orders():
            started = time.perf_counter()
            store.write_city(city)
            figures["write_city incl. 100k history s"] = time.perf_counter() - started
        result = store.import_orders(rows, who="bench")
        figures["bulk import orders/s"] = result.imported / result.seconds
        lonlat = tuple(rows[["lon", "lat"]].iloc[0])
        started = time.perf_counter()
        created = [store.create_order(*lonlat, category="c", who="bench", at=AT)["order_id"] for _ in range(200)]
        figures["create_order /s (1 writer)"] = 200 / (time.perf_counter() - started)
        started = time.perf_counter()
        for order_id in created:
            store.transition(order_id, "dispatched", who="bench", at=AT)
        figures["transition /s (1 writer)"] = 200 / (time.perf_counter() - started)
        # 4 forward steps per shared order: enough for every worker's steps
        shared = [store.create_order(*lonlat, category="c", who="bench", at=AT)["order_id"] for _ in range(150)]
        before_orders, before_trail = store.count_orders(), len(store.trail_frame())
    creates, steps = 50, 40
    started = time.perf_counter()
    out: list = []
    pool = [threading.Thread(target=_worker, args=(url, lonlat, shared, creates, steps, i, out))
            for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - started
    figures[f"{threads} threads: writes/s"] = threads * (creates + steps) / seconds
    figures[f"{threads} threads: refused races"] = sum(r for _, r in out)
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(processes) as procs:
        results = procs.map(_proc, [(url, lonlat, shared, creates, steps, 100 + i) for i in range(processes)])
    seconds = time.perf_counter() - started
    figures[f"{processes} processes: writes/s (incl. start)"] = processes * (creates + steps) / seconds
    figures[f"{processes} processes: refused races"] = sum(r for _, r in results)
    with open_store(url) as store:
        orders, trail = store.orders_frame(), store.trail_frame()
    expected_orders = before_orders + (threads + processes) * creates
    expected_trail = before_trail + (threads + processes) * (creates + steps)
    figures["orders / trail rows as expected"] = (len(orders) == expected_orders and len(trail) == expected_trail)
    figures["states consistent with trails"] = check_trail(orders, trail).empty
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    city = load_sample()
    rows = synthetic_rows(city, args.orders)
    work = Path(tempfile.mkdtemp(prefix="jngis-bench-"))
    gpkg = work / "city.gpkg"
    shutil.copy(sample_path(), gpkg)
    try:
        with postgis_dsn() as dsn:
            sqlite = measure("SQLite", str(gpkg), city, rows, args.threads, args.processes)
            postgis = measure("PostGIS", dsn, city, rows, args.threads, args.processes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"store benchmark: {args.orders:,} bulk orders, sample city (100,000 historical orders)")
    print(f"{'measure':<42} {'SQLite':>12} {'PostGIS':>12} {'SQLite/PostGIS':>15}")
    for key in list(sqlite) + [k for k in postgis if k not in sqlite]:
        a, b = sqlite.get(key, float("nan")), postgis.get(key, float("nan"))
        if isinstance(a, bool):
            print(f"{key:<42} {str(a):>12} {str(b):>12}")
        else:
            ratio = a / b if b else float("nan")
            print(f"{key:<42} {a:>12,.1f} {b:>12,.1f} {ratio:>14.2f}x")


if __name__ == "__main__":
    main()
