"""A bounded, quick load test on loopback (the long run is ``benchmarks/load.py``).

A real uvicorn process on a free 127.0.0.1 port serves a private copy of the
slice city; ``benchmarks/load.py``'s async client sends a fixed number of
requests of the realistic mix (tiles at zooms 8-16, per-grid stats with
ETag polling, grid cards, work-order creates and lists, feature pages). No
request may fail, and once warm the server's memory may grow by no more
than its warm-tile cache bound. The figures are printed (``-s``) for
docs/RELIABILITY.md.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

REQUESTS = 1_500
TILE_CACHE_MB = 16
#: Generous: the 2-core CI box also runs other tests; this catches a hang or a collapse, not a slowdown.
P99_LIMIT_S = 10.0


@pytest.fixture(scope="module")
def load():
    """benchmarks/load.py as a module (one load generator for the test and the long run)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "load.py"
    spec = importlib.util.spec_from_file_location("jngis_benchmark_load", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_mixed_load_on_loopback(load, city_file, tmp_path):
    store = tmp_path / "city.gpkg"
    shutil.copy(city_file, store)
    with load.Server(store, tile_cache_mb=TILE_CACHE_MB, startup_timeout=120) as server:
        started = server.rss_mb()
        result = load.run_load(server.url, REQUESTS, concurrency=8, pid=server.process.pid,
                               samples=10, time_limit=120)
        ended = server.rss_mb()
        assert server.process.poll() is None, "the server died under load"
    summary = result.summary()
    print(f"\n{result.table()}\nrequests/s {summary['rps']:.0f}, p50 {summary['p50_ms']:.0f} ms, "
          f"p99 {summary['p99_ms']:.0f} ms, RSS {started:.0f} -> {ended:.0f} MiB, statuses {result.statuses}")

    assert result.count == REQUESTS, "the run hit its time limit"
    assert result.error_count == 0, result.statuses
    assert set(result.latencies) == set(load.MIX), "every kind of request of the mix was sent"
    assert summary["p99_ms"] / 1e3 < P99_LIMIT_S
    warm = next(mb for done, mb in result.rss_mb if done >= 0.3 * REQUESTS)
    assert ended - warm <= TILE_CACHE_MB, f"RSS grew {ended - warm:.0f} MiB after warm-up (bound {TILE_CACHE_MB})"


def test_the_load_client_refuses_other_hosts(load):
    with pytest.raises(ValueError, match="loopback"):
        load.run_load("http://example.com", 1)


def test_retired_threads_leave_no_open_store_connections(store_file):
    """A server's worker threads come and go (anyio retires idle ones after 10 s); each uses
    the store from its own connection. When a thread is gone its connection must close, or a
    long-running server piles up open files and SQLite page caches (found by benchmarks/load.py:
    RSS +1 GiB and +14 open GeoPackage handles per burst of requests). Fix: docs/RELIABILITY.md."""
    import gc
    import os
    import threading

    from jngis.store import open_store

    def handles() -> int:
        return sum(1 for fd in os.listdir("/proc/self/fd")
                   if os.path.realpath(f"/proc/self/fd/{fd}") == str(store_file.resolve()))

    with open_store(store_file) as store:
        store.count_orders()
        before = handles()
        for _ in range(30):
            worker = threading.Thread(target=store.count_orders)
            worker.start()
            worker.join()
        gc.collect()
        assert handles() - before <= 2, f"{handles() - before} GeoPackage handles left open by 30 ended threads"


def test_each_run_starts_with_the_machines_tile_geometry_and_no_encoded_tiles(load, tmp_path, monkeypatch):
    """A run's tile folder links the per-zoom geometry in (not the shared tile file, so every run
    of the seeded mix cuts its tiles again), and what the run built is kept for the next."""
    monkeypatch.setenv("JNGIS_CACHE_DIR", str(tmp_path / "cache"))
    machine = tmp_path / "cache" / "tiles"
    (machine / "encoded.lmdb").mkdir(parents=True)
    (machine / "encoded.lmdb" / "data.mdb").write_bytes(b"warm tiles")
    (machine / "grids-0123-z12.npz").write_bytes(b"zoom 12")
    (machine / "grids-0123-z12.arcs").write_bytes(b"arcs 12")
    run = tmp_path / "run" / "tiles"
    load.link_tile_geometry(run)
    assert sorted(p.name for p in run.iterdir()) == ["grids-0123-z12.arcs", "grids-0123-z12.npz"]
    assert (run / "grids-0123-z12.npz").read_bytes() == b"zoom 12"
    (run / "grids-0123-z13.npz").write_bytes(b"zoom 13")  # built by the run's server
    (run / "encoded.lmdb").mkdir()
    load.keep_tile_geometry(run)
    assert (machine / "grids-0123-z13.npz").read_bytes() == b"zoom 13"
    assert (machine / "encoded.lmdb" / "data.mdb").read_bytes() == b"warm tiles"
