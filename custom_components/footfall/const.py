"""Constants of the footfall integration."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

DOMAIN: Final = "footfall"
LOGGER = logging.getLogger(__package__)

CONF_URL: Final = "url"
CONF_TOKEN: Final = "token"

#: The dashboard announces itself as this DNS-SD service (plugin/mdns.py); manifest.json lists it.
ZEROCONF_TYPE: Final = "_footfall._tcp.local."

#: Polling is the safety net: the live stream (GET /api/live) pushes every change as it happens.
UPDATE_INTERVAL: Final = timedelta(minutes=5)
#: Coalesce a burst of pushed events into one refresh, at most every REFRESH_COOLDOWN_S.
REFRESH_COOLDOWN_S: Final = 0.5
#: Failed updates in a row before the "dashboard unreachable" repair issue is raised.
UNREACHABLE_AFTER_FAILURES: Final = 3

#: The dashboard's alert rules (edge_agent.contract.AlertKind): the event entity's event types.
ALERT_KINDS: Final = (
    "loading_spike",
    "valr_absolute",
    "strike_transition",
    "fatigue_drift",
    "asymmetry",
    "training_load",
    "shoe_change",
)
RISK_LEVELS: Final = ["low", "elevated", "high", "unknown"]

SERVICE_ACKNOWLEDGE_ALERT: Final = "acknowledge_alert"
ATTR_ALERT_ID: Final = "alert_id"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
#: Who acknowledged, as the dashboard records it.
ACK_BY: Final = "home-assistant"
