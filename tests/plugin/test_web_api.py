"""Dashboard JSON API, auth, SSE and security headers against a real aiohttp server on a real store — every test
runs on SQLite and on PostgreSQL.

The store is seeded with ``plugin.history`` (the backend's simulated weeks of WindowSummary/RunSummary
messages), plus a runner whose name is an XSS probe, plus real ``Alert`` models.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer

from edge_agent.contract import WindowSummary
from plugin.events import EventHub
from plugin.store import Store
from plugin.web import ConfigError, DashboardContext, create_app
from plugin.web.api import RUN_CACHE
from plugin.web.auth import COOKIE_NAME, session_value
from tests.plugin.conftest import BACKENDS
from tests.support.dashboard import SECRET_URL, TOKEN, XSS_RUNNER, health, make_alert, seed_store
from tests.support.postgres import PostgresCluster


def make_ctx(store: Store, **kw: Any) -> DashboardContext:
    return DashboardContext(store=store, hub=kw.pop("hub", EventHub()), health=health, **kw)


@pytest.fixture(scope="module", params=BACKENDS)
def seeded_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | str]:
    """Seeded once per module and backend; tests that write use ``fresh_store`` instead."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("web") / "dash.db"
        seed_store(path).close()
        yield path
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_db(template="footfall_template")
    seed_store(url).close()
    yield url
    cluster.drop_db(url.rsplit("/", 1)[1])


@pytest.fixture
def store(seeded_db: Path | str) -> Iterator[Store]:
    s = Store(seeded_db)
    yield s
    s.close()


