"""The simulator is the kernels' oracle: its frames must carry exactly the truth it reports."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pydantic import ValidationError

from edge_agent.analysis.step import strike_zone
from edge_agent.profiles import load_profile, parse_profile
from edge_agent.recordings import FootStream, Recording
from edge_agent.recordings.simulator import (
    BLOCK_FRAMES,
    CONTACT_LEVEL_BW,
    G,
    RunParams,
    SimulatorStream,
    ground_truth_signals,
    newtons_to_raw,
    raw_to_newtons,
    simulate,
)

QUIET = {"noise_n": 0.0, "swing_offset_n": 0.0}


def _forces(profile, raw):
    """Per-sensor newtons with the profile's own calibration (independent of the simulator's inverse)."""
    cal = profile.calibration
    return (raw.astype(np.float64) - cal.offset) * profile.linear_gain()[None, :]


def test_same_seed_same_frames_other_seed_other_frames():
    p = load_profile("moticon-opengo")
    params = RunParams(duration_s=8, seed=5, dropout_prob=0.02)
    a, ta = simulate(p, params)
    b, tb = simulate(p, params)
    c, _ = simulate(p, params.model_copy(update={"seed": 6}))
    assert isinstance(a, Recording) and isinstance(a.left, FootStream)
    assert np.array_equal(a.left.raw, b.left.raw) and np.array_equal(a.right.t, b.right.t)
    assert ta == tb
    assert not np.array_equal(a.left.raw[:100], c.left.raw[:100])
    assert a.left.raw.dtype == np.float32 and a.left.raw.flags.c_contiguous and a.left.t.dtype == np.float64


def test_step_truth_is_consistent_and_cadence_as_requested():
    p = load_profile("pedar-99")
    params = RunParams(duration_s=60, cadence_spm=176, contact_ms=240)
    rec, truths = simulate(p, params)
    assert [t.side for t in truths[:6]] == ["left", "right"] * 3
    assert all(t.t_contact < t.t_toe_off <= rec.duration_s + 1e-9 for t in truths)
    contact = np.array([t.contact_ms for t in truths])
    assert np.allclose(contact, [1000 * (t.t_toe_off - t.t_contact) for t in truths])
    # the truth's edges are the 0.03 BW crossings, a few ms inside the 240 ms force curve
    assert 232 < np.mean(contact) < 240
    span = truths[-1].t_contact - truths[0].t_contact
    cadence = (len(truths) - 1) / span * 60
    assert cadence == pytest.approx(176, rel=0.01)
    for t in truths:
        assert t.strike_zone == strike_zone(t.strike_index)
        assert t.impact_peak and t.lr_method == "impact_peak"
        assert 30 < t.valr_bw_s < 120 and t.vilr_bw_s >= t.valr_bw_s
        assert t.peak_force_bw == pytest.approx(2.5, rel=0.05)
    # same foot never overlaps itself; flight phase between opposite feet at 240 ms / 176 spm
    left = [t for t in truths if t.side == "left"]
    assert all(b.t_contact > a.t_toe_off for a, b in itertools.pairwise(left))


def test_frames_carry_the_truth_force_and_contacts():
    """At 1 kHz, total force from the frames equals the truth curve (a plate-like reading without the
    unloading lag): below the contact level between the truth's contacts, peak = truth."""
    p = load_profile("moticon-opengo")
    params = RunParams(duration_s=6, sample_rate_hz=1000, unloading_tau_ms=0.0, **QUIET)
    rec, truths = simulate(p, params)
    bw = params.body_mass_kg * G
    for side, fs in rec.streams():
        total = _forces(p, fs.raw).sum(axis=1)
        steps = [t for t in truths if t.side == side]
        inside = np.zeros(fs.t.size, bool)
        for tr in steps:
            m = (fs.t >= tr.t_contact) & (fs.t <= tr.t_toe_off)
            inside |= m
            assert total[m].max() / bw == pytest.approx(tr.peak_force_bw, rel=2e-3)
            assert total[m][0] / bw < 0.1  # contact starts from zero force
            assert total[m].min() / bw >= CONTACT_LEVEL_BW - 1e-6  # edges at the contact level
        assert np.all(total[~inside] / bw < CONTACT_LEVEL_BW + 1e-6)
        expected, _, _ = ground_truth_signals(p, params, side, fs.t)
        assert np.allclose(total, expected, atol=1e-2)


