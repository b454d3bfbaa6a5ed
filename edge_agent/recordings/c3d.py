"""A minimal reader for C3D motion-capture files (3D marker trajectories and their labels).

Why our own: the Fukuchi running dataset ships each trial as ``.c3d`` with heel and metatarsal
markers, which tell which foot is on the force plate, and the plate's analog channels. Only what that
needs is implemented: Intel (processor type 84) files, integer or float data, the ``POINT`` and ``ANALOG``
parameters. Spec: the C3D file format user guide (c3d.org), sections "The header", "Parameter section",
"3D point data", "Analog data".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_agent.recordings.model import RecordingError

BLOCK = 512
INTEL = 84


@dataclass
class C3DPoints:
    """Marker trajectories: ``xyz`` (frames × markers × 3, NaN where a marker is missing)."""

    labels: list[str]
    rate_hz: float
    first_frame: int
    xyz: np.ndarray
    params: dict[str, dict[str, object]] = field(default_factory=dict)

    def marker(self, label: str) -> np.ndarray:
        try:
            return self.xyz[:, self.labels.index(label), :]
        except ValueError:
            raise RecordingError(f"C3D has no marker {label!r} (markers: {', '.join(self.labels)})") from None

    @property
    def t(self) -> np.ndarray:
        """Frame times (s) with the first frame of the file at (first_frame − 1) / rate."""
        return (np.arange(self.xyz.shape[0]) + self.first_frame - 1) / self.rate_hz


def _params(data: bytes, start: int, path: Path) -> dict[str, dict[str, object]]:
    if len(data) < start + 4 or data[start + 3] != INTEL:
        kind = data[start + 3] if len(data) > start + 3 else None
        raise RecordingError(f"{path}: C3D processor type {kind} not supported (only Intel, 84)")
    n_blocks = data[start + 2]
    end = start + n_blocks * BLOCK
    pos = start + 4
    groups: dict[int, str] = {}
    raw: list[tuple[int, str, object]] = []
    while pos < end:
        name_len = struct.unpack_from("<b", data, pos)[0]
        gid = struct.unpack_from("<b", data, pos + 1)[0]
        if name_len == 0:
            break
        n = abs(name_len)
        name = data[pos + 2 : pos + 2 + n].decode("ascii", "replace").upper()
        p = pos + 2 + n
        offset = struct.unpack_from("<h", data, p)[0]
        nxt = p + offset if offset else end
        if gid < 0:
            groups[-gid] = name
        else:
            elen = struct.unpack_from("<b", data, p + 2)[0]
            nd = data[p + 3]
            dims = list(data[p + 4 : p + 4 + nd])
            q = p + 4 + nd
            count = int(np.prod(dims)) if dims else 1
            size = abs(elen) * count
            blob = data[q : q + size]
            value: object
            if elen == -1:
                if nd <= 1 or dims[0] == 0:
                    value = blob.decode("latin-1").rstrip()
                else:
                    w = dims[0]
                    value = [blob[i * w : (i + 1) * w].decode("latin-1").strip() for i in range(count // w)]
            elif elen == 1:
                value = list(blob)
            elif elen == 2:
                value = list(struct.unpack(f"<{count}h", blob))
            elif elen == 4:
                value = list(struct.unpack(f"<{count}f", blob))
            else:
                value = None
            raw.append((gid, name, value))
        if nxt <= pos:
            break
        pos = nxt
    out: dict[str, dict[str, object]] = {}
    for gid, name, value in raw:
        out.setdefault(groups.get(gid, str(gid)), {})[name] = value
    return out


@dataclass
class C3DAnalog:
    """Analog channels: ``values`` (samples × channels), scaled as the file's ANALOG parameters say."""

    labels: list[str]
    units: list[str]
    rate_hz: float
    values: np.ndarray

    def channel(self, label: str) -> np.ndarray:
        try:
            return self.values[:, self.labels.index(label)]
        except ValueError:
            raise RecordingError(f"C3D has no analog channel {label!r} (channels: {', '.join(self.labels)})") from None


