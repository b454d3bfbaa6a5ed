"""Streaming step kernels on analytic signals: exact answers, chunk invariance, counted problems, clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_agent.analysis.analyzer import (
    G0,
    AnalysisConfig,
    AnalysisError,
    FootAnalyzer,
    GaitAnalyzer,
    estimate_body_weight,
    total_force,
)
from edge_agent.analysis.step import Step
from edge_agent.profiles import HardwareProfile, load_profile, parse_profile
from tests.support.paths import DATA

BW = 70.0 * G0


def two_cell_profile(rate: float = 1000.0, raw_max: float | None = None, sensor_type: str = "force") -> HardwareProfile:
    """A heel cell at x=0.1 and a toe cell at x=0.9 reporting newtons: CoP is easy to place."""
    data: dict = {
        "name": "two-cell",
        "sample_rate_hz": rate,
        "raw_unit": "N",
        "sensor_type": sensor_type,
        "sensors": [
            {"x": 0.1, "y": 0.4, "area_cm2": 10.0, "region": "heel"},
            {"x": 0.9, "y": 0.6, "area_cm2": 10.0, "region": "toes"},
        ],
    }
    if raw_max is not None:
        data["raw_max"] = raw_max
    return parse_profile(data, "<test>")


def frames_from_force(force_bw: np.ndarray, cop_x: float | np.ndarray, floor_n: float = 15.0) -> np.ndarray:
    """Split a force (BW) between the two cells so that the CoP sits at ``cop_x``; add a swing floor
    of ``floor_n`` newtons read entirely by the toe cell (so a missing re-zero would bias the CoP)."""
    f = force_bw * BW
    w_toe = (np.asarray(cop_x) - 0.1) / 0.8
    raw = np.empty((len(f), 2), dtype=np.float32)
    raw[:, 0] = f * (1 - w_toe)
    raw[:, 1] = f * w_toe + floor_n
    return raw


def impact_step(tau: np.ndarray, slope: float = 50.0, peak: float = 1.5, contact: float = 0.25) -> np.ndarray:
    """Piecewise-linear running step: a ramp of ``slope`` BW/s to a flat impact peak (5 ms), a dip
    to 1.2 BW, the active peak 2.5 BW at 45 % of stance, and a linear fall to zero at toe-off."""
    t1 = peak / slope
    xs = [0.0, t1, t1 + 0.005, t1 + 0.020, 0.45 * contact, contact]
    ys = [0.0, peak, peak, 1.2, 2.5, 0.0]
    return np.where((tau >= 0) & (tau <= contact), np.interp(tau, xs, ys), 0.0)


def run_steps(
    profile: HardwareProfile,
    t: np.ndarray,
    raw: np.ndarray,
    config: AnalysisConfig | None = None,
    chunk: int | None = None,
) -> tuple[list[Step], FootAnalyzer]:
    fa = FootAnalyzer(profile, "left", BW, config or AnalysisConfig())
    steps: list[Step] = []
    n = len(t)
    chunk = chunk or n
    for i in range(0, n, chunk):
        steps += fa.feed(t[i : i + chunk], raw[i : i + chunk])
    return steps + fa.flush(), fa


def periodic(
    profile: HardwareProfile, shape, n_steps: int = 5, period: float = 0.7, phase: float = 0.00037, cop_x: float = 0.25
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    fs = profile.sample_rate_hz
    t = np.arange(0.0, n_steps * period + 0.5, 1.0 / fs)
    starts = [0.2 + k * period + phase for k in range(n_steps)]
    f = np.zeros_like(t)
    for s0 in starts:
        f += shape(t - s0)
    return t, frames_from_force(f, cop_x), starts


@pytest.mark.parametrize("rate", [200.0, 1000.0])
def test_ramp_of_known_slope_gives_that_valr(rate: float) -> None:
    prof = two_cell_profile(rate)
    t, raw, starts = periodic(prof, lambda tau: impact_step(tau, slope=50.0))
    steps, _ = run_steps(prof, t, raw)
    assert len(steps) == len(starts)
    for s in steps:
        assert s.impact_peak and s.lr_method == "impact_peak"
        assert s.impact_peak_bw == pytest.approx(1.5, rel=1e-3)
        # the sampled 20–80 % rule is exact on a straight ramp …
        assert s.valr_sampled_bw_s == pytest.approx(50.0, rel=0.01)
        # … and the rise correction (a raised-cosine template, below 300 Hz only) moves it by little
        if rate < 300:
            assert s.lr_model == "rise" and 1.0 <= s.lr_correction < 1.04
            assert s.valr_bw_s == pytest.approx(50.0, rel=0.04)
        else:
            assert s.lr_model == "sampled" and s.lr_correction == 1.0 and s.valr_bw_s == s.valr_sampled_bw_s
            assert s.vilr_bw_s == pytest.approx(50.0, rel=0.01)  # a straight ramp: max slope = mean slope
        assert s.valr_lo_bw_s <= s.valr_bw_s < s.valr_hi_bw_s
        assert s.peak_force_bw == pytest.approx(2.5, abs=21.0 / rate)  # the apex may fall between samples
        assert s.lr_low_confidence is (rate < 200)


def test_no_impact_peak_uses_the_13_percent_fallback() -> None:
    """A straight rise to the active peak: the force at 13 % of stance lies on the ramp, so VALR = slope."""
    prof = two_cell_profile(500.0)
    contact = 0.25

    def shape(tau: np.ndarray) -> np.ndarray:
        xs = [0.0, 0.4 * contact, contact]
        return np.where((tau >= 0) & (tau <= contact), np.interp(tau, xs, [0.0, 2.4, 0.0]), 0.0)

    t, raw, starts = periodic(prof, shape, cop_x=0.8)
    steps, _ = run_steps(prof, t, raw)
    assert len(steps) == len(starts)
    for s in steps:
        assert not s.impact_peak and s.lr_method == "fallback" and s.impact_peak_bw is None
        assert s.valr_bw_s == pytest.approx(2.4 / (0.4 * contact), rel=0.01)
        assert s.strike_zone == "forefoot"


@pytest.mark.parametrize("rate", [100.0, 1000.0])
def test_trapezoid_contact_time_within_one_sample(rate: float) -> None:
    prof = two_cell_profile(rate)
    contact = 0.240
    edge = 0.004

    def trapezoid(tau: np.ndarray) -> np.ndarray:
        return np.interp(tau, [0, edge, contact - edge, contact], [0, 1.0, 1.0, 0], left=0, right=0)

    t, raw, starts = periodic(prof, trapezoid, phase=0.3 / rate)
    steps, _ = run_steps(prof, t, raw)
    assert [round(s.t_contact, 2) for s in steps] == [round(s0, 2) for s0 in starts]
    for s, s0 in zip(steps, starts, strict=True):
        assert abs(s.contact_ms - contact * 1000) <= 1000.0 / rate
        assert abs(s.t_contact - s0) <= 1.0 / rate
        # impulse of the trapezoid minus the two threshold corners
        assert s.impulse_bw_s == pytest.approx(contact - edge, rel=0.02)


@pytest.mark.parametrize("si", [0.12, 0.25, 0.5, 0.85])
def test_cop_at_known_x_gives_that_strike_index(si: float) -> None:
    prof = two_cell_profile(500.0)
    t, raw, starts = periodic(prof, lambda tau: impact_step(tau), cop_x=si)
    steps, _ = run_steps(prof, t, raw)
    assert len(steps) == len(starts)
    for s in steps:
        assert s.strike_index == pytest.approx(si, abs=1e-4)
        assert s.cop_x == s.strike_index
        assert s.cop_y == pytest.approx(0.4 + 0.2 * (si - 0.1) / 0.8, abs=1e-4)
        assert s.cop_path == pytest.approx(0.0, abs=1e-6)  # the CoP never moves
        assert s.zone_uncertain is (abs(si - 1 / 3) < 0.07 or abs(si - 2 / 3) < 0.07)


def test_swing_floor_is_re_zeroed_and_drift_followed() -> None:
    """A floor drifting from 15 N to 45 N (above the contact-on level at t=0) still gives every step."""
    prof = two_cell_profile(500.0)
    t, raw, starts = periodic(prof, lambda tau: impact_step(tau), n_steps=8, cop_x=0.25)
    raw[:, 1] += np.float32(30.0) * (t / t[-1]).astype(np.float32)
    steps, _fa = run_steps(prof, t, raw)
    assert len(steps) == len(starts)
    for s in steps:
        assert s.strike_index == pytest.approx(0.25, abs=0.01)
        assert s.valr_bw_s == pytest.approx(50.0, rel=0.02)


def test_streaming_is_chunk_invariant() -> None:
    prof = two_cell_profile(500.0)
    rng = np.random.default_rng(3)
    t, raw, _ = periodic(prof, lambda tau: impact_step(tau), n_steps=6)
    raw += rng.normal(0, 3.0, raw.shape).astype(np.float32)
    whole, _ = run_steps(prof, t, raw, AnalysisConfig(lowpass_hz=60.0))
    assert len(whole) == 6
    for chunk in (1, 7, 100):
        got, _ = run_steps(prof, t, raw, AnalysisConfig(lowpass_hz=60.0), chunk=chunk)
        assert [s.to_dict() for s in got] == [s.to_dict() for s in whole], chunk


def test_min_durations_hysteresis_and_standing() -> None:
    prof = two_cell_profile(1000.0)
    t = np.arange(0, 6.0, 0.001)
    f = np.zeros_like(t)
    f += np.interp(t, [0.5, 0.505, 0.555, 0.56], [0, 1, 1, 0], left=0, right=0)  # 60 ms tap: too short
    # a 400 ms contact with a 30 ms dip below the off level: one step, not two
    f += np.interp(t, [1.0, 1.005, 1.2, 1.201, 1.23, 1.231, 1.4, 1.405], [0, 1, 1, 0, 0, 1, 1, 0], left=0, right=0)
    f += np.interp(t, [2.0, 2.01, 4.5, 4.51], [0, 1, 1, 0], left=0, right=0)  # 2.5 s standing on it
    f += np.interp(t, [5.0, 5.005, 5.2, 5.205], [0, 0.2, 0.2, 0], left=0, right=0)  # never 0.3 BW
    steps, fa = run_steps(prof, t, frames_from_force(f, 0.3))
    assert len(steps) == 1
    assert steps[0].contact_ms == pytest.approx(405, abs=2)
    q = fa.quality
    assert q["short_contacts"] == 1 and q["long_contacts"] == 1 and q["weak_contacts"] == 1


def test_data_problems_are_counted_not_fatal() -> None:
    prof = two_cell_profile(500.0, raw_max=1200.0)
    t, raw, starts = periodic(prof, lambda tau: impact_step(tau), n_steps=8)
    raw = raw.copy()
    t = t.copy()
    raw[50:53, 0] = np.nan  # 3 NaN samples in swing
    raw[raw[:, 0] > 1200.0, 0] = 1200.0  # saturate the heel cell at its active peak
    n_sat = int(np.sum(raw[:, 0] >= 1200.0))
    assert n_sat > 0
    # a 0.1 s gap in the middle of the 4th step: that step is lost, nothing else
    mid = starts[3] + 0.1
    gap = (t > mid) & (t < mid + 0.1)
    n_gap = int(gap.sum())
    # a frame from the past and a NaN time
    t_bad = np.insert(t, 400, t[390])
    raw_bad = np.insert(raw, 400, raw[390], axis=0)
    t_bad = np.insert(t_bad, 900, np.nan)
    raw_bad = np.insert(raw_bad, 900, raw_bad[899], axis=0)
    keep = ~np.insert(np.insert(gap, 400, False), 900, False)
    steps, fa = run_steps(prof, t_bad[keep], raw_bad[keep])
    q = fa.quality
    assert q["nan_samples"] == 3
    assert q["saturated_samples"] == int(np.sum(raw[~gap, 0] >= 1200.0)) and q["saturated_sensors"] == [0]
    assert q["late_frames"] == 1 and q["bad_time_frames"] == 1
    assert q["gaps"] == 1 and q["dropped_frames"] == n_gap and q["cut_contacts"] == 1
    assert q["silent_sensors"] == []
    assert len(steps) == len(starts) - 1
    assert all(abs(s.t_contact - starts[3]) > 0.05 for s in steps)


def test_silent_sensor_reported() -> None:
    prof = load_profile("moticon-opengo")
    raw = np.zeros((300, 16), dtype=np.float32)
    raw[:, :15] = np.random.default_rng(0).uniform(0, 5, (300, 15))
    raw[:, 3] = np.nan
    fa = FootAnalyzer(prof, "right", BW)
    fa.feed(np.arange(300) / 100.0, raw)
    assert fa.quality["silent_sensors"] == [3, 15]
    assert fa.quality["nan_samples"] == 300


def test_bad_input_is_rejected_clearly_and_changes_nothing() -> None:
    prof = two_cell_profile(500.0)
    t, raw, _starts = periodic(prof, lambda tau: impact_step(tau), n_steps=4)
    ref, _ = run_steps(prof, t, raw)
    fa = FootAnalyzer(prof, "left", BW)
    got = fa.feed(t[:700], raw[:700])
    with pytest.raises(AnalysisError, match=r"shape \(frames, 2\).*\(10, 3\)"):
        fa.feed(t[700:710], np.zeros((10, 3)))
    with pytest.raises(AnalysisError, match="t has 10 frames but raw has 9"):
        fa.feed(t[700:710], raw[700:709])
    with pytest.raises(AnalysisError, match="numeric"):
        fa.feed(t[700:710], np.array([["a", "b"]] * 10))
    with pytest.raises(AnalysisError, match="t must be numeric"):
        fa.feed(np.array(["x"] * 10), raw[700:710])
    got += fa.feed(t[700:], raw[700:]) + fa.flush()
    assert [s.to_dict() for s in got] == [s.to_dict() for s in ref]
    with pytest.raises(AnalysisError, match="contact_off_bw"):
        AnalysisConfig(contact_on_bw=0.03, contact_off_bw=0.05)
    with pytest.raises(AnalysisError, match="min_swing_ms"):
        AnalysisConfig(min_swing_ms=-1)
    with pytest.raises(AnalysisError, match="body_weight_n"):
        FootAnalyzer(prof, "left", float("nan"))
    with pytest.raises(AnalysisError, match="side"):
        FootAnalyzer(prof, "middle", BW)  # type: ignore[arg-type]
    with pytest.raises(AnalysisError, match="lowpass_hz"):
        FootAnalyzer(prof, "left", BW, AnalysisConfig(lowpass_hz=400.0))


def test_single_zone_has_no_strike_index() -> None:
    prof = parse_profile(
        {
            "name": "one",
            "sample_rate_hz": 500,
            "raw_unit": "N",
            "sensor_type": "force",
            "sensors": [{"x": 0.5, "y": 0.5, "area_cm2": 100, "region": "midfoot"}],
        }
    )
    t = np.arange(0, 3, 1 / 500)
    f = sum(impact_step(t - s0) for s0 in (0.3, 1.0, 1.7))
    steps, _ = run_steps(prof, t, (f * BW + 12.0).astype(np.float32))
    assert len(steps) == 3
    assert all(s.strike_index is None and s.strike_zone is None and s.cop_path is None for s in steps)
    assert all(s.valr_bw_s == pytest.approx(50.0, rel=0.01) for s in steps)


def test_fsr_lookup_matches_the_profile_model() -> None:
    from edge_agent.analysis.analyzer import fsr_lut
    from tests.agent.reference import _fsr_force

    prof = load_profile("diy-esp32-fsr8")
    lut = fsr_lut(prof.calibration)  # type: ignore[arg-type]
    for c in (0, 2, 3, 100, 2048, 4000, 4094, 4095):
        assert lut[c] == pytest.approx(_fsr_force(prof.calibration, float(c)), rel=1e-12)  # type: ignore[arg-type]
    assert np.all(np.diff(lut[3:]) >= 0)  # more counts, more force


def test_gait_fills_flight_time_and_orders_steps() -> None:
    prof = two_cell_profile(500.0)
    t = np.arange(0, 4.0, 1 / 500)
    contact, period = 0.25, 0.7  # each foot; feet alternate every 0.35 s → 100 ms flight
    left = sum(impact_step(t - (0.2 + k * period), contact=contact) for k in range(5))
    right = sum(impact_step(t - (0.55 + k * period), contact=contact) for k in range(5))
    gait = GaitAnalyzer(prof, BW)
    out: list[Step] = []
    rl, rr = frames_from_force(left, 0.2), frames_from_force(right, 0.2)
    for i in range(0, len(t), 137):  # interleaved chunks, as the live agent sees them
        out += gait.feed("left", t[i : i + 137], rl[i : i + 137])
        out += gait.feed("right", t[i : i + 137], rr[i : i + 137])
    out += gait.flush()
    assert len(out) == 10
    assert [s.side for s in out] == ["left", "right"] * 5
    assert out == sorted(out, key=lambda s: s.t_contact)
    assert out[0].flight_ms is None  # nothing before the first contact
    for s in out[1:]:
        assert s.flight_ms == pytest.approx(100.0, abs=2.5)
    assert gait.quality["left"]["steps"] == 5


def test_walking_double_support_has_no_flight() -> None:
    prof = two_cell_profile(200.0)
    t = np.arange(0, 5.0, 1 / 200)
    left = sum(impact_step(t - (0.2 + k * 1.1), contact=0.65) for k in range(4))
    right = sum(impact_step(t - (0.75 + k * 1.1), contact=0.65) for k in range(4))
    gait = GaitAnalyzer(prof, BW)
    out = gait.feed("left", t, frames_from_force(left, 0.2))
    out += gait.feed("right", t, frames_from_force(right, 0.2)) + gait.flush()
    assert len(out) == 8
    assert all(s.flight_ms is None for s in out)


def test_body_weight_from_quiet_standing() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(0, 12, 0.01)
    f = np.where(t < 5, BW + rng.normal(0, 5, t.size), 2.5 * BW * np.abs(np.sin(3 * t)))
    assert estimate_body_weight(t, f) == pytest.approx(BW, rel=0.01)
    assert estimate_body_weight(t[t > 6], f[t > 6]) is None  # running only: no quiet window
    prof = load_profile("moticon-opengo")
    raw = np.full((5, 16), 2.0, dtype=np.float32)
    raw[0, 0] = np.nan
    tf = total_force(prof, raw)
    assert tf[1] == pytest.approx(2.0 * prof.sensor_area_cm2().sum())
    assert tf[0] == pytest.approx(tf[1] - 2.0 * prof.sensor_area_cm2()[0])
    assert math.isfinite(tf.sum())


@pytest.mark.parametrize("raw_max", [50.0, 0.1, 600.0, 1e-3, 3.4e38, math.inf])
def test_integer_saturation_test_matches_the_float_comparison(raw_max: float) -> None:
    from edge_agent.analysis.analyzer import saturation_bits

    thr = saturation_bits(raw_max)
    base = np.float32(min(raw_max, 1e30))
    vals = np.array(
        [
            0.0,
            -0.0,
            -1.0,
            -raw_max if math.isfinite(raw_max) else -1e30,
            base,
            np.nextafter(base, np.float32(0)),
            np.nextafter(base, np.float32(np.inf)),
            np.inf,
        ],
        dtype=np.float32,
    )
    bits = vals.view(np.int32)
    for v, b in zip(vals, bits, strict=True):
        assert (b >= thr) == (float(v) >= raw_max or math.isinf(v)), (v, raw_max)


def test_flight_counts_contacts_that_are_not_steps() -> None:
    """A foot resting on the ground (a contact too weak to be a step) ends the other foot's flight."""
    prof = two_cell_profile(500.0)
    t = np.arange(0, 2.5, 1 / 500)
    left = impact_step(t - 0.1) + np.interp(t, [0.5, 0.51, 0.79, 0.8], [0, 0.2, 0.2, 0], left=0, right=0)
    right = impact_step(t - 0.9)
    gait = GaitAnalyzer(prof, BW)
    out = gait.feed("left", t, frames_from_force(left, 0.2))
    out += gait.feed("right", t, frames_from_force(right, 0.2)) + gait.flush()
    assert [s.side for s in out] == ["left", "right"]
    assert gait.quality["left"]["weak_contacts"] == 1
    assert out[1].flight_ms == pytest.approx(100.0, abs=3.0)  # from the weak contact's toe-off at 0.8 s


