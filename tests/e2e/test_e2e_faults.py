"""Delivery faults end to end with the REAL processes: ``footfall-agent run`` (simulator, 2 s windows) →
a private Mosquitto → ``footfall-dashboard run`` (ingest → SQLite store → acks), each a subprocess we can SIGKILL.

``tests/e2e/test_delivery_faults.py`` covers the outbox/publisher with a small script; here the whole agent
(pipeline, outbox, MQTT, signals) and the whole plugin (ingest, store, web server) run as shipped, and the
test COUNTS from their own files: the agent's outbox SQLite (``last_seq`` = messages put, rows left, counters)
and the plugin's store (messages per seq of the stream). ``lost`` = seqs 1..N put and not stored; ``duplicates``
= seqs stored more than once. Counts are printed (``pytest -s``).

The agent is stopped with SIGTERM once the faults are over (its clean stop: flush the run, drain with plugin
acks, print ``--stats``), so no assertion depends on how fast this machine is; waits have deadlines only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.brokers import MosquittoBroker, free_port
from tests.support.paths import REPO

DEVICE = "pi-faults"
SPEED = 20.0  # simulator at 20× real time with 2 s windows: ~10 summaries per second of wall time
pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


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

    def __init__(self, tmp_path: Path, broker_url: str) -> None:
        self.tmp_path = tmp_path
        self.state = tmp_path / "agent-state"
        self.outbox_path = self.state / "outbox.sqlite"
        cfg = {
            "device_id": DEVICE,
            "runner": "ana",
            "state_dir": str(self.state),
            "body_mass_kg": 70,
            "mqtt": {"url": broker_url},
            "outbox": {"drain_timeout_s": 40},
            "source": {"type": "simulator", "params": {"duration_s": 3600, "seed": 7}},
            # 2 s windows hold ~6 steps at 170 spm; 1 s windows (< 4 steps) are "unknown", held to the run's end
            "pipeline": {"window_s": 2.0, "run_detection": {"run_start_s": 2, "run_stop_s": 5}},
        }
        self.config = tmp_path / "agent.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.log = open(self.tmp_path / f"agent{self.starts}.log", "w")  # noqa: SIM115 (closed in finish)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "run", "--config", str(self.config), "--speed", str(SPEED),
             "--duration", "3000", "--stats"],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=_env(self.tmp_path), cwd=self.tmp_path,
        )  # fmt: skip

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
        err = (self.tmp_path / f"agent{self.starts}.log").read_text()
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
    """``footfall-dashboard run`` as a subprocess: real ingest, SQLite store and web server (``/api/health``)."""

    def __init__(self, tmp_path: Path, broker_url: str) -> None:
        self.tmp_path = tmp_path
        self.db = tmp_path / "dashboard.db"
        self.port = free_port()
        cfg = {"db_path": str(self.db), "listen": f"127.0.0.1:{self.port}", "mqtt": {"url": broker_url}}
        self.config = tmp_path / "dashboard.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.log = open(self.tmp_path / f"dashboard{self.starts}.log", "w")  # noqa: SIM115 (closed on stop/kill)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "plugin.cli", "run", "--config", str(self.config)],
            stdout=self.log, stderr=subprocess.STDOUT, env=_env(self.tmp_path), cwd=self.tmp_path,
        )  # fmt: skip
        wait_until(lambda: self._connected(), 60, "the dashboard's web server and MQTT connection")

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/health", timeout=5) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def _connected(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"dashboard exited: {(self.tmp_path / f'dashboard{self.starts}.log').read_text()}")
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


@dataclass
class Counts:
    put: int  # outbox last_seq: seqs 1..put were put in the outbox (over all agent starts)
    stored: int  # distinct seqs of the stream in the plugin's store
    msg_ids: int  # messages (msg_id) stored for the stream
    duplicates: int  # seqs stored more than once (must be 0)
    lost: int  # seqs 1..put not stored (must be 0)
    contiguous: int  # the store's contiguous seq for the stream (what it acks)
    outbox_rows: int  # left in the outbox at the end (must be 0: all acknowledged)
    sent: int
    resent: int
    acked: int

    def show(self, label: str, **extra: object) -> None:
        more = "".join(f", {k}={v}" for k, v in extra.items())
        print(f"\n[{label}] " + ", ".join(f"{k}={v}" for k, v in self.__dict__.items()) + more, flush=True)


def count(agent_stats: dict[str, Any], db: Path) -> Counts:
    ob = agent_stats["outbox"]
    n, stream = int(ob["last_seq"]), ob["stream_id"]
    with _ro(db) as conn:
        per_seq = dict(
            conn.execute(
                "SELECT seq, COUNT(*) FROM messages WHERE device_id = ? AND stream_id = ? GROUP BY seq",
                (DEVICE, stream),
            ).fetchall()
        )
        row = conn.execute(
            "SELECT contiguous_seq FROM streams WHERE device_id = ? AND stream_id = ?", (DEVICE, stream)
        ).fetchone()
    return Counts(
        put=n, stored=len(per_seq), msg_ids=sum(per_seq.values()), duplicates=sum(1 for c in per_seq.values() if c > 1),
        lost=len(set(range(1, n + 1)) - set(per_seq)), contiguous=int(row[0]) if row else 0, outbox_rows=ob["rows"],
        sent=ob["sent"], resent=ob["resent"], acked=ob["acked"],
    )  # fmt: skip


def runs_in_store(db: Path) -> list[dict[str, Any]]:
    """Each run with its completeness, RunSummary window count and the windows actually stored."""
    with _ro(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT r.run_id, r.complete, r.windows, COUNT(w.msg_id) AS stored_windows, "
            "MIN(w.window_index) AS first_index, MAX(w.window_index) AS last_index "
            "FROM runs r LEFT JOIN windows w ON w.run_id = r.run_id GROUP BY r.run_id ORDER BY r.started_at"
        ).fetchall()
    return [dict(r) for r in rows]


def assert_delivered(c: Counts, stats: dict[str, Any]) -> None:
    assert stats["drained"] is True, stats["outbox"]
    assert c.put > 0 and c.lost == 0 and c.duplicates == 0, c
    assert c.stored == c.msg_ids == c.put == c.contiguous, c
    assert c.outbox_rows == 0 and c.acked == c.put, c


@pytest.fixture
def procs(tmp_path: Path, mosquitto_factory: Any) -> Iterator[tuple[MosquittoBroker, AgentProc, DashboardProc]]:
    broker: MosquittoBroker = mosquitto_factory(persistence=False)
    broker.start()
    agent, dash = AgentProc(tmp_path, broker.url), DashboardProc(tmp_path, broker.url)
    try:
        yield broker, agent, dash
    finally:
        agent.kill_if_running()
        if dash.proc is not None and dash.proc.poll() is None:
            dash.sigkill()


# --------------------------------------------------------------------------- (a) broker SIGKILLed 5×
def test_broker_sigkilled_5_times_during_the_agents_run(procs: Any) -> None:
    broker, agent, dash = procs
    dash.start()
    agent.start()
    wait_until(lambda: dash.stored() >= 10, 90, "the first 10 summaries stored")
    stored_at_kill = []
    for _ in range(5):
        time.sleep(1.0)
        assert agent.alive()
        stored_at_kill.append(dash.stored())
        broker.kill()  # SIGKILL, persistence off: queued and in-flight messages die with it
        time.sleep(0.3)
        broker.start()
    after = dash.stored()
    wait_until(lambda: dash.stored() >= after + 10, 60, "summaries flowing after the last restart")
    stats = agent.stop()
    ingest = dash.health()["ingest"]
    dash.stop()
    c = count(stats, dash.db)
    losses = (agent.tmp_path / "agent1.log").read_text().count("lost; reconnecting")
    c.show(
        "broker SIGKILLed 5x (no persistence)",
        agent_connection_losses=losses,
        plugin_duplicates=ingest["duplicates"],
        stored_at_kills=stored_at_kill,
        publisher=stats["publisher"],
    )
    assert_delivered(c, stats)
    assert c.sent >= c.put
    assert losses >= 5, f"the agent saw {losses} connection losses"
    runs = runs_in_store(dash.db)
    assert len(runs) == 1 and runs[0]["complete"] == 1, runs
    assert runs[0]["stored_windows"] == runs[0]["windows"] == c.put - 1  # every window + the run summary
    assert (runs[0]["first_index"], runs[0]["last_index"]) == (0, runs[0]["windows"] - 1)


# --------------------------------------------------------------------------- (b) agent SIGKILLed
def test_agent_sigkilled_mid_run_and_restarted_with_the_same_state(procs: Any) -> None:
    """The restarted agent delivers the killed one's unacknowledged backlog; the stream and its seqs go on.

    The dashboard is paused (SIGSTOP) for the last 8 summaries before the kill, so its acks lag and the killed
    agent leaves rows the broker had PUBACKed but the plugin had not acknowledged — the backlog a real
    crash leaves. The steps of the window being measured at the kill are not in the outbox: not a delivery loss.
    """
    _broker, agent, dash = procs
    dash.start()
    agent.start()
    wait_until(lambda: dash.stored() >= 20, 90, "the first 20 summaries stored")
    assert dash.proc is not None
    dash.proc.send_signal(signal.SIGSTOP)
    try:
        paused_at = agent.outbox()["last_seq"]
        wait_until(lambda: agent.outbox()["last_seq"] >= paused_at + 8, 60, "8 summaries put while acks lag")
        agent.sigkill()
        at_kill = agent.outbox()
    finally:
        dash.proc.send_signal(signal.SIGCONT)
    stored_at_kill = dash.stored()
    agent.start()  # same config, same state dir → same outbox, same stream
    wait_until(lambda: agent.outbox()["last_seq"] >= at_kill["last_seq"] + 10, 90, "10 new summaries put")
    stats = agent.stop()
    ingest = dash.health()["ingest"]
    dash.stop()
    c = count(stats, dash.db)
    c.show(
        "agent SIGKILLed mid-run, restarted",
        put_before_kill=at_kill["last_seq"], backlog_at_kill=at_kill["rows"], stored_at_kill=stored_at_kill,
        resent_by_restart=c.resent - at_kill.get("resent", 0), plugin_duplicates=ingest["duplicates"],
    )  # fmt: skip
    assert_delivered(c, stats)
    assert at_kill["rows"] > 0, "the kill left no backlog to re-send"
    assert c.put > at_kill["last_seq"]  # seq went on in the same stream after the restart
    runs = runs_in_store(dash.db)
    # the killed run never got its RunSummary (incomplete); the restarted agent's run did
    assert [r["complete"] for r in runs] == [0, 1], runs
    for r in runs:  # every window put was stored, indexes without holes
        assert (r["first_index"], r["last_index"]) == (0, r["stored_windows"] - 1), r
    assert runs[1]["windows"] == runs[1]["stored_windows"]
    assert runs[0]["stored_windows"] + runs[1]["stored_windows"] + 1 == c.put


# --------------------------------------------------------------------------- (c) dashboard SIGKILLed
def test_dashboard_sigkilled_mid_run_and_restarted(procs: Any) -> None:
    """Nothing lost: the broker queues for the plugin's persistent session, the agent keeps every row until
    it is acknowledged, and after the restart acks resume (the backlog that grew while it was down drains)."""
    _broker, agent, dash = procs
    dash.start()
    agent.start()
    wait_until(lambda: dash.stored() >= 15, 90, "the first 15 summaries stored")
    dash.sigkill()
    time.sleep(2.0)  # an ack the plugin sent just before it died may still be on its way to the agent
    at_kill = agent.outbox()
    wait_until(lambda: agent.outbox()["last_seq"] >= at_kill["last_seq"] + 15, 60, "15 summaries put, no plugin")
    down = agent.outbox()
    assert down["rows"] >= 15 and down["acked"] == at_kill["acked"], (at_kill, down)  # no acks without it
    dash.start()
    wait_until(lambda: agent.outbox()["acked"] >= down["last_seq"], 60, "acks for everything put while it was down")
    resumed = agent.outbox()
    stats = agent.stop()
    ingest = dash.health()["ingest"]
    dash.stop()
    c = count(stats, dash.db)
    c.show(
        "dashboard SIGKILLed mid-run, restarted",
        acked_at_kill=at_kill["acked"], backlog_while_down=down["rows"], acked_after_restart=resumed["acked"],
        restarted_ingest_stored=ingest["stored"], restarted_ingest_duplicates=ingest["duplicates"],
    )  # fmt: skip
    assert_delivered(c, stats)
    runs = runs_in_store(dash.db)
    assert len(runs) == 1 and runs[0]["complete"] == 1, runs
    assert runs[0]["stored_windows"] == runs[0]["windows"] == c.put - 1
