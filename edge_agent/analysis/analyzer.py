"""Per-step analysis: the validating public wrapper around the streaming numba kernels.

``FootAnalyzer`` streams one insole, ``GaitAnalyzer`` both (and fills flight time, which needs the
other foot), ``analyze_recording`` runs a whole ``Recording`` in chunks. The kernels themselves are
private (``edge_agent.analysis.kernels.steps`` on the numba JIT, or its ahead-of-time build, chosen once per
process by ``edge_agent.analysis.kernels.load_kernels``); this module checks shapes, dtypes and values, makes
arrays contiguous, and turns event rows into :class:`edge_agent.analysis.step.Step` records. Measure definitions,
the variants chosen and their sources: ``docs/measures.md``.
"""

from __future__ import annotations

import gc
import itertools
import logging
import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from edge_agent.analysis.kernels import Kernels, load_kernels
from edge_agent.analysis.kernels import layout as L
from edge_agent.analysis.loading_rate import step_bands
from edge_agent.analysis.step import FOREFOOT_MIN, REARFOOT_MAX, ZONE_UNCERTAINTY, Side, Step
from edge_agent.profiles import FsrDividerCalibration, HardwareProfile, SensorType, load_profile

if TYPE_CHECKING:  # the recordings package is optional at import time
    from edge_agent.recordings import Recording

log = logging.getLogger(__name__)

G0 = 9.80665  # standard gravity, N/kg
DEFAULT_BODY_MASS_KG = 70.0
_TIME_ORDER = attrgetter("t_contact")
#: Loading rates below this sample rate are reported as low-confidence (docs/design.md §4).
LR_CONFIDENT_HZ = 200.0
#: Toe-off level per sensor type, as a fraction of the step's own peak (0: the off level, as on force plates).
#: Pressure insoles unload slowly and read longer stance than force plates; docs/measures.md §2.
TOE_OFF_PEAK_FRACTION: dict[SensorType, float] = {"force": 0.0, "capacitive": 0.11, "fsr": 0.11, "resistive": 0.11}
#: ``contact_events="vendor"``: initial contact at this fraction of the step's peak (Moticon's reports).
VENDOR_IC_PEAK_FRACTION = 0.06
ContactEvents = Literal["physical", "vendor"]
_LR_MODELS = np.array(["sampled", "rise", "rise_prior"], dtype=object)  # by the kernel's E_LR_MODEL code


class AnalysisError(ValueError):
    """Input the analysis cannot use; the message names what and where."""


@dataclass(frozen=True)
class AnalysisConfig:
    """Tunable analysis settings; defaults and their sources are documented in docs/measures.md.

    Contact thresholds are fractions of body weight: on 0.05 BW / off 0.03 BW bracket the 40 N
    force-plate convention (0.058 BW at 70 kg) used as the reference by Blades et al. 2023.
    """

    body_mass_kg: float | None = None
    lowpass_hz: float | None = None
    contact_on_bw: float = 0.05
    contact_off_bw: float = 0.03
    min_contact_ms: float = 120.0
    min_swing_ms: float = 80.0
    # --- additions (documented in docs/measures.md) ---
    max_contact_ms: float = 2000.0  # longer "contacts" are standing, not steps
    baseline_tau_s: float = 0.2  # swing-floor rise time constant
    si_window_ms: float = 20.0  # strike-index window: at most this long after initial contact …
    si_force_bw: float = 0.10  # … and ending at the first sample with at least this force
    impact_min_bw: float = 0.5  # an impact peak is at least this high
    impact_prominence_bw: float = 0.05  # and the force drops by at least this before the active peak
    impact_max_stance_frac: float = 0.5  # and it lies in the first half of stance
    fallback_stance_frac: float = 0.13  # no impact peak: 20–80 % of the force at 13 % of stance
    cop_min_bw: float = 0.10  # CoP path/excursion only where the CoP is well defined
    gap_periods: float = 3.0  # a time step > 3 sample periods is a gap
    sample_rate_hz: float | None = None  # None: the profile's rate
    min_peak_bw: float = 0.3  # a contact never carrying 30 % BW is not a step (shuffle, resting foot)
    # --- loading rate at insole sampling rates (docs/measures.md §3) ---
    lr_model_max_hz: float = 300.0  # the raised-cosine rise correction applies below this sample rate
    lr_fall_ratio: float = 2.0  # rise template: the impact bell falls over this many rise times
    lr_rise_prior_ms: float = 18.0  # rise time assumed when no sample lies on the rise
    lr_correction_min: float = 0.8  # the correction factor is clamped to [min, max]
    lr_correction_max: float = 1.6
    # --- contact edges (docs/measures.md §2) ---
    toe_off_peak_fraction: float | None = None  # None: by the profile's sensor type (TOE_OFF_PEAK_FRACTION)
    contact_events: ContactEvents = "physical"  # "vendor": also initial contact at 6 % of the step's peak

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> AnalysisError:
            return AnalysisError(f"AnalysisConfig.{name} = {getattr(self, name)!r}: {why}")

        for name in (
            "contact_on_bw",
            "contact_off_bw",
            "min_contact_ms",
            "min_swing_ms",
            "max_contact_ms",
            "baseline_tau_s",
            "si_window_ms",
            "si_force_bw",
            "impact_min_bw",
            "impact_prominence_bw",
            "impact_max_stance_frac",
            "fallback_stance_frac",
            "cop_min_bw",
            "gap_periods",
            "min_peak_bw",
            "lr_model_max_hz",
            "lr_fall_ratio",
            "lr_rise_prior_ms",
            "lr_correction_min",
            "lr_correction_max",
        ):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise bad(name, "must be a positive finite number")
        if self.contact_off_bw > self.contact_on_bw:
            raise bad("contact_off_bw", f"must not exceed contact_on_bw ({self.contact_on_bw})")
        if self.max_contact_ms <= self.min_contact_ms:
            raise bad("max_contact_ms", "must exceed min_contact_ms")
        if self.impact_max_stance_frac > 1 or self.fallback_stance_frac >= 1:
            raise bad("fallback_stance_frac", "stance fractions must be below 1")
        if self.gap_periods < 1.5:
            raise bad("gap_periods", "must be at least 1.5 sample periods")
        for name in ("body_mass_kg", "lowpass_hz", "sample_rate_hz"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int | float) or not math.isfinite(v) or v <= 0):
                raise bad(name, "must be None or a positive finite number")
        if self.lr_correction_min > 1 or self.lr_correction_max < 1:
            raise bad("lr_correction_min", f"the limits must bracket 1 (max is {self.lr_correction_max})")
        v = self.toe_off_peak_fraction
        if v is not None and (not isinstance(v, int | float) or not math.isfinite(v) or not 0 <= v < 0.5):
            raise bad("toe_off_peak_fraction", "must be None or a number in [0, 0.5)")
        if self.contact_events not in ("physical", "vendor"):
            raise bad("contact_events", "must be 'physical' or 'vendor'")


