"""Home Assistant MQTT discovery for the insoles: the agent's sensors (as data) and the publisher that keeps
the device document current (docs/design.md §3; the document itself is built by
:mod:`edge_agent.common.ha_discovery`, which the dashboard uses too).

Sensors read the contract's JSON (``WindowSummary`` on ``summary``, ``LiveUpdate`` on ``live``) through Jinja
``value_template``s. The device is "footfall <device_id>", so HA's entity ids read
``sensor.footfall_insoles_cadence`` (with ``device_id: insoles``).

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
from typing import Any

from edge_agent import __version__
from edge_agent.common.ha_discovery import (
    EntityDescription,
    device_document,
    device_identifier,
    discovery_topic,
    unique_id,
)
from edge_agent.common.mqtt import MqttConnection, MqttMessage
from edge_agent.contract import Topics

log = logging.getLogger(__name__)

ZONES = ("rearfoot", "midfoot", "forefoot")
ACTIVITIES = ("running", "walking", "standing", "idle", "unknown")


def _stat(side: str, measure: str, field: str = "mean", digits: int = 1) -> str:
    return (
        f"{{% set v = value_json.{side}.{measure}.{field} %}}{{{{ v | round({digits}) if v is not none else none }}}}"
    )


def _both_feet(measure: str, field: str = "mean", digits: int = 1) -> str:
    """Both feet pooled as :func:`edge_agent.common.measures.pool_stats` pools them: the ``field`` (mean or p90) of
    each foot weighted by its step count ``n`` (feet without a value weigh nothing) — the number the dashboard
    stores for the same summary."""
    known = "mean is not none" + ("" if field == "mean" else f" and {{0}}.{field} is not none")
    return (
        f"{{% set l = value_json.left.{measure} %}}{{% set r = value_json.right.{measure} %}}"
        f"{{% set ln = l.n if l.{known.format('l')} else 0 %}}"
        f"{{% set rn = r.n if r.{known.format('r')} else 0 %}}"
        "{% if ln + rn > 0 %}"
        f"{{{{ (((l.{field} or 0) * ln + (r.{field} or 0) * rn) / (ln + rn)) | round({digits}) }}}}"
        "{% else %}{{ none }}{% endif %}"
    )


#: The window's loading-rate interval (contract v2 ``valr``: the bias-aware mean's 90 % interval) as the VALR
#: sensor's attributes and as text; the sensor's state is the both-feet mean the dashboard stores.
_VALR_ATTRIBUTES = (
    "{% set e = value_json.valr if value_json.valr is defined else none %}"
    "{{ {'interval_low': e.lo | round(1), 'interval_high': e.hi | round(1), 'sample_rate_hz': e.sample_rate_hz,"
    " 'steps': e.n} | tojson if e else {} | tojson }}"
)
_VALR_INTERVAL = (
    "{% set e = value_json.valr if value_json.valr is defined else none %}"
    "{{ '≈ %d BW/s (%d–%d)' | format(e.mean | round, e.lo | round, e.hi | round) if e else none }}"
)

_ZONE_TEMPLATE = (
    "{% set z = namespace(best=none, n=0) %}"
    "{% for k in ['rearfoot', 'midfoot', 'forefoot'] %}"
    "{% set c = value_json.left.zones[k] + value_json.right.zones[k] %}"
    "{% if c > z.n %}{% set z.best = k %}{% set z.n = c %}{% endif %}"
    "{% endfor %}{{ z.best }}"
)

#: The insole device's sensors. Units: custom ``spm``, ``BW/s``; ms with device_class duration.
SENSORS: tuple[EntityDescription, ...] = (
    EntityDescription(
        "cadence",
        "Cadence",
        "summary",
        "{{ value_json.cadence_spm | round | int if value_json.cadence_spm is not none else none }}",
        unit="spm",
        icon="mdi:run-fast",
        precision=0,
    ),
    EntityDescription(
        "valr_mean",
        "Loading rate (VALR) mean",
        "summary",
        _both_feet("valr_bw_s"),
        unit="BW/s",
        icon="mdi:chart-bell-curve",
        precision=1,
        attributes=_VALR_ATTRIBUTES,
    ),
    EntityDescription(
        "valr_interval",
        "Loading rate with interval",
        "summary",
        _VALR_INTERVAL,
        state_class=None,
        icon="mdi:chart-bell-curve",
    ),
    EntityDescription(
        "valr_p90",
        "Loading rate (VALR) p90",
        "summary",
        _both_feet("valr_bw_s", "p90"),
        unit="BW/s",
        icon="mdi:chart-bell-curve",
        precision=1,
    ),
    EntityDescription(
        "strike_index_left",
        "Strike index left",
        "summary",
        _stat("left", "strike_index", digits=2),
        icon="mdi:shoe-print",
        precision=2,
    ),
    EntityDescription(
        "strike_index_right",
        "Strike index right",
        "summary",
        _stat("right", "strike_index", digits=2),
        icon="mdi:shoe-print",
        precision=2,
    ),
    EntityDescription(
        "strike_zone",
        "Strike zone",
        "summary",
        _ZONE_TEMPLATE,
        device_class="enum",
        state_class=None,
        options=ZONES,
        icon="mdi:foot-print",
    ),
    EntityDescription(
        "contact_time_left",
        "Contact time left",
        "summary",
        _stat("left", "contact_ms", digits=0),
        unit="ms",
        device_class="duration",
        precision=0,
    ),
    EntityDescription(
        "contact_time_right",
        "Contact time right",
        "summary",
        _stat("right", "contact_ms", digits=0),
        unit="ms",
        device_class="duration",
        precision=0,
    ),
    EntityDescription(
        "asymmetry_contact",
        "Contact time asymmetry",
        "summary",
        "{% set v = value_json.asymmetry.contact_ms_pct %}{{ v | round(1) if v is not none else none }}",
        unit="%",
        icon="mdi:scale-unbalanced",
        precision=1,
    ),
    EntityDescription(
        "asymmetry_valr",
        "Loading rate asymmetry",
        "summary",
        "{% set v = value_json.asymmetry.valr_pct %}{{ v | round(1) if v is not none else none }}",
        unit="%",
        icon="mdi:scale-unbalanced",
        precision=1,
    ),
    EntityDescription(
        "steps",
        "Steps this run",
        "live",
        "{{ value_json.steps_in_run }}",
        unit="steps",
        state_class="total_increasing",
        icon="mdi:shoe-sneaker",
    ),
    EntityDescription(
        "run_state",
        "Run state",
        "live",
        "{{ value_json.activity }}",
        device_class="enum",
        state_class=None,
        options=ACTIVITIES,
        icon="mdi:run",
    ),
    EntityDescription(
        "outbox_backlog",
        "Outbox backlog",
        "live",
        "{{ value_json.outbox_backlog }}",
        unit="messages",
        entity_category="diagnostic",
        icon="mdi:tray-full",
    ),
)


def default_device_name(device_id: str) -> str:
    """ "footfall insoles" for ``device_id: insoles`` — the device id names the pair, no extra word."""
    return f"footfall {device_id}"


def build_discovery_payload(
    topics: Topics,
    *,
    device_name: str | None = None,
    model: str | None = None,
    sw_version: str = __version__,
    sensors: tuple[EntityDescription, ...] = SENSORS,
    removed: tuple[str, ...] = (),
    platform_of_removed: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The insoles' device-discovery document; ``removed`` component ids are deleted in HA."""
    return device_document(
        node_id=topics.device_id,
        device_name=device_name or default_device_name(topics.device_id),
        model=model or "insoles",
        sw_version=sw_version,
        entities=sensors,
        state_topics={"summary": topics.summary, "live": topics.live},
        availability_topic=topics.status,
        removed={cid: (platform_of_removed or {}).get(cid, "sensor") for cid in removed},
    )


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
        sensors: tuple[EntityDescription, ...] = SENSORS,
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

    async def _on_ha_status(self, msg: MqttMessage) -> None:
        if msg.payload.strip().lower() == b"online":
            log.info("Home Assistant came online: re-announcing %s", self.topic)
            await self.announce()

    async def _retained(self) -> dict[str, bytes]:
        """What the broker retains for this device: our device config and legacy entity configs."""
        found: dict[str, bytes] = {}
        dev = self.topics.device_id

        def collect(msg: MqttMessage) -> None:
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
        mine = device_identifier(self.topics.device_id)
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
