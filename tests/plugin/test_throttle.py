"""The failed-authentication throttle on its own: budget, refill, keys and its memory bound (a fake clock)."""

from __future__ import annotations

from plugin.web.throttle import FailureThrottle, client_key


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_budget_then_one_try_per_refill() -> None:
    clock = Clock()
    th = FailureThrottle(burst=3, rate_per_s=0.5, clock=clock)
    for _ in range(3):
        assert th.retry_after("10.0.0.7") == 0.0
        th.failed("10.0.0.7")
    assert th.retry_after("10.0.0.7") == 2.0  # one token per 2 s
    assert th.retry_after("10.0.0.8") == 0.0  # another client has its own budget
    clock.t += 2.0
    assert th.retry_after("10.0.0.7") == 0.0
    th.failed("10.0.0.7")
    assert th.retry_after("10.0.0.7") > 0 and th.refused == 2 and th.failures == 4
    assert FailureThrottle.header(0.2) == "1" and FailureThrottle.header(5.5) == "6"


def test_keys_and_memory_bound() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_key("::ffff:192.0.2.5") == "192.0.2.5" and client_key(None) == "?"
    th = FailureThrottle(burst=1, max_clients=100, clock=Clock())
    for i in range(1000):
        th.failed(f"10.1.{i // 256}.{i % 256}")
    assert th.clients == 100  # the least recently failed are forgotten
    assert th.retry_after("10.1.3.231") > 0 and th.retry_after("10.1.0.0") == 0.0
