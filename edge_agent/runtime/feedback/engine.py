"""The feedback engine: steps in, sounds out (docs/feedback.md).

It runs on the agent's asyncio loop and is fed by two things:

* :meth:`FeedbackEngine.on_steps`, a step listener of the pipeline, called on every wakeup with the steps just
  measured, the source time and the current activity. It keeps the metronome at the active target cadence while
  the runner runs (``metronome_when``), evaluates the recent loading rate and cadence on every step
  (:mod:`~edge_agent.runtime.feedback.monitor`) and asks the renderer for a cue when one leaves its band;
* :meth:`FeedbackEngine.on_target_message`, the MQTT callback of the runner's retained target topic
  (:class:`~edge_agent.runtime.feedback.targets.TargetKeeper` validates and stores it).

The renderer and the sink do the timing on the output's sample clock; the engine never sleeps to make a sound.
Every cue carries its cause — the toe-off of the step that crossed the band, on the agent's monotonic clock — so
the engine can report step → heard latency per cue (``stats["cues"]``), and the spoken summary every
``summary_every_min`` minutes is synthesised by espeak-ng off the loop and mixed into the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import statistics
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_agent.analysis.step import Step
from edge_agent.runtime.feedback.monitor import BandMonitor, CueLimiter, RecentSteps
from edge_agent.runtime.feedback.renderer import Onset, Renderer
from edge_agent.runtime.feedback.settings import FeedbackConfig
from edge_agent.runtime.feedback.sinks import FeedbackSink, create_sink
from edge_agent.runtime.feedback.sounds import SoundBank, synthesize
from edge_agent.runtime.feedback.targets import ActiveTarget, TargetKeeper

if TYPE_CHECKING:
    from edge_agent.common.mqtt import MqttMessage

log = logging.getLogger(__name__)

#: Source time within this of the monotonic clock: the source is live (or a real-time simulation), so step times
#: and output times are on one clock and latencies mean something.
LIVE_CLOCK_S = 2.0
#: Start the metronome on the runner's next footfall only if it is at least this far ahead (the output needs it).
ALIGN_LEAD_S = 0.08


def summary_text(cadence: float | None, valr: float | None, baseline: float | None) -> str | None:
    """ "cadence 172, loading down 12 percent" (vs the baseline), or the plain value without a baseline."""
    parts = []
    if cadence is not None:
        parts.append(f"cadence {round(cadence)}")
    if valr is not None:
        if baseline:
            pct = round(100.0 * (valr - baseline) / baseline)
            trend = f"{'up' if pct > 0 else 'down'} {abs(pct)} percent" if pct else "on baseline"
            parts.append(f"loading {trend}")
        else:
            parts.append(f"loading rate {round(valr)}")
    return ", ".join(parts) or None


class FeedbackEngine:
    """``async with FeedbackEngine(cfg, runner=…, state_dir=…) as fb:`` opens the sink; see the module docstring."""

    def __init__(self, cfg: FeedbackConfig, *, runner: str | None, state_dir: Path) -> None:
        if cfg.sink.type == "none":
            raise ValueError("feedback needs a sink")
        self.cfg = cfg
        self.targets = TargetKeeper(state_dir, runner, cadence_override_spm=cfg.target_cadence_spm)
        sink = cfg.sink
        if sink.type == "gpio":
            self.sounds = SoundBank.gpio(sink.pulse_ms)
        else:
            assert sink.type in ("alsa", "pulse", "wav")
            self.sounds = SoundBank.audio(sink.sample_rate_hz, cfg.volume)
        self.renderer = Renderer(self.sounds.fs, self.sounds.click, latency_offset_s=cfg.latency_offset_ms / 1000.0)
        self.sink: FeedbackSink = create_sink(cfg.sink, self.renderer)
        self.recent = RecentSteps(cfg.loading_window_steps, cfg.cadence_window_steps)
        self.loading_band = BandMonitor()
        self.cadence_band = BandMonitor()
        self.limiter = CueLimiter(20.0, 60.0)
        self._cued_at: dict[str, float | None] = {"loading": None, "cadence": None}
        self._pending: set[str] = set()
        self._played: deque[Onset] = deque(maxlen=1024)
        self.renderer.onset_listeners.append(self._played.append)
        self.cues: list[dict[str, Any]] = []
        self.summaries: list[str] = []
        self._tempo: float | None = None
        self._summary_steps: list[Step] = []
        self._next_summary: float | None = None
        self._speech: asyncio.Task[None] | None = None
        self._speech_failed = False
        self._live_clock = True
        self._opened = False

    # -- lifecycle -------------------------------------------------------------------------------------------------
    async def __aenter__(self) -> FeedbackEngine:
        await asyncio.to_thread(self.sink.open)
        self._opened = True
        a = self.targets.active()
        log.info("feedback on %s: target %s (%s)", self.sink.name, _describe(a), a.source)
        if self.cfg.metronome_when == "always":
            self._set_tempo(a)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._speech is not None:
            self._speech.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._speech
        if self._opened:
            self._opened = False
            await asyncio.to_thread(self.sink.close)
        self._collect_onsets()

    # -- inputs ----------------------------------------------------------------------------------------------------
    def on_target_message(self, msg: MqttMessage) -> None:
        accepted, _ = self.targets.offer(msg.payload)
        if accepted:
            self.loading_band.reset()
            self.cadence_band.reset()
            if self._tempo is not None or self.cfg.metronome_when == "always":
                self._set_tempo(self.targets.active())

    def on_steps(self, steps: list[Step], now: float, activity: str) -> None:
        """Pipeline step listener: ``steps`` measured in this wakeup, source time ``now``, current activity."""
        self._live_clock = abs(now - time.monotonic()) < LIVE_CLOCK_S
        self._collect_onsets()
        target = self.targets.active()
        running = activity == "running"
        if running:
            self.recent.add(steps)
            self._summary_steps.extend(steps)
        elif activity != "unknown":
            self.recent.clear()  # a stop at a crossing: judge the next stretch on its own steps
            self.loading_band.reset()
            self.cadence_band.reset()
        if self.cfg.metronome_when == "always" or running:
            self._set_tempo(target)
        else:
            self._set_tempo(None)
        if running and steps:
            self._evaluate(target, now)
        self._maybe_summary(target, now, running)

    # -- metronome -------------------------------------------------------------------------------------------------
    def _set_tempo(self, target: ActiveTarget | None) -> None:
        spm = target.cadence.spm if target is not None and target.cadence and target.cues.metronome else None
        if spm == self._tempo:
            return
        first = None
        if self._tempo is None and spm is not None:
            first = self._next_footfall()
        self._tempo = spm
        self.renderer.set_tempo(spm, first_heard_at=first)

    def _next_footfall(self) -> float | None:
        """The runner's next initial contact (monotonic), to start the metronome in step with them."""
        last, period = self.recent.last, self.recent.step_period_s()
        if last is None or period is None or not self._live_clock:
            return None
        t = last.t_contact + period
        now = time.monotonic()
        if t < now + ALIGN_LEAD_S + self.renderer.clock.latency_offset_s:
            t += period * math.ceil((now + ALIGN_LEAD_S + self.renderer.clock.latency_offset_s - t) / period)
        return t

    # -- cues ------------------------------------------------------------------------------------------------------
    def _evaluate(self, target: ActiveTarget, now: float) -> None:
        cues = target.cues
        self.limiter.min_interval_s, self.limiter.repeat_s = cues.min_interval_s, cues.repeat_s
        h = self.cfg.hysteresis_pct / 100.0
        due: list[tuple[str, str, float]] = []  # (measure, sound, value)
        if target.loading is not None and cues.loading_cue:
            ceiling = target.loading.ceiling_bw_s
            valr = self.recent.loading_bw_s()
            went = self.loading_band.update(valr, None, ceiling, h * ceiling)
            if self._due("loading", went, self.loading_band.state, now):
                assert valr is not None
                due.append(("loading", "loading", valr))
        if target.cadence is not None and cues.cadence_cue:
            c = target.cadence
            cad = self.recent.cadence()
            margin = min(h * c.spm, c.band_spm / 2.0)  # back inside the band, never past its middle
            went = self.cadence_band.update(cad, c.spm - c.band_spm, c.spm + c.band_spm, margin)
            state = self.cadence_band.state
            if self._due("cadence", went, state, now):
                assert cad is not None and state is not None
                due.append(("cadence", f"cadence_{state}", cad))
        for measure, sound, value in due:  # loading first: it is the injury-relevant one
            if not self.limiter.allows(now):
                self._pending.add(measure)  # cued as soon as the interval allows, if still out of band then
                continue
            self._pending.discard(measure)
            last = self.recent.last
            assert last is not None
            cause = last.t_toe_off if self._live_clock else None
            self.renderer.play(sound, self.sounds.cues[sound], cause_t=cause, value=round(value, 1))
            self.limiter.record(now)
            self._cued_at[measure] = now
            cue: dict[str, Any] = {"sound": sound, "value": round(value, 1), "step_toe_off": last.t_toe_off}
            if self._live_clock:  # toe-off → decided here: the kernels' confirmation, the batch, the analysis
                cue["decided_ms"] = round(1000.0 * (time.monotonic() - last.t_toe_off), 1)
            self.cues.append(cue)
            log.info("feedback cue %s: recent %s %.1f", sound, measure, value)

    def _due(self, measure: str, went: str | None, state: str | None, now: float) -> bool:
        """Cue ``measure`` now? On leaving its band, when a rate-limited cue is pending, or as a repeat."""
        if state is None:
            self._cued_at[measure] = None
            self._pending.discard(measure)
            return False
        return went is not None or measure in self._pending or self.limiter.repeat_due(self._cued_at[measure], now)

    # -- spoken summary --------------------------------------------------------------------------------------------
    def _maybe_summary(self, target: ActiveTarget, now: float, running: bool) -> None:
        every = target.cues.summary_every_min
        if every is None or not self.sounds.speech_ok or self._speech_failed or not running:
            self._next_summary = None if not running else self._next_summary
            return
        if self._next_summary is None:
            self._next_summary = now + 60.0 * every
            self._summary_steps = []
            return
        if now < self._next_summary or (self._speech is not None and not self._speech.done()):
            return
        self._next_summary = now + 60.0 * every
        steps, self._summary_steps = self._summary_steps, []
        from edge_agent.analysis.aggregator import cadence_spm

        valrs = [s.valr_bw_s for s in steps if s.valr_bw_s is not None and math.isfinite(s.valr_bw_s)]
        baseline = target.loading.baseline_bw_s if target.loading is not None else None
        text = summary_text(cadence_spm(steps), statistics.median(valrs) if valrs else None, baseline)
        if text:
            self._speech = asyncio.get_running_loop().create_task(self._say(text), name="footfall-feedback-speech")

    async def _say(self, text: str) -> None:
        cfg = self.cfg
        try:
            wave = await synthesize(
                text, fs=self.sounds.fs, volume=cfg.volume, espeak=cfg.espeak, voice=cfg.voice, wpm=cfg.voice_wpm
            )
        except (OSError, ValueError, TimeoutError) as err:
            self._speech_failed = True
            log.warning("spoken summary off for this run: %s could not speak (%s)", cfg.espeak, err)
            return
        self.renderer.play("speech", wave, text=text)
        self.summaries.append(text)
        log.info("feedback summary: %s", text)

    # -- reporting -------------------------------------------------------------------------------------------------
    def _collect_onsets(self) -> None:
        """Latency of each cue rendered since the last call: toe-off of its step → heard (output + offset)."""
        clock = self.renderer.clock
        while self._played:
            o = self._played.popleft()
            if o.kind == "click" or o.cause_t is None:
                continue
            heard = clock.heard_at(o.sample)
            for cue in reversed(self.cues):
                if cue["step_toe_off"] == o.cause_t and "latency_ms" not in cue:
                    cue["sample"] = o.sample
                    if heard is not None:
                        cue["latency_ms"] = round(1000.0 * (heard - o.cause_t), 1)
                    break

    @property
    def stats(self) -> dict[str, Any]:
        lat = [c["latency_ms"] for c in self.cues if "latency_ms" in c]
        a = self.targets.active()
        return {
            "sink": self.sink.name,
            "output": self.sink.stats,
            "target": {"source": a.source, "target_id": a.target_id, "summary": _describe(a)},
            "targets_accepted": self.targets.accepted,
            "targets_rejected": dict(self.targets.rejected),
            "clicks": self.renderer.clicks,
            "cues": self.cues[-50:],
            "cue_latency_ms": {"n": len(lat), "max": max(lat), "median": float(np.median(lat))} if lat else None,
            "summaries": self.summaries[-10:],
        }


def _describe(a: ActiveTarget) -> str:
    parts = []
    if a.cadence is not None:
        parts.append(f"cadence {a.cadence.spm:.0f} ± {a.cadence.band_spm:g} spm")
    if a.loading is not None:
        parts.append(f"VALR ≤ {a.loading.ceiling_bw_s:.1f} BW/s")
    return ", ".join(parts) or "none (silent)"
