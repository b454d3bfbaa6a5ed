"""``analyze`` reads tabular recordings as a stream of row chunks: the answer must be the same as analysing the
whole recording in memory, wherever the chunks are cut, and bad rows far into a file are still named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_agent.analysis.analyzer import analyze_frames, analyze_recording
from edge_agent.profiles import load_profile
from edge_agent.recordings import FrameStream, RecordingError, load_recording, open_stream
from edge_agent.recordings.simulator import RunParams, simulate
from tests.support.paths import DATA


def plain_csv(path: Path, seconds: float = 90.0) -> Path:
    rec, _ = simulate(load_profile("moticon-opengo"), RunParams(duration_s=seconds, seed=5))
    assert rec.left is not None and rec.right is not None
    n = min(len(rec.left.t), len(rec.right.t))
    table = np.column_stack([rec.left.t[:n], rec.left.raw[:n], rec.right.raw[:n]])
    head = "time," + ",".join([*(f"left_{i}" for i in range(1, 17)), *(f"right_{i}" for i in range(1, 17))])
    np.savetxt(path, table, fmt=["%.4f"] + ["%.3f"] * 32, delimiter=",", header=head, comments="")
    return path


def same(a: object, b: object) -> None:
    assert [s.to_dict() for s in a.steps] == [s.to_dict() for s in b.steps]  # type: ignore[attr-defined]
    for key in ("body_weight_n", "body_weight_source", "quality", "duration_s", "sample_rate_hz", "warnings"):
        assert getattr(a, key) == getattr(b, key), key


@pytest.mark.parametrize("chunk_rows", [4096, 333])
@pytest.mark.parametrize("name", ["moticon_opengo_230927_102114_excerpt.txt.gz", "GaCo01_01.txt.gz", "csv"])
def test_streamed_analysis_equals_the_whole_recording(tmp_path: Path, name: str, chunk_rows: int) -> None:
    path = plain_csv(tmp_path / "run.csv") if name == "csv" else DATA / name
    profile = "moticon-opengo" if name == "csv" else None
    whole = load_recording(path, profile=profile)
    prof = load_profile(whole.profile)
    stream = open_stream(path, profile=profile)
    assert isinstance(stream, FrameStream)
    stream.chunk_rows = chunk_rows
    streamed = analyze_frames(stream, prof)
    assert len(streamed.steps) >= 5
    same(streamed, analyze_recording(whole, prof))


def test_time_going_backwards_in_a_later_chunk_is_named(tmp_path: Path) -> None:
    path = plain_csv(tmp_path / "run.csv", 30.0)
    lines = path.read_text().splitlines()
    lines[2500] = lines[100]  # a row from the past, far past the first chunk
    path.write_text("\n".join(lines) + "\n")
    stream = open_stream(path, profile="moticon-opengo")
    assert stream is not None
    stream.chunk_rows = 1000
    with pytest.raises(RecordingError, match=r"run\.csv: left \(samples counted from line 2002\): time goes backwards"):
        analyze_frames(stream, load_profile("moticon-opengo"), body_mass_kg=70.0)


@pytest.mark.parametrize("n", [1, 2, 3, 10, 11, 4096, 4097])
def test_the_frame_interval_median_is_numpys(n: int) -> None:
    """The sample rate of a result is 1 / the median frame interval, taken by one partition (analyzer._median):
    exactly ``np.median``, also with ties, jitter and NaN."""
    from edge_agent.analysis.analyzer import _median

    rng = np.random.default_rng(n)
    for a in (
        rng.normal(0.01, 1e-4, n),
        np.round(rng.normal(size=n), 1),
        0.01 + rng.integers(0, 3, n) * 1e-5,
    ):
        assert _median(a) == float(np.median(a))
    assert np.isnan(_median(np.array([0.01, np.nan, 0.01])))
