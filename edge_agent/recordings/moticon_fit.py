"""Fit the Moticon OpenGo cell areas and positions from vendor exports; write the profile YAML.

Why: Moticon does not publish where its 16 cells sit or how large they are, but every exported
sample carries all 16 pressures (N/cm²) *and* the vendor's own total force (N) and centre of
pressure (CoP, x: −0.5 heel … +0.5 toe, y: ±0.5 across). Both are linear in the unknowns:

    total      = Σ pᵢ·aᵢ            → least squares for aᵢ (checked non-negative)
    CoPx·total = Σ pᵢ·aᵢ·xᵢ         → least squares for bᵢ = aᵢ·xᵢ on the columns pᵢ·aᵢ, xᵢ = bᵢ
    CoPy·total = Σ pᵢ·aᵢ·yᵢ         (same for y)

Left and right are fitted separately and must agree (the vendor already reports CoP in a
foot-relative, mirrored frame). Positions come from all sessions pooled (they are size-free);
areas scale with insole size, so they are fitted per session and the profile keeps the areas of
the size-7 insoles that recorded the `moticon-opengo` exports with gait reports.

Usage: python -m edge_agent.recordings.moticon_fit [DATA_DIR] [--write hardware_profiles/moticon-opengo.yaml]
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np
import yaml

from edge_agent.profiles import parse_profile, region_of

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
MIN_FORCE_N = 50.0  # fit only loaded samples: the vendor CoP is 0 below its own contact threshold
INSOLE_MM = 270.0
# Anatomical labels from the dataset README (cells 1–2 heel, 9–14 metatarsal heads, 15–16 toes), except
# cell 14: it fits at x ≈ 0.91, level with toe cell 15 and 0.16 ahead of the metatarsal row 9–13, so the
# data say it lies under the hallux. Cells not listed get the region of their fitted position.
README_REGION = {1: "heel", 2: "heel", **{i: "forefoot" for i in range(9, 14)}, 15: "toes", 16: "toes"}


def _load_sessions(data: Path) -> list[tuple[str, str, np.ndarray]]:
    """(name, size, 51-column matrix) per session; blank cells (a side not yet streaming) → NaN."""
    out: list[tuple[str, str, np.ndarray]] = []
    for f in sorted((data / "plantar-activity-moticon").glob("S0*/Sequence_*/insoles.csv.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            fh.readline()
            out.append((str(f.relative_to(data)), "unknown", np.loadtxt(fh, delimiter=";")))
    for f in sorted((data / "moticon-opengo").glob("*.txt")):
        size = "unknown"
        rows = []
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.startswith("# Size:"):
                size = line.split(":", 1)[1].strip()
            if line.startswith("#") or not line.strip():
                continue
            cells = line.split("\t")[:51]
            rows.append([float(c) if c.strip() else np.nan for c in cells])
        out.append((str(f.relative_to(data)), size, np.asarray(rows)))
    return out


def _side(a: np.ndarray, side: str) -> tuple[np.ndarray, ...]:
    off = 1 if side == "left" else 26
    p, tot, cx, cy = a[:, off : off + 16], a[:, off + 22], a[:, off + 23], a[:, off + 24]
    ok = ~np.isnan(p).any(axis=1) & np.isfinite(tot) & (tot > MIN_FORCE_N)
    return p[ok], tot[ok], cx[ok], cy[ok]


def fit(data: Path) -> dict:
    sessions = _load_sessions(data)
    result: dict = {"sides": {}, "sessions": []}
    for side in ("left", "right"):
        parts = [_side(a, side) for _, _, a in sessions]
        # positions: pool every session, each with its own areas (areas differ by size)
        wx, tx, ty = [], [], []
        for name, size, a in sessions:
            p, tot, cx, cy = _side(a, side)
            area, *_ = np.linalg.lstsq(p, tot, rcond=None)
            if (area <= 0).any():
                raise SystemExit(f"{name} {side}: negative area fitted {area}")
            err = np.abs(p @ area - tot) / tot * 100
            result["sessions"].append(
                {
                    "session": name,
                    "size": size,
                    "side": side,
                    "samples": len(tot),
                    "areas": area,
                    "force_err_pct_mean": float(err.mean()),
                    "force_err_pct_p99": float(np.percentile(err, 99)),
                }
            )
            w = p * area
            wx.append(w)
            tx.append(cx * tot)
            ty.append(cy * tot)
        w_all = np.vstack(wx)
        bx, *_ = np.linalg.lstsq(w_all, np.concatenate(tx), rcond=None)
        by, *_ = np.linalg.lstsq(w_all, np.concatenate(ty), rcond=None)
        force = w_all.sum(axis=1)
        cop_x = np.concatenate(tx) / force
        cop_y = np.concatenate(ty) / force
        ex = np.abs(w_all @ bx / force - cop_x)
        ey = np.abs(w_all @ by / force - cop_y)
        result["sides"][side] = {
            "x": bx,
            "y": by,
            "samples": len(force),
            "n_parts": len(parts),
            "cop_x_err_mean": float(ex.mean()),
            "cop_x_err_p99": float(np.percentile(ex, 99)),
            "cop_y_err_mean": float(ey.mean()),
            "cop_y_err_p99": float(np.percentile(ey, 99)),
        }
    return result


def profile_dict(res: dict) -> dict:
    left, right = res["sides"]["left"], res["sides"]["right"]
    size7 = [s["areas"] for s in res["sessions"] if s["size"] == "7"]
    areas = np.mean(size7, axis=0)
    # Vendor frame: x −0.5 heel … +0.5 toe → ours 0…1. Vendor y is +medial on both feet (cells 9→13,
    # the metatarsal heads, step back as y falls — the 1st MT head is the most anterior, so +y is
    # medial; the toe cells 14→16 do the same); ours is 0 medial … 1 lateral, so y = 0.5 − y_vendor.
    x = 0.5 + (left["x"] + right["x"]) / 2
    y = 0.5 - (left["y"] + right["y"]) / 2
    sensors = []
    for i in range(16):
        region = README_REGION.get(i + 1, region_of(float(x[i])))
        sensors.append(
            {
                "x": round(float(x[i]), 4),
                "y": round(float(y[i]), 4),
                "area_cm2": round(float(areas[i]), 3),
                "region": region,
                "label": f"cell {i + 1}",
            }
        )
    fx = left["cop_x_err_mean"]
    f_err = max(s["force_err_pct_mean"] for s in res["sessions"])
    return {
        "name": "moticon-opengo",
        "description": "Moticon OpenGo pressure insoles (16 capacitive cells, 6-axis IMU), size 7 areas.",
        "vendor": "Moticon ReGo AG",
        "sample_rate_hz": 100.0,
        "raw_unit": "N/cm2",
        "raw_max": 50.0,
        "sensor_type": "capacitive",
        "insole_length_mm": INSOLE_MM,
        "source": (
            "Cell areas and positions fitted by edge_agent/recordings/moticon_fit.py (least squares: "
            "vendor total force = sum p_i a_i, vendor CoP x total = sum p_i a_i x_i) on the "
            "plantar-activity S04/S05 sequences and "
            "the moticon-rego/moticon-opengo text exports (Apache-2.0). Left/right fits agree; areas are the "
            f"size-7 fit (other sizes scale the areas, see docs/profiles.md). Residuals: total force "
            f"{f_err:.2f} % mean, CoP x {fx:.1e} insole units mean. Regions: dataset README for cells 1-2, "
            "9-13, 15-16; fitted position for cells 3-8 and 14 (fits under the hallux)."
        ),
        "sensors": sensors,
    }


HEADER = "# Generated by edge_agent/recordings/moticon_fit.py from ../shared/data; do not edit by hand.\n"


def render(prof: dict) -> str:
    """The committed YAML text of the fitted profile."""
    return HEADER + yaml.safe_dump(prof, sort_keys=False, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", type=Path, default=DATA)
    ap.add_argument("--write", type=Path, help="write the profile YAML here")
    args = ap.parse_args(argv)
    res = fit(args.data)
    print(f"{'session':58} {'side':5} {'size':7} {'n':>6} {'F err %':>8} {'p99 %':>6}  area scale vs size 7")
    ref = np.mean([s["areas"] for s in res["sessions"] if s["size"] == "7"], axis=0)
    for s in res["sessions"]:
        scale = float(np.median(s["areas"] / ref))
        print(
            f"{s['session']:58} {s['side']:5} {s['size']:7} {s['samples']:6d} "
            f"{s['force_err_pct_mean']:8.3f} {s['force_err_pct_p99']:6.2f}  {scale:.3f}"
        )
    for side, r in res["sides"].items():
        print(
            f"{side}: CoP x error mean {r['cop_x_err_mean']:.2e} (p99 {r['cop_x_err_p99']:.2e}) insole units "
            f"= {r['cop_x_err_mean'] * INSOLE_MM:.4f} mm; CoP y mean {r['cop_y_err_mean']:.2e} "
            f"(p99 {r['cop_y_err_p99']:.2e}); {r['samples']} samples"
        )
    dx = np.abs(res["sides"]["left"]["x"] - res["sides"]["right"]["x"]).max()
    dy = np.abs(res["sides"]["left"]["y"] - res["sides"]["right"]["y"]).max()
    print(f"mirror consistency: max |x_L − x_R| = {dx:.4f}, max |y_L − y_R| = {dy:.4f} (vendor units)")
    prof = profile_dict(res)
    parse_profile(prof, "fit result")
    for i, s in enumerate(prof["sensors"], 1):
        print(f"  cell {i:2d}: x={s['x']:.3f} y={s['y']:.3f} area={s['area_cm2']:.2f} cm² {s['region']}")
    if args.write:
        args.write.write_text(render(prof), encoding="utf-8")
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
