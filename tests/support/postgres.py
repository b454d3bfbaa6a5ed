"""A throw-away PostgreSQL cluster for the tests: ``initdb`` in a temp dir, one server per test session.

Debian's ``postgresql`` package (``.ci/run`` installs it) puts the binaries in ``/usr/lib/postgresql/<v>/bin``.
``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres`` system user (``runuser``).
The server listens on a free loopback port and a private socket directory; fsync is off (a test cluster is
disposable; the durability tests kill the dashboard, not the database).

Each test gets its own database, copied from a template that was migrated once (``CREATE DATABASE … TEMPLATE``:
a file copy, far cheaper than migrating again).
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.brokers import free_port, wait_port


def find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return candidates[-1] if candidates else None


def have_postgres() -> bool:
    return find_bin("initdb") is not None and find_bin("pg_ctl") is not None


class PostgresCluster:
    """``start()`` … ``stop()``; ``url(db)``, ``create_db(name, template)``, ``drop_db(name)``."""

    def __init__(self, root: Path | None = None, *, durable: bool = False) -> None:
        """``durable``: PostgreSQL's default fsync/commit settings (benchmarks), else fast throw-away ones."""
        self.durable = durable
        self.root = Path(root or tempfile.mkdtemp(prefix="footfall-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user = "footfall"
        self._as_postgres = hasattr(os, "geteuid") and os.geteuid() == 0
        self._names = itertools.count(1)
        self.templates: set[str] = set()

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if self._as_postgres:
            cmd = ("runuser", "-u", "postgres", "--", *cmd)
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresCluster:
        initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql")
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.root, "postgres")
        self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", self.user, "--locale=C.UTF-8", "-E", "UTF8",
                  "--no-sync")  # fmt: skip
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200 "
        if self.durable:
            opts += "-c shared_buffers=512MB -c max_wal_size=4GB"
        else:
            opts += "-c shared_buffers=128MB -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(pg_ctl, "-D", str(self.data), "-o", opts, "-l", str(self.root / "server.log"), "-w", "start")
        wait_port(self.port, 30)
        return self

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"

    def sql(self, statement: str, db: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(db), autocommit=True) as c:
            c.execute(statement)  # type: ignore[arg-type]

    def create_db(self, name: str | None = None, template: str | None = None) -> str:
        """A new empty (or template-copied) database; returns its URL."""
        name = name or f"t{next(self._names)}"
        self.sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def drop_db(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        pg_ctl = find_bin("pg_ctl")
        if pg_ctl and self.data.exists():
            self._run(pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)
