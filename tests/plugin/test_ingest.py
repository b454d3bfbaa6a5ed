"""Ingest against a real Mosquitto: a raw paho publisher, dedupe, end-to-end acks, hostile payloads."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.contract import MAX_PAYLOAD_BYTES, RunSummary, WindowSummary
from plugin.config import MqttConfig
from plugin.history import RunnerModel, generate_history
from plugin.ingest import FairQueue, Ingest
from plugin.store import Store
from tests.support.brokers import MosquittoBroker, harden
from tests.support.paths import DATA
from tests.support.waiting import wait_until


class RawClient:
    """A plain paho client (not footfall's publisher) that records what it receives."""

    def __init__(self, port: int) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.cond = threading.Condition()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex[:8]}")
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.received.append((msg.topic, msg.payload))
            self.cond.notify_all()

    def subscribe(self, topic: str) -> None:
        self.c.subscribe(topic, 1)[0]
        time.sleep(0.2)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        self.c.publish(topic, payload, qos=qos).wait_for_publish(10)

    def wait_for(self, pred: Any, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def handled(ingest: Ingest) -> int:
    s = ingest.stats
    return s.stored + s.duplicates + s.rejected


def topic_for(m: WindowSummary | RunSummary) -> str:
    return f"footfall/{m.device_id}/{'summary' if isinstance(m, WindowSummary) else 'run'}"


@pytest.fixture
def setup(broker: Any, tmp_path: Path) -> Iterator[tuple[Store, Ingest, RawClient]]:
    store = Store(tmp_path / "dash.db")
    ingest = Ingest(store, MqttConfig(url=broker.url, client_id=f"dash-{uuid.uuid4().hex[:8]}"), ack_interval=0.2)
    ingest.start()
    raw = RawClient(broker.port)
    yield store, ingest, raw
    raw.close()
    ingest.stop()
    store.close()


def acks(raw: RawClient) -> list[dict[str, Any]]:
    return [json.loads(p) for t, p in raw.received if t.endswith("/ack")]


def test_raw_summaries_stored_once_and_acked(setup: tuple[Store, Ingest, RawClient]) -> None:
    store, ingest, raw = setup
    raw.subscribe("footfall/+/ack")
    msgs = list(generate_history(weeks=1, seed=11, step_records_last_runs=1))
    for m in msgs:
        raw.publish(topic_for(m), m.model_dump_json())
    for m in msgs[:50]:  # the agent re-sends (e.g. it missed our ack): stored once, acked again
        raw.publish(topic_for(m), m.model_dump_json())
    assert wait_until(lambda: handled(ingest) == len(msgs) + 50)
    assert ingest.wait_idle(20)
    assert ingest.stats.stored == len(msgs)
    assert ingest.stats.duplicates == 50
    assert store.counts()["messages"] == len(msgs)
    assert store.counts()["runs"] == sum(isinstance(m, RunSummary) for m in msgs)
    top = len(msgs)
    assert raw.wait_for(lambda r: any(json.loads(p).get("acked_seq") == top for t, p in r if t.endswith("/ack")))
    last = acks(raw)[-1]
    assert last == {**last, "device_id": "sim-1", "stream_id": msgs[0].stream_id, "acked_seq": top,
                    "missing": [], "highest_seq": top}  # fmt: skip
    # the run detail is complete: windows with their step records
    run = store.get_run(msgs[-1].run_id)
    assert run["complete"] and len(run["steps"]) == sum(
        len(getattr(m, "step_records", [])) for m in msgs if getattr(m, "run_id", None) == msgs[-1].run_id
    )


def test_ack_names_gaps_below_the_highest_seq(setup: tuple[Store, Ingest, RawClient]) -> None:
    _, ingest, raw = setup
    raw.subscribe("footfall/+/ack")
    base = next(m for m in generate_history(weeks=1, seed=12) if isinstance(m, WindowSummary))
    for seq in (1, 2, 3, 5, 6, 9):
        m = base.model_copy(update={"seq": seq, "msg_id": f"gap{seq:08d}", "window_index": seq})
        raw.publish(topic_for(m), m.model_dump_json())
    assert wait_until(lambda: handled(ingest) == 6)
    assert raw.wait_for(lambda r: any(json.loads(p)["highest_seq"] == 9 for t, p in r if t.endswith("/ack")))
    last = acks(raw)[-1]
    assert (last["acked_seq"], last["missing"], last["highest_seq"]) == (3, [[4, 4], [7, 8]], 9)
    for seq in (4, 7, 8):  # the agent fills the gaps
        m = base.model_copy(update={"seq": seq, "msg_id": f"gap{seq:08d}", "window_index": seq})
        raw.publish(topic_for(m), m.model_dump_json())
    assert raw.wait_for(lambda r: any(json.loads(p)["acked_seq"] == 9 for t, p in r if t.endswith("/ack")))
    assert acks(raw)[-1]["missing"] == []


V1 = DATA / "contract_v1"


def test_schema_1_payloads_of_an_older_agent_are_still_stored_and_acked(
    setup: tuple[Store, Ingest, RawClient],
) -> None:
    """The JSON a schema-1 agent really published (tests/data/contract_v1) next to a schema-2 agent's: both
    stored and acknowledged; the old one's VALR keeps its own basis (uncorrected, no interval)."""
    store, ingest, raw = setup
    raw.subscribe("footfall/+/ack")
    old = [(V1 / f).read_bytes() for f in ("window_0.json", "window_1.json", "run.json")]
    for payload in old:
        d = json.loads(payload)
        assert d["schema_version"] == 1 and "valr" not in d
        raw.publish(f"footfall/{d['device_id']}/{'summary' if d['kind'] == 'summary' else 'run'}", payload)
    new = [m for m in generate_history(weeks=1, seed=14, step_records_last_runs=0)][:4]
    assert all(m.schema_version == 2 and m.valr is not None for m in new if isinstance(m, WindowSummary))
    for m in new:
        raw.publish(topic_for(m), m.model_dump_json())
    assert wait_until(lambda: handled(ingest) == len(old) + len(new))
    assert ingest.wait_idle(20)
    assert (ingest.stats.stored, ingest.stats.rejected) == (len(old) + len(new), 0)
    assert raw.wait_for(
        lambda r: any(
            json.loads(p).get("device_id") == "old-agent" and json.loads(p).get("acked_seq") == 3
            for t, p in r
            if t.endswith("/ack")
        )
    )
    run_id = json.loads(old[2])["run_id"]
    row = store.run_row(run_id)
    assert row is not None and row["complete"] and row["steps"] == json.loads(old[2])["steps"]
    assert row["lr_basis"] == "sampled@100Hz/moticon-opengo" and row["valr_lo"] is None
    assert {w["lr_basis"] for w in store.run_windows(run_id)} == {"sampled@100Hz"}
    w_new = store.run_windows(new[0].run_id)[0]
    assert w_new["lr_basis"] == "corrected@100Hz/moticon-opengo" and w_new["valr_lo"] < w_new["valr_mean"]


def _nested(depth: int) -> bytes:
    return b'{"schema_version": 1, "kind": "summary", "x": ' + b"[" * depth + b"]" * depth + b"}"


def test_hostile_payloads_rejected_counted_and_history_intact(
    setup: tuple[Store, Ingest, RawClient], caplog: pytest.LogCaptureFixture
) -> None:
    store, ingest, raw = setup
    msgs = list(generate_history(weeks=1, seed=13, step_records_last_runs=0))
    for m in msgs:
        raw.publish(topic_for(m), m.model_dump_json())
    assert wait_until(lambda: handled(ingest) == len(msgs))
    assert ingest.wait_idle(20)
    before = (store.counts(), store.fingerprint())
    good = json.loads(msgs[0].model_dump_json())

    def variant(**changes: Any) -> bytes:
        d = json.loads(json.dumps(good))
        d["msg_id"] = uuid.uuid4().hex
        d.update(changes)
        return json.dumps(d).encode()

    nan_payload = variant().replace(b'"cadence_spm": ', b'"cadence_spm": NaN, "_x": ', 1)
    hostile: list[tuple[str, bytes, str]] = [
        ("footfall/sim-1/summary", b"not json at all", "not_json"),
        ("footfall/sim-1/summary", b"\xff\xfe\x00garbage", "not_json"),
        ("footfall/sim-1/summary", b"[1, 2, 3]", "not_object"),
        ("footfall/sim-1/summary", b"x" * (MAX_PAYLOAD_BYTES + 1), "oversized"),
        ("footfall/sim-1/summary", variant(schema_version=3), "unknown_version"),
        ("footfall/sim-1/summary", variant(schema_version=True), "unknown_version"),
        ("footfall/sim-1/summary", variant(schema_version="1"), "unknown_version"),
        ("footfall/sim-1/summary", _nested(100_000), "too_deep"),
        ("footfall/sim-1/summary", variant(run_id="<script>alert(1)</script>"), "invalid"),
        ("footfall/sim-1/summary", variant(cadence_spm=1e999), "invalid"),  # json → inf
        ("footfall/sim-1/summary", nan_payload, "invalid"),
        ("footfall/sim-1/summary", variant(steps="many"), "invalid"),
        ("footfall/sim-1/summary", variant(cadence_spm="fast"), "invalid"),
        ("footfall/sim-1/summary", variant(msg_id="<img src=x onerror=alert(1)>"), "invalid"),
        ("footfall/sim-1/summary", variant(seq=0), "invalid"),
        ("footfall/sim-1/summary", variant(steps=10**30, seq=10**6), "out_of_range"),
        ("footfall/sim-1/summary", b'{"schema_version": 1, "kind": "summary", "steps": 1' + b"0" * 5000 + b"}",
         "invalid"),  # an integer literal beyond Python's 4300-digit limit
        ("footfall/sim-1/summary", variant(device_id="other-device"), "device_mismatch"),
        ("footfall/sim-1/summary", variant(t_end=good["t_start"] - 1, seq=10**6 + 1), "invalid"),  # ends before start
        ("footfall/sim-1/run", variant(), "wrong_topic"),
        ("footfall/<script>/summary", variant(), "bad_topic"),
    ]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="plugin.ingest"):
        for topic, payload, _ in hostile:
            raw.publish(topic, payload)
        for topic, payload, _ in hostile[:3]:  # the same reasons again: counted, not logged again
            raw.publish(topic, payload)
        assert wait_until(lambda: handled(ingest) == len(msgs) + len(hostile) + 3)
        assert ingest.wait_idle(20)
    expected: dict[str, int] = {}
    for _, _, reason in [*hostile, *hostile[:3]]:
        expected[reason] = expected.get(reason, 0) + 1
    assert dict(ingest.stats.rejected_by_reason) == expected
    assert ingest.stats.rejected == len(hostile) + 3
    assert (store.counts(), store.fingerprint()) == before  # nothing stored changed
    lines = [r for r in caplog.records if "rejected payload" in r.getMessage()]
    assert len(lines) == len(expected)  # one line per reason
    assert any("invalid" in r.getMessage() and "run_id" in r.getMessage() for r in lines)  # names the field
    assert not any("<script>" in r.getMessage() for r in lines)  # but never echoes the payload's values
    # ingest still works afterwards
    new = msgs[0].model_copy(update={"msg_id": uuid.uuid4().hex, "seq": len(msgs) + 1})
    raw.publish(topic_for(new), new.model_dump_json())
    assert wait_until(lambda: store.counts()["messages"] == before[0]["messages"] + 1)
    assert store.integrity_check() == ["ok"]


