"""End-to-end delivery under faults, against real Mosquitto brokers (docs/design.md §6, §8).

Every test COUNTS what the agent stored in its outbox (put), published (incl. re-sends), got
PUBACKed, and what the acknowledging subscriber (tests/support/ackers.py, standing in for the plugin) stored.
``lost`` = seqs put and not stored and not dropped by the documented bound — must be 0.

Test (c) SIGKILLs and restarts the small publishing agent of ``tests/support/delivery.py`` (script mode).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.delivery import DEVICE, Agent
from tests.support.paths import REPO
from tests.support.waiting import until


@dataclass
class Counts:
    put: int
    published: int
    pubacked: int
    resent: int
    stored: int
    duplicates: int
    gaps_seen: int
    dropped: int
    lost: int

    def show(self, label: str) -> None:
        print(f"\n[{label}] " + ", ".join(f"{k}={v}" for k, v in self.__dict__.items()), flush=True)


def counts(agent_stats: dict[str, Any], acker: Any, expected: set[int], dropped: set[int] | None = None) -> Counts:
    stored = acker.stored_seqs(DEVICE, agent_stats["stream_id"])
    dropped = dropped or set()
    return Counts(
        put=agent_stats["put"],
        published=agent_stats["sent"],
        pubacked=agent_stats["pubacked"],
        resent=agent_stats["resent"],
        stored=len(stored),
        duplicates=acker.duplicates,
        gaps_seen=len(acker.ever_missing),
        dropped=agent_stats["dropped"],
        lost=len(expected - stored - dropped),
    )


@pytest.fixture
def acker_factory() -> Any:
    from tests.support.ackers import Acker

    made: list[Acker] = []

    def make(broker: Any, **kw: Any) -> Acker:
        a = Acker(broker.host, broker.port, **kw)
        made.append(a)
        return a

    yield make
    for a in made:
        a.stop()


# --------------------------------------------------------------------------- (a) broker kills
@pytest.mark.parametrize("persistence", [False, True], ids=["no-persistence", "persistence"])
async def test_broker_sigkilled_5_times_during_run(
    mosquitto_factory: Any, acker_factory: Any, tmp_path: Path, persistence: bool
) -> None:
    broker = mosquitto_factory(persistence=persistence, autosave_interval=1)
    broker.start()
    acker = acker_factory(broker).start()
    n = 1200
    async with Agent(broker.url, tmp_path / "outbox.db") as agent:
        await agent.conn.wait_connected(10)

        async def chaos() -> None:
            for _ in range(5):
                await asyncio.sleep(0.7)
                await asyncio.to_thread(broker.kill)  # SIGKILL: no clean shutdown, no final save
                await asyncio.sleep(0.2)
                await asyncio.to_thread(broker.start)

        seqs, _ = await asyncio.gather(agent.produce(n, rate_hz=300), chaos())
        assert await agent.publisher.drain(30), agent.outbox.stats()
        c = counts(agent.outbox.stats(), acker, set(seqs))
    c.show(f"broker SIGKILLed 5x, persistence={persistence}")
    assert agent.conn.stats["connection_losses"] >= 5
    assert c.put == n and c.stored == n and c.lost == 0
    assert c.published >= n


# --------------------------------------------------------------------------- (b) broker down
async def test_broker_down_for_whole_run_then_up(
    mosquitto_factory: Any, acker_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = mosquitto_factory()  # not started: nothing listens on its port
    n = 400
    with caplog.at_level(logging.INFO, logger="edge_agent"):
        async with Agent(broker.url, tmp_path / "outbox.db") as agent:
            seqs = await agent.produce(n, rate_hz=200)  # a 2 s "run" with no broker
            await asyncio.sleep(0.5)
            assert agent.outbox.backlog == n and agent.conn.stats["failed_attempts"] >= 3
            broker.start()
            acker = acker_factory(broker).start()
            assert await agent.publisher.drain(30)
            c = counts(agent.outbox.stats(), acker, set(seqs))
    c.show(f"broker down for the run ({agent.conn.stats['failed_attempts']} failed connects), then up")
    assert c.stored == n and c.lost == 0
    unreachable = [r for r in caplog.records if "unreachable" in r.message]
    assert len(unreachable) == 1  # logged once, not once per attempt
    assert "connected to" in caplog.text


# --------------------------------------------------------------------------- (c) agent kill -9
async def test_agent_sigkilled_mid_run_and_restarted(
    mosquitto_factory: Any, acker_factory: Any, tmp_path: Path
) -> None:
    broker = mosquitto_factory()
    broker.start()
    acker = acker_factory(broker).start()
    n, db = 600, tmp_path / "outbox.db"
    cmd = [sys.executable, "-m", "tests.support.delivery", "agent", broker.url, str(db), str(n), "300"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert first.stdout is not None
    confirmed = 0
    while confirmed < n // 2:
        line = first.stdout.readline()
        assert line, "agent died early"
        confirmed = int(line.split()[1])
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    stored_at_kill = acker.stored()
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert second.returncode == 0, second.stderr[-2000:]
    stats = json.loads(second.stdout.strip().splitlines()[-1].removeprefix("stats "))
    assert await until(lambda: acker.stored() >= n, 10)
    c = counts(stats, acker, set(range(1, n + 1)))
    c.show(f"agent SIGKILLed after put seq {confirmed} (plugin had {stored_at_kill}), restarted")
    assert stats["last_seq"] == n and c.stored == n and c.lost == 0 and stats["rows"] == 0


# --------------------------------------------------------------------------- (d) bound
async def test_outbox_bound_reached_drops_documented_rows_only(
    mosquitto_factory: Any, acker_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = mosquitto_factory()  # down while the outbox fills up
    with caplog.at_level(logging.WARNING, logger="edge_agent.runtime.outbox"):
        async with Agent(broker.url, tmp_path / "outbox.db", max_rows=50) as agent:
            seqs = await agent.produce(80, run_every=10)  # 72 window summaries + 8 run summaries
            runs = {s for i, s in enumerate(seqs) if (i + 1) % 10 == 0}
            assert agent.outbox.backlog == 50
            st = agent.outbox.stats()
            assert st["dropped"] == 30 and st["dropped_run"] == 0
            held = {r.seq for r in agent.outbox.pending(100)}
            dropped = set(seqs) - held
            assert runs <= held and max(dropped) < min(set(seqs) - runs - dropped)  # oldest summaries went
            broker.start()
            acker = acker_factory(broker).start()
            assert await agent.publisher.drain(30)  # gaps it cannot fill do not stall the outbox
            c = counts(agent.outbox.stats(), acker, set(seqs), dropped)
    c.show("outbox bound 50 reached with 80 messages while offline")
    warn_at = next(i for i, r in enumerate(caplog.records) if "NEARLY FULL" in r.message)
    drop_at = next(i for i, r in enumerate(caplog.records) if "DROPPED" in r.message)
    assert warn_at < drop_at
    assert c.stored == 50 and c.lost == 0 and c.dropped == 30
    assert runs <= acker.stored_seqs(DEVICE, agent.outbox.stream_id)


# --------------------------------------------------------------------------- broker queue limit
async def test_broker_queue_limit_loses_pubacked_messages_but_not_ours(
    mosquitto_factory: Any, acker_factory: Any, tmp_path: Path
) -> None:
    """Mosquitto PUBACKs, then drops what exceeds ``max_queued_messages`` for an offline
    subscriber. PUBACK-only delivery loses those; end-to-end acks recover every one."""
    n = 200
    results = {}
    for mode, require_ack in (("puback-only", False), ("end-to-end", True)):
        broker = mosquitto_factory(max_queued_messages=20)
        broker.start()
        acker = acker_factory(broker, client_id=f"acker-{mode}").start()
        acker.pause()  # offline subscriber with a persistent session: the broker queues for it
        async with Agent(broker.url, tmp_path / f"{mode}.db", require_plugin_ack=require_ack) as agent:
            await agent.conn.wait_connected(10)
            seqs = await agent.produce(n)
            assert await until(lambda a=agent: a.outbox.stats()["pubacked"] >= n, 15)
            acker.resume()
            if require_ack:
                assert await agent.publisher.drain(30)
            else:
                await asyncio.sleep(1.5)
            c = counts(agent.outbox.stats(), acker, set(seqs))
        c.show(f"broker max_queued_messages=20, {mode}")
        results[mode] = c
    assert results["puback-only"].pubacked == n and results["puback-only"].lost >= n - 40
    assert results["end-to-end"].stored == n and results["end-to-end"].lost == 0


# --------------------------------------------------------------------------- with the real plugin
async def test_real_plugin_ingest_through_broker_kills(mosquitto_factory: Any, tmp_path: Path) -> None:
    """The same guarantee with the dashboard's own ingest (plugin/ingest.py + SQLite store) acking."""
    from plugin.config import MqttConfig
    from plugin.ingest import Ingest
    from plugin.store import Store

    broker = mosquitto_factory()
    broker.start()
    store = Store(tmp_path / "dash.db")
    ingest = Ingest(store, MqttConfig(url=broker.url, client_id="dash-faults"), ack_interval=0.2)
    ingest.start()
    n = 600
    try:
        async with Agent(broker.url, tmp_path / "outbox.db") as agent:
            await agent.conn.wait_connected(10)

            async def chaos() -> None:
                for _ in range(3):
                    await asyncio.sleep(0.6)
                    await asyncio.to_thread(broker.kill)
                    await asyncio.sleep(0.2)
                    await asyncio.to_thread(broker.start)

            seqs, _ = await asyncio.gather(agent.produce(n, rate_hz=300), chaos())
            assert await agent.publisher.drain(30), agent.outbox.stats()
            st = agent.outbox.stats()
            contiguous, missing = store.stream_state(DEVICE, st["stream_id"])
        print(
            f"\n[real plugin ingest, broker SIGKILLed 3x] put={st['put']}, published={st['sent']}, "
            f"resent={st['resent']}, plugin contiguous={contiguous}, missing={missing}, "
            f"plugin stored={ingest.stats.stored}, duplicates={ingest.stats.duplicates}",
            flush=True,
        )
        assert seqs == list(range(1, n + 1)) and contiguous == n and missing == []
        assert ingest.stats.stored == n and st["rows"] == 0
    finally:
        ingest.stop()
        store.close()
