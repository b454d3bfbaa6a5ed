"""The plain Python/numpy twin of ``steps.py``: same definitions, written for reading, not speed.

It works on a whole stream at once (no chunks, no carried state) and calibrates with the profile's
formulas directly (the FSR power law instead of the kernel's lookup table, scipy's ``lfilter``
instead of the hand-written biquad), so that tests comparing it with the kernel check the kernel's
streaming bookkeeping, its fused arithmetic and its lookup table against independent code.
``pure_python=True`` does the per-frame sensor arithmetic in Python loops too (the benchmark's
"pure Python" baseline). Returns the kernel's event-row layout plus the quality counters.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from scipy.signal import lfilter

from edge_agent.analysis.kernels import layout as K
from edge_agent.profiles import FsrDividerCalibration, HardwareProfile


def _fsr_force(cal: FsrDividerCalibration, counts: float) -> float:
    c = min(max(math.floor(counts + 0.5), 0), cal.adc_max) if counts > 0 else 0
    if c <= cal.threshold_counts:
        return 0.0
    if c >= cal.adc_max:
        c = cal.adc_max - 1
        if c <= cal.threshold_counts:
            return 0.0
    v = c / cal.adc_max * cal.vcc
    g_us = v / (cal.r_measure_ohm * (cal.vcc - v)) * 1e6
    return cal.k * g_us**cal.n


def _reduce(profile: HardwareProfile, raw: np.ndarray, raw_max: float, pure_python: bool):
    """Per-frame total force and moments (N, N·x, N·y), per-sensor counters and a per-frame "some sample
    saturated" flag.

    Silent sensors are those whose valid (finite) samples never take two distinct values.
    """
    n, s = raw.shape
    x = profile.sensor_x()
    y = profile.sensor_y()
    cal: Any = profile.calibration  # LinearCalibration or FsrDividerCalibration
    fsr = isinstance(cal, FsrDividerCalibration)
    if pure_python:
        gain = [1.0] * s if fsr else list(profile.linear_gain())
        off = 0.0 if fsr else cal.offset
        xs, ys = list(x), list(y)
        F = [0.0] * n
        MX = [0.0] * n
        MY = [0.0] * n
        nan_cnt = [0] * s
        sat_cnt = [0] * s
        rmin = [math.inf] * s
        rmax = [-math.inf] * s
        sat_frame = [False] * n
        rows = raw.tolist()
        for i in range(n):
            row = rows[i]
            f = mx = my = 0.0
            for j in range(s):
                v = row[j]
                if not math.isfinite(v):
                    nan_cnt[j] += 1
                    v = off
                else:
                    if v >= raw_max:
                        sat_cnt[j] += 1
                        sat_frame[i] = True
                    rmin[j] = min(rmin[j], v)
                    rmax[j] = max(rmax[j], v)
                fj = _fsr_force(cal, v) if fsr else (v - off) * gain[j]
                f += fj
                mx += fj * xs[j]
                my += fj * ys[j]
            F[i], MX[i], MY[i] = f, mx, my
        return (
            np.array(F),
            np.array(MX),
            np.array(MY),
            np.array(nan_cnt),
            np.array(sat_cnt),
            np.array(rmin),
            np.array(rmax),
            np.array(sat_frame, dtype=bool),
        )
    v = raw.astype(np.float64)
    isn = ~np.isfinite(v)
    sat_mask = ~isn & (v >= raw_max)
    sat = sat_mask.sum(axis=0)
    rmin = np.where(isn, math.inf, v).min(axis=0, initial=math.inf)
    rmax = np.where(isn, -math.inf, v).max(axis=0, initial=-math.inf)
    if fsr:
        v = np.where(isn, 0.0, v)
        forces = np.vectorize(lambda c: _fsr_force(cal, c))(v) if v.size else v
    else:
        v = np.where(isn, cal.offset, v)
        forces = (v - cal.offset) * profile.linear_gain()
    F = forces.sum(axis=1)
    return F, forces @ x, forces @ y, isn.sum(axis=0), sat, rmin, rmax, sat_mask.any(axis=1)


def _crossing(t0: float, v0: float, t1: float, v1: float, level: float) -> float:
    if v1 == v0:
        return t1
    a = min(max((level - v0) / (v1 - v0), 0.0), 1.0)
    return t0 + a * (t1 - t0)


def _rise_rates(bt: np.ndarray, bf: np.ndarray, peak: float, kmax: int) -> tuple[float, float]:
    """VALR/VILR over the 20–80 % rise to ``peak`` within samples 0..kmax (see steps._loading_rate)."""
    if not peak > 0:
        return math.nan, math.nan
    l20, l80 = 0.2 * peak, 0.8 * peak
    seg = bf[: kmax + 1]
    above20 = np.flatnonzero(seg >= l20)
    if above20.size == 0:
        return math.nan, math.nan
    k20 = int(above20[0])
    above80 = np.flatnonzero(seg[k20:] >= l80)
    if above80.size == 0:
        return math.nan, math.nan
    k80 = k20 + int(above80[0])
    t20 = bt[0] if k20 == 0 else _crossing(bt[k20 - 1], bf[k20 - 1], bt[k20], bf[k20], l20)
    t80 = bt[0] if k80 == 0 else _crossing(bt[k80 - 1], bf[k80 - 1], bt[k80], bf[k80], l80)
    if not t80 > t20:
        return math.nan, math.nan
    valr = (l80 - l20) / (t80 - t20)
    ks = np.arange(max(k20 - 1, 0), k80)
    dts = bt[ks + 1] - bt[ks]
    ok = (dts > 0) & (bt[ks] < t80) & (bt[ks + 1] > t20)
    vilr = float(np.max((bf[ks + 1] - bf[ks])[ok] / dts[ok])) if ok.any() else valr
    return valr, vilr


def _template(t: np.ndarray | float, t0: float, t1: float, peak: float, fall: float) -> np.ndarray:
    """The impact template: ``peak`` · raised-cosine rise over t1 from t0, raised-cosine fall over fall·t1."""
    x = (np.asarray(t, dtype=np.float64) - t0) / t1
    rise = 0.5 * (1.0 - np.cos(np.pi * np.clip(x, 0.0, 1.0)))
    down = 0.5 * (1.0 - np.cos(np.pi * np.clip(1.0 - (x - 1.0) / fall, 0.0, 1.0)))
    return peak * np.where(x <= 1.0, rise, down)


def _u_of(level: float, peak: float) -> float:
    """Where the raised-cosine rise to ``peak`` reaches ``level`` (fraction of the rise time)."""
    return math.acos(min(1.0, max(-1.0, 1.0 - 2.0 * level / peak))) / math.pi


def _fit_rise(bt, bf, ip, t_ic, off, fall, t1_prior):
    """(t0, t1, peak, model): weighted least squares of t = t0 + t1·u over the IC anchor and the rising
    samples, peak re-solved from the peak sample, three rounds (see steps._fit_rise); model 0 = rejected."""
    fp, tp = bf[ip], bt[ip]
    peak, t0, t1, model = fp, t_ic, tp - t_ic, 0
    for _ in range(3):
        us = [_u_of(off, peak)]
        ts = [t_ic]
        ws = [1.0]
        for j in range(1, ip):
            if off < bf[j] < 0.97 * peak:
                u = _u_of(bf[j], peak)
                us.append(u)
                ts.append(bt[j])
                ws.append(math.sin(math.pi * u) ** 2)
        if len(us) < 2:
            t1 = t1_prior
            t0 = t_ic - t1 * _u_of(off, peak)
            model = int(K.LR_RISE_PRIOR)
        else:
            u_, t_, w_ = np.array(us), np.array(ts), np.array(ws)
            sw, su, st, suu, sut = (
                w_.sum(),
                (w_ * u_).sum(),
                (w_ * t_).sum(),
                (w_ * u_ * u_).sum(),
                (w_ * u_ * t_).sum(),
            )
            den = sw * suu - su * su
            if not den > 0:
                return t0, t1, peak, 0
            t1n = (sw * sut - su * st) / den
            if not 0.002 < t1n < 0.2:
                return t0, t1, peak, 0
            t1, t0, model = t1n, (st - t1n * su) / sw, int(K.LR_RISE)
        b = float(_template(tp, t0, t1, 1.0, fall))
        if b < 0.3:
            return t0, t1, peak, 0
        peak = fp / b
    return t0, t1, peak, model


def _rise_correction(bt, ip, t0, t1, peak, fall):
    """(C_VALR, C_VILR): the template's continuous rates / the sampled rule on its values at the samples."""
    g = np.where(bt[: ip + 1] > t0, _template(bt[: ip + 1], t0, t1, peak, fall), 0.0)
    valr_s, vilr_s = _rise_rates(bt[: ip + 1], g, float(g[ip]), ip)
    if not valr_s > 0:
        return math.nan, math.nan
    k_rc = 0.6 / (1.0 - 2.0 * math.acos(0.6) / math.pi)
    c = k_rc * peak / t1 / valr_s
    return c, (0.5 * math.pi * peak / t1) / vilr_s if vilr_s > 0 else c


