"""The numba table parser (``kernels/table.py``) and its reader (``recordings/fast_table.py``): every table reads to
the same values, chunks and errors as the text parser (``FOOTFALL_CSV_READER=text``), clean or not, and the kernel
reads each number exactly as Python's ``float``."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.analysis.kernels import load_kernels
from edge_agent.recordings import RecordingError, load_recording, open_stream
from edge_agent.recordings.fast_table import BLOCK_CHUNKS, READER_ENV, FastRows
from edge_agent.recordings.importers import CHUNK_ROWS, TextLines, read_rows
from tests.support.paths import DATA

HEADER = "time,left_1,left_2,left_3,left_4,right_1,right_2,right_3,right_4"
PROFILE = "diy-mcp3008-fsr4"


def _parse(text: str, n_cols: int, sep: str = ",", skip: tuple[int, ...] = ()) -> tuple[int, np.ndarray]:
    out = np.full((text.count("\n") + 1, n_cols), -7.0)
    mask = np.array([j in skip for j in range(n_cols)], dtype=np.uint8)
    n = load_kernels().parse_table(np.frombuffer(text.encode(), dtype=np.uint8), ord(sep), mask, out)
    return n, out


def _rows(path: Path, monkeypatch: pytest.MonkeyPatch, reader: str, chunk_rows: int = CHUNK_ROWS) -> object:
    """Every chunk read_rows gives (line of the first row, values) or the error, with one reader."""
    monkeypatch.setenv(READER_ENV, reader)
    try:
        with TextLines(path) as lines:
            n_cols = len(lines.readline().split(","))  # type: ignore[union-attr]
            return [(first, data.copy()) for first, data in read_rows(lines, ",", n_cols, chunk_rows=chunk_rows)]
    except RecordingError as err:
        return str(err)


def _same(a: object, b: object) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    assert isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
    for (fa, da), (fb, db) in zip(a, b, strict=True):
        assert fa == fb
        np.testing.assert_array_equal(da, db)
        assert np.array_equal(np.signbit(da), np.signbit(db))  # -0.0 stays -0.0


@pytest.mark.parametrize(
    "cell",
    ["1", "-0", "+2.5", ".5", "5.", "1e3", "1E-3", "2.5e+2", "0e999", "1e-400", "1e400", "007.50",
     "12345678901234567890", "9007199254740993", "0.1234567890123456789", "nan", "NaN", "inf", "-Infinity", "NA",
     "null", "1_000", " 1.5", "1.5 ", '"1.5"', "1,5", "1.5.5", "1e", "e5", ".", "-", "0x10", "١", "½", "true",
     ""],
)  # fmt: skip
def test_every_cell_reads_as_the_text_parser_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cell: str
) -> None:
    rows = [f"{k * 0.01:.2f},1,2,3,4,5,6,7,8" for k in range(300)]
    rows[150] = f"1.50,1,2,{cell},4,5,6,7,8"
    path = tmp_path / "rec.csv"
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    fast = _rows(path, monkeypatch, "auto", chunk_rows=64)
    _same(fast, _rows(path, monkeypatch, "text", chunk_rows=64))


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("crlf", "0.00,1,2,3,4,5,6,7,8\r\n0.01,1,2,3,4,,,,\r\n0.02,1,2,3,4,5,6,7,8\r\n"),
        ("lone-cr", "0.00,1,2,3,4,5,6,7,8\r0.01,1,2,3,4,5,6,7,8\r"),
        ("trailing-blank-lines", "0.00,1,2,3,4,5,6,7,8\n0.01,1,2,3,4,5,6,7,8\n\n\n"),
        ("blank-line-inside", "0.00,1,2,3,4,5,6,7,8\n\n0.01,1,2,3,4,5,6,7,8\n"),
        ("no-final-line-break", "0.00,1,2,3,4,5,6,7,8\n0.01,1,2,3,4,5,6,7,8"),
        ("extra-blank-cells", "0.00,1,2,3,4,5,6,7,8,,\n0.01,1,2,3,4,5,6,7,8\n"),
        ("missing-cell", "0.00,1,2,3,4,5,6,7\n"),
        ("not-utf8", "0.00,1,2,3,4,5,6,7,8\n0.01,1,2,3,\xff,5,6,7,8\n"),
        ("whitespace-line", "0.00,1,2,3,4,5,6,7,8\n   \n"),
    ],
)
def test_line_breaks_and_blank_lines_read_as_the_text_parser_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str
) -> None:
    path = tmp_path / f"{name}.csv"
    path.write_bytes((HEADER + ("\r\n" if name == "crlf" else "\n") + body).encode("latin-1"))
    _same(_rows(path, monkeypatch, "auto"), _rows(path, monkeypatch, "text"))


def test_a_bad_cell_far_into_a_file_is_named_at_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks before the bad one are parsed fast; the text parser takes over at the bad block's first line."""
    n = 3 * BLOCK_CHUNKS * CHUNK_ROWS + 100  # three whole blocks, then the bad row in the fourth
    t = np.arange(n) * 0.01
    path = tmp_path / "long.csv.gz"
    lines = [f"{x:.2f},1,2,3,4,5,6,7,8" for x in t]
    lines[n - 50] = lines[n - 50].replace(",3,", ",x3,")
    path.write_bytes(gzip.compress((HEADER + "\n" + "\n".join(lines) + "\n").encode()))
    want = f"long.csv.gz:{n - 50 + 2}: column 4: 'x3' is not a number"
    for reader in ("auto", "text"):
        monkeypatch.setenv(READER_ENV, reader)
        with pytest.raises(RecordingError, match=want):
            load_recording(path, profile=PROFILE)
    monkeypatch.setenv(READER_ENV, "auto")
    stream = open_stream(path, profile=PROFILE)
    assert stream is not None
    seen = 0
    with pytest.raises(RecordingError, match=want):
        for chunk in stream.chunks():
            seen += len(chunk["left"][0])
    assert seen == 3 * BLOCK_CHUNKS * CHUNK_ROWS  # the clean blocks before it were read (and fast)


