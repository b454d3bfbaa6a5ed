"""The simulator as a live source: :class:`SimulatorStream` paced in real time × ``speed``."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Literal

from pydantic import Field

from edge_agent.profiles import HardwareProfile
from edge_agent.recordings import FootStream
from edge_agent.recordings.simulator import RunParams, SimulatorStream
from edge_agent.sources.base import FrameBatch, InsoleSource, Pacer, Side, SourceConfigBase, monotonic


class SimulatorSourceConfig(SourceConfigBase):
    """A simulated runner (demo, benchmarks, tests without hardware)."""

    type: Literal["simulator"] = Field("simulator", title="Source type", description="A simulated runner.")
    params: RunParams = Field(default_factory=RunParams, title="Run parameters", description="See simulator.RunParams.")
    speed: float = Field(
        1.0, ge=0.0, title="Speed factor", description="1 = real time, 10 = ten times faster, 0 = as fast as possible."
    )
    duration_s: float | None = Field(
        None, gt=0, title="Running duration (s)", description="Overrides params.duration_s when set."
    )
    endless: bool = Field(False, title="Run forever", description="Ignore the duration; the run never ends.")


class SimulatorSource(InsoleSource):
    """Yields the simulator's frames; ``t`` = agent clock when pacing starts + simulated time (``device_t``).

    At speed 1 a frame is stamped with the moment a real insole would have sent it (the pacer releases it then),
    not the moment the source was opened: generating the first frames takes a while, and step → cue latencies
    (docs/feedback.md) are measured on these stamps."""

    name = "simulator"

    def __init__(self, cfg: SimulatorSourceConfig, profile: HardwareProfile) -> None:
        super().__init__(profile)
        self.cfg = cfg
        params = cfg.params
        if cfg.duration_s is not None:
            params = params.model_copy(update={"duration_s": cfg.duration_s})
        self.stream = SimulatorStream(profile, params, endless=cfg.endless)
        self.fs = self.stream.sample_rate_hz
        self.batch_frames = max(1, math.ceil(cfg.batch_ms / 1000.0 * self.fs))
        self._t0 = 0.0

    async def open(self) -> None:
        self._t0 = monotonic()

    async def batches(self) -> AsyncIterator[FrameBatch]:
        pacer = Pacer(self.cfg.speed)
        anchored = False
        while not self._closed and not self.stream.exhausted:
            start = self.stream.time
            if self.stream.needs_generation(self.batch_frames):  # ~1024 frames at once: off the loop
                await asyncio.to_thread(self.stream.prepare, self.batch_frames)
            left, right = self.stream.next_chunk(self.batch_frames)
            slots = round((self.stream.time - start) * self.fs)
            await pacer.wait_until(self.stream.time)
            if not anchored and pacer.start is not None:
                self._t0, anchored = pacer.start, True
            sides: tuple[tuple[Side, FootStream], ...] = (("left", left), ("right", right))
            for side, fs in sides:
                yield self._count(
                    FrameBatch(
                        side=side,
                        t=fs.t + self._t0,
                        raw=fs.raw,
                        device_t=fs.t,
                        dropped=slots - fs.t.shape[0],
                    )
                )
