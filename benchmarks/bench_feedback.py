"""In-run feedback, measured: step → cue latency, metronome jitter, and the GPIO output's timing.

1. **Step → cue latency.** ``footfall-agent run --feedback wav:…`` in a subprocess on a simulated run (real time)
   with a loading spike every ``--spike-every`` seconds, against a private broker. For every spike, the
   *crossing step* is found in the step records the agent published (the first step after which the median
   VALR of the last six exceeds the ceiling — the engine's rule, re-implemented here from its definition), and
   the cue in the WAV's samples (band-pass onset). Latency = cue's first sample (on the WAV sidecar's time base)
   − the crossing step's toe-off (step record ``t`` + ``contact_ms``). Also printed: the agent's own account.
2. **Metronome jitter** in the same WAV: every click onset against the ideal grid at the target cadence.
3. **WAV writer lateness**: how late the paced writer rendered its blocks (what a device would see as underrun
   risk), from the sidecar.
4. **GPIO timing**: the gpio sink driving gpiozero's mock pin for ``--gpio-seconds`` at 180 spm; each rising
   edge against its ideal time on the monotonic clock (thread wake-up jitter of this machine).

Prints numbers only; asserts nothing. ``python benchmarks/bench_feedback.py [--seconds 90] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_agent.contract import WindowSummary, parse_stored_message  # noqa: E402
from edge_agent.tools.broker import make_broker  # noqa: E402
from tests.support.audio import CLICK_BAND, LOADING_CUE_BAND, grid_deviation_ms, onsets, read_wav  # noqa: E402

SEED = 5
TARGET_SPM = 176.0
CEILING_PCT = 115.0
WINDOW = 6


def spikes_and_baseline(seconds: float, every: float) -> tuple[list[tuple[float, float, float]], float]:
    from edge_agent.analysis.analyzer import GaitAnalyzer
    from edge_agent.profiles import load_profile
    from edge_agent.recordings.simulator import RunParams, simulate

    profile = load_profile("moticon-opengo")
    rec, truths = simulate(profile, RunParams(duration_s=seconds, seed=SEED))
    run = [t for t in truths if t.gait == "run"]
    spikes = []
    at = 10.0
    while at < seconds - 5.0:
        i = next(k for k, t in enumerate(run) if t.t_contact > at)
        spikes.append(
            (0.5 * (run[i - 1].t_contact + run[i].t_contact), 0.5 * (run[i + 2].t_contact + run[i + 3].t_contact), 2.5)
        )
        at += every
    ga = GaitAnalyzer(profile, 70.0 * 9.80665)
    steps = [*ga.feed("left", rec.left.t, rec.left.raw), *ga.feed("right", rec.right.t, rec.right.raw), *ga.flush()]
    return spikes, statistics.median(s.valr_bw_s for s in steps if s.valr_bw_s is not None)


def crossing_steps(records: list, ceiling: float, hysteresis: float) -> list:
    """The steps at which the median of the last WINDOW VALRs leaves the band (with the engine's hysteresis)."""
    out, window, high = [], [], False
    for r in records:
        window = [*window, r.valr_bw_s][-WINDOW:]
        if len(window) < WINDOW:
            continue
        m = statistics.median(window)
        if high and m < ceiling * (1 - hysteresis):
            high = False
        elif not high and m > ceiling:
            high = True
            out.append(r)
    return out


def latency_run(seconds: float, every: float, work: Path, batch_ms: float | None = None) -> dict[str, object]:
    from plugin.config import MqttConfig
    from plugin.targets import make_target, publish_over_mqtt

    spikes, baseline = spikes_and_baseline(seconds, every)
    broker = make_broker(work / "broker")
    broker.start()
    windows: list[WindowSummary] = []
    lock = threading.Lock()
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-feedback-sub")
    ready = threading.Event()
    sub.on_connect = lambda c, *_: (c.subscribe("footfall/bench-fb/summary", 1), ready.set())

    def on_message(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
        m = parse_stored_message(msg.payload)
        with lock:
            windows.append(m)  # type: ignore[arg-type]

    sub.on_message = on_message
    try:
        cues = {"min_interval_s": 3.0, "repeat_s": None}
        target = make_target("bench", cadence_spm=TARGET_SPM, cadence_band_spm=10.0, valr_baseline_bw_s=baseline,
                             valr_max_pct_of_baseline=CEILING_PCT, cues=cues)  # fmt: skip
        asyncio.run(publish_over_mqtt(MqttConfig(url=broker.url), target))
        sub.connect("127.0.0.1", broker.port)
        sub.loop_start()
        ready.wait(10)
        wav = work / "bench.wav"
        cfg = {
            "device_id": "bench-fb", "runner": "bench", "state_dir": str(work / "state"),
            "mqtt": {"url": broker.url, "ha_discovery": {"enabled": False}},
            "outbox": {"require_plugin_ack": False, "drain_timeout_s": 5},
            "source": {"type": "simulator", "speed": 1.0,
                       "params": {"seed": SEED, "spikes": [list(s) for s in spikes]}},
            "feedback": {"sink": {"type": "wav", "path": str(wav), "sample_rate_hz": 48000}},
        }  # fmt: skip
        if batch_ms is not None:
            cfg["source"]["batch_ms"] = batch_ms  # type: ignore[index]
        (work / "agent.yaml").write_text(yaml.safe_dump(cfg))
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
        env["PYTHONPATH"] = str(REPO)
        proc = subprocess.run(
            [sys.executable, "-m", "edge_agent", "run", "-c", str(work / "agent.yaml"), "--duration", str(seconds),
             "--stats"], capture_output=True, text=True, env=env, timeout=seconds + 120,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        stats = json.loads(proc.stdout)
        time.sleep(0.5)
    finally:
        sub.loop_stop()
        sub.disconnect()
        broker.stop()
    x, fs = read_wav(wav)
    side = json.loads(wav.with_name(wav.name + ".json").read_text())
    t0 = side["t0_unix"] + side["latency_offset_ms"] / 1000.0
    cue_t = [t0 + n / fs for n in onsets(x, fs, LOADING_CUE_BAND, threshold=0.1, refractory_s=1.0)]
    records = sorted((r for w in windows for r in w.step_records if r.valr_bw_s is not None), key=lambda r: r.t)
    ceiling = baseline * CEILING_PCT / 100.0
    latencies = []
    for step in crossing_steps(records, ceiling, 0.03):
        toe_off = step.t + step.contact_ms / 1000.0
        after = [c - toe_off for c in cue_t if 0.0 <= c - toe_off < 2.0]
        if after:
            latencies.append(1000.0 * after[0])
    clicks = onsets(x, fs, CLICK_BAND, threshold=0.05)
    jitter = np.abs(grid_deviation_ms(clicks, fs, TARGET_SPM))
    lat = np.asarray(latencies)
    own = [c["latency_ms"] for c in stats["feedback"]["cues"] if "latency_ms" in c]
    decided = [c["decided_ms"] for c in stats["feedback"]["cues"] if "decided_ms" in c]
    return {
        "spikes": len(spikes),
        "cues_in_wav": len(cue_t),
        "step_to_cue_ms": {
            "n": len(lat), "median": float(np.median(lat)), "p95": float(np.percentile(lat, 95)),
            "max": float(lat.max()), "min": float(lat.min()),
        } if len(lat) else None,
        "agent_own_latency_ms": {"n": len(own), "median": float(np.median(own)), "max": float(max(own))}
        if own else None,
        "toe_off_to_decision_ms": {"median": float(np.median(decided)), "max": float(max(decided))}
        if decided else None,
        "per_cue": [{k: c.get(k) for k in ("decided_ms", "latency_ms")} for c in stats["feedback"]["cues"]],
        "clicks": len(clicks),
        "click_cadence_spm": 60.0 * fs / float(np.median(np.diff(clicks))),
        "click_jitter_ms": {"max": float(jitter.max()), "p99": float(np.percentile(jitter, 99))},
        "wav_writer": side["writer"],
    }  # fmt: skip


def gpio_run(seconds: float) -> dict[str, object]:
    import gpiozero
    from gpiozero.pins.mock import MockFactory

    from edge_agent.runtime.feedback.renderer import Renderer
    from edge_agent.runtime.feedback.settings import GpioSinkConfig
    from edge_agent.runtime.feedback.sinks import create_sink
    from edge_agent.runtime.feedback.sounds import SoundBank

    gpiozero.Device.pin_factory = MockFactory()
    cfg = GpioSinkConfig(pin="GPIO18")
    bank = SoundBank.gpio(cfg.pulse_ms)
    r = Renderer(bank.fs, bank.click)
    sink = create_sink(cfg, r)
    sink.open()
    r.set_tempo(180.0)
    time.sleep(seconds)
    sink.close()
    errs = np.abs(np.asarray(sink.edge_errors_s)) * 1000.0  # type: ignore[attr-defined]
    pin = gpiozero.Device.pin_factory.pin(18)
    t, rises = 0.0, []
    for a, b in zip(pin.states[:-1], pin.states[1:], strict=True):
        t += b.timestamp
        if not a.state and b.state:
            rises.append(t)
    intervals = np.diff(rises) * 1000.0
    return {
        "pulses": len(rises),
        "edge_error_ms": {"median": float(np.median(errs)), "p99": float(np.percentile(errs, 99)),
                          "max": float(errs.max())},
        "pulse_interval_ms": {"ideal": 60000.0 / 180.0, "min": float(intervals.min()), "max": float(intervals.max())},
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=90.0, help="simulated run length (real time)")
    ap.add_argument("--spike-every", type=float, default=8.0, help="seconds between loading spikes")
    ap.add_argument("--gpio-seconds", type=float, default=30.0)
    ap.add_argument("--batch-ms", type=float, help="source batch length (default: the agent's, 100 ms with feedback)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results: dict[str, object] = {"machine": f"{os.cpu_count()} cores, {os.uname().machine}"}
    with tempfile.TemporaryDirectory(prefix="bench-feedback-") as tmp:
        results["wav"] = latency_run(args.seconds, args.spike_every, Path(tmp), args.batch_ms)
        print(
            f"agent + wav sink, batches {args.batch_ms or 'default'}:", json.dumps(results["wav"], indent=1), flush=True
        )
    results["gpio"] = gpio_run(args.gpio_seconds)
    print("gpio sink (gpiozero mock pin):", json.dumps(results["gpio"], indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
