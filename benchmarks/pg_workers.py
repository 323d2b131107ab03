"""Several ``jngis serve`` processes ("hosts") on one PostGIS store under a mixed wrk load.

Issue 17, "Beyond one machine": a throw-away PostgreSQL + PostGIS cluster on
loopback (``tests/pgcluster.py``, as the tests get theirs) holds the
committed slice (one 街道) with its grids. Up to ``--hosts`` separate
``jngis serve`` processes are started on their own ports, each as a separate
host would be: its own tile geometry and tile file, its own saved grid
tables, the same ``JNGIS_STORE`` (plus an ``application_name`` naming the
host, so PostgreSQL can count each one's connections) and the same
``JNGIS_WRITE_TOKEN``. For 1, 2, ... hosts in turn (the next one is started
after the previous run):

- **load**: two ``wrk`` processes whose Lua scripts give each thread one host
  (``thread.addr``): reads cycling warm grid tiles z12-16, ``/stats/grids``
  and grid cards (39 : 5 : 5), 16 connections; writes, one connection a host,
  ``POST /workorders`` at about ``--writes-per-second`` in all (wrk's
  ``delay()``), with a user token issued by the first host, so every host must
  accept a token another one made. wrk's requests/s, p50 / p99 / max and
  errors (non-2xx/3xx answers and socket errors, 10 s timeout), for each.
- **CPU**: user + system seconds of the server processes, of PostgreSQL
  (postmaster, backends, and the backends that ended) and of wrk over the
  run; requests per server CPU second show the scaling better than
  requests/s, since wrk and the servers share the machine's 2 cores.
- **propagation**: meanwhile, four probe writers, each on a grid of its own
  that the load never writes to, write one work order at a time through host
  ``k % N``, and every host's ``/stats/grids`` is polled (``If-None-Match``,
  every 20 ms) until its ``open_orders`` for that grid counts it: the delay
  from the ``201`` answer to each host's first answer holding it (median,
  p99, max; the writing host and every other host apart).
- **connections**: ``pg_stat_activity`` sampled every 0.5 s, per host.
- **statelessness**, after the last run: every host gives the same tile the
  same ETag and version, the same per-grid counts once the writes stop, an
  order written through one is read through every other, and a user disabled
  through one host is refused by every other at once.

    python benchmarks/pg_workers.py [--hosts 4] [--seconds 20] [--probes 50] [--writes-per-second 2]
        [--workers-per-host 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import psutil

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "tests")]

from load import TOKEN, free_port, tile_of  # noqa: E402
from pgcluster import postgis_cluster, schema_dsn  # noqa: E402

#: The reads' wrk mix: requests of each kind in a cycle of 49.
MIX = {"tile": 39, "stats": 5, "card": 5}
#: Grids the mix's writes go to (the probes' grids are never among them).
WRITE_GRIDS = 20
#: Probe writers running at once, each on a grid of its own.
PROBE_GRIDS = 4
POLL_SECONDS = 0.02


# -- the city and the hosts ------------------------------------------------------------

def seed_store(dsn: str) -> dict:
    """The slice with its grids in a new schema of ``dsn``; what the load needs to know of it."""
    from jngis.crs import WGS84
    from jngis.grids import make_grids
    from jngis.sample import load_slice
    from jngis.store import open_store

    city = load_slice()
    city.grids = make_grids(city.communities, city.units, seed=0)
    url = schema_dsn(dsn)
    with open_store(url) as store:
        store.write_city(city)
    grids = city.grids.to_crs(WGS84)
    inside = grids.representative_point()
    codes = grids["grid_code"].tolist()
    points = {code: (float(p.x), float(p.y)) for code, p in zip(codes, inside)}
    probes = codes[1::max(1, len(codes) // PROBE_GRIDS)][:PROBE_GRIDS]
    others = [c for c in codes if c not in probes]
    writes = others[:: max(1, len(others) // WRITE_GRIDS)][:WRITE_GRIDS]
    return {"url": url, "grids": grids, "points": points, "probes": probes, "writes": writes}


class Host:
    """One ``jngis serve`` process on a port of its own, as a separate machine would run it."""

    def __init__(self, index: int, url: str, folder: Path, workers: int) -> None:
        self.index, self.port, self.workers = index, free_port(), workers
        self.base = f"http://127.0.0.1:{self.port}"
        self.name = f"jngis_host{index}"
        separator = "&" if "?" in url else "?"
        home = folder / f"host{index}"  # nothing on disk is shared between hosts
        self.environment = {**os.environ, "JNGIS_STORE": f"{url}{separator}application_name={quote(self.name)}",
                            "JNGIS_WRITE_TOKEN": TOKEN, "JNGIS_TILE_GEOMETRY_DIR": str(home / "tiles"),
                            "JNGIS_STATS_CACHE_DIR": str(home / "stats")}
        self.process: subprocess.Popen | None = None
        self.log = home / "server.log"
        home.mkdir(parents=True)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from jngis.cli import main; main()", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(self.workers), "--timeout-keep-alive", "30"],
            env=self.environment, stdout=subprocess.DEVNULL, stderr=self.log.open("w"))

    def wait(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"host {self.index} exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    time.sleep(3.0 * (self.workers - 1))  # the other workers finish loading too
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"host {self.index} did not answer in {timeout:.0f} s")

    def processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def cpu_seconds(processes: list[psutil.Process], *, reaped: bool = False) -> float:
    """User + system seconds of ``processes`` (and, ``reaped``, of the children they waited for)."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
        if reaped:
            total += times.children_user + times.children_system
    return total


