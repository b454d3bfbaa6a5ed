"""One hour of recording through ``footfall-agent analyze``, end to end, the variants side by side in one run.

    python benchmarks/bench_hour.py                               # this tree: table parser, text parser, AOT
    python benchmarks/bench_hour.py --baseline-rev a8e4854        # also a git revision (the old path)
    python benchmarks/bench_hour.py --repeat 5 --no-aot
    python benchmarks/bench_hour.py --parsers                     # also the CSV parser candidates in-process

Writes one hour of 2 × 16 sensors at 100 Hz (the simulator's moticon-opengo runner repeated with shifted time) as a
plain CSV (``time,left_1…,right_16``, 73 MB) and as a Moticon text export (``#`` header, tab-separated, the
vendor's column names, 64 MB), then runs ``analyze FILE --format json -o FILE`` on each in a fresh process per run,
the variants interleaved, ``--repeat`` rounds. Printed per variant and file (median of the rounds):

* ``end to end s``: the process from exec to exit (interpreter, imports, kernels, parsing, analysis, JSON);
* ``analyze s``: the ``analyze`` command inside that process (after the CLI is imported and the kernels loaded);
* ``× real time`` and ``M frames/s`` of the end-to-end time (frames of both feet: 720,000 an hour);
* ``peak RSS MB``: the process's own peak (``VmHWM`` read by the process as it ends; ``ru_maxrss`` from ``os.wait4``
  would include the high-water mark of this benchmark process, which forked it, as Linux keeps it across exec).

Variants: ``kernel`` (this tree as shipped: the numba table parser, JIT kernels from numba's cache), ``text`` (the
same with ``FOOTFALL_CSV_READER=text``: the text parser the kernel falls back to), ``aot`` (the kernels built ahead
of time into a temporary directory, so numba is never imported), and with ``--baseline-rev`` that revision's tree
(``git archive``), JIT. Every variant's JSON must be byte-identical to the first one's, or the run fails.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_agent.profiles import load_profile  # noqa: E402
from edge_agent.recordings.simulator import RunParams, simulate  # noqa: E402

SECONDS = 3600.0
RATE_HZ = 100.0
#: Runs ``analyze`` and reports its own time: after the CLI is imported and the kernels loaded.
DRIVER = """
import json, sys, time
import edge_agent.cli as cli
import edge_agent.analysis.report, edge_agent.recordings
from edge_agent.analysis.kernels import load_kernels
load_kernels()
t0 = time.perf_counter()
code = cli.main(sys.argv[1:])
dt = time.perf_counter() - t0
hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")]
print(json.dumps({"analyze_s": dt, "code": code, "vm_hwm_kb": int(hwm[0]) if hwm else None}), file=sys.stderr)
sys.exit(code)
"""


def hour_block(seconds: float = SECONDS) -> np.ndarray:
    """``time, left×16, right×16`` rows for ``seconds`` at 100 Hz: a 2-minute simulated run, repeated."""
    rec, _ = simulate(load_profile("moticon-opengo"), RunParams(duration_s=120.0, seed=3))
    assert rec.left is not None and rec.right is not None
    n = min(len(rec.left.t), len(rec.right.t))
    block = np.column_stack([np.arange(n) / RATE_HZ, rec.left.raw[:n], rec.right.raw[:n]])
    rows = int(seconds * RATE_HZ)
    reps = -(-rows // n)
    out = np.tile(block, (reps, 1))[:rows]
    out[:, 0] = np.arange(rows) / RATE_HZ
    return out


def write_plain_csv(path: Path, table: np.ndarray) -> None:
    head = "time," + ",".join([*(f"left_{i}" for i in range(1, 17)), *(f"right_{i}" for i in range(1, 17))])
    np.savetxt(path, table, fmt=["%.2f"] + ["%.2f"] * 32, delimiter=",", header=head, comments="")


def write_moticon_txt(path: Path, table: np.ndarray) -> None:
    """A Moticon OpenGo text export: ``#`` header lines, then tab-separated cells (N/cm²)."""
    cols = [
        "time",
        *(f"left pressure {i}[N/cm²]" for i in range(1, 17)),
        *(f"right pressure {i}[N/cm²]" for i in range(1, 17)),
    ]
    header = [
        "# Start time: 01.06.2026 07:00:00.000",
        f"# Duration: {SECONDS / 60:02.0f}:00.000",
        "# Sensor insoles: Left SN0001, Right SN0002",
        "# Size: 7",
        "# Recording type: normal",
        "# Name: bench_hour",
        "# time\t" + "\t".join(cols[1:]),
    ]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(header) + "\n")
        np.savetxt(f, table, fmt=["%.2f"] + ["%.2f"] * 32, delimiter="\t")


