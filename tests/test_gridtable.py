"""jngis.gridtable: the per-grid table computed, saved under its fingerprint, kept fresh."""

from __future__ import annotations

import logging
import os
import threading
import time

import pandas as pd
import pytest

from jngis.errors import InputTypeError, ParameterError
from jngis.gridtable import ORDER_COLUMNS, LiveTable, SavedTables, compute_table, fingerprint, layers_digest
from jngis.stats import grid_stats
from jngis.store import OrderChanges, OrdersCursor

AT = pd.Timestamp("2026-11-20 10:00")
WAIT = 30  # seconds a background computation may take on a busy machine


@pytest.fixture(scope="module")
def layers(slice_city):
    return {"grids": slice_city.grids, "stations": slice_city.stations, "party_orgs": slice_city.party_orgs}


class FakeStore:
    """The two methods LiveTable uses, with the sample slice's orders; ``gate`` holds computations."""

    def __init__(self, orders, version: str = "v1") -> None:
        self.orders, self.version = orders, version
        self.reads = 0
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # set when a computation reads the orders
        self.fail = False

    def orders_version(self):
        return (self.version,)

    def orders_changes(self, cursor=None, *, columns=None):
        """Every order each time (``complete``): the feed's own reads are tested on real stores below."""
        self.entered.set()
        self.gate.wait(WAIT)
        self.reads += 1
        if self.fail:
            raise RuntimeError("the store is gone")
        return OrderChanges(self.orders[["order_id", *columns, "geometry"]], OrdersCursor(((0.0, 0),)), True)


@pytest.fixture
def store(slice_city):
    return FakeStore(slice_city.workorders)


def wait_for(condition, what: str) -> None:
    deadline = time.time() + WAIT
    while not condition():
        assert time.time() < deadline, what
        time.sleep(0.01)


# -- computing and naming ----------------------------------------------------------------------

def test_compute_table_is_grid_stats_without_attrs(layers, slice_city):
    table = compute_table(layers, slice_city.workorders, AT)
    expected = grid_stats(layers["grids"], stations=layers["stations"], party_orgs=layers["party_orgs"],
                          workorders=slice_city.workorders, at=AT)
    assert expected.attrs and table.attrs == {}
    pd.testing.assert_frame_equal(table, expected)


def test_layers_need_grids(slice_city):
    with pytest.raises(ParameterError, match="compute_table: layers has no 'grids'"):
        compute_table({"stations": slice_city.stations}, None, AT)
    with pytest.raises(InputTypeError, match="layers_digest: layers is a list"):
        layers_digest([slice_city.grids])


def test_the_digest_follows_the_layers_and_the_source(layers):
    digest = layers_digest(layers, source="city.gpkg")
    assert digest == layers_digest(dict(layers), source="city.gpkg")
    assert digest != layers_digest(layers, source="other.gpkg")
    changed = layers["grids"].copy()
    changed.loc[changed.index[0], "households"] += 1
    assert digest != layers_digest({**layers, "grids": changed}, source="city.gpkg")
    moved = layers["stations"].copy()
    moved.geometry = moved.geometry.translate(1, 0)
    assert digest != layers_digest({**layers, "stations": moved}, source="city.gpkg")


def test_the_fingerprint_follows_the_orders():
    assert fingerprint(b"x", ("1", "2")) == fingerprint(b"x", ("1", "2"))
    assert fingerprint(b"x", ("1", "2")) != fingerprint(b"x", ("1", "3"))
    assert fingerprint(b"x", ("1", "2")) != fingerprint(b"y", ("1", "2"))
    with pytest.raises(InputTypeError, match="digest is a str; expected bytes"):
        fingerprint("x", ("1",))


# -- saved tables ------------------------------------------------------------------------------

def test_a_saved_table_reads_back_as_it_was(layers, slice_city, tmp_path):
    table = compute_table(layers, slice_city.workorders, AT)
    saved = SavedTables(tmp_path / "stats")
    assert saved.save("abc123", table, AT.isoformat())
    loaded, at = saved.load("abc123")
    assert at == "2026-11-20T10:00:00" and loaded.attrs == {}
    pd.testing.assert_frame_equal(loaded, table)
    assert table.attrs == {}  # the table handed in is not changed
    assert saved.load("other") is None
    assert [p.name for p in (tmp_path / "stats").iterdir()] == ["grid-table-abc123.parquet"]


