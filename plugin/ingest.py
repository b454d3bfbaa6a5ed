"""MQTT ingest: agent summaries → validated → stored once → acknowledged end to end (docs/design.md §6).

Threads and why:
- paho's network thread only enqueues ``(topic, payload, received_at)`` — it never parses or touches SQLite,
  so a slow disk cannot stall keep-alives. The queue is bounded: when full, paho's thread blocks and TCP
  back-pressure reaches the broker instead of memory growing without limit.
- One writer thread drains the queue in batches (up to ``batch_max`` messages or ``batch_wait`` s), validates
  each payload with the contract's ``parse_stored_message`` and stores the batch in ONE transaction (that is
  what makes ≥ 2,000 summaries/s possible on a Pi-class disk), then publishes the :class:`Ack` for every stream
  it touched — only after the commit, so an acknowledged message is always durable.

Acks are debounced: at most one per stream per ``ack_interval`` s, and always one after the last batch (the
agent deletes acknowledged outbox rows and re-sends the missing ranges). Duplicates are acknowledged too:
a re-send means the agent missed our previous Ack.

Bad payloads (oversized, not JSON, too deeply nested, unknown ``schema_version``, schema violations, NaN/inf,
numbers beyond 64-bit, a device id that differs from the topic, a summary on the run topic …) are counted per
reason and logged ONCE per reason per minute, without the payload; they never stop ingest and never touch what
is stored.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import TypeAdapter

from edge_agent.contract import (
    MAX_PAYLOAD_BYTES,
    SCHEMA_VERSION,
    Ack,
    LiveUpdate,
    PayloadError,
    RunSummary,
    StoredMessage,
    Topics,
    WindowSummary,
    parse_stored_message,
)
from plugin.config import MqttConfig
from plugin.store import Store

log = logging.getLogger(__name__)

StoredMsg = WindowSummary | RunSummary
#: Topic segment for the plugin's own status/state (not a valid device id, so never mistaken for one).
PLUGIN_NODE = "_dashboard"


_VERSION_RE = re.compile(rb'"schema_version"\s*:\s*' + str(SCHEMA_VERSION).encode() + rb"\s*[,}]")
_stored_adapter: TypeAdapter[WindowSummary | RunSummary] = TypeAdapter(StoredMessage)


def _fast_parse(payload: bytes) -> StoredMsg | None:
    """Hot path: the same models validated straight from JSON by pydantic-core (~1.6× faster than
    ``json.loads`` + ``validate_python``), accepted only when the payload is within the size limit and
    literally carries the supported ``schema_version``. Anything else returns None and goes through the
    contract's ``parse_stored_message``, which then names the rejection reason."""
    if len(payload) > MAX_PAYLOAD_BYTES or not _VERSION_RE.search(payload):
        return None
    try:
        msg = _stored_adapter.validate_json(payload)
    except ValueError:
        return None
    return msg if msg.schema_version == SCHEMA_VERSION else None


@dataclass
class IngestStats:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    live: int = 0
    status: int = 0
    acks_sent: int = 0
    batches: int = 0
    max_batch: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "stored": self.stored, "duplicates": self.duplicates, "rejected": self.rejected,
            "rejected_by_reason": dict(self.rejected_by_reason), "live": self.live, "status": self.status,
            "acks_sent": self.acks_sent, "batches": self.batches, "max_batch": self.max_batch,
        }  # fmt: skip


_UNSAFE_TOPIC_RE = re.compile(r"[^A-Za-z0-9_./+#:-]")
_INPUT_VALUE_RE = re.compile(r"input_value=.*?(?=, input_type=|\]$|$)", re.S)


