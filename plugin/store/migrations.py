"""The schema migrations runner: numbered SQL files in ``plugin/migrations``, one set for both databases.

A version is either ``NNNN_name.sql`` — written in the SQL both SQLite and PostgreSQL accept (``BIGINT``,
``DOUBLE PRECISION``, ``TEXT``, ``ON CONFLICT``, plain indexes) — or, where the two cannot share a statement
(moving JSON around, PostgreSQL functions), the pair ``NNNN_name.sqlite.sql`` + ``NNNN_name.postgresql.sql``.
Each version is applied in one transaction together with its ``schema_version`` row; a database newer than this
code is refused instead of guessed at. Why not Alembic: see docs/club.md "Migrations".
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from plugin.store.backend import Backend, SqliteBackend, StoreError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_NAME_RE = re.compile(r"^(\d{4})_(\w+?)(?:\.(sqlite|postgresql))?\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    #: dialect name → SQL ("*" when one file serves both)
    sql: dict[str, str]

    def for_dialect(self, dialect: str) -> str:
        return self.sql.get(dialect, self.sql.get("*", ""))


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration in order; a gap, a half pair of dialect files or a name clash is an error."""
    found: dict[int, dict[str, tuple[str, str]]] = {}
    for entry in sorted(directory.iterdir()):
        m = _NAME_RE.match(entry.name)
        if not m:
            continue
        version, name, dialect = int(m.group(1)), m.group(2), m.group(3) or "*"
        found.setdefault(version, {})[dialect] = (name, entry.read_text(encoding="utf-8"))
    out = []
    for version in sorted(found):
        files = found[version]
        names = {n for n, _ in files.values()}
        if len(names) != 1 or ("*" in files and len(files) > 1) or ("*" not in files and len(files) != 2):
            raise StoreError(
                f"plugin/migrations: version {version:04d} must be one NNNN_name.sql or a .sqlite.sql + "
                f".postgresql.sql pair of one name, found {sorted(n + '/' + d for d, (n, _) in files.items())}"
            )
        out.append(Migration(version, names.pop(), {d: sql for d, (_, sql) in files.items()}))
    versions = [m.version for m in out]
    if versions != list(range(1, len(versions) + 1)):
        raise StoreError(f"plugin/migrations: versions must be 1..N without gaps, found {versions}")
    return out


def current_version(backend: Backend) -> int:
    with backend.read() as c:
        return int(c.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])


def migrate(backend: Backend, *, target: int | None = None) -> list[int]:
    """Bring the database to ``target`` (default: the newest version); returns the versions applied."""
    migrations = load_migrations()
    newest = migrations[-1].version if migrations else 0
    target = newest if target is None else target
    where = backend.describe()
    with backend.tx() as c:
        c.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_at DOUBLE PRECISION)")
    applied: list[int] = []
    # PostgreSQL: several workers may start at once; the first migrates, the others wait and find nothing to do.
    with backend.exclusive("footfall:migrations"):
        current = current_version(backend)
        if current > newest:
            raise StoreError(
                f"{where}: database schema version {current} is newer than this footfall ({newest}); "
                "upgrade footfall instead of opening it with an older version"
            )
        for mig in migrations:
            if mig.version <= current or mig.version > target:
                continue
            sql = mig.for_dialect(backend.name)
            try:
                _apply(backend, sql, mig.version)
            except backend.errors as err:
                raise StoreError(
                    f"{where}: migration {mig.version:04d}_{mig.name} failed: {str(err).splitlines()[0]}"
                ) from None
            log.info("store %s: applied migration %04d_%s", where, mig.version, mig.name)
            applied.append(mig.version)
    return applied


def _apply(backend: Backend, sql: str, version: int) -> None:
    stamp = f"INSERT INTO schema_version VALUES ({version}, {time.time()});"
    if isinstance(backend, SqliteBackend):
        with backend.migration_tx() as w:
            try:
                w.executescript(f"BEGIN;\n{sql}\n{stamp}\nCOMMIT;")
            except BaseException:
                if w.in_transaction:
                    w.execute("ROLLBACK")
                raise
        return
    with backend.tx() as c:  # PostgreSQL DDL is transactional: the file and its version row, or nothing
        backend.run_script(c, f"{sql}\n{stamp}")
