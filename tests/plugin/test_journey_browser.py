"""The journey page in a real headless Chromium (Debian's, via Playwright) against a real server and store seeded by
``footfall-dashboard seed-history --program`` (a runner mid-way through the program, two pairs of shoes): the stage,
targets, charts with data, the stages in plain words, the shoe table; starting a program for a second runner from
the page; writes docs/screenshots/journey.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plugin.cli import main as cli
from plugin.events import EventHub
from plugin.history import RunnerModel, seed_history
from plugin.store import Store
from plugin.web import DashboardContext
from tests.plugin.test_web_browser import (
    CHROMIUM,
    SCREENSHOTS,
    Server,
    browser_context,
    draw_every_chart,
    drawn_points,
    goto,
    watch,
)
from tests.support.dashboard import health

__all__ = ["browser_context"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)"),
]


async def test_journey_page_in_chromium(tmp_path: Path, browser_context: Any) -> None:
    db = tmp_path / "dash.db"
    assert cli(["seed-history", "--db", str(db), "--weeks", "10", "--program", "--seed", "0"]) == 0
    store = Store(db)
    seed_history(store, weeks=5, seed=9, runner=RunnerModel(name="bo", device_id="sim-9"), step_records_last_runs=0)
    server = Server(DashboardContext(store=store, hub=EventHub(), health=health))
    await server.start()
    try:
        page = await browser_context.new_page()
        seen = watch(page)
        await goto(page, server.url + "/journey")
        assert await page.get_attribute('nav a[href="/journey"]', "aria-current") is not None
        assert await page.input_value("#journey-runner") == "alex"  # the runner with a program comes first
        stage = await page.text_content("#journey-stage")
        assert "Stage" in stage and "Carbon racer" in stage  # type: ignore[operator]
        statuses = await page.locator(".stages > li").evaluate_all("els => els.map(e => e.dataset.status)")
        assert statuses[0] == "done" and statuses[1] in ("current", "locked"), statuses
        assert await page.locator(".stages details li").count() >= 8, "sources under every stage"
        text = await page.text_content("#journey-stages")
        assert "Heiderscheit" in text and "Willy" in text and "Not yet:" in text  # type: ignore[operator]
        cadence = await drawn_points(page, "chart-journey-cadence")
        assert cadence and cadence[0] >= 20, cadence  # one point per run since the program started
        assert (await drawn_points(page, "chart-journey-valr") or [0])[0] >= 20
        assert (await drawn_points(page, "chart-journey-strike") or [0])[0] >= 5
        rows = await page.locator("table.shoes tbody tr").evaluate_all("els => els.map(e => e.dataset.shoe)")
        assert rows == ["Daily trainer", "Carbon racer"]
        assert await page.locator('tr[data-shoe="Carbon racer"] .badge').count() == 1  # its shoe alert
        targets = await page.text_content("#journey-targets")
        assert "spm" in targets and "BW/s" in targets  # type: ignore[operator]
        # edit the goals from the page
        await page.fill("#program-form textarea[name=goals]", "Half marathon in April")
        await page.click("#program-form button[type=submit]")
        await page.wait_for_function(
            "() => document.querySelector('#program-form [role=status]').textContent === 'Saved.'"
        )
        assert store.get_program("alex")["goals"] == "Half marathon in April"  # type: ignore[index]
        await draw_every_chart(page)  # and back to the top: the sticky bar where it belongs in a full-page shot
        await page.screenshot(path=str(SCREENSHOTS / "journey.png"), full_page=True)

        # another runner: no program yet → start it from the page
        await page.select_option("#journey-runner", "bo")
        await page.wait_for_function("() => document.querySelector('#journey-messages').textContent.includes('bo')")
        await page.click("#program-form button[type=submit]")
        await page.wait_for_function("() => document.querySelectorAll('.stages > li').length === 3")
        assert store.get_program("bo") is not None
        assert await page.input_value("#journey-runner") == "bo"
        assert not seen["errors"] and not seen["dialogs"] and not seen["console"], seen
    finally:
        await server.stop()
        store.close()
