"""The retraining program and the shoes on simulated histories (plugin/history.py), stored and evaluated as the
service does — each run's windows, then its RunSummary, then the risk rules and the program — on SQLite and
PostgreSQL."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from edge_agent.contract import RunSummary, WindowSummary, parse_target, runner_target_topic
from plugin.history import WEEK, RunnerModel, Scenario, generate_history, history_start
from plugin.program import AssessmentError, ProgramService, journey
from plugin.program.stages import CADENCE_LIMIT_PCT_PER_WEEK, HELD_RUNS
from plugin.risk import RiskEngine
from plugin.store import Store

END = 1_790_000_000.0  # a fixed "now" (a Thursday): the histories are the same on every run of the tests
RUNNER = "alex"
PROGRAM_WEEK = 4


@dataclass
class Follow:
    """A simulated runner fed through the risk engine and the program, with what the program sent out."""

    store: Store
    pushes: list[tuple[str, str]] = field(default_factory=list)
    published: list[tuple[str, bytes, int, bool]] = field(default_factory=list)
    alerts: list[Any] = field(default_factory=list)
    clock: list[float] = field(default_factory=lambda: [0.0])
    skip_transition: bool = False

    def __post_init__(self) -> None:
        self.engine = RiskEngine(self.store)
        self.program = ProgramService(
            self.store, publish=lambda *a: self.published.append(a), push=lambda t, b: self.pushes.append((t, b)),
            clock=lambda: self.clock[0],
        )  # fmt: skip

    def feed(self, msgs: Iterable[WindowSummary | RunSummary], *, start_at: float | None, in_run_rules: bool) -> None:
        """Store each run's windows (one batch) then its summary; start the program at ``start_at``."""
        windows: list[WindowSummary] = []
        for m in msgs:
            if isinstance(m, WindowSummary):
                windows.append(m)
                continue
            if start_at is not None and m.started_at >= start_at:
                self.clock[0] = start_at
                self.program.start(RUNNER, at=start_at, goals="10 km without knee pain", injury_note="ITBS 2024",
                                   skip_transition=self.skip_transition)  # fmt: skip
                start_at = None
            self.clock[0] = m.ended_at
            if in_run_rules:
                for w in windows:
                    self.store.insert_message(w, 0.0)
                    self.alerts += self.engine.on_summary(w)
            else:
                self.store.insert_many(windows)
            windows = []
            self.store.insert_message(m, 0.0)
            self.alerts += self.engine.on_run(m)
            self.alerts += self.program.on_run(m).alerts

    def targets(self) -> list[Any]:
        return [parse_target(payload) for _, payload, _, _ in self.published]


def history(weeks: int, scenario: Scenario, **kw: Any) -> list[WindowSummary | RunSummary]:
    return list(generate_history(weeks=weeks, end=END, scenario=scenario, step_records_last_runs=0, **kw))


def program_start(weeks: int) -> float:
    return history_start(weeks=weeks, end=END) + PROGRAM_WEEK * WEEK


def test_a_gradual_cadence_rise_completes_stage_one(store: Store) -> None:
    """+7.5 % over 3 weeks (2.5 %/week), VALR falling with it: stage 1 completes once, is pushed once, and the agent
    gets this week's target at every change — a ramp, then the goal."""
    weeks = 9
    f = Follow(store)
    f.feed(history(weeks, Scenario(program=(PROGRAM_WEEK, 0.075, 3)), seed=4), start_at=program_start(weeks),
           in_run_rules=False)  # fmt: skip
    doc = journey(store, RUNNER, now=f.clock[0])
    assert doc is not None
    a = doc["assessment"]
    assert a["runs"] >= 12 and 160 < a["cadence_spm"] < 176 and 40 < a["valr_mean"] < 60
    assert doc["completed"].keys() == {"1"} and doc["stage"] == 2 and not doc["lock"]["locked"]
    assert not [m for m in doc["messages"] if m["code"] == "cadence_too_fast"], doc["messages"]
    # held over the last runs of stage 1: +5…12 % cadence and VALR ≥ 10 % under baseline
    held = [r for r in doc["runs"] if r["holds_stage1"]]
    assert len(held) >= HELD_RUNS
    assert [t for t, _ in f.pushes] == [f"{RUNNER}: stage 1 done — Lighter heel strike"]
    assert "stage 2" in f.pushes[0][1].lower()
    # targets: published retained, QoS 1, on the runner's topic; the cadence ramps by ≤ 2.5 % a week to the goal
    assert {(t, q, r) for t, _, q, r in f.published} == {(runner_target_topic(RUNNER), 1, True)}
    cadences = [t.cadence.spm for t in f.targets()]
    base = a["cadence_spm"]
    assert cadences[0] == pytest.approx(base * 1.025, abs=0.1) and cadences[-1] == pytest.approx(base * 1.075, abs=0.1)
    assert all(0 < b - x <= 0.026 * base for x, b in itertools.pairwise(cadences))
    last = f.targets()[-1]
    assert last.set_by == "program" and last.loading is not None
    assert last.loading.ceiling_bw_s == pytest.approx(0.9 * a["valr_mean"])
    # the stored program agrees with what was published
    assert store.get_program(RUNNER)["target"]["target_id"] == last.target_id  # type: ignore[index]


