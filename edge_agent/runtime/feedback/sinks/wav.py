"""``wav``: exactly what would be played, written to a 16-bit mono WAV file at the audio rate.

Paced like a device (:class:`~edge_agent.runtime.feedback.sinks.base.PacedWriter`): sample *n* is written at
``t0 + n / fs``, so a cue lands in the file where a speaker would have played it, and the file is as long as
the run. Python's :mod:`wave` rewrites the header after every block, so even a killed agent leaves a valid file.

The sidecar ``PATH.json`` (written on close) gives the time base and every sound in the file: ``t0_monotonic``
and ``t0_unix`` of sample 0 (the Unix time as the pipeline maps it: ``time.time() − time.monotonic()`` plus the
monotonic time), and per onset its kind, sample, cause (the monotonic time of the step that caused a cue) and
the measured step → heard latency.
"""

from __future__ import annotations

import json
import time
import wave
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from edge_agent.runtime.feedback.renderer import Onset, Renderer
from edge_agent.runtime.feedback.settings import WavSinkConfig
from edge_agent.runtime.feedback.sinks.base import FeedbackError, PacedWriter


class WavSink(PacedWriter):
    name = "wav"

    def __init__(self, cfg: WavSinkConfig, renderer: Renderer) -> None:
        super().__init__(renderer, round(cfg.block_ms * cfg.sample_rate_hz / 1000.0))
        self.path = Path(cfg.path)
        self._wav: wave.Wave_write | None = None
        self._file: BinaryIO | None = None
        self._onsets: list[Onset] = []
        self._t0: tuple[float, float] | None = None
        renderer.onset_listeners.append(self._onsets.append)

    @property
    def sidecar(self) -> Path:
        return self.path.with_name(self.path.name + ".json")

    def _start_output(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "wb")  # noqa: SIM115  # open for the whole run, closed in _finish_output
        except OSError as err:
            raise FeedbackError(f"wav sink: cannot write {self.path}: {err.strerror or err}") from None
        self._file = fh
        w = wave.open(fh, "wb")  # noqa: SIM115  # closed in _finish_output
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(self.renderer.fs)
        self._wav = w

    def emit(self, block: np.ndarray, first_sample: int, played_at: float) -> None:
        if self._t0 is None:
            self._t0 = (played_at, played_at + (time.time() - time.monotonic()))
        assert self._wav is not None
        self._wav.writeframes((block * 32767.0).astype("<i2").tobytes())

    def _finish_output(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None
        if self._file is not None:
            self._file.close()
            self._file = None
        self._write_sidecar()

    def _write_sidecar(self) -> None:
        clock = self.renderer.clock
        onsets: list[dict[str, Any]] = []
        for o in list(self._onsets):
            heard = clock.heard_at(o.sample)
            d: dict[str, Any] = {"kind": o.kind, "sample": o.sample}
            if o.cause_t is not None and heard is not None:
                d["cause_monotonic"] = o.cause_t
                d["latency_ms"] = round(1000.0 * (heard - o.cause_t), 2)
            d.update(o.info)
            onsets.append(d)
        doc = {
            "sample_rate_hz": self.renderer.fs,
            "samples": self.renderer.pos,
            "t0_monotonic": self._t0[0] if self._t0 else None,
            "t0_unix": self._t0[1] if self._t0 else None,
            "latency_offset_ms": 1000.0 * clock.latency_offset_s,
            "writer": self.stats,
            "onsets": onsets,
        }
        tmp = self.sidecar.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(self.sidecar)
