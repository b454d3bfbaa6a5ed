"""Entities, devices, coordinator updates, the live-stream push, alert events, repair issues and unload —
against a real dashboard process that a driver feeds through a real broker, like an agent would."""

from __future__ import annotations

import time

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir

from custom_components.footfall.const import DOMAIN, UNREACHABLE_AFTER_FAILURES
from tests.ha.common import Dashboard, setup_entry, wait_for

RUNNER_ENTITIES = {
    "sensor.alex_footfall_loading_rate_7_days": ("last_7_days", "valr_mean"),
    "sensor.alex_footfall_loading_rate_28_days": ("last_28_days", "valr_mean"),
    "sensor.alex_footfall_cadence_7_days": ("last_7_days", "cadence_spm"),
    "sensor.alex_footfall_contact_time_7_days": ("last_7_days", "contact_ms"),
    "sensor.alex_footfall_contact_time_asymmetry_7_days": ("last_7_days", "asymmetry_contact_pct"),
    "sensor.alex_footfall_runs_7_days": ("last_7_days", "runs"),
    "sensor.alex_footfall_training_load_acute": ("training_load", "acute"),
    "sensor.alex_footfall_acute_chronic_load_ratio": ("training_load", "acwr"),
}


def state(hass: HomeAssistant, entity_id: str) -> str:
    s = hass.states.get(entity_id)
    assert s is not None, f"{entity_id} missing; footfall entities: {sorted(hass.states.async_entity_ids())}"
    return s.state


async def test_entities_mirror_the_dashboards_figures(hass: HomeAssistant, dashboard: Dashboard) -> None:
    entry = await setup_entry(hass, dashboard)
    assert entry.state is ConfigEntryState.LOADED
    summary = dashboard.get("/api/summary")
    [alex] = summary["runners"]
    for entity_id, (part, key) in RUNNER_ENTITIES.items():
        assert float(state(hass, entity_id)) == pytest.approx(alex[part][key], rel=1e-6), entity_id
    zones = alex["last_7_days"]["zone_share_pct"]
    for zone in ("rearfoot", "midfoot", "forefoot"):
        assert float(state(hass, f"sensor.alex_footfall_{zone}_strikes_7_days")) == pytest.approx(zones[zone])
    risk = hass.states.get("sensor.alex_footfall_injury_risk_level")
    assert risk is not None and risk.state == "high" == alex["risk"]["level"]
    assert risk.attributes["options"] == ["low", "elevated", "high", "unknown"]
    assert risk.attributes["reasons"] == alex["risk"]["reasons"] and len(risk.attributes["reasons"]) == 3
    assert state(hass, "sensor.alex_footfall_open_alerts") == "3"
    last_run = hass.states.get("sensor.alex_footfall_last_run")
    assert last_run is not None and last_run.attributes["run_id"] == alex["last_run"]["run_id"]
    assert last_run.attributes["device_class"] == "timestamp"
    assert hass.states.get("sensor.alex_footfall_contact_time_7_days").attributes["unit_of_measurement"] == "ms"
    assert hass.states.get("sensor.alex_footfall_loading_rate_7_days").attributes["unit_of_measurement"] == "BW/s"
    # The insoles: runs, last seen, connection unknown until the agent's status is seen.
    assert state(hass, "sensor.sim_1_insoles_runs") == str(alex["runs"])
    assert state(hass, "binary_sensor.sim_1_insoles_connected") == STATE_UNKNOWN
    assert state(hass, "event.alex_footfall_alert") == STATE_UNKNOWN  # existing alerts are history, not events
    assert state(hass, "button.footfall_re_sync") == STATE_UNKNOWN


async def test_devices_and_unique_ids(hass: HomeAssistant, dashboard: Dashboard) -> None:
    entry = await setup_entry(hass, dashboard)
    devices = {d.name: d for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)}
    assert set(devices) == {"footfall", "alex (footfall)", "sim-1 insoles"}
    hub = devices["footfall"]
    assert hub.identifiers == {(DOMAIN, dashboard.instance_id)} and hub.configuration_url == dashboard.url
    assert devices["alex (footfall)"].via_device_id == hub.id == devices["sim-1 insoles"].via_device_id
    entities = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    assert len({e.unique_id for e in entities}) == len(entities) > 25
    assert all(e.unique_id.startswith(dashboard.instance_id) for e in entities)
    assert all(e.has_entity_name for e in entities)


