"""Diagnostics carry what a bug report needs and never the token."""

from __future__ import annotations

import json

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from tests.ha.common import Dashboard, setup_entry


async def test_diagnostics_redact_the_token(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, dashboard: Dashboard
) -> None:
    entry = await setup_entry(hass, dashboard)
    diag = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = json.dumps(diag)
    assert dashboard.token not in text
    assert diag["entry"]["data"] == {"url": dashboard.url, "token": "**REDACTED**"}
    assert diag["connection"]["url"] == dashboard.url and diag["connection"]["last_update_success"] is True
    assert diag["summary"]["instance_id"] == dashboard.instance_id
    assert set(diag["summary"]["runners"]) == {"alex"} and "statistics" in diag
