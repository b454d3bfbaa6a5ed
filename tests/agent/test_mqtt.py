"""MqttConnection and OutboxPublisher against real Mosquitto: availability, PUBACK, subscriptions,
reconnects, credentials (never logged), TLS, publish window and order, malformed acks."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.common.mqtt import BrokerSettings, MqttConnection, MqttMessage, MqttNotConnected
from edge_agent.contract import Ack, Topics
from edge_agent.runtime.outbox import Outbox
from edge_agent.runtime.publisher import OutboxPublisher
from tests.support.brokers import harden
from tests.support.paths import REPO
from tests.support.waiting import until

T = Topics("dev1")
SECRET = "s3cr3t-P@ss"


class Sniffer:
    """A raw paho subscriber recording (topic, payload, retain) in arrival order."""

    def __init__(self, port: int, topic: str = "#") -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.ready = threading.Event()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"sniffer-{time.monotonic_ns()}")

        def on_connect(c: paho.Client, *_: Any) -> None:
            c.subscribe(topic, 1)
            self.ready.set()

        self.c.on_connect = on_connect
        self.c.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload), bool(m.retain)))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.ready.wait(5)
        time.sleep(0.1)

    def payloads(self, topic: str) -> list[bytes]:
        return [p for t, p, _ in self.messages if t == topic]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def settings(url: str, **kw: Any) -> BrokerSettings:
    kw.setdefault("backoff_min_s", 0.05)
    kw.setdefault("backoff_max_s", 0.3)
    return BrokerSettings(url=url, client_id=kw.pop("client_id", "dev1-agent"), **kw)


# --------------------------------------------------------------------------- settings
def test_settings_parse_and_redact() -> None:
    s = BrokerSettings(url=f"mqtts://alice:{SECRET.replace('@', '%40')}@broker.lan", client_id="x")
    assert (s.host, s.port, s.tls) == ("broker.lan", 8883, True)
    assert s.credentials() == ("alice", SECRET)
    assert s.redacted_url() == "mqtts://alice:***@broker.lan"
    assert SECRET not in repr(s) and "%40" not in repr(s)
    plain = BrokerSettings(url="mqtt://10.0.0.2", client_id="x", username="bob", password="pw")
    assert (plain.port, plain.tls, plain.credentials()) == (1883, False, ("bob", "pw"))
    with pytest.raises(ValueError, match="scheme") as err:
        BrokerSettings(url=f"http://u:{SECRET}@h", client_id="x")
    assert SECRET not in str(err.value)
    with pytest.raises(ValueError, match="keepalive"):
        BrokerSettings(url="mqtt://h", client_id="x", keepalive=1)


# --------------------------------------------------------------------------- lifecycle
async def test_birth_puback_subscribe_and_clean_offline(broker: Any) -> None:
    sniff = Sniffer(broker.port)
    got: list[MqttMessage] = []

    async def on_async(msg: MqttMessage) -> None:
        got.append(msg)

    async with MqttConnection(settings(broker.url), will=(T.status, b"offline", True)) as conn:
        assert await conn.wait_connected(5)
        conn.subscribe("footfall/dev1/ack", got.append)
        conn.subscribe("homeassistant/status", on_async)
        await asyncio.sleep(0.2)
        await conn.publish(T.summary, b'{"n":1}', qos=1)  # returns at PUBACK
        await conn.publish(T.live, b'{"n":2}', qos=0)
        sniff.c.publish("footfall/dev1/ack", b"A", qos=1)
        sniff.c.publish("homeassistant/status", b"online", qos=1)
        assert await until(lambda: len(got) == 2)
        assert {(m.topic, m.payload) for m in got} == {("footfall/dev1/ack", b"A"), ("homeassistant/status", b"online")}
        assert await until(lambda: sniff.payloads(T.summary) == [b'{"n":1}'])
        assert sniff.payloads(T.status) == [b"online"]
        assert conn.state == "connected"
    assert conn.state == "closed"
    assert await until(lambda: sniff.payloads(T.status)[-1:] == [b"offline"])
    with pytest.raises(MqttNotConnected):
        conn.publish_nowait(T.summary, b"x")
    sniff.close()
    late = Sniffer(broker.port, T.status)  # retained: a newcomer sees offline
    assert await until(lambda: late.messages == [(T.status, b"offline", True)])
    late.close()


WILL_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from edge_agent.common.mqtt import BrokerSettings, MqttConnection
    async def main():
        s = BrokerSettings(url=sys.argv[1], client_id="dev1-agent", keepalive=5)
        async with MqttConnection(s, will=("footfall/dev1/status", b"offline", True)) as c:
            await c.wait_connected(5)
            print("up", flush=True)
            await asyncio.sleep(60)
    asyncio.run(main())
    """
)


