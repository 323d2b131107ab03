"""jngis._numba.warm_once: one compilation at a time in the process, each kernel family once."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from jngis import _numba
from jngis.cache import Cache


@pytest.fixture(autouse=True)
def nothing_warmed(monkeypatch):
    monkeypatch.setattr(_numba, "_WARMED", Cache())


def test_warm_ups_never_overlap_and_run_once():
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


def test_a_failed_warm_up_is_tried_again():
    def broken():
        raise RuntimeError("compiler crashed")

    with pytest.raises(RuntimeError, match="compiler crashed"):
        _numba.warm_once("c", broken)
    calls = []
    _numba.warm_once("c", lambda: calls.append(1))
    _numba.warm_once("c", lambda: calls.append(2))
    assert calls == [1]


def test_every_caller_returns_only_after_the_warm_up_finished():
    started, finished = threading.Event(), threading.Event()

    def slow():
        started.set()
        time.sleep(0.3)
        finished.set()

    first = threading.Thread(target=_numba.warm_once, args=("e", slow))
    first.start()
    assert started.wait(10)
    _numba.warm_once("e", lambda: pytest.fail("the warm-up ran twice"))
    # a caller arriving while the warm-up runs must not go on to use half-compiled kernels
    assert finished.is_set()
    first.join()


def test_a_warm_up_may_warm_another_family():
    calls = []

    def outer():
        calls.append("outer")
        _numba.warm_once("g", lambda: calls.append("inner"))  # e.g. the MVT warm-up needing PIP

    thread = threading.Thread(target=_numba.warm_once, args=("f", outer), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "a nested warm-up of another family deadlocked"
    assert calls == ["outer", "inner"]
    _numba.warm_once("g", lambda: calls.append("again"))
    assert calls == ["outer", "inner"]


def test_a_warm_up_reaching_itself_is_refused():
    calls = []

    def outer():
        calls.append("outer")
        _numba.warm_once("d", lambda: calls.append("inner"))

    thread_error = []

    def run():
        try:
            _numba.warm_once("d", outer)
        except RuntimeError as error:
            thread_error.append(str(error))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "a warm-up reaching itself deadlocked"
    assert calls == ["outer"]
    assert thread_error and "the warm-up of 'd' reached warm_once('d') again" in thread_error[0]
    _numba.warm_once("d", lambda: calls.append("retried"))  # nothing half-done was remembered
    assert calls == ["outer", "retried"]


def test_vector_tiles_warm_up_compiles_without_reaching_itself():
    from jngis.tiles import vector_tiles

    vector_tiles._warm_encoder()  # raised RuntimeError if it built a VectorTiles inside
    assert "mvt" in _numba._WARMED


def test_the_mvt_encoder_requires_numba():
    """numba is a requirement: without it the encoder refuses to load instead of crawling in Python."""
    # _mvt.py loaded on its own: the jngis package itself needs numba for other kernels
    code = ("import importlib.util, pathlib, sys\n"
            "sys.modules['numba'] = None\n"
            "folder = importlib.util.find_spec('jngis').submodule_search_locations[0]\n"
            "spec = importlib.util.spec_from_file_location('mvt', pathlib.Path(folder) / '_mvt.py')\n"
            "try:\n    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
            "except ImportError:\n    print('refused')\n"
            "else:\n    print('loaded')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "refused", result.stderr
