"""The footfall integration: a footfall dashboard's runners, insoles, alerts and form history in Home Assistant.

Setup per config entry (one dashboard): a client for its API, the coordinator (first refresh must succeed,
else Home Assistant retries the setup — or starts reauth for a refused token), the platforms, the live
stream as the entry's background task, and the statistics importer, run now and whenever a run appears or
completes. Unloading cancels the stream and the import and removes the entities; removing the entry also
deletes the importer's bookkeeping (the imported statistics stay in the recorder until deleted there).
"""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.storage import Store
from homeassistant.helpers.typing import ConfigType

from .api import FootfallClient, FootfallConnectionError, FootfallError
from .const import CONF_TOKEN, CONF_URL, DOMAIN, LOGGER
from .coordinator import FootfallCoordinator, FootfallData
from .entity import hub_device
from .push import run_live_stream
from .services import async_setup_services
from .statistics import STORAGE_VERSION, StatisticsImporter, storage_key

PLATFORMS = [Platform.BINARY_SENSOR, Platform.BUTTON, Platform.EVENT, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


@dataclass
class FootfallRuntime:
    client: FootfallClient
    coordinator: FootfallCoordinator
    statistics: StatisticsImporter


FootfallConfigEntry = ConfigEntry[FootfallRuntime]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: FootfallConfigEntry) -> bool:
    client = FootfallClient(async_get_clientsession(hass), entry.data[CONF_URL], entry.data.get(CONF_TOKEN) or None)
    coordinator = FootfallCoordinator(hass, entry, client)
    await coordinator.async_config_entry_first_refresh()
    statistics = StatisticsImporter(hass, entry.entry_id, client)
    await statistics.async_load()
    entry.runtime_data = FootfallRuntime(client, coordinator, statistics)
    # The hub first: runner and insole devices name it as their via_device.
    dr.async_get(hass).async_get_or_create(config_entry_id=entry.entry_id, **hub_device(coordinator))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_create_background_task(hass, run_live_stream(coordinator), f"{DOMAIN} live stream {client.url}")

    last_runs: list[tuple[object, ...] | None] = [None]

    @callback
    def import_when_runs_change() -> None:
        """A run appeared or completed (or this is the start): import its hours."""
        runs = _runs_signature(coordinator.data)
        if runs != last_runs[0]:
            last_runs[0] = runs
            entry.async_create_background_task(hass, _import(statistics), f"{DOMAIN} statistics {client.url}")

    import_when_runs_change()
    entry.async_on_unload(coordinator.async_add_listener(import_when_runs_change))
    entry.async_on_unload(statistics.release)
    return True


def _runs_signature(data: FootfallData) -> tuple[object, ...]:
    return tuple(
        (name, r.get("runs"), (r.get("last_run") or {}).get("run_id"), (r.get("last_run") or {}).get("complete"))
        for name, r in sorted(data.runners.items())
    )


async def _import(statistics: StatisticsImporter) -> None:
    try:
        await statistics.async_import()
    except FootfallConnectionError as err:  # the coordinator reports the outage; the next change retries
        LOGGER.debug("Statistics import postponed: %s", err)
    except FootfallError as err:
        LOGGER.warning("Statistics import from %s failed: %s", statistics.client.url, err)


async def async_unload_entry(hass: HomeAssistant, entry: FootfallConfigEntry) -> bool:
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: FootfallConfigEntry) -> None:
    await Store(hass, STORAGE_VERSION, storage_key(entry.entry_id)).async_remove()