# --------------------------------------------------------------------------------------------------
# calibration helpers


def fsr_lut(cal: FsrDividerCalibration) -> np.ndarray:
    """Newtons for every ADC count 0..adc_max (the profile's FSR power-law model).

    Full scale (V = vcc) means infinite conductance; it reads as the force one count below
    (and is counted as saturated when the profile's raw_max says so).
    """
    c = np.arange(cal.adc_max + 1, dtype=np.float64)
    v = c / cal.adc_max * cal.vcc
    with np.errstate(divide="ignore", invalid="ignore"):
        g_us = v / (cal.r_measure_ohm * (cal.vcc - v)) * 1e6
        f = cal.k * np.power(g_us, cal.n)
    f[c <= cal.threshold_counts] = 0.0
    if cal.adc_max >= 1:
        f[-1] = f[-2]
    f[~np.isfinite(f)] = 0.0
    return np.ascontiguousarray(f)


def sensor_forces(profile: HardwareProfile, raw: np.ndarray) -> np.ndarray:
    """Calibrated per-sensor forces (N), NaN/±inf read as no load; shape (n, S)."""
    raw = _as_raw(profile, raw, "raw")
    v = raw.astype(np.float64)
    v[~np.isfinite(v)] = np.nan
    cal = profile.calibration
    if isinstance(cal, FsrDividerCalibration):
        lut = fsr_lut(cal)
        v = np.where(np.isnan(v), 0.0, v)
        idx = np.clip(np.floor(np.maximum(v, 0.0) + 0.5), 0, cal.adc_max).astype(np.int64)
        idx[v <= 0.0] = 0
        return lut[idx]
    off = cal.offset
    v = np.where(np.isnan(v), off, v)
    return (v - off) * profile.linear_gain()


def total_force(profile: HardwareProfile, raw: np.ndarray) -> np.ndarray:
    """Calibrated total force per frame (N), before the swing-phase re-zero."""
    return sensor_forces(profile, raw).sum(axis=1)


def estimate_body_weight(
    t: np.ndarray,
    total_force_n: np.ndarray,
    window_s: float = 2.0,
    max_cv: float = 0.05,
    min_n: float = 150.0,
    max_n: float = 3000.0,
) -> float | None:
    """Body weight (N) from the quietest standing window: median total of both feet.

    Windows of ``window_s`` (half-overlapping) whose mean lies in [min_n, max_n] and whose
    coefficient of variation is at most ``max_cv`` qualify; the quietest one wins. None when the
    stream has no quiet standing (then the caller falls back to a configured body mass).
    """
    t = np.asarray(t, dtype=np.float64)
    f = np.asarray(total_force_n, dtype=np.float64)
    if t.ndim != 1 or f.shape != t.shape:
        raise AnalysisError(f"estimate_body_weight: t {t.shape} and total_force_n {f.shape} must be equal 1-D")
    ok = np.isfinite(t) & np.isfinite(f)
    t, f = t[ok], f[ok]
    if t.size < 10:
        return None
    best: tuple[float, float] | None = None
    start = t[0]
    while start + window_s <= t[-1] + 1e-9:
        i0, i1 = np.searchsorted(t, [start, start + window_s])
        seg = f[i0:i1]
        if seg.size >= 10:
            mean = float(seg.mean())
            if min_n <= mean <= max_n:
                cv = float(seg.std()) / mean
                if cv <= max_cv and (best is None or cv < best[0]):
                    best = (cv, float(np.median(seg)))
        start += window_s / 2
    return None if best is None else best[1]


# --------------------------------------------------------------------------------------------------
# validation


def _as_raw(profile: HardwareProfile, raw: Any, where: str) -> np.ndarray:
    a = np.asarray(raw)
    if a.dtype.kind not in "fiub":
        raise AnalysisError(f"{where}: raw samples must be numeric, got dtype {a.dtype}")
    if a.ndim == 1 and profile.n_sensors == 1:
        a = a.reshape(-1, 1)
    if a.ndim != 2 or a.shape[1] != profile.n_sensors:
        raise AnalysisError(
            f"{where}: raw must have shape (frames, {profile.n_sensors}) for profile {profile.name!r}, got {a.shape}"
        )
    return np.ascontiguousarray(a, dtype=np.float32)


