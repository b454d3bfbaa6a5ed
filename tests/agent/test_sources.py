"""Sources: frame parser, clock alignment, simulator and replay sources, BLE/ADC conversions, config registry.

BLE and ADC sources cannot run here (no radio, no SPI/I²C bus): their packet/sample conversion, the
paced sampler and the missing-extra errors are tested with real bytes instead.
"""

from __future__ import annotations

import asyncio
import importlib.util
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edge_agent.profiles import FrameFormat, load_profile
from edge_agent.recordings import save_recording
from edge_agent.recordings.simulator import RunParams, simulate
from edge_agent.sources import (
    AdcSourceConfig,
    BleSourceConfig,
    FrameBatch,
    MissingExtraError,
    ReplaySourceConfig,
    SerialSourceConfig,
    SimulatorSourceConfig,
    SourceError,
    create_source,
    parse_source_config,
)
from edge_agent.sources.adc import (
    PacedSampler,
    ads1115_config,
    ads1115_config_bytes,
    ads1115_decode,
    mcp3008_command,
    mcp3008_decode,
)
from edge_agent.sources.align import ClockAligner
from edge_agent.sources.base import backoff_delays, require
from edge_agent.sources.ble import BlePacketHandler
from edge_agent.sources.frames import FrameError, FrameParser, checksum, crc16_ccitt, encode_frame

FMT = FrameFormat(sync="A55A", side_byte=True, counter="u16le", value_type="u16le", checksum="xor8")
S = 8


def _values(i: int) -> np.ndarray:
    return (np.arange(S) * 3 + i) % 200  # never contains the sync bytes


