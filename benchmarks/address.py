"""Address lookup quality and speed: jngis.AddressIndex vs plain rapidfuzz on the whole string.

On the sample city's generated addresses and their noisy variants
(jngis.address.noisy_variants): precision (right unit among the answers
given; a compound-level answer is right when its grid is the unit's grid) and
the share answered, per variant kind; the baseline is
``rapidfuzz.process.extractOne(text, every standard address, scorer=WRatio)``
(answered when its score reaches --baseline-cutoff; computed with
``process.cdist`` on both cores). Then lookups per second in batch (``lookup``,
caches cleared, one process and ``workers=2``) with the CPU seconds per lookup
(what the machine's load does not change), a single ``locate``'s latency, and
the latency of ``GET /geocode`` against a real uvicorn serving the sample city,
loaded by another process over loopback (``wrk`` with a Lua script rotating the
queries when it is installed, else a Python client process), at --concurrency
connections and at one, with the server's CPU time per request.

    .venv/bin/python benchmarks/address.py [--units 3000] [--baseline 300] [--http-seconds 10] [--concurrency 8]

``--http-seconds 0`` leaves the server out; ``--store N`` times the store's lookup instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jngis  # noqa: E402
from jngis.address import JINAN_PREFIXES, AddressIndex, noisy_variants, sample_addresses  # noqa: E402
from jngis.address.normalise import normalise  # noqa: E402


def _scores(answers: pd.DataFrame, truth: pd.Series, kinds: pd.Series, grid_of: dict) -> pd.DataFrame:
    given = answers["status"].eq("matched").to_numpy()
    right = (answers["unit_id"].to_numpy() == truth.to_numpy()) | (
        answers["level"].eq("compound").to_numpy() & (answers["grid_code"].to_numpy()
                                                       == truth.map(grid_of).to_numpy()))
    frame = pd.DataFrame({"kind": kinds.to_numpy(), "given": given, "right": right & given})
    table = frame.groupby("kind").agg(n=("given", "size"), answered=("given", "mean"), right=("right", "sum"),
                                      given_n=("given", "sum"))
    table.loc["all"] = [len(frame), frame["given"].mean(), frame["right"].sum(), frame["given"].sum()]
    table["precision"] = table["right"] / table["given_n"].where(table["given_n"] > 0)
    return table[["n", "answered", "precision"]]


def _best_matches(texts: list[str], choices: list[str], scorer, process, chunk: int = 100) -> list[tuple]:
    """``process.extractOne(text, choices)`` for every text, as (choice, score, position), computed with
    ``process.cdist`` on both cores (the baseline at its fastest, not one call per text)."""
    out = []
    for start in range(0, len(texts), chunk):
        scores = process.cdist(texts[start:start + chunk], choices, scorer=scorer, workers=-1, dtype=np.uint8)
        for row in scores:
            at = int(row.argmax())
            out.append((choices[at], float(row[at]), at))
    return out


_WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("JNGIS_PATHS")) do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""

# A load generator in its own process when wrk is missing: `connections` threads, one kept-alive
# HTTP/1.1 connection each, rotating the paths; prints the latencies (ms) as JSON.
_PY_CLIENT = """
import http.client, json, sys, threading, time
port, connections, seconds, paths_file = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
paths = open(paths_file, encoding="utf-8").read().split()
times, end = [], time.perf_counter() + seconds
def run(k):
    conn, i, mine = http.client.HTTPConnection("127.0.0.1", port), k, []
    while time.perf_counter() < end:
        t = time.perf_counter()
        conn.request("GET", paths[i % len(paths)])
        answer = conn.getresponse(); answer.read()
        mine.append((time.perf_counter() - t) * 1000)
        assert answer.status == 200, answer.status
        i += connections
    times.extend(mine)