def _biquad_lowpass(fc: float, fs: float) -> tuple[float, float, float, float, float]:
    """2nd-order Butterworth low-pass (bilinear transform, RBJ cookbook form, Q = 1/√2)."""
    if fc > 0.25 * fs:
        # near Nyquist the bilinear transform warps the response and contact edges ring
        raise AnalysisError(f"AnalysisConfig.lowpass_hz = {fc}: must be at most 0.25 × the sample rate ({fs} Hz)")
    w0 = 2.0 * math.pi * fc / fs
    alpha = math.sin(w0) / (2.0 * (1.0 / math.sqrt(2.0)))
    cw = math.cos(w0)
    a0 = 1.0 + alpha
    b0 = (1.0 - cw) / 2.0 / a0
    return b0, 2.0 * b0, b0, -2.0 * cw / a0, (1.0 - alpha) / a0


def saturation_bits(raw_max: float) -> int:
    """int32 bit pattern of the smallest float32 ≥ ``raw_max`` (the kernel's integer saturation test)."""
    r32 = np.float32(raw_max)
    if float(r32) < raw_max:
        r32 = np.nextafter(r32, np.float32(np.inf))
    return int(np.array([r32], dtype=np.float32).view(np.int32)[0])


@dataclass
class KernelSetup:
    """Everything the kernel needs besides the frames: parameters and sensor weights."""

    params: np.ndarray
    weights: np.ndarray  # float64[N_WEIGHTS, S]: rows W_F, W_X, W_Y, W_OFF (layout.py)
    lut: np.ndarray
    fs: float
    buf_len: int

    @property
    def wf(self) -> np.ndarray:
        return self.weights[L.W_F]

    @property
    def wx(self) -> np.ndarray:
        return self.weights[L.W_X]

    @property
    def wy(self) -> np.ndarray:
        return self.weights[L.W_Y]


def kernel_setup(profile: HardwareProfile, body_weight_n: float, config: AnalysisConfig) -> KernelSetup:
    """Translate profile + body weight + config into the kernel's parameter vector and weights."""
    if not isinstance(body_weight_n, int | float) or not math.isfinite(body_weight_n) or body_weight_n <= 0:
        raise AnalysisError(f"body_weight_n = {body_weight_n!r}: must be a positive finite number of newtons")
    fs = float(config.sample_rate_hz or profile.sample_rate_hz)
    p = np.zeros(L.N_PARAMS, dtype=np.float64)
    p[L.P_ON] = config.contact_on_bw
    p[L.P_OFF] = config.contact_off_bw
    p[L.P_BW] = body_weight_n
    p[L.P_DT] = 1.0 / fs
    p[L.P_GAP] = config.gap_periods / fs
    p[L.P_MIN_CONTACT] = config.min_contact_ms / 1000.0
    p[L.P_MIN_SWING] = config.min_swing_ms / 1000.0
    p[L.P_MAX_CONTACT] = config.max_contact_ms / 1000.0
    p[L.P_ALPHA] = min(1.0, 1.0 / (fs * config.baseline_tau_s))
    p[L.P_RAW_MAX] = profile.raw_max if profile.raw_max is not None else math.inf
    p[L.P_SAT_BITS] = saturation_bits(p[L.P_RAW_MAX])
    p[L.P_SI_BW] = config.si_force_bw
    p[L.P_SI_S] = config.si_window_ms / 1000.0
    if config.lowpass_hz:
        p[L.P_LOWPASS] = 1.0
        p[L.P_B0], p[L.P_B1], p[L.P_B2], p[L.P_A1], p[L.P_A2] = _biquad_lowpass(config.lowpass_hz, fs)
    p[L.P_HAS_COP] = 0.0 if profile.is_single_zone else 1.0
    p[L.P_PROM_BW] = config.impact_prominence_bw
    p[L.P_IMPACT_MIN_BW] = config.impact_min_bw
    p[L.P_IMPACT_FRAC] = config.impact_max_stance_frac
    p[L.P_FALLBACK_FRAC] = config.fallback_stance_frac
    p[L.P_COP_MIN_BW] = config.cop_min_bw
    p[L.P_MIN_PEAK] = config.min_peak_bw
    # the rise correction: below its rate limit, and not on low-passed force (the filter changes the
    # rise's shape, so the template would no longer describe the samples)
    p[L.P_LR_MODEL] = 1.0 if fs < config.lr_model_max_hz and not config.lowpass_hz else 0.0
    p[L.P_LR_FALL_R] = config.lr_fall_ratio
    p[L.P_LR_T1_PRIOR] = config.lr_rise_prior_ms / 1000.0
    p[L.P_LR_CMIN] = config.lr_correction_min
    p[L.P_LR_CMAX] = config.lr_correction_max
    to_frac = config.toe_off_peak_fraction
    p[L.P_TO_FRAC] = TOE_OFF_PEAK_FRACTION[profile.sensor_type] if to_frac is None else to_frac
    p[L.P_IC_FRAC] = VENDOR_IC_PEAK_FRACTION if config.contact_events == "vendor" else 0.0
    x = profile.sensor_x()
    y = profile.sensor_y()
    cal = profile.calibration
    if isinstance(cal, FsrDividerCalibration):
        p[L.P_USE_LUT] = 1.0
        lut = fsr_lut(cal)
        wf = np.ones(profile.n_sensors)
        wx, wy = x, y
        off = np.zeros(profile.n_sensors)
    else:
        g = profile.linear_gain()
        wf, wx, wy = g, g * x, g * y
        off = np.full(profile.n_sensors, cal.offset, dtype=np.float64)
        lut = np.zeros(1, dtype=np.float64)
        p[L.P_C0] = float(wf @ off)
        p[L.P_C1] = float(wx @ off)
        p[L.P_C2] = float(wy @ off)
    buf_len = math.ceil(1.25 * fs * (config.max_contact_ms + config.min_swing_ms) / 1000.0) + 16
    weights = np.zeros((L.N_WEIGHTS, profile.n_sensors), dtype=np.float64)
    weights[L.W_F], weights[L.W_X], weights[L.W_Y], weights[L.W_OFF] = wf, wx, wy, off
    return KernelSetup(params=p, weights=weights, lut=lut, fs=fs, buf_len=buf_len)


