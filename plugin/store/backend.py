"""Database backends of the store: SQLite (embedded, the home default) and PostgreSQL 15+ (a club's server).

The store writes one SQL text for both, in the common subset: ``?`` placeholders, ``INSERT … ON CONFLICT``,
``SAVEPOINT``, ``BIGINT``/``DOUBLE PRECISION``/``TEXT`` columns. What differs is said once, here, as
:class:`Dialect` fragments (``GREATEST`` vs SQLite's two-argument ``MAX``, ``IS NOT DISTINCT FROM``, how a window's
step records are split off its JSON) and by the two connection strategies:

- **SQLite** (``sqlite:///path`` or a plain path): WAL mode, ONE writer connection behind a lock (SQLite allows
  one writer anyway) and one reader connection per thread, so readers never block ingest and never see half a
  batch. The file is created 0600 (it holds notification URLs). ``PRAGMA quick_check`` runs at open: a file
  corrupted mid-way is refused with its path instead of half-working.
- **PostgreSQL** (``postgresql://…``, psycopg 3): a ``psycopg_pool.ConnectionPool`` of autocommit connections;
  a write is one explicit transaction on a pooled connection, a read one statement. ``?`` placeholders become
  ``%s`` once per statement text (cached). Rows answer by index and by name on both backends (:class:`Row`).
  Several dashboard processes may share one PostgreSQL database: uniqueness is enforced by the database
  (``ON CONFLICT``), and cross-process critical sections take advisory locks (:meth:`Backend.exclusive`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from edge_agent.common.redact import redact_url

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The database cannot be used as asked (corrupt, newer schema, unreachable); the message says where."""


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """What the store's queries use of a connection (sqlite3 and the PostgreSQL adapter both provide it)."""

    def execute(self, sql: str, args: Sequence[Any] = ...) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any: ...


@dataclass(frozen=True)
class Dialect:
    """SQL fragments that differ between the backends."""

    name: str
    #: scalar maximum of two values (``MAX(a, b)`` in SQLite, ``GREATEST(a, b)`` in PostgreSQL)
    greatest: str
    least: str
    #: NULL-safe equality operator
    is_: str
    #: day number (whole days since 1970-01-01 UTC) of a positive Unix time, ``{}`` = the column
    day_of: str

    def max2(self, a: str, b: str) -> str:
        return f"{self.greatest}({a}, {b})"

    def min2(self, a: str, b: str) -> str:
        return f"{self.least}({a}, {b})"

    def day(self, col: str) -> str:
        return self.day_of.format(col)


# SQLite's CAST truncates (floor for positive times, without relying on its optional math functions);
# PostgreSQL's CAST rounds, so FLOOR first.
SQLITE = Dialect("sqlite", greatest="MAX", least="MIN", is_="IS", day_of="CAST({} / 86400 AS INTEGER)")
POSTGRESQL = Dialect(
    "postgresql",
    greatest="GREATEST",
    least="LEAST",
    is_="IS NOT DISTINCT FROM",
    day_of="CAST(FLOOR({} / 86400) AS BIGINT)",
)