def relative_edges(bt, bf, ipk, t_ic, t_to, off, to_frac, ic_frac):
    """Edges at a fraction of the step's own peak (see steps._relative_edges): (t_ic, t_to, lvl_ic, lvl_to)."""
    pk, last = bf[ipk], len(bt) - 2
    lvl_ic, lvl_to = (off if bf[0] < off else bf[0]), off
    if to_frac > 0:
        lvl = max(off, to_frac * pk)
        above = [k for k in range(ipk, last + 1) if bf[k] >= lvl]
        k = above[-1] if above else ipk
        if bf[k] > bf[k + 1]:
            te = bt[k] + (bf[k] - lvl) * (bt[k + 1] - bt[k]) / (bf[k] - bf[k + 1])
            if te < t_to:
                t_to, lvl_to = te, lvl
    if ic_frac > 0:
        lvl = max(off, ic_frac * pk)
        k = next((k for k in range(1, ipk) if bf[k] >= lvl), ipk)
        if bf[k] > bf[k - 1]:
            te = bt[k - 1] + (lvl - bf[k - 1]) * (bt[k] - bt[k - 1]) / (bf[k] - bf[k - 1])
            if te > t_ic:
                t_ic, lvl_ic = te, lvl
    return t_ic, t_to, lvl_ic, lvl_to


