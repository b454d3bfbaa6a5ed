"""Long-term statistics: every run's per-window measures, as hourly external statistics per runner.

Home Assistant's long-term statistics hold one row per statistic and clock hour (start at minute 0, UTC). For
each runner and measure this module writes the hour's mean, minimum and maximum over the windows (10 s by
default) that **started** in that hour, timed by the run's own clock (the window's ``t_start``), through
``recorder.async_add_external_statistics`` (statistic ids ``footfall:<runner>_<measure>``, ``mean_type``
arithmetic). Statistics graphs then show months of form history — the recorder keeps them forever, unlike
the 10 days of state history.

Pooling within an hour follows the dashboard's trend pages (plugin/trends.py): VALR and its p90 weighted by
the steps with a loading rate, contact time by the steps with a contact time, cadence by window duration,
the contact-time asymmetry by steps, the forefoot share as forefoot strikes / all classified strikes. The
minimum and maximum are those of the windows' values.

**Two runs in one hour share a bucket.** A run from 07:10 to 07:30 and another from 07:40 to 08:20 both write
07:00. So an hour is never computed from one run: when a run is new or has changed, every hour it touches is
recomputed from *all* of that runner's windows starting in that hour (``GET /api/windows``), and the row is
replaced. The result depends only on the windows, so importing again — after a restart, from the re-sync
button, or when a late window arrives — writes identical rows (idempotent). Which runs were imported (with
their ``updated_at`` and window count) is kept in ``.storage/footfall.<entry id>.statistics``; only new or
changed runs cost requests. Hours whose windows the dashboard has deleted (retention) are left as imported.

Runs without a runner name are not imported (statistics are per runner). A runner name is imported by one
config entry only: a second dashboard with a runner of the same name is skipped with a warning instead of
overwriting the first one's hours.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from homeassistant.components.recorder.models import StatisticData, StatisticMeanType, StatisticMetaData
from homeassistant.components.recorder.statistics import async_add_external_statistics
from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import slugify

from .api import FootfallClient
from .const import DOMAIN, LOGGER

HOUR = 3600
STORAGE_VERSION = 1
#: Home Assistant 2025.11 added ``unit_class`` to the metadata (required from 2026.11); 2025.4 rejects the key.
_HAS_UNIT_CLASS = "unit_class" in StatisticMetaData.__annotations__

Window = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class StatisticDescription:
    """One imported measure: how to read a window's value and its pooling weight."""

    key: str
    name: str
    unit: str
    value_fn: Callable[[Window], float | None]
    weight_fn: Callable[[Window], float]


def _zones(w: Window) -> int:
    return int(w.get("rearfoot") or 0) + int(w.get("midfoot") or 0) + int(w.get("forefoot") or 0)


STATISTICS: tuple[StatisticDescription, ...] = (
    StatisticDescription(key="valr", name="loading rate (VALR)", unit="BW/s",
                         value_fn=lambda w: w.get("valr_mean"), weight_fn=lambda w: w.get("valr_n") or 0),
    StatisticDescription(key="valr_p90", name="loading rate p90", unit="BW/s",
                         value_fn=lambda w: w.get("valr_p90"), weight_fn=lambda w: w.get("valr_n") or 0),
    StatisticDescription(key="cadence", name="cadence", unit="spm", value_fn=lambda w: w.get("cadence_spm"),
                         weight_fn=lambda w: max(0.0, (w.get("t_end") or 0.0) - (w.get("t_start") or 0.0))),
    StatisticDescription(key="contact_time", name="contact time", unit="ms",
                         value_fn=lambda w: w.get("contact_ms"), weight_fn=lambda w: w.get("contact_n") or 0),
    StatisticDescription(key="forefoot_share", name="forefoot strikes", unit="%",
                         value_fn=lambda w: 100.0 * (w.get("forefoot") or 0) / _zones(w) if _zones(w) else None,
                         weight_fn=_zones),
    StatisticDescription(key="contact_asymmetry", name="contact-time asymmetry", unit="%",
                         value_fn=lambda w: w.get("asym_contact_pct"), weight_fn=lambda w: w.get("steps") or 0),
)  # fmt: skip


def storage_key(entry_id: str) -> str:
    """The importer's bookkeeping file in ``.storage``."""
    return f"{DOMAIN}.{entry_id}.statistics"


def statistic_id(runner: str, key: str) -> str:
    return f"{DOMAIN}:{slugify(runner)}_{key}"


def metadata(runner: str, desc: StatisticDescription) -> StatisticMetaData:
    meta: dict[str, Any] = {
        "source": DOMAIN, "statistic_id": statistic_id(runner, desc.key), "name": f"{runner} {desc.name}",
        "unit_of_measurement": desc.unit, "mean_type": StatisticMeanType.ARITHMETIC, "has_sum": False,
    }  # fmt: skip
    if _HAS_UNIT_CLASS:
        meta["unit_class"] = None  # footfall's units (BW/s, spm, ms, %) are not converted
    return meta  # type: ignore[return-value]