threads = [threading.Thread(target=run, args=(k,)) for k in range(connections)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps(times))
"""


def _cpu_seconds(pid: int) -> float:
    import psutil

    cpu = psutil.Process(pid).cpu_times()
    return cpu.user + cpu.system


def _wait_idle(pid: int, limit: float = 120.0) -> None:
    """Until the process uses under 5 % of a core over a second (at most ``limit`` seconds)."""
    end = time.time() + limit
    while time.time() < end:
        before = _cpu_seconds(pid)
        time.sleep(1)
        if _cpu_seconds(pid) - before < 0.05:
            return


def _load(port: int, connections: int, seconds: float, paths: Path, folder: Path) -> dict:
    """One load run: requests, p50/p99 (ms), requests/s; wrk if installed, else a Python process."""
    import json
    import shutil
    import subprocess

    wrk = shutil.which("wrk")
    if wrk is not None:
        script = folder / "rotate.lua"
        script.write_text(_WRK_SCRIPT)
        out = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script),
                              f"http://127.0.0.1:{port}"], env={**os.environ, "JNGIS_PATHS": str(paths)},
                             capture_output=True, text=True, check=True).stdout
        unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}

        def ms(label: str) -> float:
            value = out.split(label, 1)[1].split()[0]
            number = value.rstrip("usm")
            return float(number) * unit[value[len(number):]]

        n = int(out.split(" requests in ")[0].split()[-1])
        errors = "Non-2xx" in out or "Socket errors" in out
        if errors:
            raise RuntimeError(f"wrk saw errors:\n{out}")
        return {"tool": "wrk", "n": n, "p50": ms("50%"), "p99": ms("99%"), "rps": n / seconds}
    out = subprocess.run([sys.executable, "-c", _PY_CLIENT, str(port), str(connections), str(seconds),
                          str(paths)], capture_output=True, text=True, check=True).stdout
    times = np.array(json.loads(out))
    return {"tool": "python client process", "n": len(times), "p50": float(np.percentile(times, 50)),
            "p99": float(np.percentile(times, 99)), "rps": len(times) / seconds}


def _start_server() -> tuple[object, int]:
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "jngis.server.app:create_app", "--factory",
                               "--port", str(port), "--log-level", "warning", "--no-access-log"],
                              env={k: v for k, v in os.environ.items() if k != "JNGIS_STORE"})
    return server, port


def _http(server, port: int, texts: list[str], seconds: float, concurrency: int) -> None:
    """``GET /geocode`` loaded from another process over loopback; prints p50/p99 and CPU per request."""
    import tempfile
    import urllib.parse

    import httpx

    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    deadline = time.time() + 600
    while True:
        try:
            if client.get("/healthz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.time() > deadline or server.poll() is not None:
            raise RuntimeError("the server did not start")
        time.sleep(0.5)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        paths = folder / "paths.txt"
        paths.write_text("".join(f"/geocode?{urllib.parse.urlencode({'q': t})}\n" for t in texts))
        assert client.get("/geocode", params={"q": texts[0]}).json()["status"] == "matched"  # builds the index
        _load(port, 4, 5, paths, folder)  # every query once (the normalising cache as in service)
        _wait_idle(server.pid)  # the tile warm-up threads of a fresh server are done
        for connections in (concurrency, 1):
            cpu = _cpu_seconds(server.pid)
            run = _load(port, connections, seconds, paths, folder)
            per = (_cpu_seconds(server.pid) - cpu) / run["n"] * 1e6
            print(f"GET /geocode, {connections} connection{'s' if connections > 1 else ''} for {seconds:g} s "
                  f"({run['tool']}, {len(texts):,} queries rotated): {run['n']:,} requests, "
                  f"{run['rps']:,.0f}/s; ms p50 {run['p50']:.2f}, p99 {run['p99']:.2f}; "
                  f"server CPU {per:.0f} us per request; load {os.getloadavg()[0]:.1f}")


def _store_latency(n: int) -> None:
    """``store.locate_address`` (FTS5 candidates + a small index) on a GeoPackage of the whole sample city."""
    import tempfile

    from jngis.layers import City
    from jngis.store import open_store

    city = jngis.load_sample()
    texts = noisy_variants(city.units, city.units, n=n, seed=13)["text"].sample(n=n, random_state=3).tolist()
    with tempfile.TemporaryDirectory() as folder, open_store(Path(folder) / "city.gpkg") as store:
        t = time.perf_counter()
        store.write_city(City(districts=city.districts, streets=city.streets, communities=city.communities,
                              units=city.units, grids=city.grids))
        rows = store.index_addresses()
        built = time.perf_counter() - t
        times, found = [], 0
        for text in texts:
            t = time.perf_counter()
            found += store.locate_address(text, prefixes=JINAN_PREFIXES)["status"] == "matched"
            times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    print(f"store (SQLite, {rows:,} units; written and indexed in {built:.1f} s): {len(ms)} locate_address, "
          f"answered {found / len(ms):.3f}; ms p50 {np.percentile(ms, 50):.1f}, p90 {np.percentile(ms, 90):.1f}, "
          f"p99 {np.percentile(ms, 99):.1f}; load {os.getloadavg()[0]:.1f}")


def _batch(index: AddressIndex, texts: pd.Series, workers: int) -> tuple[pd.DataFrame, float, float]:
    """(answers, lookups/s, CPU microseconds per lookup, forked workers' included), caches cleared first."""
    import resource

    def cpu() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    normalise.cache_clear()
    c, t = cpu(), time.perf_counter()
    answers = index.lookup(texts, workers=workers)
    wall = time.perf_counter() - t
    return answers, len(texts) / wall, (cpu() - c) / len(texts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=3000, help="units whose address variants are looked up")
    parser.add_argument("--baseline", type=int, default=300, help="variants the (slow) baseline looks up")
    parser.add_argument("--baseline-cutoff", type=float, default=90.0)
    parser.add_argument("--latency", type=int, default=2000)
    parser.add_argument("--http-seconds", type=float, default=10,
                        help="seconds of load on GET /geocode per concurrency (0: no server)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections of the load generator")
    parser.add_argument("--store", type=int, default=0,
                        help="texts looked up one at a time in a SQLite store of the whole sample city")
    args = parser.parse_args()
    if args.store:
        _store_latency(args.store)
        return
    from rapidfuzz import fuzz, process

    print(f"uptime load averages (1, 5, 15 min): {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"{os.cpu_count()} cores")
    city = jngis.load_sample()
    t = time.perf_counter()
    addresses = sample_addresses(city.units, districts=city.districts)
    t_addr = time.perf_counter() - t
    units = city.units  # the same addresses, attached by load_sample
    t = time.perf_counter()
    index = AddressIndex(units, districts=city.districts, streets=city.streets, communities=city.communities,
                         grids=city.grids, prefixes=JINAN_PREFIXES)
    t_build = time.perf_counter() - t
    variants = noisy_variants(city.units, addresses, n=args.units, seed=11)
    grid_of = dict(zip(units["unit_id"], index._grid))
    print(f"units {len(units):,}; sample_addresses {t_addr:.1f} s; index build {t_build:.1f} s; "
          f"variants {len(variants):,} of {args.units:,} units; load {os.getloadavg()[0]:.1f}")

    # speed first, with nothing else of ours running
    answers = None
    for workers in (1, 2, 1, 2):  # alternating: the machine's load moves between runs
        found, rate, cpu = _batch(index, variants["text"], workers)
        answers = found if answers is None else answers
        print(f"batch lookup, workers={workers}: {rate:,.0f} lookups/s ({len(variants):,} texts), "
              f"CPU {cpu:.1f} us per lookup; load {os.getloadavg()[0]:.1f}")
    assert answers is not None
    normalise.cache_clear()
    texts = variants["text"].sample(n=min(args.latency, len(variants)), random_state=2).tolist()
    times = []
    for text in texts:
        t = time.perf_counter()
        index.locate(text)
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    print(f"locate latency (ms): p50 {np.percentile(ms, 50):.2f}, p90 {np.percentile(ms, 90):.2f}, "
          f"p99 {np.percentile(ms, 99):.2f}, max {ms.max():.2f}")

    # quality, the baseline's speed on its first rows before the server starts beside the rest
    ours = _scores(answers, variants["unit_id"], variants["kind"], grid_of)
    sub = variants.sample(n=min(args.baseline, len(variants)), random_state=1)
    choices = units["address"].tolist()
    ids = units["unit_id"].to_numpy()
    first = min(100, len(sub))
    t = time.perf_counter()
    best = _best_matches(sub["text"].tolist()[:first], choices, fuzz.WRatio, process)
    print(f"baseline: {first / (time.perf_counter() - t):,.1f} lookups/s (WRatio against {len(choices):,} "
          f"addresses, cdist on every core, its first {first} texts)")
    server = _start_server() if args.http_seconds > 0 else None
    try:
        best += _best_matches(sub["text"].tolist()[first:], choices, fuzz.WRatio, process)
        base = pd.DataFrame({"unit_id": [ids[b[2]] if b[1] >= args.baseline_cutoff else None for b in best],
                             "level": None, "grid_code": None,
                             "status": ["matched" if b[1] >= args.baseline_cutoff else "ambiguous" for b in best]})
        base_all = base.assign(status="matched", unit_id=[ids[b[2]] for b in best])
        theirs = _scores(base, sub["unit_id"], sub["kind"], grid_of)
        theirs_all = _scores(base_all, sub["unit_id"], sub["kind"], grid_of)
        ours_sub = _scores(index.lookup(sub["text"]), sub["unit_id"], sub["kind"], grid_of)
        table = pd.concat({"jngis": ours, "jngis (baseline rows)": ours_sub,
                           f"rapidfuzz >= {args.baseline_cutoff:g}": theirs, "rapidfuzz best": theirs_all}, axis=1)
        print(table.round(4).to_string())
        everything = ours.loc["all"]
        print(f"jngis on all {int(everything['n']):,} variants: precision {everything['precision']:.4f} "
              f"(target >= 0.99), answered {everything['answered']:.4f} (target >= 0.95)")
        if server is not None:
            _http(server[0], server[1], texts, args.http_seconds, args.concurrency)
    finally:
        if server is not None:
            server[0].terminate()
            server[0].wait(timeout=30)
    print(f"uptime load averages at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
