"""FIT activity files of a run, so runs reach Garmin Connect, Strava, intervals.icu and Golden Cheetah.

One encoder for both sides: ``footfall-dashboard export --format fit`` and the run page's download button (a run
from the store, :mod:`plugin.fit_export`) and ``footfall-agent analyze --format fit`` (a recording,
:mod:`edge_agent.analysis.fit_export`) turn what they have into a :class:`FitRun` — plain spans of measures — and
:func:`encode_run` writes the file. Nothing here imports numpy or numba. Platform notes: docs/dashboard.md
("FIT files for training platforms").

**What the file holds** (FIT Activity file, Garmin FIT SDK "Activity File" article; messages in its recommended
order, summaries last):

- ``file_id`` (type activity, manufacturer ``development`` = 255, product 1, a serial number derived from the
  device id, ``time_created`` = the run's start, so re-exports of a run are byte-identical and platforms can
  recognise a duplicate upload), ``file_creator`` and ``device_info`` (the footfall software, and the insoles'
  hardware profile when known).
- ``developer_data_id`` + one ``field_description`` per developer field that has a value: VALR (and its 90 %
  interval when the analysis provides one), the strike index of each foot, and the rearfoot/midfoot/forefoot
  shares of the steps. Record fields are numbered from 0, lap fields from 32, session fields from 64 (distinct
  numbers per message, as Connect IQ apps do, so a reader keyed by field number alone — Golden Cheetah — never
  mixes them up).
- ``event`` timer start, stop/start around every gap between windows, and stop at the end.
- One ``record`` per second. The measures exist per summary window (10 s by default), so every second carries
  the value of the window it falls in (zero-order hold: t_start ≤ second < t_end), never an interpolation
  between windows, which would show values nothing measured. Seconds between windows get no record (the timer
  is stopped there). Platforms chart records against time and most assume about one per second (Golden Cheetah
  reads FIT at 1 s; Strava requires a time on every record), which per-window records every 10 s would break.
- ``lap`` (one, the whole run) and ``session``: sport, start, elapsed and timer time, average and maximum
  cadence, average stance time and balance, total strides, and the developer fields' run values.
- ``activity`` (one session, timer time). No ``local_timestamp``: footfall knows UTC, not the runner's time zone.

**Units.** FIT running cadence is *strides* (one foot) per minute: ``cadence`` (uint8) plus
``fractional_cadence`` (1/128), so spm = 2 × (cadence + fractional_cadence), resolution 1/64 spm.
``stance_time`` is ms (0.1 ms), ``stance_time_balance`` the left foot's share of contact time in % (0.01 %).
Timestamps are whole seconds since 1989-12-31 00:00 UTC; the file CRC (and the header's) use the FIT CRC-16.
Nothing is written that footfall does not measure (no distance, speed, vertical ratio or oscillation).

**Library.** The messages are built and serialised with `fit-tool <https://pypi.org/project/fit-tool/>`_ (BSD-3-Clause,
pure Python without dependencies, released 2026-08 against FIT profile 21.212): it writes developer data ids,
field descriptions and developer fields, and its own tests decode its files with Garmin's SDK. The others on PyPI
were weighed: Garmin's ``garmin-fit-sdk`` can encode since 21.x, but its licence (the FIT Protocol License:
non-sublicensable, for the licensee's own use) does not fit an Apache-2.0 package, and the tests use its
*decoder* as the independent check, which an encoder from the same SDK would not be; ``fitparse``,
``python-fitparse`` and ``fitdecode`` only read; ``fit`` 0.5 (2026) is young and does not document developer
fields. fit-tool's ``FitFileBuilder`` derives and compares a definition for every message, so :class:`_Writer`
uses fit-tool's lower-level pieces the way its own iterative example does: a definition is written when a
message's layout changes, and one record message is re-serialised for each second of its window — about ten
times faster for an hour of records (``benchmarks/bench_fit.py``: ≈ 0.3 s against ≈ 3.4 s on a shared 2-core VM).
"""

