"""Compile jngis's numba kernels once per process, one compilation at a time.

numba parses source with ``ast`` when it compiles, and CPython 3.11.7's
``ast`` is not thread-safe ("AST constructor recursion depth mismatch"): one
bad concurrent parse breaks every later parse in the process. The server
compiles kernels from several threads at start (the grid-table thread builds
a :class:`jngis.assign.PolygonIndex` while the main thread builds the vector
tiles), so every kernel family warms up through :func:`warm_once`, under one
process-wide lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from jngis.cache import Cache

#: Kernel families whose warm-up finished (single-flight: a family is warmed once).
_WARMED: Cache[bool] = Cache()
#: One compilation at a time in the process; re-entrant, so a warm-up may warm another family.
_COMPILING = threading.RLock()
#: The families whose warm-up runs in this thread, innermost last.
_RUNNING = threading.local()


def warm_once(name: str, warm: Callable[[], None]) -> None:
    """Run ``warm()`` (which compiles the kernels of `name`) once per process, under the lock.

    Every caller returns only after the warm-up of `name` finished, whoever ran
    it. A warm-up may warm another family (it runs inline, in the same thread),
    but one that reaches its own family would wait for itself forever: that
    raises :class:`RuntimeError`. If ``warm()`` fails, nothing is remembered and
    the next caller tries again.

    Examples
    --------
    >>> calls = []
    >>> warm_once("doctest", lambda: calls.append("compiled"))
    >>> warm_once("doctest", lambda: calls.append("again"))
    >>> calls
    ['compiled']
    """
    if name in _WARMED:
        return
    running = _running()
    if name in running:
        raise RuntimeError(f"the warm-up of {name!r} reached warm_once({name!r}) again; a warm-up "
                           f"must not need its own family (warm-ups running in this thread: "
                           f"{running})")
    # The lock is taken outside the cache's single flight, so a thread holding it never
    # waits for a flight another thread started (that thread would be waiting for the lock).
    with _COMPILING:
        _WARMED.get_or_insert(name, lambda: _run(name, warm, running))


def _running() -> list[str]:
    if not hasattr(_RUNNING, "names"):
        _RUNNING.names = []
    return _RUNNING.names


def _run(name: str, warm: Callable[[], None], running: list[str]) -> bool:
    running.append(name)
    try:
        warm()
    finally:
        running.pop()
    return True
