"""Storing summaries: every ``msg_id`` once, every window slot once, runs kept current, streams advanced.

A batch is two short transactions, each a handful of round trips whatever its size:

1. **The rows** — the ledger ``messages``, ``windows`` (+ their step records) and run summaries, as multi-row
   ``INSERT … ON CONFLICT DO NOTHING RETURNING``. Exactly once, also with several ingest workers on one PostgreSQL
   database: the ledger is unique on ``msg_id`` and on the stream position ``(device_id, stream_id, seq)``,
   ``windows`` on ``(run_id, window_index)``, so a re-sent copy — the same msg_id, a new msg_id on a stored
   position, or a new msg_id for a stored window — is a duplicate, never a second row. These inserts touch no
   row another worker touches, so workers do not wait for each other. When a row cannot be stored (an integer
   beyond 64 bits, text the database refuses), the batch is redone with one SAVEPOINT per message: that message
   alone is rejected and the rest — and everything stored before — stays.
2. **What follows from them** — each stream's highest seq and contiguous seq, the devices' and runners' first/last
   seen, and runs assembled from their windows — under a lock per stream and per run (PostgreSQL transaction
   advisory locks, taken in one sorted statement: no deadlock cycles), each recomputed from the committed rows
   by a statement that starts after the lock is held. So whichever worker stored which seq or window, the last
   one to finish leaves the right figures, and acks (read from ``streams``) follow the database.

Caps (a message beyond one is refused with a reason, stored nothing, acknowledged nothing, so the agent keeps it):
:data:`MAX_WINDOWS_PER_RUN`, :data:`MAX_STREAMS_PER_DEVICE` streams active in the last ``GAP_GIVE_UP_S``, and a run
belongs to the device that started it. A deadlock or serialization failure PostgreSQL still reports retries.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from pydantic import TypeAdapter

from edge_agent.common.measures import MEASURE_COLUMNS, pooled_measures
from edge_agent.contract import StepRecord, WindowSummary, loading_rate_basis
from plugin.store.backend import Conn, lock_id
from plugin.store.base import RUN_COLS, WINDOW_COLS, StoreBase, StoredMsg
from plugin.store.measures_sql import combine_exprs

log = logging.getLogger(__name__)

#: A gap in a stream still open this long after the message above it arrived is given up (docs/design.md §6: the
#: agent keeps unacknowledged rows for up to 30 days by default; a week of asking is plenty on a home network).
GAP_GIVE_UP_S = 7 * 86400.0
#: A run holds at most this many windows (55 h at the agent's default 10 s windows).
MAX_WINDOWS_PER_RUN = 20_000
#: A device may have at most this many streams (outbox databases) active within ``GAP_GIVE_UP_S``.
MAX_STREAMS_PER_DEVICE = 32
#: Rows per multi-row INSERT (SQLite allows 32,766 parameters per statement; a window row has 35).
CHUNK = 400
_RECORDS: TypeAdapter[list[StepRecord]] = TypeAdapter(list[StepRecord])
_INT_COLS = frozenset({"windows", "steps", "valr_n", "vilr_n", "contact_n", "peak_force_n", "si_left_n",
                       "si_right_n", "rearfoot", "midfoot", "forefoot"})  # fmt: skip
_LEDGER_COLS = ("msg_id", "device_id", "stream_id", "seq", "kind", "run_id", "received_at")
#: PostgreSQL array types of the bulk-inserted columns (the rest are double precision).
_PG_TYPES = {
    **dict.fromkeys(
        ("msg_id", "device_id", "stream_id", "kind", "run_id", "runner", "activity", "lr_basis", "json"), "text"
    ),
    **dict.fromkeys(("seq", "window_index", *_INT_COLS), "bigint"),
}
_RUN_CONFLICT = f"ON CONFLICT(run_id) DO UPDATE SET {','.join(f'{c}=excluded.{c}' for c in RUN_COLS[1:])}"
T = TypeVar("T")

# Runs assembled from their windows while their RunSummary has not arrived (yet): the pooled measures combined as
# edge_agent.common.measures.COMBINE defines; a run whose RunSummary is stored (complete = 1) is left alone.
_AGG = {
    "run_id": "run_id", "device_id": "MAX(device_id)", "runner": "MAX(runner)", "started_at": "MIN(t_start)",
    "ended_at": "MAX(t_end)", "duration_s": "MAX(t_end) - MIN(t_start)", "windows": "COUNT(*)",
    "lr_basis": "MAX(lr_basis)", "profile": "NULL", "complete": "0", "updated_at": "?",
}  # fmt: skip


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _in(n: int) -> str:
    return "(" + ",".join("?" * n) + ")"


class _BatchState:
    """What one batch learns while it goes (caps, first/last seen), written by its second transaction."""

    def __init__(self) -> None:
        self.touched_runs: set[str] = set()
        self.touched_streams: set[tuple[str, str]] = set()
        self.max_seq: dict[tuple[str, str], tuple[int, float]] = {}
        self.devices: dict[str, tuple[float, float, str | None]] = {}
        self.runners: dict[str, tuple[float, float, float | None]] = {}
        self.run_windows: dict[str, int] = {}
        self.run_owner: dict[str, str | None] = {}
        self.streams: dict[str, dict[str, float]] = {}  # device → its stream ids → updated_at
        self.new_streams: set[tuple[str, str]] = set()
        self.new_windows = 0


class SummaryWrites(StoreBase):
    #: Name of this writer's row in ``store_counters`` (one per worker: no contention between workers).
    shard: str = "main"
    _known_streams: set[tuple[str, str]]

    def insert_message(self, msg: StoredMsg, received_at: float | None = None) -> bool:
        """Store one summary; False when it is a duplicate (its ``msg_id``, stream position or window slot)."""
        return self.store_batch([(msg, received_at if received_at is not None else time.time())])[0] is True

    def insert_many(self, msgs: Iterable[StoredMsg | tuple[StoredMsg, float]]) -> int:
        """Store many summaries in one batch; returns how many were new."""
        now = time.time()
        items = [m if isinstance(m, tuple) else (m, now) for m in msgs]
        return sum(1 for r in self.store_batch(items) if r is True)

    def store_batch(
        self, items: Sequence[tuple[StoredMsg, float] | tuple[StoredMsg, float, str | None]]
    ) -> list[bool | str]:
        """Store a batch. Per item: True = stored, False = duplicate, str = ``"reason: detail"`` why it was not
        stored (that item alone; the rest of the batch commits).

        A window may carry the already-validated JSON text it was parsed from; it is stored as received (saves
        re-serialising on the ingest hot path), otherwise the model is serialised.
        """
        norm = [(it[0], it[1], it[2] if len(it) > 2 else None) for it in items]  # type: ignore[misc]
        if not norm:
            return []

        def rows() -> tuple[list[bool | str], _BatchState]:
            try:  # fast path: the whole batch in a few statements
                return self._store_rows(norm, careful=False)
            except self.db.row_errors:  # a row the database cannot take: one SAVEPOINT per message
                return self._store_rows(norm, careful=True)

        results, st = self._retrying(rows)
        self._retrying(lambda: self._follow_up(st))
        self._known_streams.update(st.new_streams)
        if len(self._known_streams) > 100_000:
            self._known_streams.clear()
        return results

    def _retrying(self, fn: Callable[[], T]) -> T:
        for attempt in range(8):
            try:
                return fn()
            except self.db.retry_errors as err:
                if attempt == 7:
                    raise
                log.info("store %s: transaction retried after %s", self.where, type(err).__name__)
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")

    # -- 1. the rows ---------------------------------------------------------------------------------------------
    def _store_rows(
        self, items: list[tuple[StoredMsg, float, str | None]], careful: bool
    ) -> tuple[list[bool | str], _BatchState]:
        st = _BatchState()
        results: list[bool | str] = [False] * len(items)
        with self._tx() as w:
            self._prefetch(w, items, st)
            todo: list[int] = []
            for i, (msg, _, _) in enumerate(items):
                st.touched_streams.add((msg.device_id, msg.stream_id))
                refused = self._refuse(msg, st)
                if refused is not None:
                    results[i] = refused
                else:
                    todo.append(i)
            if careful:
                for i in todo:
                    msg, received_at, raw = items[i]
                    w.execute("SAVEPOINT m")
                    try:
                        new = self._insert_rows(w, [(msg, received_at, raw)])[0]
                    except self.db.row_errors as err:
                        w.execute("ROLLBACK TO SAVEPOINT m")
                        w.execute("RELEASE SAVEPOINT m")
                        results[i] = _unstorable(err)
                        continue
                    w.execute("RELEASE SAVEPOINT m")
                    results[i] = new
            else:
                for i, new in zip(todo, self._insert_rows(w, [items[i] for i in todo]), strict=True):
                    results[i] = new
            for i in todo:
                if results[i] is True:
                    self._note(items[i][0], items[i][1], st)
            if st.new_windows:
                self._count(w, "summaries", st.new_windows)
        return results, st

    def _prefetch(self, w: Conn, items: list[tuple[StoredMsg, float, str | None]], st: _BatchState) -> None:
        """The batch's devices' streams and its runs' owners and window counts, in three queries."""
        devices = sorted({m.device_id for m, _, _ in items})
        for chunk in _chunks(devices):
            for dev, stream, at in w.execute(
                f"SELECT device_id, stream_id, updated_at FROM streams WHERE device_id IN {_in(len(chunk))}", chunk
            ):
                st.streams.setdefault(dev, {})[stream] = float(at)
        runs = sorted({m.run_id for m, _, _ in items})
        for chunk in _chunks(runs):
            for run_id, owner in w.execute(f"SELECT run_id, device_id FROM runs WHERE run_id IN {_in(len(chunk))}",
                                           chunk):  # fmt: skip
                st.run_owner[run_id] = owner
            for run_id, n, owner in w.execute(
                f"SELECT run_id, COUNT(*), MIN(device_id) FROM windows WHERE run_id IN {_in(len(chunk))} "
                "GROUP BY run_id",
                chunk,
            ):
                st.run_windows[run_id] = int(n)
                st.run_owner.setdefault(run_id, owner)

    def _refuse(self, msg: StoredMsg, st: _BatchState) -> str | None:
        """Why this message may not be stored (a cap, another device's run), or None."""
        key = (msg.device_id, msg.stream_id)
        known = st.streams.get(msg.device_id, {})
        if msg.stream_id not in known and key not in st.new_streams:
            cutoff = time.time() - GAP_GIVE_UP_S
            active = sum(1 for at in known.values() if at > cutoff)
            pending = sum(1 for dev, _ in st.new_streams if dev == msg.device_id)
            if active + pending >= MAX_STREAMS_PER_DEVICE:
                return f"too_many_streams: device {msg.device_id!r} has {MAX_STREAMS_PER_DEVICE} active streams"
            st.new_streams.add(key)
        owner = st.run_owner.get(msg.run_id)
        if owner is not None and owner != msg.device_id:
            return f"foreign_run: run {msg.run_id!r} belongs to another device"
        if isinstance(msg, WindowSummary):
            if st.run_windows.get(msg.run_id, 0) >= MAX_WINDOWS_PER_RUN:
                return f"run_full: run {msg.run_id!r} holds {MAX_WINDOWS_PER_RUN} windows already"
            st.run_windows[msg.run_id] = st.run_windows.get(msg.run_id, 0) + 1  # counted while deciding
        st.run_owner.setdefault(msg.run_id, msg.device_id)
        return None

    def _note(self, msg: StoredMsg, received_at: float, st: _BatchState) -> None:
        if isinstance(msg, WindowSummary):
            st.touched_runs.add(msg.run_id)
            st.new_windows += 1
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

    def _count(self, w: Conn, name: str, delta: int) -> None:
        w.execute(
            "INSERT INTO store_counters(name, shard, value) VALUES (?,?,?) ON CONFLICT(name, shard) "
            "DO UPDATE SET value = store_counters.value + excluded.value",
            (name, self.shard, delta),
        )

    def _insert_rows(self, w: Conn, items: list[tuple[StoredMsg, float, str | None]]) -> list[bool]:
        """Ledger rows, then windows and run summaries for the messages the ledger took; True = stored. A msg_id
        that comes twice in one batch is stored once: its first copy."""
        all_items = items
        firsts: dict[str, int] = {}
        for i, (m, _, _) in enumerate(items):
            firsts.setdefault(m.msg_id, i)
        first_of = set(firsts.values())
        items = [it for i, it in enumerate(items) if i in first_of]  # the rest are duplicates (False below)
        ledger = [(m.msg_id, m.device_id, m.stream_id, m.seq, m.kind, m.run_id, at) for m, at, _ in items]
        new_ids = self._bulk_insert(w, "messages", _LEDGER_COLS, ledger, "ON CONFLICT DO NOTHING")
        windows = [(m, raw) for m, _, raw in items if m.msg_id in new_ids and isinstance(m, WindowSummary)]
        stored = self._insert_windows(w, windows)  # type: ignore[arg-type]
        runs = [(m, at) for m, at, _ in items if m.msg_id in new_ids and not isinstance(m, WindowSummary)]
        if runs:
            cols = [*RUN_COLS, "summary_json"]
            rows = []
            for msg, received_at in runs:
                row = {
                    "run_id": msg.run_id, "device_id": msg.device_id, "runner": msg.runner,
                    "started_at": msg.started_at, "ended_at": msg.ended_at, "duration_s": msg.duration_s,  # type: ignore[union-attr]
                    "windows": msg.windows, **pooled_measures(msg).as_dict(), "profile": msg.profile,  # type: ignore[union-attr]
                    "lr_basis": loading_rate_basis(msg), "complete": 1, "updated_at": received_at,
                }  # fmt: skip
                rows.append([*(row[c] for c in RUN_COLS), msg.model_dump_json()])  # complete, with defaults
                stored.add(msg.msg_id)
            update = ",".join(f"{c}=excluded.{c}" for c in cols[1:])
            sql = f"INSERT INTO runs({','.join(cols)}) VALUES {_in(len(cols))} ON CONFLICT(run_id) DO UPDATE SET "
            w.executemany(sql + update, rows)
        # A message the ledger took whose window slot was stored already stays in the ledger: a duplicate.
        return [i in first_of and m.msg_id in stored for i, (m, _, _) in enumerate(all_items)]

    def _bulk_insert(
        self, w: Conn, table: str, cols: Sequence[str], rows: Sequence[Sequence[Any]], conflict: str
    ) -> set[str]:
        """Insert ``rows`` (first column: ``msg_id``) with ``conflict``; the msg_ids actually inserted. SQLite:
        multi-row VALUES; PostgreSQL: one ``unnest`` of typed arrays per column (a short statement whatever the
        batch)."""
        if not rows:
            return set()
        json_sql = "json_remove(?, '$.step_records')" if self.db.name == "sqlite" else "CAST(? AS json)::text"
        if self.db.name == "sqlite":
            out: set[str] = set()
            marks = "(" + ",".join("?" if c != "json" else json_sql for c in cols) + ")"
            for chunk in _chunks(rows):
                sql = f"INSERT INTO {table}({','.join(cols)}) VALUES {','.join([marks] * len(chunk))} {conflict} "
                out.update(r[0] for r in w.execute(sql + "RETURNING msg_id", [x for row in chunk for x in row]))
            return out
        # %b: binary parameters — the text format would escape every character of every JSON document.
        arrays = ",".join(f"%b::{_PG_TYPES.get(c, 'float8')}[]" for c in cols)
        select = ",".join("CAST(json AS json)::text" if c == "json" else c for c in cols)
        sql = (f"INSERT INTO {table}({','.join(cols)}) SELECT {select} FROM unnest({arrays}) AS u({','.join(cols)}) "
               f"{conflict} RETURNING msg_id")  # fmt: skip
        cur = w.raw.execute(sql, [list(col) for col in zip(*rows, strict=True)])  # type: ignore[attr-defined]
        return {r[0] for r in cur}

    def _insert_windows(self, w: Conn, windows: list[tuple[WindowSummary, str | None]]) -> set[str]:
        if not windows:
            return set()
        sqlite = self.db.name == "sqlite"
        # SQLite splits the step records off in C (json_remove/json_extract, as migration 0004): no re-parse.
        # PostgreSQL checks the text with the json type's parser and keeps it verbatim; a window that carries step
        # records is serialised without them (the records go to their own table).
        texts: dict[str, str] = {}
        rows = []
        for msg, raw in windows:
            text = raw if raw is not None else msg.model_dump_json()
            texts[msg.msg_id] = text
            if not sqlite and msg.step_records:
                text = msg.model_dump_json(exclude={"step_records"})
            m = pooled_measures(msg)
            rows.append((msg.msg_id, msg.run_id, msg.device_id, msg.runner, msg.window_index, msg.t_start, msg.t_end,
                         msg.activity, *(getattr(m, c) for c in MEASURE_COLUMNS), loading_rate_basis(msg),
                         text))  # fmt: skip
        try:
            stored = self._bulk_insert(w, "windows", (*WINDOW_COLS, "json"), rows,
                                       "ON CONFLICT(run_id, window_index) DO NOTHING")  # fmt: skip
        except self.db.errors as err:  # JSON the database cannot read: the careful path names the window
            if "json" not in str(err).lower():
                raise
            names = windows[0][0].msg_id if len(windows) == 1 else f"{len(windows)} windows"
            detail = str(err).splitlines()[0]
            raise ValueError(f"window {names}: the database cannot read its JSON ({detail})") from None
        steps = [m for m, _ in windows if m.msg_id in stored and m.step_records]
        if steps:
            if sqlite:
                w.executemany(
                    "INSERT INTO window_steps(msg_id, run_id, window_index, n, records) "
                    "VALUES (?, ?, ?, ?, json_extract(?, '$.step_records'))",
                    [(m.msg_id, m.run_id, m.window_index, len(m.step_records), texts[m.msg_id]) for m in steps],
                )
            else:
                w.executemany(
                    "INSERT INTO window_steps(msg_id, run_id, window_index, n, records) VALUES (?, ?, ?, ?, ?)",
                    [(m.msg_id, m.run_id, m.window_index, len(m.step_records),
                      _RECORDS.dump_json(m.step_records).decode()) for m in steps],
                )  # fmt: skip
        return stored

    # -- 2. what follows from the rows -----------------------------------------------------------------------------
    def _follow_up(self, st: _BatchState) -> None:
        streams = sorted(st.touched_streams)
        runs = sorted(st.touched_runs)
        if not streams and not runs:
            return
        d = self.db.dialect
        with self._tx() as w:
            if self.db.name == "postgresql":
                # What this transaction writes is recomputed from the rows of step 1, which are durable already:
                # losing it in a crash only delays the figures to the next batch (acks never claim more than the
                # durable rows), so it need not wait for its own WAL flush.
                w.execute("SET LOCAL synchronous_commit = off")
                keys = sorted({lock_id(f"footfall:stream:{a}/{b}") for a, b in streams}
                              | {lock_id(f"footfall:run:{r}") for r in runs})  # fmt: skip
                w.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(?::bigint[]) AS k ORDER BY k", (keys,))
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
            for chunk in _chunks(runs):
                self._reaggregate_runs(w, list(chunk))
            self._advance_streams(w, streams)

    def _reaggregate_runs(self, w: Conn, run_ids: list[str]) -> None:
        """Keep incomplete runs current from their windows, in one statement (a stored RunSummary wins)."""
        exprs = {**_AGG, **combine_exprs("windows")}
        select = ", ".join(
            f"COALESCE({exprs[c]}, 0)" if c in _INT_COLS and c != "windows" else exprs[c] for c in RUN_COLS
        )
        w.execute(
            f"INSERT INTO runs({','.join(RUN_COLS)}) SELECT {select} FROM windows WHERE run_id IN {_in(len(run_ids))} "
            f"GROUP BY run_id {_RUN_CONFLICT} WHERE runs.complete = 0",
            [time.time(), *run_ids],
        )

    def _advance_streams(self, w: Conn, streams: list[tuple[str, str]]) -> None:
        """Move each stream's contiguous seq forward over what is stored (one query for all of them); give up on
        gaps older than ``GAP_GIVE_UP_S`` (the agent can no longer send them) so acks stop asking for them."""
        now = time.time()
        updates = []
        for chunk in _chunks(streams, 200):
            pairs = ",".join(["(?,?)"] * len(chunk))
            args = [x for pair in chunk for x in pair]
            current = {
                (r[0], r[1]): int(r[2])
                for r in w.execute(
                    f"SELECT device_id, stream_id, contiguous_seq FROM streams WHERE (device_id, stream_id) IN "
                    f"(VALUES {pairs})",
                    args,
                )
            }
            above: dict[tuple[str, str], list[tuple[int, float]]] = {}
            limit = 50_000
            rows = w.execute(
                "SELECT m.device_id, m.stream_id, m.seq, m.received_at FROM messages m JOIN streams s "
                "ON s.device_id = m.device_id AND s.stream_id = m.stream_id "
                f"WHERE (s.device_id, s.stream_id) IN (VALUES {pairs}) AND m.seq > s.contiguous_seq "
                "ORDER BY m.device_id, m.stream_id, m.seq LIMIT ?",
                [*args, limit],
            ).fetchall()
            for dev, stream, seq, at in rows:
                above.setdefault((dev, stream), []).append((int(seq), float(at)))
            truncated = (rows[-1][0], rows[-1][1]) if len(rows) == limit else None
            for key, start in current.items():
                contiguous, abandoned = start, 0
                for seq, received_at in above.get(key, []):
                    if seq != contiguous + 1:
                        if now - received_at < GAP_GIVE_UP_S:
                            break
                        log.warning(
                            "stream %s/%s: seq %d–%d never arrived within %.0f days; no longer asking for them",
                            key[0], key[1], contiguous + 1, seq - 1, GAP_GIVE_UP_S / 86400,
                        )  # fmt: skip
                        abandoned += seq - 1 - contiguous
                    contiguous = seq
                if contiguous != start:
                    updates.append((contiguous, abandoned, key[0], key[1], contiguous))
            if truncated is not None:
                log.info("store %s: stream %s/%s advances over the next batches", self.where, *truncated)
        w.executemany(
            "UPDATE streams SET contiguous_seq = ?, abandoned = abandoned + ? "
            "WHERE device_id = ? AND stream_id = ? AND contiguous_seq < ?",
            updates,
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
