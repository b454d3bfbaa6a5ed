"""The agent end to end: `footfall-agent` in a subprocess → real broker → a raw paho subscriber."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.contract import LiveUpdate, RunSummary, WindowSummary, parse_stored_message
from edge_agent.profiles import load_profile
from edge_agent.recordings import FootStream, Recording, save_recording
from edge_agent.recordings.simulator import RunParams, simulate
from tests.support.ackers import Acker
from tests.support.paths import REPO

DEVICE = "pi-e2e"


class Subscriber:
    """A raw paho client collecting everything under footfall/<device>/#."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="e2e-sub")
        self.client.on_connect = lambda c, *_: (
            c.subscribe([(f"footfall/{DEVICE}/#", 1), (f"homeassistant/device/{DEVICE}/config", 1)]),
            self.ready.set(),
        )
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(10)
        time.sleep(0.2)  # let the SUBACK land

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    def retained_or_not(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def on(self, suffix: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t.endswith("/" + suffix)]

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def agent_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path.parent / "numba-cache-e2e")  # shared by the tests of one session
    env["PYTHONPATH"] = str(REPO)
    return env


def write_config(tmp_path: Path, url: str, *, ha: bool = False, **extra: object) -> Path:
    cfg: dict[str, object] = {
        "device_id": DEVICE,
        "runner": "ana",
        "state_dir": str(tmp_path / "state"),
        "mqtt": {"url": url, "ha_discovery": {"enabled": ha}},
        "outbox": {"drain_timeout_s": 20},
        "pipeline": {"run_detection": {"run_stop_s": 10}},
    }
    cfg.update(extra)
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def session_recording(path: Path) -> dict[str, float]:
    """standing 6 s → walking 10 s → running 40 s → walking 10 s → standing ~15 s, as one recording."""
    profile = load_profile("moticon-opengo")
    a, _ = simulate(profile, RunParams(standing_s=6, walking_s=10, duration_s=40, seed=11, body_mass_kg=66))
    b, _ = simulate(profile, RunParams(standing_s=15, duration_s=0.3, seed=12, body_mass_kg=66))
    shift = float(a.left.t[-1]) + 0.01
    feet = {}
    for side in ("left", "right"):
        fa, fb = getattr(a, side), getattr(b, side)
        feet[side] = FootStream(np.concatenate([fa.t, fb.t + shift]), np.concatenate([fa.raw, fb.raw]))
    rec = Recording(
        profile=profile.name,
        left=feet["left"],
        right=feet["right"],
        body_mass_kg=66.0,
        notes="e2e session",
        source="simulator",
    )
    save_recording(rec, path)
    return {"run_start": 16.0, "run_end": 56.0, "total": float(feet["left"].t[-1])}


@pytest.mark.timeout(180)
def test_replay_session_delivers_valid_summaries_end_to_end(broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rec_path = tmp_path / "session.ffrec"
    truth = session_recording(rec_path)
    sub = Subscriber(broker.port)
    acker = Acker("127.0.0.1", broker.port, client_id="e2e-acker").start()  # the plugin's side of delivery
    try:
        cfg = write_config(tmp_path, broker.url, ha=True)
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "edge_agent",
                "run",
                "--config",
                str(cfg),
                "--source",
                f"replay:{rec_path}",
                "--speed",
                "0",
                "--duration",
                "200",
                "--stats",
            ],
            capture_output=True,
            text=True,
            timeout=150,
            env=agent_env(tmp_path),
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        stats = json.loads(proc.stdout)
        time.sleep(0.5)
    finally:
        sub.stop()
        acker.stop()
    msgs = [parse_stored_message(p) for p in sub.on("summary") + sub.on("run")]
    runs = [m for m in msgs if isinstance(m, RunSummary)]
    wins = sorted((m for m in msgs if isinstance(m, WindowSummary)), key=lambda w: w.window_index)
    assert len(runs) == 1, [m.kind for m in msgs]
    run = runs[0]
    assert run.device_id == DEVICE and run.runner == "ana" and run.run_id.startswith(f"{DEVICE}-")
    assert len(wins) == run.windows and [w.window_index for w in wins] == list(range(run.windows))
    assert sum(w.steps for w in wins) == run.steps
    # the run was found where the runner ran: 16 s … 56 s of the session
    t0 = run.started_at - truth["run_start"]
    assert run.duration_s == pytest.approx(truth["run_end"] - truth["run_start"], abs=4.0)
    assert all(t0 + 12.0 <= r.t <= t0 + 60.0 for w in wins for r in w.step_records)
    assert run.cadence_spm == pytest.approx(170.0, rel=0.03)
    assert run.body_mass_kg == pytest.approx(66.0, rel=0.015)  # standing minus the unloaded insoles
    # sequence numbers 1..n in one stream, all stored once by the acking "plugin"
    assert sorted(m.seq for m in msgs) == list(range(1, len(msgs) + 1))
    assert stats["drained"] is True and stats["outbox"]["rows"] == 0
    assert acker.stored() == len(msgs) and acker.invalid == 0
    status = sub.on("status")
    assert status[0] == b"online" and status[-1] == b"offline"
    # the insoles were announced to Home Assistant (device discovery, availability on our status topic)
    disc = [json.loads(p) for p in sub.retained_or_not(f"homeassistant/device/{DEVICE}/config") if p]
    assert disc and disc[-1]["availability_topic"] == f"footfall/{DEVICE}/status"
    assert disc[-1]["dev"]["model"] == "moticon-opengo"


