"""A minimal acknowledging subscriber: the plugin's side of end-to-end delivery, for tests.

A raw paho client (its own threaded loop and reconnects, persistent session so the broker queues
for it while it is away) that validates each summary with ``parse_stored_message``, stores each
``msg_id`` once per ``(device, stream)``, and publishes an :class:`~edge_agent.contract.Ack`
(highest contiguous seq + missing ranges + highest seq) at most every ``ack_every_s``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.contract import Ack, PayloadError, Topics, parse_stored_message


@dataclass
class StreamState:
    seqs: set[int] = field(default_factory=set)
    msg_ids: set[str] = field(default_factory=set)
    dirty: bool = False

    def ack_fields(self, cap: int = 256) -> tuple[int, list[tuple[int, int]], int]:
        """Highest contiguous seq, missing ranges below the highest seen (lowest first), highest."""
        if not self.seqs:
            return 0, [], 0
        top = max(self.seqs)
        contiguous = 0
        while contiguous + 1 in self.seqs:
            contiguous += 1
        missing: list[tuple[int, int]] = []
        start = None
        for s in range(contiguous + 1, top + 1):
            if s not in self.seqs:
                start = s if start is None else start
            elif start is not None:
                missing.append((start, s - 1))
                start = None
        return contiguous, missing[:cap], top


class Acker:
    """Stores what arrives and acknowledges it; counts everything for the fault tests."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        base: str = "footfall",
        client_id: str = "test-acker",
        ack_every_s: float = 0.2,
        send_acks: bool = True,
    ) -> None:
        self.host, self.port, self.base = host, port, base
        self.ack_every_s = ack_every_s
        self.send_acks = send_acks
        self.streams: dict[tuple[str, str], StreamState] = {}
        self.received = 0
        self.duplicates = 0
        self.invalid = 0
        self.acks_sent = 0
        self.ever_missing: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.reconnect_delay_set(0.05, 0.5)  # type: ignore[arg-type]  # floats work; typed int
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self._connected.clear()
        self.client.on_message = self._on_message
        self._ticker = threading.Thread(target=self._tick, name="acker-ticker", daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 10.0) -> Acker:
        self.client.connect_async(self.host, self.port, keepalive=10)
        self.client.loop_start()
        if not self._ticker.is_alive():
            self._ticker.start()
        if not self._connected.wait(timeout):
            raise TimeoutError("acker could not connect")
        return self

    def pause(self) -> None:
        """Disconnect but keep the broker session (the broker queues QoS 1 messages for us)."""
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()

    def resume(self, timeout: float = 10.0) -> None:
        self.client.reconnect_delay_set(0.05, 0.5)  # type: ignore[arg-type]  # floats work; typed int
        self.client.connect_async(self.host, self.port, keepalive=10)
        self.client.loop_start()
        if not self._connected.wait(timeout):
            raise TimeoutError("acker could not reconnect")

    def stop(self) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()

    # ------------------------------------------------------------------ paho callbacks (its thread)
    def _on_connect(self, client: paho.Client, _u: object, _f: object, rc: object, _p: object) -> None:
        client.subscribe([(Topics.wildcard(self.base, "summary"), 1), (Topics.wildcard(self.base, "run"), 1)])
        with self._lock:
            for st in self.streams.values():
                st.dirty = True  # re-ack after every reconnect: an ack may have been lost
        self._connected.set()

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        try:
            m = parse_stored_message(bytes(msg.payload))
        except PayloadError:
            with self._lock:
                self.invalid += 1
            return
        with self._lock:
            self.received += 1
            st = self.streams.setdefault((m.device_id, m.stream_id), StreamState())
            if m.msg_id in st.msg_ids:
                self.duplicates += 1
            else:
                st.msg_ids.add(m.msg_id)
                st.seqs.add(m.seq)
            st.dirty = True

    def _tick(self) -> None:
        while not self._stop.wait(self.ack_every_s):
            if self.send_acks and self._connected.is_set():
                self.flush_acks()

    def flush_acks(self) -> None:
        with self._lock:
            todo = [(k, st.ack_fields()) for k, st in self.streams.items() if st.dirty]
            for k, _ in todo:
                self.streams[k].dirty = False
        for (device, stream), (contiguous, missing, top) in todo:
            for a, b in missing:
                self.ever_missing.update(range(a, b + 1))
            ack = Ack(
                device_id=device,
                stream_id=stream,
                acked_seq=contiguous,
                missing=missing,
                highest_seq=top,
                receiver="test-acker",
            )
            self.client.publish(Topics(device, self.base).ack, ack.model_dump_json(), qos=1)
            self.acks_sent += 1

    # ------------------------------------------------------------------ results
    def stored_seqs(self, device: str, stream: str) -> set[int]:
        with self._lock:
            return set(self.streams.get((device, stream), StreamState()).seqs)

    def stored(self) -> int:
        with self._lock:
            return sum(len(st.seqs) for st in self.streams.values())