def read_c3d_analog(path: str | Path) -> C3DAnalog:
    """The analog channels of a C3D file: ``(raw − OFFSET) × SCALE × GEN_SCALE`` per channel."""
    path = Path(path)
    data = path.read_bytes()
    pts = read_c3d_points(path)  # validates the header and parses the parameters
    n_points, analog_per_frame, first, last = struct.unpack_from("<hhhh", data, 2)
    is_float = struct.unpack_from("<f", data, 12)[0] < 0
    data_start = struct.unpack_from("<H", data, 16)[0]
    an = pts.params.get("ANALOG", {})
    used = an.get("USED", [0])
    nch = int(used[0]) if isinstance(used, list) and used else 0
    if nch <= 0 or analog_per_frame <= 0:
        raise RecordingError(f"{path}: no analog channels")
    ratio = analog_per_frame // nch
    n_frames = last - first + 1
    word = 4 if is_float else 2
    per_frame = (n_points * 4 + analog_per_frame) * word
    dt = np.dtype("<f4") if is_float else np.dtype("<i2")
    frames = np.frombuffer(data, dtype=np.uint8, count=n_frames * per_frame, offset=(data_start - 1) * BLOCK)
    block = np.ascontiguousarray(frames.reshape(n_frames, per_frame)[:, n_points * 4 * word :]).view(dt)
    values = block.reshape(n_frames * ratio, nch).astype(np.float64)

    def param(name: str, default: float) -> np.ndarray:
        v = an.get(name)
        arr = np.asarray(v if isinstance(v, list) and v else [default] * nch, dtype=np.float64)
        return arr[:nch] if arr.size >= nch else np.full(nch, default)

    gen = an.get("GEN_SCALE", [1.0])
    gen_scale = float(gen[0]) if isinstance(gen, list) and gen else 1.0
    values = (values - param("OFFSET", 0.0)) * param("SCALE", 1.0) * gen_scale
    labels_v = an.get("LABELS", [])
    labels = [str(x) for x in labels_v] if isinstance(labels_v, list) else [str(labels_v)]
    units_v = an.get("UNITS", [])
    units = [str(x) for x in units_v] if isinstance(units_v, list) else [str(units_v)]
    rate_v = an.get("RATE", [pts.rate_hz * ratio])
    rate = float(rate_v[0]) if isinstance(rate_v, list) and rate_v else pts.rate_hz * ratio
    return C3DAnalog(labels=labels[:nch], units=units[:nch], rate_hz=rate, values=values)


def read_c3d_points(path: str | Path) -> C3DPoints:
    """Marker trajectories of a C3D file; RecordingError for anything this reader does not handle."""
    path = Path(path)
    data = path.read_bytes()
    if len(data) < BLOCK or data[1] != 0x50:
        raise RecordingError(f"{path}: not a C3D file (byte 2 is not 0x50)")
    n_points, analog_per_frame, first, last = struct.unpack_from("<hhhh", data, 2)
    scale = struct.unpack_from("<f", data, 12)[0]
    data_start = struct.unpack_from("<H", data, 16)[0]
    rate = struct.unpack_from("<f", data, 20)[0]
    params = _params(data, (data[0] - 1) * BLOCK, path)
    point = params.get("POINT", {})
    labels_v = point.get("LABELS", [])
    labels = [str(x) for x in labels_v] if isinstance(labels_v, list) else [str(labels_v)]
    n_frames = last - first + 1
    if n_points <= 0 or n_frames <= 0:
        raise RecordingError(f"{path}: no 3D points")
    is_float = scale < 0
    word = 4 if is_float else 2
    per_frame = n_points * 4 * word + analog_per_frame * word
    need = (data_start - 1) * BLOCK + n_frames * per_frame
    if len(data) < need:
        raise RecordingError(f"{path}: truncated C3D ({len(data)} bytes, {need} needed)")
    dt = np.dtype("<f4") if is_float else np.dtype("<i2")
    frames = np.frombuffer(data, dtype=np.uint8, count=n_frames * per_frame, offset=(data_start - 1) * BLOCK)
    frames = frames.reshape(n_frames, per_frame)[:, : n_points * 4 * word]
    pts = np.ascontiguousarray(frames).view(dt).reshape(n_frames, n_points, 4).astype(np.float64)
    xyz = pts[:, :, :3] * (1.0 if is_float else abs(scale))
    resid = pts[:, :, 3]
    xyz[resid < 0] = np.nan  # C3D: a negative residual word marks an invalid point
    return C3DPoints(labels=labels[:n_points], rate_hz=float(rate), first_frame=int(first), xyz=xyz, params=params)
