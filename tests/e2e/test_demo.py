"""The README's first command, end to end: `footfall demo` from a clean virtual environment.

The demo is installed with pip into a fresh venv (no system site-packages), started in a subprocess,
asked over HTTP for its runs and alerts, stopped with SIGINT, and checked to leave no process behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.paths import REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _children(pid: int) -> set[int]:
    """All descendants of ``pid`` (from /proc), so we can check that none survives."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        try:
            kids = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for k in map(int, kids):
            if k not in found:
                found.add(k)
                frontier.append(k)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _logs(tmp_path: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted((tmp_path / "state" / "logs").glob("*.log"))
    )


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path("/proc/self/task").exists():
        pytest.skip("needs /proc to follow the demo's child processes")
    venv = tmp_path_factory.mktemp("demo-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, str(REPO)], check=True, timeout=900)
    return venv


def test_demo_from_clean_venv(clean_venv: Path, tmp_path: Path) -> None:
    exe = clean_venv / "bin" / "footfall"
    assert exe.exists(), "the footfall console script was not installed"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{clean_venv / 'bin'}:{env.get('PATH', '')}"
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba")
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(exe),
                "demo",
                "--speed",
                "15",
                "--run-minutes",
                "2",
                "--weeks",
                "8",
                "--state-dir",
                str(tmp_path / "state"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,  # not the repo: the installed package must stand on its own
        )
    try:
        url = None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and url is None:
            assert proc.poll() is None, f"demo exited early:\n{log.read_text()}"
            m = re.search(r"footfall dashboard: (http://\S+)", log.read_text())
            url = m.group(1) if m else None
            time.sleep(0.5)
        assert url, f"no dashboard URL printed:\n{log.read_text()}"

        health = _get(url + "api/health")
        assert health["broker"]["connected"] is True

        runs: list = []
        alerts: list = []
        deadline = time.monotonic() + 300  # a cold numba cache on a loaded 2-core machine compiles slowly
        # the seeded history has its own alerts (the new pair's): wait for the live run's loading spike
        while time.monotonic() < deadline and not (runs and any(a["rule"] == "loading_spike" for a in alerts)):
            runs = _get(url + "api/runs")["runs"]
            alerts = _get(url + "api/alerts")["alerts"]
            time.sleep(1.0)
        assert runs, "the dashboard shows no run"
        assert any(a["rule"] == "loading_spike" for a in alerts), f"no loading-spike alert: {alerts}\n{_logs(tmp_path)}"
        # The live run's windows arrived through MQTT, the broker and ingest (not only seeded history).
        assert _get(url + "api/health")["ingest"]["stored"] > 0
        # The demo runner is mid-way through the program, with two pairs of shoes and the new pair's alert.
        journey = _get(url + "api/journey?runner=Demo%20Runner")
        program = journey["program"]
        assert program is not None and not program["done"] and 1 in map(int, program["completed"]), program
        assert 0 < program["progress_pct"] < 100 and program["stage"] in (2, 3)
        assert {s["name"] for s in journey["shoes"]} == {"Daily trainer", "Carbon racer"}
        assert [a["rule"] for a in _get(url + "api/alerts?limit=1000")["alerts"]].count("shoe_change") == 1

        descendants = _children(proc.pid)
        assert descendants, "the demo should run the broker, dashboard and agent as child processes"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert rc == 0, log.read_text()
    time.sleep(0.5)
    left = [p for p in descendants if _alive(p)]
    assert not left, f"processes left behind: {left}"
