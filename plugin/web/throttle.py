"""Per-client throttle of failed authentication (wrong Bearer tokens, failed logins).

A token bucket per client address: each client may fail :attr:`FailureThrottle.burst` times at once, then
one more time every ``1 / rate_per_s`` seconds. While a client's bucket is empty every token it presents —
right or wrong — is answered 429 with ``Retry-After`` *before* it is compared, so a guesser learns nothing
from requests beyond its budget however many it sends in parallel. Valid session cookies are not throttled
(they are an HMAC of the token, not guessable) and do not count.

Bounded: at most :attr:`FailureThrottle.max_clients` addresses are remembered (least recently failed ones
are forgotten first). IPv6 clients are keyed by their /64 network (one host owns
a whole /64). The key is the TCP peer address: behind a reverse proxy every client shares the proxy's budget
(``X-Forwarded-For`` is not trusted, since any client can send it). See docs/security.md.

Why not a library: ``limits``' async in-memory storage rescans every key on each expiry pass and is bounded
only by time, not by the number of keys; this bucket is O(1) per request and bounded in memory.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable

#: Failures a client may make at once, and how fast it earns another try.
DEFAULT_BURST = 10
DEFAULT_RATE_PER_S = 10 / 60.0
DEFAULT_MAX_CLIENTS = 4096


def client_key(remote: str | None) -> str:
    """The throttle key of a peer address: the address itself, or its /64 network for IPv6."""
    if not remote:
        return "?"
    try:
        addr = ipaddress.ip_address(remote)
    except ValueError:
        return remote[:64]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


class FailureThrottle:
    """Token buckets of failed authentication attempts, keyed by :func:`client_key`."""

    def __init__(
        self,
        *,
        burst: int = DEFAULT_BURST,
        rate_per_s: float = DEFAULT_RATE_PER_S,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or not rate_per_s > 0 or max_clients < 1:
            raise ValueError(f"throttle: burst {burst}, rate {rate_per_s}/s, max_clients {max_clients} must be > 0")
        self.burst = burst
        self.rate_per_s = rate_per_s
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, at)
        self.refused = 0  # attempts answered 429
        self.failures = 0  # failures counted

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) * self.rate_per_s)

    def retry_after(self, remote: str | None) -> float:
        """0 if ``remote`` may try a token now, else the seconds until it may (and the refusal is counted)."""
        key = client_key(remote)
        if key not in self._buckets:
            return 0.0
        tokens = self._tokens(key, self._clock())
        if tokens >= 1.0:
            return 0.0
        self.refused += 1
        return (1.0 - tokens) / self.rate_per_s

    def failed(self, remote: str | None) -> None:
        """Count one failed attempt of ``remote``."""
        key = client_key(remote)
        now = self._clock()
        tokens = max(0.0, self._tokens(key, now) - 1.0)
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        self.failures += 1
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)

    @property
    def clients(self) -> int:
        """Addresses currently remembered (for /api/health)."""
        return len(self._buckets)

    @staticmethod
    def header(seconds: float) -> str:
        """``Retry-After`` value: whole seconds, at least 1."""
        return str(max(1, math.ceil(seconds)))
