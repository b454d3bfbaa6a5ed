"""Recordings: importers on real excerpts and the shared data, the native format, the crash-tolerant writer."""

from __future__ import annotations

import gzip
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from edge_agent.profiles import load_profile
from edge_agent.recordings import (
    FootStream,
    Recording,
    RecordingError,
    RecordingWarning,
    RecordingWriter,
    Segment,
    detect_format,
    load_recording,
    save_recording,
)
from tests.support.paths import DATA, REPO

MOTICON = DATA / "moticon_opengo_230927_102114_excerpt.txt.gz"
GAITPDB = DATA / "GaCo01_01.txt.gz"
FUKUCHI = DATA / "RBDS008runT35forces.txt.gz"


# -- importers on the bundled excerpts -----------------------------------------------------------
def test_moticon_text_export() -> None:
    rec = load_recording(MOTICON)
    assert detect_format(MOTICON) == "moticon-txt"
    assert rec.profile == "moticon-opengo" and rec.n_sensors == 16
    assert rec.left is not None and rec.right is not None
    assert rec.left.raw.dtype == np.float32 and rec.left.raw.flags.c_contiguous
    assert rec.left.t.dtype == np.float64
    assert rec.sample_rate_hz == pytest.approx(100.0)
    assert rec.meta["insole_size"] == "7" and rec.notes == "Some walking steps"
    assert rec.start_time is not None
    # vendor events (codes 11/15, 21/25) agree with the vendor gait report (left IC 3.0, 4.521 s …)
    assert rec.reference["left_initial_contact_s"][:2] == pytest.approx([3.0, 4.52], abs=0.006)
    assert rec.reference["left_toe_off_s"][0] == pytest.approx(3.97, abs=0.006)
    assert rec.reference["right_initial_contact_s"][0] == pytest.approx(3.80, abs=0.006)
    # the fitted profile reproduces the vendor's own total force from the cell pressures
    area = load_profile("moticon-opengo").sensor_area_cm2()
    ours = rec.left.raw.astype(np.float64) @ area
    vendor = rec.reference["left_total_force_n"]
    loaded = vendor > 100
    assert np.median(np.abs(ours[loaded] - vendor[loaded]) / vendor[loaded]) < 0.01


def test_gaitpdb_with_demographics(tmp_path: Path) -> None:
    rec = load_recording(GAITPDB)
    assert detect_format(GAITPDB) == "gaitpdb"
    assert rec.profile == "ultraflex-8" and rec.n_sensors == 8
    assert rec.body_mass_kg == 83.0  # GaCo01 in demographics.csv beside the file
    total = rec.left.raw.sum(axis=1)
    assert np.allclose(total, rec.reference["left_total_force_n"], atol=0.05)
    # without demographics beside it there is no body mass, and no error
    alone = tmp_path / "GaCo01_01.txt"
    alone.write_bytes(gzip.decompress(GAITPDB.read_bytes()))
    assert load_recording(alone).body_mass_kg is None


def test_fukuchi_contacts_alternate() -> None:
    rec = load_recording(FUKUCHI)
    assert rec.profile == "force-plate-300" and rec.sample_rate_hz == pytest.approx(300.0)
    assert rec.body_mass_kg == 69.0
    assert rec.meta["strike_label"] == {"right": "Rearfoot", "left": "Rearfoot"}
    assert rec.meta["speed_m_s"] == 3.5
    # the plate's medial-lateral COP confirms that consecutive contacts are different feet
    assert rec.meta["copz_alternation_agreement"] >= 0.9 and "confirmed" in rec.meta["side_assignment"]
    left, right = rec.left.raw[:, 0], rec.right.raw[:, 0]
    # never both feet loaded at once, and together they are the plate
    assert not np.any((left > 50) & (right > 50))
    plate = rec.reference["plate_fy_n"]
    assert np.allclose(np.where(left > 50, left, 0) + np.where(right > 50, right, 0), np.where(plate > 50, plate, 0))
    ls, rs = rec.reference["left_contact_start_s"], rec.reference["right_contact_start_s"]
    merged = np.sort(np.concatenate([ls, rs]))
    assert abs(len(ls) - len(rs)) <= 1 and len(merged) >= 14  # ~2.7 steps/s over 6 s
    assert np.all(np.isin(ls, merged[::2])) or np.all(np.isin(ls, merged[1::2]))


