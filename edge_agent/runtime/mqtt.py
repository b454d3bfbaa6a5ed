"""The agent's MQTT side: one connection object owning the lifecycle, and the outbox publisher.

Design (aiomqtt-style surface, paho-mqtt 2.x underneath, ``CallbackAPIVersion.VERSION2``):

* **Threading.** paho's network loop runs in its own thread (``loop_start``); every paho callback
  hands over to asyncio with ``loop.call_soon_threadsafe`` and touches no shared state itself.
  We chose this over wiring paho's socket callbacks into asyncio because ``connect()`` (DNS, TCP,
  TLS handshake) blocks anyway and paho's threaded loop is its best-tested path; the handoff points
  are few (CONNACK, PUBACK, message, connection lost).
* **One paho client per connection.** Each (re)connect builds a fresh client with
  ``reconnect_on_failure=False``: paho's own reconnect has no jitter and would replay its stale
  in-memory queue. We own reconnection (jittered exponential back-off, "log once when lost, once
  when back") and the *outbox* owns re-sending, so paho's queue never acts as a buffer
  (DESIGN.md §6).
* **Availability.** Retained ``online`` on the status topic after each connect, retained last will
  ``offline``; a clean exit publishes ``offline`` itself (a clean DISCONNECT suppresses the will).
* **Secrets.** Username/password come from the URL or settings and never appear in reprs or logs
  (:meth:`BrokerSettings.redacted_url`).

:class:`OutboxPublisher` drains the :class:`~edge_agent.runtime.outbox.Outbox` in seq order with a bounded
window of un-PUBACKed messages, re-sends after reconnects, and applies the plugin's ``Ack``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from pydantic import ValidationError

from edge_agent.contract import Ack, Topics
from edge_agent.runtime.outbox import Outbox

log = logging.getLogger(__name__)


class MqttError(RuntimeError):
    """Base class of this module's MQTT errors."""


class MqttNotConnected(MqttError):
    """Publishing while there is no broker connection."""


class MqttConnectionLost(MqttError):
    """The connection dropped before the broker acknowledged a publish."""


class MqttConnectRefused(MqttError):
    """The broker refused the CONNECT (bad credentials, not authorised, …)."""