def test_fifteen_percent_in_a_week_is_told_to_slow_down(store: Store) -> None:
    weeks = 6
    f = Follow(store)
    f.feed(history(weeks, Scenario(program=(PROGRAM_WEEK, 0.15, 1)), seed=5), start_at=program_start(weeks),
           in_run_rules=False)  # fmt: skip
    doc = journey(store, RUNNER, now=program_start(weeks) + 6.5 * 86400)  # the end of the program's first week
    assert doc is not None
    codes = {m["code"]: m["text"] for m in doc["messages"]}
    assert "cadence_too_fast" in codes, doc["messages"]
    assert doc["this_week"]["cadence_change_pct"] > 12 > CADENCE_LIMIT_PCT_PER_WEEK
    assert codes["cadence_too_fast"].startswith("Slow down: your cadence rose +1")
    assert f"target is {doc['targets']['cadence_spm']:.0f}" in codes["cadence_too_fast"]
    # above the 5–10 % band is not "held": stage 1 does not complete by jumping
    assert doc["stage"] == 1 and doc["completed"] == {} and not f.pushes
    assert "cadence_too_high" in codes


def test_stage_two_stays_locked_while_a_loading_alert_is_open(store: Store) -> None:
    """A loading spike in week 5 raises a loading alert that stays open: stage 1 holds but stage 2 stays locked
    (the target keeps the metronome and names stage 1); acknowledging it unlocks stage 2 with the next run."""
    weeks = 9
    f = Follow(store)
    msgs = history(weeks, Scenario(program=(PROGRAM_WEEK, 0.075, 3), spike=(4 * 5 + 1, 10, 3, 1.8)), seed=4)
    last_run = max(i for i, m in enumerate(msgs) if isinstance(m, RunSummary))
    first_of_last = max(i for i, m in enumerate(msgs[:last_run]) if isinstance(m, RunSummary)) + 1
    f.feed(msgs[:first_of_last], start_at=program_start(weeks), in_run_rules=True)
    spikes = [a for a in f.alerts if a.rule == "loading_spike"]
    assert len(spikes) == 1, [a.rule for a in f.alerts]
    doc = journey(store, RUNNER, now=f.clock[0])
    assert doc is not None
    assert "1" in doc["completed"] and doc["stage"] == 1, (doc["stage"], doc["completed"])
    assert doc["lock"]["locked"] and "loading alert is open" in doc["lock"]["reason"]
    assert [s["status"] for s in doc["stages"]] == ["done", "locked", "upcoming"]
    assert doc["targets"]["metronome"] is True and f.targets()[-1].note.startswith("Stage 1")
    # the push names the lock
    assert len(f.pushes) == 1 and "loading alert is open" in f.pushes[0][1]
    # acknowledge → the next run starts stage 2
    assert store.ack_alert(spikes[0].alert_id, "alex", at=f.clock[0])
    f.feed(msgs[first_of_last:], start_at=None, in_run_rules=True)
    doc = journey(store, RUNNER, now=f.clock[0])
    assert doc is not None and doc["stage"] == 2 and not doc["lock"]["locked"]
    assert f.targets()[-1].note.startswith("Stage 2")


