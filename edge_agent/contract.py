"""The MQTT wire contract between the edge agent and the dashboard plugin.

Both sides import this module, and it imports nothing heavier than pydantic (no numpy, no numba),
so the plugin can run on a home server without the analysis stack.

Topics (``<base>`` defaults to ``footfall``)::

    <base>/<device_id>/status    retained "online" / "offline" (last will)        agent → all
    <base>/<device_id>/summary   WindowSummary, QoS 1, through the outbox          agent → plugin
    <base>/<device_id>/run       RunSummary, QoS 1, through the outbox             agent → plugin
    <base>/<device_id>/live      LiveUpdate, QoS 0, ~1 Hz, not stored              agent → plugin
    <base>/<device_id>/ack       Ack (highest contiguous seq + gaps), QoS 1        plugin → agent
    <base>/<device_id>/alert     Alert, QoS 1                                       plugin → all
    <base>/_runners/<runner>/target  FeedbackTarget, QoS 1, retained             plugin → agent

End-to-end delivery (docs/design.md §6): every outbox message carries ``stream_id`` (random, fixed for
the life of the agent's outbox database) and ``seq`` (1, 2, 3 … within that stream). The plugin
stores each ``msg_id`` once and answers with an :class:`Ack` naming the highest contiguous
``seq`` it holds for the stream and any missing ranges below the highest it has seen; the agent
deletes acknowledged rows and re-sends the missing ones.

Compatibility: ``schema_version`` is bumped on any incompatible change; a receiver rejects a
version it does not know. Unknown extra fields are ignored so that additive changes do not
require a lockstep upgrade. Numbers must be finite (NaN/inf rejected). Version 2 (summary, run):
loading rates are corrected for the sampling rate and carry their interval (``valr``: the bias-aware
mean of a window or run with its 90 % interval, docs/measures.md §3; per step ``valr_lo_bw_s`` /
``valr_hi_bw_s``), and windows name their insole ``profile``. Receivers still accept version 1, whose
VALR statistics are the samples' own (uncorrected): never compare them with version 2's
(:func:`loading_rate_basis`).

Run ``python -m edge_agent.contract`` to regenerate ``docs/mqtt-schema.json``.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

SCHEMA_VERSION = 2
#: Versions of stored messages (summary, run) receivers accept.
SUPPORTED_SCHEMA_VERSIONS = (1, 2)
#: Payloads above this size are rejected before parsing (hostile or broken publishers).
MAX_PAYLOAD_BYTES = 256 * 1024
DEFAULT_BASE_TOPIC = "footfall"
DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)
#: A runner name that can be a topic segment (the per-runner target topic); same alphabet as device ids.
RUNNER_ID_PATTERN = DEVICE_ID_PATTERN
#: Topic node under which per-runner topics live (not a valid device id, so never mistaken for one).
RUNNERS_NODE = "_runners"
#: A shoe pair's name (RunSummary.shoe, the agent's ``shoe:``): printable, no control characters.
SHOE_NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"
#: Targets are small; anything bigger is rejected before parsing.
MAX_TARGET_BYTES = 8 * 1024

Side = Literal["left", "right"]
StrikeZone = Literal["rearfoot", "midfoot", "forefoot"]
LoadingRateMethod = Literal["impact_peak", "fallback"]

Finite = Annotated[float, Field(allow_inf_nan=False)]
NonNeg = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, populate_by_name=True)


class Envelope(WireModel):
    """Fields every stored message carries."""

    schema_version: int = Field(default=SCHEMA_VERSION, title="Schema version")
    msg_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9:_-]+$", title="Unique id (dedupe)")
    device_id: str = Field(pattern=DEVICE_ID_PATTERN, title="Device id")
    stream_id: str = Field(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", title="Outbox stream id")
    seq: int = Field(ge=1, title="Sequence number in the stream")
    device_time: Finite = Field(title="Device clock when created (Unix s)")
    runner: str | None = Field(default=None, max_length=64, title="Runner name (several per household)")


class ZoneCounts(WireModel):
    rearfoot: Count = 0
    midfoot: Count = 0
    forefoot: Count = 0

    @property
    def total(self) -> int:
        return self.rearfoot + self.midfoot + self.forefoot


class Stat(WireModel):
    """Distribution of one measure over the steps of a window or a run (None when no steps)."""

    n: Count = 0
    mean: Finite | None = None
    sd: Finite | None = None
    p90: Finite | None = None
    max: Finite | None = None


class FootStats(WireModel):
    """Per-foot aggregates."""

    steps: Count = 0
    zones: ZoneCounts = Field(default_factory=ZoneCounts)
    zone_uncertain: Count = Field(default=0, title="Steps within ±0.07 SI of a zone boundary")
    strike_index: Stat = Field(default_factory=Stat, title="Strike index (0 heel … 1 toe)")
    valr_bw_s: Stat = Field(default_factory=Stat, title="Vertical average loading rate (BW/s)")
    vilr_bw_s: Stat = Field(default_factory=Stat, title="Vertical instantaneous loading rate (BW/s)")
    impact_peak_share: Unit | None = Field(default=None, title="Share of steps with an impact peak")
    contact_ms: Stat = Field(default_factory=Stat, title="Ground contact time (ms)")
    flight_ms: Stat = Field(default_factory=Stat, title="Flight time before this foot's contact (ms)")
    peak_force_bw: Stat = Field(default_factory=Stat, title="Peak vertical force (BW)")
    impulse_bw_s: Stat = Field(default_factory=Stat, title="Vertical impulse (BW·s)")
    cop_ml_excursion: Stat = Field(default_factory=Stat, title="CoP medial–lateral excursion (insole widths)")


class Asymmetry(WireModel):
    """Left/right asymmetry: SI% = (R − L) / (0.5 (R + L)) × 100 (Herzog 1989) and the
    symmetry angle (Zifchock 2008, in % of 90°), which stays stable near zero."""

    contact_ms_pct: Finite | None = None
    valr_pct: Finite | None = None
    peak_force_pct: Finite | None = None
    strike_index_pct: Finite | None = None
    contact_ms_sa: Finite | None = None
    valr_sa: Finite | None = None
    peak_force_sa: Finite | None = None


class LoadingRateEstimate(WireModel):
    """VALR of a window or run, both feet pooled: the bias-aware mean of the steps' (sampling-corrected)
    values and its 90 % interval (docs/measures.md §3). Only comparable with estimates of the same
    sample rate and insole (:func:`loading_rate_basis`)."""

    mean: NonNeg = Field(title="Mean VALR (BW/s)")
    lo: NonNeg = Field(title="90 % interval, lower bound (BW/s)")
    hi: NonNeg = Field(title="90 % interval, upper bound (BW/s)")
    n: Count = Field(default=0, title="Steps")
    sample_rate_hz: NonNeg = Field(title="Sample rate of the steps (Hz)")
    corrected_share: Unit = Field(default=0.0, title="Share of steps with a rise correction")
    prior_share: Unit = Field(default=0.0, title="Share of steps corrected with the prior rise time")

    @model_validator(mode="after")
    def _ordered(self) -> LoadingRateEstimate:
        if not self.lo <= self.mean <= self.hi:
            raise ValueError(f"need lo ≤ mean ≤ hi, got {self.lo} / {self.mean} / {self.hi}")
        return self


class Quality(WireModel):
    frames: Count = Field(default=0, title="Frames processed")
    dropped_frames: Count = Field(default=0, title="Frames missing (counter gaps)")
    late_frames: Count = Field(default=0, title="Frames older than the last one (time going backwards)")
    corrupt_frames: Count = Field(default=0, title="Frames rejected (length, checksum, NaN)")
    saturated_samples: Count = Field(default=0, title="Samples at the sensor's maximum")
    saturated_sensors: list[int] = Field(default_factory=list, max_length=2048, title="Sensors stuck at max")
    silent_sensors: list[int] = Field(default_factory=list, max_length=2048, title="Sensors that never load")
    calibration_age_s: NonNeg | None = Field(default=None, title="Seconds since the last zero/BW calibration")
    loading_rate_low_confidence: bool = Field(default=False, title="Sample rate below 200 Hz")
    sample_rate_hz: NonNeg | None = None


class StepRecord(WireModel):
    """One step, compact: lets the dashboard draw per-step scatter plots and CoP maps."""

    side: Side
    t: Finite = Field(title="Initial contact, device time (Unix s)")
    contact_ms: NonNeg
    strike_index: Unit | None = None
    strike_zone: StrikeZone | None = None
    valr_bw_s: Finite | None = None
    vilr_bw_s: Finite | None = None
    impact_peak: bool = False
    peak_force_bw: NonNeg | None = None
    cop_x: Unit | None = Field(default=None, title="CoP at initial contact, heel→toe")
    cop_y: Unit | None = Field(default=None, title="CoP at initial contact, medial→lateral")
    valr_lo_bw_s: NonNeg | None = Field(default=None, title="VALR 90 % interval, lower bound (BW/s)")
    valr_hi_bw_s: NonNeg | None = Field(default=None, title="VALR 90 % interval, upper bound (BW/s)")


class WindowSummary(Envelope):
    """One summary window (default 10 s) of a run."""

    kind: Literal["summary"] = "summary"
    run_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9:_-]+$")
    window_index: int = Field(ge=0)
    t_start: Finite = Field(title="Window start, device time (Unix s)")
    t_end: Finite = Field(title="Window end, device time (Unix s)")
    activity: Literal["running", "walking", "standing", "unknown"] = "running"
    steps: Count = 0
    cadence_spm: NonNeg | None = Field(default=None, title="Steps per minute, both feet")
    duty_factor: Unit | None = Field(default=None, title="Contact / stride time")
    left: FootStats = Field(default_factory=FootStats)
    right: FootStats = Field(default_factory=FootStats)
    asymmetry: Asymmetry = Field(default_factory=Asymmetry)
    quality: Quality = Field(default_factory=Quality)
    body_mass_kg: NonNeg | None = None
    valr: LoadingRateEstimate | None = Field(default=None, title="VALR, both feet: bias-aware mean and interval")
    profile: str | None = Field(default=None, max_length=64, title="Hardware profile (insole model)")
    step_records: list[StepRecord] = Field(default_factory=list, max_length=2000)

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> WindowSummary:
        if self.t_end < self.t_start:
            raise ValueError(f"t_end ({self.t_end}) is before t_start ({self.t_start})")
        return self


class RunSummary(Envelope):
    """The whole run, sent when the agent decides the run has ended."""

    kind: Literal["run"] = "run"
    run_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9:_-]+$")
    started_at: Finite
    ended_at: Finite
    duration_s: NonNeg
    windows: Count = 0
    steps: Count = 0
    cadence_spm: NonNeg | None = None
    duty_factor: Unit | None = None
    left: FootStats = Field(default_factory=FootStats)
    right: FootStats = Field(default_factory=FootStats)
    asymmetry: Asymmetry = Field(default_factory=Asymmetry)
    quality: Quality = Field(default_factory=Quality)
    body_mass_kg: NonNeg | None = None
    valr: LoadingRateEstimate | None = Field(default=None, title="VALR, both feet: bias-aware mean and interval")
    profile: str | None = Field(default=None, max_length=64, title="Hardware profile (insole model)")
    shoe: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=SHOE_NAME_PATTERN,
        title="Shoe pair the run was in (the agent's `shoe:`; optional)",
    )  # fmt: skip

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> RunSummary:
        if self.ended_at < self.started_at:
            raise ValueError(f"ended_at ({self.ended_at}) is before started_at ({self.started_at})")
        return self


class LiveUpdate(WireModel):
    """~1 Hz, QoS 0, never stored: what is happening right now."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["live"] = "live"
    device_id: str = Field(pattern=DEVICE_ID_PATTERN)
    device_time: Finite
    activity: Literal["running", "walking", "standing", "idle", "unknown"] = "unknown"
    run_id: str | None = None
    cadence_spm: NonNeg | None = None
    last_side: Side | None = None
    last_strike_index: Unit | None = None
    last_strike_zone: StrikeZone | None = None
    last_valr_bw_s: Finite | None = None
    steps_in_run: Count = 0
    outbox_backlog: Count = 0