def test_live_status_and_restart_keeps_dedupe(broker: Any, tmp_path: Path) -> None:
    store = Store(tmp_path / "dash.db")
    seen_live: list[Any] = []
    seen_status: list[tuple[str, str]] = []
    cfg = MqttConfig(url=broker.url, client_id="dash-restart")
    ingest = Ingest(store, cfg, on_live=seen_live.append, on_status=lambda d, s: seen_status.append((d, s)))
    ingest.start()
    raw = RawClient(broker.port)
    msgs = list(generate_history(weeks=1, seed=14, step_records_last_runs=0))[:40]
    for m in msgs[:20]:
        raw.publish(topic_for(m), m.model_dump_json())
    live = {"schema_version": 1, "kind": "live", "device_id": "sim-1", "device_time": 1.0, "cadence_spm": 170}
    raw.publish("footfall/sim-1/live", json.dumps(live), qos=0)
    raw.publish("footfall/sim-1/status", "online")
    raw.publish("footfall/sim-1/status", "<b>pwned</b>")
    assert wait_until(lambda: seen_live and seen_status and handled(ingest) == 21)
    ingest.stop()
    assert seen_live[0].cadence_spm == 170 and seen_status == [("sim-1", "online")]
    assert ingest.stats.rejected_by_reason["bad_status"] == 1
    assert store.devices()[0]["status"] == "online"
    store.close()
    # restart on the same database: re-sent messages are duplicates, new ones stored, acks continue
    store = Store(tmp_path / "dash.db")
    ingest = Ingest(store, cfg, ack_interval=0.1)
    ingest.start()
    raw.subscribe("footfall/+/ack")
    for m in msgs:
        raw.publish(topic_for(m), m.model_dump_json())
    assert wait_until(lambda: handled(ingest) == 40)
    assert (ingest.stats.duplicates, ingest.stats.stored) == (20, 20)
    assert raw.wait_for(lambda r: any(json.loads(p)["acked_seq"] == 40 for t, p in r if t.endswith("/ack")))
    raw.close()
    ingest.stop()
    store.close()


