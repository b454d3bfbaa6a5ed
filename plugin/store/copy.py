"""``footfall-dashboard migrate-store``: copy one store into another (a home SQLite file into a club PostgreSQL
database, or back), losslessly, and prove it with row counts and checksums.

Both databases are first brought to this version's schema (what starting the dashboard on them would do); the
target must hold no data. Tables are copied in dependency order, column by column as stored (JSON text as
received, floats exactly: both databases hold IEEE doubles), with PostgreSQL's COPY when it is the target. Then
:meth:`~plugin.store.maintenance.Maintenance.checksums` runs on both sides: the same row count and the same
order-independent SHA-256 sum per table, or the copy is reported as failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from plugin.store import Store, StoreError
from plugin.store.maintenance import CHECKSUM_SQL

log = logging.getLogger(__name__)

#: Copy order: parents before children (foreign keys), the ledger before what it dedupes.
TABLES = (
    "devices", "runners", "settings", "risk_state", "streams", "messages", "runs", "windows", "window_steps",
    "alerts", "quarantine", "users", "teams", "team_members", "team_coaches", "api_tokens", "sessions",
    "programs", "shoes", "run_shoes", "store_counters",
)  # fmt: skip
#: Tables that must be empty in the target.
DATA_TABLES = ("messages", "runs", "windows", "alerts", "users", "settings", "programs", "shoes")


@dataclass
class TableReport:
    table: str
    source_rows: int
    target_rows: int
    source_sum: str
    target_sum: str

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_sum == self.target_sum


def _columns(store: Store, table: str) -> list[str]:
    with store._read() as c:
        if store.backend == "sqlite":
            return [r[1] for r in c.execute(f"PRAGMA table_info({table})")]
        return [
            r[0]
            for r in c.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = ? ORDER BY ordinal_position",
                (table,),
            )
        ]


def _rows(store: Store, table: str, cols: list[str], chunk: int) -> Iterator[list[tuple[Any, ...]]]:
    with store._read() as c:
        cur = c.execute(f"SELECT {','.join(cols)} FROM {table}")
        batch: list[tuple[Any, ...]] = []
        for row in cur:
            batch.append(tuple(row))
            if len(batch) >= chunk:
                yield batch
                batch = []
        if batch:
            yield batch


def copy_store(
    source: Store, target: Store, *, chunk: int = 2000, progress: Callable[[str, int], None] | None = None
) -> list[TableReport]:
    """Copy every table of ``source`` into the empty ``target``; returns the per-table verification."""
    with target._read() as c:
        busy = {t: int(c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in DATA_TABLES}
    if any(busy.values()):
        held = ", ".join(f"{n} {t}" for t, n in busy.items() if n)
        raise StoreError(f"{target.where}: the target database is not empty ({held}); copy into an empty one")
    with target._tx() as w:
        w.execute("DELETE FROM store_counters")  # the migration's zero row: replaced by the source's counters
    for table in TABLES:
        src_cols = _columns(source, table)
        dst_cols = set(_columns(target, table))
        cols = [c for c in src_cols if c in dst_cols]
        copied = 0
        for batch in _rows(source, table, cols, chunk):
            with target._tx() as w:
                if target.backend == "postgresql":
                    raw = w.raw  # type: ignore[attr-defined]
                    with raw.cursor().copy(f"COPY {table} ({','.join(cols)}) FROM STDIN") as cp:
                        for row in batch:
                            cp.write_row(row)
                else:
                    marks = ",".join("?" * len(cols))
                    w.executemany(f"INSERT INTO {table}({','.join(cols)}) VALUES ({marks})", batch)
            copied += len(batch)
            if progress:
                progress(table, copied)
        log.info("migrate-store: %s: %d rows", table, copied)
    src, dst = source.checksums(), target.checksums()
    return [TableReport(t, src[t][0], dst[t][0], src[t][1], dst[t][1]) for t in CHECKSUM_SQL]
