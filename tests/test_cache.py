"""jngis.cache: single-flight, byte bound, LRU order, errors, atomic files."""

import threading
import time

import pytest

from jngis.cache import Cache, atomic_write
from jngis.errors import InputTypeError, ParameterError


def test_concurrent_callers_compute_once():
    cache = Cache()
    calls = []
    start = threading.Barrier(8)

    def compute():
        calls.append(1)
        time.sleep(0.05)
        return "value"

    results = []

    def ask():
        start.wait()
        results.append(cache.get_or_insert("k", compute))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1]
    assert results == ["value"] * 8
    assert cache.misses == 1


def test_error_reaches_every_waiter_and_nothing_is_kept():
    cache = Cache()
    gate = threading.Event()

    def fail():
        gate.wait(1)
        raise RuntimeError("boom")

    errors = []

    def ask():
        try:
            cache.get_or_insert("k", fail)
        except RuntimeError as error:
            errors.append(str(error))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    gate.set()
    for t in threads:
        t.join()
    assert errors == ["boom"] * 3
    assert "k" not in cache
    assert cache.get_or_insert("k", lambda: 5) == 5


def test_byte_bound_evicts_least_recently_used():
    cache = Cache(max_bytes=10, weigher=len)
    cache.insert("a", b"aaaa")
    cache.insert("b", b"bbbb")
    assert cache.get("a") == b"aaaa"  # a is now the most recent
    cache.insert("c", b"cccc")
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.weight == 8
    assert cache.insert("huge", b"x" * 11) == b"x" * 11  # returned, not kept
    assert "huge" not in cache and cache.weight == 8
    cache.insert("a", b"a")  # replacing re-weighs
    assert cache.weight == 5
    assert cache.invalidate_if(lambda key: key in ("a", "c")) == 2
    assert cache.weight == 0 and len(cache) == 0


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_bad_bound_is_refused(bad):
    with pytest.raises(ParameterError, match="max_bytes"):
        Cache(max_bytes=bad)
    with pytest.raises(InputTypeError, match="weigher"):
        Cache(weigher=3)


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "table.bin"
    assert atomic_write(target, lambda p: p.write_bytes(b"one"))
    assert target.read_bytes() == b"one"

    def half(p):
        p.write_bytes(b"half")
        raise ValueError("writer failed")

    with pytest.raises(ValueError):
        atomic_write(target, half)
    assert target.read_bytes() == b"one"
    assert sorted(x.name for x in target.parent.iterdir()) == ["table.bin"]


def test_atomic_write_where_no_folder_can_be_made_returns_false(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    assert atomic_write(blocker / "x.bin", lambda p: p.write_bytes(b"1")) is False
    assert blocker.read_bytes() == b""
