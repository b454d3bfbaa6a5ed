"""Polling helpers for tests that wait on real brokers, processes and databases (deadlines, never speed asserts)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(pred: Callable[[], object], timeout: float = 5.0) -> bool:
    """Await until ``pred()`` is truthy or ``timeout`` passes; returns the last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(0.02)
    return bool(pred())


def wait_until(pred: Callable[[], object], timeout: float = 20.0, interval: float = 0.05) -> bool:
    """The blocking twin of :func:`until`, for code outside an event loop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())
