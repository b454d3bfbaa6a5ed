"""The ahead-of-time kernel build (edge_agent/analysis/kernels/aot.py): built by the real CLI with numba's
pycc and a real C compiler, loaded without numba, and measuring what the JIT measures."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from edge_agent.analysis.kernels import aot, layout, steps
from tests.support.paths import REPO

DATA = REPO / "tests" / "data"
RECORDINGS = [
    DATA / "moticon_opengo_230927_102114_excerpt.txt.gz",  # 16 cells, CoP
    DATA / "GaCo01_01.txt.gz",  # PhysioNet gaitpdb, 8 sensors
    DATA / "RBDS008runT35forces.txt.gz",  # force plate, single zone
]


def env_for(kernel_dir: Path, mode: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    env.update(
        FOOTFALL_KERNELS=mode,
        FOOTFALL_KERNEL_DIR=str(kernel_dir),
        NUMBA_CACHE_DIR=str(tmp / "numba-cache"),
        PYTHONPATH=str(REPO),
    )
    return env


def cli(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.fixture(scope="session")
def aot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if missing := aot.toolchain_missing():
        pytest.skip(f"the AOT build cannot be made on this machine: {missing}")
    d = tmp_path_factory.mktemp("aot-kernels")
    stale = d / "_footfall_steps_0000000000000000.so"
    stale.write_bytes(b"a build of other code")
    r = cli(["build-kernels", "--dir", str(d)], env_for(d, "auto", d))
    assert r.returncode == 0, r.stderr
    assert "built " in r.stdout and "removed stale build _footfall_steps_0000000000000000.so" in r.stdout
    assert not stale.exists()
    again = cli(["build-kernels", "--dir", str(d)], env_for(d, "auto", d))
    assert again.returncode == 0 and again.stdout.startswith("up to date: ")
    return d


def test_layout_hash_is_pinned_in_steps() -> None:
    """The JIT's disk cache keys on steps.py only: layout.py's constants are frozen into the machine
    code, so any edit to layout.py must come with an edit to steps.py (this pin)."""
    sha = hashlib.sha256((REPO / "edge_agent/analysis/kernels/layout.py").read_bytes()).hexdigest()[:16]
    assert sha == steps.LAYOUT_SHA256, "update LAYOUT_SHA256 in edge_agent/analysis/kernels/steps.py"
    assert steps.N_STATE is layout.N_STATE and steps.new_state is layout.new_state


def close(a: Any, b: Any, rel: float = 1e-9) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], rel) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, rel) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name.split(".")[0])
def test_aot_measures_what_the_jit_measures(aot_dir: Path, path: Path, tmp_path: Path) -> None:
    out = {}
    for mode in ("jit", "aot"):
        r = cli(["analyze", str(path), "--format", "json", "--body-mass", "70"], env_for(aot_dir, mode, tmp_path))
        assert r.returncode == 0, r.stderr
        out[mode] = json.loads(r.stdout)
    jit, aot = out["jit"], out["aot"]
    assert len(aot["steps"]) == len(jit["steps"]) > 5
    for i, (a, j) in enumerate(zip(aot["steps"], jit["steps"], strict=True)):
        # zones, flags, counts equal; floats equal up to re-association in the last bits
        assert close(a, j), f"step {i} of {path.name}: {a} != {j}"
    assert close(aot["summary"], jit["summary"])


def test_aot_process_never_loads_numba_and_streams_chunk_invariantly(aot_dir: Path, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        from edge_agent.analysis.analyzer import GaitAnalyzer
        from edge_agent.analysis.kernels import load_kernels
        from edge_agent.profiles import load_profile
        from edge_agent.recordings.simulator import RunParams, simulate

        profile = load_profile("moticon-opengo")
        rec, _ = simulate(profile, RunParams(duration_s=30, seed=4, spikes=[(10.0, 14.0, 2.0)]))
        def run(chunk):
            ga = GaitAnalyzer(profile, 70 * 9.80665)
            steps = []
            for side in ("left", "right"):
                foot = getattr(rec, side)
                n = foot.t.shape[0]
                for a in range(0, n, chunk or n):
                    steps += ga.feed(side, foot.t[a:a + (chunk or n)], foot.raw[a:a + (chunk or n)])
            steps += ga.flush()
            return sorted((s.side, s.t_contact, s.valr_bw_s, s.strike_index, s.contact_ms) for s in steps)
        whole, chunked = run(0), run(37)
        print(json.dumps({"backend": load_kernels().backend, "numba": "numba" in sys.modules,
                          "llvmlite": "llvmlite" in sys.modules, "steps": len(whole),
                          "same": repr(whole) == repr(chunked)}))
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env_for(aot_dir, "aot", tmp_path),
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got == {"backend": "aot", "numba": False, "llvmlite": False, "steps": got["steps"], "same": True}
    assert got["steps"] > 80  # 30 s at ~170 steps/min


def test_portable_generic_build_loads_and_agrees(tmp_path: Path) -> None:
    """``--cpu generic`` (what the Docker image ships) is found when there is no host build."""
    if missing := aot.toolchain_missing():
        pytest.skip(f"the AOT build cannot be made on this machine: {missing}")
    d = tmp_path / "generic"
    r = cli(["build-kernels", "--cpu", "generic", "--dir", str(d)], env_for(d, "auto", tmp_path))
    assert r.returncode == 0, r.stderr
    [so] = list(d.glob("_footfall_steps_*"))
    assert "_generic." in so.name
    out = {}
    for mode in ("jit", "aot"):
        r = cli(["analyze", str(RECORDINGS[0]), "--format", "json", "--body-mass", "70"], env_for(d, mode, tmp_path))
        assert r.returncode == 0, r.stderr
        out[mode] = json.loads(r.stdout)
    assert close(out["aot"]["steps"], out["jit"]["steps"]) and len(out["aot"]["steps"]) > 5


def test_aot_required_without_a_build_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "no-build"
    r = cli(["analyze", str(RECORDINGS[0]), "--body-mass", "70"], env_for(empty, "aot", tmp_path))
    assert r.returncode == 2
    assert "FOOTFALL_KERNELS=aot" in r.stderr and "footfall-agent build-kernels" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_build_of_other_code_is_never_loaded(aot_dir: Path, tmp_path: Path) -> None:
    """auto mode: a module whose key does not match the sources is ignored and the JIT runs."""
    other = tmp_path / "other"
    other.mkdir()
    for so in aot_dir.glob("_footfall_steps_*"):
        shutil.copy(so, other / so.name.replace("_footfall_steps_", "_footfall_steps_f"))
    script = "from edge_agent.analysis.kernels import load_kernels; import sys; print(load_kernels().backend)"
    r = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env_for(other, "auto", tmp_path)
    )
    assert r.returncode == 0 and r.stdout.strip() == "jit", r.stderr


def test_agent_runs_on_the_aot_build_without_numba(aot_dir: Path, broker: Any, tmp_path: Path) -> None:
    env = env_for(aot_dir, "auto", tmp_path)
    args = ["run", "--source", "simulator", "--speed", "0", "--duration", "30", "--stats"]
    args += ["--broker", broker.url, "--state-dir", str(tmp_path / "state"), "--kernels", "aot"]
    r = cli(args, env)
    assert r.returncode == 0, r.stderr[-2000:]
    stats = json.loads(r.stdout)
    assert stats["kernels"] == "aot" and stats["numba_loaded"] is False
    assert stats["outbox"]["put"] >= 1 and "ahead-of-time build" in r.stderr


def test_a_build_others_could_replace_is_not_loaded(aot_dir: Path, tmp_path: Path) -> None:
    """Machine code the agent runs: a group/world-writable build or directory is refused (JIT instead)."""
    shared = tmp_path / "shared-dir"
    shutil.copytree(aot_dir, shared)
    shared.chmod(0o777)
    script = "from edge_agent.analysis.kernels import load_kernels; print(load_kernels().backend)"
    r = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env_for(shared, "auto", tmp_path)
    )
    assert r.returncode == 0 and r.stdout.strip() == "jit", r.stderr
    assert "writable by group/others" in r.stderr
    shared.chmod(0o755)
    r = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env_for(shared, "auto", tmp_path)
    )
    assert r.stdout.strip() == "aot", r.stderr