async def test_last_will_offline_after_kill_9(broker: Any) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WILL_CHILD, broker.url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
    sniff = Sniffer(broker.port, T.status)
    assert await until(lambda: sniff.payloads(T.status) == [b"online"])
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    assert await until(lambda: sniff.payloads(T.status) == [b"online", b"offline"], 10)
    sniff.close()


async def test_reconnect_resubscribes_and_logs_once(broker: Any, caplog: pytest.LogCaptureFixture) -> None:
    got: list[bytes] = []
    with caplog.at_level(logging.INFO, logger="edge_agent"):
        async with MqttConnection(settings(broker.url), will=(T.status, b"offline", True)) as conn:
            assert await conn.wait_connected(5)
            conn.subscribe(T.ack, lambda m: got.append(m.payload))
            await asyncio.to_thread(broker.kill)
            assert await until(lambda: not conn.connected.is_set())
            with pytest.raises(MqttNotConnected):
                conn.publish_nowait(T.summary, b"x")
            await asyncio.sleep(1.0)  # several failed attempts while the broker is down
            await asyncio.to_thread(broker.start)
            assert await conn.wait_connected(10)
            sniff = Sniffer(broker.port)
            sniff.c.publish(T.ack, b"after-restart", qos=1)
            assert await until(lambda: got == [b"after-restart"])
            sniff.close()
            assert conn.stats["connects"] == 2 and conn.stats["failed_attempts"] >= 2
    assert sum("lost" in r.message for r in caplog.records) == 1
    assert sum("is back after" in r.message for r in caplog.records) == 1
    assert sum(r.levelno >= logging.WARNING for r in caplog.records) == 1  # retries are DEBUG


# --------------------------------------------------------------------------- credentials + TLS
def _auth_broker(mosquitto_factory: Any, tmp_path: Path) -> Any:
    b = mosquitto_factory()
    harden(b, tmp_path, users={"alice": SECRET})
    b.start()
    return b


