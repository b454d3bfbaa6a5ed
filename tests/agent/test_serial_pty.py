"""The serial source through a REAL pseudo-terminal pair: a writer thread plays the insole firmware."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import tty

import numpy as np
import pytest

from edge_agent.profiles import load_profile, parse_profile
from edge_agent.sources import FrameBatch, SerialSourceConfig, create_source
from edge_agent.sources.frames import encode_frame

pytest.importorskip("serial_asyncio")


def _pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo or line editing before pyserial configures the port
    return master, slave, os.ttyname(slave)


def _writer(master: int, chunks: list[bytes], pause_every: int = 7) -> threading.Thread:
    def run() -> None:
        for i, c in enumerate(chunks):
            os.write(master, c)
            if i % pause_every == 0:
                time.sleep(0.002)  # arrive in many reads, like a real UART

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


async def _collect(src, want: dict[str, int], timeout: float = 20.0) -> dict[str, list[FrameBatch]]:
    got: dict[str, list[FrameBatch]] = {"left": [], "right": []}

    async def run() -> None:
        async for b in src.batches():
            got[b.side].append(b)
            if all(sum(len(x) for x in got[s]) >= n for s, n in want.items()):
                return

    await asyncio.wait_for(run(), timeout)
    return got


def _values(i: int, s: int) -> np.ndarray:
    return (np.arange(s) * 37 + i * 11) % 4000


async def test_serial_frames_decoded_exactly_corrupt_counted():
    profile = load_profile("diy-esp32-fsr8")  # sync A55A | side | u16 counter | 8×u16 | xor8
    fmt, S = profile.transport.frame, profile.n_sensors
    n = 400
    chunks, expected = [], {"left": [], "right": []}
    corrupted = {"left": 0, "right": 0}
    for i in range(n):
        side = ("left", "right")[i % 2]
        frame = bytearray(encode_frame(fmt, _values(i, S), side=side, counter=i // 2))
        if i % 37 == 5:
            frame[8] ^= 0x10  # a bit flipped on the wire
            corrupted[side] += 1
        else:
            expected[side].append(_values(i, S))
        chunks.append(bytes(frame))
        if i % 53 == 0:
            chunks.append(b"\x00\xff\x13garbage")  # line noise between frames
    master, slave, path = _pty()
    try:
        src = create_source(SerialSourceConfig(port=path, batch_ms=50, reconnect=False), profile)
        async with src:
            th = _writer(master, chunks)
            got = await _collect(src, {s: len(v) for s, v in expected.items()})
            th.join(5)
            stats = src.stats
        for side in ("left", "right"):
            raw = np.concatenate([b.raw for b in got[side]])
            assert np.array_equal(raw, np.stack(expected[side]).astype(np.float32))
            t = np.concatenate([b.t for b in got[side]])
            assert np.all(np.diff(t) > 0)
            assert sum(b.dropped for b in got[side]) == corrupted[side]  # lost frames = counter gaps
        assert stats["corrupt"] == sum(corrupted.values())
        assert stats["frames"] == n - sum(corrupted.values())
        assert stats["garbage_bytes"] > 0
    finally:
        os.close(master)
        os.close(slave)


async def test_two_ports_without_side_byte_and_clean_end_of_stream():
    base = load_profile("diy-esp32-fsr8")
    data = base.model_dump()
    data.update(
        name="two-ports",
        transport={
            "type": "serial",
            "frame": {
                "sync": "5AA5",
                "side_byte": False,
                "counter": "u8",
                "value_type": "u16le",
                "checksum": "crc16_ccitt",
            },
        },
    )
    profile = parse_profile(data)
    fmt, S = profile.transport.frame, profile.n_sensors
    ptys = {side: _pty() for side in ("left", "right")}
    frames = {
        side: [encode_frame(fmt, _values(i + k * 1000, S), counter=i) for i in range(300)]
        for k, side in enumerate(("left", "right"))
    }
    try:
        cfg = SerialSourceConfig(port=ptys["left"][2], right_port=ptys["right"][2], reconnect=False)
        src = create_source(cfg, profile)
        async with src:
            threads = [_writer(ptys[s][0], frames[s]) for s in ("left", "right")]
            got = await _collect(src, {"left": 300, "right": 300})
            for th in threads:
                th.join(5)
            for side in ("left", "right"):  # unplug: the stream of that port ends cleanly
                os.close(ptys[side][0])
            async for _ in src.batches():
                pass
        for k, side in enumerate(("left", "right")):
            raw = np.concatenate([b.raw for b in got[side]])
            assert np.array_equal(raw, np.stack([_values(i + k * 1000, S) for i in range(300)]).astype(np.float32))
        assert src.stats["corrupt"] == 0 and src.stats["dropped"] == 0
    finally:
        for master, slave, _ in ptys.values():
            for fd in (master, slave):
                with contextlib.suppress(OSError):  # already closed above
                    os.close(fd)


async def test_unopenable_port_is_a_clear_error(tmp_path):
    from edge_agent.sources import SourceError

    src = create_source(SerialSourceConfig(port=str(tmp_path / "ttyNOPE")), load_profile("diy-esp32-fsr8"))
    with pytest.raises(SourceError, match=r"cannot open .*ttyNOPE"):
        async with src:
            pass


async def test_lost_port_reconnects_and_logs_once_each_way(caplog):
    """pyserial's ``socket://`` URL stands in for a port that disappears and comes back (a replug)."""
    import socket

    profile = load_profile("diy-esp32-fsr8")
    fmt = profile.transport.frame
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def serve() -> None:
        k = 0
        for _ in range(2):
            conn, _ = srv.accept()
            time.sleep(0.3)  # pyserial discards input already waiting when it opens a port
            for i in range(100):
                conn.sendall(encode_frame(fmt, _values(k, 8), side="left", counter=k))
                k += 1
                if i % 10 == 0:
                    time.sleep(0.003)
            time.sleep(0.3)
            conn.close()  # the device goes away

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    caplog.set_level("INFO", logger="edge_agent.sources.serial")
    src = create_source(SerialSourceConfig(port=f"socket://127.0.0.1:{port}", reconnect_max_s=0.5), profile)
    try:
        async with src:
            got = await _collect(src, {"left": 200})
            stats = src.stats
            msgs = [r.getMessage() for r in caplog.records]
    finally:
        srv.close()
    raw = np.concatenate([b.raw for b in got["left"]])
    assert np.array_equal(raw, np.stack([_values(k, 8) for k in range(200)]).astype(np.float32))
    assert stats["reconnects"] == 1 and stats["dropped"] == 0 and stats["corrupt"] == 0
    assert sum("unavailable" in m for m in msgs) == 1 and sum("is back" in m for m in msgs) == 1


