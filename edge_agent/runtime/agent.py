"""Composition root of the edge agent: source → pipeline → outbox → MQTT publisher, plus signals.

``run_agent`` owns the process lifetime (docs/design.md §1, §6): it opens the outbox before anything is
measured, connects to the broker in the background (the agent measures and stores without a
broker), announces the Home Assistant device, runs the pipeline until the source ends, the
duration is reached or SIGTERM/SIGINT arrives, and then stops *cleanly*: the pipeline is flushed,
the run summary written to the outbox, and the publisher given ``outbox.drain_timeout_s`` to
deliver. Whatever is not delivered stays on disk for the next start.

It also hosts the two other commands that read the insoles: ``calibrate`` (zero offsets with no
load, body weight from quiet standing → ``<state_dir>/calibration.json``, used by ``run``) and
``record`` (raw capture into the native recording format).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_agent.analysis.kernels import load_kernels
from edge_agent.config import AgentConfig
from edge_agent.contract import LiveUpdate, Topics
from edge_agent.profiles import HardwareProfile, load_profile
from edge_agent.runtime.health import HEARTBEAT_FILE, write_heartbeat
from edge_agent.runtime.pipeline import Calibration, OutboxSink, Pipeline, warm_up

if TYPE_CHECKING:
    from edge_agent.common.mqtt import MqttConnection
    from edge_agent.runtime.feedback.engine import FeedbackEngine
    from edge_agent.runtime.outbox import Outbox
    from edge_agent.runtime.publisher import OutboxPublisher

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
HEARTBEAT_EVERY_S = 5.0
#: Sources that read files or generate data: the pipeline may wait for them (no frame is dropped).
LOSSLESS_SOURCES = ("replay", "simulator")
#: Idle poll of the outbox publisher (s); resends are due after 30 s, so 2 s loses nothing.
PUBLISHER_POLL_S = 2.0


def calibration_path(cfg: AgentConfig) -> Path:
    return cfg.state_dir / CALIBRATION_FILE


def load_calibration(cfg: AgentConfig) -> Calibration | None:
    path = calibration_path(cfg)
    if not path.is_file():
        return None
    try:
        return Calibration.load(path)
    except ValueError as err:
        log.warning("%s; running without it", err)
        return None


class _Signals:
    """SIGTERM/SIGINT → a callback (once), restored on exit."""

    def __init__(self, callback: Any) -> None:
        self.callback = callback
        self.received: str | None = None
        self._installed: list[int] = []

    def __enter__(self) -> _Signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._fire, sig.name)
                self._installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests run in-process)
                pass
        return self

    def _fire(self, name: str) -> None:
        if self.received is None:
            log.info("%s received: flushing the pipeline and stopping", name)
        self.received = name
        self.callback()

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)


def open_outbox(cfg: AgentConfig) -> Outbox:
    from edge_agent.runtime.outbox import Outbox

    return Outbox(
        cfg.outbox_path,
        cfg.device_id,
        max_rows=cfg.outbox.max_rows,
        max_bytes=int(cfg.outbox.max_mb * 1e6),
        max_age_s=cfg.outbox.max_age_s,
        retention_without_plugin_s=cfg.outbox.retention_without_plugin_s,
        require_plugin_ack=cfg.outbox.require_plugin_ack,
    )


async def warm_kernels(profile: HardwareProfile) -> tuple[float, str]:
    """Compile or load the kernels in a worker thread (the loop keeps connecting); (seconds, backend)."""
    warm_s = await asyncio.to_thread(warm_up, profile)
    kernels = load_kernels()
    if kernels.backend == "aot":
        log.info("kernels ready in %.2f s (ahead-of-time build %s, no numba)", warm_s, kernels.origin)
    else:
        log.info(
            "kernels ready in %.2f s (numba JIT, NUMBA_CACHE_DIR=%s; `footfall-agent build-kernels` "
            "would keep numba/LLVM out of this process)",
            warm_s,
            kernels.origin,
        )
    return warm_s, kernels.backend


async def drain_outbox(outbox: Outbox, conn: MqttConnection, publisher: OutboxPublisher, timeout_s: float) -> bool:
    """Deliver what can be delivered within ``timeout_s`` (waiting for the broker counts against it); the rest
    stays in the outbox for the next start."""
    if not outbox.undelivered():
        return True
    log.info("draining the outbox (up to %.0f s)", timeout_s)
    deadline = time.monotonic() + timeout_s
    if not await conn.wait_connected(timeout_s):
        log.warning("broker unreachable: %d messages kept in the outbox", outbox.undelivered())
        return False
    return await publisher.drain(max(0.0, deadline - time.monotonic()))


class AgentRun:
    """One life of the agent process: outbox → connection → publisher (+ HA discovery) → pipeline on the source.

    Signals stop it cleanly at any point after the connection is up: a SIGTERM during the (possibly long,
    cold-cache) kernel warm-up still ends with the retained "offline" status.
    """

    def __init__(self, cfg: AgentConfig, *, duration_s: float | None = None) -> None:
        self.cfg = cfg
        self.duration_s = duration_s
        self.profile = load_profile(cfg.profile)
        self.topics = Topics(cfg.device_id, cfg.mqtt.base_topic)
        self.pipeline: Pipeline | None = None
        self.stop_early = asyncio.Event()
        self._t_start = time.monotonic()
        self.first_live_s: float | None = None

    def _on_signal(self) -> None:
        self.stop_early.set()
        if self.pipeline is not None:
            self.pipeline.request_stop()

    def _live_sink(self, conn: MqttConnection) -> Callable[[LiveUpdate], bool]:
        def live(msg: LiveUpdate) -> bool:
            """QoS 0, never stored: if the broker is away the update is simply skipped."""
            if not conn.connected.is_set():
                return False
            conn.publish_nowait(self.topics.live, msg.model_dump_json(exclude_none=True), qos=0)
            if self.first_live_s is None:
                self.first_live_s = time.monotonic() - self._t_start
            return True

        return live

    async def _heartbeat(self, outbox: Outbox, conn: MqttConnection, publisher: OutboxPublisher) -> None:
        path = self.cfg.state_dir / HEARTBEAT_FILE
        while True:
            p = self.pipeline
            with contextlib.suppress(OSError):
                write_heartbeat(
                    path,
                    {
                        "time": time.time(),
                        "pid": os.getpid(),
                        "activity": p.tracker.activity if p else "starting",
                        "run_id": p.run_id if p else None,
                        "backlog": outbox.backlog,
                        "connected": conn.connected.is_set(),
                        "publisher": publisher.health(),  # footfall-agent health: red while delivery keeps failing
                    },
                )
            await asyncio.sleep(HEARTBEAT_EVERY_S)

    def _feedback(self, conn: MqttConnection) -> FeedbackEngine | None:
        """The in-run feedback engine when a sink is configured, subscribed to the runner's target topic."""
        cfg = self.cfg
        if not cfg.feedback.enabled:
            return None
        from edge_agent.contract import runner_target_topic
        from edge_agent.runtime.feedback.engine import FeedbackEngine

        engine = FeedbackEngine(cfg.feedback, runner=cfg.runner, state_dir=cfg.state_dir)
        if cfg.runner is not None:
            conn.subscribe(runner_target_topic(cfg.runner, cfg.mqtt.base_topic), engine.on_target_message, qos=1)
        else:
            log.info("feedback: no runner configured, so no program targets (feedback.target_cadence_spm still works)")
        return engine

    async def run(self) -> dict[str, Any]:
        from edge_agent.common.mqtt import MqttConnection
        from edge_agent.runtime.ha_discovery import HaDiscovery
        from edge_agent.runtime.publisher import OutboxPublisher
        from edge_agent.sources import create_source

        cfg, topics = self.cfg, self.topics
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        outbox = open_outbox(cfg)
        settings = cfg.mqtt.connection_settings(cfg.client_id)
        log.info(
            "footfall agent %s: profile %s, source %s, broker %s, outbox %s (%d rows carried over)",
            cfg.device_id,
            self.profile.name,
            cfg.source.type,
            settings.redacted_url(),
            cfg.outbox_path,
            outbox.backlog,
        )
        stats: dict[str, Any] = {}
        try:
            async with (
                MqttConnection(settings, will=(topics.status, b"offline", True)) as conn,
                contextlib.AsyncExitStack() as feedback_scope,
            ):
                feedback = self._feedback(conn)
                if feedback is not None:
                    await feedback_scope.enter_async_context(feedback)
                # New rows wake the publisher directly (outbox listener), so the idle poll and the PUBACK
                # bookkeeping can be slow: fewer wakeups is most of the agent's real-time CPU.
                publisher = OutboxPublisher(conn, outbox, topics, poll_s=PUBLISHER_POLL_S, puback_flush_s=1.0)
                pub_task = asyncio.create_task(publisher.run(), name="footfall-outbox-publisher")
                discovery = None
                if cfg.mqtt.ha_discovery.enabled:
                    discovery = HaDiscovery(conn, topics, prefix=cfg.mqtt.ha_discovery.prefix, model=self.profile.name)
                    discovery.start()
                hb_task = asyncio.create_task(self._heartbeat(outbox, conn, publisher), name="footfall-heartbeat")
                with _Signals(self._on_signal) as sigs:
                    warm_s, backend = await warm_kernels(self.profile)
                    self.pipeline = pipeline = Pipeline(
                        self.profile,
                        device_id=cfg.device_id,
                        runner=cfg.runner,
                        shoe=cfg.shoe,
                        sink=OutboxSink(outbox, topics),
                        settings=cfg.pipeline,
                        live=self._live_sink(conn),
                        body_mass_kg=cfg.body_mass_kg,
                        analysis_overrides=cfg.analysis.overrides(),
                        calibration=load_calibration(cfg),
                        backlog=lambda: outbox.backlog,
                    )
                    if feedback is not None:
                        pipeline.step_listeners.append(feedback.on_steps)
                    source = create_source(cfg.source, self.profile)
                    if not self.stop_early.is_set():
                        async with source:
                            lossless = cfg.source.type in LOSSLESS_SOURCES
                            await pipeline.run(source, duration_s=self.duration_s, lossless=lossless)
                    drained = await drain_outbox(outbox, conn, publisher, cfg.outbox.drain_timeout_s)
                hb_task.cancel()
                pub_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pub_task
                if discovery is not None:
                    discovery.stop()
                if feedback is not None:
                    await feedback.close()
                stats = {
                    "pipeline": pipeline.stats,
                    "source": source.stats,
                    "outbox": outbox.stats(),
                    "publisher": dict(publisher.stats),
                    "drained": drained,
                    "signal": sigs.received,
                    "first_live_s": self.first_live_s,
                    "warm_up_s": warm_s,
                    "kernels": backend,
                    "numba_loaded": "numba" in sys.modules,
                }
                if feedback is not None:
                    stats["feedback"] = feedback.stats
        finally:
            outbox.close()
        log.info("agent stopped: %s", json.dumps(stats.get("pipeline", {}), default=str))
        return stats


