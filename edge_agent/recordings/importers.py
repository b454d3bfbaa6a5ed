"""Importers for the vendor and lab formats footfall validates against, plus plain CSV.

Each importer returns a :class:`Recording` in the profile's raw unit, one :class:`FootStream`
per foot on that foot's own clock (a Moticon side that is not streaming yet simply has no rows),
and keeps the vendor's own numbers in ``reference`` so the validation can compare against them.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import math
import re
import struct
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from edge_agent.recordings.model import (
    MAX_GAP_S,
    SIDES,
    FootStream,
    Recording,
    RecordingError,
    Segment,
    Side,
    check_stream,
)

_PRESSURE = re.compile(r"^(left|right) pressure (\d+)\[")


#: Rows parsed at a time: the text of one chunk (not the file) is what is held, so memory does not grow with the
#: file. A line longer than MAX_LINE_CHARS is refused (no insole writes one; a junk file could be one huge line).
CHUNK_ROWS = 4096
MAX_LINE_CHARS = 1 << 20


class TextLines:
    """The lines of a text file (``.gz`` read transparently), one at a time, numbered from 1, each bounded.

    ``bytes_read`` / ``size`` (of the file on disk) measure progress. Decoding errors and overlong lines are a
    :class:`RecordingError` naming the file and line.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as err:
            raise RecordingError(f"{path}: cannot read ({err.strerror})") from None
        self._raw = raw
        gz = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        self._bin = gzip.GzipFile(fileobj=raw) if gz else raw
        self._text = io.TextIOWrapper(self._bin, encoding="utf-8-sig", newline=None)  # type: ignore[arg-type]
        self.line_no = 0
        self._pushed: str | None = None

    @property
    def bytes_read(self) -> int:
        return self._raw.tell()

    def readline(self) -> str | None:
        """The next line without its line break, or None at the end of the file."""
        if self._pushed is not None:
            line, self._pushed = self._pushed, None
            self.line_no += 1
            return line
        try:
            line = self._text.readline(MAX_LINE_CHARS + 1)
        except UnicodeDecodeError as err:
            raise RecordingError(f"{self.path}:{self.line_no + 1}: not UTF-8 text ({err.reason})") from None
        except (OSError, EOFError) as err:
            raise RecordingError(f"{self.path}: broken gzip stream ({err})") from None
        if not line:
            return None
        self.line_no += 1
        if len(line) > MAX_LINE_CHARS:
            raise RecordingError(f"{self.path}:{self.line_no}: line longer than {MAX_LINE_CHARS:,} characters")
        return line.rstrip("\n")

    def unread(self, line: str) -> None:
        """Give back the line just read (a header parser that looked one line too far)."""
        self._pushed = line
        self.line_no -= 1

    def close(self) -> None:
        self._text.close()
        self._raw.close()

    def __enter__(self) -> TextLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_rows(
    lines: TextLines, sep: str | None, n_cols: int, skip: frozenset[int] = frozenset(), chunk_rows: int = CHUNK_ROWS
) -> Iterator[tuple[int, np.ndarray]]:
    """The numeric table that follows in ``lines``, ``chunk_rows`` rows at a time, each with the line number of
    its first row. Blank lines are allowed only at the end of the file; ``skip`` columns (text labels) stay NaN.
    Errors name file:line:column."""
    blank_at: int | None = None
    while True:
        chunk: list[str] = []
        first = lines.line_no + 1
        while len(chunk) < chunk_rows:
            line = lines.readline()
            if line is None:
                break
            if not line.strip():
                blank_at = blank_at or lines.line_no
                continue
            if blank_at is not None:
                raise RecordingError(f"{lines.path}:{blank_at}: expected {n_cols} columns, found an empty line")
            if not chunk:
                first = lines.line_no
            chunk.append(line)
        if not chunk:
            return
        yield (
            first,
            _parse_rows(lines.path, chunk, first, sep, n_cols, skip)
            if skip
            else _fast_table(lines.path, chunk, first, sep, n_cols),
        )
        if len(chunk) < chunk_rows:
            return