def _none_where_nan(col: np.ndarray) -> list[float | None]:
    """Column → list with None for NaN (one C-level pass instead of a test per element in Python)."""
    nan = np.isnan(col)
    if not nan.any():
        return col.tolist()
    obj = col.astype(object)
    obj[nan] = None
    return obj.tolist()


def events_to_steps(events: np.ndarray, side: Side, low_confidence: bool, fs: float) -> list[Step]:
    """Event rows (kernel or reference) → Step records (rows of contacts that are no steps are skipped);
    ``fs`` (Hz) sets the loading-rate intervals (:mod:`edge_agent.analysis.loading_rate`).

    Written for speed (columns prepared by numpy, ``map`` over the constructor): at 100 Hz a step
    arrives every ~70 frames, so building Step objects is a visible share of the whole analysis.
    """
    ev = np.asarray(events, dtype=np.float64)
    if ev.shape[1] > L.E_KIND:
        ev = ev[ev[:, L.E_KIND] == L.K_STEP]
    n = len(ev)
    if n == 0:
        return []
    t_ic = ev[:, L.E_T_IC]
    t_to = ev[:, L.E_T_TO]
    si = ev[:, L.E_SI]
    has_si = ~np.isnan(si)
    zone = np.full(n, None, dtype=object)
    zone[has_si & (si < REARFOOT_MAX)] = "rearfoot"
    zone[has_si & (si > FOREFOOT_MIN)] = "forefoot"
    zone[has_si & (si >= REARFOOT_MAX) & (si <= FOREFOOT_MIN)] = "midfoot"
    near = (np.abs(si - REARFOOT_MAX) < ZONE_UNCERTAINTY) | (np.abs(si - FOREFOOT_MIN) < ZONE_UNCERTAINTY)
    uncertain = has_si & near
    si_list = _none_where_nan(si)
    impact = ev[:, L.E_LR_IMPACT] > 0
    method = np.where(impact, "impact_peak", "fallback").tolist()
    valr = ev[:, L.E_VALR]
    model_code = ev[:, L.E_LR_MODEL].astype(np.int64)
    models = _LR_MODELS[model_code].tolist()
    return list(
        map(
            Step,
            repeat(side),
            t_ic.tolist(),
            t_to.tolist(),
            ((t_to - t_ic) * 1000.0).tolist(),
            si_list,
            zone.tolist(),
            uncertain.tolist(),
            (ev[:, L.E_IMPACT] > 0).tolist(),
            _none_where_nan(valr),
            _none_where_nan(ev[:, L.E_VILR]),
            method,
            repeat(low_confidence),
            ev[:, L.E_PEAK].tolist(),
            ev[:, L.E_IMPULSE].tolist(),
            si_list,
            _none_where_nan(ev[:, L.E_SI_Y]),
            _none_where_nan(ev[:, L.E_COP_PATH]),
            _none_where_nan(ev[:, L.E_COP_ML]),
            repeat(None),
            _none_where_nan(ev[:, L.E_IMPACT_BW]),
            models,
            _none_where_nan(ev[:, L.E_VALR_SAMPLED]),
            step_bands(impact, model_code, fs),
        )
    )


# --------------------------------------------------------------------------------------------------
# streaming analyzers


