"""The ``footfall.acknowledge_alert`` action: acknowledges an alert on the dashboard that raised it.

``alert_id`` comes from the alert event's attributes. With several dashboards, ``config_entry_id`` picks
one; without it every loaded dashboard is asked until one knows the id (alert ids are random UUIDs).
Acknowledging is idempotent: the dashboard keeps the first acknowledgement and says so (``already_acked``).
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv

from .api import FootfallError, FootfallNotFoundError
from .const import ATTR_ALERT_ID, ATTR_CONFIG_ENTRY_ID, DOMAIN, SERVICE_ACKNOWLEDGE_ALERT

ACK_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_ALERT_ID): vol.All(cv.string, vol.Match(r"^[A-Za-z0-9:_-]{1,64}$")),
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
    }
)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    async def acknowledge(call: ServiceCall) -> ServiceResponse:
        alert_id: str = call.data[ATTR_ALERT_ID]
        entries = hass.config_entries.async_loaded_entries(DOMAIN)
        if ATTR_CONFIG_ENTRY_ID in call.data:
            entry = hass.config_entries.async_get_entry(call.data[ATTR_CONFIG_ENTRY_ID])
            if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
                raise ServiceValidationError(
                    translation_domain=DOMAIN, translation_key="entry_not_loaded",
                    translation_placeholders={"entry_id": call.data[ATTR_CONFIG_ENTRY_ID]},
                )  # fmt: skip
            entries = [entry]
        if not entries:
            raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_dashboard")
        for entry in entries:
            runtime = entry.runtime_data
            try:
                result: dict[str, Any] = await runtime.client.acknowledge_alert(alert_id)
            except FootfallNotFoundError:
                continue
            except FootfallError as err:
                raise HomeAssistantError(
                    translation_domain=DOMAIN, translation_key="ack_failed",
                    translation_placeholders={"alert_id": alert_id, "error": str(err)},
                ) from err  # fmt: skip
            await runtime.coordinator.async_request_refresh()
            return {
                "alert_id": alert_id, "already_acked": bool(result.get("already_acked")), "by": result.get("by"),
                "config_entry_id": entry.entry_id,
            }  # fmt: skip
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="alert_not_found",
            translation_placeholders={"alert_id": alert_id},
        )

    hass.services.async_register(
        DOMAIN, SERVICE_ACKNOWLEDGE_ALERT, acknowledge, schema=ACK_SCHEMA, supports_response=SupportsResponse.OPTIONAL
    )