@pytest.fixture
def fresh_store(seeded_db: Path | str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A store of the same backend as ``seeded_db``, seeded with two weeks, for tests that write."""
    if isinstance(seeded_db, Path):
        s = seed_store(tmp_path / "fresh.db", weeks=2)
        yield s
        s.close()
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_db(template="footfall_template")
    s = seed_store(url, weeks=2)
    yield s
    s.close()
    cluster.drop_db(url.rsplit("/", 1)[1])


async def _client(ctx: DashboardContext) -> TestClient:
    client = TestClient(TestServer(create_app(ctx), host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def client(store: Store) -> AsyncIterator[TestClient]:
    c = await _client(make_ctx(store))
    yield c
    await c.close()


def origin(client: TestClient) -> dict[str, str]:
    return {"Origin": f"http://{client.host}:{client.port}"}


# ---------------------------------------------------------------- read API


async def test_health_passes_backend_health_through(client: TestClient) -> None:
    resp = await client.get("/api/health")
    assert resp.status == 200
    body = await resp.json()
    assert body["ingest"] == {"stored": 10, "duplicates": 1, "rejected": 2, "rejected_by_reason": {"not_json": 2}}
    assert body["broker"]["connected"] is True
    assert body["web"]["live_clients"] == 0 and body["web"]["auth"] == "loopback-open"
    assert resp.headers["Cache-Control"] == "no-store"


async def test_runs_paging_and_filters(client: TestClient, store: Store) -> None:
    total = store.count_runs()
    first = await (await client.get("/api/runs?limit=5")).json()
    second = await (await client.get("/api/runs?limit=5&offset=5")).json()
    assert len(first["runs"]) == 5 and first["next_offset"] == 5
    ids1, ids2 = {r["run_id"] for r in first["runs"]}, {r["run_id"] for r in second["runs"]}
    assert not ids1 & ids2
    starts = [r["started_at"] for r in first["runs"] + second["runs"]]
    assert starts == sorted(starts, reverse=True), "newest first"
    everything = await (await client.get("/api/runs?limit=1000")).json()
    assert len(everything["runs"]) == total and everything["next_offset"] is None

    xss = await (await client.get("/api/runs", params={"runner": XSS_RUNNER})).json()
    assert xss["runs"] and {r["runner"] for r in xss["runs"]} == {XSS_RUNNER}
    dev = await (await client.get("/api/runs?device_id=sim-2&limit=1000")).json()
    assert {r["device_id"] for r in dev["runs"]} == {"sim-2"}

    # since/until as ISO dates and as Unix seconds give the same answer.
    mid = sorted(starts)[len(starts) // 2]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(mid))
    a = await (await client.get(f"/api/runs?since={int(mid)}&limit=1000")).json()
    b = await (await client.get(f"/api/runs?since={iso}Z&limit=1000")).json()
    assert a["runs"] and [r["run_id"] for r in a["runs"]] == [r["run_id"] for r in b["runs"]]
    assert all(r["started_at"] >= int(mid) for r in a["runs"])


async def test_run_detail_has_windows_and_steps(client: TestClient, store: Store) -> None:
    run_id = store.list_runs(runner="alex", limit=1)[0]["run_id"]
    run = await (await client.get(f"/api/runs/{run_id}")).json()
    assert run["run_id"] == run_id and run["runner"] == "alex"
    assert len(run["windows"]) >= 10 and run["summary"]["kind"] == "run"
    assert run["steps"], "the newest run carries per-step records"
    step = run["steps"][0]
    for key in ("side", "t", "contact_ms", "strike_index", "strike_zone", "valr_bw_s", "cop_x", "cop_y"):
        assert key in step

    missing = await client.get("/api/runs/no-such-run")
    assert missing.status == 404 and "no-such-run" in (await missing.json())["error"]
    bad = await client.get("/api/runs/bad%20id%3Cx%3E")
    assert bad.status == 400 and "run_id" in (await bad.json())["error"]


async def test_run_detail_columnar_steps_and_cache_revalidation(fresh_store: Store) -> None:
    client = await _client(make_ctx(fresh_store))
    try:
        run_id = fresh_store.list_runs(runner="alex", limit=1)[0]["run_id"]
        rows = await (await client.get(f"/api/runs/{run_id}")).json()
        cols = await (await client.get(f"/api/runs/{run_id}?steps=columns")).json()
        none = await (await client.get(f"/api/runs/{run_id}?steps=none")).json()
        assert cols["steps_format"] == "columns" and "steps" not in none
        assert (
            none["step_count"]
            == cols["step_count"]
            == rows["step_count"]
            == fresh_store.get_run(run_id, include_steps=False)["steps"]
        )
        assert len(cols["steps"]["side"]) == len(rows["steps"]) > 0
        assert [r["valr_bw_s"] for r in rows["steps"]] == cols["steps"]["valr_bw_s"]
        assert (await client.get(f"/api/runs/{run_id}?steps=csv")).status == 400

        # A late (resent) window for the finished run must show up although the response is cached.
        again = await (await client.get(f"/api/runs/{run_id}?steps=columns")).json()
        assert again == cols
        last = rows["windows"][-1]
        late = WindowSummary(
            msg_id="late-window-0001", device_id="sim-1", stream_id="late01", seq=1, device_time=last["t_end"] + 60,
            runner="alex", run_id=run_id, window_index=last["window_index"] + 1, t_start=last["t_end"],
            t_end=last["t_end"] + 60, steps=170, cadence_spm=170.0,
        )  # fmt: skip
        assert fresh_store.insert_message(late, time.time())
        fresh = await (await client.get(f"/api/runs/{run_id}?steps=columns")).json()
        assert len(fresh["windows"]) == len(cols["windows"]) + 1
    finally:
        await client.close()


async def test_finished_run_is_pre_encoded_in_the_background(fresh_store: Store) -> None:
    hub = EventHub()
    client = await _client(make_ctx(fresh_store, hub=hub))
    try:
        run_id = fresh_store.list_runs(runner="alex", limit=1)[0]["run_id"]
        assert hub.subscriber_count == 1
        hub.publish("run", {"run_id": "no-such-run"})  # unknown ids are skipped, the task carries on
        hub.publish("run", {"run_id": "<bad id>"})
        hub.publish("run", {"run_id": run_id, "device_id": "sim-1"})
        cache = client.app[RUN_CACHE]
        for _ in range(1000):
            if (run_id, "columns") in cache._items:
                break
            await asyncio.sleep(0.01)
        assert cache.misses == 1 and cache.hits == 0
        body = await (await client.get(f"/api/runs/{run_id}?steps=columns")).json()
        assert body["run_id"] == run_id and cache.hits == 1, "served from the pre-encoded response"
    finally:
        await client.close()
    assert hub.subscriber_count == 0, "the pre-encoder stops with the app"


async def test_trends_week_and_run_periods(client: TestClient, store: Store) -> None:
    week = await (await client.get("/api/trends?period=week&runner=alex")).json()
    assert week["period"] == "week" and len(week["points"]) >= 8
    p = week["points"][-1]
    assert p["steps"] > 0 and p["valr_mean"] > 0 and set(p["zones"]) == {"rearfoot", "midfoot", "forefoot"}
    assert week["baseline"]["status"] == "ok" and week["training_load"]["series"]
    per_run = await (await client.get("/api/trends?period=run&runner=alex")).json()
    assert len(per_run["points"]) == store.count_runs(runner="alex")
    recent = await (await client.get(f"/api/trends?period=day&since={int(time.time()) - 14 * 86400}")).json()
    assert 0 < len(recent["points"]) <= 15


async def test_overview_in_one_round_trip(client: TestClient) -> None:
    body = await (await client.get("/api/overview")).json()
    latest = body["latest_run"]
    assert latest["windows"] and isinstance(latest["steps"], int), "step count, not per-step records"
    assert body["risk_level"] in ("low", "elevated", "high", "unknown")
    assert body["risk"]["level"] == body["risk_level"]
    assert len(body["alerts"]) == 3 and {d["device_id"] for d in body["devices"]} == {"sim-1", "sim-2"}


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("/api/runs?limit=abc", "limit"),
        ("/api/runs?limit=0", "limit"),
        ("/api/runs?limit=100000", "limit"),
        ("/api/runs?offset=-1", "offset"),
        ("/api/runs?since=yesterday-ish", "since"),
        ("/api/runs?until=1e300", "until"),
        ("/api/runs?since=2026-02-01&until=2026-01-01", "until"),
        ("/api/runs?device_id=../../etc", "device_id"),
        ("/api/runs?colour=red", "colour"),
        ("/api/trends?period=month", "period"),
        ("/api/trends?since=nan", "since"),
        ("/api/alerts?include_acked=maybe", "include_acked"),
        ("/api/export?format=xlsx", "format"),
    ],
)
async def test_bad_query_parameters_are_400_naming_the_parameter(client: TestClient, query: str, names: str) -> None:
    resp = await client.get(query)
    assert resp.status == 400, query
    assert resp.content_type == "application/json"
    assert names in (await resp.json())["error"]


async def test_unknown_api_route_is_json_404(client: TestClient) -> None:
    resp = await client.get("/api/nope")
    assert resp.status == 404 and "error" in await resp.json()
    resp = await client.delete("/api/runs", headers=origin(client))
    assert resp.status in (404, 405) and "error" in await resp.json()


async def test_export_csv_and_json(client: TestClient, store: Store) -> None:
    resp = await client.get("/api/export?format=csv")
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert len(rows) == store.count_runs()
    data = json.loads(await (await client.get("/api/export?format=json")).text())
    assert len(data) == store.count_runs() and {"run_id", "valr_mean"} <= set(data[0])
    mine = json.loads(await (await client.get("/api/export", params={"format": "json", "runner": XSS_RUNNER})).text())
    assert mine and len(mine) == store.count_runs(runner=XSS_RUNNER) < len(data)
    csv_text = await (await client.get("/api/export", params={"format": "csv", "runner": XSS_RUNNER})).text()
    assert XSS_RUNNER in csv_text  # plain data in a download, not markup


# ---------------------------------------------------------------- writes: alerts and settings


async def test_ack_alert_publishes_and_is_idempotent(fresh_store: Store) -> None:
    hub = EventHub()
    client = await _client(make_ctx(fresh_store, hub=hub))
    try:
        events = hub.subscribe()
        nxt = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)
        alerts = (await (await client.get("/api/alerts")).json())["alerts"]
        target = alerts[0]["alert_id"]
        resp = await client.post(f"/api/alerts/{target}/ack", json={"by": "coach"}, headers=origin(client))
        assert resp.status == 200 and (await resp.json())["already_acked"] is False
        ev = await asyncio.wait_for(nxt, 5)
        assert ev.type == "alert_ack" and ev.data == {"alert_id": target, "by": "coach", "runner": "alex"}
        again = await (await client.post(f"/api/alerts/{target}/ack", headers=origin(client))).json()
        assert again["already_acked"] is True and again["by"] == "coach", "the first acknowledgement is kept"
        open_ = (await (await client.get("/api/alerts?include_acked=false")).json())["alerts"]
        assert target not in {a["alert_id"] for a in open_} and len(open_) == len(alerts) - 1
        missing = await client.post("/api/alerts/alert-none-000/ack", headers=origin(client))
        assert missing.status == 404
        await events.aclose()
    finally:
        await client.close()


async def test_settings_roundtrip_masks_secrets_and_rejects_bad_input(
    fresh_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    client = await _client(make_ctx(fresh_store))
    caplog.set_level(logging.DEBUG)
    try:
        h = origin(client)
        resp = await client.post(
            "/api/settings", json={"notify_urls": [SECRET_URL], "valr_threshold_bw_s": 61.5}, headers=h
        )
        assert resp.status == 200, await resp.text()
        text = await resp.text()
        assert "hunter2" not in text and "user:" not in text
        body = json.loads(text)
        masked = body["settings"]["notify_urls"]
        assert len(masked) == 1 and masked[0].startswith("json://••••••#")
        assert fresh_store.get_setting("notify_urls") == [SECRET_URL]
        assert fresh_store.get_setting("valr_threshold_bw_s") == 61.5

        # Sending the mask back keeps the stored secret; a new URL is added next to it.
        resp = await client.post("/api/settings", json={"notify_urls": [masked[0], "ntfy://my-runs"]}, headers=h)
        assert resp.status == 200
        assert fresh_store.get_setting("notify_urls") == [SECRET_URL, "ntfy://my-runs"]

        before = fresh_store.settings()
        for bad, what in [
            ({"valr_threshold_bw_s": 5}, "valr_threshold_bw_s"),
            ({"valr_threshold_bw_s": "heavy"}, "valr_threshold_bw_s"),
            ({"valr_threshold_bw_s": True}, "valr_threshold_bw_s"),
            ({"notify_urls": "ntfy://x"}, "notify_urls"),
            ({"notify_urls": ["not a url"]}, "notify_urls[0]"),
            ({"notify_urls": ["json://••••••#000000"]}, "masked"),
            ({"body_mass": 70}, "body_mass"),
            # one good field and one bad one: nothing is written
            ({"valr_threshold_bw_s": 70.0, "acwr_threshold": 99}, "acwr_threshold"),
        ]:
            resp = await client.post("/api/settings", json=bad, headers=h)
            assert resp.status == 400, bad
            assert what in (await resp.json())["error"]
        assert fresh_store.settings() == before, "rejected settings changed nothing"

        not_json = await client.post(
            "/api/settings", data="{not json", headers={**h, "Content-Type": "application/json"}
        )
        assert not_json.status == 400 and "invalid JSON" in (await not_json.json())["error"]
        form = await client.post("/api/settings", data={"a": "b"}, headers=h)
        assert form.status == 415
        huge = await client.post("/api/settings", json={"notify_urls": ["ntfy://" + "x" * 100_000]}, headers=h)
        assert huge.status == 413
        assert fresh_store.settings() == before
        assert "hunter2" not in caplog.text, "secrets never reach the log"
        assert (await client.post("/api/settings/notify-test", headers=h)).status == 501
    finally:
        await client.close()


async def test_notify_test_calls_the_injected_notifier(fresh_store: Store) -> None:
    calls: list[int] = []

    async def notify() -> bool:
        calls.append(1)
        return True

    client = await _client(make_ctx(fresh_store, notify_test=notify))
    try:
        settings = await (await client.get("/api/settings")).json()
        assert settings["notify_test"] is True
        resp = await client.post("/api/settings/notify-test", headers=origin(client))
        assert resp.status == 200 and (await resp.json()) == {"delivered": True} and calls == [1]
    finally:
        await client.close()


# ---------------------------------------------------------------- auth and security


def test_exposed_without_token_refuses_to_build(store: Store) -> None:
    with pytest.raises(ConfigError, match="not loopback"):
        create_app(make_ctx(store, listen_host="0.0.0.0"))
    with pytest.raises(ConfigError, match="too short"):
        create_app(make_ctx(store, listen_host="0.0.0.0", token="short"))
    create_app(make_ctx(store, listen_host="::1"))  # loopback v6 is fine without a token
    create_app(make_ctx(store, listen_host="192.168.1.20", token=TOKEN))


async def test_token_auth_bearer_cookie_and_csrf(fresh_store: Store) -> None:
    client = await _client(make_ctx(fresh_store, listen_host="0.0.0.0", token=TOKEN))
    try:
        resp = await client.get("/api/runs")
        assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await resp.json())["error"] == "authentication required"
        page = await client.get("/trends", allow_redirects=False)
        assert page.status == 302 and page.headers["Location"] == "/login?next=/trends"
        assert (await client.get("/api/runs", headers={"Authorization": "Bearer wrong-token-xxxxxxxx"})).status == 401
        assert (await client.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"})).status == 200
        assert (await client.get("/static/js/main.js")).status == 200, "static files need no token"
        assert (await client.get("/login")).status == 200

        # Login: wrong token → 401 page, right one → HttpOnly SameSite=Strict cookie that is not the token.
        h = origin(client)
        bad = await client.post("/login", data={"token": "nope", "next": "/alerts"}, headers=h, allow_redirects=False)
        assert bad.status == 401 and "not right" in await bad.text()
        cross = await client.post(
            "/login", data={"token": TOKEN}, headers={"Origin": "http://evil.example"}, allow_redirects=False
        )
        assert cross.status == 403
        ok = await client.post("/login", data={"token": TOKEN, "next": "/alerts"}, headers=h, allow_redirects=False)
        assert ok.status == 303 and ok.headers["Location"] == "/alerts"
        cookie = ok.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        assert session_value(TOKEN) in cookie
        assert (await client.get("/api/alerts")).status == 200, "the session cookie authenticates"

        alert_id = fresh_store.list_alerts()[0]["alert_id"]
        # Cookie-authenticated writes must be same-origin (CSRF); bearer writes need no Origin.
        assert (await client.post(f"/api/alerts/{alert_id}/ack")).status == 403
        evil = await client.post(f"/api/alerts/{alert_id}/ack", headers={"Origin": "http://evil.example"})
        assert evil.status == 403
        assert fresh_store.get_alert(alert_id)["acked"] is False
        assert (await client.post(f"/api/alerts/{alert_id}/ack", headers=h)).status == 200
        other = fresh_store.list_alerts(include_acked=False)[0]["alert_id"]
        async with ClientSession() as plain:  # no cookie jar, no Origin: a script with the token
            resp = await plain.post(
                f"http://{client.host}:{client.port}/api/alerts/{other}/ack",
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert resp.status == 200

        # No open redirect after login.
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil"):
            r = await client.post("/login", data={"token": TOKEN, "next": target}, headers=h, allow_redirects=False)
            assert r.headers["Location"] == "/"
        # Logout clears the cookie.
        out = await client.post("/logout", headers=h, allow_redirects=False)
        assert out.status == 303 and f'{COOKIE_NAME}=""' in out.headers["Set-Cookie"]
    finally:
        await client.close()


async def test_loopback_open_mode_blocks_rebinding_and_cross_origin_writes(fresh_store: Store) -> None:
    client = await _client(make_ctx(fresh_store))
    try:
        assert (await client.get("/api/runs")).status == 200
        rebind = await client.get("/api/runs", headers={"Host": "attacker.example:8765"})
        assert rebind.status == 403
        alert_id = fresh_store.list_alerts()[0]["alert_id"]
        csrf = await client.post(f"/api/alerts/{alert_id}/ack", headers={"Origin": "http://attacker.example"})
        assert csrf.status == 403
        no_origin = await client.post("/api/settings", json={"valr_threshold_bw_s": 70.0})
        assert no_origin.status == 403
        assert fresh_store.get_alert(alert_id)["acked"] is False
        assert fresh_store.get_setting("valr_threshold_bw_s") is None
    finally:
        await client.close()


async def test_security_headers_and_no_inline_script(client: TestClient, store: Store) -> None:
    run_id = store.list_runs(limit=1)[0]["run_id"]
    for path in ("/", "/trends", "/runs", f"/runs/{run_id}", "/alerts", "/settings", "/api/runs", "/api/nope"):
        resp = await client.get(path)
        csp = resp.headers["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]*)", csp).group(1)  # type: ignore[union-attr]
        assert script_src == "'self'", path
        assert "frame-ancestors 'none'" in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Server"] == "footfall", "no version banner"
        if resp.content_type == "text/html":
            text = await resp.text()
            assert not re.search(r"<script(?![^>]*\bsrc=)", text), f"inline script on {path}"
            assert "cdn" not in text.lower() and "https://" not in text
    js = await client.get("/static/plotly.min.js")
    assert js.status == 200 and len(await js.read()) > 1_000_000
    assert (await client.get("/static/js/main.js")).status == 200


async def test_user_text_is_escaped_in_pages(store: Store) -> None:
    client = await _client(make_ctx(store, listen_host="0.0.0.0", token=TOKEN))
    try:
        resp = await client.get("/login", params={"next": '/"><script>alert(1)</script>'})
        text = await resp.text()
        assert "<script>alert(1)" not in text
        bad = await client.post(
            "/login", data={"token": "x", "next": '/"><img src=x onerror=alert(1)>'}, headers=origin(client)
        )
        assert "<img src=x" not in await bad.text()
    finally:
        await client.close()
    # The XSS runner's name reaches the browser only as JSON data, never inside HTML markup.
    client = await _client(make_ctx(store))
    try:
        for path in ("/", "/runs", "/trends"):
            assert XSS_RUNNER not in await (await client.get(path)).text()
        run_id = store.list_runs(runner=XSS_RUNNER, limit=1)[0]["run_id"]
        page = await (await client.get(f"/runs/{run_id}")).text()
        assert XSS_RUNNER not in page
    finally:
        await client.close()


# ---------------------------------------------------------------- live stream


async def test_sse_stream_ids_types_heartbeat_and_cleanup(store: Store) -> None:
    hub = EventHub()
    client = await _client(make_ctx(store, hub=hub, sse_heartbeat_s=0.2))
    try:
        base = hub.subscriber_count  # the app's own run pre-encoder listens too
        resp = await client.get("/api/live")
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        assert (await resp.content.readuntil(b"\n\n")).startswith(b"retry: 3000")
        assert hub.subscriber_count == base + 1
        assert (await (await client.get("/api/health")).json())["web"]["live_clients"] == 1
        alert = make_alert(99, runner=XSS_RUNNER).model_dump(mode="json")
        hub.publish("alert", alert)
        hub.publish("live", {"device_id": "sim-1", "cadence_spm": 171.0, "last_strike_zone": "midfoot"})
        messages: list[dict[str, str]] = []
        heartbeats = 0
        while len(messages) < 2 or heartbeats < 1:
            block = (await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)).decode()
            if block.startswith(": heartbeat"):
                heartbeats += 1
                continue
            fields = dict(line.split(": ", 1) for line in block.strip().splitlines())
            messages.append(fields)
        assert [m["event"] for m in messages] == ["alert", "live"]
        assert int(messages[1]["id"]) == int(messages[0]["id"]) + 1
        assert json.loads(messages[0]["data"])["runner"] == XSS_RUNNER
        assert json.loads(messages[1]["data"])["cadence_spm"] == 171.0
        resp.close()
        for _ in range(200):  # the server notices the closed stream at the next write (≤ one heartbeat)
            if hub.subscriber_count == base:
                break
            await asyncio.sleep(0.02)
        assert hub.subscriber_count == base, "a closed browser leaves no subscriber behind"
    finally:
        await client.close()


async def test_bad_requests_leave_the_store_untouched(fresh_store: Store) -> None:
    before = fresh_store.fingerprint()
    client = await _client(make_ctx(fresh_store))
    try:
        h = origin(client)
        for method, path, kw in [
            ("POST", "/api/settings", {"data": b"\xff\xfe", "headers": {**h, "Content-Type": "application/json"}}),
            ("POST", "/api/settings", {"json": [1, 2, 3], "headers": h}),
            ("POST", "/api/alerts/..%2F..%2Fx/ack", {"headers": h}),
            ("POST", "/api/alerts/alert-test-0000/ack", {"json": {"by": ""}, "headers": h}),
            ("POST", "/api/alerts/alert-test-0000/ack", {"json": {"by": "x" * 65}, "headers": h}),
            ("GET", "/api/runs?limit=-5", {}),
            ("PUT", "/api/settings", {"json": {}, "headers": h}),
        ]:
            resp = await client.request(method, path, **kw)
            assert 400 <= resp.status < 500, (method, path, resp.status)
            assert "error" in await resp.json()
    finally:
        await client.close()
    assert fresh_store.fingerprint() == before
