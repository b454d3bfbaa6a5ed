"""Reading what the feedback sinks wrote: WAV files decoded and sounds found in them by frequency band.

Independent of the agent's code on purpose: onsets are found in the samples (a 4th-order Butterworth band-pass,
its magnitude, the first sample above a threshold after at least ``refractory_s`` below it), so a test compares
what is *in the file* with what should be there. The causal filter delays every onset by the same fraction of a
millisecond: intervals are unaffected, and a latency measured with it errs on the long side.
"""

from __future__ import annotations

import itertools
import wave
from pathlib import Path

import numpy as np
from scipy import signal

#: Bands (Hz) of the sounds in edge_agent/runtime/feedback/sounds.py: the 2 kHz click, the cues' tones.
CLICK_BAND = (1600.0, 2500.0)
LOADING_CUE_BAND = (500.0, 1000.0)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, "the sinks write 16-bit mono"
        fs = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    return x, fs


def band_envelope(x: np.ndarray, fs: int, band: tuple[float, float]) -> np.ndarray:
    sos = signal.butter(4, band, btype="bandpass", fs=fs, output="sos")
    return np.abs(signal.sosfilt(sos, x)).astype(np.float32)


def onsets(
    x: np.ndarray, fs: int, band: tuple[float, float], threshold: float, refractory_s: float = 0.1
) -> np.ndarray:
    """Sample indices where the band's magnitude rises above ``threshold`` after ``refractory_s`` below it."""
    env = band_envelope(x, fs, band)
    above = np.flatnonzero(env > threshold)
    if len(above) == 0:
        return above
    gap = round(refractory_s * fs)
    starts = [above[0]]
    starts += [int(b) for a, b in itertools.pairwise(above) if b - a > gap]
    return np.asarray(starts, dtype=np.int64)


def grid_deviation_ms(clicks: np.ndarray, fs: int, spm: float) -> np.ndarray:
    """Each click's distance (ms) from the ideal grid at ``spm`` through the first click of its contiguous run
    (a pause of more than two periods — the metronome stopped — starts a new run)."""
    period = fs * 60.0 / spm
    dev: list[float] = []
    first = 0
    for i in range(len(clicks)):
        if i and clicks[i] - clicks[i - 1] > 2 * period:
            first = i
        dev.append((clicks[i] - (clicks[first] + (i - first) * period)) / fs * 1000.0)
    return np.asarray(dev)