def read_table(lines: TextLines, sep: str | None, n_cols: int, skip: frozenset[int] = frozenset()) -> np.ndarray:
    """The whole table as one array (a chunk's text at a time is held, never the file's)."""
    parts = [data for _, data in read_rows(lines, sep, n_cols, skip)]
    return np.concatenate(parts) if parts else np.empty((0, n_cols))


def _parse_rows(
    path: Path, lines: list[str], first_line: int, sep: str | None, n_cols: int, skip: frozenset[int] = frozenset()
) -> np.ndarray:
    """Numbers of a delimited table; blank cells → NaN; ``skip`` columns (text labels) stay NaN.

    Errors name file:line:column and the offending cell.
    """
    out = np.full((len(lines), n_cols), np.nan)
    for i, line in enumerate(lines):
        cells = line.split(sep)
        if len(cells) > n_cols and not any(c.strip() for c in cells[n_cols:]):
            cells = cells[:n_cols]
        if len(cells) != n_cols:
            raise RecordingError(f"{path}:{first_line + i}: expected {n_cols} columns, found {len(cells)}")
        for j, c in enumerate(cells):
            c = c.strip()
            if not c or j in skip:
                continue
            try:
                v = float(c)
            except ValueError:
                raise RecordingError(f"{path}:{first_line + i}: column {j + 1}: {c[:40]!r} is not a number") from None
            if not math.isfinite(v):
                raise RecordingError(f"{path}:{first_line + i}: column {j + 1}: {c!r} is not a finite number")
            out[i, j] = v
    return out


def _fast_table(path: Path, lines: list[str], first_line: int, sep: str | None, n_cols: int) -> np.ndarray:
    """numpy's parser when the table is clean; the careful parser (blank cells, error positions) otherwise."""
    try:
        arr = np.loadtxt(io.StringIO("\n".join(lines)), delimiter=sep, ndmin=2)
        if arr.shape == (len(lines), n_cols) and np.isfinite(arr).all():
            return arr
    except ValueError:
        pass
    return _parse_rows(path, lines, first_line, sep, n_cols)


def _stream_from(t: np.ndarray, block: np.ndarray, where: str) -> tuple[FootStream | None, np.ndarray]:
    """Rows where every sensor of the foot has a value; a side that never streams gives None."""
    ok = ~np.isnan(block).any(axis=1)
    if not ok.any():
        return None, ok
    partial = ~ok & ~np.isnan(block).all(axis=1)
    if partial.any():
        i = int(np.argmax(partial))
        raise RecordingError(f"{where}: sample at t={t[i]:.3f} s has some sensors blank and others not")
    fs = FootStream(t[ok], block[ok])
    check_stream(fs, where)
    return fs, ok


# -- Moticon (OpenGo text export, plantar-activity CSV) -----------------------------------------
def _moticon_table(path: Path, names: list[str], data: np.ndarray, fmt: str) -> Recording:
    cols = {n.strip(): i for i, n in enumerate(names)}
    rec = Recording(profile="moticon-opengo", left=None, right=None, source=str(path), meta={"format": fmt})
    t = data[:, 0]
    for side, idx in _moticon_sides(path, names).items():
        fs, ok = _stream_from(t, data[:, idx], f"{path}: {side}")
        setattr(rec, side, fs)
        if fs is None:
            continue
        for col, key in (
            ("total force[N]", "total_force_n"),
            ("center of pressure X[-0.5...+0.5]", "cop_x"),
            ("center of pressure Y[-0.5...+0.5]", "cop_y"),
        ):
            j = cols.get(f"{side} {col}")
            if j is not None:
                rec.reference[f"{side}_{key}"] = np.nan_to_num(data[ok, j], nan=0.0)
    _moticon_events(rec, names, data)
    return rec


