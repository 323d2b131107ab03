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
from typing import Callable

_LOCK = threading.Lock()
_WARMED: set[str] = set()


def warm_once(name: str, warm: Callable[[], None]) -> None:
    """Run ``warm()`` (which compiles the kernels of `name`) once per process, under the lock.

    `name` counts as warmed before ``warm()`` runs, so a warm-up that itself
    reaches :func:`warm_once` for the same name returns at once; if it fails,
    the name is cleared and the next caller tries again.
    """
    if name in _WARMED:
        return
    with _LOCK:
        if name in _WARMED:
            return
        _WARMED.add(name)
        try:
            warm()
        except BaseException:
            _WARMED.discard(name)
            raise
