"""The native on-disk format (``.ffrec``): a JSON header followed by append-only, checksummed chunks.

Layout (all integers little-endian)::

    b"FFREC1\\n"  u32 header_len  header (UTF-8 JSON)
    chunk*:  b"CK"  u8 kind  u8 0  u32 n_rows  u32 n_cols  u16 name_len  u32 crc32(payload)  name  payload

``kind`` 0/1 = left/right samples: payload is ``t`` (float64 × n_rows) then ``raw`` (float32,
n_rows × n_cols, row-major). ``kind`` 2 = a reference array called ``name`` (float64, n_rows × n_cols).
The header holds profile, sensor count, body mass, notes, source, start time, segments and meta.

Why this shape: the agent's ``record`` command appends as it measures and a Pi can lose power at any
moment. Each chunk is self-describing and checksummed, so a torn write can only damage the last
chunk: the reader drops it with a warning and returns everything before it. Corruption *before*
the last chunk is not a crash artefact and is reported as an error with its byte offset.
"""

from __future__ import annotations

import json
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from edge_agent.recordings.model import SIDES, FootStream, Recording, RecordingError, Segment, Side

MAGIC = b"FFREC1\n"
CHUNK = b"CK"
_CHUNK_HEAD = struct.Struct("<2sBBIIHI")
KIND_OF_SIDE = {"left": 0, "right": 1}
KIND_REFERENCE = 2
SUFFIX = ".ffrec"


class RecordingWarning(UserWarning):
    """Part of a recording was dropped (a chunk torn by a crash); the rest loaded."""


def is_native(head: bytes) -> bool:
    return head.startswith(MAGIC)


def _header_bytes(header: dict[str, Any]) -> bytes:
    body = json.dumps(header, allow_nan=False, sort_keys=True).encode("utf-8")
    return MAGIC + struct.pack("<I", len(body)) + body


def _chunk(kind: int, payload: bytes, n_rows: int, n_cols: int, name: str = "") -> bytes:
    nb = name.encode("utf-8")
    head = _CHUNK_HEAD.pack(CHUNK, kind, 0, n_rows, n_cols, len(nb), zlib.crc32(payload))
    return head + nb + payload


def _samples_chunk(side: Side, t: np.ndarray, raw: np.ndarray) -> bytes:
    t64 = np.ascontiguousarray(t, dtype="<f8")
    r32 = np.ascontiguousarray(raw, dtype="<f4")
    return _chunk(KIND_OF_SIDE[side], t64.tobytes() + r32.tobytes(), r32.shape[0], r32.shape[1])


def _header_of(rec: Recording) -> dict[str, Any]:
    return {
        "format": "footfall-recording",
        "version": 1,
        "profile": rec.profile,
        "n_sensors": rec.n_sensors,
        "body_mass_kg": rec.body_mass_kg,
        "notes": rec.notes,
        "source": rec.source,
        "start_time": rec.start_time,
        "segments": [[s.label, s.t_start, s.t_end] for s in rec.segments],
        "meta": rec.meta,
    }


