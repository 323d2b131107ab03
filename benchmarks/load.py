"""Load test of the map server on loopback: a realistic mix, requests/s, p50/p99, errors, memory.

Starts ``uvicorn jngis.server.app:create_app`` on a free 127.0.0.1 port (a
process of its own, on a private copy of the city), then sends a fixed
number of requests from an async aiohttp client with a bounded number in
flight (httpx's async client took 4.5-4.9 CPU-ms a request on this 2-core
machine, more than the server; aiohttp takes 0.3). The mix is what the web
map and the hotline send:

========  ======  =====================================================
kind      share   request
========  ======  =====================================================
tile      0.55    ``/tiles/{layer}/{z}/{x}/{y}.mvt`` near a random community, z 8-16,
                  a layer drawn at that zoom, gzip
stats     0.08    ``/stats/grids`` (half with ``If-None-Match``: the viewer's poll)
card      0.14    ``/grids/{grid_code}``
create    0.05    ``POST /workorders`` at a community's label point, with a caller
list      0.05    ``/workorders?grid=...``
items     0.08    ``/collections/{layer}/items?bbox=...&limit=50``
meta      0.05    ``/layers``, ``/tiles/{layer}.json``, ``/search``
========  ======  =====================================================

Reports requests/s, p50 / p99 latency and the error rate (any 5xx / 4xx or
transport error) per kind and overall, and the server's resident memory
(RSS, less the shared tile file's pages) before, after a warm-up share of the run, and at the end: once every
zoom has been visited, memory may grow by at most the warm-tile cache's
bound (``JNGIS_TILE_CACHE_MB``).

Each run starts with cold encoded tiles and the machine's per-zoom tile
geometry, as a restarted server finds it (``JNGIS_TILE_GEOMETRY_DIR``: a
folder of the run's with the geometry files linked in, and no shared tile
file), so runs of the same mix are comparable. Besides
the figures it prints the CPU seconds of the client and of the server's
processes over the run, and the load average.

Run: ``.venv/bin/python benchmarks/load.py`` (100,000 requests on the full
sample city with grids, built once and cached in ~/.cache/jngis),
``--city slice`` (the committed 街道), ``--requests N``, or ``--quick`` (the
slice, 3,000 requests); ``--versus REV [--rounds N]`` runs the same mix on
REV's server code and on this tree's, alternately, and prints them side by
side. Only loopback, only a server this script started.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TOKEN = "load-test-token"
MIX = {"tile": 0.55, "stats": 0.08, "card": 0.14, "create": 0.05, "list": 0.05, "items": 0.08, "meta": 0.05}
TILED = ("districts", "streets", "communities", "grids", "units", "stations", "party_orgs")


# -- the server --------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``with Server(store, tile_cache_mb=64) as server:`` a uvicorn process on 127.0.0.1
    (``workers=N``: ``jngis serve --workers N``, N processes sharing the port; ``tree``: a checkout
    whose jngis and server it runs instead of the installed one). Its tile folder is ``tiles/``
    beside ``store`` (:func:`link_tile_geometry`)."""

    def __init__(self, store: str | Path, *, tile_cache_mb: int = 64, startup_timeout: float = 300,
                 workers: int = 1, tree: Path | None = None) -> None:
        self.workers = workers
        self.tree = tree
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tile_cache_mb = tile_cache_mb
        self.startup_timeout = startup_timeout
        # The server's tile folder is this run's (beside the store copy): the machine's per-zoom
        # tile geometry linked in, as a restarted server finds it, and no encoded tiles, or a
        # second run would find every tile of the (seeded) mix already cut.
        self.geometry = Path(store).parent / "tiles"
        self.environment = {**os.environ, "JNGIS_STORE": str(store), "JNGIS_WRITE_TOKEN": TOKEN,
                            "JNGIS_TILE_CACHE_MB": str(tile_cache_mb), "JNGIS_TILE_GEOMETRY_DIR": str(self.geometry)}
        if tree is not None:  # another checkout's code: jngis (and its server) imported from there
            self.environment["PYTHONPATH"] = str(tree)
            server_link = tree / "jngis" / "server"
            if not server_link.exists():  # jngis.server is the folder server/ (setup.cfg package_dir)
                server_link.symlink_to(tree / "server", target_is_directory=True)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        import httpx

        # The server's keep-alive (30 s) outlasts the client's 5 s expiry (httpx's default, uvicorn's
        # too): the client never sends on a connection the server is closing at that very moment.
        if self.workers > 1:
            command = [sys.executable, "-c", "from jngis.cli import main; main()", "serve", "--host", "127.0.0.1",
                       "--port", str(self.port), "--workers", str(self.workers), "--timeout-keep-alive", "30"]
        else:
            command = [sys.executable, "-m", "uvicorn", "jngis.server.app:create_app", "--factory", "--host",
                       "127.0.0.1", "--port", str(self.port), "--log-level", "warning", "--no-access-log",
                       "--timeout-keep-alive", "30"]
        link_tile_geometry(self.geometry)
        self.process = subprocess.Popen(
            command, cwd=self.tree,  # python -m puts the working folder first on the path
            env=self.environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.process.stderr.read()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    time.sleep(3.0 * (self.workers - 1))  # the other workers finish loading too
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"uvicorn did not answer on {self.url} in {self.startup_timeout:.0f} s")
            time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        keep_tile_geometry(self.geometry)

    def rss_mb(self) -> float:
        return rss_mb(self.process.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)


