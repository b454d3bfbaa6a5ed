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
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from edge_agent.analysis.step import STEP_KEYS, Step
from edge_agent.recordings import FrameStream

SCHEMA = "footfall.analyze/1"
FORMATS = ("table", "csv", "json", "fit")
#: Show a progress bar on a TTY, or for recordings at least this many frames (an hour of two feet at 100 Hz)
#: even when stderr is not a TTY.
LONG_RECORDING_FRAMES = 720_000
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


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


def build_report(source: str, result: Any, profile_name: str) -> dict[str, Any]:
    """The ``analyze`` JSON document for an AnalysisResult of the recording at ``source``."""
    from edge_agent.analysis.aggregator import summarize

    steps: list[Step] = list(result.steps)
    stats = summarize(steps, sample_rate_hz=getattr(result, "kernel_rate_hz", None))
    feet = {"left": stats.left, "right": stats.right}
    zones = {side: {**fs.zones.model_dump(), "uncertain": fs.zone_uncertain} for side, fs in feet.items()}
    with_si = [s for s in steps if s.strike_zone is not None]
    summary = {
        "steps": len(steps),
        "steps_left": stats.left.steps,
        "steps_right": stats.right.steps,
        "cadence_spm": stats.cadence_spm,
        "duty_factor": stats.duty_factor,
        "contact_ms_mean": _mean([s.contact_ms for s in steps]),
        "flight_ms_mean": _mean([s.flight_ms for s in steps]),
        "strike_index_mean": _mean([s.strike_index for s in steps]),
        "zones": zones,
        "zone_share": {
            z: (sum(1 for s in with_si if s.strike_zone == z) / len(with_si)) if with_si else None
            for z in ("rearfoot", "midfoot", "forefoot")
        },
        "impact_peak_share": (sum(s.impact_peak for s in steps) / len(steps)) if steps else None,
        "valr_bw_s_mean": _mean([s.valr_bw_s for s in steps]),
        "vilr_bw_s_mean": _mean([s.vilr_bw_s for s in steps]),
        "peak_force_bw_mean": _mean([s.peak_force_bw for s in steps]),
        "loading_rate_low_confidence": any(s.lr_low_confidence for s in steps),
        "valr": stats.valr.model_dump() if stats.valr is not None else None,
        "feet": {side: fs.model_dump() for side, fs in feet.items()},
        "asymmetry": stats.asymmetry.model_dump(),
    }
    return _clean(
        {
            "schema": SCHEMA,
            "source": source,
            "profile": profile_name,
            "duration_s": result.duration_s,
            "sample_rate_hz": result.sample_rate_hz,
            "body_weight_n": result.body_weight_n,
            "body_weight_source": result.body_weight_source,
            "steps": [s.to_dict() for s in steps],
            "summary": summary,
            "quality": result.quality,
            "warnings": list(getattr(result, "warnings", [])),
        }
    )


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


def format_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


FORMATTERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "table": format_table,
    "csv": format_csv,
    "json": format_json,
}


# -- running ------------------------------------------------------------------------------------------
def _progress(source: Any, enabled: bool, stream: TextIO) -> tuple[Callable[[int, int], None] | None, Any]:
    """A progress bar on a terminal, or for big inputs (an hour of frames, or a file over 64 MB) anywhere."""
    total = source.progress()[1]
    big = total >= (64 << 20 if isinstance(source, FrameStream) else LONG_RECORDING_FRAMES)
    if not enabled or not (stream.isatty() or big):
        return None, None
    from tqdm import tqdm

    unit = "B" if isinstance(source, FrameStream) else "frames"
    bar = tqdm(total=total, unit=unit, unit_scale=True, file=stream, desc="analysing", leave=False)

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