@pytest.mark.timeout(120)
def test_sigterm_flushes_the_run_summary(broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sub = Subscriber(broker.port)
    cfg = write_config(
        tmp_path,
        broker.url,
        source={"type": "simulator", "speed": 1.0, "params": {"duration_s": 600, "seed": 3}},
        outbox={"require_plugin_ack": False, "drain_timeout_s": 10},
        pipeline={"run_detection": {"run_start_s": 2}, "live_hz": 2},
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "run", "--config", str(cfg), "--body-mass", "70", "--stats"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=agent_env(tmp_path),
        cwd=tmp_path,
    )
    try:
        run_id = None
        deadline = time.monotonic() + 60
        while run_id is None and time.monotonic() < deadline and proc.poll() is None:
            for p in sub.on("live"):
                live = LiveUpdate.model_validate_json(p)
                run_id = run_id or live.run_id
            time.sleep(0.2)
        assert run_id is not None, "no run started"
        # the Docker/systemd health check sees the heartbeat of the running agent
        health = _cli(["health", "--state-dir", str(tmp_path / "state"), "--max-age", "30"], tmp_path, timeout=60)
        assert health.returncode == 0 and health.stdout.startswith("ok: heartbeat"), health.stdout + health.stderr
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.stop()
    assert proc.returncode == 0, err[-3000:]
    assert "SIGTERM received" in err
    stats = json.loads(out)
    assert stats["signal"] == "SIGTERM" and stats["drained"] is True
    runs = [parse_stored_message(p) for p in sub.on("run")]
    assert len(runs) == 1 and runs[0].run_id == run_id
    assert runs[0].steps > 0 and runs[0].windows >= 1
    # nothing left behind: the outbox of the stopped agent holds no undelivered summary
    assert stats["outbox"]["pubacked"] == stats["outbox"]["put"]
    stale = _cli(["health", "--state-dir", str(tmp_path / "state"), "--max-age", "0.001"], tmp_path, timeout=60)
    assert stale.returncode == 1 and "old" in stale.stdout


def test_bad_config_is_a_clear_error_with_a_line_number(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("device_id: pi\nsource:\n  type: replay\n  path: x.ffrec\n  speed: fast\n")
    proc = subprocess.run(
        [sys.executable, "-m", "edge_agent", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        env=agent_env(tmp_path),
    )
    assert proc.returncode == 2
    assert f"{cfg}:5: key 'source.replay.speed'" in proc.stderr and "'fast'" in proc.stderr
    assert "Traceback" not in proc.stderr


def _cli(args: list[str], tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=agent_env(tmp_path),
        cwd=tmp_path,
    )


def test_calibrate_zero_offsets_and_body_weight(tmp_path: Path) -> None:
    """Zero phase (unloaded, per-sensor offsets) then quiet standing, from one replayed recording."""
    profile = load_profile("moticon-opengo")
    rng = np.random.default_rng(0)
    offsets = rng.uniform(0.05, 0.4, size=(2, profile.n_sensors)).astype(np.float32)  # N/cm²
    stand, _ = simulate(profile, RunParams(standing_s=8, duration_s=0.3, swing_offset_n=0, seed=4, body_mass_kg=66))
    feet = {}
    fs = profile.sample_rate_hz
    for k, side in enumerate(("left", "right")):
        sim = getattr(stand, side)
        t_zero = np.arange(int(3 * fs)) / fs
        raw_zero = np.zeros((len(t_zero), profile.n_sensors), np.float32) + rng.normal(0, 0.01, (len(t_zero), 1))
        feet[side] = FootStream(
            np.concatenate([t_zero, sim.t + 3.0]),
            np.concatenate([raw_zero, sim.raw]).astype(np.float32) + offsets[k],
        )
    save_recording(Recording(profile=profile.name, left=feet["left"], right=feet["right"]), tmp_path / "cal.ffrec")
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1", source={"type": "replay", "path": "cal.ffrec", "speed": 0})
    proc = _cli(
        ["calibrate", "--config", str(cfg), "--zero-seconds", "3", "--settle-seconds", "0", "--stand-seconds", "8"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    cal = json.loads((tmp_path / "state" / "calibration.json").read_text())
    assert cal["profile"] == "moticon-opengo"
    np.testing.assert_allclose(cal["offsets"]["left"], offsets[0], atol=0.01)
    np.testing.assert_allclose(cal["offsets"]["right"], offsets[1], atol=0.01)
    assert cal["body_weight_n"] == pytest.approx(66 * 9.80665, rel=0.01)
    # without the zero step the offsets (Σ offset × area, both feet) inflate the body weight
    skip = _cli(
        ["calibrate", "--config", str(cfg), "--skip-zero", "--settle-seconds", "4", "--stand-seconds", "6"], tmp_path
    )
    assert skip.returncode == 0, skip.stderr[-2000:]
    inflated = json.loads((tmp_path / "state" / "calibration.json").read_text())["body_weight_n"]
    assert inflated > 66 * 9.80665 * 1.05
    # a standing phase with nobody standing is a clear error, not a wrong calibration
    bad = _cli(
        ["calibrate", "--config", str(cfg), "--zero-seconds", "1", "--settle-seconds", "0", "--stand-seconds", "2"],
        tmp_path,
    )
    assert bad.returncode == 1 and "no quiet standing" in bad.stderr


def test_record_simulate_and_profiles_commands(tmp_path: Path) -> None:
    from edge_agent.recordings import load_recording

    proc = _cli(
        [
            "record",
            "raw.ffrec",
            "--source",
            "simulator",
            "--speed",
            "0",
            "--duration",
            "5",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = load_recording(tmp_path / "raw.ffrec")
    assert rec.left is not None and rec.right is not None
    assert rec.left.raw.shape[1] == 16 and len(rec.left.t) == len(rec.right.t) == 500  # 5 s at 100 Hz
    assert (
        _cli(["record", "raw.ffrec", "--source", "simulator", "--speed", "0", "--duration", "1"], tmp_path).returncode
        != 0
    )  # never overwrites a recording
    proc = _cli(
        [
            "simulate",
            "sim.ffrec",
            "--profile",
            "pedar-99",
            "--duration-s",
            "6",
            "--cadence-spm",
            "180",
            "--spike",
            "1,3,1.5",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    sim = load_recording(tmp_path / "sim.ffrec")
    assert sim.profile == "pedar-99" and sim.left is not None and sim.left.raw.shape[1] == 99
    assert _cli(["simulate", "x.ffrec", "--cadence-spm", "20"], tmp_path).returncode == 2
    listed = _cli(["profiles", "list"], tmp_path)
    assert listed.returncode == 0 and "moticon-opengo" in listed.stdout and "pedar-99" in listed.stdout
    shown = _cli(["profiles", "show", "moticon-opengo"], tmp_path)
    assert json.loads(shown.stdout)["name"] == "moticon-opengo"
    assert _cli(["profiles", "show", "no-such-insole"], tmp_path).returncode == 2


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """The unit parses (systemd-analyze verify), restarts always, and runs hardened as its own user."""
    import shutil

    unit = (REPO / "docker" / "footfall-agent.service").read_text()
    for needed in (
        "Restart=always",
        "User=footfall",
        "StateDirectory=footfall",
        "ProtectSystem=strict",
        "Environment=NUMBA_CACHE_DIR=/var/cache/footfall",
        "Environment=FOOTFALL_KERNEL_DIR=/var/cache/footfall/kernels",
        "ExecStartPre=-/opt/footfall/bin/footfall-agent build-kernels --dir /var/cache/footfall/kernels",
        "NoNewPrivileges=true",
        "KillSignal=SIGTERM",
    ):
        assert needed in unit, needed
    analyze, exe = shutil.which("systemd-analyze"), shutil.which("footfall-agent")
    if analyze is None or exe is None:
        pytest.skip("systemd-analyze or an installed footfall-agent not available")
    path = tmp_path / "footfall-agent.service"
    path.write_text(unit.replace("/opt/footfall/bin/footfall-agent", exe))
    proc = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
    problems = [ln for ln in proc.stderr.splitlines() if "footfall-agent.service" in ln]
    assert proc.returncode == 0 and not problems, proc.stderr


@pytest.mark.timeout(240)
def test_read_only_package_with_numba_cache_dir(broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The package on a read-only mount (as under ProtectSystem=strict): kernels compile into
    --numba-cache-dir, nothing is written next to the code, the agent publishes."""
    import shutil

    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) for a private read-only bind mount")
    ro = tmp_path / "ro"
    shutil.copytree(REPO / "edge_agent", ro / "edge_agent", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "hardware_profiles", ro / "hardware_profiles")
    mount = f'mount --bind -o ro {ro} {ro} && exec "$0" "$@"'
    env = agent_env(tmp_path)
    env.pop("NUMBA_CACHE_DIR")
    env["PYTHONPATH"] = str(ro)
    probe = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            mount,
            sys.executable,
            "-c",
            f"import edge_agent, os; print(edge_agent.__file__); print(os.access({str(ro)!r}, os.W_OK))",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    if probe.returncode != 0:
        pytest.skip(f"private mount namespaces not permitted here: {probe.stderr.strip()[:200]}")
    assert probe.stdout.split() == [str(ro / "edge_agent" / "__init__.py"), "False"]
    cache = tmp_path / "numba-cache"
    cfg = write_config(tmp_path, broker.url, outbox={"require_plugin_ack": False, "drain_timeout_s": 10})
    proc = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            mount,
            sys.executable,
            "-m",
            "edge_agent",
            "run",
            "--config",
            str(cfg),
            "--source",
            "simulator",
            "--speed",
            "0",
            "--duration",
            "12",
            "--body-mass",
            "70",
            "--numba-cache-dir",
            str(cache),
            "--stats",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads(proc.stdout)
    assert stats["outbox"]["put"] >= 2 and stats["drained"] is True  # windows + run summary delivered
    assert list(cache.rglob("*.nbi")), "no numba cache index written"
    assert not list(ro.rglob("*.nbi")) and not list(ro.rglob("__pycache__"))


@pytest.mark.timeout(180)
def test_no_broker_keeps_everything_and_the_next_start_delivers_it(broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Out of range: the run is measured and stored; the next start (broker back) delivers it."""
    from edge_agent.tools.broker import free_port

    rec_path = tmp_path / "run.ffrec"
    profile = load_profile("moticon-opengo")
    rec, _ = simulate(profile, RunParams(duration_s=35, seed=21))
    save_recording(rec, rec_path)
    offline = write_config(tmp_path, f"mqtt://127.0.0.1:{free_port()}", outbox={"drain_timeout_s": 1})
    first = _cli(
        ["run", "--config", str(offline), "--source", f"replay:{rec_path}", "--speed", "0", "--stats"], tmp_path
    )
    assert first.returncode == 0, first.stderr[-2000:]
    s1 = json.loads(first.stdout)
    stored = s1["outbox"]["rows"]
    assert s1["drained"] is False and stored >= 4 and s1["outbox"]["sent"] == 0  # 3+ windows + the run
    assert "unreachable" in first.stderr
    acker = Acker("127.0.0.1", broker.port, client_id="e2e-acker-2").start()
    try:
        online = write_config(tmp_path, broker.url, outbox={"drain_timeout_s": 20})
        second = _cli(
            [
                "run",
                "--config",
                str(online),
                "--source",
                f"replay:{rec_path}",
                "--speed",
                "0",
                "--duration",
                "3",
                "--stats",
            ],
            tmp_path,
        )
        assert second.returncode == 0, second.stderr[-2000:]
        s2 = json.loads(second.stdout)
    finally:
        acker.stop()
    assert s2["drained"] is True and s2["outbox"]["rows"] == 0
    assert s2["outbox"]["stream_id"] == s1["outbox"]["stream_id"]  # same outbox, same stream
    assert acker.stored() == s2["outbox"]["last_seq"] >= stored  # everything from the first run arrived
    assert acker.invalid == 0


@pytest.mark.timeout(240)
def test_duration_means_seconds_of_simulated_running(broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`run --source simulator --duration 300` simulates a 300 s run: ~30 windows of 10 s, and one run of ~300 s
    (the simulator's own 60 s default run used to be all that was simulated)."""
    sub = Subscriber(broker.port)
    cfg = write_config(tmp_path, broker.url, outbox={"require_plugin_ack": False, "drain_timeout_s": 20})
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "edge_agent", "run", "--config", str(cfg), "--source", "simulator",
             "--speed", "0", "--duration", "300", "--stats"],
            capture_output=True, text=True, timeout=200, env=agent_env(tmp_path), cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        stats = json.loads(proc.stdout)
        time.sleep(0.5)
    finally:
        sub.stop()
    runs = [parse_stored_message(p) for p in sub.on("run")]
    assert len(runs) == 1 and isinstance(runs[0], RunSummary)
    assert runs[0].duration_s == pytest.approx(300.0, abs=8.0)
    assert 28 <= stats["pipeline"]["published"]["summary"] <= 32
    assert stats["drained"] is True
