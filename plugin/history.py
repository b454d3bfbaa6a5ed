"""Simulated summary history: N weeks of a runner's WindowSummary/RunSummary messages, straight into a store.

For the demo (`footfall-dashboard seed-history`), the risk-engine tests and the benchmarks. It builds the wire
messages from a small pure-Python model (no numpy, no numba — the plugin must run without the analysis stack);
the numbers follow docs/design.md §4: cadence ~165–175 spm, contact ~250 ms, VALR mean ~50 BW/s with forefoot steps
loading ~30 % slower (meta-analysis, Sports Health 2021, PMC7734358), Herzog's SI% for asymmetry and
Zifchock's symmetry angle, and the per-foot run statistics pooled from the windows, all as defined in
:mod:`edge_agent.common.measures`. Scenarios inject what the risk rules look for: an in-run loading spike, a too-fast
forefoot transition, fatigue drift, a persistent asymmetry, a training-load jump — and what the program watches: a
runner following it (cadence up, loading down) and a change of shoes.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from edge_agent.common.measures import pool_stats, symmetry_angle_pct, symmetry_index_pct
from edge_agent.contract import (
    SCHEMA_VERSION,
    Asymmetry,
    FootStats,
    LoadingRateEstimate,
    Quality,
    RunSummary,
    Stat,
    StepRecord,
    WindowSummary,
    ZoneCounts,
)

DAY = 86400.0
WEEK = 7 * DAY
_ZONE_SI = {"rearfoot": 0.18, "midfoot": 0.50, "forefoot": 0.80}


@dataclass
class RunnerModel:
    """A runner's steady-state form (the personal baseline the simulation varies around)."""

    name: str = "alex"
    device_id: str = "sim-1"
    profile: str = "moticon-opengo"  # the insoles the runs were measured with (their loading-rate basis)
    body_mass_kg: float = 68.0
    cadence_spm: float = 168.0
    contact_ms: float = 255.0
    valr_bw_s: float = 50.0
    forefoot_share: float = 0.04
    midfoot_share: float = 0.10
    asym_contact_pct: float = 1.0
    runs_per_week: int = 4
    run_minutes: tuple[float, float] = (30.0, 45.0)
    long_run_minutes: float = 60.0


@dataclass
class Scenario:
    """What to inject. Run numbers are 0-based over the whole history."""

    #: (run number, first window, number of windows, VALR factor) — an in-run loading spike.
    spike: tuple[int, int, int, float] | None = None
    #: (first week, last week, forefoot share reached at the last week) — linear strike transition.
    forefoot_transition: tuple[int, int, float] | None = None
    #: run numbers with fatigue drift over their second half (cadence −7 %, contact +8 %, VALR +15 %).
    fatigue_runs: tuple[int, ...] = ()
    #: (first run, contact-time SI% from then on) — a persistent asymmetry.
    asymmetry: tuple[int, float] | None = None
    #: (first week, volume factor) — a training-load jump from that week on.
    load_jump: tuple[int, float] | None = None
    #: (first week, cadence rise reached, weeks to reach it) — a runner following the program: cadence rises
    #: linearly week by week, VALR falls 2.5 % per 1 % of cadence (Willy 2016: +7.5 % step rate, VALR −19 %).
    program: tuple[int, float, int] | None = None
    #: (first run in the new pair, old pair, new pair, VALR factor, forefoot share added) — a shoe change whose
    #: first 3 runs load faster and land further forward; every run names its pair (RunSummary.shoe).
    shoe_change: tuple[int, str, str, float, float] | None = None


@dataclass
class _Counter:
    stream_id: str
    seq: int = 0
    ids: random.Random = field(default_factory=random.Random)

    def envelope(self, device_id: str, runner: str, t: float) -> dict[str, object]:
        self.seq += 1
        return {
            "msg_id": f"{self.ids.getrandbits(96):024x}",
            "device_id": device_id,
            "stream_id": self.stream_id,
            "seq": self.seq,
            "device_time": t,
            "runner": runner,
        }


def _stat(mean: float, sd: float, n: int) -> Stat:
    if n == 0:
        return Stat()
    return Stat(n=n, mean=mean, sd=sd, p90=mean + 1.2816 * sd, max=mean + 2.5 * sd)