# -- errors ----------------------------------------------------------------------------------------
def test_unknown_format(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello world\nthis is not a recording\n")
    with pytest.raises(RecordingError, match=r"notes\.txt: unknown recording format"):
        load_recording(p)
    with pytest.raises(RecordingError, match="no such file"):
        load_recording(tmp_path / "missing.ffrec")


def test_profile_that_does_not_fit() -> None:
    with pytest.raises(RecordingError, match=r"'pedar-99' has 99 sensors .* has 16"):
        load_recording(MOTICON, profile="pedar-99")
    with pytest.raises(RecordingError, match="unknown hardware profile 'nope'"):
        load_recording(MOTICON, profile="nope")


def _csv(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "rec.csv"
    p.write_text("time,left_1,left_2,left_3,left_4,right_1,right_2,right_3,right_4\n" + body)
    return p


def test_plain_csv(tmp_path: Path) -> None:
    p = _csv(tmp_path, "0.000,1,2,3,4,5,6,7,8\n0.002,1,2,3,4,,,,\n0.004,1,2,3,4,5,6,7,8\n")
    with pytest.raises(RecordingError, match="needs --profile"):
        load_recording(p)
    rec = load_recording(p, profile="diy-mcp3008-fsr4")
    assert rec.left.n_samples == 3 and rec.right.n_samples == 2  # blank = right not sampled then
    with pytest.raises(RecordingError, match=r"has 4 left sensors but profile 'diy-esp32-fsr8' has 8"):
        load_recording(p, profile="diy-esp32-fsr8")


def test_non_numeric_cell_names_line_and_column(tmp_path: Path) -> None:
    p = _csv(tmp_path, "0.000,1,2,3,4,5,6,7,8\n0.002,1,2,x3,4,5,6,7,8\n")
    with pytest.raises(RecordingError, match=r"rec\.csv:3: column 4: 'x3' is not a number"):
        load_recording(p, profile="diy-mcp3008-fsr4")


def test_time_going_backwards(tmp_path: Path) -> None:
    p = _csv(tmp_path, "0.000,1,2,3,4,5,6,7,8\n0.004,1,2,3,4,5,6,7,8\n0.002,1,2,3,4,5,6,7,8\n")
    with pytest.raises(RecordingError, match=r"rec\.csv: left: time goes backwards .* at sample 2"):
        load_recording(p, profile="diy-mcp3008-fsr4")


def test_moticon_bad_cell(tmp_path: Path) -> None:
    lines = gzip.decompress(MOTICON.read_bytes()).decode().splitlines(keepends=True)
    cells = lines[20].split("\t")
    cells[5] = "oops"
    lines[20] = "\t".join(cells)
    p = tmp_path / "bad.txt"
    p.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(RecordingError, match=r"bad\.txt:21: column 6: 'oops' is not a number"):
        load_recording(p)


# -- native format ---------------------------------------------------------------------------------
def _rec() -> Recording:
    rng = np.random.default_rng(1)
    t = np.arange(500) / 100.0
    return Recording(
        profile="moticon-opengo",
        left=FootStream(t, rng.random((500, 16)) * 40),
        right=FootStream(t[:-3] + 0.005, rng.random((497, 16)) * 40),
        body_mass_kg=70.5,
        notes="ünïcode notes",
        source="test",
        segments=[Segment("Walking", 1.0, 3.0)],
        reference={
            "left_total_force_n": rng.random(500),
            "left_initial_contact_s": np.array([1.0, 2.1]),
            "right_toe_off_s": np.array([]),  # e.g. no vendor event in this slice
        },
        start_time=1_700_000_000.25,
        meta={"insole_size": "7"},
    )


def test_native_roundtrip(tmp_path: Path) -> None:
    rec = _rec()
    p = tmp_path / "run.ffrec"
    save_recording(rec, p)
    back = load_recording(p)
    assert detect_format(p) == "native"
    for side in ("left", "right"):
        a, b = getattr(rec, side), getattr(back, side)
        assert np.array_equal(a.t, b.t) and np.array_equal(a.raw, b.raw)
    for k, v in rec.reference.items():
        assert np.array_equal(back.reference[k], v)
    assert (back.body_mass_kg, back.notes, back.start_time, back.meta) == (
        70.5,
        "ünïcode notes",
        1_700_000_000.25,
        {"insole_size": "7"},
    )
    assert back.segments == rec.segments
    # a real recording survives the roundtrip too
    real = load_recording(MOTICON)
    save_recording(real, tmp_path / "m.ffrec")
    again = load_recording(tmp_path / "m.ffrec")
    assert np.array_equal(again.right.raw, real.right.raw)
    assert np.array_equal(again.reference["right_toe_off_s"], real.reference["right_toe_off_s"])


def test_writer_appends_and_survives_torn_tail(tmp_path: Path) -> None:
    p = tmp_path / "live.ffrec"
    rec = _rec()
    with RecordingWriter(p, "moticon-opengo", 16, body_mass_kg=70.0, notes="run") as w:
        for i in range(0, 500, 100):
            w.append("left", rec.left.t[i : i + 100], rec.left.raw[i : i + 100])
            w.append("right", rec.right.t[i : i + 100], rec.right.raw[i : i + 100])
            w.flush()
    full = load_recording(p)
    assert np.array_equal(full.left.raw, rec.left.raw) and full.body_mass_kg == 70.0
    data = p.read_bytes()
    # cut inside the last chunk (the right foot's last 97 rows): everything before it loads, with a warning
    torn = tmp_path / "torn.ffrec"
    torn.write_bytes(data[:-100])
    with pytest.warns(RecordingWarning, match="torn last chunk"):
        back = load_recording(torn)
    assert back.left.n_samples == 500 and back.right.n_samples == 400
    # a flipped byte in the last chunk: same, dropped with a warning
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF
    torn.write_bytes(bytes(flipped))
    with pytest.warns(RecordingWarning, match="checksum"):
        assert load_recording(torn).right.n_samples == 400
    # corruption before the last chunk is not a crash artefact: a clear error with the byte offset
    middle = bytearray(data)
    middle[len(data) // 2] ^= 0xFF
    torn.write_bytes(bytes(middle))
    with pytest.raises(RecordingError, match=r"byte \d+: chunk checksum mismatch"):
        load_recording(torn)


def test_writer_rejects_bad_input_without_losing_data(tmp_path: Path) -> None:
    p = tmp_path / "w.ffrec"
    w = RecordingWriter(p, "diy-mcp3008-fsr4", 4)
    w.append("left", np.array([0.0, 0.002]), np.ones((2, 4)))
    with pytest.raises(RecordingError, match="time goes backwards"):
        w.append("left", np.array([0.001]), np.ones((1, 4)))
    with pytest.raises(RecordingError, match=r"expected raw of shape \(1, 4\)"):
        w.append("left", np.array([0.004]), np.ones((1, 5)))
    with pytest.raises(RecordingError, match="sensor 2 is not a finite number"):
        w.append("right", np.array([0.004]), np.array([[1, np.nan, 1, 1]]))
    w.append("left", np.array([0.004]), np.ones((1, 4)))
    w.close()
    rec = load_recording(p)
    assert list(rec.left.t) == [0.0, 0.002, 0.004] and rec.right is None
    with pytest.raises(RecordingError, match="refusing to overwrite"):
        RecordingWriter(p, "diy-mcp3008-fsr4", 4)
    assert load_recording(p).left.n_samples == 3


def test_writer_survives_a_killed_process(tmp_path: Path) -> None:
    """A real crash: the writing process dies (os._exit, no close) after two flushes and a pending append."""
    p = tmp_path / "crash.ffrec"
    code = f"""
import os, numpy as np
from edge_agent.recordings import RecordingWriter
w = RecordingWriter({str(p)!r}, "diy-mcp3008-fsr4", 4)
for k in range(2):
    t = np.arange(k * 100, (k + 1) * 100) / 500.0
    w.append("left", t, np.full((100, 4), k + 1.0))
    w.flush()
w.append("left", np.arange(200, 250) / 500.0, np.ones((50, 4)))  # buffered, never flushed
os._exit(9)
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=60)
    assert r.returncode == 9
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean cut between chunks: no warning needed
        rec = load_recording(p)
    assert rec.left.n_samples == 200 and rec.left.raw[150, 0] == 2.0


# -- the shared real recordings ------------------------------------------------------------------
def test_every_shared_recording_loads(shared_data: Path) -> None:
    files = [
        *sorted((shared_data / "moticon-opengo").glob("*.txt")),
        *sorted((shared_data / "plantar-activity-moticon").glob("S0*/Sequence_*/insoles.csv.gz")),
        *sorted((shared_data / "physionet-gaitpdb").glob("Ga*.txt")),
        *sorted((shared_data / "fukuchi-rbds").glob("*forces.txt")),
    ]
    assert len(files) >= 10
    for f in files:
        rec = load_recording(f)
        assert rec.duration_s > 4, f
        assert rec.left is not None and rec.right is not None, f
        assert abs(rec.sample_rate_hz - load_profile(rec.profile).sample_rate_hz) < 1, f


def test_plantar_activity_segments(shared_data: Path) -> None:
    rec = load_recording(shared_data / "plantar-activity-moticon" / "S04" / "Sequence_01")
    labels = {s.label for s in rec.segments}
    assert {"Walking", "Walking on tiptoes", "Standing upright without moving", "Jogging"} <= labels
    walk = rec.segment("walking")[0]
    part = rec.slice(walk.t_start, walk.t_end)
    assert part.left.t[0] >= walk.t_start and part.left.t[-1] < walk.t_end
    assert part.reference["left_cop_x"].shape == part.left.t.shape


def test_slice_keeps_reference_aligned() -> None:
    rec = load_recording(FUKUCHI)
    part = rec.slice(1.0, 3.0)
    assert part.left.t[0] >= 1.0 and part.left.t[-1] < 3.0
    assert part.reference["plate_fy_n"].shape == part.left.t.shape  # per-sample, no side prefix
    assert np.all((part.reference["left_contact_start_s"] >= 1.0) & (part.reference["left_contact_start_s"] < 3.0))
    m = load_recording(MOTICON).slice(3.5, 6.0)
    assert m.reference["right_cop_x"].shape == m.right.t.shape
    assert list(m.reference["left_initial_contact_s"]) == pytest.approx([4.52, 5.82], abs=0.006)


def test_c3d_markers_name_the_foot_on_the_plate(shared_data: Path, tmp_path: Path) -> None:
    from edge_agent.recordings.c3d import read_c3d_points

    c3d = shared_data / "fukuchi-rbds" / "RBDS008runT35.c3d"
    pts = read_c3d_points(c3d)
    assert pts.rate_hz == 150.0 and pts.xyz.shape == (4500, 33, 3)
    assert {"L.Heel.Bottom", "R.Heel.Bottom", "L.MT1", "R.MT5"} <= set(pts.labels)
    heel = pts.marker("R.Heel.Bottom")
    assert 0 < np.nanmin(heel[:, 1]) < 60  # Y is up: the heel marker touches down ~2 cm above the belt
    rec = load_recording(shared_data / "fukuchi-rbds" / "RBDS008runT35forces.txt")
    assert rec.meta["side_assignment"].startswith("from the trial's markers")
    assert rec.meta["marker_copz_side_agreement"] == 1.0
    # a damaged C3D is an error of its own, and the importer falls back to the COPz rule
    cut = tmp_path / "RBDS008runT35.c3d"
    cut.write_bytes(c3d.read_bytes()[:100_000])
    with pytest.raises(RecordingError, match="truncated C3D"):
        read_c3d_points(cut)
    (tmp_path / "RBDS008runT35forces.txt").write_bytes(
        (shared_data / "fukuchi-rbds" / "RBDS008runT35forces.txt").read_bytes()
    )
    fallback = load_recording(tmp_path / "RBDS008runT35forces.txt")
    assert "confirmed by the plate COPz" in fallback.meta["side_assignment"]
    assert np.array_equal(fallback.reference["left_contact_start_s"], rec.reference["left_contact_start_s"])


def test_c3d_analog_force_is_the_forces_file_and_a_trial_of_its_own(shared_data: Path, tmp_path: Path) -> None:
    """The .c3d's analog plate force (−1000 × F1Z) equals forces.txt's Fy wherever that file is not zeroed; the
    .c3d loads as a recording (sides from its markers, mass and labels from RBDSinfo.txt), and gives S1's
    3.5 m/s trial, which has no forces.txt."""
    from edge_agent.recordings.c3d import read_c3d_analog

    fk = shared_data / "fukuchi-rbds"
    an = read_c3d_analog(fk / "RBDS008runT35.c3d")
    assert an.rate_hz == 300.0 and an.labels[:3] == ["F1X", "F1Y", "F1Z"]
    fy_c3d = -1000.0 * an.channel("F1Z")
    txt = load_recording(fk / "RBDS008runT35forces.txt").reference["plate_fy_n"]
    kept = txt != 0.0
    assert fy_c3d.shape == txt.shape and kept.sum() > 6000
    assert np.max(np.abs(fy_c3d[kept] - txt[kept])) < 0.006
    s8 = load_recording(fk / "RBDS008runT35.c3d")
    assert s8.profile == "force-plate-300" and s8.body_mass_kg == 69.0 and s8.meta["contacts"] == 81
    assert s8.meta["side_assignment"].startswith("from the trial's markers")
    s1 = load_recording(fk / "RBDS001runT35.c3d")
    assert (s1.meta["subject"], s1.meta["speed_m_s"], s1.body_mass_kg) == (1, 3.5, 62.0)
    assert s1.meta["strike_label"]["right"] == "Forefoot" and s1.meta["contacts"] > 80
    with pytest.raises(RecordingError, match="no analog channel 'F9Z'"):
        an.channel("F9Z")
    broken = tmp_path / "RBDS008runT35.c3d"
    broken.write_bytes((fk / "RBDS008runT35.c3d").read_bytes()[:100_000])
    with pytest.raises(RecordingError, match=r"RBDS008runT35\.c3d"):
        load_recording(broken)


def test_failed_save_leaves_the_existing_file_intact(tmp_path: Path) -> None:
    p = tmp_path / "keep.ffrec"
    good = _rec()
    save_recording(good, p)
    before = p.read_bytes()
    bad = _rec()
    bad.left.raw[10, 3] = np.nan
    with pytest.raises(RecordingError, match=r"keep\.ffrec: left: sensor 4 is not a finite number at sample 10"):
        save_recording(bad, p)
    bad = _rec()
    bad.meta["when"] = object()  # not JSON-serialisable
    with pytest.raises(RecordingError, match="not JSON-serialisable"):
        save_recording(bad, p)
    assert p.read_bytes() == before and not list(tmp_path.glob("*.tmp"))
