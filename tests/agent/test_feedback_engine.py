"""When the agent cues: hysteresis, the rate limit and repeats, the metronome following the activity, and the
spoken summary through the real espeak-ng (edge_agent/runtime/feedback/monitor.py, engine.py, sounds.py)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_agent.analysis.step import Step
from edge_agent.contract import CueSettings
from edge_agent.runtime.feedback.engine import FeedbackEngine, summary_text
from edge_agent.runtime.feedback.monitor import BandMonitor, CueLimiter, RecentSteps
from edge_agent.runtime.feedback.settings import FeedbackConfig
from edge_agent.runtime.feedback.sounds import SoundBank, decode_wav_pipe, synthesize
from plugin.targets import make_target, target_payload

PERIOD = 60.0 / 170.0


def steps(valrs: list[float | None], t0: float = 1000.0, period: float = PERIOD) -> list[Step]:
    out = []
    for i, v in enumerate(valrs):
        t = t0 + i * period
        out.append(
            Step("left" if i % 2 == 0 else "right", t, t + 0.25, 250.0, 0.15, "rearfoot", False, True, v,
                 None if v is None else 1.3 * v, "impact_peak", True, 2.5, 0.3)
        )  # fmt: skip
    return out


def test_recent_loading_is_the_median_of_a_full_window() -> None:
    r = RecentSteps(loading_window=6, cadence_window=4)
    r.add(steps([50, 51, None, 52, 200, 49]))
    assert r.loading_bw_s() is None  # five steps with a VALR: not yet
    r.add(steps([53], t0=1000.0 + 6 * PERIOD))
    assert r.loading_bw_s() == pytest.approx(51.5)  # one outlier moves nothing
    assert r.cadence() == pytest.approx(170.0, rel=1e-9)  # the last 4 steps, the summaries' definition
    r.clear()
    assert r.loading_bw_s() is None and r.cadence() is None and r.last is None


def test_band_monitor_hysteresis() -> None:
    m = BandMonitor()
    ceiling, margin = 55.0, 1.65
    seq = [50, 56, 54.5, 56, 55.1, 53.0, 56.0, 54.0]
    went = [m.update(v, None, ceiling, margin) for v in seq]
    # out at 56; 54.5 and 55.1 stay out (not 1.65 below the ceiling); back at 53.0; out again at 56.0
    assert went == [None, "high", None, None, None, None, "high", None]
    m = BandMonitor()
    low, high = 169.0, 175.0
    went = [m.update(v, low, high, 1.0) for v in [172, 168.5, 169.5, 170.5, 176, 174.5, 173.9]]
    assert went == [None, "low", None, None, "high", None, None]
    assert m.state is None
    assert m.update(None, low, high, 1.0) is None


def test_cue_limiter() -> None:
    lim = CueLimiter(min_interval_s=20.0, repeat_s=60.0)
    assert lim.allows(0.0)
    lim.record(0.0)
    assert not lim.allows(19.9) and lim.allows(20.0)
    assert not lim.repeat_due(0.0, 59.0) and lim.repeat_due(0.0, 60.0)
    assert not CueLimiter(20.0, None).repeat_due(0.0, 1e9)


def engine(tmp_path: Path, **cfg: object) -> FeedbackEngine:
    fb = FeedbackConfig(sink={"type": "wav", "path": tmp_path / "x.wav", "sample_rate_hz": 8000}, **cfg)
    return FeedbackEngine(fb, runner="alex", state_dir=tmp_path)


def give_target(e: FeedbackEngine, **kw: object) -> None:
    from edge_agent.common.mqtt import MqttMessage

    t = make_target("alex", **kw)  # type: ignore[arg-type]
    e.on_target_message(MqttMessage("footfall/_runners/alex/target", target_payload(t), True, 1))


def feed(e: FeedbackEngine, valrs: list[float], t0: float, activity: str = "running") -> float:
    """One step per wakeup, as the pipeline delivers them; returns the source time after the last."""
    now = t0
    for s in steps(valrs, t0):
        now = s.t_toe_off + 0.085
        e.on_steps([s], now, activity)
    return now


def test_one_cue_per_excursion_at_most_one_per_interval_and_repeats(tmp_path: Path) -> None:
    e = engine(tmp_path)
    give_target(e, valr_max_bw_s=55.0, cues={"min_interval_s": 20.0, "repeat_s": 30.0})
    feed(e, [50.0] * 10, 1000.0)
    assert e.cues == []
    feed(e, [62.0] * 6, 1004.0)  # out: one cue, when the median crosses (the 3rd high step of 6)
    assert [c["sound"] for c in e.cues] == ["loading"]
    assert e.cues[0]["step_toe_off"] == pytest.approx(1004.0 + 2 * PERIOD + 0.25)
    feed(e, [54.0, 56.0, 54.0, 56.0, 54.5, 56.0] * 3, 1006.5)  # hovering at the edge: still the same excursion
    assert len(e.cues) == 1
    feed(e, [50.0] * 8, 1013.0)  # back in band …
    feed(e, [62.0] * 8, 1016.0)  # … and out again 12 s after the first cue: rate-limited
    assert len(e.cues) == 1
    feed(e, [62.0] * 20, 1019.0)  # still out once 20 s have passed since the first cue: the held cue sounds now
    assert len(e.cues) == 2 and e.cues[1]["step_toe_off"] - e.cues[0]["step_toe_off"] >= 20.0
    t = feed(e, [62.0] * 100, 1025.0)  # out for good: reminded every 30 s
    times = [c["step_toe_off"] for c in e.cues]
    assert len(times) == 3 and times[2] - times[1] == pytest.approx(30.0, abs=PERIOD + 0.01)
    assert t - times[2] < 30.0


def test_cadence_cues_say_which_way(tmp_path: Path) -> None:
    e = engine(tmp_path, cadence_window_steps=8)
    give_target(e, cadence_spm=180.0, cadence_band_spm=3.0, cues={"min_interval_s": 3.0})
    feed(e, [50.0] * 12, 1000.0)  # 170 spm: too slow
    assert [c["sound"] for c in e.cues] == ["cadence_low"]
    now = 1010.0
    for s in steps([50.0] * 30, now, period=60.0 / 190.0):
        e.on_steps([s], s.t_toe_off + 0.085, "running")
    assert [c["sound"] for c in e.cues] == ["cadence_low", "cadence_high"]


def test_cues_only_while_running_and_a_stop_starts_afresh(tmp_path: Path) -> None:
    e = engine(tmp_path)
    give_target(e, valr_max_bw_s=55.0, cues={"min_interval_s": 3.0})
    feed(e, [70.0] * 12, 1000.0, activity="walking")
    assert e.cues == []
    feed(e, [70.0] * 4, 1010.0)  # running again: the window starts empty, so no cue before 6 steps
    assert e.cues == []
    feed(e, [70.0] * 2, 1012.0)
    assert len(e.cues) == 1


def test_metronome_follows_the_activity_and_the_target(tmp_path: Path) -> None:
    e = engine(tmp_path)
    r = e.renderer
    e.on_steps([], 10.0, "standing")
    assert e._tempo is None  # no target yet
    give_target(e, cadence_spm=176.0)
    e.on_steps([], 11.0, "standing")
    assert e._tempo is None  # metronome_when: running
    e.on_steps([], 12.0, "running")
    assert e._tempo == 176.0
    r.render(8000)
    assert r.clicks >= 2
    give_target(e, cadence_spm=172.0, cues={"metronome": False}, now=2e9)
    e.on_steps([], 13.0, "running")
    assert e._tempo is None
    always = engine(tmp_path / "b", metronome_when="always", target_cadence_spm=160.0)
    always.on_steps([], 1.0, "standing")
    assert always._tempo == 160.0


def test_summary_text() -> None:
    assert summary_text(172.4, 52.8, 60.0) == "cadence 172, loading down 12 percent"
    assert summary_text(172.4, 66.0, 60.0) == "cadence 172, loading up 10 percent"
    assert summary_text(None, 60.1, 60.0) == "loading on baseline"
    assert summary_text(170.0, 58.0, None) == "cadence 170, loading rate 58"
    assert summary_text(None, None, None) is None


needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt)")


@needs_espeak
async def test_espeak_ng_speech_is_decoded_and_resampled() -> None:
    wave = await synthesize("cadence 172", fs=16_000, volume=0.5, espeak="espeak-ng", voice="en", wpm=165)
    assert 0.4 * 16_000 < len(wave) < 3 * 16_000
    assert np.abs(wave).max() == pytest.approx(0.45, rel=0.02)


def test_a_wav_stream_from_a_pipe_is_read_to_its_end() -> None:
    import struct

    pcm = (np.sin(np.arange(100) / 5) * 10_000).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, 22050, 44100, 2, 16)
    data = b"RIFF" + b"\xff\xff\xff\x7f" + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
    data += b"data" + b"\x00\xf0\xff\x7f" + pcm
    x, rate = decode_wav_pipe(data)
    assert rate == 22050 and len(x) == 100
    for bad in (b"", b"RIFF....WAVE", data.replace(b"fmt ", b"fmx ")):
        with pytest.raises(ValueError):
            decode_wav_pipe(bad)


@needs_espeak
async def test_spoken_summary_every_n_minutes(tmp_path: Path) -> None:
    e = engine(tmp_path)
    give_target(e, cadence_spm=170.0, cadence_band_spm=10.0, valr_baseline_bw_s=60.0, valr_max_pct_of_baseline=120.0,
                cues=CueSettings(summary_every_min=1.0, metronome=False))  # fmt: skip
    t = 1000.0
    e.on_steps([], t, "running")  # the clock starts: first summary one minute from here
    n = int(61 / PERIOD)
    for s in steps([52.8] * n, t + 0.1):
        e.on_steps([s], s.t_toe_off + 0.085, "running")
    assert e._speech is not None
    await asyncio.wait_for(e._speech, 20)
    assert e.summaries == ["cadence 170, loading down 12 percent"]
    got = []
    e.renderer.onset_listeners.append(got.append)
    e.renderer.render(8000)
    assert [o.kind for o in got] == ["speech"] and got[0].info["text"] == e.summaries[0]


async def test_speech_failure_turns_the_summary_off_quietly(tmp_path: Path) -> None:
    e = engine(tmp_path, espeak=str(tmp_path / "no-such-espeak"))
    give_target(e, cadence_spm=170.0, cues=CueSettings(summary_every_min=1.0))
    e.on_steps([], 1000.0, "running")
    for s in steps([50.0] * 200, 1000.1):
        e.on_steps([s], s.t_toe_off + 0.085, "running")
    assert e._speech is not None
    await e._speech
    assert e._speech_failed and e.summaries == []


def test_gpio_patterns_are_on_off() -> None:
    bank = SoundBank.gpio(25.0)
    assert bank.fs == 1000 and len(bank.click) == 25 and set(np.unique(bank.click)) == {1.0}
    assert set(bank.cues) == {"loading", "cadence_low", "cadence_high"}
    assert all(set(np.unique(c)) <= {0.0, 1.0} for c in bank.cues.values())
    assert not bank.speech_ok


def test_cadence_hysteresis_never_reaches_past_the_middle_of_the_band(tmp_path: Path) -> None:
    """3 % of 176 spm is 5.3 spm, more than the ±3 spm band: a runner back at 175 is back in band (re-armed)."""
    e = engine(tmp_path, cadence_window_steps=8)
    give_target(e, cadence_spm=176.0, cadence_band_spm=3.0, cues={"min_interval_s": 3.0})
    t = 1000.0
    for spm in (176.0, 170.0, 175.0, 170.0):
        for s in steps([50.0] * 16, t, period=60.0 / spm):
            e.on_steps([s], s.t_toe_off + 0.085, "running")
        t += 16 * 60.0 / spm + 0.01
    assert [c["sound"] for c in e.cues] == ["cadence_low", "cadence_low"]
