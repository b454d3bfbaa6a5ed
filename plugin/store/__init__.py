"""The dashboard's store: every summary once, runs, alerts, settings, accounts — on SQLite or PostgreSQL.

One :class:`Store` object, composed of one part per responsibility:

======================  ==========================================================================================
``backend``             the two databases: connections, transactions, dialect fragments, advisory locks
``migrations``          the numbered SQL migrations, one set for both databases
``summaries``           storing summaries exactly once (ledger, window slots, caps), runs, stream advancement
``streams``             what acks say (contiguous seq, gaps), read from the database
``runs``                run lists, the run detail, baselines, export, retention
``alerts``              alerts and their acknowledgement
``catalog``             devices, runners, settings, risk-engine state
``accounts``            users, teams, tokens, sessions
``program``             the form journey: programs, shoes, which pair each run was in
``maintenance``         counts, the shared summary counter, checksums, health, integrity
``copy``                ``migrate-store``: copy one database into another, verified
======================  ==========================================================================================

Measures are flattened into indexed columns (both feet pooled as :mod:`edge_agent.common.measures` defines) so
trends are SQL aggregates; a window's JSON is kept for the run page, its per-step records in ``window_steps``
(read only when asked for).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from edge_agent.common.measures import pooled_measures
from edge_agent.contract import loading_rate_basis
from plugin.store.accounts import AccountError, Accounts, Principal
from plugin.store.alerts import AlertQueries
from plugin.store.backend import Backend, SqliteBackend, StoreError, describe_target, open_backend
from plugin.store.base import RUN_COLS, WINDOW_COLS, StoredMsg, run_filters
from plugin.store.catalog import CatalogQueries
from plugin.store.maintenance import Maintenance
from plugin.store.migrations import migrate
from plugin.store.program import ProgramQueries
from plugin.store.runs import RunQueries
from plugin.store.streams import MAX_MISSING_RANGES, StreamQueries
from plugin.store.summaries import GAP_GIVE_UP_S, MAX_STREAMS_PER_DEVICE, MAX_WINDOWS_PER_RUN, SummaryWrites

log = logging.getLogger(__name__)

__all__ = [
    "GAP_GIVE_UP_S",
    "MAX_MISSING_RANGES",
    "MAX_STREAMS_PER_DEVICE",
    "MAX_WINDOWS_PER_RUN",
    "RUN_COLS",
    "WINDOW_COLS",
    "AccountError",
    "Principal",
    "Store",
    "StoreError",
    "StoredMsg",
    "describe_target",
    "run_filters",
    "window_measures",
]


def window_measures(msg: StoredMsg) -> dict[str, Any]:
    """The pooled measures of one window or run and its loading-rate basis, as stored (what the risk engine
    compares)."""
    return {**pooled_measures(msg).as_dict(), "lr_basis": loading_rate_basis(msg)}


class Store(
    SummaryWrites, StreamQueries, RunQueries, AlertQueries, CatalogQueries, Accounts, ProgramQueries, Maintenance
):
    """The plugin's database. Thread-safe. ``target``: a path or ``sqlite:…`` (SQLite) or ``postgresql://…``.

    Opening migrates the schema. A SQLite file must pass ``PRAGMA quick_check`` first: a file corrupted
    mid-way is refused, with its path, instead of serving errors while acknowledging new data.
    ``shard`` names this writer's row of the shared counters (one per worker process).
    """

    def __init__(self, target: Path | str, *, shard: str = "main", check: bool = True, **pg_options: Any) -> None:
        self.target = target
        self.shard = shard[:64]
        self._known_streams = set()
        self.db: Backend = open_backend(target, **pg_options)
        try:
            if check and isinstance(self.db, SqliteBackend):
                self._quick_check()
            applied = migrate(self.db)
            if 5 in applied:  # 0005 moved later copies of windows aside: their runs are assembled again
                self._reassemble_quarantined_runs()
            if 8 in applied:  # 0008 gave windows their loading-rate interval and basis: so do runs without a summary
                self._reassemble_incomplete_runs()
        except BaseException:
            self.db.close()
            raise

    @property
    def path(self) -> Path:
        """The SQLite file (only for SQLite stores)."""
        if not isinstance(self.db, SqliteBackend):
            raise AttributeError(f"{self.where} is not a SQLite file")
        return self.db.path

    @property
    def backend(self) -> str:
        return self.db.name

    def _quick_check(self) -> None:
        try:
            problems = [p for p in self.db.quick_check() if p != "ok"]
        except self.db.errors as err:
            raise StoreError(f"{self.where}: not a usable footfall database ({err})") from None
        if problems:
            raise StoreError(
                f"{self.where}: the database is damaged (PRAGMA quick_check: {'; '.join(problems[:3])}"
                f"{' …' if len(problems) > 3 else ''}); it was left as it is — restore a backup, or try "
                "`sqlite3 FILE .recover`, before starting the dashboard on it"
            )

    def _reassemble_quarantined_runs(self) -> None:
        """After migration 0005 moved later copies of windows aside, assemble their runs again from the rest."""
        run_ids = [r["run_id"] for r in self._rows("SELECT DISTINCT run_id FROM quarantine WHERE tbl = 'windows'")]
        if not run_ids:
            return
        log.warning("store %s: %d run(s) held later copies of a window; kept in table quarantine, runs reassembled",
                    self.where, len(run_ids))  # fmt: skip
        with self._tx() as w:
            self._reaggregate_runs(w, sorted(r for r in run_ids if r))

    def _reassemble_incomplete_runs(self) -> None:
        """Assemble every run whose RunSummary has not arrived again from its windows (after a migration added
        pooled columns to them)."""
        run_ids = [r["run_id"] for r in self._rows("SELECT run_id FROM runs WHERE complete = 0 ORDER BY run_id")]
        for i in range(0, len(run_ids), 400):
            with self._tx() as w:
                self._reaggregate_runs(w, run_ids[i : i + 400])

    def schema_version(self) -> int:
        return int(self._one("SELECT MAX(version) FROM schema_version")[0])

    @contextlib.contextmanager
    def exclusive(self, key: str) -> Any:
        """A critical section across every process using this database (PostgreSQL advisory lock; within one
        process on SQLite, whose file has one writer process)."""
        with self.db.exclusive(f"footfall:{key}"):
            yield

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
