"""Uncertainty of loading rates: the per-step 90 % interval and the bias-aware mean of a window or run.

Pure numpy/Python (the agent's aggregator and the analysis both use it; no numba). Definitions, the
calibration and their sources: docs/measures.md §3 "Loading rate at insole sampling rates".

**Per step.** ``[VALR · m_lo, VALR · m_hi]`` with ``(m_lo, m_hi)`` from :data:`STEP_INTERVAL`, a table
on the sampling rate and the step's case: an impact-peak step corrected with a rise fitted to its samples
(``rise``), one corrected with the prior rise time (``rise_prior``: no sample on the rise), an impact-peak
step measured from the samples alone (``impact``: at or above the model's rate limit, or the model
rejected), and a step without impact peak (``fallback``). The multipliers are ``e^−q95`` and ``e^−q05``
of ln(truth / estimate) of each of the simulator's force families against their continuous truth, the
envelope over the families (so that each family, not only their mix, is covered; ``python
docs/calibrate_loading_rate.py`` prints the table and a leave-one-family-out check); between the tabulated
rates they are interpolated linearly in log(rate), outside them held at the end values.

**Window / run.** For the n corrected per-step values ``v_i`` at sampling rate fs::

    m    = mean(v_i),  s = sd(v_i),  t = Student t quantile 0.95 with n − 1 degrees of freedom
    B_lo = sqrt(b_lo(fs)² + (κ_sys · mean_i ln C_i)²)                      systematic, over-reading
    B_hi = sqrt(b_hi(fs)² + (κ_sys · mean_i ln C_i)²) + κ_prior · π          under-reading
    lo   = m − sqrt((t·s/√n)² + (B_lo·m)²),   hi = m + sqrt((t·s/√n)² + (B_hi·m)²)

with π the share of steps that needed the rise-time prior (those under-read). The random part shrinks
with √n; the systematic part does not (a runner's shape misfit is common to all their steps); it grows
with the size of the corrections. ``(b_lo, b_hi)`` come from :data:`RUN_BIAS` (interpolated like the step
table): the smallest values, at least 0.03, for which at most 5 % of the calibration runs (the force
families and the re-sampled Fukuchi plate trials) fall below, and at most 5 % above, their interval.
Sampling mostly under-reads, so ``b_hi`` is the larger.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

LrModel = Literal["sampled", "rise", "rise_prior"]
LrCase = Literal["rise", "rise_prior", "impact", "fallback"]
CASES: tuple[LrCase, ...] = ("rise", "rise_prior", "impact", "fallback")

#: Sampling rates (Hz) of the interval tables.
TABLE_RATES = (50.0, 100.0, 200.0, 300.0)
#: Per-step 90 % interval multipliers (m_lo, m_hi) per case, one pair per rate of TABLE_RATES.
STEP_INTERVAL: dict[LrCase, tuple[tuple[float, float], ...]] = {
    "rise": ((0.83, 7.59), (0.78, 3.16), (0.82, 1.33), (0.82, 1.33)),
    "rise_prior": ((0.82, 3.52), (1.05, 1.97), (1.05, 1.97), (0.82, 3.52)),
    "impact": ((1.00, 1.35), (1.00, 1.35), (1.00, 1.35), (1.00, 1.35)),
    "fallback": ((0.96, 13.80), (0.94, 1.16), (0.97, 1.05), (0.97, 1.03)),
}
#: (b_lo(fs), b_hi(fs)): the systematic relative error of a run mean that remains without corrections.
RUN_BIAS: tuple[tuple[float, float], ...] = ((0.030, 0.425), (0.030, 0.110), (0.030, 0.040), (0.030, 0.120))
#: κ_sys: share of the mean log correction that is uncertain (shape misfit grows with the correction).
KAPPA_SYS = 0.6
#: κ_prior: extra upper margin per unit share of steps that needed the rise-time prior.
KAPPA_PRIOR = 1.5

# two-sided 90 % Student t quantiles t_{0.95, df} for df = 1..30 (then the normal 1.645 plus a df term)
_T95 = (
    6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812,
    1.796, 1.782, 1.771, 1.761, 1.753, 1.746, 1.740, 1.734, 1.729, 1.725,
    1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697,
)  # fmt: skip


def t95(df: int) -> float:
    """Student t 0.95 quantile (two-sided 90 %); Cornish–Fisher beyond the table (error < 0.001)."""
    if df < 1:
        return math.inf
    if df <= len(_T95):
        return _T95[df - 1]
    z = 1.6448536269514722
    return z + (z**3 + z) / (4.0 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96.0 * df * df)


def _weights(fs: float) -> tuple[int, int, float]:
    """(i, j, w): value(fs) = (1 − w)·table[i] + w·table[j], linear in log(rate), held at the ends."""
    rates = TABLE_RATES
    if not fs > rates[0]:
        return 0, 0, 0.0
    if fs >= rates[-1]:
        return len(rates) - 1, len(rates) - 1, 0.0
    j = next(k for k, r in enumerate(rates) if r >= fs)
    i = j - 1
    w = (math.log(fs) - math.log(rates[i])) / (math.log(rates[j]) - math.log(rates[i]))
    return i, j, w


def step_interval_multipliers(fs: float, case: LrCase) -> tuple[float, float]:
    """(m_lo, m_hi) of one case at sampling rate ``fs``."""
    i, j, w = _weights(fs)
    tab = STEP_INTERVAL[case]
    lo = math.exp((1 - w) * math.log(tab[i][0]) + w * math.log(tab[j][0]))
    hi = math.exp((1 - w) * math.log(tab[i][1]) + w * math.log(tab[j][1]))
    return lo, hi


def run_bias(fs: float) -> tuple[float, float]:
    """(b_lo, b_hi) at sampling rate ``fs``."""
    i, j, w = _weights(fs)
    return (
        (1 - w) * RUN_BIAS[i][0] + w * RUN_BIAS[j][0],
        (1 - w) * RUN_BIAS[i][1] + w * RUN_BIAS[j][1],
    )


def step_case(impact_peak: bool, lr_model: str) -> LrCase:
    if lr_model == "rise":
        return "rise"
    if lr_model == "rise_prior":
        return "rise_prior"
    return "impact" if impact_peak else "fallback"


def step_bands(impact: np.ndarray, model: np.ndarray, fs: float) -> list[tuple[float, float]]:
    """Each step's (m_lo, m_hi) — its 90 % interval is VALR × these — as one of four shared tuples (one per
    case): a Step holds a reference, not two more floats (``impact`` bool, ``model`` the kernel's codes)."""
    bands = np.empty(4, dtype=object)
    for k, case in enumerate(("rise", "rise_prior", "impact", "fallback")):
        bands[k] = step_interval_multipliers(fs, case)  # type: ignore[arg-type]
    code = np.where(model == 1, 0, np.where(model == 2, 1, np.where(impact, 2, 3)))
    return bands[code].tolist()


def step_intervals(valr: np.ndarray, impact: np.ndarray, model: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised per-step intervals: ``valr`` (NaN allowed), ``impact`` bool, ``model`` the kernel's codes
    (0 sampled, 1 rise, 2 rise_prior). Returns (lo, hi) arrays (NaN where VALR is NaN)."""
    m_lo = np.empty(valr.shape)
    m_hi = np.empty(valr.shape)
    for case, mask in (
        ("rise", model == 1),
        ("rise_prior", model == 2),
        ("impact", (model == 0) & impact),
        ("fallback", (model == 0) & ~impact),
    ):
        lo, hi = step_interval_multipliers(fs, case)  # type: ignore[arg-type]
        m_lo[mask] = lo
        m_hi[mask] = hi
    return valr * m_lo, valr * m_hi


@dataclass(frozen=True, slots=True)
class MeanEstimate:
    """The bias-aware mean of n corrected per-step loading rates and its 90 % interval (BW/s)."""

    mean: float
    lo: float
    hi: float
    n: int
    sample_rate_hz: float
    corrected_share: float  # steps with a rise correction (rise or rise_prior)
    prior_share: float  # steps whose correction used the rise-time prior


def mean_estimate(
    values: Sequence[float | None],
    corrections: Sequence[float | None],
    models: Sequence[str],
    fs: float,
    bias: tuple[float, float] | None = None,
) -> MeanEstimate | None:
    """The window/run mean with its interval (module docstring); None without a finite value.
    ``bias`` overrides ``(b_lo, b_hi)`` (the calibration script uses it)."""
    rows = [
        (float(v), float(c) if c is not None and c > 0 else 1.0, m)
        for v, c, m in zip(values, corrections, models, strict=True)
        if v is not None and math.isfinite(v)
    ]
    n = len(rows)
    if n == 0 or not (fs > 0 and math.isfinite(fs)):
        return None
    v = np.asarray([r[0] for r in rows])
    lnc = np.log(np.asarray([r[1] for r in rows]))
    prior = sum(1 for r in rows if r[2] == "rise_prior") / n
    corrected = sum(1 for r in rows if r[2] in ("rise", "rise_prior")) / n
    m = float(v.mean())
    rand = t95(n - 1) * float(v.std(ddof=1)) / math.sqrt(n) if n > 1 else abs(m)
    b_lo, b_hi = run_bias(fs) if bias is None else bias
    shape = KAPPA_SYS * float(lnc.mean())
    lo = m - math.hypot(rand, math.hypot(b_lo, shape) * m)
    hi = m + math.hypot(rand, (math.hypot(b_hi, shape) + KAPPA_PRIOR * prior) * m)
    return MeanEstimate(
        mean=m,
        lo=max(0.0, lo),
        hi=hi,
        n=n,
        sample_rate_hz=float(fs),
        corrected_share=corrected,
        prior_share=prior,
    )