def _foot(
    rng: random.Random, steps: int, valr: float, contact: float, fore: float, mid: float, peak: float
) -> FootStats:
    nf = round(steps * fore)
    nm = round(steps * mid)
    nr = max(0, steps - nf - nm)
    si = (nr * _ZONE_SI["rearfoot"] + nm * _ZONE_SI["midfoot"] + nf * _ZONE_SI["forefoot"]) / max(steps, 1)
    return FootStats(
        steps=steps,
        zones=ZoneCounts(rearfoot=nr, midfoot=nm, forefoot=nf),
        zone_uncertain=round(steps * 0.08),
        strike_index=_stat(si, 0.06, steps),
        valr_bw_s=_stat(valr, valr * 0.18, steps),
        vilr_bw_s=_stat(valr * 1.25, valr * 0.22, steps),
        impact_peak_share=max(0.0, min(1.0, 1.0 - fore)),
        contact_ms=_stat(contact, contact * 0.04, steps),
        flight_ms=_stat(max(0.0, 60000.0 / 168.0 - contact), 8.0, steps),
        peak_force_bw=_stat(peak, 0.12, steps),
        impulse_bw_s=_stat(peak * contact / 1000.0 * 0.64, 0.01, steps),
        cop_ml_excursion=_stat(0.22 + rng.gauss(0, 0.01), 0.03, steps),
    )


def history_start(*, weeks: int, end: float | None = None) -> float:
    """The Monday 00:00 UTC on which :func:`generate_history` starts ``weeks`` weeks of history before ``end``."""
    end = time.time() if end is None else end
    end_monday = math.floor((end - 4 * DAY) / WEEK) * WEEK + 4 * DAY  # Unix epoch was a Thursday
    return end_monday - weeks * WEEK


