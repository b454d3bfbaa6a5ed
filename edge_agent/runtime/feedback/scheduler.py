"""Metronome clicks on the output's sample clock (not ``asyncio.sleep``): positions are computed, never waited for.

Click *k* of the current tempo starts at sample ``round(anchor + k · period)`` with ``period = fs · 60 / spm``
(computed from the anchor each time, so no error accumulates over a long run). Whoever renders the output asks
:meth:`ClickScheduler.clicks_in` for the onsets inside the block it is about to write; the onsets are exact to
half a sample whatever the cadence, sample rate or block size, so the only jitter left is the device's own.

A tempo change takes effect at the next click: it comes one *new* period after the last click, or at the first
sample not yet rendered if that moment has already passed. Every interval around a change therefore lies between
the old and the new period: never a double click, never a gap.
"""

from __future__ import annotations

import math


class ClickScheduler:
    """Click onsets at a tempo, on a sample clock that only moves forward."""

    def __init__(self, sample_rate_hz: float) -> None:
        if not sample_rate_hz > 0:
            raise ValueError(f"sample rate must be > 0, got {sample_rate_hz}")
        self.fs = float(sample_rate_hz)
        self.spm: float | None = None
        self._period: float | None = None  # samples
        self._anchor = 0.0
        self._k = 0
        self._last: int | None = None

    @property
    def period_samples(self) -> float | None:
        return self._period

    @property
    def last_click(self) -> int | None:
        return self._last

    def set_tempo(self, spm: float | None, at: int, *, first_at: int | None = None) -> None:
        """Clicks at ``spm`` from sample ``at`` (the first sample not yet rendered); ``None`` stops them.

        Starting from silence, the first click is at ``first_at`` (e.g. aligned with the runner's next footfall)
        or else at ``at``. Changing a running tempo keeps the phase as described in the module docstring.
        """
        if spm is None:
            self.spm, self._period, self._last = None, None, None
            return
        if not (math.isfinite(spm) and spm > 0):
            raise ValueError(f"tempo must be a positive number of clicks per minute, got {spm}")
        if spm == self.spm:
            return
        period = self.fs * 60.0 / spm
        if self._period is None:
            start = float(at if first_at is None else max(at, first_at))
        else:
            # the next click at the old tempo has not been rendered yet: it is at or after ``at``
            nxt = self._anchor + self._k * self._period
            start = max(nxt, float(at)) if self._last is None else max(self._last + period, float(at))
        self.spm, self._period, self._anchor, self._k = spm, period, start, 0

    def next_onset(self) -> int | None:
        """Where the next click will start (None: no metronome)."""
        if self._period is None:
            return None
        return math.floor(self._anchor + self._k * self._period + 0.5)

    def clicks_in(self, start: int, n: int) -> list[int]:
        """Onsets in ``[start, start + n)``; the caller renders blocks in order, each exactly once."""
        if self._period is None or n <= 0:
            return []
        end = start + n
        out: list[int] = []
        while True:
            pos = math.floor(self._anchor + self._k * self._period + 0.5)
            if pos >= end:
                return out
            if pos >= start:  # a click due before ``start`` was never renderable (the clock moved on): skip it
                out.append(pos)
                self._last = pos
            self._k += 1
