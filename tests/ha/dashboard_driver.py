"""The footfall side of the Home Assistant tests, run with the PROJECT's interpreter (Python 3.11 + footfall).

Home Assistant's tests run on Python 3.13 in .venv-ha, which has no footfall installed; whatever needs the
project's code runs here, as a subprocess:

    python -m tests.ha.dashboard_driver broker DIR
        start a private MQTT broker (Mosquitto, else the embedded one), print {"url": ...}, stop it when
        stdin closes
    python -m tests.ha.dashboard_driver publish-run --broker URL --start T --minutes M [--runner R]
            [--device D] [--seed N] [--spike]
        publish one simulated run (its windows, then its RunSummary) that starts at Unix time T, the way an
        agent would (QoS 1, a fresh stream id); --spike makes windows 2-3 load 1.8x harder (a loading spike
        the dashboard's risk engine alerts on). Prints {"run_id", "windows", "t_start", "t_end"}.

The dashboard itself is started as the real ``footfall-dashboard run`` command (python -m plugin.cli).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edge_agent.contract import RunSummary, Topics, WindowSummary
from plugin.history import RunnerModel, Scenario, generate_history
from tests.support.brokers import make_broker

DAY = 86400.0


def cmd_broker(args: argparse.Namespace) -> int:
    broker = make_broker(Path(args.dir))
    broker.start()
    try:
        print(json.dumps({"url": broker.url}), flush=True)
        sys.stdin.read()  # until the test closes our stdin (or dies)
    finally:
        broker.stop()
    return 0


def one_run(start: float, minutes: float, runner: str, device: str, seed: int, spike: bool) -> list[Any]:
    """One run of ``minutes`` (1-min windows) starting at ``start``: the simulator's last run, moved in time."""
    model = RunnerModel(name=runner, device_id=device, runs_per_week=1, long_run_minutes=minutes)
    end = start + 14 * DAY
    msgs = list(generate_history(weeks=1, end=end, runner=model, seed=seed, step_records_last_runs=0,
                                 scenario=Scenario(spike=(0, 2, 2, 1.8)) if spike else None,
                                 stream_id=f"hatest{random.Random(seed).getrandbits(40):010x}"))  # fmt: skip
    run = msgs[-1]
    assert isinstance(run, RunSummary) and len(msgs) >= 2
    shift = start - run.started_at
    run_id = f"{device}-{int(start)}"
    moved: list[Any] = []
    for m in msgs:
        if isinstance(m, WindowSummary):
            moved.append(m.model_copy(update={"t_start": m.t_start + shift, "t_end": m.t_end + shift,
                                              "device_time": m.device_time + shift, "run_id": run_id}))  # fmt: skip
        else:
            moved.append(m.model_copy(update={"started_at": m.started_at + shift, "ended_at": m.ended_at + shift,
                                              "device_time": m.device_time + shift, "run_id": run_id}))  # fmt: skip
    return moved


def cmd_publish_run(args: argparse.Namespace) -> int:
    msgs = one_run(args.start, args.minutes, args.runner, args.device, args.seed, args.spike)
    host, port = args.broker.split("://", 1)[1].rsplit(":", 1)
    topics = Topics(args.device)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ha-test-agent-{args.seed}")
    client.connect(host, int(port))
    client.loop_start()
    try:
        for m in msgs:
            topic = topics.summary if isinstance(m, WindowSummary) else topics.run
            client.publish(topic, m.model_dump_json(), qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()
    run = msgs[-1]
    print(
        json.dumps({"run_id": run.run_id, "windows": len(msgs) - 1, "t_start": run.started_at, "t_end": run.ended_at})
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dashboard_driver")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("broker")
    b.add_argument("dir", nargs="?", default=None)
    b.set_defaults(func=cmd_broker)
    r = sub.add_parser("publish-run")
    r.add_argument("--broker", required=True)
    r.add_argument("--start", type=float, required=True)
    r.add_argument("--minutes", type=float, default=10.0)
    r.add_argument("--runner", default="alex")
    r.add_argument("--device", default="sim-1")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--spike", action="store_true")
    r.set_defaults(func=cmd_publish_run)
    args = p.parse_args(argv)
    if getattr(args, "dir", "") is None:
        args.dir = tempfile.mkdtemp(prefix="footfall-ha-broker-")
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
