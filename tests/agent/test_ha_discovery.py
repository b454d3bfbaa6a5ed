"""Home Assistant device discovery: payload against HA's documented schema, templates rendered on
real contract messages, retained announce + re-announce on HA's birth, stale entries cleared."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import jinja2
import jsonschema
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.common.ha_discovery import discovery_topic, ha_slug
from edge_agent.common.mqtt import BrokerSettings, MqttConnection
from edge_agent.contract import LiveUpdate, Topics, WindowSummary
from edge_agent.runtime.ha_discovery import SENSORS, HaDiscovery, build_discovery_payload
from tests.support.waiting import until

T = Topics("dev1")
CONFIG = discovery_topic("dev1")
FOREIGN = "homeassistant/sensor/dev1/temperature/config"

# Transcribed from HA's MQTT integration (components/mqtt/schemas.py DEVICE_DISCOVERY_SCHEMA and the
# "Device discovery payload" docs): device + origin (name required) + components (platform required,
# unique_id required for entity platforms), and only the shared options at the top level.
HA_DEVICE_DISCOVERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["dev", "o", "cmps"],
    "additionalProperties": False,
    "properties": {
        "dev": {
            "type": "object",
            "required": ["identifiers", "name"],
            "properties": {
                "identifiers": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "name": {"type": "string"},
                "manufacturer": {"type": "string"},
                "model": {"type": "string"},
                "sw_version": {"type": "string"},
            },
        },
        "o": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "sw": {"type": "string"},
                "url": {"type": "string", "pattern": "^https?://"},
            },
        },
        "cmps": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": ["p"],
                "properties": {"p": {"enum": ["sensor", "binary_sensor", "event"]}},
                "if": {"minProperties": 2},
                "then": {"required": ["p", "unique_id", "state_topic"]},
            },
        },
        "availability_topic": {"type": "string"},
        "payload_available": {"type": "string"},
        "payload_not_available": {"type": "string"},
        "state_topic": {"type": "string"},
        "qos": {"enum": [0, 1, 2]},
        "encoding": {"type": "string"},
    },
}


def sample_window() -> dict[str, Any]:
    ws = WindowSummary(
        msg_id="abcdefgh01",
        device_id="dev1",
        stream_id="abcd1234",
        seq=7,
        device_time=1.7e9,
        run_id="dev1-20260101T070000",
        window_index=3,
        t_start=1.7e9,
        t_end=1.7e9 + 10,
        steps=29,
        cadence_spm=172.6,
        left={
            "steps": 15,
            "zones": {"rearfoot": 11, "midfoot": 4},
            "valr_bw_s": {"n": 15, "mean": 62.0, "p90": 81.5},
            "strike_index": {"n": 15, "mean": 0.214},
            "contact_ms": {"n": 15, "mean": 251.6},
        },
        right={
            "steps": 14,
            "zones": {"rearfoot": 14},
            "valr_bw_s": {"n": 14, "mean": 58.0, "p90": 77.0},
            "strike_index": {"n": 14, "mean": 0.18},
            "contact_ms": {"n": 14, "mean": 244.0},
        },
        asymmetry={"contact_ms_pct": -3.07, "valr_pct": -6.67},
    )
    return json.loads(ws.model_dump_json())


def test_payload_matches_ha_schema_and_conventions() -> None:
    p = build_discovery_payload(T, model="moticon-opengo-16", removed=("footfall_dev1_legacy",))
    jsonschema.validate(p, HA_DEVICE_DISCOVERY_SCHEMA)
    assert p["dev"]["manufacturer"] == "footfall" and p["dev"]["model"] == "moticon-opengo-16"
    assert p["availability_topic"] == T.status
    assert (p["payload_available"], p["payload_not_available"], p["qos"]) == ("online", "offline", 1)
    cmps = p["cmps"]
    assert cmps.pop("footfall_dev1_legacy") == {"p": "sensor"}  # removal marker: platform only
    assert len(cmps) == len(SENSORS) == len({c["unique_id"] for c in cmps.values()})
    by_key = {c["unique_id"].removeprefix("footfall_dev1_"): c for c in cmps.values()}
    assert {
        "cadence",
        "valr_mean",
        "valr_p90",
        "strike_index_left",
        "strike_index_right",
        "strike_zone",
        "contact_time_left",
        "contact_time_right",
        "asymmetry_contact",
        "steps",
        "run_state",
        "outbox_backlog",
    } <= set(by_key)
    assert by_key["cadence"]["unit_of_measurement"] == "spm"
    assert by_key["valr_mean"]["unit_of_measurement"] == "BW/s" == by_key["valr_p90"]["unit_of_measurement"]
    for c in cmps.values():
        if c.get("unit_of_measurement") == "ms":
            assert c["device_class"] == "duration"
        if c.get("device_class") == "enum":  # HA: enum sensors have options, no unit/state_class
            assert c["options"] and "state_class" not in c and "unit_of_measurement" not in c
        elif c["unique_id"].endswith("_valr_interval"):  # text ("≈ 180 BW/s (150–210)"): no unit, no stats
            assert "state_class" not in c and "unit_of_measurement" not in c
        else:
            assert c["state_class"] in ("measurement", "total_increasing")
        assert c["state_topic"] in (T.summary, T.live)
    assert by_key["asymmetry_contact"]["unit_of_measurement"] == "%"
    assert by_key["outbox_backlog"]["entity_category"] == "diagnostic"


def test_entity_ids_read_well_without_object_id_and_unique_ids_stay() -> None:
    p = build_discovery_payload(Topics("insoles"))
    assert p["dev"]["name"] == "footfall insoles" and p["dev"]["identifiers"] == ["footfall_insoles"]
    cmps = p["cmps"]
    assert cmps["footfall_insoles_cadence"]["unique_id"] == "footfall_insoles_cadence"  # HA's registry key
    assert cmps["footfall_insoles_cadence"]["default_entity_id"] == "sensor.footfall_insoles_cadence"
    assert cmps["footfall_insoles_valr_mean"]["default_entity_id"] == "sensor.footfall_insoles_loading_rate_valr_mean"
    assert sorted(cmps) == sorted(f"footfall_insoles_{s.key}" for s in SENSORS)  # unique ids = v1 ids
    for c in cmps.values():
        assert "object_id" not in c  # deprecated by HA 2025.10, ignored from 2026.4
        # the id HA would derive itself from device + entity name (has_entity_name), so all versions agree
        assert c["default_entity_id"] == f"sensor.{ha_slug(p['dev']['name'] + ' ' + c['name'])}"
        assert "insoles" not in c["name"].lower() and "footfall" not in c["name"].lower()
        assert "insoles_insoles" not in c["default_entity_id"]
    named = build_discovery_payload(Topics("Left-Pair_2"), device_name="Track shoes")["cmps"]
    assert named["footfall_Left-Pair_2_cadence"]["default_entity_id"] == "sensor.track_shoes_cadence"
    other = build_discovery_payload(Topics("Left-Pair_2"))
    assert other["dev"]["name"] == "footfall Left-Pair_2"
    run_state = other["cmps"]["footfall_Left-Pair_2_run_state"]
    assert run_state["default_entity_id"] == "sensor.footfall_left_pair_2_run_state"


def test_value_templates_render_real_messages() -> None:
    """Render every template with Jinja2 (HA's template engine) on real contract JSON."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    cmps = build_discovery_payload(T)["cmps"]
    window = sample_window()
    live = json.loads(
        LiveUpdate(
            device_id="dev1", device_time=1.7e9, activity="running", steps_in_run=412, outbox_backlog=3
        ).model_dump_json()
    )
    empty = json.loads(
        WindowSummary(
            msg_id="abcdefgh02",
            device_id="dev1",
            stream_id="abcd1234",
            seq=8,
            device_time=1.7e9,
            run_id="r1",
            window_index=0,
            t_start=0,
            t_end=10,
        ).model_dump_json()
    )
    out = {}
    for cid, c in cmps.items():
        tpl = env.from_string(c["value_template"])
        data = window if c["state_topic"] == T.summary else live
        out[cid.removeprefix("footfall_dev1_")] = tpl.render(value_json=data)
        if c["state_topic"] == T.summary:  # a window without steps → "None" (HA: unknown), never an error
            assert tpl.render(value_json=empty) == "None", cid
    assert out["cadence"] == "173"
    assert out["valr_mean"] == "60.1"  # step-weighted: (62·15 + 58·14) / 29
    assert out["valr_interval"] == "None"  # a schema-1 window has no estimate
    assert out["valr_p90"] == "79.3"  # pooled like the dashboard: (81.5·15 + 77·14) / 29
    # with the window's estimate (contract v2): the same pooled mean, the interval as attributes and as text
    corrected = {**window, "valr": {"mean": 60.1, "lo": 50.2, "hi": 69.7, "n": 29, "sample_rate_hz": 100.0}}
    valr = cmps["footfall_dev1_valr_mean"]
    assert valr["json_attributes_topic"] == T.summary
    assert env.from_string(valr["value_template"]).render(value_json=corrected) == "60.1"
    attrs = json.loads(env.from_string(valr["json_attributes_template"]).render(value_json=corrected))
    assert attrs == {"interval_low": 50.2, "interval_high": 69.7, "sample_rate_hz": 100.0, "steps": 29}
    assert json.loads(env.from_string(valr["json_attributes_template"]).render(value_json=window)) == {}
    text = env.from_string(cmps["footfall_dev1_valr_interval"]["value_template"]).render(value_json=corrected)
    assert text == "≈ 60 BW/s (50–70)"
    assert (out["strike_index_left"], out["strike_index_right"]) == ("0.21", "0.18")
    assert out["strike_zone"] == "rearfoot"  # 25 rearfoot vs 4 midfoot steps
    assert (out["contact_time_left"], out["contact_time_right"]) == ("252.0", "244.0")
    assert (out["asymmetry_contact"], out["asymmetry_valr"]) == ("-3.1", "-6.7")
    assert (out["steps"], out["run_state"], out["outbox_backlog"]) == ("412", "running", "3")


class Sniffer:
    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes, bool, int]] = []
        ready = threading.Event()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"ha-{time.monotonic_ns()}")

        def on_connect(c: paho.Client, *_: Any) -> None:
            c.subscribe(topic, 1)
            ready.set()

        self.c.on_connect = on_connect
        self.c.on_message = lambda _c, _u, m: self.messages.append(
            (m.topic, bytes(m.payload), bool(m.retain), int(m.qos))
        )
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert ready.wait(5)
        time.sleep(0.2)

    def on(self, topic: str) -> list[tuple[bytes, bool, int]]:
        return [(p, r, q) for t, p, r, q in self.messages if t == topic]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def seeded_stale(broker: Any) -> Any:
    """What an older footfall version left retained: a per-entity config and a device config with a
    component that no longer exists."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="old-version")
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    legacy = "homeassistant/sensor/dev1/cadence/config"
    old_entity = json.dumps({"name": "old cadence", "state_topic": T.summary, "unique_id": "footfall_dev1_cadence"})
    c.publish(legacy, old_entity, qos=1, retain=True).wait_for_publish(5)
    foreign = json.dumps({"name": "thermometer", "state_topic": "x/y", "unique_id": "acme_dev1_temp"})
    c.publish(FOREIGN, foreign, qos=1, retain=True).wait_for_publish(5)  # same node id, not ours
    old = build_discovery_payload(T)
    old["cmps"]["footfall_dev1_old_metric"] = {
        "p": "sensor",
        "unique_id": "footfall_dev1_old_metric",
        "state_topic": T.summary,
        "value_template": "{{ 1 }}",
    }
    c.publish(CONFIG, json.dumps(old), qos=1, retain=True).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()
    return legacy


async def test_announce_retained_reannounce_on_ha_birth_and_clear_stale(broker: Any, seeded_stale: str) -> None:
    settings = BrokerSettings(url=broker.url, client_id="dev1-agent", backoff_min_s=0.05, backoff_max_s=0.3)
    async with MqttConnection(settings, will=(T.status, b"offline", True)) as conn:
        ha = HaDiscovery(conn, T, model="moticon-opengo-16", readback_s=0.3)
        ha.start()
        assert await conn.wait_connected(5)
        assert await until(lambda: ha.announcements == 1)
        assert ha.cleared_legacy == [seeded_stale]
        fresh = Sniffer(broker.port, "homeassistant/#")  # like HA starting now: sees retained state
        cfg = fresh.on(CONFIG)
        assert len(cfg) == 1 and cfg[0][1] is True  # retained
        payload = json.loads(cfg[0][0])
        jsonschema.validate(payload, HA_DEVICE_DISCOVERY_SCHEMA)
        assert payload["cmps"]["footfall_dev1_old_metric"] == {"p": "sensor"}  # HA deletes that entity
        assert fresh.on(seeded_stale) == []  # legacy per-entity config cleared (empty retained)
        assert len(fresh.on(FOREIGN)) == 1  # another integration's entity with the same node id stays
        # HA restarts: its birth message makes us announce again; "offline" does not
        fresh.c.publish("homeassistant/status", b"offline", qos=1)
        await asyncio.sleep(0.5)
        assert ha.announcements == 1
        fresh.c.publish("homeassistant/status", b"online", qos=1)
        assert await until(lambda: ha.announcements == 2 and len(fresh.on(CONFIG)) == 2)
        again = fresh.on(CONFIG)[1]
        assert again[2] == 1 and json.loads(again[0])["cmps"] == payload["cmps"]  # QoS 1, same document
        fresh.close()
        # a broker restart (no persistence: retained config gone) → announced again on reconnect
        await asyncio.to_thread(broker.kill)
        await asyncio.to_thread(broker.start)
        assert await until(lambda: ha.announcements == 3, 10)
        ha.stop()
    after = Sniffer(broker.port, "homeassistant/#")
    assert len(after.on(CONFIG)) == 1
    after.close()