class FootAnalyzer:
    """One insole, streaming: ``feed`` chunks of frames, get finished steps.

    Steps are emitted once their toe-off is confirmed by ``min_swing_ms`` of swing, so a step
    appears at most ``min_swing_ms`` + one chunk after it ends. Results do not depend on how the
    stream is cut into chunks.
    """

    def __init__(
        self,
        profile: HardwareProfile,
        side: Literal["left", "right"],
        body_weight_n: float,
        config: AnalysisConfig | None = None,
        kernels: Kernels | None = None,
    ) -> None:
        """``kernels``: the process's choice (:func:`edge_agent.analysis.kernels.load_kernels`) unless given."""
        if side not in ("left", "right"):
            raise AnalysisError(f"side = {side!r}: must be 'left' or 'right'")
        self.profile = profile
        self.side: Side = side
        self.config = config or AnalysisConfig()
        self._setup = kernel_setup(profile, body_weight_n, self.config)
        s = profile.n_sensors
        self._kernels: Kernels = kernels or load_kernels()
        self._state = L.new_state(s)
        self._sensors = L.new_sensor_state(s)  # per-sensor counters, first values, the silent list
        self._buf = np.zeros((L.BUF_ROWS, self._setup.buf_len), dtype=np.float64)
        self._events = np.zeros((1024, L.N_EVENT_COLS), dtype=np.float64)
        self.low_confidence = self._setup.fs < LR_CONFIDENT_HZ
        self._contact_ic: list[float] = []
        self._contact_to: list[float] = []

    @property
    def body_weight_n(self) -> float:
        return float(self._setup.params[L.P_BW])

    @property
    def sample_rate_hz(self) -> float:
        """The rate the kernels assume (the config's, else the profile's): the steps' loading-rate basis."""
        return self._setup.fs

    def set_body_weight(self, body_weight_n: float) -> None:
        """Use a new body weight (N) for the frames fed from now on."""
        self._setup = kernel_setup(self.profile, body_weight_n, self.config)

    @property
    def t_last(self) -> float | None:
        """Time of the last frame processed (None before the first)."""
        return float(self._state[L.S_TLAST]) if self._state[L.S_HAVE_PREV] > 0 else None

    @property
    def open_contact_start(self) -> float | None:
        """Initial-contact time of a contact not yet emitted (in contact or toe-off pending)."""
        return float(self._state[L.S_T_ON]) if self._state[L.S_MODE] != 0 else None

    def feed(self, t: np.ndarray, raw: np.ndarray) -> list[Step]:
        """Process frames ``t`` (s, float64[n]) and ``raw`` (raw units, [n, S]); return finished steps."""
        where = f"FootAnalyzer({self.profile.name}, {self.side}).feed"
        ta = np.asarray(t)
        if ta.dtype.kind not in "fiu":
            raise AnalysisError(f"{where}: t must be numeric seconds, got dtype {ta.dtype}")
        ta = np.ascontiguousarray(ta, dtype=np.float64).reshape(-1) if ta.ndim <= 1 else ta
        if ta.ndim != 1:
            raise AnalysisError(f"{where}: t must be 1-D, got shape {np.shape(t)}")
        ra = _as_raw(self.profile, raw, where)
        if ra.shape[0] != ta.shape[0]:
            raise AnalysisError(f"{where}: t has {ta.shape[0]} frames but raw has {ra.shape[0]}")
        su = self._setup
        rai = ra.view(np.int32)
        out: list[Step] = []
        pos = 0
        n = ta.shape[0]
        while pos < n:
            ne, used = self._kernels.run_chunk(
                ta[pos:], ra[pos:], rai[pos:], su.params, su.weights, su.lut, self._state, self._sensors, self._buf,
                self._events,
            )  # fmt: skip
            if ne:
                ev = self._events[:ne]
                self._contact_ic.extend(ev[:, L.E_T_IC].tolist())
                self._contact_to.extend(ev[:, L.E_T_TO].tolist())
                out.extend(events_to_steps(ev, self.side, self.low_confidence, su.fs))
            pos += used
        return out

    def flush(self) -> list[Step]:
        """End of stream: a contact whose toe-off was seen is emitted; an unfinished one is dropped
        (its toe-off, and so every per-step measure, is unknown) and counted as ``cut_contacts``."""
        ne = self._kernels.flush_state(self._state, self._buf, self._setup.params, self._events)
        ev = self._events[:ne]
        self._contact_ic.extend(ev[:, L.E_T_IC].tolist())
        self._contact_to.extend(ev[:, L.E_T_TO].tolist())
        return events_to_steps(ev, self.side, self.low_confidence, self._setup.fs)

    def take_contacts(self) -> tuple[list[float], list[float]]:
        """(initial contacts, toe-offs) of every contact finished since the last call, steps or not
        (a foot standing or shuffling is still on the ground: needed for the other foot's flight)."""
        out = (self._contact_ic, self._contact_to)
        self._contact_ic, self._contact_to = [], []
        return out

    @property
    def quality(self) -> dict[str, int | list[int]]:
        st = self._state
        sen = self._sensors
        silent = sorted(int(i) for i in sen[L.SEN_SILENT, : int(st[L.S_NSILENT])])
        return {
            "frames": int(st[L.S_FRAMES]),
            "late_frames": int(st[L.S_LATE]),
            "bad_time_frames": int(st[L.S_BADTIME]),
            "dropped_frames": int(st[L.S_DROPPED]),
            "gaps": int(st[L.S_GAPS]),
            "nan_samples": int(sen[L.SEN_NAN].sum()),
            "saturated_samples": int(sen[L.SEN_SAT].sum()),
            "saturated_sensors": [int(i) for i in np.flatnonzero(sen[L.SEN_SAT])],
            "silent_sensors": silent if st[L.S_FRAMES] > 0 else [],
            "steps": int(st[L.S_STEPS]),
            "short_contacts": int(st[L.S_SHORT]),
            "long_contacts": int(st[L.S_LONGCNT]),
            "weak_contacts": int(st[L.S_WEAK]),
            "cut_contacts": int(st[L.S_GAP_CUT]),
            "partial_contacts": int(st[L.S_PARTIAL]),
        }