def hourly(windows: Iterable[Window], desc: StatisticDescription) -> list[StatisticData]:
    """Mean/min/max per clock hour of the windows' start, for the windows that have a value and a weight."""
    buckets: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for w in windows:
        value, weight = desc.value_fn(w), desc.weight_fn(w)
        if value is None or not math.isfinite(value) or weight <= 0:
            continue
        buckets[int(w["t_start"] // HOUR) * HOUR].append((float(value), float(weight)))
    rows: list[StatisticData] = []
    for start, pairs in sorted(buckets.items()):
        total = sum(wt for _, wt in pairs)
        rows.append({
            "start": datetime.fromtimestamp(start, UTC), "mean": sum(v * wt for v, wt in pairs) / total,
            "min": min(v for v, _ in pairs), "max": max(v for v, _ in pairs),
        })  # fmt: skip
    return rows


def hour_ranges(runs: Iterable[dict[str, Any]]) -> list[tuple[int, int]]:
    """Contiguous [start, end) ranges (Unix seconds, whole hours) covering every hour the runs touch."""
    hours = sorted({h for r in runs for h in range(int(r["started_at"] // HOUR), int(r["ended_at"] // HOUR) + 1)})
    ranges: list[tuple[int, int]] = []
    for h in hours:
        if ranges and ranges[-1][1] == h * HOUR:
            ranges[-1] = (ranges[-1][0], (h + 1) * HOUR)
        else:
            ranges.append((h * HOUR, (h + 1) * HOUR))
    return ranges


class StatisticsImporter:
    """Imports new or changed runs' hours; safe to call as often as wanted (one import at a time)."""

    def __init__(self, hass: HomeAssistant, entry_id: str, client: FootfallClient) -> None:
        self.hass = hass
        self.entry_id = entry_id
        self.client = client
        self.store: Store[dict[str, Any]] = Store(hass, STORAGE_VERSION, storage_key(entry_id))
        self.imported: dict[str, list[Any]] = {}  # run id → [updated_at, windows] when imported
        self.last_result: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self._skipped_runners: set[str] = set()

    async def async_load(self) -> None:
        data = await self.store.async_load() or {}
        self.imported = dict(data.get("runs", {}))

    def _owns(self, runner: str) -> bool:
        owners: dict[str, str] = self.hass.data.setdefault(DOMAIN, {}).setdefault("statistics_owners", {})
        owner = owners.setdefault(slugify(runner), self.entry_id)
        if owner != self.entry_id and runner not in self._skipped_runners:
            self._skipped_runners.add(runner)
            LOGGER.warning("Runner %r's statistics are already imported from another footfall dashboard; "
                           "not importing them from %s", runner, self.client.url)  # fmt: skip
        return owner == self.entry_id

    def release(self) -> None:
        """Give up this entry's runner names (the entry is unloaded)."""
        owners: dict[str, str] = self.hass.data.get(DOMAIN, {}).get("statistics_owners", {})
        for slug in [s for s, e in owners.items() if e == self.entry_id]:
            del owners[slug]

    async def async_import(self, *, full: bool = False) -> dict[str, Any]:
        """Import the hours of every new or changed run (``full``: of every run). Returns what was done."""
        async with self._lock:
            runs = [r for r in await self.client.runs() if r.get("runner")]
            changed = [r for r in runs if full or self.imported.get(r["run_id"]) != [r["updated_at"], r["windows"]]]
            by_runner: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for r in changed:
                by_runner[r["runner"]].append(r)
            hours = windows = done = 0
            for runner, runner_runs in by_runner.items():
                if not self._owns(runner):
                    continue
                fetched: list[Window] = []
                for since, until in hour_ranges(runner_runs):
                    fetched.extend(await self.client.windows(runner, since, until))
                windows += len(fetched)
                for desc in STATISTICS:
                    rows = hourly(fetched, desc)
                    if rows:
                        async_add_external_statistics(self.hass, metadata(runner, desc), rows)
                        hours = max(hours, len(rows))
                for r in runner_runs:
                    self.imported[r["run_id"]] = [r["updated_at"], r["windows"]]
                done += len(runner_runs)
            if done:
                await self.store.async_save({"runs": self.imported})
            self.last_result = {"runs_total": len(runs), "runs_changed": len(changed), "runs_imported": done,
                                "windows": windows, "hours": hours, "full": full}  # fmt: skip
            if done:
                LOGGER.debug("Imported statistics of %d run(s): %s", done, self.last_result)
            return self.last_result
