"""``footfall-agent analyze``: measure every step of a recording and print a table, CSV or JSON.

The JSON form is a stable contract (``schema: footfall.analyze/1``, documented in
docs/recordings.md): tools built on it must keep working when fields are *added*; fields are never
renamed or removed within a schema version.

Exit codes: 0 success, 2 bad input (unknown format, a profile that does not fit the file, values
the analysis cannot use) with a one-line message on stderr, 1 anything unexpected.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from collections.abc import Callable
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any, TextIO

import numpy as np

from edge_agent.analysis.step import FLOAT_KEYS, STEP_KEYS, ZONES, StepTable
from edge_agent.recordings import FrameStream

SCHEMA = "footfall.analyze/1"
FORMATS = ("table", "csv", "json", "fit")
#: The progress bar appears on a terminal once the analysis has run this long (a quick file never shows one).
PROGRESS_DELAY_S = 2.0
#: Overrides :data:`PROGRESS_DELAY_S` (seconds; 0 draws the bar at once).
PROGRESS_DELAY_ENV = "FOOTFALL_PROGRESS_DELAY_S"
STEP_FIELDS = list(STEP_KEYS)


class InputError(Exception):
    """Bad input the user can fix; printed as one line, exit code 2."""


def add_analyze_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``analyze`` options (shared by ``footfall-agent analyze`` and ``python -m edge_agent.analysis.report``)."""
    parser.add_argument("path", help="recording: .ffrec, Moticon export (.txt / ;-CSV), gaitpdb, Fukuchi, CSV")
    parser.add_argument("--profile", help="hardware profile name or YAML path (default: the format's own)")
    parser.add_argument(
        "--body-mass",
        type=float,
        metavar="KG",
        dest="body_mass",
        help="body mass for BW normalisation (default: recording, standing, else 70 kg)",
    )
    parser.add_argument(
        "--format",
        default="table",
        dest="fmt",
        metavar="{table,csv,json,fit}",
        help="output: table (default), csv (one row per step), json (steps + summary), fit (activity file for "
        "training platforms, written to --out or <recording>.fit)",
    )
    parser.add_argument("--input-format", dest="input_format", help="skip auto-detection (e.g. moticon-txt)")
    parser.add_argument("--segment", help="only analyse the labelled segment(s) with this name, e.g. 'Walking'")
    parser.add_argument(
        "--contact-events",
        choices=["physical", "vendor"],
        default="physical",
        dest="contact_events",
        help="physical (default): contact from 0.03 BW (pressure insoles: toe-off at 11 %% of the step's peak); "
        "vendor: also initial contact at 6 %% of the step's peak, as Moticon's reports (docs/measures.md §2)",
    )
    parser.add_argument("-o", "--output", "--out", help="write to this file instead of stdout")
    parser.add_argument("--no-progress", action="store_true", help="never show the progress bar")
    return parser


# -- the report (JSON contract) ----------------------------------------------------------------------
def _clean(v: Any) -> Any:
    """JSON-safe: non-finite → None, numpy scalars → Python, floats rounded to 6 decimals."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float):
        return round(v, 6) if math.isfinite(v) else None
    return v


def _mean(values: np.ndarray) -> float | None:
    """Mean of the finite values of a column, summed in order (None without one)."""
    vals = values[np.isfinite(values)].tolist()
    return sum(vals) / len(vals) if vals else None


def _clean_floats(values: list[float | None]) -> list[float | None]:
    """:func:`_clean` of a column of floats and Nones (``v - v == 0`` is False for NaN and ±inf)."""
    return [round(v, 6) if v is not None and v - v == 0 else None for v in values]


class StepRows(list):  # type: ignore[type-arg]
    """The report's ``steps`` (a list of dicts) that also keeps the columns it was built from, so the JSON
    layout reads columns instead of every dict again."""

    columns: dict[str, list[Any]]


def step_rows(table: StepTable) -> StepRows:
    """The report's ``steps``: one :meth:`Step.to_dict` per step, JSON-safe as :func:`_clean` makes it."""
    cols = table.to_columns()
    for key in FLOAT_KEYS:
        cols[key] = _clean_floats(cols[key])
    keys = list(cols)
    rows = StepRows(dict(zip(keys, row, strict=True)) for row in zip(*cols.values(), strict=True))
    rows.columns = cols
    return rows


