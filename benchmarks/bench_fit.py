"""FIT export of a 60-min run (10-s windows, one record per second): the encoder against fit-tool's FitFileBuilder.

``edge_agent.common.fitfile.encode_run`` writes a definition only when a message's layout changes and re-serialises
one record message per second of its window. The reference builds the same records the way fit-tool's README shows
(a new ``RecordMessage`` per second through ``FitFileBuilder``), which derives and compares a definition for
every message. Both are timed side by side in one run (median of ``--repeat``), with the file sizes and the time
Garmin's decoder needs to read the export back.

    python benchmarks/bench_fit.py [--minutes 60] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from fit_tool.base_type import BaseType
from fit_tool.developer_field import DeveloperField
from fit_tool.fit_file_builder import FitFileBuilder
from fit_tool.profile.messages.record_message import RecordMessage
from garmin_fit_sdk import Decoder, Stream

from edge_agent.common.fitfile import (
    MEASURE_FIELDS,
    FitRun,
    FitSpan,
    encode_run,
    running_cadence,
    stance_time_balance_pct,
)

T0 = 1_760_000_000.0


def make_run(minutes: float) -> FitRun:
    n = int(minutes * 6)
    windows = [
        FitSpan(t_start=T0 + 10 * i, t_end=T0 + 10 * (i + 1), steps=29, cadence_spm=170 + (i % 7) * 0.8,
                contact_ms=240 + (i % 5), contact_asymmetry_pct=(i % 9) - 4.0, valr_bw_s=55 + (i % 11),
                strike_index_left=0.25, strike_index_right=0.3, rearfoot=20, midfoot=7, forefoot=2)
        for i in range(n)
    ]  # fmt: skip
    summary = FitSpan(t_start=T0, t_end=T0 + 10 * n, steps=29 * n, cadence_spm=172.0, contact_ms=242.0,
                      contact_asymmetry_pct=0.5, valr_bw_s=60.0, strike_index_left=0.25, strike_index_right=0.3,
                      rearfoot=20 * n, midfoot=7 * n, forefoot=2 * n)  # fmt: skip
    return FitRun("bench-1", "bench", summary, windows, profile="moticon-opengo")


def builder_records(run: FitRun) -> bytes:
    """The same per-second records (native and developer fields) through fit-tool's FitFileBuilder — records
    only, the costly part."""
    b = FitFileBuilder(auto_define=True)
    for w in run.windows:
        cad = running_cadence(w.cadence_spm)
        for t in range(int(w.t_start), int(w.t_end)):
            devs = []
            for f in MEASURE_FIELDS:
                value = f.value(w)
                if value is not None:
                    dev = DeveloperField(developer_data_index=0, field_id=f.number, base_type=BaseType.FLOAT32, size=4)
                    dev.set_value(0, value)
                    devs.append(dev)
            r = RecordMessage(developer_fields=devs)
            r.timestamp = t * 1000
            if cad is not None:
                r.cadence, r.fractional_cadence = cad
            r.stance_time = w.contact_ms
            r.stance_time_balance = stance_time_balance_pct(w.contact_asymmetry_pct)
            b.add(r)
    return b.build_bytes()


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    samples, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    run = make_run(args.minutes)
    t_enc, encoded = timed(lambda: encode_run(run), args.repeat)
    t_ref, ref = timed(lambda: builder_records(run), max(1, args.repeat // 2))
    data = encoded.data  # type: ignore[attr-defined]
    t_dec, _ = timed(lambda: Decoder(Stream.from_byte_array(bytearray(data))).read(), max(1, args.repeat // 2))
    records = encoded.messages["record"]  # type: ignore[attr-defined]
    print(f"{args.minutes:.0f}-min run, {len(run.windows)} windows, {records} records")
    print(f"encode_run (whole file)          {t_enc * 1e3:8.1f} ms  {len(data):8d} bytes")
    print(f"FitFileBuilder (records only)    {t_ref * 1e3:8.1f} ms  {len(ref):8d} bytes")  # type: ignore[arg-type]
    print(f"ratio builder / encode_run       {t_ref / t_enc:8.1f} x")
    print(f"garmin-fit-sdk Decoder.read      {t_dec * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
