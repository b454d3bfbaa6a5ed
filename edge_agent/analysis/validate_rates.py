"""The analysis against the sampling rate: ``footfall-agent validate --rates 50,100,200[,300]``.

Per rate, the bias and scatter of VALR, contact time and strike index against three references:

1. **Force plate re-sampled** (Fukuchi RBDS, 300 Hz: S1 at 2.5 m/s and S8 at 3.5 m/s from ``forces.txt``,
   S1 at 3.5 m/s from its ``.c3d``): each trial is re-sampled by linear interpolation at ``phases`` sampling
   phases off the 300 Hz grid (golden-ratio sequence) and analysed through the ``single-zone-force``
   profile; steps are matched (same foot, initial contacts within 20 ms) with the trial's own analysis at
   300 Hz. At 300 Hz the rows re-sample at other phases: the reference's own scatter, a floor no rate can beat.
2. **Simulator** (:data:`edge_agent.recordings.simulator.FORCE_FAMILIES`, ``seeds`` runners per family,
   30 s each, the ``moticon-opengo`` profile with its unloading lag): against the continuous truth —
   loading rates, contact (0.03 BW edges of the true force) and strike index; plus the same runners
   through the ``single-zone-force`` (plate) profile for contact time.
3. **Moticon gait reports** (100 Hz walking) against the vendor's per-step events and gait-line start, and at
   50 Hz (every other frame, both offsets); and the **labelled strike zones** of the plantar-activity
   sequences (*Walking* → rearfoot, *Walking on tiptoes* → forefoot) at 100 and 50 Hz.

VALR rows: per-step ratio ours/reference (median, IQR), median and p90 of |ratio − 1|, the run-mean bias
(Σ ours / Σ reference − 1 per run, averaged over runs; its largest magnitude), the share of runs whose
run-mean interval (:func:`edge_agent.analysis.loading_rate.mean_estimate`) holds the reference run mean and
the share of steps whose per-step interval holds the reference value. Contact rows: median Δ and p95 |Δ|
of contact time, initial contact and toe-off (ms). ``docs/validation.md`` is this command's ``--markdown``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.analysis.analyzer import AnalysisConfig, analyze_recording
from edge_agent.analysis.loading_rate import mean_estimate
from edge_agent.analysis.step import Step
from edge_agent.profiles import load_profile
from edge_agent.recordings import FootStream, Recording, load_recording

DEFAULT_RATES = (50.0, 100.0, 200.0, 300.0)
PLATE_RATE_HZ = 300.0
MATCH_S = 0.02  # a step and its reference: same foot, initial contacts this close
VENDOR_MATCH_S = 0.15
PLATE_TRIALS = (
    ("S1 2.5 m/s (forefoot)", "RBDS001runT25forces.txt"),
    ("S1 3.5 m/s (forefoot)", "RBDS001runT35.c3d"),
    ("S8 3.5 m/s (rearfoot)", "RBDS008runT35forces.txt"),
)
#: The issue's targets, on these data: (what, rate, limit) — checked by :func:`targets` and the tests.
TARGETS = {
    "valr_step_200": "per-step VALR median |error| ≤ 10 % at 200 Hz (plates vs their 300 Hz analysis)",
    "valr_step_100": "per-step VALR median |error| ≤ 20 % at 100 Hz (plates vs their 300 Hz analysis)",
    "valr_run_100": "run-mean VALR bias within ±10 % at 100 Hz (plates)",
    "moticon_to": "Moticon toe-off p95 |Δ| ≤ 15 ms vs the vendor's report (100 Hz)",
    "moticon_si": "Moticon strike index p95 |Δ| ≤ 0.05 vs the vendor's gait-line start (100 Hz)",
    "moticon_ic_vendor": "Moticon initial contact p95 |Δ| ≤ 10 ms vs the vendor (contact_events=vendor)",
    "zones": "labelled strike zones ≥ 90 % (Walking rearfoot + tiptoes forefoot, pooled, 100 Hz)",
    "plate_contact_200": "plate contact time p95 |Δ| ≤ one sample + 2 ms at 200 Hz (7 ms; report)",
}


def golden_phases(n: int) -> list[float]:
    """``n`` sampling phases in (0, 1) that never fall on the 300 Hz grid (golden-ratio sequence)."""
    g = (math.sqrt(5.0) - 1.0) / 2.0
    return [((k + 1) * g + 0.0137) % 1.0 for k in range(n)]


def resample(rec: Recording, fs: float, phase: float) -> Recording:
    """Each foot's force linearly interpolated onto ``t0 + (k + phase)/fs`` (one channel: single-zone-force)."""
    feet: dict[str, FootStream] = {}
    for side in ("left", "right"):
        st = getattr(rec, side)
        t, f = st.t, st.raw[:, 0].astype(np.float64)
        tn = np.arange(t[0] + phase / fs, t[-1], 1.0 / fs)
        feet[side] = FootStream(tn, np.interp(tn, t, f).astype(np.float32).reshape(-1, 1))
    return Recording(
        profile="single-zone-force",
        left=feet["left"],
        right=feet["right"],
        body_mass_kg=rec.body_mass_kg,
        source=f"{rec.source}@{fs:g}Hz+{phase:.3f}",
        meta=dict(rec.meta),
    )


