"""The analysis against real recordings with independent labels (skips loudly without ../shared/data)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge_agent.analysis import validate
from tests.support.paths import REPO


@pytest.fixture(scope="module")
def results(shared_data: Path) -> dict[str, Any]:
    return validate.run_validation(shared_data)


def test_moticon_steps_match_the_vendor_gait_reports(results: dict[str, Any]) -> None:
    reports = results["moticon_gait_reports"]
    assert len(reports) == 2
    for g in reports:
        assert g["matched"] >= 0.9 * g["vendor_steps"], g
        assert abs(g["ic_ms"]["mean"]) < 40 and g["ic_ms"]["max_abs"] < 80, g["ic_ms"]  # 100 Hz: 10 ms/sample
        assert abs(g["to_ms"]["mean"]) < 100, g["to_ms"]
        # CoP at initial contact (the vendor's gait-line start) within ~0.03 of foot length on average
        assert abs(g["start_x"]["mean"]) < 0.03 and abs(g["start_y"]["mean"]) < 0.05, g
        assert g["first_peak_pct"]["n"] >= 0.5 * g["matched"]
        assert abs(g["first_peak_pct"]["mean"]) < 15, g["first_peak_pct"]


def _pooled(rows: list[dict[str, Any]], label: str, zone: str) -> float:
    n = sum(r[label]["steps"] for r in rows if label in r)
    k = sum(r[label][zone] * r[label]["steps"] for r in rows if label in r and r[label]["steps"])
    return k / n


def test_walking_is_rearfoot_and_tiptoes_forefoot(results: dict[str, Any]) -> None:
    rows = results["plantar_activity"]
    assert len(rows) >= 5
    assert _pooled(rows, "Walking", "rearfoot") > 0.7
    assert _pooled(rows, "Walking on tiptoes", "forefoot") > 0.75
    for r in rows:
        assert r["Walking on tiptoes"]["si_mean"] > r["Walking"]["si_mean"] + 0.2, r["sequence"]


def test_standing_body_weight_from_the_insoles(results: dict[str, Any]) -> None:
    """Ours uses the size-7 cell areas; these insoles are another size, whose areas are 0.914× (fit)."""
    for r in results["plantar_activity"]:
        assert 300 < r["standing_bw_n"] < 1500
        assert r["standing_bw_n"] / r["standing_bw_vendor_n"] == pytest.approx(1 / 0.914, rel=0.02)


def test_fukuchi_rearfoot_has_impact_peaks_forefoot_mostly_not(results: dict[str, Any]) -> None:
    by_subject = {f["subject"]: f for f in results["fukuchi"]}
    s1, s8 = by_subject[1], by_subject[8]
    assert s1["label"]["right"] == "Forefoot" and s8["label"]["right"] == "Rearfoot"
    for f in (s1, s8):
        assert abs(f["steps"] - f["plate_contacts"]) <= 3, f
        assert 140 < f["cadence_spm"] < 200
        assert 200 < f["contact_ms"]["mean"] < 350
    assert s8["impact_peak_share"] > 0.8
    assert s1["impact_peak_share"] < 0.7 and s1["impact_peak_share"] < s8["impact_peak_share"] - 0.25
    assert s8["valr_bw_s"]["mean"] > s1["valr_bw_s"]["mean"]
    assert 40 < s8["valr_bw_s"]["mean"] < 120  # typical rearfoot VALR range (docs/design.md §4)
    # S8's own markers (same trial): kinematic foot-strike angle says rearfoot, as the authors' label does
    assert s8["marker_fsa_deg"]["mean"] > validate.FSA_REARFOOT_DEG
    assert s8["marker_zone_share"]["rearfoot"] > 0.9
    assert s1["marker_fsa_deg"] is None  # S1's c3d is the 3.5 m/s trial, its forces file the 2.5 m/s one


def test_gaitpdb_walks(results: dict[str, Any]) -> None:
    for g in results["gaitpdb"]:
        assert 80 < g["cadence_spm"] < 130 and g["rearfoot"] > 0.8


def test_command_prints_tables(shared_data: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "edge_agent.analysis.validate", str(shared_data)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    for heading in ("1. Moticon gait reports", "2. Plantar-activity", "3. Fukuchi", "Walking on tiptoes"):
        assert heading in r.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "edge_agent.analysis.validate", str(shared_data / "nope")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert bad.returncode == 2 and "no such folder" in bad.stderr


@pytest.fixture(scope="module")
def by_rate(shared_data: Path) -> dict[str, Any]:
    from edge_agent.analysis import validate_rates

    return validate_rates.run_rates(shared_data, (50.0, 100.0, 200.0, 300.0), phases=8, seeds=2)


def test_rate_targets_on_the_shared_recordings(by_rate: dict[str, Any]) -> None:
    """The issue's targets in their equivalents on ../shared/data (docs/validation.md), and the one we report as
    not met: the plate's contact time at 200 Hz, bounded by the 300 Hz reference's own scatter."""
    t = by_rate["targets"]
    for key in ("valr_step_200", "valr_step_100", "valr_run_100", "moticon_to", "moticon_si", "moticon_ic_vendor"):
        assert t[key]["met"], (key, t[key])
    assert t["zones"]["met"] and t["zones"]["value"] >= 0.9
    assert t["plate_contact_200"]["value"] <= 11.0  # target 7 ms; the reference re-sampled at 300 Hz: 5.5–7.7 ms
    # initial contact with the physical rule: as before this work on these files (p95 34.0 ms, 100 Hz)
    phys = next(r for r in by_rate["moticon"] if r["source"].endswith("physical"))
    assert phys["rates"]["100"]["ic_ms"]["p95_abs"] <= 34.5
    # the simulator's sharp heel strikes: the correction brings 100 Hz within 20 % per step, 200 Hz within 5 %
    sim = {r["source"]: r["rates"] for r in by_rate["simulator"]}
    sharp = sim["simulator rearfoot_sharp"]
    assert sharp["100"]["valr"]["abs_err_median"] <= 0.20 and sharp["200"]["valr"]["abs_err_median"] <= 0.05
    for row in by_rate["plates"]:  # at 300 Hz nothing is corrected: the plates' own analysis, re-phased
        assert row["rates"]["300"]["valr"]["corrected_share"] == 0.0


def test_at_300_hz_loading_rates_are_the_samples_own(shared_data: Path) -> None:
    """At or above lr_model_max_hz the estimator is off: every step's VALR is the sampled rule's, so the
    Fukuchi plate's numbers are today's (docs/validation.md §3)."""
    from edge_agent.analysis.analyzer import analyze_recording
    from edge_agent.recordings import load_recording

    for name in ("RBDS008runT35forces.txt", "RBDS001runT25forces.txt"):
        res = analyze_recording(load_recording(shared_data / "fukuchi-rbds" / name))
        assert res.kernel_rate_hz == 300.0 and len(res.steps) >= 70
        assert all(s.lr_model == "sampled" and s.valr_bw_s == s.valr_sampled_bw_s for s in res.steps)
        assert all(s.lr_correction == 1.0 for s in res.steps)


def test_rates_command_prints_tables_and_markdown(shared_data: Path) -> None:
    args = [sys.executable, "-m", "edge_agent.analysis.validate", str(shared_data), "--rates", "100,200"]
    r = subprocess.run([*args, "--phases", "2", "--seeds", "1"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "VALR per-step median |error|" in r.stdout and "100 Hz" in r.stdout and "Targets" in r.stdout
    md = subprocess.run(
        [*args, "--phases", "2", "--seeds", "1", "--markdown"], capture_output=True, text=True, cwd=REPO, timeout=600
    )
    assert md.returncode == 0 and "| source | 100 Hz | 200 Hz |" in md.stdout
    bad = subprocess.run([*args[:-1], "fast"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert bad.returncode == 2 and "comma-separated sample rates" in bad.stderr