def measure_step(bt, bf, bx, by, t_ic, t_to, p, lvl_ic=None, lvl_to=None, t_ic_off=None, sat_t=math.inf) -> np.ndarray:
    """One event row from a stance slice (index 0: last swing sample, -1: first sample after toe-off).

    The contact runs from ``t_ic`` (force ``lvl_ic``) to ``t_to`` (force ``lvl_to``); ``t_ic_off`` is the
    off-level initial contact (the rise template's anchor); ``sat_t`` the first saturated frame's time."""
    ev = np.full(K.N_EVENT_COLS, math.nan)
    off = p[K.P_OFF]
    lvl_ic = (off if bf[0] < off else bf[0]) if lvl_ic is None else lvl_ic
    lvl_to = off if lvl_to is None else lvl_to
    t_ic_off = t_ic if t_ic_off is None else t_ic_off
    contact = t_to - t_ic
    last = len(bt) - 2
    ev[K.E_T_IC], ev[K.E_T_TO], ev[K.E_NSAMP], ev[K.E_KIND] = t_ic, t_to, last, K.K_STEP
    stance = bf[1 : last + 1]
    ipk = 1 + int(np.argmax(stance))
    ev[K.E_PEAK] = bf[ipk]
    inside = [k for k in range(1, last + 1) if t_ic <= bt[k] <= t_to] or [1]
    k0, k1 = inside[0], inside[-1]
    tt = np.concatenate(([t_ic], bt[k0 : k1 + 1], [t_to]))
    ff = np.concatenate(([lvl_ic], bf[k0 : k1 + 1], [lvl_to]))
    ev[K.E_IMPULSE] = float(np.sum(0.5 * (ff[1:] + ff[:-1]) * np.diff(tt)))
    iimp = -1
    for k in range(1, ipk):
        if bt[k] > t_ic + p[K.P_IMPACT_FRAC] * contact:
            break
        if (
            bf[k] >= bf[k - 1]
            and bf[k] > bf[k + 1]
            and bf[k] >= p[K.P_IMPACT_MIN_BW]
            and bf[k] - bf[k : ipk + 1].min() >= p[K.P_PROM_BW]
        ):
            iimp = k
            break
    ev[K.E_LR_C], ev[K.E_LR_MODEL] = 1.0, K.LR_SAMPLED
    if iimp > 0:
        ev[K.E_IMPACT], ev[K.E_IMPACT_BW], ev[K.E_LR_IMPACT] = 1.0, bf[iimp], 1.0
        valr, vilr = _rise_rates(bt, bf, bf[iimp], iimp)
        ev[K.E_VALR_SAMPLED], ev[K.E_VILR_SAMPLED] = valr, vilr
        if p[K.P_LR_MODEL] > 0 and not math.isnan(valr) and sat_t > bt[iimp]:
            fall = p[K.P_LR_FALL_R]
            t0, t1, peak, model = _fit_rise(bt, bf, iimp, t_ic_off, off, fall, p[K.P_LR_T1_PRIOR])
            if model:
                c, cv = _rise_correction(bt, iimp, t0, t1, peak, fall)
                if not math.isnan(c):
                    lo, hi = p[K.P_LR_CMIN], p[K.P_LR_CMAX]
                    c = min(max(c, lo), hi)
                    valr = valr * c
                    vilr = max(vilr * min(max(cv, lo), hi), valr)
                    ev[K.E_LR_C], ev[K.E_LR_MODEL], ev[K.E_LR_T1] = c, model, t1
        ev[K.E_VALR], ev[K.E_VILR] = valr, vilr
    else:
        ev[K.E_IMPACT], ev[K.E_LR_IMPACT] = 0.0, 0.0
        tq = t_ic + p[K.P_FALLBACK_FRAC] * contact
        kq = 1
        while kq < last and bt[kq] < tq:
            kq += 1
        ev[K.E_VALR], ev[K.E_VILR] = _rise_rates(bt, bf, float(np.interp(tq, bt, bf)), kq)
        ev[K.E_VALR_SAMPLED], ev[K.E_VILR_SAMPLED] = ev[K.E_VALR], ev[K.E_VILR]
    if p[K.P_HAS_COP] > 0:
        idx = []
        for k in range(1, last + 1):
            if k > 1 and bt[k] - bt[1] > p[K.P_SI_S]:
                break
            idx.append(k)
            if bf[k] >= p[K.P_SI_BW]:
                break
        idx = [k for k in idx if bf[k] > 0]
        w = bf[idx]
        if idx:
            ev[K.E_SI] = min(max(float(np.sum(w * bx[idx]) / w.sum()), 0.0), 1.0)
            ev[K.E_SI_Y] = min(max(float(np.sum(w * by[idx]) / w.sum()), 0.0), 1.0)
        sel = np.flatnonzero(stance >= p[K.P_COP_MIN_BW]) + 1
        if sel.size:
            ev[K.E_COP_PATH] = float(np.sum(np.hypot(np.diff(bx[sel]), np.diff(by[sel]))))
            ev[K.E_COP_ML] = float(by[sel].max() - by[sel].min())
    return ev