from __future__ import annotations

import logging
import math
import re
import struct
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from fit_tool.base_type import BaseType
from fit_tool.data_message import DataMessage
from fit_tool.definition_message import DefinitionMessage
from fit_tool.developer_field import DeveloperField
from fit_tool.fit_file_header import FitFileHeader, ProtocolVersion
from fit_tool.profile.messages.activity_message import ActivityMessage
from fit_tool.profile.messages.developer_data_id_message import DeveloperDataIdMessage
from fit_tool.profile.messages.device_info_message import DeviceInfoMessage
from fit_tool.profile.messages.event_message import EventMessage
from fit_tool.profile.messages.field_description_message import FieldDescriptionMessage
from fit_tool.profile.messages.file_creator_message import FileCreatorMessage
from fit_tool.profile.messages.file_id_message import FileIdMessage
from fit_tool.profile.messages.lap_message import LapMessage
from fit_tool.profile.messages.record_message import RecordMessage
from fit_tool.profile.messages.session_message import SessionMessage
from fit_tool.profile.profile_type import (
    Activity,
    Event,
    EventType,
    FileType,
    LapTrigger,
    SessionTrigger,
    SourceType,
    Sport,
    SubSport,
)
from fit_tool.record import Record
from fit_tool.utils import logging as fit_tool_logging
from fit_tool.utils.crc import crc16
from fit_tool.validation import validate_definition

from edge_agent import __version__