def compare_parsers(path: Path, rounds: int) -> None:
    """Seconds to parse the plain CSV into float64 rows, in this process, the candidates interleaved: the text
    parser's numpy ``loadtxt`` (4,096-row chunks), the table kernel (this tree's reader, whole blocks), and
    pyarrow's and polars' CSV readers when installed (not dependencies of footfall)."""
    import io

    from edge_agent.recordings.importers import CHUNK_ROWS, TextLines, read_rows

    n_cols = 33

    def loadtxt() -> int:
        rows = 0
        with open(path, encoding="utf-8") as f:
            f.readline()
            while lines := [line for line in (f.readline() for _ in range(CHUNK_ROWS)) if line]:
                rows += len(np.loadtxt(io.StringIO("".join(lines)), delimiter=",", ndmin=2))
        return rows

    def kernel() -> int:
        with TextLines(path) as lines:
            lines.readline()
            return sum(len(data) for _, data in read_rows(lines, ",", n_cols))

    candidates = {"numpy loadtxt": loadtxt, "table kernel": kernel}
    try:
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        def arrow() -> int:
            types = {f"c{j}": pa.float64() for j in range(n_cols)}
            opts = pa_csv.ReadOptions(skip_rows=1, column_names=list(types), block_size=4 << 20)
            rows = 0
            for batch in pa_csv.open_csv(
                path, read_options=opts, convert_options=pa_csv.ConvertOptions(column_types=types)
            ):
                rows += len(np.column_stack([c.to_numpy() for c in batch.columns]))
            return rows

        candidates[f"pyarrow {pa.__version__}"] = arrow
    except ImportError:
        print("pyarrow not installed: not compared")
    try:
        import polars as pl

        def polars() -> int:
            rows = 0
            schema = {"time": pl.Float64, **{f"c{j}": pl.Float64 for j in range(1, n_cols)}}
            for batch in pl.scan_csv(path, schema=schema, skip_rows=1, has_header=False).collect_batches():
                rows += len(batch.to_numpy())
            return rows

        candidates[f"polars {pl.__version__}"] = polars
    except ImportError:
        print("polars not installed: not compared")
    kernel()  # the kernel's first call loads it
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            t0 = time.perf_counter()
            rows = fn()
            times[name].append(time.perf_counter() - t0)
            assert rows == int(SECONDS * RATE_HZ), (name, rows)
    print(f"parsing the plain CSV in one process, {rounds} rounds interleaved (median s, MB/s):")
    size = path.stat().st_size / 1e6
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"  {name:20} {t:6.2f} s {size / t:7.0f} MB/s")