def test_many_devices_and_runners_each_get_their_own_acks(setup: tuple[Store, Ingest, RawClient]) -> None:
    store, ingest, raw = setup
    raw.subscribe("footfall/+/ack")
    streams: dict[str, list[WindowSummary | RunSummary]] = {}
    for i, (device, runner) in enumerate([("hall-pi", "alex"), ("hall-pi", "sam"), ("treadmill", "kim")]):
        # two runners share one device: one outbox stream per agent process → distinct stream ids
        model = RunnerModel(name=runner, device_id=device)
        streams[f"{device}/{runner}"] = list(
            generate_history(weeks=1, seed=30 + i, runner=model, step_records_last_runs=0, stream_id=f"st{i}abcd")
        )
    interleaved = [m for group in zip(*streams.values(), strict=False) for m in group]
    for m in interleaved:
        raw.publish(topic_for(m), m.model_dump_json())
    assert wait_until(lambda: handled(ingest) == len(interleaved))
    expected = {(ms[0].device_id, ms[0].stream_id): max(m.seq for m in ms if m in interleaved)
                for ms in streams.values()}  # fmt: skip

    def latest_acks(r: list[tuple[str, bytes]]) -> dict[tuple[str, str], int]:
        found = (json.loads(p) for t, p in r if t.endswith("/ack"))
        return {(a["device_id"], a["stream_id"]): a["acked_seq"] for a in found}

    assert raw.wait_for(lambda r: latest_acks(r) == expected)
    for t, p in raw.received:
        if t.endswith("/ack"):
            assert t == f"footfall/{json.loads(p)['device_id']}/ack"  # each device's ack on its own topic
    assert {r["name"] for r in store.runners()} == {"alex", "sam", "kim"}
    assert {d["device_id"] for d in store.devices()} == {"hall-pi", "treadmill"}
    assert {r["runner"] for r in store.list_runs(device_id="hall-pi", limit=500)} == {"alex", "sam"}


