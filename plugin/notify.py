"""Alert delivery: Apprise push (URLs the user chose), the MQTT alert topic, Home Assistant, the dashboard hub.

Why Apprise: one dependency covers ~100 services (ntfy, Telegram, Pushover, e-mail, Home Assistant …) through
URLs the runner already knows. Notification URLs embed tokens, so they are ``SecretStr`` in the config, masked
on the settings page and never logged (only the scheme is shown).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

import apprise
from pydantic import SecretStr

from edge_agent.contract import Alert, Topics
from plugin.config import mask_url
from plugin.events import EventHub

log = logging.getLogger(__name__)

_TYPES = {"info": apprise.NotifyType.INFO, "warning": apprise.NotifyType.WARNING,
          "critical": apprise.NotifyType.FAILURE}  # fmt: skip
_RANK = {"info": 0, "warning": 1, "critical": 2}
_URL_RE = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://\S+")


class _RedactUrls(logging.Filter):
    """Apprise logs whole URLs (e.g. "Unparseable URL tgram://TOKEN…"): keep only the scheme."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:
            return True
        record.msg = _URL_RE.sub(lambda m: f"{m.group(1)}://***", text)
        record.args = ()
        return True


logging.getLogger("apprise").addFilter(_RedactUrls())


def alert_body(alert: Alert | dict[str, Any]) -> str:
    a = alert.model_dump() if isinstance(alert, Alert) else alert
    who = f"Runner: {a['runner']}. " if a.get("runner") else ""
    return f"{a['message']}\n\n{who}Confidence: {round(100 * a['confidence'])} % · severity: {a['severity']}."


class Notifier:
    """Sends alerts to the user's Apprise URLs (from settings; changeable at run time)."""

    def __init__(self, urls: Iterable[str | SecretStr] = (), *, min_severity: str = "info") -> None:
        self.min_severity = min_severity
        self._urls: list[str] = []
        self.sent = 0
        self.failed = 0
        self.set_urls(urls)

    def set_urls(self, urls: Iterable[str | SecretStr]) -> list[str]:
        """Replace the URL list; returns the masked URLs Apprise could not parse (so the UI can say which)."""
        plain = [u.get_secret_value() if isinstance(u, SecretStr) else str(u) for u in urls]
        good, bad = [], []
        for u in plain:
            if apprise.Apprise.instantiate(u) is None:
                bad.append(mask_url(u))
            else:
                good.append(u)
        self._urls = good
        if bad:
            log.warning("ignoring %d notification URL(s) Apprise cannot use: %s", len(bad), ", ".join(bad))
        return bad

    @property
    def configured(self) -> bool:
        return bool(self._urls)

    @property
    def masked_urls(self) -> list[str]:
        return [mask_url(u) for u in self._urls]

    async def send(self, title: str, body: str, severity: str = "info") -> bool:
        if not self._urls:
            return False
        ap = apprise.Apprise()
        for u in self._urls:
            ap.add(u)
        ok = bool(await ap.async_notify(body=body, title=title, notify_type=_TYPES.get(severity, "info")))
        if ok:
            self.sent += 1
        else:
            self.failed += 1
            log.warning("a notification could not be delivered to every configured service (%s)",
                        ", ".join(self.masked_urls))  # fmt: skip
        return ok

    async def notify_alert(self, alert: Alert) -> bool:
        if _RANK.get(alert.severity, 0) < _RANK.get(self.min_severity, 0):
            return False
        return await self.send(alert.title, alert_body(alert), alert.severity)

    async def send_test(self) -> bool:
        return await self.send("footfall test notification", "Notifications from your footfall dashboard work.")


class AlertDispatcher:
    """Fans one alert out to MQTT (``<base>/<device>/alert``, QoS 1), Home Assistant, the hub and Apprise.

    Called from the ingest writer thread; the async parts are scheduled on the service's event loop.
    """

    def __init__(
        self,
        *,
        publish: Callable[[str, str, int, bool], None] | None,
        base_topic: str,
        hub: EventHub | None,
        notifier: Notifier | None,
        loop: asyncio.AbstractEventLoop | None,
        ha: Any = None,
    ) -> None:
        self.publish = publish
        self.base = base_topic.rstrip("/")
        self.hub = hub
        self.notifier = notifier
        self.loop = loop
        self.ha = ha
        self.pending: set[Any] = set()

    def alert_topic(self, alert: Alert) -> str:
        if alert.device_id:
            return Topics(alert.device_id, self.base).alert
        return f"{self.base}/_dashboard/alert"

    def dispatch(self, alert: Alert) -> None:
        payload = alert.model_dump_json()
        if self.publish:
            self.publish(self.alert_topic(alert), payload, 1, False)
        if self.ha is not None:
            self.ha.publish_alert(alert)
        if self.hub is not None and self.loop is not None:
            self.hub.publish_threadsafe("alert", alert.model_dump(mode="json"))
        if self.notifier is not None and self.notifier.configured and self.loop is not None:
            fut = asyncio.run_coroutine_threadsafe(self.notifier.notify_alert(alert), self.loop)
            self.pending.add(fut)
            fut.add_done_callback(self.pending.discard)
