"""Window and run statistics from steps (pure functions, no I/O): a :class:`~edge_agent.analysis.step.StepTable`
(the analysis' columns) or a sequence of :class:`~edge_agent.analysis.step.Step` records (the live pipeline's),
which are read as a table.

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

import numpy as np

from edge_agent.analysis.loading_rate import mean_estimate
from edge_agent.analysis.step import ZONES, Step, StepTable
from edge_agent.common.measures import symmetry_angle_pct, symmetry_index_pct
from edge_agent.contract import Asymmetry, FootStats, LoadingRateEstimate, Stat, StepRecord, ZoneCounts

#: Strides (same-foot contact to contact) longer than this are pauses, not strides (walking ≈ 1.1 s).
MAX_STRIDE_S = 2.5
#: Consecutive contacts (either foot) further apart than this are a pause (walking ≈ 0.55 s).
MAX_STEP_GAP_S = 2.0


Steps = StepTable | Sequence[Step]


def as_table(steps: Steps) -> StepTable:
    """The steps as columns (a table as it is)."""
    return steps if isinstance(steps, StepTable) else StepTable.from_steps(steps)


def stat(values: Iterable[float | None] | np.ndarray) -> Stat:
    """Distribution of one measure; ``None`` and non-finite values (NaN in a column) are ignored."""
    if isinstance(values, np.ndarray):
        arr = np.asarray(values, dtype=np.float64)
        arr = arr[np.isfinite(arr)]
    else:
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


def foot_stats(steps: Steps) -> FootStats:
    """Aggregates for the steps of ONE foot (the caller splits by side)."""
    table = as_table(steps)
    c = table.cols
    n = len(table)
    zone = c["zone"]
    return FootStats(
        steps=n,
        zones=ZoneCounts(**{z: int(np.count_nonzero(zone == k)) for k, z in enumerate(ZONES)}),
        zone_uncertain=int(np.count_nonzero(c["zone_uncertain"] & (zone >= 0))),
        strike_index=stat(c["strike_index"]),
        valr_bw_s=stat(c["valr_bw_s"]),
        vilr_bw_s=stat(c["vilr_bw_s"]),
        impact_peak_share=int(np.count_nonzero(c["impact_peak"])) / n if n else None,
        contact_ms=stat(c["contact_ms"]),
        flight_ms=stat(c["flight_ms"]),
        peak_force_bw=stat(c["peak_force_bw"]),
        impulse_bw_s=stat(c["impulse_bw_s"]),
        cop_ml_excursion=stat(c["cop_ml_excursion"]),
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


def cadence_spm(steps: Steps, duration_s: float | None = None) -> float | None:
    """Steps of both feet per minute: over the span of contacts, or over ``duration_s`` when given.

    Pauses — no initial contact for more than :data:`MAX_STEP_GAP_S` (a stop at a crossing inside
    a run) — are not moving time: those intervals are left out, so a run's cadence is the cadence
    while moving. Without pauses this is exactly ``(n − 1) / (t_last − t_first) × 60``.
    """
    n = len(steps)
    if duration_s is not None:
        return n / duration_s * 60.0 if duration_s > 0 and n else None
    if n < 2:
        return None
    d = np.diff(np.sort(as_table(steps).cols["t_contact"]))
    gaps = d[(d >= 0.0) & (d <= MAX_STEP_GAP_S)]
    moving = sum(gaps.tolist())  # summed in order, as the intervals follow each other
    return len(gaps) / moving * 60.0 if moving > 0 else None


def duty_factor(steps: Steps) -> float | None:
    """Mean contact / stride time over the strides (same-foot consecutive contacts) in ``steps``."""
    table = as_table(steps)
    ratios: list[np.ndarray] = []
    for side in ("left", "right"):
        foot = table.side(side).sorted_by_contact().cols  # type: ignore[arg-type]
        stride = np.diff(foot["t_contact"])
        contact = foot["contact_ms"][:-1]
        ok = (stride > 0.0) & (stride <= MAX_STRIDE_S) & np.isfinite(contact)
        ratios.append(np.minimum(1.0, np.maximum(0.0, contact[ok] / 1000.0 / stride[ok])))
    all_ratios = np.concatenate(ratios)
    return float(np.mean(all_ratios)) if all_ratios.size else None


def loading_rate_estimate(steps: Steps, sample_rate_hz: float | None) -> LoadingRateEstimate | None:
    """The pooled VALR of ``steps`` measured at ``sample_rate_hz``: bias-aware mean and 90 % interval."""
    if not sample_rate_hz:
        return None
    table = as_table(steps)
    valr, corrections = table.cols["valr_bw_s"].tolist(), table.lr_correction.tolist()
    est = mean_estimate(valr, corrections, table.lr_models(), sample_rate_hz)
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
    table: StepTable | None = field(default=None, repr=False)  # the steps summarised, time-ordered

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
    steps: Steps,
    t_start: float | None = None,
    t_end: float | None = None,
    sample_rate_hz: float | None = None,
) -> RunStats:
    """Summary of a window or a run; ``t_start``/``t_end`` (same clock as the steps) are the period,
    ``sample_rate_hz`` the rate the steps were measured at (without it there is no ``valr`` estimate)."""
    ordered = as_table(steps).sorted_by_contact()
    left = foot_stats(ordered.side("left"))
    right = foot_stats(ordered.side("right"))
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
        table=ordered,
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