class Ack(WireModel):
    """Plugin → agent: what the plugin has durably stored for one stream."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["ack"] = "ack"
    device_id: str = Field(pattern=DEVICE_ID_PATTERN)
    stream_id: str = Field(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    acked_seq: int = Field(ge=0, title="Highest contiguous seq stored (0 = none)")
    missing: list[tuple[int, int]] = Field(default_factory=list, max_length=256, title="Inclusive seq ranges to resend")
    highest_seq: int | None = Field(
        default=None, ge=0, title="Highest seq stored (optional; lets the agent release rows above a gap)"
    )
    receiver: str = Field(default="plugin", max_length=64)


Severity = Literal["info", "warning", "critical"]
AlertKind = Literal[
    "loading_spike",
    "valr_absolute",
    "strike_transition",
    "fatigue_drift",
    "asymmetry",
    "training_load",
    "shoe_change",
]


class Alert(WireModel):
    """Plugin → everyone: a risk-engine finding, phrased for the runner."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["alert"] = "alert"
    alert_id: str = Field(min_length=8, max_length=64)
    rule: AlertKind
    severity: Severity
    confidence: Unit
    title: str = Field(max_length=200)
    message: str = Field(max_length=4000)
    evidence: dict[str, Any] = Field(default_factory=dict)
    device_id: str | None = None
    runner: str | None = None
    run_id: str | None = None
    created_at: Finite


