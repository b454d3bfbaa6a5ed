"""The form journey's rows: a runner's program, their shoes and which pair each run was in (docs/program.md).

Every runner-scoped read takes ``runners`` (who may be seen; None = everyone) like the run lists do. Shoe measures
are SQL aggregates rendered from :data:`edge_agent.common.measures.COMBINE` (the one pooling definition), over the
runs joined with their shoe tags.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from edge_agent.contract import SHOE_NAME_PATTERN
from plugin.store.backend import StoreError
from plugin.store.base import Runners, StoreBase, run_filters
from plugin.store.measures_sql import combine_sql

SHOE_NAME_RE = re.compile(SHOE_NAME_PATTERN)
TAG_SOURCES = ("agent", "dashboard", "cli")
#: The pooled columns a shoe comparison shows (plus the run count and running time).
SHOE_MEASURES = ("steps", "cadence_spm", "valr_mean", "contact_ms", "rearfoot", "midfoot", "forefoot")
_SHOE_AGG = (
    "COUNT(*) AS runs, COALESCE(SUM(duration_s), 0) AS duration_s, MIN(started_at) AS first_run, "
    "MAX(started_at) AS last_run, " + combine_sql("runs", columns=SHOE_MEASURES)
)


def check_shoe_name(name: object) -> str:
    if not isinstance(name, str) or not SHOE_NAME_RE.match(name) or len(name) > 64 or name.strip() != name:
        raise ValueError(f"shoe name {str(name)[:64]!r}: 1–64 printable characters, no surrounding spaces")
    return name


def _program_dict(row: dict[str, Any]) -> dict[str, Any]:
    row["skip_transition"] = bool(row["skip_transition"])
    row["assessment"] = json.loads(row["assessment"])
    row["target"] = json.loads(row.pop("target_json")) if row.get("target_json") else None
    return row


class ProgramQueries(StoreBase):
    # -- programs -------------------------------------------------------------------------------------------------
    def save_program(
        self,
        runner: str,
        *,
        started_at: float,
        assessment: dict[str, Any],
        cadence_goal_pct: float,
        goals: str = "",
        injury_note: str = "",
        skip_transition: bool = False,
    ) -> None:
        """Start (or restart) ``runner``'s program: a new start replaces the old one, its pushes included."""
        now = time.time()
        with self._tx() as w:
            w.execute(
                "INSERT INTO programs(runner, started_at, goals, injury_note, cadence_goal_pct, skip_transition, "
                "assessment, notified_stage, target_json, updated_at) VALUES (?,?,?,?,?,?,?,0,NULL,?) "
                "ON CONFLICT(runner) DO UPDATE SET started_at = excluded.started_at, goals = excluded.goals, "
                "injury_note = excluded.injury_note, cadence_goal_pct = excluded.cadence_goal_pct, "
                "skip_transition = excluded.skip_transition, assessment = excluded.assessment, "
                "notified_stage = 0, target_json = NULL, updated_at = excluded.updated_at",
                (runner, started_at, goals, injury_note, cadence_goal_pct, int(skip_transition),
                 json.dumps(assessment, allow_nan=False), now),
            )  # fmt: skip

    def update_program(self, runner: str, **fields: Any) -> bool:
        """Change what the runner entered (``goals``, ``injury_note``, ``skip_transition``); False if no program."""
        allowed = {"goals", "injury_note", "skip_transition"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"program fields {sorted(unknown)} cannot be changed (allowed: {sorted(allowed)})")
        if not fields:
            return self.get_program(runner) is not None
        sets = ", ".join(f"{k} = ?" for k in fields)
        args = [int(v) if k == "skip_transition" else v for k, v in fields.items()]
        with self._tx() as w:
            cur = w.execute(
                f"UPDATE programs SET {sets}, updated_at = ? WHERE runner = ?", (*args, time.time(), runner)
            )
            return cur.rowcount == 1

    def get_program(self, runner: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM programs WHERE runner = ?", (runner,))
        return _program_dict(rows[0]) if rows else None

    def list_programs(self, runners: Runners = None) -> list[dict[str, Any]]:
        where, args = run_filters(None, None, None, None, "started_at", runners)
        return [_program_dict(r) for r in self._rows(f"SELECT * FROM programs{where} ORDER BY runner", args)]

    def delete_program(self, runner: str) -> bool:
        with self._tx() as w:
            return w.execute("DELETE FROM programs WHERE runner = ?", (runner,)).rowcount == 1

    def mark_stage_notified(self, runner: str, stage: int, started_at: float) -> bool:
        """Record that completing ``stage`` was pushed; True only for the one caller that moved it forward (two
        workers evaluating one runner push once). ``started_at`` pins the program it belongs to."""
        with self._tx() as w:
            cur = w.execute(
                "UPDATE programs SET notified_stage = ? WHERE runner = ? AND started_at = ? AND notified_stage < ?",
                (stage, runner, started_at, stage),
            )
            return cur.rowcount == 1

    def set_program_target(self, runner: str, target: dict[str, Any]) -> None:
        with self._tx() as w:
            w.execute(
                "UPDATE programs SET target_json = ? WHERE runner = ?", (json.dumps(target, allow_nan=False), runner)
            )

    # -- shoes ----------------------------------------------------------------------------------------------------
    def shoe(self, runner: str, name: str, *, create: bool = False, at: float | None = None) -> dict[str, Any] | None:
        """``runner``'s pair called ``name`` (created first with ``create``)."""
        check_shoe_name(name)
        if create:
            with self._tx() as w:
                w.execute(
                    "INSERT INTO shoes(shoe_id, runner, name, added_at) VALUES (?,?,?,?) "
                    "ON CONFLICT(runner, name) DO NOTHING",
                    (uuid.uuid4().hex[:16], runner, name, time.time() if at is None else at),
                )
        rows = self._rows("SELECT * FROM shoes WHERE runner = ? AND name = ?", (runner, name))
        return rows[0] if rows else None

    def get_shoe(self, shoe_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM shoes WHERE shoe_id = ?", (shoe_id,))
        return rows[0] if rows else None

    def retire_shoe(self, shoe_id: str, at: float | None = None) -> bool:
        with self._tx() as w:
            cur = w.execute(
                "UPDATE shoes SET retired_at = ? WHERE shoe_id = ? AND retired_at IS NULL",
                (time.time() if at is None else at, shoe_id),
            )
            return cur.rowcount == 1

    def tag_run(self, run_id: str, shoe_id: str | None, *, source: str, replace: bool = True) -> bool:
        """Tag a run with a pair (``shoe_id`` None removes the tag). ``replace`` False keeps an existing tag (the
        agent's tag never overrides one made by hand). True if the run's tag is now ``shoe_id``."""
        if source not in TAG_SOURCES:
            raise ValueError(f"tag source {source!r} is not one of {', '.join(TAG_SOURCES)}")
        with self._tx() as w:
            if shoe_id is None:
                w.execute("DELETE FROM run_shoes WHERE run_id = ?", (run_id,))
                return True
            runner = w.execute("SELECT runner FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            owner = w.execute("SELECT runner FROM shoes WHERE shoe_id = ?", (shoe_id,)).fetchone()
            if runner is None or owner is None:
                raise StoreError(f"run {run_id!r} or shoe {shoe_id!r} not found")
            if runner[0] != owner[0]:
                raise StoreError(f"run {run_id!r} is {runner[0]!r}'s, the shoe {owner[0]!r}'s")
            conflict = "DO UPDATE SET shoe_id = excluded.shoe_id, source = excluded.source, " \
                "tagged_at = excluded.tagged_at" if replace else "DO NOTHING"  # fmt: skip
            w.execute(
                f"INSERT INTO run_shoes(run_id, shoe_id, source, tagged_at) VALUES (?,?,?,?) ON CONFLICT(run_id) "
                f"{conflict}",
                (run_id, shoe_id, source, time.time()),
            )
            now = w.execute("SELECT shoe_id FROM run_shoes WHERE run_id = ?", (run_id,)).fetchone()
            return now is not None and now[0] == shoe_id

    def run_shoe(self, run_id: str) -> dict[str, Any] | None:
        rows = self._rows(
            "SELECT s.*, t.source, t.tagged_at FROM run_shoes t JOIN shoes s ON s.shoe_id = t.shoe_id "
            "WHERE t.run_id = ?",
            (run_id,),
        )
        return rows[0] if rows else None

    def shoes(self, runner: str) -> list[dict[str, Any]]:
        """``runner``'s pairs with their pooled measures over the runs tagged with them (oldest pair first)."""
        return self._rows(
            f"SELECT s.shoe_id, s.name, s.added_at, s.retired_at, s.alerted_at, {_SHOE_AGG} FROM shoes s "
            "LEFT JOIN run_shoes t ON t.shoe_id = s.shoe_id LEFT JOIN runs ON runs.run_id = t.run_id "
            "WHERE s.runner = ? GROUP BY s.shoe_id, s.name, s.added_at, s.retired_at, s.alerted_at "
            "ORDER BY s.added_at, s.name",
            (runner,),
        )

    def shoe_runs(self, shoe_id: str, *, limit: int = 1000) -> list[dict[str, Any]]:
        """The runs in a pair, oldest first (run id and start)."""
        return self._rows(
            "SELECT runs.run_id, runs.started_at FROM run_shoes t JOIN runs ON runs.run_id = t.run_id "
            "WHERE t.shoe_id = ? ORDER BY runs.started_at LIMIT ?",
            (shoe_id, int(limit)),
        )

    def pooled_runs(
        self,
        runner: str,
        *,
        run_ids: list[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        not_shoe: str | None = None,
        cadence_range: tuple[float, float] | None = None,
    ) -> dict[str, Any]:
        """The pooled measures of ``runner``'s runs chosen by the filters (``not_shoe``: runs not in that pair)."""
        where, args = run_filters(None, runner, since, until, "started_at")
        clauses = [where[len(" WHERE ") :]]
        if run_ids is not None:
            clauses.append(f"run_id IN ({','.join('?' * len(run_ids))})" if run_ids else "1 = 0")
            args.extend(run_ids)
        if not_shoe is not None:
            clauses.append("run_id NOT IN (SELECT run_id FROM run_shoes WHERE shoe_id = ?)")
            args.append(not_shoe)
        if cadence_range is not None:
            clauses.append("cadence_spm BETWEEN ? AND ?")
            args.extend(cadence_range)
        return self._rows(f"SELECT {_SHOE_AGG} FROM runs WHERE {' AND '.join(clauses)}", args)[0]

    def mark_shoe_alerted(self, shoe_id: str, at: float) -> bool:
        """True for the one caller that raises the pair's shoe-change alert (once per pair, across workers)."""
        with self._tx() as w:
            cur = w.execute("UPDATE shoes SET alerted_at = ? WHERE shoe_id = ? AND alerted_at IS NULL", (at, shoe_id))
            return cur.rowcount == 1