def test_broker_restart_resubscribes_and_keeps_acking(broker: Any, tmp_path: Path) -> None:
    store = Store(tmp_path / "dash.db")
    ingest = Ingest(store, MqttConfig(url=broker.url, client_id="dash-restart-broker"), ack_interval=0.1)
    ingest.start()
    msgs = list(generate_history(weeks=1, seed=40, step_records_last_runs=0))[:60]
    raw = RawClient(broker.port)
    for m in msgs[:30]:
        raw.publish(topic_for(m), m.model_dump_json())
    assert wait_until(lambda: ingest.stats.stored == 30)
    raw.close()
    broker.restart()  # SIGKILL, no persistence: sessions, subscriptions and retained messages are gone
    raw = RawClient(broker.port)
    raw.subscribe("footfall/+/ack")
    raw.subscribe("footfall/_dashboard/status")
    # the plugin re-subscribes, then re-publishes its retained "online": seeing it means it is listening again
    assert raw.wait_for(lambda r: ("footfall/_dashboard/status", b"online") in r, 30)
    for m in msgs[30:]:
        raw.publish(topic_for(m), m.model_dump_json())
    assert wait_until(lambda: ingest.stats.stored == 60, 30)  # re-subscribed on reconnect
    assert raw.wait_for(lambda r: any(json.loads(p)["acked_seq"] == 60 for t, p in r if t.endswith("/ack")))
    assert store.counts()["messages"] == 60
    raw.close()
    ingest.stop()
    store.close()


