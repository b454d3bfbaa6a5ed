"""A serial insole emulator: the simulator's frames, encoded as the firmware would, on a pseudo-terminal.

For demos and end-to-end tests of the serial path without hardware::

    python -m edge_agent.sources.emulate --profile diy-esp32-fsr8 --duration 120
    # prints: serial insole emulator: left+right on /dev/pts/7
    footfall-agent run --config agent.yaml     # with  source: {type: serial, port: /dev/pts/7}

Frames follow the profile's ``transport.frame``: the counter is the frame slot (so simulated frame loss
shows up as counter gaps), the timestamp (if the layout has one) is the simulated time, optionally on
a device clock with an offset and a drift. ``--corrupt-every N`` flips a bit in every N-th frame.
Profiles without a side byte get one pty per foot.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
import tty
from collections.abc import Iterator
from typing import Literal

import numpy as np

from edge_agent.profiles import HardwareProfile, SerialTransport, load_profile
from edge_agent.recordings import Recording
from edge_agent.sources.frames import encode_frame


def firmware_frames(
    profile: HardwareProfile, rec: Recording, clock_offset_s: float = 0.0, clock_ppm: float = 0.0
) -> Iterator[tuple[float, str, bytes]]:
    """(simulated time, side, frame bytes) for every frame of ``rec``, in time order (left first on ties)."""
    if not isinstance(profile.transport, SerialTransport):
        raise ValueError(f"profile {profile.name!r} has no serial transport (it is {profile.transport.type!r})")
    fmt = profile.transport.frame
    fs = float(rec.meta.get("simulator", {}).get("sample_rate_hz") or profile.sample_rate_hz)
    rows: list[tuple[float, int, Literal["left", "right"], int, np.ndarray]] = []
    for k, (side, stream) in enumerate(rec.streams()):
        slots = np.rint(stream.t * fs).astype(np.int64)
        rows += [(float(t), k, side, int(s), r) for t, s, r in zip(stream.t, slots, stream.raw, strict=True)]
    rows.sort(key=lambda r: (r[0], r[1]))
    with_t = fmt.timestamp != "none"
    for t, _, side, slot, raw in rows:
        dev_t = clock_offset_s + t * (1.0 + clock_ppm * 1e-6) if with_t else None
        yield t, side, encode_frame(fmt, raw, side=side if fmt.side_byte else None, counter=slot, device_t_s=dev_t)


class PtyEmulator:
    """Streams frames into pseudo-terminals in (scaled) real time from a thread; ``paths`` per side."""

    def __init__(
        self,
        frames: list[tuple[float, str, bytes]],
        side_byte: bool,
        speed: float = 1.0,
        corrupt_every: int = 0,
        burst_s: float = 0.02,
    ) -> None:
        self.frames = frames
        self.speed = speed
        self.corrupt_every = corrupt_every
        self.burst_s = burst_s
        self.sent = 0
        self.corrupted = 0
        self._fds: dict[str, tuple[int, int]] = {}
        for side in ("both",) if side_byte else ("left", "right"):
            master, slave = os.openpty()
            tty.setraw(slave)  # no echo or line editing of binary frames
            self._fds[side] = (master, slave)
        self.paths = {side: os.ttyname(slave) for side, (_, slave) in self._fds.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pty-emulator", daemon=True)

    def __enter__(self) -> PtyEmulator:
        return self

    def start(self) -> None:
        """Start sending (after the reader opened the port: pyserial discards input waiting at open)."""
        self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def close(self) -> None:
        """Stop sending and close the ptys (the reader sees the port vanish)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        for master, slave in self._fds.values():
            for fd in (master, slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fds.clear()

    def _run(self) -> None:
        start = time.monotonic()
        t_first = self.frames[0][0] if self.frames else 0.0
        pending: dict[str, bytearray] = {side: bytearray() for side in self._fds}
        for i, (t, side, data) in enumerate(self.frames):
            if self._stop.is_set():
                return
            key = "both" if "both" in self._fds else side
            if self.corrupt_every and (i + 1) % self.corrupt_every == 0:
                b = bytearray(data)
                b[len(b) // 2] ^= 0x10
                data = bytes(b)
                self.corrupted += 1
            pending[key] += data
            self.sent += 1
            due = (t - t_first) / self.speed if self.speed > 0 else 0.0
            if due - (time.monotonic() - start) > self.burst_s:
                self._flush(pending)
                self._stop.wait(max(0.0, due - (time.monotonic() - start)))
        self._flush(pending)

    def _flush(self, pending: dict[str, bytearray]) -> None:
        for key, buf in pending.items():
            if buf:
                os.write(self._fds[key][0], bytes(buf))
                buf.clear()


def main(argv: list[str] | None = None) -> int:
    from edge_agent.recordings.simulator import RunParams, simulate

    ap = argparse.ArgumentParser(prog="python -m edge_agent.sources.emulate", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="diy-esp32-fsr8", help="a profile with a serial transport")
    ap.add_argument("--duration", type=float, default=60.0, help="running seconds (default 60)")
    ap.add_argument("--standing", type=float, default=5.0, help="quiet standing first (s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed", type=float, default=1.0, help="1 = real time, 0 = as fast as possible")
    ap.add_argument("--dropout", type=float, default=0.0, help="frame loss probability")
    ap.add_argument("--corrupt-every", type=int, default=0, help="flip a bit in every N-th frame")
    args = ap.parse_args(argv)
    try:
        profile = load_profile(args.profile)
        rec, truths = simulate(
            profile,
            RunParams(duration_s=args.duration, standing_s=args.standing, seed=args.seed, dropout_prob=args.dropout),
        )
        frames = list(firmware_frames(profile, rec))
    except ValueError as err:
        print(f"emulate: {err}", file=sys.stderr)
        return 2
    side_byte = profile.transport.frame.side_byte  # type: ignore[union-attr]
    with PtyEmulator(frames, side_byte, speed=args.speed, corrupt_every=args.corrupt_every) as emu:
        where = ", ".join(f"{'left+right' if side == 'both' else side} on {path}" for side, path in emu.paths.items())
        print(f"serial insole emulator: {where} ({len(frames)} frames, {len(truths)} steps)", flush=True)
        emu.start()  # like a device: it streams whether or not anyone listens yet
        try:
            emu.wait()
            print(f"done: {emu.sent} frames sent, {emu.corrupted} corrupted; Ctrl-C to close the port", flush=True)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
