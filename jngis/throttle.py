"""Slow down repeated failed authentication from one client (what the server answers with 429 + Retry-After).

A client (an address) may fail ``max_failures`` times within ``window``
seconds; after that every attempt is refused for a delay that doubles with each
further failure (``base_delay``, ``2 * base_delay``, ... up to ``max_delay``),
whether its token would be good or not, so guessing tokens costs time and a
good token tells nothing through the answer. A success clears the client.

Examples
--------
>>> throttle = FailureThrottle(max_failures=2, window=60, base_delay=10, clock=lambda: 0.0)
>>> throttle.check("10.0.0.1") is None
True
>>> throttle.failed("10.0.0.1"); throttle.failed("10.0.0.1")
>>> throttle.check("10.0.0.1")
10.0
>>> throttle.succeeded("10.0.0.1"); throttle.check("10.0.0.1") is None
True
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from jngis import _checks
from jngis.errors import AuthenticationError, InputTypeError, ParameterError

__all__ = ["FailureThrottle", "FailureLog", "FailedSignIns", "CREDENTIALS", "FAILURES", "refusal"]


@dataclass
class _Client:
    failures: deque = field(default_factory=deque)  # times of the failures within the window
    blocked_until: float = 0.0
    strikes: int = 0  # failures past the allowance: the delay doubles with each


class FailureThrottle:
    """Failed authentications counted per client, thread-safe, bounded in memory.

    Parameters
    ----------
    max_failures : int
        Failures allowed within ``window`` before the client is slowed down.
    window : float
        Seconds over which failures are counted.
    base_delay : float
        Seconds the first refusal lasts; each further failure doubles it.
    max_delay : float
        The longest delay.
    max_clients : int
        Clients remembered (the least recently seen are forgotten first).
    clock : callable
        Seconds, monotonic (tests pass their own).
    """

    def __init__(self, max_failures: int = 5, window: float = 60.0, base_delay: float = 1.0, *,
                 max_delay: float = 300.0, max_clients: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = _checks.integer("FailureThrottle", "max_failures", max_failures, minimum=1)
        self.window = float(_checks.number("FailureThrottle", "window", window, minimum=0,
                                           exclusive_minimum=True, hint="seconds"))
        self.base_delay = float(_checks.number("FailureThrottle", "base_delay", base_delay, minimum=0,
                                               exclusive_minimum=True, hint="seconds"))
        self.max_delay = float(_checks.number("FailureThrottle", "max_delay", max_delay, minimum=self.base_delay,
                                              hint="seconds"))
        self.max_clients = _checks.integer("FailureThrottle", "max_clients", max_clients, minimum=1)
        if not callable(clock):
            raise InputTypeError(f"FailureThrottle: clock is a {type(clock).__name__}; expected a function")
        self._clock = clock
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, client: str) -> float | None:
        """Seconds ``client`` must wait before its next attempt (None: it may try now)."""
        now = self._clock()
        with self._lock:
            state = self._clients.get(_key(client))
            if state is None or state.blocked_until <= now:
                return None
            return round(state.blocked_until - now, 3)

    def failed(self, client: str) -> None:
        """Count one failed authentication of ``client``."""
        now = self._clock()
        with self._lock:
            key = _key(client)
            state = self._clients.pop(key, None) or _Client()
            self._clients[key] = state  # now the most recently seen
            while state.failures and state.failures[0] <= now - self.window:
                state.failures.popleft()
            state.failures.append(now)
            if len(state.failures) >= self.max_failures:
                state.blocked_until = now + min(self.base_delay * 2 ** state.strikes, self.max_delay)
                state.strikes += 1
            elif state.blocked_until <= now - self.window:  # quiet for a window: start afresh
                state.strikes = 0
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """Forget ``client``'s failures (a good token was presented while it was allowed to try)."""
        with self._lock:
            self._clients.pop(_key(client), None)


def _key(client: object) -> str:
    if not isinstance(client, str):
        raise InputTypeError(f"client is a {type(client).__name__}; expected the client's address as text")
    return client


# -- failed sign-ins in the access log ----------------------------------------------------------

#: The kinds of credential a failed sign-in presented (what the access log's ``target`` says).
CREDENTIALS = ("user token", "jwt", "bootstrap", "other")
#: Why a sign-in failed, as a class (the access log's ``reason``); never the secret itself.
FAILURES = ("unknown id", "wrong secret", "expired", "disabled", "bad signature", "wrong issuer",
            "wrong audience", "wrong nonce", "unknown key", "algorithm", "claims", "malformed")


