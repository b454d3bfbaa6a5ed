"""A real deployment to attack: Mosquitto with the shipped ACL and passwords, and ``footfall-dashboard run`` as a
child process (secrets from a password file, a notify-URL file and the environment), plus what an attacker needs
to watch it: every byte it printed, every HTTP answer it gave, its memory (RSS from /proc) and command line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from paho.mqtt import publish

from tests.support.brokers import SHIPPED_ACL, MosquittoBroker, free_port, harden, have_mosquitto, wait_port
from tests.support.paths import REPO
from tests.support.waiting import wait_until

#: Passwords of the broker users; the device users are named as their device ids (docker/mosquitto/acl).
USERS = {"footfall-dashboard": "Dash-Broker-Secret-4711", "pend": "Pend-Device-Secret-0815", "mallory": "Mallory-1"}
TOKEN = "Dashboard-Token-Secret-2718281828"
NOTIFY_URL = "json://bob:Notify-Url-Secret-31415@127.0.0.1:9/hook"
#: Strings that must never appear in anything the deployment prints or answers.
SECRETS = (USERS["footfall-dashboard"], USERS["pend"], TOKEN, "Notify-Url-Secret-31415")


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MB, from /proc/<pid>/status."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024.0
    return fields["VmRSS"], fields["VmHWM"]


class Deployment:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.broker = MosquittoBroker(root / "mosquitto")
        harden(self.broker, root, users=USERS, acl=SHIPPED_ACL)
        self.web_port = free_port()
        self.base = f"http://127.0.0.1:{self.web_port}"
        self.answers: list[str] = []  # every HTTP status line, header and body the dashboard sent
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.broker.start()
        pw = self.root / "broker-password"
        pw.write_text(USERS["footfall-dashboard"] + "\n")
        urls = self.root / "notify-urls"
        urls.write_text(f"# the dashboard's push notifications\n{NOTIFY_URL}\n")
        for f in (pw, urls):
            f.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
        env["FOOTFALL_DASHBOARD_TOKEN"] = TOKEN
        argv = [sys.executable, "-m", "plugin.cli", "run", "--broker",
                f"mqtt://footfall-dashboard@127.0.0.1:{self.broker.port}", "--broker-password-file", str(pw),
                "--notify-file", str(urls), "--db", str(self.root / "dashboard.db"),
                "--listen", f"127.0.0.1:{self.web_port}"]  # fmt: skip
        self.stdout = open(self.root / "stdout.log", "wb")  # noqa: SIM115 - closed in stop()
        self.stderr = open(self.root / "stderr.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=self.stdout, stderr=self.stderr)
        wait_port(self.web_port, timeout=60)
        assert wait_until(lambda: self.health()["broker"]["connected"], 30), self.output()[-3000:]
        assert wait_until(self.subscribed, 30), self.output()[-3000:]
        self.baseline_mb = rss_mb(self.proc.pid)[0]

    def health(self) -> dict[str, Any]:
        req = urllib.request.Request(self.base + "/api/health", headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]

    def subscribed(self) -> bool:
        """The dashboard's subscriptions are in place: a device status it receives is counted."""
        publish.single("footfall/pend/status", "online", hostname="127.0.0.1", port=self.broker.port,
                       auth={"username": "pend", "password": USERS["pend"]})  # fmt: skip
        return bool(wait_until(lambda: self.health()["ingest"]["status"] > 0, 0.5))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        return "".join((self.root / n).read_text(errors="replace") for n in ("stdout.log", "stderr.log"))

    def cmdline(self) -> str:
        return Path(f"/proc/{self.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")

    async def request(
        self, method: str, path: str, *, session: aiohttp.ClientSession, **kw: Any
    ) -> tuple[int, dict[str, str], str]:
        async with session.request(method, self.base + path, allow_redirects=False, **kw) as resp:
            body = await resp.text(errors="replace")
            headers = dict(resp.headers)
        self.answers.append(f"{resp.status} {headers} {body}")
        return resp.status, headers, body

    async def raw(self, request: bytes) -> tuple[int, str]:
        """Send bytes as they are (headers no client library would encode) and read the answer."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.web_port)
        writer.write(request)
        await writer.drain()
        answer = (await reader.read()).decode("latin-1")
        writer.close()
        self.answers.append(answer)
        return int(answer.split(" ", 2)[1]), answer

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for f in (getattr(self, "stdout", None), getattr(self, "stderr", None)):
            if f is not None:
                f.close()
        self.broker.stop()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if not have_mosquitto():
        pytest.skip("the security suite attacks a real Mosquitto with the shipped ACL (.ci/run installs it)")
    d = Deployment(tmp_path_factory.mktemp("deployment"))
    try:
        d.start()
        yield d
    finally:
        d.stop()
