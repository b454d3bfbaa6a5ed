"""The output stream's content: metronome clicks, cues and speech mixed block by block on the sample clock.

Two threads meet here. The asyncio side (the feedback engine) only *asks*: :meth:`Renderer.set_tempo`,
:meth:`Renderer.play`. The output side (a PortAudio callback, the WAV writer thread or the GPIO pulse thread)
calls :meth:`Renderer.render` for the next block; requests are taken from a deque (``append``/``popleft`` are
atomic) at the start of each block, so a sound asked for at any moment starts at the first sample of the next
block rendered. Every onset is reported, with its sample position and the time of its cause, to the
:attr:`Renderer.onset_listeners` (called on the output thread: they may only append to something thread-safe);
that is how step → cue latency is measured and what the WAV sink's sidecar lists.

:class:`SampleClock` maps sample positions to the agent's monotonic clock (the sink anchors it each block: the
WAV writer at the block's deadline, PortAudio from the callback's DAC time); ``latency_offset_s`` is the known delay
after the output (a Bluetooth link), so ``heard_at(n)`` is when sample ``n`` reaches the ear.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_agent.runtime.feedback.scheduler import ClickScheduler


@dataclass(slots=True)
class Onset:
    """One sound as rendered: where it starts in the output and what caused it."""

    kind: str
    sample: int
    cause_t: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


class SampleClock:
    """Sample position ↔ agent monotonic time, re-anchored by the sink at every block."""

    def __init__(self, sample_rate_hz: float, latency_offset_s: float = 0.0) -> None:
        self.fs = float(sample_rate_hz)
        self.latency_offset_s = latency_offset_s
        self._lock = threading.Lock()
        self._anchor: tuple[int, float] | None = None

    def anchor(self, sample: int, played_at: float) -> None:
        """Sample ``sample`` leaves the output at monotonic time ``played_at``."""
        with self._lock:
            self._anchor = (sample, played_at)

    @property
    def anchored(self) -> bool:
        return self._anchor is not None

    def played_at(self, sample: int) -> float | None:
        with self._lock:
            if self._anchor is None:
                return None
            n0, t0 = self._anchor
        return t0 + (sample - n0) / self.fs

    def heard_at(self, sample: int) -> float | None:
        t = self.played_at(sample)
        return None if t is None else t + self.latency_offset_s

    def sample_heard_at(self, t: float) -> int | None:
        """The sample that is heard at monotonic time ``t`` (None before the first block)."""
        with self._lock:
            if self._anchor is None:
                return None
            n0, t0 = self._anchor
        return n0 + round((t - self.latency_offset_s - t0) * self.fs)


@dataclass(slots=True)
class _Voice:
    wave: np.ndarray
    start: int


class Renderer:
    """Mixes what is due into each block; see the module docstring for the threading contract."""

    def __init__(self, sample_rate_hz: int, click: np.ndarray, *, latency_offset_s: float = 0.0) -> None:
        self.fs = int(sample_rate_hz)
        self.click = np.ascontiguousarray(click, dtype=np.float32)
        self.scheduler = ClickScheduler(self.fs)
        self.clock = SampleClock(self.fs, latency_offset_s)
        self.pos = 0
        self._requests: deque[tuple[Any, ...]] = deque()
        self._voices: list[_Voice] = []
        #: called with every onset as it is rendered, on the output thread
        self.onset_listeners: list[Callable[[Onset], None]] = []
        #: called after every request (a paced writer sleeping through silence wakes up)
        self.wakeup: Callable[[], None] | None = None
        self.clicks = 0

    # -- asyncio side --------------------------------------------------------------------------------------------
    def set_tempo(self, spm: float | None, *, first_heard_at: float | None = None) -> None:
        """Metronome at ``spm`` (None: off); starting from silence, the first click is heard at ``first_heard_at``
        (monotonic) when that is still ahead, else as soon as possible."""
        self._requests.append(("tempo", spm, first_heard_at))
        if self.wakeup is not None:
            self.wakeup()

    def play(self, kind: str, wave: np.ndarray, *, cause_t: float | None = None, **info: Any) -> None:
        """Start ``wave`` at the next block; ``cause_t`` (monotonic) is what its latency is measured from."""
        self._requests.append(("play", kind, np.ascontiguousarray(wave, dtype=np.float32), cause_t, info))
        if self.wakeup is not None:
            self.wakeup()

    # -- output side ---------------------------------------------------------------------------------------------
    def render(self, n: int, out: np.ndarray | None = None, *, hold_requests: bool = False) -> np.ndarray:
        """The next ``n`` samples (float32, −1…1), written into ``out`` when given. ``hold_requests``: samples that
        are already in the past (a writer catching up) — requests wait for the next block."""
        start = self.pos
        buf = np.zeros(n, dtype=np.float32) if out is None else out
        if out is not None:
            buf.fill(0.0)
        while self._requests and not hold_requests:
            self._apply(self._requests.popleft(), start)
        for pos in self.scheduler.clicks_in(start, n):
            self._voices.append(_Voice(self.click, pos))
            self._tell(Onset("click", pos))
            self.clicks += 1
        if self._voices:
            end = start + n
            alive: list[_Voice] = []
            for v in self._voices:
                a = max(v.start, start)
                b = min(v.start + len(v.wave), end)
                if b > a:
                    buf[a - start : b - start] += v.wave[a - v.start : b - v.start]
                if v.start + len(v.wave) > end:
                    alive.append(v)
            self._voices = alive
            np.clip(buf, -1.0, 1.0, out=buf)
        self.pos = start + n
        return buf

    def _apply(self, req: tuple[Any, ...], at: int) -> None:
        if req[0] == "tempo":
            _, spm, first_heard_at = req
            first = self.clock.sample_heard_at(first_heard_at) if first_heard_at is not None else None
            self.scheduler.set_tempo(spm, at, first_at=first)
        else:
            _, kind, wave, cause_t, info = req
            self._voices.append(_Voice(wave, at))
            self._tell(Onset(kind, at, cause_t, info))

    def _tell(self, onset: Onset) -> None:
        for listener in self.onset_listeners:
            listener(onset)

    @property
    def has_requests(self) -> bool:
        return bool(self._requests)

    @property
    def sounding(self) -> bool:
        return bool(self._voices) or bool(self._requests)

    def sounding_until(self) -> int | None:
        """Where the sounds already started end (None: silence, or a request is waiting)."""
        if self._requests or not self._voices:
            return None
        return max(v.start + len(v.wave) for v in self._voices)
