"""Configuration basics both tools share (Frigate's ``config/base.py`` in spirit).

* :class:`StrictModel`: unknown keys are errors (a typo must not silently fall back to a default).
* :func:`load_yaml`: one bounded YAML loader for configs and profiles. A config file is small and written by
  hand, so it refuses what only an attacker or an accident produces: aliases (``*name``, the "billion laughs"
  expansion), nesting deeper than :data:`MAX_DEPTH`, files over :data:`MAX_BYTES`, integers longer than
  :data:`MAX_INT_DIGITS` digits, text that is not UTF-8. It keeps the composed node tree so errors can point at
  a line.
* :func:`format_validation_error`: pydantic errors as ``file:line: key 'a.b': problem (value: …)``. Values of
  secret keys are never shown, URLs lose their passwords, and whole sections (mappings, lists) are not echoed.
* :class:`BrokerConfig`: the MQTT broker settings of both the agent and the dashboard.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from edge_agent.common.redact import is_secret_key, redact_text, redact_url

if TYPE_CHECKING:
    from edge_agent.common.mqtt import BrokerSettings

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_INT_DIGITS = 64
#: The topic characters both sides accept (MQTT wildcards, NUL and whitespace never).
TOPIC_PATTERN = r"^[A-Za-z0-9_./-]+$"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the file, the key path and the line."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# -- bounded YAML -----------------------------------------------------------------------------------------------
class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases, with a nesting bound and bounded integers."""

    def __init__(self, stream: str, origin: str) -> None:
        super().__init__(stream)
        self.origin = origin
        self._depth = 0

    def _fail(self, mark: Any, problem: str) -> ConfigError:
        return ConfigError(f"{self.origin}:{mark.line + 1}: {problem}")

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise self._fail(self.peek_event().start_mark, "YAML aliases (*name) are not accepted in footfall files")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self._fail(self.peek_event().start_mark, f"nested deeper than {MAX_DEPTH} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(re.sub(r"[^0-9a-fA-F]", "", str(node.value))) > MAX_INT_DIGITS:
            raise self._fail(node.start_mark, f"a number longer than {MAX_INT_DIGITS} digits")
        return int(super().construct_yaml_int(node))


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML mapping and its node tree (for line numbers)."""

    data: dict[str, Any]
    root: yaml.Node | None
    origin: str


def load_yaml(path: Path | str, *, what: str = "configuration", allow_empty: bool = True) -> YamlDocument:
    """Read and parse a YAML mapping within the bounds above; :class:`ConfigError` names file and line."""
    origin = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{origin}: cannot read the {what}: {err.strerror or err}") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{origin}: the {what} is larger than {MAX_BYTES // 1024} KiB")
    return parse_yaml(raw, origin, what=what, allow_empty=allow_empty)


def parse_yaml(raw: bytes | str, origin: str, *, what: str = "configuration", allow_empty: bool = True) -> YamlDocument:
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            line = raw[: err.start].count(b"\n") + 1
            raise ConfigError(f"{origin}:{line}: the {what} is not UTF-8 text (byte {err.start})") from None
    else:
        text = raw
    if "\x00" in text:
        raise ConfigError(f"{origin}: the {what} contains NUL bytes (a binary file?)")
    loader = _BoundedLoader(text, origin)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except ConfigError:
        raise
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{origin}{where}: not valid YAML: {problem}") from None
    except (ValueError, RecursionError) as err:  # a constructor refusing a value (dates, floats)
        raise ConfigError(f"{origin}: not valid YAML: {type(err).__name__}") from None
    finally:
        loader.dispose()
    if data is None:
        if not allow_empty:
            raise ConfigError(f"{origin}: the {what} is empty")
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}:1: the {what} must be a mapping of keys, not {type(data).__name__}")
    return YamlDocument(data, root, origin)


# -- errors that point at the YAML line -------------------------------------------------------------------------
def _node_for(root: yaml.Node | None, loc: tuple[Any, ...]) -> tuple[yaml.Node | None, bool]:
    """The YAML node at ``loc`` (pydantic's error location), or the deepest ancestor found (exact=False)."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    node = v
                    break
            else:
                # Discriminated unions insert the tag ('replay') into loc; skip parts not in the file.
                continue
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
        else:
            return node, False
    return node, node is not root or not loc


def _key_node(root: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """The key node of the last element of ``loc`` (for 'extra keys not permitted')."""
    parent, _ = _node_for(root, loc[:-1])
    if isinstance(parent, yaml.MappingNode):
        for k, _v in parent.value:
            if isinstance(k, yaml.ScalarNode) and k.value == str(loc[-1]):
                return k
    return None


def show_value(value: Any, loc: tuple[Any, ...]) -> str | None:
    """How an offending value may appear in an error, or None when it must not (secrets, whole sections)."""
    if is_secret_key(loc) or isinstance(value, dict | list | tuple | set):
        return None
    if isinstance(value, str):
        value = redact_url(value) if "://" in value else value
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def format_validation_error(
    err: ValidationError,
    origin: str,
    root: yaml.Node | None = None,
    *,
    env_prefix: str = "",
    what: str = "configuration",
) -> str:
    lines = [f"{origin}: invalid {what} ({err.error_count()} problem(s))"]
    for e in err.errors():
        loc = tuple(e["loc"])
        path = ".".join(str(p) for p in loc) or "<top level>"
        node = _key_node(root, loc) if e["type"] == "extra_forbidden" and loc else None
        exact = node is not None
        if node is None:
            node, exact = _node_for(root, loc)
        if node is not None and root is not None and (exact or e["type"] == "missing"):
            where = f"{origin}:{node.start_mark.line + 1}"
        elif env_prefix and loc:
            env = env_prefix + "__".join(str(p).upper() for p in loc if not isinstance(p, int))
            where = f"{origin} (not set in the file; environment {env} or a default)"
        else:
            where = origin
        msg = redact_text(str(e["msg"]))
        if is_secret_key(loc):
            msg = msg.split(",", 1)[0].split(":", 1)[0]
        shown = None if e["type"] in ("missing", "extra_forbidden") else show_value(e.get("input"), loc)
        lines.append(f"  {where}: key '{path}': {msg}" + (f" (value: {shown})" if shown is not None else ""))
    return "\n".join(lines)


# -- the MQTT broker, as both tools configure it ----------------------------------------------------------------
class BrokerConfig(StrictModel):
    """Where the broker is and how to log in. A password in the URL is moved into ``password`` at load time, so
    ``url`` never holds a secret and can be printed."""

    url: str = Field(
        default="mqtt://127.0.0.1:1883",
        title="Broker URL",
        description="mqtt://host:port or mqtts://host:port (TLS); a user may be in the URL (prefer password_file "
        "or the environment for the password: a URL on the command line is visible in the process list).",
    )
    username: str | None = Field(default=None, title="Username", description="Overrides a user in the URL.")
    password: SecretStr | None = Field(
        default=None,
        title="Password",
        description="Better: password_file or the *MQTT__PASSWORD environment variable.",
    )
    password_file: Path | None = Field(
        default=None,
        title="Password file",
        description="File whose first line is the password (e.g. a systemd or Docker credential).",
    )
    tls_ca: Path | None = Field(default=None, title="TLS CA file", description="CA bundle for mqtts:// brokers.")
    tls_insecure: bool = Field(
        default=False, title="Skip TLS host check", description="Only for self-signed test brokers."
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600, title="Keepalive (s)", description="MQTT keepalive.")

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        try:
            parts = urlsplit_checked(v)
        except ValueError as err:
            raise ValueError(str(err)) from None
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"scheme must be mqtt:// or mqtts://, got {parts.scheme or 'none'!r}")
        if not parts.hostname:
            raise ValueError("the URL has no host")
        return v

    @model_validator(mode="after")
    def _credentials(self) -> BrokerConfig:
        parts = urlsplit(self.url)
        if parts.username and self.username is None:
            self.username = unquote(parts.username)
        if parts.password is not None:
            if self.password is None:
                self.password = SecretStr(unquote(parts.password))
            netloc = (parts.username or "") + "@" + parts.netloc.rsplit("@", 1)[1]
            self.url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        if self.password_file is not None:
            if self.password is not None:
                raise ValueError("give either password or password_file, not both")
            try:
                first = self.password_file.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as err:
                raise ValueError(
                    f"password_file {str(self.password_file)!r}: {getattr(err, 'strerror', err)}"
                ) from None
            if not first or not first[0]:
                raise ValueError(f"password_file {str(self.password_file)!r} is empty")
            self.password = SecretStr(first[0])
        if self.tls_ca is not None and not self.tls_ca.is_file():
            raise ValueError(f"tls_ca {str(self.tls_ca)!r} is not a file")
        return self

    @property
    def tls(self) -> bool:
        return urlsplit_checked(self.url).scheme in ("mqtts", "ssl")

    @property
    def host(self) -> str:
        return urlsplit_checked(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit_checked(self.url).port or (8883 if self.tls else 1883)

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    def credentials(self) -> tuple[str | None, str | None]:
        return self.username, self.password.get_secret_value() if self.password is not None else None

    def connection_settings(self, client_id: str, **options: Any) -> BrokerSettings:
        """What :class:`~edge_agent.common.mqtt.MqttConnection` needs to connect as ``client_id``."""
        from edge_agent.common.mqtt import BrokerSettings

        return BrokerSettings(
            url=self.url,
            client_id=client_id,
            keepalive=self.keepalive_s,
            username=self.username,
            password=self.password,
            tls_ca=self.tls_ca,
            tls_insecure=self.tls_insecure,
            **options,
        )


def urlsplit_checked(url: str) -> SplitResult:
    """``urlsplit`` whose port is checked (a bad port is a ValueError here, not later)."""
    parts = urlsplit(url)
    try:
        _ = parts.port
    except ValueError:
        port = parts.netloc.rsplit(":", 1)[-1]
        raise ValueError(f"bad port {port!r} (a number 1-65535)") from None
    return parts


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for 0.0.0.0, LAN addresses and names."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False