def generate_history(
    *,
    weeks: int = 8,
    end: float | None = None,
    runner: RunnerModel | None = None,
    scenario: Scenario | None = None,
    window_s: float = 60.0,
    seed: int = 0,
    step_records_last_runs: int = 2,
    stream_id: str | None = None,
    schema_version: int = SCHEMA_VERSION,
) -> Iterator[WindowSummary | RunSummary]:
    """Yield the messages of ``weeks`` weeks of running, in publish order (each run's windows, then its run).

    The history ends before ``end`` (default: now); weeks start on Monday 00:00 UTC. ``window_s`` is coarser
    than the agent's 10 s default to keep a year of history small (about 14 k windows). ``schema_version`` 1
    gives what an agent before contract v2 sent (no loading-rate interval, windows without a profile).
    """
    rng = random.Random(seed)
    model = runner or RunnerModel()
    sc = scenario or Scenario()
    end = time.time() if end is None else end
    start = history_start(weeks=weeks, end=end)
    counter = _Counter(stream_id or f"sim{rng.getrandbits(48):012x}", ids=random.Random(seed + 7919))
    days_by_count = {1: [6], 2: [2, 6], 3: [1, 3, 6], 4: [0, 2, 4, 6], 5: [0, 1, 3, 4, 6], 6: [0, 1, 2, 3, 4, 6]}
    schedule: list[tuple[int, float, float]] = []  # (week, start time, minutes)
    for week in range(weeks):
        factor = sc.load_jump[1] if sc.load_jump and week >= sc.load_jump[0] else 1.0
        per_week = min(6, max(1, round(model.runs_per_week * min(factor, 1.5))))
        days = days_by_count[per_week]
        for d in days:
            minutes = model.long_run_minutes if d == 6 else rng.uniform(*model.run_minutes)
            minutes *= factor / min(factor, 1.5) if factor > 1.5 else 1.0
            t0 = start + week * WEEK + d * DAY + 7 * 3600 + rng.uniform(0, 3600)
            if t0 + minutes * 60 < end:
                schedule.append((week, t0, minutes))
    n_runs = len(schedule)
    for run_no, (week, t0, minutes) in enumerate(schedule):
        fore = model.forefoot_share
        mid = model.midfoot_share
        if sc.forefoot_transition:
            w0, w1, target = sc.forefoot_transition
            if week >= w0:
                frac = min(1.0, (week - w0 + 1) / max(1, w1 - w0 + 1))
                fore = model.forefoot_share + (target - model.forefoot_share) * frac
                mid = min(mid, 1.0 - fore)
        shoe = None
        in_new_pair = False
        if sc.shoe_change:
            first_new, old_pair, new_pair, _, shoe_fore = sc.shoe_change
            shoe = new_pair if run_no >= first_new else old_pair
            in_new_pair = first_new <= run_no < first_new + 3
            if in_new_pair:
                fore = min(0.9, fore + shoe_fore)
                mid = min(mid, 1.0 - fore)
        asym_base = model.asym_contact_pct
        if sc.asymmetry and run_no >= sc.asymmetry[0]:
            asym_base = sc.asymmetry[1]
        run_id = f"{model.device_id}-{int(t0)}"
        n_windows = max(1, int(minutes * 60 // window_s))
        with_steps = run_no >= n_runs - step_records_last_runs
        day_valr = model.valr_bw_s * rng.gauss(1.0, 0.03)
        day_cad = model.cadence_spm * rng.gauss(1.0, 0.01)
        if sc.program and week >= sc.program[0]:
            p0, goal, ramp_weeks = sc.program
            rise = goal * min(1.0, (week - p0 + 1) / max(1, ramp_weeks))
            day_cad *= 1.0 + rise
            day_valr *= max(0.3, 1.0 - 2.5 * rise)
        if in_new_pair and sc.shoe_change:
            day_valr *= sc.shoe_change[3]
        windows: list[WindowSummary] = []
        for wi in range(n_windows):
            ws = t0 + wi * window_s
            cad = day_cad * rng.gauss(1.0, 0.006)
            contact = model.contact_ms * (model.cadence_spm / cad) ** 0.5 * rng.gauss(1.0, 0.008)
            valr = day_valr * (1.0 - 0.3 * fore) * rng.gauss(1.0, 0.025)
            if run_no in sc.fatigue_runs and wi >= n_windows // 2:
                k = (wi - n_windows // 2 + 1) / max(1, n_windows - n_windows // 2)
                cad *= 1.0 - 0.07 * k
                contact *= 1.0 + 0.08 * k
                valr *= 1.0 + 0.15 * k
            if sc.spike and sc.spike[0] == run_no and sc.spike[1] <= wi < sc.spike[1] + sc.spike[2]:
                valr *= sc.spike[3]
            asym = asym_base + rng.gauss(0, 0.6)
            steps = round(cad * window_s / 60.0)
            sl = steps // 2
            sr = steps - sl
            cl = contact * (1 - asym / 200.0)
            cr = contact * (1 + asym / 200.0)
            left = _foot(rng, sl, valr * rng.gauss(1.0, 0.01), cl, fore, mid, 2.45)
            right = _foot(rng, sr, valr * rng.gauss(1.0, 0.01), cr, fore, mid, 2.45)
            lv, rv = left.valr_bw_s.mean or 0.0, right.valr_bw_s.mean or 0.0
            records: list[StepRecord] = []
            if with_steps:
                for k in range(min(steps, 40)):
                    side = "left" if k % 2 == 0 else "right"
                    u = rng.random()
                    zone = "forefoot" if u < fore else ("midfoot" if u < fore + mid else "rearfoot")
                    si = min(1.0, max(0.0, rng.gauss(_ZONE_SI[zone], 0.06)))
                    sv = max(5.0, rng.gauss(valr * (0.7 if zone == "forefoot" else 1.0), valr * 0.18))
                    records.append(
                        StepRecord(
                            side=side,
                            t=ws + k * window_s / max(steps, 1),
                            contact_ms=cl if side == "left" else cr,
                            strike_index=si,
                            strike_zone=zone,
                            valr_bw_s=sv,
                            vilr_bw_s=sv * 1.25,
                            impact_peak=zone != "forefoot",
                            peak_force_bw=rng.gauss(2.45, 0.1),
                            cop_x=si,
                            cop_y=min(1.0, max(0.0, rng.gauss(0.45, 0.08))),
                        )
                    )
            windows.append(
                WindowSummary(
                    **counter.envelope(model.device_id, model.name, ws + window_s),  # type: ignore[arg-type]
                    run_id=run_id,
                    window_index=wi,
                    t_start=ws,
                    t_end=ws + window_s,
                    steps=steps,
                    cadence_spm=cad,
                    duty_factor=contact / (120000.0 / cad),
                    left=left,
                    right=right,
                    asymmetry=Asymmetry(
                        contact_ms_pct=symmetry_index_pct(cl, cr),
                        valr_pct=symmetry_index_pct(lv, rv),
                        peak_force_pct=0.0,
                        strike_index_pct=symmetry_index_pct(left.strike_index.mean, right.strike_index.mean),
                        contact_ms_sa=symmetry_angle_pct(cl, cr),
                        valr_sa=symmetry_angle_pct(lv, rv) if lv + rv > 0 else None,
                    ),
                    quality=Quality(frames=int(window_s * 100), sample_rate_hz=100.0, loading_rate_low_confidence=True),
                    body_mass_kg=model.body_mass_kg,
                    step_records=records,
                    **_v2(schema_version, left, right, model.profile),
                )
            )
        yield from windows
        yield _run_summary(counter, model, run_id, windows, schema_version, shoe)


#: The simulated runner's loading-rate interval around the mean at 100 Hz (a typical width, docs/validation.md).
_INTERVAL = (0.93, 1.12)


def _v2(schema_version: int, left: FootStats, right: FootStats, profile: str) -> dict[str, object]:
    """The contract-v2 fields (none for a schema-1 message): the pooled VALR with its interval, the profile."""
    if schema_version < 2:
        return {"schema_version": schema_version}
    n = left.valr_bw_s.n + right.valr_bw_s.n
    if n == 0:
        return {"schema_version": schema_version, "profile": profile}
    m = ((left.valr_bw_s.mean or 0.0) * left.valr_bw_s.n + (right.valr_bw_s.mean or 0.0) * right.valr_bw_s.n) / n
    est = LoadingRateEstimate(mean=m, lo=m * _INTERVAL[0], hi=m * _INTERVAL[1], n=n, sample_rate_hz=100.0)
    return {"schema_version": schema_version, "profile": profile, "valr": est}


def _pool_foot(feet: list[FootStats]) -> FootStats:
    return FootStats(
        steps=sum(f.steps for f in feet),
        zones=ZoneCounts(
            rearfoot=sum(f.zones.rearfoot for f in feet),
            midfoot=sum(f.zones.midfoot for f in feet),
            forefoot=sum(f.zones.forefoot for f in feet),
        ),
        zone_uncertain=sum(f.zone_uncertain for f in feet),
        **{
            k: pool_stats([getattr(f, k) for f in feet])
            for k in (
                "strike_index",
                "valr_bw_s",
                "vilr_bw_s",
                "contact_ms",
                "flight_ms",
                "peak_force_bw",
                "impulse_bw_s",
                "cop_ml_excursion",
            )
        },
    )


def _run_summary(
    counter: _Counter,
    model: RunnerModel,
    run_id: str,
    windows: list[WindowSummary],
    schema_version: int,
    shoe: str | None = None,
) -> RunSummary:
    left = _pool_foot([w.left for w in windows])
    right = _pool_foot([w.right for w in windows])
    t0, t1 = windows[0].t_start, windows[-1].t_end
    steps = sum(w.steps for w in windows)
    lc, rc = left.contact_ms.mean or 0.0, right.contact_ms.mean or 0.0
    lv, rv = left.valr_bw_s.mean or 0.0, right.valr_bw_s.mean or 0.0
    ls, rs = left.strike_index.mean or 0.0, right.strike_index.mean or 0.0
    return RunSummary(
        **counter.envelope(model.device_id, model.name, t1 + 5.0),  # type: ignore[arg-type]
        run_id=run_id,
        started_at=t0,
        ended_at=t1,
        duration_s=t1 - t0,
        windows=len(windows),
        steps=steps,
        cadence_spm=steps / (t1 - t0) * 60.0,
        duty_factor=sum((w.duty_factor or 0.0) for w in windows) / len(windows),
        left=left,
        right=right,
        asymmetry=Asymmetry(
            contact_ms_pct=symmetry_index_pct(lc, rc),
            valr_pct=symmetry_index_pct(lv, rv),
            peak_force_pct=0.0,
            strike_index_pct=symmetry_index_pct(ls, rs) if ls + rs > 0 else None,
            contact_ms_sa=symmetry_angle_pct(lc, rc),
            valr_sa=symmetry_angle_pct(lv, rv),
        ),
        quality=Quality(
            frames=sum(w.quality.frames for w in windows), sample_rate_hz=100.0, loading_rate_low_confidence=True
        ),
        body_mass_kg=model.body_mass_kg,
        shoe=shoe,
        **{"profile": model.profile, **_v2(schema_version, left, right, model.profile)},
    )


def seed_history(store: object, *, batch: int = 500, **kwargs: object) -> int:
    """Generate a history (``generate_history`` arguments) into ``store``; returns messages stored."""
    stored = 0
    pending: list[WindowSummary | RunSummary] = []
    for msg in generate_history(**kwargs):  # type: ignore[arg-type]
        pending.append(msg)
        if len(pending) >= batch:
            stored += store.insert_many(pending)  # type: ignore[attr-defined]
            pending.clear()
    if pending:
        stored += store.insert_many(pending)  # type: ignore[attr-defined]
    return stored
