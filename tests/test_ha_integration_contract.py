"""custom_components/footfall cannot import footfall (Home Assistant installs it alone), so it repeats a few of
the contract's names; this test (in the project's venv) holds them equal to the code they mirror."""

from __future__ import annotations

import ast
import contextlib
import json
from pathlib import Path
from typing import Any, get_args

from edge_agent.contract import AlertKind
from plugin import __version__
from plugin.ha import RISK_LEVELS
from plugin.mdns import SERVICE_TYPE

COMPONENT = Path(__file__).resolve().parent.parent / "custom_components" / "footfall"


def constants() -> dict[str, Any]:
    tree = ast.parse((COMPONENT / "const.py").read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            if isinstance(target, ast.Name) and node.value is not None:
                with contextlib.suppress(ValueError):  # computed constants (timedelta, loggers) are skipped
                    out[target.id] = ast.literal_eval(node.value)
    return out


def test_integration_constants_mirror_the_dashboard() -> None:
    const = constants()
    assert list(const["ALERT_KINDS"]) == list(get_args(AlertKind))
    assert list(const["RISK_LEVELS"]) == list(RISK_LEVELS)
    assert const["ZEROCONF_TYPE"] == SERVICE_TYPE
    manifest = json.loads((COMPONENT / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["zeroconf"] == [SERVICE_TYPE]
    assert manifest["version"] == __version__  # one release number for the dashboard and its integration
