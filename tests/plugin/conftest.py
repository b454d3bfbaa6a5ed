"""The dashboard's tests run on both store backends: every test using ``store``, ``fresh_store`` or ``dbs`` runs
once on SQLite and once on PostgreSQL (one server per session, one database per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plugin.store import Store
from tests.support.postgres import PostgresCluster

BACKENDS = ("sqlite", "postgresql")


class Databases:
    """Database targets of one test on one backend: ``target(name)`` is a SQLite path or a PostgreSQL URL,
    the same for the same name within the test (so a store can be closed and opened again)."""

    def __init__(self, backend: str, tmp_path: Path, cluster: PostgresCluster | None) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.cluster = cluster
        self._made: dict[str, str] = {}

    def target(self, name: str = "dash", *, empty: bool = False) -> Path | str:
        """``empty``: a database without tables (PostgreSQL; a SQLite path is empty until opened anyway)."""
        if self.cluster is None:
            return self.tmp_path / f"{name}.db"
        if name not in self._made:
            self._made[name] = self.cluster.create_db(template=None if empty else "footfall_template")
        return self._made[name]

    def store(self, name: str = "dash", **kw: object) -> Store:
        return Store(self.target(name), **kw)  # type: ignore[arg-type]

    def drop(self) -> None:
        if self.cluster is not None:
            for url in self._made.values():
                self.cluster.drop_db(url.rsplit("/", 1)[1])


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def dbs(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Databases]:
    cluster = request.getfixturevalue("pg_cluster") if backend == "postgresql" else None
    d = Databases(backend, tmp_path, cluster)
    yield d
    d.drop()


@pytest.fixture
def store(dbs: Databases) -> Iterator[Store]:
    s = dbs.store()
    yield s
    s.close()
