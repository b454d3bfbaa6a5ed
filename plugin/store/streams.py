"""What the acks say, read from the database (whichever worker stored the messages): per stream, the highest
contiguous seq, the missing ranges below the highest seq seen, and that highest seq — one primary-key lookup
plus one bounded index range per ack, whatever the number of streams."""

from __future__ import annotations

from typing import Any

from plugin.store.base import StoreBase

#: Ack messages may name at most this many missing ranges (``Ack.missing`` max_length).
MAX_MISSING_RANGES = 256
#: An ack looks at most this many stored seqs above the contiguous one for gaps (a bound per ack, not per stream).
MAX_SCAN = 20_000


class StreamQueries(StoreBase):
    def ack_state(self, device_id: str, stream_id: str) -> tuple[int, list[tuple[int, int]], int]:
        """(highest contiguous seq stored, missing inclusive ranges, highest seq seen) for one stream."""
        with self._read() as c:
            row = c.execute(
                "SELECT contiguous_seq, max_seq FROM streams WHERE device_id = ? AND stream_id = ?",
                (device_id, stream_id),
            ).fetchone()
            if row is None:
                return 0, [], 0
            contiguous, max_seq = int(row[0]), int(row[1])
            missing: list[tuple[int, int]] = []
            expected = contiguous + 1
            seqs = c.execute(
                "SELECT seq FROM messages WHERE device_id = ? AND stream_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (device_id, stream_id, contiguous, MAX_SCAN),
            ).fetchall()
            for (seq,) in seqs:
                if seq > expected:
                    missing.append((expected, seq - 1))
                    if len(missing) >= MAX_MISSING_RANGES:
                        break
                expected = seq + 1
        if expected <= max_seq and len(missing) < MAX_MISSING_RANGES and len(seqs) < MAX_SCAN:  # newest rows pruned
            missing.append((expected, max_seq))
        return contiguous, missing, max(max_seq, contiguous)

    def ack_states(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, list[tuple[int, int]], int]]:
        """:meth:`ack_state` of many streams: one query for all of them, plus one per stream that has a gap."""
        out: dict[tuple[str, str], tuple[int, list[tuple[int, int]], int]] = {}
        gaps: list[tuple[str, str]] = []
        for i in range(0, len(keys), 200):
            chunk = keys[i : i + 200]
            pairs = ",".join(["(?,?)"] * len(chunk))
            rows = self._rows(
                "SELECT device_id, stream_id, contiguous_seq, max_seq FROM streams WHERE (device_id, stream_id) IN "
                f"(VALUES {pairs})",
                [x for key in chunk for x in key],
            )
            for r in rows:
                key = (r["device_id"], r["stream_id"])
                contiguous, top = int(r["contiguous_seq"]), int(r["max_seq"])
                if contiguous >= top:
                    out[key] = (contiguous, [], contiguous)
                else:
                    gaps.append(key)
        for key in gaps:
            out[key] = self.ack_state(*key)
        for key in keys:
            out.setdefault(key, (0, [], 0))
        return out

    def stream_state(self, device_id: str, stream_id: str) -> tuple[int, list[tuple[int, int]]]:
        """(highest contiguous seq stored, missing inclusive ranges below the highest seq seen)."""
        contiguous, missing, _ = self.ack_state(device_id, stream_id)
        return contiguous, missing

    def streams(self, device_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM streams" + (" WHERE device_id = ?" if device_id else "") + " ORDER BY device_id, stream_id"
        return self._rows(sql, (device_id,) if device_id else ())