def _undo_fit_tool_logging_setup() -> None:
    """fit-tool calls ``logging.basicConfig()`` when imported (``fit_tool/utils/logging.py``): in a program that
    had not configured logging yet, that installs a root handler with fit-tool's format, and the program's own
    ``basicConfig`` later does nothing. Remove that handler (recognised by fit-tool's format string)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler.formatter, "_fmt", None) == fit_tool_logging.FORMAT:
            root.removeHandler(handler)


_undo_fit_tool_logging_setup()

#: Unix time of the FIT epoch, 1989-12-31 00:00:00 UTC (FIT timestamps count seconds from it, uint32).
FIT_EPOCH_UNIX = 631065600
#: Manufacturer ``development`` (FIT profile): for products without a manufacturer id of their own.
MANUFACTURER_DEVELOPMENT = 255
PRODUCT_FOOTFALL = 1
#: A run longer than this is refused (a device clock jump, not a run): 48 h = 172,800 records.
MAX_DURATION_S = 48 * 3600.0
#: Windows further apart than this are a pause: the timer stops and no records are written between them.
GAP_S = 1.0
MIME_TYPE = "application/vnd.ant.fit"
#: Stable identities of footfall as a FIT developer and of this export as the application writing the fields.
DEVELOPER_ID = uuid.uuid5(uuid.NAMESPACE_URL, "urn:footfall:developer")
APPLICATION_ID = uuid.uuid5(uuid.NAMESPACE_URL, "urn:footfall:fit-export")

SportName = Literal["running", "walking"]
_SPORTS = {"running": (Sport.RUNNING, SubSport.GENERIC), "walking": (Sport.WALKING, SubSport.GENERIC)}
#: FIT global message numbers of the three message types that carry developer fields, and their field offsets.
_SCOPES = {"record": (20, 0), "lap": (19, 32), "session": (18, 64)}


class FitExportError(ValueError):
    """A run that cannot become a FIT file (clock before 1990, longer than 48 h, …); the message says why."""


@dataclass(frozen=True, slots=True)
class FitSpan:
    """The measures of one stretch of a run — a summary window, or the whole run — in the project's definitions.

    ``contact_ms`` and ``valr_bw_s`` are the means over the steps of both feet; ``contact_asymmetry_pct`` is the
    symmetry index of the feet's mean contact times, SI% = (R − L) / (0.5 (R + L)) × 100 (docs/design.md §4);
    ``valr_lo_bw_s``/``valr_hi_bw_s`` the means of the steps' 90 % VALR interval bounds, when the analysis gives
    them; zone counts are steps of both feet.
    """

    t_start: float
    t_end: float
    steps: int = 0
    cadence_spm: float | None = None
    contact_ms: float | None = None
    contact_asymmetry_pct: float | None = None
    valr_bw_s: float | None = None
    valr_lo_bw_s: float | None = None
    valr_hi_bw_s: float | None = None
    strike_index_left: float | None = None
    strike_index_right: float | None = None
    rearfoot: int = 0
    midfoot: int = 0
    forefoot: int = 0

    def zone_share_pct(self, zone: Literal["rearfoot", "midfoot", "forefoot"]) -> float | None:
        """Share of the steps with a strike zone that landed in ``zone``, in %; None without any."""
        total = self.rearfoot + self.midfoot + self.forefoot
        return 100.0 * getattr(self, zone) / total if total > 0 else None


@dataclass(frozen=True, slots=True)
class FitRun:
    """A run as the encoder takes it: the whole-run span, its windows (oldest first) and who recorded it."""

    run_id: str
    device_id: str
    summary: FitSpan
    windows: Sequence[FitSpan]
    sport: SportName = "running"
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class MeasureField:
    """A footfall measure written as a FIT developer field (in records, the lap and the session)."""

    name: str
    units: str
    number: int
    value: Callable[[FitSpan], float | None]


#: The developer fields, in field-number order. A field is described and written only when some span has a value.
MEASURE_FIELDS: tuple[MeasureField, ...] = (
    MeasureField("valr", "BW/s", 0, lambda s: s.valr_bw_s),
    MeasureField("valr_low", "BW/s", 1, lambda s: s.valr_lo_bw_s),
    MeasureField("valr_high", "BW/s", 2, lambda s: s.valr_hi_bw_s),
    MeasureField("strike_index_left", "0 heel-1 toe", 3, lambda s: s.strike_index_left),
    MeasureField("strike_index_right", "0 heel-1 toe", 4, lambda s: s.strike_index_right),
    MeasureField("rearfoot_share", "%", 5, lambda s: s.zone_share_pct("rearfoot")),
    MeasureField("midfoot_share", "%", 6, lambda s: s.zone_share_pct("midfoot")),
    MeasureField("forefoot_share", "%", 7, lambda s: s.zone_share_pct("forefoot")),
)


def stance_time_balance_pct(contact_asymmetry_pct: float | None) -> float | None:
    """The left foot's share of contact time in % (FIT ``stance_time_balance``, Garmin's "GCT balance").

    From the symmetry index of the feet's mean contact times, SI% = (R − L) / (0.5 (R + L)) × 100:
    L / (L + R) × 100 = 50 − SI% / 4. None when SI% is unknown or outside ±200 (no contact on one foot)."""
    if contact_asymmetry_pct is None or not math.isfinite(contact_asymmetry_pct):
        return None
    if abs(contact_asymmetry_pct) > 200.0:
        return None
    return 50.0 - contact_asymmetry_pct / 4.0


def running_cadence(spm: float | None) -> tuple[int, float] | None:
    """Steps/min of both feet → FIT (``cadence`` strides/min, ``fractional_cadence`` in 1/128); None if it does not
    fit the uint8 field (an invalid measurement, not a cadence to clamp)."""
    if spm is None or not math.isfinite(spm) or spm < 0.0:
        return None
    whole, frac = divmod(round(spm / 2.0 * 128.0), 128)
    return (whole, frac / 128.0) if whole <= 254 else None


def fit_filename(run_id: str) -> str:
    """``footfall-<run id>.fit`` with anything but letters, digits, ``_`` and ``-`` replaced by ``-``."""
    return f"footfall-{re.sub(r'[^A-Za-z0-9_-]', '-', run_id)}.fit"


def serial_number(device_id: str) -> int:
    """A stable non-zero uint32 for a device id (FIT ``serial_number`` is uint32z: 0 means invalid)."""
    return zlib.crc32(device_id.encode("utf-8")) or 1


def _version_parts() -> tuple[int, int, int]:
    nums = [int(n) for n in re.findall(r"\d+", __version__)[:3]]
    major, minor, patch = (*nums, 0, 0, 0)[:3]
    return major, minor, patch


def _ms(unix_s: int) -> int:
    """fit-tool takes date_time fields as Unix milliseconds (it converts to the FIT epoch)."""
    return unix_s * 1000


# -- the writer ---------------------------------------------------------------------------------------


class _Writer:
    """FIT records into one buffer; a definition message is written whenever a local type's layout changes."""

    def __init__(self) -> None:
        self._body = bytearray()
        self._defined: dict[int, bytes] = {}
        self.counts: dict[str, int] = {}

    def add(self, msg: DataMessage, local_id: int) -> None:
        msg.local_id = local_id
        definition = DefinitionMessage.from_data_message(msg)
        validate_definition(definition)
        raw = Record.from_message(definition).to_bytes()
        if self._defined.get(local_id) != raw:
            self._body += raw
            self._defined[local_id] = raw
        msg.set_definition_message(definition)
        self.repeat(msg)

    def repeat(self, msg: DataMessage) -> None:
        """Write ``msg`` again with its current values (same layout as when it was added)."""
        self._body += Record.from_message(msg).to_bytes()
        self.counts[msg.name] = self.counts.get(msg.name, 0) + 1

    def finish(self) -> bytes:
        header = FitFileHeader(records_size=len(self._body), protocol_version=ProtocolVersion(2, 0), gen_crc=True)
        head = header.to_bytes()
        crc = crc16(bytes(self._body), crc=crc16(head))
        return head + bytes(self._body) + struct.pack("<H", crc)


