"""Benchmark jngis.rebalance against PySAL spopt's MaxPHeuristic and GerryChain's ReCom.

Run: .venv/bin/python benchmarks/rebalance.py [--quick]

Prints, per input, time / share of communities within 1,000-3,000 households /
households moved (same definition for all: total minus households kept under
the best one-to-one matching of old to new communities) / mean Polsby-Popper of
the dissolved communities, and jngis's time on 5k/10k/20k/40k-unit subsets
(whole 街道 taken in code order until the count is reached).
"""

from __future__ import annotations

import argparse
import time

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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="skip the spopt run on ~1,000 units (several minutes)")
    args = parser.parse_args()
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
