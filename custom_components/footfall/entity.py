"""Base entities and the three kinds of devices: the dashboard, each runner, each pair of insoles.

A config entry is one dashboard (device "footfall", the hub). Each runner it knows becomes a device
"<runner> (footfall)" and each insole device (agent ``device_id``) a device "<device_id> insoles", both
linked to the hub. Runners and devices that appear later get their entities as soon as the summary lists
them (:func:`async_add_new`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import FootfallCoordinator


def hub_device(coordinator: FootfallCoordinator) -> DeviceInfo:
    data = coordinator.data
    return DeviceInfo(
        identifiers={(DOMAIN, data.instance_id)}, name="footfall", manufacturer="footfall", model="Dashboard",
        sw_version=data.version, configuration_url=coordinator.client.url,
    )  # fmt: skip


class FootfallEntity(CoordinatorEntity[FootfallCoordinator]):
    """An entity of one dashboard; ``kind``/``key`` say which device it belongs to."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: FootfallCoordinator, description: EntityDescription, kind: str = "hub",
                 key: str = "") -> None:  # fmt: skip
        super().__init__(coordinator)
        self.entity_description = description
        self.kind, self.key = kind, key
        instance = coordinator.data.instance_id
        self._attr_unique_id = "_".join(p for p in (instance, kind if kind != "hub" else "", key, description.key) if p)
        if kind == "runner":
            self._attr_device_info = DeviceInfo(
                identifiers={(DOMAIN, f"{instance}_runner_{key}")}, name=f"{key} (footfall)", manufacturer="footfall",
                model="Runner", via_device=(DOMAIN, instance),
            )  # fmt: skip
        elif kind == "device":
            self._attr_device_info = DeviceInfo(
                identifiers={(DOMAIN, f"{instance}_device_{key}")}, name=f"{key} insoles", manufacturer="footfall",
                model="Insoles", serial_number=key, via_device=(DOMAIN, instance),
            )  # fmt: skip
        else:
            self._attr_device_info = hub_device(coordinator)

    @property
    def item(self) -> dict[str, Any] | None:
        """This entity's runner or device in the latest summary (None for the hub or when it is gone)."""
        data = self.coordinator.data
        if self.kind == "runner":
            return data.runners.get(self.key)
        if self.kind == "device":
            return data.devices.get(self.key)
        return None

    @property
    def available(self) -> bool:
        return super().available and (self.kind == "hub" or self.item is not None)


@callback
def async_add_new(
    coordinator: FootfallCoordinator,
    add_entities: AddEntitiesCallback,
    make: Callable[[str, str], Iterable[Entity]],
) -> Callable[[], None]:
    """Add ``make(kind, key)`` for every runner and device now, and for each new one after an update."""
    known: set[tuple[str, str]] = set()

    @callback
    def add() -> None:
        data = coordinator.data
        new = [("runner", k) for k in data.runners] + [("device", k) for k in data.devices]
        entities: list[Entity] = []
        for kind, key in new:
            if (kind, key) not in known:
                known.add((kind, key))
                entities.extend(make(kind, key))
        if entities:
            add_entities(entities)

    add()
    return coordinator.async_add_listener(add)
