"""The agent running in real time: CPU share of one core, peak RSS, start-up to first publish.

Runs ``footfall-agent run`` in a subprocess on the simulator (2×16 Moticon and 2×99 Pedar at
100 Hz, real time) against a private local broker and reports, from /proc (no guessing):

- CPU share of one core over a steady-state window: Δ(utime + stime) of /proc/<pid>/stat / Δwall
  (the whole process: simulator source, kernels, pipeline, MQTT thread, outbox);
- peak RSS: VmHWM from /proc/<pid>/status;
- start-up to first publish: process spawn → first ``live`` message on the broker (that needs the
  kernels compiled or loaded, the source running and the pipeline fed), with a cold numba cache
  (fresh NUMBA_CACHE_DIR) and a warm one;
- all of it for the numba JIT and for the ahead-of-time kernel build (``footfall-agent
  build-kernels``; no numba in the process), side by side in one run;
- the same with in-run feedback on (a metronome at 172 spm rendered by the WAV sink at 48 kHz, paced like a sound
  card; docs/feedback.md) beside the same agent without it, AOT kernels, 2×16 @ 100 Hz: with 100 ms batches (the
  default with feedback, for step → cue latency) and 200 ms (the default without), so the cost of the metronome
  and of the shorter batches show separately, as ratios;
- that a read-only package directory works with NUMBA_CACHE_DIR on a writable path (a copy of
  the package bind-mounted read-only in a private mount namespace via ``unshare -m``; skipped
  when that is not permitted).

Targets (docs/performance.md): < 1 % of one core and < 150 MB RSS for 2×16 @ 100 Hz; warm start
to first publish < 3 s. Prints numbers only; asserts nothing.

    python benchmarks/bench_agent.py [--seconds 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_agent.tools.broker import make_broker  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def wakeups(pid: int) -> int:
    """Voluntary context switches of all threads (≈ how often the process went to sleep and woke)."""
    n = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    n += int(line.split()[1])
        except OSError:
            pass  # a worker thread ended
    return n


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


class FirstLive:
    """Records the wall time of the first message on footfall/<device>/live."""

    def __init__(self, port: int, device: str) -> None:
        self.at: float | None = None
        self.count = 0
        self._ready = threading.Event()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{device}-{time.time_ns()}")
        self.c.on_connect = lambda c, *_: (c.subscribe(f"footfall/{device}/live", 0), self._ready.set())
        self.c.on_message = self._msg
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self._ready.wait(10)
        time.sleep(0.2)

    def _msg(self, *_: object) -> None:
        self.count += 1
        if self.at is None:
            self.at = time.monotonic()

    def stop(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def write_config(workdir: Path, url: str, profile: str, device: str, batch_ms: float, feedback: bool = False) -> Path:
    cfg = {
        "device_id": device,
        "profile": profile,
        "body_mass_kg": 70,
        "state_dir": str(workdir / f"state-{device}"),
        "mqtt": {"url": url},
        "outbox": {"require_plugin_ack": False},
        "source": {"type": "simulator", "speed": 1.0, "endless": True, "batch_ms": batch_ms, "params": {"seed": 1}},
        "log_level": "WARNING",
    }
    if feedback:
        cfg["runner"] = "bench"
        cfg["feedback"] = {
            "sink": {"type": "wav", "path": str(workdir / f"{device}.wav"), "sample_rate_hz": 48000},
            "target_cadence_spm": 172.0,
        }
    path = workdir / f"{device}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_agent(
    url: str,
    port: int,
    profile: str,
    cache: Path,
    seconds: float,
    workdir: Path,
    *,
    pythonpath: Path = REPO,
    wrap: list[str] | None = None,
    batch_ms: float = 50.0,
    aot_dir: Path | None = None,
    feedback: bool = False,
    settle_s: float = 3.0,
) -> dict[str, float | None]:
    """One agent process; with ``aot_dir`` it must run the ahead-of-time build, else the numba JIT."""
    device = (
        f"bench-{profile.replace('.', '-')}-{int(batch_ms)}-{'aot' if aot_dir else 'jit'}{'-fb' if feedback else ''}"
    )
    cfg = write_config(workdir, url, profile, device, batch_ms, feedback)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    env.update(NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(pythonpath), PYTHONDONTWRITEBYTECODE="1")
    env["FOOTFALL_KERNELS"] = "aot" if aot_dir else "jit"  # never a stray build in ~/.cache
    if aot_dir:
        env["FOOTFALL_KERNEL_DIR"] = str(aot_dir)
    live = FirstLive(port, device)
    t_spawn = time.monotonic()
    argv = [*(wrap or []), sys.executable, "-m", "edge_agent", "run", "--config", str(cfg)]
    proc = subprocess.Popen(argv, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = t_spawn + 120
        while live.at is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        first = None if live.at is None else live.at - t_spawn
        out: dict[str, float | None] = {"first_publish_s": first}
        if seconds > 0 and proc.poll() is None:
            pid = proc.pid if not wrap else _child_pid(proc.pid)
            time.sleep(settle_s)  # settle after start-up (with feedback: until the metronome runs)
            c0, w0, z0 = cpu_seconds(pid), time.monotonic(), wakeups(pid)
            time.sleep(seconds)
            c1, w1, z1 = cpu_seconds(pid), time.monotonic(), wakeups(pid)
            out["cpu_pct_one_core"] = 100.0 * (c1 - c0) / (w1 - w0)
            out["wakeups_per_s"] = (z1 - z0) / (w1 - w0)
            out["peak_rss_mb"] = status_kb(pid, "VmHWM") / 1024.0
            out["rss_mb"] = status_kb(pid, "VmRSS") / 1024.0
            out["live_msgs"] = float(live.count)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        live.stop()
    out["exit_code"] = float(proc.returncode)
    if proc.returncode != 0:
        sys.stderr.write(err.decode(errors="replace")[-2000:])
    return out


def feedback_cost(url: str, port: int, work: Path, aot_dir: Path, seconds: float) -> dict[str, object]:
    """The agent with and without in-run feedback, AOT kernels, 2×16 @ 100 Hz, measured one after the other in
    alternation (twice each) so that load from elsewhere on the machine falls on both; CPU as ratios."""
    cache = work / "cache-feedback"
    variants = {
        "no feedback, 200 ms batches": (200.0, False),
        "feedback, 100 ms batches": (100.0, True),
        "feedback, 200 ms batches": (200.0, True),
    }
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    other: dict[str, dict[str, float | None]] = {}
    for _round in range(2):
        for name, (batch_ms, fb) in variants.items():
            res = run_agent(url, port, "moticon-opengo", cache, seconds, work, batch_ms=batch_ms, aot_dir=aot_dir,
                            feedback=fb, settle_s=10.0)  # fmt: skip
            if res.get("cpu_pct_one_core") is not None:
                cpu[name].append(float(res["cpu_pct_one_core"]))  # type: ignore[arg-type]
            other[name] = {k: res.get(k) for k in ("peak_rss_mb", "wakeups_per_s", "exit_code")}
    base = statistics.mean(cpu["no feedback, 200 ms batches"])
    out: dict[str, object] = {}
    for name in variants:
        mean = statistics.mean(cpu[name])
        out[name] = {"cpu_pct_one_core": round(mean, 3), "runs": [round(c, 3) for c in cpu[name]],
                     "ratio_to_no_feedback": round(mean / base, 2), **other[name]}  # fmt: skip
        print(f"2x16@100Hz AOT, {name}:", json.dumps(out[name]), flush=True)
    return out


def _child_pid(pid: int) -> int:
    """The python process under a wrapper (unshare → sh → python)."""
    for _ in range(100):
        kids = Path(f"/proc/{pid}/task/{pid}/children")
        if kids.exists() and kids.read_text().split():
            pid = int(kids.read_text().split()[0])
            if "python" in Path(f"/proc/{pid}/comm").read_text():
                return pid
        time.sleep(0.05)
    return pid


def read_only_check(url: str, port: int, workdir: Path) -> dict[str, object]:
    """A copy of the package bind-mounted read-only; NUMBA_CACHE_DIR on a writable path."""
    ro = workdir / "ro"
    shutil.copytree(REPO / "edge_agent", ro / "edge_agent", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "hardware_profiles", ro / "hardware_profiles")
    cache = workdir / "ro-cache"
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind -o ro {ro} {ro} && ! touch {ro}/x"], capture_output=True
    )
    if probe.returncode != 0:
        return {"skipped": "unshare/mount not permitted here"}
    wrap = ["unshare", "-m", "sh", "-c", f'mount --bind -o ro {ro} {ro} && exec "$0" "$@"']
    res = run_agent(url, port, "moticon-opengo", cache, 0.0, workdir, pythonpath=ro, wrap=wrap)
    cached = sorted(p.name for p in cache.rglob("*.nbi"))
    return {
        "first_publish_s": res["first_publish_s"],
        "exit_code": res["exit_code"],
        "cache_index_files": len(cached),
        "package_dir_untouched": not any((ro / "edge_agent").rglob("*.nbi")),
    }


def pipeline_cost(profile_name: str, seconds: float = 120.0, batch_ms: float = 200.0) -> dict[str, float]:
    """CPU of the pipeline alone (validation, kernels, activity, windows; no source, no MQTT) per
    second of data, feeding pre-generated batches as the real-time loop would."""
    import asyncio

    from edge_agent.profiles import load_profile
    from edge_agent.recordings.simulator import RunParams, simulate
    from edge_agent.runtime.pipeline import Pipeline, warm_up
    from edge_agent.sources.base import FrameBatch

    profile = load_profile(profile_name)
    warm_up(profile)
    rec, _ = simulate(profile, RunParams(duration_s=seconds, seed=1))
    n = max(1, round(batch_ms / 1000.0 * profile.sample_rate_hz))
    wakeups = [
        [
            FrameBatch(side=side, t=fs.t[i : i + n], raw=fs.raw[i : i + n])
            for side, fs in (("left", rec.left), ("right", rec.right))
        ]
        for i in range(0, len(rec.left.t), n)
    ]

    async def sink(_msg: object) -> None:
        return None

    async def go() -> float:
        pipe = Pipeline(profile, device_id="bench", sink=sink, body_mass_kg=70.0)
        c0 = time.process_time()
        for w in wakeups:
            await pipe.process(w)
        await pipe.finish()
        return time.process_time() - c0

    cpu = asyncio.run(go())
    return {
        "cpu_ms_per_s_of_data": 1000.0 * cpu / rec.duration_s,
        "pct_one_core": 100.0 * cpu / rec.duration_s,
        "us_per_wakeup": 1e6 * cpu / len(wakeups),
    }


NUMBA_FLOOR_PROGRAM = """
import sys, numpy as np, numba