def test_insoles_unload_with_their_lag():
    """A pressure insole's reading follows a falling force with its time constant: the same run read by a
    capacitive insole (15 ms by default) equals the force while loading and trails it while unloading."""
    p = load_profile("moticon-opengo")
    assert p.sensor_type == "capacitive"
    base = RunParams(duration_s=3, sample_rate_hz=1000, **QUIET)
    plate, truths = simulate(p, base.model_copy(update={"unloading_tau_ms": 0.0}))
    insole, truths2 = simulate(p, base)
    assert truths == truths2  # the truth is the force, not the reading
    f_plate = _forces(p, plate.left.raw).sum(axis=1)
    f_insole = _forces(p, insole.left.raw).sum(axis=1)
    assert np.all(f_insole >= f_plate - 1e-3)  # never below the force
    tr = next(t for t in truths if t.side == "left")
    rise = (plate.left.t > tr.t_contact) & (plate.left.t < tr.t_contact + 0.02)
    assert np.allclose(f_insole[rise], f_plate[rise], atol=1e-3)
    k = int(np.searchsorted(plate.left.t, tr.t_toe_off))  # where the force has fallen to the contact level
    bw = base.body_mass_kg * G
    # after toe-off the reading decays from its value there with τ ≈ 15 ms (the force itself is ≈ 0)
    tail = f_insole[k : k + 60] / bw
    assert tail[0] > 0.1 and tail[15] / tail[0] == pytest.approx(np.exp(-1.0), rel=0.15)


def _four_newton_sensors():
    """The 4-FSR DIY layout with a linear (newton) calibration: exactness needs unrounded raw values."""
    base = load_profile("diy-mcp3008-fsr4")
    return parse_profile(
        {
            "name": "four",
            "sample_rate_hz": 100,
            "raw_unit": "N",
            "sensor_type": "force",
            "sensors": [s.model_dump() for s in base.sensors],
        }
    )


@pytest.mark.parametrize("name", ["four", "ultraflex-8", "moticon-opengo", "pedar-99", "grid-60x21"])
def test_cop_of_generated_frames_is_exactly_the_target(name):
    p = _four_newton_sensors() if name == "four" else load_profile(name)
    params = RunParams(duration_s=4, strike_index_left=0.5, standing_s=1, walking_s=1, **QUIET)
    rec, _ = simulate(p, params)
    f = _forces(p, rec.left.raw)
    total = f.sum(axis=1)
    _, x, y = ground_truth_signals(p, params, "left", rec.left.t)
    m = total > 1.0
    assert m.sum() > 100
    cop_x = (f[m] @ p.sensor_x()) / total[m]
    cop_y = (f[m] @ p.sensor_y()) / total[m]
    assert np.max(np.abs(cop_x - x[m])) < 1e-5
    assert np.max(np.abs(cop_y - y[m])) < 1e-5


def test_cop_at_initial_contact_is_the_strike_index():
    p = load_profile("grid-60x21")  # ~1000 sensels: the hull covers the whole foot
    params = RunParams(duration_s=3, sample_rate_hz=1000, strike_index_left=0.2, strike_index_right=0.6, **QUIET)
    rec, truths = simulate(p, params)
    assert p.n_sensors > 900
    for side, fs in rec.streams():
        f = _forces(p, fs.raw)
        for tr in (t for t in truths if t.side == side):
            i = int(np.searchsorted(fs.t, tr.t_contact - 0.01))
            while f[i].sum() <= 0:  # the first loaded frame (the truth's edge is at 0.03 BW, a little later)
                i += 1
            cop = f[i] @ p.sensor_x() / f[i].sum()
            # midfoot strikes start moving backwards at once (≈0.004 per ms): allow for one frame of it
            assert cop == pytest.approx(tr.strike_index, abs=2e-3 if tr.strike_index < 1 / 3 else 1e-2)
    # the midfoot striker's CoP first moves backwards (~0.03 within ~20 ms)
    tr = next(t for t in truths if t.side == "right")
    tt = tr.t_contact + np.linspace(0.001, 0.04, 40)
    _, x, _ = ground_truth_signals(p, params, "right", tt)
    assert np.min(x) < tr.strike_index - 0.02


