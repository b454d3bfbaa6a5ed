"""FSR insoles wired to an ADC on the Pi: MCP3008 (SPI, spidev) or ADS1115 (I²C, smbus2).

Sampling runs in a thread, paced by absolute deadlines (``start + k·period`` on ``time.perf_counter_ns``,
so sleep overshoot never accumulates into drift). A sample read more than half a period after its
deadline counts as ``late``; when the thread falls more than a whole period behind (the Pi was busy),
the missed slots are skipped and counted as ``dropped`` instead of being read in a burst. Frames are
handed to the event loop in batches through a bounded queue (``call_soon_threadsafe``), never one by one.

Chip notes: MCP3008 — one 3-byte full-duplex transfer per channel: ``[0x01, (0x8|ch)<<4, 0x00]``
(start bit, single-ended, channel), the 10-bit result is the low 2 bits of byte 1 and byte 2
(datasheet DS21295 §6.1). ADS1115 — single-shot conversions: write the config register (0x01) with
OS=1, MUX=100+ch (AINch vs GND), PGA, MODE=1 (single shot), the data rate; wait 1/DR; read the
conversion register (0x00), big-endian two's complement (datasheet SBAS444 §9.6). An ADS1115 converts
at most 860 samples/s across all its channels: 4 FSRs per chip at 200 Hz is the practical ceiling.
Needs ``pip install 'footfall[adc]'``; hardware reading cannot run here, the conversion and the paced
sampler are tested with real bytes and a Python frame reader.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import Field

from edge_agent.profiles import AdcTransport, HardwareProfile
from edge_agent.sources.base import (
    FrameBatch,
    QueueSource,
    Side,
    SourceConfigBase,
    SourceError,
    both_sides,
    require,
)

log = logging.getLogger(__name__)

ADS1115_DATA_RATES = (8, 16, 32, 64, 128, 250, 475, 860)
ADS1115_PGA_FSR = {6.144: 0, 4.096: 1, 2.048: 2, 1.024: 3, 0.512: 4, 0.256: 5}


class AdcSourceConfig(SourceConfigBase):
    """FSRs read by an ADC on the Pi's SPI or I²C bus (layout in the profile's adc transport)."""

    type: Literal["adc"] = Field("adc", title="Source type", description="FSRs on an ADC on the Pi.")
    sample_rate_hz: float | None = Field(None, gt=0, le=5000, title="Sample rate (Hz)", description="Default: profile.")
    sides: list[Literal["left", "right"]] = Field(
        default_factory=both_sides,
        min_length=1,
        title="Insoles wired",
        description="Which feet have an ADC (chip select / I²C address in the profile).",
    )
    ads1115_pga_v: float = Field(4.096, title="ADS1115 full-scale range (V)", description="6.144 … 0.256.")
    ads1115_data_rate: int = Field(
        860, title="ADS1115 data rate (SPS)", description="8 … 860; the chip's total across channels."
    )
    max_batches: int = Field(64, gt=0, title="Queue length (batches)", description="Beyond it batches are dropped.")


# ---------------------------------------------------------------- conversions (pure, tested) ----------
def mcp3008_command(channel: int) -> list[int]:
    """The 3 bytes to clock out for a single-ended read of ``channel`` (0–7)."""
    if not 0 <= channel <= 7:
        raise ValueError(f"MCP3008 channel must be 0–7, got {channel}")
    return [0x01, (0x08 | channel) << 4, 0x00]


def mcp3008_decode(response: bytes | list[int]) -> int:
    """The 10-bit count from the 3 bytes clocked in."""
    if len(response) != 3:
        raise ValueError(f"MCP3008 response must be 3 bytes, got {len(response)}")
    return ((response[1] & 0x03) << 8) | response[2]


def ads1115_config(channel: int, pga_v: float = 4.096, data_rate: int = 860) -> int:
    """Config register word for a single-shot single-ended conversion of ``channel`` (0–3)."""
    if not 0 <= channel <= 3:
        raise ValueError(f"ADS1115 channel must be 0–3, got {channel}")
    if pga_v not in ADS1115_PGA_FSR:
        raise ValueError(f"ADS1115 full-scale range must be one of {sorted(ADS1115_PGA_FSR)}, got {pga_v}")
    if data_rate not in ADS1115_DATA_RATES:
        raise ValueError(f"ADS1115 data rate must be one of {ADS1115_DATA_RATES}, got {data_rate}")
    os_bit = 1 << 15
    mux = (0b100 + channel) << 12
    pga = ADS1115_PGA_FSR[pga_v] << 9
    mode = 1 << 8
    dr = ADS1115_DATA_RATES.index(data_rate) << 5
    comp_disable = 0b11
    return os_bit | mux | pga | mode | dr | comp_disable


def ads1115_config_bytes(channel: int, pga_v: float = 4.096, data_rate: int = 860) -> list[int]:
    w = ads1115_config(channel, pga_v, data_rate)
    return [(w >> 8) & 0xFF, w & 0xFF]


def ads1115_decode(data: bytes | list[int]) -> int:
    """Signed 16-bit count from the conversion register's two bytes (MSB first)."""
    if len(data) != 2:
        raise ValueError(f"ADS1115 conversion must be 2 bytes, got {len(data)}")
    v = (data[0] << 8) | data[1]
    return v - 0x10000 if v & 0x8000 else v


