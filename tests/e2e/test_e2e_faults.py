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

import signal
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.brokers import MosquittoBroker
from tests.support.processes import DEVICE, AgentProc, DashboardProc, _ro, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


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
    losses = agent.log_path.read_text().count("lost; reconnecting")
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
