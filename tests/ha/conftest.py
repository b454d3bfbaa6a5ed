"""Fixtures of the Home Assistant suite: a REAL footfall dashboard process with seeded history, a real broker.

This directory runs in .venv-ha (Python 3.13, pytest-homeassistant-custom-component, which pins Home
Assistant 2025.4.4) — ``tests/test_ha_integration_suite.py`` does that from the project's own test run. The
project's interpreter (Python 3.11 with footfall installed) runs the dashboard (``python -m plugin.cli run``),
seeds it (``seed-history``) and plays the agent (tests/ha/dashboard_driver.py); it is
``$FOOTFALL_PROJECT_PYTHON``, else the repository's .venv.

Under the project's own pytest (no Home Assistant installed) nothing here is collected.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ha.common import REPO, SEED_WEEKS, Dashboard, project_python

if importlib.util.find_spec("homeassistant") is None:  # the project's venv: the wrapper test runs this suite
    collect_ignore_glob = ["*"]
else:
    # Import the repository's custom_components before Home Assistant mounts its test config dir, whose own
    # custom_components package would otherwise be found first (the loader keeps the first one imported).
    import custom_components.footfall  # noqa: F401

    # The harness logs every SQL statement at INFO; a failing test's captured log should show footfall's lines.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)

    @pytest.fixture(autouse=True)
    def _footfall_test_setup(recorder_mock: Any, enable_custom_integrations: Any, socket_enabled: Any) -> None:
        """The recorder first (the integration depends on it), then custom integrations, real loopback sockets."""


@pytest.fixture(scope="session")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private MQTT broker for the whole session (the driver owns it: it stops when its stdin closes)."""
    workdir = tmp_path_factory.mktemp("broker")
    proc = subprocess.Popen([project_python(), "-m", "tests.ha.dashboard_driver", "broker", str(workdir)], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"broker did not start: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    yield json.loads(line)["url"]
    proc.stdin.close()
    proc.wait(30)


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six weeks of one runner's history with the demo alerts (spike, fatigue, fast transition), made once."""
    db = tmp_path_factory.mktemp("seed") / "footfall.db"
    out = subprocess.run([project_python(), "-m", "plugin.cli", "seed-history", "--db", str(db), "--weeks",
                          str(SEED_WEEKS), "--demo-alerts"], cwd=REPO, capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return db


@pytest.fixture
def dashboard(tmp_path: Path, seeded_db: Path, broker_url: str) -> Iterator[Dashboard]:
    """A fresh copy of the seeded history served by a real dashboard process (one per test)."""
    db = tmp_path / "footfall.db"
    for f in seeded_db.parent.glob(seeded_db.name + "*"):
        shutil.copy(f, tmp_path / f.name)
    d = Dashboard(tmp_path, db, broker_url).start()
    yield d
    d.stop()


def pytest_report_header() -> str:
    project = os.environ.get("FOOTFALL_PROJECT_PYTHON", ".venv")
    return f"footfall HA suite: Python {sys.version.split()[0]}, project interpreter {project}"
