"""Behind a reverse proxy: believe ``X-Forwarded-Proto``/``-Host``/``-For`` from the proxies named in the config,
and only from them (docs/club.md "Reverse proxy").

A TLS-terminating proxy talks plain HTTP to the workers: without this the same-origin check (CSRF defence, see
:mod:`plugin.web.auth`) would compare the browser's ``https://club.example`` with ``http://worker:8765`` and refuse
every cookie-authenticated change, secure cookies would not be marked ``Secure``, and the log would name the proxy
instead of the client. Headers from any other peer are ignored: a client cannot claim to be someone else.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_HOST_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:]{1,255}$")


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.5", "172.31.240.0/24"]`` → networks; ValueError names a bad entry."""
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(v.strip(), strict=False))
        except ValueError:
            raise ValueError(f"trusted proxy {v[:64]!r} is not an IP address or network") from None
    return tuple(out)


def _trusted(addr: str | None, networks: tuple[Network, ...]) -> bool:
    if not addr:
        return False
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in n for n in networks)


def _is_ip(addr: str) -> bool:
    try:
        ipaddress.ip_address(addr)
    except ValueError:
        return False
    return True


def forwarded_middleware(networks: tuple[Network, ...]) -> Middleware:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if networks and _trusted(request.remote, networks):
            changes: dict[str, str] = {}
            proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
            if proto in ("http", "https"):
                changes["scheme"] = proto
            host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
            if host and _HOST_RE.match(host):
                changes["host"] = host
            # The client is the right-most address not added by one of our proxies.
            chain = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
            for addr in reversed(chain):
                if not _trusted(addr, networks):
                    if _is_ip(addr):
                        changes["remote"] = addr
                    break
            if changes:
                request = request.clone(**changes)  # type: ignore[arg-type]
        return await handler(request)

    return middleware
