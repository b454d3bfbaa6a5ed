"""Forged acks against a real Mosquitto running the ACL the kit ships (docker/mosquitto/acl).

An ack deletes an agent's outbox rows, so only the dashboard's user may publish one, each agent user may touch only
its own topics, and an ack claiming seqs the outbox never assigned is refused and counted whoever sends it.
Negative checks need no sleeps: the broker handles one connection's messages in order, so once a later genuine
message has arrived, an earlier forged one would have arrived too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.common.mqtt import BrokerSettings, MqttConnection
from edge_agent.contract import Ack, Topics
from edge_agent.runtime.outbox import Outbox
from edge_agent.runtime.publisher import OutboxPublisher
from tests.support.brokers import SHIPPED_ACL, MosquittoBroker, harden, have_mosquitto
from tests.support.waiting import until

USERS = {"pend": "pend-Secret-1", "other": "other-Secret-2", "footfall-dashboard": "dash-Secret-3"}
T = Topics("pend")


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    if not have_mosquitto():
        pytest.skip("the shipped ACL needs a real Mosquitto (.ci/run installs it)")
    b = MosquittoBroker(tmp_path / "mosq")
    harden(b, tmp_path, users=USERS, acl=SHIPPED_ACL)
    b.start()
    yield b
    b.stop()


def login(b: MosquittoBroker, user: str) -> MqttConnection:
    return MqttConnection(BrokerSettings(url=b.url, client_id=f"test-{user}", username=user, password=USERS[user]))


def ack(outbox: Outbox, acked: int, highest: int | None = None) -> str:
    a = Ack(device_id="pend", stream_id=outbox.stream_id, acked_seq=acked, highest_seq=highest)
    return a.model_dump_json()


async def test_only_the_dashboard_may_ack_and_acks_beyond_the_last_seq_are_refused(
    acl_broker: MosquittoBroker, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", "pend")  # waits for the plugin's ack, no plugin running
    for i in range(7):
        outbox.put(T.summary, {"kind": "summary", "i": i})
    async with (
        login(acl_broker, "pend") as agent,
        login(acl_broker, "other") as other,
        login(acl_broker, "footfall-dashboard") as dashboard,
    ):
        assert await agent.wait_connected(10) and await other.wait_connected(10)
        assert await dashboard.wait_connected(10)
        publisher = OutboxPublisher(agent, outbox, T, poll_s=0.05)
        task = asyncio.create_task(publisher.run())
        try:
            assert await until(lambda: publisher.stats["pubacks"] >= 7, 10)
            # Another device's credential and the device's own leaked credential both try to ack everything.
            await other.publish(T.ack, ack(outbox, 7, 7))
            await agent.publish(T.ack, ack(outbox, 7, 7))
            # The forgery, sent as the dashboard (a peer that *may* ack): beyond seq 7 → refused.
            await dashboard.publish(T.ack, ack(outbox, 100_000, 100_000))
            assert await until(lambda: publisher.stats["refused_acks"] == 1, 10)
            assert outbox.backlog == 7 and publisher.stats["acks"] == 0, publisher.stats
            assert outbox.stats()["refused_acks"] == 1
            # The genuine ack still works.
            await dashboard.publish(T.ack, ack(outbox, 7))
            assert await until(lambda: outbox.backlog == 0, 10)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    outbox.close()


async def test_an_agent_user_cannot_write_or_read_another_devices_topics(acl_broker: MosquittoBroker) -> None:
    """Each publish waits for its PUBACK, so the broker handled them in this order; each subscriber gets what it
    may read in that order: once the last one has arrived, an earlier forged one would have arrived too."""
    at_dashboard: list[tuple[str, bytes]] = []
    at_other: list[tuple[str, bytes]] = []
    async with (
        login(acl_broker, "footfall-dashboard") as dashboard,
        login(acl_broker, "other") as other,
        login(acl_broker, "pend") as agent,
    ):
        for conn in (dashboard, other, agent):
            assert await conn.wait_connected(10)
        dashboard.subscribe("footfall/#", lambda m: at_dashboard.append((m.topic, m.payload)))
        other.subscribe("footfall/pend/#", lambda m: at_other.append((m.topic, m.payload)))  # not its own
        other.subscribe("footfall/other/ack", lambda m: at_other.append((m.topic, m.payload)))
        for _ in range(100):  # subscriptions travel on other connections: sync until both are active
            await dashboard.publish("footfall/other/ack", b"sync")
            if await until(lambda: ("footfall/other/ack", b"sync") in at_other, 0.2) and await until(
                lambda: ("footfall/other/ack", b"sync") in at_dashboard, 0.2
            ):
                break
        assert ("footfall/other/ack", b"sync") in at_other and ("footfall/other/ack", b"sync") in at_dashboard
        await other.publish("footfall/pend/summary", b'{"forged": true}')  # data for another device
        await other.publish("footfall/_dashboard/status", b"offline")  # the plugin's status
        await other.publish("footfall/pend/ack", b'{"forged": "ack"}')
        await agent.publish("footfall/pend/status", b"online")  # genuine
        await dashboard.publish("footfall/other/ack", b"end")
        assert await until(lambda: ("footfall/other/ack", b"end") in at_other, 10)
        assert await until(lambda: ("footfall/other/ack", b"end") in at_dashboard, 10)
    assert ("footfall/pend/status", b"online") in at_dashboard  # the genuine message went through
    forged = {("footfall/pend/summary", b'{"forged": true}'), ("footfall/_dashboard/status", b"offline"),
              ("footfall/pend/ack", b'{"forged": "ack"}')}  # fmt: skip
    assert not forged & set(at_dashboard), at_dashboard
    assert {t for t, _ in at_other} == {"footfall/other/ack"}, at_other  # nothing of pend's
    assert at_other[-1] == ("footfall/other/ack", b"end")
