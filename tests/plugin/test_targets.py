"""The plugin's target publisher: the function the program calls, and ``footfall-dashboard target`` by hand, against a
real broker; the retained payload is what the agent accepts (plugin/targets.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.contract import parse_target, runner_target_topic
from edge_agent.runtime.feedback.targets import TargetKeeper
from plugin.config import MqttConfig
from plugin.targets import make_target, publish_target, read_retained
from tests.support.paths import REPO
from tests.support.waiting import wait_until


def dashboard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plugin.cli", *args], capture_output=True, text=True, timeout=60, cwd=cwd,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def retained(port: int, topic: str) -> list[tuple[bytes, bool]]:
    """What a client subscribing now receives on ``topic`` (retained messages arrive at once)."""
    got: list[tuple[bytes, bool]] = []
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="targets-probe")
    c.on_connect = lambda cl, *_: cl.subscribe(topic, 1)
    c.on_message = lambda _c, _u, m: got.append((bytes(m.payload), bool(m.retain)))
    c.connect("127.0.0.1", port)
    c.loop_start()
    wait_until(lambda: got, timeout=3)
    c.loop_stop()
    c.disconnect()
    return got


def test_publish_target_through_any_publish_function_is_retained(broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The program's path: ``publish_target(ingest.publish, …)``; here a plain paho client's publish."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="program")
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    infos = []
    t = make_target("alex", cadence_spm=171.0, valr_max_bw_s=65.0, set_by="program", note="stage 1")
    topic = publish_target(lambda *a: infos.append(c.publish(*a)), t, base_topic="home/ff")
    infos[0].wait_for_publish(5)
    c.loop_stop()
    c.disconnect()
    assert topic == "home/ff/_runners/alex/target"
    [(payload, was_retained)] = retained(broker.port, topic)
    assert was_retained
    keeper = TargetKeeper(tmp_path, "alex")  # what the agent does with it
    assert keeper.offer(payload) == (True, "accepted")
    assert keeper.active().cadence.spm == 171.0 and keeper.active().loading.ceiling_bw_s == 65.0  # type: ignore[union-attr]


def test_cli_set_show_off(broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = broker.url
    ok = dashboard("target", "set", "--runner", "alex", "--broker", url, "--cadence", "172", "--valr-pct", "90",
                   "--valr-baseline", "60", "--summary-every", "5", "--note", "by hand", cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "published target" in ok.stdout and "_runners/alex/target" in ok.stdout
    shown = dashboard("target", "show", "--runner", "alex", "--broker", url, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    t = parse_target(shown.stdout)
    assert t.cadence.spm == 172.0 and t.loading.ceiling_bw_s == pytest.approx(54.0)  # type: ignore[union-attr]
    assert t.cues.summary_every_min == 5.0 and t.set_by == "dashboard-cli" and t.note == "by hand"
    off = dashboard("target", "off", "--runner", "alex", "--broker", url, cwd=tmp_path)
    assert off.returncode == 0, off.stderr
    t2 = asyncio.run(read_retained(MqttConfig(url=url), "alex"))
    assert t2 is not None and t2.cadence is None and t2.loading is None and t2.set_at >= t.set_at
    none = dashboard("target", "show", "--runner", "nobody", "--broker", url, cwd=tmp_path)
    assert none.returncode == 1 and "no target retained" in none.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "--runner", "a/b", "--cadence", "170"], "cannot name a topic"),
        (["set", "--runner", "alex"], "give --cadence"),
        (["set", "--runner", "alex", "--cadence", "400"], "less than or equal to 240"),
        (["set", "--runner", "alex", "--valr-pct", "90"], "needs baseline_bw_s"),
        (
            [
                "set",
                "--runner",
                "alex",
                "--cadence",
                "170",
                "--valr-max",
                "60",
                "--valr-pct",
                "90",
                "--valr-baseline",
                "60",
            ],
            "exactly one",
        ),
    ],
)
def test_cli_refuses_bad_targets_before_touching_the_broker(tmp_path: Path, args: list[str], message: str) -> None:
    bad = dashboard("target", *args, "--broker", "mqtt://127.0.0.1:9", cwd=tmp_path)
    assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr


def test_cli_says_when_the_broker_is_away(tmp_path: Path) -> None:
    from tests.support.brokers import free_port

    r = dashboard("target", "show", "--runner", "alex", "--broker", f"mqtt://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert r.returncode == 1 and "not reachable" in r.stderr and "Traceback" not in r.stderr


def test_topic_helper_and_payload_shape() -> None:
    t = make_target("alex", cadence_spm=170.0, now=1_767_250_800.0, valid_for_s=86400)
    assert runner_target_topic("alex") == "footfall/_runners/alex/target"
    d = json.loads(t.model_dump_json(exclude_none=True))
    assert d["kind"] == "target" and d["valid_until"] - d["set_at"] == 86400
