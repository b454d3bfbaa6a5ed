"""Client of the footfall dashboard's JSON API and live stream (docs/dashboard.md in the footfall repository).

Every request carries ``Authorization: Bearer <token>`` (the dashboard's token; none for a loopback dashboard
without one). Failures map to three errors the rest of the integration acts on: :class:`FootfallAuthError`
(401/403: reauthenticate), :class:`FootfallConnectionError` (cannot reach it, timeouts, 5xx, not a footfall
dashboard) and :class:`FootfallNotFoundError` (404 for a named object, e.g. an unknown alert id).

The live stream is Server-Sent Events (``GET /api/live``). Its format is small and fixed (the WHATWG
"event stream" grammar: ``event:``/``data:``/``id:`` lines, a blank line ends an event, ``:`` starts a comment),
so it is parsed here rather than adding a package Home Assistant would have to install.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from .const import ACK_BY

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)
#: The dashboard sends a heartbeat comment every 15 s: silence for this long means the stream is dead.
LIVE_READ_TIMEOUT_S = 60.0
PAGE = 1000
#: The first item :meth:`FootfallClient.live` yields, once the dashboard has accepted the stream.
STREAM_OPEN = "stream_open"


class FootfallError(Exception):
    """Base class of the client's errors."""


class FootfallConnectionError(FootfallError):
    """The dashboard cannot be reached, timed out, failed, or is not a footfall dashboard."""


class FootfallAuthError(FootfallError):
    """The dashboard refused the token."""


class FootfallNotFoundError(FootfallError):
    """The dashboard does not know the object asked for."""


@dataclass(frozen=True)
class LiveEvent:
    """One event of the live stream."""

    type: str
    data: dict[str, Any]
    id: str | None = None


def normalize_url(url: str) -> str:
    """``192.168.1.5:8765/`` → ``http://192.168.1.5:8765``; keeps a path (reverse proxies); ValueError if unusable."""
    raw = url.strip()
    if "://" not in raw:
        raw = f"http://{raw}"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"the URL must not carry credentials, a query or a fragment: {url!r}")
    _ = parts.port  # raises ValueError for a bad port
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


class FootfallClient:
    """Talks to one dashboard through Home Assistant's shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str | None) -> None:
        self._session = session
        self.url = normalize_url(url)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                       json_body: Any = None) -> Any:  # fmt: skip
        try:
            async with self._session.request(
                method, f"{self.url}{path}", params=params, json=json_body, headers=self._headers,
                timeout=REQUEST_TIMEOUT, allow_redirects=False,
            ) as resp:  # fmt: skip
                if resp.status in (401, 403):
                    raise FootfallAuthError(f"the dashboard refused the token ({resp.status})")
                if resp.status == 404:
                    raise FootfallNotFoundError(await _error_text(resp))
                if resp.status >= 300:
                    raise FootfallConnectionError(f"{method} {path}: HTTP {resp.status}: {await _error_text(resp)}")
                try:
                    return await resp.json(content_type=None)
                except ValueError as err:
                    raise FootfallConnectionError(f"{method} {path}: not a footfall dashboard (no JSON)") from err
        except (aiohttp.ClientError, TimeoutError) as err:
            raise FootfallConnectionError(f"{method} {self.url}{path}: {err or type(err).__name__}") from err

    async def summary(self) -> dict[str, Any]:
        """``GET /api/summary``: identity, runners with their figures, devices, recent alerts."""
        try:
            doc = await self._request("GET", "/api/summary")
        except FootfallNotFoundError as err:
            raise FootfallConnectionError(f"{self.url}/api/summary: not a footfall dashboard (404)") from err
        if not isinstance(doc, dict) or not isinstance(doc.get("instance"), dict) or "runners" not in doc:
            raise FootfallConnectionError(f"{self.url}/api/summary: not a footfall dashboard summary")
        return doc

    async def runs(self) -> list[dict[str, Any]]:
        """Every run (``GET /api/runs``, all pages), newest first."""
        out: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            page = await self._request("GET", "/api/runs", params={"limit": PAGE, "offset": offset})
            out.extend(page["runs"])
            offset = page["next_offset"]
        return out

    async def windows(self, runner: str, since: float, until: float) -> list[dict[str, Any]]:
        """Every window of ``runner`` starting in [since, until) (``GET /api/windows``, all pages), oldest first."""
        out: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            params = {"runner": runner, "since": repr(since), "until": repr(until), "limit": PAGE, "offset": offset}
            page = await self._request("GET", "/api/windows", params=params)
            out.extend(page["windows"])
            offset = page["next_offset"]
        return out

    async def acknowledge_alert(self, alert_id: str) -> dict[str, Any]:
        """``POST /api/alerts/{id}/ack``; :class:`FootfallNotFoundError` for an unknown id. Idempotent."""
        result = await self._request("POST", f"/api/alerts/{alert_id}/ack", json_body={"by": ACK_BY})
        return result if isinstance(result, dict) else {}

    async def live(self) -> AsyncIterator[LiveEvent]:
        """``STREAM_OPEN``, then the live stream's events until it ends (then :class:`FootfallConnectionError`)."""
        timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_read=LIVE_READ_TIMEOUT_S)
        try:
            async with self._session.get(
                f"{self.url}/api/live", headers={**self._headers, "Accept": "text/event-stream"}, timeout=timeout,
                allow_redirects=False,
            ) as resp:  # fmt: skip
                if resp.status in (401, 403):
                    raise FootfallAuthError(f"the dashboard refused the token ({resp.status})")
                if resp.status != 200 or not resp.content_type.startswith("text/event-stream"):
                    raise FootfallConnectionError(f"GET /api/live: HTTP {resp.status} {resp.content_type}")
                yield LiveEvent(STREAM_OPEN, {})
                parser = EventStreamParser()
                async for raw in resp.content:
                    event = parser.feed_line(raw.decode("utf-8", "replace"))
                    if event is not None:
                        yield event
        except (aiohttp.ClientError, TimeoutError) as err:
            raise FootfallConnectionError(f"live stream: {err or type(err).__name__}") from err
        raise FootfallConnectionError("live stream: the dashboard closed it")


class EventStreamParser:
    """Line-by-line parser of ``text/event-stream``; :meth:`feed_line` returns an event when one is complete."""

    def __init__(self) -> None:
        self._type = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed_line(self, line: str) -> LiveEvent | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # comment / heartbeat
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._type = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return None  # "retry" and unknown fields are ignored, as the grammar says

    def _dispatch(self) -> LiveEvent | None:
        etype, data, self._type, self._data = self._type or "message", self._data, "", []
        if not data:
            return None
        try:
            payload = json.loads("\n".join(data))
        except ValueError:
            return None  # a message that is not JSON is not one of the dashboard's events
        return LiveEvent(etype, payload if isinstance(payload, dict) else {"value": payload}, self._id)


async def _error_text(resp: aiohttp.ClientResponse) -> str:
    try:
        body = await resp.json(content_type=None)
        return str(body.get("error", body))[:200]
    except (ValueError, AttributeError, aiohttp.ClientError):
        return resp.reason or ""
