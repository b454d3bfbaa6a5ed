"""Insole sources, selected by a discriminated config (``type``), Frigate style.

``SourceConfig`` is the union of every source's config model; ``create_source(cfg, profile)`` builds
the matching :class:`InsoleSource`. Importing this package never imports a hardware library: bleak,
pyserial-asyncio, spidev and smbus2 are imported by their source when it is created, with an error
naming the pip extra when missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from edge_agent.profiles import HardwareProfile
from edge_agent.sources.adc import AdcSourceConfig
from edge_agent.sources.base import (
    FrameBatch,
    InsoleSource,
    MissingExtraError,
    SourceConfigBase,
    SourceError,
)
from edge_agent.sources.ble import BleSourceConfig
from edge_agent.sources.replay import ReplaySourceConfig
from edge_agent.sources.serial import SerialSourceConfig
from edge_agent.sources.simulator import SimulatorSourceConfig

SourceConfig = Annotated[
    SimulatorSourceConfig | ReplaySourceConfig | SerialSourceConfig | BleSourceConfig | AdcSourceConfig,
    Field(discriminator="type"),
]


def _simulator(cfg: Any, profile: HardwareProfile) -> InsoleSource:
    from edge_agent.sources.simulator import SimulatorSource

    return SimulatorSource(cfg, profile)


def _replay(cfg: Any, profile: HardwareProfile) -> InsoleSource:
    from edge_agent.sources.replay import ReplaySource

    return ReplaySource(cfg, profile)


def _serial(cfg: Any, profile: HardwareProfile) -> InsoleSource:
    from edge_agent.sources.serial import SerialSource

    return SerialSource(cfg, profile)


def _ble(cfg: Any, profile: HardwareProfile) -> InsoleSource:
    from edge_agent.sources.ble import BleSource

    return BleSource(cfg, profile)


def _adc(cfg: Any, profile: HardwareProfile) -> InsoleSource:
    from edge_agent.sources.adc import AdcSource

    return AdcSource(cfg, profile)


#: ``type`` → (config model, factory). New sources register here.
REGISTRY: dict[str, tuple[type[SourceConfigBase], Callable[[Any, HardwareProfile], InsoleSource]]] = {
    "simulator": (SimulatorSourceConfig, _simulator),
    "replay": (ReplaySourceConfig, _replay),
    "serial": (SerialSourceConfig, _serial),
    "ble": (BleSourceConfig, _ble),
    "adc": (AdcSourceConfig, _adc),
}

_ADAPTER: TypeAdapter[Any] = TypeAdapter(SourceConfig)


def parse_source_config(
    data: Any,
) -> SimulatorSourceConfig | ReplaySourceConfig | SerialSourceConfig | BleSourceConfig | AdcSourceConfig:
    """Validate a mapping (e.g. the ``source:`` block of the agent's YAML) into the right config model."""
    return _ADAPTER.validate_python(data)


def create_source(cfg: Any, profile: HardwareProfile) -> InsoleSource:
    """The source for ``cfg`` (a config model, or a mapping with ``type``)."""
    if isinstance(cfg, dict):
        cfg = parse_source_config(cfg)
    entry = REGISTRY.get(getattr(cfg, "type", None))  # type: ignore[arg-type]
    if entry is None:
        raise SourceError(f"unknown source type {getattr(cfg, 'type', cfg)!r} (known: {', '.join(REGISTRY)})")
    model, factory = entry
    if not isinstance(cfg, model):
        raise SourceError(f"source type {cfg.type!r} needs a {model.__name__}, got {type(cfg).__name__}")
    return factory(cfg, profile)


__all__ = [
    "REGISTRY",
    "AdcSourceConfig",
    "BleSourceConfig",
    "FrameBatch",
    "InsoleSource",
    "MissingExtraError",
    "ReplaySourceConfig",
    "SerialSourceConfig",
    "SimulatorSourceConfig",
    "SourceConfig",
    "SourceError",
    "create_source",
    "parse_source_config",
]
