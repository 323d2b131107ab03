"""jngis._numba.warm_once: one compilation at a time in the process, each kernel family once."""

from __future__ import annotations

import threading
import time

import pytest

from jngis import _numba


def test_warm_ups_never_overlap_and_run_once(monkeypatch):
    monkeypatch.setattr(_numba, "_WARMED", set())
    running, overlaps, runs = [0], [], {"a": 0, "b": 0}
    guard = threading.Lock()

    def warm(name):
        def body():
            with guard:
                running[0] += 1
                overlaps.append(running[0])
                runs[name] += 1
            time.sleep(0.05)
            with guard:
                running[0] -= 1
        return body

    threads = [threading.Thread(target=_numba.warm_once, args=(name, warm(name)))
               for name in ("a", "b") * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert runs == {"a": 1, "b": 1} and max(overlaps) == 1


def test_a_failed_warm_up_is_tried_again(monkeypatch):
    monkeypatch.setattr(_numba, "_WARMED", set())

    def broken():
        raise RuntimeError("compiler crashed")

    with pytest.raises(RuntimeError, match="compiler crashed"):
        _numba.warm_once("c", broken)
    calls = []
    _numba.warm_once("c", lambda: calls.append(1))
    _numba.warm_once("c", lambda: calls.append(2))
    assert calls == [1]


def test_a_warm_up_reaching_itself_returns(monkeypatch):
    monkeypatch.setattr(_numba, "_WARMED", set())
    calls = []

    def outer():
        calls.append("outer")
        _numba.warm_once("d", lambda: calls.append("inner"))  # as VectorTiles inside the MVT warm-up

    _numba.warm_once("d", outer)
    assert calls == ["outer"]
