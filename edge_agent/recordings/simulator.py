"""Insole simulator with exact ground truth: the kernels' test oracle, the demo's data and the benchmarks' load.

What it generates, per foot, frame by frame:

* **Vertical force** of a running step (body weights, BW) as the sum of two bell-shaped impulses, after
  the two-mass model of running ground reaction forces (Clark, Ryan & Weyand 2017, J Exp Biol 220:247:
  the collision of the stance foot and shank, about 8 % of body mass, decelerated over a short interval
  after touchdown, plus the rest of the body over the whole contact)::

      F(τ) = A1 · bell(τ; t1, r) + A2 · sin(π·s(τ/T))^p          0 ≤ τ ≤ T, 0 outside
      bell: (1 − cos(πτ/t1))/2 for τ ≤ t1, (1 + cos(π(τ − t1)/(r·t1)))/2 until t1(1 + r), 0 after

  ``t1`` = ``impact_rise_ms`` (the time to the impact peak), ``r`` = ``impact_fall_ratio``,
  ``p`` = ``active_shape``, ``A2`` = ``active_peak_bw``, ``T`` = the contact time; ``A1`` is chosen so
  that the force at ``t1`` equals ``impact_peak_bw`` (the force "rises to the impact peak", what a force
  plate shows). ``s(u) = u^γ`` with γ = 1 except when a loading spike has to steepen a step without an
  impact peak. Rearfoot, midfoot and forefoot strikes differ by the bell (a large, small or no ``A1``);
  :data:`FORCE_FAMILIES` spans rises of 7–50 ms and loading rates of ≈ 20–330 BW/s.
  Walking steps (``walking_s``) use the classic double hump ``2.2·s·(1 − 0.6·s²)``, ``s = sin(πu)``
  (two ≈1.1 BW peaks, ≈0.9 BW valley); quiet standing loads each foot with ≈½ BW and a slow sway.
* **What an insole reads** of that force: pressure sensors unload slowly. The reading follows a rising
  force at once and a falling one with the time constant ``unloading_tau_ms``
  (``y = F`` while ``F ≥ y``, else ``y → F`` exponentially), computed per step on a 2 kHz grid and
  interpolated at the sample times; by default 0 for ``force`` profiles (plates, load cells) and 15 ms for
  pressure insoles (:data:`UNLOADING_TAU_MS`; docs/measures.md §2 says why, and that FSR and resistive
  insoles have no reference data here). Plus a swing-phase offset (insoles read 10–20 N in the air),
  drift and noise.
* **Centre of pressure** along the foot: from the strike index at contact to ≈0.85 at toe-off
  (smoothstep); midfoot strikers (SI ≥ 1/3) first move ≈0.03 backwards over ≈20 ms, as reported for
  midfoot strikes (docs/design.md §4). Medial–lateral: lateral at contact, medial (hallux) at toe-off plus
  a small seeded wander.
* **Per-sensor pressure** whose centre of pressure equals the target *exactly*: a Gaussian blob
  ``gᵢ`` around the target, exponentially tilted ``wᵢ ∝ gᵢ·exp(a·xᵢ + b·yᵢ)``; ``(a, b)`` solve
  ``Σwᵢxᵢ = x*``, ``Σwᵢyᵢ = y*`` by damped Newton on the (convex) log-partition dual, with the target
  clipped into the sensors' convex hull. ``fᵢ = F·wᵢ`` newtons, converted to raw units by inverting
  the profile's calibration (linear gain, or the FSR divider model), clipped at ``raw_max``, plus
  noise, a swing-phase offset, drift, and dropped frames.

Ground truth (:class:`StepTruth`) is measured on the *continuous* force F (not on the insole's reading),
with the kernels' own rules: the contact runs between the crossings of :data:`CONTACT_LEVEL_BW` (the
force-plate threshold convention the kernels' off level follows); an impact peak is a local maximum in
the first half of that contact, ≥ 0.5 BW, followed by a dip of ≥ 0.05 BW before the active peak (with
short contacts or a low ``impact_peak_bw`` the transient merges into the active hump and the truth says
"no impact peak", as on a force plate in fast running). VALR = the mean slope between the 20 % and 80 %
crossings of the impact peak, VILR = the largest slope between them; without an impact peak the fallback
is the 20–80 % rise to the force at 13 % of the contact (``lr_method="fallback"``, docs/measures.md).
Crossing times and peaks are located on a 10 kHz grid and refined on a 1 µs one.

Everything is generated in fixed blocks of frames with a random generator seeded by
``(seed, side, block)``, and the step schedule is drawn sequentially from its own generator, so
``simulate()`` and any chunking of :class:`SimulatorStream` give bit-identical frames.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge_agent.analysis.step import Side, StrikeZone, strike_zone
from edge_agent.profiles import FsrDividerCalibration, HardwareProfile
from edge_agent.recordings import FootStream, Recording, Segment

G = 9.80665
#: Frames per generation block; part of the determinism contract (changing it changes the noise).
BLOCK_FRAMES = 1024
#: Ground-truth grid (Hz) on which crossings and peaks are located (then refined on a 1 µs grid).
TRUTH_HZ = 10_000.0
#: Contact edges of the truth: where the continuous force crosses this level (the kernels' off level).
CONTACT_LEVEL_BW = 0.03
#: Grid (s) of the insole's unloading-lag curve.
LAG_GRID_S = 0.0005
#: Unloading time constant (ms) per sensor type when ``RunParams.unloading_tau_ms`` is not set.
UNLOADING_TAU_MS = {"force": 0.0, "capacitive": 15.0, "fsr": 15.0, "resistive": 15.0}
#: Fallback loading-rate window: 20–80 % of the force reached at this fraction of stance.
FALLBACK_STANCE_FRACTION = 0.13
#: What counts as an impact peak in the truth: the same rule as the kernels' defaults.
IMPACT_MIN_BW = 0.5
IMPACT_PROMINENCE_BW = 0.05
IMPACT_MAX_STANCE_FRAC = 0.5
TOE_OFF_SI = 0.85
SIDES: tuple[Side, Side] = ("left", "right")

Gait = Literal["run", "walk"]


class RunParams(BaseModel):
    """What to simulate. Defaults: a 3 m/s rearfoot run at 170 spm by a 70 kg runner."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)

    duration_s: float = Field(60.0, gt=0, title="Running duration (s)", description="Excludes standing/walking.")
    seed: int = Field(0, title="Random seed", description="Same seed, same frames, bit for bit.")
    speed_mps: float = Field(3.0, gt=0, title="Running speed (m/s)", description="Recorded in metadata.")
    cadence_spm: float = Field(170.0, ge=100, le=240, title="Cadence (steps/min)", description="Both feet.")
    body_mass_kg: float = Field(70.0, gt=0, le=300, title="Body mass (kg)", description="1 BW = mass × g.")
    strike_index_left: float = Field(0.15, ge=0, le=1, title="Strike index, left", description="0 heel, 1 toe.")
    strike_index_right: float = Field(0.15, ge=0, le=1, title="Strike index, right", description="0 heel, 1 toe.")
    strike_index_sd: float = Field(
        0.02, ge=0, le=0.2, title="Strike index SD", description="Step-to-step variation of the strike index."
    )
    impact_peak_bw: float | None = Field(
        1.6, ge=0, title="Impact peak (BW)", description="None or 0: no impact peak (forefoot-like)."
    )
    impact_rise_ms: float = Field(
        30.0, ge=3, le=120, title="Impact rise time (ms)", description="Contact to the impact peak."
    )
    impact_fall_ratio: float = Field(
        0.5, ge=0.25, le=5, title="Impact fall / rise", description="The impact bell falls over this many rises."
    )
    active_peak_bw: float = Field(2.5, gt=0, le=6, title="Active peak (BW)", description="Height of the active hump.")
    active_shape: float = Field(
        1.0, ge=0.5, le=4, title="Active hump exponent", description="sin(πτ/T)^p: 1 a half sine, 2 a raised cosine."
    )
    unloading_tau_ms: float | None = Field(
        None,
        ge=0,
        le=200,
        title="Unloading lag (ms)",
        description="Time constant of the reading following a falling force; empty: by the profile's sensor type.",
    )
    contact_ms: float = Field(
        250.0,
        ge=80,
        le=1000,
        title="Contact time (ms)",
        description="Mean duration of the force curve over both feet (the truth's 0.03 BW edges lie a few ms inside).",
    )
    asymmetry_pct: float = Field(
        0.0,
        ge=-50,
        le=50,
        title="Asymmetry (%)",
        description="Right vs left contact time and peaks, as Herzog's SI%: R = (1+a/200)·x, L = (1−a/200)·x.",
    )
    jitter: float = Field(
        0.01, ge=0, le=0.1, title="Step-to-step variability", description="Relative SD of step time, contact, peaks."
    )
    noise_n: float = Field(2.0, ge=0, title="Noise (N)", description="SD of the foot's total force noise.")
    swing_offset_n: float = Field(15.0, ge=0, title="Unloaded reading (N)", description="Baseline in the air.")
    drift_n_per_min: float = Field(0.0, title="Baseline drift (N/min)", description="FSR-like creep of the zero.")
    dropout_prob: float = Field(0.0, ge=0, lt=1, title="Frame loss probability", description="Per frame and foot.")
    standing_s: float = Field(0.0, ge=0, title="Quiet standing at the start (s)", description="For BW calibration.")
    walking_s: float = Field(
        0.0, ge=0, title="Walking (s)", description="Walking before and after the run, each this long."
    )
    fatigue: float = Field(
        0.0,
        ge=0,
        le=1,
        title="Fatigue (0..1)",
        description="Over the run cadence falls (−6 %·f), contact time (+8 %·f) and loading rate (+25 %·f) rise.",
    )
    spikes: list[tuple[float, float, float]] = Field(
        default_factory=list, title="Loading spikes", description="(t0, t1, factor): VALR × factor in [t0, t1)."
    )
    sample_rate_hz: float | None = Field(
        None, gt=0, le=10_000, title="Sample rate (Hz)", description="Default: the profile's."
    )

    @field_validator("spikes")
    @classmethod
    def _check_spikes(cls, v: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
        for i, (t0, t1, f) in enumerate(v):
            if not (t1 > t0 and f > 0):
                raise ValueError(f"spikes[{i}] = {(t0, t1, f)!r}: need t1 > t0 and factor > 0")
        return v

    @property
    def total_s(self) -> float:
        return self.standing_s + 2 * self.walking_s + self.duration_s


#: Force families (per runner, drawn uniformly from these ranges; each step varies ±``jitter`` around them):
#: contact time T (ms), impact rise t1 (ms), fall ratio r, impact bell amplitude A1 (BW), active peak A2 (BW),
#: hump exponent p, strike index. Together they span the 15–40 ms rises and 40–200 BW/s VALRs of rearfoot
#: running and the slower, bell-less loading of midfoot and forefoot strikes; ``rearfoot_very_sharp``
#: (7–15 ms rises, up to ≈ 330 BW/s) is the stress case where a 100 Hz insole has at most one sample on
#: the rise. The ranges span the rises and loading rates of rearfoot running in the literature
#: (docs/design.md §4) and slower, shoulder-like impacts as on the Fukuchi plate; docs/validation.md reports
#: each family.
FORCE_FAMILIES: dict[str, dict[str, tuple[float, float]]] = {
    "rearfoot": {
        "T": (200, 300), "t1": (15, 40), "r": (1.0, 3.0), "A1": (0.7, 1.8), "A2": (2.0, 2.8), "p": (1.3, 2.6),
        "si": (0.05, 0.28),
    },
    "rearfoot_sharp": {
        "T": (200, 280), "t1": (10, 25), "r": (1.0, 2.5), "A1": (1.0, 2.0), "A2": (2.0, 2.8), "p": (1.3, 2.6),
        "si": (0.05, 0.28),
    },
    "rearfoot_very_sharp": {
        "T": (200, 260), "t1": (7, 15), "r": (0.7, 1.5), "A1": (1.0, 2.0), "A2": (2.0, 2.8), "p": (1.3, 2.6),
        "si": (0.05, 0.28),
    },
    "midfoot": {
        "T": (190, 280), "t1": (20, 45), "r": (1.0, 3.0), "A1": (0.2, 0.7), "A2": (2.1, 2.8), "p": (1.2, 2.4),
        "si": (0.38, 0.62),
    },
    "forefoot": {
        "T": (180, 260), "t1": (20, 50), "r": (1.0, 3.0), "A1": (0.0, 0.25), "A2": (2.2, 2.9), "p": (1.0, 2.0),
        "si": (0.72, 0.9),
    },
}  # fmt: skip


def family_params(family: str, seed: int, **overrides: Any) -> RunParams:
    """RunParams of one runner of a force family (:data:`FORCE_FAMILIES`), drawn with ``seed``: the runner's
    shape is fixed, each step varies by ±5 % (``jitter``)."""
    if family not in FORCE_FAMILIES:
        raise ValueError(f"family {family!r}: one of {', '.join(FORCE_FAMILIES)}")
    rng = np.random.default_rng([seed, 4099])
    u = {k: float(rng.uniform(*v)) for k, v in FORCE_FAMILIES[family].items()}
    T, t1 = u["T"] / 1000.0, u["t1"] / 1000.0
    # impact_peak_bw is the force at the end of the rise: the bell's amplitude plus the hump there
    at_t1 = u["A2"] * math.sin(math.pi * t1 / T) ** u["p"]
    values: dict[str, Any] = {
        "seed": seed,
        "contact_ms": u["T"],
        "impact_rise_ms": u["t1"],
        "impact_fall_ratio": u["r"],
        "impact_peak_bw": u["A1"] + at_t1 if u["A1"] > 0.05 else None,
        "active_peak_bw": u["A2"],
        "active_shape": u["p"],
        "strike_index_left": u["si"],
        "strike_index_right": u["si"],
        "cadence_spm": float(rng.uniform(160, 180)),
        "jitter": 0.05,
    }
    values.update(overrides)
    return RunParams(**values)


@dataclass(slots=True)
class StepTruth:
    """What the simulator put into one step, measured on its own 10 kHz force curve."""

    side: Side
    t_contact: float
    t_toe_off: float
    contact_ms: float
    strike_index: float
    strike_zone: StrikeZone
    impact_peak: bool
    valr_bw_s: float
    vilr_bw_s: float
    peak_force_bw: float
    lr_method: Literal["impact_peak", "fallback"] = "impact_peak"
    impact_peak_bw: float | None = None
    impulse_bw_s: float = 0.0
    gait: Gait = "run"
    spike_factor: float = 1.0


# --------------------------------------------------------------------------------------------
# Force shapes (pure functions of time since contact, in seconds; BW)
# --------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _StepShape:
    side: Side
    t0: float
    T: float
    gait: Gait
    active_bw: float
    impact_amp: float  # impact bell amplitude A1 (BW), 0 = none
    rise_s: float
    gamma: float  # active-hump time warp exponent
    si: float
    y0: float  # ML position at contact
    wander_phase: float
    spike_factor: float = 1.0
    fall_ratio: float = 0.5  # the impact bell falls over this many rise times
    shape_p: float = 1.0  # active hump exponent p
    lag_s: float = 0.0  # the reading's unloading time constant (s)
    _lag: tuple[np.ndarray, np.ndarray] | None = None  # (τ grid, reading) once computed

    @property
    def span_s(self) -> float:
        """How long after contact the reading is not zero (the contact plus the unloading tail)."""
        return self.T + 10.0 * self.lag_s


def _hump(shape: _StepShape, tau: np.ndarray) -> np.ndarray:
    u = np.clip(tau / shape.T, 0.0, 1.0)
    su = u if shape.gamma == 1.0 else u**shape.gamma
    s = np.sin(np.pi * su)
    return shape.active_bw * (s if shape.shape_p == 1.0 else s**shape.shape_p)


def _bell(tau: np.ndarray, rise_s: float, fall_ratio: float) -> np.ndarray:
    """The impact bell: raised-cosine rise over ``rise_s`` to 1, raised-cosine fall over ``fall_ratio`` rises."""
    up = 0.5 * (1.0 - np.cos(np.pi * np.clip(tau / rise_s, 0.0, 1.0)))
    down = 0.5 * (1.0 + np.cos(np.pi * np.clip((tau - rise_s) / (fall_ratio * rise_s), 0.0, 1.0)))
    return np.where(tau <= rise_s, up, down)


def _force(shape: _StepShape, tau: np.ndarray) -> np.ndarray:
    """The true vertical force (BW) at times ``tau`` since contact; 0 outside [0, T]."""
    tau = np.asarray(tau, dtype=np.float64)
    inside = (tau >= 0.0) & (tau <= shape.T)
    if shape.gait == "walk":
        s = np.sin(np.pi * np.clip(tau / shape.T, 0.0, 1.0))
        return np.where(inside, shape.active_bw * 2.2 * s * (1.0 - 0.6 * s * s), 0.0)
    f = _hump(shape, tau)
    if shape.impact_amp > 0.0:
        f = f + shape.impact_amp * _bell(tau, shape.rise_s, shape.fall_ratio)
    return np.where(inside, f, 0.0)


def _reading(shape: _StepShape, tau: np.ndarray) -> np.ndarray:
    """What the insole reads of the step's force: the force, unloading with the lag ``shape.lag_s``."""
    if shape.lag_s <= 0.0:
        return _force(shape, tau)
    if shape._lag is None:
        grid = np.arange(0.0, shape.span_s + LAG_GRID_S, LAG_GRID_S)
        f = _force(shape, grid).tolist()
        a = math.exp(-LAG_GRID_S / shape.lag_s)
        lagged = [0.0] * len(f)
        prev = 0.0
        for k, fk in enumerate(f):  # follows a rise at once, a fall with the time constant
            prev = fk if fk >= prev else fk + (prev - fk) * a
            lagged[k] = prev
        shape._lag = (grid, np.asarray(lagged))
    grid, reading = shape._lag
    # the reading is never below the force: exact wherever it follows it (loading), interpolated in the tails
    return np.maximum(_force(shape, tau), np.interp(tau, grid, reading, left=0.0, right=0.0))


def _cop(shape: _StepShape, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Target CoP (x heel→toe, y medial→lateral) at times since contact."""
    u = np.clip(tau / shape.T, 0.0, 1.0)
    sm = u * u * (3.0 - 2.0 * u)
    # fast roll-over to the forefoot by ~55 % of stance, then on to the toe-off position
    a = np.clip(u / 0.55, 0.0, 1.0)
    b = np.clip((u - 0.55) / 0.45, 0.0, 1.0)
    mid = max(shape.si, TOE_OFF_SI - 0.07)
    x = shape.si + (mid - shape.si) * a * a * (3.0 - 2.0 * a) + (TOE_OFF_SI - mid) * b * b * (3.0 - 2.0 * b)
    if shape.si >= 1.0 / 3.0 and shape.gait == "run":
        # midfoot/forefoot strikes: the CoP first moves ~0.03 backwards, deepest at 20 ms, then recovers
        v = np.maximum(tau, 0.0) / 0.020
        x = x - 0.03 * v * np.exp(1.0 - v)
    y = shape.y0 + (0.35 - shape.y0) * sm + 0.03 * np.sin(2 * np.pi * (2.0 * u + shape.wander_phase))
    return x, y


def _fine(shape: _StepShape, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """The force on a 1 µs grid over [a, b] (at least 3 points)."""
    x = np.linspace(a, b, max(3, math.ceil((b - a) * 1e6) + 1))
    return x, _force(shape, x)


def _rise_through(shape: _StepShape, tau: np.ndarray, f: np.ndarray, level: float, i0: int, i1: int) -> float:
    """First time in tau[i0..i1] where f rises through ``level``, refined on the 1 µs grid."""
    k = i0 + int(np.argmax(f[i0 : i1 + 1] >= level))
    if k == i0:
        return float(tau[k])
    x, g = _fine(shape, float(tau[k - 1]), float(tau[k]))
    j = int(np.argmax(g >= level))
    if j == 0:
        return float(x[0])
    return float(x[j - 1] + (level - g[j - 1]) / (g[j] - g[j - 1]) * (x[j] - x[j - 1]))


def _fall_through(shape: _StepShape, tau: np.ndarray, f: np.ndarray, level: float) -> float:
    """Last time the force falls through ``level``, refined on the 1 µs grid."""
    k = int(np.flatnonzero(f >= level)[-1])
    if k + 1 >= tau.size:
        return float(tau[-1])
    x, g = _fine(shape, float(tau[k]), float(tau[k + 1]))
    j = int(np.flatnonzero(g >= level)[-1])
    if j + 1 >= x.size:
        return float(x[-1])
    return float(x[j] + (g[j] - level) / (g[j] - g[j + 1]) * (x[j + 1] - x[j]))


def _truth_lr(shape: _StepShape) -> tuple[float, float, bool, str, float | None, float, float, float, float]:
    """(valr, vilr, impact_peak, lr_method, impact_peak_bw, peak_bw, impulse, τ_on, τ_off) of the continuous
    force with the kernels' rules (module docstring); τ_on/τ_off are the contact edges after contact."""
    n = max(round(shape.T * TRUTH_HZ), 20)
    tau = np.linspace(0.0, shape.T, n + 1)
    f = _force(shape, tau)
    on = _rise_through(shape, tau, f, CONTACT_LEVEL_BW, 0, n)
    off = _fall_through(shape, tau, f, CONTACT_LEVEL_BW)
    contact = off - on
    g = int(np.argmax(f))
    peak = float(f[g])
    inside = (tau > on) & (tau < off)
    xs = np.concatenate(([on], tau[inside], [off]))
    fs = np.concatenate(([CONTACT_LEVEL_BW], f[inside], [CONTACT_LEVEL_BW]))
    impulse = float(np.sum(0.5 * (fs[1:] + fs[:-1]) * np.diff(xs)))
    ip: int | None = None
    if shape.gait == "run" and shape.impact_amp > 0.0 and g > 2:
        d = np.diff(f[: g + 1])
        for k in np.nonzero((d[:-1] > 0) & (d[1:] <= 0))[0] + 1:
            # the kernels' rule (AnalysisConfig / docs/measures.md): a local maximum in the first half
            # of the contact, at least IMPACT_MIN_BW high, the force dipping ≥ IMPACT_PROMINENCE_BW after it
            if tau[k] > on + IMPACT_MAX_STANCE_FRAC * contact:
                break
            if f[k] >= IMPACT_MIN_BW and f[k] - f[k : g + 1].min() >= IMPACT_PROMINENCE_BW:
                ip = int(k)
                break
    if ip is not None:
        x, h = _fine(shape, float(tau[ip - 1]), float(tau[ip + 1]))
        j = int(np.argmax(h))
        level, t_end, method = float(h[j]), float(x[j]), "impact_peak"
    else:
        t_end = on + FALLBACK_STANCE_FRACTION * contact
        level, method = float(_force(shape, np.array([t_end]))[0]), "fallback"
    end = min(int(np.searchsorted(tau, t_end, "right")), n)
    t20 = _rise_through(shape, tau, f, 0.2 * level, 0, end)
    t80 = _rise_through(shape, tau, f, 0.8 * level, 0, end)
    valr = 0.6 * level / (t80 - t20)
    x, h = _fine(shape, t20, t80)
    vilr = float(np.max(np.diff(h) / np.diff(x))) if x.size > 1 else valr
    return valr, max(vilr, valr), ip is not None, method, (level if ip is not None else None), peak, impulse, on, off


# --------------------------------------------------------------------------------------------
# Step schedule
# --------------------------------------------------------------------------------------------
class _Schedule:
    """Steps drawn sequentially from their own generator (so lazily extending it is deterministic)."""

    def __init__(self, p: RunParams, endless: bool = False, lag_s: float = 0.0) -> None:
        self.p = p
        self.endless = endless
        self.lag_s = lag_s
        self.rng = np.random.default_rng([p.seed, 7919])
        self.shapes: list[_StepShape] = []
        self.t0s: list[float] = []
        self.truths: list[StepTruth] = []
        self.t_run0 = p.standing_s + p.walking_s
        self.t_run1 = math.inf if endless else self.t_run0 + p.duration_s
        self.t_end = math.inf if endless else p.total_s
        self.next_t = p.standing_s + 0.05
        self.next_side = 0
        self.done = False

    def phase(self, t: float) -> Gait:
        return "run" if self.t_run0 <= t < self.t_run1 else "walk"

    def extend_to(self, t_until: float) -> None:
        """Generate steps until one starts after ``t_until`` (or the recording ends)."""
        p = self.p
        while not self.done and (not self.shapes or self.shapes[-1].t0 <= t_until):
            t0 = self.next_t
            side = SIDES[self.next_side]
            gait = self.phase(t0)
            if p.walking_s == 0 and t0 < self.t_run0:
                t0 = self.next_t = self.t_run0 + 0.05
                gait = "run"
            r = self.rng.standard_normal(6)
            sgn = -1.0 if side == "left" else 1.0
            asym = 1.0 + sgn * p.asymmetry_pct / 200.0
            if gait == "run":
                prog = 0.0 if self.endless else min(max((t0 - self.t_run0) / p.duration_s, 0.0), 1.0)
                fat = p.fatigue * prog
                cadence = p.cadence_spm * (1.0 - 0.06 * fat)
                T = p.contact_ms / 1000.0 * (1.0 + 0.08 * fat) * asym * (1.0 + p.jitter * r[1])
                period = 60.0 / cadence * (1.0 + p.jitter * r[0])
                si_mean = p.strike_index_left if side == "left" else p.strike_index_right
                si = float(np.clip(si_mean + p.strike_index_sd * r[2], 0.0, 0.97))
                rise = p.impact_rise_ms / 1000.0 / (1.0 + 0.25 * fat) * (1.0 + p.jitter * r[3])
                active = p.active_peak_bw * asym * (1.0 + p.jitter * r[4])
                imp_target = (p.impact_peak_bw or 0.0) * asym
            else:
                period = 60.0 / 110.0 * (1.0 + p.jitter * r[0])
                T = 0.62 * (1.0 + p.jitter * r[1])
                si = float(np.clip(0.05 + 0.01 * r[2], 0.0, 0.2))
                rise, active, imp_target = 0.03, 1.0 + 0.02 * r[4], 0.0
            if t0 + T + 10.0 * self.lag_s > self.t_end:  # the reading must unload before the recording ends
                self.done = True
                break
            shape = _StepShape(
                side=side,
                t0=t0,
                T=T,
                gait=gait,
                active_bw=active,
                impact_amp=0.0,
                rise_s=rise,
                gamma=1.0,
                si=si,
                y0=0.55 + 0.02 * r[5],
                wander_phase=float(self.rng.random()),
                fall_ratio=p.impact_fall_ratio,
                shape_p=p.active_shape if gait == "run" else 1.0,
                lag_s=self.lag_s,
            )
            if gait == "run" and imp_target > 0.0:
                rise = min(rise, 0.45 * T)
                shape.rise_s = rise
                shape.fall_ratio = min(p.impact_fall_ratio, 0.9 * T / rise - 1.0)  # the bell ends before toe-off
                amp = imp_target - float(_hump(shape, np.array([rise]))[0])
                shape.impact_amp = amp if amp > 0.05 else 0.0
            factor = 1.0
            for s0, s1, fac in p.spikes:
                if s0 <= t0 < s1:
                    factor *= fac
            truth = self._truth(shape)
            if gait == "run" and factor != 1.0:
                truth = self._apply_spike(shape, truth, factor)
            self.shapes.append(shape)
            self.t0s.append(shape.t0)
            self.truths.append(truth)
            self.next_t = t0 + period
            self.next_side ^= 1

    def _truth(self, shape: _StepShape) -> StepTruth:
        valr, vilr, has_ip, method, ipbw, peak, impulse, on, off = _truth_lr(shape)
        return StepTruth(
            side=shape.side,
            t_contact=float(shape.t0 + on),
            t_toe_off=float(shape.t0 + off),
            contact_ms=float((off - on) * 1000.0),
            strike_index=shape.si,
            strike_zone=strike_zone(shape.si),
            impact_peak=has_ip,
            valr_bw_s=valr,
            vilr_bw_s=vilr,
            peak_force_bw=peak,
            lr_method=method,  # type: ignore[arg-type]
            impact_peak_bw=ipbw,
            impulse_bw_s=impulse,
            gait=shape.gait,
            spike_factor=shape.spike_factor,
        )

    def _apply_spike(self, shape: _StepShape, base: StepTruth, factor: float) -> StepTruth:
        """Steepen the loading (shorter impact rise, or a warped early active hump) so VALR × factor.

        Solved by bisection on the generated curve's own VALR, so the truth ratio is exact to <0.1 %.
        """
        target = base.valr_bw_s * factor
        shape.spike_factor = factor
        if base.impact_peak:
            tr0 = shape.rise_s
            imp_total = shape.impact_amp + float(_hump(shape, np.array([tr0]))[0])

            def set_param(x: float) -> None:  # x = log rise time; keep the impact peak's height
                shape.rise_s = math.exp(x)
                shape.impact_amp = max(imp_total - float(_hump(shape, np.array([shape.rise_s]))[0]), 0.06)

            lo, hi = (math.log(0.002), math.log(tr0)) if factor > 1 else (math.log(tr0), math.log(0.45 * shape.T))
        else:

            def set_param(x: float) -> None:  # x = warp exponent γ of the active hump
                shape.gamma = x

            lo, hi = (0.15, 1.0) if factor > 1 else (1.0, 3.0)

        def valr_at(x: float) -> float:
            set_param(x)
            return _truth_lr(shape)[0]

        # VALR decreases with both log(rise) and γ: bisect for valr == target
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if valr_at(mid) > target:
                lo = mid
            else:
                hi = mid
        set_param(0.5 * (lo + hi))
        return self._truth(shape)


# --------------------------------------------------------------------------------------------
# Exact-CoP pressure distribution
# --------------------------------------------------------------------------------------------
def _convex_hull(pts: np.ndarray) -> np.ndarray:
    """Monotone chain; returns hull vertices counter-clockwise (may be 1 or 2 points)."""
    P = sorted({(float(a), float(b)) for a, b in pts})
    if len(P) <= 2:
        return np.asarray(P)

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for q in P:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], q) <= 1e-15:
            lower.pop()
        lower.append(q)
    upper: list[tuple[float, float]] = []
    for q in reversed(P):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], q) <= 1e-15:
            upper.pop()
        upper.append(q)
    return np.asarray(lower[:-1] + upper[:-1])


