"""Runs and their windows: the state machine that turns steps inside a run into WindowSummary and RunSummary.

Windows only exist inside runs. Windows (``window_s``, default 10 s, or ``window_steps``, whichever closes first)
start at the run's first step. A window whose steps are classified *running* is published when it closes
(``window_grace_s`` after its end, so steps still in contact land in it); other windows (a walking break) are held
and published only if running resumes, or if they started before the run's last running step when the run ends.
Steps outside runs are not published: they are not running, and the outbox is for runs. Run ids are
``<device>-<UTC start, yyyymmddThhmmss>``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from edge_agent.analysis.aggregator import RunStats, step_records, summarize
from edge_agent.analysis.step import Step
from edge_agent.contract import RunSummary, WindowSummary
from edge_agent.runtime.activity import ActivityThresholds, classify_steps
from edge_agent.runtime.calibration import BodyWeight, G
from edge_agent.runtime.quality import QualityLedger

if TYPE_CHECKING:
    from edge_agent.config import PipelineConfig

log = logging.getLogger(__name__)

SummaryMessage = WindowSummary | RunSummary
Sink = Callable[[SummaryMessage], Awaitable[None]]
#: Placeholders the outbox replaces with the real envelope inside its transaction.
_PENDING = {"msg_id": "pending-envelope", "stream_id": "pending", "seq": 1}


@dataclass
class Window:
    index: int
    t_start: float
    t_end: float
    quality0: dict[str, int]
    steps: list[Step] = field(default_factory=list)


class RunRecorder:
    """Windows and the run summary of the current run; ``sink`` receives each message to publish."""

    def __init__(
        self,
        *,
        device_id: str,
        runner: str | None,
        profile_name: str,
        sample_rate_hz: float,
        shoe: str | None = None,
        settings: PipelineConfig,
        thresholds: ActivityThresholds,
        sink: Sink,
        quality: QualityLedger,
        body: BodyWeight,
        unix: Callable[[float], float],
        wall: Callable[[], float],
        current_activity: Callable[[], str],
    ) -> None:
        self.device_id = device_id
        self.runner = runner
        self.shoe = shoe
        self.profile_name = profile_name
        self.sample_rate_hz = sample_rate_hz  # the rate the kernels assume: the steps' loading-rate basis
        self.settings = settings
        self.thresholds = thresholds
        self.sink = sink
        self.quality = quality
        self.body = body
        self.unix = unix
        self.wall = wall
        self.current_activity = current_activity
        self.run_id: str | None = None
        self.run_started: float | None = None
        self.window: Window | None = None
        self.now: float | None = None
        self._held: list[tuple[Window, WindowSummary]] = []
        self._run_steps: list[Step] = []
        self._run_windows = 0
        self._run_quality0: dict[str, int] = {}
        self.published: dict[str, int] = {"summary": 0, "run": 0, "live": 0}
        self.runs: list[str] = []
        #: called with every published window summary (in-run feedback listens here)
        self.window_listeners: list[Callable[[WindowSummary], None]] = []

    @property
    def steps_in_run(self) -> int:
        return len(self._run_steps) + (len(self.window.steps) if self.window else 0)

    def add_steps(self, steps: list[Step]) -> None:
        if self.window is not None:
            self.window.steps.extend(steps)

    def _calibration_age(self) -> float | None:
        at = self.body.calibrated_at
        return max(0.0, self.unix(self.now or 0.0) - at) if at is not None else None

    async def start(self, t: float, recent: Iterable[Step]) -> None:
        started = self.unix(t)
        self.run_id = f"{self.device_id}-{datetime.fromtimestamp(started, UTC):%Y%m%dT%H%M%S}"
        self.run_started = t
        self._run_steps = []
        self._run_windows = 0
        self._held = []
        self._run_quality0 = self.quality.snapshot_at(t)
        self.window = self._new_window(0, t)
        self.window.quality0 = self._run_quality0
        self.window.steps = [s for s in recent if s.t_contact >= t]
        self.runs.append(self.run_id)
        log.info("run %s started (source t=%.1f s)", self.run_id, t)

    def _new_window(self, index: int, t_start: float) -> Window:
        return Window(index, t_start, t_start + self.settings.window_s, self.quality.totals())

    async def close_windows(self, now: float) -> None:
        self.now = now
        w = self.window
        grace = self.settings.window_grace_s
        n_max = self.settings.window_steps
        while w is not None and (now >= w.t_end + grace or (n_max is not None and len(w.steps) >= n_max)):
            if n_max is not None and len(w.steps) >= n_max and now < w.t_end + grace:
                w.steps.sort(key=lambda s: s.t_contact)
                rest = w.steps[n_max:]
                w.steps = w.steps[:n_max]
                w.t_end = max(w.steps[-1].t_toe_off, w.t_start)
            else:
                inside = [s for s in w.steps if s.t_contact < w.t_end]
                rest = [s for s in w.steps if s.t_contact >= w.t_end]
                w.steps = inside
            await self._window_closed(w)
            w = self._new_window(w.index + 1, w.t_end)
            w.steps = rest
            self.window = w

    def _summary(self, w: Window) -> WindowSummary:
        stats = summarize(w.steps, w.t_start, w.t_end, self.sample_rate_hz)
        activity = classify_steps(w.steps, self.thresholds)
        if activity == "unknown" and len(w.steps) < self.thresholds.min_steps:
            activity = "standing" if self.current_activity() == "standing" else "unknown"
        assert self.run_id is not None
        return WindowSummary(
            **_PENDING,
            device_id=self.device_id,
            device_time=self.wall(),
            runner=self.runner,
            run_id=self.run_id,
            window_index=w.index,
            t_start=self.unix(w.t_start),
            t_end=self.unix(w.t_end),
            activity=activity,  # type: ignore[arg-type]
            quality=self.quality.since(w.quality0, self._calibration_age()),
            body_mass_kg=round(self.body.n / G, 2),
            step_records=step_records(w.steps, self.unix(0.0))[:2000] if self.settings.step_records else [],
            profile=self.profile_name,
            **stats.wire_fields(),  # type: ignore[arg-type]
        )

    async def _window_closed(self, w: Window) -> None:
        msg = self._summary(w)
        if msg.activity == "running":
            for hw, hmsg in self._held:
                await self._emit_window(hw, hmsg)
            self._held = []
            await self._emit_window(w, msg)
        else:
            self._held.append((w, msg))

    async def _emit_window(self, w: Window, msg: WindowSummary) -> None:
        msg.window_index = self._run_windows
        self._run_windows += 1
        self._run_steps.extend(w.steps)
        await self._emit(msg)
        for listener in self.window_listeners:
            try:
                listener(msg)
            except Exception:
                log.exception("window listener failed")

    async def _emit(self, msg: SummaryMessage) -> None:
        try:
            await self.sink(msg)
            self.published[msg.kind] += 1
        except Exception:
            # The outbox refused (disk full, …): say so loudly; the pipeline keeps measuring.
            log.exception("could not store %s for run %s", msg.kind, self.run_id)

    async def end(self, t_end: float) -> None:
        """Publish what belongs to the run (held windows that began before its end), then the RunSummary."""
        if self.run_id is None or self.run_started is None:
            return
        w = self.window
        if w is not None and w.t_start < t_end and w.steps:
            w.t_end = max(w.t_start, min(w.t_end, self.now or w.t_end))
            w.steps = [s for s in w.steps if s.t_contact < w.t_end]
            self._held.append((w, self._summary(w)))
        for hw, hmsg in self._held:
            if hw.t_start < t_end:
                await self._emit_window(hw, hmsg)
        self._held = []
        self.window = None
        # The run is the sum of its published windows (a window that holds the last running step
        # may also hold the first walking steps after it).
        run_steps = self._run_steps
        if run_steps:
            t_end = max(t_end, max(s.t_toe_off for s in run_steps))
        stats: RunStats = summarize(run_steps, self.run_started, t_end, self.sample_rate_hz)
        run_msg = RunSummary(
            **_PENDING,
            device_id=self.device_id,
            device_time=self.wall(),
            runner=self.runner,
            run_id=self.run_id,
            started_at=self.unix(self.run_started),
            ended_at=self.unix(max(t_end, self.run_started)),
            duration_s=max(0.0, t_end - self.run_started),
            windows=self._run_windows,
            quality=self.quality.since(self._run_quality0, self._calibration_age()),
            body_mass_kg=round(self.body.n / G, 2),
            profile=self.profile_name,
            shoe=self.shoe,
            **stats.wire_fields(),  # type: ignore[arg-type]
        )
        await self._emit(run_msg)
        log.info(
            "run %s ended: %.0f s, %d steps, %d windows",
            self.run_id,
            run_msg.duration_s,
            run_msg.steps,
            run_msg.windows,
        )
        self.run_id = None
        self.run_started = None