# --- contacts whose initial contact was not observed ------------------------------------------------


@pytest.mark.parametrize("cut_frac", [0.05, 0.2, 0.3])
@pytest.mark.parametrize("chunk", [None, 7])
def test_stream_starting_mid_contact_gives_no_step_for_it(cut_frac: float, chunk: int | None) -> None:
    """Started during a stance whose force still rises afterwards (impact ramp, dip, active peak): the
    contact is detected against a loaded floor but never becomes a step; the others are unchanged."""
    prof = two_cell_profile(500.0)
    t, raw, starts = periodic(prof, lambda tau: impact_step(tau), n_steps=5, cop_x=0.25)
    full, _ = run_steps(prof, t, raw)
    assert len(full) == 5
    k = int(np.searchsorted(t, starts[0] + cut_frac * 0.25))
    steps, fa = run_steps(prof, t[k:], raw[k:], chunk=chunk)
    q = fa.quality
    assert q["partial_contacts"] == 1 and q["steps"] == 4
    assert q["short_contacts"] == q["long_contacts"] == q["weak_contacts"] == q["cut_contacts"] == 0
    assert [s.to_dict() for s in steps] == [s.to_dict() for s in full[1:]]


def test_stream_starting_on_the_unloading_edge_gives_no_step() -> None:
    """Started after the active peak: the force only falls, so no contact is even detected."""
    prof = two_cell_profile(500.0)
    t, raw, starts = periodic(prof, lambda tau: impact_step(tau), n_steps=4, cop_x=0.25)
    full, _ = run_steps(prof, t, raw)
    k = int(np.searchsorted(t, starts[0] + 0.7 * 0.25))
    steps, fa = run_steps(prof, t[k:], raw[k:])
    assert [s.to_dict() for s in steps] == [s.to_dict() for s in full[1:]]
    assert fa.quality["partial_contacts"] == 0