def link_tile_geometry(folder: Path) -> None:
    """``folder`` holding the machine's per-zoom tile geometry (hard links, or copies) and no
    encoded tiles: a server started on it cuts every tile again and builds no zoom built before
    (:func:`keep_tile_geometry` keeps what a run builds for the next)."""
    from jngis.sample import cache_dir

    folder.mkdir(parents=True, exist_ok=True)
    machine = cache_dir() / "tiles"
    for path in machine.glob("*-z*.*") if machine.is_dir() else []:
        target = folder / path.name
        if path.suffix in (".npz", ".arcs") and not target.exists():
            try:
                os.link(path, target)
            except OSError:  # another file system
                shutil.copy2(path, target)


def keep_tile_geometry(folder: Path) -> None:
    """Copy the per-zoom tile geometry a run built in ``folder`` into the machine's, for the next run."""
    from jngis.cache import atomic_write
    from jngis.sample import cache_dir

    machine = cache_dir() / "tiles"
    for path in folder.glob("*-z*.*"):
        if path.suffix in (".npz", ".arcs") and not (machine / path.name).exists():
            atomic_write(machine / path.name, lambda temporary, source=path: shutil.copyfile(source, temporary))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (worker and tile-cutting processes)."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def rss_mb(pid: int) -> float:
    """Resident memory of a process (and its worker processes) in MiB, less the pages of the shared tile file it maps.

    Those pages (``encoded.lmdb/data.mdb``, :mod:`jngis.server.tilestore`) are the page cache's,
    one copy for every server process, bounded by the file's own size; counted in the process's
    RSS they would grow with every tile read back, like a file read.
    """
    import psutil

    total = 0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:  # jngis serve --workers N: every worker
        if "resource_tracker" in " ".join(process.cmdline()):
            continue
        shared = sum(m.rss for m in process.memory_maps(grouped=True) if m.path.endswith("data.mdb"))
        total += process.memory_info().rss - shared
    return total / 2**20


# -- the mix -----------------------------------------------------------------------------

def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


@dataclass
class City:
    """What the mix needs to know about the served city (read over HTTP)."""

    places: list[tuple[float, float]]
    grid_codes: list[str]
    zooms: dict[str, tuple[int, int]]
    kinds: list[str]

    @classmethod
    def discover(cls, url: str) -> City:
        import httpx

        with httpx.Client(base_url=url, timeout=120) as client:
            listing = client.get("/layers").json()
            places = [tuple(f["geometry"]["coordinates"])
                      for f in client.get("/layers/communities/labels").json()["features"]]
            grid_codes = client.get("/stats/grids").json()["grid_code"]
            zooms = {}
            for entry in listing["layers"]:
                if "tilejson" in entry:
                    document = client.get(f"/tiles/{entry['id']}.json").json()
                    zooms[entry["id"]] = (document["minzoom"], document["maxzoom"])
        return cls(places, grid_codes, zooms, [entry["id"] for entry in listing["layers"]])


