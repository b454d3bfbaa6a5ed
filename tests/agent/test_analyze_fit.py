"""`footfall-agent analyze … --format fit` end to end (real subprocesses) on a real excerpt, a real running
recording without a start time and a simulated run; each file is read back with Garmin's decoder and compared
with the steps of the same command's ``--format json`` report."""

from __future__ import annotations

import json
import math
import os
import pty
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from statistics import mean
from typing import Any

import pytest

from edge_agent.analysis.fit_export import recording_fit
from edge_agent.analysis.step import Step
from edge_agent.common.fitfile import FitExportError
from edge_agent.recordings import load_recording, save_recording
from tests.support.fit import BALANCE_TOL, FLOAT32_REL, SPM_TOL, STANCE_MS_TOL, DecodedFit, decode, spm, unix
from tests.support.paths import DATA, REPO

MOTICON = DATA / "moticon_opengo_230927_102114_excerpt.txt.gz"
FUKUCHI = DATA / "RBDS008runT35forces.txt.gz"
WINDOW_S = 10.0
#: The JSON report rounds to 6 decimals (docs/recordings.md), so values restated from it carry ±5e-7.
JSON_ABS = 1e-6


def analyze(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[bytes]:
    """The installed ``footfall-agent`` (else its module) as a user runs it."""
    exe = shutil.which("footfall-agent")
    cmd = [exe] if exe else [sys.executable, "-m", "edge_agent.cli"]
    return subprocess.run([*cmd, "analyze", *args], capture_output=True, cwd=cwd, timeout=240)


def report(path: Path, *args: str) -> dict[str, Any]:
    r = analyze(str(path), "--format", "json", *args)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def fit_of(path: Path, out: Path, *args: str) -> tuple[DecodedFit, str]:
    r = analyze(str(path), "--format", "fit", "--out", str(out), *args)
    assert r.returncode == 0, r.stderr.decode()
    return decode(out.read_bytes()), r.stdout.decode() + r.stderr.decode()


def windows_of(steps: list[dict[str, Any]]) -> list[tuple[float, float, list[dict[str, Any]]]]:
    """The documented cut: 10-s windows from the first initial contact, a step in the window of its contact,
    the last window ending at the last toe-off."""
    t0 = min(s["t_contact"] for s in steps)
    end = max(s["t_toe_off"] for s in steps)
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for s in steps:
        groups[int((s["t_contact"] - t0) // WINDOW_S)].append(s)
    return [(t0 + k * WINDOW_S, min(t0 + (k + 1) * WINDOW_S, end), g) for k, g in sorted(groups.items())]


def expected_values(steps: list[dict[str, Any]]) -> dict[str, float]:
    """The window measures restated from their definitions (docs/design.md §4), for steps without pauses."""
    times = sorted(s["t_contact"] for s in steps)
    assert all(b - a < 2.0 for a, b in pairwise(times)), "a pause: the plain formula is wrong"
    by_side = {side: [s for s in steps if s["side"] == side] for side in ("left", "right")}
    left, right = (mean(s["contact_ms"] for s in by_side[side]) for side in ("left", "right"))
    out = {
        "spm": (len(times) - 1) / (times[-1] - times[0]) * 60.0,
        "stance_ms": mean(s["contact_ms"] for s in steps),
        "balance": 100.0 * left / (left + right),
        "valr": mean(s["valr_bw_s"] for s in steps),
    }
    # The 90 % interval of each step's VALR (docs/measures.md): the window means of its bounds.
    for name, key in (("valr_low", "valr_lo_bw_s"), ("valr_high", "valr_hi_bw_s")):
        bounds = [s[key] for s in steps if s.get(key) is not None]
        if bounds:
            out[name] = mean(bounds)
    for side in ("left", "right"):
        si = [s["strike_index"] for s in by_side[side] if s["strike_index"] is not None]
        if si:
            out[f"strike_index_{side}"] = mean(si)
    zoned = [s["strike_zone"] for s in steps if s["strike_zone"] is not None]
    for zone in ("rearfoot", "midfoot", "forefoot") if zoned else ():
        out[f"{zone}_share"] = 100.0 * zoned.count(zone) / len(zoned)
    return out


def assert_record(fit: DecodedFit, rec: dict[str, Any], want: dict[str, float]) -> None:
    assert spm(rec) == pytest.approx(want["spm"], abs=SPM_TOL)
    assert rec["stance_time"] == pytest.approx(want["stance_ms"], abs=STANCE_MS_TOL)
    assert rec["stance_time_balance"] == pytest.approx(want["balance"], abs=BALANCE_TOL)
    dev = fit.developer("record", rec)
    for name in (
        "valr",
        "valr_low",
        "valr_high",
        "strike_index_left",
        "strike_index_right",
        "rearfoot_share",
        "midfoot_share",
    ):
        if name in want:
            assert dev[name] == pytest.approx(want[name], rel=FLOAT32_REL, abs=JSON_ABS), name
        else:
            assert name not in dev


def assert_windows(fit: DecodedFit, steps: list[dict[str, Any]], start_unix: float) -> int:
    """Each record is a whole second inside a window and holds that window's values; returns the record count."""
    expected = [
        (second, win)
        for a, b, win in windows_of(steps)
        for second in range(math.ceil(start_unix + a), math.ceil(start_unix + b))
    ]
    assert fit.count("record") == len(expected)
    for rec, (second, win) in zip(fit.records, expected, strict=True):
        assert unix(rec["timestamp"]) == second
        assert_record(fit, rec, expected_values(win))
    return len(expected)


def test_real_moticon_excerpt(tmp_path: Path) -> None:
    """6 s of real walking with heel strikes: one window; the FIT file says what the JSON report says."""
    doc = report(MOTICON, "--body-mass", "75")
    fit, log = fit_of(MOTICON, tmp_path / "moticon.fit", "--body-mass", "75")
    start = load_recording(MOTICON).start_time
    assert start is not None
    assert_windows(fit, doc["steps"], start)
    sm = doc["summary"]
    session = fit.one("session")
    assert session["sport"] == "walking"  # the agent's classifier: double support, ~88 spm
    assert spm(session, "avg_") == pytest.approx(sm["cadence_spm"], abs=SPM_TOL)
    assert session["avg_stance_time"] == pytest.approx(sm["contact_ms_mean"], abs=STANCE_MS_TOL)
    feet = sm["feet"]
    left, right = feet["left"]["contact_ms"]["mean"], feet["right"]["contact_ms"]["mean"]
    assert session["avg_stance_time_balance"] == pytest.approx(100 * left / (left + right), abs=BALANCE_TOL)
    dev = fit.developer("session", session)
    assert dev["valr"] == pytest.approx(sm["valr_bw_s_mean"], rel=FLOAT32_REL, abs=JSON_ABS)
    si_left = feet["left"]["strike_index"]["mean"]
    assert dev["strike_index_left"] == pytest.approx(si_left, rel=FLOAT32_REL, abs=JSON_ABS)
    assert dev["rearfoot_share"] == pytest.approx(100 * sm["zone_share"]["rearfoot"], rel=FLOAT32_REL)
    assert session["total_strides"] == round(sm["steps"] / 2)
    assert unix(session["start_time"]) == math.floor(start + min(s["t_contact"] for s in doc["steps"]))
    assert fit.messages["device_info_mesgs"][1]["product_name"] == "moticon-opengo"
    assert "local time without zone; read as UTC" in log  # the export's start time, with the caveat
    assert f"wrote {tmp_path / 'moticon.fit'}: {(tmp_path / 'moticon.fit').stat().st_size} bytes" in log


def test_real_running_without_start_time_or_centre_of_pressure(tmp_path: Path) -> None:
    """Treadmill running on a force plate: no start time (placed by the file's modification time, said so), no
    centre of pressure (no strike-index or zone fields), default output name in the current directory."""
    copy = tmp_path / FUKUCHI.name
    shutil.copyfile(FUKUCHI, copy)
    mtime = 1_760_000_000
    os.utime(copy, (mtime, mtime))
    doc = report(copy)
    r = analyze(str(copy), "--format", "fit", cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    out = tmp_path / "RBDS008runT35forces.fit"
    assert "does not state when it was recorded" in r.stderr.decode()
    fit = decode(out.read_bytes())
    rec = load_recording(copy)
    t_last = max(float(fs.t[-1]) for _, fs in rec.streams())
    assert assert_windows(fit, doc["steps"], mtime - t_last) >= 5
    assert fit.one("session")["sport"] == "running"
    assert {d["field_name"] for d in fit.messages["field_description_mesgs"]} == {"valr", "valr_low", "valr_high"}
    # --out - writes the same bytes to a pipe
    piped = analyze(str(copy), "--format", "fit", "--out", "-", cwd=tmp_path)
    assert piped.returncode == 0 and piped.stdout == out.read_bytes()


def test_simulated_run_gives_one_record_per_second_with_window_values(tmp_path: Path) -> None:
    from edge_agent.profiles import load_profile
    from edge_agent.recordings.simulator import RunParams, simulate

    params = RunParams(duration_s=60.0, seed=11, cadence_spm=174.0, strike_index_left=0.2, strike_index_right=0.55)
    rec, truth = simulate(load_profile("moticon-opengo"), params)
    rec.start_time = 1_750_000_000.25
    path = tmp_path / "sim.ffrec"
    save_recording(rec, path)
    doc = report(path)
    fit, _ = fit_of(path, tmp_path / "sim.fit")
    n = assert_windows(fit, doc["steps"], rec.start_time)
    assert len(windows_of(doc["steps"])) >= 6 and n >= 55
    session = fit.one("session")
    assert session["sport"] == "running"
    assert spm(session, "avg_") == pytest.approx(doc["summary"]["cadence_spm"], abs=SPM_TOL)
    running = [t for t in truth if t.gait == "run"]
    assert spm(session, "avg_") == pytest.approx(params.cadence_spm, rel=0.05) and len(running) > 100
    assert session["total_strides"] == round(len(doc["steps"]) / 2)
    names = {d["field_name"] for d in fit.messages["field_description_mesgs"]}
    assert {"valr", "strike_index_left", "strike_index_right", "rearfoot_share", "forefoot_share"} <= names


def test_no_steps_is_a_clear_error(tmp_path: Path) -> None:
    """A recording where nobody stepped: exit 2, one line, no file."""
    path = tmp_path / "still.csv"
    rows = ["time," + ",".join(f"left_{i}" for i in range(1, 9))]
    rows += [f"{i / 100:.2f}," + ",".join("0" for _ in range(8)) for i in range(500)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    r = analyze(str(path), "--profile", "diy-esp32-fsr8", "--format", "fit", "--out", str(tmp_path / "x.fit"))
    assert r.returncode == 2, r.stderr.decode()
    assert "no steps found" in r.stderr.decode() and b"Traceback" not in r.stderr
    assert not (tmp_path / "x.fit").exists()


@dataclass
class IntervalStep(Step):
    """A step with the 90 % VALR interval the loading-rate analysis adds (``valr_lo_bw_s``/``valr_hi_bw_s``)."""

    valr_lo_bw_s: float | None = None
    valr_hi_bw_s: float | None = None


def _steps(n: int, spm_: float = 170.0) -> list[IntervalStep]:
    dt = 60.0 / spm_
    out = []
    for i in range(n):
        valr = 50.0 + (i % 7)
        out.append(
            IntervalStep(
                side="left" if i % 2 == 0 else "right",
                t_contact=1.0 + i * dt,
                t_toe_off=1.25 + i * dt,
                contact_ms=250.0 + (i % 3),
                strike_index=0.2,
                strike_zone="rearfoot",
                zone_uncertain=False,
                impact_peak=True,
                valr_bw_s=valr,
                vilr_bw_s=valr * 1.5,
                lr_method="impact_peak",
                lr_low_confidence=False,
                peak_force_bw=2.5,
                impulse_bw_s=0.3,
                valr_lo_bw_s=valr - 4.0,
                valr_hi_bw_s=valr + 5.0,
            )
        )
    return out


def test_the_valr_interval_reaches_the_file_when_the_analysis_gives_one() -> None:
    """Steps that carry a 90 % VALR interval get valr_low/valr_high fields: the window means of the bounds."""
    steps = _steps(75)  # ~26 s at 170 spm: windows 10 + 10 + ~6 s
    fit = decode(recording_fit(steps, name="synthetic", profile="moticon-opengo", start_unix=1_750_000_000.0).data)
    windows = windows_of([s.to_dict() for s in steps])
    assert len(windows) == 3
    for rec in fit.records:
        t = unix(rec["timestamp"]) - 1_750_000_000.0
        (win,) = [w for a, b, w in windows if a <= t < b]
        dev = fit.developer("record", rec)
        assert dev["valr_low"] == pytest.approx(mean(s["valr_lo_bw_s"] for s in win), rel=FLOAT32_REL)
        assert dev["valr_high"] == pytest.approx(mean(s["valr_hi_bw_s"] for s in win), rel=FLOAT32_REL)
        assert dev["valr"] == pytest.approx(mean(s["valr_bw_s"] for s in win), rel=FLOAT32_REL)
    assert fit.one("session")["sport"] == "running"
    with pytest.raises(FitExportError, match="no steps found"):
        recording_fit([], name="empty", profile="moticon-opengo", start_unix=1_750_000_000.0)


def test_binary_output_is_never_written_to_a_terminal() -> None:
    master, terminal = pty.openpty()
    try:
        exe = shutil.which("footfall-agent")
        cmd = [exe] if exe else [sys.executable, "-m", "edge_agent.cli"]
        r = subprocess.run([*cmd, "analyze", str(MOTICON), "--format", "fit", "--out", "-"], stdout=terminal,
                           stderr=subprocess.PIPE, cwd=REPO, timeout=240)  # fmt: skip
    finally:
        os.close(terminal)
        os.close(master)
    assert r.returncode == 2 and b"a FIT file is binary" in r.stderr
