"""The library's main tasks timed on an earlier commit and on this checkout, side by side in one run.

    python benchmarks/versus.py REV [--rounds 3]

REV's tree is checked out into a temporary git worktree; every task runs in a fresh
subprocess with ``PYTHONPATH`` pointing at one tree or the other, alternating (old, new,
old, new, ...), so both see the same machine load. Each task is timed after a warm-up call
in the same process (numba compiled, caches filled), and the best of the rounds is kept.
Prints one table: task, old seconds, new seconds, new/old.

Tasks (the sample city, ``jngis sample``): assign 1 M points into the grids and into the
units (a fresh PolygonIndex each time), grid_stats with every layer, rebalance of the
largest district's units, make_grids of one 街道, polsby_popper of every unit,
the store's placement of 2,000 work orders (SQLite), the vector tiles of a z14 block.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

TASKS = ("assign_grids", "assign_units", "grid_stats", "rebalance_district", "make_grids_street",
         "polsby_popper", "store_orders", "tiles_z14")

_RUNNER = r'''
import json, sys, time, tempfile, os, warnings
import numpy as np
warnings.simplefilter("ignore")
import geopandas as gpd
import jngis
from jngis.sample import load_sample

task = sys.argv[1]
city = load_sample()
rng = np.random.default_rng(7)
units, grids, communities = city.units, city.grids, city.communities


def points(n, frame):
    x0, y0, x1, y1 = frame.total_bounds
    return gpd.GeoDataFrame(geometry=gpd.points_from_xy(rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)),
                            crs=frame.crs)


if task.startswith("assign"):
    polys, key = (grids, "grid_code") if task == "assign_grids" else (units, "unit_id")
    pts = points(1_000_000, polys)
    run = lambda: jngis.assign(pts, polys, key=key)
elif task == "grid_stats":
    run = lambda: jngis.grid_stats(grids, stations=city.stations, party_orgs=city.party_orgs,
                                   workorders=city.workorders, units=units)
elif task == "rebalance_district":
    district = units["street_code"].str[:6].value_counts().index[0]
    part = units[units["street_code"].str.startswith(district)]
    run = lambda: jngis.rebalance(part)
elif task == "make_grids_street":
    from jngis.grids import make_grids
    street = communities["street_code"].value_counts().index[0]
    comms = communities[communities["street_code"] == street]
    part = units[units["street_code"] == street]
    run = lambda: make_grids(comms, part)
elif task == "polsby_popper":
    run = lambda: jngis.polsby_popper(units)
elif task == "store_orders":
    from jngis.store import open_store
    folder = tempfile.mkdtemp()
    import inspect
    create = {"create": True} if "create" in inspect.signature(open_store).parameters else {}
    store = open_store(os.path.join(folder, "city.gpkg"), **create)
    store.write_city(city)
    lonlat = grids.to_crs(4326).representative_point()
    pick = rng.integers(0, len(lonlat), 2000)
    xs, ys = lonlat.x.values[pick], lonlat.y.values[pick]

    def run():
        for x, y in zip(xs, ys):
            store.create_order(float(x), float(y), category="环境卫生", who="bench")
elif task == "tiles_z14":
    import math
    from jngis.tiles import VectorTiles
    tiles = VectorTiles({"grids": grids})
    lon, lat = grids.to_crs(4326).union_all().centroid.coords[0]
    cx = int((lon + 180) / 360 * 2 ** 14)
    cy = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** 14)
    block = [(14, cx + dx, cy + dy) for dx in range(-3, 4) for dy in range(-3, 4)]

    def run():
        for z, x, y in block:
            tiles.tile("grids", z, x, y)
else:
    raise SystemExit(f"unknown task {task}")

run()  # warm-up: numba compiled, caches filled
if task == "store_orders":
    pick = rng.integers(0, len(lonlat), 2000)
    xs, ys = lonlat.x.values[pick], lonlat.y.values[pick]
if task == "tiles_z14":
    tiles = VectorTiles({"grids": grids})
start = time.perf_counter()
run()
print(json.dumps({"seconds": time.perf_counter() - start}))
'''


def _time(tree: Path, task: str) -> float | None:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, "-c", _RUNNER, task], env=env, capture_output=True, text=True,
                          timeout=1800, cwd=tempfile.gettempdir())
    if done.returncode != 0:
        print(f"  {task} on {tree.name}: failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the earlier commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", default=",".join(TASKS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        old = Path(folder) / "old"
        subprocess.run(["git", "-C", str(HERE), "worktree", "add", "--detach", str(old), args.rev],
                       check=True, capture_output=True)
        try:
            _compare(old, args.tasks.split(","), args.rounds, args.rev)
        finally:
            subprocess.run(["git", "-C", str(HERE), "worktree", "remove", "--force", str(old)], check=False)


def _compare(old: Path, tasks: list[str], rounds: int, rev: str) -> None:
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; best of {rounds}")
    print(f"{'task':22s} {rev[:9]:>10s} {'this':>10s} {'this/old':>9s}")
    for task in tasks:
        best = {"old": float("inf"), "new": float("inf")}
        for _ in range(rounds):
            for name, tree in (("old", old), ("new", HERE)):
                seconds = _time(tree, task)
                if seconds is not None:
                    best[name] = min(best[name], seconds)
        ratio = best["new"] / best["old"] if best["old"] not in (0, float("inf")) else float("nan")
        print(f"{task:22s} {best['old']:10.3f} {best['new']:10.3f} {ratio:9.2f}", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M')}")


if __name__ == "__main__":
    main()
