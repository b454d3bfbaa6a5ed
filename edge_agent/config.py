"""The agent's configuration: one YAML file plus ``FOOTFALL_…`` environment variables (Frigate style).

Strict on purpose: every model forbids unknown keys (a typo must not silently fall back to a default),
every field has a title and a description (``footfall-agent validate-config --schema`` prints them), and
errors name the file, the key path, the offending value and the YAML line (from PyYAML's node marks).

Precedence, highest first: command-line overrides > environment (``FOOTFALL_MQTT__URL``, nested with
``__``) > the YAML file > defaults. Secrets (MQTT password, also from ``password_file``) are
``SecretStr``: redacted in every repr, log line and error message.
"""

from __future__ import annotations

import contextvars
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from edge_agent.common.config import (
    TOPIC_PATTERN,
    BrokerConfig,
    ConfigError,
    StrictModel,
    format_validation_error,
    load_yaml,
)
from edge_agent.common.redact import redact_url
from edge_agent.contract import DEFAULT_BASE_TOPIC, DEVICE_ID_PATTERN, RUNNER_ID_PATTERN, SHOE_NAME_PATTERN
from edge_agent.runtime.feedback.settings import FEEDBACK_BATCH_MS, FeedbackConfig
from edge_agent.sources import SourceConfig
from edge_agent.sources.simulator import SimulatorSourceConfig

ENV_PREFIX = "FOOTFALL_"
#: The agent's default source batch length (ms); see AgentConfig._agent_batch.
AGENT_BATCH_MS = 200.0


def default_state_dir() -> Path:
    """systemd's ``$STATE_DIRECTORY`` when run as a service, else ``~/.local/state/footfall``."""
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    return Path.home() / ".local" / "state" / "footfall"


class HaDiscoveryConfig(StrictModel):
    enabled: bool = Field(
        default=True, title="Home Assistant discovery", description="Announce the insoles as an HA device."
    )
    prefix: str = Field(
        default="homeassistant", min_length=1, title="Discovery prefix", description="HA's MQTT discovery prefix."
    )


class MqttConfig(BrokerConfig):
    client_id: str | None = Field(
        default=None, max_length=128, title="Client id", description="Default: footfall-agent-<device_id>."
    )
    base_topic: str = Field(
        default=DEFAULT_BASE_TOPIC,
        min_length=1,
        pattern=TOPIC_PATTERN,
        title="Base topic",
        description="Topics are <base>/<device_id>/summary etc.",
    )
    ha_discovery: HaDiscoveryConfig = Field(
        default_factory=HaDiscoveryConfig, title="Home Assistant discovery", description="MQTT discovery."
    )


class OutboxConfig(StrictModel):
    path: Path | None = Field(
        default=None, title="Outbox database", description="SQLite file; default <state_dir>/outbox.sqlite."
    )
    max_rows: int = Field(default=200_000, ge=100, title="Row bound", description="Warns at 80 %, then drops.")
    max_mb: float = Field(
        default=256.0,
        ge=1.0,
        title="Size bound (MB)",
        description="Payload megabytes (10⁶ bytes) held; warns at 80 %, then drops like the row bound.",
    )
    max_age_s: float = Field(
        default=30 * 86400, gt=0, title="Maximum age (s)", description="Older undelivered rows are dropped."
    )
    require_plugin_ack: bool = Field(
        default=True,
        title="Wait for the plugin's ack",
        description="Keep rows until the dashboard plugin acknowledged them (end-to-end delivery).",
    )
    retention_without_plugin_s: float = Field(
        default=7 * 86400,
        ge=0,
        title="Retention without plugin (s)",
        description="With require_plugin_ack off: keep rows this long after the broker's PUBACK.",
    )
    drain_timeout_s: float = Field(
        default=10.0, ge=0, title="Drain timeout on stop (s)", description="How long a clean stop waits to deliver."
    )


class RunDetectionConfig(StrictModel):
    """Thresholds of :mod:`edge_agent.runtime.activity` (see there for the sources)."""

    run_cadence_spm: float = Field(default=140.0, gt=0, title="Running cadence (spm)", description="At least this.")
    run_duty_factor_max: float = Field(
        default=0.5, gt=0, lt=1, title="Running duty factor", description="Below this = flight phases."
    )
    run_contact_ms_max: float = Field(
        default=350.0, gt=0, title="Running contact (ms)", description="Or median contact shorter than this."
    )
    run_cadence_only_spm: float = Field(
        default=155.0,
        gt=0,
        title="Running by cadence alone (spm)",
        description="At least this cadence is running even with double support (slow jogging).",
    )
    classify_window_s: float = Field(
        default=5.0, gt=0, title="Classification window (s)", description="Steps looked at."
    )
    step_gap_s: float = Field(
        default=2.0, gt=0, title="Step gap (s)", description="No step for this long = not moving."
    )
    standing_load_bw: float = Field(
        default=0.5, ge=0, title="Standing load (BW)", description="Load that counts as standing (both feet)."
    )
    run_start_s: float = Field(default=4.0, ge=0, title="Run start (s)", description="Running this long starts a run.")
    run_stop_s: float = Field(
        default=30.0, gt=0, title="Run stop (s)", description="No running for this long ends the run."
    )


