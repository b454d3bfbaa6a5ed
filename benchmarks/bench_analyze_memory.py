"""Peak memory (and time) of ``footfall-agent analyze`` on a big plain-CSV recording, side by side in one run.

    python benchmarks/bench_analyze_memory.py                      # a 200 MB file (~1 min to write)
    python benchmarks/bench_analyze_memory.py --mb 20              # a quick smoke run
    python benchmarks/bench_analyze_memory.py --baseline-tree ../main   # also run another checkout's analyze

Writes a CSV of 2 × 16 sensors at 100 Hz (the simulator's moticon-opengo runner, repeated with shifted time)
and a junk file of the same size, then runs ``analyze`` on each in a fresh process and reads that process's own
peak RSS (``VmHWM`` from /proc, which starts afresh at exec, polled until it exits). Printed per run: peak RSS,
its ratio to the file size, and wall time. With ``--baseline-tree`` the same commands run against another source
tree (e.g. the commit before streaming) in the same session, so the ratios compare like with like on a shared
machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_agent.profiles import load_profile  # noqa: E402
from edge_agent.recordings.simulator import RunParams, simulate  # noqa: E402
from tests.support.processes import run_measured  # noqa: E402


def write_csv(path: Path, mb: float) -> int:
    """A valid recording of about ``mb`` megabytes; returns the number of rows."""
    rec, _ = simulate(load_profile("moticon-opengo"), RunParams(duration_s=120.0, seed=3))
    left, right = rec.left, rec.right
    assert left is not None and right is not None
    n = min(len(left.t), len(right.t))
    block = np.column_stack([left.t[:n] - left.t[0], left.raw[:n], right.raw[:n]])
    period = float(block[-1, 0] - block[0, 0]) + 0.01
    header = "time," + ",".join(f"left_{i}" for i in range(1, 17)) + "," + ",".join(f"right_{i}" for i in range(1, 17))
    rows = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(header + "\n")
        k = 0
        while f.tell() < mb * 1e6:
            part = block.copy()
            part[:, 0] += k * period
            np.savetxt(f, part, fmt=["%.3f"] + ["%.2f"] * 32, delimiter=",")
            rows += len(part)
            k += 1
    return rows


def write_junk(path: Path, mb: float) -> None:
    """Lines of random letters under a valid header: refused at line 2."""
    rng = np.random.default_rng(0)
    header = "time," + ",".join(f"left_{i}" for i in range(1, 17)) + "," + ",".join(f"right_{i}" for i in range(1, 17))
    line = bytes(rng.integers(97, 123, 199, dtype=np.uint8)) + b"\n"
    with open(path, "wb") as f:
        f.write(header.encode() + b"\n")
        block = line * 5000
        while f.tell() < mb * 1e6:
            f.write(block)


def measure(tree: Path, path: Path) -> tuple[float, float, int]:
    """(peak RSS MB, wall s, exit code) of ``analyze`` run from ``tree`` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "edge_agent.cli", "analyze", str(path), "--profile", "moticon-opengo",
            "--body-mass", "70", "--format", "json", "--no-progress", "-o", os.devnull]  # fmt: skip
    t0 = time.perf_counter()
    code, peak, _, _ = run_measured(argv, env=env, cwd=tree)
    return peak, time.perf_counter() - t0, code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=200.0, help="file size in MB (default 200)")
    ap.add_argument("--baseline-tree", type=Path, help="another checkout to run side by side (e.g. ../main)")
    args = ap.parse_args()
    trees = [("this tree", REPO)]
    if args.baseline_tree:
        trees.append(("baseline", args.baseline_tree.resolve()))
    with tempfile.TemporaryDirectory(prefix="footfall-mem-") as tmp:
        valid, junk = Path(tmp) / "big.csv", Path(tmp) / "junk.csv"
        t0 = time.perf_counter()
        rows = write_csv(valid, args.mb)
        write_junk(junk, args.mb)
        print(f"files: {valid.stat().st_size / 1e6:.0f} MB valid CSV ({rows:,} rows = {rows / 100 / 3600:.2f} h of "
              f"2 × 16 sensors at 100 Hz), {junk.stat().st_size / 1e6:.0f} MB junk; written in "
              f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
        print(f"{'tree':10} {'file':6} {'exit':>4} {'peak RSS MB':>12} {'× file':>7} {'wall s':>7}")
        for name, tree in trees:
            for label, path in (("valid", valid), ("junk", junk)):
                rss, wall, code = measure(tree, path)
                size = path.stat().st_size / 1e6
                print(f"{name:10} {label:6} {code:4d} {rss:12.0f} {rss / size:7.2f} {wall:7.1f}", flush=True)


if __name__ == "__main__":
    main()
