"""The agent's real-time pipeline: frames → steps → windows → runs, on one asyncio loop.

Flow (docs/design.md §2)::

    source.batches() ──bounded queue──▶ validate ─▶ GaitAnalyzer.feed ─▶ steps ─▶ ActivityTracker
                                                                             └──▶ windows ─▶ RunSummary
                                                                                   │            │
                                                                              sink (outbox)  sink (outbox)
                                                   live (≈1 Hz, QoS 0, not stored) ◀┘

Why it is shaped like this:

- **Bounded queue, batched kernels.** A reader task moves batches from the source into a bounded
  queue; the processor wakes up, takes *everything* queued and feeds each foot's frames to the
  kernels in one call, so the Python overhead is per wakeup, not per frame (the budget is < 1 % of a
  core for 2×16 @ 100 Hz). Live sources (BLE, serial, ADC) cannot be slowed down, so an overflow
  drops the batch and counts its frames as ``dropped_frames``; file and simulator sources are
  ``lossless`` (the reader waits instead). Large batches (replay at full speed) go to a worker
  thread (the numba kernels release the GIL), so the loop keeps serving MQTT.
- **Stages, one module each**: :mod:`~edge_agent.runtime.frame_guard` (bad input is counted, logged once,
  and skipped; stuck sensors masked), :mod:`~edge_agent.runtime.calibration` (body weight from quiet standing,
  the calibration file), :mod:`~edge_agent.runtime.quality` (what each window's ``Quality`` reports),
  :mod:`~edge_agent.runtime.activity` (run detection) and :mod:`~edge_agent.runtime.runs` (windows and run
  summaries). This module owns the loop, the clock and the live updates.
- **Clock**: the source's monotonic ``t`` is mapped to Unix time once, at the first batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_agent.analysis.aggregator import cadence_spm
from edge_agent.analysis.step import Step
from edge_agent.contract import LiveUpdate, Topics
from edge_agent.profiles import HardwareProfile
from edge_agent.runtime.activity import ActivityThresholds, ActivityTracker
from edge_agent.runtime.calibration import DEFAULT_MASS_KG, BodyWeight, Calibration, G
from edge_agent.runtime.frame_guard import FrameGuard, OnceLog
from edge_agent.runtime.quality import QualityLedger
from edge_agent.runtime.runs import RunRecorder, Sink, SummaryMessage

if TYPE_CHECKING:
    from edge_agent.config import PipelineConfig
    from edge_agent.runtime.outbox import Outbox
    from edge_agent.sources.base import FrameBatch, InsoleSource

log = logging.getLogger(__name__)

__all__ = ["Calibration", "OutboxSink", "Pipeline", "warm_up"]

#: Batches with more samples than this are analysed in a worker thread (replay at full speed).
THREAD_SAMPLES = 50_000
#: A wakeup with more data than this (s) is analysed in slices of this length.
SLICE_S = 0.5
#: Returns False when the update could not be sent (e.g. not connected); it is then retried soon.
LiveSink = Callable[[LiveUpdate], Awaitable[bool | None] | bool | None]
#: Called on every wakeup with the steps just measured (possibly none), the source time and the activity.
StepListener = Callable[[list[Step], float, str], None]


def warm_up(profile: HardwareProfile) -> float:
    """Import the kernels and run them once on a second of unloaded frames; returns seconds taken.

    The first call JIT-compiles the numba kernels (or loads them from ``NUMBA_CACHE_DIR``): seconds
    on a Pi. The agent calls this in a worker thread so the event loop keeps connecting to MQTT.
    """
    t0 = time.perf_counter()
    from edge_agent.analysis import analyzer as analysis

    n = max(2, int(profile.sample_rate_hz))
    t = np.arange(n, dtype=np.float64) / profile.sample_rate_hz
    raw = np.zeros((n, profile.n_sensors), dtype=np.float32)
    ga = analysis.GaitAnalyzer(profile, DEFAULT_MASS_KG * G)
    for side in ("left", "right"):
        ga.feed(side, t, raw)  # type: ignore[arg-type]
    ga.flush()
    analysis.total_force(profile, raw)
    return time.perf_counter() - t0


class OutboxSink:
    """Puts window and run summaries into the durable outbox (off the loop: the commit fsyncs)."""

    def __init__(self, outbox: Outbox, topics: Topics) -> None:
        self.outbox = outbox
        self.topics = topics

    async def __call__(self, message: SummaryMessage) -> None:
        topic = self.topics.summary if message.kind == "summary" else self.topics.run
        await asyncio.to_thread(self.outbox.put, topic, message)


class Pipeline:
    """Steps, windows and runs for one pair of insoles; see the module docstring."""

    def __init__(
        self,
        profile: HardwareProfile,
        *,
        device_id: str,
        sink: Sink,
        settings: PipelineConfig | None = None,
        live: LiveSink | None = None,
        runner: str | None = None,
        shoe: str | None = None,
        body_mass_kg: float | None = None,
        analysis_overrides: dict[str, Any] | None = None,
        calibration: Calibration | None = None,
        backlog: Callable[[], int] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        from edge_agent.analysis import analyzer as analysis  # numba: imported after NUMBA_CACHE_DIR is set
        from edge_agent.config import PipelineConfig

        self._analysis = analysis
        self.profile = profile
        self.device_id = device_id
        self.settings = settings or PipelineConfig()
        self.live = live
        self.backlog = backlog
        self._wall = wall_clock
        self.thresholds = ActivityThresholds(**self.settings.run_detection.model_dump())
        self.tracker = ActivityTracker(self.thresholds)
        self._once = OnceLog()
        self.guard = FrameGuard(profile, self._once, calibration.offsets_for(profile) if calibration else None)
        self.body = BodyWeight(analysis, calibration=calibration, profile=profile, body_mass_kg=body_mass_kg)
        cfg = analysis.AnalysisConfig(body_mass_kg=self.body.n / G, **(analysis_overrides or {}))
        self.analyzer = analysis.GaitAnalyzer(profile, self.body.n, cfg)
        self.body.on_change = self.analyzer.set_body_weight
        self.quality = QualityLedger(self.guard, self.analyzer, self._once, profile.sample_rate_hz)
        self.recorder = RunRecorder(
            device_id=device_id,
            runner=runner,
            shoe=shoe,
            profile_name=profile.name,
            sample_rate_hz=self.analyzer.sample_rate_hz,
            settings=self.settings,
            thresholds=self.thresholds,
            sink=sink,
            quality=self.quality,
            body=self.body,
            unix=self.unix,
            wall=self._wall,
            current_activity=lambda: self.tracker.activity,
        )
        self._queue: asyncio.Queue[list[FrameBatch] | FrameBatch | None] = asyncio.Queue(
            maxsize=self.settings.queue_batches
        )
        self._stopping = False
        self._frames_in = 0
        self._wakeups = 0
        self._batches = 0
        self.t_first: float | None = None
        self.now: float | None = None
        self.unix_offset: float | None = None
        self.duration_s: float | None = None
        self._duration_done = False
        self._recent_steps: deque[Step] = deque()
        self._last_step: Step | None = None
        self._next_classify = -math.inf
        self._next_live = 0.0
        #: in-run feedback listens here: every step as soon as it is measured, not per closed window
        self.step_listeners: list[StepListener] = []
        self._failed_listeners: set[int] = set()

    # ------------------------------------------------------------------ state others read
    @property
    def run_id(self) -> str | None:
        return self.recorder.run_id

    @property
    def body_weight_n(self) -> float:
        return self.body.n

    @property
    def bw_source(self) -> str:
        return self.body.source

    @property
    def counters(self) -> dict[str, int]:
        g = self.guard.counters
        return {
            "frames_in": self._frames_in,
            "corrupt": g["corrupt"],
            "dropped": g["dropped"],
            "queue_dropped": self.quality.queue_dropped,
            "stuck_samples": g["stuck_samples"],
            "batches": self._batches,
            "wakeups": self._wakeups,
        }

    # ------------------------------------------------------------------ clock
    def unix(self, t: float) -> float:
        return t + (self.unix_offset or 0.0)

    def _map_clock(self, t0: float) -> None:
        mono = time.monotonic()
        # A source on the agent's monotonic clock maps exactly; recordings and simulations start near 0.
        self.unix_offset = (self._wall() - mono) if abs(t0 - mono) < 3600.0 else self._wall() - t0

    # ------------------------------------------------------------------ run loop
    async def run(
        self,
        source: InsoleSource,
        *,
        duration_s: float | None = None,
        lossless: bool = False,
    ) -> None:
        """Consume ``source`` until it ends, ``duration_s`` of source time passed, or :meth:`request_stop`."""
        self.duration_s = duration_s
        reader = asyncio.create_task(self._read(source, lossless), name="footfall-source-reader")
        try:
            while True:
                items = [await self._queue.get(), *self._drain_queue()]
                done = await self._process_items(items)
                if done or self._duration_done:
                    break
                if self._stopping:  # a signal: what is already queued is still analysed
                    await self._process_items(self._drain_queue())
                    break
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            await self.finish()

    def _drain_queue(self) -> list[list[FrameBatch] | FrameBatch | None]:
        items: list[list[FrameBatch] | FrameBatch | None] = []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    async def _process_items(self, items: list[list[FrameBatch] | FrameBatch | None]) -> bool:
        """Analyse queued batches; True when the end-of-stream marker was among them."""
        batches: list[FrameBatch] = []
        done = False
        for it in items:
            if it is None:
                done = True
            elif isinstance(it, list):
                batches.extend(it)
            else:
                batches.append(it)
        if batches:
            await self.process(batches)
        return done

    async def _read(self, source: InsoleSource, lossless: bool) -> None:
        """Source → queue. At the end of the source an end marker follows the last batch (so every
        queued frame is analysed before the pipeline finishes)."""
        try:
            async for batch in source.batches():
                if lossless:
                    await self._queue.put(batch)
                else:
                    try:
                        self._queue.put_nowait(batch)
                    except asyncio.QueueFull:
                        n = len(batch.t)
                        self.quality.queue_dropped += n
                        self._once.warn("queue", "pipeline queue full: dropping %d frames from %s", n, batch.side)
                if self._stopping or self._duration_done:
                    break
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("source %s failed; stopping the pipeline", getattr(source, "name", "?"))
        await self._queue.put(None)

    def request_stop(self) -> None:
        """Stop soon (signal handler): queued frames are processed, then :meth:`finish` runs."""
        self._stopping = True
        if self._queue.empty():
            self._queue.put_nowait(None)

    # ------------------------------------------------------------------ processing
    async def process(self, batches: list[FrameBatch]) -> None:
        """Analyse one wakeup's batches (both feet), then update activity, windows and live.

        A wakeup holding more than ``SLICE_S`` of data (replay at full speed, or a backlog after a
        stall) is analysed in slices of ``SLICE_S``, both feet per slice, so run detection and
        windows see the stream at the same granularity whatever the batching.
        """
        self._wakeups += 1
        self._batches += len(batches)
        per_side: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"left": [], "right": []}
        for b in batches:
            ok = self.guard.check(b)
            if ok is not None and len(ok[0]):
                per_side[b.side].append(ok)
        data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for side, parts in per_side.items():
            if not parts:
                continue
            t = parts[0][0] if len(parts) == 1 else np.concatenate([p[0] for p in parts])
            raw = parts[0][1] if len(parts) == 1 else np.concatenate([p[1] for p in parts])
            if self.t_first is None:
                self.t_first = float(t[0])
                self._map_clock(self.t_first)
            if self.duration_s is not None:
                keep = t < self.t_first + self.duration_s
                if not keep.all():
                    self._duration_done = True
                    t, raw = np.ascontiguousarray(t[keep]), np.ascontiguousarray(raw[keep])
                if not len(t):
                    continue
            self._frames_in += len(t)
            self.quality.observe_rate(len(t), float(t[-1] - t[0]))
            data[side] = (t, raw)
        if not data:
            if self.now is not None:
                await self._after_steps([])
            return
        t_lo = min(float(t[0]) for t, _ in data.values())
        t_hi = max(float(t.max()) for t, _ in data.values())
        n_slices = max(1, math.ceil((t_hi - t_lo) / SLICE_S)) if t_hi - t_lo > SLICE_S else 1
        # slice on the running maximum of t, so frames going back in time stay with their neighbours
        tmax = {side: np.maximum.accumulate(t) for side, (t, _) in data.items()}
        start = dict.fromkeys(data, 0)
        for k in range(n_slices):
            edge = t_lo + (k + 1) * SLICE_S
            steps: list[Step] = []
            for side, (t, raw) in data.items():
                i0 = start[side]
                i1 = len(t) if k == n_slices - 1 else int(np.searchsorted(tmax[side], edge, side="left"))
                start[side] = i1
                if i1 <= i0:
                    continue
                ts, rs = t[i0:i1], raw[i0:i1]
                try:
                    if rs.size >= THREAD_SAMPLES:
                        got = await asyncio.to_thread(self._feed, side, ts, rs)
                    else:
                        got = self._feed(side, ts, rs)
                except Exception as err:  # the kernels refused this input: count it, keep measuring
                    self.guard.counters["corrupt"] += len(ts)
                    self._once.warn(f"feed-{side}", "%s: %d frame(s) rejected by the analysis: %s", side, len(ts), err)
                    continue
                steps.extend(got)
                top = float(tmax[side][i1 - 1])
                self.now = top if self.now is None else max(self.now, top)
            if self.now is not None:
                await self._after_steps(steps)
            if k % 64 == 63:
                await asyncio.sleep(0)  # a long backlog: let MQTT and signals run

    def _feed(self, side: str, t: np.ndarray, raw: np.ndarray) -> list[Step]:
        steps = self.analyzer.feed(side, t, raw)  # type: ignore[arg-type]  # side validated above
        force = np.asarray(self._analysis.total_force(self.profile, raw), dtype=np.float64)
        last = self._last_step
        moving = (
            self.tracker.activity in ("running", "walking")
            and last is not None
            and self.now is not None
            and self.now - last.t_toe_off < 1.0
        )
        self.body.observe(side, t, force, moving=moving)
        return steps

    async def _after_steps(self, steps: list[Step]) -> None:
        assert self.now is not None
        now = self.now
        self.recorder.now = now
        steps.sort(key=lambda s: s.t_contact)
        if steps:
            self._last_step = steps[-1]
            self.tracker.add_steps(steps)
            self._recent_steps.extend(steps)
            keep_s = self.thresholds.run_start_s + self.thresholds.classify_window_s + self.settings.window_s + 5.0
            while self._recent_steps and self._recent_steps[0].t_contact < now - keep_s:
                self._recent_steps.popleft()
            self.recorder.add_steps(steps)
        if now >= self._next_classify:
            self._next_classify = now + 0.25
            if not self.tracker.in_run:
                self.quality.remember(now)
            for ev in self.tracker.update(now, self.body.load_bw()):
                if ev.kind == "start":
                    await self.recorder.start(ev.t, self._recent_steps)
                else:
                    await self.recorder.end(ev.t)
            if self.settings.standing_calibration and not self.tracker.in_run:
                standing = self.tracker.activity == "standing"
                self.body.update(now, self.tracker.activity_since if standing else None, self.unix(now))
        for listener in self.step_listeners:
            try:
                listener(steps, now, self.tracker.activity)
            except Exception:  # feedback must never stop the measuring
                if id(listener) not in self._failed_listeners:
                    self._failed_listeners.add(id(listener))
                    log.exception("step listener %r failed (logged once; measuring goes on)", listener)
        await self.recorder.close_windows(now)
        await self._maybe_live()

    async def finish(self) -> None:
        """End of stream or shutdown: flush the kernels, close the window, end the run."""
        try:
            steps = self.analyzer.flush()
        except Exception:
            log.exception("analyzer flush failed")
            steps = []
        if self.now is not None:
            await self._after_steps(list(steps))
        if self.tracker.in_run:
            ev = self.tracker.stop()
            await self.recorder.end(ev.t)

    # ------------------------------------------------------------------ live
    async def _maybe_live(self) -> None:
        if self.live is None or self.settings.live_hz <= 0:
            return
        mono = time.monotonic()
        if mono < self._next_live:
            return
        self._next_live = mono + 1.0 / self.settings.live_hz
        msg = self.live_update()
        try:
            res = self.live(msg)
            if inspect.isawaitable(res):
                res = await res
            if res is False:  # not connected: try again at the next wakeup, not a period later
                self._next_live = 0.0
            else:
                self.recorder.published["live"] += 1
        except Exception as err:
            self._once.warn("live", "live update not sent: %s", err)

    def live_update(self) -> LiveUpdate:
        now = self.now or 0.0
        recent = self.tracker.recent_steps(now)
        last = self._last_step
        si = last.strike_index if last is not None else None
        valr = last.valr_bw_s if last is not None else None
        return LiveUpdate(
            device_id=self.device_id,
            device_time=self.unix(now),
            activity=self.tracker.activity,
            run_id=self.run_id,
            cadence_spm=cadence_spm(recent) if len(recent) >= 2 else None,
            last_side=last.side if last is not None else None,
            last_strike_index=min(1.0, max(0.0, si)) if si is not None and math.isfinite(si) else None,
            last_strike_zone=last.strike_zone if last is not None else None,
            last_valr_bw_s=valr if valr is not None and math.isfinite(valr) else None,
            steps_in_run=self.recorder.steps_in_run,
            outbox_backlog=self.backlog() if self.backlog else 0,
        )

    @property
    def stats(self) -> dict[str, Any]:
        return {
            **self.counters,
            "published": dict(self.recorder.published),
            "runs": list(self.recorder.runs),
            "body_weight_n": self.body.n,
            "body_weight_source": self.body.source,
            "activity": self.tracker.activity,
        }