class _ReasonLog:
    """One log line per rejection reason per ``every`` seconds, with how many were suppressed."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def __call__(self, reason: str, where: str, detail: str) -> None:
        now = time.monotonic()
        last = self._last.get(reason)
        if last is not None and now - last < self.every:
            self._suppressed[reason] += 1
            return
        more = self._suppressed.pop(reason, 0)
        self._last[reason] = now
        # pydantic quotes the offending input: keep the field and the error type, drop the value
        detail = _INPUT_VALUE_RE.sub("input_value=…", detail)[:300].encode("unicode_escape").decode()
        where = _UNSAFE_TOPIC_RE.sub("?", where[:100])  # topics are attacker-chosen too
        log.warning(
            "rejected payload on %s: %s (%s)%s", where, reason, detail,
            f"; {more} more with this reason since the last report" if more else "",
        )  # fmt: skip


class Ingest:
    """Subscribes to every agent under the base topic, stores summaries and acknowledges them."""

    def __init__(
        self,
        store: Store,
        mqtt_config: MqttConfig,
        *,
        on_stored: Callable[[list[StoredMsg]], None] | None = None,
        on_live: Callable[[LiveUpdate], None] | None = None,
        on_status: Callable[[str, str], None] | None = None,
        on_connect: Callable[[], None] | None = None,
        on_ha_online: Callable[[], None] | None = None,
        batch_max: int = 1000,
        batch_wait: float = 0.05,
        ack_interval: float = 0.5,
        queue_size: int = 50_000,
    ) -> None:
        self.store = store
        self.cfg = mqtt_config
        self.base = mqtt_config.base_topic.rstrip("/")
        self.on_stored = on_stored
        self.on_live = on_live
        self.on_status = on_status
        self.on_connect = on_connect
        self.on_ha_online = on_ha_online
        self.batch_max = batch_max
        self.batch_wait = batch_wait
        self.ack_interval = ack_interval
        self.stats = IngestStats()
        self._q: queue.Queue[tuple[str, bytes, float]] = queue.Queue(queue_size)
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._reason_log = _ReasonLog()
        self._ack_pending: dict[tuple[str, str], float] = {}
        self._ack_sent_at: dict[tuple[str, str], float] = {}
        self._connected = threading.Event()
        self._was_connected = False
        self._writer: threading.Thread | None = None
        self.status_topic = f"{self.base}/{PLUGIN_NODE}/status"
        self.client = self._make_client()

    # -- MQTT -------------------------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.cfg.client_id, clean_session=False, protocol=mqtt.MQTTv311
        )
        user, password = self.cfg.credentials()
        if user is not None:
            c.username_pw_set(user, password)
        if self.cfg.tls:
            c.tls_set(ca_certs=str(self.cfg.tls_ca) if self.cfg.tls_ca else None, cert_reqs=ssl.CERT_REQUIRED)
        c.will_set(self.status_topic, "offline", qos=1, retain=True)
        c.reconnect_delay_set(1, 30)
        c.max_queued_messages_set(10_000)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        return c

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if rc.is_failure:
            log.error("MQTT broker %s refused the connection: %s", self.cfg.redacted_url, rc)
            return
        subs = [
            (Topics.wildcard(self.base, "summary"), 1),
            (Topics.wildcard(self.base, "run"), 1),
            (Topics.wildcard(self.base, "status"), 1),
            (Topics.wildcard(self.base, "live"), 0),
        ]
        if self.cfg.ha_discovery:
            subs.append((f"{self.cfg.ha_prefix}/status", 1))
        client.subscribe(subs)
        client.publish(self.status_topic, "online", qos=1, retain=True)
        self._connected.set()
        if self._was_connected:
            log.warning("MQTT connection to %s is back", self.cfg.redacted_url)
        else:
            log.info("connected to MQTT broker %s", self.cfg.redacted_url)
        self._was_connected = True
        if self.on_connect:
            self.on_connect()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if self._connected.is_set() and not self._stop.is_set():
            log.warning("MQTT connection to %s lost (%s); reconnecting", self.cfg.redacted_url, rc)
        self._connected.clear()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._idle.clear()
        self._q.put((message.topic, bytes(message.payload), time.time()))

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> None:
        """Thread-safe publish (paho queues it while disconnected, up to its in-memory limit)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("MQTT publish to %s failed: %s", topic, mqtt.error_string(info.rc))

    def start(self, connect_timeout: float | None = 10.0) -> None:
        self._writer = threading.Thread(target=self._writer_loop, name="footfall-ingest-writer", daemon=True)
        self._writer.start()
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=30)
        self.client.loop_start()
        if connect_timeout and not self._connected.wait(connect_timeout):
            log.warning("MQTT broker %s not reachable yet; retrying in the background", self.cfg.redacted_url)

    def stop(self, drain_timeout: float = 5.0) -> None:
        """Store what is queued, send the final acks, disconnect.

        The subscriptions stay in the broker's persistent session (clean_session=False), so QoS 1 summaries
        published while the plugin is down are queued by the broker; anything that arrives between the drain
        and the disconnect is not acknowledged and therefore re-sent by the agent's outbox.
        """
        self.wait_idle(drain_timeout)
        self._stop.set()
        if self._writer:
            self._writer.join(drain_timeout + 5)
        with contextlib.suppress(Exception):
            self.client.publish(self.status_topic, "offline", qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once the queue is empty and every pending ack was sent (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._q.empty() and self._idle.wait(0.05) and self._q.empty() and not self._ack_pending:
                return True
        return False

    # -- writer -----------------------------------------------------------------------------------------------
    def _writer_loop(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._q.get(timeout=0.1)
            except queue.Empty:
                self._flush_acks()
                if not self._ack_pending:
                    self._idle.set()
                continue
            batch = [first]
            deadline = time.monotonic() + self.batch_wait
            while len(batch) < self.batch_max:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(self._q.get(timeout=remaining) if remaining > 0 else self._q.get_nowait())
                except queue.Empty:
                    break
            try:
                self._process(batch)
            except Exception:  # never let one bad batch kill ingest; the agent will re-send (no ack)
                log.exception("ingest batch of %d messages failed; they will be re-sent by the agents", len(batch))
            self._flush_acks()

    def _reject(self, reason: str, topic: str, detail: str) -> None:
        self.stats.rejected += 1
        self.stats.rejected_by_reason[reason] += 1
        self._reason_log(reason, topic, detail)

    def _process(self, batch: list[tuple[str, bytes, float]]) -> None:
        accepted: list[tuple[StoredMsg, float, str | None]] = []
        for topic, payload, received_at in batch:
            if self.cfg.ha_discovery and topic == f"{self.cfg.ha_prefix}/status":
                if payload.strip() == b"online" and self.on_ha_online:
                    self.on_ha_online()
                continue
            parts = Topics.split(topic, self.base)
            if parts is None:
                if topic.endswith(("/summary", "/run")):  # e.g. footfall/<script>/summary
                    self._reject("bad_topic", topic[:100], "topic does not name a valid device id")
                continue  # our own footfall/_dashboard/status, or nothing of ours
            device_id, leaf = parts
            if leaf in ("summary", "run"):
                msg = self._parse_stored(topic, device_id, leaf, payload)
                if msg is not None:  # keep the validated text: stored as received, not re-serialised
                    try:
                        text: str | None = payload.decode("utf-8")
                    except UnicodeDecodeError:  # valid UTF-16/32 JSON: store the re-serialised model
                        text = None
                    accepted.append((msg, received_at, text))
            elif leaf == "live":
                self._handle_live(topic, device_id, payload)
            elif leaf == "status":
                self._handle_status(device_id, payload, received_at)
        if accepted:
            self._store(accepted)

    def _parse_stored(self, topic: str, device_id: str, leaf: str, payload: bytes) -> StoredMsg | None:
        msg = _fast_parse(payload)
        if msg is None:
            msg = self._parse_slow(topic, payload)
            if msg is None:
                return None
        expected = "summary" if leaf == "summary" else "run"
        if msg.kind != expected:
            self._reject("wrong_topic", topic, f"kind {msg.kind!r} published on {leaf!r}")
            return None
        if msg.device_id != device_id:
            self._reject("device_mismatch", topic, f"payload device_id differs from the topic's {device_id!r}")
            return None
        return msg

    def _parse_slow(self, topic: str, payload: bytes) -> StoredMsg | None:
        """The contract's own parser: the reference for every rejection reason."""
        try:
            return parse_stored_message(payload)
        except PayloadError as err:
            self._reject(err.reason, topic, err.detail)
            return None
        except RecursionError:
            self._reject("too_deep", topic, "JSON nested too deeply")
            return None
        except (ValueError, TypeError) as err:  # e.g. an integer literal with > 4300 digits
            self._reject("invalid", topic, f"{type(err).__name__}: {err}"[:200])
            return None

    def _store(self, accepted: list[tuple[StoredMsg, float, str | None]]) -> None:
        results = self.store.store_batch(accepted)
        new: list[StoredMsg] = []
        now = time.monotonic()
        for (msg, _, _), res in zip(accepted, results, strict=True):
            key = (msg.device_id, msg.stream_id)
            self._ack_pending.setdefault(key, now)
            if res is True:
                new.append(msg)
            elif res is False:
                self.stats.duplicates += 1
            else:  # SQLite integers are 64-bit: a bigger count/seq is refused by the store, alone
                reason = "out_of_range" if "OverflowError" in res else "unstorable"
                self._reject(reason, f"{self.base}/{msg.device_id}/{msg.kind}", res)
        self.stats.stored += len(new)
        self.stats.batches += 1
        self.stats.max_batch = max(self.stats.max_batch, len(accepted))
        if new and self.on_stored:
            try:
                self.on_stored(new)
            except Exception:
                log.exception("post-store processing (risk, notifications) failed; the data is stored")

    def _handle_live(self, topic: str, device_id: str, payload: bytes) -> None:
        if len(payload) > MAX_PAYLOAD_BYTES:
            self._reject("live_oversized", topic, f"{len(payload)} bytes")
            return
        try:
            live = LiveUpdate.model_validate_json(payload)
        except ValueError as err:
            self._reject("live_invalid", topic, str(err)[:200])
            return
        if live.device_id != device_id:
            self._reject("device_mismatch", topic, f"payload device_id {live.device_id!r} ≠ topic {device_id!r}")
            return
        self.stats.live += 1
        if self.on_live:
            self.on_live(live)

    def _handle_status(self, device_id: str, payload: bytes, at: float) -> None:
        status = payload.decode("utf-8", "replace").strip()[:32]
        if status not in ("online", "offline"):
            self._reject("bad_status", f"{self.base}/{device_id}/status", f"{len(payload)} bytes, not online/offline")
            return
        self.stats.status += 1
        self.store.set_device_status(device_id, status, at)
        if self.on_status:
            self.on_status(device_id, status)

    def ack_for(self, device_id: str, stream_id: str) -> Ack:
        contiguous, missing = self.store.stream_state(device_id, stream_id)
        highest = max([contiguous] + [hi for _, hi in missing])
        streams = self.store.streams(device_id)
        for s in streams:
            if s["stream_id"] == stream_id:
                highest = max(highest, int(s["max_seq"]))
        return Ack(device_id=device_id, stream_id=stream_id, acked_seq=contiguous, missing=missing, highest_seq=highest)

    def _flush_acks(self, force: bool = False) -> None:
        if not self._ack_pending:
            return
        now = time.monotonic()
        for key in list(self._ack_pending):
            last = self._ack_sent_at.get(key)
            if not force and last is not None and now - last < self.ack_interval:
                continue
            device_id, stream_id = key
            try:
                ack = self.ack_for(device_id, stream_id)
                self.publish(Topics(device_id, self.base).ack, ack.model_dump_json(), qos=1)
            except Exception:
                log.exception("could not send the ack for %s/%s", device_id, stream_id)
                continue
            self.stats.acks_sent += 1
            self._ack_sent_at[key] = now
            del self._ack_pending[key]

    def health(self) -> dict[str, Any]:
        return {
            "ingest": {**self.stats.as_dict(), "queue": self._q.qsize()},
            "broker": {"connected": self.connected, "url": self.cfg.redacted_url},
        }