class CadenceTarget(WireModel):
    """The step rate to run at: the metronome's tempo, and the band the cadence cue keeps the runner in."""

    spm: float = Field(ge=100.0, le=240.0, allow_inf_nan=False, title="Target cadence (steps/min, both feet)")
    band_spm: float = Field(
        default=3.0, gt=0.0, le=30.0, allow_inf_nan=False, title="On target while |cadence − spm| ≤ this (spm)"
    )


class LoadingTarget(WireModel):
    """A ceiling on the recent vertical average loading rate: absolute (BW/s) or a share of the runner's baseline.

    Exactly one of ``max_bw_s`` and ``max_pct_of_baseline`` is given; the latter needs ``baseline_bw_s``. Stage 1 of
    a retraining program ("VALR 10–20 % under baseline", Willy et al. 2016) is ``max_pct_of_baseline: 90``.
    """

    baseline_bw_s: float | None = Field(
        default=None, gt=0.0, le=1000.0, allow_inf_nan=False, title="The runner's baseline VALR (BW/s)"
    )
    max_bw_s: float | None = Field(default=None, gt=0.0, le=1000.0, allow_inf_nan=False, title="VALR ceiling (BW/s)")
    max_pct_of_baseline: float | None = Field(
        default=None, gt=0.0, le=300.0, allow_inf_nan=False, title="VALR ceiling as % of the baseline"
    )

    @model_validator(mode="after")
    def _one_ceiling(self) -> LoadingTarget:
        if (self.max_bw_s is None) == (self.max_pct_of_baseline is None):
            raise ValueError("give exactly one of max_bw_s and max_pct_of_baseline")
        if self.max_pct_of_baseline is not None and self.baseline_bw_s is None:
            raise ValueError("max_pct_of_baseline needs baseline_bw_s")
        return self

    @property
    def ceiling_bw_s(self) -> float:
        if self.max_bw_s is not None:
            return self.max_bw_s
        assert self.baseline_bw_s is not None and self.max_pct_of_baseline is not None
        return self.baseline_bw_s * self.max_pct_of_baseline / 100.0


