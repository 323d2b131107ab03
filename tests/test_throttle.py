"""jngis.throttle: failed authentication slowed down per client, thread-safe."""

from __future__ import annotations

import threading

import pytest

from jngis.errors import InputTypeError, ParameterError
from jngis.throttle import FailureThrottle


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_five_failures_then_doubling_delays_and_a_success_clears():
    clock = Clock()
    throttle = FailureThrottle(max_failures=5, window=60, base_delay=2, max_delay=10, clock=clock)
    for _ in range(4):
        throttle.failed("10.0.0.1")
        assert throttle.check("10.0.0.1") is None
    throttle.failed("10.0.0.1")
    assert throttle.check("10.0.0.1") == 2.0
    assert throttle.check("10.0.0.2") is None  # another client is not slowed down
    clock.now += 2
    assert throttle.check("10.0.0.1") is None
    delays = []
    for _ in range(4):
        throttle.failed("10.0.0.1")
        delays.append(throttle.check("10.0.0.1"))
        clock.now += delays[-1]
    assert delays == [4.0, 8.0, 10.0, 10.0]  # doubling, capped
    throttle.succeeded("10.0.0.1")
    throttle.failed("10.0.0.1")
    assert throttle.check("10.0.0.1") is None


def test_failures_older_than_the_window_do_not_count():
    clock = Clock()
    throttle = FailureThrottle(max_failures=3, window=10, base_delay=1, clock=clock)
    for _ in range(10):
        throttle.failed("c")
        clock.now += 6  # never 3 within 10 s
        assert throttle.check("c") is None


def test_threads_count_every_failure():
    throttle = FailureThrottle(max_failures=400, window=600, base_delay=5)
    threads = [threading.Thread(target=lambda: [throttle.failed("c") for _ in range(100)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert throttle.check("c") is not None and 4.9 < throttle.check("c") <= 5.0


def test_memory_is_bounded():
    throttle = FailureThrottle(max_failures=1, base_delay=5, max_clients=10)
    for i in range(100):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle._clients) == 10 and throttle.check("10.0.0.99") is not None


@pytest.mark.parametrize("kwargs, error, match", [
    ({"max_failures": 0}, ParameterError, "max_failures"), ({"window": 0}, ParameterError, "window"),
    ({"base_delay": -1}, ParameterError, "base_delay"), ({"clock": 5}, InputTypeError, "clock"),
])
def test_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        FailureThrottle(**kwargs)


def test_client_must_be_text():
    with pytest.raises(InputTypeError, match="client is a NoneType"):
        FailureThrottle().failed(None)


# -- failed sign-ins folded into access-log rows (jngis.throttle.FailureLog) ------------------------

def test_the_failure_log_folds_a_flood_into_few_rows():
    from jngis.throttle import FailureLog

    clock = [0.0]
    log = FailureLog(window=60, max_clients=3, clock=lambda: clock[0])
    at_once = [row for i in range(1000) for row in log.failed("10.0.0.1", "user token",
                                                              "unknown id" if i % 2 else "wrong secret")]
    assert [(r.client, r.failure, r.count) for r in at_once] == [("10.0.0.1", "wrong secret", 1)]
    assert log.due() == []
    clock[0] = 59.9
    assert log.due() == []
    clock[0] = 60.0
    summary = log.due()
    assert sorted((r.failure, r.count) for r in summary) == [("unknown id", 500), ("wrong secret", 499)]
    assert summary[0].detail.startswith("count=") and log.due() == []
    # many addresses in one window: past max_clients they share one row
    rows = [row for i in range(50) for row in log.failed(f"10.1.0.{i}", "jwt", "expired")]
    assert [r.client for r in rows] == ["10.1.0.0", "10.1.0.1", "10.1.0.2", FailureLog.OTHERS]
    assert sum(r.count for r in log.flush()) == 50 - 4 and log.flush() == []


def test_the_failure_log_takes_known_classes_only():
    from jngis.throttle import FailureLog, refusal

    with pytest.raises(ParameterError, match="credential"):
        FailureLog().failed("c", "password", "wrong secret")
    with pytest.raises(ParameterError, match="failure"):
        FailureLog().failed("c", "jwt", "the secret was hunter2")
    with pytest.raises(ParameterError, match="failure"):
        refusal("no", "because")
    error = refusal("the token is not valid", "expired")
    assert (str(error), error.failure) == ("the token is not valid", "expired")
