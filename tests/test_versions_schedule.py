"""Two due-version schedulers at once (every server worker runs one), on both stores.

A version adopted for a later day is pending; on its day two schedulers --
two processes, or two connections (threads) of one process -- call
``apply_due_versions`` at the same moment. It must take effect exactly once:
one of them reports it, the open orders are re-placed once (one ``replaced``
trail row each), and ``layers`` / ``orders`` are announced once.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading

import pytest

import jngis
from jngis.codes import OPEN_STATES
from jngis.store import open_store
from jngis.workorders import check_trail

DAY = jngis.workorders.now_cst().date() + dt.timedelta(days=30)
SCHEDULERS = 2


#: One scheduler in a process of its own: connects, says READY, waits for GO, applies, prints what it applied.
_SCHEDULER = """
import json, sys
from jngis.store import open_store

with open_store(sys.argv[1]) as store:
    store.versions()
    print("READY", flush=True)
    sys.stdin.readline()
    print(json.dumps(store.apply_due_versions(now=sys.argv[2])), flush=True)
"""


def _apply(url: str, barrier, out: dict, slot: int) -> None:
    """One scheduler thread: its own store (own connection), started with the others."""
    with open_store(url) as store:
        store.versions()  # connected before the start line
        barrier.wait(timeout=120)
        out[slot] = store.apply_due_versions(now=DAY)


def _concurrently(url: str, how: str) -> list[list[int]]:
    """``apply_due_versions`` run by SCHEDULERS processes or threads at once; what each returned."""
    if how == "processes":  # fresh interpreters (a fork of the test process could copy a held lock)
        children = [subprocess.Popen([sys.executable, "-c", _SCHEDULER, url, DAY.isoformat()], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True) for _ in range(SCHEDULERS)]
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "READY"
        for child in children:  # both go at once
            assert child.stdin is not None
            child.stdin.write("GO\n")
            child.stdin.flush()
        found = [child.communicate(timeout=300)[0] for child in children]
        assert [child.returncode for child in children] == [0] * SCHEDULERS
        return [json.loads(text.strip().splitlines()[-1]) for text in found]
    barrier, done = threading.Barrier(SCHEDULERS), {}
    threads = [threading.Thread(target=_apply, args=(url, barrier, done, i)) for i in range(SCHEDULERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return [done[i] for i in range(SCHEDULERS)]


@pytest.mark.parametrize("how", ["processes", "threads"])
def test_two_schedulers_apply_a_due_version_exactly_once(slice_store_url, slice_city, how):
    coarse = jngis.make_grids(slice_city.communities, slice_city.units, min_households=600, max_households=1000)
    points = slice_city.grids.geometry.representative_point().to_crs("EPSG:4326")
    with open_store(slice_store_url) as store:
        for lon, lat in zip(points.x, points.y):  # an open order in every old grid, to be re-placed
            store.create_order(lon, lat, category="市容环境", who="测试")
        pending = store.adopt(coarse, effective=DAY, note="定时生效")
        assert pending["status"] == "pending" and store.version_in_force() == 1
        before = store.change_versions()
        replaced_before = (store.trail_frame()["action"] == "replaced").sum()
    results = _concurrently(slice_store_url, how)
    assert sorted(results) == [[], [pending["version_id"]]], results
    with open_store(slice_store_url) as store:
        after = store.change_versions()
        assert store.version_in_force() == pending["version_id"]
        assert store.versions()["status"].tolist() == ["past", "in_force"]
        assert set(store.read_layer("grids")["grid_code"]) == set(coarse["grid_code"])
        orders = store.orders_frame(public=False)
        trail = store.trail_frame()
        moved = store.version(pending["version_id"])["summary"]["orders_replaced"]
    assert replaced_before == 0
    assert check_trail(orders, trail).empty
    replaced = trail[trail["action"] == "replaced"]
    assert len(replaced) == moved > 0, "every moved order gets one trail row, once"
    assert replaced["order_id"].is_unique
    open_grids = set(orders.loc[orders["status"].isin(OPEN_STATES), "grid_code"])
    assert open_grids <= set(coarse["grid_code"])
    # one announcement each: the version, its layers and the orders it moved
    assert {kind: after[kind] - before[kind] for kind in ("versions", "layers", "orders")} == \
        {"versions": 1, "layers": 1, "orders": 1}
