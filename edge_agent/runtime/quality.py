"""Data-quality bookkeeping: cumulative counters of the frame guard, the queue and the kernels, turned into the
``Quality`` block of a window or run (what happened since a snapshot taken when it began).

The source counts lost frames from its counters, the kernels estimate them from time gaps (> 3 periods): the
same loss seen twice, so a window reports the larger of the two, plus queue overflows.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from edge_agent.contract import Quality
from edge_agent.runtime.frame_guard import SIDES, FrameGuard, OnceLog

#: Loading rates below this sample rate are flagged low-confidence (docs/measures.md).
LR_CONFIDENT_HZ = 200.0


class QualityLedger:
    """Counter snapshots and the ``Quality`` of the interval since one."""

    def __init__(self, guard: FrameGuard, analyzer: Any, once: OnceLog, nominal_rate_hz: float) -> None:
        self.guard = guard
        self.analyzer = analyzer
        self.once = once
        self.n_sensors = guard.n_sensors
        self.nominal_rate_hz = nominal_rate_hz
        self.queue_dropped = 0
        self.sample_rate_hz: float | None = None
        self._history: deque[tuple[float, dict[str, int]]] = deque()

    def observe_rate(self, n: int, span_s: float) -> None:
        """A batch of ``n`` frames over ``span_s`` seconds: the measured sample rate (smoothed)."""
        if n >= 2 and span_s > 0:
            rate = (n - 1) / span_s
            self.sample_rate_hz = rate if self.sample_rate_hz is None else 0.9 * self.sample_rate_hz + 0.1 * rate

    def totals(self) -> dict[str, int]:
        g = self.guard.counters
        tot = {
            "frames": 0,
            "dropped_src": g["dropped"],
            "dropped_kernel": 0,
            "dropped_queue": self.queue_dropped,
            "late": 0,
            "corrupt": g["corrupt"],
            "saturated": g["stuck_samples"],
        }
        for side_q in self.analyzer.quality.values():
            tot["frames"] += int(side_q.get("frames", 0))
            tot["dropped_kernel"] += int(side_q.get("dropped_frames", 0))
            tot["late"] += int(side_q.get("late_frames", 0))
            tot["corrupt"] += int(side_q.get("bad_time_frames", 0))
            tot["saturated"] += int(side_q.get("saturated_samples", 0))
        return tot

    def remember(self, now: float) -> None:
        """Keep a minute of snapshots, so a run detected a few seconds after its first step still counts its
        data problems from that step."""
        self._history.append((now, self.totals()))
        while self._history and self._history[0][0] < now - 60.0:
            self._history.popleft()

    def snapshot_at(self, t: float) -> dict[str, int]:
        """The counters as they were at source time ``t`` (the oldest kept when ``t`` is older)."""
        before = [q for tq, q in self._history if tq <= t]
        return before[-1] if before else (self._history[0][1] if self._history else {})

    def sensor_lists(self) -> tuple[list[int], list[int]]:
        """Saturated and silent sensors: left 0…S−1, right S…2S−1 (frame order)."""
        sat: list[int] = []
        silent: list[int] = []
        for k, side in enumerate(SIDES):
            side_q = self.analyzer.quality.get(side, {})
            sat += [
                int(i) + k * self.n_sensors
                for i in sorted(set(side_q.get("saturated_sensors", [])) | self.guard.stuck[side])
            ]
            silent += [int(i) + k * self.n_sensors for i in side_q.get("silent_sensors", [])]
        return sat, silent

    def since(self, start: dict[str, int], calibration_age_s: float | None) -> Quality:
        now = self.totals()
        d = {k: max(0, now[k] - start.get(k, 0)) for k in now}
        d["dropped"] = max(d["dropped_src"], d["dropped_kernel"]) + d["dropped_queue"]
        sat, silent = self.sensor_lists()
        if d["saturated"]:
            self.once.warn("saturated", "input problem: saturated samples (sensors %s)", sat)
        if d["late"]:
            self.once.warn("late", "input problem: %d frame(s) with time going backwards dropped", d["late"])
        if silent:
            self.once.warn("silent", "silent sensors (never loaded): %s", silent)
        rate = self.sample_rate_hz or self.nominal_rate_hz
        return Quality(
            frames=d["frames"],
            dropped_frames=d["dropped"],
            late_frames=d["late"],
            corrupt_frames=d["corrupt"],
            saturated_samples=d["saturated"],
            saturated_sensors=sat,
            silent_sensors=silent,
            calibration_age_s=calibration_age_s,
            loading_rate_low_confidence=rate < LR_CONFIDENT_HZ,
            sample_rate_hz=round(float(rate), 3),
        )
