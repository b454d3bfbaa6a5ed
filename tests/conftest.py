"""Shared fixtures: real brokers, the shared recordings folder, profiles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.brokers import MosquittoBroker, have_mosquitto, make_broker
from tests.support.paths import SHARED_DATA
from tests.support.postgres import PostgresCluster, have_postgres


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real recordings of ../shared/data; tests that need them skip (loudly) without them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real recordings not found at {SHARED_DATA} (set FOOTFALL_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A private broker on a free loopback port (Mosquitto if installed, else embedded amqtt)."""
    b = make_broker(tmp_path / "broker")
    b.start()
    try:
        yield b  # type: ignore[misc]
    finally:
        b.stop()


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[object]:
    """Build Mosquitto brokers with options (persistence, queue limits) for fault tests."""
    if not have_mosquitto():
        pytest.skip("fault tests need Mosquitto (SIGKILL/restart); .ci/run installs it")
    made: list[MosquittoBroker] = []

    def factory(**kw: object) -> MosquittoBroker:
        b = MosquittoBroker(tmp_path / f"mosq{len(made)}", **kw)  # type: ignore[arg-type]
        made.append(b)
        return b

    yield factory
    for b in made:
        b.stop()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """One throw-away PostgreSQL server for the whole session (started on first use)."""
    if not have_postgres():
        pytest.skip("PostgreSQL server not installed (apt-get install postgresql; .ci/run installs it)")
    cluster = PostgresCluster()
    try:
        cluster.start()
        from plugin.store import Store

        Store(cluster.create_db("footfall_template")).close()  # migrated once; tests copy it
        cluster.templates.add("footfall_template")
        yield cluster
    finally:
        cluster.stop()