async def test_push_new_run_and_alert_reach_home_assistant_without_polling(
    hass: HomeAssistant, dashboard: Dashboard
) -> None:
    entry = await setup_entry(hass, dashboard)
    coordinator = entry.runtime_data.coordinator
    await wait_for(hass, lambda: coordinator.push_connected, what="the live stream")
    runs_before = int(state(hass, "sensor.alex_footfall_runs_7_days"))
    fired: list[dict] = []
    hass.bus.async_listen("state_changed", lambda ev: fired.append(ev.data) if ev.data["entity_id"] ==
                          "event.alex_footfall_alert" else None)  # fmt: skip
    polls_before = coordinator.events_received
    # The agent (the driver) runs 6 minutes with a loading spike in windows 2-3, half an hour ago.
    run = await hass.async_add_executor_job(dashboard.publish_run, time.time() - 1800, 6, 11, True)
    # Nothing calls refresh here and the poll interval is 5 minutes: only the push can bring these in.
    await wait_for(hass, lambda: int(state(hass, "sensor.alex_footfall_runs_7_days")) == runs_before + 1,
                   what="the new run in runs_7d")  # fmt: skip
    await wait_for(hass, lambda: bool(fired), what="the alert event")
    await wait_for(hass, lambda: hass.states.get("sensor.alex_footfall_last_run").attributes["run_id"] ==
                   run["run_id"], what="last run")  # fmt: skip
    assert coordinator.events_received > polls_before
    event = hass.states.get("event.alex_footfall_alert")
    [newest] = dashboard.get("/api/alerts?limit=1")["alerts"]
    assert newest["run_id"] == run["run_id"] and newest["rule"] == "loading_spike"
    assert event.attributes["event_type"] == "loading_spike"
    assert event.attributes["alert_id"] == newest["alert_id"]
    assert event.attributes["severity"] == newest["severity"] and event.attributes["message"] == newest["message"]
    assert event.attributes["title"] == newest["title"] and event.attributes["runner"] == "alex"
    await wait_for(hass, lambda: state(hass, "sensor.alex_footfall_open_alerts") == "4", what="open alerts 4")
    # Exactly one event for one alert, though refreshes keep listing it.
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert len([f for f in fired if f["new_state"].attributes.get("alert_id") == newest["alert_id"]]) == 1


async def test_alert_raised_while_the_stream_was_down_fires_on_the_next_update(
    hass: HomeAssistant, dashboard: Dashboard
) -> None:
    entry = await setup_entry(hass, dashboard)
    coordinator = entry.runtime_data.coordinator
    # Stop the entry's live stream: what happens next reaches Home Assistant only through a poll.
    for task in list(entry._background_tasks):
        task.cancel()
    await hass.async_block_till_done()
    await hass.async_add_executor_job(dashboard.publish_run, time.time() - 7200, 6, 12, True)
    assert state(hass, "event.alex_footfall_alert") == STATE_UNKNOWN
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    event = hass.states.get("event.alex_footfall_alert")
    assert event.state != STATE_UNKNOWN and event.attributes["event_type"] == "loading_spike"


async def test_unreachable_dashboard_makes_entities_unavailable_and_raises_a_repair_issue(
    hass: HomeAssistant, dashboard: Dashboard
) -> None:
    entry = await setup_entry(hass, dashboard)
    coordinator = entry.runtime_data.coordinator
    issues = ir.async_get(hass)
    issue = (DOMAIN, f"dashboard_unreachable_{entry.entry_id}")
    dashboard.stop()
    for _ in range(UNREACHABLE_AFTER_FAILURES):
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        # Raised at the third failed update in a row (a refresh pushed by the stream may add one of its own).
        assert (issues.async_get_issue(*issue) is not None) == (coordinator.failures >= UNREACHABLE_AFTER_FAILURES)
    assert state(hass, "sensor.alex_footfall_loading_rate_7_days") == STATE_UNAVAILABLE
    raised = issues.async_get_issue(*issue)
    assert raised is not None and raised.translation_key == "dashboard_unreachable"
    assert raised.translation_placeholders["url"] == dashboard.url
    dashboard.start()  # back on the same address
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert state(hass, "sensor.alex_footfall_loading_rate_7_days") not in (STATE_UNAVAILABLE, STATE_UNKNOWN)
    assert issues.async_get_issue(*issue) is None


async def test_refused_token_raises_the_invalid_token_issue(hass: HomeAssistant, dashboard: Dashboard) -> None:
    entry = await setup_entry(hass, dashboard)
    dashboard.stop()
    dashboard.start(token="rotated-token-rotated-token")
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    raised = ir.async_get(hass).async_get_issue(DOMAIN, f"invalid_token_{entry.entry_id}")
    assert raised is not None and raised.severity is ir.IssueSeverity.ERROR
    assert "rotated-token" not in str(raised.translation_placeholders)


async def test_unload_cancels_the_stream_and_removes_the_entities(hass: HomeAssistant, dashboard: Dashboard) -> None:
    entry = await setup_entry(hass, dashboard)
    coordinator = entry.runtime_data.coordinator
    await wait_for(hass, lambda: coordinator.push_connected, what="the live stream")
    tasks = list(entry._background_tasks)
    assert tasks and hass.states.get("sensor.alex_footfall_loading_rate_7_days") is not None
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert all(t.done() for t in tasks)
    assert state(hass, "sensor.alex_footfall_loading_rate_7_days") == STATE_UNAVAILABLE
    assert hass.services.has_service(DOMAIN, "acknowledge_alert")  # registered once, in async_setup
    # The dashboard no longer counts Home Assistant among its live clients.
    await wait_for(hass, lambda: dashboard.get("/api/health")["web"]["live_clients"] == 0, what="stream closed")
