"""Serial insoles (USB-CDC / UART, e.g. the DIY ESP32 boards) via pyserial-asyncio.

Frames follow the profile's ``transport.frame`` (see :mod:`edge_agent.sources.frames`). Both feet may
share one port (the frame's side byte says which) or use two ports (``port`` = left, ``right_port``
= right, no side byte needed). Timing: with a device timestamp in the frame, each foot's clock is
mapped onto the agent's clock by :class:`~edge_agent.sources.align.ClockAligner`; without one, the
frame counter (unwrapped, × the nominal sample period) serves as the device clock — so lost frames
leave a gap in time instead of squeezing the rest; without either, the frames of a read are
back-dated from their arrival by the nominal sample period.

A port that disappears (unplugged, board reset) is reopened with jittered exponential backoff; the
loss and the recovery are logged once each, and counted in ``stats["reconnects"]``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from pydantic import Field

from edge_agent.profiles import HardwareProfile, SerialTransport
from edge_agent.sources.base import (
    FrameBatch,
    OnceLogger,
    QueueSource,
    SourceConfigBase,
    SourceError,
    backoff_delays,
    monotonic,
    require,
)
from edge_agent.sources.frames import FrameAssembler, FrameParser, merge_batches

log = logging.getLogger(__name__)


class SerialSourceConfig(SourceConfigBase):
    """Insoles on a serial port (or two)."""

    type: Literal["serial"] = Field("serial", title="Source type", description="Insoles on a serial port.")
    port: str = Field(title="Serial port", description="Both feet (side byte) or the left foot, e.g. /dev/ttyUSB0.")
    right_port: str | None = Field(None, title="Right-foot port", description="When each insole has its own port.")
    baudrate: int | None = Field(None, gt=0, title="Baud rate", description="Default: the profile's transport.")
    reconnect: bool = Field(True, title="Reconnect", description="Reopen a lost port with backoff.")
    reconnect_max_s: float = Field(
        30.0, gt=0, title="Longest reconnect wait (s)", description="Cap of the jittered exponential backoff."
    )
    read_size: int = Field(4096, gt=0, title="Read size (bytes)", description="Largest single read from the port.")


class SerialSource(QueueSource):
    name = "serial"

    def __init__(self, cfg: SerialSourceConfig, profile: HardwareProfile) -> None:
        super().__init__(profile)
        if not isinstance(profile.transport, SerialTransport):
            raise SourceError(
                f"serial source: profile {profile.name!r} has a {profile.transport.type!r} transport, not 'serial'"
            )
        self.serial_asyncio: Any = require("serial_asyncio", "serial", "serial")
        self.cfg = cfg
        self.fmt = profile.transport.frame
        self.baudrate = cfg.baudrate or profile.transport.baudrate
        if not self.fmt.side_byte and cfg.right_port is None:
            log.info("serial source: frames have no side byte and no right_port: %s is the left foot", cfg.port)
        self.ports: list[tuple[str, int | None]] = [(cfg.port, None if self.fmt.side_byte else 0)]
        if cfg.right_port is not None:
            self.ports.append((cfg.right_port, None if self.fmt.side_byte else 1))
        self.parsers: list[FrameParser] = []
        self._ended = 0

    async def open(self) -> None:
        for port, side in self.ports:
            parser = FrameParser(self.fmt, self.profile.n_sensors, default_side=side)
            self.parsers.append(parser)
            reader, writer = await self._connect(port)  # fail fast when the port cannot be opened at all
            self._tasks.append(asyncio.create_task(self._run(port, parser, reader, writer), name=f"serial:{port}"))

    async def _connect(self, port: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await self.serial_asyncio.open_serial_connection(url=port, baudrate=self.baudrate)
        except Exception as err:  # serial.SerialException, OSError
            raise SourceError(f"serial source: cannot open {port!r} at {self.baudrate} Bd: {err}") from err

    async def _run(self, port: str, parser: FrameParser, reader: Any, writer: Any) -> None:
        assembler = FrameAssembler(parser, self.profile.sample_rate_hz)
        avail = OnceLogger(log, f"serial port {port}")
        loop = asyncio.get_running_loop()
        batch_s = self.cfg.batch_ms / 1000.0
        try:
            while not self._closed:
                pending: list[FrameBatch] = []
                deadline = loop.time() + batch_s
                lost: str | None = None
                while loop.time() < deadline:
                    try:
                        async with asyncio.timeout_at(deadline):
                            data = await reader.read(self.cfg.read_size)
                    except TimeoutError:
                        break
                    except Exception as err:  # serial.SerialException, OSError(EIO) on unplug
                        lost = str(err) or type(err).__name__
                        break
                    if not data:
                        lost = "end of stream"
                        break
                    pending += assembler.batches(parser.feed(data), monotonic())
                for b in merge_batches(pending):
                    self._emit(b)
                if lost is None:
                    continue
                writer.close()
                avail.lost(lost)
                if not self.cfg.reconnect:
                    before = parser.truncated
                    parser.finish()
                    self._stats["corrupt"] += parser.truncated - before  # a frame cut off at the end
                    self._ended += 1
                    if self._ended == len(self.ports):
                        self._finish()
                    return
                for delay in backoff_delays(0.2, self.cfg.reconnect_max_s):
                    await asyncio.sleep(delay)
                    try:
                        reader, writer = await self._connect(port)
                    except SourceError:
                        continue
                    self._stats["reconnects"] += 1
                    avail.back()
                    break
        finally:
            writer.close()

    @property
    def stats(self) -> dict[str, int]:
        s = dict(self._stats)
        s["garbage_bytes"] = sum(p.garbage_bytes for p in self.parsers)
        s["parser_frames"] = sum(p.frames for p in self.parsers)
        return s
