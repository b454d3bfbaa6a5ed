"""Map a device's timestamps onto the agent's monotonic clock (one aligner per insole).

Left and right insoles are often separate devices with separate crystals, so their timestamps share
neither origin nor rate. For each frame we know the device time ``d`` and when the host received it
``h``. ``h − d = offset + delay``, where the transport delay is positive and jittery (BLE connection
intervals, USB polling, OS scheduling) but has a floor. The *minimum* of ``h − d`` over a sliding
window is therefore the best estimate of the offset plus the floor delay — the classic min-one-way-
delay filter used by NTP/PTP-style clock sync (Mills, RFC 5905 §10 "clock filter": prefer the sample
with the lowest delay). A constant floor delay only shifts both feet alike and does not matter.

Drift: crystals differ by tens of ppm (≈ 3.6 ms per minute at 60 ppm), enough to skew left/right
timing over a run. We keep the minimum of ``h − d`` per 1 s bin of device time over the window
(default 60 s), fit a line through those bin minima (slope = drift), then lower the line until it
touches the lowest bin minimum, so it is a lower envelope: ``host = d + o_ref + drift·(d − d_ref)``.
Until 5 s of data exist the drift is 0 and the offset is the running minimum.

Output: the estimate is *slewed*, not stepped (as NTP slews small corrections): between two frames
the mapped time advances by the device interval × (1 ± ``slew``, default 0.2) and at least 1 µs, so
the kernels always see sane, strictly increasing sample intervals, even while the estimate improves
or when a device flushes a backlog faster than real time. A device clock that jumps backwards by more
than 1 s (a reset) or forward by more than ``window_s`` restarts the estimate (counted in ``resets``).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np


class ClockAligner:
    def __init__(self, window_s: float = 60.0, bin_s: float = 1.0, min_span_s: float = 5.0, slew: float = 0.2) -> None:
        self.window_s = window_s
        self.slew = slew
        self.bin_s = bin_s
        self.min_span_s = min_span_s
        self.resets = 0
        self._reset()

    def _reset(self) -> None:
        """Forget the estimate (device clock reset); the output stays monotonic across it."""
        self._bins: deque[list[float]] = deque()  # [bin_index, min_offset, device_t_at_min]
        self._last_d = -math.inf
        if not hasattr(self, "_last_out"):
            self._last_out = -math.inf
        self.drift = 0.0
        self._o_ref = math.nan
        self._d_ref = 0.0

    def offset_at(self, d: float | np.ndarray) -> float | np.ndarray:
        return self._o_ref + self.drift * (np.asarray(d) - self._d_ref)

    def map(self, device_t: np.ndarray, host_arrival: np.ndarray | float) -> np.ndarray:
        """Agent-clock times for frames with device times ``device_t`` that arrived at ``host_arrival``."""
        d = np.asarray(device_t, dtype=np.float64).reshape(-1)
        h = np.broadcast_to(np.asarray(host_arrival, dtype=np.float64), d.shape)
        if d.size == 0:
            return np.zeros(0)
        if d[0] < self._last_d - 1.0 or (self._last_d > -math.inf and d[0] > self._last_d + self.window_s):
            self.resets += 1
            self._reset()
        self._update(d, h)
        est = d + self.offset_at(d)
        out = np.empty_like(est)
        prev_d, prev_out = self._last_d, self._last_out
        slew = self.slew
        for i in range(est.size):  # slew towards the estimate (a short Python loop per batch)
            if prev_d == -math.inf:  # first frame, or first after a reset
                o = max(float(est[i]), prev_out + 1e-6)
            else:
                dd = max(float(d[i]) - prev_d, 0.0)
                o = min(max(float(est[i]), prev_out + (1.0 - slew) * dd), prev_out + (1.0 + slew) * dd)
                o = max(o, prev_out + 1e-6)
            out[i] = o
            prev_d, prev_out = float(d[i]), o
        self._last_out = prev_out
        self._last_d = prev_d
        return out

    def _update(self, d: np.ndarray, h: np.ndarray) -> None:
        off = h - d
        idx = np.floor(d / self.bin_s).astype(np.int64)
        # per-bin minima of this batch (batches are short; a loop over unique bins is cheap)
        for b in np.unique(idx):
            m = idx == b
            k = int(np.argmin(np.where(m, off, np.inf)))
            if self._bins and self._bins[-1][0] == b:
                if off[k] < self._bins[-1][1]:
                    self._bins[-1][1], self._bins[-1][2] = float(off[k]), float(d[k])
            else:
                self._bins.append([float(b), float(off[k]), float(d[k])])
        lo = float(d[-1]) - self.window_s
        while self._bins and self._bins[0][2] < lo and len(self._bins) > 1:
            self._bins.popleft()
        arr = np.asarray(self._bins)
        bd, bo = arr[:, 2], arr[:, 1]
        if bd[-1] - bd[0] >= self.min_span_s and arr.shape[0] >= 3:
            dm = bd.mean()
            slope = float(np.sum((bd - dm) * (bo - bo.mean())) / np.sum((bd - dm) ** 2))
            self.drift = slope
            self._d_ref = float(bd[-1])
            self._o_ref = float(np.min(bo - slope * (bd - self._d_ref)))
        else:
            self.drift = 0.0
            self._d_ref = float(bd[-1])
            self._o_ref = float(bo.min())
