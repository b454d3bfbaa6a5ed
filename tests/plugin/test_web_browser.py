"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against a real server and store.

Opens every page, checks that the plotly charts were drawn with data, opens a run, publishes an alert
into the event hub and sees it appear (list + toast) without a reload, acknowledges it, checks that an
XSS-named runner is shown as text, and writes the screenshots in docs/screenshots/.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from edge_agent.contract import Alert
from plugin.events import EventHub
from plugin.web import DashboardContext, create_app
from plugin.web.api import LIVE_TASKS
from tests.support.dashboard import TOKEN, XSS_RUNNER, health, seed_store
from tests.support.paths import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)"),
]

TREND_CHARTS = ("zones", "si", "valr", "cadence", "contact", "asym", "load")
# Points drawn per trace of a plotly chart (non-null y values, or x for horizontal bars).
POINTS_JS = """(id) => {
  const el = document.getElementById(id);
  if (!el || !el.data) return null;
  return el.data.map((t) => ((t.orientation === 'h' ? t.x : t.y) || [])
    .filter((v) => v !== null && v !== undefined).length);
}"""


class Server:
    def __init__(self, ctx: DashboardContext) -> None:
        self.ctx = ctx
        self.runner = web.AppRunner(create_app(ctx))
        self.url = ""

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self.runner.cleanup()


@pytest.fixture
async def browser_context(tmp_path: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        ctx = await pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # fresh user-data dir per test
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            color_scheme="light",
        )
        try:
            yield ctx
        finally:
            await ctx.close()


def watch(page: Any) -> dict[str, list[str]]:
    """Collect dialogs (an executed alert() = XSS), uncaught page errors and console errors (CSP violations)."""
    seen: dict[str, list[str]] = {"dialogs": [], "errors": [], "console": []}

    async def on_dialog(dialog: Any) -> None:
        seen["dialogs"].append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda err: seen["errors"].append(str(err)))
    page.on("console", lambda msg: seen["console"].append(msg.text) if msg.type == "error" else None)
    return seen


async def goto(page: Any, url: str) -> None:
    await page.goto(url)
    await page.wait_for_selector("body[data-ready]", timeout=30_000)


def risk_engine_alerts(store: Any, weeks: int) -> list[Alert]:
    """A history with injected events run through the real risk engine, stored as the service would."""
    from edge_agent.contract import RunSummary
    from plugin.config import RiskConfig
    from plugin.history import RunnerModel, Scenario, generate_history
    from plugin.risk import RiskEngine

    engine = RiskEngine(store, RiskConfig())
    scenario = Scenario(spike=(22, 6, 2, 1.7), forefoot_transition=(weeks - 4, weeks - 1, 0.45), fatigue_runs=(30,))
    alerts: list[Alert] = []
    batch: list[Any] = []
    model = RunnerModel(name="jo", device_id="sim-3")
    for msg in generate_history(weeks=weeks, seed=5, runner=model, scenario=scenario, step_records_last_runs=0):
        batch.append(msg)
        if isinstance(msg, RunSummary):  # store a run, then let the engine see it (as after an ingest batch)
            store.insert_many(batch)
            for m in batch:
                alerts += engine.on_run(m) if isinstance(m, RunSummary) else engine.on_summary(m)
            batch.clear()
    assert len(store.list_alerts()) == len(alerts), "the engine stores what it raises"
    return alerts


