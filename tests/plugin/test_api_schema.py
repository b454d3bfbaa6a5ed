"""The HTTP API's response models (plugin/web/schemas.py) against a real server and store.

Every JSON route is declared with its model; real responses of every route validate against the committed
docs/api-schema.json with an independent JSON Schema validator (jsonschema, not pydantic); and a handler that
starts sending a key the model does not define fails loudly instead of reaching the page.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer

from plugin.events import EventHub
from plugin.store import Store
from plugin.web import DashboardContext, create_app
from plugin.web.schemas import NOT_JSON, ROUTES
from tests.support.dashboard import health, seed_store
from tests.support.paths import REPO

SCHEMA = json.loads((REPO / "docs" / "api-schema.json").read_text(encoding="utf-8"))


def validator(method: str, path: str) -> jsonschema.Draft202012Validator:
    ref = SCHEMA["routes"][f"{method} {path}"]["200"]
    return jsonschema.Draft202012Validator({**ref, "$defs": SCHEMA["$defs"]})


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient, Store]]:
    store = seed_store(tmp_path / "dash.db", weeks=6, alerts=3)
    c = TestClient(TestServer(create_app(DashboardContext(store=store, hub=EventHub(), health=health))))
    await c.start_server()
    try:
        yield c, store
    finally:
        await c.close()
        store.close()


async def test_every_api_route_is_declared(client: tuple[TestClient, Store]) -> None:
    c, _ = client
    registered = {
        (r.method, r.resource.canonical)
        for r in c.server.app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/api/") and r.method != "HEAD"
    }
    assert registered == set(ROUTES) | NOT_JSON, "a route without a response model (or a model without a route)"


async def test_real_responses_validate_against_the_committed_schema(client: tuple[TestClient, Store]) -> None:
    c, store = client
    run_id = store.list_runs(runner="alex", limit=1)[0]["run_id"]
    alert_id = store.list_alerts()[0]["alert_id"]
    origin = {"Origin": str(c.make_url("")).rstrip("/")}
    gets = {
        "/api/health": [""], "/api/overview": [""], "/api/meta": [""], "/api/me": [""], "/api/summary": [""],
        "/api/windows": ["?limit=50"], "/api/runs": ["?limit=20", "?runner=alex&offset=5"],
        "/api/runs/{run_id}": ["?steps=rows", "?steps=columns", "?steps=none"],
        "/api/trends": ["?period=week", "?period=day", "?period=run&runner=alex", "?since=2000-01-01&until=2000-02-01"],
        "/api/alerts": ["?include_acked=false"], "/api/settings": [""],
    }  # fmt: skip
    checked = 0
    for path, queries in gets.items():
        for q in queries:
            resp = await c.get(path.replace("{run_id}", run_id) + q)
            assert resp.status == 200, (path, q, await resp.text())
            validator("GET", path).validate(await resp.json())
            checked += 1
    resp = await c.post(f"/api/alerts/{alert_id}/ack", json={"by": "schema-test"}, headers=origin)
    validator("POST", "/api/alerts/{alert_id}/ack").validate(await resp.json())
    again = await c.post(f"/api/alerts/{alert_id}/ack", json={"by": "schema-test"}, headers=origin)
    body = await again.json()
    assert body["already_acked"] is True
    validator("POST", "/api/alerts/{alert_id}/ack").validate(body)
    resp = await c.post("/api/settings", json={"valr_threshold_bw_s": 64.0}, headers=origin)
    validator("POST", "/api/settings").validate(await resp.json())
    assert checked == 17
    # the detail of a run carries the MQTT contract's RunSummary as received
    detail = await (await c.get(f"/api/runs/{run_id}?steps=none")).json()
    assert detail["summary"]["kind"] == "run" and detail["steps_format"] == "none"


async def test_a_key_the_model_does_not_define_never_reaches_the_page(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = seed_store(tmp_path / "dash.db", weeks=1, alerts=0)

    def risk() -> dict[str, Any]:
        return {"level": "low", "reasons": [], "risk_score": 0.3}  # not in RiskSummary

    c = TestClient(TestServer(create_app(DashboardContext(store=store, hub=EventHub(), health=health, risk=risk))))
    await c.start_server()
    try:
        with caplog.at_level(logging.ERROR, logger="plugin.web.api"):
            resp = await c.get("/api/overview")
        assert resp.status == 500 and "risk_score" not in await resp.text()
        assert any("risk_score" in r.getMessage() or "risk_score" in str(r.exc_info) for r in caplog.records)
    finally:
        await c.close()
        store.close()