def decimate(rec: Recording, offset: int) -> Recording:
    """Every other frame from ``offset`` (a 100 Hz recording at 50 Hz)."""
    out = replace(rec)
    for side in ("left", "right"):
        st = getattr(rec, side)
        if st is not None:
            setattr(out, side, FootStream(st.t[offset::2].copy(), np.ascontiguousarray(st.raw[offset::2])))
    return out


def match(ref: Sequence[Any], steps: Sequence[Step], tol: float) -> list[tuple[Any, Step]]:
    """(reference, step) pairs: same side, initial contacts within ``tol`` s (nearest; each step once)."""
    by_side: dict[str, list[Step]] = {"left": [], "right": []}
    for s in steps:
        by_side[s.side].append(s)
    out = []
    used: set[int] = set()
    for r in ref:
        t_r = r.t_contact if hasattr(r, "t_contact") else r.ic
        cands = [s for s in by_side[r.side] if abs(s.t_contact - t_r) < tol and id(s) not in used]
        if cands:
            s = min(cands, key=lambda s: abs(s.t_contact - t_r))
            used.add(id(s))
            out.append((r, s))
    return out


# -- statistics ----------------------------------------------------------------------------------------
def _q(a: Iterable[float], q: float) -> float | None:
    arr = np.asarray([x for x in a if x is not None and math.isfinite(x)], dtype=np.float64)
    return float(np.percentile(arr, q)) if arr.size else None


