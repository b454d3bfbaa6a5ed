"""Calibrate the loading-rate intervals of edge_agent/analysis/loading_rate.py (prints the tables it holds).

    python docs/calibrate_loading_rate.py [DATA_DIR] [--seeds 8] [--phases 16]

1. Per step: the simulator's force families (edge_agent.recordings.simulator.FORCE_FAMILIES, ``--seeds``
   runners each, 30 s, the moticon-opengo insole with its unloading lag) at 50/100/200/300 Hz against the
   continuous truth. Per rate and case (rise, rise_prior, impact, fallback) the interval multipliers are
   ``(exp(q05), exp(q95))`` of ln(truth / estimate): 90 % of steps fall inside ``[VALR·m_lo, VALR·m_hi]``.
   A leave-one-family-out check prints how the table covers a family it was not fitted on.
2. Per run: the same runners, and (with DATA_DIR) the Fukuchi plate trials re-sampled at ``--phases``
   phases against their 300 Hz analysis (each phase a run). Per rate the smallest systematic terms
   ``b_lo``, ``b_hi`` (steps of 0.005) for which at most 5 % of runs fall below, and at most 5 % above, the
   run interval of loading_rate.mean_estimate.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_agent.analysis import loading_rate as LR  # noqa: E402
from edge_agent.analysis.analyzer import AnalysisConfig, analyze_recording  # noqa: E402
from edge_agent.analysis.validate_rates import PLATE_TRIALS, golden_phases, match, resample  # noqa: E402
from edge_agent.profiles import load_profile  # noqa: E402
from edge_agent.recordings import load_recording  # noqa: E402
from edge_agent.recordings.simulator import FORCE_FAMILIES, family_params, simulate  # noqa: E402

RATES = LR.TABLE_RATES
MIN_STEPS = 20  # a family's quantiles count in a cell from this many steps
FLOOR = 0.03  # run terms: at least the scatter of the 300 Hz reference itself (re-sampled at other phases)


def synthetic_runs(seeds: int) -> list[dict]:
    prof = load_profile("moticon-opengo").model_copy(update={"raw_max": None})
    runs = []
    for fam in FORCE_FAMILIES:
        for fs in RATES:
            for seed in range(seeds):
                rec, truths = simulate(prof, family_params(fam, 100 + seed, duration_s=30, sample_rate_hz=fs))
                res = analyze_recording(rec, prof, config=AnalysisConfig(sample_rate_hz=fs))
                pairs = [(tr.valr_bw_s, s) for tr, s in match(truths, res.steps, 0.02) if s.valr_bw_s]
                runs.append({"source": fam, "fs": fs, "pairs": pairs})
    return runs


def plate_runs(data: Path, phases: int) -> list[dict]:
    runs = []
    for label, name in PLATE_TRIALS:
        rec = load_recording(data / "fukuchi-rbds" / name)
        ref = analyze_recording(rec, body_mass_kg=rec.body_mass_kg).steps
        for fs in RATES:
            for ph in golden_phases(phases):
                res = analyze_recording(
                    resample(rec, fs, ph), body_mass_kg=rec.body_mass_kg, config=AnalysisConfig(sample_rate_hz=fs)
                )
                pairs = [(r.valr_bw_s, s) for r, s in match(ref, res.steps, 0.02) if s.valr_bw_s and r.valr_bw_s]
                runs.append({"source": f"plate {label}", "fs": fs, "pairs": pairs})
    return runs


def case_of(s) -> str:  # type: ignore[no-untyped-def]
    return LR.step_case(s.impact_peak, s.lr_model)


def step_table(runs: list[dict], verbose: bool = True) -> dict[str, list[tuple[float, float]]]:
    """Per case and rate the envelope over families of their 5 %/95 % quantiles of ln(truth/estimate), so that
    each family (not just the pooled mix) is covered; cells without a family of ≥ MIN_STEPS steps take the
    envelope of the neighbouring rates."""
    table: dict[str, list[tuple[float, float] | None]] = {c: [] for c in LR.CASES}
    for case in LR.CASES:
        for fs in RATES:
            qs = []
            for fam in sorted({r["source"] for r in runs}):
                le = [
                    math.log(v / s.valr_bw_s)
                    for r in runs
                    if r["fs"] == fs and r["source"] == fam
                    for v, s in r["pairs"]
                    if case_of(s) == case
                ]
                if len(le) >= MIN_STEPS:
                    qs.append((np.percentile(le, 5), np.percentile(le, 95), fam, len(le)))
            if not qs:
                table[case].append(None)
                continue
            lo, hi = math.exp(min(q[0] for q in qs)), math.exp(max(q[1] for q in qs))
            table[case].append((lo, hi))
            if verbose:
                detail = ", ".join(f"{q[2]} ({math.exp(q[0]):.2f}, {math.exp(q[1]):.2f}) n {q[3]}" for q in qs)
                print(f"  {case:10} {fs:5.0f} Hz: ({lo:.2f}, {hi:.2f}) ← {detail}")
    out: dict[str, list[tuple[float, float]]] = {}
    for case, vals in table.items():
        filled = []
        for i, v in enumerate(vals):
            if v is None:
                near = [w for j, w in enumerate(vals) if w is not None and abs(j - i) == 1]
                near = near or [w for w in vals if w is not None] or [(1.0, 1.0)]
                v = (min(w[0] for w in near), max(w[1] for w in near))
            filled.append(v)
        out[case] = filled
    return out


def leave_one_family_out(runs: list[dict]) -> None:
    print("leave-one-family-out per-step coverage (table fitted without the family):")
    for fam in sorted({r["source"] for r in runs}):
        tab = step_table([r for r in runs if r["source"] != fam], verbose=False)
        parts = []
        for k, fs in enumerate(RATES):
            inside = [
                s.valr_bw_s * tab[case_of(s)][k][0] <= v <= s.valr_bw_s * tab[case_of(s)][k][1]
                for r in runs
                if r["source"] == fam and r["fs"] == fs
                for v, s in r["pairs"]
            ]
            parts.append(f"{fs:.0f} Hz {100 * np.mean(inside):.0f} %" if inside else f"{fs:.0f} Hz –")
        print(f"  {fam:22} " + ", ".join(parts))


def run_terms(runs: list[dict]) -> list[tuple[float, float]]:
    print(f"per run: smallest (b_lo, b_hi) ≥ {FLOOR} with ≤ 5 % of runs below / above their interval")
    grid = np.arange(FLOOR, 0.8001, 0.005)
    out = []
    for fs in RATES:
        rows = []
        for r in runs:
            if r["fs"] != fs or len(r["pairs"]) < 5:
                continue
            v = [s.valr_bw_s for _, s in r["pairs"]]
            rows.append((float(np.mean([t for t, _ in r["pairs"]])), v, r["pairs"]))
        if not rows:
            out.append((0.0, 0.0))
            continue

        def share(b_lo: float, b_hi: float, side: str, rows: list = rows, fs: float = fs) -> float:
            bad = 0
            for truth, _v, pairs in rows:
                est = LR.mean_estimate(
                    [s.valr_bw_s for _, s in pairs], [s.lr_correction for _, s in pairs],
                    [s.lr_model for _, s in pairs], fs, bias=(b_lo, b_hi),
                )  # fmt: skip
                assert est is not None
                bad += truth < est.lo if side == "lo" else truth > est.hi
            return bad / len(rows)

        b_lo = next(float(b) for b in grid if share(b, FLOOR, "lo") <= 0.05)
        b_hi = next(float(b) for b in grid if share(FLOOR, b, "hi") <= 0.05)
        cov = 1.0 - share(b_lo, b_hi, "lo") - share(b_lo, b_hi, "hi")
        out.append((round(b_lo, 3), round(b_hi, 3)))
        print(f"  {fs:5.0f} Hz: b_lo {b_lo:.3f}, b_hi {b_hi:.3f} ({len(rows)} runs, coverage {100 * cov:.0f} %)")
        for src in sorted({r["source"] for r in runs if r["fs"] == fs}):
            sub = [r for r in runs if r["fs"] == fs and r["source"] == src and len(r["pairs"]) >= 5]
            hit = []
            for r in sub:
                truth = float(np.mean([t for t, _ in r["pairs"]]))
                est = LR.mean_estimate(
                    [s.valr_bw_s for _, s in r["pairs"]], [s.lr_correction for _, s in r["pairs"]],
                    [s.lr_model for _, s in r["pairs"]], fs, bias=(b_lo, b_hi),
                )  # fmt: skip
                hit.append(est is not None and est.lo <= truth <= est.hi)
            print(f"      {src:32} {100 * np.mean(hit):5.0f} % of {len(hit)} runs")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", type=Path, help="../shared/data (adds the plate trials to the run terms)")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--phases", type=int, default=16)
    args = ap.parse_args()
    syn = synthetic_runs(args.seeds)
    print("per step: (m_lo, m_hi) = the families' envelope of exp(q05), exp(q95) of ln(truth/estimate)")
    table = step_table(syn)
    leave_one_family_out(syn)
    runs = syn + (plate_runs(args.data, args.phases) if args.data else [])
    terms = run_terms(runs)
    print()
    print("STEP_INTERVAL = {")
    for case, vals in table.items():
        print(f'    "{case}": ({", ".join(f"({a:.2f}, {b:.2f})" for a, b in vals)}),')
    print("}")
    print(f"RUN_BIAS = ({', '.join(f'({a:.3f}, {b:.3f})' for a, b in terms)})")


if __name__ == "__main__":
    main()
