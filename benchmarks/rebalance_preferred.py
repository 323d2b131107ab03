"""Plans that last: households moved and the size distribution for default / preferred / headroom settings.

Run: .venv/bin/python benchmarks/rebalance_preferred.py [--quick]

On the whole sample city (Jinan outlines) and on a second city generated
inside six real district outlines of Ningbo (tests/data/ningbo_districts.geojson:
another Gauss-Kruger zone, a coastline, 70 island parts), for each setting of
:func:`jngis.rebalance`: households moved (and over the MILP lower bound),
communities outside 1,000-3,000, the share of communities at 2,900-3,000 and
at 1,000-1,100 households (the pile at the bounds), the share in 1,500-2,500,
the 95th percentile, mean Polsby-Popper before and after, and seconds.
``--quick`` takes the first 20 街道 of the sample city.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from jngis.rebalance import rebalance
from jngis.sample import build_city_in, load_sample

NINGBO = Path(__file__).resolve().parent.parent / "tests" / "data" / "ningbo_districts.geojson"
SETTINGS = {
    "default": {},
    "preferred 1500-2500": {"preferred": (1500, 2500)},
    "headroom 10%": {"headroom": 0.1},
    "headroom 10% + preferred": {"headroom": 0.1, "preferred": (1500, 2500)},
}


def row(city: str, name: str, plan, seconds: float) -> dict:
    h = plan.communities["households"]
    m = plan.metrics
    return {"city": city, "setting": name, "communities": len(h), "moved": m["moved_households"],
            "moved/LB": round(m["moved_over_lower_bound"], 3), "outside": int((~h.between(1000, 3000)).sum()),
            "2900-3000": f"{h.between(2900, 3000).mean():.1%}", "1000-1100": f"{h.between(1000, 1100).mean():.1%}",
            "1500-2500": f"{h.between(1500, 2500).mean():.1%}", "p95": round(float(np.percentile(h, 95))),
            "PP before": round(m["mean_polsby_popper_before"], 3), "PP after": round(m["mean_polsby_popper_after"], 3),
            "s": round(seconds, 1)}


def run(city: str, units: gpd.GeoDataFrame) -> list[dict]:
    rows = []
    for name, setting in SETTINGS.items():
        started = time.perf_counter()
        plan = rebalance(units, progress=False, **setting)
        rows.append(row(city, name, plan, time.perf_counter() - started))
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    units = load_sample().units
    if args.quick:
        units = units[units["street_code"].isin(sorted(units["street_code"].unique())[:20])]
    rows = run("Jinan sample", units)
    started = time.perf_counter()
    ningbo = build_city_in(gpd.read_file(NINGBO), seed=1, streets=30, communities=240)
    print(f"Ningbo city: {len(ningbo.units):,} units, {len(ningbo.communities)} communities, "
          f"built in {time.perf_counter() - started:.0f} s", flush=True)
    rows += run("Ningbo (islands)", ningbo.units)
    table = pd.DataFrame(rows)
    print("| " + " | ".join(table.columns) + " |")
    print("|" + "---|" * len(table.columns))
    for values in table.itertuples(index=False):
        print("| " + " | ".join(str(v) for v in values) + " |")


if __name__ == "__main__":
    main()