def requests_for(city: City, count: int, seed: int = 0) -> list[tuple[str, str, str, dict]]:
    """``count`` requests ``(kind, method, path, extra)`` drawn from MIX, reproducibly."""
    rng = random.Random(seed)
    kinds = list(MIX)
    weights = [MIX[k] for k in kinds]
    out: list[tuple[str, str, str, dict]] = []
    while len(out) < count:
        kind = rng.choices(kinds, weights)[0]
        place = rng.choice(city.places)
        lon, lat = place[0] + rng.uniform(-0.01, 0.01), place[1] + rng.uniform(-0.008, 0.008)
        if kind == "tile":
            z = rng.randint(8, 16)
            x, y = tile_of(lon, lat, z)
            layer = rng.choice([name for name, (low, high) in city.zooms.items() if low <= z <= high])
            out.append(("tile", "GET", f"/tiles/{layer}/{z}/{x}/{y}.mvt", {"headers": {"Accept-Encoding": "gzip"}}))
        elif kind == "stats":
            out.append(("stats", "GET", "/stats/grids", {"poll": rng.random() < 0.5}))
        elif kind == "card":
            out.append(("card", "GET", f"/grids/{rng.choice(city.grid_codes)}", {}))
        elif kind == "create":
            out.append(("create", "POST", "/workorders", {"json": {
                # at a community's label point: a place in the city, as the hotline's are
                "lon": place[0] + rng.uniform(-1e-4, 1e-4), "lat": place[1] + rng.uniform(-1e-4, 1e-4),
                "category": rng.choice(["市容环境", "物业管理", "噪音扰民"]),
                "description": "负载测试", "caller": {"name": "负载测试来电人", "phone": "13500000000"}},
                "headers": {"Authorization": f"Bearer {TOKEN}"}}))
        elif kind == "list":
            out.append(("list", "GET", f"/workorders?grid={rng.choice(city.grid_codes)}&limit=20",
                        {"headers": {"Authorization": f"Bearer {TOKEN}"}}))  # orders need a sign-in
        elif kind == "items":
            layer = rng.choice([k for k in city.kinds if k != "workorders"])
            box = f"{lon - 0.005:.6f},{lat - 0.004:.6f},{lon + 0.005:.6f},{lat + 0.004:.6f}"
            out.append(("items", "GET", f"/collections/{layer}/items?bbox={box}&limit=50", {}))
        else:
            out.append(("meta", "GET", rng.choice(["/layers", "/tiles/grids.json", "/healthz",
                                                    f"/search?q={rng.choice(city.grid_codes)[:9]}"]), {}))
    return out[:count]


# -- the client --------------------------------------------------------------------------

@dataclass
class Result:
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    rss_mb: list[tuple[int, float]] = field(default_factory=list)   # (requests done, MiB)
    client_cpu_s: float = 0.0  #: CPU seconds of this client process over the run
    server_cpu_s: float = 0.0  #: CPU seconds of the server's processes over the run (when its pid is known)
    transport_errors: dict[str, int] = field(default_factory=dict)  # status 0: exception name -> count
    in_order: list[float] = field(default_factory=list)  #: every latency, in the order the requests ended

    def p99_after(self, share: float) -> float:
        """p99 (ms) of the requests that ended after the first ``share`` of the run (the cold start left out)."""
        rest = np.asarray(self.in_order[int(share * len(self.in_order)):])
        return float(np.percentile(rest, 99) * 1e3) if len(rest) else float("nan")

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def summary(self) -> dict:
        every = np.concatenate([np.asarray(v) for v in self.latencies.values()]) if self.latencies else np.zeros(0)
        return {"requests": self.count, "seconds": self.seconds, "rps": self.count / self.seconds,
                "p50_ms": float(np.percentile(every, 50) * 1e3), "p99_ms": float(np.percentile(every, 99) * 1e3),
                "error_rate": self.error_count / max(self.count, 1)}

    def table(self) -> str:
        lines = ["| kind | requests | p50 ms | p99 ms | errors |", "|---|---|---|---|---|"]
        for kind, values in sorted(self.latencies.items(), key=lambda kv: -len(kv[1])):
            values = np.asarray(values)
            lines.append(f"| {kind} | {len(values):,} | {np.percentile(values, 50) * 1e3:.1f} | "
                         f"{np.percentile(values, 99) * 1e3:.1f} | {self.errors.get(kind, 0)} |")
        s = self.summary()
        lines.append(f"| **all** | {s['requests']:,} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | "
                     f"{self.error_count} ({s['error_rate']:.2%}) |")
        return "\n".join(lines)


