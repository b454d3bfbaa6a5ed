"""Home Assistant discovery of the plugin's entities: payload shape, retained on a real broker, re-announce."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any, get_args

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.contract import AlertKind
from plugin.config import load_config
from plugin.ha import DEVICE_ID, HaPublisher
from plugin.history import seed_history
from plugin.service import DashboardService
from plugin.store import Store


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int, bool]] = []

    def __call__(self, topic: str, payload: str, qos: int, retain: bool) -> None:
        self.sent.append((topic, payload, qos, retain))


def test_discovery_payload_follows_device_based_discovery(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        seed_history(store, weeks=6, seed=1, step_records_last_runs=0)
        rec = Recorder()
        ha = HaPublisher(rec, store=store, prefix="homeassistant", base_topic="footfall")
        ha.announce()
        topic, payload, qos, retain = rec.sent[0]
        assert (topic, qos, retain) == (f"homeassistant/device/{DEVICE_ID}/config", 1, True)
        doc = json.loads(payload)
        assert (
            doc["dev"]["identifiers"] == [DEVICE_ID]
            and doc["dev"]["manufacturer"] == "footfall"
            and doc["dev"]["sw_version"]
        )
        assert doc["o"]["name"] == "footfall" and doc["o"]["sw"]
        assert doc["availability_topic"] == "footfall/_dashboard/status"
        cmps = doc["cmps"]
        ids = [c["unique_id"] for c in cmps.values()]
        assert len(ids) == len(set(ids)) and all(i.startswith(DEVICE_ID) for i in ids)
        assert all("p" in c and "name" in c for c in cmps.values())
        # entity ids: default_entity_id (HA >= 2025.10), never the deprecated object_id; unique_ids unchanged
        assert all("object_id" not in c for c in cmps.values())
        assert {k: (c["unique_id"], c["default_entity_id"]) for k, c in cmps.items()} == {
            "risk_level": ("footfall_dashboard_risk_level", "sensor.footfall_dashboard_injury_risk_level"),
            "valr_7d": ("footfall_dashboard_valr_7d", "sensor.footfall_dashboard_loading_rate_7_days"),
            "valr_p90_7d": ("footfall_dashboard_valr_p90_7d", "sensor.footfall_dashboard_loading_rate_p90_7_days"),
            "cadence_7d": ("footfall_dashboard_cadence_7d", "sensor.footfall_dashboard_cadence_7_days"),
            "contact_7d": ("footfall_dashboard_contact_7d", "sensor.footfall_dashboard_contact_time_7_days"),
            "forefoot_share_7d": ("footfall_dashboard_forefoot_share_7d",
                                  "sensor.footfall_dashboard_forefoot_strikes_7_days"),
            "asymmetry_contact_7d": ("footfall_dashboard_asymmetry_contact_7d",
                                     "sensor.footfall_dashboard_contact_time_asymmetry_7_days"),
            "steps_7d": ("footfall_dashboard_steps_7d", "sensor.footfall_dashboard_steps_7_days"),
            "runs_7d": ("footfall_dashboard_runs_7d", "sensor.footfall_dashboard_runs_7_days"),
            "load_7d": ("footfall_dashboard_load_7d", "sensor.footfall_dashboard_running_time_7_days"),
            "acwr": ("footfall_dashboard_acwr", "sensor.footfall_dashboard_acute_chronic_load_ratio"),
            "program_stage": ("footfall_dashboard_program_stage", "sensor.footfall_dashboard_program_stage"),
            "program_target_cadence": ("footfall_dashboard_program_target_cadence",
                                       "sensor.footfall_dashboard_target_cadence"),
            "program_progress": ("footfall_dashboard_program_progress", "sensor.footfall_dashboard_program_progress"),
            "current_shoe": ("footfall_dashboard_current_shoe", "sensor.footfall_dashboard_current_shoe"),
            "latest_alert": ("footfall_dashboard_latest_alert", "event.footfall_dashboard_running_alert"),
        }  # fmt: skip
        assert doc["dev"]["name"] == "footfall dashboard" and all("dashboard" not in c["name"] for c in cmps.values())
        assert cmps["risk_level"]["device_class"] == "enum"
        assert set(cmps["risk_level"]["options"]) == {"low", "elevated", "high", "unknown"}
        assert cmps["latest_alert"]["p"] == "event"
        assert cmps["latest_alert"]["event_types"] == list(get_args(AlertKind))
        assert cmps["contact_7d"]["device_class"] == "duration" and cmps["contact_7d"]["unit_of_measurement"] == "ms"
        assert cmps["cadence_7d"]["unit_of_measurement"] == "spm" and cmps["valr_7d"]["unit_of_measurement"] == "BW/s"
        assert all(c.get("state_class") in ("measurement", "total") for k, c in cmps.items()
                   if c["p"] == "sensor" and k not in ("risk_level", "program_stage", "current_shoe"))  # fmt: skip
        # state document: every value_template key exists, numbers from the last 7 days
        state_topic, state_payload, _, state_retain = rec.sent[1]
        state = json.loads(state_payload)
        assert state_topic == "footfall/_dashboard/state" and state_retain
        for key, c in cmps.items():
            if c["p"] == "sensor":
                assert key in state
        assert state["risk_level"] == "low"
        # the 7-day numbers, as of an hour after the latest run (independent of today's weekday)
        at = store.list_runs(limit=1)[0]["ended_at"] + 3600
        week = ha.state(now=at)
        assert week["runs_7d"] >= 3 and 150 < week["cadence_7d"] < 190 and 40 < week["valr_7d"] < 60


def test_stale_components_are_removed_once(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        store.set_setting("ha.components", ["old_sensor", "risk_level"])
        rec = Recorder()
        ha = HaPublisher(rec, store=store)
        ha.announce()
        first = json.loads(rec.sent[0][1])
        assert first["cmps"]["old_sensor"] == {"p": "sensor"}  # only "p": Home Assistant drops it
        ha.announce()
        configs = [json.loads(p) for t, p, _, _ in rec.sent if t.endswith("/config")]
        assert "old_sensor" not in configs[-1]["cmps"]


async def test_retained_discovery_and_reannounce_on_ha_birth(broker: Any, tmp_path: Path) -> None:
    cfg = load_config(None, mqtt={"url": broker.url, "client_id": "dash-ha"}, db_path=str(tmp_path / "ha.db"))
    svc = DashboardService(cfg, serve_web=False)
    await svc.start()
    try:
        for _ in range(200):  # discovery is sent once connected; subscribe afterwards to see it retained
            if svc.ha and svc.ha.announcements >= 1:
                break
            await asyncio.sleep(0.05)
        got: list[tuple[str, bytes, bool]] = []
        lock = threading.Lock()

        def on_message(c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
            with lock:
                got.append((m.topic, m.payload, m.retain))

        ha_client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fake-home-assistant")
        ha_client.on_message = on_message
        ha_client.connect("127.0.0.1", broker.port)
        ha_client.loop_start()
        ha_client.subscribe([("homeassistant/device/+/config", 1), ("footfall/_dashboard/#", 1)])

        def configs() -> list[tuple[str, bytes, bool]]:
            with lock:
                return [g for g in got if g[0].endswith("/config")]

        async def wait(pred: Any) -> bool:
            for _ in range(200):
                if pred():
                    return True
                await asyncio.sleep(0.05)
            return False

        assert await wait(lambda: len(configs()) == 1)
        assert configs()[0][2] is True  # delivered as a retained message to a late subscriber
        with lock:
            assert ("footfall/_dashboard/status", b"online", True) in got
        before = svc.ha.announcements  # type: ignore[union-attr]
        ha_client.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)  # HA restarted
        assert await wait(lambda: len(configs()) == 2)
        assert svc.ha.announcements == before + 1  # type: ignore[union-attr]
        assert configs()[1][2] is False  # live re-announce
        ha_client.publish("homeassistant/status", "offline", qos=1).wait_for_publish(5)
        time.sleep(0.3)
        assert len(configs()) == 2
        ha_client.loop_stop()
    finally:
        await svc.stop()
