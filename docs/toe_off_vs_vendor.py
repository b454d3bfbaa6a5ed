"""Why our toe-off is later than the Moticon vendor's (docs/measures.md §2): the numbers behind that note.

Usage: ``python docs/toe_off_vs_vendor.py ../shared/data``. Prints, for both Moticon gait reports, the
force at the vendor's events (in the vendor's own total-force column, N and fraction of the step's peak)
and the initial-contact / toe-off differences from the vendor if our steps' edges were re-measured at a
fraction of each step's own peak; then what that relative rule would do against the simulator's exact
contact edges at 100 Hz. Investigation only: the analysis is not changed by it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edge_agent.analysis.analyzer import analyze_recording, total_force
from edge_agent.analysis.step import Step
from edge_agent.profiles import load_profile
from edge_agent.recordings import load_recording
from edge_agent.recordings.simulator import RunParams, simulate

FRACTIONS = (0.05, 0.10, 0.15)


def relative_edges(t: np.ndarray, f: np.ndarray, s: Step, frac: float) -> tuple[float, float]:
    """Initial contact / toe-off of step ``s`` where ``f`` (floor removed) crosses ``frac`` × its peak."""
    m = (t >= s.t_contact - 0.05) & (t <= s.t_toe_off + 0.05)
    tt, ff = t[m], f[m]
    lvl = frac * ff.max()
    ip = int(np.argmax(ff))
    k = ip
    while k > 0 and ff[k - 1] >= lvl:
        k -= 1
    ic = float(np.interp(lvl, [ff[k - 1], ff[k]], [tt[k - 1], tt[k]])) if k > 0 else float(tt[0])
    k = ip
    while k < len(ff) - 1 and ff[k + 1] >= lvl:
        k += 1
    to = float(np.interp(lvl, [ff[k + 1], ff[k]], [tt[k + 1], tt[k]])) if k < len(ff) - 1 else float(tt[-1])
    return ic, to


def stats(d: list[float]) -> str:
    return f"{np.mean(d):+6.1f} ± {np.std(d):4.1f} ms"


def vendor(data: Path) -> None:
    prof = load_profile("moticon-opengo")
    print("Moticon gait reports (100 Hz walking): force at the vendor's events, and Δ = ours − vendor")
    for name in ("230927_102114.txt", "230927_102137.txt"):
        rec = load_recording(data / "moticon-opengo" / name)
        res = analyze_recording(rec)
        bw = res.body_weight_n
        dic: dict[float, list[float]] = {f: [] for f in (0.0, *FRACTIONS)}
        dto: dict[float, list[float]] = {f: [] for f in (0.0, *FRACTIONS)}
        lv_ic, lv_to, fr_ic, fr_to = [], [], [], []
        for side in ("left", "right"):
            st = getattr(rec, side)
            t = st.t
            f = total_force(prof, st.raw)  # the Moticon floor reads 0 N in the air
            vf = np.asarray(rec.reference[f"{side}_total_force_n"], dtype=float)
            for a, b in zip(
                rec.reference[f"{side}_initial_contact_s"], rec.reference[f"{side}_toe_off_s"], strict=True
            ):
                hit = [s for s in res.steps if s.side == side and abs(s.t_contact - a) < 0.15]
                if not hit:
                    continue
                s = hit[0]
                pk = vf[(t >= a) & (t <= b)].max()
                lv_ic.append(float(np.interp(a, t, vf)))
                lv_to.append(float(np.interp(b, t, vf)))
                fr_ic.append(lv_ic[-1] / pk)
                fr_to.append(lv_to[-1] / pk)
                for frac in dic:
                    ic, to = (s.t_contact, s.t_toe_off) if frac == 0 else relative_edges(t, f, s, frac)
                    dic[frac].append((ic - a) * 1000)
                    dto[frac].append((to - b) * 1000)
        print(
            f"{name}: BW {bw:.0f} N, ours ends at 0.03 BW = {0.03 * bw:.0f} N; vendor toe-off at "
            f"{np.median(lv_to):.0f} N ({min(lv_to):.0f}–{max(lv_to):.0f}) = {np.median(fr_to):.3f} of peak "
            f"({min(fr_to):.3f}–{max(fr_to):.3f}); vendor initial contact at {np.median(lv_ic):.0f} N = "
            f"{np.median(fr_ic):.3f} of peak"
        )
        for frac in dic:
            label = "ours (0.03 BW)" if frac == 0 else f"{frac:.2f} × peak"
            print(f"  {label:15s} IC Δ {stats(dic[frac])}   toe-off Δ {stats(dto[frac])}   (n {len(dic[frac])})")


def simulator() -> None:
    prof = load_profile("moticon-opengo").model_copy(update={"raw_max": None})
    rec, truths = simulate(prof, RunParams(duration_s=30, seed=2, walking_s=12.0))
    res = analyze_recording(rec)
    print("Simulator, 100 Hz, truth = the generated force's own start/end: error = ours − truth")
    for frac in (0.0, 0.10):
        err: dict[str, tuple[list[float], list[float]]] = {"walk": ([], []), "run": ([], [])}
        for tr in truths:
            st = getattr(rec, tr.side)
            f = total_force(prof, st.raw)
            hit = [s for s in res.steps if s.side == tr.side and abs(s.t_contact - tr.t_contact) < 0.02]
            if not hit:
                continue
            before = (st.t > tr.t_contact - 0.15) & (st.t < tr.t_contact)
            floor = float(f[before].min()) if before.any() else 0.0
            ic, to = (
                (hit[0].t_contact, hit[0].t_toe_off) if frac == 0 else relative_edges(st.t, f - floor, hit[0], frac)
            )
            err[tr.gait][0].append((ic - tr.t_contact) * 1000)
            err[tr.gait][1].append((to - tr.t_toe_off) * 1000)
        label = "ours (0.03 BW)" if frac == 0 else f"{frac:.2f} × peak"
        for gait, (e_ic, e_to) in err.items():
            print(
                f"  {label:15s} {gait}: IC {np.mean(e_ic):+5.1f} (max |{np.max(np.abs(e_ic)):.1f}|) ms, "
                f"toe-off {np.mean(e_to):+5.1f} (max |{np.max(np.abs(e_to)):.1f}|) ms, n {len(e_ic)}"
            )


if __name__ == "__main__":
    vendor(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
    simulator()
