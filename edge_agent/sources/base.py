"""The one small interface every insole source implements, and the plumbing they share.

A source is an async context manager (open/close the hardware) and yields :class:`FrameBatch`
objects — ~50–100 ms of frames of ONE foot — from :meth:`InsoleSource.batches`. Times ``t`` are
seconds on the agent's monotonic clock (``time.monotonic()``), so the pipeline can map them to Unix
time once. Hardware libraries are imported only by the source that needs them (:func:`require`).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import importlib
import logging
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edge_agent.profiles import HardwareProfile

log = logging.getLogger(__name__)

Side = Literal["left", "right"]


def both_sides() -> list[Side]:
    return ["left", "right"]


class SourceError(RuntimeError):
    """A source cannot start or continue; the message says which source and why."""


class MissingExtraError(SourceError, ImportError):
    """A hardware source needs an optional dependency that is not installed."""


def require(module: str, extra: str, source: str) -> ModuleType:
    """Import a hardware library, or fail naming the pip extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"the {source!r} source needs the Python module {module!r}, which is not installed: "
            f"pip install 'footfall[{extra}]'"
        ) from err


@dataclass(slots=True)
class FrameBatch:
    """Frames of one foot: ``t`` float64 (n,) agent-clock seconds, ``raw`` float32 (n, S) C-contiguous.

    ``device_t`` is the device's own timestamp when the transport carries one; ``dropped`` and
    ``corrupt`` count frames lost or rejected since the previous batch of this foot.
    """

    side: Side
    t: np.ndarray
    raw: np.ndarray
    device_t: np.ndarray | None = None
    dropped: int = 0
    corrupt: int = 0

    def __post_init__(self) -> None:
        self.t = np.ascontiguousarray(self.t, dtype=np.float64).reshape(-1)
        self.raw = np.ascontiguousarray(self.raw, dtype=np.float32)
        if self.raw.ndim != 2 or self.raw.shape[0] != self.t.shape[0]:
            raise ValueError(f"FrameBatch({self.side}): {self.t.shape[0]} times but raw has shape {self.raw.shape}")
        if self.device_t is not None:
            self.device_t = np.ascontiguousarray(self.device_t, dtype=np.float64).reshape(-1)

    def __len__(self) -> int:
        return int(self.t.shape[0])


class SourceConfigBase(BaseModel):
    """Frigate-style strict config: unknown keys are errors, every field titled."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    batch_ms: float = Field(
        50.0,
        ge=5.0,
        le=1000.0,
        title="Batch length (ms)",
        description="Frames are handed to the pipeline in batches of about this length (never one by one).",
    )


class InsoleSource(abc.ABC):
    """Async context manager + async iterator of :class:`FrameBatch`. ``close()`` is idempotent."""

    name: ClassVar[str] = "source"

    def __init__(self, profile: HardwareProfile) -> None:
        self.profile = profile
        self._stats: dict[str, int] = {"frames": 0, "corrupt": 0, "dropped": 0, "reconnects": 0, "late": 0}
        self._opened = False
        self._closed = False

    async def __aenter__(self) -> InsoleSource:
        if self._closed:
            raise SourceError(f"{self.name} source: already closed, create a new one")
        if not self._opened:
            try:
                await self.open()
            except BaseException:
                await self.close()  # release what was opened before the failure (e.g. the first port)
                raise
            self._opened = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Open the hardware (default: nothing to open)."""

    async def close(self) -> None:
        """Release the hardware; safe to call more than once."""
        self._closed = True

    @abc.abstractmethod
    def batches(self) -> AsyncIterator[FrameBatch]:
        """Batches of frames (one foot each) until the source ends or is closed."""

    @property
    def stats(self) -> dict[str, int]:
        """Counters since open: frames, corrupt, dropped, reconnects, late (a copy)."""
        return dict(self._stats)

    def _count(self, batch: FrameBatch) -> FrameBatch:
        self._stats["frames"] += len(batch)
        self._stats["dropped"] += batch.dropped
        self._stats["corrupt"] += batch.corrupt
        return batch


class Pacer:
    """Releases data recorded at time ``sim_t`` no earlier than ``start + sim_t / speed`` (loop clock).

    ``speed = 0`` means as fast as possible (still yielding to the loop between batches).
    """

    def __init__(self, speed: float) -> None:
        if speed < 0:
            raise ValueError(f"speed must be ≥ 0 (0 = as fast as possible), got {speed}")
        self.speed = speed
        self._start: float | None = None

    @property
    def start(self) -> float | None:
        """Loop-clock (monotonic) time of ``sim_t = 0``, from the first :meth:`wait_until` on."""
        return self._start

    async def wait_until(self, sim_t: float) -> None:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        if self.speed == 0:
            await asyncio.sleep(0)
            return
        delay = self._start + sim_t / self.speed - loop.time()
        await asyncio.sleep(max(delay, 0.0))


class QueueSource(InsoleSource):
    """For sources fed by callbacks or threads: a bounded queue between producer and the pipeline.

    The producer never blocks; when the consumer falls behind, the batch is dropped and counted
    (``dropped``), as the pipeline's backpressure rule says.
    """

    def __init__(self, profile: HardwareProfile, max_batches: int = 256) -> None:
        super().__init__(profile)
        self._queue: asyncio.Queue[FrameBatch | None] = asyncio.Queue(maxsize=max_batches)
        self._tasks: list[asyncio.Task[Any]] = []

    def _emit(self, batch: FrameBatch) -> None:
        """Queue a batch (call on the loop thread)."""
        if len(batch) == 0 and not batch.dropped and not batch.corrupt:
            return
        try:
            self._queue.put_nowait(batch)
        except asyncio.QueueFull:
            self._stats["dropped"] += len(batch) + batch.dropped
            self._stats["corrupt"] += batch.corrupt
            log.warning("%s source: consumer too slow, dropped %d frames", self.name, len(batch))

    def _finish(self) -> None:
        """Tell the consumer the stream has ended."""
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    async def batches(self) -> AsyncIterator[FrameBatch]:
        while True:
            if self._closed and self._queue.empty():
                return
            item = await self._queue.get()
            if item is None:
                return
            yield self._count(item)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._finish()


def backoff_delays(base_s: float = 0.5, cap_s: float = 30.0, rng: random.Random | None = None) -> Iterator[float]:
    """Jittered exponential backoff ("full jitter" halved: uniform in [d/2, d], d = min(cap, base·2^k))."""
    rng = rng or random.Random()
    k = 0
    while True:
        d = min(cap_s, base_s * (2.0**k))
        yield rng.uniform(0.5 * d, d)
        k = min(k + 1, 30)


class OnceLogger:
    """Log once when a device is lost and once when it is back (Home Assistant's rule)."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.log = logger
        self.what = what
        self.available = True

    def lost(self, reason: str) -> None:
        if self.available:
            self.available = False
            self.log.warning("%s unavailable: %s", self.what, reason)

    def back(self) -> None:
        if not self.available:
            self.available = True
            self.log.info("%s is back", self.what)


def monotonic() -> float:
    """The agent clock every source's ``t`` is on."""
    return time.monotonic()
