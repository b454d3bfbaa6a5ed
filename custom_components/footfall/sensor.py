"""Sensors: each runner's figures (from ``GET /api/summary``) and each insole device's last contact.

Entities are data: one :class:`RunnerSensorDescription` per sensor, reading the runner's part of the summary
with ``value_fn``. A figure the dashboard adds later is one more entry here (plus its name in strings.json) —
e.g. the training program's stage and target once the summary carries a ``program`` object::

    RunnerSensorDescription(key="program_stage", translation_key="program_stage",
                            value_fn=lambda r: (r.get("program") or {}).get("stage")),
    RunnerSensorDescription(key="program_target", translation_key="program_target",
                            value_fn=lambda r: (r.get("program") or {}).get("target")),

The 7- and 28-day figures pool the runs that started in the 7 (28) days before the dashboard's "now";
without a run in that period they are *unknown*, never 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.typing import StateType

from . import FootfallConfigEntry
from .const import RISK_LEVELS
from .entity import FootfallEntity, async_add_new

PARALLEL_UPDATES = 0  # the coordinator fetches; entities only read

Figure = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class RunnerSensorDescription(SensorEntityDescription):
    value_fn: Callable[[Figure], StateType | datetime]
    attributes_fn: Callable[[Figure], dict[str, Any]] | None = None


@dataclass(frozen=True, kw_only=True)
class DeviceSensorDescription(SensorEntityDescription):
    value_fn: Callable[[Figure], StateType | datetime]


def _period(period: str, key: str) -> Callable[[Figure], StateType]:
    return lambda r: (r.get(period) or {}).get(key)


def _zone(period: str, zone: str) -> Callable[[Figure], StateType]:
    return lambda r: ((r.get(period) or {}).get("zone_share_pct") or {}).get(zone)


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else None


def _measure(key: str, value_fn: Callable[[Figure], StateType], unit: str | None, precision: int,
             **kw: Any) -> RunnerSensorDescription:  # fmt: skip
    return RunnerSensorDescription(key=key, translation_key=key, native_unit_of_measurement=unit,
                                   state_class=SensorStateClass.MEASUREMENT, suggested_display_precision=precision,
                                   value_fn=value_fn, **kw)  # fmt: skip


W7, W28 = "last_7_days", "last_28_days"
MS, MIN = UnitOfTime.MILLISECONDS, UnitOfTime.MINUTES
DURATION = {"device_class": SensorDeviceClass.DURATION}

RUNNER_SENSORS: tuple[RunnerSensorDescription, ...] = (
    _measure("valr_7d", _period(W7, "valr_mean"), "BW/s", 1),
    _measure("valr_28d", _period(W28, "valr_mean"), "BW/s", 1),
    _measure("valr_p90_7d", _period(W7, "valr_p90"), "BW/s", 1),
    _measure("cadence_7d", _period(W7, "cadence_spm"), "spm", 0),
    _measure("cadence_28d", _period(W28, "cadence_spm"), "spm", 0),
    _measure("contact_time_7d", _period(W7, "contact_ms"), MS, 0, **DURATION),
    _measure("contact_time_28d", _period(W28, "contact_ms"), MS, 0, **DURATION),
    _measure("rearfoot_share_7d", _zone(W7, "rearfoot"), PERCENTAGE, 1),
    _measure("midfoot_share_7d", _zone(W7, "midfoot"), PERCENTAGE, 1),
    _measure("forefoot_share_7d", _zone(W7, "forefoot"), PERCENTAGE, 1),
    _measure("forefoot_share_28d", _zone(W28, "forefoot"), PERCENTAGE, 1),
    _measure("contact_asymmetry_7d", _period(W7, "asymmetry_contact_pct"), PERCENTAGE, 1),
    _measure("valr_asymmetry_7d", _period(W7, "asymmetry_valr_pct"), PERCENTAGE, 1),
    _measure("runs_7d", _period(W7, "runs"), None, 0),
    _measure("steps_7d", _period(W7, "steps"), "steps", 0),
    _measure("running_time_7d", _period(W7, "load_min"), MIN, 0, **DURATION),
    _measure("acute_load", lambda r: (r.get("training_load") or {}).get("acute"), "min/d", 1),
    _measure("chronic_load", lambda r: (r.get("training_load") or {}).get("chronic"), "min/d", 1),
    _measure("acwr", lambda r: (r.get("training_load") or {}).get("acwr"), None, 2),
    _measure("open_alerts", lambda r: r.get("open_alerts"), None, 0),
    RunnerSensorDescription(
        key="risk_level", translation_key="risk_level", device_class=SensorDeviceClass.ENUM, options=RISK_LEVELS,
        value_fn=lambda r: (r.get("risk") or {}).get("level", "unknown"),
        attributes_fn=lambda r: {"reasons": list((r.get("risk") or {}).get("reasons", []))},
    ),
    RunnerSensorDescription(
        key="last_run", translation_key="last_run", device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda r: _timestamp((r.get("last_run") or {}).get("ended_at")),
        attributes_fn=lambda r: {k: (r.get("last_run") or {}).get(k) for k in ("run_id", "device_id", "steps")},
    ),
)  # fmt: skip

DEVICE_SENSORS: tuple[DeviceSensorDescription, ...] = (
    DeviceSensorDescription(key="last_seen", translation_key="last_seen", device_class=SensorDeviceClass.TIMESTAMP,
                            value_fn=lambda d: _timestamp(d.get("last_seen"))),
    DeviceSensorDescription(key="runs", translation_key="runs", state_class=SensorStateClass.TOTAL_INCREASING,
                            value_fn=lambda d: d.get("runs")),
)  # fmt: skip


async def async_setup_entry(hass: HomeAssistant, entry: FootfallConfigEntry, add: AddEntitiesCallback) -> None:
    coordinator = entry.runtime_data.coordinator

    def make(kind: str, key: str) -> list[Entity]:
        if kind == "runner":
            return [FootfallSensor(coordinator, d, kind, key) for d in RUNNER_SENSORS]
        return [FootfallSensor(coordinator, d, kind, key) for d in DEVICE_SENSORS]

    entry.async_on_unload(async_add_new(coordinator, add, make))


class FootfallSensor(FootfallEntity, SensorEntity):
    entity_description: RunnerSensorDescription | DeviceSensorDescription

    @property
    def native_value(self) -> StateType | datetime:
        item = self.item
        return None if item is None else self.entity_description.value_fn(item)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        fn = getattr(self.entity_description, "attributes_fn", None)
        item = self.item
        return None if fn is None or item is None else fn(item)
