"""A province on one machine: the sample city copied into a province-sized city, the main tasks timed.

Shandong has 16 prefecture-level cities. The province here is ``--cities``
copies of the sample city (39,807 units, 4,633 grids, 100,000 work orders a
copy), laid out side by side on a 4-wide grid of the city's bounding box (west and south), every
code renumbered so that copy k is city ``37kk`` (3701, 3702, ...): 16 copies
are 637 k units, 74 k grids and 1.6 M work orders. The copies are the sample
translated, not new cities (the generator takes minutes per city); what is
measured is how the tasks scale with size. The copies lie up to ~600 km east of
the sample's Gauss-Kruger central meridian (west and south of it): planar work is unaffected, tiles are
projected as any far-off coordinates are.

Timed, with the process's peak resident memory after each step:

- building the province (concatenating and renumbering the copies, ``City.validate``);
- ``jngis.assign`` of ``--points`` points (95 % in units by households, 5 % uniform,
  as benchmarks/assign.py draws them) on the units and on the grids, one-off and
  with a reused ``PolygonIndex``;
- ``jngis.grid_stats`` of the grids with stations, party organisations, the work
  orders and the units;
- tile geometry (``jngis.tiles`` ``ZoomGeometry``: coverage cleaning, shared-edge
  simplification, snapping) of the communities and the units at ``--zooms``;
- a store load: ``write_city`` of the layers (not the orders) into a new SQLite
  store, then ``read_city``.

    .venv/bin/python benchmarks/province.py            # 16 cities, 10 M points
    .venv/bin/python benchmarks/province.py --quick    # 4 cities, 2 M points
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from assign import make_points  # noqa: E402

from jngis import grid_stats  # noqa: E402
from jngis.assign import PolygonIndex, assign  # noqa: E402
from jngis.errors import UnassignedPointsWarning  # noqa: E402
from jngis.layers import City  # noqa: E402
from jngis.sample import load_sample  # noqa: E402
from jngis.store import open_store  # noqa: E402
from jngis.tiles.geometry import ZoomGeometry  # noqa: E402

# Columns holding a code of the hierarchy (renumbered 3701 -> 37kk) and ids (prefixed by copy).
CODES = ("district_code", "street_code", "community_code", "grid_code")
IDS = {"units": ("unit_id", "compound_id"), "stations": ("station_id",), "party_orgs": ("org_id",),
       "workorders": ("order_id",)}


def peak_gib() -> float:
    """Peak resident memory of this process so far (GiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def copy_layer(frame: gpd.GeoDataFrame, kind: str, k: int, dx: float, dy: float) -> gpd.GeoDataFrame:
    out = frame.copy()
    out["geometry"] = frame.geometry.translate(dx, dy)
    city = f"37{k + 1:02d}"
    for column in CODES:
        if column in out:
            out[column] = city + out[column].str[4:]
    for column in IDS.get(kind, ()):
        if column == "order_id":  # the day, then the order's number in the province (7 digits)
            number = out[column].str[8:].astype(int) + k * 100_000
            out[column] = out[column].str[:8] + number.map("{:07d}".format)
        elif column in out and out[column].notna().any():
            out[column] = out[column].where(out[column].isna(), f"C{k:02d}" + out[column].astype(str))
    return out


def build_province(n: int) -> City:
    sample = load_sample()
    minx, miny, maxx, maxy = sample.units.total_bounds
    # Whole metres towards the origin: every translated coordinate keeps its binade or falls
    # into a finer one, so the copies are exact (a shift away from it rounds vertices and
    # breaks the validity of a few polygons).
    width, height = float(np.ceil((maxx - minx) * 1.02)), float(np.ceil((maxy - miny) * 1.02))
    layers = {}
    for kind in ("districts", "streets", "communities", "units", "grids", "stations",
                 "party_orgs", "workorders"):
        frame = getattr(sample, kind)
        parts = [copy_layer(frame, kind, k, -(k % 4) * width, -(k // 4) * height) for k in range(n)]
        layers[kind] = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=frame.crs)
    return City(**layers).validate()


def timed(label: str, func, *args, **kwargs):
    start = time.perf_counter()
    cpu = time.process_time()
    result = func(*args, **kwargs)
    wall = time.perf_counter() - start
    print(f"{label:<52} {wall:>8.2f} s wall {time.process_time() - cpu:>8.2f} s CPU "
          f"{peak_gib():>6.2f} GiB peak", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", type=int, default=16, help="copies of the sample city (<= 16)")
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--zooms", type=int, nargs=2, default=[10, 12], metavar=("MIN", "MAX"))
    parser.add_argument("--quick", action="store_true", help="4 cities, 2 M points")
    args = parser.parse_args()
    if args.quick:
        args.cities, args.points = 4, 2_000_000
    if not 1 <= args.cities <= 16:
        parser.error(f"--cities={args.cities}; expected 1 to 16")
    warnings.simplefilter("ignore", UnassignedPointsWarning)
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} on "
          f"{len(os.sched_getaffinity(0))} cores; {args.cities} cities, {args.points:,} points")
    timed("load the sample city", load_sample)
    province = timed(f"build the province ({args.cities} copies, validated)", build_province,
                     args.cities)
    print(f"  {len(province.units):,} units, {len(province.communities):,} communities, "
          f"{len(province.grids):,} grids, {len(province.workorders):,} work orders")
    points = timed(f"draw {args.points:,} points", make_points, province.units, args.points)
    for name, polygons, key in (("units", province.units, "unit_id"),
                                ("grids", province.grids, "grid_code")):
        codes = timed(f"assign {args.points:,} points to {len(polygons):,} {name} (one-off)",
                      assign, points, polygons, key=key)
        index = timed(f"  PolygonIndex of the {name}", PolygonIndex, polygons, key=key)
        again = timed(f"  index.assign of the {args.points:,} points", index.assign, points)
        assert again.equals(codes)
        print(f"  {codes.notna().mean():.1%} placed; index {index.stats['bytes'] / 2**20:,.0f} MiB")
        del index, again, codes
    del points
    stats = timed(f"grid_stats of {len(province.grids):,} grids (all layers)", grid_stats,
                  province.grids, stations=province.stations, party_orgs=province.party_orgs,
                  workorders=province.workorders, units=province.units)
    print(f"  {int(stats['households'].sum()):,} households, "
          f"{int(stats['orders'].sum()):,} orders placed")
    low, high = args.zooms
    for name in ("communities", "units"):
        layer = getattr(province, name)
        geometry = ZoomGeometry(name, layer.geometry, point=False, maxzoom=16, coverage=True,
                                tolerance=4.0, min_size=8, cache_dir=None)

        def zooms(geometry=geometry) -> None:
            for z in range(low, high + 1):
                geometry.zoom(z)

        timed(f"tile geometry of {len(layer):,} {name}, z{low}-{high}", zooms)
    with tempfile.TemporaryDirectory() as folder:
        layers = City(**{kind: getattr(province, kind) for kind in province.kinds()
                         if kind != "workorders"})
        path = Path(folder) / "province.gpkg"
        store = open_store(path)
        timed("store load: write_city (SQLite, layers without orders)", store.write_city, layers)
        back = timed("store load: read_city", store.read_city)
        store.close()
        print(f"  {path.stat().st_size / 2**20:,.0f} MiB on disk; {len(back.units):,} units read back")
    print(f"peak resident memory {peak_gib():.2f} GiB")


if __name__ == "__main__":
    main()
