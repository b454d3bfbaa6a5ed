"""The sinks with their real libraries: the WAV writer paced at the audio rate, gpiozero driving a pin (its mock pin
factory stands in for the Pi's GPIO chip), PortAudio through ALSA (its ``null`` plugin stands in for a sound card),
and a clear error naming the extra when a library is missing (edge_agent/runtime/feedback/sinks/)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from edge_agent.runtime.feedback.renderer import Renderer
from edge_agent.runtime.feedback.settings import FeedbackConfig, GpioSinkConfig, WavSinkConfig
from edge_agent.runtime.feedback.sinks import FeedbackError, MissingFeedbackExtra, create_sink
from edge_agent.runtime.feedback.sounds import SoundBank
from tests.support.audio import CLICK_BAND, onsets, read_wav
from tests.support.paths import REPO
from tests.support.waiting import wait_until


def test_wav_sink_writes_the_rendered_samples_paced_in_whole_blocks(tmp_path: Path) -> None:
    cfg = WavSinkConfig(path=tmp_path / "out.wav", sample_rate_hz=8000, block_ms=10)
    bank = SoundBank.audio(8000, 0.5)
    r = Renderer(8000, bank.click)
    sink = create_sink(cfg, r)
    r.set_tempo(180.0)
    sink.open()
    assert wait_until(lambda: r.pos >= 8000, timeout=20)  # a second of audio (paced: about a second)
    r.play("loading", bank.cues["loading"], cause_t=time.monotonic(), value=70.0)
    assert wait_until(lambda: r.pos >= 16000, timeout=20)
    sink.close()
    x, fs = read_wav(cfg.path)
    assert fs == 8000 and len(x) == r.pos and len(x) % 80 == 0
    clicks = onsets(x, fs, CLICK_BAND, threshold=0.05)
    period = 8000 * 60 / 180
    # the file holds the scheduler's grid exactly (the band-pass delays each onset alike)
    assert np.ptp(clicks - clicks[0] - np.arange(len(clicks)) * period) <= 1.0
    side = json.loads((tmp_path / "out.wav.json").read_text())
    assert side["sample_rate_hz"] == 8000 and side["samples"] == len(x)
    kinds = [o["kind"] for o in side["onsets"]]
    assert kinds.count("loading") == 1 and kinds.count("click") == len(clicks)
    [cue] = [o for o in side["onsets"] if o["kind"] == "loading"]
    assert cue["sample"] % 80 == 0 and 0.0 <= cue["latency_ms"] <= 10.0 + 50.0  # next block (+ scheduling)
    assert side["t0_unix"] - side["t0_monotonic"] == pytest.approx(time.time() - time.monotonic(), abs=0.5)


def test_wav_sink_refuses_a_path_it_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "dir.wav").mkdir()
    sink = create_sink(WavSinkConfig(path=tmp_path / "dir.wav"), Renderer(8000, np.ones(1, np.float32)))
    with pytest.raises(FeedbackError, match="wav sink: cannot write"):
        sink.open()


def test_gpio_sink_pulses_the_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    gpiozero = pytest.importorskip("gpiozero", reason="pip install 'footfall[gpio]'")
    from gpiozero.pins.mock import MockFactory

    monkeypatch.setattr(gpiozero.Device, "pin_factory", MockFactory())
    cfg = GpioSinkConfig(pin="GPIO18", device="motor")
    bank = SoundBank.gpio(cfg.pulse_ms)
    r = Renderer(bank.fs, bank.click)
    sink = create_sink(cfg, r)
    sink.open()
    pin = gpiozero.Device.pin_factory.pin(18)
    r.set_tempo(240.0)  # a pulse every 250 ms
    assert wait_until(lambda: r.clicks >= 5, timeout=20)
    r.set_tempo(None)
    time.sleep(0.2)  # the last click's pulse ends first
    r.play("cadence_low", bank.cues["cadence_low"])  # three short pulses
    assert wait_until(lambda: not r.sounding, timeout=20)
    time.sleep(0.1)
    sink.close()
    states = [s.state for s in pin.states]
    rising = sum(1 for a, b in itertools.pairwise(states) if not a and b)
    assert rising == r.clicks + 3
    assert states[-1] is False  # left off
    on_ms = [1000 * b.timestamp for a, b in zip(pin.states[:-1], pin.states[1:], strict=True) if a.state]
    assert len(on_ms) == rising  # every pulse ended
    stats = sink.stats
    assert stats["edges"] == 2 * rising and stats["edge_error_ms_max"] is not None


def test_gpio_sink_names_a_bad_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    gpiozero = pytest.importorskip("gpiozero", reason="pip install 'footfall[gpio]'")
    from gpiozero.pins.mock import MockFactory

    monkeypatch.setattr(gpiozero.Device, "pin_factory", MockFactory())
    sink = create_sink(GpioSinkConfig(pin="GPIO99"), Renderer(1000, np.ones(1, np.float32)))
    with pytest.raises(FeedbackError, match="cannot drive pin 'GPIO99'"):
        sink.open()


@pytest.mark.parametrize(("module", "sink", "extra"), [("sounddevice", "alsa", "audio"), ("gpiozero", "gpio", "gpio")])
def test_a_missing_library_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: str, sink: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    cfg = FeedbackConfig(sink={"type": sink, **({"pin": "18"} if sink == "gpio" else {})})  # type: ignore[arg-type]
    s = create_sink(cfg.sink, Renderer(1000, np.ones(1, np.float32)))
    with pytest.raises(MissingFeedbackExtra, match=rf"pip install 'footfall\[{extra}\]'"):
        s.open()


PORTAUDIO_PROGRAM = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from edge_agent.runtime.feedback.renderer import Renderer
    from edge_agent.runtime.feedback.settings import AlsaSinkConfig
    from edge_agent.runtime.feedback.sinks import create_sink
    from edge_agent.runtime.feedback.sounds import SoundBank

    bank = SoundBank.audio(48000, 0.5)
    r = Renderer(48000, bank.click)
    got = []
    r.onset_listeners.append(got.append)
    sink = create_sink(AlsaSinkConfig(device=sys.argv[1], block_ms=10), r)
    r.set_tempo(180.0)
    sink.open()
    deadline = time.monotonic() + 20
    while r.pos < 48000 * 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    sink.close()
    print(json.dumps({"pos": r.pos, "clicks": [o.sample for o in got], "stats": sink.stats,
                      "anchored": r.clock.anchored}))
    """
)