def build_report(source: str, result: Any, profile_name: str) -> dict[str, Any]:
    """The ``analyze`` JSON document for an AnalysisResult of the recording at ``source``."""
    from edge_agent.analysis.aggregator import as_table, summarize

    table = as_table(result.steps).sorted_by_contact()
    c = table.cols
    n = len(table)
    stats = summarize(table, sample_rate_hz=getattr(result, "kernel_rate_hz", None))
    feet = {"left": stats.left, "right": stats.right}
    zones = {side: {**fs.zones.model_dump(), "uncertain": fs.zone_uncertain} for side, fs in feet.items()}
    zone = c["zone"]
    with_si = int(np.count_nonzero(zone >= 0))
    summary = {
        "steps": n,
        "steps_left": stats.left.steps,
        "steps_right": stats.right.steps,
        "cadence_spm": stats.cadence_spm,
        "duty_factor": stats.duty_factor,
        "contact_ms_mean": _mean(c["contact_ms"]),
        "flight_ms_mean": _mean(c["flight_ms"]),
        "strike_index_mean": _mean(c["strike_index"]),
        "zones": zones,
        "zone_share": {z: int(np.count_nonzero(zone == k)) / with_si if with_si else None for k, z in enumerate(ZONES)},
        "impact_peak_share": int(np.count_nonzero(c["impact_peak"])) / n if n else None,
        "valr_bw_s_mean": _mean(c["valr_bw_s"]),
        "vilr_bw_s_mean": _mean(c["vilr_bw_s"]),
        "peak_force_bw_mean": _mean(c["peak_force_bw"]),
        "loading_rate_low_confidence": bool(c["lr_low_confidence"].any()),
        "valr": stats.valr.model_dump() if stats.valr is not None else None,
        "feet": {side: fs.model_dump() for side, fs in feet.items()},
        "asymmetry": stats.asymmetry.model_dump(),
    }
    report = _clean(
        {
            "schema": SCHEMA,
            "source": source,
            "profile": profile_name,
            "duration_s": result.duration_s,
            "sample_rate_hz": result.sample_rate_hz,
            "body_weight_n": result.body_weight_n,
            "body_weight_source": result.body_weight_source,
            "steps": [],
            "summary": summary,
            "quality": result.quality,
            "warnings": list(getattr(result, "warnings", [])),
        }
    )
    report["steps"] = step_rows(table)
    return report