def test_gap_that_hides_an_initial_contact_gives_no_step() -> None:
    """A gap from swing into stance: the rest of that contact is partial (its initial contact is in the
    gap); a gap that cuts a contact: the part before is cut, the part after partial — neither a step."""
    prof = two_cell_profile(500.0)
    t, raw, starts = periodic(prof, lambda tau: impact_step(tau, contact=0.3), n_steps=6, cop_x=0.25)
    full, _ = run_steps(prof, t, raw)
    assert len(full) == 6
    hide_ic = (t > starts[1] - 0.05) & (t < starts[1] + 0.04)  # swing → 40 ms into stance
    cut = (t > starts[3] + 0.06) & (t < starts[3] + 0.09)  # inside stance: 30 ms missing
    keep = ~(hide_ic | cut)
    for chunk in (None, 11):
        steps, fa = run_steps(prof, t[keep], raw[keep], chunk=chunk)
        q = fa.quality
        assert q["gaps"] == 2 and q["cut_contacts"] == 1 and q["partial_contacts"] == 2, q
        assert q["short_contacts"] == q["long_contacts"] == q["weak_contacts"] == 0
        want = [s.to_dict() for k, s in enumerate(full) if k not in (1, 3)]
        assert [s.to_dict() for s in steps] == want


def test_partial_contact_against_a_loaded_floor_gives_no_flight() -> None:
    """A stream starting during a stance: its "toe-off" is the fall below a loaded floor, not the real
    one, so the other foot's next flight is unknown (None), not measured from it; later ones are."""
    prof = two_cell_profile(500.0)
    t = np.arange(0.0, 2.0, 1 / 500)
    left = sum(impact_step(t - s0) for s0 in (-0.1, 0.6, 1.3))  # starts 100 ms into a contact
    right = sum(impact_step(t - s0) for s0 in (0.25, 0.95))
    gait = GaitAnalyzer(prof, BW)
    out = gait.feed("left", t, frames_from_force(left, 0.3)) + gait.feed("right", t, frames_from_force(right, 0.3))
    out += gait.flush()
    assert gait.quality["left"]["partial_contacts"] == 1
    assert [(s.side, round(s.t_contact, 2)) for s in out] == [
        ("right", 0.25),
        ("left", 0.6),
        ("right", 0.95),
        ("left", 1.3),
    ]
    assert out[0].flight_ms is None  # the real left toe-off (0.15 s) was measured against a loaded floor
    assert out[2].flight_ms == pytest.approx(100.0, abs=3.0)  # left toe-off at 0.85 s