def _frames(n: int, start: int = 0) -> list[bytes]:
    """Alternating left/right frames; each side has its own counter."""
    out = []
    for i in range(start, start + n):
        out.append(encode_frame(FMT, _values(i), side=("left", "right")[i % 2], counter=i // 2))
    return out


def _all(parser: FrameParser, data: bytes, chunk: int | None = None):
    parts = [parser.feed(data[i : i + chunk]) for i in range(0, len(data), chunk)] if chunk else [parser.feed(data)]
    side = np.concatenate([p.side for p in parts])
    vals = np.concatenate([p.values for p in parts])
    return side, vals


# ------------------------------------------------------------------------------------------ frames
def test_parser_decodes_good_frames_exactly_in_any_chunking():
    data = b"".join(_frames(40))
    for chunk in (None, 1, 7, 64):
        p = FrameParser(FMT, S)
        side, vals = _all(p, data, chunk)
        assert p.stats == {"frames": 40, "corrupt": 0, "dropped": 0, "garbage_bytes": 0, "truncated": 0, "resets": 0}
        assert list(side) == [0, 1] * 20
        assert np.array_equal(vals, np.stack([_values(i) for i in range(40)]).astype(np.float32))


def test_parser_skips_garbage_and_counts_corrupt_and_dropped_exactly():
    frames = _frames(30)
    bad = bytearray(frames[7])
    bad[6] ^= 0x40  # a flipped bit in the counter/values: checksum fails
    frames[7] = bytes(bad)
    frames[12] = frames[12][:9]  # truncated mid-frame, the next frame follows directly
    garbage = b"\x00\x13\x37\x99"
    data = garbage + b"".join(f + (garbage if i == 20 else b"") for i, f in enumerate(frames))
    for chunk in (None, 3):
        p = FrameParser(FMT, S)
        side, vals = _all(p, data, chunk)
        assert p.frames == 28 and p.corrupt == 2
        assert p.dropped == 2  # frames 7 (right) and 12 (left) show up as counter gaps
        kept = [i for i in range(30) if i not in (7, 12)]
        assert np.array_equal(vals, np.stack([_values(i) for i in kept]).astype(np.float32))
        assert list(side) == [i % 2 for i in kept]
        assert p.garbage_bytes >= 8


def test_parser_keeps_a_partial_frame_and_counts_truncation_at_the_end():
    data = b"".join(_frames(5))
    p = FrameParser(FMT, S)
    assert len(p.feed(data[:-5])) == 4
    assert len(p.feed(data[-5:-2])) == 0
    assert p.finish() == 1 and p.frames == 4


def test_parser_counter_wrap_timestamp_wrap_and_no_side_byte():
    fmt = FrameFormat(
        sync="AA", side_byte=False, counter="u8", timestamp="u32le_us", value_type="i16le", checksum="crc16_ccitt"
    )
    t0 = (1 << 32) * 1e-6 - 0.02  # 20 ms before the µs counter wraps
    counters = [253, 254, 255, 0, 2, 3]  # wraps 255 → 0 (no loss), then 0 → 2 loses one frame
    data = b"".join(
        encode_frame(fmt, [-5, 7, 300], counter=c, device_t_s=t0 + 0.01 * k) for k, c in enumerate(counters)
    )
    p = FrameParser(fmt, 3, default_side=1)
    parsed = p.feed(data)
    assert p.dropped == 1 and p.resets == 0
    assert np.all(parsed.side == 1)
    assert np.allclose(np.diff(parsed.device_t), 0.01, atol=2e-6)  # unwrapped: still increasing
    assert np.array_equal(parsed.values[0], [-5, 7, 300])
    with pytest.raises(FrameError, match="default_side"):
        FrameParser(fmt, 3)


def test_parser_without_sync_resyncs_on_the_checksum():
    fmt = FrameFormat(sync="", side_byte=False, counter="u16le", value_type="u16le", checksum="crc16_ccitt")
    frames = [encode_frame(fmt, _values(i), counter=i) for i in range(10)]
    data = b"".join(frames[:4]) + b"\x01\x02\x03" + b"".join(frames[4:])
    p = FrameParser(fmt, S, default_side=0)
    assert len(p.feed(data)) == 10 and p.corrupt == 1 and p.garbage_bytes == 3


def test_checksums_and_float_values():
    assert crc16_ccitt(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE check value
    assert checksum("sum8", bytes([200, 100])) == bytes([44])
    assert checksum("xor8", bytes([0x0F, 0xF0])) == bytes([0xFF])
    fmt = FrameFormat(sync="A5", side_byte=True, counter="none", value_type="f32le", checksum="sum8")
    p = FrameParser(fmt, 2)
    parsed = p.feed(encode_frame(fmt, [1.5, np.nan], side="right"))
    assert parsed.values[0, 0] == 1.5 and np.isnan(parsed.values[0, 1]) and parsed.side[0] == 1
    with pytest.raises(FrameError, match="side"):
        encode_frame(FMT, _values(0))
    # a side byte other than 0/1 is a corrupt frame
    body = bytes([2]) + struct.pack("<H", 0) + _values(0).astype("<u2").tobytes()
    p = FrameParser(FMT, S)
    assert len(p.feed(b"\xa5\x5a" + body + checksum("xor8", body))) == 0 and p.corrupt == 1


# ------------------------------------------------------------------------------------------ align
def test_clock_aligner_tracks_offset_and_drift_per_device():
    rng = np.random.default_rng(0)
    fs, n = 100, 100 * 120
    true = 1000.0 + np.arange(n) / fs
    mapped = {}
    for name, ppm, origin in (("left", 80.0, 5000.0), ("right", -40.0, 17.0)):
        dev = (true - 1000.0) * (1 + ppm * 1e-6) + origin
        arrival = true + 0.003 + rng.exponential(0.008, n)
        al = ClockAligner()
        out = [al.map(dev[i : i + 10], arrival[i + 9]) for i in range(0, n, 10)]
        mapped[name] = np.concatenate(out)
        assert al.drift * 1e6 == pytest.approx(-ppm, abs=8)
        # slewed, never stepped: every interval within ±20 % of the device's
        assert np.all(np.abs(np.diff(mapped[name]) / np.diff(dev) - 1) <= 0.2 + 1e-9)
    late = slice(10 * fs, None)
    err_l = mapped["left"][late] - true[late]
    err_r = mapped["right"][late] - true[late]
    # both feet land within ~2 ms of each other although their clocks differ by hours and 120 ppm and
    # packets arrive with 8 ms mean jitter (time-stamping by arrival would be off by up to ~100 ms)
    assert np.max(np.abs(err_l - err_r)) < 2.5e-3
    assert 0 < np.median(err_l) < 0.01  # offset = the transport's floor delay (3 ms), no more


def test_clock_aligner_keeps_sane_intervals_when_a_backlog_arrives_at_once():
    al = ClockAligner()
    d = np.arange(0, 2, 0.005)
    first = al.map(d[:20], 100.1)  # on time
    burst = al.map(d[20:], 100.15)  # 1.9 s of buffered frames in one read
    assert np.all(np.diff(np.concatenate([first, burst])) >= 0.8 * 0.005 - 1e-9)


def test_clock_aligner_restarts_on_device_reset():
    al = ClockAligner()
    a = al.map(np.arange(0, 10, 0.01) + 100.0, 50.0 + np.arange(0, 10, 0.01) + 0.002)
    b = al.map(np.arange(0, 1, 0.01), 60.01 + np.arange(0, 1, 0.01) + 0.002)
    assert al.resets == 1 and b[0] >= a[-1] and abs(b[-1] - (60.01 + 0.99)) < 0.01


# ------------------------------------------------------------------------------------------ simulator source
async def test_simulator_source_yields_the_simulation_in_batches():
    p = load_profile("moticon-opengo")
    params = RunParams(duration_s=3, seed=2, dropout_prob=0.05)
    rec, _ = simulate(p, params)
    src = create_source(SimulatorSourceConfig(params=params, speed=0, batch_ms=100), p)
    got: dict[str, list[FrameBatch]] = {"left": [], "right": []}
    async with src:
        async for b in src.batches():
            got[b.side].append(b)
    for side, fs in rec.streams():
        bs = got[side]
        assert all(len(b) <= 10 for b in bs) and len(bs) == 30
        assert np.array_equal(np.concatenate([b.raw for b in bs]), fs.raw)
        assert np.array_equal(np.concatenate([b.device_t for b in bs]), fs.t)
        t = np.concatenate([b.t for b in bs])
        assert np.allclose(t - t[0], fs.t - fs.t[0])
        assert sum(b.dropped for b in bs) == 300 - fs.t.size
    assert src.stats["frames"] == rec.left.t.size + rec.right.t.size
    await src.close()  # idempotent


async def test_simulator_source_is_paced_by_the_speed_factor():
    p = load_profile("moticon-opengo")
    speed = 20.0
    src = create_source(SimulatorSourceConfig(params=RunParams(duration_s=1.5), speed=speed, batch_ms=50), p)
    loop = asyncio.get_running_loop()
    n = 0
    async with src:
        t_ref = loop.time()
        async for b in src.batches():
            # frames simulated up to device time d are released no earlier than d / speed after the start
            assert loop.time() - t_ref >= b.device_t[-1] / speed - 1e-3
            n += len(b)
    assert n == 2 * 150


# ------------------------------------------------------------------------------------------ replay source
@pytest.fixture
def recording_file(tmp_path):
    p = load_profile("moticon-opengo")
    rec, _ = simulate(p, RunParams(duration_s=2, seed=4))
    path = tmp_path / "run.ffrec"
    save_recording(rec, path)
    return p, rec, path


async def test_replay_never_runs_ahead_of_the_speed_factor(recording_file):
    p, rec, path = recording_file
    speed = 8.0
    src = create_source(ReplaySourceConfig(path=path, speed=speed, batch_ms=100), p)
    loop = asyncio.get_running_loop()
    frames = {"left": 0, "right": 0}
    async with src:
        t_ref = loop.time()
        async for b in src.batches():
            elapsed = loop.time() - t_ref
            # data recorded at time d is released no earlier than d / speed after the start
            assert elapsed >= (b.device_t[-1] - rec.left.t[0]) / speed - 1e-3
            assert b.device_t[-1] - b.device_t[0] < 0.1
            frames[b.side] += len(b)
    assert frames == {"left": rec.left.t.size, "right": rec.right.t.size}


async def test_replay_fast_and_looping(recording_file):
    p, rec, path = recording_file
    src = create_source(ReplaySourceConfig(path=path, speed=0, loop=True, batch_ms=50), p)
    raws, devs = [], []
    async with src:
        async for b in src.batches():
            if b.side == "left":
                raws.append(b.raw)
                devs.append(b.device_t)
            if src.loops >= 2:
                break
    raw = np.concatenate(raws)
    dev = np.concatenate(devs)
    n = rec.left.t.size
    assert np.array_equal(raw[:n], rec.left.raw) and np.array_equal(raw[n : 2 * n], rec.left.raw)
    assert np.all(np.diff(dev) > 0)  # time keeps increasing across the loop


async def test_replay_errors_name_the_file(tmp_path, recording_file):
    p, _, path = recording_file
    with pytest.raises(SourceError, match="does not exist"):
        async with create_source(ReplaySourceConfig(path=tmp_path / "nope.ffrec"), p):
            pass
    with pytest.raises(SourceError, match=r"run\.ffrec.*(16|99)"):
        async with create_source(ReplaySourceConfig(path=path), load_profile("pedar-99")):
            pass


# ------------------------------------------------------------------------------------------ BLE
def test_ble_packets_to_batches_with_real_bytes():
    p = load_profile("diy-esp32-fsr8-ble")
    fmt = p.transport.frame
    h = BlePacketHandler(fmt, p.n_sensors, "left", p.sample_rate_hz)
    frames = [encode_frame(fmt, _values(i), side="left", counter=i) for i in range(6)]
    h.handle(frames[0] + frames[1], arrival=10.0)  # two frames in one notification
    h.handle(frames[2][:7], arrival=10.01)  # a frame split over two notifications (MTU)
    h.handle(frames[2][7:], arrival=10.02)
    h.handle(frames[4] + frames[5], arrival=10.03)  # frame 3 lost over the air
    h.handle(encode_frame(fmt, _values(9), side="right", counter=9), arrival=10.04)  # wrong insole
    (b,) = h.flush()
    assert b.side == "left" and len(b) == 5
    assert np.array_equal(b.raw, np.stack([_values(i) for i in (0, 1, 2, 4, 5)]).astype(np.float32))
    assert b.dropped == 1 and b.corrupt == 1
    assert np.all(np.diff(b.t) > 0) and b.t[-1] <= 10.04
    # no timestamp in this layout: the counter is the device clock, so the lost frame leaves a gap
    assert np.allclose(np.diff(b.t), [0.005, 0.005, 0.010, 0.005])
    assert h.flush() == []


@pytest.mark.skipif(importlib.util.find_spec("bleak") is not None, reason="bleak is installed here")
def test_ble_without_bleak_names_the_extra():
    with pytest.raises(MissingExtraError, match=r"pip install 'footfall\[ble\]'"):
        create_source(BleSourceConfig(), load_profile("diy-esp32-fsr8-ble"))


@pytest.mark.skipif(importlib.util.find_spec("bleak") is None, reason="needs the ble extra (bleak)")
async def test_ble_without_insoles_logs_once_per_side_and_closes(caplog):
    """With bleak but no insole in range (or no adapter), scans keep failing: one warning per side."""
    caplog.set_level("INFO", logger="edge_agent.sources.ble")
    src = create_source(BleSourceConfig(scan_timeout_s=0.3, reconnect_max_s=0.2), load_profile("diy-esp32-fsr8-ble"))
    async with src:
        await asyncio.sleep(1.5)
    lost = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
    assert sorted(m.split()[0] for m in lost) == ["left", "right"]
    assert src.stats["frames"] == 0


def test_backoff_is_exponential_jittered_and_capped():
    import random

    d = backoff_delays(0.5, 8.0, random.Random(1))
    seq = [next(d) for _ in range(10)]
    for k, x in enumerate(seq):
        hi = min(8.0, 0.5 * 2**k)
        assert hi / 2 <= x <= hi
    assert len(set(seq)) == len(seq)


# ------------------------------------------------------------------------------------------ ADC
def test_mcp3008_and_ads1115_bytes():
    assert mcp3008_command(0) == [0x01, 0x80, 0x00]
    assert mcp3008_command(5) == [0x01, 0xD0, 0x00]
    assert mcp3008_decode(bytes([0xFF, 0xFA, 0x9A])) == 666  # only the low 2 bits of byte 1 count
    assert mcp3008_decode([0x00, 0x03, 0xFF]) == 1023
    assert ads1115_config(0, 4.096, 860) == 0xC3E3  # OS | AIN0-GND | ±4.096 V | single-shot | 860 SPS
    assert ads1115_config_bytes(3, 6.144, 128) == [0xF1, 0x83]
    assert ads1115_decode(bytes([0x7F, 0xFF])) == 32767
    assert ads1115_decode([0xFF, 0xFF]) == -1
    with pytest.raises(ValueError, match="channel"):
        mcp3008_command(8)
    with pytest.raises(ValueError, match="data rate"):
        ads1115_config(0, 4.096, 100)


def test_paced_sampler_delivers_every_read_in_order():
    counter = iter(range(10_000))

    def read():
        k = next(counter)
        return {"left": np.full(4, k, np.float32), "right": np.full(4, -k, np.float32)}

    got: list[FrameBatch] = []
    s = PacedSampler(
        read, rate_hz=2000, batch_frames=32, deliver=got.extend, sides=["left", "right"], n_sensors=4, max_frames=300
    )
    s.start()
    s.join(30)
    left = [b for b in got if b.side == "left"]
    vals = np.concatenate([b.raw[:, 0] for b in left])
    assert np.array_equal(vals, np.arange(300)) and s.frames == 300 and s.error is None
    assert np.all(np.diff(np.concatenate([b.t for b in left])) > 0)
    assert sum(b.dropped for b in left) == s.dropped  # skipped slots are reported, not hidden


@pytest.mark.skipif(importlib.util.find_spec("spidev") is not None, reason="spidev is installed here")
def test_adc_without_spidev_names_the_extra():
    with pytest.raises(MissingExtraError, match=r"pip install 'footfall\[adc\]'"):
        create_source(AdcSourceConfig(), load_profile("diy-mcp3008-fsr4"))


# ------------------------------------------------------------------------------------------ config
def test_source_configs_are_strict_and_discriminated():
    assert isinstance(parse_source_config({"type": "serial", "port": "/dev/ttyUSB0"}), SerialSourceConfig)
    with pytest.raises(ValidationError, match="port"):
        parse_source_config({"type": "serial"})
    with pytest.raises(ValidationError, match="bogus"):
        parse_source_config({"type": "simulator", "bogus": 1})
    with pytest.raises(ValidationError, match="tag"):
        parse_source_config({"type": "carrier-pigeon"})
    with pytest.raises(ValidationError, match="cadence_spm"):
        parse_source_config({"type": "simulator", "params": {"cadence_spm": 20}})
    for model in (
        SimulatorSourceConfig,
        ReplaySourceConfig,
        SerialSourceConfig,
        BleSourceConfig,
        AdcSourceConfig,
        RunParams,
    ):
        for name, f in model.model_fields.items():
            assert f.title and f.description, f"{model.__name__}.{name} needs a title and a description"


def test_transport_mismatch_and_missing_module_errors():
    with pytest.raises(SourceError, match="'file' transport, not 'serial'"):
        create_source(SerialSourceConfig(port="/dev/null"), load_profile("moticon-opengo"))
    with pytest.raises(MissingExtraError, match=r"footfall\[serial\]"):
        require("no_such_module_footfall", "serial", "serial")


async def test_replay_of_a_real_moticon_export(shared_data):
    """A real vendor export (auto-detected importer) replayed as fast as possible: every frame, in order."""
    from edge_agent.recordings import load_recording

    path = shared_data / "moticon-opengo" / "230927_102114.txt"
    rec = load_recording(path)
    profile = load_profile(rec.profile)
    src = create_source(ReplaySourceConfig(path=path, speed=0, batch_ms=100), profile)
    raws: dict[str, list[np.ndarray]] = {"left": [], "right": []}
    async with src:
        async for b in src.batches():
            assert np.all(np.diff(b.t) > 0)
            raws[b.side].append(b.raw)
    for side, fs in rec.streams():
        assert np.array_equal(np.concatenate(raws[side]), fs.raw, equal_nan=True)


# ------------------------------------------------------------------------------------------ fuzzing
@settings(max_examples=60, deadline=None)
@given(
    garbage=st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\xa5", b"\x00")), min_size=10, max_size=10),
    cuts=st.lists(st.integers(1, 40), min_size=1, max_size=30),
)
def test_parser_recovers_every_frame_between_any_garbage_in_any_chunking(garbage, cuts):
    frames = _frames(10)
    data = b"".join(g + f for g, f in zip(garbage, frames, strict=True))
    p = FrameParser(FMT, S)
    out, pos, k = [], 0, 0
    while pos < len(data):
        n = cuts[k % len(cuts)]
        out.append(p.feed(data[pos : pos + n]))
        pos += n
        k += 1
    vals = np.concatenate([o.values for o in out])
    assert np.array_equal(vals, np.stack([_values(i) for i in range(10)]).astype(np.float32))
    assert p.corrupt == 0 and p.dropped == 0


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=600))
def test_parser_never_crashes_on_arbitrary_bytes(data):
    p = FrameParser(FMT, S)
    parsed = p.feed(data)
    p.finish()
    assert len(parsed) == p.frames and parsed.values.shape == (p.frames, S)
    assert set(np.unique(parsed.side)) <= {0, 1}
