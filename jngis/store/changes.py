"""The one change channel: every write announces what changed, every process can learn of it.

A write transaction calls :meth:`ChangeChannel.announce` (``orders``,
``layers``, ``versions`` or ``users``) before it commits. Both stores bump a
row of the table ``jngis_changes(kind, version)`` in that same transaction, so
the version a reader sees and the data it reads never disagree;
PostgreSQL also sends ``NOTIFY jngis_changes`` with ``{"kind": ..,
"version": ..}``, which PostgreSQL delivers only when (and if) the
transaction commits.

- :meth:`ChangeChannel.change_versions` reads the table (one small
  SELECT): cache keys are ``(kind, version, ...)``.
- :meth:`ChangeChannel.listen` calls back on every change, in a thread:
  PostgreSQL LISTEN on a connection of its own; SQLite polls
  ``change_versions`` about once a second (a file has no notifications).

Examples
--------
>>> import tempfile, pathlib, threading
>>> from jngis.store import open_store
>>> store = open_store(pathlib.Path(tempfile.mkdtemp()) / "empty.gpkg")
>>> with store._write():
...     store.announce("users")
1
>>> store.change_versions()
{'orders': 0, 'layers': 0, 'versions': 0, 'users': 1}
>>> store.close()
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from typing import Any

from jngis import _checks
from jngis.errors import InputTypeError, ParameterError

__all__ = ["CHANGE_KINDS", "CHANNEL", "ChangeChannel", "changes_table_sql", "notification"]

#: What a write can change (the kinds of the channel).
CHANGE_KINDS: tuple[str, ...] = ("orders", "layers", "versions", "users")
#: The PostgreSQL notification channel.
CHANNEL = "jngis_changes"
_BUMP = ("INSERT INTO jngis_changes(kind, version) VALUES (?, ?) ON CONFLICT(kind) DO UPDATE SET version = "
         "CASE WHEN excluded.version > jngis_changes.version + 1 THEN excluded.version "
         "ELSE jngis_changes.version + 1 END RETURNING version")


def changes_table_sql(text: str, big_integer: str) -> str:
    """The statement creating the change table (``IF NOT EXISTS``) in a dialect's type names."""
    return f"CREATE TABLE IF NOT EXISTS jngis_changes (kind {text} PRIMARY KEY, version {big_integer} NOT NULL)"


def _kind(func: str, kind: Any) -> str:
    if kind not in CHANGE_KINDS:
        raise ParameterError(f"{func}: kind={kind!r}; expected one of {', '.join(CHANGE_KINDS)}")
    return kind


class ChangeChannel:
    """The change channel's methods of a :class:`~jngis.store.Store` (mixed into it)."""

    _execute: Callable[..., Any]
    _conn: Callable[[], Any]

    def announce(self, kind: str, version: int | None = None) -> int:
        """Announce a change of ``kind`` inside the open write transaction; returns its new version.

        Call it inside ``with store._write():`` on the same thread, last
        (the row stays locked until the commit). ``version=None`` moves the
        kind's version on by one; a number moves it to at least that (e.g. a
        boundary version's id). Nothing is announced if the transaction rolls back.
        """
        _kind("announce", kind)
        if version is not None:
            _checks.integer("announce", "version", version, minimum=0)
        conn = self._conn()
        new = int(self._execute(conn, _BUMP, (kind, 0 if version is None else int(version))).fetchone()[0])
        self._notify(conn, kind, new)
        return new

    def _notify(self, conn, kind: str, version: int) -> None:
        """Tell other processes (PostgreSQL: NOTIFY; SQLite: the row is the message)."""

    def change_versions(self) -> dict[str, int]:
        """The version of every kind of change (0 when never announced), in one cheap read."""
        rows = dict(self._execute(self._conn(), "SELECT kind, version FROM jngis_changes").fetchall())
        return {kind: int(rows.get(kind, 0)) for kind in CHANGE_KINDS}

    def listen(self, callback: Callable[[str, int], None], stop: threading.Event, *,
               interval: float = 1.0) -> threading.Thread:
        """Call ``callback(kind, version)`` on every announced change until ``stop`` is set.

        Runs in a daemon thread (returned, already started). PostgreSQL
        listens on a connection of its own and answers within milliseconds;
        SQLite polls :meth:`change_versions` every ``interval`` seconds and
        calls back once per kind whose version moved. An exception raised by
        the callback is not fatal: the listener goes on.
        """
        if not callable(callback):
            raise InputTypeError(f"listen: callback is a {type(callback).__name__}; expected a function "
                                 "callback(kind, version)")
        if not isinstance(stop, threading.Event):
            raise InputTypeError(f"listen: stop is a {type(stop).__name__}; expected a threading.Event")
        _checks.number("listen", "interval", interval, minimum=0, exclusive_minimum=True, hint="seconds")
        thread = threading.Thread(target=self._listen_loop, args=(callback, stop, float(interval)),
                                  name="jngis-changes", daemon=True)
        thread.start()
        return thread

    def _listen_loop(self, callback: Callable[[str, int], None], stop: threading.Event, interval: float) -> None:
        """Poll the change table (SQLite; PostgreSQL overrides with LISTEN)."""
        seen = self.change_versions()
        while not stop.wait(interval):
            try:
                now = self.change_versions()
            except Exception:  # a closed store or a locked file: try again next round
                continue
            for kind, version in now.items():
                if version != seen.get(kind):
                    with contextlib.suppress(Exception):
                        callback(kind, version)
            seen = now


def notification(kind: str, version: int) -> str:
    """The payload of a PostgreSQL notification."""
    return json.dumps({"kind": kind, "version": version})
