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
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.analysis.kernels import load_kernels
from edge_agent.config import AgentConfig
from edge_agent.contract import LiveUpdate, Topics
from edge_agent.profiles import HardwareProfile, load_profile
from edge_agent.runtime.pipeline import Calibration, OutboxSink, Pipeline, warm_up

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
HEARTBEAT_FILE = "heartbeat.json"
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


def _write_heartbeat(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def check_health(state_dir: Path, max_age_s: float) -> tuple[bool, str]:
    """For ``footfall-agent health`` (Docker HEALTHCHECK): is the running agent's heartbeat fresh?"""
    path = state_dir / HEARTBEAT_FILE
    try:
        data = json.loads(path.read_text())
        age = time.time() - float(data["time"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        return False, f"no heartbeat at {path}: {err}"
    if age > max_age_s:
        return False, f"heartbeat {age:.0f} s old (> {max_age_s:.0f} s) at {path}"
    return True, f"ok: heartbeat {age:.1f} s old, activity {data.get('activity')}, backlog {data.get('backlog')}"


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


async def run_agent(cfg: AgentConfig, *, duration_s: float | None = None) -> dict[str, Any]:
    """Run until the source ends, ``duration_s`` (source seconds) passed, or a signal; returns stats."""
    from edge_agent.common.mqtt import BrokerSettings, MqttConnection
    from edge_agent.runtime.ha_discovery import HaDiscovery
    from edge_agent.runtime.outbox import Outbox
    from edge_agent.runtime.publisher import OutboxPublisher
    from edge_agent.sources import create_source

    profile = load_profile(cfg.profile)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    topics = Topics(cfg.device_id, cfg.mqtt.base_topic)
    outbox = Outbox(
        cfg.outbox_path,
        cfg.device_id,
        max_rows=cfg.outbox.max_rows,
        max_bytes=int(cfg.outbox.max_mb * 1e6),
        max_age_s=cfg.outbox.max_age_s,
        retention_without_plugin_s=cfg.outbox.retention_without_plugin_s,
        require_plugin_ack=cfg.outbox.require_plugin_ack,
    )
    settings = BrokerSettings.from_config(cfg.mqtt, cfg.client_id)  # the dashboard's ingest builds it alike
    log.info(
        "footfall agent %s: profile %s, source %s, broker %s, outbox %s (%d rows carried over)",
        cfg.device_id,
        profile.name,
        cfg.source.type,
        settings.redacted_url(),
        cfg.outbox_path,
        outbox.backlog,
    )
    t_start = time.monotonic()
    first_publish: dict[str, float] = {}
    stats: dict[str, Any] = {}
    try:
        async with MqttConnection(settings, will=(topics.status, b"offline", True)) as conn:
            # New rows wake the publisher directly (outbox listener), so the idle poll and the PUBACK
            # bookkeeping can be slow: fewer wakeups is most of the agent's real-time CPU.
            publisher = OutboxPublisher(conn, outbox, topics, poll_s=PUBLISHER_POLL_S, puback_flush_s=1.0)
            pub_task = asyncio.create_task(publisher.run(), name="footfall-outbox-publisher")
            discovery = None
            if cfg.mqtt.ha_discovery.enabled:
                discovery = HaDiscovery(conn, topics, prefix=cfg.mqtt.ha_discovery.prefix, model=profile.name)
                discovery.start()

            # Signals from here on: a SIGTERM during the (possibly long, cold-cache) kernel warm-up
            # still ends cleanly, with the retained "offline" status.
            stop_early = asyncio.Event()
            pipeline_ref: list[Pipeline] = []

            def on_signal() -> None:
                stop_early.set()
                for p in pipeline_ref:
                    p.request_stop()

            with _Signals(on_signal) as sigs:
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

                def live(msg: LiveUpdate) -> bool:
                    """QoS 0, never stored: if the broker is away the update is simply skipped."""
                    if not conn.connected.is_set():
                        return False
                    conn.publish_nowait(topics.live, msg.model_dump_json(exclude_none=True), qos=0)
                    first_publish.setdefault("live", time.monotonic() - t_start)
                    return True

                pipeline = Pipeline(
                    profile,
                    device_id=cfg.device_id,
                    runner=cfg.runner,
                    sink=OutboxSink(outbox, topics),
                    settings=cfg.pipeline,
                    live=live,
                    body_mass_kg=cfg.body_mass_kg,
                    analysis_overrides=cfg.analysis.overrides(),
                    calibration=load_calibration(cfg),
                    backlog=lambda: outbox.backlog,
                )
                pipeline_ref.append(pipeline)
                hb_path = cfg.state_dir / HEARTBEAT_FILE

                async def heartbeat() -> None:
                    while True:
                        with contextlib.suppress(OSError):
                            _write_heartbeat(
                                hb_path,
                                {
                                    "time": time.time(),
                                    "pid": os.getpid(),
                                    "activity": pipeline.tracker.activity,
                                    "run_id": pipeline.run_id,
                                    "backlog": outbox.backlog,
                                    "connected": conn.connected.is_set(),
                                },
                            )
                        await asyncio.sleep(HEARTBEAT_EVERY_S)

                hb_task = asyncio.create_task(heartbeat(), name="footfall-heartbeat")
                source = create_source(cfg.source, profile)
                if not stop_early.is_set():
                    async with source:
                        await pipeline.run(source, duration_s=duration_s, lossless=cfg.source.type in LOSSLESS_SOURCES)
                # Deliver what we can; the rest stays in the outbox for the next start.
                drained = True
                if outbox.undelivered():
                    log.info("draining the outbox (up to %.0f s)", cfg.outbox.drain_timeout_s)
                    if await conn.wait_connected(min(cfg.outbox.drain_timeout_s, 5.0)):
                        drained = await publisher.drain(cfg.outbox.drain_timeout_s)
                    else:
                        drained = False
                        log.warning("broker unreachable: %d messages kept in the outbox", outbox.undelivered())
            hb_task.cancel()
            pub_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pub_task
            if discovery is not None:
                discovery.stop()
            stats = {
                "pipeline": pipeline.stats,
                "source": source.stats,
                "outbox": outbox.stats(),
                "publisher": dict(publisher.stats),
                "drained": drained,
                "signal": sigs.received,
                "first_live_s": first_publish.get("live"),
                "warm_up_s": warm_s,
                "kernels": kernels.backend,
                "numba_loaded": "numba" in sys.modules,
            }
    finally:
        outbox.close()
    log.info("agent stopped: %s", json.dumps(stats.get("pipeline", {}), default=str))
    return stats


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
