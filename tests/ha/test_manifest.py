"""What HACS and Home Assistant read from the repository: hacs.json, manifest.json, translations, services."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_custom_components

from custom_components.footfall import binary_sensor, button, event, sensor
from tests.ha.common import REPO

COMPONENT = REPO / "custom_components" / "footfall"


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_hacs_and_manifest_say_what_hacs_and_home_assistant_need() -> None:
    hacs = load(REPO / "hacs.json")
    manifest = load(COMPONENT / "manifest.json")
    assert hacs["name"] == "footfall"
    # The supported range starts at the Home Assistant these tests run on (or older).
    assert AwesomeVersion(hacs["homeassistant"]) <= AwesomeVersion(HA_VERSION)
    assert manifest["domain"] == "footfall" and manifest["config_flow"] is True
    assert manifest["iot_class"] == "local_push" and manifest["zeroconf"] == ["_footfall._tcp.local."]
    assert AwesomeVersion(manifest["version"]).valid and manifest["dependencies"] == ["recorder"]
    assert manifest["requirements"] == []  # nothing for Home Assistant to install
    assert {"documentation", "issue_tracker", "codeowners"} <= set(manifest)
    # hassfest's order: domain, name, then alphabetical.
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"] and keys[2:] == sorted(keys[2:])


def test_translations_cover_every_entity_and_match_strings_json() -> None:
    strings = load(COMPONENT / "strings.json")
    assert load(COMPONENT / "translations" / "en.json") == strings
    descriptions = {
        "sensor": [*sensor.RUNNER_SENSORS, *sensor.DEVICE_SENSORS],
        "binary_sensor": [binary_sensor.CONNECTED],
        "button": [button.RESYNC],
        "event": [event.ALERT],
    }
    icons = load(COMPONENT / "icons.json")["entity"]
    for platform, descs in descriptions.items():
        for d in descs:
            assert d.translation_key in strings["entity"][platform], (platform, d.translation_key)
            assert d.translation_key in icons[platform] or d.device_class is not None, (platform, d.translation_key)
    assert set(strings["entity"]["event"]["alert"]["state_attributes"]["event_type"]["state"]) == set(
        event.ALERT.event_types
    )
    risk = next(d for d in sensor.RUNNER_SENSORS if d.key == "risk_level")
    assert set(strings["entity"]["sensor"]["risk_level"]["state"]) == set(risk.options)
    services = yaml.safe_load((COMPONENT / "services.yaml").read_text())
    assert set(services) == set(strings["services"]) == {"acknowledge_alert"}
    assert set(services["acknowledge_alert"]["fields"]) == set(strings["services"]["acknowledge_alert"]["fields"])


async def test_home_assistant_loads_it_as_a_custom_integration(hass: HomeAssistant) -> None:
    integration = (await async_get_custom_components(hass))["footfall"]
    assert integration.config_flow and integration.version == AwesomeVersion(
        load(COMPONENT / "manifest.json")["version"]
    )
    assert Path(integration.file_path) == COMPONENT
