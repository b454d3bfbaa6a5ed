"""Server-Sent Events stream of the event hub (``GET /api/live``).

SSE rather than a websocket: one-way is all the dashboard needs, the browser's ``EventSource``
reconnects by itself, and it passes through HTTP proxies. Each event carries an ``id:`` line (the
hub's event id) and a ``event:`` type; a comment line every ``sse_heartbeat_s`` (15 s by default)
keeps idle connections from being dropped by proxies and lets the server notice a closed browser.

A coach or runner (:mod:`plugin.web.accounts`) gets only the events of the runners they may see: summaries, runs,
alerts and acknowledgements name their runner; live updates and device status name a device, whose latest runner
decides (the device list is re-read every few seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections.abc import AsyncGenerator
from typing import Any, cast

from aiohttp import web

from plugin.events import Event
from plugin.store import Principal
from plugin.web.accounts import principal
from plugin.web.api import CTX_KEY, LIVE_TASKS, _clean, _json_default
from plugin.web.auth import SECURITY_HEADERS

log = logging.getLogger(__name__)

EVENT_TYPES = frozenset({"summary", "run", "live", "alert", "alert_ack", "health"})


def format_event(event: Event) -> bytes:
    """One SSE message; data is a single JSON line (JSON never contains raw newlines)."""
    data = json.dumps(_clean(event.data), default=_json_default, ensure_ascii=False, allow_nan=False)
    etype = event.type if event.type in EVENT_TYPES else "message"
    return f"id: {event.id}\nevent: {etype}\ndata: {data}\n\n".encode()


class EventFilter:
    """Whether one event may go to this stream's principal."""

    def __init__(self, store: Any, who: Principal, refresh_s: float = 5.0) -> None:
        self.store = store
        self.who = who
        self.refresh_s = refresh_s
        self._device_runner: dict[str, str | None] = {}
        self._at = -1e9

    async def __call__(self, event: Event) -> bool:
        if self.who.runners is None:
            return True
        data = event.data
        if "runner" in data:
            return self.who.can_see(data["runner"])
        device = data.get("device_id")
        if not isinstance(device, str):
            return False
        if device not in self._device_runner or time.monotonic() - self._at > self.refresh_s:
            devices = await asyncio.to_thread(self.store.devices)
            self._device_runner = {d["device_id"]: d["last_runner"] for d in devices}
            self._at = time.monotonic()
        return self.who.can_see(self._device_runner.get(device))


async def live(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX_KEY]
    visible = EventFilter(ctx.store, principal(request))
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx: don't buffer the stream
            **SECURITY_HEADERS,
        }
    )
    await resp.prepare(request)
    task = asyncio.current_task()
    if task is not None:
        request.app[LIVE_TASKS].add(task)  # type: ignore[arg-type]
    events = cast(AsyncGenerator[Event, None], ctx.hub.subscribe())
    pending: asyncio.Future[Event] | None = None
    try:
        # Subscribe before the first write so nothing published after the hello is missed.
        pending = asyncio.ensure_future(anext(events))
        await resp.write(b"retry: 3000\n: footfall live stream\n\n")
        while True:
            # asyncio.wait (not wait_for) so a heartbeat timeout never cancels the hub's queue read.
            done, _ = await asyncio.wait({pending}, timeout=ctx.sse_heartbeat_s)
            if not done:
                await resp.write(b": heartbeat\n\n")
                continue
            event = pending.result()
            if await visible(event):
                await resp.write(format_event(event))
            pending = asyncio.ensure_future(anext(events))
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # browser went away or the server is shutting down
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        await events.aclose()
    return resp


async def _close_streams(app: web.Application) -> None:
    """On shutdown end open streams, otherwise the server waits for every browser to hang up."""
    tasks: weakref.WeakSet[asyncio.Task[object]] = app[LIVE_TASKS]
    for task in list(tasks):
        task.cancel()


def setup_live(app: web.Application) -> None:
    app[LIVE_TASKS] = weakref.WeakSet()
    app.router.add_get("/api/live", live)
    app.on_shutdown.append(_close_streams)
