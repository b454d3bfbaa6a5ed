"""``footfall-agent analyze … --format fit``: a recording's steps as a FIT activity file (docs/recordings.md).

The steps are cut into summary windows the way the agent cuts a run (:mod:`edge_agent.runtime.runs`): windows of
``pipeline.window_s`` (10 s by default) from the first initial contact, each step in the window of its initial
contact, the last window ending at the last toe-off; a window without steps is a pause. Each window, and the
whole recording, is summarised with the aggregator (:func:`edge_agent.analysis.aggregator.summarize`), so cadence,
contact-time asymmetry and the per-foot strike index are the numbers ``analyze --format json`` and the dashboard
show. Contact time and VALR are the means over the steps of both feet — the same number as the dashboard's
step-weighted pooling of the two feet's means. The sport is *walking* when the agent's activity classifier
(:func:`edge_agent.runtime.activity.classify_steps`) calls more windows walking than running, else *running*.

Times: a recording that states its start (Moticon exports, ``.ffrec``) is placed there; otherwise the start is the
file's modification time minus the recording's length (it was written when it ended), and a note says so.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from edge_agent.analysis.aggregator import stat, summarize
from edge_agent.analysis.step import Step
from edge_agent.common.fitfile import EncodedFit, FitExportError, FitRun, FitSpan, SportName, encode_run
from edge_agent.config import PipelineConfig
from edge_agent.runtime.activity import classify_steps

WINDOW_S: float = PipelineConfig.model_fields["window_s"].default


def _mean(values: Iterable[float | None]) -> float | None:
    return stat(values).mean


def span_of(steps: Sequence[Step], t_start: float, t_end: float, unix0: float) -> FitSpan:
    """The FIT measures of ``steps`` over [t_start, t_end) (recording clock; ``unix0`` = Unix time of t = 0)."""
    stats = summarize(steps, t_start, t_end)
    left, right = stats.left, stats.right
    return FitSpan(
        t_start=unix0 + t_start,
        t_end=unix0 + t_end,
        steps=stats.steps,
        cadence_spm=stats.cadence_spm,
        contact_ms=_mean(s.contact_ms for s in steps),
        contact_asymmetry_pct=stats.asymmetry.contact_ms_pct,
        valr_bw_s=_mean(s.valr_bw_s for s in steps),
        # The means of the bounds of each step's 90 % VALR interval (docs/measures.md).
        valr_lo_bw_s=_mean(s.valr_lo_bw_s for s in steps),
        valr_hi_bw_s=_mean(s.valr_hi_bw_s for s in steps),
        strike_index_left=left.strike_index.mean,
        strike_index_right=right.strike_index.mean,
        rearfoot=left.zones.rearfoot + right.zones.rearfoot,
        midfoot=left.zones.midfoot + right.zones.midfoot,
        forefoot=left.zones.forefoot + right.zones.forefoot,
    )


def windows_of(steps: Sequence[Step], window_s: float = WINDOW_S) -> list[tuple[float, float, list[Step]]]:
    """(t_start, t_end, steps) of each window that holds a step, oldest first (recording clock)."""
    ordered = sorted(steps, key=lambda s: s.t_contact)
    if not ordered:
        return []
    t0 = ordered[0].t_contact
    end = max(s.t_toe_off for s in ordered)
    by_index: dict[int, list[Step]] = {}
    for s in ordered:
        by_index.setdefault(int((s.t_contact - t0) // window_s), []).append(s)
    return [(t0 + k * window_s, min(t0 + (k + 1) * window_s, end), ws) for k, ws in sorted(by_index.items())]


def recording_start(rec: Any, path: str | os.PathLike[str]) -> tuple[float, str | None]:
    """Unix time of the recording's t = 0, and a note when it had to be inferred or read without a time zone."""
    if rec.start_time is not None and math.isfinite(rec.start_time):
        note = rec.meta.get("start_time_note")
        return float(rec.start_time), f"{path}: start time: {note}" if note else None
    mtime = Path(path).stat().st_mtime
    t_last = max((float(fs.t[-1]) for _, fs in rec.streams() if fs.n_samples), default=0.0)
    return (
        mtime - t_last,
        f"{path} does not state when it was recorded: the FIT file places its end at the file's modification time",
    )


def recording_fit(
    steps: Sequence[Step], *, name: str, profile: str, start_unix: float, window_s: float = WINDOW_S
) -> EncodedFit:
    """The FIT activity file of a recording's steps (``name`` identifies it in messages; the serial number is the
    hardware profile's); :class:`FitExportError` when there is nothing to export."""
    windows = windows_of(steps, window_s)
    if not windows:
        raise FitExportError(f"{name}: no steps found, so there is no activity to export")
    spans = [span_of(ws, a, b, start_unix) for a, b, ws in windows]
    activities = [classify_steps(ws) for _, _, ws in windows]
    sport: SportName = "walking" if activities.count("walking") > activities.count("running") else "running"
    summary = span_of(steps, windows[0][0], windows[-1][1], start_unix)
    return encode_run(FitRun(name, profile, summary, spans, sport=sport, profile=profile))


#: Extensions stripped from a recording's name to make the default output name (``run.txt.gz`` → ``run.fit``).
_RECORDING_SUFFIXES = {".gz", ".txt", ".csv", ".tsv", ".ffrec"}


def default_fit_path(recording: str | os.PathLike[str]) -> Path:
    """``<recording name without its extensions>.fit`` in the current directory."""
    p = Path(Path(recording).name)
    while p.suffix.lower() in _RECORDING_SUFFIXES:
        p = p.with_suffix("")
    return Path(f"{p.name or 'recording'}.fit")


def run_analyze_fit(args: argparse.Namespace) -> int:
    """``analyze --format fit``: write the FIT file to ``--out`` (``-`` = stdout) or ``<recording>.fit``."""
    from edge_agent.analysis.report import InputError, load_and_analyze

    out = getattr(args, "output", None) or str(default_fit_path(args.path))
    if out == "-" and sys.stdout.isatty():
        print("footfall-agent analyze: a FIT file is binary: give --out FILE or redirect stdout", file=sys.stderr)
        return 2
    try:
        rec, result, profile = load_and_analyze(
            args.path,
            args.profile,
            args.body_mass,
            getattr(args, "input_format", None),
            getattr(args, "segment", None),
            progress=not getattr(args, "no_progress", False),
            whole=True,  # the recording's own start time places the activity
        )
        start, note = recording_start(rec, args.path)
        encoded = recording_fit(result.steps, name=Path(args.path).name, profile=profile, start_unix=start)
    except (InputError, FitExportError) as err:
        print(f"footfall-agent analyze: error: {err}", file=sys.stderr)
        return 2
    if out == "-":
        sys.stdout.buffer.write(encoded.data)
        sys.stdout.buffer.flush()
    else:
        Path(out).write_bytes(encoded.data)
    print(
        f"wrote {out}: {len(encoded.data)} bytes, {encoded.messages.get('record', 0)} records "
        f"({len(result.steps)} steps)",
        file=sys.stderr if out == "-" else sys.stdout,
    )
    if note:
        print(f"note: {note}", file=sys.stderr)
    return 0