async def test_dashboard_in_chromium(tmp_path: Path, browser_context: Any) -> None:
    store = seed_store(tmp_path / "dash.db", weeks=12, alerts=0)
    engine_alerts = risk_engine_alerts(store, 12)
    assert {a.rule for a in engine_alerts} >= {"loading_spike", "strike_transition"}, engine_alerts
    hub = EventHub()
    server = Server(DashboardContext(store=store, hub=hub, health=health))
    await server.start()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page = await browser_context.new_page()
        seen = watch(page)

        # Overview: risk, latest run, open alerts, an 8-week chart with data.
        await goto(page, server.url + "/")
        await page.wait_for_selector("#risk-level")
        assert await page.text_content("#risk-level") in ("low", "elevated", "high", "unknown")
        assert await page.locator("#overview-alerts li.alert").count() == min(5, len(engine_alerts))
        assert "null" not in await page.text_content("#recent-alerts")
        glance = await page.evaluate(POINTS_JS, "chart-glance")
        assert glance and all(n >= 8 for n in glance), glance
        await page.wait_for_function("() => document.getElementById('live-status').dataset.state === 'open'")
        hub.publish("live", {"device_id": "sim-1", "activity": "running", "cadence_spm": 172.4,
                             "last_strike_zone": "midfoot", "last_strike_index": 0.41, "last_side": "left",
                             "last_valr_bw_s": 47.2, "steps_in_run": 1234})  # fmt: skip
        await page.wait_for_function("() => document.querySelector('#live-card').textContent.includes('172')")
        assert "midfoot" in await page.text_content("#live-card")
        await page.screenshot(path=str(SCREENSHOTS / "overview.png"), full_page=True)

        # Trends: every chart drawn with points.
        await goto(page, server.url + "/trends")
        for cid in TREND_CHARTS:
            await page.wait_for_function(f"() => document.getElementById('chart-{cid}').data !== undefined")
            points = await page.evaluate(POINTS_JS, f"chart-{cid}")
            assert points and max(points) >= 10, (cid, points)
        assert await page.locator("#wow .stat").count() == 8, "week-over-week tiles"
        await page.select_option("#trend-filters select[name=period]", "run")
        await page.wait_for_function(
            "() => document.getElementById('chart-cadence').data.at(-1).y.length > 40"
        )  # per-run points: ~4 runs a week over 12 weeks
        await page.select_option("#trend-filters select[name=period]", "week")
        await page.wait_for_function("() => document.getElementById('chart-cadence').data.at(-1).y.length < 20")
        await page.screenshot(path=str(SCREENSHOTS / "trends.png"), full_page=True)

        # Runs list → run detail (the newest run of "alex" carries per-step records).
        run_id = store.list_runs(runner="alex", limit=1)[0]["run_id"]
        await goto(page, server.url + "/runs")
        assert await page.locator("table.runs tbody tr").count() == 50
        await page.select_option("#runs-runner", XSS_RUNNER)
        await page.wait_for_function("() => document.querySelectorAll('table.runs tbody tr').length < 10")
        cells = await page.locator("table.runs tbody td.t-left").all_text_contents()
        assert cells and set(cells) == {XSS_RUNNER}, "filtered by runner, name shown as text"
        valr_cells = await page.locator("table.runs tbody td:nth-child(6)").all_text_contents()
        assert valr_cells and all(c.startswith("≈ ") and "–" in c for c in valr_cells), valr_cells
        await page.select_option("#runs-runner", "")
        await page.wait_for_function("() => document.querySelectorAll('table.runs tbody tr').length === 50")
        await page.click(f'a[href="/runs/{run_id}"]')
        await page.wait_for_url(f"**/runs/{run_id}")
        await page.wait_for_selector("body[data-ready]")
        scatter = await page.evaluate(POINTS_JS, "chart-scatter")
        assert scatter and min(scatter) >= 100, scatter
        assert await page.evaluate(POINTS_JS, "chart-zonefoot") == [2, 2, 2]
        windows = await page.evaluate(POINTS_JS, "chart-windows")
        assert windows and min(windows) >= 20
        assert await page.locator("#cop-map svg circle").count() >= 200
        # the run's loading rate with its 90 % interval, as stored (contract v2)
        row = store.run_row(run_id)
        assert row is not None and row["valr_lo"] < row["valr_mean"] < row["valr_hi"]
        summary = await page.text_content("#run-summary")
        assert f"≈ {row['valr_mean']:.0f}" in summary
        assert f"90 % interval {row['valr_lo']:.0f}–{row['valr_hi']:.0f} BW/s" in summary
        await page.screenshot(path=str(SCREENSHOTS / "run.png"), full_page=True)

        # A run of the XSS-named runner: the name is shown as text, nothing executes.
        xss_run = store.list_runs(runner=XSS_RUNNER, limit=1)[0]["run_id"]
        await goto(page, f"{server.url}/runs/{xss_run}")
        assert XSS_RUNNER in await page.text_content("#run-title")

        # Alerts page: an alert published into the hub appears without a reload; then acknowledge it.
        await goto(page, server.url + "/alerts")
        await page.wait_for_function("() => document.getElementById('live-status').dataset.state === 'open'")
        await page.evaluate("window.__noReload = 42")
        alert = Alert(
            alert_id="alert-live-0001", rule="valr_absolute", severity="critical", confidence=0.74,
            title='Loading rate above 66 BW/s <img src=x onerror="alert(2)">',
            message="Your average VALR over the last 3 windows was 71 BW/s (baseline 50 ± 4 BW/s).\n"
                    "Try shortening your stride: +5–10 % cadence lowered VALR by 19 % in Willy 2016.",
            evidence={"valr_bw_s": 71.2, "baseline_bw_s": 50.1, "threshold_bw_s": 66.0, "windows": 3},
            device_id="sim-1", runner=XSS_RUNNER, run_id=run_id, created_at=time.time(),
        )  # fmt: skip
        store.insert_alert(alert)  # what the risk engine does: store, then publish
        hub.publish("alert", alert.model_dump(mode="json"))
        item = page.locator('li.alert[data-alert-id="alert-live-0001"]')
        await item.wait_for(timeout=10_000)
        assert await page.evaluate("window.__noReload") == 42, "arrived without a reload"
        assert await page.locator(".toast").count() == 1
        assert "onerror" in await item.locator(".alert-title").text_content()  # shown as text
        assert "71.2 BW/s" in await item.text_content()
        assert "null" not in await page.text_content("#alerts-list")
        assert await page.locator("li.alert").count() == len(engine_alerts) + 1
        await page.wait_for_timeout(400)  # let the toast's slide-in finish for the screenshot
        await page.screenshot(path=str(SCREENSHOTS / "alerts.png"))  # the viewport, toast in its place
        await item.locator("button", has_text="Acknowledge").click()
        await page.wait_for_function(
            "() => document.querySelector('li.alert[data-alert-id=\"alert-live-0001\"]').classList.contains('acked')"
        )
        assert store.get_alert("alert-live-0001")["acked_by"] == "dashboard"

        # The live stream drops (server-side): EventSource reconnects by itself and the page reloads what
        # it missed while disconnected (the hub does not replay).
        missed = alert.model_copy(update={"alert_id": "alert-missed-0001", "title": "Missed while offline",
                                          "created_at": time.time() + 1})  # fmt: skip
        store.insert_alert(missed)
        for task in list(server.runner.app[LIVE_TASKS]):
            task.cancel()
        await page.locator('li.alert[data-alert-id="alert-missed-0001"]').wait_for(timeout=20_000)
        assert await page.evaluate("window.__noReload") == 42

        # Settings: a masked secret round-trips through the form.
        store.set_setting("notify_urls", ["ntfy://secret-topic-123"])
        await goto(page, server.url + "/settings")
        shown = await page.input_value("#set-notify_urls")
        assert "secret-topic" not in shown and shown.startswith("ntfy://••••••")
        await page.fill("#set-valr_threshold_bw_s", "63.5")
        await page.click("#settings-form button[type=submit]")
        await page.wait_for_selector("#settings-status.ok")
        assert store.get_setting("valr_threshold_bw_s") == 63.5
        assert store.get_setting("notify_urls") == ["ntfy://secret-topic-123"]
        await page.wait_for_selector("#system-card .stat")
        assert "not_json 2" in await page.text_content("#system-card")  # the service's health, as served
        assert await page.is_hidden("#notify-test"), "no notifier configured → no test button"
        await page.screenshot(path=str(SCREENSHOTS / "settings.png"), full_page=True)

        # Dark mode renders too (screenshot for the docs).
        await page.emulate_media(color_scheme="dark")
        await goto(page, f"{server.url}/runs/{run_id}")
        await page.screenshot(path=str(SCREENSHOTS / "run-dark.png"), full_page=True)

        assert seen["dialogs"] == [], f"script injected: {seen['dialogs']}"
        assert seen["errors"] == [], seen["errors"]
        assert seen["console"] == [], f"console errors (CSP?): {seen['console']}"
    finally:
        await server.stop()
        store.close()