# --- offsets and spikes of either sign ---------------------------------------------------------------


def single_zone_sim(seed: int = 5) -> tuple[HardwareProfile, np.ndarray, np.ndarray]:
    from edge_agent.recordings.simulator import RunParams, simulate

    prof = load_profile("single-zone-force")
    rec, _ = simulate(prof, RunParams(duration_s=8, seed=seed, walking_s=2.0))
    return prof, rec.left.t, rec.left.raw


def same_steps(a: list[Step], b: list[Step], tol_ms: float, tol_bw: float) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.t_contact == pytest.approx(y.t_contact, abs=tol_ms / 1000)
        assert x.t_toe_off == pytest.approx(y.t_toe_off, abs=tol_ms / 1000)
        assert x.peak_force_bw == pytest.approx(y.peak_force_bw, abs=tol_bw)
        assert x.impact_peak == y.impact_peak and x.lr_method == y.lr_method


@pytest.mark.parametrize("offset", [-16.0, -60.0, 25.0])
def test_constant_offset_of_either_sign_gives_the_same_steps(offset: float) -> None:
    prof, t, raw = single_zone_sim()
    base, _ = run_steps(prof, t, raw)
    assert len(base) >= 10
    shifted, fa = run_steps(prof, t, raw + np.float32(offset))
    same_steps(shifted, base, tol_ms=1e-3, tol_bw=1e-5)  # float32 rounding of the shifted samples only
    assert fa.quality["partial_contacts"] == 0


