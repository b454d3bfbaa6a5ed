"""Aggregator against hand-computed values."""

from __future__ import annotations

import math

import pytest

from edge_agent.analysis.aggregator import (
    asymmetry,
    cadence_spm,
    duty_factor,
    foot_stats,
    stat,
    step_records,
    summarize,
    symmetry_angle_pct,
    symmetry_index_pct,
)
from edge_agent.analysis.step import Step, strike_zone, zone_uncertain
from edge_agent.contract import WindowSummary


def mk(
    side: str,
    t: float,
    contact_ms: float = 250.0,
    si: float | None = 0.2,
    valr: float | None = 60.0,
    peak: float = 2.5,
    flight: float | None = None,
    impact: bool = True,
) -> Step:
    return Step(
        side=side,  # type: ignore[arg-type]
        t_contact=t,
        t_toe_off=t + contact_ms / 1000.0,
        contact_ms=contact_ms,
        strike_index=si,
        strike_zone=strike_zone(si) if si is not None else None,
        zone_uncertain=zone_uncertain(si) if si is not None else False,
        impact_peak=impact,
        valr_bw_s=valr,
        vilr_bw_s=None if valr is None else valr * 1.2,
        lr_method="impact_peak" if impact else "fallback",
        lr_low_confidence=True,
        peak_force_bw=peak,
        impulse_bw_s=0.3,
        cop_x=si,
        cop_y=0.5,
        cop_ml_excursion=0.1,
        flight_ms=flight,
    )


def test_stat_hand_computed() -> None:
    s = stat([200.0, 250.0, 300.0])
    assert s.n == 3
    assert s.mean == pytest.approx(250.0)
    assert s.sd == pytest.approx(50.0)  # sqrt((50² + 0 + 50²) / 2)
    assert s.p90 == pytest.approx(290.0)  # 250 + 0.8 × (300 − 250), type-7 interpolation
    assert s.max == pytest.approx(300.0)


def test_stat_ignores_none_and_nonfinite_and_empty() -> None:
    s = stat([None, math.nan, 10.0, math.inf])
    assert s.n == 1 and s.mean == 10.0 and s.sd is None and s.p90 == 10.0 and s.max == 10.0
    empty = stat([])
    assert empty.n == 0 and empty.mean is None


def test_foot_stats_zones_and_shares() -> None:
    steps = [
        mk("left", 0.0, si=0.1),
        mk("left", 0.7, si=0.5, impact=False),
        mk("left", 1.4, si=0.9),
        mk("left", 2.1, si=0.35),
    ]
    fs = foot_stats(steps)
    assert fs.steps == 4
    assert (fs.zones.rearfoot, fs.zones.midfoot, fs.zones.forefoot) == (1, 2, 1)
    assert fs.zone_uncertain == 1  # 0.35 is within 0.07 of 1/3
    assert fs.impact_peak_share == pytest.approx(0.75)
    assert fs.strike_index.mean == pytest.approx((0.1 + 0.5 + 0.9 + 0.35) / 4)
    assert fs.vilr_bw_s.mean == pytest.approx(72.0)


def test_symmetry_index_and_angle_hand_computed() -> None:
    assert symmetry_index_pct(200.0, 300.0) == pytest.approx(40.0)  # 100 / 250 × 100
    assert symmetry_angle_pct(200.0, 300.0) == pytest.approx((45.0 - math.degrees(math.atan(2 / 3))) / 0.9)
    assert symmetry_angle_pct(200.0, 300.0) == pytest.approx(12.5666, abs=1e-3)
    assert symmetry_index_pct(5.0, 5.0) == 0.0 and symmetry_angle_pct(5.0, 5.0) == pytest.approx(0.0)
    # Near zero SI% explodes, SA stays bounded (Zifchock's argument).
    assert symmetry_index_pct(0.001, 0.0) == pytest.approx(-200.0)
    assert symmetry_angle_pct(0.001, 0.0) == pytest.approx(-50.0)
    assert symmetry_angle_pct(0.0, 1.0) == pytest.approx(50.0)
    # Opposite signs: the paper's correction keeps |SA| ≤ 100.
    assert abs(symmetry_angle_pct(-1.0, 1.0)) <= 100.0  # type: ignore[arg-type]
    assert symmetry_index_pct(None, 1.0) is None and symmetry_index_pct(-1.0, 1.0) is None
    assert symmetry_angle_pct(0.0, 0.0) is None


