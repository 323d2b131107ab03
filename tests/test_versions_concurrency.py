"""Orders created in threads and processes while an adoption takes effect, on both stores.

Every order ends in exactly one grid of the version in force (the grid its
location lies in among the new grids), with a complete trail; N created, N present.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time

import geopandas as gpd

import jngis
from jngis.store import open_store
from jngis.workorders import check_trail

THREADS, PROCESSES, PER_WORKER = 3, 2, 20


def _create(url: str, spots: list, seed: int) -> list[str]:
    """Create PER_WORKER orders at random spots, a little apart in time (own store, own connection)."""
    rng = random.Random(seed)
    ids = []
    with open_store(url) as store:
        for _ in range(PER_WORKER):
            lon, lat = rng.choice(spots)
            ids.append(store.create_order(lon, lat, category="市容环境", who=f"worker{seed}")["order_id"])
            time.sleep(rng.random() * 0.08)
    return ids


def test_orders_created_while_an_adoption_takes_effect(slice_store_url, slice_city, tmp_path):
    coarse = jngis.make_grids(slice_city.communities, slice_city.units, min_households=600, max_households=1000)
    plan = tmp_path / "grids.gpkg"
    coarse.to_file(plan, layer="grids", driver="GPKG")
    points = slice_city.units.geometry.representative_point().to_crs("EPSG:4326")
    spots = list(zip(points.x, points.y))
    with open_store(slice_store_url) as store:
        before = store.count_orders()
        store._ensure_versions()  # version 1 now: the race is the adoption itself
    # fresh interpreters (a fork could copy a lock held by a thread of this process, e.g. assign's pool)
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        in_processes = [pool.apply_async(_create, (slice_store_url, spots, 100 + p)) for p in range(PROCESSES)]
        results: dict[int, list[str]] = {}
        threads = [threading.Thread(target=lambda s=seed: results.__setitem__(s, _create(slice_store_url, spots, s)))
                   for seed in range(THREADS)]
        for thread in threads:
            thread.start()
        with open_store(slice_store_url) as store:
            while store.count_orders() < before + 8:
                time.sleep(0.02)
            store.adopt(plan, note="并发测试")
            during = store.count_orders() - before
        for thread in threads:
            thread.join(timeout=120)
        created = [i for ids in results.values() for i in ids] + [i for r in in_processes for i in r.get(120)]
    total = (THREADS + PROCESSES) * PER_WORKER
    assert len(created) == len(set(created)) == total
    assert 8 <= during < total, "the adoption must take effect while orders are being created"
    with open_store(slice_store_url) as store:
        assert store.count_orders() == before + total
        orders = store.orders_frame(public=False).set_index("order_id").loc[created]
        trail = store.trail_frame()
        assert check_trail(store.orders_frame(public=False), trail).empty
    where = jngis.assign(gpd.GeoSeries.from_xy(orders["lon"], orders["lat"], crs="EPSG:4326"), coarse)
    assert (orders["grid_code"].to_numpy() == where.to_numpy()).all()
    assert set(orders["grid_code"]) <= set(coarse["grid_code"])
    mine = trail[trail["order_id"].isin(created)]
    replaced = mine[mine["action"] == "replaced"]
    assert (mine.groupby("order_id")["action"].first() == "received").all()
    # a re-placed order's last move ends in its grid; the others were placed in the new grids at once
    last = replaced.groupby("order_id")["note"].last()
    assert all(note.endswith(f"-> {orders.at[o, 'grid_code']} (version 2)") for o, note in last.items())
    print(f"\n{slice_store_url[:10]}: {total} orders, {during} present when the adoption committed, "
          f"{replaced['order_id'].nunique()} re-placed")