@dataclass
class _Runs:
    """Matched (reference value, step) pairs grouped by run (phase or simulated runner)."""

    valr: list[list[tuple[float, Step]]] = field(default_factory=list)
    contact: list[float] = field(default_factory=list)  # ours − reference (ms)
    ic: list[float] = field(default_factory=list)
    to: list[float] = field(default_factory=list)
    si: list[float] = field(default_factory=list)  # |Δ|
    zones: list[bool] = field(default_factory=list)
    fs: float = 0.0

    def add_run(self, pairs: list[tuple[Any, Step]], valr_ref: str, t_ref: tuple[str, str] | None) -> None:
        run = [(float(getattr(r, valr_ref)), s) for r, s in pairs if s.valr_bw_s is not None]
        self.valr.append([(v, s) for v, s in run if v > 0])
        if t_ref is not None:
            for r, s in pairs:
                ic, to = getattr(r, t_ref[0]), getattr(r, t_ref[1])
                self.ic.append((s.t_contact - ic) * 1000.0)
                self.to.append((s.t_toe_off - to) * 1000.0)
                self.contact.append(s.contact_ms - (to - ic) * 1000.0)

    def valr_stats(self) -> dict[str, Any]:
        pairs = [p for run in self.valr for p in run]
        if not pairs:
            return {"n": 0}
        ratio = np.asarray([s.valr_bw_s / v for v, s in pairs])  # type: ignore[operator]
        err = np.abs(ratio - 1.0)
        inside = [
            s.valr_lo_bw_s is not None and s.valr_hi_bw_s is not None and s.valr_lo_bw_s <= v <= s.valr_hi_bw_s
            for v, s in pairs
        ]
        bias, covered = [], []
        for run in self.valr:
            if len(run) < 5:
                continue
            ref_mean = float(np.mean([v for v, _ in run]))
            est = mean_estimate(
                [s.valr_bw_s for _, s in run], [s.lr_correction for _, s in run], [s.lr_model for _, s in run], self.fs
            )
            bias.append(float(np.mean([s.valr_bw_s for _, s in run])) / ref_mean - 1.0)  # type: ignore[misc]
            covered.append(est is not None and est.lo <= ref_mean <= est.hi)
        models = [s.lr_model for _, s in pairs]
        return {
            "n": len(pairs),
            "ratio_median": float(np.median(ratio)),
            "ratio_q25": float(np.percentile(ratio, 25)),
            "ratio_q75": float(np.percentile(ratio, 75)),
            "abs_err_median": float(np.median(err)),
            "abs_err_p90": float(np.percentile(err, 90)),
            "run_bias_mean": float(np.mean(bias)) if bias else None,
            "run_bias_max_abs": float(np.max(np.abs(bias))) if bias else None,
            "run_interval_coverage": float(np.mean(covered)) if covered else None,
            "step_interval_coverage": float(np.mean(inside)),
            "corrected_share": float(np.mean([m != "sampled" for m in models])),
            "prior_share": float(np.mean([m == "rise_prior" for m in models])),
        }

    def timing_stats(self) -> dict[str, Any]:
        def two(d: list[float]) -> dict[str, float | int | None]:
            return {"n": len(d), "median": _q(d, 50), "p95_abs": _q(np.abs(d).tolist(), 95)}

        return {"contact_ms": two(self.contact), "ic_ms": two(self.ic), "to_ms": two(self.to)}

    def si_stats(self) -> dict[str, Any]:
        return {
            "n": len(self.si),
            "abs_median": _q(self.si, 50),
            "abs_p95": _q(self.si, 95),
            "zone_agreement": float(np.mean(self.zones)) if self.zones else None,
        }


# -- 1. force plates ---------------------------------------------------------------------------------------
def plate_rows(data: Path, rates: Sequence[float], phases: int) -> list[dict[str, Any]]:
    rows = []
    for label, name in PLATE_TRIALS:
        path = data / "fukuchi-rbds" / name
        if not path.is_file():
            continue
        rec = load_recording(path)
        ref = analyze_recording(rec, body_mass_kg=rec.body_mass_kg).steps
        row: dict[str, Any] = {"source": f"plate {label}", "reference": "its 300 Hz analysis", "rates": {}}
        for fs in rates:
            runs = _Runs(fs=fs)
            for ph in golden_phases(phases):
                res = analyze_recording(
                    resample(rec, fs, ph), body_mass_kg=rec.body_mass_kg, config=AnalysisConfig(sample_rate_hz=fs)
                )
                runs.add_run(match(ref, res.steps, MATCH_S), "valr_bw_s", ("t_contact", "t_toe_off"))
            row["rates"][_key(fs)] = {"valr": runs.valr_stats(), **runs.timing_stats()}
        row["steps"] = len(ref)
        rows.append(row)
    return rows