# Local message types (0–15): one per message kind, so a kind's definition is rewritten only when its layout changes.
_LOCAL = {"file_id": 0, "file_creator": 1, "developer_data_id": 2, "field_description": 3, "device_info": 4,
          "event": 5, "record": 6, "lap": 7, "session": 8, "activity": 9}  # fmt: skip


# -- encoding -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Timing:
    start: int  # whole Unix seconds
    end: int
    elapsed_s: float
    timer_s: float
    windows: list[FitSpan]
    gaps: list[tuple[float, float]]


def _timing(run: FitRun) -> _Timing:
    s = run.summary
    windows = sorted((w for w in run.windows if w.t_end > w.t_start), key=lambda w: w.t_start) or [s]
    t0 = min(s.t_start, windows[0].t_start)
    t1 = max(s.t_end, max(w.t_end for w in windows))
    for name, t in (("start", t0), ("end", t1)):
        if not math.isfinite(t) or not FIT_EPOCH_UNIX <= t < FIT_EPOCH_UNIX + 0xFFFFFFF0:
            raise FitExportError(
                f"run {run.run_id}: {name} time {t!r} is outside the FIT time range (1989-12-31 … 2126); "
                "was the device clock set?"
            )
    if t1 - t0 > MAX_DURATION_S:
        raise FitExportError(
            f"run {run.run_id}: spans {t1 - t0:.0f} s, more than the {MAX_DURATION_S:.0f} s a FIT export covers "
            "(a clock jump inside the run?)"
        )
    gaps: list[tuple[float, float]] = []
    covered_to = windows[0].t_end
    for w in windows[1:]:
        if w.t_start - covered_to >= GAP_S:
            gaps.append((covered_to, w.t_start))
        covered_to = max(covered_to, w.t_end)
    elapsed = t1 - t0
    timer = max(0.0, elapsed - sum(b - a for a, b in gaps))
    return _Timing(math.floor(t0), math.ceil(t1), elapsed, timer, windows, gaps)


def _dev_fields(scope: str, spans: Sequence[FitSpan]) -> list[tuple[MeasureField, int]]:
    """(field, field number) of the measures with a value in any of ``spans``, for one message scope."""
    offset = _SCOPES[scope][1]
    return [(f, f.number + offset) for f in MEASURE_FIELDS if any(f.value(s) is not None for s in spans)]


