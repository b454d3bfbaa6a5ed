"""The ``footfall.acknowledge_alert`` action reaches the real dashboard (POST /api/alerts/{id}/ack)."""

from __future__ import annotations

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError

from custom_components.footfall.const import DOMAIN
from tests.ha.common import Dashboard, setup_entry, wait_for


async def test_acknowledge_alert_reaches_the_dashboard(hass: HomeAssistant, dashboard: Dashboard) -> None:
    await setup_entry(hass, dashboard)
    open_alerts = dashboard.get("/api/alerts?include_acked=false")["alerts"]
    assert len(open_alerts) == 3
    target = open_alerts[0]["alert_id"]
    response = await hass.services.async_call(
        DOMAIN, "acknowledge_alert", {"alert_id": target}, blocking=True, return_response=True
    )
    assert response["alert_id"] == target and response["already_acked"] is False and response["by"] == "home-assistant"
    acked = {a["alert_id"]: a for a in dashboard.get("/api/alerts")["alerts"]}[target]
    assert acked["acked"] is True and acked["acked_by"] == "home-assistant"
    # The dashboard's open-alert count (and Home Assistant's sensor) follows.
    await wait_for(hass, lambda: hass.states.get("sensor.alex_footfall_open_alerts").state == "2", what="2 open")
    # Idempotent: a second acknowledgement keeps the first and says so.
    again = await hass.services.async_call(
        DOMAIN, "acknowledge_alert", {"alert_id": target}, blocking=True, return_response=True
    )
    assert again["already_acked"] is True


async def test_acknowledge_unknown_alert_or_without_a_dashboard(hass: HomeAssistant, dashboard: Dashboard) -> None:
    entry = await setup_entry(hass, dashboard)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "acknowledge_alert", {"alert_id": "no-such-alert-0000"}, blocking=True)
    assert err.value.translation_key == "alert_not_found"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "acknowledge_alert", {"alert_id": "x" * 10, "config_entry_id": "nope"}, blocking=True
        )
    assert err.value.translation_key == "entry_not_loaded"
    assert await hass.config_entries.async_unload(entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "acknowledge_alert", {"alert_id": "x" * 10}, blocking=True)
    assert err.value.translation_key == "no_dashboard"
    assert len(dashboard.get("/api/alerts?include_acked=false")["alerts"]) == 3  # nothing acknowledged


async def test_acknowledge_the_alert_an_event_carried(hass: HomeAssistant, dashboard: Dashboard) -> None:
    """The automation pattern of docs/home-assistant.md: the event's alert_id feeds the action."""
    import time

    entry = await setup_entry(hass, dashboard)
    await wait_for(hass, lambda: entry.runtime_data.coordinator.push_connected, what="live stream")
    await hass.async_add_executor_job(dashboard.publish_run, time.time() - 3600, 6, 21, True)
    await wait_for(hass, lambda: hass.states.get("event.alex_footfall_alert").state != "unknown", what="alert event")
    alert_id = hass.states.get("event.alex_footfall_alert").attributes["alert_id"]
    await hass.services.async_call(
        DOMAIN, "acknowledge_alert", {"alert_id": alert_id, "config_entry_id": entry.entry_id}, blocking=True
    )
    acked = {a["alert_id"]: a for a in dashboard.get("/api/alerts")["alerts"]}[alert_id]
    assert acked["acked"] and acked["acked_by"] == "home-assistant"
