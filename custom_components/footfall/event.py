"""Alert event entities: one per runner (and one per pair of insoles, for alerts of runs without a runner name).

Each new dashboard alert fires exactly once, on the entity of its runner — pushed over the live stream the
moment the risk engine raises it, or caught up after a gap in the stream. The event type is the rule
(``loading_spike``, ``valr_absolute``, ``strike_transition``, ``fatigue_drift``, ``asymmetry``,
``training_load``, ``shoe_change``); the attributes carry the alert's id (for the
``footfall.acknowledge_alert`` action), its severity, title, message and confidence, the runner, the device and the run.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from . import FootfallConfigEntry
from .const import ALERT_KINDS, LOGGER
from .entity import FootfallEntity, async_add_new

PARALLEL_UPDATES = 0

ALERT = EventEntityDescription(key="alert", translation_key="alert", event_types=list(ALERT_KINDS))
ATTRIBUTES = ("alert_id", "severity", "title", "message", "confidence", "runner", "device_id", "run_id", "created_at")


async def async_setup_entry(hass: HomeAssistant, entry: FootfallConfigEntry, add: AddEntitiesCallback) -> None:
    coordinator = entry.runtime_data.coordinator

    def make(kind: str, key: str) -> list[Entity]:
        return [FootfallAlertEvent(coordinator, ALERT, kind, key)]

    entry.async_on_unload(async_add_new(coordinator, add, make))


class FootfallAlertEvent(FootfallEntity, EventEntity):
    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self.async_on_remove(self.coordinator.async_add_alert_listener(self._on_alert))

    def _mine(self, alert: dict[str, Any]) -> bool:
        if self.kind == "runner":
            return alert.get("runner") == self.key
        return not alert.get("runner") and alert.get("device_id") == self.key

    @callback
    def _on_alert(self, alert: dict[str, Any]) -> None:
        if not self._mine(alert):
            return
        rule = alert.get("rule")
        if rule not in ALERT_KINDS:
            LOGGER.debug("Ignoring alert %s of a rule this integration does not know: %r", alert.get("alert_id"), rule)
            return
        self._trigger_event(str(rule), {k: alert.get(k) for k in ATTRIBUTES})
        self.async_write_ha_state()