def test_only_the_newest_tables_are_kept(tmp_path):
    saved = SavedTables(tmp_path, keep=2)
    table = pd.DataFrame({"open_orders": [1]})
    for i, name in enumerate(("a1", "b2", "c3")):
        saved.save(name, table, "2026-01-01T00:00:00")
        os.utime(saved.path(name), (1000 + i, 1000 + i))
    saved.save("c3", table, "2026-01-01T00:00:00")  # prunes after writing
    assert sorted(p.name for p in tmp_path.glob("grid-table-*")) == ["grid-table-b2.parquet",
                                                                      "grid-table-c3.parquet"]


def test_a_table_pruned_by_another_worker_meanwhile_is_passed_over(tmp_path, caplog):
    """Workers of one host share the folder: a file listed by one may be gone when it looks at it
    (a dangling link is such a file: listed, and no longer there)."""
    saved = SavedTables(tmp_path, keep=1)
    (tmp_path / "grid-table-gone.parquet").symlink_to(tmp_path / "removed.parquet")
    table = pd.DataFrame({"open_orders": [1]})
    with caplog.at_level(logging.WARNING, logger="jngis.gridtable"):
        assert saved.save("a1", table, "2026-01-01T00:00:00") is True
    assert caplog.text == ""
    pd.testing.assert_frame_equal(saved.load("a1")[0], table)


def test_a_damaged_file_is_passed_over(tmp_path, caplog):
    saved = SavedTables(tmp_path)
    saved.path("abc").write_bytes(b"not parquet")
    with caplog.at_level(logging.WARNING, logger="jngis.gridtable"):
        assert saved.load("abc") is None
    assert "could not read the saved grid table" in caplog.text