def save_recording_native(rec: Recording, path: Path) -> None:
    """Write ``rec`` atomically (temp file + rename) so an existing file is never half-replaced."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        header = _header_bytes(_header_of(rec))
    except (TypeError, ValueError) as err:
        raise RecordingError(f"{path}: header is not JSON-serialisable ({err})") from None
    try:
        with open(tmp, "wb") as f:
            f.write(header)
            for side, fs in rec.streams():
                # chunks of 64 k rows keep a single chunk's size bounded for huge recordings
                for i in range(0, max(fs.n_samples, 1), 65536):
                    if fs.n_samples:
                        f.write(_samples_chunk(side, fs.t[i : i + 65536], fs.raw[i : i + 65536]))
            for name, arr in rec.reference.items():
                a = np.asarray(arr, dtype="<f8")
                a2 = a.reshape(1, 1) if a.ndim == 0 else a.reshape(a.shape[0], -1 if a.size else 1)
                f.write(_chunk(KIND_REFERENCE, np.ascontiguousarray(a2).tobytes(), a2.shape[0], a2.shape[1], name))
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)  # never leave a half-written temp file behind
        raise
    os.replace(tmp, path)


def load_native(path: Path) -> Recording:
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise RecordingError(f"{path}: not a footfall recording (bad magic)")
    pos = len(MAGIC)
    if len(data) < pos + 4:
        raise RecordingError(f"{path}: truncated header")
    (hlen,) = struct.unpack_from("<I", data, pos)
    pos += 4
    try:
        header = json.loads(data[pos : pos + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RecordingError(f"{path}: header at byte {pos} is not valid JSON ({err})") from None
    pos += hlen
    n_sensors = int(header.get("n_sensors") or 0)
    parts: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {s: ([], []) for s in SIDES}
    reference: dict[str, np.ndarray] = {}
    while pos < len(data):
        start = pos
        if len(data) - pos < _CHUNK_HEAD.size:
            _torn(path, start, "chunk header cut short")
            break
        tag, kind, _, n_rows, n_cols, name_len, crc = _CHUNK_HEAD.unpack_from(data, pos)
        if tag != CHUNK:
            raise RecordingError(f"{path}: byte {start}: expected a chunk marker, found {tag!r} (file corrupt)")
        pos += _CHUNK_HEAD.size
        size = n_rows * 8 + n_rows * n_cols * 4 if kind in (0, 1) else n_rows * n_cols * 8
        end = pos + name_len + size
        if end > len(data):
            _torn(path, start, f"chunk needs {end - start} bytes, {len(data) - start} left")
            break
        name = data[pos : pos + name_len].decode("utf-8", "replace")
        payload = data[pos + name_len : end]
        if zlib.crc32(payload) != crc:
            if end == len(data):
                _torn(path, start, "checksum mismatch in the last chunk")
                break
            raise RecordingError(f"{path}: byte {start}: chunk checksum mismatch (file corrupt, not a torn tail)")
        pos = end
        if kind in (0, 1):
            if n_sensors and n_cols != n_sensors:
                raise RecordingError(f"{path}: byte {start}: chunk has {n_cols} sensors, header says {n_sensors}")
            side = SIDES[kind]
            parts[side][0].append(np.frombuffer(payload, "<f8", n_rows))
            parts[side][1].append(np.frombuffer(payload, "<f4", n_rows * n_cols, n_rows * 8).reshape(n_rows, n_cols))
        elif kind == KIND_REFERENCE:
            arr = np.frombuffer(payload, "<f8").reshape(n_rows, n_cols).copy()
            reference[name] = arr[:, 0] if n_cols == 1 else arr
        else:
            raise RecordingError(f"{path}: byte {start}: unknown chunk kind {kind}")
    streams: dict[str, FootStream | None] = {}
    for side in SIDES:
        ts, raws = parts[side]
        streams[side] = FootStream(np.concatenate(ts), np.concatenate(raws)) if ts else None
    return Recording(
        profile=str(header.get("profile", "")),
        left=streams["left"],
        right=streams["right"],
        body_mass_kg=header.get("body_mass_kg"),
        notes=header.get("notes", ""),
        source=header.get("source", "") or str(path),
        segments=[Segment(str(a), float(b), float(c)) for a, b, c in header.get("segments", [])],
        reference=reference,
        start_time=header.get("start_time"),
        meta=dict(header.get("meta", {})),
    )


def _torn(path: Path, offset: int, why: str) -> None:
    warnings.warn(
        f"{path}: dropped a torn last chunk at byte {offset} ({why}); everything before it was loaded",
        RecordingWarning,
        stacklevel=4,
    )


class RecordingWriter:
    """Append samples as they arrive (the agent's ``record`` command); crash-safe up to the last flush.

    Rows are buffered per side and written as one checksummed chunk per side on :meth:`flush`
    (called automatically every ``flush_rows`` rows), followed by ``fsync``. After a crash the file
    loads with everything up to the last completed chunk. Refuses to overwrite an existing file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        profile: str,
        n_sensors: int,
        body_mass_kg: float | None = None,
        notes: str = "",
        *,
        start_time: float | None = None,
        meta: dict[str, Any] | None = None,
        flush_rows: int = 4096,
    ) -> None:
        if n_sensors < 1:
            raise RecordingError(f"{path}: n_sensors must be ≥ 1, got {n_sensors}")
        self.path = Path(path)
        self.n_sensors = n_sensors
        self.flush_rows = flush_rows
        self._buf: dict[Side, tuple[list[np.ndarray], list[np.ndarray]]] = {s: ([], []) for s in SIDES}
        self._buffered = 0
        self._last_t: dict[Side, float] = {}
        header = {
            "format": "footfall-recording",
            "version": 1,
            "profile": profile,
            "n_sensors": n_sensors,
            "body_mass_kg": body_mass_kg,
            "notes": notes,
            "source": "",
            "start_time": start_time,
            "segments": [],
            "meta": meta or {},
        }
        try:
            self._f: BinaryIO | None = open(self.path, "xb")  # noqa: SIM115 - lives as long as the writer
        except FileExistsError:
            raise RecordingError(f"{self.path}: already exists; refusing to overwrite a recording") from None
        self._f.write(_header_bytes(header))
        self._sync()

    def append(self, side: Side, t: np.ndarray, raw: np.ndarray) -> None:
        """Queue samples of one foot; rejects (without writing anything) bad shapes, NaN and time going back."""
        if self._f is None:
            raise RecordingError(f"{self.path}: writer is closed")
        if side not in KIND_OF_SIDE:
            raise RecordingError(f"{self.path}: side must be 'left' or 'right', got {side!r}")
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        raw = np.asarray(raw, dtype=np.float32)
        if raw.ndim == 1:
            raw = raw.reshape(1, -1) if t.size == 1 else raw.reshape(-1, 1)
        if raw.shape != (t.size, self.n_sensors):
            raise RecordingError(
                f"{self.path}: {side}: expected raw of shape ({t.size}, {self.n_sensors}), got {raw.shape}"
            )
        if t.size == 0:
            return
        fs = FootStream(t, raw)
        from edge_agent.recordings.model import check_stream

        check_stream(fs, f"{self.path}: {side}")
        last = self._last_t.get(side)
        if last is not None and t[0] <= last:
            raise RecordingError(f"{self.path}: {side}: time goes backwards ({last:.6f} s → {t[0]:.6f} s)")
        self._last_t[side] = float(t[-1])
        self._buf[side][0].append(fs.t)
        self._buf[side][1].append(fs.raw)
        self._buffered += t.size
        if self._buffered >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows as one chunk per side and fsync: everything appended so far is durable."""
        if self._f is None:
            return
        for side in SIDES:
            ts, raws = self._buf[side]
            if ts:
                self._f.write(_samples_chunk(side, np.concatenate(ts), np.concatenate(raws)))
                ts.clear()
                raws.clear()
        self._buffered = 0
        self._sync()

    def _sync(self) -> None:
        assert self._f is not None
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self.flush()
            self._f.close()
            self._f = None

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
