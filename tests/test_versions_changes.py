"""The change channel (jngis.store.changes), on both stores: announce, change_versions, listen."""

from __future__ import annotations

import threading
import time

import pytest

from jngis.errors import InputTypeError, ParameterError
from jngis.store import open_store
from jngis.store.changes import CHANGE_KINDS


def _inside(city):
    point = city.communities.geometry.representative_point().to_crs("EPSG:4326").iloc[0]
    return point.x, point.y


def test_announce_bumps_in_the_transaction_and_not_on_rollback(slice_store_url):
    with open_store(slice_store_url) as store:
        before = store.change_versions()
        assert set(before) == set(CHANGE_KINDS)
        with store._write():
            assert store.announce("users") == before["users"] + 1
        with pytest.raises(RuntimeError), store._write():
            store.announce("users")
            raise RuntimeError("rolled back")
        with store._write():
            assert store.announce("versions", 40) == 40  # a number moves it to at least that
            assert store.announce("versions", 3) == 41
        after = store.change_versions()
        assert after["users"] == before["users"] + 1 and after["versions"] == 41


def test_order_writes_and_layer_writes_announce(slice_store_url, slice_city):
    lon, lat = _inside(slice_city)
    with open_store(slice_store_url) as store, open_store(slice_store_url) as other:
        start = other.change_versions()
        order = store.create_order(lon, lat, category="市容环境", who="测试")
        store.transition(order["order_id"], "dispatched", who="测试")
        assert other.change_versions()["orders"] == start["orders"] + 2
        store.write_city(store.read_city().__class__(grids=slice_city.grids))
        assert other.change_versions()["layers"] == start["layers"] + 1


def test_refusals_name_the_parameter(slice_store_url):
    with open_store(slice_store_url) as store:
        with pytest.raises(ParameterError, match="kind='roads'; expected one of orders, layers"):
            with store._write():
                store.announce("roads")
        with pytest.raises(InputTypeError, match="callback is a str"):
            store.listen("print", threading.Event())
        with pytest.raises(ParameterError, match="interval=0; expected a finite number > 0"):
            store.listen(print, threading.Event(), interval=0)


def test_listen_hears_another_connection_within_seconds(slice_store_url, slice_city):
    lon, lat = _inside(slice_city)
    heard: list[tuple[str, int]] = []
    stop = threading.Event()
    with open_store(slice_store_url) as listener, open_store(slice_store_url) as writer:
        thread = listener.listen(lambda kind, version: heard.append((kind, version)), stop, interval=0.2)
        time.sleep(0.5)  # PostgreSQL: LISTEN is in place
        writer.create_order(lon, lat, category="市容环境", who="测试")
        expected = writer.change_versions()["orders"]
        deadline = time.monotonic() + 5
        while ("orders", expected) not in heard and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        thread.join(timeout=5)
    assert ("orders", expected) in heard
    assert not thread.is_alive()
