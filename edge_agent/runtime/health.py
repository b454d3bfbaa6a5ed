"""The running agent's heartbeat file and ``footfall-agent health`` (the Docker HEALTHCHECK, systemd watchdogs).

The agent rewrites ``<state_dir>/heartbeat.json`` every few seconds. Health is red when the heartbeat is stale
(the process hangs or is gone) or when the outbox publisher has been failing for longer than
:data:`PUBLISHER_FAILING_S` (e.g. the outbox file went bad while running: the agent measures but can deliver
nothing). A broker that cannot be reached is *not* red: an agent out of Wi-Fi range keeps measuring into its
outbox by design (docs/design.md §6); the heartbeat says ``connected`` for whoever wants to know.

Kept apart from the agent's composition root so a health check every 30 s imports no numpy or numba.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

HEARTBEAT_FILE = "heartbeat.json"
#: A publisher failing (exceptions in its delivery step, one retry a second) for this long turns health red.
PUBLISHER_FAILING_S = 30.0


def write_heartbeat(path: Path, data: dict[str, Any]) -> None:
    """Replace the heartbeat atomically (a reader never sees half a file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def check_health(state_dir: Path, max_age_s: float, max_failing_s: float = PUBLISHER_FAILING_S) -> tuple[bool, str]:
    """Is the running agent's heartbeat fresh, and has its publisher not been failing for over ``max_failing_s``?"""
    path = state_dir / HEARTBEAT_FILE
    try:
        data = json.loads(path.read_text())
        age = time.time() - float(data["time"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        return False, f"no heartbeat at {path}: {err}"
    if age > max_age_s:
        return False, f"heartbeat {age:.0f} s old (> {max_age_s:.0f} s) at {path}"
    publisher = data.get("publisher") or {}
    failing = publisher.get("failing_s")
    if isinstance(failing, int | float) and failing > max_failing_s:
        return False, (
            f"outbox publisher failing for {failing:.0f} s ({publisher.get('failures')} attempts; last: "
            f"{publisher.get('last_error')}): nothing is delivered — see the agent's log"
        )
    return True, f"ok: heartbeat {age:.1f} s old, activity {data.get('activity')}, backlog {data.get('backlog')}"
