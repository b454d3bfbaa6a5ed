"""Risk engine: turns stored summaries into few, timely, actionable alerts (docs/design.md §5, docs/alerts.md).

Rules (kinds from ``edge_agent.contract.AlertKind``):

- ``loading_spike`` (in-run, per window): window VALR above the runner's own window-level baseline by
  ``spike_pct`` % AND ``spike_z`` SDs → alert on the very window that crosses (near real time). The baseline
  holds only windows of the same device and loading-rate basis (``edge_agent.contract.loading_rate_basis``:
  the same estimator, sample rate and insole), never a mix of corrected and uncorrected numbers.
- ``valr_absolute`` (per run): the run's sampling-corrected VALR (contract v2: the bias-aware mean with its
  90 % interval) above ``valr_absolute_bw_s`` (66 BW/s, Davis et al. 2016, BJSM 50:887) — only when the
  interval's lower bound is above it; when only the mean is, the engine says the reading is uncertain at
  that sample rate and does not alert. Informational only — Napier et al. 2018 found no link. A schema-1
  run (no interval, uncorrected) is judged on its mean.
- ``strike_transition`` (per run): forefoot share rising faster than ``transition_pp_per_week`` percentage
  points per week (least-squares slope over 21 days) — Ridge et al. 2013 (MSSE 45:1363): 10/19 runners
  developed bone-marrow oedema even on a gradual 10-week transition.
- ``fatigue_drift`` (in-run): cadence falling and contact time or VALR rising against the run's own start
  (windows of one loading-rate basis only).
- ``asymmetry`` (per run): |SI%| beyond the runner's own baseline in ``asymmetry_runs`` runs in a row
  (10 % is a convention, not evidence — Malisoux 2024 — so we compare with the runner, not a cut-off).
- ``training_load`` (per run): EWMA ACWR ≥ ``acwr_threshold`` (Gabbett 2016 heuristic; Williams 2017 EWMA;
  criticised by Impellizzeri 2020 → low confidence, context only).

One event → one alert: in-run rules alert at most once per (rule, run) — checked against the alerts table,
so a restart or re-delivered windows do not re-alert; run-level rules have hysteresis (disarmed after an
alert until the measure is back below a re-arm level; the armed flag is persisted in ``risk_state``); every
rule also has a per-runner cooldown measured on the device clock of the summaries. No baseline → no alert
and ``risk_level`` says ``unknown``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from edge_agent.contract import Alert, RunSummary, WindowSummary, loading_rate_basis
from plugin.config import RiskConfig
from plugin.store import Store, window_measures
from plugin.trends import DAY, baseline, latest_end, training_load

log = logging.getLogger(__name__)

RiskLevel = Literal["low", "elevated", "high", "unknown"]

CADENCE_ADVICE = (
    "What to try: shorten your stride and raise your cadence by 5–10 % ({lo:.0f}–{hi:.0f} steps/min for you). "
    "Runners who did so lowered knee load and loading rate (Heiderscheit 2011; Willy 2016: +8.6 % cadence, "
    "VALR −19 %)."
)
INSOLE_CAVEAT = (
    "Insoles read loading rate less exactly than force plates (Peebles 2018): these numbers are compared "
    "with your own baseline, not with other runners."
)


_WINDOW_KEYS = ("cadence_spm", "contact_ms", "valr_mean", "lr_basis")


@dataclass
class _RunState:
    run_id: str
    windows: dict[int, dict[str, Any]] = field(default_factory=dict)
    spike_active: bool = False
    baseline: dict[str, Any] | None = None
    baseline_basis: str | None = None


def _who(msg: WindowSummary | RunSummary) -> dict[str, str | None]:
    """Filters naming the runner (or, without a runner name, the device)."""
    return {"runner": msg.runner} if msg.runner else {"runner": None, "device_id": msg.device_id}


def _fmt_pct(x: float) -> str:
    return f"{x:+.0f} %"


def _valr_text(valr: float, msg: WindowSummary | RunSummary) -> str:
    """ "≈ 180 BW/s (150–210)" with the message's interval (contract v2), else "180 BW/s"."""
    est = msg.valr
    if est is None:
        return f"{valr:.0f} BW/s"
    return f"≈ {valr:.0f} BW/s ({est.lo:.0f}–{est.hi:.0f})"


