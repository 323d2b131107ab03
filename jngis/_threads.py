"""One process-wide pool of threads for GIL-free work (numba ``nogil`` kernels, GEOS) on every core.

A one-off :func:`jngis.assign` reads the points' coordinates while it builds the
grid, a large batch of points is located in one slice per core, and
:func:`jngis.adjacency.shared_edges` measures its candidate pairs in one slice
per core. All run in one pool of plain threads, which is safe where numba's own
``parallel=True`` is not: its default threading layer aborts when two threads
(two server requests) enter a parallel kernel at once.

Tasks in the pool never wait for other tasks of the pool, so a full pool only
queues work and cannot deadlock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _forget_pool_in_child() -> None:
    """A forked child has none of the parent's threads: it starts its own pool on first use."""
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def workers() -> int:
    """The cores this process may run on (at least 1)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def submit(func: Callable[..., T], *args: Any) -> Future[T]:
    """Run ``func(*args)`` in the pool (created on first use, one thread per core)."""
    global _POOL
    if _POOL is None:
        with _POOL_LOCK:
            if _POOL is None:
                _POOL = ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="jngis")
    return _POOL.submit(func, *args)


def slices(n: int, parts: int) -> list[slice]:
    """`n` items cut into `parts` contiguous slices of nearly equal size (none empty).

    Examples
    --------
    >>> slices(10, 3)
    [slice(0, 3, None), slice(3, 6, None), slice(6, 10, None)]
    >>> slices(1, 4)
    [slice(0, 1, None)]
    """
    parts = max(min(parts, n), 1)
    bounds = [n * k // parts for k in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def run_sliced(func: Callable[[slice], None], n: int, parts: int) -> None:
    """``func(s)`` for each of ``slices(n, parts)``: the first in this thread, the rest in the pool."""
    cuts = slices(n, parts)
    futures = [submit(func, s) for s in cuts[1:]]
    try:
        func(cuts[0])
    finally:
        for future in futures:
            future.result()
