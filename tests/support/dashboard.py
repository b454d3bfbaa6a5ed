"""A seeded dashboard store shared by the API and browser tests: weeks of simulated history, an XSS-named
runner and a few real ``Alert`` models."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edge_agent.contract import Alert
from plugin.history import RunnerModel, seed_history
from plugin.store import Store

XSS_RUNNER = "<script>alert(1)</script>"
TOKEN = "correct-horse-battery-staple-42"
SECRET_URL = "json://user:hunter2-secret@127.0.0.1:9/notify"


def make_alert(n: int, *, runner: str = "alex", severity: str = "warning", run_id: str | None = None) -> Alert:
    return Alert(
        alert_id=f"alert-test-{n:04d}",
        rule="loading_spike",
        severity=severity,  # type: ignore[arg-type]
        confidence=0.8,
        title=f"Loading rate spike #{n}",
        message="VALR rose 32 % above your 28-day baseline in the last window. Try +5–10 % cadence.",
        evidence={"valr_bw_s": 66.1, "baseline_bw_s": 50.0, "window_index": 12},
        device_id="sim-1",
        runner=runner,
        run_id=run_id,
        created_at=time.time() - 3600 + n,
    )


def seed_store(target: Path | str, *, weeks: int = 8, alerts: int = 3) -> Store:
    """A real store (a SQLite path or a PostgreSQL URL) with ``weeks`` of one runner, one week of an XSS-named
    runner, and a few alerts."""
    store = Store(target)
    seed_history(store, weeks=weeks, step_records_last_runs=1, seed=1)
    seed_history(store, weeks=1, seed=2, runner=RunnerModel(name=XSS_RUNNER, device_id="sim-2"))
    latest = store.list_runs(runner="alex", limit=1)[0]["run_id"]
    for n in range(alerts):
        store.insert_alert(make_alert(n, run_id=latest))
    return store


async def start_service(broker_url: str, db_path: Path, client_id: str, **config: Any) -> tuple[Any, int]:
    """A started ``DashboardService`` (ingest from ``broker_url``, web app on a free loopback port) and its port."""
    from plugin.config import load_config
    from plugin.service import DashboardService
    from tests.support.brokers import free_port

    port = free_port()
    cfg = load_config(None, mqtt={"url": broker_url, "client_id": client_id, "ha_discovery": False},
                      db_path=str(db_path), listen=f"127.0.0.1:{port}", **config)  # fmt: skip
    svc = DashboardService(cfg)
    await svc.start()
    return svc, port


def health() -> dict[str, Any]:
    return {
        "ingest": {"stored": 10, "duplicates": 1, "rejected": 2, "rejected_by_reason": {"not_json": 2}},
        "broker": {"connected": True, "url": "mqtt://127.0.0.1:1883"},
        "devices": 2,
        "version": "test",
    }