# --------------------------------------------------------------------------- settings
@dataclass(repr=False)
class BrokerSettings:
    """Where and how to connect. ``url`` is ``mqtt[s]://[user[:pass]@]host[:port]``.

    Explicit ``username``/``password`` win over the URL's. ``password`` may be a pydantic
    ``SecretStr`` (anything with ``get_secret_value``).
    """

    url: str
    client_id: str
    keepalive: int = 30
    username: str | None = None
    password: Any = None
    tls_ca: Path | None = None
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    tls_insecure: bool = False
    connect_timeout_s: float = 10.0
    backoff_min_s: float = 0.5
    backoff_max_s: float = 60.0
    #: paho's in-flight window; the publisher's own window must not exceed it.
    max_inflight: int = 100
    _parsed: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"broker url {self.redacted_url()!r}: scheme must be mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError(f"broker url {self.redacted_url()!r}: no host")
        tls = parts.scheme in ("mqtts", "ssl")
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise ValueError(f"broker url {self.redacted_url()!r}: bad port") from None
        if self.keepalive < 5:
            raise ValueError(f"broker keepalive {self.keepalive} s is too short (min 5)")
        self._parsed = (
            parts.hostname,
            port,
            tls,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )

    @property
    def host(self) -> str:
        return str(self._parsed[0])

    @property
    def port(self) -> int:
        return int(self._parsed[1])

    @property
    def tls(self) -> bool:
        return bool(self._parsed[2]) or self.tls_ca is not None

    def credentials(self) -> tuple[str | None, str | None]:
        user = self.username or self._parsed[3]
        pw = self.password if self.password is not None else self._parsed[4]
        if pw is not None and hasattr(pw, "get_secret_value"):
            pw = pw.get_secret_value()
        return user, pw

    def redacted_url(self) -> str:
        """The URL with any password replaced by ``***`` (safe for logs)."""
        parts = urlsplit(self.url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, hostport = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
        return f"{parts.scheme}://{netloc}"

    def __repr__(self) -> str:
        return (
            f"BrokerSettings(url={self.redacted_url()!r}, client_id={self.client_id!r}, "
            f"tls={self.tls}, password={'***' if self.credentials()[1] else None})"
        )


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    qos: int


MessageCallback = Callable[[Message], Awaitable[None] | None]
ConnectListener = Callable[[], Awaitable[None] | None]


# --------------------------------------------------------------------------- connection
class MqttConnection:
    """``async with MqttConnection(settings, will=(topic, b"offline", True)) as conn: ...``

    Entering starts the connection supervisor and returns at once (the agent must run without a
    broker); use ``await conn.connected.wait()`` to wait for a broker. ``state`` is one of
    ``"connecting"``, ``"connected"``, ``"disconnected"``, ``"closed"``.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        will: tuple[str, bytes | str, bool] | None = None,
        *,
        birth_payload: bytes | str = b"online",
    ) -> None:
        self.settings = settings
        self.will = will
        self.birth_payload = birth_payload.encode() if isinstance(birth_payload, str) else birth_payload
        self.connected = asyncio.Event()
        self.state = "disconnected"
        self.stats = {"connects": 0, "connection_losses": 0, "failed_attempts": 0, "published": 0, "received": 0}
        self._subs: list[tuple[str, int, MessageCallback]] = []
        self._listeners: list[ConnectListener] = []
        self._client: paho.Client | None = None
        self._inflight: dict[int, asyncio.Future[None]] = {}
        self._lost = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bg: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"MqttConnection({self.settings.redacted_url()}, state={self.state})"

    # -------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> MqttConnection:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._supervise(), name=f"mqtt-supervisor-{self.settings.client_id}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, timeout: float = 3.0) -> None:
        """Publish ``offline`` (retained) if connected, disconnect cleanly, stop the supervisor."""
        if self._closing:
            return
        self._closing = True
        if self._client is not None and self.connected.is_set() and self.will:
            with contextlib.suppress(MqttError, asyncio.TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.publish(self.will[0], self.will[1], qos=1, retain=True)
        if self._task:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=2 * timeout)  # never swallows our own cancel
        client, self._client = self._client, None  # read after the supervisor stopped
        if client is not None:
            await _stop_client(client)
        self._fail_inflight(MqttConnectionLost("connection closed"))
        for t in list(self._bg):
            t.cancel()
        self.connected.clear()
        self.state = "closed"

    async def wait_connected(self, timeout: float | None = None) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self.connected.wait()
            return True
        except TimeoutError:
            return False

    def _backoff(self, attempt: int) -> float:
        """Exponential back-off with "equal jitter": half fixed, half random (avoids herds)."""
        s = self.settings
        base = min(s.backoff_max_s, s.backoff_min_s * 2 ** max(0, attempt - 1))
        return base / 2 + random.uniform(0, base / 2)

    async def _supervise(self) -> None:
        attempt = 0
        outage_since: float | None = None
        ever_connected = False
        url = self.settings.redacted_url()
        while not self._closing:
            self.state = "connecting"
            try:
                await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # connection refused, DNS, TLS, CONNACK failure, timeout
                attempt += 1
                self.stats["failed_attempts"] += 1
                self.state = "disconnected"
                if outage_since is None:
                    outage_since = time.monotonic()
                    what = "refused the connection" if isinstance(err, MqttConnectRefused) else "unreachable"
                    log.warning("MQTT broker %s %s (%s); retrying with back-off", url, what, _short(err))
                else:
                    log.debug("MQTT connect attempt %d to %s failed: %s", attempt, url, _short(err))
                await asyncio.sleep(self._backoff(attempt))
                continue
            self.stats["connects"] += 1
            if outage_since is not None and ever_connected:
                log.info(
                    "MQTT connection to %s is back after %.1f s (%d attempts)",
                    url,
                    time.monotonic() - outage_since,
                    attempt + 1,
                )
            else:
                log.info("MQTT connected to %s as %s", url, self.settings.client_id)
            ever_connected = True
            attempt, outage_since = 0, None
            await self._lost.wait()
            # connection lost
            self.stats["connection_losses"] += 1
            self.connected.clear()
            self.state = "disconnected"
            client, self._client = self._client, None
            self._fail_inflight(MqttConnectionLost("connection lost before PUBACK"))
            if client is not None:
                await _stop_client(client)
            if not self._closing:
                outage_since = time.monotonic()
                log.warning("MQTT connection to %s lost; reconnecting with back-off", url)
                attempt = 0
                await asyncio.sleep(self._backoff(1))

    async def _connect_once(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=True,
            protocol=paho.MQTTv311,
            reconnect_on_failure=False,
        )
        user, pw = s.credentials()
        if user is not None:
            client.username_pw_set(user, pw)
        if s.tls:
            client.tls_set(
                ca_certs=str(s.tls_ca) if s.tls_ca else None,
                certfile=str(s.tls_certfile) if s.tls_certfile else None,
                keyfile=str(s.tls_keyfile) if s.tls_keyfile else None,
                cert_reqs=ssl.CERT_NONE if s.tls_insecure else ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(s.tls_insecure)
        if self.will:
            client.will_set(self.will[0], self.will[1], qos=1, retain=self.will[2])
        client.max_inflight_messages_set(s.max_inflight)
        client.max_queued_messages_set(0)
        client.connect_timeout = s.connect_timeout_s
        connack: asyncio.Future[Any] = loop.create_future()
        self._lost = asyncio.Event()
        lost = self._lost

        def on_connect(_c: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            def connack_cb() -> None:
                if not connack.done():
                    connack.set_result(rc)

            _post(loop, connack_cb)

        def on_disconnect(_c: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            def lost_cb() -> None:
                if not connack.done():
                    connack.set_exception(MqttConnectionLost(f"disconnected before CONNACK ({rc})"))
                lost.set()

            _post(loop, lost_cb)

        def on_publish(_c: paho.Client, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
            _post(loop, self._on_puback, client, mid)

        def on_message(_c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
            m = Message(msg.topic, bytes(msg.payload), bool(msg.retain), int(msg.qos))
            _post(loop, self._dispatch, m)

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish
        client.on_message = on_message
        try:
            async with asyncio.timeout(s.connect_timeout_s + 1):
                await asyncio.to_thread(client.connect, s.host, s.port, s.keepalive)
            client.loop_start()
            async with asyncio.timeout(s.connect_timeout_s):
                rc = await connack
        except BaseException:
            await _stop_client(client)
            raise
        if rc.is_failure:
            await _stop_client(client)
            raise MqttConnectRefused(f"broker refused connection: {rc}")
        self._client = client
        self._inflight = {}
        for topic, qos, _ in self._subs:
            client.subscribe(topic, qos)
        if self.will:
            client.publish(self.will[0], self.birth_payload, qos=1, retain=True)
        self.state = "connected"
        self.connected.set()
        for cb in list(self._listeners):
            self._run_callback(cb)

    # -------------------------------------------------------------- callbacks (loop thread)
    def _on_puback(self, client: paho.Client, mid: int) -> None:
        if client is not self._client:
            return
        fut = self._inflight.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _fail_inflight(self, err: Exception) -> None:
        inflight, self._inflight = self._inflight, {}
        for fut in inflight.values():
            if not fut.done():
                fut.set_exception(err)
                fut.exception()  # mark retrieved: nobody may be awaiting a fire-and-forget publish

    def _dispatch(self, msg: Message) -> None:
        self.stats["received"] += 1
        for pattern, _, cb in list(self._subs):
            if paho.topic_matches_sub(pattern, msg.topic):
                self._run_callback(cb, msg)

    def _run_callback(self, cb: Callable[..., Any], *args: Any) -> None:
        try:
            res = cb(*args)
        except Exception:
            log.exception("MQTT callback %r failed", cb)
            return
        if inspect.isawaitable(res):
            task = asyncio.ensure_future(res)
            self._bg.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._bg.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("MQTT callback task failed: %r", task.exception())

    # -------------------------------------------------------------- public API
    def publish_nowait(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]:
        """Hand one message to the broker connection; the future resolves at PUBACK (qos ≥ 1)
        or once written (qos 0), and fails with :class:`MqttConnectionLost` if the link drops."""
        client = self._client
        if client is None or not self.connected.is_set():
            raise MqttNotConnected(f"not connected to {self.settings.redacted_url()}")
        loop = asyncio.get_running_loop()
        info = client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttNotConnected(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        self.stats["published"] += 1
        fut: asyncio.Future[None] = loop.create_future()
        if qos == 0:
            fut.set_result(None)
        else:
            self._inflight[info.mid] = fut
        return fut

    async def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        """Publish and, for qos ≥ 1, wait for the broker's PUBACK."""
        await self.publish_nowait(topic, payload, qos, retain)

    def subscribe(self, topic: str, callback: MessageCallback, qos: int = 1) -> Callable[[], None]:
        """Call ``callback(Message)`` (sync or async) for matching messages, across reconnects.
        Returns a function that removes the subscription."""
        entry = (topic, qos, callback)
        self._subs.append(entry)
        if self._client is not None and self.connected.is_set():
            self._client.subscribe(topic, qos)

        def unsubscribe() -> None:
            if entry in self._subs:
                self._subs.remove(entry)
            if self._client is not None and not any(t == topic for t, _, _ in self._subs):
                self._client.unsubscribe(topic)

        return unsubscribe

    def add_connect_listener(self, callback: ConnectListener) -> None:
        """``callback()`` (sync or async) runs after every successful (re)connect."""
        self._listeners.append(callback)
        if self.connected.is_set():
            self._run_callback(callback)

    @property
    def inflight(self) -> int:
        return len(self._inflight)


def _post(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    """Hand a paho callback to the event loop; after the loop closed there is nobody to tell."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, *args)


async def _stop_client(client: paho.Client, timeout: float = 5.0) -> None:
    """Disconnect and join paho's network thread (bounded: a stuck join must not hang shutdown)."""
    client.disconnect()
    try:
        async with asyncio.timeout(timeout):
            await asyncio.shield(asyncio.to_thread(client.loop_stop))
    except TimeoutError:
        log.warning("paho network thread did not stop within %.0f s", timeout)


def _short(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:200]


# --------------------------------------------------------------------------- publisher
class OutboxPublisher:
    """Drains an :class:`Outbox` over a :class:`MqttConnection`, end to end (DESIGN.md §6).

    * Rows go out in seq order, at most ``window`` without a PUBACK (paho's queue is not a buffer:
      rows stay in SQLite until the plugin acknowledges them).
    * After every reconnect all unacknowledged rows are due again (the broker may have lost what
      it PUBACKed); the plugin dedupes by ``msg_id``.
    * Plugin ``Ack`` messages on ``topics.ack`` delete rows and schedule missing ranges.
    * Every ``expire_every_s`` the outbox's age bound / retention is applied.
    """

    def __init__(
        self,
        conn: MqttConnection,
        outbox: Outbox,
        topics: Topics,
        *,
        window: int = 100,
        poll_s: float = 0.5,
        puback_flush_s: float = 0.2,
        expire_every_s: float = 60.0,
        no_ack_warn_s: float = 600.0,
    ) -> None:
        self.conn = conn
        self.outbox = outbox
        self.topics = topics
        self.window = max(1, min(window, conn.settings.max_inflight))
        self.poll_s = poll_s
        self.puback_flush_s = puback_flush_s
        self.expire_every_s = expire_every_s
        self.no_ack_warn_s = no_ack_warn_s
        self._waiting_since: float | None = None  # first PUBACK not followed by any plugin ack
        self._no_ack_warned = False
        self.stats = {
            "published": 0,
            "pubacks": 0,
            "acks": 0,
            "acked_rows": 0,
            "bad_acks": 0,
            "send_errors": 0,
            "max_inflight": 0,
        }
        self._inflight: dict[int, asyncio.Future[None]] = {}
        self._pubacked: list[int] = []
        self._wake = asyncio.Event()
        self._reconnected = False
        self._bad_ack_logged: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Thread-safe: new rows are waiting (wired to ``Outbox.add_listener`` by ``run``)."""
        if self._loop is not None:
            _post(self._loop, self._wake.set)

    def _on_connect(self) -> None:
        self._reconnected = True
        self._wake.set()

    async def _on_ack(self, msg: Message) -> None:
        try:
            ack = Ack.model_validate_json(msg.payload)
        except (ValidationError, ValueError) as err:
            self.stats["bad_acks"] += 1
            reason = type(err).__name__
            if reason not in self._bad_ack_logged:
                self._bad_ack_logged.add(reason)
                log.warning("ignoring malformed ack on %s: %s", msg.topic, str(err)[:200])
            return
        self.stats["acks"] += 1
        self._waiting_since = None
        if self._no_ack_warned:
            self._no_ack_warned = False
            log.info("plugin acknowledgements are arriving again on %s", self.topics.ack)
        n = await asyncio.to_thread(self.outbox.apply_ack, ack)
        self.stats["acked_rows"] += n
        if ack.missing:
            self._wake.set()

    async def run(self) -> None:
        """Run until cancelled."""
        self._loop = asyncio.get_running_loop()
        self.outbox.add_listener(self.wake)
        self.conn.add_connect_listener(self._on_connect)
        unsubscribe = self.conn.subscribe(self.topics.ack, self._on_ack, qos=1)
        flusher = asyncio.create_task(self._flush_pubacks(), name="outbox-puback-flush")
        expirer = asyncio.create_task(self._expire_loop(), name="outbox-expire")
        try:
            while True:
                try:
                    await self._step()
                except asyncio.CancelledError:
                    raise
                except Exception:  # a DB or broker hiccup must not end delivery for the process
                    log.exception("outbox publisher step failed; retrying in 1 s")
                    await asyncio.sleep(1.0)
        finally:
            unsubscribe()
            flusher.cancel()
            expirer.cancel()
            with contextlib.suppress(Exception):
                await self._flush_once()

    async def _step(self) -> None:
        """Send what is due within the window, then wait for a wake-up (new row, PUBACK, ack, poll)."""
        await self.conn.connected.wait()
        self._wake.clear()  # wake-ups from here on (put, PUBACK, ack) are kept for the wait below
        if self._reconnected:
            self._reconnected = False
            await self._flush_once()
            await asyncio.to_thread(self.outbox.reschedule_unacked)
        free = self.window - len(self._inflight)
        rows = []
        if free > 0:
            rows = await asyncio.to_thread(self.outbox.pending, free, list(self._inflight))
        sent: list[int] = []
        for row in rows:
            try:
                fut = self.conn.publish_nowait(row.topic, row.payload, qos=row.qos)
            except MqttError:
                self.stats["send_errors"] += 1
                break
            self._inflight[row.seq] = fut
            fut.add_done_callback(functools.partial(self._on_puback, row.seq))
            sent.append(row.seq)
        if sent:
            self.stats["published"] += len(sent)
            self.stats["max_inflight"] = max(self.stats["max_inflight"], len(self._inflight))
            await asyncio.to_thread(self.outbox.mark_sent, sent)
        if len(sent) == free and free > 0:
            await asyncio.sleep(0)  # window filled from the backlog: go again at once
            return
        # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that lands in the
        # same loop turn as the wake-up, and ``run`` would then never stop (CI hang, 2026-11).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll_s):
                await self._wake.wait()

    def _on_puback(self, seq: int, fut: asyncio.Future[None]) -> None:
        self._inflight.pop(seq, None)
        if fut.cancelled() or fut.exception() is not None:
            return  # connection lost: the row stays due after reschedule_unacked
        self.stats["pubacks"] += 1
        if self._waiting_since is None:
            self._waiting_since = time.monotonic()
        self._pubacked.append(seq)
        self._wake.set()

    async def _flush_once(self) -> None:
        if self._pubacked:
            batch, self._pubacked = self._pubacked, []
            await asyncio.to_thread(self.outbox.mark_puback, batch)

    async def _flush_pubacks(self) -> None:
        while True:
            await asyncio.sleep(self.puback_flush_s)
            await self._flush_once()

    def _check_plugin(self) -> None:
        """Say once if the broker takes messages but no plugin ever acknowledges them: the outbox
        would grow to its bound (likely a setup without the dashboard plugin)."""
        if (
            self.outbox.require_plugin_ack
            and not self._no_ack_warned
            and self._waiting_since is not None
            and time.monotonic() - self._waiting_since > self.no_ack_warn_s
        ):
            self._no_ack_warned = True
            log.warning(
                "no acknowledgement from the footfall plugin on %s for %.0f s (%d messages kept): is the "
                "dashboard running? Without it, set outbox require_plugin_ack: false",
                self.topics.ack,
                self.no_ack_warn_s,
                self.outbox.backlog,
            )

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(min(self.expire_every_s, self.no_ack_warn_s))
            self._check_plugin()
            try:
                await asyncio.to_thread(self.outbox.expire)
            except Exception:
                log.exception("outbox expiry failed")

    async def drain(self, timeout: float) -> bool:
        """Wait until nothing is left to deliver (plugin-acked, or PUBACKed without plugin acks);
        True if drained within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            await self._flush_once()
            left = await asyncio.to_thread(self.outbox.undelivered)
            if left == 0:
                return True
            if time.monotonic() >= deadline:
                log.warning("outbox not drained within %.1f s: %d messages left (kept on disk)", timeout, left)
                return False
            self._wake.set()
            await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
