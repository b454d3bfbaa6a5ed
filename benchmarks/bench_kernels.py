"""Benchmark of the step kernels: one run, one core, printed ratios (no asserts; see docs/measures.md).

    python benchmarks/bench_kernels.py            # full (~1–2 min on the 2-core VM)
    python benchmarks/bench_kernels.py --quick    # smaller arrays, for a smoke run
    python benchmarks/bench_kernels.py --baseline ../main   # only: this tree against another checkout, A/B

Measures, for 16-, 99- and ~1000-sensor profiles at 100 Hz: frames/s and the multiple of real time
of the whole analysis (``analyze_recording``: both feet, Step records, flight times), the kernel
alone, the sensor reduction alone against the memory-read bound (single-threaded BLAS ``raw @ w``
over the same float32 array), the numpy reference and pure Python on the same frames, cost per
frame × sensor (linearity), JIT compile time cold (fresh ``NUMBA_CACHE_DIR``) and warm, peak RSS.
"""

from __future__ import annotations

import os

# one core: BLAS and numba threads must be pinned before numpy/numba are imported
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["FOOTFALL_KERNELS"] = "jit"  # the tables measure numba; the AOT build is compared at the end

import argparse  # noqa: E402
import contextlib  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_agent.analysis.analyzer import AnalysisConfig, FootAnalyzer, analyze_recording, kernel_setup  # noqa: E402
from edge_agent.analysis.kernels import steps as K  # noqa: E402
from edge_agent.profiles import HardwareProfile, load_profile  # noqa: E402
from edge_agent.recordings import FootStream, Recording  # noqa: E402
from edge_agent.recordings.simulator import RunParams, simulate  # noqa: E402
from tests.agent.reference import analyze_reference  # noqa: E402

PROFILES = ["moticon-opengo", "pedar-99", "grid-60x21"]
BW_N = 70.0 * 9.80665


