"""Replay a recording file (any format ``load_recording`` reads) in real time × ``speed``, optionally looping."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from edge_agent.profiles import HardwareProfile, list_profiles
from edge_agent.sources.base import (
    FrameBatch,
    InsoleSource,
    Pacer,
    Side,
    SourceConfigBase,
    SourceError,
    monotonic,
)


class ReplaySourceConfig(SourceConfigBase):
    """A recorded session played back as if it were live."""

    type: Literal["replay"] = Field("replay", title="Source type", description="A recording played back.")
    path: Path = Field(title="Recording file", description="Native .ffrec, Moticon export, CSV… (auto-detected).")
    speed: float = Field(1.0, ge=0.0, title="Speed factor", description="1 = real time, 0 = as fast as possible.")
    loop: bool = Field(False, title="Loop", description="Start again at the end (time keeps increasing).")
    format: str | None = Field(None, title="Format", description="Force a format instead of auto-detection.")


class ReplaySource(InsoleSource):
    """Slices the recording into ``batch_ms`` windows of recording time; ``t`` = agent clock at open + time."""

    name = "replay"

    def __init__(self, cfg: ReplaySourceConfig, profile: HardwareProfile, recording: object | None = None) -> None:
        super().__init__(profile)
        self.cfg = cfg
        self.recording = recording
        self._t0 = 0.0
        self.loops = 0

    async def open(self) -> None:
        if self.recording is None:
            from edge_agent.recordings import load_recording

            if not self.cfg.path.exists():
                raise SourceError(f"replay source: recording {str(self.cfg.path)!r} does not exist")
            # a bundled profile lets the importers that need one (plain CSV) read the file; a custom
            # profile (a YAML path) is checked below by sensor count instead
            name = self.profile.name if self.profile.name in list_profiles() else None
            try:
                self.recording = await asyncio.to_thread(load_recording, self.cfg.path, name, self.cfg.format)
            except ValueError as err:  # RecordingError names the file (and line) already
                raise SourceError(f"replay source: {err}") from err
        rec = self.recording
        both: list[tuple[Side, Any]] = [("left", rec.left), ("right", rec.right)]  # type: ignore[attr-defined]
        streams = [(s, fs) for s, fs in both if fs is not None]
        if not streams:
            raise SourceError(f"replay source: {self.cfg.path}: the recording has no foot streams")
        for side, fs in streams:
            if fs.raw.shape[1] != self.profile.n_sensors:
                raise SourceError(
                    f"replay source: {self.cfg.path}: {side} stream has {fs.raw.shape[1]} sensors but profile "
                    f"{self.profile.name!r} has {self.profile.n_sensors}"
                )
        self._streams = streams
        firsts = [float(fs.t[0]) for _, fs in streams if fs.t.size]
        lasts = [float(fs.t[-1]) for _, fs in streams if fs.t.size]
        self._start = min(firsts) if firsts else 0.0
        self._end = max(lasts) if lasts else 0.0
        dts = [np.median(np.diff(fs.t)) for _, fs in streams if fs.t.size > 1]
        self._dt = float(min(dts)) if dts else 0.01
        self._t0 = monotonic()

    async def batches(self) -> AsyncIterator[FrameBatch]:
        pacer = Pacer(self.cfg.speed)
        span = self._end - self._start + self._dt  # one loop's length on the output clock
        width = self.cfg.batch_ms / 1000.0
        n_win = max(1, math.ceil(span / width))
        while not self._closed:
            base = self.loops * span
            idx = {side: 0 for side, _ in self._streams}
            for w in range(n_win):
                w1 = self._start + (w + 1) * width
                await pacer.wait_until(base + (w + 1) * width)
                if self._closed:
                    return
                for side, fs in self._streams:
                    i0 = idx[side]
                    i1 = int(np.searchsorted(fs.t, w1, "left")) if w < n_win - 1 else fs.t.shape[0]
                    idx[side] = i1
                    if i1 > i0:
                        t_rec = fs.t[i0:i1]
                        yield self._count(
                            FrameBatch(
                                side=side,
                                t=self._t0 + base + (t_rec - self._start),
                                raw=fs.raw[i0:i1],
                                device_t=t_rec + base,
                            )
                        )
            self.loops += 1
            if not self.cfg.loop:
                return
