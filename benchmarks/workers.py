"""Warm grid tiles over loopback from ``jngis serve --workers N``: requests/s and p99 for N = 1 and 2.

The committed slice (one 街道) with its grids, every grid tile z10-16 over
it asked once to warm each worker, then the same tiles in a loop from one
async httpx client (16 connections) for ``--seconds``. On a shared machine
the absolute figures are noisy: compare the ratio of the two runs.

    python benchmarks/workers.py [--seconds 15] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from load import TOKEN, City, free_port, slice_with_grids, tile_of


def start(store: Path, port: int, workers: int, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "JNGIS_WRITE_TOKEN": TOKEN, "JNGIS_TILE_GEOMETRY_DIR": str(cache / "tiles"),
           "JNGIS_STATS_CACHE_DIR": str(cache / "stats")}
    process = subprocess.Popen([sys.executable, "-c", "from jngis.cli import main; main()", "serve",
                                "--store", str(store), "--port", str(port), "--workers", str(workers)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                time.sleep(3.0 * workers)  # the other workers finish loading too
                return process
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"jngis serve --workers {workers} did not answer in 300 s")


def grid_tiles(city: City) -> list[str]:
    lons, lats = zip(*city.places)
    low, high = city.zooms["grids"]
    paths = []
    for z in range(max(10, low), min(16, high) + 1):
        (x0, y1), (x1, y0) = tile_of(min(lons), min(lats), z), tile_of(max(lons), max(lats), z)
        paths += [f"/tiles/grids/{z}/{x}/{y}.mvt" for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    return paths


async def hammer(url: str, paths: list[str], seconds: float, concurrency: int) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def one(client: httpx.AsyncClient, offset: int) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < stop_at:
            began = time.perf_counter()
            response = await client.get(paths[i % len(paths)])
            latencies.append(time.perf_counter() - began)
            errors += response.status_code != 200
            i += concurrency

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(one(client, k) for k in range(concurrency)))
    return len(latencies), latencies, errors


def measure(store: Path, workers: int, seconds: float, concurrency: int, cache: Path) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(store, port, workers, cache)
    try:
        paths = grid_tiles(City.discover(url))
        asyncio.run(hammer(url, paths, max(3.0, seconds / 3), concurrency))  # warm every worker's cache
        count, latencies, errors = asyncio.run(hammer(url, paths, seconds, concurrency))
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {"workers": workers, "tiles": len(paths), "rps": count / seconds,
            "p50_ms": float(np.percentile(latencies, 50) * 1e3), "p99_ms": float(np.percentile(latencies, 99) * 1e3),
            "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jngis-workers-") as folder:
        store = slice_with_grids(Path(folder))
        rows = [measure(store, n, args.seconds, args.concurrency, Path(folder)) for n in args.workers]
    print(f"load average {os.getloadavg()[0]:.1f}; one async httpx client, {args.concurrency} connections")
    print("| workers | tiles | requests/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['workers']} | {row['tiles']} | {row['rps']:.0f} | {row['p50_ms']:.1f} | "
              f"{row['p99_ms']:.1f} | {row['errors']} |")
    print(f"ratio {rows[-1]['workers']} : {rows[0]['workers']} workers: {rows[-1]['rps'] / rows[0]['rps']:.2f}x "
          "requests/s")


if __name__ == "__main__":
    main()
