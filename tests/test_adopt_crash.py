"""kill -9 during an adoption, on both stores: afterwards the old or the new version is complete, never a mix.

A real child process opens the store and adopts coarser grids (from a
GeoPackage, re-placing the open orders). Its store's write transactions are
traced (a line on stdout when one begins and when it ends), so the parent can
SIGKILL it a chosen moment after the adoption's transaction began: before it
wrote anything, in the middle, or after the commit. Then the store is opened
again and checked:

- either version 2 is there complete (versions row, history, lineage, the
  plain grids table, every open order in a new grid with its ``replaced``
  trail row) or none of it is (old grids, no version 2 row, no lineage, no
  ``replaced`` row, orders in their old grids);
- every order's trail replays to its state; SQLite's integrity check passes;
- the adoption then runs to completion on the restarted store.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from pgcluster import schema_dsn

import jngis
from jngis.codes import OPEN_STATES
from jngis.sample import SHAPES_DIR, SLICE_FILE
from jngis.store import open_store
from jngis.workorders import check_trail

#: Seconds between the adoption's BEGIN and the kill (the last ones land after the commit).
DELAYS = (0.0, 0.03, 0.1, 0.3, 3.0)
CHILD = textwrap.dedent("""
    import sys
    from jngis.store import open_store

    store = open_store(sys.argv[1])
    write = store._write

    class Traced:
        def __enter__(self):
            self.inner = write()
            conn = self.inner.__enter__()
            print("BEGIN", flush=True)
            return conn

        def __exit__(self, *exc):
            out = self.inner.__exit__(*exc)
            print("END", flush=True)
            return out

    store._write = Traced  # the store's own transactions, only announced on stdout
    store.adopt(sys.argv[2], note="crash")
    print("DONE", flush=True)
""")


@pytest.fixture(scope="module")
def coarse(slice_city, tmp_path_factory):
    grids = jngis.make_grids(slice_city.communities, slice_city.units, min_households=600, max_households=1000)
    path = tmp_path_factory.mktemp("plan") / "grids.gpkg"
    grids.to_file(path, layer="grids", driver="GPKG")
    return path, set(grids["grid_code"])


def _fresh(kind: str, folder, slice_city, request) -> str:
    if kind == "sqlite":
        path = folder / "city.gpkg"
        shutil.copy(SHAPES_DIR / SLICE_FILE, path)
        url = str(path)
    else:
        url = schema_dsn(request.getfixturevalue("postgis_dsn"))
        with open_store(url) as store:
            store.write_city(slice_city)
    with open_store(url) as store:  # open orders in every grid, to be re-placed
        points = slice_city.grids.geometry.representative_point().to_crs("EPSG:4326")
        for lon, lat in zip(points.x, points.y):
            store.create_order(lon, lat, category="市容环境", who="测试")
    return url


def _kill_during_adoption(url: str, plan, delay: float, folder) -> list[str]:
    script = folder / "adopt_child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), url, str(plan)], stdout=subprocess.PIPE, text=True)
    seen: list[str] = []
    assert child.stdout is not None
    for line in child.stdout:
        seen.append(line.strip())
        if seen.count("BEGIN") == 2:  # the first write records version 1, the second is the adoption
            time.sleep(delay)
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=60)
    seen += [line.strip() for line in child.stdout]
    return seen


def _state(url: str, original: set, new: set) -> str:
    """'old' or 'new', after checking that the store holds exactly one of them, complete."""
    with open_store(url) as store:
        versions = store.versions()
        grids = set(store.read_layer("grids")["grid_code"])
        orders = store.orders_frame(public=False)
        trail = store.trail_frame()
        assert check_trail(orders, trail).empty
        open_grids = set(orders.loc[orders["status"].isin(OPEN_STATES), "grid_code"].dropna())
        replaced = trail[trail["action"] == "replaced"]
        if len(versions) == 2:
            assert grids == new and set(store.read_layer("grids", at="2100-01-01")["grid_code"]) == new
            assert store.version_in_force() == 2 and len(store.lineage(2)) > 0
            assert open_grids <= new and len(replaced) == store.version(2)["summary"]["orders_replaced"] > 0
            state = "new"
        else:
            assert len(versions) <= 1 and grids == original and store.lineage().empty and replaced.empty
            assert open_grids <= original
            state = "old"
    if not url.startswith("postgres"):
        with sqlite3.connect(url) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return state


@pytest.mark.parametrize("kind", ["sqlite", "postgis"])
def test_kill_9_during_an_adoption_leaves_one_whole_version(kind, coarse, slice_city, tmp_path, request):
    plan, new = coarse
    original = set(slice_city.grids["grid_code"])
    outcomes = []
    for round_, delay in enumerate(DELAYS):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        url = _fresh(kind, folder, slice_city, request)
        seen = _kill_during_adoption(url, plan, delay, folder)
        state = _state(url, original, new)
        # the kill landed inside the adoption's transaction when it had begun and not ended
        inside = seen.count("BEGIN") == 2 and seen.count("END") == 1
        outcomes.append((delay, state, inside))
        if state == "old":  # the restarted store adopts at once
            with open_store(url) as store:
                store.adopt(plan)
            assert _state(url, original, new) == "new"
    print(f"\n{kind}: (delay s, state after the kill, killed inside the transaction) {outcomes}")
    assert any(inside for _, _, inside in outcomes), outcomes
    assert {state for _, state, _ in outcomes} == {"old", "new"}, outcomes
