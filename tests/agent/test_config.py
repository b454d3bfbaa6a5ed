"""Strict agent configuration: YAML + env, errors with key path, value and line; secrets redacted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from edge_agent import config as config_mod
from edge_agent.config import AgentConfig, ConfigError, describe, load_config
from tests.support.paths import REPO

GOOD = """\
device_id: pi-hall
runner: ana
profile: moticon-opengo
body_mass_kg: 61.5
source:
  type: replay
  path: /data/run.ffrec
  speed: 0
mqtt:
  url: mqtts://agent:s3cr3t-pw@broker.lan:8883
  base_topic: home/footfall
pipeline:
  window_s: 15
  run_detection:
    run_stop_s: 45
"""


def write(tmp_path: Path, text: str, name: str = "agent.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(__import__("os").environ):
        if k.startswith("FOOTFALL_"):
            monkeypatch.delenv(k)


def test_good_file_and_credentials_from_url(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.device_id == "pi-hall" and cfg.runner == "ana" and cfg.body_mass_kg == 61.5
    assert cfg.source.type == "replay" and cfg.source.speed == 0
    assert cfg.pipeline.window_s == 15 and cfg.pipeline.run_detection.run_stop_s == 45
    assert cfg.mqtt.tls and cfg.mqtt.username == "agent"
    assert cfg.mqtt.password is not None and cfg.mqtt.password.get_secret_value() == "s3cr3t-pw"
    assert "s3cr3t" not in cfg.mqtt.url  # the password moved out of the URL
    assert "s3cr3t" not in repr(cfg) and "s3cr3t" not in str(cfg) and "s3cr3t" not in describe(cfg)
    assert cfg.client_id == "footfall-agent-pi-hall"
    assert cfg.outbox_path == cfg.state_dir / "outbox.sqlite"


def test_precedence_cli_over_env_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("FOOTFALL_PIPELINE__RUN_DETECTION__RUN_STOP_S", "20")
    monkeypatch.setenv("FOOTFALL_RUNNER", "ben")
    monkeypatch.setenv("FOOTFALL_MQTT__PASSWORD", "from-env")
    cfg = load_config(path, runner="cai")
    assert cfg.pipeline.run_detection.run_stop_s == 20  # env beats the file
    assert cfg.pipeline.window_s == 15  # the rest of the file's block is kept (deep merge)
    assert cfg.runner == "cai"  # command line beats env
    assert cfg.mqtt.password is not None and cfg.mqtt.password.get_secret_value() == "from-env"
    # --source replaces the file's source block; --speed/--seed merge into it
    cfg = load_config(path, source_override={"type": "simulator"}, source_extra={"speed": 0, "params": {"seed": 9}})
    assert cfg.source.type == "simulator" and cfg.source.params.seed == 9 and cfg.source.speed == 0
    with pytest.raises(ConfigError, match="--seed only applies to the simulator"):
        load_config(path, source_extra={"params": {"seed": 9}})


def test_systemd_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/footfall")
    assert load_config(None).state_dir == Path("/var/lib/footfall")


BAD = """\
device_id: pi hall
body_mass_kg: 500
source:
  type: replay
  path: /x.ffrec
  sped: 2
mqtt:
  url: mqtt://bob:hunter2@localhost:1883
  keepalive_s: 1
pipeline:
  window_s: "ten"
  run_detection:
    run_stop_s: -3
