"""In-memory recording model shared by the importers, the native format and the analysis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Side = Literal["left", "right"]
SIDES: tuple[Side, Side] = ("left", "right")


class RecordingError(ValueError):
    """A recording could not be read or written; the message names the file and, where known, line/column."""


@dataclass
class FootStream:
    """One insole's samples: ``t`` (float64 s, the device's clock) and ``raw`` (float32, n × sensors).

    Arrays are made C-contiguous with the documented dtypes on construction because the numba
    kernels take them as they are.
    """

    t: np.ndarray
    raw: np.ndarray

    def __post_init__(self) -> None:
        self.t = np.ascontiguousarray(self.t, dtype=np.float64).reshape(-1)
        raw = np.asarray(self.raw, dtype=np.float32)
        if raw.ndim == 1:
            raw = raw.reshape(-1, 1)
        self.raw = np.ascontiguousarray(raw)
        if self.raw.ndim != 2 or self.raw.shape[0] != self.t.shape[0]:
            raise RecordingError(f"foot stream: {self.t.shape[0]} timestamps but raw has shape {self.raw.shape}")

    @property
    def n_samples(self) -> int:
        return int(self.t.shape[0])

    @property
    def n_sensors(self) -> int:
        return int(self.raw.shape[1])


@dataclass
class Segment:
    """A labelled span of the recording (e.g. the dataset's activity labels)."""

    label: str
    t_start: float
    t_end: float


@dataclass
class Recording:
    """Both feet of one session plus what the source knew about it.

    ``reference`` holds vendor/lab values kept for validation, e.g. ``left_total_force_n`` and
    ``left_cop_x`` (aligned with ``left.t``) or event times such as ``left_initial_contact_s``.
    ``start_time`` is the Unix time of ``t = 0`` when the source states it.
    """

    profile: str
    left: FootStream | None
    right: FootStream | None
    body_mass_kg: float | None = None
    notes: str = ""
    source: str = ""
    segments: list[Segment] = field(default_factory=list)
    reference: dict[str, np.ndarray] = field(default_factory=dict)
    start_time: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def streams(self) -> list[tuple[Side, FootStream]]:
        return [(s, fs) for s in SIDES if (fs := getattr(self, s)) is not None]

    @property
    def n_sensors(self) -> int:
        for _, fs in self.streams():
            return fs.n_sensors
        return 0

    @property
    def duration_s(self) -> float:
        """From the first to the last sample over both feet (0 for an empty recording)."""
        ts = [fs.t for _, fs in self.streams() if fs.n_samples]
        if not ts:
            return 0.0
        return float(max(t[-1] for t in ts) - min(t[0] for t in ts))

    @property
    def sample_rate_hz(self) -> float:
        """Median sample interval over both feet, as a rate (robust to dropped frames)."""
        dts = [np.diff(fs.t) for _, fs in self.streams() if fs.n_samples > 1]
        if not dts:
            return 0.0
        dt = float(np.median(np.concatenate(dts)))
        return 1.0 / dt if dt > 0 else 0.0

    def segment(self, label: str) -> list[Segment]:
        return [s for s in self.segments if s.label.strip().lower() == label.strip().lower()]

    def _slice_reference(
        self, key: str, v: np.ndarray, masks: dict[str, np.ndarray], t_start: float, t_end: float
    ) -> np.ndarray:
        """Event-time arrays (``*_s``) keep the times inside the window; per-sample arrays follow their
        foot's mask (``left_*``/``right_*`` first, else any foot of that length); anything else is copied."""
        if key.endswith("_s") and v.ndim == 1:
            return v[(v >= t_start) & (v < t_end)]
        for side in sorted(masks, key=lambda side: not key.startswith(side + "_")):
            if v.ndim >= 1 and v.shape[0] == masks[side].shape[0]:
                return v[masks[side]]
        return v.copy()

    def slice(self, t_start: float, t_end: float) -> Recording:
        """A copy restricted to ``t_start ≤ t < t_end`` (reference arrays aligned to a side are cut too)."""
        out = Recording(
            profile=self.profile,
            left=None,
            right=None,
            body_mass_kg=self.body_mass_kg,
            notes=self.notes,
            source=self.source,
            start_time=self.start_time,
            meta=dict(self.meta),
            segments=[s for s in self.segments if s.t_end > t_start and s.t_start < t_end],
        )
        masks: dict[str, np.ndarray] = {}
        for side, fs in self.streams():
            masks[side] = (fs.t >= t_start) & (fs.t < t_end)
            setattr(out, side, FootStream(fs.t[masks[side]], fs.raw[masks[side]]))
        for k, v in self.reference.items():
            out.reference[k] = self._slice_reference(k, v, masks, t_start, t_end)
        return out


#: Sample times beyond ±this many seconds are no clock (Unix time is ~1.8e9 s); a recording is one session, so
#: consecutive samples more than :data:`MAX_GAP_S` apart are two recordings (or a corrupt time column).
MAX_ABS_TIME_S = 1e11
MAX_GAP_S = 86400.0


def check_stream(fs: FootStream, where: str) -> None:
    """Reject what would silently corrupt the analysis: NaN/inf, implausible clocks and time that does not move
    forward (or leaps by more than a day)."""
    if fs.n_samples == 0:
        return
    if not np.all(np.isfinite(fs.t)):
        i = int(np.argmin(np.isfinite(fs.t)))
        raise RecordingError(f"{where}: time is not a finite number at sample {i}")
    if (np.abs(fs.t) > MAX_ABS_TIME_S).any():
        i = int(np.argmax(np.abs(fs.t) > MAX_ABS_TIME_S))
        raise RecordingError(f"{where}: time {fs.t[i]:.6g} s at sample {i} is not a plausible clock reading")
    dt = np.diff(fs.t)
    if (dt <= 0).any():
        i = int(np.argmax(dt <= 0)) + 1
        raise RecordingError(
            f"{where}: time goes backwards or repeats at sample {i} ({fs.t[i - 1]:.6f} s → {fs.t[i]:.6f} s)"
        )
    if (dt > MAX_GAP_S).any():
        i = int(np.argmax(dt > MAX_GAP_S)) + 1
        raise RecordingError(
            f"{where}: time leaps by {dt[i - 1]:.6g} s at sample {i} ({fs.t[i - 1]:.6f} s → {fs.t[i]:.6f} s): "
            f"more than {MAX_GAP_S:.0f} s between two samples is not one recording"
        )
    if not np.all(np.isfinite(fs.raw)):
        i, j = np.argwhere(~np.isfinite(fs.raw))[0]
        raise RecordingError(f"{where}: sensor {int(j) + 1} is not a finite number at sample {int(i)}")
