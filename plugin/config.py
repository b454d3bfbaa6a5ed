"""Dashboard plugin configuration: strict pydantic-settings from a YAML file and ``FOOTFALL_DASHBOARD_…`` env.

Precedence (highest first): command-line overrides > environment (``FOOTFALL_DASHBOARD_MQTT__URL`` …, nested
with ``__``) > YAML file > defaults. Unknown keys are errors (``extra="forbid"``, Frigate-style) and
``validate-config`` names the offending key AND its line in the YAML file. Secrets (MQTT password, token,
notification URLs) are ``SecretStr``: they never appear in reprs or logs; the broker URL is shown redacted.
"""

from __future__ import annotations

import contextvars
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from edge_agent.common.config import (
    TOPIC_PATTERN,
    BrokerConfig,
    ConfigError,
    StrictModel,
    format_validation_error,
    is_loopback,
    load_yaml,
)
from edge_agent.common.redact import mask_url, redact_url

#: The dashboard token's minimum length (plugin.web.auth refuses shorter ones too).
MIN_TOKEN_LENGTH = 16

ENV_PREFIX = "FOOTFALL_DASHBOARD_"
__all__ = ["ConfigError", "DashboardConfig", "MqttConfig", "RetentionConfig", "RiskConfig", "load_config"]


class MqttConfig(BrokerConfig):
    client_id: str = Field(
        "footfall-dashboard", max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", title="MQTT client id",
        description="Unique per dashboard process: the broker keeps this worker's persistent session under it.",
    )  # fmt: skip
    base_topic: str = Field("footfall", pattern=TOPIC_PATTERN, title="Base topic of the agents")
    protocol: Literal["5", "3.1.1"] = Field(
        "5", title="MQTT protocol version",
        description="5 (Mosquitto 2, EMQX, VerneMQ): persistent session with expiry, shared subscriptions and a "
        "maximum packet size; 3.1.1 for brokers without MQTT 5 (then one dashboard process only).",
    )  # fmt: skip
    share_group: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]{1,64}$", title="Shared-subscription group",
        description="Set the same group on every dashboard worker of one PostgreSQL database: each summary then "
        "goes to ONE of them ($share/<group>/…, MQTT 5). Unset: this process receives every summary.",
    )  # fmt: skip
    session_expiry_s: int = Field(
        7 * 86400, ge=60, le=4294967295, title="Session expiry (s)",
        description="How long the broker keeps queuing summaries for this worker while it is away (MQTT 5).",
    )  # fmt: skip
    ha_discovery: bool = Field(True, title="Announce the plugin's entities to Home Assistant")
    ha_prefix: str = Field("homeassistant", pattern=TOPIC_PATTERN, title="HA discovery prefix")

    @model_validator(mode="after")
    def _share_needs_v5(self) -> MqttConfig:
        if self.share_group and self.protocol != "5":
            raise ValueError("share_group needs protocol 5 (shared subscriptions are an MQTT 5 feature)")
        return self