def test_skipping_the_transition_is_fine(store: Store) -> None:
    """Stage 2 skipped: stage 3 follows stage 1 and fades the metronome out; 8 held runs later the program is done,
    each completed stage pushed once."""
    weeks = 9
    f = Follow(store, skip_transition=True)
    msgs = history(weeks, Scenario(program=(PROGRAM_WEEK, 0.075, 3)), seed=4)
    f.feed(msgs, start_at=program_start(weeks), in_run_rules=False)
    stage1 = float(journey(store, RUNNER, now=f.clock[0])["completed"]["1"])  # type: ignore[index]
    doc = journey(store, RUNNER, now=stage1 + 1.0)
    assert doc is not None and doc["stage"] == 3 and not doc["done"]
    assert [s["status"] for s in doc["stages"]] == ["done", "skipped", "current"]
    assert "that is fine" in doc["lock"]["reason"] and "Skipping this stage is fine" in doc["stages"][1]["why"]
    assert doc["targets"]["metronome"] is False and 50 <= doc["progress_pct"] < 100  # 1 of 2 stages
    assert any(t.cues.metronome is False for t in f.targets())
    doc = journey(store, RUNNER, now=f.clock[0])
    assert doc is not None and doc["done"] and doc["progress_pct"] == 100
    assert [s["status"] for s in doc["stages"]] == ["done", "skipped", "done"]
    assert [t.split(" — ")[0] for t, _ in f.pushes] == [f"{RUNNER}: stage 1 done", f"{RUNNER}: stage 3 done"]


def test_a_shoe_change_with_a_valr_jump_alerts_once(store: Store) -> None:
    """Runs name their pair (the agent's ``shoe:``); the first runs in a new pair load 30 % faster: one
    shoe_change alert, on the second run in the pair, never again; the comparison table shows the jump."""
    weeks = 8
    first_new = 4 * 6
    f = Follow(store)
    f.feed(history(weeks, Scenario(shoe_change=(first_new, "Old pair", "New pair", 1.3, 0.0)), seed=6),
           start_at=None, in_run_rules=True)  # fmt: skip
    shoe_alerts = [a for a in f.alerts if a.rule == "shoe_change"]
    assert len(shoe_alerts) == 1, [a.rule for a in f.alerts]
    [alert] = shoe_alerts
    assert alert.title.startswith("New shoes \u201cNew pair\u201d: VALR +") and "ease in" in alert.title
    assert alert.evidence["change"]["valr_pct"] >= 15 and len(alert.evidence["runs"]) == 2
    assert "First 2 runs in the new pair" in alert.message
    stored = store.list_alerts(rule="shoe_change")
    assert [a["alert_id"] for a in stored] == [alert.alert_id]
    # the same runs again (re-delivery, a restart): nothing new
    again = ProgramService(store)
    for m in history(weeks, Scenario(shoe_change=(first_new, "Old pair", "New pair", 1.3, 0.0)), seed=6):
        if isinstance(m, RunSummary):
            assert again.on_run(m).alerts == []
    # per pair: runs, time, steps, measures against the other runs
    from plugin.program.shoes import compare_shoes

    rows = {r["name"]: r for r in compare_shoes(store, RUNNER)}
    assert rows["Old pair"]["runs"] == first_new and rows["New pair"]["runs"] == store.count_runs() - first_new
    assert rows["New pair"]["hours"] > 1 and rows["New pair"]["steps"] > 1000
    assert rows["New pair"]["change"]["valr_pct"] > 0


def test_agent_tags_never_override_a_retro_tag_and_bad_names_are_refused(store: Store) -> None:
    msgs = history(5, Scenario(shoe_change=(0, "A", "Road", 1.0, 0.0)), seed=2)
    Follow(store).feed(msgs, start_at=None, in_run_rules=False)
    runs = store.list_runs(limit=100)
    assert {store.run_shoe(r["run_id"])["name"] for r in runs} == {"Road"}  # type: ignore[index]
    trail = store.shoe(RUNNER, "Trail", create=True)
    assert trail is not None
    rid = runs[0]["run_id"]
    assert store.tag_run(rid, trail["shoe_id"], source="dashboard")
    road = store.shoe(RUNNER, "Road")
    assert road is not None
    assert not store.tag_run(rid, road["shoe_id"], source="agent", replace=False)  # the agent re-sends its run
    assert store.run_shoe(rid)["name"] == "Trail"  # type: ignore[index]
    other = store.shoe("sam", "Trail", create=True)
    with pytest.raises(Exception, match="is 'alex'"):
        store.tag_run(rid, other["shoe_id"], source="cli")  # type: ignore[index]
    for bad in ("", " padded", "x" * 65, "tab\there"):
        with pytest.raises(ValueError, match="shoe name"):
            store.shoe(RUNNER, bad, create=True)
    assert store.tag_run(rid, None, source="cli") and store.run_shoe(rid) is None


