"""The dashboard at a glance, per runner and per insole device: what ``GET /api/summary`` serves.

Made for clients that mirror the dashboard (the Home Assistant integration in ``custom_components/footfall``):
one round trip gives a stable identity of this dashboard, the runners and devices it knows, and each runner's
current figures. Everything comes from the existing engines, so a figure here equals the one on the dashboard:

- ``last_7_days`` / ``last_28_days``: :func:`plugin.trends.period_summary` over the runs that started in the
  7 (28) days before now — the same pooling as the trend pages (step-weighted VALR, contact time, strike mix;
  duration-weighted cadence). No run in the period → the measures are ``null`` (never 0).
- ``training_load``: :func:`plugin.trends.training_load` up to now (EWMA acute 7 d / chronic 28 d, ACWR).
- ``risk``: :func:`plugin.risk.risk_summary` for that runner, with the thresholds the risk engine uses.

Runs without a runner name (an agent without ``runner:``) count for their device but for no runner.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from plugin import __version__
from plugin.config import RiskConfig
from plugin.risk import risk_summary
from plugin.store import Store
from plugin.store.base import Runners
from plugin.trends import DAY, period_summary, training_load

#: Settings key of this dashboard's identity (a random UUID made once per database).
INSTANCE_KEY = "instance.id"
#: Newest alerts listed (acknowledged or not): enough for a client to catch up after a short disconnect.
RECENT_ALERTS = 20
PERIODS = {"last_7_days": 7, "last_28_days": 28}
_MEASURES = ("runs", "steps", "load_min", "cadence_spm", "valr_mean", "valr_p90", "contact_ms",
             "zone_share_pct", "asymmetry_contact_pct", "asymmetry_valr_pct")  # fmt: skip
_ALERT_FIELDS = ("alert_id", "rule", "severity", "confidence", "title", "message", "device_id", "runner",
                 "run_id", "created_at", "acked", "acked_at", "acked_by")  # fmt: skip


def instance_id(store: Store) -> str:
    """This dashboard's stable identity: the same for the life of its database, different for another one."""
    return str(store.setting_default(INSTANCE_KEY, uuid.uuid4().hex))


def alert_view(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert as clients see it (no evidence blob)."""
    return {k: alert.get(k) for k in _ALERT_FIELDS}


def runner_figures(store: Store, name: str, *, now: float, risk_config: RiskConfig | None) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for key, days in PERIODS.items():
        point = period_summary(store, since=now - days * DAY, until=now, runner=name)
        figures[key] = {k: point[k] for k in _MEASURES}
    load = training_load(store, ref=now, runner=name, with_series=False)
    figures["training_load"] = {k: load.get(k) for k in ("status", "acute", "chronic", "acwr", "unit")}
    risk = risk_summary(store, runner=name, config=risk_config)
    figures["risk"] = {"level": risk["level"], "reasons": risk["reasons"][:5]}
    return figures


def summary(
    store: Store, *, now: float | None = None, risk_config: RiskConfig | None = None, runners: Runners = None
) -> dict[str, Any]:
    """The document of ``GET /api/summary`` (docs/dashboard.md); ``runners``: only these runners (a user's
    scope, docs/club.md), None = all."""
    now = time.time() if now is None else now
    open_alerts = store.list_alerts(include_acked=False, limit=1000, runners=runners)
    visible = runners
    runners_out = []
    for row in store.runners(runners=visible):
        name = row["name"]
        last = store.list_runs(runner=name, limit=1)
        devices = store._rows("SELECT DISTINCT device_id FROM runs WHERE runner = ? ORDER BY device_id", (name,))
        runners_out.append({
            "name": name, "runs": row["runs"], "first_seen": row["first_seen"], "last_seen": row["last_seen"],
            "device_ids": [r["device_id"] for r in devices],
            "last_run": {k: last[0][k] for k in ("run_id", "device_id", "started_at", "ended_at", "duration_s",
                                                 "steps", "complete")} if last else None,
            "open_alerts": sum(1 for a in open_alerts if a["runner"] == name),
            **runner_figures(store, name, now=now, risk_config=risk_config),
        })  # fmt: skip
    devices = [
        {k: d.get(k) for k in ("device_id", "status", "status_at", "first_seen", "last_seen", "last_runner", "runs")}
        for d in store.devices(runners=visible)
    ]
    return {
        "instance": {"id": instance_id(store), "version": __version__},
        "generated_at": now,
        "runners": runners_out,
        "devices": devices,
        "open_alerts": len(open_alerts),
        "recent_alerts": [alert_view(a) for a in store.list_alerts(limit=RECENT_ALERTS, runners=visible)],
    }
