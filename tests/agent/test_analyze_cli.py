"""`footfall-agent analyze` end to end: a real subprocess on a real excerpt and on a simulated recording."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_agent.recordings import load_recording, save_recording
from tests.support.paths import DATA, REPO

MOTICON = DATA / "moticon_opengo_230927_102114_excerpt.txt.gz"
REQUIRED_STEP = {
    "side",
    "t_contact",
    "t_toe_off",
    "contact_ms",
    "strike_index",
    "strike_zone",
    "impact_peak",
    "valr_bw_s",
    "vilr_bw_s",
    "peak_force_bw",
    "lr_method",
    "flight_ms",
}
REQUIRED_SUMMARY = {
    "steps",
    "cadence_spm",
    "contact_ms_mean",
    "zones",
    "valr_bw_s_mean",
    "impact_peak_share",
    "feet",
    "asymmetry",
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The analyze command's own entry point (``footfall-agent analyze`` delegates to it)."""
    cmd = [sys.executable, "-m", "edge_agent.analysis.report", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=240)


def test_footfall_agent_analyze_entry_point() -> None:
    """The installed console script routes ``analyze`` here (skips while the agent CLI cannot import)."""
    probe = subprocess.run(
        [sys.executable, "-c", "import edge_agent.cli"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    if probe.returncode != 0:
        pytest.skip(f"edge_agent.cli does not import yet: {probe.stderr.strip().splitlines()[-1]}")
    exe = shutil.which("footfall-agent")
    cmd = [exe] if exe else [sys.executable, "-m", "edge_agent.cli"]
    r = subprocess.run(
        [*cmd, "analyze", str(MOTICON), "--format", "json", "--body-mass", "75"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=240,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["schema"] == "footfall.analyze/1"
    r = subprocess.run(
        [*cmd, "analyze", str(MOTICON), "--profile", "pedar-99"], capture_output=True, text=True, cwd=REPO, timeout=240
    )
    assert r.returncode == 2 and "99 sensors" in r.stderr


def test_json_on_real_moticon_excerpt() -> None:
    r = run(str(MOTICON), "--format", "json", "--body-mass", "75")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "footfall.analyze/1" and doc["profile"] == "moticon-opengo"
    assert doc["body_weight_source"] == "argument"
    assert doc["body_weight_n"] == pytest.approx(75 * 9.80665)
    assert set(doc["summary"]) >= REQUIRED_SUMMARY and {"left", "right"} == set(doc["summary"]["zones"])
    steps = doc["steps"]
    assert len(steps) >= 6 and all(set(s) >= REQUIRED_STEP for s in steps)
    # our initial contacts agree with the vendor's own step events in the same file (walking, 100 Hz)
    ref = load_recording(MOTICON).reference
    matched = []
    for side in ("left", "right"):
        ours = np.array([s["t_contact"] for s in steps if s["side"] == side])
        for t in ref[f"{side}_initial_contact_s"]:
            d = np.abs(ours - t)
            if d.size and d.min() < 0.1:
                matched.append(d.min())
    assert len(matched) >= 7
    assert np.median(matched) < 0.05
    # walking with heel strikes: the matched steps are mostly rearfoot
    zones = [s["strike_zone"] for s in steps]
    assert zones.count("rearfoot") >= 0.7 * len(zones)


def test_table_and_csv_on_a_simulated_run(tmp_path: Path) -> None:
    from edge_agent.profiles import load_profile
    from edge_agent.recordings.simulator import RunParams, simulate

    params = RunParams(
        duration_s=20.0, seed=3, strike_index_left=0.85, strike_index_right=0.85, impact_peak_bw=None, cadence_spm=176.0
    )
    rec, truth = simulate(load_profile("moticon-opengo"), params)
    path = tmp_path / "sim.ffrec"
    save_recording(rec, path)
    r = run(str(path), "--format", "csv")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    running = [t for t in truth if t.gait == "run"]
    assert abs(len(rows) - len(truth)) <= 2
    assert sum(row["strike_zone"] == "forefoot" for row in rows) >= 0.9 * len(running)
    r = run(str(path), "--format", "json")
    doc = json.loads(r.stdout)
    assert doc["summary"]["cadence_spm"] == pytest.approx(176.0, rel=0.05)
    assert doc["body_weight_source"] == "recording"
    r = run(str(path))  # default: table
    assert r.returncode == 0 and "cadence" in r.stdout and "forefoot" in r.stdout
    assert r.stdout.count("\n") > len(rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "pedar-99"], "profile 'pedar-99' has 99 sensors"),
        (["--format", "xml"], "--format 'xml'"),
        (["--body-mass", "-3"], "--body-mass"),
    ],
)
def test_bad_input_exits_2(args: list[str], message: str) -> None:
    r = run(str(MOTICON), *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_unknown_file_format_exits_2(tmp_path: Path) -> None:
    p = tmp_path / "holiday.jpg"
    p.write_bytes(b"\xff\xd8\xff\xe0 not a recording")
    r = run(str(p))
    assert r.returncode == 2 and "unknown recording format" in r.stderr


class _Source:
    """A frame source as far as the progress bar cares: how far it is, out of how much."""

    def __init__(self, total: int) -> None:
        self.total = total

    def progress(self) -> tuple[int, int]:
        return 0, self.total


def test_progress_bar_for_long_recordings() -> None:
    """tqdm draws to the given stream for a long recording even when it is not a TTY; never when disabled."""
    from edge_agent.analysis.report import LONG_RECORDING_FRAMES, _progress

    stream = io.StringIO()
    update, bar = _progress(_Source(LONG_RECORDING_FRAMES), True, stream)
    assert update is not None
    update(500, 1000)
    update(1000, 1000)
    assert (bar.n, bar.total) == (1000, 1000)
    bar.close()
    assert "analysing" in stream.getvalue()
    assert _progress(_Source(1000), True, io.StringIO()) == (None, None)  # short file, not a TTY
    assert _progress(_Source(LONG_RECORDING_FRAMES), False, io.StringIO()) == (None, None)


def test_segment_option_on_plantar_activity(shared_data: Path) -> None:
    seq = shared_data / "plantar-activity-moticon" / "S04" / "Sequence_01"
    r = run(str(seq), "--segment", "Walking on tiptoes", "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["summary"]["zone_share"]["forefoot"] > 0.6
    r = run(str(seq), "--segment", "Skydiving")
    assert r.returncode == 2 and "no segment 'Skydiving'" in r.stderr and "Walking" in r.stderr


SINGLE_ZONE_CSV = DATA / "analyze_v1" / "fukuchi_s8_100hz.csv"
#: ``analyze --format json`` of that CSV by the analysis before the loading-rate estimator (commit 1e56135).
BEFORE = DATA / "analyze_v1" / "fukuchi_s8_100hz.json"


def _paths(doc: object, prefix: str = "") -> dict[str, type]:
    """Every key path of a JSON document with its value's type (list items share one path)."""
    out: dict[str, type] = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            out[f"{prefix}.{k}"] = type(v)
            out.update(_paths(v, f"{prefix}.{k}"))
    elif isinstance(doc, list):
        for v in doc:
            out.update(_paths(v, f"{prefix}[]"))
    return out


def test_plain_csv_single_zone_force_with_body_mass_keeps_every_field_and_value() -> None:
    """A plain CSV through the single-zone-force profile with --body-mass: the same flags work, every JSON field
    of before is still there with its type, and what the sampling-rate work does not touch is unchanged —
    contacts, forces, impulses; the loading rate of before is kept as ``valr_sampled_bw_s``."""
    r = run(str(SINGLE_ZONE_CSV), "--profile", "single-zone-force", "--body-mass", "69", "--format", "json")
    assert r.returncode == 0, r.stderr
    new, old = json.loads(r.stdout), json.loads(BEFORE.read_text())
    p_new, p_old = _paths(new), _paths(old)
    missing = set(p_old) - set(p_new)
    assert not missing, missing
    changed = {k for k in p_old if p_old[k] is not p_new[k] and type(None) not in (p_old[k], p_new[k])}
    assert not changed, changed
    assert {"valr", "valr_lo_bw_s", "lr_model"} <= {k.rsplit(".", 1)[-1] for k in set(p_new) - set(p_old)}
    assert (new["schema"], new["profile"], new["body_weight_n"]) == (
        old["schema"],
        old["profile"],
        old["body_weight_n"],
    )
    assert new["quality"] == old["quality"] and len(new["steps"]) == len(old["steps"]) > 10
    for a, b in zip(new["steps"], old["steps"], strict=True):
        for k in ("side", "t_contact", "t_toe_off", "contact_ms", "flight_ms", "peak_force_bw", "impulse_bw_s",
                  "impact_peak", "lr_method", "impact_peak_bw"):  # fmt: skip
            assert a[k] == b[k], (k, a[k], b[k])
        assert a["valr_sampled_bw_s"] == b["valr_bw_s"]
        if a["lr_model"] == "sampled":  # VILR too is the samples' own where nothing was corrected
            assert a["vilr_bw_s"] == b["vilr_bw_s"]
        assert a["valr_lo_bw_s"] <= a["valr_bw_s"] <= a["valr_hi_bw_s"]
    est = new["summary"]["valr"]
    assert est["sample_rate_hz"] == 100.0 and est["lo"] <= est["mean"] <= est["hi"]
    assert est["mean"] == pytest.approx(new["summary"]["valr_bw_s_mean"])
