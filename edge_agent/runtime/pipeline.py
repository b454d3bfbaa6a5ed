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
- **Bad input is counted, logged once, and skipped**: batches of the wrong shape and frames with
  NaN/inf are rejected (``corrupt_frames``); time going backwards (``late_frames``), gaps
  (``dropped_frames``) and saturated or silent sensors are counted by the kernels. Nothing stops.
  Frames lost on the link are reported by the source (counter gaps) *and* seen by the kernels as
  time gaps, so a window counts the larger of the two, plus queue overflows. A sensor that reads
  its maximum for ``STUCK_S`` (through swing phases) is stuck, not loaded: it is masked to its zero
  reading so the foot's other sensors still find contacts, and listed in ``saturated_sensors``.
  Quality counters of a window cover what happened since the previous window closed.
- **Windows only inside runs.** Steps feed the :class:`~edge_agent.runtime.activity.ActivityTracker`;
  windows (``window_s``, default 10 s, or ``window_steps``, whichever closes first) start at the
  run's first step. A window whose steps are classified *running* is published when it closes
  (``window_grace_s`` after its end, so steps still in contact land in it); other windows (a
  walking break) are held and published only if running resumes, or if they started before the
  run's last running step when the run ends. Steps outside runs are not published: they are not
  running, and the outbox is for runs.
- **Body weight**: the most recent quiet standing (``estimate_body_weight`` on both feet's total
  force while the tracker says *standing*, at most every 2 min outside runs) minus both insoles'
  unloaded reading (learned from the feet in the air while moving), else the calibration
  file (``footfall-agent calibrate``, which also zeroes each sensor), else the configured body
  mass, else 70 kg (logged).
- **Clock**: the source's monotonic ``t`` is mapped to Unix time once, at the first batch. Run ids
  are ``<device>-<UTC start, yyyymmddThhmmss>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_agent.analysis.aggregator import RunStats, cadence_spm, step_records, summarize
from edge_agent.analysis.step import Step
from edge_agent.contract import LiveUpdate, Quality, RunSummary, Topics, WindowSummary
from edge_agent.profiles import HardwareProfile
from edge_agent.runtime.activity import ActivityThresholds, ActivityTracker, classify_steps

if TYPE_CHECKING:
    from edge_agent.config import PipelineConfig
    from edge_agent.runtime.outbox import Outbox
    from edge_agent.sources.base import FrameBatch, InsoleSource

log = logging.getLogger(__name__)

G = 9.80665
DEFAULT_MASS_KG = 70.0
#: Batches with more samples than this are analysed in a worker thread (replay at full speed).
THREAD_SAMPLES = 50_000
#: A wakeup with more data than this (s) is analysed in slices of this length.
SLICE_S = 0.5
#: Quiet standing needed before a body-weight estimate (s), and the pause between estimates.
STANDING_CAL_S = 3.0
STANDING_CAL_EVERY_S = 120.0
#: A sensor at its maximum this long (s) is stuck: a running stance lasts < 0.35 s, a walking one
#: < 0.8 s, so a loaded sensor comes off its maximum during every swing.
STUCK_S = 2.0
#: Batches of a moving foot needed before its unloaded (in the air) reading is trusted.
FLOOR_MIN_BATCHES = 10
#: Placeholders the outbox replaces with the real envelope inside its transaction.
_PENDING = {"msg_id": "pending-envelope", "stream_id": "pending", "seq": 1}

SummaryMessage = WindowSummary | RunSummary
Sink = Callable[[SummaryMessage], Awaitable[None]]
#: Returns False when the update could not be sent (e.g. not connected); it is then retried soon.
LiveSink = Callable[[LiveUpdate], Awaitable[bool | None] | bool | None]


