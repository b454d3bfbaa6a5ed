"""What the runner hears (or feels): the click, the cues, the spoken summary.

Audio sinks get tones; the GPIO sink gets on/off patterns at :data:`GPIO_RATE_HZ` (1 ms resolution) that drive a
buzzer or a vibration motor. The sounds are chosen to be told apart without looking (docs/feedback.md):

=================  ====================================================  ===========================================
sound              audio                                                 GPIO pattern
=================  ====================================================  ===========================================
click              12 ms 2 kHz tick, fast decay                          one ``click_ms`` pulse
``loading``        two falling tones 880 → 587 Hz, 150 ms each: "softer"  two long pulses (250 ms, gap 150 ms)
``cadence_low``    three rising tones 660 → 880 → 1175 Hz, 70 ms: "quicker"  three short pulses (60 ms, gap 60 ms)
``cadence_high``   one low tone 440 Hz, 300 ms: "ease the step rate"      one long pulse (500 ms)
=================  ====================================================  ===========================================

Speech comes from espeak-ng (``espeak-ng --stdout`` writes a WAV to a pipe, whose header cannot know the length, so
the data chunk is read to the end), resampled to the output rate.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

GPIO_RATE_HZ = 1000
CUE_KINDS = ("loading", "cadence_low", "cadence_high")
#: Tone frequencies per cue (Hz) and tone length (s); the click is a 2 kHz tick.
CUE_TONES: dict[str, tuple[tuple[float, ...], float]] = {
    "loading": ((880.0, 587.33), 0.15),
    "cadence_low": ((659.26, 880.0, 1174.66), 0.07),
    "cadence_high": ((440.0,), 0.30),
}
CLICK_HZ = 2000.0
CLICK_S = 0.012
#: GPIO patterns: (on ms, off ms) pairs.
GPIO_PATTERNS: dict[str, tuple[tuple[float, float], ...]] = {
    "loading": ((250.0, 150.0), (250.0, 0.0)),
    "cadence_low": ((60.0, 60.0), (60.0, 60.0), (60.0, 0.0)),
    "cadence_high": ((500.0, 0.0),),
}
SPEECH_TIMEOUT_S = 15.0


def _tone(freq: float, seconds: float, fs: int, amp: float, *, decay_s: float | None = None) -> np.ndarray:
    n = max(1, round(seconds * fs))
    t = np.arange(n) / fs
    wave = np.sin(2 * np.pi * freq * t)
    ramp = min(n // 2, max(1, round(0.004 * fs)))  # 4 ms raised-cosine edges: no clicks inside a cue
    env = np.ones(n)
    edge = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    env[:ramp] = edge
    env[n - ramp :] = edge[::-1]
    if decay_s is not None:
        env = np.exp(-t / decay_s)
        env[: min(n, 8)] *= np.linspace(0.0, 1.0, min(n, 8))
    return (amp * wave * env).astype(np.float32)


@dataclass(frozen=True)
class SoundBank:
    """The rendered sounds for one sink (sample rate and volume applied once, at start)."""

    fs: int
    click: np.ndarray
    cues: dict[str, np.ndarray]
    speech_ok: bool

    @classmethod
    def audio(cls, fs: int, volume: float) -> SoundBank:
        click = _tone(CLICK_HZ, CLICK_S, fs, volume, decay_s=CLICK_S / 4)
        cues = {}
        gap = np.zeros(round(0.03 * fs), dtype=np.float32)
        for kind, (freqs, seconds) in CUE_TONES.items():
            parts: list[np.ndarray] = []
            for f in freqs:
                parts += [_tone(f, seconds, fs, 0.8 * volume), gap]
            cues[kind] = np.concatenate(parts[:-1])
        return cls(fs, click, cues, speech_ok=True)

    @classmethod
    def gpio(cls, pulse_ms: float) -> SoundBank:
        fs = GPIO_RATE_HZ
        click = np.ones(max(1, round(pulse_ms * fs / 1000.0)), dtype=np.float32)
        cues = {}
        for kind, pattern in GPIO_PATTERNS.items():
            parts = []
            for on, off in pattern:
                parts += [np.ones(round(on * fs / 1000.0)), np.zeros(round(off * fs / 1000.0))]
            cues[kind] = np.concatenate(parts).astype(np.float32)
        return cls(fs, click, cues, speech_ok=False)


def decode_wav_pipe(data: bytes) -> tuple[np.ndarray, int]:
    """A mono 16-bit PCM WAV as written to a pipe (RIFF sizes may be placeholders) → (float32 samples, rate)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE stream")
    pos, rate, channels, bits = 12, None, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = pos + 8
        if cid == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[body : body + 16])
            if fmt != 1:
                raise ValueError(f"WAV format {fmt} is not PCM")
        elif cid == b"data":
            if rate is None or channels is None or bits != 16:
                raise ValueError("WAV data before a 16-bit PCM fmt chunk")
            end = len(data) if size in (0, 0xFFFFFFFF, 0x7FFFFFFF) or body + size > len(data) else body + size
            pcm = data[body:end]
            pcm = pcm[: len(pcm) - len(pcm) % (2 * channels)]
            x = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels)[:, 0]
            return (x.astype(np.float32) / 32768.0), int(rate)
        pos = body + size + (size & 1)
    raise ValueError("no data chunk in the WAV stream")


def resample(x: np.ndarray, rate: int, to_rate: int) -> np.ndarray:
    """Linear interpolation to ``to_rate`` (speech only: enough for intelligibility, no dependency)."""
    if rate == to_rate or len(x) == 0:
        return x.astype(np.float32)
    n = max(1, round(len(x) * to_rate / rate))
    return np.interp(np.arange(n) * (rate / to_rate), np.arange(len(x)), x).astype(np.float32)


async def synthesize(text: str, *, fs: int, volume: float, espeak: str, voice: str, wpm: int) -> np.ndarray:
    """``text`` spoken by espeak-ng, as samples at ``fs`` (raises OSError/ValueError/TimeoutError on failure)."""
    proc = await asyncio.create_subprocess_exec(
        espeak,
        "-v",
        voice,
        "-s",
        str(wpm),
        "--stdout",
        "--",
        text,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), SPEECH_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise OSError(f"{espeak} exited with {proc.returncode}: {err.decode(errors='replace')[:200]}")
    samples, rate = decode_wav_pipe(out)
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak > 0:
        samples = samples * (0.9 * volume / peak)
    return resample(samples, rate, fs)
