"""docs/home-assistant.md §5 names only entities, statistic ids and event attributes the integration produces."""

from __future__ import annotations

import re
import time

import yaml
from homeassistant.components.recorder import get_instance
from homeassistant.components.recorder.statistics import list_statistic_ids
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.components.recorder.common import async_wait_recording_done

from custom_components.footfall.event import ATTRIBUTES
from tests.ha.common import REPO, Dashboard, setup_entry, wait_for

DOC = REPO / "docs" / "home-assistant.md"


def section() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index("## 5. The footfall integration") : text.index("## Troubleshooting")]


async def test_documented_ids_exist(hass: HomeAssistant, dashboard: Dashboard) -> None:
    entry = await setup_entry(hass, dashboard)
    await entry.runtime_data.statistics.async_import()
    await async_wait_recording_done(hass)
    text = section()
    entity_ids = set(re.findall(r"\b(?:sensor|event|binary_sensor|button)\.(?:alex_footfall|sim_1_insoles|footfall)"
                                r"_[a-z0-9_]*[a-z0-9]", text))  # fmt: skip
    assert len(entity_ids) >= 12
    missing = entity_ids - set(hass.states.async_entity_ids())
    assert not missing, f"documented but not created: {sorted(missing)}"
    stat_ids = set(re.findall(r"\bfootfall:alex_[a-z0-9_]*[a-z0-9]", text))
    listed = await get_instance(hass).async_add_executor_job(list_statistic_ids, hass, None, "mean")
    assert stat_ids and stat_ids == {s["statistic_id"] for s in listed if s["source"] == "footfall"}


async def test_documented_automations_read_what_the_event_carries(hass: HomeAssistant, dashboard: Dashboard) -> None:
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", section(), re.S)]
    automations = [b for b in blocks if isinstance(b, dict) and "triggers" in b]
    assert len(automations) == 3
    read = set(re.findall(r"trigger\.to_state\.attributes\.(\w+)", str(automations)))
    assert read and read <= {*ATTRIBUTES, "event_type"}, read
    acks = [a for b in automations for a in b["actions"] if a.get("action") == "footfall.acknowledge_alert"]
    assert acks and set(acks[0]["data"]) == {"alert_id"}
    # And the event really carries them: a new alert, pushed.
    entry = await setup_entry(hass, dashboard)
    await wait_for(hass, lambda: entry.runtime_data.coordinator.push_connected, what="live stream")
    await hass.async_add_executor_job(dashboard.publish_run, time.time() - 9000, 6, 41, True)
    await wait_for(hass, lambda: hass.states.get("event.alex_footfall_alert").state != "unknown", what="event")
    attributes = hass.states.get("event.alex_footfall_alert").attributes
    assert read <= set(attributes) and attributes["severity"] in ("info", "warning", "critical")
    cards = [b for b in blocks if isinstance(b, dict) and b.get("type") in ("statistics-graph", "statistic")]
    assert len(cards) >= 3
