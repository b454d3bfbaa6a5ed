"""Dashboard config and CLI: strict YAML + env, errors with key and line, secrets hidden, a real `run`."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from edge_agent.common.redact import mask_url
from plugin.cli import main
from plugin.config import ConfigError, load_config
from plugin.store import Store
from tests.support.brokers import free_port


def write(p: Path, text: str) -> Path:
    p.write_text(text, encoding="utf-8")
    return p


def test_validate_config_names_key_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path / "c.yaml", "mqtt:\n  url: mqtt://127.0.0.1:1883\nrisk:\n  spike_pct: 30\n  spike_z: -1\n"
                "  bogus_key: 1\n")  # fmt: skip
    assert main(["validate-config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}:5: key 'risk.spike_z'" in err
    assert f"{cfg}:6: key 'risk.bogus_key': Extra inputs are not permitted" in err
    bad_yaml = write(tmp_path / "y.yaml", "mqtt:\n  url: [unclosed\n")
    assert main(["validate-config", str(bad_yaml)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    good = write(tmp_path / "g.yaml", "mqtt:\n  url: mqtt://u:hunter2@127.0.0.1:1883\nlisten: 127.0.0.1:9999\n")
    assert main(["validate-config", str(good)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "hunter2" not in out and "mqtt://u@127.0.0.1:1883" in out


def test_token_required_off_loopback_and_secrets_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="not loopback: set a token"):
        load_config(None, listen="0.0.0.0:8765")
    cfg = load_config(None, listen="0.0.0.0:8765", token="a-long-enough-token-123",
                      notify_urls=["tgram://123:SECRET/456"], mqtt={"password": "pw-secret"})  # fmt: skip
    dumped = repr(cfg) + json.dumps(cfg.safe_dict())
    assert "SECRET" not in dumped and "pw-secret" not in dumped and "a-long-enough" not in dumped
    tg = "tgram://123:SECRET/456"
    assert cfg.safe_dict()["notify_urls"] == [mask_url(tg)] and mask_url(tg).startswith("tgram://••••••#")
    monkeypatch.setenv("FOOTFALL_DASHBOARD_RISK__SPIKE_PCT", "40")
    monkeypatch.setenv("FOOTFALL_DASHBOARD_LISTEN", "127.0.0.1:9100")
    yaml_file = write(tmp_path / "c.yaml", "listen: 127.0.0.1:9000\nrisk:\n  spike_z: 4\n")
    cfg = load_config(yaml_file)
    assert cfg.listen_port == 9100 and cfg.risk.spike_pct == 40 and cfg.risk.spike_z == 4  # env > YAML
    pw = write(tmp_path / "pw", "from-file\n")
    assert load_config(None, mqtt={"password_file": str(pw)}).mqtt.credentials()[1] == "from-file"
    with pytest.raises(ConfigError, match="listen must be host:port"):
        load_config(None, listen="nonsense")


def test_seed_export_and_bad_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "demo.db"
    assert main(["seed-history", "--weeks", "3", "--db", str(db)]) == 0
    assert "seeded" in capsys.readouterr().out
    out = tmp_path / "runs.csv"
    assert main(["export", "--db", str(db), "--format", "csv", "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) >= 8 and rows[0]["runner"] == "alex"
    capsys.readouterr()
    assert main(["export", "--db", str(db), "--format", "json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in exported] == [r["run_id"] for r in rows]
    assert main(["export", "--db", str(tmp_path / "missing.db")]) == 2
    garbage = write(tmp_path / "garbage.db", "not a database at all" * 50)
    assert main(["export", "--db", str(garbage)]) == 2
    assert "not a usable footfall database" in capsys.readouterr().err
    assert garbage.read_text() == "not a database at all" * 50


def test_run_serves_health_and_stops_cleanly(broker: Any, tmp_path: Path) -> None:
    port = free_port()
    assert main(["seed-history", "--db", str(tmp_path / "run.db"), "--weeks", "1"]) == 0
    with Store(tmp_path / "run.db") as s:
        windows = s.counts()["windows"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "plugin.cli", "run", "--broker", broker.url, "--db", str(tmp_path / "run.db"),
         "--listen", f"127.0.0.1:{port}", "--notify", "json://127.0.0.1:9/"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        health = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and health is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                    health = json.loads(r.read())
            except OSError:
                time.sleep(0.2)
        assert health is not None, proc.stderr.read1().decode() if proc.stderr else ""  # type: ignore[union-attr]
        for _ in range(50):
            if health["broker"]["connected"]:
                break
            time.sleep(0.1)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                health = json.loads(r.read())
        assert health["broker"]["connected"] is True and health["notify"]["services"][0].startswith("json://••••••#")
        assert health["store"] == {"backend": "sqlite", "ok": True, "summaries": windows}  # the database's figure
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert f"127.0.0.1:{port}" in out.decode() and "json://127.0.0.1:9" not in (out + err).decode()
