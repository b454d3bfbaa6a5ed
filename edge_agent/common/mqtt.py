"""One MQTT connection object owning the lifecycle, for the agent and the dashboard alike.

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
  (docs/design.md §6).
* **Availability.** Retained ``online`` on the status topic after each connect, retained last will
  ``offline``; a clean exit publishes ``offline`` itself (a clean DISCONNECT suppresses the will).
* **Secrets.** Username/password come from the URL or settings and never appear in reprs or logs
  (:meth:`BrokerSettings.redacted_url`).
* **MQTT 5 for the dashboard.** ``protocol=5`` speaks MQTT v5: a persistent session (``clean_start=False`` with a
  session expiry) so the broker queues QoS 1 messages while a dashboard worker restarts, shared subscriptions
  (``$share/<group>/<filter>``: the broker hands each message to ONE member of the group, so several ingest
  workers split the load), and a Maximum Packet Size the broker must respect (it drops larger messages instead of
  sending them). The agent stays on MQTT 3.1.1 with a clean session: its outbox, not the broker, holds its data.
* **Network-thread subscribers.** ``subscribe(..., in_network_thread=True)`` calls the callback in paho's thread
  (it must be quick and thread-safe): the dashboard's ingest queue blocks there when full, so back-pressure
  reaches TCP and the broker instead of memory, and the event loop (the web app) never waits on it.

The agent's outbox publisher on top of it is :mod:`edge_agent.runtime.publisher`.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

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
    #: 4 = MQTT 3.1.1, 5 = MQTT 5 (persistent session, shared subscriptions, maximum packet size)
    protocol: int = 4
    #: False = resume the broker-side session (subscriptions and queued QoS 1 messages) on reconnect
    clean_start: bool = True
    #: MQTT 5: how long the broker keeps the session after a disconnect (persistent sessions only)
    session_expiry_s: int = 7 * 86400
    #: MQTT 5: the largest packet this client accepts (the broker drops bigger ones for us); None = no limit
    max_packet_size: int | None = None
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
        if self.protocol not in (4, 5):
            raise ValueError(f"MQTT protocol {self.protocol}: 4 (3.1.1) or 5")
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
class MqttMessage:
    topic: str
    payload: bytes
    retain: bool
    qos: int


MessageCallback = Callable[[MqttMessage], Awaitable[None] | None]
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
        self.stats = {
            "connects": 0, "connection_losses": 0, "failed_attempts": 0, "published": 0, "received": 0,
            "received_bytes": 0,
        }  # fmt: skip
        self._subs: list[tuple[str, int, MessageCallback, bool]] = []
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
        v5 = s.protocol == 5
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=None if v5 else s.clean_start,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
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

            post_threadsafe(loop, connack_cb)

        def on_disconnect(_c: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            def lost_cb() -> None:
                if not connack.done():
                    connack.set_exception(MqttConnectionLost(f"disconnected before CONNACK ({rc})"))
                lost.set()

            post_threadsafe(loop, lost_cb)

        def on_publish(_c: paho.Client, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
            post_threadsafe(loop, self._on_puback, client, mid)

        def on_message(_c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
            m = MqttMessage(msg.topic, bytes(msg.payload), bool(msg.retain), int(msg.qos))
            self.stats["received"] += 1
            self.stats["received_bytes"] += len(m.payload)
            on_loop = False
            for pattern, _, cb, in_thread in list(self._subs):
                if not paho.topic_matches_sub(_filter_of(pattern), m.topic):
                    continue
                if not in_thread:
                    on_loop = True
                    continue
                try:
                    cb(m)
                except Exception:
                    log.exception("MQTT callback %r failed", cb)
            if on_loop:
                post_threadsafe(loop, self._dispatch, m)

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish
        client.on_message = on_message
        connect_kw: dict[str, Any] = {}
        if v5:
            props = Properties(PacketTypes.CONNECT)
            if not s.clean_start:
                props.SessionExpiryInterval = int(s.session_expiry_s)
            if s.max_packet_size:
                props.MaximumPacketSize = int(s.max_packet_size)
            connect_kw = {"clean_start": s.clean_start, "properties": props}
        try:
            async with asyncio.timeout(s.connect_timeout_s + 1):
                await asyncio.to_thread(client.connect, s.host, s.port, s.keepalive, **connect_kw)
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
        for topic in dict.fromkeys(t for t, *_ in self._subs):
            client.subscribe(topic, max(q for t, q, *_ in self._subs if t == topic))
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

    def _dispatch(self, msg: MqttMessage) -> None:
        for pattern, _, cb, in_thread in list(self._subs):
            if not in_thread and paho.topic_matches_sub(_filter_of(pattern), msg.topic):
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

    def subscribe(
        self, topic: str, callback: MessageCallback, qos: int = 1, *, in_network_thread: bool = False
    ) -> Callable[[], None]:
        """Call ``callback(MqttMessage)`` (sync or async) for matching messages, across reconnects.
        ``topic`` may be a shared subscription (``$share/<group>/<filter>``, MQTT 5). ``in_network_thread``:
        call a plain function in paho's thread instead of on the event loop (see the module docstring).
        Returns a function that removes the subscription."""
        entry = (topic, qos, callback, in_network_thread)
        self._subs.append(entry)
        if self._client is not None and self.connected.is_set():
            self._client.subscribe(topic, qos)

        def unsubscribe() -> None:
            if entry in self._subs:
                self._subs.remove(entry)
            if self._client is not None and not any(t == topic for t, *_ in self._subs):
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


def _filter_of(subscription: str) -> str:
    """The topic filter of a subscription: ``$share/<group>/<filter>`` → ``<filter>``."""
    if subscription.startswith("$share/"):
        parts = subscription.split("/", 2)
        return parts[2] if len(parts) == 3 else subscription
    return subscription


def post_threadsafe(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
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
