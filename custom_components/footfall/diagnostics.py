"""Diagnostics of a config entry: the entry (token redacted), the connection, the latest summary, the import."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from . import FootfallConfigEntry
from .const import CONF_TOKEN

TO_REDACT = {CONF_TOKEN, "Authorization"}


async def async_get_config_entry_diagnostics(hass: HomeAssistant, entry: FootfallConfigEntry) -> dict[str, Any]:
    runtime = entry.runtime_data
    coordinator = runtime.coordinator
    return async_redact_data(
        {
            "entry": entry.as_dict(),
            "connection": {
                "url": runtime.client.url, "last_update_success": coordinator.last_update_success,
                "failures_in_a_row": coordinator.failures, "live_stream_connected": coordinator.push_connected,
                "live_events_received": coordinator.events_received,
            },
            "summary": asdict(coordinator.data) if coordinator.data else None,
            "statistics": {
                "runs_imported": len(runtime.statistics.imported), "last_import": runtime.statistics.last_result,
            },
        },
        TO_REDACT,
    )  # fmt: skip
