"""Window and run statistics from a list of :class:`~edge_agent.analysis.step.Step` (pure functions, no I/O).

The pipeline (windows, runs), the ``analyze`` command and the benchmarks all summarise steps the same
way, so the definitions live here, once:

- **Stat** (per measure): ``n``, ``mean``, sample ``sd`` (ddof = 1; None below 2 values), ``p90``
  (linear interpolation between order statistics, numpy's default "linear" method = Hyndman & Fan
  type 7) and ``max``. Non-finite values (NaN/inf from a broken step) are left out, because the wire
  contract rejects them and one bad step must not hide a whole window.
- **Cadence** (steps/min, both feet): ``(n − 1) / (t_last − t_first) × 60`` over the initial-contact
  times: n contacts span n − 1 step intervals, so this is unbiased for short windows, where
  ``n / window length`` is off by up to one step (±6 spm in a 10 s window). Intervals longer than
  ``MAX_STEP_GAP_S`` (pauses) are left out of both counts. With an explicit ``duration_s`` the
  plain rate ``n / duration_s × 60`` is used instead (a fixed period).
- **Duty factor** = contact time / stride time (stride = same-foot contact to next same-foot contact;
  running < 0.5 because of flight phases, walking > 0.5 because of double support; Cavagna 1977,
  Alexander 1989). Mean over strides; strides longer than :data:`MAX_STRIDE_S` (pauses, gaps) are
  left out.
- **Loading rate of a window or run** (``valr``): both feet pooled, the bias-aware mean of the steps'
  corrected VALR with its 90 % interval (:func:`edge_agent.analysis.loading_rate.mean_estimate`); needs
  the sample rate the steps were measured at.
- **Asymmetry**: symmetry index SI% = (R − L) / (0.5 (R + L)) × 100 (Robinson/Herzog 1987/1989),
  positive = right larger; and the symmetry angle SA = (45° − atan(L/R)) / 90° × 100 (Zifchock et al.
  2008, Gait Posture 27:622), which has the same sign convention and stays bounded (±50 %) when
  the values are small, where SI% explodes. Both are defined once, in :mod:`edge_agent.common.measures`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from edge_agent.analysis.loading_rate import mean_estimate
from edge_agent.analysis.step import Step
from edge_agent.common.measures import symmetry_angle_pct, symmetry_index_pct
from edge_agent.contract import Asymmetry, FootStats, LoadingRateEstimate, Stat, StepRecord, ZoneCounts

#: Strides (same-foot contact to contact) longer than this are pauses, not strides (walking ≈ 1.1 s).
MAX_STRIDE_S = 2.5
#: Consecutive contacts (either foot) further apart than this are a pause (walking ≈ 0.55 s).
MAX_STEP_GAP_S = 2.0


def stat(values: Iterable[float | None]) -> Stat:
    """Distribution of one measure; ``None`` and non-finite values are ignored."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = int(arr.size)
    if n == 0:
        return Stat()
    return Stat(
        n=n,
        mean=float(arr.mean()),
        sd=float(arr.std(ddof=1)) if n >= 2 else None,
        p90=float(np.percentile(arr, 90.0)),
        max=float(arr.max()),
    )


def foot_stats(steps: Sequence[Step]) -> FootStats:
    """Aggregates for the steps of ONE foot (the caller splits by side)."""
    zones = ZoneCounts(
        rearfoot=sum(1 for s in steps if s.strike_zone == "rearfoot"),
        midfoot=sum(1 for s in steps if s.strike_zone == "midfoot"),
        forefoot=sum(1 for s in steps if s.strike_zone == "forefoot"),
    )
    return FootStats(
        steps=len(steps),
        zones=zones,
        zone_uncertain=sum(1 for s in steps if s.zone_uncertain and s.strike_zone is not None),
        strike_index=stat(s.strike_index for s in steps),
        valr_bw_s=stat(s.valr_bw_s for s in steps),
        vilr_bw_s=stat(s.vilr_bw_s for s in steps),
        impact_peak_share=(sum(1 for s in steps if s.impact_peak) / len(steps)) if steps else None,
        contact_ms=stat(s.contact_ms for s in steps),
        flight_ms=stat(s.flight_ms for s in steps),
        peak_force_bw=stat(s.peak_force_bw for s in steps),
        impulse_bw_s=stat(s.impulse_bw_s for s in steps),
        cop_ml_excursion=stat(s.cop_ml_excursion for s in steps),
    )


def asymmetry(left: FootStats, right: FootStats) -> Asymmetry:
    """Left/right asymmetry of the per-foot means."""
    pairs = {
        "contact_ms": (left.contact_ms.mean, right.contact_ms.mean),
        "valr": (left.valr_bw_s.mean, right.valr_bw_s.mean),
        "peak_force": (left.peak_force_bw.mean, right.peak_force_bw.mean),
        "strike_index": (left.strike_index.mean, right.strike_index.mean),
    }
    return Asymmetry(
        contact_ms_pct=symmetry_index_pct(*pairs["contact_ms"]),
        valr_pct=symmetry_index_pct(*pairs["valr"]),
        peak_force_pct=symmetry_index_pct(*pairs["peak_force"]),
        strike_index_pct=symmetry_index_pct(*pairs["strike_index"]),
        contact_ms_sa=symmetry_angle_pct(*pairs["contact_ms"]),
        valr_sa=symmetry_angle_pct(*pairs["valr"]),
        peak_force_sa=symmetry_angle_pct(*pairs["peak_force"]),
    )


