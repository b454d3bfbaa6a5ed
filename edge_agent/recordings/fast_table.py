"""The fast path of :func:`edge_agent.recordings.importers.read_rows`: delimited numeric tables parsed by a numba
kernel (:mod:`edge_agent.analysis.kernels.table`; the JIT or the ahead-of-time build, as the step kernels).

Chosen over pyarrow's and polars' CSV readers and numpy's ``loadtxt`` by ``benchmarks/bench_hour.py`` (which runs
them side by side): faster than each on one core, no extra dependency, and no extra memory (docs/measures.md §6).

The fast path never reports an error itself. It reads the file in blocks of whole chunks (``chunk_rows`` rows, so
chunks and their line numbers are the text parser's) and parses a block only when nothing in it needs the text
parser's judgement: no carriage return outside CRLF, no blank or overlong line, no byte outside ASCII, every cell
a number the kernel reads exactly as Python does, or blank. At the first block that does not qualify it stops and
says from which line on the text parser must read (:attr:`FastRows.resume_line`); that parser then gives its own
values and errors (file, line, column and cell).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

#: Set to ``text`` to read every table with the text parser.
READER_ENV = "FOOTFALL_CSV_READER"
#: A block holds at most this many chunks, and is cut earlier at this many bytes.
BLOCK_CHUNKS = 4
BLOCK_BYTES = 16 << 20
_READ_BYTES = 1 << 20


def enabled() -> bool:
    """False with ``FOOTFALL_CSV_READER=text``."""
    return os.environ.get(READER_ENV, "").strip().lower() != "text"


def table_parser() -> Callable[..., Any]:
    """The table kernel of the process's kernels (loaded on the first call)."""
    from edge_agent.analysis.kernels import load_kernels

    return load_kernels().parse_table


#: Bytes of a numeric table besides its separator: digits, the point, signs, exponents, line ends.
_NUMERIC_BYTES = b"0123456789.+-eE\r\n"


class FastRows:
    """Rows ``first_line…`` of a delimited numeric table as ``(line number of the first row, float64[rows, n_cols])``
    chunks of ``chunk_rows`` rows, parsed by the table kernel; ``skip`` columns (text labels) are NaN, blank cells NaN.

    Iteration ends at the end of the table or at a block the text parser must read; then :attr:`resume_line` is
    that block's first line (None when the whole table was read). :attr:`bytes_read` is the position in the file
    on disk (compressed bytes for ``.gz``).
    """

    def __init__(
        self,
        path: Path,
        first_line: int,
        sep: str,
        n_cols: int,
        skip: frozenset[int],
        chunk_rows: int,
        max_line: int,
    ) -> None:
        self.path, self.first_line, self.n_cols, self.skip = path, first_line, n_cols, skip
        self.chunk_rows, self.max_line = chunk_rows, max_line
        self.resume_line: int | None = None
        self.bytes_read = 0
        self._parse_kernel: Callable[..., Any] | None = None  # loaded at the first block that looks numeric
        self._numeric = np.zeros(256, dtype=bool)
        self._numeric[list(_NUMERIC_BYTES + sep.encode("ascii", "replace"))] = True
        self._sep = ord(sep) if len(sep) == 1 and ord(sep) < 0x80 else -1
        self._skip = np.array([j in skip for j in range(n_cols)], dtype=np.uint8)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        with open(self.path, "rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            src: BinaryIO = gzip.GzipFile(fileobj=raw) if gz else raw  # type: ignore[assignment]
            try:
                yield from self._blocks(raw, src)
            except (OSError, EOFError):  # a broken gzip stream: the text parser names it
                self.resume_line = self._line
            finally:
                if src is not raw:
                    src.close()

    def _blocks(self, raw: BinaryIO, src: BinaryIO) -> Iterator[tuple[int, np.ndarray]]:
        self._line = self.first_line
        pending = self._skip_header(src)
        if pending is None:
            self.resume_line = self.first_line
            return
        block_rows = self.chunk_rows * BLOCK_CHUNKS
        eof = False
        while True:
            pieces, size, n_lines = [pending], len(pending), pending.count(b"\n")
            while not eof and n_lines < block_rows and size < BLOCK_BYTES:
                more = src.read(_READ_BYTES)
                eof = not more
                pieces.append(more)
                size += len(more)
                n_lines += more.count(b"\n")
            pending = b"".join(pieces)
            self.bytes_read = raw.tell()
            if not pending:
                return
            ends = np.flatnonzero(np.frombuffer(pending, dtype=np.uint8) == 10)
            if eof and not pending.endswith(b"\n"):
                ends = np.append(ends, len(pending))  # the last line has no line break
            if len(ends) >= block_rows:
                n_rows = block_rows
            elif eof:
                n_rows = len(ends)
            else:  # long lines: whole chunks only, so chunks stay the text parser's
                n_rows = len(ends) // self.chunk_rows * self.chunk_rows
            if n_rows == 0:
                self.resume_line = self._line
                return
            cut = int(ends[n_rows - 1]) + 1
            block, pending = pending[:cut], pending[cut:]
            data = self._parse(block, ends[:n_rows])
            if data is None:
                self.resume_line = self._line
                return
            for k in range(0, n_rows, self.chunk_rows):
                yield self._line + k, data[k : k + self.chunk_rows]
            self._line += n_rows
            if eof and not pending:
                return

    def _skip_header(self, src: BinaryIO) -> bytes | None:
        """The bytes after the ``first_line - 1`` header lines (None: a header the text parser reads differently)."""
        pending = b""
        need = self.first_line - 1
        while pending.count(b"\n") < need:
            more = src.read(_READ_BYTES)
            if not more or len(pending) > 4 * self.max_line:
                return None
            pending += more
        head_end = 0
        for _ in range(need):
            head_end = pending.index(b"\n", head_end) + 1
        head = pending[:head_end]
        if head.count(b"\r") != head.count(b"\r\n"):  # lone CR line breaks: counted differently
            return None
        return pending[head_end:]

    def _parse(self, block: bytes, ends: np.ndarray) -> np.ndarray | None:
        """float64[rows, n_cols] of a block of whole lines, or None when the text parser must judge it."""
        lengths = np.diff(ends, prepend=-1) - 1
        if int(lengths.max()) > self.max_line:
            return None  # an overlong line (the kernel refuses blank lines and lone carriage returns)
        buf = np.frombuffer(block, dtype=np.uint8)
        if self._sep < 0 or int(buf.max()) >= 0x80:
            return None  # not ASCII: the text parser checks the UTF-8 and names the line
        if self._parse_kernel is None:  # not before a block looks numeric: junk is refused without loading kernels
            if not self.skip and not bool(self._numeric[buf].all()):
                return None
            self._parse_kernel = table_parser()
        out = np.empty((len(ends), self.n_cols), dtype=np.float64)
        if self._parse_kernel(buf, self._sep, self._skip, out) != len(ends):
            return None
        return out