colour: blue
"""


def test_errors_name_file_key_value_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    msg = str(exc.value)
    lines = msg.splitlines()
    assert lines[0] == f"{path}: invalid configuration (7 problem(s))"
    expect = {
        "device_id": (1, "'pi hall'"),
        "body_mass_kg": (2, "500"),
        "source.replay.sped": (6, None),
        "mqtt.keepalive_s": (9, "1"),
        "pipeline.window_s": (11, "'ten'"),
        "pipeline.run_detection.run_stop_s": (13, "-3"),
        "colour": (14, None),  # unknown keys may be misspelt secrets: never echoed
    }
    for key, (line, value) in expect.items():
        hit = [ln for ln in lines if f"key '{key}'" in ln]
        assert hit, (key, msg)
        assert f"{path}:{line}:" in hit[0], hit[0]
        assert (f"(value: {value})" in hit[0]) if value is not None else "(value:" not in hit[0], hit[0]
    assert "hunter2" not in msg


def test_yaml_syntax_error_and_wrong_top_level(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent.yaml:3:\d+: not valid YAML"):
        load_config(write(tmp_path, "device_id: pi\nmqtt:\n  url: a: b\n"))
    with pytest.raises(ConfigError, match=r":1: the configuration must be a mapping of keys, not list"):
        load_config(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        load_config(tmp_path / "missing.yaml")


def test_secrets_never_printed(tmp_path: Path) -> None:
    pwfile = tmp_path / "pw"
    pwfile.write_text("file-secret\nignored\n")
    cfg = load_config(write(tmp_path, f"mqtt:\n  url: mqtt://u@h\n  password_file: {pwfile}\n"))
    assert cfg.mqtt.password is not None and cfg.mqtt.password.get_secret_value() == "file-secret"
    assert "file-secret" not in repr(cfg) and "file-secret" not in describe(cfg)
    # a wrong-typed secret: the error names the key and line, not the value
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, "mqtt:\n  password: [topsecret, 2]\n"))
    assert "mqtt.password" in str(exc.value) and ":2:" in str(exc.value) and "topsecret" not in str(exc.value)
    with pytest.raises(ConfigError, match="either password or password_file"):
        load_config(write(tmp_path, f"mqtt:\n  password: x\n  password_file: {pwfile}\n"))
    with pytest.raises(ConfigError, match=r"nope.*No such file"):
        load_config(write(tmp_path, "mqtt:\n  password_file: /nope\n"))
    # a bad URL that carries a password: redacted in the error
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, "mqtt:\n  url: mqtt://bob:hunter2@host:99999\n"))
    assert "hunter2" not in str(exc.value) and "bob:***@host" in str(exc.value) and ":2:" in str(exc.value)


def test_every_field_titled_and_described() -> None:
    models = [AgentConfig] + [
        m
        for m in vars(config_mod).values()
        if isinstance(m, type) and issubclass(m, BaseModel) and m.__module__ == config_mod.__name__
    ]
    for model in models:
        for name, field in model.model_fields.items():
            assert field.title and field.description, f"{model.__name__}.{name}"
        assert model.model_config.get("extra") == "forbid", model.__name__


def test_validate_config_command(tmp_path: Path) -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "edge_agent", "validate-config", str(write(tmp_path, BAD))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert f"{tmp_path / 'agent.yaml'}:11: key 'pipeline.window_s'" in bad.stderr
    assert "hunter2" not in bad.stderr + bad.stdout
    recording = tmp_path / "run.ffrec"  # validate-config checks that a replay's recording exists, as run does
    recording.write_bytes(b"")
    text = GOOD.replace("/data/run.ffrec", str(recording))
    good = subprocess.run(
        [sys.executable, "-m", "edge_agent", "validate-config", str(write(tmp_path, text, "ok.yaml")), "--show"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith(f"{tmp_path / 'ok.yaml'}: OK")
    assert "window_s: 15" in good.stdout and "s3cr3t" not in good.stdout


def test_agent_default_batch_is_200_ms_unless_configured(tmp_path: Path) -> None:
    assert load_config(None).source.batch_ms == config_mod.AGENT_BATCH_MS == 200.0
    cfg = load_config(write(tmp_path, "source:\n  type: simulator\n  batch_ms: 50\n"))
    assert cfg.source.batch_ms == 50.0


def test_documented_example_config_is_valid(tmp_path: Path) -> None:
    import re

    doc = (REPO / "docs" / "raspberry-pi.md").read_text()
    block = re.search(r"### Configuration: `/etc/footfall/agent.yaml`\n\n```yaml\n(.*?)```", doc, re.S)
    assert block is not None
    cfg = load_config(write(tmp_path, block.group(1)))
    assert cfg.profile == "diy-mcp3008-fsr4" and cfg.source.type == "adc" and cfg.source.batch_ms == 200