class RiskEngine:
    """Evaluates the rules on each new summary; persists and returns the alerts it raises."""

    def __init__(self, store: Store, config: RiskConfig | None = None) -> None:
        self.store = store
        self.config = config or RiskConfig()
        self._runs: dict[str, _RunState] = {}
        self.last_status: dict[str, str] = {}

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _cooling(self, rule: str, runner: str | None, now: float) -> bool:
        last = self.store.last_alert_time(rule, runner)
        return last is not None and now - last < self.config.cooldown_s(rule)

    def _armed(self, rule: str, key: str) -> bool:
        state = self.store.get_state(f"{rule}:{key}")
        return True if state is None else bool(state.get("armed", True))

    def _set_armed(self, rule: str, key: str, armed: bool, at: float) -> None:
        if self._armed(rule, key) != armed:
            self.store.set_state(f"{rule}:{key}", {"armed": armed, "at": at})

    def _emit(
        self,
        msg: WindowSummary | RunSummary,
        rule: str,
        severity: str,
        confidence: float,
        title: str,
        message: str,
        evidence: dict[str, Any],
        at: float,
    ) -> Alert:
        alert = Alert(
            alert_id=uuid.uuid4().hex,
            rule=rule,  # type: ignore[arg-type]
            severity=severity,  # type: ignore[arg-type]
            confidence=round(max(0.0, min(1.0, confidence)), 2),
            title=title[:200],
            message=message[:4000],
            evidence=evidence,
            device_id=msg.device_id,
            runner=msg.runner,
            run_id=msg.run_id,
            created_at=at,
        )
        self.store.insert_alert(alert)
        log.info("alert %s (%s) for runner %r run %s", rule, severity, msg.runner, msg.run_id)
        return alert

    def _state(self, msg: WindowSummary) -> _RunState:
        st = self._runs.get(msg.run_id)
        if st is None:
            st = _RunState(msg.run_id)
            self._runs[msg.run_id] = st
            if len(self._runs) > 64:  # forget the oldest runs (ended long ago)
                for old in list(self._runs)[:-32]:
                    del self._runs[old]
        # The run's windows up to this one as stored — by this process or another worker sharing the database —
        # so the rules see the same run whatever order or batches the windows arrived in.
        st.windows = {
            w["window_index"]: {k: w[k] for k in _WINDOW_KEYS}
            for w in self.store.run_window_measures(msg.run_id)
            if w["window_index"] <= msg.window_index
        }
        return st

    # -- in-run rules -----------------------------------------------------------------------------------------
    def on_summary(self, msg: WindowSummary) -> list[Alert]:
        """Evaluate one newly stored window (call in arrival order; duplicates are harmless).

        Several dashboard workers may store windows of one runner at once: the rules of one runner run under a
        lock every worker of the database shares, so a cooldown or "once per run" check and the alert it allows
        are one step (never two alerts for one event)."""
        if msg.activity != "running":
            return []
        with self.store.exclusive(f"risk:{msg.runner or 'device:' + msg.device_id}"):
            return self._on_summary(msg)

    def _on_summary(self, msg: WindowSummary) -> list[Alert]:
        st = self._state(msg)
        m = window_measures(msg)
        st.windows[msg.window_index] = {k: m[k] for k in _WINDOW_KEYS}
        alerts: list[Alert] = []
        spike = self._spike(msg, st, m)
        if spike:
            alerts.append(spike)
        drift = self._fatigue(msg, st)
        if drift:
            alerts.append(drift)
        return alerts

    def _window_baseline(self, msg: WindowSummary, st: _RunState, basis: str) -> dict[str, Any]:
        if st.baseline is None or st.baseline_basis != basis:
            who = _who(msg)
            t0 = min(msg.t_start, self._run_start(msg) or msg.t_start)
            st.baseline = self.store.window_stats(
                runner=who["runner"], device_id=msg.device_id, since=t0 - self.config.baseline_days * DAY,
                until=t0, exclude_run=msg.run_id, min_steps=self.config.spike_min_steps, lr_basis=basis,
            )  # fmt: skip
            st.baseline_basis = basis
        return st.baseline

    def _run_start(self, msg: WindowSummary) -> float | None:
        row = self.store.run_row(msg.run_id)
        return None if row is None else float(row["started_at"])

    def _spike(self, msg: WindowSummary, st: _RunState, m: dict[str, Any]) -> Alert | None:
        c = self.config
        valr = m["valr_mean"]
        if valr is None or msg.steps < c.spike_min_steps:
            return None
        basis = m["lr_basis"]
        b = self._window_baseline(msg, st, basis)
        if b["runs"] < c.min_baseline_runs or b["mean"] is None or b["sd"] is None:
            self.last_status[msg.runner or msg.device_id] = (
                f"no baseline yet: {b['runs']} earlier run(s) in {c.baseline_days:g} days with this device and "
                f"loading-rate basis ({basis}), {c.min_baseline_runs} needed"
            )
            return None
        mean, sd = float(b["mean"]), float(b["sd"])
        rise_pct = 100.0 * (valr - mean) / mean
        z = (valr - mean) / sd if sd > 0 else float("inf")
        over = rise_pct >= c.spike_pct and z >= c.spike_z
        if st.spike_active:
            if rise_pct < c.spike_rearm_pct:
                st.spike_active = False  # hysteresis: back near baseline re-arms (cooldown still applies)
            return None
        if not over:
            return None
        st.spike_active = True
        now = msg.t_end
        if self.store.has_alert("loading_spike", msg.run_id) or self._cooling("loading_spike", msg.runner, now):
            return None
        low_conf = msg.quality.loading_rate_low_confidence
        confidence = min(0.95, 0.55 + 0.05 * (z - c.spike_z) + 0.1 * min(rise_pct / c.spike_pct - 1, 1))
        if low_conf:
            confidence -= 0.15
        cad = m["cadence_spm"]
        minute = (msg.t_start - (self._run_start(msg) or msg.t_start)) / 60.0
        advice = CADENCE_ADVICE.format(lo=cad * 1.05, hi=cad * 1.10) if cad else ""
        message = (
            f"About {minute:.0f} min into this run (window {msg.window_index}), your average vertical loading "
            f"rate was {_valr_text(valr, msg)} against your usual {mean:.0f} ± {sd:.0f} BW/s "
            f"({b['windows']} windows from {b['runs']} runs in the last {c.baseline_days:g} days, same insoles "
            f"and sample rate): "
            f"{_fmt_pct(rise_pct)}. Common causes: downhill running, fatigue, new shoes or a harder surface "
            f"— or a loose insole. {advice} If anything hurts, ease off. {INSOLE_CAVEAT}"
        )
        return self._emit(
            msg, "loading_spike", "critical" if rise_pct >= 2 * c.spike_pct else "warning", confidence,
            f"Loading-rate spike: {valr:.0f} BW/s ({_fmt_pct(rise_pct)} vs your baseline)", message,
            {
                "window_index": msg.window_index, "valr_bw_s": valr, "baseline_mean": mean, "baseline_sd": sd,
                "baseline_windows": b["windows"], "baseline_runs": b["runs"], "rise_pct": rise_pct, "z": z,
                "steps": msg.steps, "cadence_spm": cad, "loading_rate_low_confidence": low_conf,
                "threshold_pct": c.spike_pct, "threshold_z": c.spike_z, "lr_basis": basis,
                "valr_interval_bw_s": [msg.valr.lo, msg.valr.hi] if msg.valr is not None else None,
            },
            now,
        )  # fmt: skip

    def _fatigue(self, msg: WindowSummary, st: _RunState) -> Alert | None:
        c = self.config
        k = c.fatigue_windows
        idx = sorted(st.windows)
        if len(idx) < 1 + 2 * k or msg.window_index != idx[-1]:
            return None
        ref_w = [st.windows[i] for i in idx[1 : 1 + k]]  # skip window 0 (warm-up / run detection)
        cur_w = [st.windows[i] for i in idx[-k:]]
        if len({w["lr_basis"] for w in ref_w + cur_w}) != 1:  # like with like: one device, rate and estimator
            return None

        def mean(ws: list[dict[str, Any]], key: str) -> float | None:
            vals = [w[key] for w in ws if w[key] is not None]
            return sum(vals) / len(vals) if len(vals) == len(ws) else None  # type: ignore[arg-type]

        vals = {key: (mean(ref_w, key), mean(cur_w, key)) for key in ("cadence_spm", "contact_ms", "valr_mean")}
        if any(a is None or b is None or a == 0 for a, b in vals.values()):
            return None
        change = {key: 100.0 * (b - a) / a for key, (a, b) in vals.items()}  # type: ignore[operator]
        cad_drop = -change["cadence_spm"]
        contact_up = change["contact_ms"] >= c.fatigue_contact_rise_pct
        valr_up = change["valr_mean"] >= c.fatigue_valr_rise_pct
        if cad_drop < c.fatigue_cadence_drop_pct or not (contact_up or valr_up):
            return None
        now = msg.t_end
        if self.store.has_alert("fatigue_drift", msg.run_id) or self._cooling("fatigue_drift", msg.runner, now):
            return None
        ref_cad = vals["cadence_spm"][0] or 0.0
        parts = [f"cadence {vals['cadence_spm'][0]:.0f} → {vals['cadence_spm'][1]:.0f} steps/min "
                 f"({_fmt_pct(change['cadence_spm'])})"]  # fmt: skip
        if contact_up:
            parts.append(
                f"contact time {vals['contact_ms'][0]:.0f} → {vals['contact_ms'][1]:.0f} ms "
                f"({_fmt_pct(change['contact_ms'])})"
            )
        if valr_up:
            parts.append(
                f"loading rate {vals['valr_mean'][0]:.0f} → {vals['valr_mean'][1]:.0f} BW/s "
                f"({_fmt_pct(change['valr_mean'])})"
            )
        message = (
            f"Your form is drifting the way it does when tired: {'; '.join(parts)} — the last {k} windows "
            f"against the start of this run. What to try: shorten the run or walk a minute, then focus on quick, "
            f"light steps at your starting cadence (~{ref_cad:.0f} steps/min). Tired form with rising loading "
            f"is when retraining cues (+5–10 % cadence; Heiderscheit 2011, Willy 2016) matter most."
        )
        return self._emit(
            msg, "fatigue_drift", "warning", 0.55 + (0.15 if contact_up and valr_up else 0.0),
            f"Fatigue: cadence {_fmt_pct(change['cadence_spm'])}, form drifting", message,
            {
                "window_index": msg.window_index, "reference_windows": idx[1 : 1 + k], "current_windows": idx[-k:],
                "reference": {key: a for key, (a, _) in vals.items()},
                "current": {key: b for key, (_, b) in vals.items()}, "change_pct": change,
                "thresholds_pct": {"cadence_drop": c.fatigue_cadence_drop_pct,
                                   "contact_rise": c.fatigue_contact_rise_pct, "valr_rise": c.fatigue_valr_rise_pct},
            },
            now,
        )  # fmt: skip

    # -- run-level rules --------------------------------------------------------------------------------------
    def on_run(self, msg: RunSummary) -> list[Alert]:
        """Evaluate a newly stored RunSummary (the run's end), under the runner's lock (see :meth:`on_summary`)."""
        with self.store.exclusive(f"risk:{msg.runner or 'device:' + msg.device_id}"):
            return self._on_run(msg)

    def _on_run(self, msg: RunSummary) -> list[Alert]:
        self._runs.pop(msg.run_id, None)
        who = {k: v for k, v in _who(msg).items() if v}
        base = baseline(
            self.store, ref=msg.started_at, days=self.config.baseline_days, min_runs=self.config.min_baseline_runs,
            exclude_run=msg.run_id, **who,
        )  # fmt: skip
        key = msg.runner or f"device:{msg.device_id}"
        if base["status"] != "ok":
            self.last_status[key] = base["message"]
        else:
            self.last_status[key] = "ok"
        alerts = []
        for rule in (self._valr_absolute, self._transition, self._asymmetry, self._training_load):
            try:
                a = rule(msg, base, key, who)
            except Exception:  # one broken rule must not stop the others (or ingest)
                log.exception("risk rule %s failed on run %s", rule.__name__, msg.run_id)
                continue
            if a:
                alerts.append(a)
        return alerts

    def _run_valr(self, msg: RunSummary) -> float | None:
        return window_measures(msg)["valr_mean"]  # type: ignore[arg-type]

    def _valr_absolute(self, msg: RunSummary, base: dict[str, Any], key: str, who: dict[str, Any]) -> Alert | None:
        c = self.config
        est = msg.valr  # contract v2: corrected for the sample rate, with its 90 % interval
        valr = est.mean if est is not None else self._run_valr(msg)
        if not c.valr_absolute_enabled or valr is None:
            return None
        thr = c.valr_absolute_bw_s
        if valr < thr * 0.95:
            self._set_armed("valr_absolute", key, True, msg.ended_at)
            return None
        if valr < thr or not self._armed("valr_absolute", key):
            return None
        if est is not None and est.lo <= thr:
            # the mean is above the threshold but the interval reaches below it: say so, do not alert
            self.last_status[key] = (
                f"run {msg.run_id}: loading rate {_valr_text(valr, msg)} — above {thr:.0f} BW/s only within its "
                f"uncertainty at {est.sample_rate_hz:g} Hz, so no alert"
            )
            return None
        self._set_armed("valr_absolute", key, False, msg.ended_at)
        if self._cooling("valr_absolute", msg.runner, msg.ended_at):
            return None
        cad = msg.cadence_spm
        bm = (base.get("measures") or {}).get("valr_mean")
        base_txt = f" Your own 28-day baseline is {bm['mean']:.0f} BW/s." if bm else ""
        how_sure = (
            f" Even the low end of its 90 % interval at {est.sample_rate_hz:g} Hz is above the threshold."
            if est is not None
            else " (Measured by an older agent without the sample-rate correction: insoles under-read loading rate.)"
        )
        message = (
            f"This run's average vertical loading rate was {_valr_text(valr, msg)}, above {thr:.0f} BW/s."
            f"{how_sure}{base_txt} For information only: in one study women above 66 BW/s had more medically "
            f"diagnosed injuries (Davis 2016), another found no link (Napier 2018). "
            + (CADENCE_ADVICE.format(lo=cad * 1.05, hi=cad * 1.10) if cad else "")
        )
        return self._emit(
            msg, "valr_absolute", "info", 0.3 if est is None else 0.5,
            f"Loading rate {valr:.0f} BW/s (above {thr:.0f})", message,
            {"valr_bw_s": valr, "valr_interval_bw_s": [est.lo, est.hi] if est is not None else None,
             "sample_rate_hz": est.sample_rate_hz if est is not None else msg.quality.sample_rate_hz,
             "lr_basis": loading_rate_basis(msg), "threshold_bw_s": thr, "baseline": bm,
             "sources": ["Davis 2016 BJSM 50:887", "Napier 2018", "Peebles 2018"]},
            msg.ended_at,
        )  # fmt: skip

    def _transition(self, msg: RunSummary, base: dict[str, Any], key: str, who: dict[str, Any]) -> Alert | None:
        c = self.config
        runs = self.store.list_runs(**who, since=msg.started_at - 21 * DAY, until=msg.started_at + 1, limit=200)
        pts = []
        for r in runs:
            total = r["rearfoot"] + r["midfoot"] + r["forefoot"]
            if total > 0:
                pts.append(((r["started_at"] - msg.started_at) / DAY, 100.0 * r["forefoot"] / total))
        if len(pts) < 4 or max(p[0] for p in pts) - min(p[0] for p in pts) < c.transition_min_days:
            return None
        n = len(pts)
        mx = sum(p[0] for p in pts) / n
        my = sum(p[1] for p in pts) / n
        sxx = sum((p[0] - mx) ** 2 for p in pts)
        sxy = sum((p[0] - mx) * (p[1] - my) for p in pts)
        syy = sum((p[1] - my) ** 2 for p in pts)
        slope_week = 7.0 * sxy / sxx
        r2 = (sxy * sxy) / (sxx * syy) if syy > 0 else 0.0
        if slope_week < c.transition_pp_per_week / 2:
            self._set_armed("strike_transition", key, True, msg.ended_at)
        if slope_week < c.transition_pp_per_week or not self._armed("strike_transition", key):
            return None
        self._set_armed("strike_transition", key, False, msg.ended_at)
        if self._cooling("strike_transition", msg.runner, msg.ended_at):
            return None
        first = min(pts)[1]
        last = max(pts)[1]
        message = (
            f"Your forefoot-strike share has been rising by about {slope_week:.0f} percentage points per week "
            f"over the last 3 weeks ({first:.0f} % → {last:.0f} % of steps, {n} runs); the limit you set is "
            f"{c.transition_pp_per_week:g} points/week. Forefoot striking moves load to the calf and Achilles "
            f"tendon, and even a gradual 10-week transition gave 10 of 19 runners bone-marrow oedema in the foot "
            f"(Ridge 2013). What to try: hold your current mix for a couple of weeks, add forefoot running in "
            f"short blocks, build calf and foot strength, and first get lighter within your current strike "
            f"(higher cadence, lower loading rate)."
        )
        return self._emit(
            msg, "strike_transition", "warning", min(0.9, 0.4 + 0.5 * r2),
            f"Strike transition too fast: forefoot share +{slope_week:.0f} points/week", message,
            {"slope_pp_per_week": slope_week, "r2": r2, "runs": n, "first_share_pct": first,
             "last_share_pct": last, "threshold_pp_per_week": c.transition_pp_per_week, "window_days": 21},
            msg.ended_at,
        )  # fmt: skip

    def _asymmetry(self, msg: RunSummary, base: dict[str, Any], key: str, who: dict[str, Any]) -> Alert | None:
        c = self.config
        n = c.asymmetry_runs
        recent = self.store.list_runs(**who, until=msg.started_at + 1, limit=n)
        if len(recent) < n or recent[0]["run_id"] != msg.run_id:
            return None
        ref = recent[-1]["started_at"]  # baseline: the 28 days before the first of the recent runs
        b = baseline(self.store, ref=ref - 1.0, days=c.baseline_days, min_runs=c.min_baseline_runs, **who)
        if b["status"] != "ok":
            return None
        hits = {}
        for measure, col in (("asymmetry_contact_pct", "asym_contact_pct"), ("asymmetry_valr_pct", "asym_valr_pct")):
            bm = b["measures"].get(measure)
            if not bm:
                continue
            margin = max(c.asymmetry_points, c.asymmetry_sd * bm["sd"])
            vals = [r[col] for r in recent]
            if all(v is not None and abs(v - bm["mean"]) > margin for v in vals) and (
                all(v > bm["mean"] for v in vals) or all(v < bm["mean"] for v in vals)  # type: ignore[operator]
            ):
                hits[measure] = {"values": vals, "baseline_mean": bm["mean"], "baseline_sd": bm["sd"], "margin": margin}
        if not hits:
            current = msg.asymmetry.contact_ms_pct
            bm = b["measures"].get("asymmetry_contact_pct")
            if current is not None and bm and abs(current - bm["mean"]) <= max(c.asymmetry_points, 0.0):
                self._set_armed("asymmetry", key, True, msg.ended_at)
            return None
        if not self._armed("asymmetry", key):
            return None
        self._set_armed("asymmetry", key, False, msg.ended_at)
        if self._cooling("asymmetry", msg.runner, msg.ended_at):
            return None
        names = {"asymmetry_contact_pct": "contact time", "asymmetry_valr_pct": "loading rate"}
        parts = []
        for measure, h in hits.items():
            side = "right" if h["values"][0] > 0 else "left"
            parts.append(
                f"{names[measure]} asymmetry {', '.join(f'{v:+.0f} %' for v in h['values'])} (newest first; "
                f"your baseline {h['baseline_mean']:+.0f} ± {h['baseline_sd']:.0f} %, {side} side higher)"
            )
        message = (
            f"Over your last {n} runs your left/right balance has shifted away from your usual: {'; '.join(parts)}. "
            "SI% = (R − L) / mean × 100 (Herzog 1989). A fixed 10 % rule is convention, not evidence (Malisoux "
            "2024), so this compares you with yourself. A new persistent shift can follow a niggle, new shoes or "
            "a change in routine. What to try: check shoes and insole fit, notice whether one side hurts or "
            "feels tight; if it persists or hurts, see a physiotherapist."
        )
        return self._emit(
            msg, "asymmetry", "warning", 0.5, f"Persistent left/right asymmetry over {n} runs", message,
            {"runs": [r["run_id"] for r in recent], "measures": hits, "baseline_runs": b["runs"]},
            msg.ended_at,
        )  # fmt: skip

    def _training_load(self, msg: RunSummary, base: dict[str, Any], key: str, who: dict[str, Any]) -> Alert | None:
        c = self.config
        tl = training_load(self.store, ref=msg.ended_at + 1.0, with_series=False, **who)
        if tl["status"] != "ok" or tl["acwr"] is None:
            return None
        acwr = float(tl["acwr"])
        if acwr < c.acwr_rearm:
            self._set_armed("training_load", key, True, msg.ended_at)
        if acwr < c.acwr_threshold or not self._armed("training_load", key):
            return None
        self._set_armed("training_load", key, False, msg.ended_at)
        if self._cooling("training_load", msg.runner, msg.ended_at):
            return None
        message = (
            f"Your recent running load jumped: the 7-day average is {tl['acute']:.0f} min/day against a 28-day "
            f"average of {tl['chronic']:.0f} min/day (acute:chronic ratio {acwr:.2f}; EWMA, Williams 2017). "
            f"Ratios above {c.acwr_threshold:g} were linked to injuries in team sports (Gabbett 2016), but the "
            "measure is disputed (Impellizzeri 2020) — treat this as a nudge, not a diagnosis. What to try: "
            "keep the next days easy and raise weekly volume gradually."
        )
        return self._emit(
            msg, "training_load", "warning" if acwr >= 2.0 else "info", 0.35,
            f"Training load up: acute:chronic {acwr:.2f}", message,
            {"acute_min_per_day": tl["acute"], "chronic_min_per_day": tl["chronic"], "acwr": acwr,
             "threshold": c.acwr_threshold, "rearm_below": c.acwr_rearm, "lambda_acute": tl["lambda_acute"],
             "lambda_chronic": tl["lambda_chronic"]},
            msg.ended_at,
        )  # fmt: skip


