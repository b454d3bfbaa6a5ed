"""Array layouts shared by the compiled kernels and their callers: indices into the parameter
vector, the state vector and the event rows, the stance-buffer rows, and a fresh state.

Plain numpy on purpose: ``edge_agent.analysis.analyzer`` reads these without importing numba, so an agent
running the ahead-of-time compiled kernels (``edge_agent.analysis.kernels.aot``) never loads numba/LLVM.
The compiled code freezes these values. numba's on-disk cache keys a kernel on its own file only,
so ``steps.LAYOUT_SHA256`` must be this file's hash (a test checks it): editing this file forces
an edit to ``steps.py``, which invalidates stale machine code.
"""

from __future__ import annotations

import numpy as np

# --- parameter vector (float64) -----------------------------------------------------------------
P_ON = 0  # contact-on threshold (BW)
P_OFF = 1  # contact-off threshold (BW); also the timing level for initial contact and toe-off
P_BW = 2  # body weight (N)
P_DT = 3  # nominal sample period (s)
P_GAP = 4  # a time step larger than this (s) is a gap
P_MIN_CONTACT = 5  # s
P_MIN_SWING = 6  # s
P_MAX_CONTACT = 7  # s
P_ALPHA = 8  # baseline rise per frame (dt / tau)
P_RAW_MAX = 9  # saturation level in raw units (inf = none)
P_SI_BW = 10  # strike-index window ends at the first sample with Fz ≥ this (BW) …
P_SI_S = 11  # … or this long after the first contact sample (s)
P_LOWPASS = 12  # 1 = biquad on
P_B0 = 13
P_B1 = 14
P_B2 = 15
P_A1 = 16
P_A2 = 17
P_HAS_COP = 18  # 0 for single-zone insoles
P_PROM_BW = 19  # impact peak: minimum drop after it before the active peak (BW)
P_IMPACT_MIN_BW = 20  # impact peak: minimum height (BW)
P_IMPACT_FRAC = 21  # impact peak: must occur in the first fraction of stance
P_FALLBACK_FRAC = 22  # no impact peak: 20–80 % of the force at this fraction of stance
P_COP_MIN_BW = 23  # CoP path/excursion use samples with Fz ≥ this (BW)
P_C0 = 24  # Σ wF·offset
P_C1 = 25
P_C2 = 26
P_USE_LUT = 27  # 1 = non-linear calibration through the lookup table
P_MIN_PEAK = 28  # a contact whose force never reaches this (BW) is not a step
P_SAT_BITS = 29  # int32 bit pattern of the smallest float32 ≥ raw_max (fast saturation test)
P_LR_MODEL = 30  # 1 = raised-cosine rise correction of impact-peak loading rates (sample rate below its limit)
P_LR_FALL_R = 31  # rise template: the impact bell falls over this many rise times
P_LR_T1_PRIOR = 32  # rise time (s) assumed when no sample lies on the rise
P_LR_CMIN = 33  # the correction factor is clamped to [P_LR_CMIN, P_LR_CMAX]
P_LR_CMAX = 34
P_TO_FRAC = 35  # toe-off at the last fall through max(off, this × the step's peak); 0 = the off level
P_IC_FRAC = 36  # initial contact at the first rise through max(off, this × the step's peak); 0 = the off level
N_PARAMS = 37

# --- state vector (float64) ---------------------------------------------------------------------
S_MODE = 0  # 0 swing, 1 contact, 2 pending toe-off
S_HAVE_PREV = 1
S_TPREV = 2
S_FZPREV = 3  # re-zeroed force of the previous kept frame (BW)
S_CXPREV = 4  # re-zeroed moment Σf·x of the previous frame
S_CYPREV = 5  # re-zeroed moment Σf·y of the previous frame
S_BF = 6  # baseline triple (raw N, N·x, N·y)
S_BMX = 7
S_BMY = 8
S_Z = 9  # 6 biquad states: (z1, z2) for F, Mx, My → 9..14
S_T_ON = 15  # interpolated initial-contact time
S_T_OFF = 16  # interpolated toe-off time (pending)
S_I_OFF = 17  # buffer index of the first sample below the off level
S_NBUF = 18
S_LONG = 19  # the current contact overflowed (too long / buffer full)
S_FRAMES = 20  # kept frames
S_LATE = 21  # frames whose time did not increase (dropped)
S_BADTIME = 22  # frames with a NaN/inf time (dropped)
S_DROPPED = 23  # estimated frames missing in gaps
S_GAPS = 24  # number of gaps
S_GAP_CUT = 25  # contacts abandoned because of a gap
S_SHORT = 26  # contacts shorter than min_contact (not steps)
S_LONGCNT = 27  # contacts longer than max_contact (standing; not steps)
S_STEPS = 28  # steps emitted
S_TLAST = 29  # time of the last kept frame
S_WEAK = 30  # contacts never reaching min_peak (shuffles, a resting foot; not steps)
S_NSILENT = 31  # sensors not yet seen with two distinct valid values
S_FZNPREV = 32  # re-zeroed force of the previous frame (N)
S_ARMED = 33  # a swing frame below the off level was seen since the stream start / the last gap
S_VERIFIED = 34  # a contact has ended since the stream start / the last gap (the floor is the real one)
S_C_PART = 35  # current contact: 0 initial contact observed, 1 not (started unarmed), 2 check the floor at its end
S_BIC = 36  # baseline F (raw N) when the current contact started
S_PARTIAL = 37  # contacts whose initial contact was not observed (not steps)
S_FRAW = 38  # previous frame's F, Mx, My before the re-zero (two-frame floor)
S_MXRAW = 39
S_MYRAW = 40
S_SAT_T = 41  # time of the first frame with a saturated sample in the current contact (inf: none)
N_STATE = 42