# -- formatting ---------------------------------------------------------------------------------------
def _f(v: Any, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def format_table(report: dict[str, Any]) -> str:
    """A readable per-step table and the run summary."""
    out = io.StringIO()
    w = out.write
    w(
        f"{report['source']}  (profile {report['profile']}, {report['duration_s']:.1f} s, "
        f"{report['sample_rate_hz']:.0f} Hz, body weight {report['body_weight_n']:.0f} N from "
        f"{report['body_weight_source']})\n\n"
    )
    head = (
        f"{'#':>4} {'side':5} {'contact s':>9} {'contact ms':>10} {'flight ms':>9} {'SI':>5} {'zone':9} "
        f"{'impact':6} {'VALR':>6} {'VILR':>6} {'peak BW':>7}"
    )
    w(head + "\n" + "-" * len(head) + "\n")
    for i, s in enumerate(report["steps"], 1):
        zone = (s["strike_zone"] or "–") + ("?" if s["zone_uncertain"] else "")
        lr = "" if s["lr_method"] == "impact_peak" else "*"
        w(
            f"{i:4d} {s['side']:5} {s['t_contact']:9.3f} {s['contact_ms']:10.0f} {_f(s['flight_ms'], '9.0f')} "
            f"{_f(s['strike_index'], '5.2f')} {zone:9} {'yes' if s['impact_peak'] else 'no':6} "
            f"{_f(s['valr_bw_s'], '6.1f')}{lr:1}{_f(s['vilr_bw_s'], '6.1f')} {s['peak_force_bw']:7.2f}\n"
        )
    sm = report["summary"]
    w("\n")
    w(
        f"steps {sm['steps']} (left {sm['steps_left']}, right {sm['steps_right']}), cadence "
        f"{_f(sm['cadence_spm'], '.1f')} spm, contact {_f(sm['contact_ms_mean'], '.0f')} ms, flight "
        f"{_f(sm['flight_ms_mean'], '.0f')} ms, duty factor {_f(sm['duty_factor'], '.2f')}\n"
    )
    if report["steps"] and all(s["strike_index"] is None for s in report["steps"]):
        w("zones: – (no centre of pressure on this insole, so no strike index; impact peaks are the evidence)\n")
    for side in ("left", "right") if any(s["strike_index"] is not None for s in report["steps"]) else ():
        z = sm["zones"][side]
        w(
            f"{side:5} zones: rearfoot {z['rearfoot']}, midfoot {z['midfoot']}, forefoot {z['forefoot']} "
            f"({z['uncertain']} near a boundary)\n"
        )
    est = sm.get("valr")
    if est:
        w(
            f"loading rate ≈ {est['mean']:.0f} BW/s ({est['lo']:.0f}–{est['hi']:.0f}, 90 % interval at "
            f"{est['sample_rate_hz']:g} Hz; {100 * est['corrected_share']:.0f} % of steps rise-corrected)\n"
        )
    w(
        f"VALR mean {_f(sm['valr_bw_s_mean'], '.1f')} BW/s, VILR mean {_f(sm['vilr_bw_s_mean'], '.1f')} BW/s, "
        f"impact peaks in {_f(None if sm['impact_peak_share'] is None else 100 * sm['impact_peak_share'], '.0f')} % "
        f"of steps, peak force {_f(sm['peak_force_bw_mean'], '.2f')} BW\n"
    )
    notes = []
    if sm["loading_rate_low_confidence"]:
        notes.append("loading rates are low-confidence below 200 Hz")
    if any(s["lr_method"] != "impact_peak" for s in report["steps"]):
        notes.append("* = no impact peak, fallback loading-rate window")
    if any(s["zone_uncertain"] for s in report["steps"]):
        notes.append("? = strike index within 0.07 of a zone boundary")
    notes.extend(report["warnings"])
    for n in notes:
        w(f"note: {n}\n")
    return out.getvalue()


def format_csv(report: dict[str, Any]) -> str:
    """One row per step, every Step field, in Step's field order."""
    out = io.StringIO()
    wr = csv.DictWriter(out, fieldnames=STEP_FIELDS, lineterminator="\n")
    wr.writeheader()
    for s in report["steps"]:
        wr.writerow({k: "" if s.get(k) is None else s.get(k) for k in STEP_FIELDS})
    return out.getvalue()


#: Stands for the steps in the document json.dumps lays out (a NUL never occurs in a report's text).
_STEPS_MARK = "\x00steps\x00"


def format_json(report: dict[str, Any]) -> str:
    """``json.dumps(report, indent=2, ensure_ascii=False)``, the steps (most of the document) laid out by
    :func:`_json_steps` in the same bytes, several times faster than json's indenting encoder."""
    steps = report.get("steps")
    if isinstance(steps, list) and steps:
        try:
            body = _json_steps(steps)
        except (TypeError, ValueError):  # not flat rows of one layout: json lays them out
            body = None
        if body is not None:
            mark = json.dumps(_STEPS_MARK)
            text = json.dumps({**report, "steps": _STEPS_MARK}, indent=2, allow_nan=False, ensure_ascii=False)
            return text.replace(mark, body, 1) + "\n"
    return json.dumps(report, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def _json_value(v: Any) -> str:
    """One scalar as json.dumps writes it (``allow_nan=False``, ``ensure_ascii=False``)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    kind = type(v)
    if kind is float:
        if v - v != 0:
            raise ValueError(f"{v!r} is not JSON")
        return float.__repr__(v)
    if kind is int:
        return int.__repr__(v)
    if kind is str:
        return encode_basestring(v)
    raise TypeError(f"{kind.__name__} is not a JSON scalar")


_JSON_BOOL = {True: "true", False: "false", None: "null"}


def _json_column(values: list[Any]) -> list[str]:
    """:func:`_json_value` of each value, a whole column of one type at C speed."""
    kinds = set(map(type, values))
    if kinds == {float} and all(map(math.isfinite, values)):
        return list(map(float.__repr__, values))
    if kinds <= {bool, type(None)}:
        return [_JSON_BOOL[v] for v in values]
    if kinds == {str}:
        return list(map(encode_basestring, values))
    return list(map(_json_value, values))


def _json_steps(steps: list[dict[str, Any]]) -> str:
    """The ``steps`` list of the report at json's ``indent=2`` (a list of flat rows with the same keys)."""
    keys = tuple(steps[0])
    if any(tuple(row) != keys for row in steps):
        raise ValueError("steps with different keys")
    columns = getattr(steps, "columns", None)
    if columns is None or tuple(columns) != keys or any(len(c) != len(steps) for c in columns.values()):
        columns = {k: [row[k] for row in steps] for k in keys}
    tokens = [_json_column(columns[k]) for k in keys]
    template = "{\n" + ",\n".join(f"      {encode_basestring(k).replace('%', '%%')}: %s" for k in keys) + "\n    }"
    return "[\n    " + ",\n    ".join(template % row for row in zip(*tokens, strict=True)) + "\n  ]"


FORMATTERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "table": format_table,
    "csv": format_csv,
    "json": format_json,
}


# -- running ------------------------------------------------------------------------------------------
def _progress_delay() -> float:
    try:
        delay = float(os.environ.get(PROGRESS_DELAY_ENV, PROGRESS_DELAY_S))
    except ValueError:
        return PROGRESS_DELAY_S
    return delay if math.isfinite(delay) and delay >= 0 else PROGRESS_DELAY_S


def _progress(source: Any, enabled: bool, stream: TextIO) -> tuple[Callable[[int, int], None] | None, Any]:
    """A tqdm progress bar on ``stream`` when it is a terminal, drawn once the work has taken
    :data:`PROGRESS_DELAY_S`; nothing when it is not a terminal (a pipe, a file, a CI log) or ``enabled`` is False.
    tqdm is a core dependency already (its ``delay`` is the "more than a few seconds" rule)."""
    if not enabled or not stream.isatty():
        return None, None
    from tqdm import tqdm

    total = source.progress()[1]
    unit = "B" if isinstance(source, FrameStream) else "frames"
    bar = tqdm(
        total=total,
        unit=unit,
        unit_scale=True,
        file=stream,
        desc="analysing",
        leave=False,
        delay=_progress_delay(),
        mininterval=0.2,
    )

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return update, bar


def analyze_path(path: str, **options: Any) -> dict[str, Any]:
    """Load (or stream), analyse and report one recording (``options`` as :func:`load_and_analyze`); InputError
    for anything the user can fix."""
    _, result, profile_name = load_and_analyze(path, **options)
    return build_report(str(path), result, profile_name)


def load_and_analyze(
    path: str,
    profile: str | None = None,
    body_mass_kg: float | None = None,
    input_format: str | None = None,
    segment: str | None = None,
    progress: bool = False,
    stream: TextIO | None = None,
    *,
    whole: bool = False,
    contact_events: str = "physical",
) -> tuple[Any, Any, str]:
    """(what was read, AnalysisResult, profile name) of one recording; InputError for anything the user can fix.

    Tabular files (Moticon exports, gaitpdb, plain CSV) are read a chunk of rows at a time, so memory does not
    grow with the file; native recordings (compact binary), force-plate files (sides found over the whole trial)
    and, with ``whole``, every file are loaded into a :class:`Recording`, which is then what was read (a stream
    otherwise).
    """
    from edge_agent.analysis.analyzer import (
        AnalysisConfig,
        AnalysisError,
        FrameSource,
        RecordingFrames,
        TimeWindow,
        analyze_frames,
    )
    from edge_agent.profiles import ProfileError, load_profile
    from edge_agent.recordings import RecordingError, load_recording, open_stream

    if body_mass_kg is not None and not (math.isfinite(body_mass_kg) and 10 <= body_mass_kg <= 400):
        raise InputError(f"--body-mass {body_mass_kg!r}: expected kilograms between 10 and 400")
    try:
        frames = None if whole else open_stream(path, profile=profile, fmt=input_format)
        read: Any
        if frames is not None:
            prof = load_profile(frames.profile)
            source: FrameSource = frames
            read = frames
        else:
            rec = load_recording(path, profile=profile, fmt=input_format)
            prof = load_profile(rec.profile)
            source = RecordingFrames(rec)
            read = rec
    except (RecordingError, ProfileError) as err:
        raise InputError(str(err)) from None
    if segment:
        spans = [s for s in source.segments if s.label.strip().lower() == segment.strip().lower()]
        if not spans:
            known = sorted({s.label for s in source.segments}) or ["none"]
            raise InputError(f"{path}: no segment {segment!r} (segments: {', '.join(known)})")
        # Several segments with the same label are separate bouts: the first is analysed (and said so).
        first = min(spans, key=lambda s: s.t_start)
        source = TimeWindow(source, first.t_start, first.t_end)
    update, bar = _progress(source, progress, stream or sys.stderr)
    try:
        config = AnalysisConfig(contact_events=contact_events)  # type: ignore[arg-type]
        result = analyze_frames(
            source, prof, body_mass_kg, config, progress=update, period=getattr(source, "period", lambda: None)()
        )
    except (AnalysisError, RecordingError) as err:
        raise InputError(f"{path}: {err}" if not str(err).startswith(str(path)) else str(err)) from None
    finally:
        if bar is not None:
            bar.close()
    if not result.quality["left"]["frames"] and not result.quality["right"]["frames"]:
        raise InputError(
            f"{path}: no samples to analyse (the file has no data rows{' in that segment' if segment else ''})"
        )
    return read, result, prof.name


def run_analyze(args: argparse.Namespace) -> int:
    """Entry point for ``footfall-agent analyze`` (argparse namespace from :func:`add_analyze_arguments`)."""
    fmt = getattr(args, "fmt", "table")
    if fmt not in FORMATS:
        print(f"footfall-agent analyze: --format {fmt!r}: choose one of {', '.join(FORMATS)}", file=sys.stderr)
        return 2
    if fmt == "fit":
        from edge_agent.analysis.fit_export import run_analyze_fit

        return run_analyze_fit(args)
    try:
        report = analyze_path(
            args.path,
            profile=args.profile,
            body_mass_kg=args.body_mass,
            input_format=getattr(args, "input_format", None),
            segment=getattr(args, "segment", None),
            progress=not getattr(args, "no_progress", False),
            contact_events=getattr(args, "contact_events", "physical"),
        )
    except InputError as err:
        print(f"footfall-agent analyze: error: {err}", file=sys.stderr)
        return 2
    text = FORMATTERS[fmt](report)
    if getattr(args, "output", None):
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


main_analyze = run_analyze


def main(argv: list[str] | None = None) -> int:
    parser = add_analyze_arguments(
        argparse.ArgumentParser(
            prog="python -m edge_agent.analysis.report", description="Analyse a recording step by step."
        )
    )
    return run_analyze(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
