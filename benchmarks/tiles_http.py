"""Warm grid tiles over HTTP: ``jngis serve`` (1 and 2 workers) against tipg on PostGIS, with wrk.

Issue 17's comparison (docs: DESIGN.md, "The HTTP comparison"): the sample
city's grid tiles z10-16 over the central districts (历下 市中 槐荫 天桥; at
most ``--per-zoom`` tiles a zoom, the same list for every server), asked
once to warm each server, then by ``wrk -t2 -c16 -d20s`` with a Lua script
cycling the list, ``Accept-Encoding: gzip`` on every request. Servers:

- ``jngis serve`` on a copy of the sample city, one worker and then
  ``--workers 2`` (the second run reads the tiles the first one cut from the
  shared tile file, :mod:`jngis.server.tilestore`);
- tipg (``uvicorn tipg.main:app``, one process) on a throw-away PostGIS
  cluster holding the same grids in EPSG:3857 with a GiST index. tipg is not
  a dependency of jngis: give its Python with ``--tipg-python`` (a venv
  outside the repository with ``pip install tipg==1.6.1 uvicorn uvloop
  httptools``); without it only jngis is measured.

wrk and the servers share the machine's cores, so besides requests/s and
latency it reports the CPU seconds each side used (the server's processes,
PostgreSQL's for tipg, and wrk's own, from ``/proc`` through psutil and
``wait4``) and requests per server CPU second: the cost of a tile, which a
machine with free cores for the client would turn into requests/s.

    python benchmarks/tiles_http.py [--tipg-python /path/to/venv/bin/python] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import psutil
import shapely

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "tests")]

from load import free_port  # noqa: E402
from pgcluster import postgis_cluster  # noqa: E402

from jngis.layers import read_layer  # noqa: E402

URBAN_DISTRICTS = ("370102", "370103", "370104", "370105")  # 历下 市中 槐荫 天桥
ZOOMS = range(10, 17)
HALF = 20037508.342789244


def central_tiles(grids, per_zoom: int, seed: int = 0) -> list[tuple[int, int, int]]:
    """Tiles z10-16 holding a grid of the central districts (at most ``per_zoom`` a zoom, drawn at random)."""
    rng = np.random.default_rng(seed)
    central = grids[grids["grid_code"].str[:6].isin(URBAN_DISTRICTS)].to_crs(3857)
    tree = shapely.STRtree(central.geometry.values)
    west, south, east, north = central.total_bounds
    chosen = []
    for z in ZOOMS:
        size = 2 * HALF / 2**z
        xs = np.arange(int((west + HALF) // size), int((east + HALF) // size) + 1)
        ys = np.arange(int((HALF - north) // size), int((HALF - south) // size) + 1)
        x, y = (a.ravel() for a in np.meshgrid(xs, ys))
        boxes = shapely.box(-HALF + x * size, HALF - (y + 1) * size, -HALF + (x + 1) * size, HALF - y * size)
        hit = np.unique(tree.query(boxes, predicate="intersects")[0])
        if len(hit) > per_zoom:
            hit = np.sort(rng.choice(hit, per_zoom, replace=False))
        chosen += [(z, int(x[i]), int(y[i])) for i in hit]
    return chosen


# -- servers ------------------------------------------------------------------------------

def wait_for(url: str, process: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {seconds:.0f} s")


@contextmanager
def running(command: list[str], env: dict, ready_url: str, settle: float = 0.0):
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(ready_url, process)
        time.sleep(settle)
        yield psutil.Process(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User + system CPU seconds of ``processes`` and their children (those still alive)."""
    total = 0.0
    for process in processes:
        for p in [process, *process.children(recursive=True)]:
            try:
                times = p.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
    return total


def memory_mb(process: psutil.Process) -> dict[str, float]:
    """RSS and PSS (shared pages divided among the processes sharing them) of a server, workers summed."""
    rss = pss = 0.0
    for p in [process, *process.children(recursive=True)]:
        if "resource_tracker" in " ".join(p.cmdline()):
            continue
        info = p.memory_full_info()
        rss += info.rss
        pss += info.pss
    return {"rss_mb": rss / 2**20, "pss_mb": pss / 2**20}


# -- wrk ---------------------------------------------------------------------------------

