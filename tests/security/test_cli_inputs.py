"""Hostile or broken inputs through the real command lines: a damaged outbox, recordings and profiles, configs
that ``run`` would refuse, a port in use, passwords kept out of the process list. Each gives one clear line (no
traceback), the documented exit code, bounded memory (the child's own peak RSS: ``VmHWM``), and no secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edge_agent.common.mqtt import BrokerSettings, MqttConnection
from edge_agent.contract import Topics
from edge_agent.runtime.outbox import Outbox
from edge_agent.runtime.publisher import OutboxPublisher
from tests.support.brokers import SHIPPED_ACL, MosquittoBroker, harden, have_mosquitto
from tests.support.paths import REPO
from tests.support.processes import run_measured
from tests.support.waiting import until

AGENT = [sys.executable, "-m", "edge_agent.cli"]
DASHBOARD = [sys.executable, "-m", "plugin.cli"]
HEADER = "time," + ",".join([*(f"left_{i}" for i in range(1, 17)), *(f"right_{i}" for i in range(1, 17))])


def run(argv: list[str], timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)


def one_line_error(r: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    out = r.stdout + r.stderr
    assert r.returncode == code, out[-2000:]
    assert "Traceback" not in out, out[-2000:]
    for w in words:
        assert w in out, (w, out[-2000:])


# -- the outbox --------------------------------------------------------------------------------------------------
def test_an_outbox_damaged_mid_file_is_refused_and_kept(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ob = Outbox(state / "outbox.sqlite", "insoles")
    for i in range(300):
        ob.put("footfall/insoles/summary", {"kind": "summary", "i": i, "pad": "x" * 2000})
    ob.close()
    path = state / "outbox.sqlite"
    with open(path, "r+b") as f:  # 20 KiB of random bytes in the middle, as the probe did
        f.seek(path.stat().st_size // 2)
        f.write(os.urandom(20 * 1024))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    r = run([*AGENT, "run", "--state-dir", str(state), "--source", "simulator", "--duration", "2",
             "--broker", "mqtt://127.0.0.1:1"])  # fmt: skip
    one_line_error(r, 1, "outbox", "is corrupt", "left untouched")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


async def test_health_turns_red_while_the_publisher_keeps_failing(tmp_path: Path, broker: MosquittoBroker) -> None:
    """The agent writes ``publisher.health()`` into its heartbeat; ``footfall-agent health`` reads it."""
    from edge_agent.runtime.health import write_heartbeat

    topics = Topics("dev1")
    ob = Outbox(tmp_path / "o.sqlite", "dev1")
    ob.put(topics.summary, {"kind": "summary"})
    async with MqttConnection(BrokerSettings(url=broker.url, client_id="t-health")) as conn:
        publisher = OutboxPublisher(conn, ob, topics, poll_s=0.05)
        ob.close()  # every delivery step now fails (a file gone bad while running behaves alike)
        task = asyncio.create_task(publisher.run())
        try:
            assert await until(lambda: publisher.health()["failures"] >= 2, 10)
            write_heartbeat(tmp_path / "heartbeat.json", {"time": time.time(), "publisher": publisher.health()})
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    health = [*AGENT, "health", "--state-dir", str(tmp_path)]
    red = run([*health, "--max-failing", "0.5"])
    assert red.returncode == 1 and "outbox publisher failing" in red.stdout and "ProgrammingError" in red.stdout
    assert run([*health, "--max-failing", "3600"]).returncode == 0  # a failure that just began is not red yet


# -- configs -----------------------------------------------------------------------------------------------------
def test_validate_config_catches_what_run_would(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    one_line_error(run([*AGENT, "validate-config", str(empty)]), 2, "is empty")
    typo = tmp_path / "typo.yaml"
    typo.write_text("profile: moticon-opengoo\n")
    one_line_error(run([*AGENT, "validate-config", str(typo)]), 2, "key 'profile'", "unknown hardware profile")
    short = tmp_path / "dash.yaml"
    short.write_text("token: Short-Tok\n")  # refused by run, so by validate-config too; never echoed
    r = run([*DASHBOARD, "validate-config", str(short)])
    one_line_error(r, 2, "token is too short")
    assert "Short-Tok" not in r.stdout + r.stderr


def test_dashboard_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run([*DASHBOARD, "run", "--db", str(tmp_path / "d.db"), "--listen", f"127.0.0.1:{port}",
                 "--broker", "mqtt://127.0.0.1:1"], timeout=60)  # fmt: skip
    one_line_error(r, 1, f"cannot listen on 127.0.0.1:{port}")


def test_help_never_recommends_a_password_on_the_command_line() -> None:
    for argv in ([*AGENT, "run", "--help"], [*DASHBOARD, "run", "--help"]):
        text = " ".join(run(argv).stdout.split())
        assert "user:pass@" not in text and "--broker-password-file" in text, text
    assert "--notify-file" in run([*DASHBOARD, "run", "--help"]).stdout


def test_agent_takes_its_broker_password_from_a_file(tmp_path: Path) -> None:
    if not have_mosquitto():
        pytest.skip("needs Mosquitto with the shipped ACL")
    secret = "Pend-Password-From-File-123"
    b = MosquittoBroker(tmp_path / "mosq")
    harden(b, tmp_path, users={"pend": secret, "footfall-dashboard": "dash"}, acl=SHIPPED_ACL)
    b.start()
    try:
        pw = tmp_path / "pw"
        pw.write_text(secret + "\n")
        config = tmp_path / "agent.yaml"
        config.write_text("outbox:\n  require_plugin_ack: false\n  drain_timeout_s: 10\n")
        argv = [*AGENT, "run", "--config", str(config), "--device-id", "pend", "--state-dir", str(tmp_path / "s"),
                "--broker", f"mqtt://pend@127.0.0.1:{b.port}", "--broker-password-file", str(pw),
                "--source", "simulator", "--speed", "0", "--duration", "40", "--stats"]  # fmt: skip
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
        out, err = proc.communicate(timeout=240)
    finally:
        b.stop()
    assert proc.returncode == 0, err[-2000:]
    stats = json.loads(out)
    assert stats["publisher"]["pubacks"] > 0 and stats["drained"] is True, stats["publisher"]  # logged in, delivered
    assert secret not in cmdline and secret not in out + err


def test_a_password_in_the_broker_url_is_warned_about_and_never_echoed(tmp_path: Path) -> None:
    r = run([*DASHBOARD, "run", "--broker", "mqtt://u:Url-Password-999@127.0.0.1:99999", "--db", str(tmp_path / "d")])
    one_line_error(r, 2, "process list", "bad port")
    assert "Url-Password-999" not in r.stdout + r.stderr


# -- recordings and profiles -------------------------------------------------------------------------------------
def test_analyze_refuses_empty_and_absurd_recordings(tmp_path: Path) -> None:
    header_only = tmp_path / "header.csv"
    header_only.write_text(HEADER + "\n")
    r = run([*AGENT, "analyze", str(header_only), "--profile", "moticon-opengo"])
    one_line_error(r, 2, "no samples")
    assert "Warning" not in r.stderr  # no raw numpy warning
    rows = [f"{k * 0.01:.2f}," + ",".join(["1.0"] * 32) for k in range(299)] + ["1e300," + ",".join(["1.0"] * 32)]
    leap = tmp_path / "leap.csv"
    leap.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    one_line_error(run([*AGENT, "analyze", str(leap), "--profile", "moticon-opengo"]), 2, "not a plausible clock")
    binary = tmp_path / "profile.yaml"
    binary.write_bytes(bytes(range(256)) * 64)
    one_line_error(run([*AGENT, "analyze", str(leap), "--profile", str(binary)]), 2, "profile.yaml")


def test_analyze_memory_does_not_grow_with_a_junk_file(tmp_path: Path) -> None:
    """60 MB of letters under a valid header: refused at line 2, having read one chunk, not the file."""
    junk = tmp_path / "junk.csv"
    line = b"q" * 199 + b"\n"
    with open(junk, "wb") as f:
        f.write(HEADER.encode() + b"\n")
        for _ in range(60):
            f.write(line * 5000)
    code, peak, _, err = run_measured([*AGENT, "analyze", str(junk), "--profile", "moticon-opengo"], cwd=REPO)
    assert code == 2 and "junk.csv:2" in err and "Traceback" not in err, err[-2000:]
    assert peak < 150, f"peak RSS {peak:.0f} MB for a {junk.stat().st_size / 1e6:.0f} MB junk file"


def test_dashboard_config_errors_show_no_secret_from_env_or_flags(tmp_path: Path) -> None:
    env = {**os.environ, "FOOTFALL_DASHBOARD_MQTT__PASSWORD": "Env-Broker-Secret",
           "FOOTFALL_DASHBOARD_NOTIFY_URLS": '["tgram://bot:Env-Notify-Secret@x/1", 5]',
           "FOOTFALL_DASHBOARD_TOKEN": "Env-Tok-Secret"}  # fmt: skip
    r = run([*DASHBOARD, "run", "--listen", "0.0.0.0:8765", "--broker", "mqtt://u:Flag-Secret@h:1883",
             "--db", str(tmp_path / "d.db")], env=env)  # fmt: skip
    one_line_error(r, 2, "config error", "notify_urls")
    for secret in ("Env-Broker-Secret", "Env-Notify-Secret", "Env-Tok-Secret", "Flag-Secret"):
        assert secret not in r.stdout + r.stderr


def test_open_dashboard_on_any_loopback_address_answers_the_url_it_prints(tmp_path: Path) -> None:
    """Without a token the dashboard is open to loopback Hosts only: 127.0.0.2 is loopback, a DNS name is not."""
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    argv = [*DASHBOARD, "run", "--listen", f"127.0.0.2:{port}", "--db", str(tmp_path / "d.db"),
            "--broker", "mqtt://127.0.0.1:1"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split(": ", 1)[1].split(" ", 1)[0]
        assert url == f"http://127.0.0.2:{port}/", line
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200
        rebound = urllib.request.Request(url, headers={"Host": f"evil.example:{port}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound, timeout=10)
        assert refused.value.code == 403
    finally:
        proc.terminate()
        proc.wait(20)
