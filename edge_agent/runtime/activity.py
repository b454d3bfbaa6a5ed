"""What the wearer is doing (running / walking / standing / idle) and when a run starts and ends.

Nothing on the Pi has a start button, so runs are found in the step stream (docs/design.md §1):

- **running**: cadence ≥ ~140 spm AND (duty factor < 0.5, i.e. flight phases, OR median contact
  < ~350 ms). Running has an aerial phase and duty factor < 0.5 at all but the slowest jogging
  speeds; walking has double support and duty factor > 0.5 (Cavagna 1977; Alexander 1989;
  Novacheck 1998, Gait Posture 7:77). Typical running contact is 170–300 ms, walking 550–700 ms.
  Cadence alone is not enough: fast walking reaches 130–140 spm (Tudor-Locke 2018).
  Also running: cadence ≥ ~155 spm even with double support — very slow jogging can be
  "grounded running" with duty factor > 0.5 (Rubenson et al. 2004, J Exp Biol 207:3407), and
  walking above ~140 spm is rare (Tudor-Locke 2018: 100 spm ≈ moderate, 130 spm ≈ vigorous
  walking). Checked on the real plantar-activity recordings: S05's *Jogging* (158–165 spm, duty
  factor 0.58–0.61) would otherwise read as walking (tests/agent/test_pipeline.py). Race walking
  (> 160 spm) would be misread as running: a documented limitation.
- **walking**: steps with double support (a contact starts before the other foot's toe-off) or
  duty factor > 0.5.
- **standing**: no step for :attr:`ActivityThresholds.step_gap_s` but load on the insoles
  (≥ ``standing_load_bw`` of body weight, both feet together). **idle**: no steps, no load.

Classification looks at the steps of the last ``classify_window_s`` seconds. A **run starts** once
the classification has been *running* for ``run_start_s`` (a few seconds, so a dash for the bus
is not a run); the run's start time is the first step of that streak. A **run ends** after
``run_stop_s`` (default 30 s) without running; its end time is the toe-off of the last step seen
while running. So a walking break shorter than ``run_stop_s`` stays inside the run. The pipeline
publishes windows only inside runs (see :mod:`edge_agent.runtime.pipeline`).
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from edge_agent.analysis.aggregator import cadence_spm, duty_factor
from edge_agent.analysis.step import Step

Activity = Literal["running", "walking", "standing", "idle", "unknown"]


@dataclass(frozen=True, slots=True)
class ActivityThresholds:
    """Run-detection thresholds (the config's ``pipeline.run_detection`` block)."""

    run_cadence_spm: float = 140.0
    run_duty_factor_max: float = 0.5
    run_contact_ms_max: float = 350.0
    run_cadence_only_spm: float = 155.0
    classify_window_s: float = 5.0
    min_steps: int = 4
    step_gap_s: float = 2.0
    standing_load_bw: float = 0.5
    run_start_s: float = 4.0
    run_stop_s: float = 30.0


@dataclass(frozen=True, slots=True)
class RunEvent:
    """A run started (``t`` = its first step) or stopped (``t`` = toe-off of its last running step)."""

    kind: Literal["start", "stop"]
    t: float


def double_support_share(steps: Sequence[Step]) -> float | None:
    """Share of contacts that begin before the other foot has left the ground."""
    ordered = sorted(steps, key=lambda s: s.t_contact)
    last_off: dict[str, float] = {}
    overlaps = n = 0
    for s in ordered:
        other = "right" if s.side == "left" else "left"
        if other in last_off:
            n += 1
            overlaps += s.t_contact < last_off[other]
        last_off[s.side] = s.t_toe_off
    return overlaps / n if n else None


def classify_steps(steps: Sequence[Step], th: ActivityThresholds = ActivityThresholds()) -> Activity:
    """Running, walking or unknown for a short stretch of steps (both feet)."""
    if len(steps) < th.min_steps:
        return "unknown"
    cad = cadence_spm(steps)
    duty = duty_factor(steps)
    contact = statistics.median(s.contact_ms for s in steps)
    flight = (duty is not None and duty < th.run_duty_factor_max) or contact < th.run_contact_ms_max
    if cad is not None and (cad >= th.run_cadence_only_spm or (cad >= th.run_cadence_spm and flight)):
        return "running"
    ds = double_support_share(steps)
    if (ds is not None and ds >= 0.5) or (duty is not None and duty > th.run_duty_factor_max):
        return "walking"
    return "unknown"


class ActivityTracker:
    """Streaming activity classification and run start/stop from steps plus the current load."""

    def __init__(self, thresholds: ActivityThresholds = ActivityThresholds()) -> None:
        self.th = thresholds
        self._steps: deque[Step] = deque()
        self.activity: Activity = "unknown"
        self.in_run = False
        self.run_started_at: float | None = None
        self._streak_start: float | None = None
        self._last_running_t: float | None = None
        self._activity_since: float | None = None

    def add_steps(self, steps: Iterable[Step]) -> None:
        self._steps.extend(steps)

    @property
    def activity_since(self) -> float | None:
        """Source time since which the current activity holds (for standing calibration)."""
        return self._activity_since

    def recent_steps(self, now: float) -> list[Step]:
        return [s for s in self._steps if s.t_contact >= now - self.th.classify_window_s]

    def update(self, now: float, load_bw: float | None) -> list[RunEvent]:
        """Re-classify at source time ``now``; returns the run events this caused (0, 1 or 2)."""
        th = self.th
        horizon = now - max(th.classify_window_s, th.step_gap_s) - 1.0
        while self._steps and self._steps[0].t_contact < horizon:
            self._steps.popleft()
        recent = self.recent_steps(now)
        moving = bool(recent) and now - max(s.t_toe_off for s in recent) < th.step_gap_s
        if moving:
            act = classify_steps(recent, th)
        elif load_bw is None:
            act = "unknown"
        else:
            act = "standing" if load_bw >= th.standing_load_bw else "idle"
        if act != self.activity:
            self._activity_since = now
        self.activity = act

        events: list[RunEvent] = []
        if act == "running":
            # Start and end at running-like steps (short contact), not at the walking steps that
            # share the classification window at a transition.
            runlike = [s for s in recent if s.contact_ms < th.run_contact_ms_max] or recent
            if self._streak_start is None:
                self._streak_start = min(s.t_contact for s in runlike)
            self._last_running_t = max(s.t_toe_off for s in runlike)
            if not self.in_run and now - self._streak_start >= th.run_start_s:
                self.in_run = True
                self.run_started_at = self._streak_start
                events.append(RunEvent("start", self._streak_start))
        else:
            self._streak_start = None
            if self.in_run and self._last_running_t is not None and now - self._last_running_t >= th.run_stop_s:
                events.append(self.stop())
        return events

    def stop(self) -> RunEvent:
        """End the current run now (timeout, or the agent shutting down)."""
        end = self._last_running_t if self._last_running_t is not None else (self.run_started_at or 0.0)
        self.in_run = False
        self.run_started_at = None
        self._streak_start = None
        return RunEvent("stop", end)

    @property
    def last_running_t(self) -> float | None:
        return self._last_running_t
