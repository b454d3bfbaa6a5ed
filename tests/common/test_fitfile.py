"""The FIT encoder (edge_agent/common/fitfile.py) read back with Garmin's decoder: integrity, message counts, units,
per-second records holding their window's values, timer events around a pause, and the errors for impossible runs."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace
from typing import Any

import pytest
from fit_tool import FitFile
from fit_tool.profile.messages.field_description_message import FieldDescriptionMessage
from garmin_fit_sdk import Decoder, Stream

from edge_agent.analysis.aggregator import symmetry_index_pct
from edge_agent.common.fitfile import (
    FIT_EPOCH_UNIX,
    MEASURE_FIELDS,
    FitExportError,
    FitRun,
    FitSpan,
    encode_run,
    fit_filename,
    running_cadence,
    stance_time_balance_pct,
)
from tests.support.fit import BALANCE_TOL, FLOAT32_REL, SPM_TOL, STANCE_MS_TOL, decode, spm, unix
from tests.support.paths import REPO

T0 = 1_700_000_000.4  # mid-second on purpose: records fall on whole seconds inside each window
GAP_AFTER = 2  # a 25-s pause after the third window


def _window(i: int, t_start: float, length: float = 10.0) -> FitSpan:
    return FitSpan(
        t_start=t_start,
        t_end=t_start + length,
        steps=28 + i,
        cadence_spm=168.0 + 1.37 * i,
        contact_ms=231.26 + 3.1 * i,
        contact_asymmetry_pct=-4.0 + 1.5 * i,
        valr_bw_s=55.5 + 2.25 * i,
        valr_lo_bw_s=50.0 + i,
        valr_hi_bw_s=61.0 + i,
        strike_index_left=0.21 + 0.05 * i,
        strike_index_right=0.27 + 0.04 * i,
        rearfoot=20 - 2 * i,
        midfoot=6 + i,
        forefoot=2 + i,
    )


def _windows() -> list[FitSpan]:
    out, t = [], T0
    for i in range(6):
        if i == GAP_AFTER + 1:
            t += 25.0
        out.append(_window(i, t, 10.0 if i != 4 else 7.3))  # one short window: window ends need not be whole
        t = out[-1].t_end
    return out


def _run(windows: list[FitSpan] | None = None, **summary: Any) -> FitRun:
    wins = _windows() if windows is None else windows
    end = max((w.t_end for w in wins), default=T0 + 60.0)
    base = FitSpan(t_start=T0, t_end=end, steps=200, cadence_spm=170.55, contact_ms=240.04,
                   contact_asymmetry_pct=1.2, valr_bw_s=60.125, valr_lo_bw_s=54.0, valr_hi_bw_s=66.0,
                   strike_index_left=0.31, strike_index_right=0.35, rearfoot=100, midfoot=60, forefoot=40)  # fmt: skip
    return FitRun("dev-1-20231114T221320", "dev-1", replace(base, **summary), wins, profile="moticon-opengo")


def _seconds(windows: list[FitSpan]) -> list[tuple[int, FitSpan]]:
    """(whole second, window) as the export must write them: t_start ≤ s < t_end, strictly increasing."""
    out: list[tuple[int, FitSpan]] = []
    for w in sorted(windows, key=lambda w: w.t_start):
        for s in range(math.ceil(w.t_start), math.ceil(w.t_end)):
            if not out or s > out[-1][0]:
                out.append((s, w))
    return out


def _assert_measures(fit_values: dict[str, float], span: FitSpan) -> None:
    for f in MEASURE_FIELDS:
        want = f.value(span)
        if want is None:
            assert f.name not in fit_values
        else:
            assert fit_values[f.name] == pytest.approx(want, rel=FLOAT32_REL, abs=1e-6), f.name


def test_every_second_holds_its_window_values_in_fit_units() -> None:
    run = _run()
    fit = decode(encode_run(run).data)
    expected = _seconds(list(run.windows))
    assert fit.count("record") == len(expected) == 10 + 10 + 10 + 10 + 7 + 10
    for rec, (second, w) in zip(fit.records, expected, strict=True):
        assert unix(rec["timestamp"]) == second and w.t_start <= second < w.t_end
        assert spm(rec) == pytest.approx(w.cadence_spm, abs=SPM_TOL)
        assert rec["stance_time"] == pytest.approx(w.contact_ms, abs=STANCE_MS_TOL)
        balance = stance_time_balance_pct(w.contact_asymmetry_pct)
        assert rec["stance_time_balance"] == pytest.approx(balance, abs=BALANCE_TOL)
        _assert_measures(fit.developer("record", rec), w)
    # the pause: no record inside it
    gap = (run.windows[GAP_AFTER].t_end, run.windows[GAP_AFTER + 1].t_start)
    assert not [r for r in fit.records if gap[0] <= unix(r["timestamp"]) < gap[1] - 1]


def test_session_lap_and_identity() -> None:
    run = _run()
    data = encode_run(run).data
    fit = decode(data)
    assert (fit.count("session"), fit.count("lap"), fit.count("activity"), fit.count("file_id")) == (1, 1, 1, 1)
    fid = fit.one("file_id")
    assert fid["type"] == "activity" and fid["manufacturer"] == "development" and fid["product_name"] == "footfall"
    assert unix(fid["time_created"]) == math.floor(T0) and fid["serial_number"] > 0
    creator, insoles = fit.messages["device_info_mesgs"]
    assert creator["device_index"] == "creator" and creator["product_name"] == "footfall"
    assert insoles["product_name"] == "moticon-opengo"
    assert fit.one("developer_data_id")["manufacturer_id"] == 255
    s = run.summary
    elapsed = run.windows[-1].t_end - T0
    for kind in ("session", "lap"):
        msg = fit.one(kind)
        assert msg["sport"] == "running" and msg["sub_sport"] == "generic"
        assert unix(msg["start_time"]) == math.floor(T0) and unix(msg["timestamp"]) == math.ceil(run.windows[-1].t_end)
        assert msg["total_elapsed_time"] == pytest.approx(elapsed, abs=1e-3)
        assert msg["total_timer_time"] == pytest.approx(elapsed - 25.0, abs=1e-3)
        assert msg["total_strides"] == round(s.steps / 2)
        assert spm(msg, "avg_") == pytest.approx(s.cadence_spm, abs=SPM_TOL)
        assert spm(msg, "max_") == pytest.approx(max(w.cadence_spm or 0.0 for w in run.windows), abs=SPM_TOL)
        assert msg["avg_stance_time"] == pytest.approx(s.contact_ms, abs=STANCE_MS_TOL)
        assert msg["avg_stance_time_balance"] == pytest.approx(50.0 - 1.2 / 4, abs=BALANCE_TOL)
        _assert_measures(fit.developer(kind, msg), s)
    assert fit.one("session")["num_laps"] == 1 and fit.one("activity")["num_sessions"] == 1
    assert fit.one("activity")["total_timer_time"] == pytest.approx(elapsed - 25.0, abs=1e-3)
    for kind in ("record", "lap", "session"):
        assert sorted(fit.developer_names(kind).values()) == sorted(f.name for f in MEASURE_FIELDS)
    # native_field_num is written, as the invalid value 255 (Garmin's decoder drops it; Golden Cheetah needs it)
    assert all("native_field_num" not in d for d in fit.messages["field_description_mesgs"])
    layouts = [r.message.definition_message for r in FitFile.from_bytes(data).records
               if isinstance(r.message, FieldDescriptionMessage)]  # fmt: skip
    assert layouts and all(15 in [f.field_id for f in d.field_definitions] for d in layouts)
    # timer: start, stop at the pause, start after it, stop at the end
    events = [(e["event"], e["event_type"], unix(e["timestamp"])) for e in fit.messages["event_mesgs"]]
    first_after = math.ceil(run.windows[GAP_AFTER + 1].t_start)
    assert events == [
        ("timer", "start", math.floor(T0)),
        ("timer", "stop_all", math.ceil(run.windows[GAP_AFTER].t_end)),
        ("timer", "start", first_after),
        ("timer", "stop_all", math.ceil(run.windows[-1].t_end)),
    ]


def test_raw_header_epoch_and_determinism() -> None:
    data = encode_run(_run()).data
    assert data[0] == 14 and data[1] == 0x20 and data[8:12] == b".FIT"  # 14-byte header, protocol 2.0
    assert int.from_bytes(data[4:8], "little") == len(data) - 16  # records size: all but header and file CRC
    raw, errors = Decoder(Stream.from_byte_array(bytearray(data))).read(convert_datetimes_to_dates=False)
    assert errors == []
    assert raw["record_mesgs"][0]["timestamp"] == math.ceil(T0) - FIT_EPOCH_UNIX == math.ceil(T0) - 631065600
    assert encode_run(_run()).data == data  # same run, same bytes (a re-upload is a recognisable duplicate)


def test_a_flipped_byte_or_a_cut_file_fails_the_crc_check() -> None:
    data = bytearray(encode_run(_run()).data)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    assert not Decoder(Stream.from_byte_array(flipped)).check_integrity()
    assert not Decoder(Stream.from_byte_array(data[:-40])).check_integrity()
    assert Decoder(Stream.from_byte_array(data)).check_integrity()


def test_unmeasured_values_are_left_out_not_invented() -> None:
    """A window without cadence (one step) has no cadence field; an insole without CoP gets no strike-index or
    zone fields; no VALR interval fields unless the analysis gave one."""
    wins = [replace(w, strike_index_left=None, strike_index_right=None, rearfoot=0, midfoot=0, forefoot=0,
                    valr_lo_bw_s=None, valr_hi_bw_s=None) for w in _windows()]  # fmt: skip
    wins[1] = replace(wins[1], cadence_spm=None, contact_ms=None, contact_asymmetry_pct=None)
    run = _run(wins, strike_index_left=None, strike_index_right=None, rearfoot=0, midfoot=0, forefoot=0,
               valr_lo_bw_s=None, valr_hi_bw_s=None)  # fmt: skip
    fit = decode(encode_run(run).data)
    names = {d["field_name"] for d in fit.messages["field_description_mesgs"]}
    assert names == {"valr"}
    for rec, (_, w) in zip(fit.records, _seconds(wins), strict=True):
        if w is wins[1]:
            assert "cadence" not in rec and "stance_time" not in rec and "stance_time_balance" not in rec
        else:
            assert spm(rec) == pytest.approx(w.cadence_spm, abs=SPM_TOL)
        assert fit.developer("record", rec) == pytest.approx({"valr": w.valr_bw_s})


def test_a_run_without_windows_holds_the_run_values() -> None:
    """Retention removes windows but keeps runs: the whole run is then the one span."""
    run = _run([], cadence_spm=172.0)
    fit = decode(encode_run(run).data)
    assert fit.count("record") == len(range(math.ceil(T0), math.ceil(T0 + 60.0))) == 60
    assert {spm(r) for r in fit.records} == {172.0}
    assert fit.one("session")["total_timer_time"] == pytest.approx(60.0)


def test_overlapping_windows_never_repeat_a_second() -> None:
    wins = [_window(0, T0), _window(1, T0 + 5.0), _window(2, T0 + 20.0)]
    fit = decode(encode_run(_run(wins)).data)
    seconds = [unix(r["timestamp"]) for r in fit.records]
    assert seconds == sorted(set(seconds)) == [s for s, _ in _seconds(wins)]
    assert spm(fit.records[7]) == pytest.approx(wins[0].cadence_spm, abs=SPM_TOL)  # the earlier window wins


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (1000.0, 1600.0, "outside the FIT time range"),  # an unset device clock (1970)
        (T0, T0 + 49 * 3600.0, "more than the 172800 s"),
        (float("nan"), T0, "outside the FIT time range"),
    ],
)
def test_impossible_runs_are_refused_with_a_reason(start: float, end: float, message: str) -> None:
    run = _run([], t_start=start, t_end=end)
    with pytest.raises(FitExportError, match=message) as err:
        encode_run(run)
    assert "dev-1-20231114T221320" in str(err.value)


def test_units_and_definitions() -> None:
    assert running_cadence(170.0) == (85, 0.0)
    assert running_cadence(171.0) == (85, 0.5)
    assert running_cadence(171.3) == (85, 83 / 128)  # 85.65 strides/min → 1/128 steps
    assert running_cadence(None) is None and running_cadence(-1.0) is None and running_cadence(600.0) is None
    for left, right in [(250.0, 250.0), (240.0, 260.0), (300.0, 200.0), (1.0, 999.0)]:
        want = 100.0 * left / (left + right)
        assert stance_time_balance_pct(symmetry_index_pct(left, right)) == pytest.approx(want)
    assert stance_time_balance_pct(None) is None and stance_time_balance_pct(250.0) is None
    assert fit_filename("sim-1-20240101T101010") == "footfall-sim-1-20240101T101010.fit"
    assert fit_filename("a:b/../c") == "footfall-a-b----c.fit"


def test_importing_the_encoder_leaves_logging_alone_and_needs_no_numba() -> None:
    """fit-tool calls logging.basicConfig() on import; the encoder undoes it, and pulls in neither numba nor numpy."""
    code = (
        "import logging, sys; import edge_agent.common.fitfile; "
        "print(len(logging.getLogger().handlers), 'numba' in sys.modules, 'numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "False", "False"]
