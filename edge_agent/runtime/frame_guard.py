"""The pipeline's first stage: every batch a source hands over is checked before the kernels see it.

Bad input is counted, logged once, and skipped (docs/design.md §6): batches of the wrong side, shape or dtype
and frames with NaN/inf are rejected (``corrupt``); frames lost on the link are reported by the source
(``dropped``). A sensor that reads its maximum for ``STUCK_S`` (through swing phases) is stuck, not loaded: it is
masked to its zero reading so the foot's other sensors still find contacts, and listed in ``stuck``. Per-sensor
zero offsets from ``footfall-agent calibrate`` are subtracted here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from edge_agent.profiles import HardwareProfile

if TYPE_CHECKING:
    from edge_agent.sources.base import FrameBatch

log = logging.getLogger(__name__)

#: A sensor at its maximum this long (s) is stuck: a running stance lasts < 0.35 s, a walking one
#: < 0.8 s, so a loaded sensor comes off its maximum during every swing.
STUCK_S = 2.0
SIDES = ("left", "right")


class OnceLog:
    """Log each kind of input problem once (then only count it), so a broken sensor can't flood the log."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def warn(self, key: str, msg: str, *args: object) -> None:
        if key not in self.seen:
            self.seen.add(key)
            log.warning(msg + " (counted in Quality; logged once)", *args)


class FrameGuard:
    """Validates batches, masks stuck sensors and applies zero offsets; counts what it rejects."""

    def __init__(self, profile: HardwareProfile, once: OnceLog, offsets: dict[str, np.ndarray] | None = None) -> None:
        self.n_sensors = profile.n_sensors
        self.offsets = offsets or {}
        self.once = once
        self._raw_max = profile.raw_max
        cal = profile.calibration
        self._raw_zero = float(getattr(cal, "offset", 0.0)) if cal.type == "linear" else 0.0
        self._sat_since = {side: np.full(self.n_sensors, np.nan) for side in SIDES}
        self._sat_clear = dict.fromkeys(SIDES, True)
        #: sensors masked as stuck, per foot
        self.stuck: dict[str, set[int]] = {side: set() for side in SIDES}
        self.counters = {"corrupt": 0, "dropped": 0, "stuck_samples": 0}

    def check(self, b: FrameBatch) -> tuple[np.ndarray, np.ndarray] | None:
        """``(t, raw)`` as contiguous float64/float32 arrays ready for the kernels, or None (rejected)."""
        side = getattr(b, "side", None)
        t = np.asarray(b.t)
        raw = np.asarray(b.raw)
        self.counters["dropped"] += int(getattr(b, "dropped", 0) or 0)
        self.counters["corrupt"] += int(getattr(b, "corrupt", 0) or 0)
        n = int(t.shape[0]) if t.ndim == 1 else int(raw.shape[0]) if raw.ndim >= 1 else 1
        if side not in SIDES:
            self.counters["corrupt"] += n
            self.once.warn("side", "batch with side %r rejected (%d frames)", side, n)
            return None
        if t.ndim != 1 or raw.ndim != 2 or raw.shape[0] != t.shape[0] or raw.shape[1] != self.n_sensors:
            self.counters["corrupt"] += n
            self.once.warn(
                f"shape-{side}",
                "%s batch rejected: t %s, raw %s, expected (n,) and (n, %d)",
                side,
                t.shape,
                raw.shape,
                self.n_sensors,
            )
            return None
        if not np.issubdtype(raw.dtype, np.number) or not np.issubdtype(t.dtype, np.number):
            self.counters["corrupt"] += n
            self.once.warn(f"dtype-{side}", "%s batch rejected: dtypes %s/%s", side, t.dtype, raw.dtype)
            return None
        t = np.ascontiguousarray(t, dtype=np.float64)
        raw = np.ascontiguousarray(raw, dtype=np.float32)
        # fast path: one reduction decides whether any frame needs a closer look
        finite = np.isfinite(raw.sum(dtype=np.float64) + t.sum())
        good = None if finite else np.isfinite(t) & np.isfinite(raw).all(axis=1)
        if good is not None and not good.all():
            bad = int((~good).sum())
            self.counters["corrupt"] += bad
            self.once.warn(f"nan-{side}", "%s: %d frame(s) with NaN/inf rejected", side, bad)
            t = np.ascontiguousarray(t[good])
            raw = np.ascontiguousarray(raw[good])
        if self._raw_max is not None and len(t):
            raw = self._mask_stuck(side, t, raw)
        if side in self.offsets and len(t):
            raw = raw - self.offsets[side]
        return t, raw

    def _mask_stuck(self, side: str, t: np.ndarray, raw: np.ndarray) -> np.ndarray:
        assert self._raw_max is not None
        since = self._sat_since[side]
        if raw.max() < self._raw_max:  # the usual case: nothing at its maximum
            if not self._sat_clear[side]:
                since[:] = np.nan
                self._sat_clear[side] = True
            return raw
        self._sat_clear[side] = False
        sat = raw >= self._raw_max
        all_sat = sat.all(axis=0)
        since[~all_sat] = np.nan
        since[all_sat & np.isnan(since)] = t[0]
        stuck = all_sat & (t[-1] - since >= STUCK_S)
        if stuck.any():
            idx = np.flatnonzero(stuck)
            if not self.stuck[side].issuperset(idx.tolist()):
                self.once.warn(
                    f"stuck-{side}",
                    "%s sensor(s) %s stuck at the maximum for ≥ %.0f s: masked",
                    side,
                    idx.tolist(),
                    STUCK_S,
                )
            self.stuck[side].update(idx.tolist())
            raw = raw.copy()
            raw[:, idx] = self._raw_zero
            self.counters["stuck_samples"] += int(len(t) * len(idx))
        return raw
