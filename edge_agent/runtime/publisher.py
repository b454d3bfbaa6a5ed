"""The outbox publisher: drains the durable :class:`~edge_agent.runtime.outbox.Outbox` over an
:class:`~edge_agent.common.mqtt.MqttConnection` in seq order with a bounded window of un-PUBACKed messages,
re-sends after reconnects, and applies the plugin's ``Ack`` (docs/design.md §6, docs/delivery.md)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Any

from pydantic import ValidationError

from edge_agent.common.mqtt import MqttConnection, MqttError, MqttMessage, post_threadsafe
from edge_agent.contract import Ack, Topics, describe_errors
from edge_agent.runtime.outbox import AckRefused, Outbox

log = logging.getLogger(__name__)


def _short(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:200]


class OutboxPublisher:
    """Drains an :class:`Outbox` over a :class:`MqttConnection`, end to end (docs/design.md §6).

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
            "refused_acks": 0,
            "send_errors": 0,
            "max_inflight": 0,
        }
        self._inflight: dict[int, asyncio.Future[None]] = {}
        self._pubacked: list[int] = []
        self._wake = asyncio.Event()
        self._reconnected = False
        self._bad_ack_logged: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failing_since: float | None = None  # monotonic time of the first failure in a row
        self._failure_logged = 0.0
        self._failures = 0
        self._last_error: str | None = None

    def wake(self) -> None:
        """Thread-safe: new rows are waiting (wired to ``Outbox.add_listener`` by ``run``)."""
        if self._loop is not None:
            post_threadsafe(self._loop, self._wake.set)

    def _on_connect(self) -> None:
        self._reconnected = True
        self._wake.set()

    async def _on_ack(self, msg: MqttMessage) -> None:
        try:
            ack = Ack.model_validate_json(msg.payload)
        except (ValidationError, ValueError) as err:
            self.stats["bad_acks"] += 1
            reason = type(err).__name__
            if reason not in self._bad_ack_logged:  # where and why, never what the peer sent
                self._bad_ack_logged.add(reason)
                detail = describe_errors(err) if isinstance(err, ValidationError) else reason
                log.warning("ignoring malformed ack on %s: %s", msg.topic, detail)
            return
        try:
            n = await asyncio.to_thread(self.outbox.apply_ack, ack)
        except AckRefused as err:
            self.stats["refused_acks"] += 1
            if self.stats["refused_acks"] in (1, 10, 100) or self.stats["refused_acks"] % 1000 == 0:
                log.warning("%s on %s (%d refused so far)", err, msg.topic, self.stats["refused_acks"])
            return
        self.stats["acks"] += 1
        self._waiting_since = None
        if self._no_ack_warned:
            self._no_ack_warned = False
            log.info("plugin acknowledgements are arriving again on %s", self.topics.ack)
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
                except Exception as err:  # a DB or broker hiccup must not end delivery for the process
                    self._step_failed(err)
                    await asyncio.sleep(1.0)
                else:
                    self._step_ok()
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
            self.outbox.handing_over(row.seq)
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

    def _step_failed(self, err: Exception) -> None:
        """The first failure with its traceback, then one line a minute while it keeps failing."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
            self._failure_logged = now
            log.exception("outbox publisher step failed; retrying every second")
        elif now - self._failure_logged >= 60.0:
            self._failure_logged = now
            log.error("outbox publisher still failing after %.0f s (%d attempts): %s",
                      now - self._failing_since, self._failures + 1, _short(err))  # fmt: skip
        self._failures += 1
        self._last_error = _short(err)

    def _step_ok(self) -> None:
        if self._failing_since is not None:
            log.info("outbox publisher recovered after %d failed attempts", self._failures)
            self._failing_since = None
            self._failures = 0

    def health(self) -> dict[str, Any]:
        """For the heartbeat (:mod:`edge_agent.runtime.health`): how long delivery has been failing, if it is."""
        failing = None if self._failing_since is None else round(time.monotonic() - self._failing_since, 1)
        return {"failing_s": failing, "failures": self._failures, "last_error": self._last_error,
                "refused_acks": self.stats["refused_acks"]}  # fmt: skip

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
