"""What the dashboard web app needs from the rest of the plugin, in one object.

``plugin/service.py`` (the composition root) builds a :class:`DashboardContext` and hands it to
``plugin.web.app.create_app``; tests build one around a real ``Store`` on a temporary SQLite file.
Keeping the web layer's dependencies explicit here means the web app never reaches into the
service's internals and can be tested without MQTT.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the web layer only calls the Store; importing it at runtime is the service's job
    from plugin.config import RiskConfig
    from plugin.events import EventHub
    from plugin.program import ProgramService
    from plugin.store import Store

SettingType = Literal["float", "int", "str", "url_list", "bool"]


@dataclass(frozen=True)
class SettingSpec:
    """One user-editable setting: how the settings page shows it and how POST /api/settings validates it.

    ``secret`` values (Apprise URLs carry tokens and passwords) are never sent back to the browser
    in clear: GET returns a masked form, and a POST that sends the mask back keeps the stored value.
    """

    key: str
    title: str
    type: SettingType
    description: str = ""
    unit: str = ""
    default: Any = None
    min: float | None = None
    max: float | None = None
    secret: bool = False
    max_items: int = 20
    max_length: int = 200

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "type": self.type,
            "description": self.description,
            "unit": self.unit,
            "default": self.default,
            "min": self.min,
            "max": self.max,
            "secret": self.secret,
        }


#: Defaults for the settings page. Thresholds are informational context (docs/design.md §4–5): the
#: risk engine judges a runner against their own baseline first.
DEFAULT_SETTINGS_SCHEMA: tuple[SettingSpec, ...] = (
    SettingSpec(
        "notify_urls",
        "Notification URLs",
        "url_list",
        "Apprise URLs (e.g. ntfy://, tgram://, mailto://) that receive push alerts. Stored on this "
        "server only; shown masked because they contain tokens.",
        default=[],
        secret=True,
        max_length=1000,
    ),
    SettingSpec(
        "valr_threshold_bw_s",
        "Absolute VALR threshold",
        "float",
        "Informational alert above this vertical average loading rate. 66 BW/s is Davis et al. 2016 "
        "(BJSM 50:887, women, force plate); insoles under-read loading rate (Peebles 2018).",
        unit="BW/s",
        default=66.0,
        min=10.0,
        max=300.0,
    ),
    SettingSpec(
        "loading_spike_pct",
        "Loading spike vs baseline",
        "float",
        "In-run alert when VALR rises this far above your own 28-day baseline.",
        unit="%",
        default=25.0,
        min=5.0,
        max=200.0,
    ),
    SettingSpec(
        "forefoot_shift_pct_per_week",
        "Max forefoot share increase",
        "float",
        "Alert when the forefoot-strike share rises faster than this per week (abrupt transitions injure: Ridge 2013).",
        unit="%/week",
        default=10.0,
        min=1.0,
        max=100.0,
    ),
    SettingSpec(
        "acwr_threshold",
        "Training-load ratio (ACWR)",
        "float",
        "Acute:chronic EWMA workload ratio shown as context above this value (Gabbett 2016 heuristic, "
        "criticised by Impellizzeri 2020).",
        default=1.5,
        min=1.0,
        max=3.0,
    ),
)


@dataclass
class DashboardContext:
    """Everything the web app uses. Only ``store``, ``hub`` and ``health`` are required.

    ``token``: required whenever ``listen_host`` is not loopback (``create_app`` refuses otherwise).
    ``notify_test``: sends a test notification through the configured notifiers; True if delivered.
    ``risk``: returns the risk summary ``{"level", "reasons"}`` (or just the level); defaults to
    ``plugin.risk.risk_summary(store)``. ``risk_config``: the risk engine's current thresholds (per-runner
    risk levels in ``GET /api/summary``); defaults to ``RiskConfig()``.
    ``sse_heartbeat_s``: SSE comment heartbeat so proxies and browsers keep idle streams open.
    ``prewarm_runs``: encode a run's detail response in the background when its ``run`` event arrives.
    """

    store: Store
    hub: EventHub
    health: Callable[[], dict[str, Any]]
    token: str | None = None
    listen_host: str = "127.0.0.1"
    notify_test: Callable[[], Awaitable[bool]] | None = None
    settings_schema: tuple[SettingSpec, ...] = DEFAULT_SETTINGS_SCHEMA
    risk: Callable[[], dict[str, Any] | str] | None = None
    risk_config: Callable[[], RiskConfig] | None = None
    sse_heartbeat_s: float = 15.0
    prewarm_runs: bool = True
    title: str = "footfall"
    #: Reverse proxies (IPs or networks) whose X-Forwarded-Proto/-Host/-For are believed (plugin/web/proxy.py).
    trusted_proxies: tuple[str, ...] = ()
    #: The form journey's service (start a program, retro-tag runs, publish targets); None = built on first use
    #: without a broker (targets are stored, not published).
    program: ProgramService | None = None
    extra: dict[str, Any] = field(default_factory=dict)