class PipelineConfig(StrictModel):
    window_s: float = Field(default=10.0, ge=1.0, le=600.0, title="Window (s)", description="Summary window length.")
    window_steps: int | None = Field(
        default=None, ge=4, le=2000, title="Window (steps)", description="Close a window after N steps (optional)."
    )
    window_grace_s: float = Field(
        default=1.5,
        ge=0,
        le=10,
        title="Window grace (s)",
        description="Wait this long after a window's end for steps still in contact.",
    )
    live_hz: float = Field(default=1.0, ge=0, le=10, title="Live rate (Hz)", description="0 = no live updates.")
    queue_batches: int = Field(
        default=256, ge=4, title="Source queue (batches)", description="Bounded; overflow counts as dropped frames."
    )
    step_records: bool = Field(default=True, title="Per-step records", description="Include every step in windows.")
    standing_calibration: bool = Field(
        default=True,
        title="Body weight from standing",
        description="Estimate body weight on quiet standing; else the configured body mass.",
    )
    run_detection: RunDetectionConfig = Field(
        default_factory=RunDetectionConfig, title="Run detection", description="Start/stop thresholds."
    )


class AnalysisSettings(StrictModel):
    """Overrides of :class:`edge_agent.analysis.analyzer.AnalysisConfig`; empty = the kernels' documented defaults."""

    lowpass_hz: float | None = Field(default=None, gt=0, title="Low-pass (Hz)", description="Off when empty.")
    contact_on_bw: float | None = Field(default=None, gt=0, lt=1, title="Contact on (BW)", description="Threshold.")
    contact_off_bw: float | None = Field(default=None, gt=0, lt=1, title="Contact off (BW)", description="Threshold.")
    min_contact_ms: float | None = Field(
        default=None, gt=0, title="Minimum contact (ms)", description="Shorter = noise."
    )
    min_swing_ms: float | None = Field(default=None, gt=0, title="Minimum swing (ms)", description="Shorter = noise.")
    toe_off_peak_fraction: float | None = Field(
        default=None,
        ge=0,
        lt=0.5,
        title="Toe-off level (× step peak)",
        description="Empty: by the profile's sensor type (0.11 pressure insoles, 0 force plates).",
    )
    contact_events: Literal["physical", "vendor"] | None = Field(
        default=None,
        title="Contact events",
        description="physical (default) or vendor: initial contact at 6 % of the step's peak, as Moticon's reports.",
    )

    @model_validator(mode="after")
    def _order(self) -> AnalysisSettings:
        on, off = self.contact_on_bw, self.contact_off_bw
        if on is not None and off is not None and off > on:
            raise ValueError(f"contact_off_bw {self.contact_off_bw} must not exceed contact_on_bw {self.contact_on_bw}")
        return self

    def overrides(self) -> dict[str, float | str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


_yaml_data: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("_yaml_data", default={})  # noqa: B039


class _YamlSource(PydanticBaseSettingsSource):
    """The already-parsed YAML mapping (parsed by :func:`load_config`, which keeps its line marks)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return _yaml_data.get().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_yaml_data.get())


class AgentConfig(BaseSettings):
    """Everything ``footfall-agent run`` needs."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
        case_sensitive=False,
    )

    device_id: str = Field(
        default="insoles", pattern=DEVICE_ID_PATTERN, title="Device id", description="In topics and run ids."
    )
    runner: str | None = Field(default=None, max_length=64, title="Runner", description="Whose runs these are.")
    shoe: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=SHOE_NAME_PATTERN,
        title="Shoe pair",
        description="The pair you run in: each run summary names it and the dashboard tags the run (docs/program.md).",
    )
    profile: str = Field(
        default="moticon-opengo", title="Hardware profile", description="Bundled name or path to a profile YAML."
    )
    body_mass_kg: float | None = Field(
        default=None,
        gt=15,
        lt=300,
        title="Body mass (kg)",
        description="Used until a standing calibration exists (default 70 kg when empty).",
    )
    source: SourceConfig = Field(
        default_factory=lambda: SimulatorSourceConfig(),
        title="Insole source",
        description="simulator | replay | serial | ble | adc (discriminated by type).",
    )
    mqtt: MqttConfig = Field(default_factory=MqttConfig, title="MQTT", description="Broker connection.")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, title="Outbox", description="Durable queue.")
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig, title="Pipeline", description="Windows, runs.")
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings, title="Analysis", description="Kernels.")
    feedback: FeedbackConfig = Field(
        default_factory=FeedbackConfig,
        title="In-run feedback",
        description="Metronome and cues during the run (docs/feedback.md); off unless a sink is set.",
    )
    state_dir: Path = Field(
        default_factory=default_state_dir,
        title="State directory",
        description="Outbox, calibration, heartbeat ($STATE_DIRECTORY under systemd).",
    )
    numba_cache_dir: Path | None = Field(
        default=None,
        title="Numba cache directory",
        description="Writable, private (cache files are pickles); needed on a read-only root.",
    )
    kernels: Literal["auto", "aot", "jit"] = Field(
        default="auto",
        title="Kernel backend",
        description="auto: the ahead-of-time build (footfall-agent build-kernels) when one matches this code, "
        "else the numba JIT; aot: require the build; jit: always numba. The build keeps numba out of the agent.",
    )
    kernel_dir: Path | None = Field(
        default=None,
        title="Ahead-of-time kernel directory",
        description="Where build-kernels writes and the agent looks (default ~/.cache/footfall/kernels).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", title="Log level", description="DEBUG, INFO, WARNING or ERROR."
    )

    @model_validator(mode="after")
    def _agent_batch(self) -> AgentConfig:
        """Hand frames over in 200 ms batches unless the file says otherwise: on an idle Pi each
        wakeup costs more than the kernels, and 50 ms batches (the sources' generic default) take
        the agent over its < 1 % CPU budget (benchmarks/bench_agent.py: 1.6 % vs 0.7 % of a core
        for 2×16 @ 100 Hz). Latency +0.15 s; windows are 10 s and live updates 1 s. With in-run feedback on,
        100 ms batches keep step → cue under 300 ms (docs/feedback.md)."""
        if "batch_ms" not in self.source.model_fields_set:
            self.source.batch_ms = FEEDBACK_BATCH_MS if self.feedback.enabled else AGENT_BATCH_MS
        return self

    @model_validator(mode="after")
    def _runner_names_a_topic(self) -> AgentConfig:
        """Program targets arrive on ``<base>/_runners/<runner>/target``: with feedback on, the runner must be able
        to name that topic (a runner without targets still gets --target-cadence)."""
        import re

        if self.feedback.enabled and self.runner is not None and not re.match(RUNNER_ID_PATTERN, self.runner):
            raise ValueError(
                f"runner {self.runner!r} cannot name the target topic of in-run feedback: use letters, digits, "
                "_ and - (e.g. ana-maria)"
            )
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @property
    def outbox_path(self) -> Path:
        return self.outbox.path or self.state_dir / "outbox.sqlite"

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"footfall-agent-{self.device_id}"