class GaitAnalyzer:
    """Both feet. Fills ``Step.flight_ms`` and returns steps time-ordered within each call.

    Flight before a contact = its initial contact − the other foot's last toe-off, kept when
    0 < flight < 1 s; None when the other foot was still on the ground (walking) or unknown. A
    step is held until the other foot's stream has passed its contact time by ``min_swing_ms``
    (so that foot's earlier toe-off is confirmed), at most ``hold_s`` of this foot's own time.
    """

    def __init__(
        self,
        profile: HardwareProfile,
        body_weight_n: float,
        config: AnalysisConfig | None = None,
        hold_s: float | None = 2.0,
    ):
        """``hold_s``: longest wait (this foot's stream time) for a lagging or absent other foot;
        None waits until ``flush`` (whole recordings fed one foot after the other)."""
        self.config = config or AnalysisConfig()
        self.hold_s = hold_s
        self.feet: dict[Side, FootAnalyzer] = {
            "left": FootAnalyzer(profile, "left", body_weight_n, self.config),
            "right": FootAnalyzer(profile, "right", body_weight_n, self.config),
        }
        self._held: dict[Side, list[Step]] = {"left": [], "right": []}  # time-ordered per foot
        self._held_tc: dict[Side, list[float]] = {"left": [], "right": []}
        # contact / toe-off times of each foot's finished contacts (steps or not), in time order
        self._ic: dict[Side, list[float]] = {"left": [], "right": []}
        self._to: dict[Side, list[float]] = {"left": [], "right": []}
        self._margin = self.config.min_swing_ms / 1000.0 + 2.0 / self.feet["left"]._setup.fs

    def set_body_weight(self, body_weight_n: float) -> None:
        for foot in self.feet.values():
            foot.set_body_weight(body_weight_n)

    @property
    def sample_rate_hz(self) -> float:
        return self.feet["left"].sample_rate_hz

    def _remember(self, side: Side, steps: list[Step]) -> None:
        ic, to = self.feet[side].take_contacts()
        self._ic[side].extend(ic)
        self._to[side].extend(to)
        self._held[side].extend(steps)
        self._held_tc[side].extend(s.t_contact for s in steps)

    def _flights(self, t_c: np.ndarray, other: Side) -> list[float | None]:
        """Flight (ms) before each contact time: t_c − the other foot's last toe-off before it."""
        ic = np.asarray(self._ic[other])
        to = np.asarray(self._to[other])
        k = np.searchsorted(ic, t_c, side="left") - 1
        f = t_c - (to[np.maximum(k, 0)] if to.size else np.full(t_c.shape, np.inf))
        ok = (k >= 0) & (f > 0.0) & (f < 1.0)  # f ≤ 0: double support (walking)
        o_open = self.feet[other].open_contact_start
        if o_open is not None:
            ok &= ~(o_open < t_c)  # the other foot is still on the ground
        return [fl * 1000.0 if good else None for fl, good in zip(f.tolist(), ok.tolist(), strict=True)]

    def feed(self, side: Literal["left", "right"], t: np.ndarray, raw: np.ndarray) -> list[Step]:
        if side not in self.feet:
            raise AnalysisError(f"GaitAnalyzer.feed: side = {side!r} must be 'left' or 'right'")
        self._remember(side, self.feet[side].feed(t, raw))
        return self._release(final=False)

    def flush(self) -> list[Step]:
        for side in ("left", "right"):
            self._remember(side, self.feet[side].flush())  # type: ignore[arg-type,index]
        return self._release(final=True)

    def _release(self, final: bool) -> list[Step]:
        """Release each foot's held steps whose flight can be decided (a time-ordered prefix)."""
        out: list[Step] = []
        last = {side: foot.t_last for side, foot in self.feet.items()}
        for side, other in (("left", "right"), ("right", "left")):
            held, tcs = self._held[side], self._held_tc[side]  # type: ignore[index]
            if not held:
                continue
            o_last = last[other]  # type: ignore[index]
            # releasable with a flight time: the other foot's stream has passed t_contact + margin
            if final:
                r1 = len(held)
            elif o_last is None:
                r1 = 0
            else:
                r1 = bisect_right(tcs, o_last - self._margin)
            r2 = 0
            own = last[side]  # type: ignore[index]
            if self.hold_s is not None and own is not None:  # waited hold_s of this foot's time
                r2 = bisect_left(tcs, own - self.hold_s)
            r = max(r1, r2)
            if r == 0:
                continue
            batch = held[:r]
            if r1:
                flights = self._flights(np.asarray(tcs[:r1]), other)  # type: ignore[arg-type]
                for st, fl in zip(batch, flights, strict=False):
                    st.flight_ms = fl
            for st in batch[r1:]:
                st.flight_ms = None  # the other foot is absent or lagging: flight unknown
            out.extend(batch)
            del held[:r]
            del tcs[:r]
        # forget contacts no held step can refer to any more (keep one before the cutoff)
        cutoff = min((tcs[0] for tcs in self._held_tc.values() if tcs), default=math.inf)
        for foot in self.feet.values():  # steps still to come start after these times
            start = foot.open_contact_start if foot.open_contact_start is not None else foot.t_last
            cutoff = min(cutoff, -math.inf if start is None else start - 1.0)
        for side in ("left", "right"):
            ic = self._ic[side]  # type: ignore[index]
            if len(ic) > 64:
                k = max(0, min(bisect_left(ic, cutoff), len(ic) - 1) - 1)
                k = max(k, len(ic) - 4096)  # bounded even when one foot's stream has stopped
                if k:
                    del ic[:k]
                    del self._to[side][:k]  # type: ignore[index]
        out.sort(key=_TIME_ORDER)
        return out

    @property
    def quality(self) -> dict[str, dict]:
        return {side: foot.quality for side, foot in self.feet.items()}


# --------------------------------------------------------------------------------------------------
# whole recordings


@dataclass
class AnalysisResult:
    steps: list[Step]
    body_weight_n: float
    body_weight_source: str  # "argument", "config", "recording", "standing", "default"
    quality: dict
    duration_s: float
    warnings: list[str] = field(default_factory=list)
    sample_rate_hz: float = 0.0  # median frame interval over both feet, as a rate
    kernel_rate_hz: float | None = None  # the rate the kernels assumed (the steps' loading-rate basis)


#: Each foot's ``(t, raw)`` for one stretch of time, both feet cut at the same instant.
FrameChunk = dict[str, tuple[np.ndarray, np.ndarray]]
#: Frames of the lead foot read before the sample rate of a stream is measured (≈ 11 min at 100 Hz).
RATE_FRAMES = 65_536


class FrameSource(Protocol):
    """What the analysis reads: a whole :class:`Recording` (:class:`RecordingFrames`) or a file read as a stream
    (:class:`edge_agent.recordings.FrameStream`). ``chunks()`` may be called twice (body weight, then steps)."""

    source: str
    body_mass_kg: float | None
    segments: list[Any]

    def chunks(self) -> Iterable[FrameChunk]: ...

    def progress(self) -> tuple[int, int]: ...


