"""Storing summaries: every ``msg_id`` once, every window slot once, runs kept current, streams advanced.

- A batch is ONE transaction (what makes thousands of summaries per second possible). When a row cannot be stored
  (an integer beyond 64 bits, text the database refuses), the batch is redone with one SAVEPOINT per message, so
  that message alone is rejected and the rest — and everything stored before — stays.
- Exactly once, also with several ingest workers on one PostgreSQL database: the ledger ``messages`` is unique
  on ``msg_id`` and on the stream position ``(device_id, stream_id, seq)``, ``windows`` on ``(run_id,
  window_index)``; inserts are ``ON CONFLICT DO NOTHING``, so a re-sent copy — the same msg_id, a new msg_id on a
  stored position, or a new msg_id for a stored window — is a duplicate, never a second row.
- Caps (each message beyond one is refused with a reason, stored nothing, acknowledged nothing, so the agent
  keeps it): :data:`MAX_WINDOWS_PER_RUN`, :data:`MAX_STREAMS_PER_DEVICE` streams active in the last
  ``GAP_GIVE_UP_S``, and a run belongs to the device that started it.
- Streams advance from the database: the highest contiguous seq is recomputed after each commit-bound batch from
  the ``messages`` rows under the stream's row lock (PostgreSQL ``FOR UPDATE``), so two workers that stored
  different seqs of one stream end with the right figure. Rows are locked in key order (no deadlock cycles);
  a deadlock or serialization failure PostgreSQL still reports retries the whole batch.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import TypeAdapter

from edge_agent.common.measures import pooled_measures
from edge_agent.contract import StepRecord, WindowSummary
from plugin.store.backend import Conn
from plugin.store.base import RUN_COLS, WINDOW_COLS, StoreBase, StoredMsg
from plugin.store.measures_sql import combine_sql

log = logging.getLogger(__name__)

#: A gap in a stream still open this long after the message above it arrived is given up (docs/design.md §6: the
#: agent keeps unacknowledged rows for up to 30 days by default; a week of asking is plenty on a home network).
GAP_GIVE_UP_S = 7 * 86400.0
#: A run holds at most this many windows (55 h at the agent's default 10 s windows).
MAX_WINDOWS_PER_RUN = 20_000
#: A device may have at most this many streams (outbox databases) active within ``GAP_GIVE_UP_S``.
MAX_STREAMS_PER_DEVICE = 32
_STREAM_CACHE_MAX = 100_000
_RECORDS: TypeAdapter[list[StepRecord]] = TypeAdapter(list[StepRecord])

# A run assembled from its windows while its RunSummary has not arrived (yet): the pooled measures combined as
# edge_agent.common.measures.COMBINE defines, over the run's windows.
_RUN_FROM_WINDOWS_SQL = (
    f"SELECT MIN(t_start) AS started_at, MAX(t_end) AS ended_at, COUNT(*) AS windows, {combine_sql('windows')}, "
    "MAX(device_id) AS device_id, MAX(runner) AS runner FROM windows WHERE run_id = ?"
)
_INT_RUN_COLS = ("windows", "steps", "valr_n", "vilr_n", "contact_n", "peak_force_n", "si_left_n", "si_right_n",
                 "rearfoot", "midfoot", "forefoot")  # fmt: skip


class _BatchState:
    """What one batch learns while it goes (caps, first/last seen), written once at its end."""

    def __init__(self) -> None:
        self.touched_runs: set[str] = set()
        self.touched_streams: set[tuple[str, str]] = set()
        self.max_seq: dict[tuple[str, str], tuple[int, float]] = {}
        self.devices: dict[str, tuple[float, float, str | None]] = {}
        self.runners: dict[str, tuple[float, float, float | None]] = {}
        self.run_windows: dict[str, int] = {}
        self.run_owner: dict[str, str | None] = {}
        self.new_windows = 0
        self.new_streams: set[tuple[str, str]] = set()


class SummaryWrites(StoreBase):
    #: Name of this writer's row in ``store_counters`` (one per worker: no contention between workers).
    shard: str = "main"
    _known_streams: set[tuple[str, str]]

    def insert_message(self, msg: StoredMsg, received_at: float | None = None) -> bool:
        """Store one summary; False when it is a duplicate (its ``msg_id``, stream position or window slot)."""
        return self.store_batch([(msg, received_at if received_at is not None else time.time())])[0] is True

    def insert_many(self, msgs: Iterable[StoredMsg | tuple[StoredMsg, float]]) -> int:
        """Store many summaries in one transaction; returns how many were new."""
        now = time.time()
        items = [m if isinstance(m, tuple) else (m, now) for m in msgs]
        return sum(1 for r in self.store_batch(items) if r is True)

    def store_batch(
        self, items: Sequence[tuple[StoredMsg, float] | tuple[StoredMsg, float, str | None]]
    ) -> list[bool | str]:
        """Store a batch in one transaction. Per item: True = stored, False = duplicate, str = ``"reason: detail"``
        why it was not stored (that item alone; the rest of the batch commits).

        A window may carry the already-validated JSON text it was parsed from; it is stored as received (saves
        re-serialising on the ingest hot path), otherwise the model is serialised.
        """
        norm = [(it[0], it[1], it[2] if len(it) > 2 else None) for it in items]  # type: ignore[misc]
        for attempt in range(8):
            try:
                try:  # fast path: the whole batch in one go
                    return self._store_batch(norm, careful=False)
                except self.db.row_errors:  # a row the database cannot take: one SAVEPOINT per message
                    return self._store_batch(norm, careful=True)
            except self.db.retry_errors as err:
                if attempt == 7:
                    raise
                log.info("store %s: batch retried after %s", self.where, type(err).__name__)
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")

    # -- one batch -----------------------------------------------------------------------------------------------
    def _store_batch(self, items: list[tuple[StoredMsg, float, str | None]], careful: bool) -> list[bool | str]:
        results: list[bool | str] = []
        st = _BatchState()
        d = self.db.dialect
        with self._tx() as w:
            for msg, received_at, raw in items:
                st.touched_streams.add((msg.device_id, msg.stream_id))
                refused = self._refuse(w, msg, st)
                if refused is not None:
                    results.append(refused)
                    continue
                if careful:
                    w.execute("SAVEPOINT m")
                    try:
                        new = self._insert_one(w, msg, received_at, raw)
                    except self.db.row_errors as err:
                        w.execute("ROLLBACK TO SAVEPOINT m")
                        w.execute("RELEASE SAVEPOINT m")
                        results.append(_unstorable(err))
                        continue
                    w.execute("RELEASE SAVEPOINT m")
                else:
                    new = self._insert_one(w, msg, received_at, raw)
                results.append(new)
                if new:
                    self._note(msg, received_at, st)
            w.executemany(
                "INSERT INTO streams(device_id, stream_id, contiguous_seq, max_seq, updated_at) VALUES (?,?,0,?,?) "
                "ON CONFLICT(device_id, stream_id) DO UPDATE SET "
                f"max_seq = {d.max2('streams.max_seq', 'excluded.max_seq')}, updated_at = excluded.updated_at",
                [(dev, s, seq, at) for (dev, s), (seq, at) in sorted(st.max_seq.items())],
            )
            w.executemany(
                "INSERT INTO devices(device_id, first_seen, last_seen, last_runner) VALUES (?,?,?,?) "
                "ON CONFLICT(device_id) DO UPDATE SET "
                f"last_seen = {d.max2('devices.last_seen', 'excluded.last_seen')}, "
                "last_runner = COALESCE(excluded.last_runner, devices.last_runner)",
                [(dev, *v) for dev, v in sorted(st.devices.items())],
            )
            w.executemany(
                "INSERT INTO runners(name, first_seen, last_seen, body_mass_kg) VALUES (?,?,?,?) "
                f"ON CONFLICT(name) DO UPDATE SET first_seen = {d.min2('runners.first_seen', 'excluded.first_seen')}, "
                f"last_seen = {d.max2('runners.last_seen', 'excluded.last_seen')}, "
                "body_mass_kg = COALESCE(excluded.body_mass_kg, runners.body_mass_kg)",
                [(name, *v) for name, v in sorted(st.runners.items())],
            )
            for run_id in sorted(st.touched_runs):
                self._reaggregate_run(w, run_id)
            for device_id, stream_id in sorted(st.touched_streams):
                self._advance_stream(w, device_id, stream_id)
            if st.new_windows:
                self._count(w, "summaries", st.new_windows)
        return results

    def _count(self, w: Conn, name: str, delta: int) -> None:
        w.execute(
            "INSERT INTO store_counters(name, shard, value) VALUES (?,?,?) ON CONFLICT(name, shard) "
            "DO UPDATE SET value = store_counters.value + excluded.value",
            (name, self.shard, delta),
        )

    def _refuse(self, w: Conn, msg: StoredMsg, st: _BatchState) -> str | None:
        """Why this message may not be stored (a cap, another device's run), or None."""
        key = (msg.device_id, msg.stream_id)
        if key not in self._known_streams and key not in st.new_streams:
            if w.execute("SELECT 1 FROM streams WHERE device_id = ? AND stream_id = ?", key).fetchone() is not None:
                if len(self._known_streams) > _STREAM_CACHE_MAX:
                    self._known_streams.clear()
                self._known_streams.add(key)
            else:
                active = w.execute(
                    "SELECT COUNT(*) FROM streams WHERE device_id = ? AND updated_at > ?",
                    (msg.device_id, time.time() - GAP_GIVE_UP_S),
                ).fetchone()[0]
                pending = sum(1 for dev, _ in st.new_streams if dev == msg.device_id)
                if int(active) + pending >= MAX_STREAMS_PER_DEVICE:
                    return (f"too_many_streams: device {msg.device_id!r} has {MAX_STREAMS_PER_DEVICE} active "
                            "streams already")  # fmt: skip
                st.new_streams.add(key)
        if msg.run_id not in st.run_owner:
            row = w.execute("SELECT device_id FROM runs WHERE run_id = ?", (msg.run_id,)).fetchone()
            count, owner = w.execute(
                "SELECT COUNT(*), MIN(device_id) FROM windows WHERE run_id = ?", (msg.run_id,)
            ).fetchone()
            st.run_owner[msg.run_id] = row[0] if row is not None else owner
            st.run_windows[msg.run_id] = int(count)
        owner = st.run_owner[msg.run_id]
        if owner is not None and owner != msg.device_id:
            return f"foreign_run: run {msg.run_id!r} belongs to another device"
        if isinstance(msg, WindowSummary) and st.run_windows[msg.run_id] >= MAX_WINDOWS_PER_RUN:
            return f"run_full: run {msg.run_id!r} holds {MAX_WINDOWS_PER_RUN} windows already"
        return None

    def _note(self, msg: StoredMsg, received_at: float, st: _BatchState) -> None:
        if isinstance(msg, WindowSummary):
            st.touched_runs.add(msg.run_id)
            st.run_windows[msg.run_id] += 1
            st.new_windows += 1
        st.run_owner.setdefault(msg.run_id, msg.device_id)
        if st.run_owner[msg.run_id] is None:
            st.run_owner[msg.run_id] = msg.device_id
        key = (msg.device_id, msg.stream_id)
        if key not in st.max_seq or msg.seq > st.max_seq[key][0]:
            st.max_seq[key] = (msg.seq, received_at)
        dv = st.devices.get(msg.device_id)
        st.devices[msg.device_id] = (
            min(dv[0], received_at) if dv else received_at, max(dv[1], received_at) if dv else received_at,
            msg.runner if msg.runner is not None else (dv[2] if dv else None),
        )  # fmt: skip
        if msg.runner is not None:
            r = st.runners.get(msg.runner)
            t = msg.device_time
            st.runners[msg.runner] = (
                min(r[0], t) if r else t, max(r[1], t) if r else t,
                msg.body_mass_kg if msg.body_mass_kg is not None else (r[2] if r else None),
            )  # fmt: skip

    def _insert_one(self, w: Conn, msg: StoredMsg, received_at: float, raw: str | None) -> bool:
        cur = w.execute(
            "INSERT INTO messages(msg_id, device_id, stream_id, seq, kind, run_id, received_at) "
            "VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (msg.msg_id, msg.device_id, msg.stream_id, msg.seq, msg.kind, msg.run_id, received_at),
        )
        if cur.rowcount == 0:
            return False
        m = pooled_measures(msg).as_dict()
        if isinstance(msg, WindowSummary):
            row = {
                "msg_id": msg.msg_id, "run_id": msg.run_id, "device_id": msg.device_id, "runner": msg.runner,
                "window_index": msg.window_index, "t_start": msg.t_start, "t_end": msg.t_end,
                "activity": msg.activity, **m,
            }  # fmt: skip
            # The message's ledger row stays either way: a later copy of a stored window slot is a duplicate.
            return self._insert_window(w, msg, [row[c] for c in WINDOW_COLS], raw)
        row = {
            "run_id": msg.run_id, "device_id": msg.device_id, "runner": msg.runner,
            "started_at": msg.started_at, "ended_at": msg.ended_at, "duration_s": msg.duration_s,
            "windows": msg.windows, **m, "profile": msg.profile, "complete": 1, "updated_at": received_at,
        }  # fmt: skip
        cols = [*RUN_COLS, "summary_json"]
        w.execute(
            f"INSERT INTO runs({','.join(cols)}) VALUES ({','.join('?' * len(cols))}) "
            f"ON CONFLICT(run_id) DO UPDATE SET {','.join(f'{c}=excluded.{c}' for c in cols[1:])}",
            [*(row[c] for c in RUN_COLS), msg.model_dump_json()],  # complete, with defaults, for the API
        )
        return True

    def _insert_window(self, w: Conn, msg: WindowSummary, values: list[Any], raw: str | None) -> bool:
        cols = ",".join([*WINDOW_COLS, "json"])
        marks = ",".join("?" * len(WINDOW_COLS))
        conflict = "ON CONFLICT(run_id, window_index) DO NOTHING"
        text = raw if raw is not None else msg.model_dump_json()
        if self.db.name == "sqlite":
            try:
                # SQLite splits the step records off in C (same functions as migration 0004): no re-parse here.
                cur = w.execute(
                    f"INSERT INTO windows({cols}) VALUES ({marks}, json_remove(?, '$.step_records')) {conflict}",
                    [*values, text],
                )
                if cur.rowcount == 1 and msg.step_records:
                    w.execute(
                        "INSERT INTO window_steps(msg_id, run_id, window_index, n, records) "
                        "VALUES (?, ?, ?, ?, json_extract(?, '$.step_records'))",
                        (msg.msg_id, msg.run_id, msg.window_index, len(msg.step_records), text),
                    )
            except self.db.errors as err:  # JSON SQLite cannot read: this message alone is rejected
                if "JSON" not in str(err):
                    raise
                raise ValueError(f"window {msg.msg_id}: SQLite cannot read its JSON ({err})") from None
            return bool(cur.rowcount == 1)
        # PostgreSQL: the text as received (checked by the json type's parser, kept verbatim) unless it names step
        # records, which then go to their own table.
        if '"step_records"' in text:
            text = msg.model_dump_json(exclude={"step_records"})
        try:
            cur = w.execute(f"INSERT INTO windows({cols}) VALUES ({marks}, CAST(? AS json)::text) {conflict}",
                            [*values, text])  # fmt: skip
        except self.db.row_errors as err:
            if "json" not in str(err).lower():
                raise
            raise ValueError(
                f"window {msg.msg_id}: the database cannot read its JSON ({str(err).splitlines()[0]})"
            ) from None
        if cur.rowcount == 1 and msg.step_records:
            w.execute(
                "INSERT INTO window_steps(msg_id, run_id, window_index, n, records) VALUES (?, ?, ?, ?, ?)",
                (msg.msg_id, msg.run_id, msg.window_index, len(msg.step_records),
                 _RECORDS.dump_json(msg.step_records).decode()),
            )  # fmt: skip
        return bool(cur.rowcount == 1)

    def _reaggregate_run(self, w: Conn, run_id: str) -> None:
        """Keep an incomplete run's row current from its windows (the RunSummary, once here, wins)."""
        done = w.execute("SELECT complete FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if done is not None and done[0]:
            return
        agg = dict(w.execute(_RUN_FROM_WINDOWS_SQL, (run_id,)).fetchone())
        if not agg["windows"]:
            return
        row = {
            "run_id": run_id, **agg, "duration_s": max(0.0, agg["ended_at"] - agg["started_at"]),
            "profile": None, "complete": 0, "updated_at": time.time(),
        }  # fmt: skip
        for k in _INT_RUN_COLS:
            row[k] = int(row[k] or 0)
        w.execute(
            f"INSERT INTO runs({','.join(RUN_COLS)}) VALUES ({','.join('?' * len(RUN_COLS))}) "
            f"ON CONFLICT(run_id) DO UPDATE SET {','.join(f'{c}=excluded.{c}' for c in RUN_COLS[1:])}",
            [row[c] for c in RUN_COLS],
        )

    def _advance_stream(self, w: Conn, device_id: str, stream_id: str) -> None:
        """Move the stream's contiguous seq forward over what is stored; give up on gaps older than
        ``GAP_GIVE_UP_S`` (the agent can no longer send them) so acks stop asking for them forever."""
        lock = " FOR UPDATE" if self.db.name == "postgresql" else ""
        row = w.execute(
            f"SELECT contiguous_seq FROM streams WHERE device_id = ? AND stream_id = ?{lock}", (device_id, stream_id)
        ).fetchone()
        if row is None:
            return
        start = contiguous = int(row[0])
        abandoned = 0
        now = time.time()
        stop = False
        while not stop:
            chunk = w.execute(
                "SELECT seq, received_at FROM messages WHERE device_id = ? AND stream_id = ? AND seq > ? "
                "ORDER BY seq LIMIT 1000",
                (device_id, stream_id, contiguous),
            ).fetchall()
            for seq, received_at in chunk:
                if seq != contiguous + 1:
                    if now - received_at < GAP_GIVE_UP_S:
                        stop = True
                        break
                    log.warning(
                        "stream %s/%s: seq %d–%d never arrived within %.0f days; no longer asking for them",
                        device_id, stream_id, contiguous + 1, seq - 1, GAP_GIVE_UP_S / 86400,
                    )  # fmt: skip
                    abandoned += seq - 1 - contiguous
                contiguous = seq
            stop = stop or len(chunk) < 1000
        if contiguous != start:
            w.execute(
                "UPDATE streams SET contiguous_seq = ?, abandoned = abandoned + ? "
                "WHERE device_id = ? AND stream_id = ? AND contiguous_seq < ?",
                (contiguous, abandoned, device_id, stream_id, contiguous),
            )

    def set_device_status(self, device_id: str, status: str, at: float | None = None) -> None:
        """Record a device's retained ``online``/``offline`` status."""
        at = time.time() if at is None else at
        with self._tx() as w:
            w.execute(
                "INSERT INTO devices(device_id, first_seen, last_seen, status, status_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT(device_id) DO UPDATE SET status = excluded.status, status_at = excluded.status_at",
                (device_id, at, at, status[:32], at),
            )


def _unstorable(err: BaseException) -> str:
    """``"out_of_range: …"`` for a number the database cannot hold (SQLite: OverflowError; PostgreSQL:
    numeric_value_out_of_range), else ``"unstorable: …"``."""
    detail = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:200]
    out_of_range = isinstance(err, OverflowError) or getattr(err, "sqlstate", None) == "22003"
    return f"{'out_of_range' if out_of_range else 'unstorable'}: {detail}"
