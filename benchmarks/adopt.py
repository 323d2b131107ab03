"""Adoption speed: the whole-city redraw plus its regridding, committed as one version on each store.

On the sample city (850 communities, ~4,600 grids, ~40,000 units, 100,000 orders):
``jngis.rebalance`` on every 街道, :func:`jngis.versions.plan_communities` (the new
communities tiling their 街道), ``make_grids(previous=)`` (unchanged grids kept),
then ``store.adopt(plan, grids=...)`` on SQLiteStore (a copy of the sample
GeoPackage) and PostGISStore (a throw-away cluster from tests/pgcluster.py, or
$JNGIS_BENCH_POSTGIS_DSN). Version 1 (the store's boundaries recorded when
versions are first used) is timed apart from the adoption itself, which
includes its checks, lineage, history rows, the plain layer tables and the
open orders re-placed, in one transaction.

    .venv/bin/python benchmarks/adopt.py [--workers 2] [--skip-postgis]
    .venv/bin/python benchmarks/adopt.py --versus REV [--rounds 2]

``--versus REV`` times the adoption (to commit) and ``diff(1, 2)`` of the same plan on REV's
tree (a temporary git worktree) and on this checkout, alternating in fresh subprocesses
(``PYTHONPATH`` at one tree or the other) on fresh stores, so both see the same machine load;
the best of the rounds is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pgcluster import postgis_cluster, schema_dsn  # noqa: E402

import jngis  # noqa: E402
from jngis import versions as jv  # noqa: E402
from jngis.sample import load_sample, sample_path  # noqa: E402
from jngis.store import open_store  # noqa: E402


def postgis_dsn() -> contextlib.AbstractContextManager[str]:
    dsn = os.environ.get("JNGIS_BENCH_POSTGIS_DSN")
    return contextlib.nullcontext(dsn) if dsn else postgis_cluster()


def _timed(figures: dict, name: str, call):
    started = time.perf_counter()
    value = call()
    figures[name] = round(time.perf_counter() - started, 2)
    return value


def proposal(workers: int) -> tuple[dict, object, object, object]:
    """The whole-city plan and its regridding, with the time of each step."""
    city = load_sample()
    figures: dict = {}
    plan = _timed(figures, "rebalance s", lambda: jngis.rebalance(city.units, min_households=1000,
                                                                  max_households=3000, workers=workers))
    before = jv.Boundaries.of(city)
    proposed = _timed(figures, "plan_communities s", lambda: jv.proposal(plan, before, grids=city.grids))
    grids = _timed(figures, "make_grids(previous=) s", lambda: jngis.make_grids(
        proposed.communities, proposed.units, previous=city.grids, workers=workers))
    figures.update(communities=len(proposed.communities), grids=len(grids), units=len(proposed.units),
                   moved_units=len(plan.moves), moved_households=int(plan.metrics["moved_households"]))
    return figures, plan, proposed.communities, grids


def adopt(url: str, plan, communities, grids) -> dict:
    figures: dict = {}
    with open_store(url) as store:
        figures["open orders"] = store.count_orders(status=list(jngis.codes.OPEN_STATES))
        _timed(figures, "version 1 recorded s", store._ensure_versions)
        record = _timed(figures, "adopt (commit) s", lambda: store.adopt(plan, communities=communities, grids=grids,
                                                                         note="基准测试"))
        figures["orders re-placed"] = record["summary"]["orders_replaced"]
        _timed(figures, "diff(1, 2) s", lambda: store.diff(1, 2))
        _timed(figures, "read_layer('grids', at=old) s", lambda: store.read_layer("grids", at="2020-01-01"))
    return figures


#: One timed adoption in a fresh process, on the tree its PYTHONPATH names (argv: plan pickle, store url).
_RUNNER = r"""
import json, pickle, sys, time, warnings
warnings.simplefilter("ignore")
from jngis.store import open_store

