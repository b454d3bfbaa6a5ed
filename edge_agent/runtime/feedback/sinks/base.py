"""What every feedback sink shares: the error types, the optional-extra import, and the paced writer thread.

A sink owns the output side of a :class:`~edge_agent.runtime.feedback.renderer.Renderer`: it asks for blocks at
the output's pace and anchors the renderer's :class:`~edge_agent.runtime.feedback.renderer.SampleClock` to when
they are played. PortAudio paces itself (its callback); the WAV and GPIO sinks have no device to pace them, so
:class:`PacedWriter` does: block *k* is rendered at ``t0 + k · block / fs`` on the monotonic clock, measured from
absolute deadlines (an overslept wakeup makes the next sleep shorter, so the sample clock never drifts).
"""

from __future__ import annotations

import abc
import importlib
import logging
import threading
import time
from types import ModuleType
from typing import Any

import numpy as np

from edge_agent.runtime.feedback.renderer import Renderer

log = logging.getLogger(__name__)


class FeedbackError(RuntimeError):
    """The feedback output cannot start or continue; the message says which sink and why."""


class MissingFeedbackExtra(FeedbackError, ImportError):
    """A sink needs an optional dependency that is not installed."""


def require_extra(module: str, extra: str, sink: str, hint: str = "") -> ModuleType:
    """Import a sink's library, or fail naming the pip extra (and system package) that provides it."""
    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as err:  # sounddevice raises OSError when libportaudio is missing
        raise MissingFeedbackExtra(
            f"the {sink!r} feedback sink needs the Python module {module!r} ({err}): pip install 'footfall[{extra}]'"
            + (f"; {hint}" if hint else "")
        ) from err


class FeedbackSink(abc.ABC):
    """Opened once per agent run; ``close()`` is idempotent."""

    name: str = "sink"

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    @abc.abstractmethod
    def open(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    @property
    def stats(self) -> dict[str, Any]:
        return {}


class PacedWriter(FeedbackSink):
    """A thread that renders block after block at the audio rate and hands each to :meth:`emit`."""

    def __init__(self, renderer: Renderer, block_samples: int) -> None:
        super().__init__(renderer)
        self.block = max(1, int(block_samples))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.blocks = 0
        self.late_blocks = 0
        self.max_late_s = 0.0
        self.failed: BaseException | None = None

    def open(self) -> None:
        self._start_output()
        self._thread = threading.Thread(target=self._run, name=f"footfall-feedback-{self.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self._finish_output()

    def _run(self) -> None:
        fs = self.renderer.fs
        t0 = time.monotonic()
        k = 0
        try:
            while not self._stop.is_set():
                n0 = k * self.block
                deadline = t0 + n0 / fs
                delay = deadline - time.monotonic()
                if delay > 0:
                    if self._stop.wait(delay):
                        break
                else:
                    late = -delay
                    self.max_late_s = max(self.max_late_s, late)
                    if late > self.block / fs:
                        self.late_blocks += 1  # a device would have played silence (an underrun) here
                self.renderer.clock.anchor(n0, deadline)
                self.emit(self.renderer.render(self.block), n0, deadline)
                self.blocks += 1
                k += 1
        except BaseException as err:  # a full disk, a GPIO fault: say so once, stop the output, keep measuring
            self.failed = err
            log.exception("feedback %s output stopped", self.name)

    @abc.abstractmethod
    def _start_output(self) -> None: ...

    @abc.abstractmethod
    def emit(self, block: np.ndarray, first_sample: int, played_at: float) -> None: ...

    @abc.abstractmethod
    def _finish_output(self) -> None: ...

    @property
    def stats(self) -> dict[str, Any]:
        return {
            "blocks": self.blocks,
            "late_blocks": self.late_blocks,
            "max_late_ms": round(1000.0 * self.max_late_s, 3),
            "failed": repr(self.failed) if self.failed else None,
        }
