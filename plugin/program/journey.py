"""A runner's journey as the dashboard shows it: the replayed stage, this week's targets, progress, what to do and
what not to do yet, warnings when a change is too fast, and the per-run and per-week series for the charts.

:func:`journey` reads the store (the program row, the run and week trend points, the loading alerts) and is pure
otherwise; :func:`program_target` turns it into the :class:`~edge_agent.contract.FeedbackTarget` the agent plays.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from edge_agent.contract import RUNNER_ID_PATTERN, FeedbackTarget
from plugin.program.shoes import compare_shoes, current_shoe
from plugin.program.stages import (
    CADENCE_LIMIT_PCT_PER_WEEK,
    CADENCE_MAX_PCT,
    CADENCE_MIN_PCT,
    CONSOLIDATE_RUNS,
    HELD_RUNS,
    LOADING_RULES,
    SOURCES,
    STAGE1_STRIKE_DRIFT_POINTS,
    STAGE_TEXT,
    TRANSITION_GOAL_POINTS,
    TRANSITION_LIMIT_POINTS_PER_WEEK,
    VALR_DROP_PCT,
    WEEK,
    Baseline,
    LoadingAlert,
    Replay,
    RunPoint,
    cadence_rise_pct,
    replay,
    stage1_holds,
    weekly_target_pct,
)
from plugin.targets import make_target
from plugin.trends import trend_points

TARGET_VALID_S = 8 * 86400.0
RUNNER_ID_RE = re.compile(RUNNER_ID_PATTERN)


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _non_rearfoot(point: dict[str, Any]) -> float | None:
    rear = point["zone_share_pct"]["rearfoot"]
    return None if rear is None else 100.0 - rear


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def load_inputs(store: Any, program: dict[str, Any], now: float) -> tuple[Baseline, list[RunPoint], list[LoadingAlert]]:
    """The baseline, the runs started since the program did (before ``now``) and the loading alerts."""
    a = program["assessment"]
    base = Baseline(a["cadence_spm"], a["valr_mean"], a.get("non_rearfoot_pct") or 0.0)
    runner = program["runner"]
    runs = [
        RunPoint(p["run_id"], _ts(p["t"]), _ts(p["t"]) + float(p["duration_s"] or 0.0), p["cadence_spm"],
                 p["valr_mean"], _non_rearfoot(p))
        for p in trend_points(store, "run", runner=runner, since=program["started_at"], until=now)
    ]  # fmt: skip
    alerts = [
        LoadingAlert(a["created_at"], a["acked_at"], a["title"])
        for a in store.list_alerts(runner=runner, limit=1000)
        if a["rule"] in LOADING_RULES
    ]
    return base, runs, alerts


def _stage_progress(rp: Replay, base: Baseline, recent: dict[str, Any]) -> float:
    """How far into its current stage the runner is (0–1)."""
    if rp.done:
        return 1.0
    if rp.stage == 1:
        rise = cadence_rise_pct(base, recent["cadence_spm"]) or 0.0
        drop = 0.0 if recent["valr_mean"] is None else 100.0 * (1.0 - recent["valr_mean"] / base.valr_mean)
        parts = (rise / CADENCE_MIN_PCT, drop / VALR_DROP_PCT, rp.held_streak / HELD_RUNS)
        return sum(max(0.0, min(1.0, p)) for p in parts) / 3.0
    if rp.stage == 2:
        start = rp.transition_start_pct if rp.transition_start_pct is not None else base.non_rearfoot_pct
        gain = (recent["non_rearfoot_pct"] or start) - start
        return (max(0.0, min(1.0, gain / TRANSITION_GOAL_POINTS)) + rp.held_streak / HELD_RUNS) / 2.0
    return min(1.0, rp.stage3_held / CONSOLIDATE_RUNS)


def journey(store: Any, runner: str, *, now: float) -> dict[str, Any] | None:
    """The journey document of ``runner`` as of ``now`` (None without a program)."""
    program = store.get_program(runner)
    if program is None:
        return None
    base, runs, alerts = load_inputs(store, program, now)
    skip = program["skip_transition"]
    rp = replay(base, runs, alerts, started_at=program["started_at"], skip_transition=skip)
    goal_pct = float(program["cadence_goal_pct"])
    recent_runs = runs[-HELD_RUNS:]
    pooled = store.pooled_runs(runner, run_ids=[r.run_id for r in recent_runs])
    recent = {
        "runs": len(recent_runs),
        "cadence_spm": pooled["cadence_spm"],
        "valr_mean": pooled["valr_mean"],
        "non_rearfoot_pct": _mean([r.non_rearfoot_pct for r in recent_runs]),
    }
    loading_open = [a for a in alerts if a.open_at(now)]
    messages: list[dict[str, str]] = []

    # -- targets -------------------------------------------------------------------------------------------------
    ramp_pct = weekly_target_pct(goal_pct, rp.stage_since, now) if rp.stage == 1 and not rp.completed else goal_pct
    target_cadence = base.cadence_spm * (1.0 + ramp_pct / 100.0)
    targets: dict[str, Any] = {
        "cadence_spm": round(target_cadence, 1),
        "cadence_band_spm": round(max(2.0, 0.015 * target_cadence), 1),
        "cadence_goal_spm": round(base.cadence_spm * (1.0 + goal_pct / 100.0), 1),
        "cadence_rise_pct": ramp_pct,
        "valr_baseline_bw_s": base.valr_mean,
        "valr_ceiling_bw_s": base.valr_ceiling,
        "valr_max_pct_of_baseline": 100.0 - VALR_DROP_PCT,
        "metronome": rp.stage in (1, 2) and not rp.done,
        "non_rearfoot_max_pct": None,
    }

    # -- this week: too fast? ----------------------------------------------------------------------------------
    weeks = trend_points(store, "week", runner=runner, since=program["started_at"], until=now)
    week_series = [
        {"t": w["t"], "runs": w["runs"], "cadence_spm": w["cadence_spm"], "valr_mean": w["valr_mean"],
         "non_rearfoot_pct": _non_rearfoot(w)}
        for w in weeks
    ]  # fmt: skip
    this_week: dict[str, Any] = {"cadence_change_pct": None, "non_rearfoot_change_points": None}
    if week_series:
        cur = week_series[-1]
        prev = week_series[-2] if len(week_series) > 1 else {"cadence_spm": base.cadence_spm,
                                                              "non_rearfoot_pct": base.non_rearfoot_pct}  # fmt: skip
        if cur["cadence_spm"] is not None and prev["cadence_spm"]:
            this_week["cadence_change_pct"] = 100.0 * (cur["cadence_spm"] - prev["cadence_spm"]) / prev["cadence_spm"]
        if cur["non_rearfoot_pct"] is not None and prev["non_rearfoot_pct"] is not None:
            this_week["non_rearfoot_change_points"] = cur["non_rearfoot_pct"] - prev["non_rearfoot_pct"]
        this_week["reference"] = "the week before" if len(week_series) > 1 else "your assessment"
        change = this_week["cadence_change_pct"]
        if change is not None and change > CADENCE_LIMIT_PCT_PER_WEEK and not rp.done:
            messages.append({"level": "warning", "code": "cadence_too_fast", "text": (
                f"Slow down: your cadence rose {change:+.0f} % in a week against {this_week['reference']}. Raise it "
                f"by at most 2–3 % a week — tendons and bones adapt more slowly than your stride. This week's "
                f"target is {targets['cadence_spm']:.0f} steps/min."
            )})  # fmt: skip
        rise = cadence_rise_pct(base, cur["cadence_spm"])
        if rise is not None and rise > CADENCE_MAX_PCT + 2 and not rp.done:
            messages.append({"level": "warning", "code": "cadence_too_high", "text": (
                f"Your cadence is {rise:+.0f} % over your baseline, more than the 5–10 % the program aims for: "
                f"there is no benefit in going higher; settle at {targets['cadence_goal_spm']:.0f} steps/min."
            )})  # fmt: skip
        shift = this_week["non_rearfoot_change_points"]
        if rp.stage == 2 and shift is not None and shift > TRANSITION_LIMIT_POINTS_PER_WEEK:
            messages.append({"level": "warning", "code": "transition_too_fast", "text": (
                f"Slow down: your midfoot + forefoot share rose {shift:+.0f} points in a week; at most 10 points a "
                "week gives calves, Achilles and foot bones time to adapt (Ridge 2013)."
            )})  # fmt: skip
        drift = _points_over(cur["non_rearfoot_pct"], base.non_rearfoot_pct)
        if rp.stage == 1 and drift is not None and drift > STAGE1_STRIKE_DRIFT_POINTS:
            messages.append({"level": "warning", "code": "strike_not_yet", "text": (
                f"Your midfoot + forefoot share is {drift:+.0f} points over your assessment. Not yet: keep your "
                "usual strike in stage 1 and only get lighter; a strike change comes later, if at all."
            )})  # fmt: skip

    if not RUNNER_ID_RE.match(runner):
        messages.append({"level": "info", "code": "no_target_topic", "text": (
            f"The name {runner!r} cannot name the MQTT topic of a feedback target (letters, digits, _ and - only): "
            "the program works, but the Pi's metronome gets no targets from it until the agent's `runner:` is such "
            "a name."
        )})  # fmt: skip

    # -- stage 2 lock -------------------------------------------------------------------------------------------
    lock: dict[str, Any] = {"locked": False, "reason": None}
    if skip:
        lock = {"locked": False, "reason": "You chose to skip the strike transition — that is fine."}
    elif rp.stage == 1 and not rp.waiting_unlock:
        lock = {"locked": True, "reason": f"Unlocks when stage 1 holds over {HELD_RUNS} runs in a row."}
    elif rp.waiting_unlock or (rp.stage == 2 and loading_open):
        names = "; ".join(a.title for a in loading_open) or "a loading alert"
        if loading_open:
            lock = {
                "locked": True,
                "reason": f"Stage 1 holds, but a loading alert is open ({names}). "
                "Acknowledge it on the Alerts page once the cause is clear; the transition waits until then.",
            }
        else:
            lock = {"locked": False, "reason": "Unlocked: stage 2 starts with your next run."}
    if rp.stage == 2:
        start = rp.transition_start_pct if rp.transition_start_pct is not None else base.non_rearfoot_pct
        weeks_in = int((now - rp.stage_since) // WEEK) + 1
        targets["non_rearfoot_max_pct"] = min(100.0, start + TRANSITION_LIMIT_POINTS_PER_WEEK * weeks_in)
        if loading_open:
            targets["metronome"] = True
            messages.append({"level": "warning", "code": "transition_paused", "text": (
                "The transition is paused while a loading alert is open: keep your current strike mix."
            )})  # fmt: skip

    # -- stages -----------------------------------------------------------------------------------------------------
    n_stages = 2 if skip else 3
    frac = _stage_progress(rp, base, recent)
    done_count = len([s for s in rp.completed if s != 2 or not skip])
    progress = 100.0 if rp.done else 100.0 * (done_count + frac) / n_stages
    stages = []
    for number, text in STAGE_TEXT.items():
        if number == 2 and skip:
            status = "skipped"
        elif number in rp.completed:
            status = "done"
        elif number == rp.stage and not (number == 1 and rp.waiting_unlock):
            status = "current"
        elif number == 2 and lock["locked"]:
            status = "locked"
        else:
            status = "upcoming"
        stages.append({
            "number": number, "title": text.title, "what": text.what, "why": text.why, "not_yet": text.not_yet,
            "sources": [SOURCES[k] for k in text.sources], "status": status,
            "completed_at": rp.completed.get(number),
            "progress_pct": 100.0 if status == "done" else (100.0 * frac if status == "current" else 0.0),
        })  # fmt: skip
    run_series = [
        {"run_id": r.run_id, "t": r.start, "cadence_spm": r.cadence_spm, "valr_mean": r.valr_mean,
         "non_rearfoot_pct": r.non_rearfoot_pct, "holds_stage1": stage1_holds(base, r)}
        for r in runs
    ]  # fmt: skip
    shoe = current_shoe(store, runner)
    return {
        "runner": runner,
        "started_at": program["started_at"],
        "goals": program["goals"],
        "injury_note": program["injury_note"],
        "skip_transition": skip,
        "cadence_goal_pct": goal_pct,
        "assessment": program["assessment"],
        "stage": rp.stage,
        "stage_title": STAGE_TEXT[rp.stage].title,
        "stage_since": rp.stage_since,
        "done": rp.done,
        "completed": {str(k): v for k, v in rp.completed.items()},
        "progress_pct": progress,
        "stages": stages,
        "lock": lock,
        "targets": targets,
        "recent": recent,
        "this_week": this_week,
        "messages": messages,
        "runs": run_series,
        "weeks": week_series,
        "shoes": compare_shoes(store, runner),
        "current_shoe": None if shoe is None else shoe["name"],
        "published_target": program["target"],
    }


def _points_over(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def program_target(doc: dict[str, Any], *, now: float) -> FeedbackTarget | None:
    """The FeedbackTarget for the agent from a journey document (stage 3 fades the metronome out); None when the
    runner's name cannot name the target topic."""
    if not RUNNER_ID_RE.match(doc["runner"]):
        return None
    t = doc["targets"]
    stage = doc["stage"]
    note = f"Stage {stage}: {doc['stage_title']}" + (" (done: keep it up)" if doc["done"] else "")
    return make_target(
        doc["runner"],
        cadence_spm=t["cadence_spm"],
        cadence_band_spm=t["cadence_band_spm"],
        valr_baseline_bw_s=t["valr_baseline_bw_s"],
        valr_max_pct_of_baseline=t["valr_max_pct_of_baseline"],
        cues={"metronome": bool(t["metronome"])},
        set_by="program",
        note=note[:200],
        valid_for_s=TARGET_VALID_S,
        now=now,
    )


def target_key(target: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """What makes two published targets the same for the agent (ids and times aside)."""
    if not target:
        return None
    c, lo, cues = target.get("cadence") or {}, target.get("loading") or {}, target.get("cues") or {}
    return (c.get("spm"), c.get("band_spm"), lo.get("baseline_bw_s"), lo.get("max_pct_of_baseline"),
            cues.get("metronome"), target.get("note"))  # fmt: skip
