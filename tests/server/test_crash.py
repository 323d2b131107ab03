"""Crashes: kill -9 a real server while clients write; restart; nothing acknowledged is lost.

A real ``uvicorn`` process serves a store (a GeoPackage, or PostGIS) on a
loopback port this test picked. Client threads create work orders (with a
caller) and move them along the closed loop as fast as they can; once enough
writes are acknowledged the server gets SIGKILL in the middle of that. After
a restart on the same store:

- every order whose creation was acknowledged (201) is there, with its
  caller kept apart, and is at least as far along as its last acknowledged
  step (one step further is allowed: a step committed just before the kill
  whose answer was lost);
- no order is half-written: every order's trail replays to its stored state
  (:func:`jngis.workorders.check_trail`), no trail row lacks its order, the
  order ids are unique, and SQLite's integrity check passes;
- the restarted server takes new writes at once.

Bounded: a few threads, at most ``MAX_WRITES`` each and ``DEADLINE`` seconds,
only on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
import uuid
from urllib.parse import quote

import pytest

THREADS = 4
MAX_WRITES = 400          # per thread
DEADLINE = 40.0           # seconds of writing before the test gives up waiting
KILL_AFTER = 40           # acknowledged creations before the kill
LOOP = ("received", "dispatched", "in_progress", "resolved", "closed")
CALLER = {"name": "崩溃测试来电人", "phone": "13600000000"}


@pytest.fixture(params=["sqlite", "postgis"])
def store_url(request, city_file, tmp_path):
    """A store holding the slice city with its grids, private to the test."""
    import shutil

    if request.param == "sqlite":
        copy = tmp_path / "city.gpkg"
        shutil.copy(city_file, copy)
        return str(copy)
    import psycopg

    from jngis.layers import read_city
    from jngis.store import open_store

    dsn = request.getfixturevalue("postgis_dsn")
    schema = f"crash_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{dsn}{'&' if '?' in dsn else '?'}options={quote(f'-csearch_path={schema},public')}"
    with open_store(url) as store:
        store.write_city(read_city(city_file))
    return url


@dataclasses.dataclass
class Acknowledged:
    """What the server said yes to, per order: the last acknowledged state."""

    states: dict[str, str] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def record(self, order_id: str, state: str) -> None:
        with self.lock:
            self.states[order_id] = state

    def __len__(self) -> int:
        with self.lock:
            return len(self.states)


def _spots(url: str) -> list[tuple[float, float]]:
    import httpx

    features = httpx.get(f"{url}/layers/communities/labels", timeout=30).json()["features"]
    return [tuple(f["geometry"]["coordinates"]) for f in features]


def _writer(url: str, token: str, spots, acked: Acknowledged, stop: threading.Event, seed: int) -> None:
    """Create orders and push each a random number of steps along, until the server dies."""
    import random

    import httpx

    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + DEADLINE
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        for _ in range(MAX_WRITES):
            if stop.is_set() or time.monotonic() > deadline:
                return
            lon, lat = rng.choice(spots)
            try:
                created = client.post("/workorders", json={
                    "lon": lon, "lat": lat, "category": "市容环境", "description": "崩溃测试",
                    "caller": CALLER})
                if created.status_code != 201:
                    raise AssertionError(f"create answered {created.status_code}: {created.text}")
                order_id = created.json()["order_id"]
                acked.record(order_id, "received")
                for to in LOOP[1: 1 + rng.randrange(0, 4)]:
                    step = client.post(f"/workorders/{order_id}/transitions", json={"to": to})
                    if step.status_code != 200:
                        raise AssertionError(f"{to} answered {step.status_code}: {step.text}")
                    acked.record(order_id, to)
            except httpx.TransportError:
                return  # the server is gone: whatever was not acknowledged may or may not be there


def _check_store(url: str, acked: Acknowledged) -> dict:
    from jngis.store import open_store
    from jngis.workorders import check_trail

    with open_store(url) as store:
        orders = store.orders_frame(public=False)
        trail = store.trail_frame()
        assert orders["order_id"].is_unique
        problems = check_trail(orders, trail)
        assert problems.empty, problems.head(10).to_dict("records")
        stored = dict(zip(orders["order_id"], orders["status"]))
        missing = sorted(set(acked.states) - set(stored))
        assert not missing, f"{len(missing)} acknowledged orders lost, e.g. {missing[:5]}"
        for order_id, state in acked.states.items():
            now, then = LOOP.index(stored[order_id]), LOOP.index(state)
            assert then <= now <= then + 1, (order_id, state, stored[order_id])
            private = store.private_record(order_id)
            assert (private["caller_name"], private["caller_phone"]) == (CALLER["name"], CALLER["phone"])
        ahead = sum(LOOP.index(stored[o]) > LOOP.index(s) for o, s in acked.states.items())
        figures = {"acknowledged orders": len(acked.states), "stored orders": len(stored),
                   "trail rows": len(trail), "one step ahead of its answer": ahead}
        if url.endswith(".gpkg"):
            import sqlite3

            with sqlite3.connect(url) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                orphans = conn.execute("SELECT count(*) FROM callers c WHERE NOT EXISTS "
                                       "(SELECT 1 FROM orders o WHERE o.order_id = c.order_id)").fetchone()[0]
                assert orphans == 0
    return figures


#: Kill / restart cycles on the same store (``make reliability`` runs more).
ROUNDS = int(os.environ.get("JNGIS_CRASH_ROUNDS", "1"))


def _write_and_kill(live, token: str, acked: Acknowledged, spots) -> None:
    """Writers on ``live`` until KILL_AFTER more orders are acknowledged, then SIGKILL mid-write."""
    stop = threading.Event()
    target = len(acked) + KILL_AFTER
    writers = [threading.Thread(target=_writer, args=(live.url, token, spots, acked, stop, seed), daemon=True)
               for seed in range(THREADS)]
    for writer in writers:
        writer.start()
    waited = time.monotonic() + DEADLINE
    while len(acked) < target and time.monotonic() < waited and any(w.is_alive() for w in writers):
        time.sleep(0.05)
    assert len(acked) >= target, f"only {len(acked)} orders acknowledged before the deadline"
    assert all(w.is_alive() for w in writers), "the writers must still be writing at the kill"
    os.kill(live.process.pid, signal.SIGKILL)  # our own uvicorn: no shutdown, no flush
    live.process.wait(timeout=10)
    assert live.process.returncode == -signal.SIGKILL
    stop.set()
    for writer in writers:
        writer.join(timeout=15)
    assert not any(w.is_alive() for w in writers)


def test_kill_9_loses_no_acknowledged_order(store_url, live_server, token):
    import httpx

    acked = Acknowledged()
    spots = None
    for _ in range(ROUNDS):
        with live_server(store_url) as live:
            spots = spots or _spots(live.url)
            _write_and_kill(live, token, acked, spots)
        figures = _check_store(store_url, acked)

    restarted = time.monotonic()
    with live_server(store_url) as again:  # the restarted server reads and writes at once
        figures["restart s"] = round(time.monotonic() - restarted, 1)
        figures["kills"] = ROUNDS
        print(f"\n{'postgis' if store_url.startswith('postgres') else 'sqlite'}: {figures}")
        headers = {"Authorization": f"Bearer {token}"}
        some = next(iter(acked.states))
        assert httpx.get(f"{again.url}/workorders/{some}", headers=headers, timeout=10).status_code == 200
        lon, lat = spots[0]
        created = httpx.post(f"{again.url}/workorders", headers=headers, timeout=10,
                             json={"lon": lon, "lat": lat, "category": "市容环境"})
        assert created.status_code == 201
        assert created.json()["order_id"] not in acked.states
