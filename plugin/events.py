"""Event hub: ingest and the risk engine publish, the dashboard's live streams subscribe.

Each subscriber has a bounded queue; a slow browser loses its oldest events rather than
slowing ingest down (it reloads the page state on reconnect anyway).

With several dashboard workers on one PostgreSQL database, a summary, run or alert is handled by ONE worker
while browsers are connected to all of them: events of :data:`SHARED_TYPES` then go out through a broadcast
(``pg_notify``) and every worker — the sender too — delivers them to its own subscribers. Live updates and device
status reach every worker over MQTT anyway and stay local.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    type: str  # "summary" | "run" | "live" | "alert" | "alert_ack" | "health"
    data: dict[str, Any]
    id: int = field(default=0)


#: Events that happen in one worker but concern the browsers of every worker.
SHARED_TYPES = frozenset({"summary", "run", "alert", "alert_ack"})
#: A new subscriber first gets each device's latest live update when it is at most this old, so a page opened
#: during a run shows the run at once instead of "waiting" until the next update (live events are ~1 Hz).
LIVE_REPLAY_S = 30.0


class EventHub:
    def __init__(self, queue_size: int = 256) -> None:
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._queue_size = queue_size
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broadcast: Callable[[str, dict[str, Any]], None] | None = None
        self._latest_live: dict[str, tuple[float, Event]] = {}  # device_id → (monotonic time, event)

    def set_broadcast(self, send: Callable[[str, dict[str, Any]], None] | None) -> None:
        """Send :data:`SHARED_TYPES` events through ``send`` (to every worker) instead of delivering them here;
        what comes back is handed to :meth:`deliver_threadsafe`."""
        self._broadcast = send

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the loop so threads (paho callbacks) can publish with ``publish_threadsafe``."""
        self._loop = loop

    def publish(self, type_: str, data: dict[str, Any]) -> None:
        """Call from the event loop's thread."""
        if self._broadcast is not None and type_ in SHARED_TYPES:
            self._broadcast(type_, data)
            return
        self._deliver(type_, data)

    def _deliver(self, type_: str, data: dict[str, Any]) -> None:
        event = Event(type_, data, next(self._ids))
        if type_ == "live" and isinstance(data.get("device_id"), str):
            self._latest_live[data["device_id"]] = (time.monotonic(), event)
        for q in self._subscribers:
            if q.full():
                q.get_nowait()
            q.put_nowait(event)

    def publish_threadsafe(self, type_: str, data: dict[str, Any]) -> None:
        if self._broadcast is not None and type_ in SHARED_TYPES:
            self._broadcast(type_, data)
            return
        self.deliver_threadsafe(type_, data)

    def deliver_threadsafe(self, type_: str, data: dict[str, Any]) -> None:
        """Hand an event to this process's subscribers from any thread."""
        if self._loop is None:
            raise RuntimeError("EventHub.bind(loop) must be called before publishing from threads")
        self._loop.call_soon_threadsafe(self._deliver, type_, data)

    async def subscribe(self) -> AsyncIterator[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        now = time.monotonic()
        for at, event in sorted(self._latest_live.values(), key=lambda x: x[0]):
            if now - at <= LIVE_REPLAY_S and not q.full():
                q.put_nowait(event)
        self._subscribers.add(q)
        try:
            while True:
                yield await q.get()
        finally:
            self._subscribers.discard(q)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
