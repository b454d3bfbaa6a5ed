"""Whole-store facts: row counts, the shared summary counter, a content checksum, health and integrity."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any

from plugin.store.base import RUN_COLS, StoreBase

log = logging.getLogger(__name__)

TABLES = ("devices", "runners", "messages", "streams", "runs", "windows", "window_steps", "alerts", "settings")

#: What ``checksums`` reads per table: the columns in a fixed order (``updated_at`` of a run is the time it was
#: last assembled, not data). Row order does not matter: each row's hash is added up modulo 2**256.
CHECKSUM_SQL = {
    "messages": "SELECT msg_id, device_id, stream_id, seq, kind, run_id, received_at FROM messages",
    "windows": "SELECT msg_id, json, valr_lo, valr_hi, lr_basis FROM windows",  # (the other columns: from json)
    "window_steps": "SELECT msg_id, n, records FROM window_steps",
    "runs": f"SELECT {','.join(c for c in RUN_COLS if c != 'updated_at')}, summary_json FROM runs",
    "streams": "SELECT device_id, stream_id, contiguous_seq, max_seq, abandoned FROM streams",
    "alerts": "SELECT alert_id, rule, severity, confidence, title, message, evidence, device_id, runner, run_id, "
    "created_at, acked_at, acked_by FROM alerts",
    "settings": "SELECT key, value FROM settings",
    "risk_state": "SELECT key, value, updated_at FROM risk_state",
    "devices": "SELECT device_id, first_seen, last_seen, last_runner, status, status_at FROM devices",
    "runners": "SELECT name, first_seen, last_seen, body_mass_kg FROM runners",
    "users": "SELECT username, role, runner, password_hash, created_at, disabled FROM users",
    "teams": "SELECT name, created_at FROM teams",
    "team_members": "SELECT team, runner FROM team_members",
    "team_coaches": "SELECT team, username FROM team_coaches",
    "api_tokens": "SELECT token_hash, username, label, created_at, last_used_at FROM api_tokens",
    "quarantine": "SELECT tbl, key, run_id, reason, row_json, records, at FROM quarantine",
    "programs": "SELECT runner, started_at, goals, injury_note, cadence_goal_pct, skip_transition, assessment, "
    "notified_stage, target_json, updated_at FROM programs",
    "shoes": "SELECT shoe_id, runner, name, added_at, retired_at, alerted_at FROM shoes",
    "run_shoes": "SELECT run_id, shoe_id, source, tagged_at FROM run_shoes",
}


def row_digest(row: tuple[Any, ...]) -> int:
    """A row's content as a number: the same on SQLite and PostgreSQL (floats by repr, ints, text, NULL)."""
    return int.from_bytes(hashlib.sha256(repr(tuple(row)).encode()).digest(), "big")


class Maintenance(StoreBase):
    def counts(self) -> dict[str, int]:
        """Row counts per table (tests, health)."""
        with self._read() as c:
            return {t: int(c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in TABLES}

    def summaries(self) -> int:
        """Window summaries in the database, whoever stored them (a counter every writer keeps in the same
        transaction as its rows: no table scan, the same figure on every worker)."""
        return int(self._one("SELECT COALESCE(SUM(value), 0) FROM store_counters WHERE name = 'summaries'")[0])

    def iter_rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        with self._read() as c:
            for row in c.execute(CHECKSUM_SQL[table]):
                yield tuple(row)

    def checksums(self) -> dict[str, tuple[int, str]]:
        """Per table: (rows, order-independent SHA-256 sum of the rows) — equal on two databases ⇔ same data."""
        out = {}
        for table in CHECKSUM_SQL:
            total = 0
            n = 0
            for row in self.iter_rows(table):
                total = (total + row_digest(row)) % (1 << 256)
                n += 1
            out[table] = (n, f"{total:064x}")
        return out

    def fingerprint(self) -> str:
        """One SHA-256 over the stored messages, windows, step records and runs: equal before/after ⇔ intact."""
        sums = self.checksums()
        h = hashlib.sha256()
        for table in ("messages", "windows", "window_steps", "runs"):
            h.update(f"{table}:{sums[table][0]}:{sums[table][1]};".encode())
        return h.hexdigest()

    def integrity_check(self) -> list[str]:
        """The database's own check (``PRAGMA integrity_check`` on SQLite); ['ok'] when healthy."""
        check = getattr(self.db, "integrity_check", None)
        return check() if check is not None else self.db.quick_check()

    def health(self) -> dict[str, Any]:
        """For ``/api/health``: which backend, whether it answers, and the stored summaries."""
        try:
            return {"backend": self.db.name, "ok": True, "summaries": self.summaries()}
        except Exception as err:  # the health page must answer even when the database does not
            log.error("store %s: health query failed: %s", self.where, type(err).__name__)
            return {"backend": self.db.name, "ok": False, "error": type(err).__name__, "summaries": None}
