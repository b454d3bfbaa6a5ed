"""Child processes for the tests: real footfall processes (``footfall-agent run`` with the simulator,
``footfall-dashboard run``) a test can SIGKILL, SIGSTOP or stop cleanly, with read-only views of their databases;
and any child's own peak resident memory, read from ``/proc/<pid>/status``.

``VmHWM`` is the peak RSS of the process's current address space, so it starts afresh at ``exec``; the
``wait4``/``getrusage`` figure does not (it keeps the peak of the parent's pages the child inherited at fork, so
a child of a big pytest process would look as big as pytest).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.support.brokers import free_port
from tests.support.paths import REPO

DEVICE = "pi-faults"
SPEED = 20.0  # simulator at 20× real time with 2 s windows: ~10 summaries per second of wall time


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path.parent / "numba-cache-e2e")  # shared with test_agent_e2e in a session
    env["PYTHONPATH"] = str(REPO)
    return env


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    if not pred():
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextlib.contextmanager
def _ro(path: Path) -> Iterator[sqlite3.Connection]:
    """Read-only view of another process's WAL database (never changes it), closed after use."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


class AgentProc:
    """``footfall-agent run`` with the simulator as a subprocess; its outbox read straight from SQLite."""

    def __init__(
        self, tmp_path: Path, broker_url: str, *, device_id: str = DEVICE, runner: str = "ana", seed: int = 7,
        name: str = "agent",
    ) -> None:  # fmt: skip
        self.tmp_path = tmp_path
        self.name = name
        self.device_id = device_id
        self.state = tmp_path / f"{name}-state"
        self.outbox_path = self.state / "outbox.sqlite"
        cfg = {
            "device_id": device_id,
            "runner": runner,
            "state_dir": str(self.state),
            "body_mass_kg": 70,
            "mqtt": {"url": broker_url},
            "outbox": {"drain_timeout_s": 40},
            "source": {"type": "simulator", "params": {"duration_s": 3600, "seed": seed}},
            # 2 s windows hold ~6 steps at 170 spm; 1 s windows (< 4 steps) are "unknown", held to the run's end
            "pipeline": {"window_s": 2.0, "run_detection": {"run_start_s": 2, "run_stop_s": 5}},
        }
        self.config = tmp_path / f"{name}.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.log = open(self.log_path, "w")  # noqa: SIM115 (closed in finish)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "run", "--config", str(self.config), "--speed", str(SPEED),
             "--duration", "3000", "--stats"],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=_env(self.tmp_path), cwd=self.tmp_path,
        )  # fmt: skip

    @property
    def log_path(self) -> Path:
        return self.tmp_path / f"{self.name}{self.starts}.log"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def sigkill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(20)
        if self.proc.stdout is not None:
            self.proc.stdout.close()  # a killed agent prints no stats
        self.log.close()

    def stop(self, timeout: float = 90) -> dict[str, Any]:
        """SIGTERM: the agent flushes its run, drains the outbox (plugin acks) and prints its stats."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=timeout)
        self.log.close()
        err = self.log_path.read_text()
        assert self.proc.returncode == 0, err[-3000:]
        return json.loads(out)  # type: ignore[no-any-return]

    def outbox(self) -> dict[str, int]:
        """last_seq (= messages put, ever), rows waiting, and the persistent counters."""
        if not self.outbox_path.exists():
            return {"last_seq": 0, "rows": 0}
        with _ro(self.outbox_path) as db:
            meta = dict(db.execute("SELECT key, value FROM meta"))
            rows = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        out = {k[2:]: int(v) for k, v in meta.items() if k.startswith("n_")}
        out.update(last_seq=int(meta.get("last_seq", 0)), rows=int(rows))
        return out

    def kill_if_running(self) -> None:
        if self.alive():
            self.sigkill()


class DashboardProc:
    """``footfall-dashboard run`` as a subprocess: real ingest, store and web server (``/api/health``).

    ``database``: a PostgreSQL URL (several workers share it, with ``mqtt`` options such as ``share_group``);
    without it each dashboard has its own SQLite file."""

    def __init__(
        self, tmp_path: Path, broker_url: str, *, name: str = "dashboard", database: str | None = None,
        mqtt: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        self.tmp_path = tmp_path
        self.name = name
        self.db = tmp_path / f"{name}.db"
        self.port = free_port()
        cfg: dict[str, Any] = {
            "db_path": str(self.db), "listen": f"127.0.0.1:{self.port}", "mqtt": {"url": broker_url, **(mqtt or {})},
        }  # fmt: skip
        if database:
            cfg["database"] = database
        self.config = tmp_path / f"{name}.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.log = open(self.log_path, "w")  # noqa: SIM115 (closed on stop/kill)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "plugin.cli", "run", "--config", str(self.config)],
            stdout=self.log, stderr=subprocess.STDOUT, env=_env(self.tmp_path), cwd=self.tmp_path,
        )  # fmt: skip
        wait_until(lambda: self._connected(), 60, "the dashboard's web server and MQTT connection")

    @property
    def log_path(self) -> Path:
        return self.tmp_path / f"{self.name}{self.starts}.log"

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/health", timeout=5) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def _connected(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.log_path.read_text()}")
        try:
            return bool(self.health()["broker"]["connected"])
        except OSError:
            return False

    def sigkill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(20)
        self.log.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(30) == 0
            self.log.close()

    def stored(self) -> int:
        """Messages in the store (any stream), read from the database file."""
        if not self.db.exists():
            return 0
        with _ro(self.db) as db:
            return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])


def vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None


def run_measured(argv: list[str], poll_s: float = 0.005, **kw: Any) -> tuple[int, float, str, str]:
    """Run ``argv`` to the end; (exit code, its peak RSS in MB, stdout, stderr)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.communicate()), daemon=True)
    reader.start()
    peak = 0.0
    while proc.poll() is None:
        hwm = vm_hwm_mb(proc.pid)  # the last reading before exit holds the peak (VmHWM only grows)
        if hwm is not None:
            peak = max(peak, hwm)
        time.sleep(poll_s)
    reader.join()
    return proc.returncode, peak, out[0], out[1]
