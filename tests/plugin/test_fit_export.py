"""A stored run as a FIT file: ``footfall-dashboard export --format fit`` (a real subprocess), the run page's
download route on a real HTTP server (auth included) and its button in a real Chromium; every file is read back
with Garmin's decoder and compared with the store's own per-window and per-run values."""

from __future__ import annotations

import math
import os
import pty
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from edge_agent.common.fitfile import MIME_TYPE, stance_time_balance_pct
from edge_agent.contract import RunSummary, WindowSummary
from plugin.events import EventHub
from plugin.history import generate_history
from plugin.store import Store
from plugin.web import DashboardContext, create_app
from tests.support.dashboard import TOKEN, health
from tests.support.fit import BALANCE_TOL, FLOAT32_REL, SPM_TOL, STANCE_MS_TOL, DecodedFit, decode, spm, unix
from tests.support.paths import REPO

DROPPED = (5, 6, 7)  # windows of the gapped run that never reached the dashboard


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One week of 10-s windows (as the agent sends them); the last run loses three windows in the middle and its
    RunSummary; one run's device clock was never set (1970)."""
    path = tmp_path_factory.mktemp("fit") / "dash.db"
    msgs = list(generate_history(weeks=1, window_s=10.0, seed=7, step_records_last_runs=0))
    last_run = msgs[-1].run_id
    keep = [
        m for m in msgs
        if m.run_id != last_run or (isinstance(m, WindowSummary) and m.window_index not in DROPPED)
    ]  # fmt: skip
    clock = next(m for m in msgs if isinstance(m, RunSummary))
    unset = clock.model_copy(
        update={
            "run_id": "sim-1-unset-clock",
            "msg_id": "unset-clock-run-1",
            "stream_id": "unsetclock",
            "seq": 1,
            "started_at": 1000.0,
            "ended_at": 1000.0 + clock.duration_s,
        }
    )
    with Store(path) as store:
        store.insert_many([*keep, unset])
    yield path


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    with Store(db) as opened:
        yield opened


def _runs(store: Store) -> tuple[dict[str, Any], dict[str, Any]]:
    """(a complete run, the run with missing windows and no summary)."""
    runs = [r for r in store.list_runs(limit=100) if r["run_id"] != "sim-1-unset-clock"]
    gapped = runs[0]
    assert not gapped["complete"]
    return next(r for r in runs if r["complete"]), gapped


