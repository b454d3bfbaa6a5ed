"""MQTT ingest: agent summaries → validated → stored once → acknowledged end to end (docs/design.md §6).

The broker connection is the one both sides share, :class:`edge_agent.common.mqtt.MqttConnection` (same URL,
credentials and TLS handling as the agent), here in MQTT 5 with a persistent session, on its own small event loop
thread so that ingest needs nothing from the web app's loop. With ``mqtt.share_group`` set, summaries and runs
arrive through a shared subscription (``$share/<group>/…``): several dashboard workers on one PostgreSQL database
each get a share, and the database keeps them exactly-once (docs/club.md).

Threads and why:
- paho's network thread only enqueues ``(topic, payload, received_at)`` — it never parses or touches the database,
  so a slow disk cannot stall keep-alives. The queue is bounded in bytes: when full, paho's thread blocks and TCP
  back-pressure reaches the broker instead of memory growing without limit. Each device has its own share of
  the queue (:data:`DEVICE_QUEUE_BYTES`): a device flooding beyond it has its excess dropped unacknowledged (its
  agent keeps and re-sends it), and batches take messages from the devices in turn, so a genuine summary from
  another device never waits behind a flood. The broker drops packets above the maximum packet size we announce.
- One writer thread drains the queue in batches (up to ``batch_max`` messages or ``batch_wait`` s), validates
  each payload with the contract's ``parse_stored_message`` and stores the batch in ONE transaction (that is
  what makes thousands of summaries/s possible), then publishes the :class:`Ack` for every stream it touched —
  only after the commit, so an acknowledged message is always durable.

Acks are read from the database (highest contiguous seq, gaps, highest seq: one stream row and one bounded index
range), so they are right whichever worker stored which seq. They are debounced: at most one per stream per
``ack_interval`` s, and always one after the last batch. Duplicates are acknowledged too: a re-send means the
agent missed our previous Ack.

Bad payloads (oversized, not JSON, too deeply nested, unknown ``schema_version``, schema violations, NaN/inf,
numbers beyond 64-bit, a device id that differs from the topic, a summary on the run topic, a window ending
before it starts, caps …) are counted per reason and logged ONCE per reason per minute, without the payload;
they never stop ingest and never touch what is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from edge_agent.common.mqtt import MqttConnection, MqttError, MqttMessage
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
#: The ingest queue holds at most this many payload bytes (then paho's thread waits: TCP back-pressure) …
QUEUE_BYTES = 64 * 1024 * 1024
#: … of which one device may hold at most this many (its excess is dropped unacknowledged and re-sent later).
DEVICE_QUEUE_BYTES = 8 * 1024 * 1024
#: The largest MQTT packet the dashboard accepts: a payload at the contract's limit plus topic and headers.
MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 4096
#: Publishes other than acks made while the broker is away wait for the next connection (at most this many).
MAX_PENDING_PUBLISHES = 1000
_ITEM_OVERHEAD = 200  # bytes counted per queued message beyond its payload


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
    dropped_flood: int = 0
    live: int = 0
    status: int = 0
    acks_sent: int = 0
    batches: int = 0
    max_batch: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "stored": self.stored, "duplicates": self.duplicates, "rejected": self.rejected,
            "rejected_by_reason": dict(self.rejected_by_reason), "dropped_flood": self.dropped_flood,
            "live": self.live, "status": self.status, "acks_sent": self.acks_sent, "batches": self.batches,
            "max_batch": self.max_batch,
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


Item = tuple[str, bytes, float]


class FairQueue:
    """A queue bounded in bytes, with one FIFO per device; :meth:`take` serves the devices in turn.

    ``put`` blocks while the whole queue is full (back-pressure), but refuses (returns False) a message whose
    device already holds ``device_bytes``: one flooding device can never fill the queue for the others.
    """

    def __init__(self, max_bytes: int = QUEUE_BYTES, device_bytes: int = DEVICE_QUEUE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.device_bytes = device_bytes
        self._queues: OrderedDict[str, deque[Item]] = OrderedDict()
        self._bytes: Counter[str] = Counter()
        self.total_bytes = 0
        self.count = 0
        self._cond = threading.Condition()

    def put(self, key: str, item: Item, timeout: float | None = None) -> bool:
        size = len(item[1]) + _ITEM_OVERHEAD
        with self._cond:
            if self._bytes[key] + size > self.device_bytes and self._bytes[key] > 0:
                return False
            deadline = None if timeout is None else time.monotonic() + timeout
            while self.total_bytes + size > self.max_bytes and self.count > 0:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            self._queues.setdefault(key, deque()).append(item)
            self._bytes[key] += size
            self.total_bytes += size
            self.count += 1
            self._cond.notify_all()
        return True

    def take(self, max_items: int, wait_first: float, wait_fill: float) -> list[Item]:
        """Up to ``max_items``, one device after the other; waits ``wait_first`` for the first item and then up
        to ``wait_fill`` for the batch to fill."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.count > 0, wait_first):
                return []
            deadline = time.monotonic() + wait_fill
            while self.count < max_items:
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    break
            out: list[Item] = []
            while self._queues and len(out) < max_items:
                for key in list(self._queues):
                    q = self._queues[key]
                    item = q.popleft()
                    out.append(item)
                    size = len(item[1]) + _ITEM_OVERHEAD
                    self._bytes[key] -= size
                    self.total_bytes -= size
                    self.count -= 1
                    if not q:
                        del self._queues[key]
                        del self._bytes[key]
                    else:
                        self._queues.move_to_end(key)  # served: to the back of the line
                    if len(out) >= max_items:
                        break
            self._cond.notify_all()
            return out

    def empty(self) -> bool:
        return self.count == 0


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
        queue_bytes: int = QUEUE_BYTES,
        device_queue_bytes: int = DEVICE_QUEUE_BYTES,
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
        self._q = FairQueue(queue_bytes, device_queue_bytes)
        self._stop = threading.Event()
        self._busy = threading.Event()
        self._reason_log = _ReasonLog()
        self._flood_log = _ReasonLog()
        self._ack_pending: dict[tuple[str, str], float] = {}
        self._ack_sent_at: dict[tuple[str, str], float] = {}
        self._pending_publishes: deque[tuple[str, bytes | str, int, bool]] = deque(maxlen=MAX_PENDING_PUBLISHES)
        self._was_connected = False
        self._writer: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self.status_topic = f"{self.base}/{PLUGIN_NODE}/status"
        v5 = mqtt_config.protocol == "5"
        self.settings = mqtt_config.connection_settings(
            mqtt_config.client_id, protocol=5 if v5 else 4, clean_start=False,
            session_expiry_s=mqtt_config.session_expiry_s, max_packet_size=MAX_PACKET_BYTES if v5 else None,
            backoff_min_s=0.2, backoff_max_s=30.0, max_inflight=1000,
        )  # fmt: skip
        self.conn = MqttConnection(self.settings, will=(self.status_topic, b"offline", True))

    # -- subscriptions -------------------------------------------------------------------------------------------
    def subscriptions(self) -> list[tuple[str, int]]:
        """Summaries and runs (shared among the workers of ``share_group``); status, live and Home Assistant's
        birth message on every worker (each serves its own browsers)."""
        share = f"$share/{self.cfg.share_group}/" if self.cfg.share_group else ""
        subs = [
            (share + Topics.wildcard(self.base, "summary"), 1),
            (share + Topics.wildcard(self.base, "run"), 1),
            (Topics.wildcard(self.base, "status"), 1),
            (Topics.wildcard(self.base, "live"), 0),
        ]
        if self.cfg.ha_discovery:
            subs.append((f"{self.cfg.ha_prefix}/status", 1))
        return subs

    def _enqueue(self, msg: MqttMessage) -> None:
        """paho's network thread: queue the message under its device (never parse, never touch the store)."""
        self._busy.set()
        parts = msg.topic.split("/")
        key = parts[-2] if len(parts) >= 2 else "?"
        if len(msg.payload) > MAX_PACKET_BYTES:  # a broker ignoring our maximum packet size: not even queued
            self._reject("oversized", msg.topic, f"{len(msg.payload)} bytes")
            return
        if not self._q.put(key, (msg.topic, msg.payload, time.time())):
            self.stats.dropped_flood += 1
            self._flood_log(
                "flood", msg.topic, f"device {key!r} has {self._q.device_bytes // 1024} KiB queued; dropped, not acked"
            )

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def _run_loop(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _call(self, coro: Any, timeout: float | None = 30.0) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self, connect_timeout: float | None = 10.0) -> None:
        ready = threading.Event()
        self._loop_thread = threading.Thread(target=self._run_loop, args=(ready,), name="footfall-mqtt", daemon=True)
        self._loop_thread.start()
        ready.wait()
        self._writer = threading.Thread(target=self._writer_loop, name="footfall-ingest-writer", daemon=True)
        self._writer.start()

        async def connect() -> bool:
            for topic, qos in self.subscriptions():
                self.conn.subscribe(topic, self._enqueue, qos, in_network_thread=True)
            self.conn.add_connect_listener(self._connected_cb)
            await self.conn.__aenter__()
            return await self.conn.wait_connected(connect_timeout) if connect_timeout else False

        if not self._call(connect(), None) and connect_timeout:
            log.warning("MQTT broker %s not reachable yet; retrying in the background", self.cfg.redacted_url)

    def _connected_cb(self) -> None:
        if self._was_connected:
            log.warning("MQTT connection to %s is back", self.cfg.redacted_url)
        else:
            log.info("connected to MQTT broker %s as %s", self.cfg.redacted_url, self.cfg.client_id)
        self._was_connected = True
        while self._pending_publishes:
            self._publish_now(*self._pending_publishes.popleft())
        if self.on_connect:
            self.on_connect()

    def stop(self, drain_timeout: float = 5.0) -> None:
        """Store what is queued, send the final acks, disconnect (publishing the retained ``offline``).

        The subscriptions stay in the broker's persistent session, so QoS 1 summaries published while the plugin
        is down are queued by the broker; anything that arrives between the drain and the disconnect is not
        acknowledged and therefore re-sent by the agent's outbox.
        """
        self.wait_idle(drain_timeout)
        self._stop.set()
        if self._writer:
            self._writer.join(drain_timeout + 5)
        if self._loop is not None and self._loop.is_running():
            with contextlib.suppress(Exception):
                self._call(self.conn.close(), 10.0)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._loop_thread:
            self._loop_thread.join(10)

    @property
    def connected(self) -> bool:
        return self.conn.connected.is_set()

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> None:
        """Thread-safe publish. While the broker is away, up to :data:`MAX_PENDING_PUBLISHES` (alerts, Home
        Assistant state) wait for the next connection; acks are not kept (the agent re-sends, we ack again)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._pending_publishes.append((topic, payload, qos, retain))
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._publish_now, topic, payload, qos, retain)

    def _publish_now(self, topic: str, payload: bytes | str, qos: int, retain: bool) -> None:
        try:
            fut = self.conn.publish_nowait(topic, payload, qos=qos, retain=retain)
        except MqttError:
            if not topic.endswith("/ack"):
                self._pending_publishes.append((topic, payload, qos, retain))
            return
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # lost acks are re-sent, never raised

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once the queue is empty, the writer idle and every pending ack sent (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._q.empty() and not self._busy.is_set() and not self._ack_pending:
                return True
            time.sleep(0.02)
        return False

    # -- writer -----------------------------------------------------------------------------------------------
    def _writer_loop(self) -> None:
        while not self._stop.is_set():
            batch = self._q.take(self.batch_max, 0.1, self.batch_wait)
            if not batch:
                self._flush_acks()
                if not self._ack_pending and self._q.empty():
                    self._busy.clear()
                continue
            self._busy.set()
            try:
                self._process(batch)
            except Exception:  # never let one bad batch kill ingest; the agent will re-send (no ack)
                log.exception("ingest batch of %d messages failed; they will be re-sent by the agents", len(batch))
            self._flush_acks()

    def _reject(self, reason: str, topic: str, detail: str) -> None:
        self.stats.rejected += 1
        self.stats.rejected_by_reason[reason] += 1
        self._reason_log(reason, topic, detail)

    def _process(self, batch: list[Item]) -> None:
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
            if res is True:
                new.append(msg)
            elif res is False:
                self.stats.duplicates += 1
            else:  # refused by the store (a cap, another device's run, a value the database cannot hold)
                reason, _, detail = res.partition(": ")
                self._reject(reason, f"{self.base}/{msg.device_id}/{msg.kind}", detail)
            # the ack says what the database holds: never a message it refused (the agent keeps that one)
            self._ack_pending.setdefault((msg.device_id, msg.stream_id), now)
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
        """The stream's ack, from the database (whichever worker stored which seq)."""
        contiguous, missing, highest = self.store.ack_state(device_id, stream_id)
        return Ack(device_id=device_id, stream_id=stream_id, acked_seq=contiguous, missing=missing, highest_seq=highest)

    def _flush_acks(self, force: bool = False) -> None:
        if not self._ack_pending:
            return
        now = time.monotonic()
        due = [
            key
            for key in self._ack_pending
            if force or (last := self._ack_sent_at.get(key)) is None or now - last >= self.ack_interval
        ]
        if not due:
            return
        try:
            states = self.store.ack_states(due)  # one query for all of them (their streams rows)
        except Exception:
            log.exception("could not read the ack state of %d stream(s)", len(due))
            return
        for key in due:
            device_id, stream_id = key
            contiguous, missing, highest = states[key]
            ack = Ack(device_id=device_id, stream_id=stream_id, acked_seq=contiguous, missing=missing,
                      highest_seq=highest)  # fmt: skip
            self.publish(Topics(device_id, self.base).ack, ack.model_dump_json(), qos=1)
            self.stats.acks_sent += 1
            if len(self._ack_sent_at) > 100_000:
                self._ack_sent_at.clear()
            self._ack_sent_at[key] = now
            del self._ack_pending[key]

    def health(self) -> dict[str, Any]:
        return {
            "ingest": {**self.stats.as_dict(), "queue": self._q.count, "queue_bytes": self._q.total_bytes},
            "broker": {"connected": self.connected, "url": self.cfg.redacted_url,
                       "shared_group": self.cfg.share_group, "client_id": self.cfg.client_id},
        }  # fmt: skip
