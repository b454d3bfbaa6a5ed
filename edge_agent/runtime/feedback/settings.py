"""The ``feedback:`` section of the agent's configuration: where the sounds go, and how cues are judged.

Strict like the rest of :mod:`edge_agent.config` (unknown keys are errors, every field titled and described). The
sink is chosen by its ``type`` (Frigate style): ``alsa`` and ``pulse`` play through PortAudio (``sounddevice``,
extra ``footfall[audio]``), ``gpio`` pulses a buzzer or vibration motor (``gpiozero``, extra ``footfall[gpio]``),
``wav`` writes exactly what would be played to a file, paced like a device. This module imports only pydantic;
each sink imports its library when it is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from edge_agent.common.config import StrictModel

#: Source batch length (ms) when feedback is on: a step is known ~85 ms after toe-off (the kernels confirm the
#: swing), so 100 ms batches keep step → cue under 300 ms (docs/feedback.md); 200 ms batches would not.
FEEDBACK_BATCH_MS = 100.0


class NoSinkConfig(StrictModel):
    """No feedback (the default)."""

    type: Literal["none"] = Field("none", title="Sink type", description="No in-run feedback.")


class _AudioSinkConfig(StrictModel):
    sample_rate_hz: int = Field(
        default=48_000, ge=8_000, le=192_000, title="Sample rate (Hz)", description="Of the output stream."
    )
    block_ms: float = Field(
        default=20.0,
        ge=2.0,
        le=200.0,
        title="Block (ms)",
        description="Samples rendered per callback; a cue waits at most one block before it is rendered.",
    )


class AlsaSinkConfig(_AudioSinkConfig):
    """ALSA through PortAudio (``pip install 'footfall[audio]'`` and Debian's ``libportaudio2``)."""

    type: Literal["alsa"] = Field("alsa", title="Sink type", description="An ALSA device through PortAudio.")
    device: str = Field(
        default="default",
        min_length=1,
        max_length=200,
        title="Device",
        description="PortAudio device name (or a unique part of it), e.g. default, hw:1,0, bluealsa.",
    )


class PulseSinkConfig(_AudioSinkConfig):
    """PulseAudio or PipeWire (Bluetooth headphones) through ALSA's ``pulse`` device and PortAudio."""

    type: Literal["pulse"] = Field(
        "pulse", title="Sink type", description="The PulseAudio/PipeWire server through ALSA's pulse plugin."
    )
    sink: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        title="Pulse sink",
        description="Sink name (pactl list short sinks), e.g. bluez_output.XX_XX_XX_XX_XX_XX.1; empty: the default.",
    )


class GpioSinkConfig(StrictModel):
    """A buzzer or vibration motor on a GPIO pin through gpiozero (``pip install 'footfall[gpio]'``)."""

    type: Literal["gpio"] = Field("gpio", title="Sink type", description="A buzzer or vibration motor on a pin.")
    pin: str = Field(
        min_length=1,
        max_length=20,
        pattern=r"^[A-Za-z0-9:_-]+$",
        title="Pin",
        description="gpiozero pin name: 18, GPIO18 or BOARD12 (docs/feedback.md has the wiring).",
    )
    device: Literal["buzzer", "motor"] = Field(
        default="buzzer",
        title="Device",
        description="An active buzzer (own oscillator) or a vibration motor behind a transistor.",
    )
    active_high: bool = Field(default=True, title="Active high", description="The pin drives the device when high.")
    click_ms: float | None = Field(
        default=None,
        ge=2.0,
        le=200.0,
        title="Click pulse (ms)",
        description="Metronome pulse length; empty: 25 ms for a buzzer, 60 ms for a motor (it needs time to spin).",
    )

    @property
    def pulse_ms(self) -> float:
        return self.click_ms if self.click_ms is not None else (25.0 if self.device == "buzzer" else 60.0)


class WavSinkConfig(_AudioSinkConfig):
    """Writes exactly what would be played, paced at the audio rate like a device (tests, listening back)."""

    type: Literal["wav"] = Field("wav", title="Sink type", description="A 16-bit mono WAV file.")
    path: Path = Field(
        title="WAV file",
        description="Overwritten at start; a JSON sidecar (PATH.json) lists every sound with its sample position.",
    )


FeedbackSinkConfig = Annotated[
    NoSinkConfig | AlsaSinkConfig | PulseSinkConfig | GpioSinkConfig | WavSinkConfig, Field(discriminator="type")
]


class FeedbackConfig(StrictModel):
    """In-run biofeedback (docs/feedback.md): a metronome at the target cadence and cues when the loading rate or
    the cadence leaves its band. Off unless a sink is set."""

    sink: FeedbackSinkConfig = Field(
        default_factory=NoSinkConfig,
        title="Sink",
        description="none | alsa | pulse | gpio | wav (discriminated by type).",
    )
    target_cadence_spm: float | None = Field(
        default=None,
        ge=100.0,
        le=240.0,
        title="Target cadence (spm)",
        description="Overrides the program's target cadence (--target-cadence); works without any program.",
    )
    latency_offset_ms: float = Field(
        default=0.0,
        ge=0.0,
        le=1000.0,
        title="Output latency offset (ms)",
        description="Delay from the output to the ear (Bluetooth: often 150–250 ms; docs/feedback.md measures it).",
    )
    volume: float = Field(default=0.5, gt=0.0, le=1.0, title="Volume", description="Of clicks, cues and speech.")
    metronome_when: Literal["running", "always"] = Field(
        default="running",
        title="Metronome when",
        description="running: only while running is detected; always: from start to stop.",
    )
    loading_window_steps: int = Field(
        default=6,
        ge=2,
        le=60,
        title="Loading window (steps)",
        description="The recent loading rate is the median VALR of this many latest steps (both feet).",
    )
    cadence_window_steps: int = Field(
        default=12, ge=4, le=120, title="Cadence window (steps)", description="Recent cadence over this many steps."
    )
    hysteresis_pct: float = Field(
        default=3.0,
        ge=0.0,
        le=20.0,
        title="Hysteresis (%)",
        description="Back in band only this % (of the limit; at most half the cadence band) inside it: no cue "
        "flapping at the edge.",
    )
    voice: str = Field(
        default="en", pattern=r"^[A-Za-z0-9+_-]{1,40}$", title="Voice", description="espeak-ng voice (espeak-ng -v)."
    )
    voice_wpm: int = Field(default=165, ge=80, le=450, title="Speech rate", description="Words per minute.")
    espeak: str = Field(
        default="espeak-ng",
        min_length=1,
        max_length=400,
        title="espeak-ng command",
        description="Program used for the spoken summary (Debian package espeak-ng).",
    )

    @model_validator(mode="after")
    def _gpio_has_no_link_latency(self) -> FeedbackConfig:
        if self.sink.type == "gpio" and self.latency_offset_ms > 50:
            raise ValueError(f"latency_offset_ms {self.latency_offset_ms} is for audio links; a GPIO pin has none")
        return self

    @property
    def enabled(self) -> bool:
        return self.sink.type != "none"
