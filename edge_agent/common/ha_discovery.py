"""Home Assistant MQTT device discovery documents, for the insoles (agent) and the dashboard (plugin) alike.

Device-based discovery (HA ≥ 2024.11): ONE retained QoS 1 message on ``<prefix>/device/<node>/config``
carrying ``dev`` (device), ``o`` (origin, required by HA's ``DEVICE_DISCOVERY_SCHEMA``) and ``cmps``
(components, each with platform ``p`` and a ``unique_id``). Availability is shared at the top level: the
publisher's retained ``status`` topic (``online`` / last will ``offline``). Schema source: HA's MQTT
integration docs, "Device discovery payload", and ``homeassistant/components/mqtt/schemas.py``.

Entities are data (:class:`EntityDescription`, like HA's own ``EntityDescription``): each reads a JSON state
topic through a Jinja ``value_template`` that renders ``None`` when a value is missing, which HA's MQTT
sensor turns into "unknown" instead of a parse error.

Naming: component names never repeat the device name, so HA's entity ids read
``sensor.footfall_insoles_cadence``. Each component also carries ``default_entity_id``
(``<platform>.<slug>``), which replaced ``object_id`` in HA 2025.10. Its value is exactly the id HA derives
from device + entity name, so HA versions that ignore the option create the same ids, and HA keeps an existing
entity's id in its registry (keyed by the unchanged ``unique_id``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ORIGIN_URL = "https://github.com/footfall/footfall"


@dataclass(frozen=True, slots=True)
class EntityDescription:
    """One discovered component, as data. ``state`` names the state topic (the publisher maps it)."""

    key: str
    name: str
    state: str
    template: str | None = None  # default: ``{{ value_json.<key> }}``
    platform: str = "sensor"
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = "measurement"
    options: tuple[str, ...] | None = None
    icon: str | None = None
    entity_category: str | None = None
    precision: int | None = None
    attributes: str | None = None  # a Jinja template rendering a JSON object: extra state attributes
    extra: tuple[tuple[str, Any], ...] = ()


def discovery_topic(node_id: str, prefix: str = "homeassistant") -> str:
    return f"{prefix.rstrip('/')}/device/{node_id}/config"


def device_identifier(node_id: str) -> str:
    """``footfall_<node>``: the device's identifier and the prefix of its components' unique ids."""
    return f"footfall_{node_id}"


def unique_id(node_id: str, key: str) -> str:
    """Stable across versions: HA's entity registry keys on it (never change it)."""
    return f"{device_identifier(node_id)}_{key}"


def ha_slug(text: str) -> str:
    """HA's ``slugify`` (python-slugify, separator ``_``) for the ASCII names used here: lowercase, every run of
    other characters → one ``_``, trimmed."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "unknown"


def default_entity_id(platform: str, device_name: str, entity_name: str) -> str:
    """``<platform>.<slug of "device name entity name">``: what HA derives itself (``has_entity_name``), sent
    explicitly as ``default_entity_id`` (HA ≥ 2025.10)."""
    return f"{platform}.{ha_slug(device_name + ' ' + entity_name)}"


def component(desc: EntityDescription, *, node_id: str, device_name: str, state_topic: str) -> dict[str, Any]:
    """The ``cmps`` entry of one entity."""
    c: dict[str, Any] = {
        "p": desc.platform,
        "unique_id": unique_id(node_id, desc.key),
        "name": desc.name,
        "default_entity_id": default_entity_id(desc.platform, device_name, desc.name),
        "state_topic": state_topic,
    }
    if desc.platform != "event":
        c["value_template"] = desc.template or f"{{{{ value_json.{desc.key} }}}}"
    for k, v in (
        ("unit_of_measurement", desc.unit),
        ("device_class", desc.device_class),
        ("state_class", desc.state_class),
        ("icon", desc.icon),
        ("entity_category", desc.entity_category),
        ("suggested_display_precision", desc.precision),
    ):
        if v is not None:
            c[k] = v
    if desc.options is not None:
        c["options"] = list(desc.options)
    if desc.attributes is not None:
        c["json_attributes_topic"] = state_topic
        c["json_attributes_template"] = desc.attributes
    c.update(dict(desc.extra))
    return c


def device_document(
    *,
    node_id: str,
    device_name: str,
    model: str,
    sw_version: str,
    entities: tuple[EntityDescription, ...],
    state_topics: Mapping[str, str],
    availability_topic: str,
    component_key: str = "unique_id",
    removed: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The device-discovery document.

    ``component_key`` says how ``cmps`` is keyed (``unique_id`` or the entity ``key``; HA keys its discovery
    entries on it, so a publisher must never change its choice). ``removed`` maps component ids that were
    announced before and are gone now to their platform: they are kept with only ``p``, HA's documented way to
    delete one component of a device.
    """
    cmps: dict[str, dict[str, Any]] = {}
    for d in entities:
        key = unique_id(node_id, d.key) if component_key == "unique_id" else d.key
        cmps[key] = component(d, node_id=node_id, device_name=device_name, state_topic=state_topics[d.state])
    for cid, platform in (removed or {}).items():
        if cid not in cmps:
            cmps[cid] = {"p": platform}
    return {
        "dev": {
            "identifiers": [device_identifier(node_id)],
            "name": device_name,
            "manufacturer": "footfall",
            "model": model,
            "sw_version": sw_version,
        },
        "o": {"name": "footfall", "sw": sw_version, "url": ORIGIN_URL},
        "cmps": cmps,
        "availability_topic": availability_topic,
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
    }
