"""Validate the step analysis against real recordings with independent labels.

``python -m edge_agent.analysis.validate /path/to/shared/data`` (or ``footfall-agent validate``) prints:

1. **Moticon gait reports** — the vendor's own per-step initial contact / toe-off, gait-line start
   (= CoP at initial contact) and first force peak, matched step by step with ours.
2. **Plantar-activity S04/S05** — strike-zone shares in the *Walking* (heel strikes expected) and
   *Walking on tiptoes* (forefoot expected) segments; body weight from *Standing upright without
   moving* (the dataset has no demographics, so this is the only body-weight reference).
3. **Fukuchi RBDS** — S1 (forefoot label) and S8 (rearfoot label) on a 300 Hz force plate:
   cadence, contact time, impact-peak share and VALR (BW/s, body mass from RBDSinfo.txt). A force
   plate measures only force: it cannot give a strike index (the force file's COP is in treadmill
   coordinates with both feet on one plate); the impact-peak share is its strike evidence.
4. **PhysioNet gaitpdb** control walks (8 force sensors per foot): step counts and cadence.

``--json`` prints the same numbers as JSON (``docs/validation.md`` quotes a run of this script).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.analysis.analyzer import G0, analyze_recording
from edge_agent.analysis.step import Step
from edge_agent.profiles import load_profile
from edge_agent.recordings import Recording, load_recording

MATCH_WINDOW_S = 0.15  # a vendor step and ours are the same step when their contacts are this close
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _stats(values: list[float | None] | list[float]) -> dict[str, float | int | None]:
    a = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if a.size == 0:
        return {"n": 0, "mean": None, "sd": None, "max_abs": None}
    return {
        "n": int(a.size),
        "mean": float(a.mean()),
        "sd": float(a.std(ddof=1)) if a.size > 1 else None,
        "max_abs": float(np.abs(a).max()),
    }


def _zone_share(steps: list[Step]) -> dict[str, float | int]:
    z = [s.strike_zone for s in steps if s.strike_zone is not None]
    n = len(z)
    return {
        "steps": n,
        "rearfoot": z.count("rearfoot") / n if n else math.nan,
        "midfoot": z.count("midfoot") / n if n else math.nan,
        "forefoot": z.count("forefoot") / n if n else math.nan,
        "si_mean": float(np.mean([s.strike_index for s in steps if s.strike_index is not None])) if n else math.nan,
    }


# -- 1. Moticon gait reports ------------------------------------------------------------------------
@dataclass
class VendorStep:
    side: str
    ic: float
    to: float
    start_x: float
    start_y: float
    first_peak_n: float | None


def read_gait_report(path: Path) -> list[VendorStep]:
    """The 'Left Steps' / 'Right Steps' sheets of a Moticon gait report."""
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    out: list[VendorStep] = []
    try:
        for side in ("left", "right"):
            ws = wb[f"{side.capitalize()} Steps"]
            rows = ws.iter_rows(values_only=True)
            head = [str(h).strip() if h is not None else "" for h in next(rows)]
            col = {h: i for i, h in enumerate(head)}
            for r in rows:
                if r[0] is None:
                    continue
                fp = r[col["First peak (N)"]] if "First peak (N)" in col else None
                out.append(
                    VendorStep(
                        side,
                        float(r[col["Initial contact (s)"]]),
                        float(r[col["Toe off (s)"]]),
                        float(r[col["Gaitline start x"]]),
                        float(r[col["Gaitline start y"]]),
                        float(fp) if isinstance(fp, (int, float)) else None,
                    )
                )
    finally:
        wb.close()
    return out


def _report_recording(report: Path) -> Path | None:
    m = re.match(r"gait_report_(\d{6})_(\d\d)_(\d\d)_(\d\d)\.xlsx$", report.name)
    if not m:
        return None
    p = report.parent / f"{m.group(1)}_{m.group(2)}{m.group(3)}{m.group(4)}.txt"
    return p if p.is_file() else None


def validate_gait_reports(data: Path) -> list[dict[str, Any]]:
    results = []
    for report in sorted((data / "moticon-opengo").glob("gait_report_*.xlsx")):
        rec_path = _report_recording(report)
        if rec_path is None:
            continue
        vendor = read_gait_report(report)
        rec = load_recording(rec_path)
        res = analyze_recording(rec)
        length_mm = load_profile(rec.profile).insole_length_mm
        d_ic, d_to, d_x, d_y, d_peak, peak_rel = [], [], [], [], [], []
        used: set[int] = set()
        for v in vendor:
            cands = [
                (abs(s.t_contact - v.ic), i)
                for i, s in enumerate(res.steps)
                if s.side == v.side and i not in used and abs(s.t_contact - v.ic) < MATCH_WINDOW_S
            ]
            if not cands:
                continue
            _, i = min(cands)
            used.add(i)
            s = res.steps[i]
            d_ic.append((s.t_contact - v.ic) * 1000)
            d_to.append((s.t_toe_off - v.to) * 1000)
            # vendor gait line: x −0.5 heel … +0.5 toe, y +medial; ours 0…1 heel→toe, 0 medial…1 lateral
            if s.cop_x is not None:
                d_x.append(s.cop_x - (0.5 + v.start_x))
            if s.cop_y is not None:
                d_y.append(s.cop_y - (0.5 - v.start_y))
            if v.first_peak_n is not None:
                ours = s.impact_peak_bw if s.impact_peak_bw is not None else None
                if ours is not None:
                    d_peak.append(ours * res.body_weight_n - v.first_peak_n)
                    peak_rel.append(100 * (ours * res.body_weight_n - v.first_peak_n) / v.first_peak_n)
        results.append(
            {
                "report": report.name,
                "recording": rec_path.name,
                "vendor_steps": len(vendor),
                "our_steps": len(res.steps),
                "matched": len(d_ic),
                "body_weight_n": res.body_weight_n,
                "body_weight_source": res.body_weight_source,
                "ic_ms": _stats(d_ic),
                "to_ms": _stats(d_to),
                "start_x": _stats(d_x),
                "start_y": _stats(d_y),
                "start_x_mm_mean_abs": float(np.mean(np.abs(d_x)) * length_mm) if d_x else None,
                "first_peak_n": _stats(d_peak),
                "first_peak_pct": _stats(peak_rel),
            }
        )
    return results


# -- 2. plantar-activity S04/S05 ----------------------------------------------------------------------
def standing_weight_n(rec: Recording, label: str = "Standing upright without moving") -> tuple[float, float] | None:
    """Mean (ours, vendor) total force of both feet over the labelled quiet-standing segment (N)."""
    segs = rec.segment(label)
    if not segs or rec.left is None or rec.right is None:
        return None
    prof = load_profile(rec.profile)
    area = prof.sensor_area_cm2()
    seg = rec.slice(segs[0].t_start, segs[0].t_end)
    assert seg.left is not None and seg.right is not None
    ours = float((seg.left.raw @ area).mean() + (seg.right.raw @ area).mean())
    vendor = float(seg.reference["left_total_force_n"].mean() + seg.reference["right_total_force_n"].mean())
    return ours, vendor


def validate_plantar(data: Path) -> list[dict[str, Any]]:
    results = []
    for seq in sorted((data / "plantar-activity-moticon").glob("S0*/Sequence_*")):
        if not (seq / "insoles.csv.gz").is_file():
            continue
        rec = load_recording(seq)
        sw = standing_weight_n(rec)
        mass = sw[0] / G0 if sw else None
        row: dict[str, Any] = {
            "sequence": f"{seq.parent.name}/{seq.name}",
            "standing_bw_n": sw[0] if sw else None,
            "standing_bw_vendor_n": sw[1] if sw else None,
        }
        for label in ("Walking", "Walking on tiptoes", "Jogging"):
            segs = rec.segment(label)
            if not segs:
                continue
            steps: list[Step] = []
            for seg in segs:
                part = rec.slice(seg.t_start, seg.t_end)
                steps.extend(analyze_recording(part, body_mass_kg=mass).steps)
            row[label] = _zone_share(steps)
        results.append(row)
    return results


# -- 3. Fukuchi force plate ---------------------------------------------------------------------------
#: Foot-strike angle classes (Altman & Davis 2012, Gait Posture 35:298): > 8° rearfoot, < −1.6° forefoot.
FSA_REARFOOT_DEG = 8.0
FSA_FOREFOOT_DEG = -1.6
FSA_FLAT_FRACTION = 0.4  # reference "foot flat" instant: 40 % of stance (no static trial in the data)


def marker_strike_angles(c3d: Path, steps: list[Step]) -> list[float]:
    """Kinematic foot-strike angle per step from the trial's markers (degrees, + = toes up).

    Angle of the heel(bottom)→MT-head-midpoint line in the sagittal plane at initial contact minus
    the same angle at 40 % of stance (foot flat), which removes marker placement offsets the way a
    static-trial reference would (Altman & Davis 2012). Needs the C3D of the *same* trial.
    """
    from edge_agent.recordings.c3d import read_c3d_points

    pts = read_c3d_points(c3d)
    tm = pts.t
    out: list[float] = []
    for side in ("left", "right"):
        s = side[0].upper()
        heel = pts.marker(f"{s}.Heel.Bottom")
        mt = 0.5 * (pts.marker(f"{s}.MT1") + pts.marker(f"{s}.MT5"))
        dx = mt[:, 0] - heel[:, 0]
        ang = np.degrees(np.arctan2(mt[:, 1] - heel[:, 1], np.sign(np.nanmedian(dx)) * dx))
        for st in steps:
            if st.side != side:
                continue
            i = int(np.searchsorted(tm, st.t_contact))
            k = int(np.searchsorted(tm, st.t_contact + FSA_FLAT_FRACTION * st.contact_ms / 1000.0))
            if k < tm.size and np.isfinite(ang[i]) and np.isfinite(ang[k]):
                out.append(float(ang[i] - ang[k]))
    return out


def validate_fukuchi(data: Path) -> list[dict[str, Any]]:
    results = []
    for f in sorted((data / "fukuchi-rbds").glob("RBDS*run*forces.txt")):
        rec = load_recording(f)
        res = analyze_recording(rec)
        steps = res.steps
        from edge_agent.analysis.aggregator import summarize

        s = summarize(steps)
        results.append(
            {
                "file": f.name,
                "subject": rec.meta.get("subject"),
                "speed_m_s": rec.meta.get("speed_m_s"),
                "label": rec.meta.get("strike_label", {}),
                "body_mass_kg": rec.body_mass_kg,
                "plate_contacts": rec.meta.get("contacts"),
                "steps": len(steps),
                "cadence_spm": s.cadence_spm,
                "contact_ms": _stats([x.contact_ms for x in steps]),
                "impact_peak_share": (sum(x.impact_peak for x in steps) / len(steps)) if steps else None,
                "valr_bw_s": _stats([x.valr_bw_s for x in steps if x.lr_method == "impact_peak"]),
                "valr_fallback_bw_s": _stats([x.valr_bw_s for x in steps if x.lr_method == "fallback"]),
                "peak_force_bw": _stats([x.peak_force_bw for x in steps]),
                **_marker_strike(f, rec, steps),
            }
        )
    return results


def _marker_strike(forces: Path, rec: Recording, steps: list[Step]) -> dict[str, Any]:
    c3d = forces.parent / forces.name.replace("forces.txt", ".c3d")
    if not c3d.is_file() or "markers" not in str(rec.meta.get("side_assignment", "")):
        return {"marker_fsa_deg": None}
    fsa = marker_strike_angles(c3d, steps)
    n = len(fsa)
    return {
        "marker_fsa_deg": _stats(fsa),
        "marker_zone_share": {
            "rearfoot": sum(a > FSA_REARFOOT_DEG for a in fsa) / n if n else None,
            "midfoot": sum(FSA_FOREFOOT_DEG <= a <= FSA_REARFOOT_DEG for a in fsa) / n if n else None,
            "forefoot": sum(a < FSA_FOREFOOT_DEG for a in fsa) / n if n else None,
        },
    }


# -- 4. gaitpdb ---------------------------------------------------------------------------------------
def validate_gaitpdb(data: Path) -> list[dict[str, Any]]:
    results = []
    for f in sorted((data / "physionet-gaitpdb").glob("Ga*_*.txt")):
        rec = load_recording(f)
        res = analyze_recording(rec)
        from edge_agent.analysis.aggregator import summarize

        s = summarize(res.steps)
        results.append(
            {
                "file": f.name,
                "body_mass_kg": rec.body_mass_kg,
                "duration_s": rec.duration_s,
                "steps": len(res.steps),
                "cadence_spm": s.cadence_spm,
                "contact_ms": _stats([x.contact_ms for x in res.steps]),
                **_zone_share(res.steps),
            }
        )
    return results


def run_validation(data: Path) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {
            "moticon_gait_reports": validate_gait_reports(data),
            "plantar_activity": validate_plantar(data),
            "fukuchi": validate_fukuchi(data),
            "gaitpdb": validate_gaitpdb(data),
        }


# -- printing -----------------------------------------------------------------------------------------
def _n(v: Any, spec: str = ".1f") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return format(v, spec)


def _msd(st: dict[str, Any], spec: str = ".1f") -> str:
    return f"{_n(st['mean'], spec)} ± {_n(st['sd'], spec)} (max {_n(st['max_abs'], spec)})"


def _valr(st: dict[str, Any]) -> str:
    return f"{_n(st['mean'])} ± {_n(st['sd'])} (n {st['n']})"


def format_results(r: dict[str, Any]) -> str:
    lines: list[str] = []
    add = lines.append
    add("1. Moticon gait reports: our steps vs the vendor's (matched within ±150 ms of initial contact)")
    add(
        f"{'report':34} {'vendor':>6} {'ours':>5} {'match':>5}  {'IC Δ ms':24} {'toe-off Δ ms':24} "
        f"{'start x Δ (SI)':24} {'start y Δ':24} {'1st peak Δ %':24}"
    )
    for g in r["moticon_gait_reports"]:
        add(
            f"{g['report']:34} {g['vendor_steps']:6d} {g['our_steps']:5d} {g['matched']:5d}  {_msd(g['ic_ms']):24} "
            f"{_msd(g['to_ms']):24} {_msd(g['start_x'], '.3f'):24} {_msd(g['start_y'], '.3f'):24} "
            f"{_msd(g['first_peak_pct']):24}"
        )
        add(
            f"{'':34} strike-index error ≈ {_n(g['start_x_mm_mean_abs'])} mm mean |Δ| on a 270 mm insole; "
            f"body weight {g['body_weight_n']:.0f} N ({g['body_weight_source']})"
        )
    add("")
    add("2. Plantar-activity (Moticon, 100 Hz): strike-zone shares per labelled segment")
    add(
        f"{'sequence':16} {'stand BW N':>10} {'vendor N':>9}  {'segment':20} {'steps':>5} {'rear':>5} {'mid':>5} "
        f"{'fore':>5} {'SI':>5}"
    )
    for p in r["plantar_activity"]:
        first = True
        for label in ("Walking", "Walking on tiptoes", "Jogging"):
            z = p.get(label)
            if not z:
                continue
            head = (
                f"{p['sequence']:16} {_n(p['standing_bw_n'], '.0f'):>10} {_n(p['standing_bw_vendor_n'], '.0f'):>9}"
                if first
                else " " * 37
            )
            first = False
            add(
                f"{head}  {label:20} {z['steps']:5d} {_n(100 * z['rearfoot'], '.0f'):>5} "
                f"{_n(100 * z['midfoot'], '.0f'):>5} {_n(100 * z['forefoot'], '.0f'):>5} {_n(z['si_mean'], '.2f'):>5}"
            )
    add("")
    add("3. Fukuchi treadmill running, force plate 300 Hz (no strike index from a force plate)")
    add(
        f"{'file':26} {'label':10} {'m/s':>4} {'kg':>4} {'plate':>5} {'steps':>5} {'cad spm':>7} "
        f"{'contact ms':>18} {'impact %':>8} {'VALR BW/s (impact)':>24} {'fallback LR':>12}"
    )
    for f in r["fukuchi"]:
        lab = "/".join(sorted(set(f["label"].values()))) if f["label"] else "?"
        add(
            f"{f['file']:26} {lab:10} {_n(f['speed_m_s']):>4} {_n(f['body_mass_kg'], '.0f'):>4} "
            f"{f['plate_contacts']:5d} {f['steps']:5d} {_n(f['cadence_spm']):>7} "
            f"{_n(f['contact_ms']['mean'], '.0f') + ' ± ' + _n(f['contact_ms']['sd'], '.0f'):>18} "
            f"{_n(None if f['impact_peak_share'] is None else 100 * f['impact_peak_share'], '.0f'):>8} "
            f"{_valr(f['valr_bw_s']):>24}"
            f" {_n(f['valr_fallback_bw_s']['mean']):>12}"
        )
        if f.get("marker_fsa_deg"):
            z = f["marker_zone_share"]
            add(
                f"{'':26} markers (same trial): foot-strike angle {_msd(f['marker_fsa_deg'])} deg → rearfoot "
                f"{_n(100 * z['rearfoot'], '.0f')} %, midfoot {_n(100 * z['midfoot'], '.0f')} %, forefoot "
                f"{_n(100 * z['forefoot'], '.0f')} % (Altman & Davis 2012: > 8° rearfoot, < −1.6° forefoot)"
            )
    add("")
    add("4. PhysioNet gaitpdb control walks (Ultraflex 8 force sensors, 100 Hz)")
    for g in r["gaitpdb"]:
        add(
            f"{g['file']:16} {g['duration_s']:6.1f} s  steps {g['steps']:4d}  cadence {_n(g['cadence_spm'])} spm  "
            f"contact {_n(g['contact_ms']['mean'], '.0f')} ms  rearfoot {_n(100 * g['rearfoot'], '.0f')} %"
        )
    return "\n".join(lines) + "\n"


def _rates(text: str) -> list[float]:
    try:
        rates = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated sample rates in Hz, e.g. 50,100,200") from None
    if not rates or any(not (10.0 <= r <= 2000.0) for r in rates):
        raise argparse.ArgumentTypeError(f"{text!r}: sample rates must lie in 10–2000 Hz")
    return rates


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edge_agent.analysis.validate", description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    ap.add_argument("--json", action="store_true", help="print JSON instead of tables")
    ap.add_argument(
        "--rates",
        type=_rates,
        metavar="HZ,HZ,…",
        help="per-rate bias and scatter of VALR, contact time and strike index (edge_agent.analysis.validate_rates)",
    )
    ap.add_argument("--phases", type=int, default=16, help="--rates: sampling phases per plate trial (default 16)")
    ap.add_argument("--seeds", type=int, default=3, help="--rates: simulated runners per force family (default 3)")
    ap.add_argument("--markdown", action="store_true", help="--rates: Markdown tables (docs/validation.md)")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"validate: {args.data}: no such folder (the shared recordings)", file=sys.stderr)
        return 2
    if args.rates:
        from edge_agent.analysis import validate_rates as vr

        if args.phases < 1 or args.seeds < 1:
            print("validate: --phases and --seeds must be at least 1", file=sys.stderr)
            return 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = vr.run_rates(args.data, args.rates, args.phases, args.seeds)
        if args.json:
            print(json.dumps(out, indent=2, default=lambda o: None, allow_nan=False))
        else:
            sys.stdout.write(vr.markdown_rates(out) if args.markdown else vr.format_rates(out))
        return 0
    res = run_validation(args.data)
    if args.json:
        print(json.dumps(res, indent=2, default=lambda o: None, allow_nan=True))
    else:
        sys.stdout.write(format_results(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
