"""Composition root of the dashboard plugin: MQTT ingest → store → risk engine → notifications + hub → web app.

Threads: paho's network thread and the ingest writer thread (store, risk engine, alert fan-out) run beside the
asyncio loop that serves the web app and delivers Apprise notifications. Threads reach the loop only through
``EventHub.publish_threadsafe`` and ``run_coroutine_threadsafe``.

Settings the user changes on the dashboard (stored in the ``settings`` table by the web app) override the
config file: notification URLs and the risk thresholds are re-read every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from typing import Any

from aiohttp import web

from edge_agent.contract import LiveUpdate, RunSummary, WindowSummary
from plugin import __version__
from plugin.config import ConfigError, DashboardConfig, RiskConfig
from plugin.events import EventHub
from plugin.ha import HaPublisher
from plugin.ingest import Ingest
from plugin.mdns import MdnsAnnouncer, should_announce
from plugin.notify import AlertDispatcher, Notifier
from plugin.program import ProgramService
from plugin.risk import RiskEngine, risk_summary
from plugin.store import Store, window_measures
from plugin.summary import instance_id

log = logging.getLogger(__name__)

#: Web settings keys (plugin/web/context.py DEFAULT_SETTINGS_SCHEMA) → RiskConfig fields.
SETTING_TO_RISK = {
    "valr_threshold_bw_s": "valr_absolute_bw_s",
    "loading_spike_pct": "spike_pct",
    "forefoot_shift_pct_per_week": "transition_pp_per_week",
    "acwr_threshold": "acwr_threshold",
}
RETENTION_EVERY_S = 6 * 3600.0
#: PostgreSQL NOTIFY channel of the hub events every worker forwards to its browsers.
EVENTS_CHANNEL = "footfall_events"
MAX_NOTIFY_BYTES = 7900


class ListenError(RuntimeError):
    """The web dashboard cannot bind its address (in use, not an address of this machine, no permission)."""


class DashboardService:
    """Owns every long-lived part; ``await start()`` … ``await stop()``, or ``await run()`` until cancelled."""

    def __init__(self, config: DashboardConfig, *, serve_web: bool = True) -> None:
        self.config = config
        self.serve_web = serve_web
        self.store: Store | None = None
        self.hub = EventHub()
        self.engine: RiskEngine | None = None
        self.ingest: Ingest | None = None
        self.notifier = Notifier(config.notify_urls)
        self.ha: HaPublisher | None = None
        self.dispatcher: AlertDispatcher | None = None
        self.program: ProgramService | None = None
        self.runner: web.AppRunner | None = None
        self.mdns: MdnsAnnouncer | None = None
        self.url: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._settings_seen: dict[str, Any] = {}
        self._listen_stop = threading.Event()
        self._listener: threading.Thread | None = None
        self.alerts_raised = 0

    # -- lifecycle --------------------------------------------------------------------------------------------
    async def start(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.hub.bind(loop)
        self.store = store = await asyncio.to_thread(Store, cfg.store_target, shard=cfg.mqtt.client_id)
        if store.backend == "postgresql":  # browsers on every worker see what any worker stored
            self.hub.set_broadcast(self._broadcast)
            self._listener = threading.Thread(
                target=store.db.listen, args=(EVENTS_CHANNEL, self._on_broadcast, self._listen_stop),  # type: ignore[attr-defined]
                name="footfall-listen", daemon=True,
            )  # fmt: skip
            self._listener.start()
        self.engine = RiskEngine(store, cfg.risk)
        self.ingest = Ingest(
            store, cfg.mqtt, on_stored=self._on_stored, on_live=self._on_live, on_status=self._on_status,
            on_connect=self._on_connect, on_ha_online=self._on_ha_online,
        )  # fmt: skip
        if cfg.mqtt.ha_discovery:
            self.ha = HaPublisher(
                self.ingest.publish, store=store, prefix=cfg.mqtt.ha_prefix, base_topic=cfg.mqtt.base_topic,
                risk_config=cfg.risk,
            )  # fmt: skip
        self.dispatcher = AlertDispatcher(
            publish=self.ingest.publish, base_topic=cfg.mqtt.base_topic, hub=self.hub, notifier=self.notifier,
            loop=loop, ha=self.ha,
        )  # fmt: skip
        self.program = ProgramService(
            store, publish=self.ingest.publish, base_topic=cfg.mqtt.base_topic, push=self._push_threadsafe
        )
        self._apply_settings()
        if self.serve_web:  # before MQTT: a port in use fails the start before anything is received
            await self._start_web()
        await asyncio.to_thread(self.ingest.start, 0)
        try:
            published = await asyncio.to_thread(self.program.publish_all)
            if published:
                log.info("published the targets of %d program(s)", published)
        except Exception:
            log.exception("could not publish the program targets (they go out with the next runs)")
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="footfall-housekeeping"))
        log.info("footfall dashboard %s: database %s, broker %s%s", __version__, store.where, cfg.mqtt.redacted_url,
                 f", web {self.url}" if self.url else "")  # fmt: skip

    async def _start_web(self) -> None:
        from plugin.web.app import create_app
        from plugin.web.context import DashboardContext

        assert self.store is not None
        ctx = DashboardContext(
            store=self.store, hub=self.hub, health=self.health,
            token=self.config.token.get_secret_value() if self.config.token else None,
            listen_host=self.config.listen_host, notify_test=self.notify_test,
            trusted_proxies=tuple(self.config.trusted_proxies),
            risk=lambda: risk_summary(self.store, config=self.engine.config if self.engine else None),  # type: ignore[arg-type]
            risk_config=lambda: self.engine.config if self.engine else self.config.risk,
            program=self.program,
        )  # fmt: skip
        app = create_app(ctx)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.config.listen_host, self.config.listen_port)
        try:
            await site.start()
        except OSError as err:
            raise ListenError(f"cannot listen on {self.config.listen}: {err.strerror or err}") from None
        host = self.config.listen_host
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.config.listen_port}/"
        if should_announce(self.config.mdns, host):
            await self._start_mdns()

    async def _start_mdns(self) -> None:
        """Announce the dashboard over mDNS; a network that refuses multicast costs discovery, not the dashboard."""
        assert self.store is not None
        announcer = MdnsAnnouncer(
            listen_host=self.config.listen_host, port=self.config.listen_port,
            instance_id=await asyncio.to_thread(instance_id, self.store), token_required=self.config.token is not None,
        )  # fmt: skip
        try:
            await announcer.start()
        except (OSError, ConfigError) as err:
            log.error("mDNS announcement failed, Home Assistant will not discover this dashboard: %s", err)
            await announcer.stop()
            return
        self.mdns = announcer

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self.mdns is not None:
            await self.mdns.stop()
            self.mdns = None
        if self.runner is not None:
            await self.runner.cleanup()
        if self.ingest is not None:
            await asyncio.to_thread(self.ingest.stop)
        if self.dispatcher is not None and self.dispatcher.pending:
            await asyncio.sleep(0)  # let finished notification futures settle
        self._listen_stop.set()
        if self._listener is not None:
            await asyncio.to_thread(self._listener.join, 5)
        if self.store is not None:
            self.store.close()

    async def run(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    # -- callbacks (ingest writer / paho threads) -------------------------------------------------------------
    def _on_stored(self, msgs: list[WindowSummary | RunSummary]) -> None:
        assert self.engine is not None and self.dispatcher is not None
        for msg in msgs:
            alerts = self.engine.on_summary(msg) if isinstance(msg, WindowSummary) else self.engine.on_run(msg)
            if isinstance(msg, RunSummary) and self.program is not None:
                try:
                    outcome = self.program.on_run(msg)
                except Exception:  # the program must not stop ingest or the risk rules
                    log.exception("program update failed on run %s", msg.run_id)
                else:
                    alerts = [*alerts, *outcome.alerts]
                    if outcome.completed or outcome.published:
                        self.hub.publish_threadsafe("program", {"runner": msg.runner, "completed": outcome.completed})
            for alert in alerts:
                self.alerts_raised += 1
                self.dispatcher.dispatch(alert)
        # Live view: a compact event per message for small batches; the newest per run for a backlog drain.
        shown = msgs if len(msgs) <= 50 else list({m.run_id: m for m in msgs}.values())
        for msg in shown:
            self.hub.publish_threadsafe(msg.kind, _compact(msg))
        if self.ha is not None and any(isinstance(m, RunSummary) for m in msgs):
            self.ha.publish_state()

    def _broadcast(self, type_: str, data: dict[str, Any]) -> None:
        """Send a hub event to every worker of the database (``pg_notify``; 8,000 bytes at most)."""
        payload = json.dumps({"t": type_, "d": data}, default=str, allow_nan=False)
        if len(payload.encode()) > MAX_NOTIFY_BYTES:  # an alert with long evidence: the page reloads the rest
            slim = {k: v for k, v in data.items() if k not in ("evidence", "message")}
            payload = json.dumps({"t": type_, "d": {**slim, "truncated": True}}, default=str, allow_nan=False)
        try:
            assert self.store is not None
            self.store.db.notify(EVENTS_CHANNEL, payload)  # type: ignore[attr-defined]
        except Exception as err:  # the database is away: this worker's own browsers still get it
            log.warning("could not broadcast a %s event (%s); delivering it here only", type_, type(err).__name__)
            self.hub.deliver_threadsafe(type_, data)

    def _on_broadcast(self, payload: str) -> None:
        try:
            event = json.loads(payload)
            self.hub.deliver_threadsafe(str(event["t"]), dict(event["d"]))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed event broadcast")

    def _on_live(self, live: LiveUpdate) -> None:
        self.hub.publish_threadsafe("live", live.model_dump(mode="json"))

    def _on_status(self, device_id: str, status: str) -> None:
        self.hub.publish_threadsafe("health", {"device_id": device_id, "status": status})

    def _on_connect(self) -> None:
        if self.ha is not None:
            self.ha.announce()

    def _on_ha_online(self) -> None:
        if self.ha is not None:
            log.info("Home Assistant came online: re-announcing discovery")
            self.ha.announce()

    # -- settings, housekeeping -------------------------------------------------------------------------------
    def _apply_settings(self) -> None:
        """Dashboard settings override the config file (thresholds, notification URLs)."""
        assert self.store is not None and self.engine is not None
        values = {k: self.store.get_setting(k) for k in ("notify_urls", *SETTING_TO_RISK)}
        if values == self._settings_seen:
            return
        self._settings_seen = values
        risk = self.config.risk.model_dump()
        for key, field_name in SETTING_TO_RISK.items():
            if values.get(key) is not None:
                risk[field_name] = values[key]
        try:
            self.engine.config = RiskConfig(**risk)
        except ValueError as err:
            log.error("ignoring invalid risk settings from the dashboard: %s", err)
        if values.get("notify_urls") is not None:
            self.notifier.set_urls(values["notify_urls"])
        else:
            self.notifier.set_urls(self.config.notify_urls)

    async def _housekeeping(self) -> None:
        last_retention = 0.0
        while True:
            try:
                await asyncio.to_thread(self._apply_settings)
                if time.monotonic() - last_retention > RETENTION_EVERY_S or last_retention == 0.0:
                    last_retention = time.monotonic()
                    assert self.store is not None
                    n = await asyncio.to_thread(self.store.apply_retention, self.config.retention.window_days)
                    if n:
                        log.info("retention: deleted %d summary windows older than %s days", n,
                                 self.config.retention.window_days)  # fmt: skip
            except Exception:
                log.exception("housekeeping failed (will retry)")
            await asyncio.sleep(5.0)

    def _push_threadsafe(self, title: str, body: str) -> None:
        """A push (a completed program stage) through the Apprise URLs, from the ingest writer thread."""
        loop = self._loop
        if loop is not None and self.notifier.configured:
            asyncio.run_coroutine_threadsafe(self.notifier.send(title, body, "info"), loop)

    async def notify_test(self) -> bool:
        await asyncio.to_thread(self._apply_settings)
        return await self.notifier.send_test()

    def health(self) -> dict[str, Any]:
        ing = self.ingest.health() if self.ingest else {"ingest": {}, "broker": {"connected": False, "url": None}}
        return {
            **ing,
            "store": self.store.health() if self.store else {"ok": False, "summaries": None},
            "devices": len(self.store.devices()) if self.store else 0,
            "version": __version__,
            "alerts_raised": self.alerts_raised,
            "notify": {"configured": self.notifier.configured, "services": self.notifier.masked_urls,
                       "sent": self.notifier.sent, "failed": self.notifier.failed},
            "risk_engine": dict(self.engine.last_status) if self.engine else {},
        }  # fmt: skip


def _compact(msg: WindowSummary | RunSummary) -> dict[str, Any]:
    m = window_measures(msg)
    d: dict[str, Any] = {
        "device_id": msg.device_id, "runner": msg.runner, "run_id": msg.run_id, "steps": msg.steps,
        "cadence_spm": msg.cadence_spm, "valr_mean": m["valr_mean"], "contact_ms": m["contact_ms"],
        "zones": {k: m[k] for k in ("rearfoot", "midfoot", "forefoot")},
    }  # fmt: skip
    if isinstance(msg, WindowSummary):
        d.update(window_index=msg.window_index, t_start=msg.t_start, t_end=msg.t_end)
    else:
        d.update(started_at=msg.started_at, ended_at=msg.ended_at, duration_s=msg.duration_s)
    return d
