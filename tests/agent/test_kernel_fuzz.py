"""Property-based fuzzing of the streaming analysis: hostile frames never crash it, every problem is
counted exactly, chunking never changes the answer, and the kernel keeps agreeing with the reference."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.analysis.analyzer import G0, AnalysisConfig, FootAnalyzer, GaitAnalyzer, kernel_setup
from edge_agent.profiles import parse_profile
from tests.agent.reference import analyze_reference

BW = 70.0 * G0
RAW_MAX = 900.0
PROFILE = parse_profile(
    {
        "name": "fuzz-3",
        "sample_rate_hz": 200.0,
        "raw_unit": "N",
        "sensor_type": "capacitive",
        "raw_max": RAW_MAX,
        "sensors": [
            {"x": 0.1, "y": 0.5, "area_cm2": 10.0, "region": "heel"},
            {"x": 0.5, "y": 0.3, "area_cm2": 10.0, "region": "midfoot"},
            {"x": 0.9, "y": 0.6, "area_cm2": 10.0, "region": "toes"},
        ],
    },
    "<fuzz>",
)
FS = PROFILE.sample_rate_hz
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def streams(draw, hostile: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Steps-like force bursts with NaN/inf samples, zeros, saturation, dropouts, jumps and late frames."""
    n = draw(st.integers(1, 600))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    phase = rng.uniform(0, 0.5)
    active = ((t + phase) % rng.uniform(0.3, 0.9)) < rng.uniform(0.1, 0.4)
    level = rng.uniform(0.3, 3.0) * BW
    raw = np.zeros((n, 3), dtype=np.float32)
    w = rng.dirichlet([1, 1, 1], size=n)
    raw[:] = (active[:, None] * level * w + rng.uniform(0, 20, (n, 3))).astype(np.float32)
    for _ in range(draw(st.integers(0, 6))):  # problems, each over a random span
        kind = draw(st.sampled_from(["nan", "zero", "sat", "drop", "jump", "late", "badtime", "dup", "inf"]))
        if n == 0:
            break
        i = int(rng.integers(0, n))
        j = min(n, i + int(rng.integers(1, 40)))
        col = int(rng.integers(0, 3))
        if kind == "nan":
            raw[i:j, col] = np.nan
        elif kind == "inf" and hostile:
            raw[i:j, col] = np.float32(np.inf) * (1 if rng.random() < 0.5 else -1)
        elif kind == "zero":
            raw[i:j] = 0.0
        elif kind == "sat":
            raw[i:j, col] = RAW_MAX * rng.uniform(1.0, 3.0)
        elif kind == "drop":
            keep = np.ones(n, dtype=bool)
            keep[i:j] = False
            t, raw, n = t[keep], raw[keep], int(keep.sum())
        elif kind == "jump":
            t[i:] += rng.uniform(0.0, 5.0)
        elif kind == "late":
            t[i] -= rng.uniform(0.0, 1.0)
        elif kind == "badtime":
            t[i] = np.nan if rng.random() < 0.5 else np.inf
        elif kind == "dup":
            t[i:j] = t[i]
    if hostile and draw(st.booleans()):
        raw[rng.random(raw.shape) < 0.01] = np.float32(3.0e38)
    return np.ascontiguousarray(t), np.ascontiguousarray(raw)


def expected_counts(t: np.ndarray, raw: np.ndarray) -> dict[str, int]:
    late = bad = 0
    last = -math.inf
    kept = []
    for i, ti in enumerate(t.tolist()):
        if not math.isfinite(ti):
            bad += 1
        elif kept and ti <= last:
            late += 1
        else:
            kept.append(i)
            last = ti
    r = raw[kept].astype(np.float64)
    finite = np.isfinite(r)
    return {
        "frames": len(kept),
        "late_frames": late,
        "bad_time_frames": bad,
        "nan_samples": int((~finite).sum()),
        "saturated_samples": int((finite & (r >= RAW_MAX)).sum()),
    }


@SETTINGS
@given(streams(), st.lists(st.integers(1, 200), min_size=1, max_size=8), st.booleans())
def test_hostile_frames_are_counted_and_chunking_is_invisible(stream, cuts, lowpass) -> None:
    t, raw = stream
    cfg = AnalysisConfig(lowpass_hz=30.0 if lowpass else None)
    whole = FootAnalyzer(PROFILE, "left", BW, cfg)
    ref_steps = whole.feed(t, raw) + whole.flush()
    q = whole.quality
    for k, v in expected_counts(t, raw).items():
        assert q[k] == v, k
    assert q["dropped_frames"] >= 0 and q["gaps"] >= 0
    assert set(q["saturated_sensors"]) <= {0, 1, 2} and set(q["silent_sensors"]) <= {0, 1, 2}
    for s in ref_steps:
        assert s.t_toe_off > s.t_contact and s.contact_ms >= cfg.min_contact_ms - 1e-6
        assert s.strike_index is None or 0.0 <= s.strike_index <= 1.0
        assert math.isfinite(s.peak_force_bw) and math.isfinite(s.impulse_bw_s)
    # the same stream cut anywhere gives the same steps
    fa = FootAnalyzer(PROFILE, "left", BW, cfg)
    got = []
    pos = 0
    k = 0
    while pos < len(t):
        step = cuts[k % len(cuts)]
        got += fa.feed(t[pos : pos + step], raw[pos : pos + step])
        pos += step
        k += 1
    got += fa.flush()
    assert [s.to_dict() for s in got] == [s.to_dict() for s in ref_steps]
    assert fa.quality == q


@SETTINGS
@given(streams(hostile=False))
def test_kernel_matches_reference_on_fuzzed_frames(stream) -> None:
    t, raw = stream
    fa = FootAnalyzer(PROFILE, "right", BW)
    steps = fa.feed(t, raw) + fa.flush()
    ev, q = analyze_reference(t, raw, PROFILE, kernel_setup(PROFILE, BW, AnalysisConfig()).params)
    assert len(steps) == len(ev)
    for s, row in zip(steps, ev, strict=True):
        assert math.isclose(s.t_contact, row[0], rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(s.t_toe_off, row[1], rel_tol=1e-9, abs_tol=1e-9)
    qq = fa.quality
    assert (
        qq["frames"],
        qq["late_frames"],
        qq["dropped_frames"],
        qq["nan_samples"],
        qq["cut_contacts"],
        qq["partial_contacts"],
    ) == (q["frames"], q["late"], q["dropped"], q["nan_samples"], q["gap_cut"], q["partial"])


@SETTINGS
@given(streams(), streams())
def test_gait_never_crashes_and_orders_steps(left, right) -> None:
    gait = GaitAnalyzer(PROFILE, BW)
    out = gait.feed("left", *left) + gait.feed("right", *right) + gait.flush()
    assert len(out) == gait.quality["left"]["steps"] + gait.quality["right"]["steps"]
    for s in out:
        assert s.flight_ms is None or 0 < s.flight_ms < 1000