def test_chunked_stream_equals_whole_recording():
    p = load_profile("moticon-opengo")
    params = RunParams(duration_s=15, seed=11, dropout_prob=0.03, standing_s=1.5, walking_s=2, drift_n_per_min=5)
    rec, truths = simulate(p, params)
    stream = SimulatorStream(p, params)
    rng = np.random.default_rng(0)
    parts = []
    while not stream.exhausted:
        parts.append(stream.next_chunk(int(rng.integers(1, 3 * BLOCK_FRAMES))))
    for k, side in enumerate(("left", "right")):
        fs = getattr(rec, side)
        assert np.array_equal(np.concatenate([pp[k].t for pp in parts]), fs.t)
        assert np.array_equal(np.concatenate([pp[k].raw for pp in parts]), fs.raw)
    assert stream.truths == truths


def test_spikes_raise_valr_truth_by_the_factor():
    p = load_profile("moticon-opengo")
    for kw in ({}, {"impact_peak_bw": None, "strike_index_left": 0.8, "strike_index_right": 0.8}):
        params = RunParams(duration_s=30, spikes=[(10, 15, 1.5), (20, 22, 0.8)], jitter=0.0, **kw)
        _, truths = simulate(p, params)
        base = np.median([t.valr_bw_s for t in truths if t.spike_factor == 1.0 and t.side == "left"])
        up = [t.valr_bw_s / base for t in truths if t.spike_factor == 1.5 and t.side == "left"]
        down = [t.valr_bw_s / base for t in truths if t.spike_factor == 0.8 and t.side == "left"]
        assert len(up) >= 5 and len(down) >= 2
        assert np.allclose(up, 1.5, rtol=0.01) and np.allclose(down, 0.8, rtol=0.01)
        assert all(10 <= t.t_contact < 15 for t in truths if t.spike_factor == 1.5)


def test_forefoot_steps_use_the_fallback_loading_rate():
    p = load_profile("moticon-opengo")
    _, truths = simulate(
        p, RunParams(duration_s=10, impact_peak_bw=None, strike_index_left=0.8, strike_index_right=0.8)
    )
    assert all(not t.impact_peak and t.lr_method == "fallback" and t.impact_peak_bw is None for t in truths)
    assert all(t.strike_zone == "forefoot" for t in truths)
    assert 15 < np.median([t.valr_bw_s for t in truths]) < 60


@pytest.mark.parametrize(
    "name", ["single-zone-force", "diy-mcp3008-fsr4", "ultraflex-8", "moticon-opengo", "pedar-99", "grid-60x21"]
)
def test_every_sensor_count_works(name):
    p = load_profile(name)
    rec, truths = simulate(p, RunParams(duration_s=5))
    for _, fs in rec.streams():
        assert fs.raw.shape == (fs.t.size, p.n_sensors)
        assert np.all(np.isfinite(fs.raw)) and np.all(fs.raw >= 0)
        if p.raw_max is not None:
            assert fs.raw.max() <= p.raw_max
    assert len(truths) >= 13  # 5 s at 170 spm


def test_single_channel_and_collinear_sensors():
    line = parse_profile(
        {
            "name": "line",
            "sample_rate_hz": 100,
            "raw_unit": "N",
            "sensor_type": "force",
            "sensors": [
                {"x": 0.1, "y": 0.5, "area_cm2": 1, "region": "heel"},
                {"x": 0.5, "y": 0.5, "area_cm2": 1, "region": "midfoot"},
                {"x": 0.9, "y": 0.5, "area_cm2": 1, "region": "toes"},
            ],
        }
    )
    params = RunParams(duration_s=3, strike_index_left=0.3, **QUIET)
    rec, _ = simulate(line, params)
    f = rec.left.raw.astype(np.float64)
    m = f.sum(1) > 1
    _, x, _ = ground_truth_signals(line, params, "left", rec.left.t)
    assert np.allclose(f[m] @ line.sensor_x() / f[m].sum(1), x[m], atol=1e-5)