# -- 2. simulator -----------------------------------------------------------------------------------------
def simulator_rows(rates: Sequence[float], seeds: int, duration_s: float = 30.0) -> list[dict[str, Any]]:
    from edge_agent.recordings.simulator import FORCE_FAMILIES, family_params, simulate

    insole = load_profile("moticon-opengo").model_copy(update={"raw_max": None})
    plate = load_profile("single-zone-force")
    rows = []
    plate_runs = {fs: _Runs(fs=fs) for fs in rates}
    for fam in FORCE_FAMILIES:
        row: dict[str, Any] = {"source": f"simulator {fam}", "reference": "continuous truth", "rates": {}}
        for fs in rates:
            runs = _Runs(fs=fs)
            for seed in range(seeds):
                params = family_params(fam, seed, duration_s=duration_s, sample_rate_hz=fs)
                rec, truths = simulate(insole, params)
                res = analyze_recording(rec, insole, config=AnalysisConfig(sample_rate_hz=fs))
                pairs = match(truths, res.steps, MATCH_S)
                runs.add_run(pairs, "valr_bw_s", ("t_contact", "t_toe_off"))
                for tr, s in pairs:
                    if s.strike_index is not None:
                        runs.si.append(abs(s.strike_index - tr.strike_index))
                        runs.zones.append(s.strike_zone == tr.strike_zone)
                rec_p, truths_p = simulate(plate, params)
                res_p = analyze_recording(rec_p, plate, config=AnalysisConfig(sample_rate_hz=fs))
                plate_runs[fs].add_run(match(truths_p, res_p.steps, MATCH_S), "valr_bw_s", ("t_contact", "t_toe_off"))
            row["rates"][_key(fs)] = {"valr": runs.valr_stats(), **runs.timing_stats(), "si": runs.si_stats()}
        rows.append(row)
    rows.append(
        {
            "source": "simulator, all families, plate profile",
            "reference": "continuous truth",
            "rates": {_key(fs): {"valr": r.valr_stats(), **r.timing_stats()} for fs, r in plate_runs.items()},
        }
    )
    return rows


# -- 3. Moticon: vendor reports and labelled zones ---------------------------------------------------------
def moticon_rows(data: Path, rates: Sequence[float]) -> list[dict[str, Any]]:
    from edge_agent.analysis.validate import _report_recording, read_gait_report

    reports = []
    for report in sorted((data / "moticon-opengo").glob("gait_report_*.xlsx")):
        rec_path = _report_recording(report)
        if rec_path is not None:
            reports.append((read_gait_report(report), load_recording(rec_path)))
    rows = []
    for mode in ("physical", "vendor"):
        row: dict[str, Any] = {
            "source": f"Moticon gait reports, contact_events={mode}",
            "reference": "the vendor's report",
            "rates": {},
        }
        for fs in rates:
            if fs not in (50.0, 100.0) or not reports:
                continue
            runs = _Runs(fs=fs)
            for vendor, rec in reports:
                for part in [rec] if fs == 100.0 else [decimate(rec, 0), decimate(rec, 1)]:
                    res = analyze_recording(part, config=AnalysisConfig(sample_rate_hz=fs, contact_events=mode))
                    pairs = match(vendor, res.steps, VENDOR_MATCH_S)
                    for v, s in pairs:
                        runs.ic.append((s.t_contact - v.ic) * 1000.0)
                        runs.to.append((s.t_toe_off - v.to) * 1000.0)
                        runs.contact.append(s.contact_ms - (v.to - v.ic) * 1000.0)
                        if s.cop_x is not None:
                            runs.si.append(abs(s.cop_x - (0.5 + v.start_x)))
            row["rates"][_key(fs)] = {**runs.timing_stats(), "si": runs.si_stats()}
        rows.append(row)
    return rows


def zone_rows(data: Path, rates: Sequence[float]) -> list[dict[str, Any]]:
    from edge_agent.analysis.analyzer import G0
    from edge_agent.analysis.validate import standing_weight_n

    seqs = sorted((data / "plantar-activity-moticon").glob("S0*/Sequence_*"))
    out: dict[str, Any] = {"source": "plantar-activity labelled zones", "reference": "the activity label", "rates": {}}
    for fs in rates:
        if fs not in (50.0, 100.0) or not seqs:
            continue
        hits = {"Walking": [0, 0], "Walking on tiptoes": [0, 0]}
        for seq in seqs:
            if not (seq / "insoles.csv.gz").is_file():
                continue
            rec = load_recording(seq)
            sw = standing_weight_n(rec)
            mass = sw[0] / G0 if sw else None
            for label, want in (("Walking", "rearfoot"), ("Walking on tiptoes", "forefoot")):
                for seg in rec.segment(label):
                    part = rec.slice(seg.t_start, seg.t_end)
                    for p in [part] if fs == 100.0 else [decimate(part, 0), decimate(part, 1)]:
                        steps = analyze_recording(p, body_mass_kg=mass, config=AnalysisConfig(sample_rate_hz=fs)).steps
                        zs = [s.strike_zone for s in steps if s.strike_zone is not None]
                        hits[label][0] += sum(z == want for z in zs)
                        hits[label][1] += len(zs)
        k = sum(h[0] for h in hits.values())
        n = sum(h[1] for h in hits.values())
        out["rates"][_key(fs)] = {
            "zones": {
                "agreement": k / n if n else None,
                "steps": n,
                **{lab: (h[0] / h[1] if h[1] else None) for lab, h in hits.items()},
            }
        }
    return [out] if seqs else []