def _moticon_sides(path: Path, names: list[str]) -> dict[Side, list[int]]:
    """Column indices of each foot's ``<side> pressure <i>[…]`` cells, in sensor order."""
    out: dict[Side, list[int]] = {}
    for side in SIDES:
        idx = []
        for i, n in enumerate(names):
            m = _PRESSURE.match(n.strip())
            if m and m.group(1) == side:
                idx.append((int(m.group(2)), i))
        if not idx:
            continue
        idx.sort()
        if [k for k, _ in idx] != list(range(1, len(idx) + 1)):
            raise RecordingError(f"{path}: {side} pressure columns are not numbered 1…N")
        out[side] = [i for _, i in idx]
    return out


def _moticon_events(rec: Recording, names: list[str], data: np.ndarray) -> None:
    """Vendor step events → ``{side}_initial_contact_s`` / ``{side}_toe_off_s`` (or ``{side}_event<code>_s``).

    Two vendor layouts exist: ``left steps[]`` with codes 11/15 (left initial contact / toe-off) and
    21/25 (right), checked against the gait reports' step tables; and ``Left Events[]`` with codes
    1 (initial contact: the foot's force starts rising) and 2 (a mid-stance event we do not interpret;
    kept as ``{side}_event2_s``).
    """
    t = data[:, 0]
    for j, n in enumerate(names):
        low = n.strip().lower()
        m = re.match(r"^(left|right) (steps|events)\[", low)
        if not m:
            continue
        side, kind = m.group(1), m.group(2)
        col = data[:, j]
        have = ~np.isnan(col)
        for code in np.unique(col[have]).astype(int):
            times = t[have & (col == code)].astype(np.float64)
            if kind == "steps" and code % 10 == 1:
                key = f"{side}_initial_contact_s"
            elif kind == "steps" and code % 10 == 5:
                key = f"{side}_toe_off_s"
            elif kind == "events" and code == 1:
                key = f"{side}_initial_contact_s"
            else:
                key = f"{side}_event{code}_s"
            rec.reference[key] = times


def _moticon_txt_header(lines: TextLines) -> tuple[list[str], dict[str, str]]:
    """Column names and ``key: value`` header of a Moticon text export; ``lines`` is left at the first data row."""
    header: dict[str, str] = {}
    names: list[str] | None = None
    while (line := lines.readline()) is not None:
        if not line.startswith("#"):
            lines.unread(line)
            break
        body = line[1:].strip()
        if body.startswith("time\t"):
            names = body.split("\t")
        elif ":" in body:
            k, v = body.split(":", 1)
            header[k.strip()] = v.strip()
    if names is None:
        raise RecordingError(f"{lines.path}: Moticon export without a '# time<TAB>…' column header line")
    return names, header


def _label_columns(names: list[str]) -> frozenset[int]:
    return frozenset(j for j, n in enumerate(names) if "label" in n.lower())  # e.g. 'Right Events label[]'


def load_moticon_txt(path: Path) -> Recording:
    with TextLines(path) as lines:
        names, header = _moticon_txt_header(lines)
        data = read_table(lines, "\t", len(names), _label_columns(names))
    rec = _moticon_table(path, names, data, "moticon-txt")
    rec.notes = header.get("Notes", "")
    rec.meta.update(
        {
            k: v
            for k, v in header.items()
            if k in ("Sensor insoles", "Size", "Name", "Tag", "Recording type", "Duration")
        }
    )
    if "Size" in header:
        rec.meta["insole_size"] = header["Size"]
    if header.get("Start timestamp", "").isdigit():
        rec.start_time = int(header["Start timestamp"]) / 1000.0
    elif "Start time" in header:
        try:
            dt = datetime.strptime(header["Start time"], "%d.%m.%Y %H:%M:%S.%f").replace(tzinfo=UTC)
            rec.start_time = dt.timestamp()
            rec.meta["start_time_note"] = "export states local time without zone; read as UTC"
        except ValueError:
            pass
    return rec


def _header_line(lines: TextLines, sep: str) -> list[str]:
    line = lines.readline()
    return [] if line is None else line.rstrip("\r").split(sep)


def load_moticon_csv(path: Path) -> Recording:
    with TextLines(path) as lines:
        names = _header_line(lines, ";")
        data = read_table(lines, ";", len(names))
    rec = _moticon_table(path, names, data, "moticon-csv")
    rec.segments = _moticon_segments(path)
    return rec