async def test_login_flow_in_chromium(tmp_path: Path, browser_context: Any) -> None:
    store = seed_store(tmp_path / "dash.db", weeks=1, alerts=0)
    server = Server(DashboardContext(store=store, hub=EventHub(), health=health, token=TOKEN))
    await server.start()
    try:
        page = await browser_context.new_page()
        seen = watch(page)
        await page.goto(server.url + "/alerts")
        assert "/login" in page.url
        await page.fill("input[name=token]", "wrong-token-value-123")
        await page.click("button[type=submit]")
        await page.wait_for_selector("p.error")
        await page.fill("input[name=token]", TOKEN)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/alerts")
        await page.wait_for_selector("body[data-ready]")
        cookies = await browser_context.cookies(server.url)
        session = next(c for c in cookies if c["name"] == "footfall_session")
        assert session["httpOnly"] and session["sameSite"] == "Strict" and session["value"] != TOKEN
        assert await page.evaluate("document.cookie") == "", "the session cookie is invisible to scripts"
        await page.wait_for_function("() => document.getElementById('live-status').dataset.state === 'open'")
        await goto(page, server.url + "/settings")
        await page.click("#system-card button[type=submit]")  # sign out
        await page.wait_for_url("**/login")
        await page.goto(server.url + "/alerts")
        assert "/login" in page.url, "signed out: back to the login page"
        assert seen["errors"] == [] and seen["dialogs"] == []
    finally:
        await server.stop()
        store.close()