def cadence_spm(steps: Sequence[Step], duration_s: float | None = None) -> float | None:
    """Steps of both feet per minute: over the span of contacts, or over ``duration_s`` when given.

    Pauses — no initial contact for more than :data:`MAX_STEP_GAP_S` (a stop at a crossing inside
    a run) — are not moving time: those intervals are left out, so a run's cadence is the cadence
    while moving. Without pauses this is exactly ``(n − 1) / (t_last − t_first) × 60``.
    """
    if duration_s is not None:
        return len(steps) / duration_s * 60.0 if duration_s > 0 and steps else None
    if len(steps) < 2:
        return None
    times = sorted(s.t_contact for s in steps)
    gaps = [b - a for a, b in pairwise(times) if 0.0 <= b - a <= MAX_STEP_GAP_S]
    moving = sum(gaps)
    return len(gaps) / moving * 60.0 if moving > 0 else None


def duty_factor(steps: Sequence[Step]) -> float | None:
    """Mean contact / stride time over the strides (same-foot consecutive contacts) in ``steps``."""
    ratios: list[float] = []
    for side in ("left", "right"):
        foot = sorted((s for s in steps if s.side == side), key=lambda s: s.t_contact)
        for a, b in pairwise(foot):
            stride = b.t_contact - a.t_contact
            if 0.0 < stride <= MAX_STRIDE_S and math.isfinite(a.contact_ms):
                ratios.append(min(1.0, max(0.0, a.contact_ms / 1000.0 / stride)))
    return float(np.mean(ratios)) if ratios else None


def loading_rate_estimate(steps: Sequence[Step], sample_rate_hz: float | None) -> LoadingRateEstimate | None:
    """The pooled VALR of ``steps`` measured at ``sample_rate_hz``: bias-aware mean and 90 % interval."""
    if not sample_rate_hz:
        return None
    est = mean_estimate(
        [s.valr_bw_s for s in steps], [s.lr_correction for s in steps], [s.lr_model for s in steps], sample_rate_hz
    )
    if est is None:
        return None
    return LoadingRateEstimate(
        mean=est.mean,
        lo=min(est.lo, est.mean),
        hi=max(est.hi, est.mean),
        n=est.n,
        sample_rate_hz=est.sample_rate_hz,
        corrected_share=est.corrected_share,
        prior_share=est.prior_share,
    )


@dataclass(slots=True)
class RunStats:
    """Everything a WindowSummary / RunSummary carries about steps (the envelope is the pipeline's)."""

    steps: int
    cadence_spm: float | None
    duty_factor: float | None
    left: FootStats
    right: FootStats
    asymmetry: Asymmetry
    t_start: float | None = None
    t_end: float | None = None
    valr: LoadingRateEstimate | None = None
    step_list: list[Step] = field(default_factory=list, repr=False)

    @property
    def duration_s(self) -> float | None:
        if self.t_start is None or self.t_end is None:
            return None
        return max(0.0, self.t_end - self.t_start)

    def wire_fields(self) -> dict[str, object]:
        """Keyword arguments shared by WindowSummary and RunSummary."""
        return {
            "steps": self.steps,
            "cadence_spm": self.cadence_spm,
            "duty_factor": self.duty_factor,
            "left": self.left,
            "right": self.right,
            "asymmetry": self.asymmetry,
            "valr": self.valr,
        }


def summarize(
    steps: Sequence[Step],
    t_start: float | None = None,
    t_end: float | None = None,
    sample_rate_hz: float | None = None,
) -> RunStats:
    """Summary of a window or a run; ``t_start``/``t_end`` (same clock as the steps) are the period,
    ``sample_rate_hz`` the rate the steps were measured at (without it there is no ``valr`` estimate)."""
    ordered = sorted(steps, key=lambda s: s.t_contact)
    left = foot_stats([s for s in ordered if s.side == "left"])
    right = foot_stats([s for s in ordered if s.side == "right"])
    return RunStats(
        steps=len(ordered),
        cadence_spm=cadence_spm(ordered),
        duty_factor=duty_factor(ordered),
        left=left,
        right=right,
        asymmetry=asymmetry(left, right),
        t_start=t_start,
        t_end=t_end,
        valr=loading_rate_estimate(ordered, sample_rate_hz),
        step_list=list(ordered),
    )


def _unit(v: float | None) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return min(1.0, max(0.0, v))


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _nonneg(v: float | None) -> float | None:
    return max(0.0, v) if v is not None and math.isfinite(v) else None


def step_records(steps: Sequence[Step], t0: float = 0.0) -> list[StepRecord]:
    """Compact per-step records; ``t0`` maps the steps' clock to Unix time (t = t0 + t_contact)."""
    out: list[StepRecord] = []
    for s in sorted(steps, key=lambda s: s.t_contact):
        peak = _finite(s.peak_force_bw)
        out.append(
            StepRecord(
                side=s.side,
                t=t0 + s.t_contact,
                contact_ms=max(0.0, s.contact_ms) if math.isfinite(s.contact_ms) else 0.0,
                strike_index=_unit(s.strike_index),
                strike_zone=s.strike_zone,
                valr_bw_s=_finite(s.valr_bw_s),
                vilr_bw_s=_finite(s.vilr_bw_s),
                impact_peak=s.impact_peak,
                peak_force_bw=max(0.0, peak) if peak is not None else None,
                cop_x=_unit(s.cop_x),
                cop_y=_unit(s.cop_y),
                valr_lo_bw_s=_nonneg(s.valr_lo_bw_s),
                valr_hi_bw_s=_nonneg(s.valr_hi_bw_s),
            )
        )
    return out