def test_negative_one_frame_spikes_do_not_hold_the_floor_down() -> None:
    """A force plate reading ≈ 0 N in the air with isolated one-frame spikes far below it (Fukuchi RBDS:
    down to −24 N at 300 Hz): the floor ignores one-frame spikes, so the steps are exactly the clean ones;
    a floor pulled down by a longer dip (less deep than the on level) recovers, so every step is found."""
    prof, t, raw = single_zone_sim(seed=6)
    base, _ = run_steps(prof, t, raw)
    rng = np.random.default_rng(1)
    swing = np.flatnonzero(raw[:, 0] < 30.0)  # the simulated floor reads 8–25 N
    isolated = swing[(np.diff(swing, prepend=-9) > 1) & (np.diff(swing, append=10**9) > 1)]  # not stance edges
    inner = swing[1:-1][(np.diff(swing)[:-1] == 1) & (np.diff(swing)[1:] == 1)]  # swing frames with swing neighbours
    assert isolated.size == 0 and inner.size > 200
    spikes = rng.choice(inner[::3], 60, replace=False)  # never two adjacent
    spiky = raw.copy()
    spiky[spikes, 0] = -60.0  # ≈ 75 N below the floor: more than the on level (34 N)
    got, fa = run_steps(prof, t, spiky)
    # the floor differs only by which noisy neighbour of a spike it took: ≤ 0.2 ms, ≤ 0.002 BW measured
    same_steps(got, base, tol_ms=0.5, tol_bw=0.005)
    assert fa.quality["long_contacts"] == fa.quality["short_contacts"] == 0
    # two-frame dips of 25 N below the floor pull it down; it recovers below the on level
    pairs = rng.choice(inner[:-1][np.diff(inner) == 1][::4], 15, replace=False)
    dipped = raw.copy()
    dipped[pairs, 0] -= 25.0
    dipped[pairs + 1, 0] -= 25.0
    got, fa = run_steps(prof, t, dipped)
    assert len(got) == len(base) and fa.quality["long_contacts"] == 0
    for x, y in zip(got, base, strict=True):
        assert abs(x.t_contact - y.t_contact) <= 1.0 / prof.sample_rate_hz
        assert abs(x.t_toe_off - y.t_toe_off) <= 2.0 / prof.sample_rate_hz