def test_a_folder_that_cannot_be_written_only_costs_time(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    assert SavedTables(blocked / "stats").save("abc", pd.DataFrame({"a": [1]}), "x") is False


@pytest.mark.parametrize("name", ["../escape", "", "a b", None])
def test_fingerprints_are_names_not_paths(tmp_path, name):
    with pytest.raises(ParameterError, match="fingerprint="):
        SavedTables(tmp_path).path(name)


def test_saved_tables_check_their_arguments(tmp_path):
    with pytest.raises(InputTypeError, match="directory is a int"):
        SavedTables(3)
    with pytest.raises(ParameterError, match="keep=0"):
        SavedTables(tmp_path, keep=0)
    with pytest.raises(InputTypeError, match="table is a list"):
        SavedTables(tmp_path).save("abc", [1], "x")


# -- the live table ----------------------------------------------------------------------------

def test_the_first_table_is_computed_once_for_every_first_reader(store, layers):
    live = LiveTable(store, layers)
    store.gate.clear()
    tables = []
    readers = [threading.Thread(target=lambda: tables.append(live.current())) for _ in range(6)]
    for reader in readers:
        reader.start()
    time.sleep(0.2)
    store.gate.set()
    for reader in readers:
        reader.join(WAIT)
    assert store.reads == 1 and len(tables) == 6
    assert len({id(table) for table in tables}) == 1
    assert list(tables[0].table.columns) and tables[0].version == live.latest.version


def test_reads_never_wait_for_a_refresh(store, layers):
    live = LiveTable(store, layers)
    first = live.current()
    store.gate.clear()  # the next computation hangs until the gate opens
    live.refresh()
    started = time.monotonic()
    assert live.current() is first
    assert time.monotonic() - started < 1
    store.gate.set()
    wait_for(lambda: live.current().version > first.version, "the refresh never landed")


def test_refreshes_asked_during_a_computation_are_served_by_one(store, layers):
    live = LiveTable(store, layers)
    live.current()
    store.gate.clear()
    store.entered.clear()
    live.refresh()
    assert store.entered.wait(WAIT)  # computing, held at the gate
    for _ in range(5):
        live.refresh()  # all queued behind it: one computation serves them
    store.gate.set()
    wait_for(lambda: live.latest.version == live._asked, "the last refresh never landed")
    time.sleep(0.2)
    assert store.reads == 3  # the first table, the held one, one for the five


def test_an_old_table_asks_for_a_new_one(store, layers):
    live = LiveTable(store, layers, max_age=0)
    first = live.current()
    wait_for(lambda: live.current().version > first.version, "a stale table was never replaced")


def test_a_failed_refresh_keeps_the_last_table(store, layers, caplog):
    live = LiveTable(store, layers)
    first = live.current()
    store.fail = True
    with caplog.at_level(logging.ERROR, logger="jngis.gridtable"):
        live.refresh()
        wait_for(lambda: "recomputing the grid table failed" in caplog.text, "the failure was not logged")
    assert live.current() is first
    store.fail = False
    live.max_age = 0.0  # the next stale read tries again
    wait_for(lambda: live.current().version > first.version, "no retry after a failure")


def test_a_failed_first_table_is_retried_by_the_next_read(store, layers):
    live = LiveTable(store, layers)
    store.fail = True
    with pytest.raises(RuntimeError, match="the store is gone"):
        live.current()
    store.fail = False
    assert live.current().table is not None


def test_a_restart_reads_the_saved_table_first(store, layers, tmp_path):
    live = LiveTable(store, layers, directory=tmp_path, source="city.gpkg")
    assert live.saved is None
    computed = live.current()
    assert (tmp_path / f"grid-table-{live.fingerprint()}.parquet").exists()
    again = LiveTable(store, layers, directory=tmp_path, source="city.gpkg")
    assert again.saved is not None and again.latest is again.saved
    assert again.saved.at == computed.at and again.saved.made == float("-inf")
    pd.testing.assert_frame_equal(again.saved.table, computed.table)
    assert store.reads == 1  # read from disk, not computed
    again.warm()  # a saved table is as of its time: warm() refreshes it
    wait_for(lambda: store.reads == 2 and again.latest is not again.saved, "warm() did not refresh")
    store.version = "v2"  # the orders changed: the saved table no longer fits
    assert LiveTable(store, layers, directory=tmp_path, source="city.gpkg").saved is None


def test_warm_starts_the_first_table(store, layers):
    live = LiveTable(store, layers)
    live.warm()
    wait_for(lambda: live.latest is not None, "warm() computed nothing")
    assert live.current() is live.latest and store.reads == 1


def test_the_live_table_checks_its_arguments(store, layers):
    with pytest.raises(InputTypeError, match="store is a dict without orders_changes"):
        LiveTable({}, layers)
    with pytest.raises(ParameterError, match="LiveTable: layers has no 'grids'"):
        LiveTable(store, {"stations": layers["stations"]})
    with pytest.raises(ParameterError, match="LiveTable: max_age=-1"):
        LiveTable(store, layers, max_age=-1)


def test_only_the_order_columns_the_table_needs_are_read(store, layers, monkeypatch):
    asked = []
    real = store.orders_changes
    monkeypatch.setattr(store, "orders_changes", lambda cursor=None, **kw: asked.append(kw["columns"]) or real(**kw))
    LiveTable(store, layers).current()
    assert asked == [ORDER_COLUMNS]


def test_writes_in_a_stream_are_counted_by_fewer_computations_and_the_last_one_counts_them_all(store, layers):
    """After a computation the worker rests ten times as long as it took (at most ``rest``): refreshes asked
    meanwhile are served by one computation, which reads the orders as they are after them."""
    live = LiveTable(store, layers, rest=5.0)
    live.current()
    store.gate.clear()
    store.entered.clear()
    live.refresh()
    assert store.entered.wait(WAIT)
    time.sleep(0.3)  # the held computation takes 0.3 s or more: the worker then rests 3 s or more
    store.gate.set()
    wait_for(lambda: store.reads == 2, "the held refresh never ran")
    store.version = "v2"  # orders written after it
    for _ in range(5):
        live.refresh()
    assert store.reads == 2, "a refresh started without the rest"
    wait_for(lambda: live.latest.version == live._asked, "the last refresh never landed")
    time.sleep(0.2)
    assert store.reads == 3  # the first table, the held one, one for the five after the rest


def test_with_no_rest_refreshes_run_back_to_back(store, layers):
    live = LiveTable(store, layers, rest=0)
    live.current()
    live.refresh()
    wait_for(lambda: store.reads == 2, "the refresh never ran")
    live.refresh()
    wait_for(lambda: store.reads == 3, "the second refresh never ran")


def test_the_rest_is_checked(store, layers):
    with pytest.raises(ParameterError, match="LiveTable: rest=-1"):
        LiveTable(store, layers, rest=-1)
