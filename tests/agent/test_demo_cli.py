"""The ``footfall`` command line itself (the demo's orchestration is tested end to end in tests/e2e/test_demo.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FOOTFALL = Path(sys.executable).parent / "footfall"

pytestmark = pytest.mark.skipif(not FOOTFALL.exists(), reason="the footfall console script is not installed")


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_succeeds_and_names_the_demo(flag: str) -> None:
    out = subprocess.run([str(FOOTFALL), flag], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "footfall demo" in out.stdout and "--listen" in out.stdout and "footfall-dashboard" in out.stdout


def test_no_command_is_a_usage_error() -> None:
    out = subprocess.run([str(FOOTFALL)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "usage: footfall demo" in out.stderr


def test_demo_help_succeeds() -> None:
    out = subprocess.run([str(FOOTFALL), "demo", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--run-minutes" in out.stdout