def run_once(tree: Path, path: Path, out: Path, env: dict[str, str]) -> dict[str, float]:
    argv = [sys.executable, "-c", DRIVER, "analyze", str(path), "--format", "json", "--no-progress", "-o", str(out)]
    if path.suffix == ".csv":
        argv[5:5] = ["--profile", "moticon-opengo", "--body-mass", "70"]
    else:
        argv[5:5] = ["--body-mass", "70"]
    full_env = {**os.environ, **env, "PYTHONPATH": str(tree), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=tree, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{tree} on {path.name} failed ({proc.returncode}): {err.decode()[-2000:]}")
    inner = json.loads(err.decode().strip().splitlines()[-1])
    # VmHWM starts afresh at exec; ru_maxrss on Linux keeps the high-water mark of the image before exec, i.e.
    # of this (big) benchmark process that forked it, so it is the fallback only
    rss_kb = inner["vm_hwm_kb"] if inner["vm_hwm_kb"] is not None else usage.ru_maxrss
    return {"wall": wall, "analyze": inner["analyze_s"], "rss_mb": rss_kb / 1024.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="rounds (default 3); medians are printed")
    ap.add_argument("--baseline-rev", help="also run this git revision's tree (e.g. a8e4854: per-step records)")
    ap.add_argument("--no-aot", action="store_true", help="skip the ahead-of-time kernel variant (needs gcc)")
    ap.add_argument("--parsers", action="store_true", help="also time the CSV parser candidates in this process")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="footfall-hour-") as tmp_name:
        tmp = Path(tmp_name)
        table = hour_block()
        files = {"plain CSV": tmp / "hour.csv", "Moticon txt": tmp / "hour.txt"}
        write_plain_csv(files["plain CSV"], table)
        write_moticon_txt(files["Moticon txt"], table)
        variants: list[tuple[str, Path, dict[str, str]]] = [
            ("kernel", REPO, {"FOOTFALL_KERNELS": "jit"}),
            ("text", REPO, {"FOOTFALL_KERNELS": "jit", "FOOTFALL_CSV_READER": "text"}),
        ]
        if not args.no_aot:
            from edge_agent.analysis.kernels import aot

            kdir = tmp / "kernels"
            t0 = time.perf_counter()
            aot.build(kdir)
            print(f"AOT kernels built in {time.perf_counter() - t0:.1f} s")
            variants.append(("aot", REPO, {"FOOTFALL_KERNELS": "aot", "FOOTFALL_KERNEL_DIR": str(kdir)}))
        if args.baseline_rev:
            base = tmp / "baseline"
            base.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", args.baseline_rev], capture_output=True, check=True
            )
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
            variants.append((f"rev {args.baseline_rev}", base, {"FOOTFALL_KERNELS": "jit"}))
        frames = 2 * len(table)
        print(
            f"files: plain CSV {files['plain CSV'].stat().st_size / 1e6:.0f} MB, Moticon txt "
            f"{files['Moticon txt'].stat().st_size / 1e6:.0f} MB: {SECONDS / 3600:g} h of 2 × 16 sensors at "
            f"{RATE_HZ:g} Hz ({frames:,} frames); {args.repeat} rounds, variants interleaved; machine: "
            f"{os.cpu_count()} CPUs ({os.uname().machine}), load average {os.getloadavg()[0]:.1f}"
        )
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        for path in files.values():  # warm the numba caches and the page cache once
            for _, tree, env in variants:
                run_once(tree, path, tmp / "warm.json", env)
        for _ in range(args.repeat):
            for file_name, path in files.items():
                first: Path | None = None
                for k, (name, tree, env) in enumerate(variants):
                    out = tmp / f"out-{k}.json"
                    results.setdefault((file_name, name), []).append(run_once(tree, path, out, env))
                    if first is None:
                        first = out
                    elif not filecmp.cmp(first, out, shallow=False):
                        raise SystemExit(f"{name} on {file_name}: the JSON differs from {variants[0][0]}'s")
        print(
            f"{'file':12} {'variant':14} {'end to end s':>12} {'analyze s':>10} {'× real time':>12} "
            f"{'M frames/s':>11} {'peak RSS MB':>12}"
        )
        for (file_name, name), runs in results.items():
            wall = statistics.median(r["wall"] for r in runs)
            inner = statistics.median(r["analyze"] for r in runs)
            rss = statistics.median(r["rss_mb"] for r in runs)
            print(
                f"{file_name:12} {name:14} {wall:12.2f} {inner:10.2f} {SECONDS / wall:12,.0f} "
                f"{frames / wall / 1e6:11.2f} {rss:12.0f}"
            )
        print("end to end = the process from exec to exit; analyze = the command inside it, after imports and the")
        print("kernel load; × real time and frames/s from end to end; every variant's JSON identical to the first.")
        if args.parsers:
            compare_parsers(files["plain CSV"], args.repeat)


if __name__ == "__main__":
    main()
