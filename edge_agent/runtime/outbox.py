"""Durable outbox: every stored summary lives in SQLite until the plugin says it has it.

Why (docs/design.md §6): a broker PUBACK covers only the hop to the broker. A broker restart without
persistence, a kill between autosaves, or Mosquitto's offline queue limit silently drops messages it
already acknowledged, and paho's own queue dies with the process. So each message gets a per-device
``seq`` (inside one ``stream_id``) when it is written here, and rows leave only when

* the plugin acknowledged them (``Ack.acked_seq`` = highest contiguous seq it stored), or
* ``require_plugin_ack`` is off (no plugin, e.g. Home Assistant only) and the broker PUBACKed them
  more than ``retention_without_plugin_s`` ago, or
* the outbox hit a bound (rows, payload bytes or age) — logged loudly at 80 % and again when
  dropping, with the drop policy: oldest window summaries first, run summaries last.

Durability choice: ``journal_mode=WAL`` + ``synchronous=FULL``. With WAL, NORMAL never corrupts the
database but the last commits before a power cut may roll back — and a row here is the only copy of
a measured window. FULL fsyncs the WAL on each commit. The cost is one fsync per commit, so the high
rate operations are batched: ``put`` happens once per summary window (~0.1/s), while send/PUBACK
bookkeeping arrives as lists (one transaction per batch from the publisher). Losing that bookkeeping in
a crash is harmless by design: the row is simply sent again and the plugin dedupes by ``msg_id``.

The class is thread-safe (one connection behind a lock) so asyncio code can call it through
``asyncio.to_thread`` and keep fsyncs off the event loop.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from edge_agent.contract import Ack, new_msg_id, new_stream_id, valid_device_id

log = logging.getLogger(__name__)

OUTBOX_SCHEMA = 1
#: Drop order under the row bound: lower drops first (docs/design.md §6: run summaries last).
DROP_PRIORITY = {"summary": 0, "run": 9}
DEFAULT_PRIORITY = 5
#: ``next_at`` of rows that wait for nothing but an ack / retention (no timer resend).
NEVER = 1e18
#: Timestamps before 2020 mean the device clock was not set yet (Pi without RTC before NTP):
#: such rows have no trustworthy age and are never dropped by the age bound.
SANE_CLOCK = 1_577_836_800.0
#: The contract caps ``Ack.missing`` at this many ranges; a full list may have been truncated.
ACK_MISSING_CAP = 256
#: Rows deleted per transaction when an ack releases a large backlog.
ACK_CHUNK = 5000

Builder = Callable[[int, str], bytes]
OutboxPayload = Builder | BaseModel | dict[str, Any] | bytes


class OutboxError(RuntimeError):
    """The outbox file cannot be used (corrupt, another device's, newer schema)."""


class AckRefused(ValueError):
    """An ack claims seqs this outbox never assigned: forged or from another outbox's past. Nothing is deleted."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    msg_id: str
    kind: str
    topic: str
    payload: bytes
    qos: int
    created: float
    attempts: int
    pubacked: bool


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq       INTEGER PRIMARY KEY,
    msg_id    TEXT NOT NULL UNIQUE,
    kind      TEXT NOT NULL,
    topic     TEXT NOT NULL,
    payload   BLOB NOT NULL,
    qos       INTEGER NOT NULL,
    priority  INTEGER NOT NULL,
    created   REAL NOT NULL,
    attempts  INTEGER NOT NULL DEFAULT 0,
    next_at   REAL NOT NULL DEFAULT 0,
    puback_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_at, seq);
CREATE INDEX IF NOT EXISTS outbox_drop ON outbox (priority, seq);
CREATE INDEX IF NOT EXISTS outbox_created ON outbox (created);
-- payload bytes held, kept in meta by SQLite itself so every delete path counts (acks, drops, expiry)
CREATE TRIGGER IF NOT EXISTS outbox_bytes_ins AFTER INSERT ON outbox BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + length(NEW.payload) WHERE key = 'bytes';
END;
CREATE TRIGGER IF NOT EXISTS outbox_bytes_del AFTER DELETE ON outbox BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) - length(OLD.payload) WHERE key = 'bytes';
END;
"""

_COUNTERS = ("put", "sent", "resent", "pubacked", "acked", "dropped", "dropped_run", "expired_retained")


class Outbox:
    """SQLite (WAL) outbox for one device; see the module docstring for the rules."""

    def __init__(
        self,
        path: Path | str,
        device_id: str,
        max_rows: int = 200_000,
        max_age_s: float = 30 * 86400,
        retention_without_plugin_s: float = 7 * 86400,
        *,
        max_bytes: int = 256_000_000,
        require_plugin_ack: bool = True,
        resend_after_s: float = 30.0,
        max_resend_after_s: float = 3600.0,
        warn_fraction: float = 0.8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not valid_device_id(device_id):
            raise ValueError(f"outbox: device_id {device_id!r} is not a valid device id")
        if max_rows < 1 or max_bytes < 1 or max_age_s <= 0 or resend_after_s <= 0:
            raise ValueError(
                f"outbox: bounds must be positive (max_rows={max_rows}, max_bytes={max_bytes}, "
                f"max_age_s={max_age_s}, resend_after_s={resend_after_s})"
            )
        self.path = Path(path)
        self.device_id = device_id
        self.max_rows = int(max_rows)
        self.max_bytes = int(max_bytes)
        self.max_age_s = float(max_age_s)
        self.retention_without_plugin_s = float(retention_without_plugin_s)
        self.require_plugin_ack = require_plugin_ack
        self.resend_after_s = float(resend_after_s)
        self.max_resend_after_s = float(max_resend_after_s)
        self.warn_fraction = warn_fraction
        self._clock = clock
        self._lock = threading.RLock()
        self._listeners: list[Callable[[], None]] = []
        self._warned = False
        self.refused_acks = 0  # acks refused since this process opened the outbox (AckRefused)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._check_integrity()  # before the pragmas below write anything
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # new files only; must precede WAL
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self.stream_id = self._init_meta()
            self._rows = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
            self._sent_high = self._highest_handed_over()
        except sqlite3.DatabaseError as err:
            raise OutboxError(
                f"outbox {self.path}: cannot open as SQLite outbox ({err}); the file was left untouched"
            ) from None
        if self._rows:
            log.info("outbox %s: %d rows carried over (stream %s)", self.path, self._rows, self.stream_id)

    # ------------------------------------------------------------------ setup
    def _highest_handed_over(self) -> int:
        """The highest seq ever handed to the broker: an ack can only cover rows up to it (rows never sent cannot
        have been received). A row of this outbox sent before a restart has ``attempts > 0`` (or a PUBACK); one
        published but killed before that was written is simply sent again before an ack can delete it."""
        sent, lowest = self._db.execute(
            "SELECT MAX(CASE WHEN attempts > 0 OR puback_at IS NOT NULL THEN seq END), MIN(seq) FROM outbox"
        ).fetchone()
        if sent is not None:
            return int(sent)
        if lowest is not None:
            return int(lowest) - 1  # rows remain and none was sent: everything below them is gone already
        return int(self._db.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()[0])

    def handing_over(self, seq: int) -> None:
        """The publisher is about to publish ``seq`` (called before the publish, so no ack can outrun it)."""
        with self._lock:
            if seq > self._sent_high:
                self._sent_high = seq

    def _check_integrity(self) -> None:
        """``PRAGMA quick_check`` before anything is written: a file damaged mid-way (bad sector, torn copy)
        would otherwise open, carry rows over and fail on every read. Refused with the file kept as it is
        (its intact rows may be recoverable with ``sqlite3 FILE .recover``)."""
        rows = self._db.execute("PRAGMA quick_check(5)").fetchall()
        problems = [line.strip() for r in rows if r and r[0] != "ok" for line in str(r[0]).splitlines()]
        if problems:
            self._db.close()
            raise OutboxError(
                f"outbox {self.path} is corrupt (SQLite quick_check: {'; '.join(problems)[:300]}); the file was "
                "left untouched: move it aside to start a new outbox (sqlite3 FILE .recover may save its rows)"
            )

    def _init_meta(self) -> str:
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not meta:
            stream_id = new_stream_id()
            with self._tx():
                self._db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [
                        ("schema", str(OUTBOX_SCHEMA)),
                        ("device_id", self.device_id),
                        ("stream_id", stream_id),
                        ("last_seq", "0"),
                        ("bytes", "0"),
                        *[(f"n_{c}", "0") for c in _COUNTERS],
                    ],
                )
            return stream_id
        if int(meta.get("schema", "0")) > OUTBOX_SCHEMA:
            raise OutboxError(f"outbox {self.path}: schema {meta.get('schema')} is newer than {OUTBOX_SCHEMA}")
        if meta.get("device_id") != self.device_id:
            raise OutboxError(
                f"outbox {self.path}: belongs to device {meta.get('device_id')!r}, not {self.device_id!r}; "
                "use another outbox path (the file was left untouched)"
            )
        if "bytes" not in meta:  # a file from before the size bound: count once, triggers keep it
            with self._tx():
                self._db.execute("INSERT INTO meta SELECT 'bytes', COALESCE(SUM(length(payload)), 0) FROM outbox")
        return str(meta["stream_id"])

    def _tx(self) -> _Tx:
        return _Tx(self._db)

    def _bump(self, name: str, n: int) -> None:
        if n:
            self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = ?", (n, f"n_{name}"))

    def add_listener(self, callback: Callable[[], None]) -> None:
        """``callback()`` runs (in the caller's thread) after each ``put`` commits."""
        self._listeners.append(callback)

    # ------------------------------------------------------------------ write side
    def put(self, topic: str, message: OutboxPayload, kind: str | None = None, qos: int = 1) -> int:
        """Store one message durably; returns its ``seq``.

        ``seq`` and ``msg_id`` are assigned inside the same transaction that stores the payload, and
        written into its envelope: ``message`` is a builder ``(seq, msg_id) -> bytes``, a pydantic
        contract model (its ``seq``/``msg_id``/``stream_id``/``device_id`` are replaced), or a dict
        (envelope keys added, JSON-encoded). ``kind`` defaults to the model's/dict's ``kind``.
        """
        if qos not in (0, 1, 2):
            raise ValueError(f"outbox.put: qos {qos!r} must be 0, 1 or 2")
        if kind is None:
            kind = getattr(message, "kind", None) or (message.get("kind") if isinstance(message, dict) else None)
        if not kind:
            raise ValueError(f"outbox.put({topic!r}): kind is required for a builder payload")
        now = self._clock()
        try:
            return self._put(topic, message, kind, qos, now)
        except sqlite3.Error as err:  # disk full, I/O error, read-only medium: nothing was stored
            raise OutboxError(f"outbox {self.path}: cannot store {kind} message for {topic}: {err}") from err

    def _put(self, topic: str, message: OutboxPayload, kind: str, qos: int, now: float) -> int:
        with self._lock:
            if self._rows >= self.max_rows:
                self._enforce_row_bound(self._rows - self.max_rows + 1)
            with self._tx():
                seq = int(self._db.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()[0]) + 1
                msg_id = f"{self.stream_id}-{seq}-{new_msg_id()[:8]}"
                payload = self._encode(message, seq, msg_id)
                self._db.execute(
                    "INSERT INTO outbox (seq, msg_id, kind, topic, payload, qos, priority, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, msg_id, kind, topic, payload, qos, DROP_PRIORITY.get(kind, DEFAULT_PRIORITY), now),
                )
                self._db.execute("UPDATE meta SET value=? WHERE key='last_seq'", (str(seq),))
                self._bump("put", 1)
            self._rows += 1
            excess = self.payload_bytes() - self.max_bytes
            if excess > 0:
                self._enforce_byte_bound(excess)
            self._check_warning()
        for cb in self._listeners:
            cb()
        return seq

    def _encode(self, message: OutboxPayload, seq: int, msg_id: str) -> bytes:
        envelope = {"msg_id": msg_id, "seq": seq, "stream_id": self.stream_id, "device_id": self.device_id}
        if isinstance(message, BaseModel):
            return message.model_copy(update=envelope).model_dump_json().encode()
        if isinstance(message, dict):
            return json.dumps({**message, **envelope}, allow_nan=False, separators=(",", ":")).encode()
        if callable(message):
            out = message(seq, msg_id)
            if not isinstance(out, bytes | bytearray):
                raise TypeError(f"outbox.put: builder returned {type(out).__name__}, expected bytes")
            return bytes(out)
        raise TypeError(f"outbox.put: unsupported message type {type(message).__name__}")

    # ------------------------------------------------------------------ send side
    def pending(self, limit: int, exclude: Iterable[int] = ()) -> list[OutboxRow]:
        """Rows due for (re)send, in seq order, skipping ``exclude`` (seqs already in flight).

        Two index range reads, never a table scan (a 200k-row backlog waiting for acks must not
        cost a full scan per poll on a Pi Zero): rows due *now* (``next_at = 0``: new, after a
        reconnect, asked for by the plugin) in seq order, plus rows whose resend timer expired.
        """
        skip = set(exclude)
        n = limit + len(skip)
        now = self._clock()
        cols = "seq, msg_id, kind, topic, payload, qos, created, attempts, puback_at"
        with self._lock:
            rows = self._db.execute(
                f"SELECT {cols} FROM outbox WHERE next_at = 0 ORDER BY seq LIMIT ?", (n,)
            ).fetchall()
            rows += self._db.execute(
                f"SELECT {cols} FROM outbox WHERE next_at > 0 AND next_at <= ? ORDER BY next_at LIMIT ?", (now, n)
            ).fetchall()
        rows.sort(key=lambda r: r[0])
        out = [
            OutboxRow(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], r[6], r[7], r[8] is not None)
            for r in rows
            if r[0] not in skip
        ]
        return out[:limit]

    def mark_sent(self, seqs: Sequence[int]) -> None:
        """Record one send attempt each; the row is due again after a growing back-off."""
        if not seqs:
            return
        now = self._clock()
        with self._lock, self._tx():
            self._sent_high = max(self._sent_high, *seqs)
            resent = self._db.execute(
                f"SELECT COUNT(*) FROM outbox WHERE attempts > 0 AND seq IN ({_marks(seqs)})", list(seqs)
            ).fetchone()[0]
            # (a PUBACK can be recorded before its send is: without plugin acks such a row stays parked)
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_at = CASE WHEN next_at >= ? THEN next_at "
                f"ELSE ? + MIN(? * (1 << MIN(attempts, 16)), ?) END WHERE seq IN ({_marks(seqs)})",
                [NEVER, now, self.resend_after_s, self.max_resend_after_s, *seqs],
            )
            self._bump("sent", len(seqs))
            self._bump("resent", int(resent))

    def mark_puback(self, seqs: Sequence[int]) -> None:
        """The broker acknowledged these (covers only the hop to the broker)."""
        if not seqs:
            return
        now = self._clock()
        with self._lock, self._tx():
            # without plugin acks a PUBACKed row is done: park its resend timer (NEVER); a plugin
            # that does exist may still ask for it (``ack`` missing ranges reset next_at to 0).
            self._db.execute(
                f"UPDATE outbox SET puback_at = ?, next_at = CASE WHEN ? THEN ? ELSE next_at END "
                f"WHERE puback_at IS NULL AND seq IN ({_marks(seqs)})",
                [now, not self.require_plugin_ack, NEVER, *seqs],
            )
            self._bump("pubacked", len(seqs))  # PUBACKs received (rows may already be plugin-acked)

    def reschedule_unacked(self, recent_s: float = 120.0) -> int:
        """After a reconnect, make what the broker may have lost due again; returns the count.

        Rows sent but never PUBACKed were in flight when the link dropped: all due. Rows PUBACKed
        in the last ``recent_s`` seconds but not yet acknowledged by the plugin may have died with
        a broker restart (no persistence, or a kill between autosaves): due too (with plugin acks;
        dupes are dropped by ``msg_id``). Older unacknowledged rows keep their resend timers, so
        a big backlog waiting for an absent plugin is not re-sent in full on every Wi-Fi blip.
        """
        sql = "UPDATE outbox SET next_at = 0 WHERE next_at > 0 AND next_at < ? AND (puback_at IS NULL"
        if self.require_plugin_ack:
            sql += " OR puback_at >= ?"
        sql += ")"
        now = self._clock()
        with self._lock, self._tx():
            args = (NEVER, now - recent_s) if self.require_plugin_ack else (NEVER,)
            return self._db.execute(sql, args).rowcount

    def ack(self, acked_seq: int, missing: Sequence[tuple[int, int]] = (), highest_seq: int | None = None) -> int:
        """Apply a plugin acknowledgement; returns the number of rows deleted.

        Deletes every row ``seq <= acked_seq``. If the plugin also reports ``highest_seq``, rows
        between ``acked_seq`` and it that are not listed as missing are stored too and are deleted
        (this releases rows above a gap the outbox itself dropped, which would otherwise stall the
        plugin's contiguous seq forever) — only when ``missing`` cannot have been truncated.
        Missing ranges we still hold are scheduled for immediate resend. An ack naming a seq beyond the last one
        assigned here raises :class:`AckRefused` and deletes nothing. An ack is never applied beyond the highest
        seq handed to the broker (:meth:`handing_over`): nothing a peer sends deletes a row it cannot have received.
        """
        last_seq = self.last_seq()
        claimed = max(acked_seq, highest_seq if highest_seq is not None else acked_seq)
        if claimed > last_seq:
            # No plugin can have stored a seq that was never assigned: a forged ack (docs/security.md) or one
            # meant for a lost copy of this outbox. Trust none of it.
            self.refused_acks += 1
            raise AckRefused(f"ack claims seq {claimed}, beyond the last assigned seq {last_seq}; refused")
        with self._lock:
            sent_high = self._sent_high
        if claimed > sent_high:
            log.debug("outbox: ack for seq %d applied only up to seq %d, the highest sent", claimed, sent_high)
            acked_seq = min(acked_seq, sent_high)
            highest_seq = None if highest_seq is None else min(highest_seq, sent_high)
        deleted = 0
        while True:  # big acks (a drained backlog) in chunks: puts are not blocked for long
            with self._lock, self._tx():
                n = self._db.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE seq <= ? ORDER BY seq LIMIT ?)",
                    (acked_seq, ACK_CHUNK),
                ).rowcount
                self._bump("acked", n)
                self._rows -= n
            deleted += n
            if n < ACK_CHUNK:
                break
        with self._lock:
            with self._tx():
                gap_deleted = 0
                ranges = sorted((max(a, acked_seq + 1), b) for a, b in missing if b >= a and b > acked_seq)
                if highest_seq is not None and len(missing) < ACK_MISSING_CAP:
                    upper = min(highest_seq, last_seq, sent_high)
                    lo = acked_seq + 1
                    for a, b in [*ranges, (upper + 1, upper + 1)]:
                        if a > lo:
                            hi = min(a - 1, upper)
                            if hi >= lo:
                                gap_deleted += self._db.execute(
                                    "DELETE FROM outbox WHERE seq BETWEEN ? AND ?", (lo, hi)
                                ).rowcount
                        lo = max(lo, b + 1)
                        if lo > upper:
                            break
                for a, b in ranges:
                    self._db.execute("UPDATE outbox SET next_at = 0 WHERE seq BETWEEN ? AND ?", (a, b))
                self._bump("acked", gap_deleted)
            self._rows -= gap_deleted
            if self._fill() < self.warn_fraction:
                self._warned = False
            return deleted + gap_deleted

    def apply_ack(self, ack: Ack) -> int:
        """Apply a validated :class:`Ack`; acks for another device or stream are ignored (0)."""
        if ack.device_id != self.device_id or ack.stream_id != self.stream_id:
            log.debug("outbox: ignoring ack for %s/%s", ack.device_id, ack.stream_id)
            return 0
        return self.ack(ack.acked_seq, ack.missing, ack.highest_seq)

    # ------------------------------------------------------------------ bounds
    def _fill(self, payload_bytes: int | None = None) -> float:
        """How full the outbox is: the larger of its row and byte fractions."""
        held = self.payload_bytes() if payload_bytes is None else payload_bytes
        return max(self._rows / self.max_rows, held / self.max_bytes)

    def _check_warning(self) -> None:
        if self._warned:
            return
        held = self.payload_bytes()
        fill = self._fill(held)
        if fill >= self.warn_fraction:
            self._warned = True
            log.warning(
                "OUTBOX NEARLY FULL: %d of %d rows, %.1f of %.1f MB (%.0f %%) at %s — is the plugin/broker "
                "reachable? At the bound the oldest window summaries are dropped first, run summaries last.",
                self._rows,
                self.max_rows,
                held / 1e6,
                self.max_bytes / 1e6,
                100 * fill,
                self.path,
            )

    def _enforce_row_bound(self, n: int) -> dict[str, int]:
        victims = self._db.execute("SELECT seq, kind FROM outbox ORDER BY priority, seq LIMIT ?", (n,)).fetchall()
        return self._drop(victims, f"row bound {self.max_rows} reached")

    def _enforce_byte_bound(self, excess: int) -> dict[str, int]:
        """Drop rows in the same priority order until ``excess`` payload bytes are freed."""
        victims: list[tuple[int, str]] = []
        freed = 0
        cur = self._db.execute("SELECT seq, kind, length(payload) FROM outbox ORDER BY priority, seq")
        while freed < excess and (batch := cur.fetchmany(256)):
            for seq, kind, size in batch:
                victims.append((seq, kind))
                freed += size
                if freed >= excess:
                    break
        cur.close()
        return self._drop(victims, f"size bound {self.max_bytes:,} payload bytes reached")

    def _drop(self, victims: list[tuple[int, str]], why: str) -> dict[str, int]:
        if not victims:
            return {}
        counts: dict[str, int] = {}
        for _, kind in victims:
            counts[kind] = counts.get(kind, 0) + 1
        seqs = [v[0] for v in victims]
        with self._tx():
            for i in range(0, len(seqs), 500):
                chunk = seqs[i : i + 500]
                self._db.execute(f"DELETE FROM outbox WHERE seq IN ({_marks(chunk)})", chunk)
            self._bump("dropped", len(seqs))
            self._bump("dropped_run", counts.get("run", 0))
        self._rows -= len(seqs)
        log.error(
            "OUTBOX DROPPED %d undelivered messages (%s; seq %d..%d; by kind %s) at %s",
            len(seqs),
            why,
            min(seqs),
            max(seqs),
            counts,
            self.path,
        )
        return counts

    def expire(self, now: float | None = None) -> dict[str, int]:
        """Apply the age bound and the no-plugin retention; returns dropped counts by kind.

        Rows older than ``max_age_s`` are dropped whatever their kind (a month-old undelivered
        window is not worth blocking newer data); rows stamped before the clock was set
        (:data:`SANE_CLOCK`) are exempt, so an NTP jump on an RTC-less Pi drops nothing. Without
        plugin acks, PUBACKed rows leave after the retention window (``expired_retained``).
        """
        now = self._clock() if now is None else now
        with self._lock:
            dropped: dict[str, int] = {}
            old = (
                []
                if now < SANE_CLOCK
                else self._db.execute(
                    "SELECT seq, kind FROM outbox WHERE created < ? AND created >= ? ORDER BY seq",
                    (now - self.max_age_s, SANE_CLOCK),
                ).fetchall()
            )
            if old:
                dropped = self._drop(old, f"older than {self.max_age_s:.0f} s")
            if not self.require_plugin_ack:
                with self._tx():
                    n = self._db.execute(
                        "DELETE FROM outbox WHERE puback_at IS NOT NULL AND puback_at < ?",
                        (now - self.retention_without_plugin_s,),
                    ).rowcount
                    self._bump("expired_retained", n)
                self._rows -= n
            over = [self._enforce_row_bound(self._rows - self.max_rows)] if self._rows > self.max_rows else []
            excess = self.payload_bytes() - self.max_bytes
            if excess > 0:  # the bounds may have been lowered since the rows were stored
                over.append(self._enforce_byte_bound(excess))
            for counts in over:
                for k, v in counts.items():
                    dropped[k] = dropped.get(k, 0) + v
            self._check_warning()
            self._shrink()
            return dropped

    def _shrink(self, min_free_pages: int = 256, max_pages: int = 4096) -> None:
        """Give space back after a big backlog drained (an SD card is small), a bounded step per
        call so the lock is never held long."""
        free = int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
        if free >= min_free_pages:
            # executescript steps the pragma to completion (execute() frees one page per step)
            self._db.executescript(f"PRAGMA incremental_vacuum({min(free, max_pages)});")

    # ------------------------------------------------------------------ introspection
    @property
    def backlog(self) -> int:
        """Rows still held (not yet acknowledged / retained)."""
        return self._rows

    def undelivered(self) -> int:
        """Rows still needing delivery: unacked (plugin mode) or un-PUBACKed (no-plugin mode)."""
        if self.require_plugin_ack:
            return self._rows
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox WHERE puback_at IS NULL").fetchone()[0])

    def payload_bytes(self) -> int:
        """Payload bytes held: what the size bound counts (the file adds page and index overhead)."""
        with self._lock:
            return int(self._db.execute("SELECT value FROM meta WHERE key='bytes'").fetchone()[0])

    def last_seq(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        """Counters since the outbox file was created, plus current size (for logs and LiveUpdate)."""
        now = self._clock()
        with self._lock:
            meta = dict(self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'n\\_%' ESCAPE '\\'"))
            oldest = self._db.execute("SELECT MIN(created) FROM outbox").fetchone()[0]
        out: dict[str, Any] = {c: int(meta.get(f"n_{c}", 0)) for c in _COUNTERS}
        out.update(
            rows=self._rows,
            max_rows=self.max_rows,
            bytes=self.payload_bytes(),
            max_bytes=self.max_bytes,
            fill=self._fill(),
            oldest_age_s=(now - oldest) if oldest is not None else None,
            stream_id=self.stream_id,
            last_seq=self.last_seq(),
            refused_acks=self.refused_acks,
        )
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Tx:
    """BEGIN IMMEDIATE … COMMIT/ROLLBACK (the connection runs in autocommit mode)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        if not exc_type:
            try:
                self.db.execute("COMMIT")
                return
            except sqlite3.Error:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
        if self.db.in_transaction:  # SQLite already rolled back on e.g. SQLITE_FULL
            self.db.execute("ROLLBACK")


def _marks(seqs: Sequence[int]) -> str:
    return ",".join("?" * len(seqs))