def analyze_reference(
    t: np.ndarray,
    raw: np.ndarray,
    profile: HardwareProfile,
    p: np.ndarray,
    pure_python: bool = False,
    flush: bool = True,
) -> tuple[np.ndarray, dict]:
    """Events (kernel row layout) and quality counters for a whole stream of one foot."""
    t = np.asarray(t, dtype=np.float64)
    raw = np.asarray(raw, dtype=np.float32).reshape(len(t), profile.n_sensors)
    q: dict[str, Any] = dict(
        frames=0, late=0, badtime=0, dropped=0, gaps=0, gap_cut=0, short=0, long=0, weak=0, partial=0, steps=0
    )
    # 1. which frames are kept (time must be finite and increasing)
    keep = np.zeros(len(t), dtype=bool)
    last = -math.inf
    have = False
    for i, ti in enumerate(t.tolist()):
        if not math.isfinite(ti):
            q["badtime"] += 1
        elif have and ti <= last:
            q["late"] += 1
        else:
            keep[i], last, have = True, ti, True
    t = t[keep]
    n = len(t)
    q["frames"] = n
    raw_max = p[K.P_RAW_MAX]
    F, MX, MY, nan_cnt, sat_cnt, rmin, rmax, sat_frame = _reduce(profile, raw[keep], raw_max, pure_python)
    gap = np.zeros(n, dtype=bool)
    gap[1:] = np.diff(t) > p[K.P_GAP]
    # 2. optional low-pass, restarted (at steady state) after each gap
    if p[K.P_LOWPASS] > 0 and n:
        b = [p[K.P_B0], p[K.P_B1], p[K.P_B2]]
        a = [1.0, p[K.P_A1], p[K.P_A2]]
        starts = [0, *np.flatnonzero(gap).tolist(), n]
        for sig in (F, MX, MY):
            for s0, s1 in itertools.pairwise(starts):
                zi = np.array([(b[1] - a[1] + b[2] - a[2]), (b[2] - a[2])]) * sig[s0]
                sig[s0:s1] = lfilter(b, a, sig[s0:s1], zi=zi)[0]
    # 3. state machine, one frame at a time
    bw, on, off = p[K.P_BW], p[K.P_ON], p[K.P_OFF]
    events: list[np.ndarray] = []
    mode = "swing"
    bF = bMx = bMy = 0.0
    tt: list[float] = []
    ff: list[float] = []
    xx: list[float] = []
    yy: list[float] = []
    t_on = t_off = 0.0
    i_off = 0
    long_flag = False
    prev = (0.0, 0.0, math.nan, math.nan)
    # initial contact observed? (see steps._is_partial)
    armed = verified = False
    cpart = 0
    bic = 0.0
    raw_prev = (0.0, 0.0, 0.0)  # previous frame's F, Mx, My before the re-zero
    sat_t = math.inf  # first saturated frame of the current contact

    def finish() -> None:
        nonlocal t_on, t_off
        if cpart == 1 or (cpart == 2 and (bic - bF) / bw >= on):
            q["partial"] += 1
            return
        lvl_ic, lvl_to = (off if ff[0] < off else ff[0]), off
        if not long_flag and i_off + 1 >= 4:
            # edges from the first/last stance chords (see steps._refine_edges)
            b_t, b_f, last = tt, ff, i_off - 1
            if b_f[0] < off <= b_f[1] and b_f[2] > b_f[1]:
                te = b_t[1] - (b_f[1] - off) * (b_t[2] - b_t[1]) / (b_f[2] - b_f[1])
                t_on = min(max(te, b_t[0]), b_t[1])
            if b_f[i_off] < off <= b_f[last] and b_f[last - 1] > b_f[last]:
                te = b_t[last] + (b_f[last] - off) * (b_t[last] - b_t[last - 1]) / (b_f[last - 1] - b_f[last])
                t_off = min(max(te, b_t[last]), b_t[i_off])
        t_ic_off = t_on
        if not long_flag and i_off + 1 >= 3 and (p[K.P_TO_FRAC] > 0 or p[K.P_IC_FRAC] > 0):
            b_f = np.array(ff[: i_off + 1])
            ipk = 1 + int(np.argmax(b_f[1:i_off]))
            t_on, t_off, lvl_ic, lvl_to = relative_edges(
                np.array(tt[: i_off + 1]), b_f, ipk, t_on, t_off, off, p[K.P_TO_FRAC], p[K.P_IC_FRAC]
            )
        dur = t_off - t_on
        if long_flag or dur > p[K.P_MAX_CONTACT]:
            q["long"] += 1
        elif dur < p[K.P_MIN_CONTACT] or i_off + 1 < 3:
            q["short"] += 1
        else:
            sl = slice(0, i_off + 1)
            ev = measure_step(
                np.array(tt[sl]), np.array(ff[sl]), np.array(xx[sl]), np.array(yy[sl]), t_on, t_off, p,
                lvl_ic, lvl_to, t_ic_off, sat_t,
            )  # fmt: skip
            if ev[K.E_PEAK] < p[K.P_MIN_PEAK]:
                q["weak"] += 1
            else:
                events.append(ev)
                q["steps"] += 1

    for i in range(n):
        ti, f, mx, my = t[i], F[i], MX[i], MY[i]
        if i > 0 and ti - t[i - 1] > 1.5 * p[K.P_DT]:
            q["dropped"] += math.floor((ti - t[i - 1]) / p[K.P_DT] + 0.5) - 1
        if gap[i]:
            q["gaps"] += 1
            if mode == "pending":
                finish()
            elif mode == "contact":
                q["gap_cut"] += 1
            mode = "swing"
            armed = verified = False
        if i == 0:
            bF, bMx, bMy = f, mx, my
            raw_prev = (f, mx, my)
        fzn = f - bF
        fz = fzn / bw
        cx, cy = ((mx - bMx) / fzn, (my - bMy) / fzn) if fzn > 0 else (math.nan, math.nan)
        if mode == "swing":
            if fz >= on and i > 0 and not gap[i]:
                t_on = _crossing(prev[0], prev[1], ti, fz, off) if prev[1] < off else prev[0]
                tt, ff, xx, yy = [prev[0], ti], [prev[1], fz], [prev[2], cx], [prev[3], cy]
                long_flag = False
                mode = "contact"
                cpart = 1 if not armed else (0 if verified else 2)
                bic = bF
                sat_t = math.inf
            elif fz < off:
                armed = True
        else:
            tt.append(ti)
            ff.append(fz)
            xx.append(cx)
            yy.append(cy)
            if mode == "contact":
                if ti - t_on > p[K.P_MAX_CONTACT]:
                    long_flag = True
                if fz < off:
                    t_off = _crossing(prev[0], prev[1], ti, fz, off)
                    i_off = len(tt) - 1
                    mode = "pending"
            elif fz >= on and prev[1] >= on:  # a one-frame spike does not re-open the contact
                mode = "contact"
            elif ti - t_off >= p[K.P_MIN_SWING]:
                finish()
                mode = "swing"
                verified = True
        if sat_frame[i] and mode != "swing":
            sat_t = min(sat_t, ti)
        if mode != "contact":
            # floor: down to the higher of this and the previous frame when both are below it, up
            # towards the lower when both are above it (and below the on level): one-frame spikes move nothing
            g, h = (raw_prev, (f, mx, my)) if raw_prev[0] >= f else ((f, mx, my), raw_prev)
            if g[0] < bF:
                bF, bMx, bMy = g
            elif h[0] > bF and fz < on:
                bF += p[K.P_ALPHA] * (h[0] - bF)
                bMx += p[K.P_ALPHA] * (h[1] - bMx)
                bMy += p[K.P_ALPHA] * (h[2] - bMy)
        raw_prev = (f, mx, my)
        prev = (ti, fz, cx, cy)
    if flush:
        if mode == "pending":
            finish()
        elif mode == "contact":
            q["gap_cut"] += 1
    q["nan_samples"] = int(np.sum(nan_cnt))
    q["saturated_samples"] = int(np.sum(sat_cnt))
    q["saturated_sensors"] = [int(i) for i in np.flatnonzero(np.asarray(sat_cnt))]
    q["silent_sensors"] = [int(i) for i in np.flatnonzero(~(np.asarray(rmax) > np.asarray(rmin)))] if n else []
    ev = np.array(events) if events else np.zeros((0, K.N_EVENT_COLS))
    return ev, q
