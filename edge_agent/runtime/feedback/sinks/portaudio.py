"""``alsa`` and ``pulse``: a PortAudio output stream through ``sounddevice`` whose callback renders the block due.

PortAudio calls back on its own thread whenever the device needs ``block`` more samples, so the device's sample
clock paces everything. The callback anchors the renderer's clock with the time the block's first sample reaches
the DAC (``outputBufferDacTime − currentTime`` ahead of now); the configured ``latency_offset_ms`` adds what comes
after the DAC (a Bluetooth link). ``pulse`` is ALSA's ``pulse`` device (Debian's ``libasound2-plugins``, or
PipeWire's ``pipewire-alsa``), with ``PULSE_SINK`` naming the sink, e.g. Bluetooth headphones.

Needs ``pip install 'footfall[audio]'`` (sounddevice) and Debian's ``libportaudio2``; both are imported only here.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np

from edge_agent.runtime.feedback.renderer import Renderer
from edge_agent.runtime.feedback.settings import AlsaSinkConfig, PulseSinkConfig
from edge_agent.runtime.feedback.sinks.base import FeedbackError, FeedbackSink, require_extra

log = logging.getLogger(__name__)


class PortAudioSink(FeedbackSink):
    def __init__(self, cfg: AlsaSinkConfig | PulseSinkConfig, renderer: Renderer) -> None:
        super().__init__(renderer)
        self.cfg = cfg
        self.name = cfg.type
        self.block = round(cfg.block_ms * cfg.sample_rate_hz / 1000.0)
        self.device = cfg.device if isinstance(cfg, AlsaSinkConfig) else "pulse"
        self._stream: Any = None
        self.callbacks = 0
        self.underflows = 0
        self.latency_s: float | None = None

    def open(self) -> None:
        sd = require_extra("sounddevice", "audio", self.name, "and Debian's libportaudio2 (apt install libportaudio2)")
        if isinstance(self.cfg, PulseSinkConfig) and self.cfg.sink:
            os.environ["PULSE_SINK"] = self.cfg.sink  # read by libpulse when ALSA's pulse device connects
        try:
            self._stream = sd.OutputStream(
                device=self.device,
                samplerate=self.cfg.sample_rate_hz,
                channels=1,
                dtype="float32",
                blocksize=self.block,
                latency="low",
                callback=self._callback,
            )
            self._stream.start()
        except (sd.PortAudioError, ValueError) as err:
            raise FeedbackError(f"{self.name} sink: cannot open audio device {self.device!r}: {err}") from None
        self.latency_s = float(self._stream.latency)
        log.info(
            "feedback audio on %s (%s): %d Hz, %d-sample blocks, device latency %.0f ms + offset %.0f ms",
            self.device,
            self.name,
            self.cfg.sample_rate_hz,
            self.block,
            1000.0 * self.latency_s,
            1000.0 * self.renderer.clock.latency_offset_s,
        )

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status.output_underflow:
            self.underflows += 1
        ahead = max(0.0, float(time_info.outputBufferDacTime) - float(time_info.currentTime))
        self.renderer.clock.anchor(self.renderer.pos, time.monotonic() + ahead)
        self.renderer.render(frames, outdata[:, 0])
        self.callbacks += 1

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()

    @property
    def stats(self) -> dict[str, Any]:
        return {"device": self.device, "callbacks": self.callbacks, "underflows": self.underflows,
                "device_latency_ms": None if self.latency_s is None else round(1000 * self.latency_s, 1)}  # fmt: skip
