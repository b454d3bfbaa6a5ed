"""SQLite store of the dashboard plugin: every summary once (deduped by ``msg_id``), runs, alerts, settings.

Why this shape:
- WAL mode, ONE writer connection behind a lock (SQLite allows one writer anyway) and one reader connection per
  thread, so the web app's handlers (``asyncio.to_thread``) never block ingest and never see half a batch.
- Each message is inserted inside its own SAVEPOINT of the batch transaction: a row SQLite cannot store (e.g. an
  integer beyond 64 bits) is rejected alone and the rest of the batch — and everything already stored — stays.
- Measures are flattened into indexed columns (step-weighted over both feet, see :func:`_measures`) so trends
  are SQL aggregates; the message itself is kept as JSON for the run detail page.
- A window's per-step records (up to 2,000 each; ~3 MB for a 10,000-step run) live in ``window_steps``, split
  off the window JSON by SQLite at insert time (migration 0004 did the same for older rows): only a request for
  the records parses them, so the run page without steps, trends and the risk engine never do.
- Migrations are numbered ``.sql`` files in ``plugin/migrations`` applied in order, each in one transaction
  with its ``schema_version`` row; a database newer than this code is refused instead of guessed at.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pydantic_core

from edge_agent.contract import Alert, FootStats, RunSummary, WindowSummary, loading_rate_basis
from plugin.export import rows_to_csv

log = logging.getLogger(__name__)

StoredMsg = WindowSummary | RunSummary

#: A gap in a stream still open this long after the message above it arrived is given up (docs/design.md §6: the
#: agent keeps unacknowledged rows for up to 30 days by default; a week of asking is plenty on a home network).
GAP_GIVE_UP_S = 7 * 86400.0
#: Ack messages may name at most this many missing ranges (``Ack.missing`` max_length).
MAX_MISSING_RANGES = 256

_MEASURE_COLS = (
    "steps", "cadence_spm", "duty_factor", "valr_mean", "valr_n", "valr_p90", "valr_max", "vilr_mean", "vilr_n",
    "contact_ms", "contact_n", "peak_force_bw", "si_left", "si_left_n", "si_right", "si_right_n",
    "rearfoot", "midfoot", "forefoot", "asym_contact_pct", "asym_valr_pct", "asym_si_pct",
    "asym_peak_force_pct", "body_mass_kg", "valr_lo", "valr_hi", "lr_basis",
)  # fmt: skip
RUN_COLS = (
    "run_id", "device_id", "runner", "started_at", "ended_at", "duration_s", "windows", *_MEASURE_COLS,
    "profile", "complete", "updated_at",
)  # fmt: skip
WINDOW_COLS = (
    "msg_id", "run_id", "device_id", "runner", "window_index", "t_start", "t_end", "activity", *_MEASURE_COLS,
)  # fmt: skip


#: Errors caused by one message's values (not by the database): that message alone is rejected.
_ROW_ERRORS = (sqlite3.IntegrityError, sqlite3.InterfaceError, OverflowError, ValueError, TypeError)


def run_filters(
    device_id: str | None, runner: str | None, since: float | None, until: float | None, col: str
) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause (or "") and its arguments for the usual run filters; ``col`` is the time column."""
    where: list[str] = []
    args: list[Any] = []
    if device_id is not None:
        where.append("device_id = ?")
        args.append(device_id)
    if runner is not None:
        where.append("runner = ?")
        args.append(runner)
    if since is not None:
        where.append(f"{col} >= ?")
        args.append(float(since))
    if until is not None:
        where.append(f"{col} < ?")
        args.append(float(until))
    return (" WHERE " + " AND ".join(where)) if where else "", args


class StoreError(RuntimeError):
    """The database cannot be used as asked (corrupt, newer schema, bad row); the message says where."""


def _wmean(pairs: Iterable[tuple[float | None, int]]) -> tuple[float | None, int]:
    """Mean of per-foot means weighted by their step counts; (None, 0) when nothing was measured."""
    total = 0.0
    n = 0
    for value, count in pairs:
        if value is not None and count > 0:
            total += value * count
            n += count
    return (total / n if n else None), n


