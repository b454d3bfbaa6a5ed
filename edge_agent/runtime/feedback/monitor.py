"""When to cue: the recent loading rate and cadence from the latest steps, bands with hysteresis, and a rate limit.

Evaluated on every step as it is measured (not on the 10 s window summaries, which close with a grace period):

* **Recent loading rate** = the median VALR of the last ``loading_window_steps`` steps of both feet that have one
  (default 6, about 2 s at 170 spm). The median, because a single mis-detected step must not make a sound; a
  real rise shows after half the window (3 steps).
* **Recent cadence** = :func:`edge_agent.analysis.aggregator.cadence_spm` over the last ``cadence_window_steps``
  steps (the measure the window summaries use).
* **Hysteresis**: a measure leaves its band when it crosses the limit, and is back only once it is
  ``hysteresis_pct`` of the limit inside it, so a value hovering at the edge makes one cue, not many.
* **Rate limit** (:class:`CueLimiter`): never more than one cue per ``min_interval_s`` (whatever its kind); while a
  measure stays out of band it is cued again after ``repeat_s`` (or never, when that is null).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from edge_agent.analysis.aggregator import cadence_spm
from edge_agent.analysis.step import Step

Excursion = Literal["high", "low"]


class RecentSteps:
    """The latest steps of both feet, in contact order."""

    def __init__(self, loading_window: int, cadence_window: int) -> None:
        self.loading_window = loading_window
        self.cadence_window = cadence_window
        self._steps: deque[Step] = deque(maxlen=max(loading_window, cadence_window) * 4)
        self._valr: deque[tuple[float, Step]] = deque(maxlen=loading_window)

    def add(self, steps: Iterable[Step]) -> None:
        for s in steps:
            self._steps.append(s)
            v = s.valr_bw_s
            if v is not None and math.isfinite(v):
                self._valr.append((v, s))

    def clear(self) -> None:
        self._steps.clear()
        self._valr.clear()

    @property
    def last(self) -> Step | None:
        return self._steps[-1] if self._steps else None

    def loading_bw_s(self) -> float | None:
        """Median VALR of the window, once the window is full."""
        if len(self._valr) < self.loading_window:
            return None
        return float(statistics.median(v for v, _ in self._valr))

    def cadence(self) -> float | None:
        if len(self._steps) < self.cadence_window:
            return None
        return cadence_spm(list(self._steps)[-self.cadence_window :])

    def step_period_s(self) -> float | None:
        c = self.cadence()
        return 60.0 / c if c else None


class BandMonitor:
    """Out-of-band state of one measure; :meth:`update` returns the direction when the measure *leaves* the band."""

    def __init__(self) -> None:
        self.state: Excursion | None = None

    def update(self, value: float | None, low: float | None, high: float | None, margin: float) -> Excursion | None:
        if value is None:
            return None
        back_from_high = self.state == "high" and (high is None or value < high - margin)
        back_from_low = self.state == "low" and (low is None or value > low + margin)
        if back_from_high or back_from_low:
            self.state = None
        if self.state is None:
            if high is not None and value > high:
                self.state = "high"
                return "high"
            if low is not None and value < low:
                self.state = "low"
                return "low"
        return None

    def reset(self) -> None:
        self.state = None


@dataclass
class CueLimiter:
    """At most one cue per ``min_interval_s``; a measure still out of band is cued again after ``repeat_s``."""

    min_interval_s: float
    repeat_s: float | None
    last_cue_t: float | None = None

    def allows(self, now: float) -> bool:
        return self.last_cue_t is None or now - self.last_cue_t >= self.min_interval_s

    def record(self, now: float) -> None:
        self.last_cue_t = now

    def repeat_due(self, since: float | None, now: float) -> bool:
        """A measure cued at ``since`` and still out of band may be cued again now."""
        return since is not None and self.repeat_s is not None and now - since >= self.repeat_s