def best_of(fn, repeat: int = 3) -> float:
    """Best CPU time of this (single-threaded) process over ``repeat`` runs.

    CPU time, not wall time: the VM's 2 cores are shared, and wall time would mostly measure the
    other tenants. Everything measured here runs on one thread (BLAS pinned to 1 thread).
    """
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def tiled_run(profile: HardwareProfile, n_frames: int) -> Recording:
    """A simulated 60 s run (100 Hz, both feet) repeated to ``n_frames`` per foot, clock continuous."""
    rec, _ = simulate(profile, RunParams(duration_s=60, seed=1, sample_rate_hz=profile.sample_rate_hz))
    feet = {}
    for side in ("left", "right"):
        base = getattr(rec, side).raw
        raw = np.ascontiguousarray(np.tile(base, (-(-n_frames // len(base)), 1))[:n_frames])
        t = np.arange(n_frames, dtype=np.float64) / profile.sample_rate_hz
        feet[side] = FootStream(t=t, raw=raw)
    return Recording(
        profile=profile.name,
        left=feet["left"],
        right=feet["right"],
        body_mass_kg=70.0,
        notes="benchmark",
        source="benchmark",
    )


def jit_times() -> tuple[float, float, float, int]:
    """(import s, cold compile s, warm cache-load s, RSS kB of the warm process) in fresh processes."""
    code = textwrap.dedent(
        """
        import time, resource
        t0 = time.perf_counter()
        import numpy as np
        from edge_agent.analysis.analyzer import FootAnalyzer
        from edge_agent.profiles import load_profile
        t1 = time.perf_counter()
        p = load_profile("moticon-opengo")
        fa = FootAnalyzer(p, "left", 686.0)
        fa.feed(np.arange(300) / 100.0, np.zeros((300, 16), np.float32))
        fa.flush()
        t2 = time.perf_counter()
        print(t1 - t0, t2 - t1, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        """
    )
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(REPO))
        runs = []
        for _ in range(2):
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout.split()
            runs.append((float(out[0]), float(out[1]), int(out[2])))
    return runs[1][0], runs[0][1], runs[1][1], runs[1][2]


#: One A/B measurement in a fresh process of one source tree: whole analysis (both feet) and one foot
#: (kernel + Step records) of the same frames, best CPU time of ``repeat``; prints two numbers (M frames/s).
_AB_CODE = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from edge_agent.analysis.analyzer import AnalysisConfig, FootAnalyzer, analyze_recording
    from edge_agent.profiles import load_profile
    from edge_agent.recordings import FootStream, Recording
    d = np.load(sys.argv[1])
    repeat = int(sys.argv[2])
    prof = load_profile("moticon-opengo")
    rec = Recording(profile=prof.name, left=FootStream(d["t"], d["left"]), right=FootStream(d["t"], d["right"]),
                    body_mass_kg=70.0, notes="benchmark", source="benchmark")
    cfg = AnalysisConfig(body_mass_kg=70.0)
    analyze_recording(rec, prof, config=cfg, chunk_frames=4096)
    def best(fn):
        b = float("inf")
        for _ in range(repeat):
            t0 = time.process_time(); fn(); b = min(b, time.process_time() - t0)
        return b
    n = len(d["t"])
    whole = best(lambda: analyze_recording(rec, prof, config=cfg, chunk_frames=65536))
    foot = best(lambda: FootAnalyzer(prof, "left", 686.0).feed(rec.left.t, rec.left.raw))
    print(2 * n / whole / 1e6, n / foot / 1e6)
    """
)


def compare_trees(baseline: Path, quick: bool, rounds: int = 4) -> None:
    """This tree against ``baseline`` (another checkout) on identical frames: 2×16 sensors at 100 Hz,
    measured in fresh processes that alternate between the two trees (each with its own numba cache),
    so both see the same machine load; the best of all rounds per tree, and their ratio."""
    prof = load_profile("moticon-opengo")
    n = 250_000 if quick else 1_500_000
    rec = tiled_run(prof, n)
    trees = {"this tree": REPO, "baseline": baseline.resolve()}
    res: dict[str, list[tuple[float, float]]] = {k: [] for k in trees}
    with tempfile.TemporaryDirectory() as d:
        frames = Path(d) / "frames.npz"
        np.savez(frames, t=rec.left.t, left=rec.left.raw, right=rec.right.raw)
        caches = {k: Path(d) / f"numba-{i}" for i, k in enumerate(trees)}
        for _ in range(rounds):
            for name, tree in trees.items():
                env = dict(os.environ, PYTHONPATH=str(tree), NUMBA_CACHE_DIR=str(caches[name]), FOOTFALL_KERNELS="jit")
                out = subprocess.run(
                    [sys.executable, "-c", _AB_CODE, str(frames), "3"],
                    env=env, cwd=tree, capture_output=True, text=True, check=True,
                ).stdout.split()  # fmt: skip
                res[name].append((float(out[0]), float(out[1])))
    print(f"A/B, moticon-opengo 2×16 sensors at 100 Hz, {n:,} frames per foot, {rounds} alternating rounds "
          f"(fresh processes, best of 3 CPU times each), load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{'tree':12} {'path':40} {'whole M fr/s (best, all rounds)':>44} {'1 foot M fr/s (best)':>22}")
    for name, tree in trees.items():
        w = [r[0] for r in res[name]]
        f = [r[1] for r in res[name]]
        rounds_txt = " ".join(f"{x:.1f}" for x in w)
        print(f"{name:12} {tree!s:40} {max(w):>8.2f} ({rounds_txt:>32}) {max(f):>22.2f}")
    this, base = res["this tree"], res["baseline"]
    print(
        f"ratio this/baseline: whole {max(r[0] for r in this) / max(r[0] for r in base):.3f}, "
        f"1 foot {max(r[1] for r in this) / max(r[1] for r in base):.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller arrays (smoke run)")
    ap.add_argument("--baseline", type=Path, help="only compare this tree with another checkout (A/B)")
    args = ap.parse_args()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    if args.baseline:
        compare_trees(args.baseline, args.quick)
        return
    elements = 4_000_000 if args.quick else 24_000_000  # float32 samples per foot (~96 MB, beyond cache)
    print(
        f"footfall kernel benchmark — one core, CPU time, numpy {np.__version__}, OPENBLAS_NUM_THREADS=1, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    imp, cold, warm, rss_agent = jit_times()
    print(
        f"JIT: import {imp:.2f} s; first analysis cold (fresh NUMBA_CACHE_DIR, compiles) {cold:.2f} s; "
        f"warm (cache hit) {warm:.2f} s; RSS of that process {rss_agent / 1024:.0f} MB"
    )
    print()
    hdr = (
        f"{'profile':16} {'S':>4} {'frames/foot':>11} {'whole M fr/s':>12} {'x real time':>11} "
        f"{'1 foot M/s':>10} {'reduce M/s':>10} {'BLAS M/s':>9} {'red/BLAS':>8} {'ns/fr·S':>7}"
    )
    print(hdr)
    print("-" * len(hdr))
    ref_rows = []
    per_frame: list[tuple[int, float]] = []
    for name in PROFILES:
        prof = load_profile(name)
        s = prof.n_sensors
        n = max(20_000, elements // s)
        rec = tiled_run(prof, n)
        cfg = AnalysisConfig(body_mass_kg=70.0)
        analyze_recording(rec, prof, config=cfg, chunk_frames=4096)  # JIT warm-up
        t_whole = best_of(
            lambda rec=rec, prof=prof, cfg=cfg: analyze_recording(rec, prof, config=cfg, chunk_frames=65536)
        )
        fr_whole = 2 * n / t_whole
        x_real = (n / prof.sample_rate_hz) / t_whole

        def kernel_only(prof=prof, rec=rec) -> None:
            fa = FootAnalyzer(prof, "left", BW_N)
            fa.feed(rec.left.t, rec.left.raw)

        t_kernel = best_of(kernel_only)
        su = kernel_setup(prof, BW_N, cfg)
        out = np.zeros((n, 3))
        raw = rec.left.raw
        rawi = raw.view(np.int32)
        sat_bits = int(su.params[K.P_SAT_BITS])
        K.reduce_frames(raw[:10], rawi[:10], su.wf, su.wx, su.wy, sat_bits, out)
        t_red = best_of(
            lambda raw=raw, rawi=rawi, su=su, out=out, sb=sat_bits: K.reduce_frames(
                raw, rawi, su.wf, su.wx, su.wy, sb, out
            )
        )
        w = su.wf.astype(np.float32)
        t_blas = best_of(lambda raw=raw, w=w: raw @ w)
        print(
            f"{name:16} {s:>4} {n:>11,} {fr_whole / 1e6:>12.2f} {x_real:>11,.0f} {n / t_kernel / 1e6:>10.2f} "
            f"{n / t_red / 1e6:>10.2f} {n / t_blas / 1e6:>9.2f} {t_blas / t_red:>8.2f} "
            f"{t_kernel / n / s * 1e9:>7.2f}"
        )
        ref_rows.append((name, prof, rec, su, n / t_kernel))
        per_frame.append((s, t_kernel / n * 1e9))
    print()
    print(
        "whole = analyze_recording, both feet (frames of both counted), Step records and flight times; "
        "x real time = recorded seconds per CPU second;"
    )
    print("1 foot = FootAnalyzer.feed (kernel + Step records); reduce = the per-frame sensor reduction alone;")
    print(
        "BLAS bound = single-threaded sgemv raw @ w over the same float32 array (1 output; the reduction "
        "computes 3: F, Σf·x, Σf·y)."
    )
    sens = np.array([p[0] for p in per_frame], dtype=float)
    nsf = np.array([p[1] for p in per_frame])
    slope, icpt = np.polyfit(sens, nsf, 1)
    fit = ", ".join(f"S={int(a)}: {b:.0f} ns (fit {icpt + slope * a:.0f})" for a, b in zip(sens, nsf, strict=True))
    print(f"cost per frame (1 foot) ≈ {icpt:.0f} ns + {slope:.2f} ns × sensors   [{fit}]")
    print()
    print(
        f"{'profile':16} {'numba fr/s':>12} {'numpy ref fr/s':>15} {'pure Py fr/s':>13} {'numba/numpy':>11} "
        f"{'numba/pure':>10}"
    )
    for name, prof, rec, su, fr_numba in ref_rows:
        m = min(len(rec.left.t), 60_000 if not args.quick else 20_000) // (1 if prof.n_sensors < 100 else 4)
        t, raw = rec.left.t[:m], rec.left.raw[:m]
        t_np = best_of(lambda t=t, raw=raw, prof=prof, su=su: analyze_reference(t, raw, prof, su.params), 1)
        mp = max(2_000, m // (10 if prof.n_sensors < 100 else 20))
        t_py = best_of(
            lambda prof=prof, rec=rec, su=su, mp=mp: analyze_reference(
                rec.left.t[:mp], rec.left.raw[:mp], prof, su.params, pure_python=True
            ),
            1,
        )
        print(
            f"{name:16} {fr_numba:>12,.0f} {m / t_np:>15,.0f} {mp / t_py:>13,.0f} "
            f"{fr_numba / (m / t_np):>11.0f} {fr_numba / (mp / t_py):>10.0f}"
        )
    print()
    prof, rec = ref_rows[0][1], ref_rows[0][2]
    print("linearity in frames (moticon-opengo, kernel only): ", end="")
    for frac in (0.25, 0.5, 1.0):
        m = int(len(rec.left.t) * frac)

        def part(m=m) -> None:
            fa = FootAnalyzer(prof, "left", BW_N)
            fa.feed(rec.left.t[:m], rec.left.raw[:m])

        print(f"{m:,} frames {best_of(part) / m * 1e9:.1f} ns/frame; ", end="")
    print()
    print()
    aot_vs_jit(ref_rows)
    print(f"peak RSS of this benchmark: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def aot_vs_jit(rows: list) -> None:
    """The ahead-of-time build (edge_agent/analysis/kernels/aot.py, generic CPU) against the JIT (host CPU),
    kernel + Step records for one foot on the same frames, measured side by side."""
    from edge_agent.analysis.kernels import Kernels, aot

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        path = aot.build(Path(d))
        build_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        mod = aot.load(Path(d))
    assert mod is not None
    k_aot = Kernels(mod.run_chunk, mod.flush_state, "aot", str(path))
    print(f"ahead-of-time build: {build_s:.1f} s wall (pycc + cc), {size_mb:.1f} MB")
    print(f"{'profile':16} {'JIT 1 foot M/s':>14} {'AOT 1 foot M/s':>14} {'AOT/JIT':>8}")
    for name, prof, rec, _su, fr_jit in rows:

        def run(prof=prof, rec=rec) -> None:
            FootAnalyzer(prof, "left", BW_N, kernels=k_aot).feed(rec.left.t, rec.left.raw)

        fr_aot = len(rec.left.t) / best_of(run)
        print(f"{name:16} {fr_jit / 1e6:>14.2f} {fr_aot / 1e6:>14.2f} {fr_aot / fr_jit:>8.2f}")


if __name__ == "__main__":
    main()