# ---------------------------------------------------------------- paced sampler --------------------
class PacedSampler:
    """Calls ``read()`` every ``1/rate`` s on absolute deadlines in a thread; batches go to ``deliver``.

    ``read`` returns one frame per side as ``{side: float32[S]}``. ``deliver(batches)`` is called from
    the sampling thread with a list of FrameBatch (one per side) every ``batch_frames`` frames.
    """

    def __init__(
        self,
        read: Callable[[], dict[Side, np.ndarray]],
        rate_hz: float,
        batch_frames: int,
        deliver: Callable[[list[FrameBatch]], None],
        sides: list[Side],
        n_sensors: int,
        max_frames: int | None = None,
        on_exit: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self.read = read
        self.period_ns = round(1e9 / rate_hz)
        self.batch_frames = batch_frames
        self.deliver = deliver
        self.sides = sides
        self.S = n_sensors
        self.max_frames = max_frames
        self.on_exit = on_exit
        self.late = 0
        self.dropped = 0  # skipped sample slots (each loses one frame of every foot)
        self.frames = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="adc-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        n = self.batch_frames
        ts = np.empty(n)
        buf = {s: np.empty((n, self.S), np.float32) for s in self.sides}
        i = 0
        dropped_in_batch = 0
        start = time.perf_counter_ns()
        k = 0
        try:
            while not self._stop.is_set():
                deadline = start + k * self.period_ns
                now = time.perf_counter_ns()
                if now < deadline:
                    time.sleep((deadline - now) / 1e9)
                    now = time.perf_counter_ns()
                behind = now - deadline
                if behind >= self.period_ns:  # missed whole slots: skip them, count as dropped
                    missed = behind // self.period_ns
                    self.dropped += missed
                    dropped_in_batch += missed
                    k += missed
                elif behind > self.period_ns // 2:
                    self.late += 1
                ts[i] = time.monotonic()
                frame = self.read()
                for s in self.sides:
                    buf[s][i] = frame[s]
                i += 1
                k += 1
                self.frames += 1
                if i == n:
                    self.deliver(
                        [
                            FrameBatch(side=s, t=ts.copy(), raw=buf[s].copy(), dropped=dropped_in_batch)
                            for s in self.sides
                        ]
                    )
                    i = 0
                    dropped_in_batch = 0
                if self.max_frames is not None and self.frames >= self.max_frames:
                    break
        except BaseException as err:  # a bus error: hand it to the loop side
            self.error = err
        if i or dropped_in_batch:
            self.deliver(
                [
                    FrameBatch(side=s, t=ts[:i].copy(), raw=buf[s][:i].copy(), dropped=dropped_in_batch)
                    for s in self.sides
                ]
            )
        if self.on_exit is not None:
            self.on_exit(self.error)


# ---------------------------------------------------------------- chips ---------------------------
class _Mcp3008Reader:
    def __init__(self, t: AdcTransport, sides: list[Side]) -> None:
        spidev = require("spidev", "adc", "adc (MCP3008)")
        self.devs: dict[Side, Any] = {}
        for s in sides:
            dev = spidev.SpiDev()
            dev.open(t.spi_bus, t.spi_devices[s])
            dev.max_speed_hz = t.spi_speed_hz
            dev.mode = 0
            self.devs[s] = dev
        self.cmds = [mcp3008_command(c) for c in t.channels]

    def __call__(self) -> dict[Side, np.ndarray]:
        return {
            s: np.asarray([mcp3008_decode(dev.xfer2(list(cmd))) for cmd in self.cmds], np.float32)
            for s, dev in self.devs.items()
        }

    def close(self) -> None:
        for dev in self.devs.values():
            dev.close()


class _Ads1115Reader:
    def __init__(self, t: AdcTransport, sides: list[Side], pga_v: float, rate: int) -> None:
        smbus2 = require("smbus2", "adc", "adc (ADS1115)")
        self.bus = smbus2.SMBus(t.i2c_bus)
        self.addrs = {s: t.i2c_addresses[s] for s in sides}
        self.cfgs = [ads1115_config_bytes(c, pga_v, rate) for c in t.channels]
        self.wait = 1.0 / rate + 100e-6

    def __call__(self) -> dict[Side, np.ndarray]:
        out: dict[Side, np.ndarray] = {}
        for s, addr in self.addrs.items():
            vals = []
            for cfg in self.cfgs:
                self.bus.write_i2c_block_data(addr, 0x01, cfg)
                time.sleep(self.wait)
                vals.append(ads1115_decode(self.bus.read_i2c_block_data(addr, 0x00, 2)))
            out[s] = np.asarray(vals, np.float32)
        return out

    def close(self) -> None:
        self.bus.close()


class AdcSource(QueueSource):
    name = "adc"

    def __init__(self, cfg: AdcSourceConfig, profile: HardwareProfile) -> None:
        super().__init__(profile, max_batches=cfg.max_batches)
        if not isinstance(profile.transport, AdcTransport):
            raise SourceError(
                f"adc source: profile {profile.name!r} has a {profile.transport.type!r} transport, not 'adc'"
            )
        self.transport = profile.transport
        require("spidev" if self.transport.chip == "mcp3008" else "smbus2", "adc", f"adc ({self.transport.chip})")
        self.cfg = cfg
        self.rate = cfg.sample_rate_hz or profile.sample_rate_hz
        self.sampler: PacedSampler | None = None
        self._reader: Any = None

    async def open(self) -> None:
        t = self.transport
        sides: list[Side] = list(self.cfg.sides)
        try:
            if t.chip == "mcp3008":
                self._reader = _Mcp3008Reader(t, sides)
            else:
                self._reader = _Ads1115Reader(t, sides, self.cfg.ads1115_pga_v, self.cfg.ads1115_data_rate)
        except OSError as err:
            raise SourceError(f"adc source: cannot open the {t.chip} ({err})") from err
        loop = asyncio.get_running_loop()
        batch = max(1, math.ceil(self.cfg.batch_ms / 1000.0 * self.rate))

        def deliver(batches: list[FrameBatch]) -> None:
            for b in batches:
                loop.call_soon_threadsafe(self._emit, b)

        def on_exit(err: BaseException | None) -> None:
            if err is not None:
                log.error("adc source: sampling stopped: %s", err)
            loop.call_soon_threadsafe(self._finish)

        self.sampler = PacedSampler(
            self._reader, self.rate, batch, deliver, sides, self.profile.n_sensors, on_exit=on_exit
        )
        self.sampler.start()

    @property
    def stats(self) -> dict[str, int]:
        s = dict(self._stats)
        if self.sampler is not None:
            s["late"] = self.sampler.late
        return s

    async def close(self) -> None:
        if self._closed:
            return
        if self.sampler is not None:
            await asyncio.to_thread(self.sampler.stop)
            self._stats["late"] = self.sampler.late
        if self._reader is not None:
            self._reader.close()
        await super().close()
