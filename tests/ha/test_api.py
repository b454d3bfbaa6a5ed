"""The client's pieces that need no server: the event-stream grammar and URL normalisation; and the runner-name
guard of the statistics import between two real dashboards."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant

from custom_components.footfall.api import EventStreamParser, LiveEvent, normalize_url
from tests.ha.common import REPO, Dashboard, project_python, setup_entry


def parse(text: str) -> list[LiveEvent]:
    parser = EventStreamParser()
    events = [parser.feed_line(line) for line in text.splitlines(keepends=True)]
    return [e for e in events if e is not None]


def test_event_stream_grammar() -> None:
    stream = (
        "retry: 3000\n: footfall live stream\n\n"  # hello: a comment only, no event
        'id: 7\nevent: alert\ndata: {"alert_id": "a1",\ndata:  "rule": "loading_spike"}\n\n'  # data joined by \n
        ": heartbeat\r\n\r\n"
        'event: run\r\ndata:{"run_id": "r1"}\r\n\r\n'  # CRLF, no space after the colon
        "event: summary\ndata: not json\n\n"  # not one of ours: skipped
        'data: {"x": 1}\n\n'  # no event name: "message"
        'event: live\ndata: {"cut": '  # an unfinished event at the end is not dispatched
    )
    assert parse(stream) == [
        LiveEvent("alert", {"alert_id": "a1", "rule": "loading_spike"}, "7"),
        LiveEvent("run", {"run_id": "r1"}, "7"),  # the last event id carries over, as the grammar says
        LiveEvent("message", {"x": 1}, "7"),
    ]


@pytest.mark.parametrize(
    ("raw", "url"),
    [("192.168.1.5:8765", "http://192.168.1.5:8765"), ("http://Dash.LAN:8765/", "http://dash.lan:8765"),
     ("https://proxy.example/footfall/", "https://proxy.example/footfall"), ("[::1]:8765", "http://[::1]:8765")],
)  # fmt: skip
def test_normalize_url(raw: str, url: str) -> None:
    assert normalize_url(raw) == url


@pytest.mark.parametrize("raw", ["", "ftp://x", "http://u:p@x", "http://x/?a=1", "http://x:70000", "http://"])
def test_normalize_url_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_url(raw)


async def test_a_runner_name_is_imported_from_one_dashboard_only(
    hass: HomeAssistant, dashboard: Dashboard, broker_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Another dashboard (its own database, so its own instance id) with a runner of the same name, "alex".
    other_db = tmp_path / "other" / "footfall.db"
    other_db.parent.mkdir()
    subprocess.run([project_python(), "-m", "plugin.cli", "seed-history", "--db", str(other_db), "--weeks", "2",
                    "--seed", "9"], cwd=REPO, check=True, capture_output=True)  # fmt: skip
    other = Dashboard(other_db.parent, other_db, broker_url).start()
    try:
        first = await setup_entry(hass, dashboard)
        second = await setup_entry(hass, other)
        assert other.instance_id != dashboard.instance_id
        await first.runtime_data.statistics.async_import()
        result = await second.runtime_data.statistics.async_import()
        assert result["runs_changed"] > 0 and result["runs_imported"] == 0 and result["windows"] == 0
        assert "already imported from another footfall dashboard" in caplog.text
        # Unloading the first hands the name over.
        assert await hass.config_entries.async_unload(first.entry_id)
        result = await second.runtime_data.statistics.async_import()
        assert result["runs_imported"] == result["runs_changed"] > 0 and result["windows"] > 0
    finally:
        other.stop()
