"""The program's stages and their rules, replayed from the runs themselves (docs/program.md).

A runner's stage is never stored: :func:`replay` walks the runs since the program started, oldest first, and
applies the rules below, so a retro-tagged run, a deleted run or a late upload gives the same answer as live
ingest, and two workers can never disagree. The numbers each rule compares are the pooled measures of
:mod:`edge_agent.common.measures` as the trend queries return them (one point per run or per ISO week).

1. **Lighter heel strike** — cadence up 5–10 % over the baseline, raised at most ~2.5 %/week (the published
   target ramps; more than 3 % in a week is told to slow down), and VALR at least 10 % under baseline. Complete
   when :data:`HELD_RUNS` runs in a row hold both (cadence inside +5…+12 %), no sooner than 14 days in.
2. **Optional strike transition** — unlocked only when stage 1 holds and no loading alert (``loading_spike``,
   ``valr_absolute``) is open; the midfoot + forefoot share rises at most 10 points/week towards +30 points, VALR
   stays under its ceiling. ``skip_transition`` skips it, and that is fine.
3. **Consolidate** — hold cadence and VALR for :data:`CONSOLIDATE_RUNS` runs while the cues fade (metronome off).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

DAY = 86400.0
WEEK = 7 * DAY

HELD_RUNS = 3
CADENCE_MIN_PCT = 5.0
CADENCE_MAX_PCT = 10.0
#: Held cadence may overshoot the 10 % goal a little (one run's variation); beyond it is "too much".
CADENCE_HELD_MAX_PCT = 12.0
#: The published target rises by this much per week (Willy 2016 cued +7.5 % at once, in a lab-supervised
#: program; a runner alone ramps, e.g. Heiderscheit's +5 % and +10 % conditions reached over weeks).
CADENCE_RAMP_PCT_PER_WEEK = 2.5
#: A rise of more than this in one week is "too fast".
CADENCE_LIMIT_PCT_PER_WEEK = 3.0
VALR_DROP_PCT = 10.0
MIN_STAGE1_DAYS = 14.0
TRANSITION_GOAL_POINTS = 30.0
TRANSITION_LIMIT_POINTS_PER_WEEK = 10.0
#: In stage 1 the strike mix stays: a rise of more than this (points vs the assessment) is "not yet".
STAGE1_STRIKE_DRIFT_POINTS = 10.0
CONSOLIDATE_RUNS = 8
LOADING_RULES = ("loading_spike", "valr_absolute")

SOURCES = {
    "heiderscheit2011": "Heiderscheit BC et al. 2011, Med Sci Sports Exerc 43(2):296–302 — +5–10 % step rate "
    "lowers knee and hip loads",
    "willy2016": "Willy RW et al. 2016, Scand J Med Sci Sports 26(2):197–205 — a +7.5 % step-rate cue lowered "
    "VALR by 19 %, still lower after 30 days",
    "crowell2011": "Crowell HP & Davis IS 2011, Clin Biomech 26(1):78–83 — real-time feedback, faded over the "
    "sessions, lowered loading rates; held at one month",
    "bowser2018": "Bowser BJ et al. 2018, Med Sci Sports Exerc 50(12):2500–2506 — the change held a year later",
    "altman2012": "Altman AR & Davis IS 2012, Curr Sports Med Rep 11(5):244–250 — barefoot/minimalist running "
    "changes where the load goes; transition gradually",
    "ridge2013": "Ridge ST et al. 2013, Med Sci Sports Exerc 45(7):1363–1368 — 10 of 19 runners had "
    "bone-marrow oedema in the foot after a gradual 10-week transition to minimalist shoes",
    "salzler2012": "Salzler MJ et al. 2012, Foot Ankle Int 33(4):262–266 — metatarsal stress fractures and "
    "other injuries in runners who switched to minimalist shoes",
}


@dataclass(frozen=True)
class StageText:
    number: int
    title: str
    what: str
    why: str
    not_yet: str
    sources: tuple[str, ...]


STAGE_TEXT: dict[int, StageText] = {
    1: StageText(
        1,
        "Lighter heel strike",
        "Keep your usual strike and take quicker, shorter steps: raise your cadence 5–10 % over your baseline, "
        "about 2–3 % a week, with the metronome at this week's target. Land softly under your hips, run tall.",
        "A higher step rate shortens the stride and lowers the loading rate and knee and hip loads; for many "
        "runners this stage is all they need.",
        "Do not change your foot strike yet, do not switch to minimalist shoes, and do not jump to the full "
        "cadence in one week.",
        ("heiderscheit2011", "willy2016", "crowell2011"),
    ),
    2: StageText(
        2,
        "Optional: move towards a midfoot strike",
        "Only if you want to: let more of your steps land on the midfoot, raising that share by at most 10 points "
        "a week, in short blocks of your easy runs. Keep the cadence and the lower loading rate of stage 1.",
        "A midfoot or forefoot landing often loads more slowly, but moves load to the calf, Achilles tendon and "
        "the bones of the foot, which need weeks to adapt. Skipping this stage is fine: a lighter heel strike "
        "is a good way to run.",
        "Do not change shoes and strike at the same time, do not run whole runs on the forefoot yet, and pause "
        "if your calf, Achilles or the top of your foot hurts.",
        ("altman2012", "ridge2013", "salzler2012"),
    ),
    3: StageText(
        3,
        "Consolidate",
        "Keep the new form without the metronome: it is off from now; the dashboard still cues you if the "
        "loading rate rises. Hold cadence and loading rate for a few weeks of normal training.",
        "Feedback that fades lets the new pattern become your own; retrained runners kept lower loading rates a "
        "month and a year later.",
        "Do not add speed work and volume at the same time; change one thing at a time.",
        ("crowell2011", "bowser2018"),
    ),
}


@dataclass(frozen=True)
class RunPoint:
    """One run's pooled numbers (from :func:`plugin.trends.trend_points`, period ``run``)."""

    run_id: str
    start: float
    end: float
    cadence_spm: float | None
    valr_mean: float | None
    non_rearfoot_pct: float | None