plan, communities, grids = pickle.loads(open(sys.argv[1], "rb").read())
with open_store(sys.argv[2]) as store:
    store._ensure_versions()
    started = time.perf_counter()
    store.adopt(plan, communities=communities, grids=grids, note="benchmark")
    adopted = time.perf_counter() - started
    started = time.perf_counter()
    store.diff(1, 2)
    print(json.dumps({"adopt": adopted, "diff": time.perf_counter() - started}))
"""


def _fresh_store(kind: str, folder: Path, dsn: str | None, n: int) -> str:
    if kind == "sqlite":
        path = folder / f"city{n}.gpkg"
        shutil.copy(sample_path(), path)
        with open_store(path):  # the first open imports the 100,000 historical orders
            pass
        return str(path)
    url = schema_dsn(dsn)
    with open_store(url) as store:
        store.write_city(load_sample())
    return url


def versus(rev: str, rounds: int, workers: int, skip_postgis: bool) -> None:
    here = Path(__file__).resolve().parent.parent
    figures, plan, communities, grids = proposal(workers)
    print(json.dumps(figures, ensure_ascii=False), flush=True)
    with tempfile.TemporaryDirectory(prefix="jngis-adopt-") as folder_name, \
            (contextlib.nullcontext(None) if skip_postgis else postgis_dsn()) as dsn:
        folder = Path(folder_name)
        pickled = folder / "plan.pickle"
        pickled.write_bytes(pickle.dumps((plan, communities, grids)))
        old = folder / "old"
        subprocess.run(["git", "-C", str(here), "worktree", "add", "--detach", str(old), rev], check=True,
                       capture_output=True)
        try:
            print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; best of {rounds}")
            best: dict = {}
            n = 0
            for kind in ("sqlite",) + (() if skip_postgis else ("postgis",)):
                for _ in range(rounds):
                    for name, tree in (("old", old), ("new", here)):
                        n += 1
                        url = _fresh_store(kind, folder, dsn, n)
                        env = dict(os.environ, PYTHONPATH=str(tree), PYTHONWARNINGS="ignore")
                        done = subprocess.run([sys.executable, "-c", _RUNNER, str(pickled), url], env=env,
                                              capture_output=True, text=True, timeout=1800, cwd=folder)
                        if done.returncode != 0:
                            raise RuntimeError(f"{kind} on {name}: {done.stderr.strip()[-2000:]}")
                        for step, seconds in json.loads(done.stdout.strip().splitlines()[-1]).items():
                            key = (kind, step, name)
                            best[key] = min(best.get(key, float("inf")), seconds)
                        if kind == "sqlite":
                            Path(url).unlink()
            print(f"{'store':8s} {'step':8s} {rev[:9]:>10s} {'this':>8s} {'this/old':>9s}")
            for kind, step in dict.fromkeys((k, s) for k, s, _ in best):
                a, b = best[(kind, step, "old")], best[(kind, step, "new")]
                print(f"{kind:8s} {step:8s} {a:10.2f} {b:8.2f} {b / a:9.2f}")
            print(f"load average at end: {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M')}")
        finally:
            subprocess.run(["git", "-C", str(here), "worktree", "remove", "--force", str(old)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-postgis", action="store_true")
    parser.add_argument("--versus", metavar="REV", help="time the adoption on REV's tree and on this one")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.versus:
        versus(args.versus, args.rounds, args.workers, args.skip_postgis)
        return
    results: dict = {}
    results["proposal"], plan, communities, grids = proposal(args.workers)
    with tempfile.TemporaryDirectory(prefix="jngis-adopt-") as folder:
        path = Path(folder) / "city.gpkg"
        shutil.copy(sample_path(), path)
        with open_store(path):  # the first open imports the 100,000 historical orders
            pass
        results["sqlite"] = adopt(str(path), plan, communities, grids)
    if not args.skip_postgis:
        with postgis_dsn() as dsn:
            url = schema_dsn(dsn)
            with open_store(url) as store:
                store.write_city(load_sample())
            results["postgis"] = adopt(url, plan, communities, grids)
    print(json.dumps(results, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
