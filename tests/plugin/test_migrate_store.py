"""``footfall-dashboard migrate-store``: a home SQLite store copied into PostgreSQL and back through the real CLI,
losslessly — the same rows, the same checksums, the same API answers — and a non-empty target refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin.cli import main as cli
from plugin.program import ProgramService, journey
from plugin.store import Store
from plugin.trends import trends
from tests.support.dashboard import seed_store
from tests.support.postgres import PostgresCluster


def test_a_home_store_copies_into_postgresql_and_back_verified(
    tmp_path: Path, pg_cluster: PostgresCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home.db"
    with seed_store(home, weeks=3) as s:  # two runners, step records, alerts
        s.set_setting("notify_urls", ["json://127.0.0.1:9/x"])
        s.add_user("ada", "admin", password="correct horse battery")
        s.add_team("red")
        s.set_team_members("red", ["alex"])
        ProgramService(s).start("alex", at=s.list_runs(runner="alex", limit=1)[0]["started_at"], goals="10 km")
        newest = s.list_runs(runner="alex", limit=1)[0]
        road = s.shoe("alex", "Road", create=True, at=newest["started_at"])
        s.tag_run(newest["run_id"], road["shoe_id"], source="cli")  # type: ignore[index]
        s.set_program_target("alex", {"target_id": "t1", "runner": "alex"})
        before = s.checksums()
        assert all(before[t][0] == 1 for t in ("programs", "shoes", "run_shoes"))
        now = newest["ended_at"] + 1
        api_before = (trends(s, period="week", runner="alex"), s.get_run(s.list_runs(limit=1)[0]["run_id"]),
                      journey(s, "alex", now=now))  # fmt: skip
    club = pg_cluster.create_db()
    assert cli(["migrate-store", "--from", f"sqlite:{home}", "--to", club]) == 0
    out = capsys.readouterr().out
    assert "verified:" in out and "MISMATCH" not in out and "windows" in out
    with Store(club) as pg:
        assert pg.checksums() == before  # every table: same rows, same content
        assert pg.summaries() == before["windows"][0]
        run_id = pg.list_runs(limit=1)[0]["run_id"]
        assert (
            trends(pg, period="week", runner="alex"),
            pg.get_run(run_id),
            journey(pg, "alex", now=now),
        ) == api_before
        assert pg.verify_password("ada", "correct horse battery") is not None  # the hash travelled intact
    # a second copy into the same, now non-empty, database is refused and changes nothing
    assert cli(["migrate-store", "--from", f"sqlite:{home}", "--to", club]) == 2
    assert "not empty" in capsys.readouterr().err
    # and back: PostgreSQL → a new SQLite file, still identical
    back = tmp_path / "back.db"
    assert cli(["migrate-store", "--from", club, "--to", f"sqlite:{back}"]) == 0
    with Store(back) as s:
        assert s.checksums() == before


def test_a_missing_source_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli(["migrate-store", "--from", f"sqlite:{tmp_path / 'nope.db'}", "--to", f"sqlite:{tmp_path / 'x.db'}"]) == 2
    )
    assert "no such database" in capsys.readouterr().err
