"""Adopt -> served: how long after a whole-city redraw and its regridding a running server serves them.

On the sample city (850 communities, ~4,600 grids, ~40,000 units, 100,000 orders), with the
plan of benchmarks/adopt.py (``jngis.rebalance`` on every 街道, ``make_grids(previous=)``):

1. a ``jngis serve`` process (uvicorn, its own process) runs on a copy of the sample GeoPackage,
   its city-view tiles warm;
2. this process adopts the plan through the library (``store.adopt``, one transaction), as a
   planner's notebook would;
3. timed from the commit: until the server's ``/versions/current`` names the new version (it
   heard of it on the change channel, rebuilt the city-view tile geometry (z8-z10) of the layers
   whose geometry changed and computed the new per-grid table, then switched; z11-z14 follow while
   it serves), and until a set of tiles of the new version (z8-z14 over the central districts, the
   TileJSON's versioned addresses) is served;
4. against that, what a restart would rebuild: every layer's per-zoom geometry at the same zooms
   from an empty geometry folder (``VectorTiles(...).prepare``), in this process.

5. with ``--tipg UVICORN`` (the uvicorn of a separate environment with ``pip install tipg==1.6.1``):
   the same plan adopted into PostGIS (a throw-away cluster, or $JNGIS_BENCH_POSTGIS_DSN) while tipg
   serves that database: its cold and repeated latency of grid tiles (z12-z14 over 历下), the
   Cache-Control it sends, and when it serves the new geometry after the commit (it reads the tables
   per request: no rebuild, but the answers it sent before carry ``max-age``), and whether the history
   view ``grids_versions`` is in its catalogue without a restart.

    .venv/bin/python benchmarks/adopt_serve.py [--workers 2] [--tipg UVICORN] [--skip-sqlite]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from adopt import proposal  # noqa: E402  (benchmarks/adopt.py: the same plan)

from jngis.sample import sample_path  # noqa: E402
from jngis.store import open_store  # noqa: E402

#: The districts whose tiles are fetched after the switch (历下, 市中, 槐荫, 天桥).
CENTRAL = ("370102", "370103", "370104", "370105")
ZOOMS = range(8, 15)
TILES_PER_ZOOM = 12


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def addresses(grids) -> list[tuple[int, int, int]]:
    """Tiles holding grids of the central districts, up to TILES_PER_ZOOM per zoom."""
    central = grids[grids["grid_code"].str[:6].isin(CENTRAL)].to_crs(4326)
    points = central.geometry.representative_point()
    found = []
    for z in ZOOMS:
        tiles = sorted({tile_of(p.x, p.y, z) for p in points})
        step = max(1, len(tiles) // TILES_PER_ZOOM)
        found += [(z, x, y) for x, y in tiles[::step][:TILES_PER_ZOOM]]
    return found


class Server:
    """``uvicorn jngis.server.app:create_app --factory`` on ``store``, in its own process."""

    def __init__(self, store: Path, folder: Path) -> None:
        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {**os.environ, "JNGIS_STORE": str(store), "JNGIS_TILE_GEOMETRY_DIR": str(folder),
                       "JNGIS_STATS_CACHE_DIR": str(folder)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "jngis.server.app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--no-access-log"], env=environment)

    def wait(self, seconds: float = 600) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError("the server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def fetch_tiles(client: httpx.Client, template: str, tiles: list[tuple[int, int, int]]) -> float:
    started = time.perf_counter()
    for z, x, y in tiles:
        response = client.get(template.format(z=z, x=x, y=y))
        response.raise_for_status()
    return time.perf_counter() - started


def served_after_adoption(path: Path, folder: Path, plan, communities, grids) -> dict:
    figures: dict = {}
    server = Server(path, folder)
    try:
        server.wait()
        client = httpx.Client(base_url=server.url, timeout=600)
        old = client.get("/tiles/grids.json").json()["tiles"][0]
        started = time.perf_counter()
        figures["warm-up: old version's tiles s"] = round(fetch_tiles(client, old, addresses(grids)), 2)
        figures["warm-up wall s"] = round(time.perf_counter() - started, 2)
        with open_store(path) as store:
            started = time.perf_counter()
            record = store.adopt(plan, communities=communities, grids=grids, note="基准测试：全市调整")
            committed = time.perf_counter()
        figures["adopt (commit) s"] = round(committed - started, 2)
        while client.get("/versions/current").json()["version"] != record["version_id"]:
            time.sleep(0.1)
        switched = time.perf_counter()
        figures["commit -> version served s"] = round(switched - committed, 2)
        new = client.get("/tiles/grids.json").json()["tiles"][0]
        figures["its tiles (z8-z14, central) s"] = round(fetch_tiles(client, new, addresses(grids)), 2)
        figures["commit -> served with its tiles s"] = round(time.perf_counter() - committed, 2)
        figures["adopt -> served with its tiles s"] = round(time.perf_counter() - started, 2)
        figures["tiles fetched"] = len(addresses(grids))
    finally:
        server.stop()
    return figures


def whole_rebuild(path: Path, folder: Path) -> dict:
    """What a restart would rebuild: every tiled layer's geometry at the switch's zooms, from nothing."""
    from jngis.server.settings import Settings
    from jngis.server.switch import AFTER_SWITCH_ZOOMS, SWITCH_ZOOMS, build_served, read_version

    figures: dict = {}
    with open_store(path) as store:
        started = time.perf_counter()
        version, layers = read_version(store)
        figures["read the layers s"] = round(time.perf_counter() - started, 2)
        settings = Settings(store=str(path), tile_geometry_dir=str(folder), stats_cache_dir=str(folder))
        served = build_served(store, settings, version, layers)
        started = time.perf_counter()
        served.warm(SWITCH_ZOOMS)
        figures[f"every layer's geometry z{SWITCH_ZOOMS[0]}-z{SWITCH_ZOOMS[-1]} s"] = round(
            time.perf_counter() - started, 2)
        served.warm(AFTER_SWITCH_ZOOMS)
        figures[f"every layer's geometry z{SWITCH_ZOOMS[0]}-z{AFTER_SWITCH_ZOOMS[-1]} s"] = round(
            time.perf_counter() - started, 2)
    return figures


def tipg_after_adoption(uvicorn: str, plan, communities, grids) -> dict:
    """tipg 1.6.1 serving the PostGIS store while the plan is adopted into it."""
    from adopt import load_sample, postgis_dsn

    central = grids[grids["grid_code"].str[:6] == CENTRAL[0]].to_crs(4326).geometry.representative_point()
    tiles = []
    for z in (12, 13, 14):
        found = sorted({tile_of(p.x, p.y, z) for p in central})
        tiles += [(z, x, y) for x, y in found[::max(1, len(found) // 6)][:6]]
    figures: dict = {"tiles": len(tiles)}
    with postgis_dsn() as dsn:
        with open_store(dsn) as store:
            store.write_city(load_sample())
            store._ensure_versions()
        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        environment = {**os.environ, "DATABASE_URL": dsn, "TIPG_DB_SCHEMAS": '["public"]'}
        server = subprocess.Popen([uvicorn, "tipg.main:app", "--port", str(port), "--log-level", "warning"],
                                  env=environment)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                with __import__("contextlib").suppress(httpx.TransportError):
                    if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                        break
                time.sleep(0.5)
            client = httpx.Client(base_url=url, timeout=120)
            template = "/collections/public.grids/tiles/WebMercatorQuad/{z}/{x}/{y}"

            def fetch() -> tuple[float, list[bytes], str | None]:
                started, bodies, response = time.perf_counter(), [], None
                for z, x, y in tiles:
                    response = client.get(template.format(z=z, x=x, y=y))
                    response.raise_for_status()
                    bodies.append(response.content)
                assert response is not None
                return (time.perf_counter() - started) / len(tiles), bodies, response.headers.get("cache-control")

            cold, old, figures["tipg Cache-Control"] = fetch()
            figures["tipg cold tile ms (before)"] = round(cold * 1000, 1)
            figures["tipg repeated tile ms"] = round(fetch()[0] * 1000, 1)
            with open_store(dsn) as store:
                started = time.perf_counter()
                store.adopt(plan, communities=communities, grids=grids, note="基准测试：tipg")
                committed = time.perf_counter()
            figures["adopt (commit) s"] = round(committed - started, 2)
            first, new, _ = fetch()
            figures["tipg first tile ms after the commit"] = round(first * 1000, 1)
            figures["commit -> tipg served the new grids s"] = round(time.perf_counter() - committed, 2)
            figures["tipg tiles that changed"] = sum(a != b for a, b in zip(old, new))
            figures["grids_versions in tipg's catalogue"] = "public.grids_versions" in client.get("/collections").text
        finally:
            server.terminate()
            server.wait(timeout=30)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tipg", metavar="UVICORN", help="uvicorn of an environment with tipg 1.6.1")
    parser.add_argument("--skip-sqlite", action="store_true", help="only the tipg comparison")
    args = parser.parse_args()
    results: dict = {}
    results["proposal"], plan, communities, grids = proposal(args.workers)
    if args.tipg:
        results["postgis + tipg"] = tipg_after_adoption(args.tipg, plan, communities, grids)
    if args.skip_sqlite:
        print(json.dumps(results, ensure_ascii=False, indent=1))
        return
    with tempfile.TemporaryDirectory(prefix="jngis-serve-") as folder:
        path = Path(folder) / "city.gpkg"
        shutil.copy(sample_path(), path)
        with open_store(path):  # the first open imports the 100,000 historical orders
            pass
        (Path(folder) / "switch").mkdir()
        (Path(folder) / "rebuild").mkdir()
        results["sqlite: adopt -> served"] = served_after_adoption(path, Path(folder) / "switch", plan, communities,
                                                                   grids)
        results["whole rebuild (restart)"] = whole_rebuild(path, Path(folder) / "rebuild")
    print(json.dumps(results, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
