"""Derived measures, defined once for the agent, the dashboard and Home Assistant (docs/measures.md "Pooling").

A summary carries per-foot statistics (:class:`~edge_agent.contract.FootStats`); everything that shows ONE number
for both feet, or for several windows or runs, is defined here and nowhere else:

- :func:`pool_stats`: Stats of several groups of steps → the Stat of all of them. ``n`` adds up; ``mean`` is the
  n-weighted mean; ``sd`` the pooled SD (within-group variance + spread of the group means, population form);
  ``max`` the maximum; ``p90`` the n-weighted mean of the groups' p90 — an approximation: an exact pooled
  percentile needs every step, which summaries do not carry. The agent's run summary, the simulated history and
  the dashboard use it.
- :func:`pooled_measures`: one summary (window or run) → :class:`PooledMeasures`, the numbers the dashboard
  stores in indexed columns and the risk engine compares: every per-step measure is the step-weighted mean of
  the two feet (``valr_p90`` included: the pooled p90 as above, not the worse foot), counts add up, ``valr_max``
  is the larger foot's maximum. ``valr_lo``/``valr_hi`` are the summary's own loading-rate interval (contract v2
  ``valr``: the agent's 90 % interval of the both-feet mean, docs/measures.md §3), None for a schema-1 summary.
- :data:`COMBINE`: how each of those columns combines over several windows (a run assembled from its windows) or
  several runs (a day, a week, a team): the same weighted means, with the step counts stored beside each mean as
  the weights. ``plugin/store/measures_sql.py`` renders it as SQL aggregates; Python callers use
  :func:`combine_rows`. The loading-rate interval combines as the ``valr_n``-weighted mean of its bounds: its
  bias part, which dominates, is a fraction of the mean and combines so; its random part keeps each row's width
  instead of shrinking with the added steps, so a combined interval is typically a little wider than one
  recomputed from every step (conservative). Rows without an interval (schema 1) do not count. A test checks
  that all of them — SQL on both databases, Python and the Home Assistant templates — agree.
- :func:`symmetry_index_pct` and :func:`symmetry_angle_pct`: left/right asymmetry (Herzog 1989; Zifchock 2008,
  with the paper's correction when the angle term exceeds 90°).

Pure Python (no numpy): the dashboard runs without the analysis stack.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from edge_agent.contract import FootStats, RunSummary, Stat, WindowSummary


# -- asymmetry ---------------------------------------------------------------------------------------------------
def symmetry_index_pct(left: float | None, right: float | None) -> float | None:
    """SI% = (R − L) / (0.5 (R + L)) × 100 (Herzog 1989); None when undefined (R + L = 0)."""
    if left is None or right is None:
        return None
    denom = 0.5 * (left + right)
    if denom == 0.0 or not math.isfinite(denom):
        return None
    return (right - left) / denom * 100.0


def symmetry_angle_pct(left: float | None, right: float | None) -> float | None:
    """SA = (45° − atan(L/R)) / 90° × 100 (Zifchock 2008), incl. the paper's correction when the
    term exceeds 90° (values of opposite sign). 0 = symmetric, ±50 = one side zero."""
    if left is None or right is None or not (math.isfinite(left) and math.isfinite(right)):
        return None
    if left == 0.0 and right == 0.0:
        return None
    theta = 90.0 * math.copysign(1.0, left) if right == 0.0 else math.degrees(math.atan(left / right))
    term = 45.0 - theta
    if term > 90.0:
        term -= 180.0
    return term / 90.0 * 100.0


# -- pooling groups of steps -------------------------------------------------------------------------------------
def weighted_mean(pairs: Iterable[tuple[float | None, int | float | None]]) -> tuple[float | None, int | float]:
    """(Σ value·weight / Σ weight, Σ weight) over the pairs whose value is known and weight > 0; (None, 0) if none."""
    total = 0.0
    weight: int | float = 0
    for value, w in pairs:
        if value is not None and w is not None and w > 0:
            total += value * w
            weight += w
    return (total / weight if weight else None), weight


def _pooled(stats: Sequence[Stat]) -> tuple[int, float | None, float | None, float | None, float | None]:
    """(n, mean, sd, p90, max) of the union of the groups — plain numbers (the ingest hot path)."""
    n = 0
    total = 0.0
    for s in stats:
        if s.mean is not None and s.n > 0:
            n += s.n
            total += s.mean * s.n
    if n == 0:
        return 0, None, None, None, None
    mean = total / n
    var = 0.0
    p90_sum = 0.0
    p90_n = 0
    top: float | None = None
    for s in stats:
        if s.mean is None or s.n <= 0:
            continue
        var += ((s.sd or 0.0) ** 2 + (s.mean - mean) ** 2) * s.n
        if s.p90 is not None:
            p90_sum += s.p90 * s.n
            p90_n += s.n
        if s.max is not None and (top is None or s.max > top):
            top = s.max
    return n, mean, (math.sqrt(var / n) if n > 1 else None), (p90_sum / p90_n if p90_n else None), top


def pool_stats(stats: Sequence[Stat]) -> Stat:
    """The Stat of the union of several groups of steps (see the module docstring for each field)."""
    n, mean, sd, p90, top = _pooled(stats)
    return Stat() if n == 0 else Stat(n=n, mean=mean, sd=sd, p90=p90, max=top)


# -- one number per summary --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PooledMeasures:
    """Both feet of one window or run as the dashboard stores them (units as in the contract)."""

    steps: int
    cadence_spm: float | None
    duty_factor: float | None
    valr_mean: float | None
    valr_n: int
    valr_p90: float | None
    valr_max: float | None
    valr_lo: float | None
    valr_hi: float | None
    vilr_mean: float | None
    vilr_n: int
    contact_ms: float | None
    contact_n: int
    peak_force_bw: float | None
    peak_force_n: int
    si_left: float | None
    si_left_n: int
    si_right: float | None
    si_right_n: int
    rearfoot: int
    midfoot: int
    forefoot: int
    asym_contact_pct: float | None
    asym_valr_pct: float | None
    asym_si_pct: float | None
    asym_peak_force_pct: float | None
    body_mass_kg: float | None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in MEASURE_COLUMNS}


def pooled_measures(msg: WindowSummary | RunSummary) -> PooledMeasures:
    """Pool the two feet of one summary (step-weighted; see the module docstring)."""
    left: FootStats = msg.left
    right: FootStats = msg.right
    valr_n, valr, _, valr_p90, valr_max = _pooled((left.valr_bw_s, right.valr_bw_s))
    vilr_n, vilr, _, _, _ = _pooled((left.vilr_bw_s, right.vilr_bw_s))
    contact_n, contact, _, _, _ = _pooled((left.contact_ms, right.contact_ms))
    peak_n, peak, _, _, _ = _pooled((left.peak_force_bw, right.peak_force_bw))
    a = msg.asymmetry
    est = msg.valr
    return PooledMeasures(
        steps=msg.steps,
        cadence_spm=msg.cadence_spm,
        duty_factor=msg.duty_factor,
        valr_mean=valr,
        valr_n=valr_n,
        valr_p90=valr_p90,
        valr_max=valr_max,
        valr_lo=est.lo if est is not None else None,
        valr_hi=est.hi if est is not None else None,
        vilr_mean=vilr,
        vilr_n=vilr_n,
        contact_ms=contact,
        contact_n=contact_n,
        peak_force_bw=peak,
        peak_force_n=peak_n,
        si_left=left.strike_index.mean,
        si_left_n=left.strike_index.n if left.strike_index.mean is not None else 0,
        si_right=right.strike_index.mean,
        si_right_n=right.strike_index.n if right.strike_index.mean is not None else 0,
        rearfoot=left.zones.rearfoot + right.zones.rearfoot,
        midfoot=left.zones.midfoot + right.zones.midfoot,
        forefoot=left.zones.forefoot + right.zones.forefoot,
        asym_contact_pct=a.contact_ms_pct,
        asym_valr_pct=a.valr_pct,
        asym_si_pct=a.strike_index_pct,
        asym_peak_force_pct=a.peak_force_pct,
        body_mass_kg=msg.body_mass_kg,
    )


#: The pooled measure columns, in storage order.
MEASURE_COLUMNS: tuple[str, ...] = tuple(PooledMeasures.__dataclass_fields__)


# -- combining several windows or runs ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Combine:
    """How one column combines over rows: ``sum``, ``max``, or ``mean`` weighted by ``weight`` — another column,
    or ``"duration"`` (the row's length in seconds: a window's t_end − t_start, a run's duration_s)."""

    column: str
    how: Literal["sum", "max", "mean"]
    weight: str | None = None


COMBINE: tuple[Combine, ...] = (
    Combine("steps", "sum"),
    Combine("cadence_spm", "mean", "duration"),  # cadence is a rate over time, not over steps
    Combine("duty_factor", "mean", "steps"),
    Combine("valr_mean", "mean", "valr_n"),
    Combine("valr_n", "sum"),
    Combine("valr_p90", "mean", "valr_n"),
    Combine("valr_max", "max"),
    Combine("valr_lo", "mean", "valr_n"),
    Combine("valr_hi", "mean", "valr_n"),
    Combine("vilr_mean", "mean", "vilr_n"),
    Combine("vilr_n", "sum"),
    Combine("contact_ms", "mean", "contact_n"),
    Combine("contact_n", "sum"),
    Combine("peak_force_bw", "mean", "peak_force_n"),
    Combine("peak_force_n", "sum"),
    Combine("si_left", "mean", "si_left_n"),
    Combine("si_left_n", "sum"),
    Combine("si_right", "mean", "si_right_n"),
    Combine("si_right_n", "sum"),
    Combine("rearfoot", "sum"),
    Combine("midfoot", "sum"),
    Combine("forefoot", "sum"),
    Combine("asym_contact_pct", "mean", "steps"),
    Combine("asym_valr_pct", "mean", "steps"),
    Combine("asym_si_pct", "mean", "steps"),
    Combine("asym_peak_force_pct", "mean", "steps"),
    Combine("body_mass_kg", "max"),
)
assert tuple(c.column for c in COMBINE) == MEASURE_COLUMNS, "COMBINE must name every pooled column once, in order"


def combine_rows(rows: Sequence[Mapping[str, Any]], duration: str = "duration_s") -> dict[str, Any]:
    """Python twin of the SQL aggregates: combine window or run rows (``duration`` names their length column,
    or is a callable-free key computed by the caller)."""
    out: dict[str, Any] = {}
    for c in COMBINE:
        values = [r.get(c.column) for r in rows]
        if c.how == "sum":
            out[c.column] = sum(int(v) for v in values if v is not None)
        elif c.how == "max":
            known = [v for v in values if v is not None]
            out[c.column] = max(known) if known else None
        else:
            wkey = duration if c.weight == "duration" else c.weight
            assert wkey is not None
            out[c.column], _ = weighted_mean((r.get(c.column), r.get(wkey)) for r in rows)
    return out
