"""In-run biofeedback on the agent (docs/feedback.md): a metronome at the target cadence, cues when the loading
rate or the cadence leaves its band, and an optional spoken summary — timed on the output's sample clock.

Modules by responsibility: ``settings`` (the ``feedback:`` config section), ``targets`` (the runner's target from
MQTT, validated and kept on disk), ``monitor`` (recent loading rate and cadence, hysteresis, rate limit),
``scheduler`` (click positions on the sample clock), ``sounds`` (clicks, cues, GPIO patterns, espeak-ng speech),
``renderer`` (mixing block by block, thread hand-off), ``sinks`` (alsa/pulse, gpio, wav) and ``engine`` (the part
the agent wires in). Importing this package imports neither numba nor any audio or GPIO library.
"""

from __future__ import annotations

from edge_agent.runtime.feedback.settings import FEEDBACK_BATCH_MS, FeedbackConfig, FeedbackSinkConfig
from edge_agent.runtime.feedback.sinks.base import FeedbackError, MissingFeedbackExtra

__all__ = ["FEEDBACK_BATCH_MS", "FeedbackConfig", "FeedbackError", "FeedbackSinkConfig", "MissingFeedbackExtra"]