async def _run(url: str, plan, concurrency: int, pid: int | None, samples: int, time_limit: float) -> Result:
    import aiohttp

    result = Result()
    etag: dict[str, str] = {}
    position = 0
    done = 0
    every = max(1, len(plan) // samples)
    started = time.perf_counter()
    stop_at = started + time_limit
    client_cpu = time.process_time()
    server_cpu = cpu_seconds(pid) if pid is not None else 0.0
    if pid is not None:
        result.rss_mb.append((0, rss_mb(pid)))

    async def worker(client: aiohttp.ClientSession) -> None:
        nonlocal position, done
        while position < len(plan) and time.perf_counter() < stop_at:
            kind, method, path, extra = plan[position]
            position += 1
            headers = dict(extra.get("headers", {}))
            if extra.get("poll") and path in etag:
                headers["If-None-Match"] = etag[path]
            began = time.perf_counter()
            try:
                async with client.request(method, path, headers=headers, json=extra.get("json")) as response:
                    await response.read()
                    status = response.status
                    if "etag" in response.headers:
                        etag[path] = response.headers["etag"]
            except (TimeoutError, aiohttp.ClientError) as exc:
                status = 0
                name = type(exc).__name__
                result.transport_errors[name] = result.transport_errors.get(name, 0) + 1
            result.latencies.setdefault(kind, []).append(latency := time.perf_counter() - began)
            result.in_order.append(latency)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if not (200 <= status < 400):
                result.errors[kind] = result.errors.get(kind, 0) + 1
            done += 1
            if pid is not None and done % every == 0:
                result.rss_mb.append((done, rss_mb(pid)))
                print(f"  {done:,} requests, {time.perf_counter() - started:.0f} s, "
                      f"RSS {result.rss_mb[-1][1]:.0f} MiB", file=sys.stderr, flush=True)

    # keep-alive 15 s, within the server's 30 s: the client never sends on a connection being closed
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=15)
    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    result.client_cpu_s = time.process_time() - client_cpu
    if pid is not None:
        result.server_cpu_s = cpu_seconds(pid) - server_cpu
        result.rss_mb.append((done, rss_mb(pid)))
    return result


def run_load(url: str, requests: int, *, concurrency: int = 16, seed: int = 0, pid: int | None = None,
             samples: int = 20, time_limit: float = 3600.0) -> Result:
    """Send ``requests`` requests of the mix to ``url`` (loopback only) and measure them."""
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError(f"url={url!r}: the load test only targets a server on this machine's loopback")
    city = City.discover(url)
    plan = requests_for(city, requests, seed)
    return asyncio.run(_run(url, plan, concurrency, pid, samples, time_limit))


# -- the city ----------------------------------------------------------------------------

def sample_with_grids() -> Path:
    """The full sample city plus its grids (make_grids, default bounds), built once and cached."""
    from jngis import __version__
    from jngis.grids import make_grids
    from jngis.layers import read_city, write_city
    from jngis.sample import load_sample, sample_path

    cached = sample_path().with_name(f"{sample_path().stem}-grids-{__version__}.gpkg")
    if cached.exists():
        return cached
    load_sample()
    city = read_city(sample_path())
    started = time.perf_counter()
    grids = make_grids(city.communities, city.units, progress=True)
    print(f"make_grids: {len(grids):,} grids in {time.perf_counter() - started:.0f} s", flush=True)
    city.grids = grids
    partial = cached.with_suffix(".partial.gpkg")
    write_city(city, partial)
    partial.rename(cached)
    return cached


def slice_with_grids(folder: Path) -> Path:
    from jngis.grids import make_grids
    from jngis.layers import write_city
    from jngis.sample import load_slice

    city = load_slice()
    city.grids = make_grids(city.communities, city.units, seed=0)
    return write_city(city, folder / "slice.gpkg")


def measure(store: Path, args, tree: Path | None = None) -> tuple[Result, float, float, bool]:
    """One run of the mix on a fresh copy of ``store`` (and fresh encoded tiles), printed;
    ``tree``: a checkout whose code the server runs. Returns (result, warm MiB, end MiB, passed)."""
    with tempfile.TemporaryDirectory(prefix="jngis-load-run-") as run_folder:
        copy = Path(run_folder) / store.name
        shutil.copy(store, copy)
        # another checkout compiles its numba kernels at its first start (minutes on a loaded machine)
        with Server(copy, tile_cache_mb=args.tile_cache_mb, workers=args.workers, tree=tree,
                    startup_timeout=300 if tree is None else 1800) as server:
            started = server.rss_mb()
            result = run_load(server.url, args.requests, concurrency=args.concurrency, pid=server.process.pid)
            ended = server.rss_mb()
    summary = result.summary()
    warm_index = next(i for i, (done, _) in enumerate(result.rss_mb) if done >= args.warmup * result.count)
    warm = result.rss_mb[warm_index][1]
    peak = max(mb for _, mb in result.rss_mb)
    which_city = "the slice (one 街道)" if args.city == "slice" else "the full sample"
    print(f"city: {which_city}; {args.workers} server process(es); {result.count:,} requests, "
          f"{args.concurrency} in flight, one async aiohttp client on the same machine"
          + (f"; server code: {tree.name}" if tree is not None else ""))
    print(result.table())
    print(f"\nrequests/s: {summary['rps']:.0f}  p50: {summary['p50_ms']:.1f} ms  p99: {summary['p99_ms']:.1f} ms  "
          f"errors: {summary['error_rate']:.3%}  statuses: {dict(sorted(result.statuses.items()))}"
          + (f"  transport errors (status 0): {result.transport_errors}" if result.transport_errors else ""))
    print(f"p99 after the first {args.warmup:.0%} (the cold start left out): {result.p99_after(args.warmup):.1f} ms")
    print(f"server RSS MiB: start {started:.0f}, after {args.warmup:.0%} (warm) {warm:.0f}, "
          f"peak {peak:.0f}, end {ended:.0f}; growth after warm-up {ended - warm:+.0f} "
          f"(tile cache bound {args.tile_cache_mb} MiB a process)")
    print(f"CPU s over the run: client {result.client_cpu_s:.1f}, server {result.server_cpu_s:.1f} "
          f"({result.seconds:.1f} s wall, {os.cpu_count()} cores); load average at the end "
          + " ".join(f"{v:.1f}" for v in os.getloadavg()))
    print("RSS by requests done: " + ", ".join(f"{done:,}:{mb:.0f}" for done, mb in result.rss_mb), flush=True)
    ok = summary["error_rate"] == 0 and ended - warm <= args.tile_cache_mb * args.workers
    return result, warm, ended, ok


