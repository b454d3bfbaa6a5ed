"""A club install under faults, with the REAL processes: 3 agents (``footfall-agent run``, simulator) → a private
Mosquitto → 2 dashboard workers (``footfall-dashboard run``) sharing one PostgreSQL database through an MQTT 5
shared subscription. The broker is SIGKILLed 5 times (no persistence: what it queued dies with it) and one worker
is SIGKILLed mid-run and started again.

Counted from the agents' own outbox files and from the database: for every agent, the seqs 1..N it put are stored
exactly once (``stored = sent``, 0 duplicates), its outbox is empty at the end (every row acknowledged from the
database), both workers stored a share, and ``/api/health``'s ``store.summaries`` is the same on both workers and
equals the windows in the database. Counts are printed (``pytest -s``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.brokers import MosquittoBroker
from tests.support.postgres import PostgresCluster
from tests.support.processes import AgentProc, DashboardProc, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


class Club:
    def __init__(self, tmp_path: Path, broker: MosquittoBroker, url: str) -> None:
        self.url = url
        self.workers = [
            DashboardProc(tmp_path, broker.url, name=f"worker{i}", database=url,
                          mqtt={"client_id": f"dash-worker{i}", "share_group": "club"})
            for i in (1, 2)
        ]  # fmt: skip
        self.agents = [
            AgentProc(tmp_path, broker.url, device_id=f"pi-{k}", runner=f"runner{k}", seed=20 + k, name=f"agent{k}")
            for k in range(3)
        ]

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as c:
            return c.execute(sql, args or None).fetchall()  # type: ignore[arg-type]

    def stored(self) -> int:
        try:
            return int(self.query("SELECT COUNT(*) FROM messages")[0][0])
        except psycopg.Error:  # the first worker is still migrating
            return 0


@pytest.fixture
def club(tmp_path: Path, mosquitto_factory: Any, pg_cluster: PostgresCluster) -> Iterator[tuple[MosquittoBroker, Club]]:
    broker: MosquittoBroker = mosquitto_factory(persistence=False)
    broker.start()
    c = Club(tmp_path, broker, pg_cluster.create_db())  # an empty database: the workers migrate it
    try:
        yield broker, c
    finally:
        for a in c.agents:
            a.kill_if_running()
        for w in c.workers:
            if w.proc is not None and w.proc.poll() is None:
                w.sigkill()


def test_two_workers_three_agents_broker_killed_5_times_and_a_worker_killed(club: tuple[MosquittoBroker, Club]) -> None:
    broker, c = club
    for w in c.workers:
        w.start()
    for a in c.agents:
        a.start()
    wait_until(lambda: c.stored() >= 30, 120, "the first 30 summaries stored")
    victim = c.workers[0]
    for k in range(5):
        time.sleep(1.0)
        assert all(a.alive() for a in c.agents)
        broker.kill()  # SIGKILL, persistence off: queued and in-flight messages die with it
        if k == 1:
            victim.sigkill()  # one worker dies mid-run, with whatever it had queued and not yet stored
        time.sleep(0.3)
        broker.start()
        if k == 3:
            victim.start()  # … and comes back (its restart policy), taking its share again
    after = c.stored()
    wait_until(lambda: c.stored() >= after + 30, 90, "summaries flowing after the last restart")
    stats = {a.device_id: a.stop() for a in c.agents}  # SIGTERM: each drains until the dashboards acked all
    healths = [w.health() for w in c.workers]
    for w in c.workers:
        w.stop()

    windows = int(c.query("SELECT COUNT(*) FROM windows")[0][0])
    report = []
    for device, st in stats.items():
        ob = st["outbox"]
        per_seq = dict(c.query("SELECT seq, COUNT(DISTINCT msg_id) FROM messages WHERE device_id = %s AND "
                               "stream_id = %s GROUP BY seq", device, ob["stream_id"]))  # fmt: skip
        put = int(ob["last_seq"])
        lost = len(set(range(1, put + 1)) - set(per_seq))
        dup = sum(1 for n in per_seq.values() if n > 1)
        contiguous = c.query("SELECT contiguous_seq FROM streams WHERE device_id = %s AND stream_id = %s", device,
                             ob["stream_id"])[0][0]  # fmt: skip
        report.append((device, put, len(per_seq), dup, lost, ob["rows"], ob["acked"], contiguous))
        assert st["drained"] is True, (device, ob)
        assert put > 0 and lost == 0 and dup == 0, (device, put, lost, dup)
        assert len(per_seq) == put == contiguous == ob["acked"], (device, put, len(per_seq), contiguous, ob)
        assert ob["rows"] == 0, (device, ob)
        run = c.query("SELECT complete, windows, (SELECT COUNT(*) FROM windows w WHERE w.run_id = r.run_id) "
                      "FROM runs r WHERE device_id = %s ORDER BY started_at DESC LIMIT 1", device)[0]  # fmt: skip
        assert run[0] == 1 and run[1] == run[2], (device, run)  # the last run complete, every window stored
    summaries = [h["store"]["summaries"] for h in healths]
    stored_by = [h["ingest"]["stored"] for h in healths]
    print(f"\n[club faults] per agent (device, put, stored seqs, duplicates, lost, outbox rows, acked, contiguous): "
          f"{report}; windows={windows}; store.summaries per worker={summaries}; stored since start per worker="
          f"{stored_by}; worker restarts={victim.starts - 1}", flush=True)  # fmt: skip
    assert summaries[0] == summaries[1] == windows
    assert all(n > 0 for n in stored_by)  # both workers took a share (the restarted one since its restart)
    in_run = c.query("SELECT rule, run_id, COUNT(*) FROM alerts WHERE rule IN ('loading_spike', 'fatigue_drift') "
                     "GROUP BY rule, run_id HAVING COUNT(*) > 1")  # fmt: skip
    assert in_run == []  # no in-run rule fired twice for one run across the workers