class RecordingFrames:
    """A :class:`Recording` in memory, cut into chunks of ``chunk_frames`` frames of the longer foot, the other
    foot cut at the same instants, so neither runs far ahead of the other."""

    def __init__(self, rec: Recording, chunk_frames: int = 4096) -> None:
        self.rec = rec
        self.source = str(getattr(rec, "source", "?"))
        self.body_mass_kg = getattr(rec, "body_mass_kg", None)
        self.segments = list(getattr(rec, "segments", []) or [])
        self.chunk_frames = chunk_frames
        self.streams = {s: getattr(rec, s) for s in ("left", "right") if getattr(rec, s) is not None}
        self.clocks = {s: _clock(st.t) for s, st in self.streams.items()}
        self.total = sum(len(st.t) for st in self.streams.values())
        self.done = 0

    def period(self) -> float | None:
        periods = [c[3] for c in self.clocks.values() if c[3] is not None]
        return min(periods) if periods else None

    def progress(self) -> tuple[int, int]:
        return self.done, self.total

    def chunks(self) -> Iterator[FrameChunk]:
        self.done = 0
        if not self.streams:
            return
        lead = max(self.streams, key=lambda s: len(self.streams[s].t))
        lead_cum = self.clocks[lead][0]
        cuts = list(range(self.chunk_frames, len(lead_cum), self.chunk_frames))
        pos = dict.fromkeys(self.streams, 0)
        for k in range(len(cuts) + 1):
            chunk: FrameChunk = {}
            for side, st in self.streams.items():
                if k < len(cuts):
                    cum = self.clocks[side][0]
                    end = max(pos[side], int(np.searchsorted(cum, lead_cum[cuts[k]], side="left")))
                else:
                    end = len(st.t)
                if end > pos[side]:
                    chunk[side] = (st.t[pos[side] : end], st.raw[pos[side] : end])
                    self.done += end - pos[side]
                    pos[side] = end
            yield chunk


class TimeWindow:
    """Only the frames with ``t_start ≤ t < t_end`` of another source (``analyze --segment``)."""

    def __init__(self, inner: FrameSource, t_start: float, t_end: float) -> None:
        self.inner, self.t_start, self.t_end = inner, t_start, t_end
        self.source, self.body_mass_kg = inner.source, inner.body_mass_kg
        self.segments = [g for g in inner.segments if g.t_end > t_start and g.t_start < t_end]

    def progress(self) -> tuple[int, int]:
        return self.inner.progress()

    def chunks(self) -> Iterator[FrameChunk]:
        for chunk in self.inner.chunks():
            out: FrameChunk = {}
            for side, (t, raw) in chunk.items():
                m = (t >= self.t_start) & (t < self.t_end)
                if m.any():
                    out[side] = (t[m], raw[m])
            yield out


def _standing_weight(source: FrameSource, profile: HardwareProfile) -> float | None:
    """Body weight from the recording's standing segments, else from any quiet window (one pass over the
    frames keeping only time and total force of each foot)."""
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"left": [], "right": []}
    for chunk in source.chunks():
        for side, (t, raw) in chunk.items():
            parts[side].append((np.asarray(t, dtype=np.float64), total_force(profile, raw)))
    if not parts["left"] or not parts["right"]:
        return None
    tl, fl = (np.concatenate(x) for x in zip(*parts["left"], strict=True))
    tr, fr = (np.concatenate(x) for x in zip(*parts["right"], strict=True))
    okl = np.isfinite(tl)
    okr = np.isfinite(tr)
    tl, fl, tr, fr = tl[okl], fl[okl], tr[okr], fr[okr]
    if tl.size < 10 or tr.size < 10:
        return None
    total = fl + np.interp(tl, tr, fr)
    segs = [g for g in source.segments if "stand" in str(g.label).lower()]
    for g in segs:
        m = (tl >= g.t_start) & (tl <= g.t_end)
        est = estimate_body_weight(tl[m], total[m], window_s=min(2.0, max(0.5, (g.t_end - g.t_start) / 2)))
        if est is not None:
            return est
    return estimate_body_weight(tl, total)


def _median(a: np.ndarray) -> float:
    """``np.median`` of a 1-D float array (NaN when one is NaN) from one partition, in place (``a`` is
    reordered): on millions of frame intervals a fraction of ``np.median``'s time and no copy."""
    m = a.size
    if m == 0 or bool(np.isnan(a).any()):
        return math.nan
    k = m // 2
    a.partition(k)
    if m % 2:
        return float(a[k])
    return float((a[:k].max() + a[k]) / 2.0)


