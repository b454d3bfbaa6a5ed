"""The loading-rate estimator against analytic transients at 50/100/200 Hz and every sampling phase, its
interval helpers against their definitions, and the window/run estimate (docs/measures.md §3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from edge_agent.analysis import loading_rate as LR
from edge_agent.analysis.analyzer import G0, AnalysisConfig, FootAnalyzer
from edge_agent.profiles import HardwareProfile, parse_profile

BW = 70.0 * G0
#: VALR of a raised-cosine rise P·(1 − cos(πt/t1))/2 over 20–80 % of P, exactly: K · P / t1.
K_RC = 0.6 / (1.0 - 2.0 * math.acos(0.6) / math.pi)
PHASES = 16


def plate(rate: float) -> HardwareProfile:
    return parse_profile(
        {
            "name": "one",
            "sample_rate_hz": rate,
            "raw_unit": "N",
            "sensor_type": "force",
            "sensors": [{"x": 0.5, "y": 0.5, "area_cm2": 100, "region": "midfoot"}],
        }
    )


def transient(tau: np.ndarray, peak: float, rise: float, contact: float = 0.25, active: float = 2.4) -> np.ndarray:
    """An impact transient with an analytic loading rate: a raised-cosine rise to ``peak`` over ``rise``, the
    same fall after it, and an active hump (sin²) that starts at the impact peak, so the rise is exactly
    the raised cosine: VALR = K_RC · peak / rise, VILR = π/2 · peak / rise."""
    x = tau / rise
    up = 0.5 * (1 - np.cos(np.pi * np.clip(x, 0, 1)))
    down = 0.5 * (1 + np.cos(np.pi * np.clip(x - 1, 0, 1)))
    hump = np.where(tau > rise, active * np.sin(np.pi * np.clip((tau - rise) / (contact - rise), 0, 1)) ** 2, 0.0)
    return np.where((tau >= 0) & (tau <= contact), peak * np.where(x <= 1, up, down) + hump, 0.0)


def measure(rate: float, rise: float, peak: float = 1.5) -> dict[str, np.ndarray]:
    """Eight steps at each of PHASES sampling phases (k + ½)/PHASES of a sample period."""
    rows: dict[str, list] = {k: [] for k in ("est", "sampled", "lo", "hi", "model", "vilr", "impact")}
    for k in range(PHASES):
        t = np.arange(0.0, 6.0, 1.0 / rate)
        starts = [0.3 + i * 0.7 + (k + 0.5) / PHASES / rate for i in range(8)]
        f = sum(transient(t - s0, peak, rise) for s0 in starts)
        fa = FootAnalyzer(plate(rate), "left", BW, AnalysisConfig())
        steps = fa.feed(t, (f * BW).astype(np.float32).reshape(-1, 1)) + fa.flush()
        assert len(steps) == 8
        for s in steps:
            rows["impact"].append(s.lr_method == "impact_peak")
            rows["est"].append(s.valr_bw_s)
            rows["sampled"].append(s.valr_sampled_bw_s)
            rows["lo"].append(s.valr_lo_bw_s)
            rows["hi"].append(s.valr_hi_bw_s)
            rows["model"].append(s.lr_model)
            rows["vilr"].append(s.vilr_bw_s)
    return {k: np.asarray(v) for k, v in rows.items()}


@pytest.mark.parametrize("rate", [50.0, 100.0, 200.0])
@pytest.mark.parametrize("rise_ms", [15.0, 25.0, 40.0])
def test_rise_correction_on_analytic_transients_at_every_phase(rate: float, rise_ms: float) -> None:
    """The issue's 15–40 ms rises. The correction beats the sampled rule's median error at every rate and rise;
    at 200 Hz every phase is within 10 % (3 % from 25 ms); at 100 Hz within 10 % (median) from 25 ms and
    5 % (every phase) at 40 ms. At 50 Hz (and 100 Hz with a 15 ms rise) at most one sample lies on the rise:
    the correction helps, its interval is wide, the value is a trend (docs/measures.md §3)."""
    peak, rise = 1.5, rise_ms / 1000.0
    truth = K_RC * peak / rise
    m = measure(rate, rise, peak)
    if rate >= 100.0:  # every step shows the impact peak; at 50 Hz some phases miss it (fallback: another rise)
        assert m["impact"].all()
    m = {k: v[m["impact"]] for k, v in m.items()}
    err = np.abs(m["est"] / truth - 1.0)
    err_sampled = np.abs(m["sampled"] / truth - 1.0)
    assert np.median(err) < np.median(err_sampled)
    assert set(m["model"]) <= {"rise", "rise_prior", "sampled"} and "rise" in set(m["model"])
    assert np.all(m["vilr"] >= m["est"])
    inside = (m["lo"] <= truth) & (truth <= m["hi"])
    if rate == 200.0:
        assert err.max() <= (0.10 if rise_ms < 25 else 0.03)
        assert inside.all()
    if rate == 100.0 and rise_ms >= 25:
        assert np.median(err) <= 0.10 and inside.mean() >= 0.9
        if rise_ms >= 40:
            assert err.max() <= 0.05


def test_at_or_above_the_rate_limit_nothing_changes() -> None:
    """At ≥ 300 Hz (lr_model_max_hz) the estimate is the sampled rule's value, bit for bit."""
    m = measure(300.0, 0.015)
    assert set(m["model"]) == {"sampled"} and np.array_equal(m["est"], m["sampled"])
    m = measure(200.0, 0.015)
    off = AnalysisConfig(lr_model_max_hz=150.0)
    fa = FootAnalyzer(plate(200.0), "left", BW, off)
    t = np.arange(0.0, 3.0, 1.0 / 200.0)
    f = sum(transient(t - s0, 1.5, 0.015) for s0 in (0.3, 1.0, 1.7))
    steps = fa.feed(t, (f * BW).astype(np.float32).reshape(-1, 1)) + fa.flush()
    assert all(s.lr_model == "sampled" and s.valr_bw_s == s.valr_sampled_bw_s for s in steps)