LUA = """
local paths = {%s}
local counter = 0
function setup(thread)
  thread:set("offset", counter * 7919)
  counter = counter + 1
end
function init(args)
  i = offset
end
function request()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {["Accept-Encoding"] = "gzip"})
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, paths: list[str], seconds: float, folder: Path, threads: int = 2,
        connections: int = 16) -> dict:
    """Run wrk against ``url`` cycling ``paths``; its figures and its own CPU seconds."""
    script = folder / "paths.lua"
    script.write_text(LUA % ", ".join(f'"{p}"' for p in paths))
    process = subprocess.Popen(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:.0f}s", "--latency",
                                "-s", str(script), url], stdout=subprocess.PIPE, text=True)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{out}")

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * _UNITS[unit]

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests": requests, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": latency("50%"), "p99_ms": latency("99%"),
            "errors": (int(bad.group(1)) if bad else 0) + (sum(map(int, sockets.groups())) if sockets else 0),
            "wrk_cpu_s": usage.ru_utime + usage.ru_stime, "output": out}


def profiled(pid: int, seconds: float, folder: Path) -> subprocess.Popen:
    """py-spy sampling process ``pid`` (and its threads, native frames off) for ``seconds``."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen([spy, "record", "-p", str(pid), "-d", f"{seconds:.0f}", "-r", "200", "-f", "raw",
                             "-o", str(folder / "profile.txt"), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def profile_summary(path: Path, top: int = 12) -> str:
    """Share of the samples in each function (inclusive), of the event loop's thread."""
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        for frame in {f.split(" (")[0] + " " + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1]
                      for f in stack.split(";") if " (" in f}:
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
    rows = sorted(inclusive.items(), key=lambda kv: -kv[1])
    skip = ("_run_module", "_run_code", "run_forever", "_run_once", "Handle._run", "run_until_complete", "main ",
            "Runner.run", "asyncio_run", "Command.", "Context.", "<module>", "serve ", "Server.", "run ", "new_func ",
            "decorate ", "_run ")
    shown = [(k, v) for k, v in rows if not k.startswith(skip)][:top]
    return "\n".join(f"  {v / total:6.1%}  {k}" for k, v in shown)


def measure(name: str, url: str, paths: list[str], servers: list[psutil.Process], seconds: float,
            folder: Path, profile: bool = False) -> dict:
    """Warm the server with every path once, then wrk; the server's CPU over the wrk run."""
    with httpx.Client(base_url=url, timeout=120, headers={"Accept-Encoding": "gzip"}) as client:
        for _ in range(2):  # twice: every worker of a multi-process server gets its turn at most tiles
            for path in paths:
                response = client.get(path)
                if response.status_code != 200:
                    raise RuntimeError(f"{name}: {path} answered {response.status_code}: {response.text[:200]}")
    before = cpu_seconds(servers)
    started = time.perf_counter()
    spy = profiled(servers[0].pid, seconds - 2, folder) if profile else None
    row = wrk(url, paths, seconds, folder)
    wall = time.perf_counter() - started
    if spy is not None:
        spy.wait(timeout=60)
        row["profile"] = profile_summary(folder / "profile.txt")
    row["server_cpu_s"] = cpu_seconds(servers) - before
    row["per_cpu_s"] = row["requests"] / max(row["server_cpu_s"], 1e-9)
    row["wall_s"] = wall
    row["name"] = name
    row.update(memory_mb(servers[0]))
    return row


# -- the run -----------------------------------------------------------------------------