def _moticon_segments(path: Path) -> list[Segment]:
    classif = path.parent / "classif.csv"
    return _read_classif(classif) if classif.is_file() else []


def _read_classif(path: Path) -> list[Segment]:
    segs = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        for i, row in enumerate(csv.DictReader(f, delimiter=";"), start=2):
            try:
                segs.append(Segment(row["Name"].strip(), float(row["Timestamp Start"]), float(row["Timestamp End"])))
            except (KeyError, TypeError, ValueError) as err:
                raise RecordingError(f"{path}:{i}: bad segment row ({err})") from None
    return segs


# -- PhysioNet gaitpdb --------------------------------------------------------------------------
def load_gaitpdb(path: Path) -> Recording:
    """19 columns: time, 8 left sensors (N), 8 right sensors (N), left total, right total."""
    with TextLines(path) as lines:
        data = read_table(lines, None, 19)
    t = data[:, 0]
    rec = Recording(profile="ultraflex-8", left=None, right=None, source=str(path), meta={"format": "gaitpdb"})
    for side, cols in GAITPDB_SIDES.items():
        fs, _ = _stream_from(t, data[:, cols], f"{path}: {side}")
        setattr(rec, side, fs)
    rec.reference["left_total_force_n"] = data[:, 17].copy()
    rec.reference["right_total_force_n"] = data[:, 18].copy()
    subject = path.name.split("_")[0]
    rec.meta["subject"] = subject
    rec.body_mass_kg, demographics = _gaitpdb_demographics(path)
    if demographics is not None:
        rec.meta["demographics"] = demographics
    return rec