class CueSettings(WireModel):
    """Which sounds the agent makes for this target, and how often at most."""

    metronome: bool = Field(default=True, title="Metronome at the target cadence")
    cadence_cue: bool = Field(default=True, title="Cue when the cadence leaves its band")
    loading_cue: bool = Field(default=True, title="Cue when the loading rate rises above its ceiling")
    min_interval_s: float = Field(
        default=20.0, ge=3.0, le=3600.0, allow_inf_nan=False, title="Never more than one cue per this many seconds"
    )
    repeat_s: float | None = Field(
        default=60.0,
        ge=3.0,
        le=3600.0,
        allow_inf_nan=False,
        title="While still out of band, cue again after this many seconds (null: once per excursion)",
    )
    summary_every_min: float | None = Field(
        default=None, ge=1.0, le=120.0, allow_inf_nan=False, title="Spoken summary every N minutes (null: none)"
    )


class FeedbackTarget(WireModel):
    """Plugin → agent, retained per runner: what the in-run biofeedback aims for (docs/feedback.md).

    Untrusted input like every message: the agent validates it, checks the runner and ``valid_until``, keeps the
    last accepted one on disk and runs offline with it. Both ``cadence`` and ``loading`` null means no targets
    (the agent stays silent).
    """

    schema_version: int = SCHEMA_VERSION
    kind: Literal["target"] = "target"
    target_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", title="Unique id")
    runner: str = Field(pattern=RUNNER_ID_PATTERN, title="Runner the target is for")
    set_by: str = Field(min_length=1, max_length=64, title="Who set it (e.g. program, dashboard-cli)")
    set_at: Finite = Field(title="When it was set (Unix s)")
    valid_until: Finite | None = Field(default=None, title="Not used after this (Unix s); null: until replaced")
    note: str | None = Field(default=None, max_length=200, title="Why, in plain words (e.g. the program stage)")
    cadence: CadenceTarget | None = None
    loading: LoadingTarget | None = None
    cues: CueSettings = Field(default_factory=CueSettings)

    @model_validator(mode="after")
    def _valid_span(self) -> FeedbackTarget:
        if self.valid_until is not None and self.valid_until <= self.set_at:
            raise ValueError(f"valid_until {self.valid_until} is not after set_at {self.set_at}")
        return self

    def expired(self, now: float) -> bool:
        return self.valid_until is not None and now >= self.valid_until


