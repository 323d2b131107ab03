"""Address lookup quality and speed: jngis.AddressIndex vs plain rapidfuzz on the whole string.

On the sample city's generated addresses and their noisy variants
(jngis.address.noisy_variants): precision (right unit among the answers
given; a compound-level answer is right when its grid is the unit's grid) and
the share answered, per variant kind; the baseline is
``rapidfuzz.process.extractOne(text, every standard address, scorer=WRatio)``
(answered when its score reaches --baseline-cutoff; computed with
``process.cdist`` on both cores). Then lookups per second in batch (``lookup``,
caches cleared), a single ``locate``'s latency, and with --http N the latency
of ``GET /geocode`` against a real uvicorn serving the sample city.

    .venv/bin/python benchmarks/address.py [--units 3000] [--baseline 1000] [--latency 2000] [--http 2000]
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


def _http_latency(n: int, texts: list[str]) -> np.ndarray:
    """Milliseconds of ``GET /geocode`` answered by a real uvicorn serving the sample city (one at a time)."""
    import socket
    import subprocess

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "jngis.server.app:create_app", "--factory",
                               "--port", str(port), "--log-level", "warning", "--no-access-log"],
                              env={k: v for k, v in os.environ.items() if k != "JNGIS_STORE"})
    try:
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
        for text in texts[:300]:  # the index is built on first use; the tile warm-up threads finish
            client.get("/geocode", params={"q": text})
        time.sleep(20)
        times = []
        for text in texts[:n]:
            t = time.perf_counter()
            answer = client.get("/geocode", params={"q": text})
            times.append(time.perf_counter() - t)
            assert answer.status_code == 200, answer.text
        return np.array(times) * 1000
    finally:
        server.terminate()
        server.wait(timeout=30)


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


def _print_http(ms: np.ndarray) -> None:
    print(f"GET /geocode over HTTP, {len(ms)} requests one at a time (ms): p50 {np.percentile(ms, 50):.2f}, "
          f"p90 {np.percentile(ms, 90):.2f}, p99 {np.percentile(ms, 99):.2f}, max {ms.max():.2f}; "
          f"load {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=3000, help="units whose address variants are looked up")
    parser.add_argument("--baseline", type=int, default=1000, help="variants the (slow) baseline looks up")
    parser.add_argument("--baseline-cutoff", type=float, default=90.0)
    parser.add_argument("--latency", type=int, default=2000)
    parser.add_argument("--http", type=int, default=0, help="GET /geocode requests timed against a real uvicorn")
    parser.add_argument("--http-only", action="store_true", help="only the HTTP latency")
    parser.add_argument("--store", type=int, default=0,
                        help="texts looked up one at a time in a SQLite store of the whole sample city")
    args = parser.parse_args()
    if args.store:
        _store_latency(args.store)
        return
    if args.http_only:
        city = jngis.load_sample()
        texts = noisy_variants(city.units, city.units, n=args.units, seed=11)["text"].sample(
            n=min(args.http or 2000, 26_000), random_state=2).tolist()
        ms = _http_latency(len(texts), texts)
        _print_http(ms)
        return
    from rapidfuzz import fuzz, process

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

    normalise.cache_clear()
    t = time.perf_counter()
    answers = index.lookup(variants["text"])
    t_batch = time.perf_counter() - t
    ours = _scores(answers, variants["unit_id"], variants["kind"], grid_of)

    sub = variants.sample(n=min(args.baseline, len(variants)), random_state=1)
    choices = units["address"].tolist()
    ids = units["unit_id"].to_numpy()
    t = time.perf_counter()
    best = _best_matches(sub["text"].tolist(), choices, fuzz.WRatio, process)
    t_base = time.perf_counter() - t
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
    print(f"batch: {len(variants) / t_batch:,.0f} lookups/s ({len(variants):,} in {t_batch:.2f} s, one process); "
          f"baseline {len(sub) / t_base:,.0f} lookups/s")
    normalise.cache_clear()
    t = time.perf_counter()
    index.lookup(variants["text"], workers=2)
    print(f"batch, workers=2 (forked): {len(variants) / (time.perf_counter() - t):,.0f} lookups/s")

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
    if args.http:
        ms = _http_latency(args.http, texts)
        _print_http(ms)


if __name__ == "__main__":
    main()