@pytest.mark.parametrize("name", ["moticon_opengo_230927_102114_excerpt.txt.gz", "RBDS008runT35forces.txt.gz"])
def test_vendor_exports_read_fast_and_identically(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Moticon's tab export (blank cells where a foot is not streaming, label columns) and a force-plate file."""
    used: list[int | None] = []
    real_iter = FastRows.__iter__

    def spy(self: FastRows):  # type: ignore[no-untyped-def]
        yield from real_iter(self)
        used.append(self.resume_line)

    monkeypatch.setattr(FastRows, "__iter__", spy)
    fast = load_recording(DATA / name)
    assert used == [None]  # the fast parser read the whole table
    monkeypatch.setenv(READER_ENV, "text")
    text = load_recording(DATA / name)
    for side, fs in fast.streams():
        other = getattr(text, side)
        np.testing.assert_array_equal(fs.t, other.t)
        np.testing.assert_array_equal(fs.raw, other.raw)
    assert fast.reference.keys() == text.reference.keys()
    for key, value in fast.reference.items():
        np.testing.assert_array_equal(value, text.reference[key])


_number = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda v: f"{v:.3f}"),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda v: f"{v:.6e}"),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.from_regex(r"\A[+-]?[0-9]{0,18}\.?[0-9]{0,18}([eE][+-]?[0-9]{1,3})?\Z"),
)


@settings(max_examples=500, deadline=None)
@given(_number)
def test_the_kernel_reads_a_number_exactly_as_float_or_refuses_it(cell: str) -> None:
    n, out = _parse(f"0,{cell},1\n", 3)
    if cell == "":
        assert n == 1 and math.isnan(out[0, 1])  # a blank cell
        return
    try:
        want = float(cell)
    except ValueError:
        assert n == -1, cell  # Python refuses it, so must the kernel
        return
    if n != 1:
        assert n == -1  # refused: the text parser reads the block
        return
    assert math.isfinite(want)
    value = out[0, 1]
    assert value == want and math.copysign(1, value) == math.copysign(1, want), cell


def test_the_kernel_refuses_what_python_reads_differently() -> None:
    for text in ("1,2,3\n\n", "1,2\n", "1,2,3,4\n", "1,2,3\r", "1, 2,3\n", "1,nan,3\n", "1,inf,3\n", "1,2,3e\n"):
        assert _parse(text, 3)[0] < 0, text
    n, out = _parse("1,label text,3\r\n,,\n", 3, skip=(1,))
    assert n == 2
    np.testing.assert_array_equal(out[:2], [[1, np.nan, 3], [np.nan, np.nan, np.nan]])