def test_a_shoe_name_is_checked_where_it_enters() -> None:
    """The agent's config and the wire contract refuse a control character in a pair's name, naming the field."""
    from edge_agent.config import AgentConfig
    from edge_agent.contract import PayloadError, parse_stored_message

    run = next(m for m in history(1, Scenario(shoe_change=(0, "a", "Road", 1.0, 0.0)), seed=1)
               if isinstance(m, RunSummary))  # fmt: skip
    assert parse_stored_message(run.model_dump_json().encode()).shoe == "Road"  # type: ignore[union-attr]
    bad = run.model_dump_json().replace('"shoe":"Road"', '"shoe":"Ro\\u0007ad"')
    with pytest.raises(PayloadError, match="shoe"):
        parse_stored_message(bad.encode())
    with pytest.raises(ValueError, match="shoe"):
        AgentConfig(shoe="tab\there")
    assert AgentConfig(shoe="Carbon racer").shoe == "Carbon racer"


def test_a_runner_name_that_cannot_be_a_topic_gets_the_program_without_targets(store: Store) -> None:
    """``footfall demo``'s "Demo Runner": the program works; no target is built or published, and it says why."""
    name = "Demo Runner"
    f = Follow(store)
    msgs = history(6, Scenario(program=(PROGRAM_WEEK, 0.075, 3)), seed=4, runner=RunnerModel(name=name))
    f.feed(msgs, start_at=None, in_run_rules=False)
    doc = f.program.start(name, at=program_start(6))
    assert doc["stage"] == 1 and doc["published_target"] is None and f.published == []
    assert [m["code"] for m in doc["messages"]].count("no_target_topic") == 1
    assert f.program.publish_all() == 0


def test_no_program_without_four_weeks_of_runs(store: Store) -> None:
    Follow(store).feed(history(1, Scenario(), seed=1, runner=RunnerModel(runs_per_week=2)), start_at=None,
                       in_run_rules=False)  # fmt: skip
    with pytest.raises(AssessmentError, match="needs 3"):
        ProgramService(store).start(RUNNER, at=END)
    with pytest.raises(ValueError, match="cadence_goal_pct"):
        ProgramService(store).start(RUNNER, at=END, cadence_goal_pct=15)
    assert store.get_program(RUNNER) is None


def test_program_rows_on_both_backends(store: Store) -> None:
    """What the store keeps: one program per runner (a restart replaces it), its fields, the once-only marks."""
    assessment = {"cadence_spm": 168.0, "valr_mean": 50.0, "non_rearfoot_pct": 12.0}
    store.save_program(RUNNER, started_at=100.0, assessment=assessment, cadence_goal_pct=7.5, goals="g")
    p = store.get_program(RUNNER)
    assert p is not None and p["assessment"] == assessment and p["goals"] == "g" and p["skip_transition"] is False
    assert store.update_program(RUNNER, skip_transition=True, injury_note="knee")
    assert store.get_program(RUNNER)["skip_transition"] is True  # type: ignore[index]
    with pytest.raises(ValueError, match="cannot be changed"):
        store.update_program(RUNNER, stage=3)
    assert store.mark_stage_notified(RUNNER, 1, 100.0) and not store.mark_stage_notified(RUNNER, 1, 100.0)
    assert not store.mark_stage_notified(RUNNER, 2, 99.0)  # another program's mark
    store.save_program(RUNNER, started_at=200.0, assessment=assessment, cadence_goal_pct=5.0)
    p = store.get_program(RUNNER)
    assert p is not None and p["notified_stage"] == 0 and p["goals"] == "" and p["cadence_goal_pct"] == 5.0
    store.set_program_target(RUNNER, {"target_id": "t1"})
    assert store.get_program(RUNNER)["target"] == {"target_id": "t1"}  # type: ignore[index]
    assert [x["runner"] for x in store.list_programs(runners={"sam"})] == []
    assert [x["runner"] for x in store.list_programs(runners={RUNNER})] == [RUNNER]
    shoe = store.shoe(RUNNER, "Road", create=True, at=5.0)
    assert shoe is not None and store.mark_shoe_alerted(shoe["shoe_id"], 6.0)
    assert not store.mark_shoe_alerted(shoe["shoe_id"], 7.0)
    assert store.retire_shoe(shoe["shoe_id"]) and not store.retire_shoe(shoe["shoe_id"])
    assert store.delete_program(RUNNER) and store.get_program(RUNNER) is None
    json.dumps(store.checksums())  # the new tables are in the migrate-store checksums
    assert {"programs", "shoes", "run_shoes"} <= set(store.checksums())
