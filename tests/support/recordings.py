"""Recordings the tests write: a simulated run as a plain CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_agent.profiles import load_profile
from edge_agent.recordings.simulator import RunParams, simulate


def simulated_csv(path: Path, seconds: float = 90.0, seed: int = 5) -> Path:
    """The simulator's moticon-opengo runner as ``time,left_1…left_16,right_1…right_16`` (4 and 3 decimals)."""
    rec, _ = simulate(load_profile("moticon-opengo"), RunParams(duration_s=seconds, seed=seed))
    assert rec.left is not None and rec.right is not None
    n = min(len(rec.left.t), len(rec.right.t))
    table = np.column_stack([rec.left.t[:n], rec.left.raw[:n], rec.right.raw[:n]])
    head = "time," + ",".join([*(f"left_{i}" for i in range(1, 17)), *(f"right_{i}" for i in range(1, 17))])
    np.savetxt(path, table, fmt=["%.4f"] + ["%.3f"] * 32, delimiter=",", header=head, comments="")
    return path