async def run_agent(cfg: AgentConfig, *, duration_s: float | None = None) -> dict[str, Any]:
    """Run until the source ends, ``duration_s`` (source seconds) passed, or a signal; returns stats."""
    return await AgentRun(cfg, duration_s=duration_s).run()


# -- calibrate -------------------------------------------------------------------------------------


Phase = tuple[str, float]


async def _collect_phases(
    cfg: AgentConfig, profile: HardwareProfile, phases: list[Phase]
) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Frames per phase and foot from ONE pass over the configured source (phases back to back,
    each ``seconds`` long; a phase named ``""`` is discarded — time to stand up)."""
    from edge_agent.sources import create_source

    bounds: list[tuple[str, float, float]] = []
    start = 0.0
    for name, seconds in phases:
        bounds.append((name, start, start + seconds))
        start += seconds
    total = start
    parts: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]] = {
        name: {"left": [], "right": []} for name, _ in phases if name
    }
    announced: set[str] = set()
    t0: float | None = None
    source = create_source(cfg.source, profile)
    async with source:
        async for b in source.batches():
            if len(b.t) == 0:
                continue
            t0 = float(b.t[0]) if t0 is None else t0
            rel = b.t - t0
            good = np.isfinite(rel) & np.isfinite(b.raw).all(axis=1)
            for name, lo, hi in bounds:
                if name and name not in announced and rel[-1] >= lo:
                    announced.add(name)
                    log.info("calibrate: %s phase (%.0f s)", name, hi - lo)
                sel = good & (rel >= lo) & (rel < hi)
                if name and sel.any():
                    parts[name][b.side].append((b.t[sel], b.raw[sel]))
            if float(rel[-1]) >= total:
                break
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for name, feet in parts.items():
        out[name] = {
            side: (np.concatenate([x[0] for x in p]), np.concatenate([x[1] for x in p]))
            for side, p in feet.items()
            if p
        }
    return out


async def calibrate(
    cfg: AgentConfig, *, zero_s: float = 3.0, settle_s: float = 3.0, stand_s: float = 5.0, skip_zero: bool = False
) -> Calibration:
    """Zero offsets (median raw per sensor with no load), then ``settle_s`` to stand up, then body
    weight (quiet standing on both feet), all from one pass over the source, so it works headless
    and on recordings. Writes ``<state_dir>/calibration.json``, which ``run`` uses."""
    from edge_agent.analysis.analyzer import estimate_body_weight, total_force

    profile = load_profile(cfg.profile)
    phases: list[Phase] = ([] if skip_zero else [("zero", zero_s)]) + [("", settle_s), ("stand", stand_s)]
    if not skip_zero:
        print(
            f"calibrate: 1) insoles unloaded for {zero_s:.0f} s, 2) {settle_s:.0f} s to put them on and "
            f"stand up, 3) stand still on both feet for {stand_s:.0f} s",
            flush=True,
        )
    else:
        print(f"calibrate: in {settle_s:.0f} s, stand still on both feet for {stand_s:.0f} s", flush=True)
    data = await _collect_phases(cfg, profile, phases)
    offsets: dict[str, list[float]] = {}
    if not skip_zero:
        for side in ("left", "right"):
            frames = data.get("zero", {}).get(side)
            if frames is None or len(frames[1]) < 5:
                raise RuntimeError(f"too few frames from the {side} insole in the zero phase")
            offsets[side] = [float(x) for x in np.median(frames[1], axis=0)]
    stand = data.get("stand", {})
    if set(stand) != {"left", "right"}:
        raise RuntimeError("body weight needs frames from both insoles in the standing phase")
    totals = {}
    for side, (t, raw) in stand.items():
        off = np.asarray(offsets.get(side, np.zeros(profile.n_sensors)), dtype=np.float32)
        totals[side] = (t, np.asarray(total_force(profile, raw - off), dtype=np.float64))
    tl, fl = totals["left"]
    tr, fr = totals["right"]
    total = fl + np.interp(tl, tr, fr)
    bw = estimate_body_weight(tl, total)
    if bw is None:
        raise RuntimeError(
            f"calibrate: no quiet standing found in {stand_s:.0f} s (mean total {float(np.mean(total)):.0f} N); "
            "stand still on both feet and try again"
        )
    cal = Calibration(profile=profile.name, created_at=time.time(), offsets=offsets, body_weight_n=float(bw))
    cal.save(calibration_path(cfg))
    return cal


# -- record ----------------------------------------------------------------------------------------


async def record(cfg: AgentConfig, out: Path, *, duration_s: float | None = None, notes: str = "") -> dict[str, int]:
    """Raw capture of the configured source into a native recording (until duration or a signal)."""
    from edge_agent.recordings import RecordingWriter
    from edge_agent.sources import create_source

    profile = load_profile(cfg.profile)
    writer = RecordingWriter(
        out, profile.name, profile.n_sensors, body_mass_kg=cfg.body_mass_kg, notes=notes, start_time=time.time()
    )
    counts = {"frames": 0, "rejected": 0}
    stop = asyncio.Event()
    source = create_source(cfg.source, profile)
    t0: float | None = None
    try:
        with _Signals(stop.set):
            async with source:
                done: set[str] = set()
                grace = 0
                async for b in source.batches():
                    if len(b.t):
                        t0 = float(b.t[0]) if t0 is None else t0
                        rel = b.t - t0
                        keep = slice(None) if duration_s is None else rel < duration_s
                        try:
                            writer.append(b.side, rel[keep], b.raw[keep])
                            counts["frames"] += len(rel[keep])
                        except ValueError as err:  # RecordingError: bad frames are skipped, not fatal
                            counts["rejected"] += len(b.t)
                            log.warning("record: batch skipped: %s", err)
                        if duration_s is not None and rel[-1] >= duration_s:
                            if b.side in done:
                                grace += 1  # a one-sided source: don't wait for the other foot for ever
                            done.add(b.side)
                    if stop.is_set() or len(done) == 2 or grace > 8:
                        break
    finally:
        writer.close()
    return counts