def test_fsr_divider_counts_round_trip():
    p = load_profile("diy-esp32-fsr8")
    f = np.array([[0.0, 1.0, 10.0, 100.0, 400.0, 5.0, 50.0, 200.0]])
    raw = newtons_to_raw(p, f)
    assert np.allclose(raw_to_newtons(p, raw)[0, 1:], f[0, 1:], rtol=1e-9)
    rec, _ = simulate(p, RunParams(duration_s=3))
    assert np.all(rec.left.raw == np.rint(rec.left.raw)) and rec.left.raw.max() <= 4095


def test_dropouts_standing_and_drift():
    p = load_profile("moticon-opengo")
    params = RunParams(duration_s=20, standing_s=5, dropout_prob=0.1, noise_n=0, swing_offset_n=15)
    rec, _ = simulate(p, params)
    n_slots = int(params.total_s * p.sample_rate_hz)
    for _, fs in rec.streams():
        assert 0.85 < fs.t.size / n_slots < 0.95
        assert np.all(np.diff(fs.t) > 0)
    both = []
    for _, fs in rec.streams():
        m = (fs.t > 0.5) & (fs.t < 4.5)
        both.append(np.interp(np.arange(0.5, 4.5, 0.01), fs.t[m], _forces(p, fs.raw[m]).sum(1)))
    standing = np.mean(both[0] + both[1])
    assert standing == pytest.approx(70 * G + 2 * 15, rel=0.01)


def test_fatigue_and_asymmetry_move_the_truth_the_right_way():
    p = load_profile("moticon-opengo")
    _, truths = simulate(p, RunParams(duration_s=120, fatigue=1.0, asymmetry_pct=10))
    early = [t for t in truths if t.t_contact < 24]
    late = [t for t in truths if t.t_contact > 96]

    def cad(ts):
        return (len(ts) - 1) / (ts[-1].t_contact - ts[0].t_contact) * 60

    assert cad(late) < 0.97 * cad(early)
    assert np.mean([t.contact_ms for t in late]) > 1.05 * np.mean([t.contact_ms for t in early])
    assert np.mean([t.valr_bw_s for t in late]) > 1.1 * np.mean([t.valr_bw_s for t in early])
    cl = np.mean([t.contact_ms for t in early if t.side == "left"])
    cr = np.mean([t.contact_ms for t in early if t.side == "right"])
    assert (cr - cl) / (0.5 * (cr + cl)) * 100 == pytest.approx(10, abs=1.5)


def test_walking_and_standing_segments():
    p = load_profile("moticon-opengo")
    rec, truths = simulate(p, RunParams(duration_s=10, standing_s=3, walking_s=5))
    assert [s.label for s in rec.segments] == ["standing", "walking", "running", "walking"]
    assert rec.segments[2].t_start == 8 and rec.segments[2].t_end == 18
    walk = [t for t in truths if t.gait == "walk"]
    run = [t for t in truths if t.gait == "run"]
    assert walk and run
    assert all(t.t_contact >= 3 for t in truths)
    assert np.mean([t.contact_ms for t in walk]) > 500 and np.mean([t.contact_ms for t in run]) < 300


def test_bad_params_say_what_and_where():
    with pytest.raises(ValidationError, match="cadence_spm"):
        RunParams(cadence_spm=-5)
    with pytest.raises(ValidationError, match="spikes"):
        RunParams(spikes=[(5, 2, 1.5)])
    with pytest.raises(ValidationError, match="surprise"):
        RunParams(surprise=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="n_frames"):
        SimulatorStream(load_profile("moticon-opengo"), RunParams(duration_s=1)).next_chunk(0)