async def test_agent_and_dashboard_deliver_over_tls_with_passwords(mosquitto_factory: Any, tmp_path: Path) -> None:
    """mqtts:// with a private CA and per-client passwords on both sides: the agent's outbox →
    Mosquitto (TLS only, no anonymous) → the dashboard's ingest, and its acks back, end to end."""
    from tests.support.delivery import Agent

    b = mosquitto_factory()
    ca = harden(b, tmp_path, users={"agent": "a-Secret", "dash": "d-Secret"}, tls=True)
    b.start()

    store = Store(tmp_path / "dash.db")
    cfg = MqttConfig(
        url=f"mqtts://localhost:{b.port}", username="dash", password="d-Secret", tls_ca=ca, client_id="dash-tls"
    )
    ingest = Ingest(store, cfg, ack_interval=0.2)
    ingest.start()
    try:
        async with Agent(f"mqtts://agent:a-Secret@localhost:{b.port}", tmp_path / "outbox.db", tls_ca=ca) as agent:
            await agent.produce(30)
            assert await agent.publisher.drain(30), agent.outbox.stats()  # rows leave only on the dashboard's ack
            outbox = agent.outbox.stats()
        assert ingest.stats.stored == 30 and ingest.stats.rejected == 0
        assert outbox["rows"] == 0 and outbox["acked"] == 30
    finally:
        ingest.stop()
        store.close()


# -- integrity and isolation under hostile load (issue 12 §4, §9, §11; issue 13 §1) ---------------------------------
def test_a_genuine_summary_does_not_wait_behind_another_devices_flood(mosquitto_factory: Any, tmp_path: Path) -> None:
    """The writer is held (a slow disk) while device ``flood`` sends 2,000 messages and device ``home`` one: once
    it goes on, the batches serve the devices in turn, so ``home``'s summary is stored in the first batch, not
    after the flood; the flood beyond its device's share of the queue is dropped unacknowledged. (The broker's own
    queue for the session is made large enough that it drops nothing: this is about the dashboard's queue.)"""
    broker = mosquitto_factory(max_queued_messages=100_000)
    broker.start()
    store = Store(tmp_path / "dash.db")
    order: list[str] = []
    gate = threading.Event()

    def slow_first_batch(msgs: list[Any]) -> None:
        gate.wait(30)
        order.extend(m.device_id for m in msgs)

    cfg = MqttConfig(url=broker.url, client_id="dash-fair")
    ingest = Ingest(store, cfg, on_stored=slow_first_batch, batch_max=100, device_queue_bytes=400_000)
    ingest.start()
    raw = RawClient(broker.port)
    try:
        base = next(m for m in generate_history(weeks=1, seed=15) if isinstance(m, WindowSummary))
        first = base.model_copy(update={"device_id": "flood", "run_id": "flood-run", "msg_id": "flood-first"})
        raw.publish("footfall/flood/summary", first.model_dump_json())
        assert wait_until(lambda: ingest._busy.is_set() and ingest._q.empty())  # the writer holds batch 1
        flood = [
            base.model_copy(update={"device_id": "flood", "run_id": "flood-run", "msg_id": f"flood{i:07d}",
                                    "seq": i + 2, "window_index": i + 1})
            for i in range(2000)
        ]  # fmt: skip
        for m in flood:
            raw.c.publish("footfall/flood/summary", m.model_dump_json(), qos=1)
        home = base.model_copy(update={"device_id": "home", "run_id": "home-run", "msg_id": "home-genuine"})
        raw.publish("footfall/home/summary", home.model_dump_json())
        assert wait_until(lambda: "home" in ingest._q._queues, 20)
        gate.set()
        assert wait_until(lambda: "home" in order, 30)
        assert ingest.wait_idle(60)
        assert order.index("home") <= 1 + 100  # in the first batch after the held one, not behind the flood
        assert ingest.stats.dropped_flood > 0  # the flood's excess: not stored, not acknowledged
        assert wait_until(lambda: ingest.stats.stored + ingest.stats.dropped_flood == 2002, 60), ingest.stats
        contiguous, _, _ = store.ack_state("flood", base.stream_id)
        assert contiguous < 2001 and store.counts()["windows"] == ingest.stats.stored
    finally:
        gate.set()
        raw.close()
        ingest.stop()
        store.close()


