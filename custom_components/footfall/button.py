"""Re-sync: refresh every entity now and re-import the long-term statistics of every run."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from . import FootfallConfigEntry
from .api import FootfallError
from .const import DOMAIN
from .entity import FootfallEntity
from .statistics import StatisticsImporter

PARALLEL_UPDATES = 1

RESYNC = ButtonEntityDescription(key="resync", translation_key="resync", entity_category=EntityCategory.CONFIG)


async def async_setup_entry(hass: HomeAssistant, entry: FootfallConfigEntry, add: AddEntitiesCallback) -> None:
    runtime = entry.runtime_data
    add([FootfallResyncButton(runtime.coordinator, RESYNC, statistics=runtime.statistics)])


class FootfallResyncButton(FootfallEntity, ButtonEntity):
    def __init__(self, *args: object, statistics: StatisticsImporter) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.statistics = statistics

    async def async_press(self) -> None:
        await self.coordinator.async_refresh()
        try:
            await self.statistics.async_import(full=True)
        except FootfallError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="resync_failed", translation_placeholders={"error": str(err)}
            ) from err