class RiskConfig(StrictModel):
    """Risk-engine thresholds; every default is argued in docs/alerts.md."""

    min_baseline_runs: int = Field(3, ge=1, le=100, title="Runs needed in the baseline window")
    baseline_days: float = Field(28.0, gt=0, le=365, title="Baseline window (days)")
    spike_pct: float = Field(25.0, gt=0, le=500, title="Loading spike: window VALR above baseline by this %")
    spike_z: float = Field(3.0, gt=0, le=20, title="…and by this many baseline SDs (window level)")
    spike_rearm_pct: float = Field(10.0, ge=0, title="Spike re-arms once VALR is back below baseline + this %")
    spike_min_steps: int = Field(10, ge=1, title="Ignore windows with fewer steps")
    valr_absolute_bw_s: float = Field(66.0, gt=0, title="Absolute VALR (BW/s), informational (Davis 2016)")
    valr_absolute_enabled: bool = Field(True, title="Enable the absolute-VALR information")
    transition_pp_per_week: float = Field(10.0, gt=0, title="Forefoot share rising faster (points/week)")
    transition_min_days: float = Field(10.0, gt=0, title="Days of runs needed to measure the trend")
    fatigue_cadence_drop_pct: float = Field(4.0, gt=0, title="Fatigue: cadence fall vs the run's start (%)")
    fatigue_contact_rise_pct: float = Field(4.0, gt=0, title="Fatigue: contact-time rise (%)")
    fatigue_valr_rise_pct: float = Field(10.0, gt=0, title="Fatigue: VALR rise (%)")
    fatigue_windows: int = Field(3, ge=1, title="Windows averaged (and needed in a row) to call drift")
    asymmetry_points: float = Field(5.0, gt=0, title="Asymmetry: |SI%| above baseline by at least this")
    asymmetry_sd: float = Field(3.0, gt=0, title="…and by this many baseline SDs")
    asymmetry_runs: int = Field(3, ge=1, title="…in this many runs in a row (persistent)")
    acwr_threshold: float = Field(1.5, gt=1.0, title="Training-load ACWR (Gabbett 2016 heuristic)")
    acwr_rearm: float = Field(1.3, gt=0, title="ACWR re-arms below this")
    cooldown_days: dict[str, float] = Field(
        default_factory=lambda: {
            "loading_spike": 1.0,
            "valr_absolute": 28.0,
            "strike_transition": 14.0,
            "fatigue_drift": 1.0,
            "asymmetry": 14.0,
            "training_load": 7.0,
        },
        title="Per-rule cooldown (days) after an alert",
    )

    def cooldown_s(self, rule: str) -> float:
        return float(self.cooldown_days.get(rule, 7.0)) * 86400.0


class RetentionConfig(StrictModel):
    window_days: float | None = Field(365.0, gt=0, title="Delete summary windows older than this; runs are kept")


class _YamlSource(PydanticBaseSettingsSource):
    """Feeds the YAML document loaded by :func:`load_config` (below env in precedence)."""

    data: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("footfall_yaml", default=None)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (self.data.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data.get() or {})


class DashboardConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    db_path: Path = Field(Path("footfall-dashboard.db"), title="SQLite database file")
    database: str | None = Field(
        None, title="PostgreSQL database",
        description="postgresql://user@host:5432/footfall for a club (PostgreSQL 15+, several dashboard workers); "
        "unset = the SQLite file db_path. Give the password through PGPASSWORD or ~/.pgpass, not the URL.",
    )  # fmt: skip
    listen: str = Field("127.0.0.1:8765", title="host:port of the web dashboard")
    token: SecretStr | None = Field(None, title="API/dashboard token (required unless listening on loopback)")
    notify_urls: list[SecretStr] = Field(default_factory=list, title="Apprise URLs for push notifications")
    trusted_proxies: list[str] = Field(
        default_factory=list, title="Trusted reverse proxies",
        description="IP addresses or networks of the reverse proxies in front of the dashboard: only their "
        "X-Forwarded-Proto/-Host/-For headers are believed (docs/club.md).",
    )  # fmt: skip
    notify_urls_file: Path | None = Field(
        None,
        title="File of Apprise URLs, one per line ('#' comments); added to notify_urls (e.g. a Docker secret)",
    )
    risk: RiskConfig = Field(default_factory=RiskConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    mdns: Literal["auto", "on", "off"] = Field(
        "auto",
        title="Announce the dashboard over mDNS (_footfall._tcp)",
        description="auto: only when listening beyond loopback; on: always (not with a loopback listen address); "
        "off: never. Home Assistant discovers the dashboard by it (docs/home-assistant.md).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _YamlSource(settings_cls), file_secret_settings

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, port = split_listen(v)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @model_validator(mode="after")
    def _token_when_exposed(self) -> DashboardConfig:
        """A token is at least 16 characters (run refuses shorter ones, so validate-config does too), and one
        is needed beyond loopback. (A model-level check: errors about the secret field itself are cut short.)"""
        if self.token is not None and len(self.token.get_secret_value()) < MIN_TOKEN_LENGTH:
            n = len(self.token.get_secret_value())
            raise ValueError(f"token is too short ({n} characters, need at least {MIN_TOKEN_LENGTH})")
        host, _ = split_listen(self.listen)
        if not is_loopback(host) and self.token is None:
            raise ValueError(
                f"listen {self.listen} is not loopback: set a token of at least {MIN_TOKEN_LENGTH} characters "
                f"(token: in the file or {ENV_PREFIX}TOKEN) or listen on 127.0.0.1"
            )
        if self.mdns == "on" and is_loopback(host):
            raise ValueError(
                f"mdns: on, but listen {self.listen} is loopback: no other machine could connect to what it "
                "announces. Listen on a LAN address (with a token), or set mdns: auto or off"
            )
        return self

    @model_validator(mode="after")
    def _read_notify_file(self) -> DashboardConfig:
        if self.notify_urls_file is not None:
            self.notify_urls = [*self.notify_urls, *read_url_file(self.notify_urls_file)]
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        from plugin.web.proxy import parse_networks

        parse_networks(v)
        return v

    @field_validator("database")
    @classmethod
    def _database(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("postgresql://", "postgres://")):
            raise ValueError("database must be a postgresql:// URL (the SQLite file is db_path)")
        return v

    @property
    def store_target(self) -> Path | str:
        """Where the store lives: the PostgreSQL URL when set, else the SQLite file."""
        return self.database or self.db_path

    @property
    def listen_host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def listen_port(self) -> int:
        return split_listen(self.listen)[1]

    def safe_dict(self) -> dict[str, Any]:
        """For logs and the settings page: secrets masked, broker URL redacted."""
        d = self.model_dump(mode="json")
        d["mqtt"]["url"] = self.mqtt.redacted_url
        d["notify_urls"] = [mask_url(u.get_secret_value()) for u in self.notify_urls]
        if self.database:
            d["database"] = redact_url(self.database)
        return d


def read_url_file(path: Path) -> list[SecretStr]:
    """Apprise URLs from a file, one per line; blank lines and ``#`` comments skipped. Errors name the file and
    line, never the content (the URLs are secrets)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(
            f"notify_urls_file {str(path)!r}: {getattr(err, 'strerror', None) or type(err).__name__}"
        ) from None
    urls = []
    for i, line in enumerate(lines, start=1):
        url = line.strip()
        if not url or url.startswith("#"):
            continue
        if not re.fullmatch(r"[a-z][a-z0-9+.-]{1,15}://\S+", url):
            raise ValueError(f"notify_urls_file {str(path)!r}: line {i} is not an Apprise URL (scheme://…)")
        urls.append(SecretStr(url))
    return urls


def split_listen(v: str) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` → (host, port) with a clear error."""
    v = v.strip()
    if v.startswith("["):
        host, _, rest = v[1:].partition("]")
        port_s = rest.lstrip(":")
    else:
        host, _, port_s = v.rpartition(":")
    if not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise ValueError(f"listen must be host:port (e.g. 127.0.0.1:8765), got {v!r}")
    return host, int(port_s)


def load_config(path: Path | str | None = None, **overrides: Any) -> DashboardConfig:
    """Read YAML (optional) + env + overrides; raise :class:`ConfigError` naming file, key and line."""
    data: dict[str, Any] = {}
    root = None
    source = "<no config file>"
    if path is not None:
        doc = load_yaml(path)
        source, data, root = doc.origin, doc.data, doc.root
    token = _YamlSource.data.set(data)
    try:
        return DashboardConfig(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source, root, env_prefix=ENV_PREFIX)) from None
    finally:
        _YamlSource.data.reset(token)