def postgres_processes(port: int) -> list[psutil.Process]:
    """The cluster's postmaster (its cmdline names the port) and its children."""
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == "postgres" and f"-p {port}" in cmdline:
            return [process, *process.children()]
    raise RuntimeError(f"no postmaster on port {port}")


# -- the mix and wrk -------------------------------------------------------------------

def mix(city: dict, token: str, seed: int = 0) -> tuple[list, list, int]:
    """``(reads, writes, tiles)``: shuffled cycles of ``(method, path, headers, body)`` (tiles over the
    slice, counts, cards; work orders in the load's grids) and how many tiles the reads cycle."""
    rng = np.random.default_rng(seed)
    lon0, lat0, lon1, lat1 = city["grids"].total_bounds
    tiles = []
    for z in range(12, 17):
        (x0, y1), (x1, y0) = tile_of(lon0, lat0, z), tile_of(lon1, lat1, z)
        tiles += [f"/tiles/grids/{z}/{x}/{y}.mvt" for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    codes = list(city["points"])
    cycle: list[tuple[str, str, dict, str | None]] = []
    for round_ in range(20):
        for kind, count in MIX.items():
            for k in range(count):
                if kind == "tile":
                    cycle.append(("GET", tiles[(round_ * MIX["tile"] + k) % len(tiles)],
                                  {"Accept-Encoding": "gzip"}, None))
                elif kind == "stats":
                    cycle.append(("GET", "/stats/grids", {"Accept-Encoding": "gzip"}, None))
                else:
                    cycle.append(("GET", f"/grids/{codes[int(rng.integers(len(codes)))]}", {}, None))
    writes = []
    for code in city["writes"]:
        lon, lat = city["points"][code]
        body = json.dumps({"lon": lon, "lat": lat, "category": "市容环境", "description": "多进程负载测试",
                           "caller": {"name": "负载测试来电人", "phone": "13500000000"}}, ensure_ascii=False)
        writes.append(("POST", "/workorders", {"Authorization": f"Bearer {token}",
                                               "Content-Type": "application/json"}, body))
    order = rng.permutation(len(cycle))
    return [cycle[i] for i in order], writes, len(tiles)


def lua_string(text: str) -> str:
    return f"[==[{text}]==]"  # a long bracket: no escapes to get wrong (the bodies hold Chinese)


LUA = """
local hosts = {%(hosts)s}
local plan = {%(plan)s}
local counter = 0
function setup(thread)
  local port = hosts[(counter %% #hosts) + 1]
  thread.addr = wrk.lookup("127.0.0.1", port)[1]
  thread:set("offset", counter * 7919)
  counter = counter + 1
end
function init(args)
  i = offset
  prepared = {}
  for k, r in ipairs(plan) do
    prepared[k] = wrk.format(r[1], r[2], r[3], r[4])
  end
end
function request()
  i = i + 1
  return prepared[(i %% #prepared) + 1]
end
%(delay)s
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk_script(hosts: list[Host], plan, path: Path, delay_ms: float = 0) -> Path:
    """A wrk script cycling ``plan``, thread ``k`` on host ``k % len(hosts)``; ``delay_ms`` between two
    requests of a connection (the writes' fixed rate)."""
    def entry(method, path, headers, body):
        fields = ", ".join(f"[ {lua_string(k)} ] = {lua_string(v)}" for k, v in headers.items())
        return f"{{{lua_string(method)}, {lua_string(path)}, {{{fields}}}, {lua_string(body) if body else 'nil'}}}"

    delay = f"function delay()\n  return {delay_ms:.0f}\nend" if delay_ms else ""
    path.write_text(LUA % {"hosts": ", ".join(f'"{h.port}"' for h in hosts),
                           "plan": ",\n".join(entry(*r) for r in plan), "delay": delay}, encoding="utf-8")
    return path


def start_wrk(script: Path, threads: int, connections: int, seconds: float, base: str) -> subprocess.Popen:
    return subprocess.Popen(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:.0f}s", "--latency",
                             "--timeout", "10s", "-s", str(script), base], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish_wrk(process: subprocess.Popen) -> dict:
    """wrk's figures (:func:`parse_wrk`) and its CPU seconds, once it has ended."""
    out = process.stdout.read()
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)  # not Popen.wait: its rusage is wrk's CPU
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode or errors.strip():  # a broken script is only a message on stderr
        raise RuntimeError(f"wrk failed:\n{out}\n{errors}")
    return {**parse_wrk(out), "wrk_cpu_s": usage.ru_utime + usage.ru_stime}