def refusal(message: str, failure: str, reason: str | None = None) -> AuthenticationError:
    """The :class:`AuthenticationError` of a failed sign-in: one ``message`` for all, its class in ``failure``.

    ``failure`` (one of :data:`FAILURES`) goes to the access log; ``reason`` (the
    longer why, default the class) to the server's own log. Neither is ever in
    an answer.
    """
    if failure not in FAILURES:
        raise ParameterError(f"refusal: failure={failure!r}; expected one of {list(FAILURES)}")
    error = AuthenticationError(message)
    error.failure = failure  # type: ignore[attr-defined]
    error.reason = reason or failure  # type: ignore[attr-defined]
    return error


@dataclass
class _Minute:
    start: float
    started_at: dt.datetime
    last_at: dt.datetime
    counts: Counter = field(default_factory=Counter)  # (credential, failure) -> failures after the first


@dataclass(frozen=True)
class FailedSignIns:
    """One row of the access log for failed sign-ins: ``count`` of them from ``client`` by one kind and class."""

    client: str
    credential: str
    failure: str
    count: int
    first: dt.datetime
    last: dt.datetime

    @property
    def detail(self) -> str:
        return f"count={self.count} from {self.first:%Y-%m-%dT%H:%M:%S} to {self.last:%Y-%m-%dT%H:%M:%S}"


class FailureLog:
    """Failed sign-ins folded into few access-log rows: at most one at once and one per kind a minute.

    A client's first failure in a ``window`` (60 s) is a row at once (count 1),
    so a single failed attempt is in the log straight away. Its further failures
    in that window are counted per (credential, failure class) and come out as
    one row each with the count when the window has passed (:meth:`due`, asked
    at every sign-in) or when the server stops (:meth:`flush`). A flood from one
    client is a handful of rows a minute; from more than ``max_clients``
    addresses in one window the newcomers are counted under the client
    ``"(other clients)"``.

    Thread-safe; the rows are written by the caller (the server, with
    :meth:`jngis.store.Store.log_failed_sign_ins`).

    Examples
    --------
    >>> clock = [0.0]
    >>> log = FailureLog(window=60, clock=lambda: clock[0])
    >>> [row.count for row in log.failed("10.0.0.1", "user token", "wrong secret")]
    [1]
    >>> log.failed("10.0.0.1", "user token", "wrong secret") + log.failed("10.0.0.1", "jwt", "expired")
    []
    >>> clock[0] = 61.0
    >>> sorted((row.credential, row.count) for row in log.due())
    [('jwt', 1), ('user token', 1)]
    """

    OTHERS = "(other clients)"

    def __init__(self, window: float = 60.0, *, max_clients: int = 1_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = float(_checks.number("FailureLog", "window", window, minimum=0, exclusive_minimum=True,
                                           hint="seconds"))
        self.max_clients = _checks.integer("FailureLog", "max_clients", max_clients, minimum=1)
        if not callable(clock):
            raise InputTypeError(f"FailureLog: clock is a {type(clock).__name__}; expected a function")
        self._clock = clock
        self._minutes: dict[str, _Minute] = {}
        self._lock = threading.Lock()

    def failed(self, client: str, credential: str, failure: str) -> list[FailedSignIns]:
        """Count one failure; the rows to write now (the client's first of its window, and any due)."""
        if credential not in CREDENTIALS:
            raise ParameterError(f"FailureLog.failed: credential={credential!r}; expected one of {list(CREDENTIALS)}")
        if failure not in FAILURES:
            raise ParameterError(f"FailureLog.failed: failure={failure!r}; expected one of {list(FAILURES)}")
        key = _key(client)
        now, at = self._clock(), _now_cst()
        with self._lock:
            rows = self._due(now)
            minute = self._minutes.get(key)
            if minute is None and len(self._minutes) >= self.max_clients:
                key = self.OTHERS
                minute = self._minutes.get(key)
            if minute is None:
                self._minutes[key] = _Minute(now, at, at)
                rows.append(FailedSignIns(key, credential, failure, 1, at, at))
            else:
                minute.counts[(credential, failure)] += 1
                minute.last_at = at
        return rows

    def due(self) -> list[FailedSignIns]:
        """The rows of the windows that have passed (and forgets them)."""
        with self._lock:
            return self._due(self._clock())

    def flush(self) -> list[FailedSignIns]:
        """Every counted row, due or not (when the server stops)."""
        with self._lock:
            return self._due(float("inf"))

    def _due(self, now: float) -> list[FailedSignIns]:
        rows = []
        for client in [c for c, m in self._minutes.items() if now - m.start >= self.window]:
            minute = self._minutes.pop(client)
            rows += [FailedSignIns(client, credential, failure, count, minute.started_at, minute.last_at)
                     for (credential, failure), count in sorted(minute.counts.items())]
        return rows


def _now_cst() -> dt.datetime:
    from jngis.workorders import now_cst

    return now_cst()
