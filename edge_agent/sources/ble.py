"""Bluetooth LE insoles via bleak: scan, connect both insoles, subscribe to their notify characteristics.

Each insole is found by address (config), else by its advertised name (config or profile), else by the
profile's service UUID (first two devices advertising it: the first is taken as left — set names or
addresses for a reliable assignment). Notifications carry one or more frames in the profile's
``transport.frame`` layout, parsed by the same :class:`~edge_agent.sources.frames.FrameParser` as serial.
Timing is as for serial (device timestamps aligned per insole with a min-delay filter; otherwise
back-dated from arrival). A lost insole is reconnected with jittered exponential backoff; the loss and
the recovery are logged once each. Needs ``pip install 'footfall[ble]'``; it cannot be tested here
without hardware — its packet handling (:class:`BlePacketHandler`) is tested with real bytes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from pydantic import Field

from edge_agent.profiles import BleTransport, FrameFormat, HardwareProfile
from edge_agent.sources.base import (
    FrameBatch,
    OnceLogger,
    QueueSource,
    Side,
    SourceConfigBase,
    SourceError,
    backoff_delays,
    both_sides,
    monotonic,
    require,
)
from edge_agent.sources.frames import FrameAssembler, FrameParser, merge_batches

log = logging.getLogger(__name__)


class BleSourceConfig(SourceConfigBase):
    """Two BLE insoles (or one)."""

    type: Literal["ble"] = Field("ble", title="Source type", description="Bluetooth LE insoles.")
    left_address: str | None = Field(None, title="Left insole address", description="MAC (Linux) or UUID (macOS).")
    right_address: str | None = Field(None, title="Right insole address", description="MAC (Linux) or UUID (macOS).")
    left_name: str | None = Field(None, title="Left insole name", description="Overrides the profile's name.")
    right_name: str | None = Field(None, title="Right insole name", description="Overrides the profile's name.")
    sides: list[Literal["left", "right"]] = Field(
        default_factory=both_sides,
        min_length=1,
        title="Insoles to use",
        description="Connect only these (e.g. one insole for a test).",
    )
    scan_timeout_s: float = Field(10.0, gt=0, title="Scan timeout (s)", description="Per scan attempt.")
    reconnect_max_s: float = Field(
        30.0, gt=0, title="Longest reconnect wait (s)", description="Cap of the jittered exponential backoff."
    )


class BlePacketHandler:
    """Notification payloads of one insole → FrameBatches (no bleak needed: testable with real bytes)."""

    def __init__(self, fmt: FrameFormat, n_sensors: int, side: Side, sample_rate_hz: float) -> None:
        self.side = side
        self.parser = FrameParser(fmt, n_sensors, default_side=0 if side == "left" else 1)
        self.assembler = FrameAssembler(self.parser, sample_rate_hz)
        self._pending: list[FrameBatch] = []
        self.wrong_side = 0

    def handle(self, data: bytes | bytearray, arrival: float) -> None:
        """One notification (call from bleak's callback)."""
        parsed = self.parser.feed(bytes(data))
        for b in self.assembler.batches(parsed, arrival):
            if b.side != self.side and len(b):
                self.wrong_side += len(b)  # a side byte contradicting the insole it came from
                b = FrameBatch(side=self.side, t=b.t[:0], raw=b.raw[:0], corrupt=b.corrupt + len(b))
            self._pending.append(b)

    def flush(self) -> list[FrameBatch]:
        """Everything received since the last flush, one batch per foot."""
        out, self._pending = merge_batches(self._pending), []
        return out


class BleSource(QueueSource):
    name = "ble"

    def __init__(self, cfg: BleSourceConfig, profile: HardwareProfile) -> None:
        super().__init__(profile)
        if not isinstance(profile.transport, BleTransport):
            raise SourceError(
                f"ble source: profile {profile.name!r} has a {profile.transport.type!r} transport, not 'ble'"
            )
        self.bleak: Any = require("bleak", "ble", "ble")
        self.cfg = cfg
        self.transport = profile.transport
        self.handlers = {
            s: BlePacketHandler(self.transport.frame, profile.n_sensors, s, profile.sample_rate_hz) for s in cfg.sides
        }
        self._claimed: set[str] = set()

    async def open(self) -> None:
        for side in self.cfg.sides:
            self._tasks.append(asyncio.create_task(self._keep_connected(side), name=f"ble:{side}"))
        self._tasks.append(asyncio.create_task(self._flusher(), name="ble:flush"))

    async def _flusher(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.cfg.batch_ms / 1000.0)
            for h in self.handlers.values():
                for b in h.flush():
                    self._emit(b)

    def _match(self, side: Side) -> Any:
        addr = self.cfg.left_address if side == "left" else self.cfg.right_address
        name = (self.cfg.left_name if side == "left" else self.cfg.right_name) or (
            self.transport.left_name if side == "left" else self.transport.right_name
        )
        service = self.transport.service_uuid.lower()

        def match(device: Any, adv: Any) -> bool:
            if device.address in self._claimed:
                return False
            if addr:
                return bool(device.address.lower() == addr.lower())
            if name:
                return name in (device.name, getattr(adv, "local_name", None))
            return service in [u.lower() for u in (getattr(adv, "service_uuids", None) or [])]

        return match

    async def _keep_connected(self, side: Side) -> None:
        handler = self.handlers[side]
        char = self.transport.left_characteristic_uuid if side == "left" else self.transport.right_characteristic_uuid
        avail = OnceLogger(log, f"{side} BLE insole")
        ever = False
        delays = backoff_delays(0.5, self.cfg.reconnect_max_s)
        while not self._closed:
            disconnected = asyncio.Event()
            client = None
            try:
                device = await self.bleak.BleakScanner.find_device_by_filter(
                    self._match(side), timeout=self.cfg.scan_timeout_s
                )
                if device is None:
                    raise SourceError("not found while scanning")
                client = self.bleak.BleakClient(device, disconnected_callback=lambda _c, ev=disconnected: ev.set())
                await client.connect()
                await client.start_notify(char, lambda _s, data: handler.handle(data, monotonic()))
                self._claimed.add(device.address)
            except Exception as err:  # bleak raises BleakError, OSError, TimeoutError…
                avail.lost(f"{type(err).__name__}: {err}")
                if client is not None:
                    await _quiet_disconnect(client)
                await asyncio.sleep(next(delays))
                continue
            if ever:
                self._stats["reconnects"] += 1
            ever = True
            avail.back()
            delays = backoff_delays(0.5, self.cfg.reconnect_max_s)
            try:
                await disconnected.wait()
            finally:
                self._claimed.discard(device.address)
                if self._closed:
                    await _quiet_disconnect(client)
            avail.lost("disconnected")


async def _quiet_disconnect(client: Any) -> None:
    try:
        await client.disconnect()
    except Exception as err:  # already gone
        log.debug("BLE disconnect: %s", err)