def export_cli(db: Path, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("footfall-dashboard")
    cmd = [exe] if exe else [sys.executable, "-m", "plugin.cli"]
    return subprocess.run([*cmd, "export", "--db", str(db), *args], capture_output=True, cwd=cwd, timeout=120)


def assert_matches_store(fit: DecodedFit, store: Store, run_id: str) -> None:
    """Every record holds the stored values of the window its second falls in; the session holds the run's."""
    run = store.run_row(run_id)
    windows = store.run_windows(run_id)
    assert run is not None and windows
    expected = [(s, w) for w in windows for s in range(math.ceil(w["t_start"]), math.ceil(w["t_end"]))]
    assert fit.count("record") == len(expected)
    for rec, (second, w) in zip(fit.records, expected, strict=True):
        assert unix(rec["timestamp"]) == second
        assert spm(rec) == pytest.approx(w["cadence_spm"], abs=SPM_TOL)
        assert rec["stance_time"] == pytest.approx(w["contact_ms"], abs=STANCE_MS_TOL)
        assert rec["stance_time_balance"] == pytest.approx(50.0 - w["asym_contact_pct"] / 4.0, abs=BALANCE_TOL)
        dev = fit.developer("record", rec)
        assert dev["valr"] == pytest.approx(w["valr_mean"], rel=FLOAT32_REL)
        assert dev["strike_index_left"] == pytest.approx(w["si_left"], rel=FLOAT32_REL)
        assert dev["strike_index_right"] == pytest.approx(w["si_right"], rel=FLOAT32_REL)
        zones = w["rearfoot"] + w["midfoot"] + w["forefoot"]
        assert dev["rearfoot_share"] == pytest.approx(100.0 * w["rearfoot"] / zones, rel=FLOAT32_REL)
        assert dev["forefoot_share"] == pytest.approx(100.0 * w["forefoot"] / zones, rel=FLOAT32_REL, abs=1e-6)
    session = fit.one("session")
    assert session["sport"] == "running" and fit.count("lap") == 1
    assert unix(session["start_time"]) == math.floor(run["started_at"])
    assert session["total_elapsed_time"] == pytest.approx(run["ended_at"] - run["started_at"], abs=1e-3)
    assert spm(session, "avg_") == pytest.approx(run["cadence_spm"], abs=SPM_TOL)
    assert session["avg_stance_time"] == pytest.approx(run["contact_ms"], abs=STANCE_MS_TOL)
    balance = stance_time_balance_pct(run["asym_contact_pct"])
    assert session["avg_stance_time_balance"] == pytest.approx(balance, abs=BALANCE_TOL)
    assert session["total_strides"] == round(run["steps"] / 2)
    assert fit.developer("session", session)["valr"] == pytest.approx(run["valr_mean"], rel=FLOAT32_REL)
    assert fit.one("file_id")["product_name"] == "footfall"
    assert {d["field_name"] for d in fit.messages["field_description_mesgs"]} >= {"valr", "strike_index_left"}


def test_cli_writes_the_run_as_fit(db: Path, store: Store, tmp_path: Path) -> None:
    complete, _ = _runs(store)
    out = tmp_path / "run.fit"
    r = export_cli(db, "--format", "fit", "--run", complete["run_id"], "--out", str(out))
    assert r.returncode == 0, r.stderr.decode()
    assert f"wrote {out} ({out.stat().st_size} bytes, {complete['windows'] * 10} records)" in r.stdout.decode()
    assert_matches_store(decode(out.read_bytes()), store, complete["run_id"])
    # default name in the current directory, and "-" for stdout: the same bytes
    r = export_cli(db, "--format", "fit", "--run", complete["run_id"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    assert (tmp_path / f"footfall-{complete['run_id']}.fit").read_bytes() == out.read_bytes()
    r = export_cli(db, "--format", "fit", "--run", complete["run_id"], "--out", "-")
    assert r.returncode == 0 and r.stdout == out.read_bytes()


def test_missing_windows_pause_the_timer(db: Path, store: Store, tmp_path: Path) -> None:
    """A run whose middle windows never arrived (and no RunSummary yet): no records and a stopped timer there."""
    _, gapped = _runs(store)
    out = tmp_path / "gapped.fit"
    assert export_cli(db, "--format", "fit", "--run", gapped["run_id"], "--out", str(out)).returncode == 0
    fit = decode(out.read_bytes())
    assert_matches_store(fit, store, gapped["run_id"])
    windows = store.run_windows(gapped["run_id"])
    before = next(w for w in windows if w["window_index"] == DROPPED[0] - 1)
    after = next(w for w in windows if w["window_index"] == DROPPED[-1] + 1)
    timer = [(e["event_type"], unix(e["timestamp"])) for e in fit.messages["event_mesgs"]]
    assert timer[1:3] == [("stop_all", math.ceil(before["t_end"])), ("start", math.ceil(after["t_start"]))]
    session = fit.one("session")
    pause = after["t_start"] - before["t_end"]
    assert session["total_timer_time"] == pytest.approx(session["total_elapsed_time"] - pause, abs=1e-3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "fit"], "--format fit needs --run"),
        (["--format", "csv", "--run", "x"], "--run is only for fit"),
        (["--format", "fit", "--run", "no-such-run"], "no run 'no-such-run'"),
        (["--format", "fit", "--run", "sim-1-unset-clock"], "outside the FIT time range"),
    ],
)
def test_cli_errors_name_the_problem(db: Path, args: list[str], message: str, tmp_path: Path) -> None:
    r = export_cli(db, *args, "--out", str(tmp_path / "x.fit"))
    assert r.returncode == 2 and message in r.stderr.decode() and b"Traceback" not in r.stderr
    assert not (tmp_path / "x.fit").exists()