def _dev_values(fields: list[tuple[MeasureField, int]], span: FitSpan) -> list[DeveloperField]:
    out = []
    for f, number in fields:
        v = f.value(span)
        if v is not None and math.isfinite(v):
            d = DeveloperField(developer_data_index=0, field_id=number, base_type=BaseType.FLOAT32, size=4, name=f.name)
            d.set_value(0, float(v))
            out.append(d)
    return out


def _set_running_dynamics(msg: DataMessage, span: FitSpan, prefix: str = "") -> None:
    """Cadence, stance time and balance of ``span`` on a record (``prefix`` "") or a lap/session ("avg_")."""
    cad = running_cadence(span.cadence_spm)
    if cad is not None:
        setattr(msg, f"{prefix}cadence", cad[0])
        setattr(msg, f"{prefix}fractional_cadence", cad[1])
    if span.contact_ms is not None and 0.0 <= span.contact_ms <= 6553.4:
        setattr(msg, f"{prefix}stance_time", span.contact_ms)
    balance = stance_time_balance_pct(span.contact_asymmetry_pct)
    if balance is not None:
        setattr(msg, f"{prefix}stance_time_balance", balance)


def _header_messages(w: _Writer, run: FitRun, timing: _Timing, dev: dict[str, list[tuple[MeasureField, int]]]) -> None:
    major, minor, patch = _version_parts()
    serial = serial_number(run.device_id)
    fid = FileIdMessage()
    fid.type = FileType.ACTIVITY
    fid.manufacturer = MANUFACTURER_DEVELOPMENT
    fid.product = PRODUCT_FOOTFALL
    fid.serial_number = serial
    fid.time_created = _ms(timing.start)
    fid.product_name = "footfall"
    w.add(fid, _LOCAL["file_id"])
    creator = FileCreatorMessage()
    creator.software_version = major * 100 + minor
    w.add(creator, _LOCAL["file_creator"])
    if any(dev.values()):
        did = DeveloperDataIdMessage()
        did.developer_id = DEVELOPER_ID.bytes
        did.application_id = APPLICATION_ID.bytes
        did.manufacturer_id = MANUFACTURER_DEVELOPMENT
        did.developer_data_index = 0
        did.application_version = major * 10000 + minor * 100 + patch
        w.add(did, _LOCAL["developer_data_id"])
    for scope, fields in dev.items():
        for f, number in fields:
            desc = FieldDescriptionMessage()
            desc.developer_data_index = 0
            desc.field_definition_number = number
            desc.fit_base_type_id = BaseType.FLOAT32.value
            desc.field_name = f.name
            desc.units = f.units
            desc.native_mesg_num = _SCOPES[scope][0]
            # No native equivalent, said explicitly (255 = invalid): Golden Cheetah's reader otherwise takes an
            # unset native_field_num for a native field number (src/FileIO/FitRideFile.cpp).
            desc.native_field_num = 255
            w.add(desc, _LOCAL["field_description"])
    devices = [(0, "footfall")]  # the creator: footfall's software
    if run.profile:
        devices.append((1, run.profile))  # the insoles, by hardware profile
    for index, name in devices:
        info = DeviceInfoMessage()
        info.timestamp = _ms(timing.start)
        info.device_index = index
        info.manufacturer = MANUFACTURER_DEVELOPMENT
        info.product = PRODUCT_FOOTFALL
        info.serial_number = serial
        info.product_name = name[:32]
        info.source_type = SourceType.LOCAL
        if index == 0:
            info.software_version = major + minor / 100.0
        w.add(info, _LOCAL["device_info"])


def _event(w: _Writer, t: int, kind: EventType) -> None:
    ev = EventMessage()
    ev.timestamp = _ms(t)
    ev.event = Event.TIMER
    ev.event_type = kind
    ev.event_group = 0
    w.add(ev, _LOCAL["event"])


