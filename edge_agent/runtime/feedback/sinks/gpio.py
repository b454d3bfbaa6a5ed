"""``gpio``: a buzzer or a vibration motor on a GPIO pin, pulsed on the same sample clock as the audio sinks.

The renderer runs at :data:`~edge_agent.runtime.feedback.sounds.GPIO_RATE_HZ` (1 ms per sample) with on/off
patterns instead of tones; this sink renders 20 ms blocks on time (:class:`PacedWriter`) and switches the pin at
each edge's absolute deadline on the monotonic clock. Every rising edge's error against its ideal time is
measured (the timing jitter of this output), and shown in the stats.

gpiozero (``pip install 'footfall[gpio]'``) picks the Pi's pin library itself (lgpio on Raspberry Pi OS);
``GPIOZERO_PIN_FACTORY=mock`` runs it without a Pi. Wiring: docs/feedback.md.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edge_agent.runtime.feedback.renderer import Renderer
from edge_agent.runtime.feedback.settings import GpioSinkConfig
from edge_agent.runtime.feedback.sinks.base import FeedbackError, PacedWriter, require_extra

BLOCK_MS = 20


class GpioSink(PacedWriter):
    name = "gpio"

    def __init__(self, cfg: GpioSinkConfig, renderer: Renderer) -> None:
        super().__init__(renderer, round(BLOCK_MS * renderer.fs / 1000.0))
        self.cfg = cfg
        self.device: Any = None
        self._on = False
        self.edges = 0
        self.edge_errors_s: list[float] = []

    def _start_output(self) -> None:
        gpiozero = require_extra("gpiozero", "gpio", "gpio")
        try:
            self.device = gpiozero.DigitalOutputDevice(self.cfg.pin, active_high=self.cfg.active_high)
        except Exception as err:  # gpiozero raises its own hierarchy (BadPinFactory, PinInvalidPin …)
            hint = (
                " (not a Raspberry Pi? GPIOZERO_PIN_FACTORY=mock tries it without one)" if "factory" in str(err) else ""
            )
            raise FeedbackError(
                f"gpio sink: cannot drive pin {self.cfg.pin!r}: {type(err).__name__}: {err}{hint}"
            ) from None

    def emit(self, block: np.ndarray, first_sample: int, played_at: float) -> None:
        fs = self.renderer.fs
        on = block > 0.5
        prev = np.concatenate(([self._on], on[:-1]))
        for i in np.flatnonzero(on != prev):
            due = played_at + i / fs
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            state = bool(on[i])
            self.device.value = state
            if state:
                self.edge_errors_s.append(time.monotonic() - due)
                del self.edge_errors_s[:-10_000]
            self.edges += 1
        self._on = bool(on[-1]) if len(on) else self._on

    def _busy(self) -> bool:
        return super()._busy() or self._on  # the pin must go off on time, not at the next wakeup

    def _finish_output(self) -> None:
        if self.device is not None:
            self.device.off()
            self.device.close()
            self.device = None

    @property
    def stats(self) -> dict[str, Any]:
        errs = np.abs(np.asarray(self.edge_errors_s)) * 1000.0
        return {
            **super().stats,
            "pin": self.cfg.pin,
            "edges": self.edges,
            "edge_error_ms_p99": round(float(np.percentile(errs, 99)), 3) if len(errs) else None,
            "edge_error_ms_max": round(float(errs.max()), 3) if len(errs) else None,
        }