def test_real_excerpt_starting_mid_stance_counts_a_partial_contact() -> None:
    """The bundled Moticon excerpt starts while the right foot is loaded (≈ 70 % of its later stance
    force): that contact is counted as partial, not a step and not a "weak contact"; every right step
    starts after it."""

    from edge_agent.analysis.analyzer import analyze_recording
    from edge_agent.recordings import load_recording

    rec = load_recording(DATA / "moticon_opengo_230927_102114_excerpt.txt.gz")
    res = analyze_recording(rec, body_mass_kg=75.0)
    q = res.quality["right"]
    assert q["partial_contacts"] == 1 and q["weak_contacts"] == 0
    assert res.quality["left"]["partial_contacts"] == 0  # the left foot starts in the air
    right = [s for s in res.steps if s.side == "right"]
    vendor_ic = rec.reference["right_initial_contact_s"]
    assert len(right) == q["steps"] >= 3
    assert right[0].t_contact > 3.0 and all(s.strike_zone == "rearfoot" for s in right)
    assert min(abs(right[0].t_contact - v) for v in vendor_ic) < 0.05  # the first one the vendor also has


def _insole(rate: float, sensor_type: str = "capacitive", raw_max: float | None = None) -> HardwareProfile:
    return two_cell_profile(rate, raw_max, sensor_type)


