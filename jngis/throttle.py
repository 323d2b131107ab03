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

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from jngis import _checks
from jngis.errors import InputTypeError

__all__ = ["FailureThrottle"]


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
