"""Whether each pair of insoles is connected (its agent's retained MQTT status, as the dashboard saw it)."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from . import FootfallConfigEntry
from .entity import FootfallEntity, async_add_new

PARALLEL_UPDATES = 0

CONNECTED = BinarySensorEntityDescription(
    key="connected", translation_key="connected", device_class=BinarySensorDeviceClass.CONNECTIVITY
)


async def async_setup_entry(hass: HomeAssistant, entry: FootfallConfigEntry, add: AddEntitiesCallback) -> None:
    coordinator = entry.runtime_data.coordinator

    def make(kind: str, key: str) -> list[Entity]:
        return [FootfallConnected(coordinator, CONNECTED, kind, key)] if kind == "device" else []

    entry.async_on_unload(async_add_new(coordinator, add, make))


class FootfallConnected(FootfallEntity, BinarySensorEntity):
    @property
    def is_on(self) -> bool | None:
        status = (self.item or {}).get("status")
        return None if status is None else status == "online"  # no status seen yet: unknown