class Backend:
    """A database: connections for reads and write transactions, its dialect and its row errors."""

    dialect: Dialect
    #: Exceptions raised by one row's values (not by the database): the store rejects that message alone.
    row_errors: tuple[type[BaseException], ...]
    #: Exceptions after which a whole transaction may simply be retried (deadlock, serialization failure).
    retry_errors: tuple[type[BaseException], ...] = ()
    #: Any error of the driver (health reporting).
    errors: tuple[type[BaseException], ...]

    @property
    def name(self) -> str:
        return self.dialect.name

    def describe(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def read(self) -> contextlib.AbstractContextManager[Conn]:  # pragma: no cover - overridden
        raise NotImplementedError

    def tx(self) -> contextlib.AbstractContextManager[Conn]:  # pragma: no cover - overridden
        raise NotImplementedError

    def exclusive(self, key: str) -> contextlib.AbstractContextManager[None]:  # pragma: no cover - overridden
        raise NotImplementedError

    def run_script(self, conn: Conn, sql: str) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def quick_check(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


def lock_id(key: str) -> int:
    """A stable signed 64-bit id for an advisory lock name."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


# -- SQLite ------------------------------------------------------------------------------------------------------
class SqliteBackend(Backend):
    dialect = SQLITE
    row_errors = (sqlite3.IntegrityError, sqlite3.InterfaceError, OverflowError, ValueError, TypeError)
    errors = (sqlite3.Error,)

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # Notification URLs (tokens, passwords) live in this file: nobody else may read it, whatever the umask.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        try:
            self._w = self._connect()
            self._w.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path}: not a usable footfall database ({err})") from None
        for suffix in ("-wal", "-shm"):  # same rule for SQLite's side files
            with contextlib.suppress(OSError):
                Path(f"{self.path}{suffix}").chmod(0o600)

    def describe(self) -> str:
        return str(self.path)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=30000")
        # NORMAL in WAL mode: a commit survives a process crash; power loss may lose the last transactions,
        # which the agent then re-sends because they were never acknowledged (acks follow commits).
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _reader(self) -> sqlite3.Connection:
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
    def read(self) -> Iterator[Conn]:
        yield self._reader()  # type: ignore[misc]

    @contextlib.contextmanager
    def tx(self) -> Iterator[Conn]:
        with self._lock:
            if self._closed:
                raise StoreError(f"{self.path}: store is closed")
            self._w.execute("BEGIN IMMEDIATE")
            try:
                yield self._w  # type: ignore[misc]
            except BaseException:
                self._w.execute("ROLLBACK")
                raise
            else:
                self._w.execute("COMMIT")

    #: Named locks per (file, name), shared by every store on the file in this process.
    _named_locks: ClassVar[dict[tuple[str, str], threading.Lock]] = {}
    _named_locks_guard: ClassVar[threading.Lock] = threading.Lock()

    @contextlib.contextmanager
    def exclusive(self, key: str) -> Iterator[None]:
        """One SQLite file is written by one process: a lock per file and name in this process is enough."""
        with SqliteBackend._named_locks_guard:
            lock = SqliteBackend._named_locks.setdefault((str(self.path.resolve()), key), threading.Lock())
        with lock:
            yield

    def run_script(self, conn: Conn, sql: str) -> None:
        assert isinstance(conn, sqlite3.Connection)
        # executescript would commit on its own: the runner wraps the script in its own BEGIN … COMMIT.
        conn.executescript(sql)

    @contextlib.contextmanager
    def migration_tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._w

    def quick_check(self) -> list[str]:
        return [r[0] for r in self._reader().execute("PRAGMA quick_check")]

    def integrity_check(self) -> list[str]:
        return [r[0] for r in self._reader().execute("PRAGMA integrity_check")]

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


# -- PostgreSQL --------------------------------------------------------------------------------------------------
class Row(tuple):  # type: ignore[type-arg]
    """A result row readable by position and by column name, like ``sqlite3.Row`` (``dict(row)`` works)."""

    __slots__ = ()
    _names: tuple[str, ...]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._names.index(key))
            except ValueError:
                raise IndexError(f"no column {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@functools.lru_cache(maxsize=64)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    return type("Row", (Row,), {"__slots__": (), "_names": names})


def _row_factory(cursor: Any) -> Any:
    desc = cursor.description
    if desc is None:
        return tuple
    cls = _row_class(tuple(c.name for c in desc))
    return cls


@functools.lru_cache(maxsize=1024)
def pg_sql(sql: str) -> str:
    """``?`` placeholders → psycopg's ``%s`` (a literal ``%`` is doubled). The store's SQL has no ``?`` in strings."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PgConn:
    """A pooled psycopg connection speaking the store's ``?`` SQL."""

    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        if not args:  # without parameters psycopg sends the text as it is (a "%" stays single)
            return self.raw.execute(sql)
        return self.raw.execute(pg_sql(sql), args)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        rows = list(rows)
        if not rows:
            return None
        with self.raw.cursor() as cur:
            cur.executemany(pg_sql(sql), rows)
        return None


def _configure(conn: Any) -> None:
    """Per pooled connection: numeric (SUM/AVG of BIGINT) comes back as int or float, never Decimal."""
    from psycopg.adapt import Loader

    class NumberLoader(Loader):
        def load(self, data: Any) -> int | float:
            text = bytes(data).decode()
            try:
                return int(text)
            except ValueError:
                return float(text)

    conn.adapters.register_loader("numeric", NumberLoader)
    conn.row_factory = _row_factory


class PostgresBackend(Backend):
    dialect = POSTGRESQL

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8, connect_timeout: float = 10.0) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise StoreError(
                "PostgreSQL needs psycopg 3 and psycopg_pool: pip install 'footfall[postgresql]'"
            ) from None
        self.url = url
        self._psycopg = psycopg
        self.row_errors = (psycopg.DataError, psycopg.IntegrityError, OverflowError, ValueError, TypeError)
        self.retry_errors = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
        self.errors = (psycopg.Error,)
        self.pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "application_name": "footfall-dashboard"},
            configure=_configure,
            open=False,
            name="footfall-store",
            timeout=30.0,
        )
        try:
            self.pool.open(wait=True, timeout=connect_timeout)
        except Exception as err:
            self.pool.close()
            raise StoreError(f"{self.describe()}: cannot connect to PostgreSQL ({_short(err)})") from None
        with self.read() as c:
            version = int(c.execute("SHOW server_version_num").fetchone()[0])
        if version < 150000:
            self.close()
            raise StoreError(f"{self.describe()}: PostgreSQL {version // 10000} is too old (need 15 or newer)")

    def describe(self) -> str:
        return redact_url(self.url)

    @contextlib.contextmanager
    def read(self) -> Iterator[Conn]:
        with self.pool.connection() as raw:
            yield _PgConn(raw)  # type: ignore[misc]

    @contextlib.contextmanager
    def tx(self) -> Iterator[Conn]:
        with self.pool.connection() as raw, raw.transaction():
            yield _PgConn(raw)  # type: ignore[misc]

    @contextlib.contextmanager
    def exclusive(self, key: str) -> Iterator[None]:
        """A session advisory lock named ``key``: one holder across every process using this database; released
        when the block ends or the holder's connection dies (a killed worker never leaves it locked)."""
        lid = lock_id(key)
        with self.pool.connection() as raw:
            raw.execute("SELECT pg_advisory_lock(%s)", (lid,))
            try:
                yield
            finally:
                raw.execute("SELECT pg_advisory_unlock(%s)", (lid,))

    def notify(self, channel: str, payload: str) -> None:
        """``pg_notify``: every connection listening on ``channel`` — in every worker — gets ``payload``."""
        with self.pool.connection() as raw:
            raw.execute("SELECT pg_notify(%s, %s)", (channel, payload))

    def listen(self, channel: str, on_message: Callable[[str], None], stop: threading.Event) -> None:
        """Call ``on_message(payload)`` for every notification on ``channel`` until ``stop`` is set; a lost
        connection is opened again (notifications sent meanwhile are missed: they are live updates only)."""
        psycopg = self._psycopg
        while not stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, application_name="footfall-listen") as conn:
                    conn.execute(f"LISTEN {channel}")
                    while not stop.is_set():
                        for n in conn.notifies(timeout=0.5):
                            on_message(n.payload)
            except psycopg.Error as err:
                if not stop.is_set():
                    log.warning("store %s: LISTEN %s failed (%s); retrying", self.describe(), channel, _short(err))
                    stop.wait(2.0)

    def run_script(self, conn: Conn, sql: str) -> None:
        assert isinstance(conn, _PgConn)
        conn.raw.execute(sql)  # several statements, no parameters: sent as one simple query

    def quick_check(self) -> list[str]:
        with self.read() as c:
            c.execute("SELECT 1").fetchone()
        return ["ok"]

    def close(self) -> None:
        self.pool.close()


def _short(err: BaseException) -> str:
    return redact_url(f"{type(err).__name__}: {err}".splitlines()[0])[:200]


def is_postgres_url(target: str | Path) -> bool:
    return isinstance(target, str) and urlsplit(target).scheme in ("postgresql", "postgres")


def open_backend(target: str | Path, **pg_options: Any) -> Backend:
    """``postgresql://…`` → PostgreSQL; ``sqlite:///path``, ``sqlite:path`` or a plain path → SQLite."""
    if is_postgres_url(target):
        return PostgresBackend(str(target), **pg_options)
    text = str(target)
    if text.startswith("sqlite:"):
        text = text.removeprefix("sqlite:")
        text = text[2:] if text.startswith("//") else text
    return SqliteBackend(Path(text))


def describe_target(target: str | Path) -> str:
    """How a database is named in messages (PostgreSQL passwords redacted)."""
    return redact_url(str(target)) if is_postgres_url(target) else str(target)
