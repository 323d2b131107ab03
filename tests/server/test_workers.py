"""``jngis serve --workers 2``: a work order posted to one worker is counted by every worker within 2 s.

The workers share one listening socket; each opens the store itself and
hears of new orders on the store's change channel (PostgreSQL LISTEN/NOTIFY,
SQLite's change poll). Every request below goes on a fresh TCP connection,
and the worker process holding that connection is looked up in the kernel's
socket table, so the test knows which process answered.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import subprocess
import sys
import time
from contextlib import contextmanager

import psutil
from test_server_versions import store_url  # noqa: F401 - the fixture: both stores

from jngis.crs import WGS84


@contextmanager
def serve_workers(store: str, port: int, token: str, workers: int, **environment: str):
    """``jngis serve --workers N`` on a loopback port; yields the supervisor's psutil.Process."""
    env = {**os.environ, "JNGIS_WRITE_TOKEN": token, **environment}
    env.pop("JNGIS_STORE", None)  # the store comes from --store, passed on to the workers by the command
    process = subprocess.Popen(
        [sys.executable, "-c", "from jngis.cli import main; main()", "serve", "--store", store,
         "--port", str(port), "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=None)
    supervisor = psutil.Process(process.pid)
    try:
        yield supervisor
    finally:
        children = supervisor.children(recursive=True)
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for child in children:  # the workers this test started, should the supervisor have left any
            if child.is_running():
                child.kill()


def exchange(port: int, workers: list[psutil.Process], method: str, path: str, body: dict | None = None,
             headers: dict | None = None) -> tuple[int, int, dict, bytes]:
    """(worker pid, status, headers, body bytes) of one request on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.connect()
        mine = conn.sock.getsockname()[1]
        sent = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=None if body is None else json.dumps(body), headers={**sent, **(headers or {})})
        response = conn.getresponse()
        content = response.read()
        pid = next(w.pid for w in workers
                   if any(c.raddr and c.raddr.port == mine and c.laddr.port == port
                          for c in w.net_connections(kind="tcp")))
        return pid, response.status, {k.lower(): v for k, v in response.getheaders()}, content
    finally:
        conn.close()


def ask(port: int, workers: list[psutil.Process], method: str, path: str,
        body: dict | None = None, token: str | None = None) -> tuple[int, int, dict]:
    """(worker pid, status, JSON body) of one request on a new connection."""
    pid, status, _, content = exchange(port, workers, method, path, body,
                                       {"Authorization": f"Bearer {token}"} if token else None)
    return pid, status, json.loads(content)


def started_workers(supervisor: psutil.Process, port: int, count: int) -> list[psutil.Process]:
    """The worker processes, once ``count`` of them answer /healthz (each has loaded the city)."""
    deadline = time.monotonic() + 120
    answered: set[int] = set()
    while time.monotonic() < deadline:
        workers = [p for p in supervisor.children() if "resource_tracker" not in " ".join(p.cmdline())]
        try:
            pid, status, _ = ask(port, workers, "GET", "/healthz")
            if status == 200:
                answered.add(pid)
        except (OSError, StopIteration):
            time.sleep(0.2)
        if len(answered) == count:
            return [w for w in workers if w.pid in answered]
    raise AssertionError(f"only workers {answered} answered /healthz within 120 s")


def open_orders(answer: dict) -> int:
    return sum(answer["columns"]["open_orders"])


def test_an_order_posted_to_one_worker_is_counted_by_every_worker_within_2_s(store_url, city_file,  # noqa: F811
                                                                            port_finder, token, tmp_path):
    from jngis.layers import read_city

    grids = read_city(city_file).grids
    lon, lat = grids.to_crs(WGS84).geometry.iloc[0].representative_point().coords[0]
    port = port_finder()
    cache = {"JNGIS_TILE_GEOMETRY_DIR": str(tmp_path / "tiles"), "JNGIS_STATS_CACHE_DIR": str(tmp_path / "stats")}
    with serve_workers(store_url, port, token, 2, **cache) as supervisor:
        workers = started_workers(supervisor, port, 2)
        baseline = {open_orders(ask(port, workers, "GET", "/stats/grids")[2]) for _ in range(6)}
        assert len(baseline) == 1, baseline
        opened = baseline.pop()

        poster, status, order = ask(port, workers, "POST", "/workorders", token=token,
                                    body={"lon": lon, "lat": lat, "category": "环境卫生", "description": "楼道堆物"})
        written = time.monotonic()
        assert status == 201, order
        answers: list[tuple[float, int, int]] = []  # (seconds after the write, worker, open orders counted)
        late: set[int] = set()  # workers that answered 2 s or more after the write
        while len(late) < 2 and time.monotonic() - written < 30:
            pid, status, body = ask(port, workers, "GET", "/stats/grids")
            assert status == 200
            after = time.monotonic() - written
            answers.append((after, pid, open_orders(body)))
            if after >= 2.0:
                late.add(pid)
            time.sleep(0.02)

    assert late == {w.pid for w in workers}, f"not every worker answered after 2 s: {late}"
    assert {pid for _, pid, _ in answers} - {poster}, "the other worker never answered"
    stale = [(round(t, 2), pid) for t, pid, count in answers if count != opened + 1 and t >= 2.0]
    assert not stale, f"answers not counting the order 2 s after the write: {stale}"
    assert all(count in (opened, opened + 1) for _, _, count in answers)
    last_stale = max((t for t, _, count in answers if count == opened), default=0.0)
    print(f"last answer without the order: {last_stale:.2f} s after the write; {len(answers)} answers")


def test_two_workers_keep_one_copy_of_each_tile_and_answer_it_alike(city_file, port_finder, token, tmp_path):
    """Each tile is cut once into the shared tile file and both workers send the same bytes and ETag."""
    import shutil

    import lmdb

    from jngis.layers import read_layer

    store = tmp_path / "city.gpkg"
    shutil.copy(city_file, store)
    lon, lat = read_layer(city_file, "grids").to_crs(WGS84).union_all().representative_point().coords[0]
    paths = []
    for z in (12, 14, 16):
        n = 2**z
        x, y = int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        paths.append(f"/tiles/grids/{z}/{x}/{y}.mvt")
    port = port_finder()
    cache = {"JNGIS_TILE_GEOMETRY_DIR": str(tmp_path / "tiles"), "JNGIS_STATS_CACHE_DIR": str(tmp_path / "stats")}
    with serve_workers(str(store), port, token, 2, **cache) as supervisor:
        workers = started_workers(supervisor, port, 2)
        for path in paths:
            answers: dict[int, tuple[str, bytes]] = {}
            for _ in range(60):
                pid, status, headers, body = exchange(port, workers, "GET", path, headers={"Accept-Encoding": "gzip"})
                assert status == 200 and headers["content-encoding"] == "gzip"
                answers[pid] = (headers["etag"], body)
                if len(answers) == 2:
                    break
            assert len(answers) == 2, f"one worker answered {path} every time"
            assert len(set(answers.values())) == 1, f"the workers sent {path} differently"
    with lmdb.open(str(tmp_path / "tiles" / "encoded.lmdb"), readonly=True, lock=False) as env:
        assert env.stat()["entries"] == len(paths)