def _tail_step(tau: np.ndarray, contact: float = 0.25, tail: float = 0.06) -> np.ndarray:
    """A trapezoid step (2.0 BW plateau) whose unloading slows into a linear tail: 2.0 → 0.4 BW over the
    last 20 ms of stance, then 0.4 → 0 over ``tail`` — the slow unloading of a pressure insole."""
    xs = [0.0, 0.02, contact - 0.02, contact, contact + tail]
    return np.where((tau >= 0) & (tau <= contact + tail), np.interp(tau, xs, [0.0, 2.0, 2.0, 0.4, 0.0]), 0.0)


def test_insole_toe_off_is_the_last_fall_through_its_fraction_of_the_peak() -> None:
    """Pressure insoles end contact where the force falls through 11 % of the step's peak (0.22 BW of 2.0), a
    force-plate profile where it falls through 0.03 BW: on the same force, 27 ms and 49.5 ms after the
    plateau ends; a configured fraction overrides the sensor type's."""
    results = {}
    for key, prof, cfg in (
        ("insole", _insole(1000.0), AnalysisConfig()),
        ("plate", _insole(1000.0, "force"), AnalysisConfig()),
        ("insole_at_plate_rule", _insole(1000.0), AnalysisConfig(toe_off_peak_fraction=0.0)),
        ("plate_at_20pct", _insole(1000.0, "force"), AnalysisConfig(toe_off_peak_fraction=0.2)),
    ):
        t, raw, starts = periodic(prof, _tail_step, period=0.8)
        steps, _ = run_steps(prof, t, raw, cfg)
        assert len(steps) == len(starts)
        results[key] = [s.t_toe_off - s0 for s, s0 in zip(steps, starts, strict=True)]
    assert results["insole"] == pytest.approx([0.25 + 0.06 * (0.4 - 0.22) / 0.4] * 5, abs=2e-3)
    assert results["plate"] == pytest.approx([0.25 + 0.06 * (0.4 - 0.03) / 0.4] * 5, abs=2e-3)
    assert results["insole_at_plate_rule"] == pytest.approx(results["plate"], abs=1e-9)
    assert results["plate_at_20pct"] == pytest.approx([0.25] * 5, abs=2e-3)  # 0.4 BW: where the tail begins


