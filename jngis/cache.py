"""One cache primitive: keyed, single-flight, byte-bounded, with an optional atomic disk file.

Modelled on martin's ``TileCache`` (one owner of the LRU, a byte weigher,
``get`` / ``insert`` / ``get_or_insert`` / ``invalidate``, concurrent requests
for one missing key computed once). Every lazily built thing in jngis (tile
geometry per zoom, encoded tiles with their gzip bytes and ETag, the saved
per-grid table, the store's point placer, the numba warm-ups) goes through it, so
no other module writes a double-checked lock by hand.

:func:`atomic_write` is the one "temporary file, then ``os.replace``" of jngis:
a reader sees either the old file or the whole new one, never a half-written one.

Examples
--------
>>> cache = Cache(max_bytes=10, weigher=len)
>>> cache.get_or_insert("a", lambda: b"12345")
b'12345'
>>> cache.get_or_insert("a", lambda: b"other")  # computed once
b'12345'
>>> _ = cache.insert("b", b"123456")             # 11 bytes > 10: the oldest goes
>>> "a" in cache, "b" in cache
(False, True)
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, Generic, TypeVar

from jngis.errors import InputTypeError, ParameterError

__all__ = ["Cache", "atomic_write"]

V = TypeVar("V")


class _Flight:
    """One computation in progress: later callers wait for its result."""

    __slots__ = ("done", "value", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class Cache(Generic[V]):
    """A thread-safe LRU cache bounded by the total weight of its values.

    Parameters
    ----------
    max_bytes : int or None
        Upper bound of the summed weights; ``None`` keeps everything (a memo).
    weigher : callable, optional
        ``value -> int`` weight (bytes); default 1 per entry.

    A value heavier than ``max_bytes`` is returned but not kept. Handlers never
    lock anything themselves: :meth:`get_or_insert` computes a missing key once
    however many threads ask for it at the same time; an exception reaches every
    waiting caller and nothing is cached.
    """

    def __init__(self, max_bytes: int | None = None, weigher: Callable[[V], int] | None = None) -> None:
        if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int)
                                      or max_bytes < 0):
            raise ParameterError(f"max_bytes={max_bytes!r}; expected a non-negative integer or None")
        if weigher is not None and not callable(weigher):
            raise InputTypeError(f"weigher is a {type(weigher).__name__}; expected a callable")
        self.max_bytes = max_bytes
        self._weigh = weigher or (lambda value: 1)
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()
        self.weight = 0
        self.hits = 0
        self.misses = 0

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable, default: Any = None) -> V | Any:
        """The cached value of ``key`` (now the most recently used), or ``default``."""
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return default
            self._items.move_to_end(key)
            return found[0]

    def insert(self, key: Hashable, value: V) -> V:
        """Keep ``value`` under ``key`` (replacing any), evicting the least recently used."""
        weight = int(self._weigh(value))
        with self._lock:
            self._discard(key)
            if self.max_bytes is None or weight <= self.max_bytes:
                self._items[key] = (value, weight)
                self.weight += weight
                self._evict()
        return value

    def get_or_insert(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The value of ``key``, computed by ``compute()`` once if missing (single-flight)."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return found[0]
            flight = self._flights.get(key)
            owner = flight is None
            if owner:
                flight = self._flights[key] = _Flight()
                self.misses += 1
        assert flight is not None
        if not owner:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            flight.value = self.insert(key, compute())
        except BaseException as error:
            flight.error = error
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()
        return flight.value

    def invalidate(self, key: Hashable) -> None:
        """Forget ``key`` (a computation in flight still finishes and is kept)."""
        with self._lock:
            self._discard(key)

    def invalidate_if(self, predicate: Callable[[Hashable], bool]) -> int:
        """Forget every key for which ``predicate(key)`` holds; returns how many."""
        with self._lock:
            doomed = [key for key in self._items if predicate(key)]
            for key in doomed:
                self._discard(key)
        return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.weight = 0

    def _discard(self, key: Hashable) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.weight -= old[1]

    def _evict(self) -> None:
        while self.max_bytes is not None and self.weight > self.max_bytes and self._items:
            _, (_, weight) = self._items.popitem(last=False)
            self.weight -= weight


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> bool:
    """Write a file through ``write(temporary_path)``, then move it into place atomically.

    Returns False (and leaves nothing behind) when the folder cannot be written:
    a read-only cache only costs speed. Errors of ``write`` itself propagate.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent)
        os.close(handle)
    except OSError:
        return False
    temporary = Path(name)
    try:
        write(temporary)
        os.replace(temporary, target)
        return True
    except OSError:
        return False
    finally:
        temporary.unlink(missing_ok=True)
