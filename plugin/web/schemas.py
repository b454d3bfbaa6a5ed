"""Response models of the JSON API (``plugin/web/api.py``): every JSON route serialises through one of these.

They are the contract between the server and the front end (``static/js/``), which reads only keys defined here,
as ``edge_agent/contract.py`` is the contract on MQTT. ``docs/api-schema.json`` is generated from them
(``python docs/gen_reference.py``; ``tests/test_docs.py`` checks that the committed file is current and
``tests/plugin/test_api_schema.py`` validates real responses against it).

Models forbid unknown keys, so a handler that starts sending something new fails its tests until the model (and
so the schema) says what it is. Fields a route leaves out are omitted from its JSON (``exclude_unset``), so
optional fields (``None`` defaults) are the ones a client must not count on. Times: Unix seconds (floats) in
stored records, ISO 8601 UTC strings in trend documents.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.contract import RunSummary
from plugin.program import models as journey

Severity = Literal["info", "warning", "critical"]
RiskLevel = Literal["unknown", "low", "elevated", "high"]


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- runs and windows


class Measures(ApiModel):
    """Measures stored per run and per window, both feet pooled (docs/measures.md); ``*_n`` = steps behind them."""

    cadence_spm: float | None = Field(None, description="steps per minute, both feet")
    duty_factor: float | None = None
    valr_mean: float | None = Field(None, description="vertical average loading rate, BW/s")
    valr_n: int | None = None
    valr_p90: float | None = None
    valr_max: float | None = None
    valr_lo: float | None = Field(None, description="lower bound of the loading rate's 90 % interval, BW/s")
    valr_hi: float | None = Field(None, description="upper bound of the loading rate's 90 % interval, BW/s")
    lr_basis: str | None = Field(
        None, description="what this VALR may be compared with besides the same device (contract.loading_rate_basis)"
    )
    vilr_mean: float | None = Field(None, description="vertical instantaneous loading rate, BW/s")
    vilr_n: int | None = None
    contact_ms: float | None = None
    contact_n: int | None = None
    peak_force_bw: float | None = None
    peak_force_n: int | None = None
    si_left: float | None = Field(None, description="strike index of the left foot, 0 heel … 1 toe")
    si_left_n: int | None = None
    si_right: float | None = None
    si_right_n: int | None = None
    rearfoot: int | None = Field(None, description="steps landing on the rearfoot")
    midfoot: int | None = None
    forefoot: int | None = None
    asym_contact_pct: float | None = Field(None, description="symmetry index (R − L) / mean × 100")
    asym_valr_pct: float | None = None
    asym_si_pct: float | None = None
    asym_peak_force_pct: float | None = None
    body_mass_kg: float | None = None


class RunBase(Measures):
    run_id: str
    device_id: str
    runner: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    profile: str | None = None
    complete: bool = Field(False, description="the RunSummary arrived (else the run is assembled from windows)")
    updated_at: float | None = None


class RunRow(RunBase):
    """A run as listed: its measures and counts."""

    windows: int | None = None
    steps: int | None = Field(None, description="steps counted on both feet")


class WindowRow(Measures):
    msg_id: str
    run_id: str | None = None
    device_id: str
    runner: str | None = None
    window_index: int
    t_start: float
    t_end: float
    activity: str | None = None
    steps: int | None = None
    step_records: int | None = Field(None, description="per-step records stored for this window")


class CorruptRow(ApiModel):
    table: str
    key: str
    error: str


class RunDetail(RunBase):
    """``GET /api/runs/{id}``: the run, its windows (oldest first) and its per-step records."""

    windows: list[WindowRow]
    steps: list[dict[str, Any]] | dict[str, list[Any]] | None = Field(
        None, description="per-step records: a list of objects (steps=rows) or one list per field (steps=columns)"
    )
    step_count: int | None = Field(None, description="steps counted on both feet")
    steps_format: Literal["rows", "columns", "none"]
    summary: RunSummary | None = Field(None, description="the RunSummary as received (MQTT contract)")
    corrupt_rows: list[CorruptRow] = []


class RunsPage(ApiModel):
    runs: list[RunRow]
    limit: int
    offset: int
    next_offset: int | None


class WindowsPage(ApiModel):
    windows: list[WindowRow]
    limit: int
    offset: int
    next_offset: int | None


# ---------------------------------------------------------------- devices, runners, alerts, risk


class Device(ApiModel):
    device_id: str
    first_seen: float | None = None
    last_seen: float | None = None
    last_runner: str | None = None
    status: str | None = None
    status_at: float | None = None
    runs: int = 0


class Runner(ApiModel):
    name: str
    first_seen: float | None = None
    last_seen: float | None = None
    body_mass_kg: float | None = None
    runs: int = 0


class AlertRow(ApiModel):
    alert_id: str
    rule: str
    severity: Severity
    confidence: float
    title: str
    message: str
    evidence: dict[str, Any] = Field(default_factory=dict, description="the rule's numbers; keys name their unit")
    device_id: str | None = None
    runner: str | None = None
    run_id: str | None = None
    created_at: float
    acked: bool = False
    acked_at: float | None = None
    acked_by: str | None = None


class LatestRunVsBaseline(ApiModel):
    run_id: str
    valr_mean: float
    baseline_valr_mean: float
    rise_pct: float


class RiskSummary(ApiModel):
    """``plugin.risk.risk_summary`` (a coach gets the worst of their runners with ``by_runner``)."""

    level: RiskLevel
    headline: str | None = Field(None, description="why the level is what it is, in one sentence")
    reasons: list[str] = []
    baseline: Literal["ok", "no_baseline"] | None = None
    acwr: float | None = None
    open_alerts: int | None = None
    open_warnings: int | None = None
    open_info: int | None = None
    open_older: int | None = None
    recent_warnings: int | None = None
    acked_recent: int | None = None
    window_days: float | None = None
    recent_days: float | None = None
    latest_run: LatestRunVsBaseline | None = None
    by_runner: dict[str, RiskLevel] | None = None


class Overview(ApiModel):
    latest_run: RunRow | None
    risk_level: RiskLevel
    risk: RiskSummary
    alerts: list[AlertRow]
    devices: list[Device]
    runners: list[Runner]


class Meta(ApiModel):
    devices: list[Device]
    runners: list[Runner]


class AlertsPage(ApiModel):
    alerts: list[AlertRow]


class AckResult(ApiModel):
    ok: bool
    alert_id: str
    already_acked: bool
    by: str | None
    acked_at: float | None = None


# ---------------------------------------------------------------- trends


class Zones(ApiModel):
    rearfoot: int
    midfoot: int
    forefoot: int


class ZoneShares(ApiModel):
    rearfoot: float | None
    midfoot: float | None
    forefoot: float | None


class TrendPoint(ApiModel):
    """One run, UTC day or Monday week (``t``, ISO 8601), pooled as docs/measures.md says."""

    t: str
    runs: int
    duration_s: float | None = None
    load_min: float
    steps: int
    cadence_spm: float | None = None
    valr_mean: float | None = None
    valr_p90: float | None = None
    valr_max: float | None = None
    vilr_mean: float | None = None
    contact_ms: float | None = None
    strike_index_left: float | None = None
    strike_index_right: float | None = None
    asymmetry_contact_pct: float | None = None
    asymmetry_valr_pct: float | None = None
    asymmetry_si_pct: float | None = None
    zones: Zones
    zone_share_pct: ZoneShares
    forefoot_share_pct: float | None = None
    run_id: str | None = Field(None, description="period=run only")
    device_id: str | None = None
    runner: str | None = None
    started_at: float | None = None


class BaselineMeasure(ApiModel):
    mean: float
    sd: float
    ewma: float
    n: int
    min: float
    max: float


class Baseline(ApiModel):
    """Personal baseline: the runs in ``window_days`` before the latest run, the latest left out."""

    status: Literal["ok", "no_baseline"]
    message: str | None = None
    window_days: float | None = None
    from_: str | None = Field(None, alias="from")
    to: str | None = None
    runs: int = 0
    min_runs: int | None = None
    measures: dict[str, BaselineMeasure | None] = {}

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class WeekChange(ApiModel):
    this_week: float | None
    last_week: float | None
    change_pct: float | None
    last_week_to_date: float | None = Field(None, description="totals: last week up to the same weekday and time")


class WeekOverWeek(ApiModel):
    this_week_from: str
    last_week_from: str
    to: str
    measures: dict[str, WeekChange]


class LoadDay(ApiModel):
    t: str
    load: float
    acute: float
    chronic: float
    acwr: float | None


class TrainingLoad(ApiModel):
    status: Literal["ok", "no_baseline", "no_data"]
    message: str | None = None
    unit: str | None = None
    metric: str | None = None
    acute_days: int | None = None
    chronic_days: int | None = None
    lambda_acute: float | None = None
    lambda_chronic: float | None = None
    note: str | None = None
    acute: float | None = None
    chronic: float | None = None
    acwr: float | None = None
    series: list[LoadDay] = []


class Trends(ApiModel):
    period: Literal["run", "day", "week"]
    since: str | None
    until: str | None
    runner: str | None
    device_id: str | None
    team: str | None = None
    reference_time: str | None
    points: list[TrendPoint]
    notes: dict[str, str]
    baseline: Baseline
    week_over_week: WeekOverWeek | None
    training_load: TrainingLoad


# ---------------------------------------------------------------- health, settings, who am I


class IngestHealth(ApiModel):
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = {}
    dropped_flood: int | None = None
    live: int | None = None
    status: int | None = None
    acks_sent: int | None = None
    batches: int | None = None
    max_batch: int | None = None
    queue: int | None = None
    queue_bytes: int | None = None


class BrokerHealth(ApiModel):
    connected: bool | None = None
    url: str | None = Field(None, description="password removed")
    shared_group: str | None = None
    client_id: str | None = None


class StoreHealth(ApiModel):
    ok: bool | None = None
    backend: str | None = None
    summaries: int | None = None
    error: str | None = None
    integrity: str | None = None


class NotifyHealth(ApiModel):
    configured: bool
    services: list[str] = []
    sent: int = 0
    failed: int = 0


class WebHealth(ApiModel):
    live_clients: int
    auth: Literal["token", "loopback-open"]
    run_cache: dict[str, int]
    auth_throttle: dict[str, int]


class Health(ApiModel):
    """Admins get everything; coaches and runners only ``version``, ``store.ok`` and ``broker.connected``."""

    version: str | None = None
    store: StoreHealth | None = None
    broker: BrokerHealth | None = None
    ingest: IngestHealth | None = None
    devices: int | None = None
    alerts_raised: int | None = None
    notify: NotifyHealth | None = None
    risk_engine: dict[str, str] | None = None
    web: WebHealth | None = None


class SettingSpec(ApiModel):
    key: str
    title: str
    type: Literal["float", "int", "bool", "str", "url_list"]
    description: str
    unit: str = ""
    default: Any = None
    min: float | None = None
    max: float | None = None
    secret: bool = False


class Settings(ApiModel):
    settings: dict[str, Any] = Field(description="current values by key; secrets masked")
    schema_: list[SettingSpec] = Field(alias="schema")
    notify_test: bool

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NotifyTestResult(ApiModel):
    delivered: bool


class Team(ApiModel):
    name: str
    runners: list[str]


class Me(ApiModel):
    username: str | None
    role: Literal["admin", "coach", "runner"]
    runners: list[str] | None
    teams: list[Team]


class Error(ApiModel):
    error: str = Field(description="what went wrong and where (the parameter and the value)")


# ---------------------------------------------------------------- /api/summary (plugin/summary.py)


class PeriodFigures(ApiModel):
    runs: int
    steps: int
    load_min: float
    cadence_spm: float | None = None
    valr_mean: float | None = None
    valr_p90: float | None = None
    contact_ms: float | None = None
    zone_share_pct: ZoneShares
    asymmetry_contact_pct: float | None = None
    asymmetry_valr_pct: float | None = None


class SummaryRunner(ApiModel):
    name: str
    runs: int
    first_seen: float | None = None
    last_seen: float | None = None
    device_ids: list[str]
    last_run: RunRow | None
    open_alerts: int
    last_7_days: PeriodFigures
    last_28_days: PeriodFigures
    training_load: TrainingLoad
    risk: RiskSummary


class Instance(ApiModel):
    id: str
    version: str


class DashboardSummary(ApiModel):
    instance: Instance
    generated_at: float
    runners: list[SummaryRunner]
    devices: list[Device]
    open_alerts: int
    recent_alerts: list[AlertRow]


#: Route → response model (2xx). Routes answering something other than JSON (the FIT file, the CSV/JSON export,
#: the live event stream) are not listed; every error is :class:`Error`.
ROUTES: dict[tuple[str, str], type[BaseModel]] = {
    ("GET", "/api/health"): Health,
    ("GET", "/api/overview"): Overview,
    ("GET", "/api/meta"): Meta,
    ("GET", "/api/me"): Me,
    ("GET", "/api/summary"): DashboardSummary,
    ("GET", "/api/windows"): WindowsPage,
    ("GET", "/api/runs"): RunsPage,
    ("GET", "/api/runs/{run_id}"): RunDetail,
    ("GET", "/api/trends"): Trends,
    ("GET", "/api/alerts"): AlertsPage,
    ("POST", "/api/alerts/{alert_id}/ack"): AckResult,
    ("GET", "/api/settings"): Settings,
    ("POST", "/api/settings"): Settings,
    ("POST", "/api/settings/notify-test"): NotifyTestResult,
    # the form journey (plugin/web/journey.py; its models live with the program, plugin/program/models.py)
    ("GET", "/api/journey"): journey.JourneyResponse,
    ("POST", "/api/journey/{runner}/program"): journey.JourneyResponse,
    ("PATCH", "/api/journey/{runner}/program"): journey.JourneyResponse,
    ("DELETE", "/api/journey/{runner}/program"): journey.ProgramEnded,
    ("POST", "/api/runs/{run_id}/shoe"): journey.TagResponse,
    ("POST", "/api/shoes/{shoe_id}/retire"): journey.ShoeRetired,
}
#: Routes whose body is not JSON (or not one document).
NOT_JSON = frozenset({("GET", "/api/runs/{run_id}/fit"), ("GET", "/api/export"), ("GET", "/api/live")})


def dump(model: type[ApiModel], data: Any) -> Any:
    """``data`` validated against ``model``, as JSON-ready Python (keys the route left out stay out)."""
    return model.model_validate(data).model_dump(mode="json", by_alias=True, exclude_unset=True)


def openapi_like_schema() -> dict[str, Any]:
    """The JSON Schema of every route's response, for docs/api-schema.json."""
    models: list[type[BaseModel]] = list(dict.fromkeys([*ROUTES.values(), Error]))
    defs: dict[str, Any] = {}
    for m in models:
        schema = m.model_json_schema(by_alias=True, ref_template="#/$defs/{model}", mode="serialization")
        defs.update(schema.pop("$defs", {}))
        defs[m.__name__] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "footfall dashboard HTTP API responses",
        "description": "Generated from plugin/web/schemas.py by `python docs/gen_reference.py`; do not edit.",
        "routes": {
            f"{method} {path}": {"200": {"$ref": f"#/$defs/{m.__name__}"}, "error": {"$ref": "#/$defs/Error"}}
            for (method, path), m in ROUTES.items()
        },
        "$defs": dict(sorted(defs.items())),
    }


def schema_text() -> str:
    return json.dumps(openapi_like_schema(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"