def _clock(t: np.ndarray) -> tuple[np.ndarray, float, float, float | None]:
    """(running maximum of the clock, first, last, median frame period) of one stream.

    The running maximum (NaN as −inf) is monotone, so chunk edges can be found by ``searchsorted``
    even in streams with late or invalid times; a clean clock is used as it is (no copy).
    """
    t = np.asarray(t, dtype=np.float64)
    if t.size == 0:
        return t, math.inf, -math.inf, None
    if np.isfinite(t[0]) and np.isfinite(t[-1]) and bool(np.all(t[1:] > t[:-1])):
        cum, lo, hi = t, float(t[0]), float(t[-1])
    else:
        cum = np.maximum.accumulate(np.nan_to_num(t, nan=-np.inf, posinf=np.inf, neginf=-np.inf))
        fin = t[np.isfinite(t)]
        lo, hi = (float(fin.min()), float(fin.max())) if fin.size else (math.inf, -math.inf)
    period = None
    if t.size > 10:
        idx = np.arange(0, t.size - 1, max(1, (t.size - 1) // 20_000))  # ≤ ~20,000 frame steps, evenly spread
        d = t[idx + 1] - t[idx]
        d = d[np.isfinite(d) & (d > 0)]
        if d.size:
            period = float(np.median(d))
    return cum, lo, hi, period


def analyze_recording(
    rec: Recording,
    profile: HardwareProfile | None = None,
    body_mass_kg: float | None = None,
    config: AnalysisConfig | None = None,
    chunk_frames: int = 4096,
    progress: Callable[[int, int], None] | None = None,
) -> AnalysisResult:
    """Analyse a whole recording in chunks (the same streaming path the live agent uses).

    Body weight, first found: ``body_mass_kg`` argument, ``config.body_mass_kg``, the recording's
    body mass, a quiet standing window (labelled standing segments first), else 70 kg (warned).
    """
    if not isinstance(chunk_frames, int) or chunk_frames < 1:
        raise AnalysisError(f"analyze_recording: chunk_frames = {chunk_frames!r} must be a positive integer")
    if profile is None:
        profile = load_profile(rec.profile)
    for side in ("left", "right"):
        st = getattr(rec, side)
        if st is not None:
            _as_raw(profile, st.raw, f"recording {getattr(rec, 'source', '?')} {side} stream")
            if len(st.t) != len(st.raw):
                raise AnalysisError(
                    f"recording {getattr(rec, 'source', '?')} {side} stream: {len(st.t)} times for {len(st.raw)} frames"
                )
    frames = RecordingFrames(rec, chunk_frames)
    return analyze_frames(frames, profile, body_mass_kg, config, progress, period=frames.period())


def analyze_frames(
    source: FrameSource,
    profile: HardwareProfile,
    body_mass_kg: float | None = None,
    config: AnalysisConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    period: float | None = None,
) -> AnalysisResult:
    """Analyse frames chunk by chunk: memory holds a chunk, the steps, and each foot's frame intervals (8 bytes a
    frame), never the frames of the whole recording. ``period``: the median frame interval when known in advance;
    else it is measured on the first :data:`RATE_FRAMES` frames. Body weight as in :func:`analyze_recording`; an
    estimate from standing costs one more pass over the frames."""
    config = config or AnalysisConfig()
    warnings: list[str] = []
    if body_mass_kg is not None:
        bw, src = body_mass_kg * G0, "argument"
    elif config.body_mass_kg is not None:
        bw, src = config.body_mass_kg * G0, "config"
    elif source.body_mass_kg:
        bw, src = float(source.body_mass_kg) * G0, "recording"
    else:
        est = _standing_weight(source, profile)
        if est is not None:
            bw, src = est, "standing"
        else:
            bw, src = DEFAULT_BODY_MASS_KG * G0, "default"
            warnings.append(f"no body mass and no quiet standing: assuming {DEFAULT_BODY_MASS_KG} kg")
            log.warning("%s: %s", source.source, warnings[-1])
    if not math.isfinite(bw) or bw <= 0:
        raise AnalysisError(f"analyze_recording: body weight {bw!r} N (from {src}) is not positive")
    chunks = iter(source.chunks())
    ahead: list[FrameChunk] = []
    if period is None:  # measure on the first frames (the whole recording when it is short)
        for chunk in chunks:
            ahead.append(chunk)
            if max((sum(len(c[s][0]) for c in ahead if s in c) for s in ("left", "right")), default=0) >= RATE_FRAMES:
                break
        periods = []
        for side in ("left", "right"):
            ts = [c[side][0] for c in ahead if side in c]
            if ts:
                p = _clock(np.concatenate(ts))[3]
                if p is not None:
                    periods.append(p)
        period = min(periods) if periods else None
    if config.sample_rate_hz is None and period is not None:
        measured = 1.0 / period
        if abs(measured / profile.sample_rate_hz - 1.0) > 0.05:
            warnings.append(
                f"frames arrive at {measured:.1f} Hz, profile {profile.name!r} says "
                f"{profile.sample_rate_hz:g} Hz: using the measured rate"
            )
            log.warning("%s: %s", source.source, warnings[-1])
            config = replace(config, sample_rate_hz=measured)
    gc_was_on = gc.isenabled()
    gc.disable()  # tens of thousands of Step records, no cycles: the cyclic GC would only rescan them
    try:
        gait = GaitAnalyzer(profile, bw, config, hold_s=None)
        return _feed(source, itertools.chain(ahead, chunks), gait, progress, bw, src, warnings)
    finally:
        if gc_was_on:
            gc.enable()


def _feed(
    source: FrameSource,
    chunks: Iterable[FrameChunk],
    gait: GaitAnalyzer,
    progress: Callable[[int, int], None] | None,
    bw: float,
    src: str,
    warnings: list[str],
) -> AnalysisResult:
    steps: list[Step] = []
    # each foot's frame intervals, chunk by chunk (across chunk edges too): the median gives the sample rate
    intervals: list[np.ndarray] = []
    t_end: dict[str, np.ndarray] = {}
    tmin, tmax = math.inf, -math.inf
    for chunk in chunks:
        for side in ("left", "right"):
            if side not in chunk:
                continue
            t, raw = chunk[side]
            if len(t) != len(raw):
                raise AnalysisError(f"recording {source.source} {side} stream: {len(t)} times for {len(raw)} frames")
            steps.extend(gait.feed(side, t, raw))  # type: ignore[arg-type]
            t = np.asarray(t, dtype=np.float64)
            if t.size:
                intervals.append(np.diff(t, prepend=t_end[side]) if side in t_end else np.diff(t))
                t_end[side] = t[-1:]
            fin = t[np.isfinite(t)]
            if fin.size:
                tmin, tmax = min(tmin, float(fin.min())), max(tmax, float(fin.max()))
        if progress is not None:
            progress(*source.progress())
    steps.extend(gait.flush())
    steps.sort(key=_TIME_ORDER)
    dt = _median(np.concatenate(intervals)) if sum(d.size for d in intervals) else 0.0
    return AnalysisResult(
        steps=steps,
        body_weight_n=bw,
        body_weight_source=src,
        quality=gait.quality,
        duration_s=tmax - tmin if math.isfinite(tmin) else 0.0,
        warnings=warnings,
        sample_rate_hz=1.0 / dt if dt > 0 else 0.0,
        kernel_rate_hz=gait.sample_rate_hz,
    )
