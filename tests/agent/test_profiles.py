"""Every bundled hardware profile validates; broken profiles fail with file, field and value named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from edge_agent.profiles import ProfileError, list_profiles, load_profile, load_profile_file, profiles_dir

EXPECTED = {
    "moticon-opengo": 16,
    "pedar-99": 99,
    "ultraflex-8": 8,
    "single-zone-force": 1,
    "force-plate-300": 1,
    "diy-esp32-fsr8": 8,
    "diy-esp32-fsr8-ble": 8,
    "diy-mcp3008-fsr4": 4,
}


@pytest.mark.parametrize("name", list_profiles())
def test_bundled_profile_validates(name: str) -> None:
    p = load_profile(name)
    assert p.name == name
    assert p.source, f"{name}: every profile says where its geometry comes from"
    assert np.all(p.linear_gain() > 0) if p.calibration.type == "linear" and p.raw_unit != "counts" else True


def test_expected_profiles_present_with_sensor_counts() -> None:
    names = set(list_profiles())
    for name, n in EXPECTED.items():
        assert name in names
        assert load_profile(name).n_sensors == n
    grid = load_profile("grid-60x21")
    assert 900 <= grid.n_sensors <= 1100  # ~1000 sensels at 5.08 mm pitch


def test_moticon_geometry_is_anatomical() -> None:
    """The fitted cells: 1–2 at the heel, 9–13 metatarsal heads ahead of midfoot, 15–16 at the toes;
    the metatarsal row steps back from medial (1st MT head) to lateral (5th)."""
    p = load_profile("moticon-opengo")
    x, y = p.sensor_x(), p.sensor_y()
    assert x[0] < 0.15 and x[1] < 0.15
    assert all(0.6 < x[i] < 0.8 for i in range(8, 13))
    assert x[14] > 0.85 and x[15] > 0.8
    mt = range(8, 13)
    assert list(np.argsort(y[list(mt)])) == [0, 1, 2, 3, 4]  # cell 9 most medial … 13 most lateral
    assert x[8] > x[12]  # 1st MT head further forward than the 5th
    assert p.region_index()[0] == 0 and p.region_index()[15] == 3


def test_pedar_regions_follow_numbering() -> None:
    p = load_profile("pedar-99")
    regions = [s.region for s in p.sensors]
    assert regions[:26] == ["heel"] * 26
    assert regions[26:54] == ["midfoot"] * 28
    assert regions[54:82] == ["forefoot"] * 28
    assert regions[82:] == ["toes"] * 17
    assert np.all(np.diff(p.sensor_x()) >= 0)


def test_ultraflex_positions_from_physionet() -> None:
    p = load_profile("ultraflex-8")
    x, y = p.sensor_x(), p.sensor_y()
    assert x[0] == 0.0 and x[7] == 1.0  # L1 heel (-800), L8 toe (+800)
    assert y[2] < y[1]  # L3 (X = -300, nearer the midline) is medial of L2 (X = -700)


def test_transports() -> None:
    assert load_profile("diy-esp32-fsr8").transport.type == "serial"
    assert load_profile("diy-esp32-fsr8-ble").transport.type == "ble"
    adc = load_profile("diy-mcp3008-fsr4").transport
    assert adc.type == "adc" and adc.chip == "mcp3008" and len(adc.channels) == 4
    fr = load_profile("diy-esp32-fsr8").transport.frame
    assert fr.sync_bytes == b"\xa5\x5a" and fr.side_byte and fr.checksum == "xor8"


def _copy(tmp_path: Path, name: str, edit: Callable[[dict], object]) -> Path:
    data = yaml.safe_load((profiles_dir() / f"{name}.yaml").read_text(encoding="utf-8"))
    edit(data)
    out = tmp_path / f"{data.get('name', name)}.yaml"
    out.write_text(yaml.safe_dump(data), encoding="utf-8")
    return out


def test_wrong_type_names_file_field_value(tmp_path: Path) -> None:
    path = _copy(tmp_path, "diy-mcp3008-fsr4", lambda d: d.__setitem__("sample_rate_hz", "fast"))
    with pytest.raises(ProfileError) as e:
        load_profile_file(path)
    msg = str(e.value)
    assert str(path) in msg and "sample_rate_hz" in msg and "'fast'" in msg


def test_unknown_field_rejected(tmp_path: Path) -> None:
    path = _copy(tmp_path, "diy-mcp3008-fsr4", lambda d: d.__setitem__("colour", "blue"))
    with pytest.raises(ProfileError, match=r"colour.*not permitted") as e:
        load_profile_file(path)
    assert "blue" not in str(e.value)  # an unknown key may be a misspelt secret: its value is never echoed


def test_bad_region_rejected(tmp_path: Path) -> None:
    path = _copy(tmp_path, "diy-mcp3008-fsr4", lambda d: d["sensors"][2].__setitem__("region", "ankle"))
    with pytest.raises(ProfileError) as e:
        load_profile_file(path)
    assert "sensors.2.region" in str(e.value) and "'ankle'" in str(e.value)


def test_sensor_type_is_required_and_checked(tmp_path: Path) -> None:
    """What the cells measure decides the contact rules: a profile must say it, with a known value."""
    path = _copy(tmp_path, "diy-mcp3008-fsr4", lambda d: d.pop("sensor_type"))
    with pytest.raises(ProfileError) as e:
        load_profile_file(path)
    assert str(path) in str(e.value) and "sensor_type" in str(e.value) and "required" in str(e.value).lower()
    path = _copy(tmp_path, "diy-mcp3008-fsr4", lambda d: d.__setitem__("sensor_type", "piezo"))
    with pytest.raises(ProfileError) as e:
        load_profile_file(path)
    msg = str(e.value)
    assert "sensor_type" in msg and "'piezo'" in msg and "capacitive" in msg


def test_bundled_sensor_types() -> None:
    types = {name: load_profile(name).sensor_type for name in list_profiles()}
    assert types["single-zone-force"] == types["force-plate-300"] == "force"
    assert types["moticon-opengo"] == types["pedar-99"] == "capacitive"
    assert {types[n] for n in ("diy-esp32-fsr8", "diy-esp32-fsr8-ble", "diy-mcp3008-fsr4")} == {"fsr"}
    assert types["grid-60x21"] == types["ultraflex-8"] == "resistive"


def test_name_must_match_file(tmp_path: Path) -> None:
    src = yaml.safe_load((profiles_dir() / "diy-mcp3008-fsr4.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "my-insole.yaml"
    path.write_text(yaml.safe_dump(src), encoding="utf-8")
    with pytest.raises(ProfileError, match=r"my-insole.*'name'.*diy-mcp3008-fsr4"):
        load_profile_file(path)


def test_bad_yaml_names_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nsensors: [\n  - x: 1\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"broken\.yaml:\d+:\d+: not valid YAML"):
        load_profile_file(path)


def test_adc_channel_count_must_match(tmp_path: Path) -> None:
    path = _copy(tmp_path, "diy-mcp3008-fsr4", lambda d: d["transport"].__setitem__("channels", [0, 1]))
    with pytest.raises(ProfileError, match="2 channels for 4 sensors"):
        load_profile_file(path)


def test_generated_profiles_match_their_generator() -> None:
    """The committed YAML is exactly what the generator writes (so nobody hand-edits it out of sync)."""
    from edge_agent.recordings.profile_gen import all_profiles, render

    for prof in all_profiles():
        path = profiles_dir() / f"{prof['name']}.yaml"
        assert path.read_text(encoding="utf-8") == render(prof), (
            f"{path}: run python -m edge_agent.recordings.profile_gen"
        )


def test_moticon_fit_reproduces_the_vendor(shared_data: Path) -> None:
    """Refit from the real exports: residuals tiny, left = right (mirrored frame), same as the committed YAML."""
    from edge_agent.recordings.moticon_fit import fit, profile_dict

    res = fit(shared_data)
    for s in res["sessions"]:
        assert s["force_err_pct_mean"] < 0.2, s["session"]
    for side in ("left", "right"):
        assert res["sides"][side]["cop_x_err_mean"] * 270 < 0.5  # mm
        assert res["sides"][side]["cop_y_err_mean"] < 1e-3
    assert np.abs(res["sides"]["left"]["x"] - res["sides"]["right"]["x"]).max() < 0.005
    committed = load_profile("moticon-opengo")
    fitted = profile_dict(res)["sensors"]
    for a, b in zip(committed.sensors, fitted, strict=True):
        assert (a.x, a.y, a.region) == pytest.approx((b["x"], b["y"], b["region"]), abs=1e-3)
        assert a.area_cm2 == pytest.approx(b["area_cm2"], rel=1e-3)
