"""One coordinator per dashboard: polls ``GET /api/summary`` and is pushed by the live stream.

Data flow: the dashboard's live stream (:mod:`.push`) calls :meth:`FootfallCoordinator.async_push` for every
event; a new alert is handed to the event entities at once, and any change schedules a refresh through a 0.5 s
debouncer that runs the first request immediately — so sensors follow the dashboard within a second. The
5-minute poll is the safety net while the stream is down.

Alerts fire exactly once: by id, whether they arrive pushed or are first seen in a refresh after a gap in the
stream; the alerts that exist when the integration starts are history and do not fire.

Errors: a refused token raises ``ConfigEntryAuthFailed`` (Home Assistant starts the reauth flow) and opens the
``invalid_token`` repair issue; ``UNREACHABLE_AFTER_FAILURES`` failed updates in a row open
``dashboard_unreachable``. Both issues close on the next successful update. Home Assistant's coordinator logs
an outage once and its end once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.debounce import Debouncer
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .api import FootfallAuthError, FootfallClient, FootfallConnectionError, LiveEvent
from .const import DOMAIN, LOGGER, REFRESH_COOLDOWN_S, UNREACHABLE_AFTER_FAILURES, UPDATE_INTERVAL

if TYPE_CHECKING:
    from . import FootfallConfigEntry

#: Live-stream events that change what the summary shows ("live" is the agent's 1 Hz in-run feed: not ours).
REFRESH_EVENTS = frozenset({"summary", "run", "alert", "alert_ack", "health"})

AlertListener = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class FootfallData:
    """``GET /api/summary``, indexed."""

    instance_id: str
    version: str
    generated_at: float
    runners: dict[str, dict[str, Any]]
    devices: dict[str, dict[str, Any]]
    open_alerts: int
    recent_alerts: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_summary(cls, doc: dict[str, Any]) -> FootfallData:
        return cls(
            instance_id=str(doc["instance"]["id"]),
            version=str(doc["instance"].get("version", "")),
            generated_at=float(doc.get("generated_at") or 0.0),
            runners={r["name"]: r for r in doc.get("runners", [])},
            devices={d["device_id"]: d for d in doc.get("devices", [])},
            open_alerts=int(doc.get("open_alerts") or 0),
            recent_alerts=list(doc.get("recent_alerts", [])),
        )


def issue_id(kind: str, entry_id: str) -> str:
    return f"{kind}_{entry_id}"


class FootfallCoordinator(DataUpdateCoordinator[FootfallData]):
    """Keeps the dashboard's summary; hands new alerts to listeners; raises and clears the repair issues."""

    config_entry: FootfallConfigEntry

    def __init__(self, hass: HomeAssistant, entry: FootfallConfigEntry, client: FootfallClient) -> None:
        super().__init__(
            hass, LOGGER, config_entry=entry, name=f"{DOMAIN} {client.url}", update_interval=UPDATE_INTERVAL,
            request_refresh_debouncer=Debouncer(hass, LOGGER, cooldown=REFRESH_COOLDOWN_S, immediate=True),
        )  # fmt: skip
        self.client = client
        self.failures = 0
        self.push_connected = False
        self.events_received = 0
        self._seen_alerts: set[str] | None = None  # None until the first update: existing alerts are history
        self._alert_listeners: list[AlertListener] = []

    async def _async_update_data(self) -> FootfallData:
        try:
            doc = await self.client.summary()
        except FootfallAuthError as err:
            self._raise_issue("invalid_token", ir.IssueSeverity.ERROR)
            raise ConfigEntryAuthFailed(translation_domain=DOMAIN, translation_key="invalid_token") from err
        except FootfallConnectionError as err:
            self.failures += 1
            if self.failures >= UNREACHABLE_AFTER_FAILURES:
                self._raise_issue("dashboard_unreachable", ir.IssueSeverity.WARNING)
            raise UpdateFailed(
                translation_domain=DOMAIN, translation_key="cannot_connect",
                translation_placeholders={"url": self.client.url, "error": str(err)},
            ) from err  # fmt: skip
        self.failures = 0
        for kind in ("invalid_token", "dashboard_unreachable"):
            ir.async_delete_issue(self.hass, DOMAIN, issue_id(kind, self.config_entry.entry_id))
        data = FootfallData.from_summary(doc)
        self._catch_up_alerts(data.recent_alerts)
        return data

    def _raise_issue(self, kind: str, severity: ir.IssueSeverity) -> None:
        ir.async_create_issue(
            self.hass, DOMAIN, issue_id(kind, self.config_entry.entry_id), is_fixable=False, severity=severity,
            translation_key=kind, translation_placeholders={"url": self.client.url, "title": self.config_entry.title},
        )  # fmt: skip

    # -- alerts ---------------------------------------------------------------------------------------------
    @callback
    def async_add_alert_listener(self, listener: AlertListener) -> CALLBACK_TYPE:
        self._alert_listeners.append(listener)
        return lambda: self._alert_listeners.remove(listener)

    def _catch_up_alerts(self, alerts: list[dict[str, Any]]) -> None:
        if self._seen_alerts is None:
            self._seen_alerts = {a["alert_id"] for a in alerts}
            return
        for alert in sorted(alerts, key=lambda a: a.get("created_at") or 0.0):
            self._new_alert(alert)

    @callback
    def _new_alert(self, alert: dict[str, Any]) -> None:
        alert_id = alert.get("alert_id")
        if not isinstance(alert_id, str) or self._seen_alerts is None or alert_id in self._seen_alerts:
            return
        self._seen_alerts.add(alert_id)
        for listener in list(self._alert_listeners):
            listener(alert)

    # -- push -----------------------------------------------------------------------------------------------
    @callback
    def async_push(self, event: LiveEvent) -> None:
        """One event from the live stream."""
        self.events_received += 1
        if event.type == "alert":
            self._new_alert(event.data)
        if event.type in REFRESH_EVENTS:
            self.hass.async_create_task(self.async_request_refresh(), eager_start=True)

    @callback
    def async_set_push_connected(self, connected: bool) -> None:
        """The stream (re)connected: fetch what happened while it was down; or it dropped."""
        self.push_connected = connected
        if connected:
            self.hass.async_create_task(self.async_request_refresh(), eager_start=True)
