"""Helpers of the Home Assistant suite that need no Home Assistant: the real dashboard process and the driver."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

TOKEN = "ha-test-dashboard-token-0123456789"
SEED_WEEKS = 6


def project_python() -> str:
    """The interpreter with footfall installed (Python 3.11 in CI)."""
    candidates = [os.environ.get("FOOTFALL_PROJECT_PYTHON"), str(REPO / ".venv" / "bin" / "python")]
    for cand in candidates:
        if cand and Path(cand).exists():
            probe = subprocess.run([cand, "-c", "import plugin.cli, paho.mqtt"], cwd=REPO, capture_output=True)
            if probe.returncode == 0:
                return cand
    pytest.fail(
        "the Home Assistant tests need the project's interpreter with footfall installed: set "
        f"FOOTFALL_PROJECT_PYTHON or create {REPO / '.venv'} (README's test command); tried {candidates}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_driver(*args: str) -> dict[str, Any]:
    """``python -m tests.ha.dashboard_driver ARGS`` with the project's interpreter; its JSON output."""
    out = subprocess.run([project_python(), "-m", "tests.ha.dashboard_driver", *args], cwd=REPO,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    if out.returncode != 0:
        raise AssertionError(f"dashboard_driver {args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class Dashboard:
    """A real ``footfall-dashboard run`` process on a free loopback port, token-protected."""

    def __init__(self, workdir: Path, db: Path, broker_url: str, token: str = TOKEN) -> None:
        self.workdir, self.db, self.broker_url, self.token = workdir, db, broker_url, token
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "dashboard.log"
        self.instance_id = ""

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}"

    def start(self, token: str | None = None) -> Dashboard:
        self.token = token or self.token
        env = {**os.environ, "FOOTFALL_DASHBOARD_TOKEN": self.token, "PYTHONUNBUFFERED": "1"}
        cmd = [project_python(), "-m", "plugin.cli", "run", "--db", str(self.db), "--broker", self.broker_url,
               "--listen", self.netloc]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.instance_id = self.get("/api/summary")["instance"]["id"]
                break
            except (OSError, urllib.error.URLError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the dashboard did not start:\n{self.log.read_text()[-3000:]}") from None
                time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def windows(self, runner: str, since: float, until: float) -> list[dict[str, Any]]:
        return self.get(f"/api/windows?runner={runner}&since={since!r}&until={until!r}&limit=5000")["windows"]

    def publish_run(self, start: float, minutes: float, seed: int, spike: bool = False) -> dict[str, Any]:
        """Play the agent: one run through the broker into the dashboard; returns once the dashboard stored it."""
        args = ["publish-run", "--broker", self.broker_url, "--start", repr(start), "--minutes", str(minutes),
                "--seed", str(seed)]  # fmt: skip
        run = run_driver(*args, *(["--spike"] if spike else []))
        deadline = time.monotonic() + 30
        while True:  # until the dashboard has stored all of it
            try:
                stored = self.get(f"/api/runs/{run['run_id']}?steps=none")
                if stored["complete"] and stored["windows"] and len(stored["windows"]) == run["windows"]:
                    return run
            except urllib.error.HTTPError as err:
                if err.code != 404:
                    raise
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the dashboard did not store run {run['run_id']}:\n{self.log.read_text()[-2000:]}"
                )
            time.sleep(0.05)


async def setup_entry(hass: Any, dashboard: Dashboard, token: str | None = None) -> Any:
    """A footfall config entry for ``dashboard``, set up in ``hass`` (a MockConfigEntry)."""
    from pytest_homeassistant_custom_component.common import MockConfigEntry

    entry = MockConfigEntry(
        domain="footfall", title=f"footfall ({dashboard.netloc})", unique_id=dashboard.instance_id,
        data={"url": dashboard.url, "token": dashboard.token if token is None else token},
    )  # fmt: skip
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def wait_for(hass: Any, predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    """Let Home Assistant run until ``predicate()`` holds (events arrive from a real process)."""
    import asyncio

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)
        await hass.async_block_till_done()