async def test_mqtt_to_browser_live_through_the_real_service(broker: Any, tmp_path: Path, browser_context: Any) -> None:
    """Raw MQTT summaries → ingest → store → risk engine → hub → SSE → the open alerts page, no reload;
    and a LiveUpdate on ``footfall/<device>/live`` reaches the overview's live card."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from edge_agent.contract import LiveUpdate, WindowSummary
    from plugin.config import load_config
    from plugin.history import Scenario, generate_history
    from plugin.service import DashboardService
    from tests.support.brokers import free_port

    port = free_port()
    cfg = load_config(
        None,
        mqtt={"url": broker.url, "client_id": "dash-web-e2e", "ha_discovery": False},
        db_path=str(tmp_path / "e2e.db"),
        listen=f"127.0.0.1:{port}",
    )
    svc = DashboardService(cfg)
    await svc.start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="raw-agent-web")
    try:
        page = await browser_context.new_page()
        seen = watch(page)
        await goto(page, f"http://127.0.0.1:{port}/alerts")
        assert await page.locator("#no-alerts").count() == 1
        await page.wait_for_function("() => document.getElementById('live-status').dataset.state === 'open'")
        await page.evaluate("window.__noReload = 7")

        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        msgs = list(generate_history(weeks=6, seed=21, scenario=Scenario(spike=(20, 6, 2, 1.7)),
                                     step_records_last_runs=0))  # fmt: skip
        for m in msgs:
            kind = "summary" if isinstance(m, WindowSummary) else "run"
            pub.publish(f"footfall/{m.device_id}/{kind}", m.model_dump_json(), qos=1)
        item = page.locator("li.alert").first
        await item.wait_for(timeout=60_000)
        assert await page.evaluate("window.__noReload") == 7
        assert "spike" in (await item.locator(".alert-title").text_content() or "").lower()
        await page.locator(".toast").first.wait_for()

        await goto(page, f"http://127.0.0.1:{port}/")
        await page.wait_for_function("() => document.getElementById('live-status').dataset.state === 'open'")
        live = LiveUpdate(device_id="sim-1", device_time=time.time(), activity="running", cadence_spm=176.0,
                          last_side="right", last_strike_index=0.52, last_strike_zone="midfoot",
                          last_valr_bw_s=44.0, steps_in_run=321)  # fmt: skip
        pub.publish("footfall/sim-1/live", live.model_dump_json(), qos=0)
        await page.wait_for_function("() => document.querySelector('#live-card').textContent.includes('176')")
        assert "321" in await page.text_content("#live-card")
        assert seen["errors"] == [] and seen["dialogs"] == [] and seen["console"] == []
    finally:
        pub.loop_stop()
        await svc.stop()