def parse_wrk(out: str) -> dict:
    def ms(pattern: str) -> float:
        value, unit = re.search(pattern, out, re.M).groups()
        return float(value) * _UNITS[unit]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": ms(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$"), "p99_ms": ms(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$"),
            "max_ms": ms(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)"),
            "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": sum(map(int, sockets.groups())) if sockets else 0, "output": out}


# -- propagation -----------------------------------------------------------------------

class Poller(threading.Thread):
    """Polls one host's ``/stats/grids``; keeps the probe grids' newest counts and when each was first seen."""

    def __init__(self, host: Host, probes: list[str]) -> None:
        super().__init__(daemon=True)
        self.host, self.probes = host, probes
        self.stop = threading.Event()
        self.count: dict[str, int] = {}
        self.first_seen: dict[tuple[str, int], float] = {}
        self.failures = 0

    def run(self) -> None:
        etag = None
        with httpx.Client(base_url=self.host.base, timeout=30) as client:
            while not self.stop.is_set():
                try:
                    answer = client.get("/stats/grids", headers={"If-None-Match": etag} if etag else {})
                except httpx.TransportError:
                    self.failures += 1
                    continue
                now = time.monotonic()
                if answer.status_code == 200:
                    etag = answer.headers.get("etag")
                    body = answer.json()
                    position = {code: i for i, code in enumerate(body["grid_code"])}
                    for grid in self.probes:
                        count = int(body["columns"]["open_orders"][position[grid]])
                        self.count[grid] = count
                        self.first_seen.setdefault((grid, count), now)
                elif answer.status_code != 304:
                    self.failures += 1
                self.stop.wait(POLL_SECONDS)

    def seen(self, grid: str, count: int) -> float | None:
        """When this host first counted at least ``count`` open orders in ``grid`` (None: not yet)."""
        times = [t for (g, c), t in list(self.first_seen.items()) if g == grid and c >= count]
        return min(times) if times else None