def _gaitpdb_demographics(path: Path) -> tuple[float | None, dict[str, str] | None]:
    """Body mass and the demographics row of the file's subject (``demographics.csv`` beside it)."""
    subject = path.name.split("_")[0]
    demo = path.parent / "demographics.csv"
    if not demo.is_file():
        return None, None
    with open(demo, encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            if row.get("ID", "").strip() == subject:
                w = (row.get("Weight (kg)") or "").strip()
                try:
                    mass = float(w)
                except ValueError:
                    mass = math.nan
                return (mass if math.isfinite(mass) and mass > 0 else None), {k: v for k, v in row.items() if k}
    return None, None


GAITPDB_SIDES: dict[Side, list[int]] = {"left": list(range(1, 9)), "right": list(range(9, 17))}


# -- Fukuchi running biomechanics dataset (force plate) -----------------------------------------
FUKUCHI_RATE_HZ = 300.0
CONTACT_ON_N = 50.0  # a foot is on the plate above this (Fukuchi plate zeroes its noise floor)
CONTACT_EDGE_N = 5.0  # extend each contact outwards while the force stays above this
MIN_CONTACT_S = 0.08
MERGE_GAP_S = 0.02


def _contacts(f: np.ndarray, rate: float) -> list[tuple[int, int]]:
    on = f > CONTACT_ON_N
    edges = np.flatnonzero(np.diff(np.concatenate(([0], on.astype(np.int8), [0]))))
    spans = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and (a - merged[-1][1]) / rate < MERGE_GAP_S:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    out = []
    for a, b in merged:
        while a > 0 and f[a - 1] > CONTACT_EDGE_N:
            a -= 1
        while b < f.size and f[b] > CONTACT_EDGE_N:
            b += 1
        if (b - a) / rate >= MIN_CONTACT_S:
            out.append((a, b))
    return out


def _assign_sides(
    contacts: list[tuple[int, int]], fy: np.ndarray, copz: np.ndarray | None
) -> tuple[list[int], str, float | None]:
    """Side (0 left, 1 right) per contact, how it was decided, and the share of contacts confirming it.

    Running has a flight phase, so contacts on the one plate alternate feet. The plate's
    medial–lateral COP (``COPz``) checks that: each contact should lie on the opposite side of the
    mean of its two neighbours (the runner drifts across the belt, so a global COPz split would not
    work, but neighbours are ~5–7 cm apart). Which foot is the *left* one is not in the force file: the
    foot with the higher COPz is called ``right`` because the lab's Z axis points to the runner's right
    (the markers of RBDS008runT35 say so for all 81 contacts; ISB convention). Without a usable COPz,
    or when fewer than 90 % of contacts confirm the alternation, the first contact is called left.
    """
    alternate = [i % 2 for i in range(len(contacts))]
    how_alt = "alternating contacts, first one called left (arbitrary: the force file has no side)"
    if copz is None or len(contacts) < 5:
        return alternate, how_alt, None
    loaded = [fy[a:b] > 4 * CONTACT_ON_N for a, b in contacts]
    if not all(m.any() for m in loaded):
        return alternate, how_alt, None
    z = np.array([np.median(copz[a:b][m]) for (a, b), m in zip(contacts, loaded, strict=True)])
    d = z[1:-1] - 0.5 * (z[:-2] + z[2:])
    parity = np.arange(1, len(z) - 1) % 2
    even_high = float(d[parity == 0].mean()) > float(d[parity == 1].mean())
    expected = np.where(parity == 0, 1.0, -1.0) * (1.0 if even_high else -1.0)
    agree = float(np.mean(np.sign(d) == expected))
    if agree < 0.9:
        return alternate, how_alt + f" (plate COPz confirms only {agree:.0%} of contacts)", agree
    sides = [(i % 2 == 0) == even_high for i in range(len(contacts))]
    how = (
        f"alternating contacts, confirmed by the plate COPz ({agree:.0%} of contacts on the expected side "
        "of their neighbours); the higher-COPz foot is called right (lab Z points to the runner's right: "
        "checked against the markers of RBDS008runT35, 81 of 81 contacts)"
    )
    return [int(r) for r in sides], how, agree


MARKER_PROBE_S = 0.12  # well inside a running contact (~250 ms), past any heel-to-forefoot roll-over


def _sides_from_markers(c3d: Path, contacts: list[tuple[int, int]], t: np.ndarray) -> list[int] | None:
    """Side per contact from the trial's C3D: the foot whose heel/MT1/MT5 markers are lower (lab Y up)
    ``MARKER_PROBE_S`` after initial contact is the one on the plate. None when unusable."""
    from edge_agent.recordings.c3d import read_c3d_points

    try:
        pts = read_c3d_points(c3d)
        height = {
            s: np.nanmean([pts.marker(f"{s}.{m}")[:, 1] for m in ("Heel.Bottom", "MT1", "MT5")], axis=0) for s in "LR"
        }
    except (RecordingError, OSError, ValueError):
        return None
    tm = pts.t
    out = []
    for a, _ in contacts:
        i = int(np.searchsorted(tm, t[a] + MARKER_PROBE_S))
        if i >= tm.size or not (np.isfinite(height["L"][i]) and np.isfinite(height["R"][i])):
            return None
        out.append(0 if height["L"][i] < height["R"][i] else 1)
    return out


def load_fukuchi(path: Path) -> Recording:
    """``*forces.txt``: Time (1-based sample index at 300 Hz), Fx, Fy (vertical, N), Fz, COP, Ty.

    One treadmill plate under both feet, no side in the file. In running the feet never share the
    plate (there is a flight phase), so contacts are found on Fy (on > 50 N, edges extended to 5 N,
    gaps < 20 ms merged, contacts < 80 ms dropped) and split into the two feet by the plate's
    medial–lateral COP (see :func:`_assign_sides`), or — when the trial's ``.c3d`` lies beside the file —
    by which foot's markers are on the ground (``meta['side_assignment']`` says how). Each foot's stream
    carries the plate force outside the other foot's contacts and 0 during them.
    """
    with TextLines(path) as lines:
        names = _header_line(lines, "\t")
        if [n.strip() for n in names[:3]] != ["Time", "Fx", "Fy"]:
            raise RecordingError(f"{path}:1: expected a Fukuchi forces header 'Time, Fx, Fy, …', got {names[:3]}")
        first = lines.line_no + 1
        data = read_table(lines, "\t", len(names))
    idx = data[:, 0]
    if (np.diff(idx) <= 0).any():
        i = int(np.argmax(np.diff(idx) <= 0)) + 1
        raise RecordingError(f"{path}:{first + i}: sample index goes backwards ({idx[i - 1]:g} → {idx[i]:g})")
    t = (idx - 1.0) / FUKUCHI_RATE_HZ
    cols = [n.strip() for n in names]
    c3d = path.parent / re.sub(r"forces\.txt(\.gz)?$", ".c3d", path.name)
    copz = data[:, cols.index("COPz")] if "COPz" in cols else None
    return _fukuchi_recording(path, t, data[:, 2], copz, c3d if c3d != path and c3d.is_file() else None)


def load_fukuchi_c3d(path: Path) -> Recording:
    """A Fukuchi trial from its ``.c3d``: the plate's vertical force is ``−1000 × F1Z`` of the analog
    channels (300 Hz; in this dataset's files the channel holds kN with the sign flipped, whatever its
    UNITS say: it equals the ``forces.txt`` Fy to 0.005 N wherever that file is not zeroed — a test checks
    it on RBDS008runT35). Unlike ``forces.txt`` it keeps the plate's low samples unzeroed, and it is the
    only force record of S1's 3.5 m/s trial. Sides from the markers; otherwise as :func:`load_fukuchi`."""
    from edge_agent.recordings.c3d import read_c3d_analog

    try:
        an = read_c3d_analog(path)
        fy = -1000.0 * an.channel("F1Z")
    except (OSError, ValueError, struct.error) as err:
        raise RecordingError(f"{path}: no Fukuchi plate channels ({err})") from None
    t = np.arange(fy.size) / an.rate_hz
    return _fukuchi_recording(path, t, fy, None, path, forces_name=re.sub(r"\.c3d$", "forces.txt", path.name))


def _fukuchi_recording(
    path: Path, t: np.ndarray, fy: np.ndarray, copz: np.ndarray | None, c3d: Path | None, forces_name: str = ""
) -> Recording:
    """The two feet of one Fukuchi plate trial: contacts, sides, body mass and labels (RBDSinfo.txt)."""
    contacts = _contacts(fy, FUKUCHI_RATE_HZ)
    side_of, how, agree = _assign_sides(contacts, fy, copz)
    by_markers = _sides_from_markers(c3d, contacts, t) if c3d is not None else None
    marker_agree = None
    if by_markers is not None:
        marker_agree = sum(a == b for a, b in zip(by_markers, side_of, strict=True)) / max(len(side_of), 1)
        side_of = by_markers
        how = (
            f"from the trial's markers ({c3d.name if c3d else ''}): the foot whose heel/MT1/MT5 markers are lower "
            f"{MARKER_PROBE_S * 1000:.0f} ms after initial contact; the plate-COPz rule agrees on "
            f"{marker_agree:.0%} of contacts"
        )
    owner = np.full(fy.size, -1, dtype=np.int8)
    for (a, b), k in zip(contacts, side_of, strict=True):
        owner[a:b] = k
    rec = Recording(
        profile="force-plate-300",
        left=None,
        right=None,
        source=str(path),
        meta={"format": "fukuchi", "side_assignment": how, "contacts": len(contacts)},
    )
    if agree is not None:
        rec.meta["copz_alternation_agreement"] = round(agree, 3)
    if marker_agree is not None and copz is not None:
        rec.meta["marker_copz_side_agreement"] = round(marker_agree, 3)
    for k, side in enumerate(SIDES):
        f = np.where(owner == 1 - k, 0.0, np.maximum(fy, 0.0))
        setattr(rec, side, FootStream(t, f.reshape(-1, 1)))
        rec.reference[f"{side}_contact_start_s"] = np.asarray(
            [t[a] for (a, _), o in zip(contacts, side_of, strict=True) if o == k]
        )
    rec.reference["plate_fy_n"] = np.asarray(fy, dtype=np.float64).copy()
    name = forces_name or path.name
    m = re.match(r"^(RBDS(\d+))run(T(\d)(\d))forces", name)
    info = path.parent / "RBDSinfo.txt"
    if m:
        rec.meta["subject"] = int(m.group(2))
        rec.meta["speed_m_s"] = float(f"{m.group(4)}.{m.group(5)}")
        if info.is_file():
            _fukuchi_info(rec, info, name, f"{m.group(4)}{m.group(5)}")
    return rec


def _fukuchi_info(rec: Recording, info: Path, file_name: str, speed_code: str) -> None:
    with open(info, encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if (row.get("FileName") or "").strip() != file_name.removesuffix(".gz"):
                continue
            with contextlib.suppress(KeyError, TypeError, ValueError):
                rec.body_mass_kg = float(row["Mass"])
            rec.meta["strike_label"] = {
                "right": (row.get(f"RFSI{speed_code}") or "").strip(),
                "left": (row.get(f"LFSI{speed_code}") or "").strip(),
            }
            for k in ("Age", "Height", "Gender", "Level"):
                if row.get(k):
                    rec.meta[k.lower()] = row[k].strip()
            return


# -- plain CSV -----------------------------------------------------------------------------------
_CSV_COL = re.compile(r"^(left|right)_(\d+)$")


def _csv_sides(path: Path, names: list[str], profile: str, n_profile: int) -> dict[Side, list[int]]:
    """Column indices of ``left_<i>`` / ``right_<i>``, checked against the header rules and the profile."""
    if not names or names[0].lower() != "time":
        raise RecordingError(f"{path}:1: first column must be 'time' (seconds), found {names[:1]}")
    sides: dict[Side, list[tuple[int, int]]] = {"left": [], "right": []}
    for j, n in enumerate(names[1:], start=1):
        m = _CSV_COL.match(n)
        if not m:
            raise RecordingError(f"{path}:1: column {j + 1}: {n!r} is not left_<i> or right_<i>")
        sides[m.group(1)].append((int(m.group(2)), j))  # type: ignore[index]
    out: dict[Side, list[int]] = {}
    for side, cols in sides.items():
        if not cols:
            continue
        cols.sort()
        if [k for k, _ in cols] != list(range(1, len(cols) + 1)):
            raise RecordingError(f"{path}:1: {side}_<i> columns must be numbered 1…N without gaps")
        if len(cols) != n_profile:
            raise RecordingError(f"{path}: has {len(cols)} {side} sensors but profile {profile!r} has {n_profile}")
        out[side] = [j for _, j in cols]
    return out


def _csv_names(lines: TextLines) -> list[str]:
    return [n.strip() for n in _header_line(lines, ",")]


def load_plain_csv(path: Path, profile: str | None, n_profile: int | None) -> Recording:
    """Header ``time,left_1…left_N,right_1…right_N`` (either side may be absent; blank = not sampled)."""
    if profile is None or n_profile is None:
        raise RecordingError(f"{path}: a plain CSV recording needs --profile (its raw unit and sensor layout)")
    with TextLines(path) as lines:
        names = _csv_names(lines)
        sides = _csv_sides(path, names, profile, n_profile)
        data = read_table(lines, ",", len(names))
    rec = Recording(profile=profile, left=None, right=None, source=str(path), meta={"format": "csv"})
    for side, cols in sides.items():
        fs, _ = _stream_from(data[:, 0], data[:, cols], f"{path}: {side}")
        setattr(rec, side, fs)
    return rec


def sniff(path: Path, head: str) -> str | None:
    """Format name from the first lines, or None."""
    first = head.splitlines()[0] if head else ""
    if first.startswith("#") and "pressure" in head and "\t" in head:
        return "moticon-txt"
    if first.startswith("Time;") and "pressure 1" in first:
        return "moticon-csv"
    if first.startswith("Time\tFx\tFy"):
        return "fukuchi"
    if first.lower().startswith("time,"):
        return "csv"
    cells = first.split()
    if len(cells) == 19:
        try:
            [float(c) for c in cells]
            return "gaitpdb"
        except ValueError:
            return None
    return None


def format_names() -> Iterable[str]:
    return ("native", "moticon-txt", "moticon-csv", "gaitpdb", "fukuchi", "fukuchi-c3d", "csv")


# -- streaming (``footfall-agent analyze``) -------------------------------------------------------
FrameChunk = dict[Side, tuple[np.ndarray, np.ndarray]]
STREAMABLE = ("moticon-txt", "moticon-csv", "gaitpdb", "csv")


class FrameStream:
    """A tabular recording read ``CHUNK_ROWS`` rows at a time, both feet cut at the same rows, so analysing a file
    holds one chunk of it, never the file. ``chunks()`` may be called again (a second pass re-reads the file)."""

    def __init__(
        self, path: Path, fmt: str, profile: str | None, n_profile: int | None, chunk_rows: int = CHUNK_ROWS
    ) -> None:
        if fmt not in STREAMABLE:
            raise RecordingError(f"{path}: format {fmt!r} is not read as a stream")
        if fmt == "csv" and (profile is None or n_profile is None):
            raise RecordingError(f"{path}: a plain CSV recording needs --profile (its raw unit and sensor layout)")
        self.path = path
        self.fmt = fmt
        self.source = str(path)
        self.profile = profile or ("ultraflex-8" if fmt == "gaitpdb" else "moticon-opengo")
        self.body_mass_kg = _gaitpdb_demographics(path)[0] if fmt == "gaitpdb" else None
        self.segments = _moticon_segments(path) if fmt == "moticon-csv" else []
        self._n_profile = n_profile
        self.chunk_rows = chunk_rows
        with TextLines(path) as lines:
            self.sides = self._layout(lines)[3]  # header errors now, not at the first chunk
        self.bytes_read = 0
        self.size = path.stat().st_size

    def _layout(self, lines: TextLines) -> tuple[str | None, int, frozenset[int], dict[Side, list[int]]]:
        """Read the header; ``lines`` is left at the first data row. (sep, columns, label columns, sides)."""
        if self.fmt == "moticon-txt":
            names, _ = _moticon_txt_header(lines)
            return "\t", len(names), _label_columns(names), _moticon_sides(self.path, names)
        if self.fmt == "moticon-csv":
            names = _header_line(lines, ";")
            return ";", len(names), frozenset(), _moticon_sides(self.path, names)
        if self.fmt == "gaitpdb":
            return None, 19, frozenset(), GAITPDB_SIDES
        names = _csv_names(lines)
        return ",", len(names), frozenset(), _csv_sides(self.path, names, self.profile, self._n_profile or 0)

    def chunks(self) -> Iterator[FrameChunk]:
        """Each foot's ``(t, raw)`` for the next rows; time checked to move forward across chunks too."""
        last: dict[Side, float] = {}
        with TextLines(self.path) as lines:
            sep, n_cols, skip, sides = self._layout(lines)
            for first, data in read_rows(lines, sep, n_cols, skip, self.chunk_rows):
                self.bytes_read = lines.bytes_read
                t = data[:, 0]
                chunk: FrameChunk = {}
                for side, cols in sides.items():
                    where = f"{self.path}: {side} (samples counted from line {first})"
                    fs, _ = _stream_from(t, data[:, cols], where)
                    if fs is None:
                        continue
                    if side in last:
                        _check_continues(last[side], fs, where)
                    last[side] = float(fs.t[-1])
                    chunk[side] = (fs.t, fs.raw)
                yield chunk
        self.bytes_read = self.size

    def progress(self) -> tuple[int, int]:
        """(bytes read, file size): the progress bar of a stream."""
        return self.bytes_read, self.size


def _check_continues(t_prev: float, fs: FootStream, where: str) -> None:
    """The stream's next chunk starts after the last sample of the previous one (and within a day of it)."""
    t0 = float(fs.t[0])
    if t0 <= t_prev:
        raise RecordingError(f"{where}: time goes backwards or repeats at t={t0:.6f} s (after {t_prev:.6f} s)")
    if t0 - t_prev > MAX_GAP_S:
        raise RecordingError(
            f"{where}: time leaps by {t0 - t_prev:.6g} s at t={t0:.6f} s: more than {MAX_GAP_S:.0f} s between two "
            "samples is not one recording"
        )