# --- event columns (float64) --------------------------------------------------------------------
E_T_IC = 0
E_T_TO = 1
E_SI = 2  # strike index (CoP x at initial contact), NaN without CoP
E_SI_Y = 3  # CoP y at initial contact
E_IMPACT = 4  # 1 = impact peak present
E_IMPACT_BW = 5
E_VALR = 6  # BW/s, NaN if not measurable
E_VILR = 7
E_LR_IMPACT = 8  # 1 = loading rate from the impact peak, 0 = fallback
E_PEAK = 9  # BW
E_IMPULSE = 10  # BW·s
E_COP_PATH = 11  # insole-normalised units
E_COP_ML = 12  # fraction of insole width
E_NSAMP = 13  # stance samples
E_KIND = 14  # K_STEP, or why the contact is not a step
E_VALR_SAMPLED = 15  # VALR by the sampled 20–80 % rule alone (before the rise correction), BW/s
E_VILR_SAMPLED = 16
E_LR_C = 17  # the VALR correction factor applied (1 = none)
E_LR_MODEL = 18  # LR_SAMPLED, LR_RISE or LR_RISE_PRIOR
E_LR_T1 = 19  # fitted rise time of the impact transient (s), NaN without the correction
N_EVENT_COLS = 20
K_STEP = 0.0
K_SHORT = 1.0
K_LONG = 2.0
K_WEAK = 3.0
K_PARTIAL = 4.0
LR_SAMPLED = 0.0  # loading rate from the samples alone (≥ the model's rate limit, fallback, or the model rejected)
LR_RISE = 1.0  # corrected with a rise fitted to the samples on it
LR_RISE_PRIOR = 2.0  # corrected with the prior rise time (no sample on the rise)

BUF_ROWS = 4  # t, Fz (BW), CoP x, CoP y

# --- per-sensor arrays ------------------------------------------------------------------------------
W_F = 0  # weights[4, S] (float64, read-only): F = Σ W_F·v − C0 (lookup mode: 1)
W_X = 1  # Mx = Σ W_X·v − C1 (lookup mode: the sensor's x)
W_Y = 2  # My = Σ W_Y·v − C2 (lookup mode: the sensor's y)
W_OFF = 3  # the sensor's raw zero (a NaN/±inf sample reads as this)
N_WEIGHTS = 4
SEN_NAN = 0  # sensors[4, S] (float64, updated in place): NaN/±inf samples per sensor
SEN_SAT = 1  # saturated samples per sensor
SEN_FIRST = 2  # first valid value per sensor (NaN until seen)
SEN_SILENT = 3  # the silent sensors' indices: the first st[S_NSILENT] entries
N_SENSOR_ROWS = 4


def new_state(n_sensors: int) -> np.ndarray:
    """A fresh stream state (start in swing, no previous frame, every sensor possibly silent)."""
    st = np.zeros(N_STATE, dtype=np.float64)
    st[S_NSILENT] = n_sensors
    st[S_SAT_T] = np.inf
    return st


def new_sensor_state(n_sensors: int) -> np.ndarray:
    """Fresh per-sensor state: no counts, no first values, every sensor on the silent list."""
    sen = np.zeros((N_SENSOR_ROWS, n_sensors), dtype=np.float64)
    sen[SEN_FIRST] = np.nan
    sen[SEN_SILENT] = np.arange(n_sensors)
    return sen
