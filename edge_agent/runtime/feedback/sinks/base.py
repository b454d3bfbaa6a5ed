"""What every feedback sink shares: the error types, the optional-extra import, and the paced writer thread.

A sink owns the output side of a :class:`~edge_agent.runtime.feedback.renderer.Renderer`: it asks for blocks at
the output's pace and anchors the renderer's :class:`~edge_agent.runtime.feedback.renderer.SampleClock` to when
they are played. PortAudio paces itself (its callback); the WAV and GPIO sinks have no device to pace them, so
:class:`PacedWriter` does: sample *n* plays at ``t0 + n / fs`` on the monotonic clock, and a block is rendered when
its first sample is due, measured from absolute deadlines (an overslept wakeup makes the next sleep shorter, so
the sample clock never drifts).

Waking 50 times a second costs more CPU than everything else the agent does (a thread wakeup is ~0.1 ms of CPU
on a VM), so the writer sleeps while nothing sounds: until the block that holds the next click, or until the
renderer is asked for something (:attr:`Renderer.wakeup`). The silent blocks it slept through are then written
in one go *without* taking requests, so a sound asked for at time *t* starts at the first block boundary after
*t* — as on a device that plays one block while the next is rendered. Nothing changes in the output: the same
samples, at the same positions.
"""

from __future__ import annotations

import abc
import importlib
import logging
import math
import threading
import time
from types import ModuleType
from typing import Any

import numpy as np

from edge_agent.runtime.feedback.renderer import Renderer

log = logging.getLogger(__name__)

#: Longest sleep of an idle writer (s): it also bounds how long close() waits.
IDLE_MAX_S = 0.5


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
        self._wake = threading.Event()  # set by the renderer (a request) and by close()
        self._idle_since: int | None = None
        renderer.wakeup = self._wake.set
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
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self._finish_output()

    def _run(self) -> None:
        r, fs, block = self.renderer, self.renderer.fs, self.block
        t0 = time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._idle_since is not None:
                    # the silent blocks slept through, written at once with requests held back: up to the block
                    # under way when a request woke us (it starts at the next boundary), else up to the block of
                    # the click we woke for (rendered on time below)
                    k_now = math.floor((now - t0) * fs / block)
                    upto = (k_now + 1) * block if r.has_requests else k_now * block
                    if upto > r.pos:
                        self._emit(r.pos, t0, hold=True, n=upto - r.pos)
                        now = time.monotonic()
                    self._idle_since = None
                start = t0 + r.pos / fs
                if start > now:
                    self._wake.wait(start - now)
                    self._wake.clear()
                    if self._stop.is_set():
                        break
                    if time.monotonic() < start - 0.0005:  # a request woke us mid-block: it starts at ``start``
                        continue
                late = time.monotonic() - start
                self.max_late_s = max(self.max_late_s, late)
                if late > block / fs:
                    self.late_blocks += 1  # a device would have played silence (an underrun) here
                self._emit(r.pos, t0, hold=False, n=block)
                end = r.sounding_until()
                if end is not None and end - r.pos <= block:
                    # a click's tail spills into the next block: render it now rather than wake up again for it
                    # (a request arriving meanwhile starts one block later)
                    self._emit(r.pos, t0, hold=True, n=block)
                if not self._busy():
                    self._sleep_until_needed(t0)
        except BaseException as err:  # a full disk, a GPIO fault: say so once, stop the output, keep measuring
            self.failed = err
            log.exception("feedback %s output stopped", self.name)

    def _emit(self, n0: int, t0: float, *, hold: bool, n: int) -> None:
        played_at = t0 + n0 / self.renderer.fs
        self.renderer.clock.anchor(n0, played_at)
        self.emit(self.renderer.render(n, hold_requests=hold), n0, played_at)
        self.blocks += n // self.block

    def _busy(self) -> bool:
        """Something is sounding (or still switched on): render every block on time."""
        return self.renderer.sounding

    def _sleep_until_needed(self, t0: float) -> None:
        """Nothing sounds: sleep until the block of the next click (at most ``IDLE_MAX_S``) or a request."""
        r, fs = self.renderer, self.renderer.fs
        nxt = r.scheduler.next_onset()
        until = time.monotonic() + IDLE_MAX_S
        if nxt is not None:
            until = min(until, t0 + (nxt // self.block) * self.block / fs)
        delay = until - time.monotonic()
        if delay > 0 and not self._wake.is_set():
            self._idle_since = r.pos
            self._wake.wait(delay)
            self._wake.clear()

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