def load_config(
    path: Path | str | None = None,
    *,
    source_override: dict[str, Any] | None = None,
    source_extra: dict[str, Any] | None = None,
    feedback_sink: dict[str, Any] | None = None,
    **overrides: Any,
) -> AgentConfig:
    """Load and validate; raises :class:`ConfigError` with file, key path, value and line.

    ``overrides`` (command line) win over the environment and the file; ``source_override``
    replaces the file's ``source`` block (``--source``), ``source_extra`` is merged into it
    (``--speed``, ``--seed``). ``feedback_sink`` (``--feedback``) replaces the file's ``feedback.sink``, or is
    merged into it when both are of the same type (the file's sample rate, pin wiring … are kept).
    """
    origin = str(path) if path is not None else "<no config file>"
    root: yaml.Node | None = None
    data: dict[str, Any] = {}
    if path is not None:
        doc = load_yaml(path, allow_empty=False)  # an empty file given on purpose is a mistake, not "all defaults"
        data, root = doc.data, doc.root
    if source_override is not None or source_extra:
        src = dict(source_override) if source_override is not None else dict(data.get("source") or {})
        src.setdefault("type", "simulator")
        for key, value in (source_extra or {}).items():
            if key == "params" and src["type"] != "simulator":
                raise ConfigError(f"{origin}: --seed only applies to the simulator source, not {src['type']!r}")
            if key == "speed" and src["type"] not in ("simulator", "replay"):
                kind = src["type"]
                raise ConfigError(f"{origin}: --speed only applies to replay and simulator sources, not {kind!r}")
            if isinstance(value, dict):
                src[key] = {**(src.get(key) or {}), **value}
            else:
                src[key] = value
        data = {**data, "source": src}
        overrides["source"] = src
    if feedback_sink is not None:
        fb = dict(data.get("feedback") or {})
        file_sink = fb.get("sink")
        old: dict[str, Any] = file_sink if isinstance(file_sink, dict) else {}
        fb["sink"] = {**old, **feedback_sink} if old.get("type") == feedback_sink.get("type") else feedback_sink
        data = {**data, "feedback": fb}
    token = _yaml_data.set(data)
    try:
        return AgentConfig(**_drop_none(overrides))
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, origin, root, env_prefix=ENV_PREFIX)) from None
    finally:
        _yaml_data.reset(token)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = _drop_none(v)
            if not v:
                continue
        if v is not None:
            out[k] = v
    return out


def describe(cfg: AgentConfig) -> str:
    """A redacted YAML dump of the effective configuration (for ``validate-config``)."""
    data = cfg.model_dump(mode="json")
    mqtt = data.get("mqtt", {})
    if mqtt.get("password") is not None:
        mqtt["password"] = "***"
    mqtt["url"] = redact_url(mqtt.get("url", ""))
    return yaml.safe_dump(data, sort_keys=False)
