"""Binary insole frames (serial and BLE): ``sync | [side] | [counter] | [t] | values | [checksum]``.

The layout comes from the profile's ``transport.frame`` (:class:`edge_agent.profiles.FrameFormat`).
All multi-byte fields are little-endian unless the value type says ``be``. Checksums cover the bytes
after the sync and before the checksum:

* ``xor8`` — XOR of the bytes (1 byte); ``sum8`` — sum modulo 256 (1 byte);
* ``crc16_ccitt`` — CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR;
  check value 0x29B1 for ``b"123456789"``), sent little-endian (2 bytes).

The parser is streaming: feed it whatever bytes arrived; it keeps an incomplete frame for the next
call. Resynchronisation: a candidate frame starting at a sync whose checksum or side byte is wrong is
counted ``corrupt`` and the search resumes one byte after that sync (so a good frame hidden inside a
truncated one is still found). Bytes that are not part of any frame are counted in ``garbage_bytes``.
Frame counters give ``dropped`` frames per side (gaps modulo the counter's range; a jump of more than
half the range is treated as a device reset, not a loss). 32-bit device timestamps are unwrapped.
Without sync bytes frames are back to back and resync works byte by byte on the checksum alone.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import numpy as np

from edge_agent.profiles import FrameFormat
from edge_agent.sources.align import ClockAligner
from edge_agent.sources.base import FrameBatch, Side

SIDES: tuple[Side, Side] = ("left", "right")

VALUE_DTYPES: dict[str, str] = {
    "u8": "u1",
    "u16le": "<u2",
    "u16be": ">u2",
    "i16le": "<i2",
    "u32le": "<u4",
    "f32le": "<f4",
}
COUNTER_BYTES = {"none": 0, "u8": 1, "u16le": 2, "u32le": 4}
TIMESTAMP_BYTES = {"none": 0, "u32le_us": 4, "u32le_ms": 4}
TIMESTAMP_SCALE = {"u32le_us": 1e-6, "u32le_ms": 1e-3}
CHECKSUM_BYTES = {"none": 0, "xor8": 1, "sum8": 1, "crc16_ccitt": 2}
SIDE_CODES = {"left": 0, "right": 1}


class FrameError(ValueError):
    """Bad frame-format arguments (encoding side)."""


def _crc16_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc16_table()


def crc16_ccitt(data: bytes) -> int:
    crc = 0xFFFF
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc


def checksum(kind: str, data: bytes) -> bytes:
    """The checksum bytes of ``data`` for a checksum kind."""
    if kind == "none":
        return b""
    if kind == "xor8":
        x = 0
        for b in data:
            x ^= b
        return bytes([x])
    if kind == "sum8":
        return bytes([sum(data) & 0xFF])
    if kind == "crc16_ccitt":
        return struct.pack("<H", crc16_ccitt(data))
    raise FrameError(f"unknown checksum kind {kind!r}")


def frame_length(fmt: FrameFormat, n_sensors: int) -> int:
    return (
        len(fmt.sync_bytes)
        + int(fmt.side_byte)
        + COUNTER_BYTES[fmt.counter]
        + TIMESTAMP_BYTES[fmt.timestamp]
        + n_sensors * np.dtype(VALUE_DTYPES[fmt.value_type]).itemsize
        + CHECKSUM_BYTES[fmt.checksum]
    )


def encode_frame(
    fmt: FrameFormat,
    values: np.ndarray | list[float],
    side: str | None = None,
    counter: int = 0,
    device_t_s: float | None = None,
) -> bytes:
    """One frame's bytes (the firmware's side of the contract; used by tests and device emulators)."""
    out = bytearray()
    if fmt.side_byte:
        if side not in SIDE_CODES:
            raise FrameError(f"this frame format has a side byte: side must be 'left' or 'right', not {side!r}")
        out.append(SIDE_CODES[side])
    nb = COUNTER_BYTES[fmt.counter]
    if nb:
        out += (counter % (1 << (8 * nb))).to_bytes(nb, "little")
    if fmt.timestamp != "none":
        if device_t_s is None:
            raise FrameError("this frame format carries a device timestamp: give device_t_s")
        ticks = round(device_t_s / TIMESTAMP_SCALE[fmt.timestamp]) % (1 << 32)
        out += struct.pack("<I", ticks)
    out += np.asarray(values).astype(VALUE_DTYPES[fmt.value_type]).tobytes()
    return fmt.sync_bytes + bytes(out) + checksum(fmt.checksum, bytes(out))


@dataclass
class ParsedFrames:
    """Decoded frames in arrival order. ``side`` is 0 left / 1 right (or the parser's default side)."""

    side: np.ndarray  # int8 (n,)
    counter: np.ndarray  # int64 (n,), -1 without counter
    device_t: np.ndarray | None  # float64 seconds (unwrapped), None without timestamp
    values: np.ndarray  # float32 (n, S)
    dropped: dict[int, int] = field(default_factory=dict)  # per side, in this feed
    sequence: np.ndarray | None = None  # int64 (n,): counter unwrapped per side (frame slots since the first)
    corrupt: int = 0  # in this feed

    def __len__(self) -> int:
        return int(self.side.shape[0])

    def select(self, side: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        m = self.side == side
        return self.values[m], (None if self.device_t is None else self.device_t[m]), self.counter[m]


class FrameParser:
    """Streaming parser for one byte stream (a serial port or one BLE characteristic)."""

    def __init__(self, fmt: FrameFormat, n_sensors: int, default_side: int | None = None) -> None:
        if not fmt.side_byte and default_side not in (0, 1):
            raise FrameError("a frame format without side byte needs default_side 0 (left) or 1 (right)")
        self.fmt = fmt
        self.S = n_sensors
        self.default_side = default_side
        self.sync = fmt.sync_bytes
        self.length = frame_length(fmt, n_sensors)
        self._ck = CHECKSUM_BYTES[fmt.checksum]
        self._buf = bytearray()
        head = [("side", "u1")] if fmt.side_byte else []
        if fmt.counter != "none":
            head.append(("counter", {"u8": "u1", "u16le": "<u2", "u32le": "<u4"}[fmt.counter]))
        if fmt.timestamp != "none":
            head.append(("t", "<u4"))
        self._dtype = np.dtype([*head, ("v", VALUE_DTYPES[fmt.value_type], (n_sensors,))])
        self._cmod = 1 << (8 * COUNTER_BYTES[fmt.counter]) if fmt.counter != "none" else 0
        self._last_counter: dict[int, int] = {}
        self._seq: dict[int, int] = {}
        self._last_ticks: dict[int, int] = {}
        self._wraps: dict[int, int] = {}
        self.frames = 0
        self.corrupt = 0
        self.dropped = 0
        self.garbage_bytes = 0
        self.truncated = 0
        self.resets = 0
        self._sliding = False

    @property
    def stats(self) -> dict[str, int]:
        return {
            "frames": self.frames,
            "corrupt": self.corrupt,
            "dropped": self.dropped,
            "garbage_bytes": self.garbage_bytes,
            "truncated": self.truncated,
            "resets": self.resets,
        }

    def _valid(self, body: bytes, ck: bytes) -> bool:
        if self._ck and checksum(self.fmt.checksum, body) != ck:
            return False
        return not (self.fmt.side_byte and body[0] > 1)

    def feed(self, data: bytes) -> ParsedFrames:
        """Parse all complete frames in ``data`` (plus what was buffered)."""
        self._buf += data
        buf = self._buf
        L, ns = self.length, len(self.sync)
        good = bytearray()
        pos = 0
        corrupt = 0
        n = len(buf)
        while True:
            if ns:
                j = buf.find(self.sync, pos)
                if j < 0:
                    # keep a possible partial sync at the end
                    keep = n - (ns - 1) if n - pos >= ns - 1 else pos
                    keep = max(keep, pos)
                    self.garbage_bytes += keep - pos
                    pos = keep
                    break
                self.garbage_bytes += j - pos
                pos = j
            if n - pos < L:
                break
            body = bytes(buf[pos + ns : pos + L - self._ck])
            ck = bytes(buf[pos + L - self._ck : pos + L])
            if self._valid(body, ck):
                good += body
                pos += L
            else:
                if ns:
                    corrupt += 1
                    pos += 1
                else:  # no sync: slide one byte; count a corrupt frame once per resync episode
                    if not self._sliding:
                        corrupt += 1
                        self._sliding = True
                    self.garbage_bytes += 1
                    pos += 1
                    continue
            self._sliding = False
        del buf[:pos]
        self.corrupt += corrupt
        return self._decode(bytes(good), corrupt)

    def finish(self) -> int:
        """End of stream: a leftover partial frame starting with a sync counts as truncated. Returns it."""
        left = len(self._buf)
        if left and (not self.sync or self._buf.startswith(self.sync)) and left >= max(len(self.sync), 1):
            self.truncated += 1
        else:
            self.garbage_bytes += left
        self._buf.clear()
        return self.truncated

    def _decode(self, good: bytes, corrupt: int) -> ParsedFrames:
        rec = np.frombuffer(good, dtype=self._dtype)
        n = rec.shape[0]
        self.frames += n
        side = rec["side"].astype(np.int8) if self.fmt.side_byte else np.full(n, self.default_side, dtype=np.int8)
        counter = rec["counter"].astype(np.int64) if self.fmt.counter != "none" else np.full(n, -1, np.int64)
        values = np.ascontiguousarray(rec["v"], dtype=np.float32).reshape(n, self.S)
        dropped: dict[int, int] = {}
        sequence = None
        if self._cmod:
            sequence = np.empty(n, dtype=np.int64)
            for s in (0, 1):
                m = side == s
                cs = counter[m]
                if cs.size == 0:
                    continue
                prev = self._last_counter.get(s)
                seq = cs if prev is None else np.concatenate([[prev], cs])
                gaps = (np.diff(seq) - 1) % self._cmod
                resets = gaps >= self._cmod // 2
                self.resets += int(resets.sum())
                d = int(gaps[~resets].sum())
                dropped[s] = d
                self.dropped += d
                steps = np.where(resets, 1, gaps + 1)  # a reset continues the sequence by one slot
                start = self._seq.get(s, -1) + (0 if prev is not None else 1)
                if prev is None:
                    sequence[m] = start + np.concatenate([[0], np.cumsum(steps)])
                else:
                    sequence[m] = start + np.cumsum(steps)
                self._seq[s] = int(sequence[m][-1])
                self._last_counter[s] = int(cs[-1])
        device_t = None
        if self.fmt.timestamp != "none":
            ticks = rec["t"].astype(np.int64)
            device_t = np.empty(n, dtype=np.float64)
            for s in (0, 1):
                m = side == s
                if not m.any():
                    continue
                tk = ticks[m]
                prev = self._last_ticks.get(s)
                seq = tk if prev is None else np.concatenate([[prev], tk])
                back = np.diff(seq) < -(1 << 31)  # wrapped past 2^32
                wraps = self._wraps.get(s, 0) + np.cumsum(back)
                if prev is None:
                    wraps = np.concatenate([[self._wraps.get(s, 0)], wraps])
                w = wraps[-tk.size :]
                device_t[m] = (tk + w * (1 << 32)) * TIMESTAMP_SCALE[self.fmt.timestamp]
                self._wraps[s] = int(w[-1])
                self._last_ticks[s] = int(tk[-1])
        return ParsedFrames(
            side=side,
            counter=counter,
            device_t=device_t,
            values=values,
            dropped=dropped,
            corrupt=corrupt,
            sequence=sequence,
        )


class FrameAssembler:
    """Turns parsed frames of one byte stream into per-foot FrameBatches with agent-clock times."""

    def __init__(self, parser: FrameParser, sample_rate_hz: float) -> None:
        self.parser = parser
        self.period = 1.0 / sample_rate_hz
        self.aligners = {0: ClockAligner(), 1: ClockAligner()}
        self._last_t = {0: -math.inf, 1: -math.inf}
        self._pending_corrupt = 0

    def batches(self, parsed: ParsedFrames, arrival: float) -> list[FrameBatch]:
        out: list[FrameBatch] = []
        self._pending_corrupt += parsed.corrupt
        for s in (0, 1):
            values, device_t, _ = parsed.select(s)
            dropped = parsed.dropped.get(s, 0)
            if values.shape[0] == 0 and not dropped:
                continue
            n = values.shape[0]
            if device_t is None and parsed.sequence is not None and n:
                # no device timestamp: the frame counter is a clock ticking at the sample rate
                device_t = parsed.sequence[parsed.side == s] * self.period
            if device_t is not None:
                t = self.aligners[s].map(device_t, arrival) if n else np.zeros(0)
            else:
                t = arrival - self.period * np.arange(n - 1, -1, -1, dtype=np.float64)
                t = np.maximum(t, self._last_t[s] + np.arange(1, n + 1) * 1e-6)
            if n:
                self._last_t[s] = float(t[-1])
            corrupt, self._pending_corrupt = self._pending_corrupt, 0
            out.append(FrameBatch(side=SIDES[s], t=t, raw=values, device_t=device_t, dropped=dropped, corrupt=corrupt))
        if self._pending_corrupt and not out:
            out.append(
                FrameBatch(
                    side="left",
                    t=np.zeros(0),
                    raw=np.zeros((0, self.parser.S), np.float32),
                    corrupt=self._pending_corrupt,
                )
            )
            self._pending_corrupt = 0
        return out


def merge_batches(batches: list[FrameBatch]) -> list[FrameBatch]:
    """Concatenate the small per-read batches of each foot into one batch per foot."""
    out: list[FrameBatch] = []
    for side in SIDES:
        bs = [b for b in batches if b.side == side]
        if not bs:
            continue
        dev = [b.device_t for b in bs if len(b)]
        out.append(
            FrameBatch(
                side=side,
                t=np.concatenate([b.t for b in bs]),
                raw=np.concatenate([b.raw for b in bs]),
                device_t=None if not dev or any(d is None for d in dev) else np.concatenate(dev),  # type: ignore[arg-type]
                dropped=sum(b.dropped for b in bs),
                corrupt=sum(b.corrupt for b in bs),
            )
        )
    return out
