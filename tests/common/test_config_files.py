"""The one bounded YAML loader and the redacting error format, through both real command lines.

Hostile or broken files (billion laughs, deep nesting, huge integers, binary, non-UTF-8) must give one clear
error naming the file, exit 2, and never a traceback; errors never print a secret.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.common.config import ConfigError, load_yaml

BILLION_LAUGHS = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)

HOSTILE: dict[str, tuple[bytes, str]] = {
    "billion-laughs": (BILLION_LAUGHS.encode(), "aliases"),
    "deep-nesting": (b"a: " + b"[" * 20_000 + b"]" * 20_000 + b"\n", "nested deeper"),
    "huge-integer": (b"mqtt:\n  keepalive_s: " + b"9" * 5000 + b"\n", "longer than"),
    "not-utf8": (b"device_id: caf\xe9\n", "not UTF-8"),
    "binary": (b"\x7fELF\x02\x01\x01\x00\x00\x00" * 64, "NUL"),
    "empty-for-profile": (b"", ""),
}


@pytest.mark.parametrize("name", [n for n in HOSTILE if n != "empty-for-profile"])
def test_loader_refuses_hostile_files(tmp_path: Path, name: str) -> None:
    body, words = HOSTILE[name]
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(body)
    with pytest.raises(ConfigError, match=words) as e:
        load_yaml(path)
    assert str(e.value).startswith(str(path))


@pytest.mark.parametrize("tool", ["footfall-agent", "footfall-dashboard"])
@pytest.mark.parametrize("name", ["billion-laughs", "deep-nesting", "huge-integer", "not-utf8", "binary"])
def test_validate_config_gives_one_line_errors(tmp_path: Path, tool: str, name: str) -> None:
    body, words = HOSTILE[name]
    path = tmp_path / "c.yaml"
    path.write_bytes(body)
    mod = "edge_agent.cli" if tool == "footfall-agent" else "plugin.cli"
    r = subprocess.run(
        [sys.executable, "-m", mod, "validate-config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and words in r.stderr and str(path) in r.stderr


SECRET_CONFIG = """\
mqtt:
  url: mqtt://bob:Secret-In-Url@localhost:1883
  password_file: /nonexistent/secret
  tls_ca: /nonexistent/ca.pem
"""


@pytest.mark.parametrize("tool", ["footfall-agent", "footfall-dashboard"])
def test_config_errors_never_print_secrets(tmp_path: Path, tool: str) -> None:
    """A failing section is named, its values are not echoed (URL credentials, passwords, tokens)."""
    path = tmp_path / "c.yaml"
    extra = "token: tok-Secret-0123456789\nlisten: 0.0.0.0:notaport\n" if tool == "footfall-dashboard" else ""
    path.write_text(SECRET_CONFIG + extra, encoding="utf-8")
    mod = "edge_agent.cli" if tool == "footfall-agent" else "plugin.cli"
    r = subprocess.run(
        [sys.executable, "-m", mod, "validate-config", str(path)], capture_output=True, text=True, timeout=60
    )
    out = r.stdout + r.stderr
    assert r.returncode == 2 and "Traceback" not in out, out
    assert "key 'mqtt'" in out
    assert "Secret" not in out, out


@pytest.mark.parametrize("mod", ["edge_agent.cli", "plugin.cli"])
def test_bad_broker_port_is_a_config_error(tmp_path: Path, mod: str) -> None:
    for port in ("99999", "notaport"):
        url = f"mqtt://u:pw-Secret@h:{port}"
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                mod,
                "run",
                "--broker",
                url,
                "--db" if mod == "plugin.cli" else "--duration",
                str(tmp_path / "d.db") if mod == "plugin.cli" else "1",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        out = r.stdout + r.stderr
        assert r.returncode == 2 and "Traceback" not in out and "bad port" in out and "Secret" not in out, out