def test_asymmetry_uses_per_foot_means() -> None:
    left = foot_stats([mk("left", 0.0, contact_ms=200.0, valr=50.0)])
    right = foot_stats([mk("right", 0.35, contact_ms=300.0, valr=50.0)])
    a = asymmetry(left, right)
    assert a.contact_ms_pct == pytest.approx(40.0)
    assert a.valr_pct == pytest.approx(0.0)
    assert a.contact_ms_sa == pytest.approx(12.5666, abs=1e-3)
    assert a.strike_index_pct == pytest.approx(0.0)


def test_cadence_over_span_and_duration() -> None:
    steps = [mk("left", 0.0), mk("right", 0.35), mk("left", 0.70), mk("right", 1.05)]
    assert cadence_spm(steps) == pytest.approx(3 / 1.05 * 60)  # 171.43
    assert cadence_spm(steps, duration_s=2.0) == pytest.approx(120.0)
    assert cadence_spm(steps[:1]) is None
    assert cadence_spm([]) is None and cadence_spm([], 10.0) is None
    # a 9 s stop inside a run is not running time: 4 intervals of 0.35 s → 171.4 spm, not 30.5
    paused = [*steps, mk("left", 10.0), mk("right", 10.35)]
    assert cadence_spm(paused) == pytest.approx(4 / 1.4 * 60)


def test_duty_factor_running_and_walking() -> None:
    run = [mk("left", 0.0), mk("right", 0.35), mk("left", 0.70), mk("right", 1.05)]
    assert duty_factor(run) == pytest.approx(0.25 / 0.70)
    walk = [mk("left", 0.0, 650.0), mk("right", 0.55, 650.0), mk("left", 1.1, 650.0), mk("right", 1.65, 650.0)]
    assert duty_factor(walk) == pytest.approx(0.65 / 1.1)
    # A pause longer than a stride is not a stride.
    assert duty_factor([mk("left", 0.0), mk("left", 10.0)]) is None


def test_summarize_and_wire_roundtrip() -> None:
    steps = [mk("right", 0.35, 300.0), mk("left", 0.0, 200.0), mk("left", 0.70, 200.0), mk("right", 1.05, 300.0)]
    rs = summarize(steps, 0.0, 10.0)
    assert rs.steps == 4 and rs.left.steps == 2 and rs.right.steps == 2
    assert rs.cadence_spm == pytest.approx(171.4286, abs=1e-3)
    assert rs.duty_factor == pytest.approx((0.2 / 0.7 + 0.3 / 0.7) / 2)
    assert rs.asymmetry.contact_ms_pct == pytest.approx(40.0)
    assert rs.duration_s == 10.0
    assert rs.table is not None and [s.t_contact for s in rs.table] == [0.0, 0.35, 0.70, 1.05]
    ws = WindowSummary(
        msg_id="abcdefgh12",
        device_id="pi",
        stream_id="abcd",
        seq=1,
        device_time=1.0,
        run_id="pi-20260101T000000",
        window_index=0,
        t_start=0.0,
        t_end=10.0,
        step_records=step_records(steps, 1_700_000_000.0),
        **rs.wire_fields(),
    )
    again = WindowSummary.model_validate_json(ws.model_dump_json())
    assert again.left.contact_ms.mean == pytest.approx(200.0)
    assert again.step_records[0].t == pytest.approx(1_700_000_000.0)


def test_step_records_sanitise_for_the_contract() -> None:
    bad = mk("left", 1.0, si=1.04, valr=math.nan, peak=-0.01)
    rec = step_records([bad], t0=100.0)[0]
    assert rec.t == pytest.approx(101.0)
    assert rec.strike_index == 1.0 and rec.cop_x == 1.0  # clipped into 0…1 (CoP noise at the toe)
    assert rec.valr_bw_s is None and rec.peak_force_bw == 0.0
    empty = summarize([])
    assert empty.steps == 0 and empty.cadence_spm is None and empty.left.impact_peak_share is None