@pytest.mark.parametrize("timestamps", [False, True])
async def test_simulated_run_through_a_pty_arrives_bit_exact_with_its_losses(timestamps):
    """The emulator sends the simulator's frames as firmware would (counter = frame slot; optionally a
    µs timestamp on a device clock 1000 s off and 80 ppm fast) at real time through a pty."""
    from edge_agent.recordings.simulator import RunParams, simulate
    from edge_agent.sources.emulate import PtyEmulator, firmware_frames

    profile = load_profile("diy-esp32-fsr8")
    if timestamps:
        data = profile.model_dump()
        data["name"] = "fsr8-timestamped"
        data["transport"]["frame"]["timestamp"] = "u32le_us"
        profile = parse_profile(data)
    fs = profile.sample_rate_hz
    rec, _ = simulate(profile, RunParams(duration_s=2, seed=9, dropout_prob=0.03))
    frames = list(firmware_frames(profile, rec, clock_offset_s=1000.0, clock_ppm=80.0))
    with PtyEmulator(frames, side_byte=True) as emu:
        src = create_source(SerialSourceConfig(port=emu.paths["both"], reconnect=False), profile)
        async with src:
            emu.start()
            got = await _collect(src, {s: getattr(rec, s).t.size for s in ("left", "right")})
    for side, stream in rec.streams():
        bs = got[side]
        assert np.array_equal(np.concatenate([b.raw for b in bs]), stream.raw)
        lost = (round(stream.t[-1] * fs) - round(stream.t[0] * fs) + 1) - stream.t.size
        assert sum(b.dropped for b in bs) == lost > 0
        # the device clock (counter or timestamp) survives onto the agent's clock, gaps included
        ratio = np.diff(np.concatenate([b.t for b in bs])) / np.diff(stream.t)
        assert np.all(np.abs(ratio - 1) <= 0.2 + 1e-6)  # the aligner slews by at most 20 %
        assert np.median(ratio) == pytest.approx(1.0, abs=0.01)
        if timestamps:
            dev = np.concatenate([b.device_t for b in bs])
            assert np.allclose(dev, 1000.0 + stream.t * (1 + 80e-6), atol=1e-6)