def versus(rev: str, store: Path, args) -> bool:
    """The same mix on REV's server code and on this tree's, alternately, ``args.rounds`` times each."""
    here = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="jngis-load-versus-") as folder:  # this tree: the installed jngis
        old = Path(folder) / f"rev-{rev[:12]}"
        subprocess.run(["git", "-C", str(here), "worktree", "add", "--detach", str(old), rev], check=True,
                       capture_output=True)
        try:
            rows: list[tuple[str, dict, float, float, float, float]] = []
            passed = True
            for _ in range(args.rounds):
                for name, tree in ((rev[:9], old), ("this tree", None)):
                    started_load = os.getloadavg()[0]
                    result, warm, ended, ok = measure(store, args, tree)
                    passed &= ok
                    rows.append((name, {**result.summary(), "warm_p99_ms": result.p99_after(args.warmup)},
                                 ended - warm, result.server_cpu_s, result.client_cpu_s, started_load))
            print(f"\n| server code | requests/s | p50 ms | p99 ms | p99 after {args.warmup:.0%} ms | errors | "
                  "server CPU s | client CPU s | MiB after warm-up | load at start |\n"
                  "|---|---|---|---|---|---|---|---|---|---|")
            for name, summary, growth, server_cpu, client_cpu, load in rows:
                print(f"| {name} | {summary['rps']:.0f} | {summary['p50_ms']:.1f} | {summary['p99_ms']:.1f} | "
                      f"{summary['warm_p99_ms']:.1f} | {summary['error_rate']:.2%} | {server_cpu:.1f} | "
                      f"{client_cpu:.1f} | {growth:+.0f} | {load:.1f} |")
            for (_, a, *_), (_, b, *_) in zip(rows[0::2], rows[1::2]):
                print(f"this tree / {rev[:9]}: requests/s {b['rps'] / a['rps']:.2f}x, "
                      f"p99 {b['p99_ms'] / a['p99_ms']:.2f}x, p50 {b['p50_ms'] / a['p50_ms']:.2f}x")
            print(f"load average at the end {os.getloadavg()[0]:.1f}; "
                  f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
            return passed
        finally:
            subprocess.run(["git", "-C", str(here), "worktree", "remove", "--force", str(old)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--tile-cache-mb", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=0.2, help="share of the run before the memory baseline")
    parser.add_argument("--city", choices=("sample", "slice"), default="sample",
                        help="the full sample city with grids (default) or the committed slice (one 街道)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (jngis serve --workers N)")
    parser.add_argument("--quick", action="store_true", help="the committed slice, 3,000 requests")
    parser.add_argument("--versus", metavar="REV", help="the same mix on REV's server code, then on this tree's")
    parser.add_argument("--rounds", type=int, default=1, help="with --versus: runs of each, alternating")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.city = min(args.requests, 3_000), "slice"
    print("load average at the start " + " ".join(f"{v:.1f}" for v in os.getloadavg()), flush=True)
    with tempfile.TemporaryDirectory(prefix="jngis-load-") as folder:
        store = slice_with_grids(Path(folder)) if args.city == "slice" else sample_with_grids()
        if args.versus:
            ok = versus(args.versus, store, args)
        else:
            ok = measure(store, args)[3]
    print("PASS" if ok else "FAIL: errors, or memory grew beyond the tile cache bound after warm-up")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