def _measures(msg: StoredMsg) -> dict[str, Any]:
    """Flatten a window or run into the indexed measure columns.

    Both feet are pooled step-weighted (mean of L and R weighted by their step counts). The pooled p90 is the
    step-weighted mean of the two feet's p90 — an approximation (exact pooled percentiles need the steps),
    documented in docs/plugin.md; max is exact.
    """
    left: FootStats = msg.left
    right: FootStats = msg.right
    valr, valr_n = _wmean([(left.valr_bw_s.mean, left.valr_bw_s.n), (right.valr_bw_s.mean, right.valr_bw_s.n)])
    p90, _ = _wmean([(left.valr_bw_s.p90, left.valr_bw_s.n), (right.valr_bw_s.p90, right.valr_bw_s.n)])
    maxes = [m for m in (left.valr_bw_s.max, right.valr_bw_s.max) if m is not None]
    vilr, vilr_n = _wmean([(left.vilr_bw_s.mean, left.vilr_bw_s.n), (right.vilr_bw_s.mean, right.vilr_bw_s.n)])
    contact, contact_n = _wmean(
        [(left.contact_ms.mean, left.contact_ms.n), (right.contact_ms.mean, right.contact_ms.n)]
    )
    peak, _ = _wmean(
        [(left.peak_force_bw.mean, left.peak_force_bw.n), (right.peak_force_bw.mean, right.peak_force_bw.n)]
    )
    a = msg.asymmetry
    return {
        "steps": msg.steps,
        "cadence_spm": msg.cadence_spm,
        "duty_factor": msg.duty_factor,
        "valr_mean": valr,
        "valr_n": valr_n,
        "valr_p90": p90,
        "valr_max": max(maxes) if maxes else None,
        "vilr_mean": vilr,
        "vilr_n": vilr_n,
        "contact_ms": contact,
        "contact_n": contact_n,
        "peak_force_bw": peak,
        "si_left": left.strike_index.mean,
        "si_left_n": left.strike_index.n if left.strike_index.mean is not None else 0,
        "si_right": right.strike_index.mean,
        "si_right_n": right.strike_index.n if right.strike_index.mean is not None else 0,
        "rearfoot": left.zones.rearfoot + right.zones.rearfoot,
        "midfoot": left.zones.midfoot + right.zones.midfoot,
        "forefoot": left.zones.forefoot + right.zones.forefoot,
        "asym_contact_pct": a.contact_ms_pct,
        "asym_valr_pct": a.valr_pct,
        "asym_si_pct": a.strike_index_pct,
        "asym_peak_force_pct": a.peak_force_pct,
        "body_mass_kg": msg.body_mass_kg,
        # contract v2: the bias-aware mean's interval, and what this VALR may be compared with
        "valr_lo": msg.valr.lo if msg.valr is not None else None,
        "valr_hi": msg.valr.hi if msg.valr is not None else None,
        "lr_basis": loading_rate_basis(msg),
    }


def window_measures(msg: WindowSummary) -> dict[str, Any]:
    """The pooled measures of one window (what the risk engine compares), same definitions as the store."""
    return _measures(msg)


# Aggregates a run from its windows when the RunSummary has not arrived (yet): sums for counts, step-weighted
# means for per-step measures, duration-weighted cadence.
_RUN_FROM_WINDOWS_SQL = """
SELECT MIN(t_start), MAX(t_end), COUNT(*), SUM(steps),
  SUM(cadence_spm * (t_end - t_start)) / NULLIF(SUM(CASE WHEN cadence_spm IS NOT NULL THEN t_end - t_start END), 0),
  SUM(duty_factor * steps) / NULLIF(SUM(CASE WHEN duty_factor IS NOT NULL THEN steps END), 0),
  SUM(valr_mean * valr_n) / NULLIF(SUM(valr_n), 0), SUM(valr_n),
  SUM(valr_p90 * valr_n) / NULLIF(SUM(CASE WHEN valr_p90 IS NOT NULL THEN valr_n END), 0), MAX(valr_max),
  SUM(vilr_mean * vilr_n) / NULLIF(SUM(vilr_n), 0), SUM(vilr_n),
  SUM(contact_ms * contact_n) / NULLIF(SUM(contact_n), 0), SUM(contact_n),
  SUM(peak_force_bw * contact_n) / NULLIF(SUM(CASE WHEN peak_force_bw IS NOT NULL THEN contact_n END), 0),
  SUM(si_left * si_left_n) / NULLIF(SUM(si_left_n), 0), SUM(si_left_n),
  SUM(si_right * si_right_n) / NULLIF(SUM(si_right_n), 0), SUM(si_right_n),
  SUM(rearfoot), SUM(midfoot), SUM(forefoot),
  SUM(asym_contact_pct * steps) / NULLIF(SUM(CASE WHEN asym_contact_pct IS NOT NULL THEN steps END), 0),
  SUM(asym_valr_pct * steps) / NULLIF(SUM(CASE WHEN asym_valr_pct IS NOT NULL THEN steps END), 0),
  SUM(asym_si_pct * steps) / NULLIF(SUM(CASE WHEN asym_si_pct IS NOT NULL THEN steps END), 0),
  SUM(asym_peak_force_pct * steps) / NULLIF(SUM(CASE WHEN asym_peak_force_pct IS NOT NULL THEN steps END), 0),
  MAX(body_mass_kg), MAX(device_id), MAX(runner), MAX(lr_basis)
FROM windows WHERE run_id = ?
"""
_AGG_COLS = (
    "started_at", "ended_at", "windows", "steps", "cadence_spm", "duty_factor", "valr_mean", "valr_n",
    "valr_p90", "valr_max", "vilr_mean", "vilr_n", "contact_ms", "contact_n", "peak_force_bw", "si_left",
    "si_left_n", "si_right", "si_right_n", "rearfoot", "midfoot", "forefoot", "asym_contact_pct",
    "asym_valr_pct", "asym_si_pct", "asym_peak_force_pct", "body_mass_kg", "device_id", "runner", "lr_basis",
)  # fmt: skip


