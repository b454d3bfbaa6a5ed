"""Notifications: real Apprise delivery to a local aiohttp receiver, the MQTT alert topic, the hub, end to end."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
import pytest
from aiohttp import web
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.contract import Alert, WindowSummary
from plugin.config import MqttConfig, load_config
from plugin.events import EventHub
from plugin.history import Scenario, generate_history
from plugin.ingest import Ingest
from plugin.notify import AlertDispatcher, Notifier
from plugin.service import DashboardService
from plugin.store import Store
from tests.support.brokers import free_port
from tests.support.dashboard import start_service


class Receiver:
    """A local HTTP endpoint standing in for a push service: records what Apprise POSTs."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        self.got = asyncio.Event()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append(await request.json())
        self.got.set()
        return web.json_response({"ok": True}, status=self.status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rec.url = f"json://127.0.0.1:{port}/"
    yield rec
    await runner.cleanup()


def make_alert(**kw: Any) -> Alert:
    base = dict(alert_id=uuid.uuid4().hex, rule="loading_spike", severity="warning", confidence=0.72,
                title="Loading-rate spike: 81 BW/s (+60 % vs your baseline)",
                message="About 12 min into this run your loading rate was 81 BW/s against your usual 50 BW/s.",
                evidence={"valr_bw_s": 81.0}, device_id="sim-1", runner="alex", run_id="sim-1-1",
                created_at=1_767_225_600.0)  # fmt: skip
    base.update(kw)
    return Alert(**base)


async def test_apprise_delivers_title_and_body_to_a_real_http_receiver(receiver: Receiver) -> None:
    n = Notifier([receiver.url])
    alert = make_alert()
    assert await n.notify_alert(alert) is True
    assert len(receiver.posts) == 1
    post = receiver.posts[0]
    assert post["title"] == alert.title
    assert post["message"].startswith(alert.message) and "Confidence: 72 %" in post["message"]
    assert post["type"] == "warning"
    assert await n.send_test() is True and receiver.posts[1]["title"] == "footfall test notification"
    assert n.sent == 2 and n.failed == 0


async def test_failed_delivery_is_reported_and_urls_never_logged(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.status = 500
    secret_url = "tgram://123456789:SECRETtokenABCDEFG/987654/"
    with caplog.at_level(logging.DEBUG):
        n = Notifier([receiver.url, "nosuchscheme://hunter2@example"])
        assert len(n.masked_urls) == 1 and n.masked_urls[0].startswith("json://••••••#")
        assert await n.notify_alert(make_alert(severity="critical")) is False
        n.set_urls([secret_url])
    assert n.failed == 1 and receiver.posts[0]["type"] == "failure"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "hunter2" not in text and "SECRETtoken" not in text
    assert Notifier([receiver.url], min_severity="warning").min_severity == "warning"
    assert await Notifier([receiver.url], min_severity="warning").notify_alert(make_alert(severity="info")) is False


async def test_dispatcher_fans_out_to_mqtt_hub_and_apprise(broker: Any, tmp_path: Path, receiver: Receiver) -> None:
    loop = asyncio.get_running_loop()
    hub = EventHub()
    hub.bind(loop)
    events: list[Any] = []

    async def listen() -> None:
        async for ev in hub.subscribe():
            events.append(ev)

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0)
    store = Store(tmp_path / "d.db")
    ingest = Ingest(store, MqttConfig(url=broker.url, client_id="dash-notify"))
    await asyncio.to_thread(ingest.start)
    got: list[mqtt.MQTTMessage] = []
    arrived = threading.Event()
    obs = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="observer")
    obs.on_message = lambda c, u, m: (got.append(m), arrived.set())
    obs.connect("127.0.0.1", broker.port)
    obs.loop_start()
    obs.subscribe("footfall/+/alert", 1)
    await asyncio.sleep(0.3)
    d = AlertDispatcher(publish=ingest.publish, base_topic="footfall", hub=hub, notifier=Notifier([receiver.url]),
                        loop=loop)  # fmt: skip
    alert = make_alert()
    await asyncio.to_thread(d.dispatch, alert)  # the ingest writer thread calls it
    await asyncio.wait_for(receiver.got.wait(), 10)
    assert await asyncio.to_thread(arrived.wait, 10)
    assert got[0].topic == "footfall/sim-1/alert" and got[0].qos == 1
    assert Alert.model_validate_json(got[0].payload) == alert
    for _ in range(50):
        if events:
            break
        await asyncio.sleep(0.02)
    assert events[0].type == "alert" and events[0].data["alert_id"] == alert.alert_id
    assert receiver.posts[0]["title"] == alert.title
    listener.cancel()
    obs.loop_stop()
    await asyncio.to_thread(ingest.stop)
    store.close()


async def test_service_end_to_end_spike_reaches_phone_mqtt_and_api(
    broker: Any, tmp_path: Path, receiver: Receiver
) -> None:
    """Raw summaries in → stored → risk engine → Apprise push + MQTT alert + dashboard API."""
    svc, port = await start_service(broker.url, tmp_path / "e2e.db", "dash-e2e", notify_urls=[receiver.url])
    try:
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="raw-agent")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        msgs = list(generate_history(weeks=6, seed=21, scenario=Scenario(spike=(20, 6, 2, 1.7)),
                                     step_records_last_runs=0))  # fmt: skip
        for m in msgs:
            kind = "summary" if isinstance(m, WindowSummary) else "run"
            pub.publish(f"footfall/{m.device_id}/{kind}", m.model_dump_json(), qos=1)
        await asyncio.wait_for(receiver.got.wait(), 30)
        assert "Loading-rate spike" in receiver.posts[0]["title"]
        for _ in range(300):  # the receiver may answer before Apprise's call returns and is counted
            if svc.ingest and svc.ingest.stats.stored == len(msgs) and svc.notifier.sent == 1:
                break
            await asyncio.sleep(0.05)
        async with aiohttp.ClientSession() as http:
            alerts = await (await http.get(f"http://127.0.0.1:{port}/api/alerts")).json()
            health = await (await http.get(f"http://127.0.0.1:{port}/api/health")).json()
        assert [a["rule"] for a in alerts["alerts"]] == ["loading_spike"]
        assert health["ingest"]["stored"] == len(msgs) and health["broker"]["connected"] is True
        assert health["notify"]["sent"] == 1 and json.dumps(health).find(receiver.url) == -1
        pub.loop_stop()
    finally:
        await svc.stop()


async def test_dashboard_settings_override_the_config_file(
    broker: Any, tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = load_config(None, mqtt={"url": broker.url, "client_id": "dash-settings", "ha_discovery": False},
                      db_path=str(tmp_path / "s.db"))  # fmt: skip
    svc = DashboardService(cfg, serve_web=False)
    await svc.start()
    try:
        assert svc.store is not None and svc.engine is not None
        assert not svc.notifier.configured and await svc.notify_test() is False
        svc.store.set_setting("notify_urls", [receiver.url])  # what the settings page writes
        svc.store.set_setting("loading_spike_pct", 40.0)
        assert await svc.notify_test() is True
        assert receiver.posts[-1]["title"] == "footfall test notification"
        assert svc.engine.config.spike_pct == 40.0
        svc.store.set_setting("loading_spike_pct", 9999.0)  # out of range: refused, the last good value stays
        with caplog.at_level(logging.ERROR, logger="plugin.service"):
            await svc.notify_test()
        assert svc.engine.config.spike_pct == 40.0
        assert any("invalid risk settings" in r.getMessage() for r in caplog.records)
    finally:
        await svc.stop()
