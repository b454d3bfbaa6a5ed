"""Home Assistant MQTT discovery for the insoles (DESIGN.md §3).

Device-based discovery (HA ≥ 2024.11): ONE retained QoS 1 message on
``<prefix>/device/<device_id>/config`` carrying ``dev`` (device), ``o`` (origin, required by HA's
``DEVICE_DISCOVERY_SCHEMA``) and ``cmps`` (components, each with platform ``p`` and a
``unique_id``). Availability is shared at the top level: the agent's retained ``status`` topic
(``online`` / last will ``offline``). Schema source: HA's MQTT integration docs, "Device discovery
payload", and ``homeassistant/components/mqtt/schemas.py`` (``DEVICE_DISCOVERY_SCHEMA``: required
``device``, ``components``, ``origin``; shared options availability/state_topic/qos/encoding).

Naming: the device is "footfall <device_id>" and component names never repeat it, so HA's entity ids read
``sensor.footfall_insoles_cadence`` (with ``device_id: insoles``). Each component also carries
``default_entity_id`` (``<platform>.<slug>``), which replaced ``object_id`` in HA 2025.10 (HA's repair notice:
"uses the deprecated option object_id … Replace … with default_entity_id … This will stop working in Home
Assistant Core 2026.4", quoted in SAIC-iSmart-API/saic-python-mqtt-gateway#376). Its value is exactly the id HA
derives from device + entity name, so HA versions that ignore the option (2024.11–2025.9 drop unknown keys)
create the same ids. HA keeps an existing entity's id in its registry (keyed by the unchanged ``unique_id``), so
upgrading footfall renames nothing that users already have in automations.

Entities are data (:data:`SENSORS`, like HA's ``EntityDescription``): each reads the contract's
JSON (``WindowSummary`` on ``summary``, ``LiveUpdate`` on ``live``) through a Jinja
``value_template``. Templates render ``None`` when a value is missing, which HA's MQTT sensor turns
into "unknown" instead of a parse error.

Lifecycle (zigbee2mqtt-style): announce after every connect and whenever HA's birth message
(``<prefix>/status`` = ``online``) arrives; before announcing, read back what is retained for this
device and (a) keep removed components in ``cmps`` with only ``p`` — HA's documented way to delete
one component of a device — and (b) clear legacy per-entity topics
(``<prefix>/<platform>/<device_id>/<key>/config``) that footfall wrote (recognised by unique_id or
device identifier, never another integration's) with an empty retained payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

from edge_agent import __version__
from edge_agent.contract import Topics
from edge_agent.runtime.mqtt import Message, MqttConnection

log = logging.getLogger(__name__)

ORIGIN_URL = "https://github.com/footfall/footfall"
ZONES = ("rearfoot", "midfoot", "forefoot")
ACTIVITIES = ("running", "walking", "standing", "idle", "unknown")


@dataclass(frozen=True, slots=True)
class SensorDescription:
    """One HA sensor read from a footfall topic (HA ``EntityDescription`` style)."""

    key: str
    name: str
    source: Literal["summary", "live"]
    template: str
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = "measurement"
    options: tuple[str, ...] | None = None
    icon: str | None = None
    entity_category: str | None = None
    precision: int | None = None


def _stat(side: str, measure: str, field: str = "mean", digits: int = 1) -> str:
    return (
        f"{{% set v = value_json.{side}.{measure}.{field} %}}{{{{ v | round({digits}) if v is not none else none }}}}"
    )


def _both_feet_mean(measure: str, digits: int = 1) -> str:
    """Step-weighted mean over both feet (each foot's ``Stat`` carries its own n)."""
    return (
        f"{{% set l = value_json.left.{measure} %}}{{% set r = value_json.right.{measure} %}}"
        "{% set ln = l.n if l.mean is not none else 0 %}{% set rn = r.n if r.mean is not none else 0 %}"
        "{% if ln + rn > 0 %}"
        f"{{{{ (((l.mean or 0) * ln + (r.mean or 0) * rn) / (ln + rn)) | round({digits}) }}}}"
        "{% else %}{{ none }}{% endif %}"
    )


def _worse_foot(measure: str, field: str, digits: int = 1) -> str:
    """The larger of the two feet (p90 loading rate: the foot that is loaded harder counts)."""
    return (
        f"{{% set vals = [value_json.left.{measure}.{field}, value_json.right.{measure}.{field}]"
        " | reject('none') | list %}"
        f"{{{{ (vals | max) | round({digits}) if vals else none }}}}"
    )


_ZONE_TEMPLATE = (
    "{% set z = namespace(best=none, n=0) %}"
    "{% for k in ['rearfoot', 'midfoot', 'forefoot'] %}"
    "{% set c = value_json.left.zones[k] + value_json.right.zones[k] %}"
    "{% if c > z.n %}{% set z.best = k %}{% set z.n = c %}{% endif %}"
    "{% endfor %}{{ z.best }}"
)

#: The insole device's sensors. Units: custom ``spm``, ``BW/s``; ms with device_class duration.
SENSORS: tuple[SensorDescription, ...] = (
    SensorDescription(
        "cadence",
        "Cadence",
        "summary",
        "{{ value_json.cadence_spm | round | int if value_json.cadence_spm is not none else none }}",
        unit="spm",
        icon="mdi:run-fast",
        precision=0,
    ),
    SensorDescription(
        "valr_mean",
        "Loading rate (VALR) mean",
        "summary",
        _both_feet_mean("valr_bw_s"),
        unit="BW/s",
        icon="mdi:chart-bell-curve",
        precision=1,
    ),
    SensorDescription(
        "valr_p90",
        "Loading rate (VALR) p90",
        "summary",
        _worse_foot("valr_bw_s", "p90"),
        unit="BW/s",
        icon="mdi:chart-bell-curve",
        precision=1,
    ),
    SensorDescription(
        "strike_index_left",
        "Strike index left",
        "summary",
        _stat("left", "strike_index", digits=2),
        icon="mdi:shoe-print",
        precision=2,
    ),
    SensorDescription(
        "strike_index_right",
        "Strike index right",
        "summary",
        _stat("right", "strike_index", digits=2),
        icon="mdi:shoe-print",
        precision=2,
    ),
    SensorDescription(
        "strike_zone",
        "Strike zone",
        "summary",
        _ZONE_TEMPLATE,
        device_class="enum",
        state_class=None,
        options=ZONES,
        icon="mdi:foot-print",
    ),
    SensorDescription(
        "contact_time_left",
        "Contact time left",
        "summary",
        _stat("left", "contact_ms", digits=0),
        unit="ms",
        device_class="duration",
        precision=0,
    ),
    SensorDescription(
        "contact_time_right",
        "Contact time right",
        "summary",
        _stat("right", "contact_ms", digits=0),
        unit="ms",
        device_class="duration",
        precision=0,
    ),
    SensorDescription(
        "asymmetry_contact",
        "Contact time asymmetry",
        "summary",
        "{% set v = value_json.asymmetry.contact_ms_pct %}{{ v | round(1) if v is not none else none }}",
        unit="%",
        icon="mdi:scale-unbalanced",
        precision=1,
    ),
    SensorDescription(
        "asymmetry_valr",
        "Loading rate asymmetry",
        "summary",
        "{% set v = value_json.asymmetry.valr_pct %}{{ v | round(1) if v is not none else none }}",
        unit="%",
        icon="mdi:scale-unbalanced",
        precision=1,
    ),
    SensorDescription(
        "steps",
        "Steps this run",
        "live",
        "{{ value_json.steps_in_run }}",
        unit="steps",
        state_class="total_increasing",
        icon="mdi:shoe-sneaker",
    ),
    SensorDescription(
        "run_state",
        "Run state",
        "live",
        "{{ value_json.activity }}",
        device_class="enum",
        state_class=None,
        options=ACTIVITIES,
        icon="mdi:run",
    ),
    SensorDescription(
        "outbox_backlog",
        "Outbox backlog",
        "live",
        "{{ value_json.outbox_backlog }}",
        unit="messages",
        entity_category="diagnostic",
        icon="mdi:tray-full",
    ),
)


def discovery_topic(device_id: str, prefix: str = "homeassistant") -> str:
    return f"{prefix.rstrip('/')}/device/{device_id}/config"


def unique_id(device_id: str, key: str) -> str:
    """Stable across versions: HA's entity registry keys on it (never change it)."""
    return f"footfall_{device_id}_{key}"


def ha_slug(text: str) -> str:
    """HA's ``slugify`` (python-slugify, separator ``_``) for the ASCII names used here: lowercase, every run of
    other characters → one ``_``, trimmed."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "unknown"


def default_device_name(device_id: str) -> str:
    """ "footfall insoles" for ``device_id: insoles`` — the device id names the pair, no extra word."""
    return f"footfall {device_id}"


def default_entity_id(platform: str, device_name: str, entity_name: str) -> str:
    """``<platform>.<slug of "device name entity name">``: what HA derives itself (``has_entity_name``), sent
    explicitly as ``default_entity_id`` (HA ≥ 2025.10)."""
    return f"{platform}.{ha_slug(device_name + ' ' + entity_name)}"


def build_discovery_payload(
    topics: Topics,
    *,
    device_name: str | None = None,
    model: str | None = None,
    sw_version: str = __version__,
    sensors: tuple[SensorDescription, ...] = SENSORS,
    removed: tuple[str, ...] = (),
    platform_of_removed: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The device-discovery document. ``removed`` component ids are kept with only ``p`` so HA
    deletes those entities (HA docs: "remove a component by sending only its platform")."""
    dev_id = topics.device_id
    dev_name = device_name or default_device_name(dev_id)
    cmps: dict[str, dict[str, Any]] = {}
    for s in sensors:
        c: dict[str, Any] = {
            "p": "sensor",
            "unique_id": unique_id(dev_id, s.key),
            "name": s.name,
            "default_entity_id": default_entity_id("sensor", dev_name, s.name),
            "state_topic": topics.summary if s.source == "summary" else topics.live,
            "value_template": s.template,
        }
        for k, v in (
            ("unit_of_measurement", s.unit),
            ("device_class", s.device_class),
            ("state_class", s.state_class),
            ("icon", s.icon),
            ("entity_category", s.entity_category),
            ("suggested_display_precision", s.precision),
        ):
            if v is not None:
                c[k] = v
        if s.options is not None:
            c["options"] = list(s.options)
        cmps[unique_id(dev_id, s.key)] = c
    for cid in removed:
        if cid not in cmps:
            cmps[cid] = {"p": (platform_of_removed or {}).get(cid, "sensor")}
    return {
        "dev": {
            "identifiers": [f"footfall_{dev_id}"],
            "name": dev_name,
            "manufacturer": "footfall",
            "model": model or "insoles",
            "sw_version": sw_version,
        },
        "o": {"name": "footfall", "sw": sw_version, "url": ORIGIN_URL},
        "cmps": cmps,
        "availability_topic": topics.status,
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
    }


class HaDiscovery:
    """Publishes and maintains the device discovery over an :class:`MqttConnection`.

    ``start()`` registers the listeners: announce on every connect and on HA's birth message.
    """

    def __init__(
        self,
        conn: MqttConnection,
        topics: Topics,
        *,
        prefix: str = "homeassistant",
        device_name: str | None = None,
        model: str | None = None,
        sensors: tuple[SensorDescription, ...] = SENSORS,
        readback_s: float = 0.5,
    ) -> None:
        self.conn = conn
        self.topics = topics
        self.prefix = prefix.rstrip("/")
        self.device_name = device_name
        self.model = model
        self.sensors = sensors
        self.readback_s = readback_s
        self.topic = discovery_topic(topics.device_id, self.prefix)
        self.announcements = 0
        self.cleared_legacy: list[str] = []
        self._lock = asyncio.Lock()
        self._unsubs: list[Any] = []

    def start(self) -> None:
        self._unsubs.append(self.conn.subscribe(f"{self.prefix}/status", self._on_ha_status, qos=1))
        self.conn.add_connect_listener(self.announce)

    def stop(self) -> None:
        for u in self._unsubs:
            u()
        self._unsubs.clear()

    async def _on_ha_status(self, msg: Message) -> None:
        if msg.payload.strip().lower() == b"online":
            log.info("Home Assistant came online: re-announcing %s", self.topic)
            await self.announce()

    async def _retained(self) -> dict[str, bytes]:
        """What the broker retains for this device: our device config and legacy entity configs."""
        found: dict[str, bytes] = {}
        dev = self.topics.device_id

        def collect(msg: Message) -> None:
            if msg.retain and msg.payload:
                found[msg.topic] = msg.payload

        unsubs = [
            self.conn.subscribe(self.topic, collect, qos=1),
            self.conn.subscribe(f"{self.prefix}/+/{dev}/+/config", collect, qos=1),
        ]
        try:
            await asyncio.sleep(self.readback_s)
        finally:
            for u in unsubs:
                u()
        return found

    async def announce(self) -> None:
        """Publish the discovery document (retained, QoS 1) after clearing stale entries."""
        if not self.conn.connected.is_set():
            return
        async with self._lock:
            try:
                retained = await self._retained()
                removed, platforms = self._stale_components(retained.get(self.topic))
                for topic, body in retained.items():
                    if topic != self.topic and self._ours(body):
                        await self.conn.publish(topic, b"", qos=1, retain=True)
                        self.cleared_legacy.append(topic)
                        log.info("cleared legacy discovery topic %s", topic)
                payload = build_discovery_payload(
                    self.topics,
                    device_name=self.device_name,
                    model=self.model,
                    sensors=self.sensors,
                    removed=removed,
                    platform_of_removed=platforms,
                )
                await self.conn.publish(self.topic, json.dumps(payload, separators=(",", ":")), qos=1, retain=True)
                self.announcements += 1
            except Exception as err:  # not connected any more: the next connect announces again
                log.warning("HA discovery announce failed (%s); will retry on reconnect", err)

    def _ours(self, body: bytes) -> bool:
        """Only clear per-entity configs that footfall wrote (another integration may use the
        same node id): recognised by our unique_id prefix or our device identifier."""
        try:
            cfg = json.loads(body)
        except ValueError:
            return False
        if not isinstance(cfg, dict):
            return False
        uid = str(cfg.get("unique_id") or cfg.get("uniq_id") or "")
        dev = cfg.get("device") or cfg.get("dev")
        ids = (dev.get("identifiers") or dev.get("ids") or []) if isinstance(dev, dict) else []
        ids = [ids] if isinstance(ids, str) else ids
        mine = f"footfall_{self.topics.device_id}"
        return uid.startswith(mine + "_") or mine in ids

    def _stale_components(self, old: bytes | None) -> tuple[tuple[str, ...], dict[str, str]]:
        if not old:
            return (), {}
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            cmps = json.loads(old).get("cmps") or json.loads(old).get("components") or {}
            current = {unique_id(self.topics.device_id, s.key) for s in self.sensors}
            stale = {
                cid: str(c.get("p") or c.get("platform") or "sensor") for cid, c in cmps.items() if cid not in current
            }
            return tuple(sorted(stale)), stale
        log.warning("retained discovery on %s is not valid JSON; replacing it", self.topic)
        return (), {}

    async def remove(self) -> None:
        """Delete the device from HA (empty retained config)."""
        await self.conn.publish(self.topic, b"", qos=1, retain=True)
