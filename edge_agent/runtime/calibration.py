"""Body weight and zero offsets: the calibration file and the running estimate from quiet standing.

Body weight, in order of preference: the most recent quiet standing (``estimate_body_weight`` on both feet's
total force while the tracker says *standing*, at most every 2 min outside runs) minus both insoles' unloaded
reading (learned from the feet in the air while moving); else the calibration file (``footfall-agent
calibrate``, which also zeroes each sensor); else the configured body mass; else 70 kg (logged).
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.profiles import HardwareProfile

log = logging.getLogger(__name__)

G = 9.80665
DEFAULT_MASS_KG = 70.0
#: Quiet standing needed before a body-weight estimate (s), and the pause between estimates.
STANDING_CAL_S = 3.0
STANDING_CAL_EVERY_S = 120.0
#: Batches of a moving foot needed before its unloaded (in the air) reading is trusted.
FLOOR_MIN_BATCHES = 10
SIDES = ("left", "right")


@dataclass
class Calibration:
    """What ``footfall-agent calibrate`` measured: per-sensor zero offsets and the standing body weight."""

    profile: str
    created_at: float
    offsets: dict[str, list[float]] = field(default_factory=dict)
    body_weight_n: float | None = None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Calibration:
        try:
            data = json.loads(path.read_text())
            return cls(
                profile=str(data["profile"]),
                created_at=float(data["created_at"]),
                offsets={k: [float(x) for x in v] for k, v in data.get("offsets", {}).items()},
                body_weight_n=None if data.get("body_weight_n") is None else float(data["body_weight_n"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"calibration file {path}: unreadable ({err})") from None

    def offsets_for(self, profile: HardwareProfile) -> dict[str, np.ndarray]:
        """Per-foot zero offsets that fit ``profile`` (a calibration of another insole is ignored, logged)."""
        if self.profile != profile.name:
            log.warning("calibration is for profile %r, not %r: ignored", self.profile, profile.name)
            return {}
        return {
            side: np.asarray(off, dtype=np.float32)
            for side, off in self.offsets.items()
            if len(off) == profile.n_sensors
        }


class BodyWeight:
    """The body weight the kernels normalise by, and how it was found (see the module docstring).

    ``analysis`` is the analyzer module (imported by the pipeline after ``NUMBA_CACHE_DIR`` is set);
    ``on_change(bw_n)`` passes a new estimate to the kernels.
    """

    def __init__(
        self,
        analysis: Any,
        *,
        calibration: Calibration | None,
        profile: HardwareProfile,
        body_mass_kg: float | None,
        on_change: Callable[[float], None] | None = None,
    ) -> None:
        self._analysis = analysis
        self.on_change = on_change
        self.calibrated_at: float | None = None
        bw: float | None = None
        if calibration is not None and calibration.profile == profile.name:
            bw = calibration.body_weight_n
            self.calibrated_at = calibration.created_at
        if bw is not None:
            self.source = "calibration file"
        elif body_mass_kg is not None:
            bw, self.source = body_mass_kg * G, "configured body mass"
        else:
            bw, self.source = DEFAULT_MASS_KG * G, "default 70 kg"
            log.warning("no body mass configured and no calibration yet: assuming 70 kg until quiet standing")
        self.n = float(bw)
        self._force: dict[str, deque[tuple[np.ndarray, np.ndarray]]] = {side: deque() for side in SIDES}
        self._load_n: dict[str, float] = {}
        self._floor: dict[str, deque[float]] = {side: deque(maxlen=100) for side in SIDES}
        self._last_try: float | None = None
        self._standing_raw_n: float | None = None
        self._standing_pending = False

    def observe(self, side: str, t: np.ndarray, force: np.ndarray, *, moving: bool) -> None:
        """One batch of a foot's total force (N). While ``moving`` the lowest readings of a batch are (mostly)
        the foot in the air — the insole's unloaded reading, which quiet standing must not count as body
        weight: the mean of the samples near the minimum, not the minimum itself (biased low by the noise)."""
        if moving:
            lo = float(force.min())
            self._floor[side].append(float(force[force <= lo + 0.02 * self.n].mean()))
        buf = self._force[side]
        buf.append((t, force))
        while buf and buf[0][0][-1] < t[-1] - 2 * STANDING_CAL_S:
            buf.popleft()
        self._load_n[side] = float(force[-min(len(force), 10) :].mean())

    def load_bw(self) -> float | None:
        """The latest load on both feet, in body weights (for run detection), or None before any frame."""
        return sum(self._load_n.values()) / self.n if self._load_n else None

    def unloaded_reading_n(self, side: str) -> float | None:
        """The foot's reading in the air (N): the 25th percentile of per-batch minima while moving
        (a 200 ms batch of a running or walking foot usually holds some swing). None until seen."""
        floor = self._floor[side]
        if len(floor) < FLOOR_MIN_BATCHES:
            return None
        return float(np.percentile(np.fromiter(floor, dtype=np.float64), 25.0))

    def update(self, now: float, standing_since: float | None, unix_now: float) -> None:
        """Outside runs: estimate from quiet standing when due, and finish a pending correction."""
        self._maybe_calibrate(now, standing_since, unix_now)
        if self._standing_pending and all(self.unloaded_reading_n(s) is not None for s in SIDES):
            self._apply_standing()

    def _maybe_calibrate(self, now: float, standing_since: float | None, unix_now: float) -> None:
        if standing_since is None or now - standing_since < STANDING_CAL_S:
            return
        if self._last_try is not None and now - self._last_try < STANDING_CAL_EVERY_S:
            return
        self._last_try = now
        if not self._force["left"] or not self._force["right"]:
            return
        tl = np.concatenate([c[0] for c in self._force["left"]])
        fl = np.concatenate([c[1] for c in self._force["left"]])
        tr = np.concatenate([c[0] for c in self._force["right"]])
        fr = np.concatenate([c[1] for c in self._force["right"]])
        sel = tl >= now - STANDING_CAL_S
        if sel.sum() < 10 or len(tr) < 2 or not np.all(np.diff(tr) > 0):
            return
        total = fl[sel] + np.interp(tl[sel], tr, fr)
        bw = self._analysis.estimate_body_weight(tl[sel], total)
        if bw is None or not (20 * G <= bw <= 300 * G):
            return
        self._standing_raw_n = float(bw)
        self.calibrated_at = unix_now
        self._apply_standing()

    def _apply_standing(self) -> None:
        """Body weight = quiet standing minus both feet's unloaded readings (insoles read 10–20 N in
        the air: ≈ 4 % of body weight). Until both feet were seen in the air the uncorrected value
        is used, and corrected later — outside a run, so a run keeps one body weight."""
        raw = self._standing_raw_n
        if raw is None:
            return
        floors = [self.unloaded_reading_n(side) for side in SIDES]
        if None in floors:
            self._standing_pending = True
            self.set(raw, "quiet standing (unloaded reading not yet known)")
            return
        off = sum(f for f in floors if f is not None)
        off = min(max(off, -0.2 * raw), 0.2 * raw)
        self._standing_pending = False
        self.set(raw - off, f"quiet standing ({raw:.0f} N) minus unloaded insoles ({off:.0f} N)")

    def set(self, bw_n: float, source: str) -> None:
        self.n = bw_n
        self.source = source
        if self.on_change is not None:
            self.on_change(bw_n)
        log.info("body weight %.0f N (%.1f kg) from %s", bw_n, bw_n / G, source)
