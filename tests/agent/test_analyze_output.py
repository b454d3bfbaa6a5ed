"""``footfall-agent analyze`` through the real CLI: its JSON and CSV are byte for byte the output of the analysis
that built per-step records (commit a8e4854; tests/data/README.md) — with the numba table parser
and with the text parser — and its progress bar appears on a terminal only, never in stdout."""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.support.paths import DATA, REPO, SHARED_DATA
from tests.support.recordings import simulated_csv

GOLDEN = DATA / "analyze_columns"
READERS = ["kernel", "text"]  # the numba table parser, and the text parser it falls back to


def analyze(
    cwd: Path, *args: str, reader: str = "kernel", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    if reader == "text":
        env["FOOTFALL_CSV_READER"] = "text"
    argv = [sys.executable, "-m", "edge_agent.cli", "analyze", *args]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=300, check=False)


def golden(name: str) -> bytes:
    return gzip.decompress((GOLDEN / f"{name}.gz").read_bytes())


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_simulated_csv_output_is_byte_identical(tmp_path: Path, fmt: str, reader: str) -> None:
    simulated_csv(tmp_path / "sim.csv", 60.0, seed=11)  # as the golden files were made
    r = analyze(tmp_path, "sim.csv", "--profile", "moticon-opengo", "--format", fmt, reader=reader)
    assert r.returncode == 0, r.stderr
    assert r.stdout == golden(f"sim_analyze.{fmt}")


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_moticon_export_output_is_byte_identical(fmt: str, reader: str) -> None:
    r = analyze(DATA, "moticon_opengo_230927_102114_excerpt.txt.gz", "--format", fmt, reader=reader)
    assert r.returncode == 0, r.stderr
    assert r.stdout == golden(f"moticon_excerpt_analyze.{fmt}")


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_real_recording_output_is_byte_identical(fmt: str, reader: str) -> None:
    folder = SHARED_DATA / "moticon-opengo"
    if not (folder / "230927_102137.txt").is_file():
        pytest.skip(f"real recordings not found at {SHARED_DATA} (set FOOTFALL_SHARED_DATA)")
    r = analyze(folder, "230927_102137.txt", "--format", fmt, reader=reader)
    assert r.returncode == 0, r.stderr
    assert r.stdout == golden(f"moticon_230927_102137_analyze.{fmt}")


def _run_on_pty(cwd: Path, *args: str, delay: str = "0") -> tuple[int, bytes, bytes]:
    """(exit code, stdout, what reached the terminal) of ``analyze`` with stderr on a pseudo-terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    env = {**os.environ, "PYTHONPATH": str(REPO), "FOOTFALL_PROGRESS_DELAY_S": delay}
    argv = [sys.executable, "-m", "edge_agent.cli", "analyze", *args]
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    seen = bytearray()
    stdout = bytearray()
    assert proc.stdout is not None
    streams = {master: seen, proc.stdout.fileno(): stdout}
    while streams:
        ready, _, _ = select.select(list(streams), [], [], 60)
        assert ready, "analyze printed nothing for 60 s"
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                data = b""
            if data:
                streams[fd].extend(data)
            else:
                del streams[fd]
    os.close(master)
    return proc.wait(timeout=60), bytes(stdout), bytes(seen)


def test_progress_bar_on_a_terminal_and_never_in_stdout(tmp_path: Path) -> None:
    simulated_csv(tmp_path / "run.csv", seconds=300.0)
    args = ("run.csv", "--profile", "moticon-opengo", "--body-mass", "70", "--format", "json")
    code, stdout, terminal = _run_on_pty(tmp_path, *args)
    assert code == 0, terminal.decode(errors="replace")
    assert b"analysing" in terminal and b"100%" in terminal and b"\r" in terminal  # tqdm's bar, redrawn in place
    assert stdout == analyze(tmp_path, *args).stdout  # the document is the same, without a trace of the bar
    doc = json.loads(stdout)
    assert doc["summary"]["steps"] > 500
    # stderr not a terminal: no bar, even with no delay
    r = analyze(tmp_path, *args, env={"FOOTFALL_PROGRESS_DELAY_S": "0"})
    assert r.returncode == 0 and b"analysing" not in r.stderr and r.stdout == stdout
    # --no-progress on a terminal: no bar
    code, _, terminal = _run_on_pty(tmp_path, *args, "--no-progress")
    assert code == 0 and b"analysing" not in terminal


def test_a_quick_file_shows_no_bar_before_the_delay() -> None:
    """The default: a bar only once the work has taken PROGRESS_DELAY_S (tqdm's ``delay``), drawn on a terminal."""
    from edge_agent.analysis.report import PROGRESS_DELAY_S, _progress

    class Terminal:
        def __init__(self) -> None:
            self.text = ""

        def isatty(self) -> bool:
            return True

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            pass

    class Source:
        def progress(self) -> tuple[int, int]:
            return 0, 1000

    term = Terminal()
    update, bar = _progress(Source(), True, term)  # type: ignore[arg-type]
    assert update is not None and bar.delay == PROGRESS_DELAY_S >= 1.0
    update(1000, 1000)
    bar.close()
    assert "analysing" not in term.text  # done before the delay: nothing drawn
    assert _progress(Source(), False, term) == (None, None)