@dataclass
class Calibration:
    """What ``footfall-agent calibrate`` measured: per-sensor zero offsets and the standing body weight."""

    profile: str
    created_at: float
    offsets: dict[str, list[float]] = field(default_factory=dict)
    body_weight_n: float | None = None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Calibration:
        try:
            data = json.loads(path.read_text())
            return cls(
                profile=str(data["profile"]),
                created_at=float(data["created_at"]),
                offsets={k: [float(x) for x in v] for k, v in data.get("offsets", {}).items()},
                body_weight_n=None if data.get("body_weight_n") is None else float(data["body_weight_n"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"calibration file {path}: unreadable ({err})") from None


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


@dataclass
class _Window:
    index: int
    t_start: float
    t_end: float
    quality0: dict[str, int]
    steps: list[Step] = field(default_factory=list)


class _OnceLog:
    """Log each kind of input problem once (then only count it), so a broken sensor can't flood the log."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def warn(self, key: str, msg: str, *args: object) -> None:
        if key not in self.seen:
            self.seen.add(key)
            log.warning(msg + " (counted in Quality; logged once)", *args)


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
        self.runner = runner
        self.settings = settings or PipelineConfig()
        self.sink = sink
        self.live = live
        self.backlog = backlog
        self._wall = wall_clock
        rd = self.settings.run_detection
        self.thresholds = ActivityThresholds(**rd.model_dump())
        self.tracker = ActivityTracker(self.thresholds)
        self.n_sensors = profile.n_sensors

        self.calibrated_at: float | None = None
        self.offsets: dict[str, np.ndarray] = {}
        bw: float | None = None
        if calibration is not None:
            if calibration.profile != profile.name:
                log.warning("calibration is for profile %r, not %r: ignored", calibration.profile, profile.name)
            else:
                for side, off in calibration.offsets.items():
                    if len(off) == self.n_sensors:
                        self.offsets[side] = np.asarray(off, dtype=np.float32)
                bw = calibration.body_weight_n
                self.calibrated_at = calibration.created_at
        if bw is not None:
            self.bw_source = "calibration file"
        elif body_mass_kg is not None:
            bw, self.bw_source = body_mass_kg * G, "configured body mass"
        else:
            bw, self.bw_source = DEFAULT_MASS_KG * G, "default 70 kg"
            log.warning("no body mass configured and no calibration yet: assuming 70 kg until quiet standing")
        self.body_weight_n = float(bw)
        cfg = analysis.AnalysisConfig(body_mass_kg=self.body_weight_n / G, **(analysis_overrides or {}))
        self.analyzer = analysis.GaitAnalyzer(profile, self.body_weight_n, cfg)

        self._raw_max = profile.raw_max
        cal = profile.calibration
        self._raw_zero = float(getattr(cal, "offset", 0.0)) if cal.type == "linear" else 0.0
        self._sat_since = {side: np.full(self.n_sensors, np.nan) for side in ("left", "right")}
        self._stuck: dict[str, set[int]] = {"left": set(), "right": set()}
        self._sat_clear = {"left": True, "right": True}
        self._queue: asyncio.Queue[list[FrameBatch] | FrameBatch | None] = asyncio.Queue(
            maxsize=self.settings.queue_batches
        )
        self._stopping = False
        self._once = _OnceLog()
        # cumulative counters of the pipeline itself (the kernels count the rest)
        self.counters = {
            "frames_in": 0,
            "corrupt": 0,
            "dropped": 0,
            "queue_dropped": 0,
            "stuck_samples": 0,
            "batches": 0,
            "wakeups": 0,
        }
        self.t_first: float | None = None
        self.now: float | None = None
        self.unix_offset: float | None = None
        self.duration_s: float | None = None
        self._duration_done = False
        self._sample_rate: float | None = None
        self._recent_steps: deque[Step] = deque()
        self._q_history: deque[tuple[float, dict[str, int]]] = deque()
        self._last_step: Step | None = None
        self._force: dict[str, deque[tuple[np.ndarray, np.ndarray]]] = {"left": deque(), "right": deque()}
        self._load_n: dict[str, float] = {}
        self._last_cal_try: float | None = None
        self._floor: dict[str, deque[float]] = {"left": deque(maxlen=100), "right": deque(maxlen=100)}
        self._standing_raw_n: float | None = None
        self._standing_pending = False
        self._next_classify = -math.inf
        self._next_live = 0.0
        # run state
        self.run_id: str | None = None
        self.run_started: float | None = None
        self._window: _Window | None = None
        self._held: list[tuple[_Window, WindowSummary]] = []
        self._run_steps: list[Step] = []
        self._run_windows = 0
        self._run_quality0: dict[str, int] = {}
        self.published: dict[str, int] = {"summary": 0, "run": 0, "live": 0}
        self.runs: list[str] = []

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
                if done or self._duration_reached():
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
                        self.counters["queue_dropped"] += n
                        self._once.warn("queue", "pipeline queue full: dropping %d frames from %s", n, batch.side)
                if self._stopping or self._duration_reached():
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

    def _duration_reached(self) -> bool:
        """A frame at or beyond ``t_first + duration_s`` has arrived (and was cut off)."""
        return self._duration_done

    # ------------------------------------------------------------------ processing
    def _validate(self, b: FrameBatch) -> tuple[np.ndarray, np.ndarray] | None:
        side = getattr(b, "side", None)
        t = np.asarray(b.t)
        raw = np.asarray(b.raw)
        self.counters["dropped"] += int(getattr(b, "dropped", 0) or 0)
        self.counters["corrupt"] += int(getattr(b, "corrupt", 0) or 0)
        n = int(t.shape[0]) if t.ndim == 1 else int(raw.shape[0]) if raw.ndim >= 1 else 1
        if side not in ("left", "right"):
            self.counters["corrupt"] += n
            self._once.warn("side", "batch with side %r rejected (%d frames)", side, n)
            return None
        if t.ndim != 1 or raw.ndim != 2 or raw.shape[0] != t.shape[0] or raw.shape[1] != self.n_sensors:
            self.counters["corrupt"] += n
            self._once.warn(
                f"shape-{side}",
                "%s batch rejected: t %s, raw %s, expected (n,) and (n, %d)",
                side,
                t.shape,
                raw.shape,
                self.n_sensors,
            )
            return None
        if not np.issubdtype(raw.dtype, np.number) or not np.issubdtype(t.dtype, np.number):
            self.counters["corrupt"] += n
            self._once.warn(f"dtype-{side}", "%s batch rejected: dtypes %s/%s", side, t.dtype, raw.dtype)
            return None
        t = np.ascontiguousarray(t, dtype=np.float64)
        raw = np.ascontiguousarray(raw, dtype=np.float32)
        # fast path: one reduction decides whether any frame needs a closer look
        finite = np.isfinite(raw.sum(dtype=np.float64) + t.sum())
        good = None if finite else np.isfinite(t) & np.isfinite(raw).all(axis=1)
        if good is not None and not good.all():
            bad = int((~good).sum())
            self.counters["corrupt"] += bad
            self._once.warn(f"nan-{side}", "%s: %d frame(s) with NaN/inf rejected", side, bad)
            t = np.ascontiguousarray(t[good])
            raw = np.ascontiguousarray(raw[good])
        if self._raw_max is not None and len(t):
            raw = self._mask_stuck(side, t, raw)
        if side in self.offsets and len(t):
            raw = raw - self.offsets[side]
        return t, raw

    def _mask_stuck(self, side: str, t: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Replace a sensor that has read its maximum for ``STUCK_S`` (through swing phases, so it is
        stuck, not loaded) by its zero reading, so the foot's contacts can still be detected from
        the other sensors. Counted as saturated samples and listed in ``saturated_sensors``."""
        assert self._raw_max is not None
        since = self._sat_since[side]
        if raw.max() < self._raw_max:  # the usual case: nothing at its maximum
            if not self._sat_clear[side]:
                since[:] = np.nan
                self._sat_clear[side] = True
            return raw
        self._sat_clear[side] = False
        sat = raw >= self._raw_max
        all_sat = sat.all(axis=0)
        since[~all_sat] = np.nan
        since[all_sat & np.isnan(since)] = t[0]
        stuck = all_sat & (t[-1] - since >= STUCK_S)
        if stuck.any():
            idx = np.flatnonzero(stuck)
            if not self._stuck[side].issuperset(idx.tolist()):
                self._once.warn(
                    f"stuck-{side}",
                    "%s sensor(s) %s stuck at the maximum for ≥ %.0f s: masked",
                    side,
                    idx.tolist(),
                    STUCK_S,
                )
            self._stuck[side].update(idx.tolist())
            raw = raw.copy()
            raw[:, idx] = self._raw_zero
            self.counters["stuck_samples"] += int(len(t) * len(idx))
        return raw

    async def process(self, batches: list[FrameBatch]) -> None:
        """Analyse one wakeup's batches (both feet), then update activity, windows and live.

        A wakeup holding more than ``SLICE_S`` of data (replay at full speed, or a backlog after a
        stall) is analysed in slices of ``SLICE_S``, both feet per slice, so run detection and
        windows see the stream at the same granularity whatever the batching.
        """
        self.counters["wakeups"] += 1
        self.counters["batches"] += len(batches)
        per_side: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"left": [], "right": []}
        for b in batches:
            ok = self._validate(b)
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
            self.counters["frames_in"] += len(t)
            if len(t) >= 2 and t[-1] > t[0]:
                rate = (len(t) - 1) / (t[-1] - t[0])
                self._sample_rate = rate if self._sample_rate is None else 0.9 * self._sample_rate + 0.1 * rate
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
                    self.counters["corrupt"] += len(ts)
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
        if (
            self.tracker.activity in ("running", "walking")
            and last is not None
            and self.now is not None
            and self.now - last.t_toe_off < 1.0
        ):
            # Moving: the lowest readings of a batch are (mostly) the foot in the air — the insole's
            # unloaded reading, which quiet standing must not count as body weight. The mean of the
            # samples near the minimum, not the minimum itself (biased low by the noise).
            lo = float(force.min())
            self._floor[side].append(float(force[force <= lo + 0.02 * self.body_weight_n].mean()))
        buf = self._force[side]
        buf.append((t, force))
        while buf and buf[0][0][-1] < t[-1] - 2 * STANDING_CAL_S:
            buf.popleft()
        self._load_n[side] = float(force[-min(len(force), 10) :].mean())
        return steps

    def unloaded_reading_n(self, side: str) -> float | None:
        """The foot's reading in the air (N): the 25th percentile of per-batch minima while moving
        (a 200 ms batch of a running or walking foot usually holds some swing). None until seen."""
        floor = self._floor[side]
        if len(floor) < FLOOR_MIN_BATCHES:
            return None
        return float(np.percentile(np.fromiter(floor, dtype=np.float64), 25.0))

    async def _after_steps(self, steps: list[Step]) -> None:
        assert self.now is not None
        now = self.now
        steps.sort(key=lambda s: s.t_contact)
        if steps:
            self._last_step = steps[-1]
            self.tracker.add_steps(steps)
            self._recent_steps.extend(steps)
            keep_s = self.thresholds.run_start_s + self.thresholds.classify_window_s + self.settings.window_s + 5.0
            while self._recent_steps and self._recent_steps[0].t_contact < now - keep_s:
                self._recent_steps.popleft()
            if self._window is not None:
                self._window.steps.extend(steps)
        if now >= self._next_classify:
            self._next_classify = now + 0.25
            if not self.tracker.in_run:
                # Quality counters as they were at source time `now`, so a run detected a few
                # seconds after its first step still counts its data problems from that step.
                self._q_history.append((now, self._quality_totals()))
                while self._q_history and self._q_history[0][0] < now - 60.0:
                    self._q_history.popleft()
            load = sum(self._load_n.values()) / self.body_weight_n if self._load_n else None
            for ev in self.tracker.update(now, load):
                if ev.kind == "start":
                    await self._start_run(ev.t)
                else:
                    await self._end_run(ev.t)
            if self.settings.standing_calibration and not self.tracker.in_run:
                self._maybe_calibrate(now)
                if self._standing_pending and all(self.unloaded_reading_n(s) is not None for s in ("left", "right")):
                    self._apply_standing()
        await self._close_windows(now)
        await self._maybe_live()

    # ------------------------------------------------------------------ body weight
    def _maybe_calibrate(self, now: float) -> None:
        since = self.tracker.activity_since
        if self.tracker.activity != "standing" or since is None or now - since < STANDING_CAL_S:
            return
        if self._last_cal_try is not None and now - self._last_cal_try < STANDING_CAL_EVERY_S:
            return
        self._last_cal_try = now
        if not self._force["left"] or not self._force["right"]:
            return
        tl = np.concatenate([c[0] for c in self._force["left"]])
        fl = np.concatenate([c[1] for c in self._force["left"]])
        tr = np.concatenate([c[0] for c in self._force["right"]])
        fr = np.concatenate([c[1] for c in self._force["right"]])
        sel = tl >= now - STANDING_CAL_S
        if sel.sum() < 10 or len(tr) < 2 or not np.all(np.diff(tr) > 0):
            return
        total = fl[sel] + np.interp(tl[sel], tr, fr)
        bw = self._analysis.estimate_body_weight(tl[sel], total)
        if bw is None or not (20 * G <= bw <= 300 * G):
            return
        self._standing_raw_n = float(bw)
        self.calibrated_at = self.unix(now)
        self._apply_standing()

    def _apply_standing(self) -> None:
        """Body weight = quiet standing minus both feet's unloaded readings (insoles read 10–20 N in
        the air: ≈ 4 % of body weight). Until both feet were seen in the air the uncorrected value
        is used, and corrected later — outside a run, so a run keeps one body weight."""
        raw = self._standing_raw_n
        if raw is None:
            return
        floors = [self.unloaded_reading_n(side) for side in ("left", "right")]
        if None in floors:
            self._standing_pending = True
            self.set_body_weight(raw, "quiet standing (unloaded reading not yet known)")
            return
        off = sum(f for f in floors if f is not None)
        off = min(max(off, -0.2 * raw), 0.2 * raw)
        self._standing_pending = False
        self.set_body_weight(raw - off, f"quiet standing ({raw:.0f} N) minus unloaded insoles ({off:.0f} N)")

    def set_body_weight(self, bw_n: float, source: str) -> None:
        self.body_weight_n = bw_n
        self.bw_source = source
        self.analyzer.set_body_weight(bw_n)
        log.info("body weight %.0f N (%.1f kg) from %s", bw_n, bw_n / G, source)

    # ------------------------------------------------------------------ quality
    def _quality_totals(self) -> dict[str, int]:
        q = self.analyzer.quality
        tot = {
            "frames": 0,
            "dropped_src": self.counters["dropped"],
            "dropped_kernel": 0,
            "dropped_queue": self.counters["queue_dropped"],
            "late": 0,
            "corrupt": self.counters["corrupt"],
            "saturated": self.counters["stuck_samples"],
        }
        for side_q in q.values():
            tot["frames"] += int(side_q.get("frames", 0))
            tot["dropped_kernel"] += int(side_q.get("dropped_frames", 0))
            tot["late"] += int(side_q.get("late_frames", 0))
            tot["corrupt"] += int(side_q.get("bad_time_frames", 0))
            tot["saturated"] += int(side_q.get("saturated_samples", 0))
        return tot

    def _sensor_lists(self) -> tuple[list[int], list[int]]:
        """Saturated and silent sensors: left 0…S−1, right S…2S−1 (frame order)."""
        sat: list[int] = []
        silent: list[int] = []
        for k, side in enumerate(("left", "right")):
            side_q = self.analyzer.quality.get(side, {})
            sat += [
                int(i) + k * self.n_sensors
                for i in sorted(set(side_q.get("saturated_sensors", [])) | self._stuck[side])
            ]
            silent += [int(i) + k * self.n_sensors for i in side_q.get("silent_sensors", [])]
        return sat, silent

    def _quality(self, since: dict[str, int]) -> Quality:
        now = self._quality_totals()
        d = {k: max(0, now[k] - since.get(k, 0)) for k in now}
        # The source counts lost frames from its counters, the kernels estimate them from time gaps
        # (> 3 periods): the same loss seen twice, so take the larger; queue overflow is separate.
        d["dropped"] = max(d["dropped_src"], d["dropped_kernel"]) + d["dropped_queue"]
        sat, silent = self._sensor_lists()
        if d["saturated"]:
            self._once.warn("saturated", "input problem: saturated samples (sensors %s)", sat)
        if d["late"]:
            self._once.warn("late", "input problem: %d frame(s) with time going backwards dropped", d["late"])
        if silent:
            self._once.warn("silent", "silent sensors (never loaded): %s", silent)
        rate = self._sample_rate or self.profile.sample_rate_hz
        return Quality(
            frames=d["frames"],
            dropped_frames=d["dropped"],
            late_frames=d["late"],
            corrupt_frames=d["corrupt"],
            saturated_samples=d["saturated"],
            saturated_sensors=sat,
            silent_sensors=silent,
            calibration_age_s=(
                max(0.0, self.unix(self.now or 0.0) - self.calibrated_at) if self.calibrated_at is not None else None
            ),
            loading_rate_low_confidence=rate < 200.0,
            sample_rate_hz=round(float(rate), 3),
        )

    # ------------------------------------------------------------------ runs and windows
    async def _start_run(self, t: float) -> None:
        started = self.unix(t)
        self.run_id = f"{self.device_id}-{datetime.fromtimestamp(started, UTC):%Y%m%dT%H%M%S}"
        self.run_started = t
        self._run_steps = []
        self._run_windows = 0
        self._held = []
        before = [q for tq, q in self._q_history if tq <= t]
        self._run_quality0 = before[-1] if before else (self._q_history[0][1] if self._q_history else {})
        self._window = self._new_window(0, t)
        self._window.quality0 = self._run_quality0
        self._window.steps = [s for s in self._recent_steps if s.t_contact >= t]
        self.runs.append(self.run_id)
        log.info("run %s started (source t=%.1f s)", self.run_id, t)

    def _new_window(self, index: int, t_start: float) -> _Window:
        return _Window(index, t_start, t_start + self.settings.window_s, self._quality_totals())

    async def _close_windows(self, now: float) -> None:
        w = self._window
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
            self._window = w

    def _summary(self, w: _Window) -> WindowSummary:
        stats = summarize(w.steps, w.t_start, w.t_end, self.analyzer.sample_rate_hz)
        activity = classify_steps(w.steps, self.thresholds)
        if activity == "unknown" and len(w.steps) < self.thresholds.min_steps:
            activity = "standing" if self.tracker.activity == "standing" else "unknown"
        assert self.run_id is not None
        return WindowSummary(
            **_PENDING,
            device_id=self.device_id,
            device_time=self._wall(),
            runner=self.runner,
            run_id=self.run_id,
            window_index=w.index,
            t_start=self.unix(w.t_start),
            t_end=self.unix(w.t_end),
            activity=activity,  # type: ignore[arg-type]
            quality=self._quality(w.quality0),
            body_mass_kg=round(self.body_weight_n / G, 2),
            step_records=step_records(w.steps, self.unix_offset or 0.0)[:2000] if self.settings.step_records else [],
            profile=self.profile.name,
            **stats.wire_fields(),  # type: ignore[arg-type]
        )

    async def _window_closed(self, w: _Window) -> None:
        msg = self._summary(w)
        if msg.activity == "running":
            for hw, hmsg in self._held:
                await self._emit_window(hw, hmsg)
            self._held = []
            await self._emit_window(w, msg)
        else:
            self._held.append((w, msg))

    async def _emit_window(self, w: _Window, msg: WindowSummary) -> None:
        msg.window_index = self._run_windows
        self._run_windows += 1
        self._run_steps.extend(w.steps)
        await self._emit(msg)

    async def _emit(self, msg: SummaryMessage) -> None:
        try:
            await self.sink(msg)
            self.published[msg.kind] += 1
        except Exception:
            # The outbox refused (disk full, …): say so loudly; the pipeline keeps measuring.
            log.exception("could not store %s for run %s", msg.kind, self.run_id)

    async def _end_run(self, t_end: float) -> None:
        """Publish what belongs to the run (held windows that began before its end), then the RunSummary."""
        if self.run_id is None or self.run_started is None:
            return
        w = self._window
        if w is not None and w.t_start < t_end and w.steps:
            w.t_end = max(w.t_start, min(w.t_end, self.now or w.t_end))
            w.steps = [s for s in w.steps if s.t_contact < w.t_end]
            self._held.append((w, self._summary(w)))
        for hw, hmsg in self._held:
            if hw.t_start < t_end:
                await self._emit_window(hw, hmsg)
        self._held = []
        self._window = None
        # The run is the sum of its published windows (a window that holds the last running step
        # may also hold the first walking steps after it).
        run_steps = self._run_steps
        if run_steps:
            t_end = max(t_end, max(s.t_toe_off for s in run_steps))
        stats: RunStats = summarize(run_steps, self.run_started, t_end, self.analyzer.sample_rate_hz)
        run_msg = RunSummary(
            **_PENDING,
            device_id=self.device_id,
            device_time=self._wall(),
            runner=self.runner,
            run_id=self.run_id,
            started_at=self.unix(self.run_started),
            ended_at=self.unix(max(t_end, self.run_started)),
            duration_s=max(0.0, t_end - self.run_started),
            windows=self._run_windows,
            quality=self._quality(self._run_quality0),
            body_mass_kg=round(self.body_weight_n / G, 2),
            profile=self.profile.name,
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
            await self._end_run(ev.t)

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
                self.published["live"] += 1
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
            steps_in_run=len(self._run_steps) + (len(self._window.steps) if self._window else 0),
            outbox_backlog=self.backlog() if self.backlog else 0,
        )

    @property
    def stats(self) -> dict[str, Any]:
        return {
            **self.counters,
            "published": dict(self.published),
            "runs": list(self.runs),
            "body_weight_n": self.body_weight_n,
            "body_weight_source": self.bw_source,
            "activity": self.tracker.activity,
        }