# -- everything --------------------------------------------------------------------------------------------
def _key(fs: float) -> str:
    return f"{fs:g}"


def run_rates(
    data: Path | None, rates: Sequence[float] = DEFAULT_RATES, phases: int = 16, seeds: int = 3
) -> dict[str, Any]:
    """Every row (the real recordings only when ``data`` is a folder) and the targets' verdicts."""
    rates = [float(r) for r in rates]
    res: dict[str, Any] = {"rates": [_key(r) for r in rates], "phases": phases, "seeds": seeds}
    res["plates"] = plate_rows(data, rates, phases) if data is not None else []
    res["simulator"] = simulator_rows(rates, seeds)
    res["moticon"] = moticon_rows(data, rates) if data is not None else []
    res["zones"] = zone_rows(data, rates) if data is not None else []
    res["targets"] = targets(res)
    return res


def _pooled_plate(res: dict[str, Any], rate: str, what: str) -> float | None:
    vals = [row["rates"][rate]["valr"][what] for row in res["plates"] if rate in row["rates"]]
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return max(vals, key=abs)  # the worst trial


def targets(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue's targets on these data: {key: {what, value, limit, met}} (value None: not measured)."""
    out: dict[str, dict[str, Any]] = {}

    def put(key: str, value: float | None, limit: float, met: bool | None = None) -> None:
        ok = None if value is None else (abs(value) <= limit if met is None else met)
        out[key] = {"what": TARGETS[key], "value": value, "limit": limit, "met": ok}

    put("valr_step_200", _pooled_plate(res, "200", "abs_err_median"), 0.10)
    put("valr_step_100", _pooled_plate(res, "100", "abs_err_median"), 0.20)
    put("valr_run_100", _pooled_plate(res, "100", "run_bias_mean"), 0.10)
    phys = next((r for r in res["moticon"] if r["source"].endswith("physical")), None)
    vend = next((r for r in res["moticon"] if r["source"].endswith("vendor")), None)
    m100 = phys["rates"].get("100") if phys else None
    put("moticon_to", m100["to_ms"]["p95_abs"] if m100 else None, 15.0)
    put("moticon_si", m100["si"]["abs_p95"] if m100 else None, 0.05)
    v100 = vend["rates"].get("100") if vend else None
    put("moticon_ic_vendor", v100["ic_ms"]["p95_abs"] if v100 else None, 10.0)
    z = res["zones"][0]["rates"].get("100") if res["zones"] else None
    agree = z["zones"]["agreement"] if z else None
    put("zones", agree, 1.0, None if agree is None else agree >= 0.9)
    pc = [r["rates"]["200"]["contact_ms"]["p95_abs"] for r in res["plates"] if "200" in r["rates"]]
    put("plate_contact_200", max(pc) if pc else None, 7.0)
    return out


# -- printing ----------------------------------------------------------------------------------------------
def _f(v: Any, spec: str = ".1f", scale: float = 1.0) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return format(v * scale, spec)


def _cells(res: dict[str, Any], rows: list[dict[str, Any]], cell) -> list[tuple[str, list[str]]]:  # type: ignore[no-untyped-def]
    out = []
    for row in rows:
        cells = [cell(row["rates"][r]) if r in row["rates"] else "" for r in res["rates"]]
        if any(cells):
            out.append((f"{row['source']} (vs {row['reference']})", cells))
    return out


def _valr_cell(c: dict[str, Any]) -> str:
    v = c.get("valr") or {}
    if not v.get("n"):
        return ""
    return (
        f"{_f(v['abs_err_median'], '.1f', 100)} ({_f(v['abs_err_p90'], '.0f', 100)}) "
        f"{_f(v['run_bias_mean'], '+.1f', 100)} [{_f(v['run_interval_coverage'], '.0f', 100)}]"
    )


def _ratio_cell(c: dict[str, Any]) -> str:
    v = c.get("valr") or {}
    if not v.get("n"):
        return ""
    return f"{_f(v['ratio_median'], '.2f')} ({_f(v['ratio_q25'], '.2f')}–{_f(v['ratio_q75'], '.2f')})"


def _contact_cell(c: dict[str, Any]) -> str:
    if "contact_ms" not in c or not c["contact_ms"]["n"]:
        return ""
    return (
        f"{_f(c['contact_ms']['median'], '+.1f')} / {_f(c['contact_ms']['p95_abs'], '.1f')} "
        f"(IC {_f(c['ic_ms']['p95_abs'], '.1f')}, TO {_f(c['to_ms']['p95_abs'], '.1f')})"
    )


def _si_cell(c: dict[str, Any]) -> str:
    if "si" in c and c["si"]["n"]:
        s = c["si"]
        z = f", zones {_f(s['zone_agreement'], '.0f', 100)} %" if s.get("zone_agreement") is not None else ""
        return f"{_f(s['abs_median'], '.3f')} / {_f(s['abs_p95'], '.3f')}{z}"
    if "zones" in c:
        z = c["zones"]
        return f"zones {_f(z['agreement'], '.1f', 100)} % of {z['steps']}"
    return ""


TABLES = (
    (
        "VALR per-step median |error| % (p90) · run-mean bias % [run interval coverage %]",
        lambda res: res["plates"] + res["simulator"],
        _valr_cell,
    ),
    ("VALR per-step ratio ours/reference, median (IQR)", lambda res: res["plates"] + res["simulator"], _ratio_cell),
    (
        "Contact time Δ median / p95 |Δ| ms (initial contact, toe-off p95 |Δ| ms)",
        lambda res: res["plates"] + res["simulator"] + res["moticon"],
        _contact_cell,
    ),
    (
        "Strike index |Δ| median / p95 (zone agreement)",
        lambda res: res["simulator"] + res["moticon"] + res["zones"],
        _si_cell,
    ),
)


def format_rates(res: dict[str, Any]) -> str:
    lines: list[str] = []
    hz = [f"{r} Hz" for r in res["rates"]]
    for title, rows_of, cell in TABLES:
        rows = _cells(res, rows_of(res), cell)
        w0 = max([len(title)] + [len(r[0]) for r in rows])
        w = max([14] + [len(c) for r in rows for c in r[1]])
        lines.append(f"{title:<{w0}}  " + "  ".join(f"{h:>{w}}" for h in hz))
        lines.extend(f"{name:<{w0}}  " + "  ".join(f"{c:>{w}}" for c in cells) for name, cells in rows)
        lines.append("")
    lines.append(_targets_text(res))
    return "\n".join(lines) + "\n"


def _targets_text(res: dict[str, Any]) -> str:
    out = ["Targets (the issue's, on these data):"]
    for t in res["targets"].values():
        mark = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        out.append(f"  [{mark}] {t['what']}: {_f(t['value'], '.3f')}")
    return "\n".join(out)


def markdown_rates(res: dict[str, Any]) -> str:
    """The tables as Markdown (docs/validation.md quotes this output)."""

    def md(text: str) -> str:  # a literal "|" would end the cell
        return text.replace("|", "\\|")

    lines: list[str] = []
    hz = [f"{r} Hz" for r in res["rates"]]
    for title, rows_of, cell in TABLES:
        rows = _cells(res, rows_of(res), cell)
        lines.append(f"**{md(title)}**")
        lines.append("")
        lines.append("| source | " + " | ".join(hz) + " |")
        lines.append("|---|" + "---|" * len(hz))
        lines.extend(f"| {md(name)} | " + " | ".join(md(c) or "–" for c in cells) + " |" for name, cells in rows)
        lines.append("")
    lines.append("| target | value | verdict |")
    lines.append("|---|---|---|")
    for t in res["targets"].values():
        mark = {True: "met", False: "**not met**", None: "not measured"}[t["met"]]
        lines.append(f"| {md(t['what'])} | {_f(t['value'], '.3f')} | {mark} |")
    return "\n".join(lines) + "\n"
