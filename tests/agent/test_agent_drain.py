"""The agent's last act: draining the outbox before it exits, within the configured time, broker wait included."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from edge_agent.runtime.agent import drain_outbox
from tests.support.delivery import TOPICS, Agent, make_message


async def test_drain_waits_for_a_late_broker_within_its_whole_budget(mosquitto_factory: Any, tmp_path: Path) -> None:
    """The broker comes up 7 s into a 20 s drain: everything is delivered (a fixed 5 s wait for the broker
    used to give up while the log said "up to 20 s")."""
    broker = mosquitto_factory()  # not started yet
    async with Agent(broker.url, tmp_path / "outbox.db", require_plugin_ack=False) as agent:
        for i in range(20):
            await asyncio.to_thread(agent.outbox.put, TOPICS.summary, make_message(i))
        loop = asyncio.get_running_loop()
        loop.call_later(7.0, broker.start)
        assert await drain_outbox(agent.outbox, agent.conn, agent.publisher, 20.0)
        assert agent.outbox.undelivered() == 0


async def test_drain_gives_up_when_the_broker_never_comes(mosquitto_factory: Any, tmp_path: Path) -> None:
    broker = mosquitto_factory()  # never started
    async with Agent(broker.url, tmp_path / "outbox.db", require_plugin_ack=False) as agent:
        await asyncio.to_thread(agent.outbox.put, TOPICS.summary, make_message(0))
        assert not await drain_outbox(agent.outbox, agent.conn, agent.publisher, 2.0)
        assert agent.outbox.undelivered() == 1
