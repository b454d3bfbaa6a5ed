"""Access control for the dashboard: bearer token or login cookie, same-origin writes, security headers.

Rules (docs/design.md §6 "secure by default"):

* Bound to a loopback address with no token configured, the dashboard is open — but only to requests
  whose ``Host`` is a loopback name, so a web page elsewhere cannot reach it through DNS rebinding.
* Any other listen address needs a token; :func:`require_token_if_exposed` makes ``create_app`` refuse
  to build without one.
* The token arrives as ``Authorization: Bearer <token>`` (scripts, Home Assistant) or through the login
  page, which sets an ``HttpOnly; SameSite=Strict`` cookie holding an HMAC of the token (the token
  itself never sits in the browser). Both are compared in constant time (``hmac.compare_digest``).
* Failed authentication (wrong Bearer token, failed login) is throttled per client address
  (:mod:`plugin.web.throttle`): beyond the budget every attempt is a 429 before any comparison.
* Malformed credentials (a cookie or token that is not ASCII/UTF-8) are simply wrong: 401, never a 500.
* State-changing requests authenticated by cookie (or by nothing, on loopback) must come from this
  origin (``Origin``, else ``Referer``) — the classic CSRF defence (OWASP CSRF cheat sheet,
  "Verifying origin with standard headers"). Bearer requests cannot be forged cross-site.
* With accounts (users in the database, :mod:`plugin.web.accounts`) a per-user token or a user's login cookie is
  accepted too, and every request carries its :class:`~plugin.store.Principal` for the role filters; an
  open loopback dashboard then asks for a login as well.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from edge_agent.common.config import ConfigError, is_loopback
from plugin.config import MIN_TOKEN_LENGTH
from plugin.store import Principal
from plugin.store.accounts import HOME_ADMIN
from plugin.web.accounts import PRINCIPAL_KEY, USER_COOKIE, AccountsGate
from plugin.web.throttle import FailureThrottle

log = logging.getLogger(__name__)

COOKIE_NAME = "footfall_session"
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PUBLIC_PREFIXES = ("/static/",)
_PUBLIC_PATHS = frozenset({"/login", "/favicon.ico"})
#: A redirect target after login: one absolute path on this origin, printable ASCII only (no tab, newline or
#: backslash, which browsers drop or read as "/" — ``/\t/evil`` would become ``//evil``), not ``//``.
_SAFE_PATH = re.compile(r"/(?![/\\])[!-\[\]-~]*")

#: Content-Security-Policy: scripts only from our own files (no inline script, no eval), nothing
#: framed or framing. Plotly sets element styles at run time, so styles allow 'unsafe-inline'
#: (style injection cannot run script).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

AUTH_KEY = web.RequestKey("footfall_auth", str)  # how this request was authenticated
THROTTLE_KEY: web.AppKey[FailureThrottle] = web.AppKey("footfall_auth_throttle", FailureThrottle)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def require_token_if_exposed(listen_host: str, token: str | None) -> None:
    """Raise :class:`ConfigError` when the listen address is reachable from other machines without a token."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"dashboard token is too short ({len(token)} chars, need ≥ {MIN_TOKEN_LENGTH})")
    if not is_loopback(listen_host) and not token:
        raise ConfigError(
            f"dashboard listen host {listen_host!r} is not loopback: set a token "
            "(FOOTFALL_DASHBOARD_TOKEN or 'token:' in the config) or listen on 127.0.0.1"
        )


def session_value(token: str) -> str:
    """Cookie value derived from the token, so the raw token is never stored in the browser."""
    return hmac.new(token.encode(), b"footfall-dashboard-session-v1", hashlib.sha256).hexdigest()


def _bytes(text: str) -> bytes:
    """Header text as bytes for a constant-time comparison; undecodable bytes (aiohttp keeps them as
    surrogates) compare as the bytes they were, never as an exception."""
    return text.encode("utf-8", "surrogateescape")


