"""The per-grid table of a city for a map: computed from a store, saved for the next start, kept fresh.

A map colours every grid by its figures (:func:`jngis.stats.grid_stats`), and a
whole city's table takes seconds to compute (100,000 orders read and placed).
This module keeps one ready:

- :func:`compute_table`: the table of the layers and the orders, as of a time;
- :func:`layers_digest` and :func:`fingerprint`: what a table was computed from
  (the layers, jngis's version, the store and its orders' version);
- :class:`SavedTables`: tables kept on disk under their fingerprint (written
  atomically, the newest few kept), so a restart on the same data has its
  first table at once;
- :class:`LiveTable`: the table of a store, read without waiting once there is
  one; a write (:meth:`LiveTable.refresh`) or age brings it up to date in the
  background, one computation at a time, and reads get the last table until
  the new one is ready. It keeps a :class:`jngis.stats.tally.GridTally` of
  the orders and takes only the orders written since it last looked
  (``store.orders_changes``, :mod:`jngis.store.feed`), reading every order
  again at most every :data:`RESET` seconds.

Examples
--------
>>> import pandas as pd
>>> table = pd.DataFrame({"open_orders": [2, 0]}, index=pd.Index(["370102003001001", "370102003001002"],
...                                                             name="grid_code"))
>>> import tempfile
>>> saved = SavedTables(tempfile.mkdtemp())
>>> saved.save("f00d", table, "2026-10-01T09:00:00")
True
>>> loaded, at = saved.load("f00d")
>>> at, loaded["open_orders"].tolist()
('2026-10-01T09:00:00', [2, 0])
>>> saved.load("beef") is None
True
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import geopandas as gpd
import pandas as pd
import shapely

from jngis import _checks, _heap
from jngis.cache import Cache, atomic_write
from jngis.errors import InputTypeError, ParameterError
from jngis.stats.tally import TALLY_COLUMNS, GridTally

if TYPE_CHECKING:
    from jngis.store.feed import OrdersCursor

__all__ = [
    "GridTable",
    "LiveTable",
    "SavedTables",
    "compute_table",
    "fingerprint",
    "layers_digest",
    "MAX_AGE",
    "REST",
    "REST_FACTOR",
    "RESET",
    "SAVE_EVERY",
    "KEEP",
    "ORDER_COLUMNS",
    "TABLE_LAYERS",
]

log = logging.getLogger("jngis.gridtable")

#: Seconds after which a table is recomputed when read (orders written by another
#: process, deadlines passing as time goes on).
MAX_AGE = 60.0
#: Seconds at most that the table's worker rests after a computation (:data:`REST_FACTOR` times
#: as long as that one took): under a stream of writes (benchmarks/load.py: a work order every ~20
#: requests) back-to-back computations held the GIL the requests need (half the server's CPU when
#: each was a whole city's; resting as long as one took, a tally's 0.1 s still made it half the
#: time). A write waits at most this long more to be counted; one after a quiet spell is counted at once.
REST = 1.0
#: How many times as long as a computation took the worker rests after it (at most :data:`REST`):
#: under a stream of writes it computes at most about a twentieth of the time (a tally's update
#: and table take ~30 ms on the sample city's 100,000 orders: a rest of ~0.6 s).
REST_FACTOR = 20.0
#: Saved tables kept on disk (one per state of a store's data).
KEEP = 8
#: Seconds after which a computation reads every order again instead of the ones written since the
#: last (a write whose transaction stayed open longer than the change feed looks back, :data:`jngis.store.feed.SETTLE`).
RESET = 300.0
#: Seconds at least between two saves of the table (a save names it by counting the store's orders and trail).
SAVE_EVERY = 60.0
#: The layers a table is computed from.
TABLE_LAYERS: tuple[str, ...] = ("grids", "stations", "party_orgs")
#: The work-order columns grid_stats reads (the rest is not fetched for the table).
ORDER_COLUMNS: tuple[str, ...] = TALLY_COLUMNS
#: Format of a saved table; part of the fingerprint, so a new format never reads an old file.
_FORMAT = 2
_AT_ATTR = "jngis_at"
_PATTERN = "grid-table-*.parquet"


class GridTable(NamedTuple):
    """One computation of the table: the table, the time it is as of, its version, when it was made.

    ``version`` grows with every computation of a :class:`LiveTable`; ``made``
    is a :func:`time.monotonic` reading (``-inf`` for a table read from disk:
    stale at once).
    """

    table: pd.DataFrame
    at: str
    version: int
    made: float


def compute_table(layers: Mapping[str, gpd.GeoDataFrame], workorders: gpd.GeoDataFrame | None,
                  at: Any) -> pd.DataFrame:
    """:func:`jngis.stats.grid_stats` of ``layers`` (grids, stations, party_orgs) and ``workorders``.

    The table's ``attrs`` are emptied: grid_stats keeps every order's resolve
    time there (for :func:`jngis.stats.rollup`) and pandas deep-copies
    ``attrs`` on every selection, so a card read from a kept table would
    copy them each time (1 s instead of 1 ms on the full city).
    """
    from jngis.stats import grid_stats

    grids = _grids("compute_table", layers)
    table = grid_stats(grids, stations=layers.get("stations"), party_orgs=layers.get("party_orgs"),
                       workorders=workorders, at=at)
    table.attrs = {}
    return table


def layers_digest(layers: Mapping[str, gpd.GeoDataFrame], *, source: str = "") -> bytes:
    """A hash of what a table is computed from besides the orders: the layers, jngis, ``source``.

    ``source`` names the store (its path or DSN). Hash it once per process: the
    layers never change while a server runs; the orders do (:func:`fingerprint`).
    """
    import jngis

    if not isinstance(source, str):
        raise InputTypeError(f"layers_digest: source is a {type(source).__name__}; expected a string")
    _grids("layers_digest", layers)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{_FORMAT} {jngis.__version__} {source}".encode())
    for kind in TABLE_LAYERS:
        layer = layers.get(kind)
        if layer is None:
            continue
        digest.update(kind.encode())
        attributes = pd.DataFrame(layer.drop(columns=layer.geometry.name))
        digest.update(pd.util.hash_pandas_object(attributes, index=False).to_numpy().tobytes())
        digest.update(b"".join(shapely.to_wkb(layer.geometry.values)))
    return digest.digest()


def fingerprint(digest: bytes, orders_version: Any) -> str:
    """The name of a table: the layers' :func:`layers_digest` and the store's orders version.

    Examples
    --------
    >>> fingerprint(b"layers", ("3", "9", "2026-10-01T09:00:00"))
    'cde3f4dbb3f3a408fcb2be30cd5481a6'
    """
    if not isinstance(digest, bytes):
        raise InputTypeError(f"fingerprint: digest is a {type(digest).__name__}; expected bytes from layers_digest")
    value = hashlib.blake2b(digest, digest_size=16)
    value.update(repr(orders_version).encode())
    return value.hexdigest()


class SavedTables:
    """Tables kept in ``directory`` as ``grid-table-<fingerprint>.parquet``, the newest ``keep``.

    Saving only saves time: a folder that cannot be written, or a file that
    cannot be read (partial, damaged, foreign), is logged and passed over.
    """

    def __init__(self, directory: str | os.PathLike, keep: int = KEEP) -> None:
        if not isinstance(directory, (str, os.PathLike)):
            raise InputTypeError(f"SavedTables: directory is a {type(directory).__name__}; expected a path")
        self.directory = Path(directory)
        self.keep = _checks.integer("SavedTables", "keep", keep, minimum=1)

    def path(self, fingerprint: str) -> Path:
        """The file of the table named ``fingerprint``."""
        if not isinstance(fingerprint, str) or not fingerprint.isalnum():
            raise ParameterError(f"SavedTables.path: fingerprint={fingerprint!r}; expected letters and digits "
                                 "(from jngis.gridtable.fingerprint)")
        return self.directory / f"grid-table-{fingerprint}.parquet"

    def save(self, fingerprint: str, table: pd.DataFrame, at: str) -> bool:
        """Write ``table`` (as of ``at``) atomically and drop the oldest files; whether it was written."""
        path = self.path(fingerprint)
        _checks.dataframe("SavedTables.save", "table", table)
        frame = table.copy(deep=False)
        frame.attrs = {_AT_ATTR: str(at)}  # one file holds the table and its time
        try:
            written = atomic_write(path, frame.to_parquet)
            saved = []
            for found in self.directory.glob(_PATTERN):
                try:
                    saved.append((found.stat().st_mtime, found))
                except FileNotFoundError:  # pruned meanwhile by another worker sharing the folder
                    continue
            for _, old in sorted(saved)[:-self.keep]:
                old.unlink(missing_ok=True)
        except Exception:  # the cache only saves time; serving goes on without it
            log.warning("could not save the grid table for the next start", exc_info=True)
            return False
        return written

    def load(self, fingerprint: str) -> tuple[pd.DataFrame, str] | None:
        """The table saved as ``fingerprint`` and its time, or None when there is none to read."""
        path = self.path(fingerprint)
        if not path.exists():
            return None
        try:
            table = pd.read_parquet(path)
            at = table.attrs.pop(_AT_ATTR)
        except Exception:  # a partial or foreign file: the caller computes the table instead
            log.warning("could not read the saved grid table %s; computing it", path.name, exc_info=True)
            return None
        table.attrs = {}
        return table, str(at)


class LiveTable:
    """The table of a store's city, for a server: reads never wait for a recomputation.

    Parameters
    ----------
    store : jngis.store.Store
        Where the orders are (``orders_frame`` and ``orders_version`` are used).
    layers : mapping of str to geopandas.GeoDataFrame
        The city's layers; ``grids`` is required, ``stations`` and
        ``party_orgs`` are used when present.
    directory : path, optional
        Where tables are saved for the next start (:class:`SavedTables`);
        None saves nothing.
    source : str
        The store's name (path or DSN), part of the fingerprint.
    max_age : float
        Seconds after which a read asks for a recomputation (:data:`MAX_AGE`).
    rest : float
        Seconds at most between the end of one computation and the start of
        the next, :data:`REST_FACTOR` times as long as the one that ended took
        (:data:`REST`; 0: back to back).
    reset : float
        Seconds after which a computation reads every order again
        (:data:`RESET`); in between it reads the orders written since the last.

    Notes
    -----
    Only the very first read waits for a table (and :meth:`warm` starts it
    early). After that, a write (:meth:`refresh`) or a table older than
    ``max_age`` queues a recomputation on one background worker, and reads get
    the last table until the new one is ready (its ``version`` and ``at`` tell
    them apart). Requests that pile up while one computation runs, or while
    the worker rests after it (``rest``), are served by one
    computation after it. A computation applies the orders written since the
    previous one to its tally (milliseconds for a few orders, against reading
    and placing a whole city's); a failure drops the tally's cursor, so the
    next computation reads every order.
    """

    def __init__(self, store: Any, layers: Mapping[str, gpd.GeoDataFrame], *,
                 directory: str | os.PathLike | None = None, source: str = "", max_age: float = MAX_AGE,
                 rest: float = REST, reset: float = RESET) -> None:
        for method in ("orders_changes", "orders_version"):
            if not callable(getattr(store, method, None)):
                raise InputTypeError(f"LiveTable: store is a {type(store).__name__} without {method}(); "
                                     "expected a jngis store (jngis.store.open_store)")
        _grids("LiveTable", layers)
        self.store = store
        self.layers = {kind: layers[kind] for kind in TABLE_LAYERS if layers.get(kind) is not None}
        self.max_age = _checks.number("LiveTable", "max_age", max_age, minimum=0)
        self.rest = _checks.number("LiveTable", "rest", rest, minimum=0)
        self.reset = _checks.number("LiveTable", "reset", reset, minimum=0)
        self._tally: GridTally | None = None  # built by the first computation, on the worker
        self._cursor: OrdersCursor | None = None  # None: the next computation reads every order
        self._read_all_at = -math.inf  # monotonic time of the last read of every order
        self._saved_at = -math.inf
        self._next_start = -math.inf  # monotonic time before which no computation starts
        self.saved_tables = None if directory is None else SavedTables(directory)
        self._digest = layers_digest(self.layers, source=source)
        self._versions = itertools.count(1)
        self._asked = 0  # the newest refresh asked for; older queued ones are skipped
        # one worker: computations never overlap (each holds a whole city's orders)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jngis-grid-table")
        self._first: Cache[GridTable] = Cache()
        #: The table the last run saved for the store as it is now, read at construction (or None).
        self.saved = self._load_saved()
        self._latest = self.saved

    @property
    def latest(self) -> GridTable | None:
        """The newest table, without computing or waiting."""
        return self._latest

    def fingerprint(self) -> str:
        """The name the table of the store as it is now is saved under."""
        return fingerprint(self._digest, self.store.orders_version())

    def current(self) -> GridTable:
        """The newest table; waits only while there has never been one."""
        latest = self._latest
        if latest is None:
            try:  # every first reader waits for the same computation
                return self._first.get_or_insert("first", lambda: self._worker.submit(self._compute_first).result())
            finally:
                self._first.invalidate("first")  # kept by _latest from now on
        if time.monotonic() - latest.made > self.max_age and self._asked <= latest.version:
            self.refresh()
        return latest

    def refresh(self) -> None:
        """Recompute the table in the background (the orders changed); reads keep the last one meanwhile."""
        version = next(self._versions)
        self._asked = version
        self._worker.submit(self._refresh, version)

    def warm(self) -> None:
        """Start the first computation now, in the background (or a refresh of a saved table)."""
        if self._latest is not None:
            self.refresh()
        else:
            self._worker.submit(_logged(self._compute_first, "computing the grid table at startup failed"))

    def _compute_first(self) -> GridTable:
        return self._latest or self._compute(next(self._versions))  # a refresh may have made one meanwhile

    def _refresh(self, version: int) -> None:
        if version < self._asked:
            return  # a newer request is queued behind this one and reads newer orders
        rest = self._next_start - time.monotonic()
        if rest > 0:
            time.sleep(rest)  # writes meanwhile queue behind: the newest one computes for all
            if version < self._asked:
                return
        try:
            self._compute(version)
        except Exception:
            log.exception("recomputing the grid table failed; the last one is still served")
            if self._asked == version:
                self._asked = 0  # let the next stale read try again

    def _compute(self, version: int) -> GridTable:
        from jngis.workorders import now_cst

        started = time.monotonic()
        save = self.saved_tables is not None and started - self._saved_at >= SAVE_EVERY
        try:
            name = self.fingerprint() if save else ""  # before reading: a write meanwhile makes it outdated
            at = now_cst()
            table = self._tallied().table(at)
            table.attrs = {}  # as compute_table: no per-order durations copied with every selection
            fresh = GridTable(table, at.isoformat(), version, time.monotonic())
        finally:
            ended = time.monotonic()
            self._next_start = ended + min(REST_FACTOR * (ended - started), self.rest)
        if save and self.saved_tables is not None:
            self._saved_at = started
            self.saved_tables.save(name, fresh.table, fresh.at)
        if self._latest is None or self._latest.version < version:  # only this worker writes it
            self._latest = fresh
        return fresh

    def _tallied(self) -> GridTally:
        """The tally with the orders written since the last computation applied (or every order read)."""
        if self._tally is None:
            self._tally = GridTally(self.layers["grids"], stations=self.layers.get("stations"),
                                    party_orgs=self.layers.get("party_orgs"))
        cursor, now = self._cursor, time.monotonic()
        if now - self._read_all_at >= self.reset:
            cursor = None
        self._cursor = None  # until this read has been applied whole
        changes = self.store.orders_changes(cursor, columns=ORDER_COLUMNS)
        if changes.complete:
            self._tally.reset(changes.orders)
            self._read_all_at = now
        else:
            self._tally.update(changes.orders)
        self._cursor, complete = changes.cursor, changes.complete
        if complete:  # a whole city's orders were read and dropped: the heap they grew goes back
            del changes
            _heap.trim()
        return self._tally

    def _load_saved(self) -> GridTable | None:
        if self.saved_tables is None:
            return None
        try:
            found = self.saved_tables.load(self.fingerprint())
        except Exception:  # a store that cannot say its orders' version: compute instead
            log.warning("could not look for a saved grid table", exc_info=True)
            return None
        return None if found is None else GridTable(found[0], found[1], next(self._versions), -math.inf)


def _grids(func: str, layers: Any) -> gpd.GeoDataFrame:
    if not isinstance(layers, Mapping):
        raise InputTypeError(f"{func}: layers is a {type(layers).__name__}; expected a mapping of layer "
                             "kind to GeoDataFrame")
    if layers.get("grids") is None:
        raise ParameterError(f"{func}: layers has no 'grids'; expected grids (jngis.grids.make_grids) "
                             f"and optionally stations, party_orgs; got {sorted(layers)}")
    return _checks.geodataframe(func, "layers['grids']", layers["grids"], required=["grid_code"])


def _logged(task: Callable[[], Any], message: str) -> Callable[[], None]:
    """``task`` whose exception is logged (a background task has no caller to raise to)."""
    def run() -> None:
        try:
            task()
        except Exception:
            log.exception(message)
    return run
