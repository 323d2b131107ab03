"""The per-grid table kept order by order: GridTally, the store's change feed, LiveTable on real stores.

The tally's table must be ``grid_stats`` of the orders it holds, figure for
figure, after any sequence of updates; the feed must hand over every order a
write touched (also one whose transaction commits after a later one's); the
server's table must equal ``grid_stats`` of the store's orders after writes,
reading only the orders written. The store tests run on SQLite and PostGIS
here and on month-partitioned PostGIS in test_store_partitioned.py.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from test_store import fresh_store, fresh_url, inside  # noqa: F401

from jngis.errors import InputTypeError, SchemaError, UnassignedPointsWarning
from jngis.gridtable import ORDER_COLUMNS, LiveTable, compute_table
from jngis.stats import grid_stats
from jngis.stats.tally import GridTally
from jngis.store import OrdersCursor, feed, open_store

AT = pd.Timestamp("2026-10-20 10:00")
D = dt.datetime
WAIT = 30


@pytest.fixture(scope="module")
def layers(slice_city):
    return {"grids": slice_city.grids, "stations": slice_city.stations, "party_orgs": slice_city.party_orgs}


def expected(layers, orders, at=AT) -> pd.DataFrame:
    return grid_stats(layers["grids"], stations=layers["stations"], party_orgs=layers["party_orgs"],
                      workorders=orders, at=at)


def tally_of(layers, orders=None) -> GridTally:
    return GridTally(layers["grids"], stations=layers["stations"], party_orgs=layers["party_orgs"],
                     workorders=orders)


def assert_same(table, wanted) -> None:
    pd.testing.assert_frame_equal(table, wanted)
    assert np.array_equal(table.attrs["jngis.resolve_days"].days, wanted.attrs["jngis.resolve_days"].days)


def edited(orders: gpd.GeoDataFrame, rng: np.random.Generator, n: int) -> gpd.GeoDataFrame:
    """``n`` of ``orders`` changed the way writes change them: closed, reopened, rated, moved on."""
    picked = orders.iloc[rng.choice(len(orders), n, replace=False)].copy()
    closing = rng.random(n) < 0.5
    when = pd.Timestamp("2026-10-15 12:00")
    picked.loc[closing, "status"] = "closed"
    picked.loc[closing, "resolved_at"] = picked.loc[closing, "resolved_at"].fillna(when)
    picked.loc[closing, "closed_at"] = when
    picked.loc[closing, "satisfied"] = rng.random(int(closing.sum())) < 0.7
    picked.loc[~closing, "status"] = "returned"
    picked.loc[~closing, ["resolved_at", "closed_at"]] = pd.NaT
    picked.loc[~closing, "satisfied"] = None
    return picked


# -- GridTally ---------------------------------------------------------------------------------

def test_a_tally_is_grid_stats_of_its_orders_after_any_updates(layers, slice_city):
    orders = slice_city.workorders
    tally = tally_of(layers, orders.iloc[:400])
    assert len(tally) == 400
    assert_same(tally.table(AT), expected(layers, orders.iloc[:400]))
    rng = np.random.default_rng(17)
    held = orders.iloc[:400].set_index("order_id", drop=False)
    for step in range(6):  # changed orders and new ones, in batches of different sizes
        batch = pd.concat([edited(held, rng, 5 + 10 * step), orders.iloc[400 + 30 * step: 430 + 30 * step]])
        tally.update(batch)
        # the latest of each order, an order keeping its place and new ones last (the resolve days' order)
        first_seen = list(dict.fromkeys([*held.index, *batch["order_id"]]))
        held = pd.concat([held[~held.index.isin(batch["order_id"])],
                          batch.set_index("order_id", drop=False)]).loc[first_seen]
        for at in (AT, pd.Timestamp("2026-11-30 18:00")):  # the time-dependent figures move with `at`
            assert_same(tally.table(at), expected(layers, held, at))
    assert len(tally) == len(held) == 580
    tally.reset(orders)
    assert_same(tally.table(AT), expected(layers, orders))


def test_an_empty_tally_counts_nothing(layers):
    empty = tally_of(layers).table(AT)
    without = expected(layers, None)
    pd.testing.assert_frame_equal(empty, without)
    assert len(tally_of(layers)) == 0


def test_an_update_of_orders_outside_every_grid_warns_and_leaves_them_out(layers, slice_city):
    tally = tally_of(layers, slice_city.workorders)
    far = slice_city.workorders.iloc[:2].copy()
    far["order_id"] = ["FAR1", "FAR2"]
    far["geometry"] = gpd.GeoSeries.from_xy([0, 1], [0, 1], crs=slice_city.workorders.crs)
    with pytest.warns(UnassignedPointsWarning, match="2 of 2 workorders lie in no grid"):
        tally.update(far)
    assert len(tally) == len(slice_city.workorders) + 2
    with pytest.warns(UnassignedPointsWarning):
        assert_same(tally.table(AT), expected(layers, pd.concat([slice_city.workorders, far])))


def test_a_refused_update_changes_nothing(layers, slice_city):
    orders = slice_city.workorders
    tally = tally_of(layers, orders)
    before = tally.table(AT)
    twice = pd.concat([orders.iloc[:2], orders.iloc[:1]])
    with pytest.raises(SchemaError, match=r"GridTally.update: workorders\['order_id'\] has 2 missing or dup"):
        tally.update(twice)
    with pytest.raises(SchemaError, match=r"GridTally.update: workorders has no column\(s\) \['order_id'\]"):
        tally.update(orders.drop(columns="order_id"))
    textual = orders.iloc[:3].assign(received_at=["yesterday"] * 3)
    with pytest.raises(SchemaError, match=r"workorders\['received_at'\] has dtype"):
        tally.update(textual)
    with pytest.raises(SchemaError, match=r"GridTally.update: workorders\['satisfied'\] holds values"):
        tally.update(orders.iloc[:3].assign(status="closed", satisfied=["very", "much", "so"]))
    with pytest.raises(InputTypeError, match="GridTally.update: workorders has type DataFrame; expected a geopandas"):
        tally.update(pd.DataFrame(orders.drop(columns="geometry")))
    with pytest.raises(InputTypeError, match="GridTally: grids has type list"):
        GridTally([layers["grids"]])
    assert_same(tally.table(AT), before)
    assert len(tally) == len(orders)


# -- the change feed ---------------------------------------------------------------------------

def written(store, spots, n: int = 3) -> set[str]:
    """``n`` new orders and one moved along: the ids written."""
    ids = set()
    for i in range(n):
        lon, lat, _ = spots[i % len(spots)]
        ids.add(store.create_order(lon, lat, category="环境卫生", who="t", at=D(2026, 10, 20, 9, i))["order_id"])
    first = sorted(ids)[0]
    store.transition(first, "dispatched", who="t", at=D(2026, 10, 20, 10))
    return ids


def test_the_feed_gives_every_order_then_only_those_written(fresh_store, inside, monkeypatch):  # noqa: F811
    monkeypatch.setattr(feed, "SETTLE", 0.0)  # no look back: exactly what was written since
    first = fresh_store.orders_changes(columns=ORDER_COLUMNS)
    assert first.complete and len(first.orders) == fresh_store.count_orders()
    assert sorted(first.orders["order_id"]) == sorted(fresh_store.orders_frame(columns=["order_id"])["order_id"])
    assert list(first.orders.columns) == ["order_id", *ORDER_COLUMNS, "geometry"]
    assert first.orders.crs == fresh_store.crs
    assert not fresh_store.orders_changes(first.cursor).orders.size  # nothing written since
    ids = written(fresh_store, inside)
    changes = fresh_store.orders_changes(first.cursor, columns=ORDER_COLUMNS)
    assert not changes.complete and set(changes.orders["order_id"]) == ids
    frame = fresh_store.orders_frame(columns=["order_id", *ORDER_COLUMNS]).set_index("order_id")
    got = changes.orders.set_index("order_id")
    pd.testing.assert_frame_equal(got[list(ORDER_COLUMNS)], frame.loc[got.index, list(ORDER_COLUMNS)],
                                  check_dtype=False)  # pandas picks each time column's unit from its values
    assert changes.cursor.high > first.cursor.high
    assert not fresh_store.orders_changes(changes.cursor).orders.size


def test_a_full_read_in_slices_is_the_read_at_once(fresh_store, monkeypatch):  # noqa: F811
    whole = fresh_store.orders_changes(columns=ORDER_COLUMNS).orders
    monkeypatch.setattr(feed, "FULL_READ_ROWS", 7)  # the slice's orders in many slices, the last one short
    assert len(whole) > 3 * 7 and len(whole) % 7
    sliced = fresh_store.orders_changes(columns=ORDER_COLUMNS)
    assert sliced.complete and sliced.orders.crs == whole.crs
    pd.testing.assert_frame_equal(sliced.orders, whole)


def test_the_feed_looks_back_at_recent_numbers(fresh_store, inside):  # noqa: F811
    first = fresh_store.orders_changes()
    ids = written(fresh_store, inside, 2)
    again = fresh_store.orders_changes(first.cursor)
    assert ids <= set(again.orders["order_id"])  # within SETTLE: the last FULL_OVERLAP numbers again
    late = OrdersCursor(((time.monotonic() - 2 * feed.SETTLE, again.cursor.high),))
    assert not fresh_store.orders_changes(late).orders.size  # settled: nothing before the mark


def test_the_feed_turns_a_bulk_change_into_a_full_read(fresh_store, monkeypatch):  # noqa: F811
    monkeypatch.setattr(feed, "_MANY", 0)
    monkeypatch.setattr(feed, "SETTLE", 0.0)
    first = fresh_store.orders_changes()
    some = fresh_store.list_orders(limit=fresh_store.count_orders() // 2 + 1)
    with fresh_store._write() as conn:  # more than WHOLE_SHARE of the orders moved along at once
        for order in some:
            fresh_store._execute(conn, "INSERT INTO trail(order_id, action, from_state, to_state, who, at) "
                                       "VALUES (?, 'noted', ?, ?, 't', ?)",
                                 (order["order_id"], order["status"], order["status"], "2026-10-20T10:00:00"))
    changes = fresh_store.orders_changes(first.cursor)
    assert changes.complete and len(changes.orders) == fresh_store.count_orders()


def test_the_feed_checks_its_cursor(fresh_store):  # noqa: F811
    with pytest.raises(InputTypeError, match="orders_changes: cursor is a int; expected None or the OrdersCursor"):
        fresh_store.orders_changes(5)
    with pytest.raises(InputTypeError, match="orders_changes: columns='status'; expected a list"):
        fresh_store.orders_changes(columns="status")


@pytest.fixture
def pg_store(request, tmp_path, slice_city):
    """A PostGIS store of its own (SQLite has one writer at a time: its trail numbers commit in order)."""
    from pgcluster import new_slice_store

    with open_store(new_slice_store("postgis", tmp_path, slice_city,
                                    lambda: request.getfixturevalue("postgis_dsn"))) as store:
        yield store


def test_a_write_that_commits_after_a_later_one_is_not_missed(pg_store, inside):  # noqa: F811
    """PostgreSQL numbers trail rows as they are written: an earlier-numbered write can commit last."""
    import psycopg

    store = pg_store
    early, later = sorted(written(store, inside, 3))[1:]  # two orders still received
    first = store.orders_changes()
    with psycopg.connect(store._dsn) as slow:  # the write that began first (the DSN names the schema) ...
        slow.execute("UPDATE orders SET status = 'dispatched' WHERE order_id = %s", (early,))
        slow.execute("INSERT INTO trail(order_id, action, from_state, to_state, who, at) VALUES "
                     "(%s, 'dispatched', 'received', 'dispatched', 't', now())", (early,))
        store.transition(later, "dispatched", who="t", at=D(2026, 10, 20, 10))  # ... commits second
        seen = store.orders_changes(first.cursor)
        statuses = seen.orders.set_index("order_id")["status"]
        assert statuses[later] == "dispatched" and statuses.get(early) != "dispatched"  # not committed yet
        number = slow.execute("SELECT max(trail_id) FROM trail WHERE order_id = %s", (early,)).fetchone()[0]
        assert number < seen.cursor.high  # numbered before a row already seen: a cursor at the mark misses it
        slow.commit()
    after = store.orders_changes(seen.cursor)
    got = after.orders.set_index("order_id")
    assert got.loc[early, "status"] == "dispatched"


# -- the server's table on real stores --------------------------------------------------------

def test_the_served_table_follows_writes_reading_only_them(fresh_store, layers, inside, monkeypatch):  # noqa: F811
    monkeypatch.setattr(feed, "SETTLE", 0.0)
    reads = []
    real = fresh_store.orders_changes

    def counted(cursor=None, **kw):
        changes = real(cursor, **kw)
        reads.append((changes.complete, set(changes.orders["order_id"])))
        return changes

    monkeypatch.setattr(fresh_store, "orders_changes", counted)
    live = LiveTable(fresh_store, layers, rest=0)
    first = live.current()
    pd.testing.assert_frame_equal(first.table, compute_table(layers, fresh_store.orders_frame(columns=ORDER_COLUMNS),
                                                             pd.Timestamp(first.at)))
    ids = written(fresh_store, inside)
    live.refresh()
    deadline = time.monotonic() + WAIT
    while live.latest.version == first.version:
        assert time.monotonic() < deadline, "the refresh never landed"
        time.sleep(0.01)
    now = live.latest
    pd.testing.assert_frame_equal(now.table, compute_table(layers, fresh_store.orders_frame(columns=ORDER_COLUMNS),
                                                           pd.Timestamp(now.at)))
    assert now.table["orders"].sum() == first.table["orders"].sum() + 3
    assert [complete for complete, _ in reads] == [True, False] and reads[1][1] == ids


def test_a_failed_read_makes_the_next_one_read_every_order(fresh_store, layers, inside, monkeypatch):  # noqa: F811
    calls = []
    real = fresh_store.orders_changes

    def flaky(cursor=None, **kw):
        calls.append(cursor is None)
        if len(calls) == 2:
            raise RuntimeError("the connection dropped")
        return real(cursor, **kw)

    monkeypatch.setattr(fresh_store, "orders_changes", flaky)
    live = LiveTable(fresh_store, layers, rest=0)
    live.current()
    written(fresh_store, inside, 1)
    with pytest.raises(RuntimeError, match="dropped"):
        live._tallied()
    table = live._compute(next(live._versions))
    assert calls == [True, False, True]  # the failed read dropped the cursor
    pd.testing.assert_frame_equal(table.table, compute_table(layers, fresh_store.orders_frame(columns=ORDER_COLUMNS),
                                                             pd.Timestamp(table.at)))


def test_every_order_is_read_again_after_reset_seconds(fresh_store, layers, monkeypatch):  # noqa: F811
    full = []
    real = fresh_store.orders_changes
    monkeypatch.setattr(fresh_store, "orders_changes", lambda cursor=None, **kw: full.append(cursor is None)
                        or real(cursor, **kw))
    live = LiveTable(fresh_store, layers, rest=0, reset=0)
    for version in (1, 2, 3):
        live._compute(version)
    assert full == [True, True, True]
    live.reset = 3600
    live._compute(4)
    assert full[-1] is False


def test_writes_from_many_threads_are_all_counted(fresh_store, layers, inside):  # noqa: F811
    live = LiveTable(fresh_store, layers, rest=0)
    live.current()
    errors = []

    def writer(k):
        try:
            for i in range(4):
                lon, lat, _ = inside[(k + i) % len(inside)]
                fresh_store.create_order(lon, lat, category="环境卫生", who="t", at=D(2026, 10, 21, 9, k, i))
                live.refresh()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not errors
    total = fresh_store.count_orders()
    live.refresh()
    deadline = time.monotonic() + WAIT
    while live.latest.version < live._asked or live.latest.table["orders"].sum() != total:
        assert time.monotonic() < deadline, "the writes were never all counted"
        time.sleep(0.05)
    pd.testing.assert_frame_equal(live.latest.table, compute_table(
        layers, fresh_store.orders_frame(columns=ORDER_COLUMNS), pd.Timestamp(live.latest.at)))


def test_a_bulk_import_leaves_the_feed_an_index_range_on_postgis(request, tmp_path, slice_city, monkeypatch):
    """Without statistics after a bulk import, PostgreSQL read ``trail_id > ?`` by scanning the whole trail."""
    from pgcluster import new_slice_store

    from jngis.store import postgis

    monkeypatch.setattr(postgis, "ANALYZE_ROWS", 100)  # the slice's history is 590 orders
    url = new_slice_store("postgis", tmp_path, slice_city, lambda: request.getfixturevalue("postgis_dsn"))
    with open_store(url) as store:
        conn = store._conn()
        tuples = conn.execute("SELECT reltuples FROM pg_class WHERE oid = 'trail'::regclass").fetchone()[0]
        assert tuples == conn.execute("SELECT count(*) FROM trail").fetchone()[0] > 590  # analysed
        high = conn.execute("SELECT max(trail_id) FROM trail").fetchone()[0]
        plan = " ".join(r[0] for r in conn.execute(f"EXPLAIN SELECT trail_id, order_id FROM trail "
                                                   f"WHERE trail_id > {high - 5}"))
        assert "trail_pkey" in plan, plan