def probe_writes(hosts: list[Host], city: dict, grid: str, first: int, stop: threading.Event, limit: int,
                 pollers: list[Poller], delays: list[tuple[int, list[float]]], failures: list[str]) -> None:
    """Write one order at a time into ``grid`` through host ``k % N`` (``k`` from ``first``); every host's
    delay from the ``201`` to its first ``/stats/grids`` counting it."""
    lon, lat = city["points"][grid]
    body = {"lon": lon, "lat": lat, "category": "市容环境", "description": "传播时延探针"}
    clients = [httpx.Client(base_url=h.base, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"})
               for h in hosts]
    try:
        deadline = time.monotonic() + 30
        while any(grid not in p.count for p in pollers):  # every host has answered once
            if time.monotonic() > deadline:
                failures.append("a host never answered /stats/grids")
                return
            time.sleep(0.05)
        for k in range(first, first + limit):
            if stop.is_set():
                return
            target = max(p.count[grid] for p in pollers) + 1
            writer = k % len(hosts)
            answer = clients[writer].post("/workorders", json=body)
            written = time.monotonic()
            if answer.status_code != 201:
                failures.append(f"probe {k}: {answer.status_code} {answer.text[:200]}")
                continue
            while None in (seen := [p.seen(grid, target) for p in pollers]):
                if time.monotonic() - written > 30:
                    failures.append(f"probe {k}: not seen by every host in 30 s")
                    return
                time.sleep(0.005)
            delays.append((writer, [max(0.0, t - written) for t in seen]))
            time.sleep(0.1)
    finally:
        for client in clients:
            client.close()


# -- connections -----------------------------------------------------------------------

class ConnectionSampler(threading.Thread):
    """``pg_stat_activity`` every 0.5 s: the most connections each host held, and in all."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.stop = threading.Event()
        self.peak: dict[str, int] = {}
        self.peak_total = 0

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.wait(0.5):
                rows = conn.execute("SELECT application_name, count(*) FROM pg_stat_activity WHERE backend_type = "
                                    "'client backend' AND pid <> pg_backend_pid() GROUP BY 1").fetchall()
                for name, count in rows:
                    self.peak[name] = max(self.peak.get(name, 0), int(count))
                self.peak_total = max(self.peak_total, sum(int(c) for _, c in rows))


# -- one run ---------------------------------------------------------------------------

def warm(hosts: list[Host], plan) -> None:
    """Every GET of the mix once through every host (each cuts its own tiles)."""
    paths = sorted({path for method, path, _, _ in plan if method == "GET"})
    for host in hosts:
        with httpx.Client(base_url=host.base, timeout=120, headers={"Accept-Encoding": "gzip"}) as client:
            for path in paths:
                answer = client.get(path)
                if answer.status_code != 200:
                    raise RuntimeError(f"host {host.index}: {path} answered {answer.status_code}")


def run(hosts: list[Host], city: dict, reads, writes, pg_port: int, dsn: str, seconds: float, probes: int,
        writes_per_second: float, folder: Path) -> dict:
    warm(hosts, reads)
    n = len(hosts)
    threads = {1: 2, 3: 3}.get(n, n)  # each wrk thread talks to one host
    connections = 16 // threads * threads
    read_script = wrk_script(hosts, reads, folder / "reads.lua")
    write_script = wrk_script(hosts, writes, folder / "writes.lua", delay_ms=n / writes_per_second * 1e3)
    pollers = [Poller(h, city["probes"]) for h in hosts]
    sampler = ConnectionSampler(dsn)
    stop, delays, failures = threading.Event(), [], []
    for thread in (*pollers, sampler):
        thread.start()
    servers = [p for h in hosts for p in h.processes()]
    server_before, pg_before = cpu_seconds(servers), cpu_seconds(postgres_processes(pg_port), reaped=True)
    hosts_before = [cpu_seconds(h.processes()) for h in hosts]
    load_before = os.getloadavg()[0]
    read_wrk = start_wrk(read_script, threads, connections, seconds, hosts[0].base)
    write_wrk = start_wrk(write_script, n, n, seconds, hosts[0].base)  # one connection a host
    probers = [threading.Thread(target=probe_writes, daemon=True,
                                args=(hosts, city, grid, j, stop, -(-probes // PROBE_GRIDS), pollers, delays, failures))
               for j, grid in enumerate(city["probes"])]
    for prober in probers:
        prober.start()
    row, written = finish_wrk(read_wrk), finish_wrk(write_wrk)
    server_cpu = cpu_seconds(servers) - server_before
    per_host = [cpu_seconds(h.processes()) - b for h, b in zip(hosts, hosts_before)]
    pg_cpu = cpu_seconds(postgres_processes(pg_port), reaped=True) - pg_before
    stop.set()
    for prober in probers:
        prober.join(timeout=60)
    for thread in (*pollers, sampler):
        thread.stop.set()
        thread.join(timeout=30)
    own = [seen[writer] for writer, seen in delays]
    others = [d for writer, seen in delays for h, d in enumerate(seen) if h != writer]
    row.update(hosts=n, threads=threads, connections=connections, server_cpu_s=server_cpu, writes=written,
               pg_cpu_s=pg_cpu, wrk_cpu_s=row["wrk_cpu_s"] + written["wrk_cpu_s"],
               per_server_cpu=(row["requests"] + written["requests"]) / max(server_cpu, 1e-9),
               per_all_cpu=(row["requests"] + written["requests"]) / max(server_cpu + pg_cpu, 1e-9),
               probes=len(delays), probe_failures=failures + [f"host {p.host.index}: {p.failures} failed polls"
                                                             for p in pollers if p.failures],
               delay_own=np.asarray(own), delay_others=np.asarray(others),
               pg_peak=dict(sampler.peak), pg_peak_total=sampler.peak_total,
               load=(load_before, os.getloadavg()[0]),
               cpu_per_host=per_host)
    return row


# -- statelessness ---------------------------------------------------------------------

def check_statelessness(hosts: list[Host], city: dict, plan, user: dict) -> list[str]:
    """What must hold whichever host answers; a list of what did not (empty: all held)."""
    problems: list[str] = []
    admin = {"Authorization": f"Bearer {TOKEN}"}
    clients = [httpx.Client(base_url=h.base, timeout=60) for h in hosts]
    try:
        tiles = sorted({p for m, p, _, _ in plan if p.startswith("/tiles/")})[:40]
        for path in tiles:
            seen = {(c.get(path, headers={"Accept-Encoding": "gzip"}).headers.get("etag"),
                     c.get(path).headers.get("x-jngis-version")) for c in clients}
            if len(seen) != 1:
                problems.append(f"{path}: hosts answer different (ETag, version) pairs {seen}")
        time.sleep(3.0)  # the writes have stopped; every host's counts settle
        counts = set()
        for c in clients:
            body = c.get("/stats/grids").json()
            counts.add(json.dumps([body["version"], body["grid_code"], body["columns"]], sort_keys=True))
        if len(counts) != 1:
            problems.append(f"/stats/grids: {len(counts)} different tables across {len(hosts)} hosts")
        lon, lat = city["points"][city["writes"][0]]
        for k, writer in enumerate(clients):
            order = writer.post("/workorders", headers=admin, json={"lon": lon, "lat": lat, "category": "市容环境",
                                                                     "description": "跨进程读取"}).json()
            for j, reader in enumerate(clients):
                answer = reader.get(f"/workorders/{order['order_id']}", headers=admin)
                if answer.status_code != 200 or answer.json()["grid_code"] != order["grid_code"]:
                    problems.append(f"order written through host {k} answered {answer.status_code} by host {j}")
        token = {"Authorization": f"Bearer {user['token']}"}
        for j, reader in enumerate(clients):
            if reader.get("/users", headers=token).status_code != 200:
                problems.append(f"host {j} refused the token host 0 issued")
        clients[-1].post(f"/users/{user['user_id']}/disable", headers=admin).raise_for_status()
        for j, reader in enumerate(clients):  # at once: the next request after the answer
            status = reader.get("/users", headers=token).status_code
            if status != 401:
                problems.append(f"host {j} answered {status} to a token disabled through host {len(hosts) - 1}")
    finally:
        for client in clients:
            client.close()
    return problems


# -- the report ------------------------------------------------------------------------

def percentiles(values: np.ndarray) -> str:
    if values.size == 0:
        return "- | - | -"
    return (f"{np.percentile(values, 50) * 1e3:.0f} | {np.percentile(values, 99) * 1e3:.0f} | "
            f"{values.max() * 1e3:.0f}")


def report(rows: list[dict], workers: int, seconds: float, tiles: int, writes_per_second: float) -> None:
    print(f"\nreads: wrk -d{seconds:.0f}s cycling {MIX['tile']} warm grid tiles z12-16 (of {tiles}), "
          f"{MIX['stats']} /stats/grids and {MIX['card']} grid cards in 49; writes: a second wrk, one connection "
          f"a host, POST /workorders at {writes_per_second:g}/s in all; {workers} worker(s) per host")
    print("| hosts | reads wrk -t/-c | reads/s | p50 ms | p99 ms | max ms | errors | writes/s | write p50 ms "
          "| write p99 ms | write errors | server CPU s | req / server CPU s | PostgreSQL CPU s "
          "| req / (server+PG) CPU s | wrk CPU s | PG connections peak (per host) | load avg |")
    print("|" + "---|" * 19)
    # errors: non-2xx/3xx answers + socket errors (connect, read, write, timeout after 10 s)
    for r in rows:
        w = r["writes"]
        per_host = ", ".join(str(r["pg_peak"].get(f"jngis_host{h}", 0)) for h in range(r["hosts"]))
        print(f"| {r['hosts']} | {r['threads']}/{r['connections']} | {r['rps']:,.0f} | {r['p50_ms']:.1f} "
              f"| {r['p99_ms']:.1f} | {r['max_ms']:.0f} | {r['non2xx']} + {r['socket_errors']} "
              f"| {w['rps']:.1f} | {w['p50_ms']:.0f} | {w['p99_ms']:.0f} | {w['non2xx']} + {w['socket_errors']} "
              f"| {r['server_cpu_s']:.1f} | {r['per_server_cpu']:,.0f} | {r['pg_cpu_s']:.1f} "
              f"| {r['per_all_cpu']:,.0f} | {r['wrk_cpu_s']:.1f} "
              f"| {r['pg_peak_total']} ({per_host}) | {r['load'][0]:.1f} -> {r['load'][1]:.1f} |")
    print("\npropagation: a write through one host until every host's /stats/grids counts it (ms)")
    print("| hosts | probes | writing host p50 | p99 | max | every other host p50 | p99 | max | failures |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['hosts']} | {r['probes']} | {percentiles(r['delay_own'])} | {percentiles(r['delay_others'])} "
              f"| {'; '.join(r['probe_failures']) or 0} |")
    print("\nserver CPU s per host over the run: " + "; ".join(
        f"{r['hosts']} hosts: " + ", ".join(f"{c:.1f}" for c in r["cpu_per_host"]) for r in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=4, help="measure 1, 2, ... this many hosts")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--probes", type=int, default=50, help="propagation probes a run (at most)")
    parser.add_argument("--workers-per-host", type=int, default=1, help="jngis serve --workers of each host")
    parser.add_argument("--writes-per-second", type=float, default=2.0,
                        help="work orders written a second by the load, spread over the hosts")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    print(f"load average at the start {os.getloadavg()[0]:.1f}", flush=True)
    with postgis_cluster() as dsn, tempfile.TemporaryDirectory(prefix="jngis-pg-workers-") as folder:
        folder = Path(folder)
        pg_port = int(re.search(r":(\d+)/", dsn).group(1))
        city = seed_store(dsn)
        hosts: list[Host] = []
        rows = []
        try:
            for n in range(1, args.hosts + 1):
                host = Host(n - 1, city["url"], folder, args.workers_per_host)
                hosts.append(host)
                host.start()
                host.wait()
                if n == 1:  # a user token issued by host 0, used by the load's writes on every host
                    user = httpx.post(host.base + "/users", headers={"Authorization": f"Bearer {TOKEN}"},
                                      json={"name": "负载测试接线员", "role": "admin"}, timeout=60).json()
                    reads, writes, tiles = mix(city, user["token"])
                print(f"{n} host(s) up, load average {os.getloadavg()[0]:.1f}", flush=True)
                rows.append(run(hosts, city, reads, writes, pg_port, dsn, args.seconds, args.probes,
                                args.writes_per_second, folder))
            problems = check_statelessness(hosts, city, reads, user)
        finally:
            for host in hosts:
                host.stop()
            logged = [f"host {h.index}: " + h.log.read_text()[-3000:] for h in hosts
                      if "Traceback" in h.log.read_text()]
    report(rows, args.workers_per_host, args.seconds, tiles, args.writes_per_second)
    print("\nstatelessness across hosts: " + ("held (tile ETags and versions, counts, orders, a token issued by "
                                              "one and disabled through another)" if not problems
                                              else "FAILED: " + "; ".join(problems)))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    for text in logged:  # a server error's traceback: what to fix
        print("\n" + text)
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