def test_vendor_contact_events_start_contact_at_six_percent_of_the_peak() -> None:
    """``contact_events="vendor"``: initial contact where the force rises through 6 % of the step's peak (as
    Moticon's reports), never earlier than the physical one; the strike index is still the first sample's."""
    prof = _insole(1000.0)

    def ramp(tau: np.ndarray) -> np.ndarray:  # 0 → 2 BW linearly over 40 ms, then a plateau
        return np.where((tau >= 0) & (tau <= 0.25), np.interp(tau, [0.0, 0.04, 0.23, 0.25], [0.0, 2.0, 2.0, 0.0]), 0.0)

    t, raw, starts = periodic(prof, ramp, cop_x=0.2)
    phys, _ = run_steps(prof, t, raw)
    vend, _ = run_steps(prof, t, raw, AnalysisConfig(contact_events="vendor"))
    for a, b, s0 in zip(phys, vend, starts, strict=True):
        assert a.t_contact - s0 == pytest.approx(0.04 * 0.03 / 2.0, abs=3e-4)  # the 0.03 BW crossing
        assert b.t_contact - s0 == pytest.approx(0.04 * 0.06, abs=3e-4)  # 6 % of the 2.0 BW peak
        assert a.strike_index == b.strike_index and a.t_toe_off == b.t_toe_off


def test_a_saturated_rise_is_not_extrapolated() -> None:
    """A cell clipping at raw_max during the rise makes the samples' peak a false one: the rise correction is not
    applied to that step (``lr_model`` "sampled"); the same steps unclipped are corrected."""
    rise = 0.015

    def shape(tau: np.ndarray) -> np.ndarray:
        x = tau / rise
        up = 0.5 * (1 - np.cos(np.pi * np.clip(x, 0, 1)))
        down = 0.5 * (1 + np.cos(np.pi * np.clip(x - 1, 0, 1)))
        hump = np.where(tau > rise, 2.4 * np.sin(np.pi * np.clip((tau - rise) / 0.235, 0, 1)) ** 2, 0.0)
        return np.where((tau >= 0) & (tau <= 0.25), 1.5 * np.where(x <= 1, up, down) + hump, 0.0)

    free = _insole(100.0)
    t, raw, _ = periodic(free, shape, cop_x=0.12)
    steps, _ = run_steps(free, t, raw)
    assert {s.lr_model for s in steps} <= {"rise", "rise_prior"} and all(s.lr_correction > 1.0 for s in steps)
    clipped = _insole(100.0, raw_max=float(1.2 * BW * 0.9))  # the heel cell (90 % of the force) clips at 1.2 BW
    raw_c = np.minimum(raw, np.float32(1.2 * BW * 0.9))
    steps_c, fa = run_steps(clipped, t, raw_c)
    assert fa.quality["saturated_samples"] > 0
    assert [s.lr_model for s in steps_c if s.impact_peak] and all(
        s.lr_model == "sampled" and s.valr_bw_s == s.valr_sampled_bw_s for s in steps_c if s.impact_peak
    )


def test_a_one_frame_spike_after_toe_off_does_not_reopen_the_contact() -> None:
    """Force plates zero low samples and spike for one frame: a single frame above the on level inside the
    80 ms confirmation wait is not the foot landing again (two frames are)."""
    prof = _insole(300.0, "force")
    contact = 0.24

    def trapezoid(tau: np.ndarray) -> np.ndarray:
        return np.where(
            (tau >= 0) & (tau <= contact), np.interp(tau, [0, 0.02, contact - 0.02, contact], [0, 2, 2, 0]), 0.0
        )

    t, raw, starts = periodic(prof, trapezoid, period=0.7)
    spiky = raw.copy()
    bumps = []
    for s0 in starts:
        k = int(np.searchsorted(t, s0 + contact + 0.03))  # 30 ms after toe-off
        spiky[k] += np.float32(0.2 * BW)
        bumps.append(k)
    clean, _ = run_steps(prof, t, raw)
    one, _ = run_steps(prof, t, spiky)
    assert [s.contact_ms for s in one] == pytest.approx([s.contact_ms for s in clean], abs=1e-9)
    two = spiky.copy()
    for k in bumps:
        two[k + 1] += np.float32(0.2 * BW)  # two frames: the contact resumes and ends after them
    merged, _ = run_steps(prof, t, two)
    assert all(m.contact_ms > c.contact_ms + 25 for m, c in zip(merged, clean, strict=True))