class _Distributor:
    """Spreads a force over the sensors so that their centre of pressure is exactly the target."""

    SIGMA_X = 0.15
    SIGMA_Y = 0.40

    def __init__(self, profile: HardwareProfile) -> None:
        self.x = profile.sensor_x()
        self.y = profile.sensor_y()
        self.S = profile.n_sensors
        pts = np.column_stack([self.x, self.y])
        hull = _convex_hull(pts) if self.S > 1 else pts[:1]
        self.mode = "point" if len(hull) == 1 else ("line" if len(hull) == 2 else "area")
        if self.mode == "area":
            # shrink the hull towards its centroid by 1 % so the tilt stays finite
            c = hull.mean(axis=0)
            self.hull = c + 0.99 * (hull - c)
            self.edges_n, self.edges_c = self._halfplanes(self.hull)
        elif self.mode == "line":
            a, b = hull[0], hull[1]
            self.a = a + 0.01 * (b - a)
            self.b = b - 0.01 * (b - a)
            self.dir = (b - a) / np.linalg.norm(b - a)

    @staticmethod
    def _halfplanes(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nxt = np.roll(h, -1, axis=0)
        e = nxt - h
        normals = np.column_stack([e[:, 1], -e[:, 0]])  # outward for a CCW polygon
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        return normals, np.einsum("ij,ij->i", normals, h)

    def clip(self, tx: np.ndarray, ty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project targets outside the (shrunk) hull onto it; inside points are unchanged."""
        if self.mode == "point":
            return np.full_like(tx, self.x[0]), np.full_like(ty, self.y[0])
        if self.mode == "line":
            p = np.column_stack([tx, ty]) - self.a
            L = float(np.dot(self.b - self.a, self.dir))
            s = np.clip(p @ self.dir, 0.0, L)
            q = self.a + s[:, None] * self.dir
            return q[:, 0].copy(), q[:, 1].copy()
        pts = np.column_stack([tx, ty])
        for _ in range(8):  # alternating projections onto violated half-planes (converges for convex sets)
            viol = pts @ self.edges_n.T - self.edges_c
            if not np.any(viol > 1e-12):
                break
            k = np.argmax(viol, axis=1)
            v = viol[np.arange(len(pts)), k]
            m = v > 1e-12
            pts[m] -= v[m, None] * self.edges_n[k[m]]
        # a last safety: pull the rest towards the centroid until inside
        c = self.hull.mean(axis=0)
        for _ in range(30):
            viol = np.max(pts @ self.edges_n.T - self.edges_c, axis=1)
            m = viol > 1e-12
            if not m.any():
                break
            pts[m] = c + 0.98 * (pts[m] - c)
        return pts[:, 0].copy(), pts[:, 1].copy()

    def weights(self, tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
        """(n, S) weights summing to 1 per row with Σw·x = tx, Σw·y = ty (targets already clipped)."""
        n = tx.shape[0]
        if self.S == 1:
            return np.ones((n, 1))
        x, y = self.x[None, :], self.y[None, :]
        base = -0.5 * ((x - tx[:, None]) / self.SIGMA_X) ** 2 - 0.5 * ((y - ty[:, None]) / self.SIGMA_Y) ** 2
        a = np.zeros(n)
        b = np.zeros(n)
        line = self.mode == "line"

        def evaluate(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            lw = base + a[:, None] * x + b[:, None] * y
            lmax = lw.max(axis=1, keepdims=True)
            w = np.exp(lw - lmax)
            z = w.sum(axis=1, keepdims=True)
            return w / z, (np.log(z[:, 0]) + lmax[:, 0]) - a * tx - b * ty

        w, obj = evaluate(a, b)
        for _ in range(60):
            mx, my = w @ self.x, w @ self.y
            rx, ry = tx - mx, ty - my
            if max(float(np.max(np.abs(rx), initial=0)), float(np.max(np.abs(ry), initial=0))) < 1e-13:
                break
            dx, dy = x - mx[:, None], y - my[:, None]
            cxx = np.einsum("ij,ij->i", w, dx * dx) + 1e-300
            cyy = np.einsum("ij,ij->i", w, dy * dy) + 1e-300
            cxy = np.einsum("ij,ij->i", w, dx * dy)
            if line:  # collinear sensors: 1-D Newton along the line's direction d
                ux, uy = self.dir
                var = cxx * ux * ux + 2 * cxy * ux * uy + cyy * uy * uy + 1e-300
                sd = (rx * ux + ry * uy) / var
                da, db = sd * ux, sd * uy
            else:
                det = cxx * cyy - cxy * cxy
                det = np.where(np.abs(det) < 1e-300, 1e-300, det)
                da = (cyy * rx - cxy * ry) / det
                db = (cxx * ry - cxy * rx) / det
            step = np.ones(n)
            for _ in range(30):  # backtracking on the convex dual objective, per frame
                w_new, obj_new = evaluate(a + step * da, b + step * db)
                bad = obj_new > obj + 1e-12 * (1.0 + np.abs(obj))
                if not bad.any():
                    break
                step = np.where(bad, step * 0.5, step)
            else:
                w_new, obj_new = evaluate(a + step * da, b + step * db)
            a, b, w, obj = a + step * da, b + step * db, w_new, obj_new
        return w


# --------------------------------------------------------------------------------------------
# Raw units
# --------------------------------------------------------------------------------------------
def newtons_to_raw(profile: HardwareProfile, f_n: np.ndarray) -> np.ndarray:
    """Invert the profile's calibration: per-sensor newtons (n, S) → raw units (before noise/clipping)."""
    cal = profile.calibration
    if isinstance(cal, FsrDividerCalibration):
        g_us = np.power(np.maximum(f_n, 0.0) / cal.k, 1.0 / cal.n)  # F = k·G^n, G in µS
        g_r = g_us * 1e-6 * cal.r_measure_ohm
        v = cal.vcc * g_r / (1.0 + g_r)
        return v / cal.vcc * cal.adc_max
    return f_n / profile.linear_gain()[None, :] + cal.offset


def raw_to_newtons(profile: HardwareProfile, raw: np.ndarray) -> np.ndarray:
    """The profile's forward calibration (used by tests and the sources' self-checks)."""
    cal = profile.calibration
    raw = np.asarray(raw, dtype=np.float64)
    if isinstance(cal, FsrDividerCalibration):
        v = np.clip(raw, 0.0, cal.adc_max - 1e-6) / cal.adc_max * cal.vcc
        g_us = v / (cal.r_measure_ohm * (cal.vcc - v)) * 1e6
        f = cal.k * np.power(g_us, cal.n)
        return np.where(raw <= cal.threshold_counts, 0.0, f)
    return (raw - cal.offset) * profile.linear_gain()[None, :]


# --------------------------------------------------------------------------------------------
# Frame generation
# --------------------------------------------------------------------------------------------
class _Generator:
    def __init__(self, profile: HardwareProfile, params: RunParams, endless: bool = False) -> None:
        self.profile = profile
        self.p = params
        self.fs = float(params.sample_rate_hz or profile.sample_rate_hz)
        self.endless = endless
        self.n_total = None if endless else math.floor(params.total_s * self.fs + 1e-9)
        tau_ms = UNLOADING_TAU_MS[profile.sensor_type] if params.unloading_tau_ms is None else params.unloading_tau_ms
        self.sched = _Schedule(params, endless, lag_s=tau_ms / 1000.0)
        self.dist = _Distributor(profile)
        self.bw_n = params.body_mass_kg * G
        area = profile.sensor_area_cm2()
        self.offset_share = area / area.sum()
        self.S = profile.n_sensors
        self.counts = profile.raw_unit == "counts"
        self.raw_max = profile.raw_max
        if self.raw_max is None and isinstance(profile.calibration, FsrDividerCalibration):
            self.raw_max = float(profile.calibration.adc_max)

    def block(self, k: int, side_i: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames of block k for one side after dropouts: (t float64[m], raw float32[m, S])."""
        i0 = k * BLOCK_FRAMES
        i1 = i0 + BLOCK_FRAMES if self.n_total is None else min(i0 + BLOCK_FRAMES, self.n_total)
        idx = np.arange(i0, i1)
        t = idx / self.fs
        p = self.p
        force_bw, tx, ty = self.targets(t, SIDES[side_i])
        rng = np.random.default_rng([p.seed, side_i, k])
        f_n = np.zeros((t.size, self.S))
        loaded = force_bw > 0
        if loaded.any():
            cx, cy = self.dist.clip(tx[loaded], ty[loaded])
            w = self.dist.weights(cx, cy)
            f_n[loaded] = (force_bw[loaded] * self.bw_n)[:, None] * w
        base = p.swing_offset_n + p.drift_n_per_min * (t / 60.0)
        f_n += base[:, None] * self.offset_share[None, :]
        if p.noise_n > 0:
            f_n += rng.standard_normal(f_n.shape) * (p.noise_n / math.sqrt(self.S))
        raw = newtons_to_raw(self.profile, f_n)
        if self.counts:
            raw = np.rint(raw)
        raw = np.maximum(raw, 0.0)
        if self.raw_max is not None:
            raw = np.minimum(raw, self.raw_max)
        keep = rng.random(t.size) >= p.dropout_prob if p.dropout_prob > 0 else slice(None)
        return np.ascontiguousarray(t[keep]), np.ascontiguousarray(raw[keep], dtype=np.float32)

    def targets(self, t: np.ndarray, side: Side) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Noise-free force (BW) and target CoP (before clipping into the hull) at times ``t``."""
        p = self.p
        if t.size:
            self.sched.extend_to(float(t[-1]) + 2.0)
        force_bw = np.zeros(t.size)
        tx = np.zeros(t.size)
        ty = np.zeros(t.size)
        if t.size == 0:
            return force_bw, tx, ty
        shapes = self.sched.shapes
        # steps are sorted by contact time and last < 1.5 s: only look at the few that can overlap
        i0 = bisect.bisect_left(self.sched.t0s, float(t[0]) - 1.5)
        i1 = bisect.bisect_right(self.sched.t0s, float(t[-1]))
        for sh in shapes[i0:i1]:
            if sh.side != side or sh.t0 + sh.span_s < t[0]:
                continue
            a = int(np.searchsorted(t, sh.t0, "left"))
            b = int(np.searchsorted(t, sh.t0 + sh.span_s, "right"))
            tau = t[a:b] - sh.t0
            force_bw[a:b] += _reading(sh, tau)
            cx, cy = _cop(sh, tau)
            tx[a:b], ty[a:b] = cx, cy
        if p.standing_s > 0:
            m = t < p.standing_s
            if m.any():
                ts = t[m]
                phase = 0.0 if side == "left" else math.pi
                ramp = np.clip((p.standing_s - ts) / 0.05, 0.0, 1.0)
                force_bw[m] += (0.5 + 0.02 * np.sin(2 * np.pi * 0.25 * ts + phase)) * ramp
                tx[m] = 0.42 + 0.015 * np.sin(2 * np.pi * 0.31 * ts + phase)
                ty[m] = 0.5 + 0.01 * np.sin(2 * np.pi * 0.17 * ts)
        return force_bw, tx, ty

    @property
    def n_blocks(self) -> int | None:
        return None if self.n_total is None else -(-self.n_total // BLOCK_FRAMES)


def _meta(profile: HardwareProfile, params: RunParams, fs: float) -> dict[str, Any]:
    return {
        "simulator": {"params": params.model_dump(mode="json"), "sample_rate_hz": fs},
        "generator": "edge_agent.recordings.simulator",
    }


def _segments(p: RunParams) -> list[Segment]:
    segs: list[Segment] = []
    t = 0.0
    for label, dur in (
        ("standing", p.standing_s),
        ("walking", p.walking_s),
        ("running", p.duration_s),
        ("walking", p.walking_s),
    ):
        if dur > 0:
            segs.append(Segment(label, t, t + dur))
            t += dur
    return segs


def simulate(profile: HardwareProfile, params: RunParams | None = None) -> tuple[Recording, list[StepTruth]]:
    """A whole simulated recording and the truth of every step in it (sorted by contact time)."""
    params = params or RunParams()
    gen = _Generator(profile, params)
    nb = gen.n_blocks or 0
    feet: dict[str, FootStream] = {}
    for si, side in enumerate(SIDES):
        parts = [gen.block(k, si) for k in range(nb)]
        t = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
        raw = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, profile.n_sensors), np.float32)
        feet[side] = FootStream(t=np.ascontiguousarray(t, dtype=np.float64), raw=np.ascontiguousarray(raw))
    gen.sched.extend_to(math.inf)
    rec = Recording(
        profile=profile.name,
        left=feet["left"],
        right=feet["right"],
        body_mass_kg=params.body_mass_kg,
        notes=f"simulated run, seed {params.seed}",
        source="simulator",
        segments=_segments(params),
        meta=_meta(profile, params, gen.fs),
    )
    return rec, list(gen.sched.truths)


def ground_truth_signals(
    profile: HardwareProfile, params: RunParams, side: Side, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise-free vertical force the sensors read (N; the unloading lag included) and the centre of
    pressure they carry (x, y) at times ``t``.

    The CoP is the target after clipping into the sensors' hull, i.e. exactly what the generated
    frames' CoP is (before noise, offset and saturation); NaN where the foot is unloaded.
    """
    gen = _Generator(profile, params)
    t = np.asarray(t, dtype=np.float64)
    f_bw, tx, ty = gen.targets(t, side)
    x = np.full(t.size, np.nan)
    y = np.full(t.size, np.nan)
    m = f_bw > 0
    if m.any():
        x[m], y[m] = gen.dist.clip(tx[m], ty[m])
    return f_bw * gen.bw_n, x, y


class SimulatorStream:
    """Incremental simulation: frames on demand, bit-identical to :func:`simulate` however it is chunked.

    ``next_chunk(n)`` advances the clock by ``n`` frame slots and returns the frames of both feet in
    them (fewer when frames were dropped). ``endless=True`` runs forever (the running phase never ends).
    """

    def __init__(self, profile: HardwareProfile, params: RunParams | None = None, endless: bool = False) -> None:
        self.params = params or RunParams()
        self.profile = profile
        self._gen = _Generator(profile, self.params, endless)
        self.sample_rate_hz = self._gen.fs
        self._pos = 0  # next frame slot
        self._buf: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # (block, side) → frames

    @property
    def frames_total(self) -> int | None:
        return self._gen.n_total

    @property
    def exhausted(self) -> bool:
        return self._gen.n_total is not None and self._pos >= self._gen.n_total

    @property
    def time(self) -> float:
        """Simulated time reached (s)."""
        return self._pos / self.sample_rate_hz

    @property
    def truths(self) -> list[StepTruth]:
        """Truths of the steps completed so far."""
        now = self.time
        return [tr for tr in self._gen.sched.truths if tr.t_toe_off <= now]

    def _block(self, k: int, si: int) -> tuple[np.ndarray, np.ndarray]:
        key = k * 2 + si
        blk = self._buf.get(key)
        if blk is None:
            blk = self._buf[key] = self._gen.block(k, si)
        return blk

    def _span(self, n_frames: int) -> tuple[int, int]:
        start = self._pos
        stop = start + n_frames
        if self._gen.n_total is not None:
            stop = min(stop, self._gen.n_total)
        return start, stop

    def needs_generation(self, n_frames: int) -> bool:
        """True when the next ``next_chunk(n_frames)`` would generate a new block (the costly part)."""
        start, stop = self._span(n_frames)
        if stop <= start:
            return False
        return any(
            (k * 2 + si) not in self._buf
            for k in range(start // BLOCK_FRAMES, -(-stop // BLOCK_FRAMES))
            for si in (0, 1)
        )

    def prepare(self, n_frames: int) -> None:
        """Generate the blocks the next ``next_chunk(n_frames)`` needs (callable from a worker thread)."""
        start, stop = self._span(n_frames)
        if stop > start:
            for k in range(start // BLOCK_FRAMES, -(-stop // BLOCK_FRAMES)):
                for si in (0, 1):
                    self._block(k, si)

    def next_chunk(self, n_frames: int) -> tuple[FootStream, FootStream]:
        if n_frames <= 0:
            raise ValueError(f"n_frames must be positive, got {n_frames}")
        start, stop = self._span(n_frames)
        out: list[FootStream] = []
        for si in range(2):
            ts: list[np.ndarray] = []
            raws: list[np.ndarray] = []
            for k in range(start // BLOCK_FRAMES, -(-stop // BLOCK_FRAMES) if stop > start else start // BLOCK_FRAMES):
                bt, br = self._block(k, si)
                # select by frame slot; t = idx / fs exactly, so compare indices via rounding
                idx = np.rint(bt * self.sample_rate_hz).astype(np.int64)
                m = (idx >= start) & (idx < stop)
                ts.append(bt[m])
                raws.append(br[m])
            t = np.concatenate(ts) if ts else np.zeros(0)
            raw = np.concatenate(raws) if raws else np.zeros((0, self.profile.n_sensors), np.float32)
            out.append(FootStream(t=np.ascontiguousarray(t), raw=np.ascontiguousarray(raw, dtype=np.float32)))
        self._pos = stop
        for old in [kk for kk in self._buf if kk // 2 < stop // BLOCK_FRAMES]:  # fully consumed blocks
            del self._buf[old]
        return out[0], out[1]
