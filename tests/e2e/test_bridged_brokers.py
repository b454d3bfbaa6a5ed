"""Brokers at club scale: a training site's Mosquitto bridged to the club's central Mosquitto (docs/club.md).

Two real Mosquitto processes. The agents of the site publish to the site broker; its bridge forwards summaries,
runs, status and live updates to the central broker, where the dashboard ingests them (MQTT 5, shared
subscription), and brings the dashboard's acks and alerts back. The central broker is SIGKILLed while the site
keeps running: the site's bridge queues, the agents keep their outboxes, and once the club's broker is back
everything is stored exactly once and every outbox drains — acks cross the bridge end to end.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from plugin.config import MqttConfig
from plugin.ingest import Ingest
from plugin.store import Store
from tests.support.brokers import MosquittoBroker
from tests.support.delivery import Agent
from tests.support.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def bridge_to(site: MosquittoBroker, central: MosquittoBroker, name: str) -> None:
    """The bridge section docs/club.md gives for a training site (``docker/mosquitto/site-bridge.conf``)."""
    template = (Path(__file__).resolve().parents[2] / "docker" / "mosquitto" / "site-bridge.conf").read_text()
    conf = template.replace("central.club.example:1883", f"127.0.0.1:{central.port}").replace("SITE", name)
    conf = "\n".join(line for line in conf.splitlines() if not line.startswith(("remote_username", "remote_password",
                                                                                "bridge_cafile")))  # fmt: skip
    conf += "\nrestart_timeout 1 2\n"  # test brokers come back within a second: retry quickly
    site.conf.write_text(site.conf.read_text() + conf)


async def test_a_site_broker_bridged_to_the_central_broker_delivers_end_to_end(
    mosquitto_factory: Any, tmp_path: Path
) -> None:
    central: MosquittoBroker = mosquitto_factory()
    site: MosquittoBroker = mosquitto_factory(persistence=True)
    bridge_to(site, central, "track")
    central.start()
    site.start()
    store = Store(tmp_path / "club.db")
    ingest = Ingest(store, MqttConfig(url=central.url, client_id="club-dash", share_group="club"), ack_interval=0.2)
    ingest.start()
    try:
        async with (
            Agent(site.url, tmp_path / "a.db", device_id="track-a") as a,
            Agent(site.url, tmp_path / "b.db", device_id="track-b") as b,
        ):
            await asyncio.gather(a.produce(40), b.produce(40))
            assert await until(lambda: ingest.stats.stored == 80, 60), ingest.stats
            assert await a.publisher.drain(30) and await b.publisher.drain(30)  # acks came back over the bridge
            central.kill()  # the club's broker is away; the site keeps taking the runners' summaries
            await asyncio.gather(a.produce(30, first=40), b.produce(30, first=40))
            assert a.outbox.stats()["rows"] >= 30 and b.outbox.stats()["rows"] >= 30  # kept: nobody acked them
            central.start()
            assert await a.publisher.drain(90), a.outbox.stats()
            assert await b.publisher.drain(90), b.outbox.stats()
            stats = (a.outbox.stats(), b.outbox.stats())
        assert ingest.wait_idle(20)
        counts = store.counts()
        print(f"\n[bridged brokers] outboxes {stats}; store {counts}; ingest {ingest.stats.as_dict()}", flush=True)
        assert counts["messages"] == counts["windows"] == 140  # every summary once, none twice
        for dev in ("track-a", "track-b"):
            (stream,) = store.streams(dev)
            assert stream["contiguous_seq"] == stream["max_seq"] == 70
        assert all(s["rows"] == 0 and s["acked"] == 70 for s in stats)
    finally:
        ingest.stop()
        store.close()
