"""The journey API's documents as pydantic models: responses are validated against them before they are sent, and
request bodies are parsed by them (unknown fields and bad values are a 400 naming the field)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plugin.program.stages import CADENCE_MAX_PCT, CADENCE_MIN_PCT

Number = float | None


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(_Out):
    level: Literal["info", "warning"]
    code: str
    text: str


class StageView(_Out):
    number: int
    title: str
    what: str = Field(description="What to do, in plain words")
    why: str
    not_yet: str = Field(description="What not to do yet")
    sources: list[str]
    status: Literal["done", "current", "locked", "upcoming", "skipped"]
    completed_at: Number
    progress_pct: float


class Targets(_Out):
    cadence_spm: float
    cadence_band_spm: float
    cadence_goal_spm: float
    cadence_rise_pct: float = Field(description="This week's cadence target over the baseline, %")
    valr_baseline_bw_s: float
    valr_ceiling_bw_s: float
    valr_max_pct_of_baseline: float
    metronome: bool
    non_rearfoot_max_pct: Number = Field(description="Stage 2: this week's midfoot + forefoot share at most, %")


class Lock(_Out):
    locked: bool
    reason: str | None


class RunPoint(_Out):
    run_id: str
    t: float
    cadence_spm: Number
    valr_mean: Number
    non_rearfoot_pct: Number
    holds_stage1: bool


class WeekPoint(_Out):
    t: str
    runs: int
    cadence_spm: Number
    valr_mean: Number
    non_rearfoot_pct: Number


class ShoeMeasures(_Out):
    runs: int
    cadence_spm: Number
    valr_mean: Number
    contact_ms: Number
    forefoot_share_pct: Number
    non_rearfoot_pct: Number


class ShoeChange(_Out):
    cadence_pct: Number
    valr_pct: Number
    contact_pct: Number
    forefoot_points: Number
    non_rearfoot_points: Number


class Shoe(_Out):
    shoe_id: str
    name: str
    added_at: float
    retired_at: Number
    alerted_at: Number
    first_run: Number
    last_run: Number
    runs: int
    hours: float = Field(description="Running time in the pair (the insoles measure no distance)")
    steps: int
    measures: ShoeMeasures
    baseline: ShoeMeasures | None
    change: ShoeChange | None
    cadence_matched: bool


class Journey(_Out):
    runner: str
    started_at: float
    goals: str
    injury_note: str
    skip_transition: bool
    cadence_goal_pct: float
    assessment: dict[str, Any]
    stage: int
    stage_title: str
    stage_since: float
    done: bool
    completed: dict[str, float]
    progress_pct: float
    stages: list[StageView]
    lock: Lock
    targets: Targets
    recent: dict[str, Any]
    this_week: dict[str, Any]
    messages: list[Message]
    runs: list[RunPoint]
    weeks: list[WeekPoint]
    shoes: list[Shoe]
    current_shoe: str | None
    published_target: dict[str, Any] | None


class JourneyResponse(_Out):
    runner: str | None
    runners: list[str] = Field(description="Runners the user may see")
    program: Journey | None
    shoes: list[Shoe]
    current_shoe: str | None
    message: str | None = None


class ProgramEnded(_Out):
    ok: bool
    runner: str


class ShoeRetired(_Out):
    ok: bool
    shoe_id: str
    already_retired: bool


class TagResponse(_Out):
    run_id: str
    shoe: str | None
    shoe_id: str | None


# -- requests --------------------------------------------------------------------------------------------------------
class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class StartProgram(_In):
    goals: str = Field(default="", max_length=2000)
    injury_note: str = Field(default="", max_length=2000)
    cadence_goal_pct: float = Field(default=7.5, ge=CADENCE_MIN_PCT, le=CADENCE_MAX_PCT)
    skip_transition: bool = False


class ChangeProgram(_In):
    goals: str | None = Field(default=None, max_length=2000)
    injury_note: str | None = Field(default=None, max_length=2000)
    skip_transition: bool | None = None


class TagRun(_In):
    shoe: str | None = Field(description="The pair's name (created if new); null removes the tag", max_length=64)
