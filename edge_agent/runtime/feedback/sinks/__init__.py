"""Feedback sinks, chosen by the ``type`` of ``feedback.sink`` (:mod:`edge_agent.runtime.feedback.settings`).

Importing this package imports no audio or GPIO library: each sink imports its own when it is opened.
"""

from __future__ import annotations

from typing import Any

from edge_agent.runtime.feedback.renderer import Renderer
from edge_agent.runtime.feedback.sinks.base import FeedbackError, FeedbackSink, MissingFeedbackExtra


def create_sink(cfg: Any, renderer: Renderer) -> FeedbackSink:
    """The sink for ``cfg`` (a sink config model), bound to ``renderer``; not yet opened."""
    if cfg.type == "wav":
        from edge_agent.runtime.feedback.sinks.wav import WavSink

        return WavSink(cfg, renderer)
    if cfg.type in ("alsa", "pulse"):
        from edge_agent.runtime.feedback.sinks.portaudio import PortAudioSink

        return PortAudioSink(cfg, renderer)
    if cfg.type == "gpio":
        from edge_agent.runtime.feedback.sinks.gpio import GpioSink

        return GpioSink(cfg, renderer)
    raise FeedbackError(f"unknown feedback sink type {cfg.type!r} (known: alsa, pulse, gpio, wav)")


__all__ = ["FeedbackError", "FeedbackSink", "MissingFeedbackExtra", "create_sink"]