def test_portaudio_sink_renders_through_alsa(tmp_path: Path) -> None:
    """A real PortAudio stream on ALSA's ``null`` PCM (it consumes samples without a clock, so this checks the
    callback path and the click grid, not timing). Needs Debian's libportaudio2 and sounddevice."""
    pytest.importorskip("sounddevice", reason="pip install 'footfall[audio]' and apt install libportaudio2")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text("pcm.footfall_null { type null }\n")
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", PORTAUDIO_PROGRAM, "footfall_null"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["pos"] >= 96000 and out["anchored"] and out["stats"]["callbacks"] > 0
    period = 48000 * 60 / 180
    assert out["clicks"] == [round(k * period) for k in range(len(out["clicks"]))]
    bad = subprocess.run(
        [sys.executable, "-c", PORTAUDIO_PROGRAM, "no-such-device"], capture_output=True, text=True, env=env, timeout=60
    )
    assert bad.returncode != 0 and "alsa sink: cannot open audio device 'no-such-device'" in bad.stderr


def test_the_agent_stops_with_one_clear_line_when_its_sink_cannot_open(tmp_path: Path) -> None:
    from tests.support.brokers import free_port

    (tmp_path / "home").mkdir()
    env = {**os.environ, "HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO), "GPIOZERO_PIN_FACTORY": ""}
    env = {k: v for k, v in env.items() if not k.startswith("FOOTFALL_")}
    for spec, message in (
        ("alsa:no-such-card", "alsa sink: cannot open audio device 'no-such-card'"),
        (f"wav:{tmp_path}", "wav sink: cannot write"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "edge_agent", "run", "--source", "simulator", "--duration", "2",
             "--state-dir", str(tmp_path / "state"), "--broker", f"mqtt://127.0.0.1:{free_port()}",
             "--feedback", spec],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert message in proc.stderr and "Traceback" not in proc.stderr