StoredMessage = Annotated[WindowSummary | RunSummary, Field(discriminator="kind")]
_stored_adapter: TypeAdapter[WindowSummary | RunSummary] = TypeAdapter(StoredMessage)


class PayloadError(ValueError):
    """A payload was rejected; ``reason`` is a short machine-readable cause for counters."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _json_object(payload: bytes | str, max_bytes: int) -> dict[str, Any]:
    """The payload as a JSON object of the supported ``schema_version``, or a :class:`PayloadError`."""
    raw = payload.encode() if isinstance(payload, str) else payload
    if len(raw) > max_bytes:
        raise PayloadError("oversized", f"{len(raw)} bytes > {max_bytes}")
    try:
        data = json.loads(raw)
    except UnicodeDecodeError as err:
        raise PayloadError("not_json", f"not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise PayloadError("not_json", f"{err.msg} at character {err.pos}") from None
    if not isinstance(data, dict):
        raise PayloadError("not_object", f"top level is {type(data).__name__}")
    version = data.get("schema_version")
    if type(version) is not int or version not in SUPPORTED_SCHEMA_VERSIONS:
        supported = ", ".join(map(str, SUPPORTED_SCHEMA_VERSIONS))
        raise PayloadError("unknown_version", f"schema_version {version!r} (supported: {supported})")
    return data


def parse_stored_message(payload: bytes | str) -> WindowSummary | RunSummary:
    """Validate an agent→plugin payload, rejecting oversized, non-JSON, unknown-version input."""
    data = _json_object(payload, MAX_PAYLOAD_BYTES)
    try:
        return _stored_adapter.validate_python(data)
    except ValidationError as err:
        raise PayloadError("invalid", describe_errors(err)) from None
    except ValueError as err:
        raise PayloadError("invalid", type(err).__name__) from None


def describe_errors(err: ValidationError, limit: int = 3) -> str:
    """Where and why a payload failed, never its content (logs must not quote what a peer sent)."""
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '<top level>'}: {e['type']}"
        for e in err.errors(include_input=False, include_url=False)[:limit]
    ]
    more = err.error_count() - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def loading_rate_basis(msg: WindowSummary | RunSummary) -> str:
    """What a message's VALR numbers can be compared with (besides the same device): the estimator —
    ``corrected`` (schema 2: sampling-corrected, with an interval) or ``sampled`` (schema 1) — the sample
    rate to the nearest hertz (half up) and the insole profile when the message names it, e.g.
    ``corrected@100Hz/moticon-opengo``; ``?Hz`` when the rate is unknown."""
    rate = msg.valr.sample_rate_hz if msg.valr is not None else msg.quality.sample_rate_hz
    kind = "corrected" if msg.valr is not None else "sampled"
    hz = f"{math.floor(rate + 0.5):d}Hz" if rate else "?Hz"
    return f"{kind}@{hz}" + (f"/{msg.profile}" if msg.profile else "")


def parse_target(payload: bytes | str) -> FeedbackTarget:
    """Validate a plugin→agent target payload (size, JSON, version, kind, every field's bounds)."""
    try:
        data = _json_object(payload, MAX_TARGET_BYTES)
    except RecursionError:
        raise PayloadError("too_deep", "JSON nested too deeply") from None
    if data.get("kind") != "target":
        raise PayloadError("wrong_kind", f"kind {data.get('kind')!r} (expected 'target')")
    try:
        return FeedbackTarget.model_validate(data)
    except ValueError as err:
        raise PayloadError("invalid", str(err)[:500]) from None


def runner_target_topic(runner: str, base: str = DEFAULT_BASE_TOPIC) -> str:
    """``<base>/_runners/<runner>/target``: the retained target of one runner (plugin → agent)."""
    if not re.match(RUNNER_ID_PATTERN, runner):
        raise ValueError(f"runner {runner!r} cannot name a topic: it must match {RUNNER_ID_PATTERN}")
    return f"{base.rstrip('/')}/{RUNNERS_NODE}/{runner}/target"


def new_msg_id() -> str:
    return uuid.uuid4().hex


def new_stream_id() -> str:
    return uuid.uuid4().hex[:16]


def valid_device_id(device_id: str) -> bool:
    return bool(_DEVICE_ID_RE.fullmatch(device_id))  # fullmatch: `$` alone accepts a trailing newline


class Topics:
    """Topic names for one device under a base topic."""

    def __init__(self, device_id: str, base: str = DEFAULT_BASE_TOPIC) -> None:
        if not valid_device_id(device_id):
            raise ValueError(f"device_id {device_id!r} must match {DEVICE_ID_PATTERN}")
        self.base = base.rstrip("/")
        self.device_id = device_id
        root = f"{self.base}/{device_id}"
        self.status = f"{root}/status"
        self.summary = f"{root}/summary"
        self.run = f"{root}/run"
        self.live = f"{root}/live"
        self.ack = f"{root}/ack"
        self.alert = f"{root}/alert"

    @staticmethod
    def wildcard(base: str = DEFAULT_BASE_TOPIC, leaf: str = "+") -> str:
        return f"{base.rstrip('/')}/+/{leaf}"

    @staticmethod
    def split(topic: str, base: str = DEFAULT_BASE_TOPIC) -> tuple[str, str] | None:
        """``footfall/dev1/summary`` → ``("dev1", "summary")``; None if not ours."""
        prefix = base.rstrip("/") + "/"
        if not topic.startswith(prefix):
            return None
        rest = topic[len(prefix) :].split("/")
        if len(rest) != 2 or not valid_device_id(rest[0]):
            return None
        return rest[0], rest[1]


def json_schema() -> dict[str, Any]:
    """One JSON Schema document covering every message of the contract."""
    models: list[type[BaseModel]] = [WindowSummary, RunSummary, LiveUpdate, Ack, Alert, FeedbackTarget]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "footfall MQTT contract",
        "description": (__doc__ or "").strip().split("\n\n")[0],
        "schema_version": SCHEMA_VERSION,
        "messages": {m.__name__: m.model_json_schema() for m in models},
    }


def main() -> None:
    out = Path(__file__).resolve().parent.parent / "docs" / "mqtt-schema.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