async def test_credentials_are_used_and_never_logged(
    mosquitto_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    b = _auth_broker(mosquitto_factory, tmp_path)
    quoted = SECRET.replace("@", "%40")
    with caplog.at_level(logging.DEBUG):
        async with MqttConnection(settings(f"mqtt://alice:{quoted}@127.0.0.1:{b.port}")) as good:
            assert await good.wait_connected(5)
            await good.publish("t/x", b"1")
        async with MqttConnection(settings(f"mqtt://alice:wrong-{quoted}@127.0.0.1:{b.port}")) as bad:
            assert not await bad.wait_connected(1.0)
            assert bad.stats["failed_attempts"] >= 1 and bad.stats["connects"] == 0
            assert SECRET not in repr(bad)
    assert "refused the connection" in caplog.text and "Not authorized" in caplog.text
    assert SECRET not in caplog.text and quoted not in caplog.text and "wrong-" not in caplog.text


async def test_tls_with_ca_file(mosquitto_factory: Any, tmp_path: Path) -> None:
    b = mosquitto_factory()
    ca = harden(b, tmp_path, tls=True)
    b.start()
    async with MqttConnection(settings(f"mqtts://localhost:{b.port}", tls_ca=ca)) as conn:
        assert await conn.wait_connected(5)
        await conn.publish("t/tls", b"over tls")
    # without our CA the server certificate is rejected (no silent plaintext / unverified fallback)
    async with MqttConnection(settings(f"mqtts://localhost:{b.port}")) as untrusted:
        assert not await untrusted.wait_connected(1.0)
        assert untrusted.stats["failed_attempts"] >= 1


# --------------------------------------------------------------------------- publisher
async def test_publisher_window_order_and_bad_acks(
    broker: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sniff = Sniffer(broker.port, T.summary)
    ob = Outbox(tmp_path / "o.db", "dev1", require_plugin_ack=False)
    for _ in range(300):
        ob.put(T.summary, lambda s, m: f'{{"seq":{s}}}'.encode(), kind="summary")
    async with MqttConnection(settings(broker.url)) as conn:
        pub = OutboxPublisher(conn, ob, T, window=10, poll_s=0.05)
        task = asyncio.create_task(pub.run())
        assert await pub.drain(20)
        with caplog.at_level(logging.WARNING, logger="edge_agent"):
            for _ in range(3):
                await conn.publish(T.ack, b"{not json")
            await conn.publish(T.ack, b'{"device_id":"dev1","stream_id":"' + ob.stream_id.encode() + b'"}')
            assert await until(lambda: pub.stats["bad_acks"] == 4)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert pub.stats["max_inflight"] <= 10 and pub.stats["pubacks"] == 300
    assert await until(lambda: len(sniff.messages) == 300)
    seqs = [int(p[7:-1]) for _, p, _ in sniff.messages]
    assert seqs == list(range(1, 301))  # in seq order on the wire
    assert ob.backlog == 300  # no-plugin mode: kept for the retention window, nothing deleted by garbage
    assert sum("malformed ack" in r.message for r in caplog.records) <= 2  # once per kind of error
    sniff.close()


async def test_publisher_says_once_when_no_plugin_acknowledges(
    broker: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ob = Outbox(tmp_path / "o.db", "dev1")  # plugin mode, but no plugin is running
    for _ in range(5):
        ob.put(T.summary, lambda s, m: b"{}", kind="summary")
    with caplog.at_level(logging.INFO, logger="edge_agent"):
        async with MqttConnection(settings(broker.url)) as conn:
            pub = OutboxPublisher(conn, ob, T, poll_s=0.05, expire_every_s=0.1, no_ack_warn_s=0.5)
            task = asyncio.create_task(pub.run())
            assert await until(lambda: pub.stats["pubacks"] >= 5)
            await asyncio.sleep(1.2)
            warned = [r for r in caplog.records if "no acknowledgement from the footfall plugin" in r.message]
            assert len(warned) == 1 and warned[0].levelno == logging.WARNING
            ack = Ack(device_id="dev1", stream_id=ob.stream_id, acked_seq=5)
            await conn.publish(T.ack, ack.model_dump_json())
            assert await until(lambda: ob.backlog == 0)
            assert await until(lambda: "acknowledgements are arriving again" in caplog.text)  # said after the ack
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_publisher_survives_a_failing_outbox_step(
    broker: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transient SQLite error (e.g. I/O hiccup) is logged and retried; delivery goes on."""
    import sqlite3

    ob = Outbox(tmp_path / "o.db", "dev1", require_plugin_ack=False)
    real_pending = ob.pending
    failures = iter([sqlite3.OperationalError("disk I/O error")])

    def flaky_pending(limit: int, exclude: Any = ()) -> Any:
        for err in failures:
            raise err
        return real_pending(limit, exclude)

    monkeypatch.setattr(ob, "pending", flaky_pending)
    for _ in range(20):
        ob.put(T.summary, lambda s, m: b"{}", kind="summary")
    with caplog.at_level(logging.ERROR, logger="edge_agent"):
        async with MqttConnection(settings(broker.url)) as conn:
            pub = OutboxPublisher(conn, ob, T, poll_s=0.05)
            task = asyncio.create_task(pub.run())
            assert await pub.drain(10)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert "publisher step failed" in caplog.text and pub.stats["pubacks"] == 20


async def test_publisher_stops_when_cancelled_in_the_same_turn_as_a_wake_up(broker: Any, tmp_path: Path) -> None:
    """Regression (CI hang): a cancel landing in the loop turn in which a PUBACK/ack/put wakes the
    idle publisher was swallowed by Python 3.11's ``asyncio.wait_for``; ``run`` went on forever and
    the agent's shutdown hung. Setting the wake event and cancelling back to back reproduces that
    turn deterministically (the wake-up's callback is queued before the cancel's)."""
    ob = Outbox(tmp_path / "o.db", "dev1", require_plugin_ack=False)
    async with MqttConnection(settings(broker.url)) as conn:
        pub = OutboxPublisher(conn, ob, T, poll_s=30.0)
        for attempt in range(20):
            task = asyncio.create_task(pub.run())
            assert await conn.wait_connected(10)
            await asyncio.sleep(0.05)  # idle in _step, waiting for a wake-up
            pub._wake.set()
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=5)
            assert task in done, f"publisher ignored its cancel on attempt {attempt}"
            assert task.cancelled()
    ob.close()