#: Open (unacknowledged) warnings this recent can make the level ``high``; older open ones keep it ``elevated``.
RECENT_DAYS = 7.0


def _age(seconds: float, as_of: str) -> str:
    """ "3 days before the latest run, " — or nothing within the first day."""
    days = seconds / DAY
    return "" if days < 1 else f"{days:.0f} day{'' if round(days) == 1 else 's'} {as_of}, "


def _latest_run_vs_baseline(
    store: Store, cfg: RiskConfig, ref: float, runner: str | None, device_id: str | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The baseline of the runs before the latest one (the latest left out, as the trends page's band) and the
    latest run's VALR against it: ``{"valr_mean", "baseline_valr_mean", "rise_pct"}`` or None."""
    latest = store.list_runs(runner=runner, device_id=device_id, limit=1)[0]
    b = baseline(store, ref=ref, runner=runner, device_id=device_id, days=cfg.baseline_days,
                 min_runs=cfg.min_baseline_runs, exclude_run=latest["run_id"])  # fmt: skip
    ref_valr = (b.get("measures") or {}).get("valr_mean") or {}
    mean, now = ref_valr.get("mean"), latest.get("valr_mean")
    if b["status"] != "ok" or not mean or now is None:
        return b, None
    return b, {"run_id": latest["run_id"], "valr_mean": now, "baseline_valr_mean": mean,
               "rise_pct": 100.0 * (now - mean) / mean}  # fmt: skip


def _headline(level: RiskLevel, recent: list[dict[str, Any]], serious: list[dict[str, Any]], latest_high: bool,
              acwr_high: bool, cfg: RiskConfig) -> str:  # fmt: skip
    """One sentence saying why the level is what it is, naming its time window."""
    window, days = f"{cfg.baseline_days:g} days", f"{cfg.baseline_days:g}-day"
    if level == "high":
        crit = sum(a["severity"] == "critical" for a in recent)
        if len(recent) >= 2:
            return f"{len(recent)} warnings in the last {RECENT_DAYS:g} days, not acknowledged."
        return f"A critical alert in the last {RECENT_DAYS:g} days, not acknowledged." if crit else ""
    if level == "elevated":
        parts = []
        if serious:
            parts.append(f"{len(serious)} open warning{'s' if len(serious) > 1 else ''} from the last {window}")
        if latest_high:
            parts.append(f"your latest run's loading rate is {cfg.spike_pct:g} % or more above your {days} baseline")
        if acwr_high:
            parts.append("your training load jumped")
        text = "; ".join(parts)
        return text[:1].upper() + text[1:] + "."
    return f"No open warnings in the last {window}, and your latest run is within your {days} baseline."


def risk_summary(
    store: Store,
    *,
    runner: str | None = None,
    device_id: str | None = None,
    now: float | None = None,
    config: RiskConfig | None = None,
) -> dict[str, Any]:
    """The risk level with its reasons, consistent with the open alerts the dashboard lists.

    ``unknown`` without a baseline. Otherwise from the UNACKNOWLEDGED alerts: an open alert stays open until the
    runner acknowledges it, so it keeps counting for ``risk.baseline_days`` (28) — the same horizon as the
    baseline it was judged against; older open alerts are named in the reasons but no longer count (the baseline
    has moved on). ``high``: a ``critical`` or ≥ 2 warnings raised in the last 7 days; ``elevated``: any other
    open warning/critical in the window, EWMA ACWR ≥ the threshold, or the latest run's VALR ≥ ``spike_pct`` above
    the baseline of the runs before it — acknowledging an alert is not resolving it, so the data itself keeps the
    level up while the loading stays high; else ``low``. ``info`` alerts never raise the level (they are context,
    e.g. the disputed 66 BW/s cut-off) but are named, so "low" never hides them; acknowledged alerts of the last
    7 days are named too. ``headline`` says in one sentence why, naming its time window.
    ``now`` defaults to the end of the latest run (alerts carry the device clock of the summaries).
    """
    cfg = config or RiskConfig()
    ref = latest_end(store, runner=runner, device_id=device_id)
    if ref is None:
        return {"level": "unknown", "headline": "No runs yet.", "reasons": ["no runs yet"],
                "baseline": "no_baseline", "open_alerts": 0}  # fmt: skip
    as_of = "before the latest run" if now is None else "ago"
    now = ref if now is None else now  # "as of the latest run" by default
    window = cfg.baseline_days * DAY
    alerts = store.list_alerts(include_acked=True, runner=runner, limit=1000)
    if device_id is not None:
        alerts = [a for a in alerts if a["device_id"] == device_id]
    alerts = [a for a in alerts if a["created_at"] <= now]  # nothing from after the reference time
    open_all = [a for a in alerts if not a["acked"]]
    counted = [a for a in open_all if now - a["created_at"] <= window]
    stale = len(open_all) - len(counted)
    serious = [a for a in counted if a["severity"] in ("warning", "critical")]
    recent = [a for a in serious if now - a["created_at"] <= RECENT_DAYS * DAY]
    info = [a for a in counted if a["severity"] == "info"]
    acked_recent = [a for a in alerts if a["acked"] and a["severity"] in ("warning", "critical")
                    and now - a["created_at"] <= RECENT_DAYS * DAY]  # fmt: skip
    reasons = [f"{a['title']} ({a['severity']}, {_age(now - a['created_at'], as_of)}not acknowledged)"
               for a in serious]  # fmt: skip
    summary: dict[str, Any] = {
        "open_alerts": len(counted), "open_warnings": len(serious), "open_info": len(info),
        "open_older": stale, "recent_warnings": len(recent), "acked_recent": len(acked_recent),
        "window_days": cfg.baseline_days, "recent_days": RECENT_DAYS,
    }  # fmt: skip
    tail = []
    if info:
        tail.append(
            f"{len(info)} open informational alert{'s' if len(info) > 1 else ''} (not raising the level): "
            + "; ".join(a["title"] for a in info[:3])
        )
    if acked_recent:
        tail.append(
            f"{len(acked_recent)} acknowledged alert{'s' if len(acked_recent) > 1 else ''} in the last "
            f"{RECENT_DAYS:g} days: " + "; ".join(a["title"] for a in acked_recent[:3])
        )
    if stale:
        tail.append(
            f"{stale} open alert{'s' if stale > 1 else ''} older than {cfg.baseline_days:g} days no longer "
            "count — acknowledge them on the Alerts page"
        )
    b, latest = _latest_run_vs_baseline(store, cfg, ref, runner, device_id)
    if b["status"] != "ok":
        return {"level": "unknown", "headline": b["message"], "reasons": [b["message"], *reasons, *tail],
                "baseline": "no_baseline", **summary}  # fmt: skip
    summary["latest_run"] = latest
    latest_high = latest is not None and latest["rise_pct"] >= cfg.spike_pct
    if latest_high:
        assert latest is not None
        reasons.append(
            f"latest run: VALR {latest['valr_mean']:.0f} BW/s, {latest['rise_pct']:.0f} % above your "
            f"{cfg.baseline_days:g}-day baseline of {latest['baseline_valr_mean']:.0f} BW/s"
        )
    tl = training_load(store, ref=ref + 1.0, runner=runner, device_id=device_id, with_series=False)
    acwr_high = tl["status"] == "ok" and tl["acwr"] is not None and tl["acwr"] >= cfg.acwr_threshold
    if acwr_high:
        reasons.append(f"training load acute:chronic {tl['acwr']:.2f} (≥ {cfg.acwr_threshold:g})")
    level: RiskLevel
    if any(a["severity"] == "critical" for a in recent) or len(recent) >= 2:
        level = "high"
    elif serious or acwr_high or latest_high:
        level = "elevated"
    else:
        level = "low"
    if level == "low" and not tail:
        reasons.append(f"no open warnings in the last {cfg.baseline_days:g} days")
    return {"level": level, "headline": _headline(level, recent, serious, latest_high, acwr_high, cfg),
            "reasons": [*reasons, *tail], "baseline": "ok", "acwr": tl.get("acwr"), **summary}  # fmt: skip


def risk_level(
    store: Store,
    *,
    runner: str | None = None,
    device_id: str | None = None,
    now: float | None = None,
    config: RiskConfig | None = None,
) -> RiskLevel:
    """``low`` / ``elevated`` / ``high`` / ``unknown`` (no baseline yet) — see :func:`risk_summary`."""
    return risk_summary(store, runner=runner, device_id=device_id, now=now, config=config)["level"]  # type: ignore[no-any-return]