@dataclass(frozen=True)
class LoadingAlert:
    created_at: float
    acked_at: float | None
    title: str

    def open_at(self, t: float) -> bool:
        return self.created_at <= t and (self.acked_at is None or self.acked_at > t)


@dataclass(frozen=True)
class Baseline:
    cadence_spm: float
    valr_mean: float
    non_rearfoot_pct: float

    @property
    def valr_ceiling(self) -> float:
        return self.valr_mean * (1.0 - VALR_DROP_PCT / 100.0)


@dataclass
class Replay:
    """Where the runs put the runner (see the module docstring)."""

    stage: int = 1
    stage_since: float = 0.0
    #: stage → when it was completed (Unix s); stage 2 skipped has no entry
    completed: dict[int, float] = field(default_factory=dict)
    #: stage 1 complete, stage 2 waiting for the loading alerts to be acknowledged
    waiting_unlock: bool = False
    held_streak: int = 0
    stage3_held: int = 0
    transition_start_pct: float | None = None
    runs_in_stage: list[str] = field(default_factory=list)
    done: bool = False


def cadence_rise_pct(base: Baseline, cadence: float | None) -> float | None:
    return None if cadence is None else 100.0 * (cadence - base.cadence_spm) / base.cadence_spm


def stage1_holds(base: Baseline, run: RunPoint) -> bool:
    rise = cadence_rise_pct(base, run.cadence_spm)
    return (
        rise is not None
        and CADENCE_MIN_PCT <= rise <= CADENCE_HELD_MAX_PCT
        and run.valr_mean is not None
        and run.valr_mean <= base.valr_ceiling
    )


def _loading_open(alerts: Sequence[LoadingAlert], t: float) -> bool:
    return any(a.open_at(t) for a in alerts)


def replay(
    base: Baseline,
    runs: Sequence[RunPoint],
    alerts: Sequence[LoadingAlert],
    *,
    started_at: float,
    skip_transition: bool,
) -> Replay:
    """Apply the stage rules to ``runs`` (oldest first)."""
    r = Replay(stage=1, stage_since=started_at)
    recent: list[RunPoint] = []

    def start_stage(stage: int, at: float) -> None:
        r.stage, r.stage_since, r.held_streak, r.runs_in_stage = stage, at, 0, []

    for run in runs:
        if r.done:
            break
        if r.waiting_unlock and not _loading_open(alerts, run.start):
            r.waiting_unlock = False
            shares = [p.non_rearfoot_pct for p in recent[-HELD_RUNS:] if p.non_rearfoot_pct is not None]
            r.transition_start_pct = sum(shares) / len(shares) if shares else base.non_rearfoot_pct
            start_stage(2, run.start)
        recent.append(run)
        r.runs_in_stage.append(run.run_id)
        if r.stage == 1 and not r.waiting_unlock:
            r.held_streak = r.held_streak + 1 if stage1_holds(base, run) else 0
            if r.held_streak >= HELD_RUNS and run.end - r.stage_since >= MIN_STAGE1_DAYS * DAY:
                r.completed[1] = run.end
                if skip_transition:
                    start_stage(3, run.end)
                elif _loading_open(alerts, run.end):
                    r.waiting_unlock = True
                else:
                    shares = [p.non_rearfoot_pct for p in recent[-HELD_RUNS:] if p.non_rearfoot_pct is not None]
                    r.transition_start_pct = sum(shares) / len(shares) if shares else base.non_rearfoot_pct
                    start_stage(2, run.end)
        elif r.stage == 2:
            start_pct = r.transition_start_pct if r.transition_start_pct is not None else base.non_rearfoot_pct
            ok = (
                run.non_rearfoot_pct is not None
                and run.non_rearfoot_pct >= start_pct + TRANSITION_GOAL_POINTS
                and run.valr_mean is not None
                and run.valr_mean <= base.valr_ceiling
            )
            r.held_streak = r.held_streak + 1 if ok else 0
            if r.held_streak >= HELD_RUNS and not _loading_open(alerts, run.end):
                r.completed[2] = run.end
                start_stage(3, run.end)
        elif r.stage == 3:
            rise = cadence_rise_pct(base, run.cadence_spm)
            if (
                rise is not None
                and rise >= CADENCE_MIN_PCT
                and run.valr_mean is not None
                and (run.valr_mean <= base.valr_ceiling)
            ):
                r.stage3_held += 1
            if r.stage3_held >= CONSOLIDATE_RUNS:
                r.completed[3] = run.end
                r.done = True
    return r


def weekly_target_pct(goal_pct: float, stage_since: float, now: float) -> float:
    """This week's cadence rise over baseline in stage 1: +2.5 % per started week, up to the goal."""
    week_no = max(0, math.floor((now - stage_since) / WEEK)) + 1
    return min(goal_pct, CADENCE_RAMP_PCT_PER_WEEK * week_no)