def test_an_ack_costs_the_same_with_ten_or_a_thousand_streams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Acks read one stream row: counted in SQLite virtual-machine steps, the ack of a device with 1,000 streams
    costs what it costs with 10 (the previous version read every stream of the device for every ack)."""
    from plugin.store import summaries

    monkeypatch.setattr(summaries, "MAX_STREAMS_PER_DEVICE", 5000)
    base = next(m for m in generate_history(weeks=1, seed=16) if isinstance(m, WindowSummary))

    def ack_cost(streams: int) -> int:
        store = Store(tmp_path / f"acks{streams}.db")
        msgs = [base.model_copy(update={"msg_id": f"s{i:09d}", "stream_id": f"strm{i:06d}", "seq": 1,
                                        "window_index": i}) for i in range(streams)]  # fmt: skip
        store.insert_many(msgs)
        ingest = Ingest(store, MqttConfig(client_id="no-broker"))
        conn = store.db._reader()  # type: ignore[attr-defined]
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        conn.set_progress_handler(count, 10)
        ack = ingest.ack_for(base.device_id, "strm000003")
        conn.set_progress_handler(None, 10)
        store.close()
        assert (ack.acked_seq, ack.missing, ack.highest_seq) == (1, [], 1)
        return steps[0]

    small, large = ack_cost(10), ack_cost(1000)
    assert large <= 2 * small + 5, (small, large)


def test_payloads_beyond_the_maximum_packet_size_never_reach_the_dashboard(broker: Any, tmp_path: Path) -> None:
    """MQTT 5 Maximum Packet Size: the broker drops a 5 MB payload for us instead of sending it (the dashboard
    buffered 50 MB payloads before rejecting them); what fits is ingested as usual."""
    if not isinstance(broker, MosquittoBroker):
        pytest.skip("needs Mosquitto (MQTT 5)")
    store = Store(tmp_path / "dash.db")
    ingest = Ingest(store, MqttConfig(url=broker.url, client_id="dash-bigpackets"))
    ingest.start()
    raw = RawClient(broker.port)
    try:
        for _ in range(3):
            raw.publish("footfall/sim-1/summary", b"x" * (5 * 1024 * 1024))
        good = next(m for m in generate_history(weeks=1, seed=17) if isinstance(m, WindowSummary))
        raw.publish(topic_for(good), good.model_dump_json())
        assert wait_until(lambda: ingest.stats.stored == 1)
        assert ingest.conn.stats["received_bytes"] < 100_000  # the 15 MB were never sent to us
        assert ingest.stats.rejected == 0
    finally:
        raw.close()
        ingest.stop()
        store.close()


def test_fair_queue_is_bounded_in_bytes_per_device_and_overall() -> None:
    q = FairQueue(max_bytes=10_000, device_bytes=4_000)

    def item(dev: str) -> tuple[str, bytes, float]:
        return (f"footfall/{dev}/summary", b"x" * 800, 0.0)  # 1,000 bytes counted with the overhead

    assert all(q.put("a", item("a")) for _ in range(4))
    assert q.put("a", item("a")) is False  # device a holds its share
    assert all(q.put("b", item("b")) for _ in range(4))
    assert q.put("c", item("c")) and q.put("c", item("c"))
    assert q.put("c", item("c"), timeout=0.05) is False  # the whole queue is full: put waits (here: times out)
    assert q.total_bytes == 10_000
    batch = q.take(5, 0, 0)
    assert [t.split("/")[1] for t, _, _ in batch] == ["a", "b", "c", "a", "b"]  # the devices in turn
    assert q.count == 5 and q.total_bytes == 5_000