def test_student_t_quantiles_match_scipy() -> None:
    for df in (1, 2, 5, 10, 29, 30, 31, 45, 80, 200, 10_000):
        assert LR.t95(df) == pytest.approx(stats.t.ppf(0.95, df), abs=2e-3), df


def test_step_intervals_follow_the_table_and_interpolate_in_log_rate() -> None:
    valr = np.array([100.0, 100.0, 100.0, 100.0, math.nan])
    impact = np.array([True, True, True, False, False])
    model = np.array([1, 2, 0, 0, 0])
    lo, hi = LR.step_intervals(valr, impact, model, 100.0)
    tab = {c: LR.STEP_INTERVAL[c][1] for c in LR.CASES}
    assert list(lo[:4]) == pytest.approx([100 * tab[c][0] for c in ("rise", "rise_prior", "impact", "fallback")])
    assert list(hi[:4]) == pytest.approx([100 * tab[c][1] for c in ("rise", "rise_prior", "impact", "fallback")])
    assert math.isnan(lo[4]) and math.isnan(hi[4])
    # halfway between 100 and 200 Hz in log(rate): the geometric mean of the two multipliers
    a, b = LR.STEP_INTERVAL["rise"][1][1], LR.STEP_INTERVAL["rise"][2][1]
    assert LR.step_interval_multipliers(math.sqrt(100 * 200), "rise")[1] == pytest.approx(math.sqrt(a * b))
    assert LR.step_interval_multipliers(1000.0, "fallback") == pytest.approx(LR.STEP_INTERVAL["fallback"][-1])
    assert LR.step_interval_multipliers(20.0, "fallback") == pytest.approx(LR.STEP_INTERVAL["fallback"][0])


def test_mean_estimate_by_its_formula() -> None:
    rng = np.random.default_rng(3)
    v = list(100.0 + 10.0 * rng.standard_normal(40))
    c = [1.2] * 30 + [1.0] * 10
    models = ["rise"] * 25 + ["rise_prior"] * 5 + ["sampled"] * 10
    est = LR.mean_estimate(v, c, models, 100.0)
    assert est is not None and est.n == 40
    m, s = float(np.mean(v)), float(np.std(v, ddof=1))
    rand = stats.t.ppf(0.95, 39) * s / math.sqrt(40)
    b_lo, b_hi = LR.run_bias(100.0)
    shape = LR.KAPPA_SYS * float(np.mean(np.log(c)))
    assert est.mean == pytest.approx(m)
    assert est.lo == pytest.approx(m - math.hypot(rand, math.hypot(b_lo, shape) * m), rel=1e-3)
    assert est.hi == pytest.approx(
        m + math.hypot(rand, (math.hypot(b_hi, shape) + LR.KAPPA_PRIOR * 5 / 40) * m), rel=1e-3
    )
    assert (est.corrected_share, est.prior_share) == (0.75, 0.125)
    # the random part shrinks with more steps (the same ten values four times), the systematic part does not
    ten = LR.mean_estimate(v[:10], c[:10], models[:10], 100.0)
    forty = LR.mean_estimate(v[:10] * 4, c[:10] * 4, models[:10] * 4, 100.0)
    assert ten is not None and forty is not None and forty.mean == pytest.approx(ten.mean)
    assert forty.hi - forty.lo < ten.hi - ten.lo
    floor = ten.mean * (LR.run_bias(100.0)[0] + LR.run_bias(100.0)[1]) / 2
    assert forty.hi - forty.lo > floor
    assert LR.mean_estimate([None, math.nan], [1.0, 1.0], ["sampled"] * 2, 100.0) is None
