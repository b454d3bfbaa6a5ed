"""Recordings: the in-memory model, the native ``.ffrec`` format, and importers for real datasets.

``load_recording`` auto-detects the format (native, Moticon OpenGo text export, Moticon
``;``-CSV, PhysioNet gaitpdb, Fukuchi ``*forces.txt``, plain CSV) and checks the recording
against its hardware profile. See ``docs/recordings.md`` for the formats.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from edge_agent.profiles import ProfileError, load_profile
from edge_agent.recordings import importers as _imp
from edge_agent.recordings.importers import FrameStream
from edge_agent.recordings.model import FootStream, Recording, RecordingError, Segment, Side, check_stream
from edge_agent.recordings.native import (
    SUFFIX,
    RecordingWarning,
    RecordingWriter,
    is_native,
    load_native,
    save_recording_native,
)

__all__ = [
    "FORMATS",
    "SUFFIX",
    "FootStream",
    "FrameStream",
    "Recording",
    "RecordingError",
    "RecordingWarning",
    "RecordingWriter",
    "Segment",
    "Side",
    "detect_format",
    "load_recording",
    "open_stream",
    "save_recording",
]

FORMATS = tuple(_imp.format_names())


def detect_format(path: Path) -> str:
    """The format of ``path`` from its content (not its name); RecordingError when unknown."""
    if path.is_dir():
        if (path / "insoles.csv.gz").is_file() or (path / "insoles.csv").is_file():
            return "moticon-csv"
        raise RecordingError(f"{path}: is a folder without insoles.csv(.gz); give a recording file")
    try:
        with open(path, "rb") as f:
            head_b = f.read(8192)
    except OSError as err:
        raise RecordingError(f"{path}: cannot read ({err.strerror})") from None
    if is_native(head_b):
        return "native"
    if len(head_b) >= 512 and 0 < head_b[0] < 0x20 and head_b[1] == 0x50:  # C3D: parameter block, 0x50
        return "fukuchi-c3d"
    if head_b[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as g:
                head_b = g.read(8192)
        except (OSError, EOFError) as err:
            raise RecordingError(f"{path}: broken gzip stream ({err})") from None
    head = head_b.decode("utf-8-sig", "replace")
    fmt = _imp.sniff(path, head)
    if fmt is None:
        raise RecordingError(
            f"{path}: unknown recording format (first line {head.splitlines()[:1]!r}); known: {', '.join(FORMATS)}"
        )
    return fmt


def _resolve(path: Path, profile: str | None, fmt: str | None) -> tuple[Path, str, int | None]:
    """(the file to read, its format, the sensor count of ``profile``) with the errors both readers give."""
    if not path.exists():
        raise RecordingError(f"{path}: no such file")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise RecordingError(f"{path}: unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if path.is_dir():
        path = path / "insoles.csv.gz" if (path / "insoles.csv.gz").is_file() else path / "insoles.csv"
    n_profile = None
    if profile is not None:
        try:
            n_profile = load_profile(profile).n_sensors
        except ProfileError as err:
            raise RecordingError(f"{path}: {err}") from None
    return path, fmt, n_profile


def load_recording(path: str | os.PathLike[str], profile: str | None = None, fmt: str | None = None) -> Recording:
    """Load any supported recording; ``profile`` overrides the format's default and is checked to fit.

    Raises RecordingError (a ValueError) naming the file and, where it can, the line and column.
    """
    path, fmt, n_profile = _resolve(Path(path), profile, fmt)
    if fmt == "native":
        rec = load_native(path)
    elif fmt == "moticon-txt":
        rec = _imp.load_moticon_txt(path)
    elif fmt == "moticon-csv":
        rec = _imp.load_moticon_csv(path)
    elif fmt == "gaitpdb":
        rec = _imp.load_gaitpdb(path)
    elif fmt == "fukuchi":
        rec = _imp.load_fukuchi(path)
    elif fmt == "fukuchi-c3d":
        rec = _imp.load_fukuchi_c3d(path)
    else:
        rec = _imp.load_plain_csv(path, profile, n_profile)
    if profile is not None:
        rec.profile = profile
    check_fits_profile(rec, path)
    return rec


def open_stream(path: str | os.PathLike[str], profile: str | None = None, fmt: str | None = None) -> FrameStream | None:
    """A :class:`FrameStream` over a tabular recording (Moticon exports, gaitpdb, plain CSV), checked against its
    profile; None for formats read whole (native, Fukuchi), which :func:`load_recording` reads."""
    path, fmt, n_profile = _resolve(Path(path), profile, fmt)
    if fmt not in _imp.STREAMABLE:
        return None
    stream = FrameStream(path, fmt, profile, n_profile)
    _check_sensor_counts(stream.profile, {side: len(cols) for side, cols in stream.sides.items()}, path)
    return stream


def check_fits_profile(rec: Recording, where: object = "<recording>") -> None:
    """RecordingError unless the profile exists and has as many sensors as each foot stream."""
    _check_sensor_counts(rec.profile, {side: fs.n_sensors for side, fs in rec.streams()}, where)


def _check_sensor_counts(profile: str, counts: dict[str, int], where: object) -> None:
    try:
        prof = load_profile(profile)
    except ProfileError as err:
        raise RecordingError(f"{where}: {err}") from None
    for side, n in counts.items():
        if n != prof.n_sensors:
            raise RecordingError(
                f"{where}: profile {profile!r} has {prof.n_sensors} sensors but the {side} foot "
                f"of this recording has {n}"
            )


def save_recording(rec: Recording, path: str | os.PathLike[str]) -> None:
    """Write ``rec`` in the native format (atomically; see docs/recordings.md)."""
    path = Path(path)
    for side, fs in rec.streams():
        check_stream(fs, f"{path}: {side}")
    save_recording_native(rec, path)
