"""The program inside the running dashboard: a real Mosquitto, the dashboard service, a raw MQTT client standing in
for the agent, and a local HTTP endpoint standing in for the push service (Apprise ``json://``).

At start the service publishes the program's target, retained, on the runner's topic; the runs that complete
stage 1 then arrive over MQTT: the stage completion is pushed once, the new target (stage 2) replaces the retained
one, and the runs are tagged with the pair their RunSummary names."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.contract import RunSummary, WindowSummary
from plugin.config import MqttConfig, load_config
from plugin.history import WEEK, Scenario, generate_history, history_start
from plugin.program import ProgramService, journey
from plugin.service import DashboardService
from plugin.store import Store
from plugin.targets import read_retained
from tests.plugin.test_notify import Receiver, receiver

__all__ = ["receiver"]

WEEKS = 9


def _at(m: WindowSummary | RunSummary) -> float:
    return m.t_end if isinstance(m, WindowSummary) else m.ended_at


async def _retained_note(cfg: MqttConfig, prefix: str) -> Any:
    for _ in range(100):
        target = await read_retained(cfg, "alex", timeout_s=1.0)
        if target is not None and (target.note or "").startswith(prefix):
            return target
        await asyncio.sleep(0.1)
    raise AssertionError(f"no retained target with a note starting {prefix!r}")


async def test_the_service_publishes_targets_and_pushes_a_completed_stage(
    broker: Any, tmp_path: Path, receiver: Receiver
) -> None:
    end = time.time() - 3600.0
    start = history_start(weeks=WEEKS, end=end) + 4 * WEEK
    scenario = Scenario(program=(4, 0.075, 3), shoe_change=(0, "x", "Road", 1.0, 0.0))
    msgs = list(generate_history(weeks=WEEKS, end=end, seed=4, step_records_last_runs=0, scenario=scenario))
    # where stage 1 completes, found on a scratch copy
    with Store(tmp_path / "scratch.db") as scratch:
        scratch.insert_many([m for m in msgs if _at(m) < start])
        ProgramService(scratch).start("alex", at=start)
        scratch.insert_many([m for m in msgs if _at(m) >= start])
        done = journey(scratch, "alex", now=end)["completed"]["1"]  # type: ignore[index]
    completing = next(m for m in msgs if isinstance(m, RunSummary) and m.ended_at == done)
    earlier = {m.run_id for m in msgs if isinstance(m, RunSummary) and m.started_at < completing.started_at}
    db = tmp_path / "dash.db"
    with Store(db) as store:  # history up to the run before the one that completes stage 1
        store.insert_many([m for m in msgs if m.run_id in earlier and _at(m) < start])
        ProgramService(store).start("alex", at=start, goals="a faster 10 km")
        store.insert_many([m for m in msgs if m.run_id in earlier and _at(m) >= start])
        assert journey(store, "alex", now=completing.started_at)["completed"] == {}  # type: ignore[index]
    cfg = load_config(None, mqtt={"url": broker.url, "client_id": "dash-program", "ha_discovery": False},
                      db_path=str(db), notify_urls=[receiver.url])  # fmt: skip
    svc = DashboardService(cfg, serve_web=False)
    await svc.start()
    try:
        first = await _retained_note(cfg.mqtt, "Stage 1")
        assert first.set_by == "program" and first.cadence is not None and first.cues.metronome
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="raw-agent")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        later = [m for m in msgs if m.run_id not in earlier]
        for m in later:
            pub.publish(f"footfall/{m.device_id}/{'summary' if isinstance(m, WindowSummary) else 'run'}",
                        m.model_dump_json(), qos=1)  # fmt: skip
        await asyncio.wait_for(receiver.got.wait(), 60)
        second = await _retained_note(cfg.mqtt, "Stage 2")
        assert second.target_id != first.target_id and second.cadence.spm >= first.cadence.spm  # type: ignore[union-attr]
        for _ in range(200):
            if svc.ingest and svc.ingest.stats.stored >= len(later):
                break
            await asyncio.sleep(0.05)
        pub.loop_stop()
        await asyncio.sleep(0.5)
        assert [p["title"] for p in receiver.posts] == ["alex: stage 1 done — Lighter heel strike"]
        assert "stage 2" in receiver.posts[0]["message"].lower()
        assert svc.store is not None
        runs = [m.run_id for m in later if isinstance(m, RunSummary)]
        assert {svc.store.run_shoe(r)["name"] for r in runs} == {"Road"}  # type: ignore[index]
    finally:
        await svc.stop()
