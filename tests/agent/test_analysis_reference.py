"""The analysis against ground truth: the simulator's exact steps, the plain reference twin, real recordings."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_agent.analysis.analyzer import (
    G0,
    AnalysisConfig,
    FootAnalyzer,
    analyze_recording,
    events_to_steps,
    kernel_setup,
)
from edge_agent.analysis.step import Step
from edge_agent.profiles import HardwareProfile, load_profile
from edge_agent.recordings.simulator import RunParams, StepTruth, simulate
from tests.agent.reference import analyze_reference

PROFILES = ["moticon-opengo", "pedar-99", "grid-60x21"]


def unclipped(name: str) -> HardwareProfile:
    """The bundled profile without its saturation level: the simulator clips sensors at raw_max, which
    changes the force curve no algorithm can see past (saturation is tested separately)."""
    return load_profile(name).model_copy(update={"raw_max": None})


def pair(steps: list[Step], truths: list[StepTruth], fs: float) -> list[tuple[StepTruth, Step]]:
    out = []
    for tr in truths:
        hit = [s for s in steps if s.side == tr.side and abs(s.t_contact - tr.t_contact) <= 1.0 / fs]
        assert len(hit) == 1, f"truth step {tr.side} at {tr.t_contact:.3f}s matched {len(hit)} steps"
        out.append((tr, hit[0]))
    return out


STRIKES = {
    "rearfoot": dict(strike_index_left=0.12, strike_index_right=0.16, impact_peak_bw=1.6),
    "midfoot": dict(strike_index_left=0.5, strike_index_right=0.45, impact_peak_bw=None),
    "forefoot": dict(strike_index_left=0.82, strike_index_right=0.78, impact_peak_bw=None),
}
#: The exactness tests read the force itself (no unloading lag) with the force-plate edges: they check the
#: kernels' arithmetic on every profile; the insoles' own edges are tested against lagged readings below.
EXACT = AnalysisConfig(toe_off_peak_fraction=0.0)


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize("strike", list(STRIKES))
def test_simulator_ground_truth_200hz(name: str, strike: str) -> None:
    prof = unclipped(name)
    fs = 200.0
    params = RunParams(duration_s=12, seed=7, sample_rate_hz=fs, noise_n=2.0, unloading_tau_ms=0, **STRIKES[strike])
    rec, truths = simulate(prof, params)
    res = analyze_recording(rec, prof, config=replace(EXACT, sample_rate_hz=fs))
    assert len(res.steps) == len(truths) >= 30
    pairs = pair(res.steps, truths, fs)
    zone_ok = np.mean([s.strike_zone == tr.strike_zone for tr, s in pairs])
    assert zone_ok >= 0.98
    for tr, s in pairs:
        assert abs(s.contact_ms - tr.contact_ms) <= 0.75 * 1000.0 / fs  # measured ≤ 3.0 ms at 200 Hz
        assert abs(s.strike_index - tr.strike_index) < 0.05  # type: ignore[operator]
        assert s.impact_peak == tr.impact_peak and s.lr_method == tr.lr_method
        assert s.valr_bw_s == pytest.approx(tr.valr_bw_s, rel=0.05)
        assert s.vilr_bw_s >= s.valr_bw_s  # type: ignore[operator]
        assert s.peak_force_bw == pytest.approx(tr.peak_force_bw, rel=0.05)
        assert s.impulse_bw_s == pytest.approx(tr.impulse_bw_s, rel=0.05)
        assert not s.lr_low_confidence
    # flight time: contact − the other foot's previous toe-off, from the truth itself
    by_side = {side: [tr for tr in truths if tr.side == side] for side in ("left", "right")}
    for tr, s in pairs:
        other = [o for o in by_side["right" if tr.side == "left" else "left"] if o.t_contact < tr.t_contact]
        if other and 0 < tr.t_contact - other[-1].t_toe_off < 1:
            assert s.flight_ms == pytest.approx((tr.t_contact - other[-1].t_toe_off) * 1000, abs=2000.0 / fs)


@pytest.mark.parametrize("name", PROFILES)
def test_simulator_ground_truth_100hz(name: str) -> None:
    prof = unclipped(name)
    params = RunParams(duration_s=12, walking_s=3, seed=11, sample_rate_hz=100.0, unloading_tau_ms=0)
    rec, truths = simulate(prof, params)
    res = analyze_recording(rec, prof, config=EXACT)
    pairs = pair(res.steps, truths, 100.0)
    assert len(res.steps) == len(truths)
    assert {tr.gait for tr in truths} == {"walk", "run"}
    assert np.mean([s.strike_zone == tr.strike_zone for tr, s in pairs]) >= 0.98
    for tr, s in pairs:
        assert abs(s.contact_ms - tr.contact_ms) <= 10.0  # within one sample, walking and running
        assert s.lr_low_confidence  # only 1–2 samples in the 20–80 % window at 100 Hz
    err = np.array([s.valr_bw_s / tr.valr_bw_s - 1 for tr, s in pairs])
    assert abs(float(np.median(err))) < 0.1 and float(np.max(np.abs(err))) < 0.25


@pytest.mark.parametrize("rate", [100.0, 200.0])
def test_insole_toe_off_against_the_force_it_trails(rate: float) -> None:
    """A capacitive insole unloads with a 15 ms lag (the simulator's reading): the insole rule (the last fall
    through 11 % of the step's peak) ends the contact within one sample + 5 ms of where the force itself falls
    through 0.03 BW; the plate rule (0.03 BW of the reading) ends it ≥ 15 ms late on every step."""
    prof = unclipped("moticon-opengo")
    assert prof.sensor_type == "capacitive"
    params = RunParams(duration_s=12, seed=21, sample_rate_hz=rate, walking_s=3)
    rec, truths = simulate(prof, params)
    tol = 1000.0 / rate + 5.0
    insole = pair(analyze_recording(rec, prof, config=AnalysisConfig(sample_rate_hz=rate)).steps, truths, rate)
    plate = pair(analyze_recording(rec, prof, config=replace(EXACT, sample_rate_hz=rate)).steps, truths, rate)
    d_insole = [(s.t_toe_off - tr.t_toe_off) * 1000 for tr, s in insole if tr.gait == "run"]
    d_plate = [(s.t_toe_off - tr.t_toe_off) * 1000 for tr, s in plate if tr.gait == "run"]
    assert len(d_insole) >= 30 and max(abs(d) for d in d_insole) <= tol, (min(d_insole), max(d_insole))
    assert min(d_plate) >= 15.0
    # walking unloads slower: the rule is still closer to the force than the plate rule, and never early
    walk = [(s.t_toe_off - tr.t_toe_off) * 1000 for tr, s in insole if tr.gait == "walk"]
    walk_plate = [(s.t_toe_off - tr.t_toe_off) * 1000 for tr, s in plate if tr.gait == "walk"]
    assert walk and np.median(np.abs(walk)) < np.median(np.abs(walk_plate))
    # initial contact is the same rule for both
    assert all(abs(a.t_contact - b.t_contact) < 1e-9 for (_, a), (_, b) in zip(insole, plate, strict=True))


def test_saturation_is_counted_and_timing_survives_it() -> None:
    prof = load_profile("pedar-99").model_copy(update={"raw_max": 250.0})  # cells clip at the active peak
    rec, truths = simulate(prof, RunParams(duration_s=6, seed=3, sample_rate_hz=200.0, unloading_tau_ms=0))
    res = analyze_recording(rec, prof, config=EXACT)
    q = res.quality["left"]
    assert q["saturated_samples"] > 0 and len(q["saturated_sensors"]) > 0
    for tr, s in pair(res.steps, truths, 200.0):
        assert abs(s.contact_ms - tr.contact_ms) <= 5.0


def test_body_weight_from_simulated_standing() -> None:
    prof = unclipped("moticon-opengo")
    rec, _ = simulate(prof, RunParams(duration_s=5, standing_s=4, seed=2, body_mass_kg=82.0))
    rec.body_mass_kg = None
    res = analyze_recording(rec, prof)
    assert res.body_weight_source == "standing"
    assert res.body_weight_n == pytest.approx(82.0 * G0, rel=0.05)


def test_progress_and_chunking_of_whole_recordings() -> None:
    prof = unclipped("moticon-opengo")
    rec, _ = simulate(prof, RunParams(duration_s=40, seed=5, dropout_prob=0.01))
    calls: list[tuple[int, int]] = []
    a = analyze_recording(rec, prof, chunk_frames=37, progress=lambda d, n: calls.append((d, n)))
    b = analyze_recording(rec, prof, chunk_frames=100_000)
    assert [s.to_dict() for s in a.steps] == [s.to_dict() for s in b.steps]
    assert calls[-1][0] == calls[-1][1] == len(rec.left.t) + len(rec.right.t)
    assert a.quality == b.quality and a.quality["left"]["dropped_frames"] > 0
    assert len(a.steps) > 100 and sum(s.flight_ms is not None for s in b.steps) >= len(b.steps) - 2


# --- kernel vs the plain reference ------------------------------------------------------------------


def compare_with_reference(
    prof: HardwareProfile, t: np.ndarray, raw: np.ndarray, config: AnalysisConfig, pure_python: bool = False
) -> int:
    bw = 70.0 * G0
    fa = FootAnalyzer(prof, "left", bw, config)
    steps = fa.feed(t, raw) + fa.flush()
    setup = kernel_setup(prof, bw, config)
    ev, q = analyze_reference(t, raw, prof, setup.params, pure_python=pure_python)
    ref = events_to_steps(ev, "left", fa.low_confidence, setup.fs)
    assert len(steps) == len(ref)
    for a, b in zip(steps, ref, strict=True):
        for k, va in a.to_dict().items():
            vb = getattr(b, k)
            if isinstance(va, float) and isinstance(vb, float):
                assert math.isclose(va, vb, rel_tol=1e-6, abs_tol=1e-9), (k, va, vb)
            else:
                assert va == vb, (k, va, vb)
    fq = fa.quality
    for mine, theirs in [
        ("frames", "frames"),
        ("late_frames", "late"),
        ("bad_time_frames", "badtime"),
        ("dropped_frames", "dropped"),
        ("gaps", "gaps"),
        ("cut_contacts", "gap_cut"),
        ("short_contacts", "short"),
        ("long_contacts", "long"),
        ("weak_contacts", "weak"),
        ("partial_contacts", "partial"),
        ("nan_samples", "nan_samples"),
        ("saturated_samples", "saturated_samples"),
        ("saturated_sensors", "saturated_sensors"),
        ("silent_sensors", "silent_sensors"),
    ]:
        assert fq[mine] == q[theirs], mine
    return len(steps)


@pytest.mark.parametrize("name", ["moticon-opengo", "diy-esp32-fsr8", "single-zone-force"])
@pytest.mark.parametrize("lowpass", [None, 20.0])
def test_kernel_agrees_with_reference(name: str, lowpass: float | None) -> None:
    prof = load_profile(name)
    rec, truths = simulate(
        prof,
        RunParams(duration_s=6, seed=9, dropout_prob=0.005, walking_s=2.0, strike_index_left=0.4, impact_peak_bw=None),
    )
    t = rec.left.t.copy()
    raw = rec.left.raw.copy()
    rng = np.random.default_rng(0)
    raw[rng.integers(0, len(t), 20), rng.integers(0, prof.n_sensors, 20)] = np.nan
    t[rng.integers(0, len(t), 3)] = np.nan
    t[500] = t[400]  # time going backwards
    n = compare_with_reference(prof, t, raw, AnalysisConfig(lowpass_hz=lowpass))
    assert n >= len([tr for tr in truths if tr.side == "left"]) - 4


@pytest.mark.parametrize("name", ["moticon-opengo", "single-zone-force"])
@pytest.mark.parametrize("rate", [50.0, 100.0, 200.0])
def test_kernel_agrees_with_reference_on_impact_transients(name: str, rate: float) -> None:
    """Sharp heel strikes at insole rates: the rise correction (both of its cases), the insoles' toe-off at a
    fraction of the step's peak and the vendor-compatible initial contact, kernel = numpy twin."""
    from edge_agent.recordings.simulator import family_params

    prof = load_profile(name).model_copy(update={"raw_max": None})
    params = family_params("rearfoot_sharp", 4, duration_s=8, sample_rate_hz=rate, dropout_prob=0.003)
    rec, _ = simulate(prof, params)
    for cfg in (AnalysisConfig(sample_rate_hz=rate), AnalysisConfig(sample_rate_hz=rate, contact_events="vendor")):
        assert compare_with_reference(prof, rec.left.t, rec.left.raw, cfg) >= 8


def test_pure_python_reference_agrees_too() -> None:
    prof = load_profile("ultraflex-8")
    rec, _ = simulate(prof, RunParams(duration_s=3, seed=4))
    assert compare_with_reference(prof, rec.left.t, rec.left.raw, AnalysisConfig(), pure_python=True) >= 3


# --- real recordings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["230927_102114.txt", "230927_102137.txt"])
def test_moticon_exports_give_the_vendors_steps(shared_data: Path, name: str) -> None:
    from edge_agent.recordings import load_recording

    rec = load_recording(shared_data / "moticon-opengo" / name)
    res = analyze_recording(rec)
    for side in ("left", "right"):
        ours = [s for s in res.steps if s.side == side]
        vendor_ic = rec.reference[f"{side}_initial_contact_s"]
        vendor_to = rec.reference[f"{side}_toe_off_s"]
        assert len(vendor_ic) >= 6
        for ic, to in zip(vendor_ic, vendor_to, strict=True):
            hit = [s for s in ours if abs(s.t_contact - ic) <= 0.05]
            assert len(hit) == 1, f"{name} {side}: vendor step at {ic:.2f}s"
            s = hit[0]
            assert abs(s.t_toe_off - to) <= 0.02  # capacitive insoles: toe-off at 11 % of the step's peak
            assert 500 <= s.contact_ms <= 1600
            assert s.strike_zone == "rearfoot"  # heel-first walking
            assert 0.8 <= s.peak_force_bw <= 2.0
            assert s.lr_low_confidence


@pytest.mark.parametrize("seq", ["S04/Sequence_01", "S05/Sequence_02"])
def test_plantar_activity_walking_is_rearfoot_and_tiptoe_is_forefoot(shared_data: Path, seq: str) -> None:
    from edge_agent.recordings import load_recording

    rec = load_recording(shared_data / "plantar-activity-moticon" / seq)
    res = analyze_recording(rec)
    assert res.body_weight_source == "standing" and 400 < res.body_weight_n < 1300

    def within(label: str) -> list[Step]:
        segs = [g for g in rec.segments if g.label == label]
        assert segs, label
        return [s for g in segs for s in res.steps if g.t_start + 0.3 <= s.t_contact <= g.t_end - 0.3]

    walk, tiptoe = within("Walking"), within("Walking on tiptoes")
    assert len(walk) >= 4 and len(tiptoe) >= 3
    assert np.mean([s.strike_zone == "rearfoot" for s in walk]) >= 0.8
    assert np.mean([s.strike_zone == "forefoot" for s in tiptoe]) >= 0.9
    assert all(s.strike_index is not None and s.strike_index > 0.6 for s in tiptoe)


def test_fukuchi_force_plate_running(shared_data: Path) -> None:
    """Treadmill force plate, 300 Hz: the rearfoot runner shows impact peaks, the forefoot runner mostly not."""
    from edge_agent.recordings import load_recording

    share = {}
    for name, label in (("RBDS008runT35forces.txt", "Rearfoot"), ("RBDS001runT25forces.txt", "Forefoot")):
        rec = load_recording(shared_data / "fukuchi-rbds" / name)
        assert rec.meta["strike_label"]["left"] == label
        res = analyze_recording(rec)
        steps = res.steps
        assert len(steps) >= 70
        assert all(s.strike_index is None for s in steps)  # a force plate has no CoP along the foot
        assert 200 <= float(np.median([s.contact_ms for s in steps])) <= 350
        assert sum(s.flight_ms is not None for s in steps) >= 0.8 * len(steps)  # running: both feet airborne
        assert not any(s.lr_low_confidence for s in steps)
        share[label] = float(np.mean([s.impact_peak for s in steps]))
        if label == "Rearfoot":
            valr = [s.valr_bw_s for s in steps if s.lr_method == "impact_peak"]
            assert 40 <= float(np.median(valr)) <= 120  # typical running VALR (design.md §4)
    assert share["Rearfoot"] >= 0.9 and share["Forefoot"] <= share["Rearfoot"] - 0.3


def test_fukuchi_plate_without_clipping_negative_force(shared_data: Path) -> None:
    """The plate reads ≈ 0 N in the air with one-frame spikes down to −37 N; fed unclipped (as the
    importer did before it clipped negatives: then 6 steps of 81 were found), the re-zero alone copes."""
    from edge_agent.recordings import FootStream, load_recording

    rec = load_recording(shared_data / "fukuchi-rbds" / "RBDS008runT35forces.txt")
    clipped = analyze_recording(rec)
    fy = rec.reference["plate_fy_n"]
    assert fy.min() < -15.0
    left, right = rec.left.raw[:, 0], rec.right.raw[:, 0]
    # the importer zeroes a foot's stream while the other foot owns the plate; elsewhere it is max(fy, 0)
    rec.left = FootStream(rec.left.t, np.where((left == 0) & (right > 0), 0.0, fy).reshape(-1, 1))
    rec.right = FootStream(rec.right.t, np.where((right == 0) & (left > 0), 0.0, fy).reshape(-1, 1))
    raw = analyze_recording(rec)
    assert len(clipped.steps) == len(raw.steps) >= 80
    for a, b in zip(clipped.steps, raw.steps, strict=True):
        assert a.side == b.side and abs(a.t_contact - b.t_contact) < 1e-3 and abs(a.t_toe_off - b.t_toe_off) < 4e-3
    assert all(q["long_contacts"] == 0 for q in raw.quality.values())


def test_physionet_walking_is_rearfoot_without_flight(shared_data: Path) -> None:
    from edge_agent.recordings import load_recording

    rec = load_recording(shared_data / "physionet-gaitpdb" / "GaCo01_01.txt")
    res = analyze_recording(rec)
    assert len(res.steps) >= 150
    assert np.mean([s.strike_zone == "rearfoot" for s in res.steps]) >= 0.9
    assert all(s.flight_ms is None for s in res.steps)  # walking: always one foot on the ground
    assert 600 <= float(np.median([s.contact_ms for s in res.steps])) <= 900


def test_analyze_recording_rejects_a_stream_that_does_not_fit_its_profile() -> None:
    from edge_agent.analysis.analyzer import AnalysisError

    prof = load_profile("moticon-opengo")
    rec, _ = simulate(prof, RunParams(duration_s=2, seed=1))
    rec.right.raw = rec.right.raw[:, :15]
    with pytest.raises(AnalysisError, match=r"right stream: raw must have shape \(frames, 16\)"):
        analyze_recording(rec, prof)
    with pytest.raises(AnalysisError, match="chunk_frames"):
        analyze_recording(rec, prof, chunk_frames=0)