@numba.njit(cache=True)
def total(a):
    s = 0.0
    for x in a:
        s += x
    return s

total(np.ones(16))
status = open("/proc/self/status").read()
print(int(status.split("VmHWM:")[1].split()[0]) // 1024)
"""


def numba_floor_rss_mb(workdir: Path) -> dict[str, float]:
    """Peak RSS of the smallest numba program (one cached kernel), cold and warm cache: the floor
    under any numba-based agent, printed beside the agent's own peak RSS."""
    script = workdir / "numba_floor.py"
    script.write_text(NUMBA_FLOOR_PROGRAM)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(workdir / "floor-cache")}
    runs = [subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=True)
            for _ in range(2)]  # fmt: skip
    return {"cold_peak_rss_mb": float(runs[0].stdout.strip()), "warm_peak_rss_mb": float(runs[1].stdout.strip())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="steady-state window per profile")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument(
        "--batch-ms",
        type=float,
        nargs="+",
        default=[50.0, 200.0],
        help="source batch lengths to measure (default: 50 = the sources' default, and 200)",
    )
    ap.add_argument("--only-feedback", action="store_true", help="only the with/without in-run feedback comparison")
    args = ap.parse_args()
    results: dict[str, object] = {"machine": f"{os.cpu_count()} cores, {os.uname().machine}"}
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        work = Path(tmp)
        broker = make_broker(work / "broker")
        broker.start()
        try:
            from edge_agent.analysis.kernels import aot

            t0 = time.perf_counter()
            aot_dir = aot.build(work / "aot").parent
            results["aot_build_s"] = time.perf_counter() - t0
            print(f"ahead-of-time kernel build: {results['aot_build_s']:.1f} s", flush=True)
            results["feedback"] = feedback_cost(broker.url, broker.port, work, aot_dir, args.seconds)
            profiles = () if args.only_feedback else (("moticon-opengo", "2x16@100Hz"), ("pedar-99", "2x99@100Hz"))
            for profile, label in profiles:
                cache = work / f"cache-{profile}"
                cold = run_agent(broker.url, broker.port, profile, cache, 0.0, work)
                runs = [(b, None, "numba JIT") for b in args.batch_ms] + [(200.0, aot_dir, "AOT build")]
                for batch_ms, kdir, backend in runs:
                    warm = run_agent(
                        broker.url, broker.port, profile, cache, args.seconds, work, batch_ms=batch_ms, aot_dir=kdir
                    )
                    key = f"{label} batch {batch_ms:.0f} ms, {backend}"
                    results[key] = {
                        "cold_first_publish_s": None if kdir else cold["first_publish_s"],
                        "warm_first_publish_s": warm["first_publish_s"],
                        "cpu_pct_one_core": warm.get("cpu_pct_one_core"),
                        "peak_rss_mb": warm.get("peak_rss_mb"),
                        "rss_mb": warm.get("rss_mb"),
                        "wakeups_per_s": warm.get("wakeups_per_s"),
                        "live_msgs": warm.get("live_msgs"),
                        "exit_codes": [cold["exit_code"], warm["exit_code"]],
                    }
                    print(key, json.dumps(results[key]), flush=True)
            for profile, label in profiles:
                key = f"pipeline only, in-process, {label}, 200 ms batches"
                results[key] = pipeline_cost(profile)
                print(key, json.dumps(results[key]), flush=True)
            if not args.only_feedback:
                results["numba_floor"] = numba_floor_rss_mb(work)
                print("numba floor (one cached kernel, nothing else):", json.dumps(results["numba_floor"]), flush=True)
                results["read_only_package"] = read_only_check(broker.url, broker.port, work)
                print("read-only package + NUMBA_CACHE_DIR:", json.dumps(results["read_only_package"]), flush=True)
        finally:
            broker.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
