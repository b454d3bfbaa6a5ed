"""Long-term statistics: every run's windows as hourly mean/min/max per runner, idempotent, shared hours right."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from homeassistant.components.recorder import get_instance
from homeassistant.components.recorder.statistics import list_statistic_ids, statistics_during_period
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.components.recorder.common import async_wait_recording_done

from tests.ha.common import Dashboard, setup_entry

IDS = {f"footfall:alex_{k}" for k in ("valr", "valr_p90", "cadence", "contact_time", "forefoot_share",
                                      "contact_asymmetry")}  # fmt: skip


def reference_hours(windows: list[dict[str, Any]], value: str, weight: str) -> dict[float, tuple[float, float, float]]:
    """Naive hourly (mean, min, max) of ``value`` weighted by ``weight`` over windows by the hour of t_start."""
    buckets: dict[float, list[tuple[float, float]]] = defaultdict(list)
    for w in windows:
        if w[value] is not None and (w[weight] or 0) > 0:
            buckets[math.floor(w["t_start"] / 3600) * 3600.0].append((w[value], w[weight]))
    return {h: (sum(v * n for v, n in p) / sum(n for _, n in p), min(v for v, _ in p), max(v for v, _ in p))
            for h, p in buckets.items()}  # fmt: skip


async def read(hass: HomeAssistant, since: float, ids: set[str] = IDS) -> dict[str, list[dict[str, Any]]]:
    await async_wait_recording_done(hass)
    return await get_instance(hass).async_add_executor_job(
        statistics_during_period, hass, datetime.fromtimestamp(since, UTC), None, ids, "hour", None,
        {"mean", "min", "max"},
    )  # fmt: skip


async def imported(hass: HomeAssistant, entry: Any, *, full: bool = False) -> dict[str, Any]:
    result = await entry.runtime_data.statistics.async_import(full=full)
    await async_wait_recording_done(hass)
    return result


async def test_every_run_is_imported_as_hourly_statistics(hass: HomeAssistant, dashboard: Dashboard) -> None:
    entry = await setup_entry(hass, dashboard)
    first = await imported(hass, entry)
    runs = dashboard.get("/api/runs?limit=1000")["runs"]
    # The import started by the setup may have come first; together they covered every run.
    assert len(entry.runtime_data.statistics.imported) == len(runs) == first["runs_total"]
    listed = await get_instance(hass).async_add_executor_job(list_statistic_ids, hass, None, "mean")
    meta = {m["statistic_id"]: m for m in listed if m["source"] == "footfall"}
    assert set(meta) == IDS
    assert meta["footfall:alex_valr"]["statistics_unit_of_measurement"] == "BW/s"
    assert meta["footfall:alex_valr"]["mean_type"] == 1 and meta["footfall:alex_valr"]["has_sum"] is False  # arithmetic
    assert meta["footfall:alex_valr"]["name"] == "alex loading rate (VALR)"
    since = min(r["started_at"] for r in runs) - 3600
    windows = dashboard.windows("alex", since, time.time())
    stats = await read(hass, since)
    for sid, value, weight in (("footfall:alex_valr", "valr_mean", "valr_n"),
                               ("footfall:alex_contact_time", "contact_ms", "contact_n"),
                               ("footfall:alex_contact_asymmetry", "asym_contact_pct", "steps")):  # fmt: skip
        want = reference_hours(windows, value, weight)
        got = {row["start"]: (row["mean"], row["min"], row["max"]) for row in stats[sid]}
        assert set(got) == set(want), sid  # one row per hour that has windows, at the run's own (device) times
        for hour, (mean, lo, hi) in want.items():
            assert got[hour] == pytest.approx((mean, lo, hi), rel=1e-9), (sid, hour)
    # Months of history: the seeded six weeks are all there.
    assert (max(stats["footfall:alex_valr"], key=lambda r: r["start"])["start"]
            - min(stats["footfall:alex_valr"], key=lambda r: r["start"])["start"]) > 30 * 86400  # fmt: skip


async def test_reimport_is_idempotent(hass: HomeAssistant, dashboard: Dashboard) -> None:
    entry = await setup_entry(hass, dashboard)
    await imported(hass, entry)
    since = time.time() - 60 * 86400
    before = await read(hass, since)
    again = await imported(hass, entry)
    assert again["runs_imported"] == 0  # nothing changed: nothing fetched
    full = await imported(hass, entry, full=True)
    assert full["runs_imported"] == full["runs_total"] > 20
    assert await read(hass, since) == before  # same rows, none added
    # The re-sync button does a full import too, with the same result.
    await hass.services.async_call("button", "press", {"entity_id": "button.footfall_re_sync"}, blocking=True)
    assert await read(hass, since) == before


async def test_two_runs_in_one_hour_share_its_bucket(hass: HomeAssistant, dashboard: Dashboard) -> None:
    entry = await setup_entry(hass, dashboard)
    await imported(hass, entry)
    hour = math.floor((time.time() - 5 * 3600) / 3600) * 3600.0
    assert dashboard.windows("alex", hour, hour + 3600) == []  # an hour without seeded running
    importer = entry.runtime_data.statistics
    first = await hass.async_add_executor_job(dashboard.publish_run, hour + 5 * 60, 10, 31)
    await imported(hass, entry)
    assert first["run_id"] in importer.imported
    # The second run alone is new: its hour is recomputed from both runs' windows.
    second = await hass.async_add_executor_job(dashboard.publish_run, hour + 35 * 60, 10, 32)
    await imported(hass, entry)
    assert second["run_id"] in importer.imported
    windows = dashboard.windows("alex", hour, hour + 3600)
    assert len({w["run_id"] for w in windows}) == 2 and len(windows) == 20
    stats = await read(hass, hour - 3600)
    row = next(r for r in stats["footfall:alex_valr"] if r["start"] == hour)
    mean, lo, hi = reference_hours(windows, "valr_mean", "valr_n")[hour]
    assert (row["mean"], row["min"], row["max"]) == pytest.approx((mean, lo, hi), rel=1e-9)
    first_run_only = reference_hours([w for w in windows if w["t_start"] < hour + 30 * 60], "valr_mean", "valr_n")
    assert row["mean"] != pytest.approx(first_run_only[hour][0], rel=1e-9)  # the second run really counts
    cadence = next(r for r in stats["footfall:alex_cadence"] if r["start"] == hour)
    assert cadence["mean"] == pytest.approx(
        reference_hours([{**w, "duration": w["t_end"] - w["t_start"]} for w in windows], "cadence_spm", "duration")[
            hour
        ][0]
    )
    # And importing both again changes nothing.
    before = await read(hass, hour - 3600)
    await imported(hass, entry, full=True)
    assert await read(hass, hour - 3600) == before