async def _client(store: Store, **kw: Any) -> TestClient:
    client = TestClient(TestServer(create_app(DashboardContext(store=store, hub=EventHub(), health=health, **kw))))
    await client.start_server()
    return client


async def test_download_route(db: Path, store: Store, tmp_path: Path) -> None:
    complete, _ = _runs(store)
    run_id = complete["run_id"]
    client = await _client(store)
    try:
        resp = await client.get(f"/api/runs/{run_id}/fit")
        assert resp.status == 200 and resp.content_type == MIME_TYPE == "application/vnd.ant.fit"
        assert resp.headers["Content-Disposition"] == f'attachment; filename="footfall-{run_id}.fit"'
        assert resp.headers["Cache-Control"] == "no-store"
        body = await resp.read()
        assert_matches_store(decode(body), store, run_id)
        # the CLI writes the very same file
        out = tmp_path / "cli.fit"
        assert export_cli(db, "--format", "fit", "--run", run_id, "--out", str(out)).returncode == 0
        assert out.read_bytes() == body
        missing = await client.get("/api/runs/no-such-run/fit")
        assert missing.status == 404 and (await missing.json()) == {"error": "run 'no-such-run' not found"}
        clock = await client.get("/api/runs/sim-1-unset-clock/fit")
        assert clock.status == 422 and "device clock" in (await clock.json())["error"]
        assert (await client.get(f"/api/runs/{run_id}/fit?steps=rows")).status == 400
        page = await (await client.get(f"/runs/{run_id}")).text()
        assert f'href="/api/runs/{run_id}/fit" download' in page and "Download FIT" in page
    finally:
        await client.close()


async def test_download_needs_the_same_auth_as_the_api(store: Store) -> None:
    complete, _ = _runs(store)
    url = f"/api/runs/{complete['run_id']}/fit"
    client = await _client(store, listen_host="0.0.0.0", token=TOKEN)
    try:
        assert (await client.get(url)).status == 401
        assert (await client.get(url, headers={"Authorization": "Bearer wrong-token-xxxxxxxxxxx"})).status == 401
        ok = await client.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status == 200 and decode(await ok.read()).count("session") == 1
    finally:
        await client.close()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")
async def test_run_page_button_downloads_the_file(store: Store, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    complete, _ = _runs(store)
    client = await _client(store)
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            try:
                page = await browser.new_page(accept_downloads=True)
                await page.goto(str(client.make_url(f"/runs/{complete['run_id']}")))
                async with page.expect_download() as info:
                    await page.get_by_role("link", name="Download FIT").click()
                download = await info.value
                assert download.suggested_filename == f"footfall-{complete['run_id']}.fit"
                saved = tmp_path / download.suggested_filename
                await download.save_as(saved)
            finally:
                await browser.close()
    finally:
        await client.close()
    assert_matches_store(decode(saved.read_bytes()), store, complete["run_id"])


def test_cli_never_writes_the_binary_file_to_a_terminal(db: Path, store: Store) -> None:
    complete, _ = _runs(store)
    master, terminal = pty.openpty()
    try:
        exe = shutil.which("footfall-dashboard")
        cmd = [exe] if exe else [sys.executable, "-m", "plugin.cli"]
        args = ["export", "--db", str(db), "--format", "fit", "--run", complete["run_id"], "--out", "-"]
        r = subprocess.run([*cmd, *args], stdout=terminal, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(terminal)
        os.close(master)
    assert r.returncode == 2 and b"a FIT file is binary" in r.stderr
