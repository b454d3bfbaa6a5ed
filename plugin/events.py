"""In-process event hub: ingest and the risk engine publish, the dashboard's live stream subscribes.

Each subscriber has a bounded queue; a slow browser loses its oldest events rather than
slowing ingest down (it reloads the page state on reconnect anyway).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    type: str  # "summary" | "run" | "live" | "alert" | "alert_ack" | "health"
    data: dict[str, Any]
    id: int = field(default=0)


class EventHub:
    def __init__(self, queue_size: int = 256) -> None:
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._queue_size = queue_size
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the loop so threads (paho callbacks) can publish with ``publish_threadsafe``."""
        self._loop = loop

    def publish(self, type_: str, data: dict[str, Any]) -> None:
        """Call from the event loop's thread."""
        event = Event(type_, data, next(self._ids))
        for q in self._subscribers:
            if q.full():
                q.get_nowait()
            q.put_nowait(event)

    def publish_threadsafe(self, type_: str, data: dict[str, Any]) -> None:
        if self._loop is None:
            raise RuntimeError("EventHub.bind(loop) must be called before publishing from threads")
        self._loop.call_soon_threadsafe(self.publish, type_, data)

    async def subscribe(self) -> AsyncIterator[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._subscribers.add(q)
        try:
            while True:
                yield await q.get()
        finally:
            self._subscribers.discard(q)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