def _records(w: _Writer, timing: _Timing, fields: list[tuple[MeasureField, int]]) -> None:
    """One record per whole second inside a window, holding that window's values."""
    last = -1
    gaps = list(timing.gaps)
    for span in timing.windows:
        first_second = max(math.ceil(span.t_start), last + 1)
        seconds = range(first_second, math.ceil(span.t_end))
        if not seconds:
            continue
        passed = [g for g in gaps if g[1] <= span.t_start]
        if passed:  # the timer was stopped from the first of these gaps until this window
            _event(w, min(math.ceil(passed[0][0]), first_second), EventType.STOP_ALL)
            _event(w, first_second, EventType.START)
            gaps = gaps[len(passed) :]
        msg = RecordMessage(developer_fields=_dev_values(fields, span))
        msg.timestamp = _ms(seconds[0])
        _set_running_dynamics(msg, span)
        w.add(msg, _LOCAL["record"])
        for t in seconds[1:]:
            msg.timestamp = _ms(t)
            w.repeat(msg)
        last = seconds[-1]


def _summary_message(
    msg: LapMessage | SessionMessage, run: FitRun, timing: _Timing, fields: list[tuple[MeasureField, int]]
) -> None:
    sport, sub_sport = _SPORTS[run.sport]
    s = run.summary
    msg.timestamp = _ms(timing.end)
    msg.start_time = _ms(timing.start)
    msg.total_elapsed_time = timing.elapsed_s
    msg.total_timer_time = timing.timer_s
    msg.sport = sport
    msg.sub_sport = sub_sport
    msg.message_index = 0
    msg.total_cycles = round(s.steps / 2)  # strides: one per two steps (total_strides for running and walking)
    _set_running_dynamics(msg, s, prefix="avg_")
    peaks = [c for c in (running_cadence(w.cadence_spm) for w in timing.windows) if c is not None]
    if peaks:
        top = max(peaks)
        msg.max_cadence = top[0]
        msg.max_fractional_cadence = top[1]
    for d in _dev_values(fields, s):
        msg.developer_fields.append(d)


@dataclass(frozen=True, slots=True)
class EncodedFit:
    """A FIT file and how many messages of each kind (``record``, ``lap``, ``field_description`` …) it holds."""

    data: bytes
    messages: dict[str, int]


def encode_run(run: FitRun) -> EncodedFit:
    """The FIT activity file of ``run`` (CRC included); :class:`FitExportError` when it cannot be one."""
    timing = _timing(run)
    dev = {
        "record": _dev_fields("record", timing.windows),
        "lap": _dev_fields("lap", [run.summary]),
        "session": _dev_fields("session", [run.summary]),
    }
    w = _Writer()
    _header_messages(w, run, timing, dev)
    _event(w, timing.start, EventType.START)
    _records(w, timing, dev["record"])
    _event(w, timing.end, EventType.STOP_ALL)
    lap = LapMessage(developer_fields=[])
    lap.event = Event.LAP
    lap.event_type = EventType.STOP
    lap.lap_trigger = LapTrigger.SESSION_END
    _summary_message(lap, run, timing, dev["lap"])
    w.add(lap, _LOCAL["lap"])
    session = SessionMessage(developer_fields=[])
    session.event = Event.SESSION
    session.event_type = EventType.STOP
    session.trigger = SessionTrigger.ACTIVITY_END
    session.first_lap_index = 0
    session.num_laps = 1
    _summary_message(session, run, timing, dev["session"])
    w.add(session, _LOCAL["session"])
    act = ActivityMessage()
    act.timestamp = _ms(timing.end)
    act.total_timer_time = timing.timer_s
    act.num_sessions = 1
    act.type = Activity.MANUAL
    act.event = Event.ACTIVITY
    act.event_type = EventType.STOP
    w.add(act, _LOCAL["activity"])
    return EncodedFit(w.finish(), dict(w.counts))