def _migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every ``plugin/migrations/NNNN_name.sql``, in order."""
    out = []
    for entry in sorted((Path(__file__).resolve().parent / "migrations").iterdir()):
        m = re.match(r"^(\d{4})_(\w+)\.sql$", entry.name)
        if m:
            out.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    out.sort()
    versions = [v for v, _, _ in out]
    if versions != list(range(1, len(versions) + 1)):
        raise StoreError(f"plugin/migrations: versions must be 1..N without gaps, found {versions}")
    return out


class Store:
    """The plugin's SQLite database. Thread-safe: one writer behind a lock, one reader per thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._w = self._connect()
            self._w.execute("PRAGMA journal_mode=WAL")
            self._migrate()
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path}: not a usable footfall database ({err})") from None

    # -- connections ------------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=30000")
        # NORMAL in WAL mode: a commit survives a process crash; power loss may lose the last transactions,
        # which the agent then re-sends because they were never acknowledged (acks follow commits).
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _r(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"{self.path}: store is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreError(f"{self.path}: store is closed")
            self._w.execute("BEGIN IMMEDIATE")
            try:
                yield self._w
            except BaseException:
                self._w.execute("ROLLBACK")
                raise
            else:
                self._w.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with self._readers_lock:
                for c in self._readers:
                    with contextlib.suppress(sqlite3.Error):
                        c.close()
                self._readers.clear()
            self._w.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- migrations -------------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        migrations = _migrations()
        with self._lock:
            w = self._w
            w.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at REAL)")
            current = w.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
            newest = migrations[-1][0] if migrations else 0
            if current > newest:
                raise StoreError(
                    f"{self.path}: database schema version {current} is newer than this footfall ({newest}); "
                    "upgrade footfall instead of opening it with an older version"
                )
            for version, name, sql in migrations:
                if version <= current:
                    continue
                # executescript would commit on its own; wrap the whole file and its version row in one tx.
                script = f"BEGIN;\n{sql}\nINSERT INTO schema_version VALUES ({version}, {time.time()});\nCOMMIT;"
                try:
                    w.executescript(script)
                except sqlite3.Error as err:
                    with contextlib.suppress(sqlite3.Error):
                        w.execute("ROLLBACK")
                    raise StoreError(f"{self.path}: migration {version:04d}_{name}.sql failed: {err}") from None
                log.info("store %s: applied migration %04d_%s", self.path, version, name)

    def schema_version(self) -> int:
        return int(self._r().execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    # -- writes -----------------------------------------------------------------------------------------------
    def insert_message(self, msg: StoredMsg, received_at: float | None = None) -> bool:
        """Store one summary; False when its ``msg_id`` is already stored (duplicate)."""
        return self.store_batch([(msg, received_at if received_at is not None else time.time())])[0] is True

    def insert_many(self, msgs: Iterable[StoredMsg | tuple[StoredMsg, float]]) -> int:
        """Store many summaries in one transaction; returns how many were new."""
        now = time.time()
        items = [m if isinstance(m, tuple) else (m, now) for m in msgs]
        return sum(1 for r in self.store_batch(items) if r is True)

    def store_batch(
        self, items: Sequence[tuple[StoredMsg, float] | tuple[StoredMsg, float, str | None]]
    ) -> list[bool | str]:
        """Store a batch in one transaction. Per item: True = stored, False = duplicate, str = why it could not
        be stored (that item alone is rolled back; the rest of the batch commits).

        A window may carry the already-validated JSON text it was parsed from; it is stored as received (saves
        re-serialising on the ingest hot path), otherwise the model is serialised.
        """
        norm = [(it[0], it[1], it[2] if len(it) > 2 else None) for it in items]  # type: ignore[misc]
        try:  # fast path: the whole batch in one go
            return self._store_batch(norm, careful=False)
        except _ROW_ERRORS:  # a row SQLite cannot take: redo with one SAVEPOINT per message
            return self._store_batch(norm, careful=True)

    def _store_batch(self, items: list[tuple[StoredMsg, float, str | None]], careful: bool) -> list[bool | str]:
        results: list[bool | str] = []
        touched_runs: set[str] = set()
        touched_streams: set[tuple[str, str]] = set()
        max_seq: dict[tuple[str, str], tuple[int, float]] = {}
        devices: dict[str, tuple[float, float, str | None]] = {}
        runners: dict[str, tuple[float, float, float | None]] = {}
        with self._tx() as w:
            for msg, received_at, raw in items:
                touched_streams.add((msg.device_id, msg.stream_id))
                if careful:
                    w.execute("SAVEPOINT m")
                    try:
                        new = self._insert_one(w, msg, received_at, raw)
                    except _ROW_ERRORS as err:
                        w.execute("ROLLBACK TO m")
                        w.execute("RELEASE m")
                        results.append(f"unstorable: {type(err).__name__}: {str(err)[:200]}")
                        continue
                    w.execute("RELEASE m")
                else:
                    new = self._insert_one(w, msg, received_at, raw)
                results.append(new)
                if not new:
                    continue
                if isinstance(msg, WindowSummary):
                    touched_runs.add(msg.run_id)
                key = (msg.device_id, msg.stream_id)
                if key not in max_seq or msg.seq > max_seq[key][0]:
                    max_seq[key] = (msg.seq, received_at)
                d = devices.get(msg.device_id)
                devices[msg.device_id] = (
                    min(d[0], received_at) if d else received_at, max(d[1], received_at) if d else received_at,
                    msg.runner if msg.runner is not None else (d[2] if d else None),
                )  # fmt: skip
                if msg.runner is not None:
                    r = runners.get(msg.runner)
                    t = msg.device_time
                    runners[msg.runner] = (
                        min(r[0], t) if r else t, max(r[1], t) if r else t,
                        msg.body_mass_kg if msg.body_mass_kg is not None else (r[2] if r else None),
                    )  # fmt: skip
            w.executemany(
                "INSERT INTO streams(device_id, stream_id, contiguous_seq, max_seq, updated_at) VALUES (?,?,0,?,?) "
                "ON CONFLICT(device_id, stream_id) DO UPDATE SET max_seq = MAX(max_seq, excluded.max_seq), "
                "updated_at = excluded.updated_at",
                [(dev, st, seq, at) for (dev, st), (seq, at) in max_seq.items()],
            )
            w.executemany(
                "INSERT INTO devices(device_id, first_seen, last_seen, last_runner) VALUES (?,?,?,?) "
                "ON CONFLICT(device_id) DO UPDATE SET last_seen = MAX(last_seen, excluded.last_seen), "
                "last_runner = COALESCE(excluded.last_runner, last_runner)",
                [(dev, *v) for dev, v in devices.items()],
            )
            w.executemany(
                "INSERT INTO runners(name, first_seen, last_seen, body_mass_kg) VALUES (?,?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET first_seen = MIN(first_seen, excluded.first_seen), "
                "last_seen = MAX(last_seen, excluded.last_seen), "
                "body_mass_kg = COALESCE(excluded.body_mass_kg, body_mass_kg)",
                [(name, *v) for name, v in runners.items()],
            )
            for run_id in touched_runs:
                self._reaggregate_run(w, run_id)
            for device_id, stream_id in touched_streams:
                self._advance_stream(w, device_id, stream_id)
        return results

    def _insert_one(self, w: sqlite3.Connection, msg: StoredMsg, received_at: float, raw: str | None) -> bool:
        cur = w.execute(
            "INSERT OR IGNORE INTO messages(msg_id, device_id, stream_id, seq, kind, run_id, received_at) "
            "VALUES (?,?,?,?,?,?,?)",
            (msg.msg_id, msg.device_id, msg.stream_id, msg.seq, msg.kind, msg.run_id, received_at),
        )
        if cur.rowcount == 0:
            return False
        m = _measures(msg)
        if isinstance(msg, WindowSummary):
            row = {
                "msg_id": msg.msg_id, "run_id": msg.run_id, "device_id": msg.device_id, "runner": msg.runner,
                "window_index": msg.window_index, "t_start": msg.t_start, "t_end": msg.t_end,
                "activity": msg.activity, **m,
            }  # fmt: skip
            text = raw if raw is not None else msg.model_dump_json()
            cols = [*WINDOW_COLS, "json"]
            try:
                # SQLite splits the step records off in C (same functions as migration 0004): no re-parse here.
                w.execute(
                    f"INSERT INTO windows({','.join(cols)}) VALUES ({','.join('?' * len(WINDOW_COLS))}, "
                    "json_remove(?, '$.step_records'))",
                    [*(row[c] for c in WINDOW_COLS), text],
                )
                if msg.step_records:
                    w.execute(
                        "INSERT INTO window_steps(msg_id, run_id, window_index, n, records) "
                        "VALUES (?, ?, ?, ?, json_extract(?, '$.step_records'))",
                        (msg.msg_id, msg.run_id, msg.window_index, len(msg.step_records), text),
                    )
            except sqlite3.OperationalError as err:  # JSON SQLite cannot read: this message alone is rejected
                if "JSON" not in str(err):
                    raise
                raise ValueError(f"window {msg.msg_id}: SQLite cannot read its JSON ({err})") from None
        else:
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

    def _reaggregate_run(self, w: sqlite3.Connection, run_id: str) -> None:
        """Keep an incomplete run's row current from its windows (the RunSummary, once here, wins)."""
        done = w.execute("SELECT complete FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if done is not None and done[0]:
            return
        agg = dict(zip(_AGG_COLS, w.execute(_RUN_FROM_WINDOWS_SQL, (run_id,)).fetchone(), strict=True))
        if agg["windows"] == 0:
            return
        row = {
            "run_id": run_id, **agg, "duration_s": max(0.0, agg["ended_at"] - agg["started_at"]),
            "profile": None, "complete": 0, "updated_at": time.time(),
            "valr_lo": None, "valr_hi": None,  # a run's interval is not a combination of its windows'
        }  # fmt: skip
        for k in ("windows", "steps", "valr_n", "vilr_n", "contact_n", "si_left_n", "si_right_n",
                  "rearfoot", "midfoot", "forefoot"):  # fmt: skip
            row[k] = int(row[k] or 0)
        w.execute(
            f"INSERT INTO runs({','.join(RUN_COLS)}) VALUES ({','.join('?' * len(RUN_COLS))}) "
            f"ON CONFLICT(run_id) DO UPDATE SET {','.join(f'{c}=excluded.{c}' for c in RUN_COLS[1:])}",
            [row[c] for c in RUN_COLS],
        )

    def _advance_stream(self, w: sqlite3.Connection, device_id: str, stream_id: str) -> None:
        """Move the stream's contiguous seq forward over what is stored; give up on gaps older than
        ``GAP_GIVE_UP_S`` (the agent can no longer send them) so acks stop asking for them forever."""
        row = w.execute(
            "SELECT contiguous_seq FROM streams WHERE device_id = ? AND stream_id = ?", (device_id, stream_id)
        ).fetchone()
        if row is None:
            return
        contiguous = row[0]
        abandoned = 0
        now = time.time()
        for seq, received_at in w.execute(
            "SELECT seq, MIN(received_at) FROM messages WHERE device_id = ? AND stream_id = ? AND seq > ? "
            "GROUP BY seq ORDER BY seq",
            (device_id, stream_id, contiguous),
        ).fetchall():
            if seq != contiguous + 1:
                if now - received_at < GAP_GIVE_UP_S:
                    break
                log.warning(
                    "stream %s/%s: seq %d–%d never arrived within %.0f days; no longer asking for them",
                    device_id, stream_id, contiguous + 1, seq - 1, GAP_GIVE_UP_S / 86400,
                )  # fmt: skip
                abandoned += seq - 1 - contiguous
            contiguous = seq
        if contiguous != row[0]:
            w.execute(
                "UPDATE streams SET contiguous_seq = ?, abandoned = abandoned + ? "
                "WHERE device_id = ? AND stream_id = ?",
                (contiguous, abandoned, device_id, stream_id),
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

    # -- acks -------------------------------------------------------------------------------------------------
    def stream_state(self, device_id: str, stream_id: str) -> tuple[int, list[tuple[int, int]]]:
        """(highest contiguous seq stored, missing inclusive ranges below the highest seq seen) for one stream."""
        conn = self._r()
        row = conn.execute(
            "SELECT contiguous_seq, max_seq FROM streams WHERE device_id = ? AND stream_id = ?",
            (device_id, stream_id),
        ).fetchone()
        if row is None:
            return 0, []
        contiguous, max_seq = int(row[0]), int(row[1])
        missing: list[tuple[int, int]] = []
        expected = contiguous + 1
        for (seq,) in conn.execute(
            "SELECT DISTINCT seq FROM messages WHERE device_id = ? AND stream_id = ? AND seq > ? ORDER BY seq",
            (device_id, stream_id, contiguous),
        ):
            if seq > expected:
                missing.append((expected, seq - 1))
                if len(missing) >= MAX_MISSING_RANGES:
                    break
            expected = seq + 1
        if expected <= max_seq and len(missing) < MAX_MISSING_RANGES:  # only if the newest rows were pruned
            missing.append((expected, max_seq))
        return contiguous, missing

    def streams(self, device_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM streams" + (" WHERE device_id = ?" if device_id else "") + " ORDER BY device_id"
        return [dict(r) for r in self._r().execute(sql, (device_id,) if device_id else ())]

    # -- runs -------------------------------------------------------------------------------------------------

    def list_runs(
        self,
        *,
        device_id: str | None = None,
        runner: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Runs, newest first, as flat dicts of the run columns (``complete`` = RunSummary received)."""
        where, args = run_filters(device_id, runner, since, until, "started_at")
        sql = f"SELECT {','.join(RUN_COLS)} FROM runs{where} ORDER BY started_at DESC, run_id LIMIT ? OFFSET ?"
        return [self._run_dict(r) for r in self._r().execute(sql, [*args, int(limit), int(offset)])]

    @staticmethod
    def _run_dict(r: sqlite3.Row) -> dict[str, Any]:
        d = dict(r)
        d["complete"] = bool(d["complete"])
        return d

    def count_runs(self, **filters: Any) -> int:
        where, args = run_filters(
            filters.get("device_id"),
            filters.get("runner"),
            filters.get("since"),
            filters.get("until"),
            "started_at",
        )
        return int(self._r().execute(f"SELECT COUNT(*) FROM runs{where}", args).fetchone()[0])

    def get_run(self, run_id: str, *, include_steps: bool = True) -> dict[str, Any] | None:
        """A run with its windows (oldest first) and, by default, every step record flattened.

        ``summary`` is the RunSummary as received, or None while only windows have arrived (then the run
        columns are assembled from the windows). Rows whose JSON cannot be read are listed in
        ``corrupt_rows`` (and logged), never silently skipped.
        """
        conn = self._r()
        row = conn.execute(
            f"SELECT {','.join(RUN_COLS)}, summary_json FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            return None
        run = self._run_dict(row)
        corrupt: list[dict[str, str]] = []
        summary_json = run.pop("summary_json")
        run["summary"] = None
        if summary_json:
            try:
                run["summary"] = json.loads(summary_json)
            except ValueError as err:
                corrupt.append({"table": "runs", "key": run_id, "error": str(err)[:200]})
        windows: list[dict[str, Any]] = []
        steps: list[dict[str, Any]] = []
        # The window JSON is only checked (json_valid, in C), never parsed: the page needs the columns. The
        # step records are read only when asked for (they are ~3/4 of a long run's bytes).
        cols = ",".join(f"w.{c}" for c in WINDOW_COLS)
        records_col = "s.records" if include_steps else "NULL"
        for w in conn.execute(
            f"SELECT {cols}, json_valid(w.json) AS json_ok, COALESCE(s.n, 0) AS n_records, {records_col} AS records "
            "FROM windows w LEFT JOIN window_steps s ON s.msg_id = w.msg_id "
            "WHERE w.run_id = ? ORDER BY w.window_index, w.t_start",
            (run_id,),
        ):
            wd = dict(w)
            ok, raw = wd.pop("json_ok"), wd.pop("records")
            if not ok:
                corrupt.append({"table": "windows", "key": wd["msg_id"], "error": "stored JSON is not valid JSON"})
            wd["step_records"] = wd.pop("n_records")
            windows.append(wd)
            if raw is not None:
                try:
                    # pydantic-core's JSON parser (Rust, a dependency via pydantic): same objects as
                    # json.loads, ~3x faster on a 10,000-step run (15 vs 42 ms), the bulk of a first view.
                    records = pydantic_core.from_json(raw, allow_inf_nan=False)
                    if not isinstance(records, list):
                        raise ValueError(f"expected a JSON array, got {type(records).__name__}")
                    idx = wd["window_index"]
                    for rec in records:
                        rec["window_index"] = idx
                except (ValueError, TypeError) as err:
                    corrupt.append({"table": "window_steps", "key": wd["msg_id"], "error": str(err)[:200]})
                    continue
                steps.extend(records)
        run["windows"] = windows
        if include_steps:
            run["steps"] = steps
        run["corrupt_rows"] = corrupt
        for c in corrupt:
            log.error("store %s: unreadable JSON in %s row %s: %s", self.path, c["table"], c["key"], c["error"])
        return run

    def run_row(self, run_id: str) -> dict[str, Any] | None:
        """The run's columns only (no windows, no JSON)."""
        row = self._r().execute(f"SELECT {','.join(RUN_COLS)} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else self._run_dict(row)

    def latest_run(self, device_id: str | None = None, runner: str | None = None) -> dict[str, Any] | None:
        runs = self.list_runs(device_id=device_id, runner=runner, limit=1)
        return self.get_run(runs[0]["run_id"]) if runs else None

    def run_windows(self, run_id: str) -> list[dict[str, Any]]:
        """Window measure columns of one run, oldest first (no JSON) — cheap, for the risk engine."""
        sql = f"SELECT {','.join(WINDOW_COLS)} FROM windows WHERE run_id = ? ORDER BY window_index"
        return [dict(r) for r in self._r().execute(sql, (run_id,))]

    def list_windows(
        self,
        *,
        runner: str | None = None,
        device_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Window measure columns (no JSON) of the windows starting in [since, until), oldest first."""
        where, args = run_filters(device_id, runner, since, until, "t_start")
        sql = f"SELECT {','.join(WINDOW_COLS)} FROM windows{where} ORDER BY t_start, msg_id LIMIT ? OFFSET ?"
        return [dict(r) for r in self._r().execute(sql, [*args, int(limit), int(offset)])]

    def window_stats(
        self,
        *,
        runner: str | None,
        device_id: str | None,
        since: float,
        until: float,
        exclude_run: str | None = None,
        min_steps: int = 1,
        lr_basis: str | None = None,
    ) -> dict[str, Any]:
        """Window-level VALR distribution (mean, SD) of a runner's windows starting in [since, until) — the
        baseline the in-run spike rule compares one window against. ``runner`` None = that device's windows
        without a runner name. With ``lr_basis``, only that device's windows of that loading-rate basis
        (``edge_agent.contract.loading_rate_basis``): like with like."""
        where = ["t_start >= ?", "t_start < ?", "valr_mean IS NOT NULL", "steps >= ?"]  # (runner, t_start) index
        args: list[Any] = [since, until, min_steps]
        if runner is not None:
            where.append("runner = ?")
            args.append(runner)
        else:
            where.append("runner IS NULL AND device_id = ?")
            args.append(device_id)
        if lr_basis is not None:
            where.append("lr_basis = ? AND device_id = ?")
            args.extend([lr_basis, device_id])
        if exclude_run is not None:
            where.append("run_id != ?")
            args.append(exclude_run)
        row = (
            self._r()
            .execute(
                "SELECT COUNT(*), COUNT(DISTINCT run_id), AVG(valr_mean), AVG(valr_mean * valr_mean) FROM windows "
                "WHERE " + " AND ".join(where),
                args,
            )
            .fetchone()
        )
        n, runs, mean, mean_sq = int(row[0]), int(row[1]), row[2], row[3]
        sd = None
        if n > 1 and mean is not None:
            sd = max(0.0, (mean_sq - mean * mean) * n / (n - 1)) ** 0.5
        return {"windows": n, "runs": runs, "mean": mean, "sd": sd}

    # -- alerts -----------------------------------------------------------------------------------------------
    def insert_alert(self, alert: Alert) -> None:
        with self._tx() as w:
            w.execute(
                "INSERT INTO alerts(alert_id, rule, severity, confidence, title, message, evidence, device_id, "
                "runner, run_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    alert.alert_id, alert.rule, alert.severity, alert.confidence, alert.title, alert.message,
                    json.dumps(alert.evidence, allow_nan=False), alert.device_id, alert.runner, alert.run_id,
                    alert.created_at,
                ),
            )  # fmt: skip

    def list_alerts(
        self,
        *,
        since: float | None = None,
        limit: int = 100,
        include_acked: bool = True,
        runner: str | None = None,
        rule: str | None = None,
        run_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Alerts newest first; ``evidence`` decoded; ``acked`` bool plus ``acked_at``/``acked_by``."""
        where: list[str] = []
        args: list[Any] = []
        if since is not None:
            where.append("created_at >= ?")
            args.append(float(since))
        if not include_acked:
            where.append("acked_at IS NULL")
        for col, val in (("runner", runner), ("rule", rule), ("run_id", run_id)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        sql = "SELECT * FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at DESC, alert_id LIMIT ?"
        out = []
        for r in self._r().execute(sql, [*args, int(limit)]):
            d = dict(r)
            try:
                d["evidence"] = json.loads(d["evidence"])
            except ValueError as err:
                log.error("store %s: unreadable evidence JSON in alert %s: %s", self.path, d["alert_id"], err)
                d["evidence"] = {"_unreadable": d["evidence"]}
            d["acked"] = d["acked_at"] is not None
            out.append(d)
        return out

    def get_alert(self, alert_id: str) -> dict[str, Any] | None:
        row = self._r().execute("SELECT alert_id FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        if row is None:
            return None
        r = self._r().execute("SELECT * FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        d = dict(r)
        d["evidence"] = json.loads(d["evidence"])
        d["acked"] = d["acked_at"] is not None
        return d

    def ack_alert(self, alert_id: str, by: str = "user", at: float | None = None) -> bool:
        """Acknowledge an alert; False if unknown or already acknowledged (the first ack is kept)."""
        with self._tx() as w:
            cur = w.execute(
                "UPDATE alerts SET acked_at = ?, acked_by = ? WHERE alert_id = ? AND acked_at IS NULL",
                (time.time() if at is None else at, by[:64], alert_id),
            )
            return cur.rowcount == 1

    def last_alert_time(self, rule: str, runner: str | None) -> float | None:
        row = (
            self._r()
            .execute("SELECT MAX(created_at) FROM alerts WHERE rule = ? AND runner IS ?", (rule, runner))
            .fetchone()
        )
        return None if row[0] is None else float(row[0])

    def has_alert(self, rule: str, run_id: str) -> bool:
        row = self._r().execute("SELECT 1 FROM alerts WHERE rule = ? AND run_id = ? LIMIT 1", (rule, run_id))
        return row.fetchone() is not None

    # -- devices, runners, settings ---------------------------------------------------------------------------
    def devices(self) -> list[dict[str, Any]]:
        sql = (
            "SELECT d.*, (SELECT COUNT(*) FROM runs r WHERE r.device_id = d.device_id) AS runs "
            "FROM devices d ORDER BY d.device_id"
        )
        return [dict(r) for r in self._r().execute(sql)]

    def runners(self) -> list[dict[str, Any]]:
        sql = "SELECT n.*, (SELECT COUNT(*) FROM runs r WHERE r.runner = n.name) AS runs FROM runners n ORDER BY n.name"
        return [dict(r) for r in self._r().execute(sql)]

    def get_setting(self, key: str, default: Any = None) -> Any:
        row = self._r().execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        try:
            return json.loads(row[0])
        except ValueError as err:
            raise StoreError(f"{self.path}: setting {key!r} holds unreadable JSON: {err}") from None

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value (raises ValueError for NaN or non-JSON values)."""
        text = json.dumps(value, allow_nan=False)
        with self._tx() as w:
            w.execute(
                "INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, text),
            )

    def setting_default(self, key: str, value: Any) -> Any:
        """The stored value of ``key``; stores ``value`` first if there is none (atomic: concurrent callers
        all get the one value that was stored first)."""
        text = json.dumps(value, allow_nan=False)
        with self._tx() as w:
            w.execute("INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING", (key, text))
            stored = w.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()[0]
        return json.loads(stored)

    def settings(self) -> dict[str, Any]:
        return {r[0]: json.loads(r[1]) for r in self._r().execute("SELECT key, value FROM settings ORDER BY key")}

    def get_state(self, key: str) -> Any:
        row = self._r().execute("SELECT value FROM risk_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_state(self, key: str, value: Any) -> None:
        with self._tx() as w:
            w.execute(
                "INSERT INTO risk_state(key, value, updated_at) VALUES (?,?,?) ON CONFLICT(key) DO UPDATE SET "
                "value = excluded.value, updated_at = excluded.updated_at",
                (key, json.dumps(value, allow_nan=False), time.time()),
            )

    # -- export, retention, integrity -------------------------------------------------------------------------
    def export_runs(
        self,
        fmt: Literal["csv", "json"] = "csv",
        *,
        runner: str | None = None,
        device_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> str:
        """All matching runs (oldest first) as CSV (one row per run, run columns) or a JSON array."""
        if fmt not in ("csv", "json"):
            raise ValueError(f"export format must be 'csv' or 'json', not {fmt!r}")
        where, args = run_filters(device_id, runner, since, until, "started_at")
        rows = [
            self._run_dict(r)
            for r in self._r().execute(f"SELECT {','.join(RUN_COLS)} FROM runs{where} ORDER BY started_at", args)
        ]
        if fmt == "json":
            return json.dumps(rows, indent=1, allow_nan=False)
        return rows_to_csv(rows, RUN_COLS)  # text cells neutralised: runner names come from devices

    def apply_retention(self, window_days: float | None, now: float | None = None) -> int:
        """Delete windows (with their step records) older than ``window_days``; runs, alerts and the dedupe
        ledger are kept. Returns the number of windows deleted. None = keep everything."""
        if window_days is None:
            return 0
        if window_days <= 0:
            raise ValueError(f"retention window_days must be > 0, got {window_days}")
        cutoff = (time.time() if now is None else now) - window_days * 86400.0
        with self._tx() as w:
            # window_steps rows go with their window (ON DELETE CASCADE); said explicitly for older connections.
            w.execute(
                "DELETE FROM window_steps WHERE msg_id IN (SELECT msg_id FROM windows WHERE t_end < ?)", (cutoff,)
            )
            return int(w.execute("DELETE FROM windows WHERE t_end < ?", (cutoff,)).rowcount)

    def counts(self) -> dict[str, int]:
        """Row counts per table (tests, health)."""
        tables = ("devices", "runners", "messages", "streams", "runs", "windows", "window_steps", "alerts", "settings")
        conn = self._r()
        return {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}

    def fingerprint(self) -> str:
        """SHA-256 over every stored message, window and run row in key order: equal before/after ⇔ intact."""
        h = hashlib.sha256()
        conn = self._r()
        for sql in (
            "SELECT msg_id, device_id, stream_id, seq, kind, run_id FROM messages ORDER BY msg_id",
            "SELECT msg_id, json FROM windows ORDER BY msg_id",
            "SELECT msg_id, n, records FROM window_steps ORDER BY msg_id",
            f"SELECT {','.join(c for c in RUN_COLS if c != 'updated_at')}, summary_json FROM runs ORDER BY run_id",
        ):
            for row in conn.execute(sql):
                h.update(repr(tuple(row)).encode())
        return h.hexdigest()

    def integrity_check(self) -> list[str]:
        """SQLite's own ``PRAGMA integrity_check``; ['ok'] when healthy."""
        return [r[0] for r in self._r().execute("PRAGMA integrity_check")]
