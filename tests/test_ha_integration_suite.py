"""The Home Assistant integration's own suite (tests/ha), run from the project's test command.

custom_components/footfall is tested with pytest-homeassistant-custom-component on Python 3.13 in .venv-ha
(Home Assistant cannot be installed into the project's Python 3.11 venv). This test runs that suite as a
subprocess — against real dashboard processes started with THIS interpreter — and fails with its output when
it fails. ``tests/ha/setup_venv.sh`` builds .venv-ha (``.ci/run`` does); without it the test is skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HA_PYTHON = Path(os.environ.get("FOOTFALL_HA_VENV", REPO / ".venv-ha")) / "bin" / "python"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_home_assistant_integration_suite() -> None:
    if not HA_PYTHON.exists():
        pytest.skip(f"no Home Assistant test venv at {HA_PYTHON.parent.parent}: run tests/ha/setup_venv.sh "
                    "(needs Python 3.13) to test custom_components/footfall")  # fmt: skip
    env = {**os.environ, "FOOTFALL_PROJECT_PYTHON": sys.executable}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(HA_PYTHON), "-m", "pytest", "-c", "tests/ha/pytest.ini", "tests/ha", "-q", "-p", "no:cacheprovider",
         "--show-capture=log", "-rfE"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1700,
    )  # fmt: skip
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "(no output)"
    print(f"tests/ha under {HA_PYTHON}: {summary}")
    if proc.returncode != 0:
        pytest.fail(f"the Home Assistant suite failed ({summary}):\n{proc.stdout[-30000:]}\n{proc.stderr[-5000:]}")
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