def copy_store(source: Path, target: Path) -> None:
    """A consistent copy of a GeoPackage (its write-ahead log included)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def jngis_rows(store: Path, paths: list[str], args, folder: Path) -> list[dict]:
    rows = []
    env = {**os.environ, "JNGIS_TILE_GEOMETRY_DIR": str(folder / "tiles"),
           "JNGIS_STATS_CACHE_DIR": str(folder / "stats")}
    env.pop("JNGIS_STORE", None)
    for workers in args.workers:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-c", "from jngis.cli import main; main()", "serve", "--store", str(store),
                   "--port", str(port), "--workers", str(workers)]
        with running(command, env, url + "/healthz", settle=3.0 * workers) as server:
            # the versioned address (what the viewer asks for, named by the TileJSON) and the plain one
            version = httpx.get(url + "/tiles/grids.json", timeout=60).headers["x-jngis-version"]
            tiles = [p.replace("/tiles/grids/", f"/tiles/grids/v{version}/") for p in paths]
            rows.append(measure(f"jngis serve --workers {workers}", url, tiles, [server], args.seconds, folder,
                                profile=args.profile and workers == 1))
            print(f"{rows[-1]['name']}: {rows[-1]['rps']:,.0f} requests/s, p99 {rows[-1]['p99_ms']:.1f} ms",
                  file=sys.stderr, flush=True)
    return rows


def postmaster(port: int) -> psutil.Process:
    """The PostgreSQL server listening on ``port`` (its backends are its children)."""
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if "-p" in command and command.index("-p") + 1 < len(command) and command[command.index("-p") + 1] == str(port):
            return process
    raise RuntimeError(f"no PostgreSQL server on port {port}")


def tipg_row(store: Path, paths: list[str], args, folder: Path) -> dict:
    import psycopg

    grids = read_layer(store, "grids").to_crs(3857)
    with postgis_cluster({"jit": "off"}) as dsn, psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            # every column, as the z12+ jngis tiles carry them (tipg publishes them all)
            names = [c for c in grids.columns if c != grids.geometry.name]
            kinds = {c: "bigint" if grids[c].dtype.kind == "i" else "double precision"
                     if grids[c].dtype.kind == "f" else "text" for c in names}
            cur.execute(f"CREATE TABLE grids (id bigint primary key, "
                        f"{', '.join(f'{c} {kinds[c]}' for c in names)}, geom geometry(Polygon, 3857))")
            with cur.copy(f"COPY grids (id, {', '.join(names)}, geom) FROM STDIN") as copy:
                wkb = shapely.to_wkb(grids.geometry.values, hex=True)
                for row, geom in zip(grids[names].itertuples(index=False), wkb):
                    copy.write_row([int(row.grid_code), *row, f"SRID=3857;{geom}"])
            cur.execute("CREATE INDEX ON grids USING gist (geom)")
            cur.execute("ANALYZE grids")
        conn.commit()
        postgres = [postmaster(int(dsn.rsplit(":", 1)[1].split("/")[0]))]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "DATABASE_URL": dsn, "TIPG_DB_SCHEMAS": '["public"]'}
        command = [args.tipg_python, "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1", "--port", str(port),
                   "--log-level", "warning", "--no-access-log"]
        tiles = [p.replace("/tiles/grids/", "/collections/public.grids/tiles/WebMercatorQuad/").removesuffix(".mvt")
                 for p in paths]
        with running(command, env, url + "/collections", settle=1.0) as server:
            listed = [c["id"] for c in httpx.get(url + "/collections", timeout=60).json()["collections"]]
            if "public.grids" not in listed:
                raise RuntimeError(f"tipg does not publish public.grids; it lists {listed}")
            version = subprocess.run([args.tipg_python, "-c", "import tipg; print(tipg.__version__)"],
                                     capture_output=True, text=True).stdout.strip()
            return measure(f"tipg {version} (PostGIS)", url, tiles, [server, *postgres], args.seconds, folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--per-zoom", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tipg-python", default=os.environ.get("TIPG_PYTHON"),
                        help="a Python with tipg, uvicorn (and uvloop, httptools) installed")
    parser.add_argument("--profile", action="store_true",
                        help="sample the one-worker jngis server with py-spy during its wrk run (needs py-spy)")
    parser.add_argument("--city", type=Path, default=None, help="a city GeoPackage with grids (default: the sample)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    from jngis.sample import load_sample, sample_path

    if args.city is None:
        load_sample()
    source = args.city or sample_path()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="jngis-tiles-http-") as name:
        folder = Path(name)
        store = folder / "city.gpkg"
        copy_store(source, store)
        tiles = central_tiles(read_layer(store, "grids"), args.per_zoom)
        paths = [f"/tiles/grids/{z}/{x}/{y}.mvt" for z, x, y in tiles]
        rows = jngis_rows(store, paths, args, folder)
        if args.tipg_python:
            rows.append(tipg_row(store, paths, args, folder))
    end_load = os.getloadavg()
    print(f"{len(paths)} grid tiles z10-16 over the central districts; wrk -t2 -c16 -d{args.seconds:.0f}s; "
          f"load average {load[0]:.1f} at the start, {end_load[0]:.1f} at the end; {os.cpu_count()} cores\n")
    print("| server | requests/s | p50 ms | p99 ms | errors | server CPU s | requests per server CPU s "
          "| wrk CPU s | server RSS / PSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['name']} | {row['rps']:,.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['errors']} "
              f"| {row['server_cpu_s']:.1f} | {row['per_cpu_s']:,.0f} | {row['wrk_cpu_s']:.1f} "
              f"| {row['rss_mb']:,.0f} / {row['pss_mb']:,.0f} |")
    for row in rows:
        if "profile" in row:
            print(f"\n{row['name']}, py-spy samples during wrk (inclusive share, top functions):\n{row['profile']}")
    tipg = next((row for row in rows if row["name"].startswith("tipg")), None)
    if tipg is not None:
        for row in rows[:-1]:
            print(f"{row['name']} / tipg: {row['rps'] / tipg['rps']:.1f}x requests/s, "
                  f"{row['per_cpu_s'] / tipg['per_cpu_s']:.1f}x requests per server CPU second")


if __name__ == "__main__":
    main()
