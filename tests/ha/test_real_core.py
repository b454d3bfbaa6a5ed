"""A whole Home Assistant Core (``hass -c <tmp>``, headless, loopback) loads the integration from this repository.

The way a user gets there: onboarding creates the owner (and so an access token), the integration is added
through the REST config-flow API (/api/config/config_entries/flow, what the UI's "Add integration" dialog
calls) with the dashboard's URL and token; then the entities must appear with the dashboard's figures, the
statistic ids in the recorder (websocket ``recorder/list_statistic_ids``), and Home Assistant's log must hold
no warning or error about footfall — except the one Home Assistant writes for every custom integration.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.ha.common import REPO, Dashboard, free_port

pytestmark = pytest.mark.slow

CONFIGURATION = """\
homeassistant:
  name: footfall test
  latitude: 52.5
  longitude: 13.4
  elevation: 40
  unit_system: metric
  time_zone: UTC
  currency: EUR
  country: DE
  language: en
http:
  server_host: 127.0.0.1
  server_port: {port}
logger:
  default: info
api:
config:
onboarding:
websocket_api:
recorder:
  commit_interval: 1
"""
#: The warning Home Assistant's loader logs for every custom integration (homeassistant/loader.py).
CUSTOM_INTEGRATION_NOTICE = "We found a custom integration footfall which has not been tested by Home Assistant"


async def _wait(what: str, check: Any, timeout: float = 120.0, proc: subprocess.Popen[bytes] | None = None,
                log: Path | None = None) -> Any:  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await check()
            if result:
                return result
        except (aiohttp.ClientError, OSError):
            pass
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"Home Assistant exited ({proc.returncode}):\n{log.read_text()[-4000:] if log else ''}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-4000:] if log else ''}")
        await asyncio.sleep(0.5)


async def test_home_assistant_core_loads_the_integration_from_the_repository(
    tmp_path: Path, dashboard: Dashboard
) -> None:
    config = tmp_path / "config"
    (config / "custom_components").mkdir(parents=True)
    (config / "custom_components" / "footfall").symlink_to(REPO / "custom_components" / "footfall")
    port = free_port()
    (config / "configuration.yaml").write_text(CONFIGURATION.format(port=port))
    log = config / "home-assistant.log"
    hass_bin = Path(sys.executable).with_name("hass")
    proc = subprocess.Popen([str(hass_bin), "-c", str(config), "--skip-pip", "--log-file", str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": ""})  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:

            async def get_json(path: str, **kw: Any) -> Any:
                async with http.get(f"{base}{path}", **kw) as r:
                    return await r.json() if r.status == 200 else None

            await _wait("Home Assistant's HTTP server", lambda: get_json("/api/onboarding"), proc=proc, log=log)
            # Onboarding: the owner account, then an access token from the auth code.
            client_id = f"{base}/"
            async with http.post(f"{base}/api/onboarding/users", json={
                "client_id": client_id, "name": "Owner", "username": "owner", "password": "a-long-test-password",
                "language": "en"}) as r:  # fmt: skip
                assert r.status == 200, await r.text()
                code = (await r.json())["auth_code"]
            async with http.post(f"{base}/auth/token", data={"grant_type": "authorization_code", "code": code,
                                                              "client_id": client_id}) as r:  # fmt: skip
                assert r.status == 200, await r.text()
                token = (await r.json())["access_token"]
            auth = {"Authorization": f"Bearer {token}"}

            # The config flow through the REST API, as the UI drives it.
            async with http.post(f"{base}/api/config/config_entries/flow", headers=auth,
                                 json={"handler": "footfall", "show_advanced_options": False}) as r:  # fmt: skip
                assert r.status == 200, await r.text()
                form = await r.json()
            assert form["type"] == "form" and form["step_id"] == "user"
            assert [f["name"] for f in form["data_schema"]] == ["url", "token"]
            async with http.post(f"{base}/api/config/config_entries/flow/{form['flow_id']}", headers=auth,
                                 json={"url": dashboard.url, "token": dashboard.token}) as r:  # fmt: skip
                assert r.status == 200, await r.text()
                created = await r.json()
            assert created["type"] == "create_entry", created
            assert created["result"]["domain"] == "footfall" and created["result"]["state"] == "loaded"

            # Entities with the dashboard's figures.
            summary = dashboard.get("/api/summary")
            [alex] = summary["runners"]

            async def footfall_states() -> dict[str, Any] | None:
                states = await get_json("/api/states", headers=auth)
                by_id = {s["entity_id"]: s for s in states or []}
                ready = "sensor.alex_footfall_loading_rate_7_days" in by_id
                return by_id if ready else None

            states = await _wait("footfall entities", footfall_states, proc=proc, log=log)
            valr = states["sensor.alex_footfall_loading_rate_7_days"]
            assert float(valr["state"]) == pytest.approx(alex["last_7_days"]["valr_mean"], rel=1e-6)
            assert valr["attributes"]["unit_of_measurement"] == "BW/s"
            assert states["sensor.alex_footfall_injury_risk_level"]["state"] == alex["risk"]["level"] == "high"
            assert int(states["sensor.alex_footfall_runs_7_days"]["state"]) == alex["last_7_days"]["runs"]
            assert states["sensor.sim_1_insoles_runs"]["state"] == str(alex["runs"])
            assert "event.alex_footfall_alert" in states and "button.footfall_re_sync" in states

            # Statistic ids in the recorder (the import runs in the background after setup).
            async with http.ws_connect(f"{base}/api/websocket") as ws:
                assert (await ws.receive_json())["type"] == "auth_required"
                await ws.send_json({"type": "auth", "access_token": token})
                assert (await ws.receive_json())["type"] == "auth_ok"
                msg_id = 0

                async def ws_call(payload: dict[str, Any]) -> Any:
                    nonlocal msg_id
                    msg_id += 1
                    await ws.send_json({"id": msg_id, **payload})
                    while True:
                        reply = await ws.receive_json()
                        if reply.get("id") == msg_id:
                            assert reply["success"], reply
                            return reply["result"]

                async def footfall_statistic_ids() -> set[str] | None:
                    listed = await ws_call({"type": "recorder/list_statistic_ids", "statistic_type": "mean"})
                    ids = {s["statistic_id"] for s in listed if s["source"] == "footfall"}
                    return ids if len(ids) == 6 else None

                ids = await _wait("footfall statistics", footfall_statistic_ids, proc=proc, log=log)
                assert "footfall:alex_valr" in ids and "footfall:alex_cadence" in ids
                rows = await ws_call({
                    "type": "recorder/statistics_during_period", "start_time": "2000-01-01T00:00:00Z",
                    "statistic_ids": ["footfall:alex_valr"], "period": "hour", "types": ["mean", "min", "max"],
                })  # fmt: skip
                hours = rows["footfall:alex_valr"]
                assert len(hours) >= alex["runs"]  # every run covers at least one hour
                assert all(h["min"] <= h["mean"] <= h["max"] for h in hours)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert "Loaded footfall from custom_components.footfall" in text or "footfall" in text
    problems = [line for line in text.splitlines()
                if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line) and "footfall" in line.lower()
                and CUSTOM_INTEGRATION_NOTICE not in line]  # fmt: skip
    assert not problems, "\n".join(problems)
    assert CUSTOM_INTEGRATION_NOTICE in text  # the check above really read Home Assistant's log
