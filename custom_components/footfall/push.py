"""Keeps the dashboard's live stream (``GET /api/live``) open and feeds its events to the coordinator.

Runs as the config entry's background task, so unloading the entry cancels it. When the stream drops it
reconnects after 1, 2, 4 … 60 s (with jitter, so several Home Assistants do not reconnect in step); every
(re)connect triggers a refresh that catches up with whatever happened meanwhile. A refused token stops
the stream and lets the coordinator's next refresh start the reauth flow.
"""

from __future__ import annotations

import asyncio
import random

from .api import STREAM_OPEN, FootfallAuthError, FootfallConnectionError
from .const import LOGGER
from .coordinator import FootfallCoordinator

BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 60.0


async def run_live_stream(coordinator: FootfallCoordinator) -> None:
    backoff = BACKOFF_MIN_S
    logged_down = False
    while True:
        try:
            async for event in coordinator.client.live():
                if event.type != STREAM_OPEN:
                    coordinator.async_push(event)
                    continue
                coordinator.async_set_push_connected(True)
                backoff = BACKOFF_MIN_S
                if logged_down:
                    LOGGER.info("Live stream of %s is back", coordinator.client.url)
                    logged_down = False
        except FootfallAuthError:
            coordinator.async_set_push_connected(False)
            await coordinator.async_request_refresh()  # raises the reauth flow and the repair issue
            return
        except FootfallConnectionError as err:
            if not logged_down:
                LOGGER.info("Live stream of %s interrupted (%s); polling until it is back", coordinator.client.url,
                            err)  # fmt: skip
                logged_down = True
        coordinator.async_set_push_connected(False)
        await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
        backoff = min(BACKOFF_MAX_S, backoff * 2)