def token_matches(given: str, token: str) -> bool:
    return hmac.compare_digest(_bytes(given), _bytes(token))


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[: host_header.find("]") + 1]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def same_origin(request: web.Request) -> bool:
    """The request's ``Origin`` (or, lacking it, ``Referer``) names this very host and scheme."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        return False
    parts = urlsplit(source)
    return parts.scheme == request.scheme and parts.netloc.lower() == request.host.lower()


def safe_next(target: str | None) -> str:
    """Only redirect to a path on this origin after login (no open redirect to ``//evil``, ``https://…`` or
    ``/\t/evil``, which a browser normalises to ``//evil``); anything else → ``/``."""
    if not target or not _SAFE_PATH.fullmatch(target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def _deny(request: web.Request, status: int, message: str) -> web.StreamResponse:
    if _is_api(request) or request.method != "GET":
        resp = web.json_response({"error": message}, status=status)
        if status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="footfall"'
        return resp
    if status == 401:
        raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='/')}" if request.path != "/" else "/login")
    return web.Response(status=status, text=message)


def throttled(request: web.Request, throttle: FailureThrottle) -> web.Response | None:
    """A 429 answer if this client used up its failed-authentication budget, else None."""
    wait = throttle.retry_after(request.remote)
    if not wait:
        return None
    retry = FailureThrottle.header(wait)
    message = f"too many failed authentication attempts from this address: retry in {retry} s"
    if _is_api(request) or request.method != "GET":
        resp: web.Response = web.json_response({"error": message}, status=429)
    else:
        resp = web.Response(status=429, text=message)
    resp.headers["Retry-After"] = retry
    return resp


def loopback_host(host_header: str) -> bool:
    """The ``Host`` names a loopback address (``localhost``, 127.0.0.0/8, ``[::1]``): never a DNS name a web
    page elsewhere could rebind."""
    return is_loopback(_host_name(host_header))


def auth_middleware(token: str | None, throttle: FailureThrottle, gate: AccountsGate | None = None) -> Middleware:
    """Authenticate every request except static files and the login page."""
    cookie_ok = session_value(token) if token else None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[AUTH_KEY] = "none"
        request[PRINCIPAL_KEY] = HOME_ADMIN
        users = gate is not None and await gate.enabled()
        if token is None and not users:
            # Open on loopback only: refuse foreign Host names (DNS rebinding).
            if not loopback_host(request.host):
                return _deny(request, 403, "this dashboard only answers to localhost (configure a token)")
            request[AUTH_KEY] = "loopback"
        elif request.path not in _PUBLIC_PATHS and not request.path.startswith(_PUBLIC_PREFIXES):
            bearer = _bearer(request)
            cookie = request.cookies.get(COOKIE_NAME)
            if bearer is not None and (refused := throttled(request, throttle)) is not None:
                return refused
            if token is not None and bearer is not None and token_matches(bearer, token):
                request[AUTH_KEY] = "bearer"
            elif users and gate is not None and (found := await _user(request, gate, bearer)) is not None:
                request[PRINCIPAL_KEY] = found[0]
                request[AUTH_KEY] = found[1]
            else:
                if bearer is not None:  # a wrong token is a guess, whatever else the request carries
                    throttle.failed(request.remote)
                    log.warning("wrong Bearer token from %s", request.remote)  # never the token itself
                if cookie is None or cookie_ok is None or not hmac.compare_digest(_bytes(cookie), cookie_ok.encode()):
                    return _deny(request, 401, "authentication required")
                request[AUTH_KEY] = "cookie"
        if (
            request.method in _UNSAFE_METHODS
            and request[AUTH_KEY] not in ("bearer", "user-bearer")
            and not same_origin(request)
        ):
            return _deny(request, 403, "cross-origin request refused (Origin must match this dashboard)")
        return await handler(request)

    return middleware


async def _user(request: web.Request, gate: AccountsGate, bearer: str | None) -> tuple[Principal, str] | None:
    """The user named by a per-user bearer token or a login session cookie."""
    if bearer is not None:
        p = await gate.for_token(bearer)
        return None if p is None else (p, "user-bearer")
    session = request.cookies.get(USER_COOKIE)
    if session:
        p = await gate.for_session(session)
        return None if p is None else (p, "user-cookie")
    return None


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Add CSP and friends to every response, including errors raised as HTTP exceptions."""
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        for k, v in SECURITY_HEADERS.items():
            exc.headers.setdefault(k, v)
        raise
    if not resp.prepared:
        for k, v in SECURITY_HEADERS.items():
            resp.headers.setdefault(k, v)
        if _is_api(request):
            resp.headers.setdefault("Cache-Control", "no-store")
    return resp
