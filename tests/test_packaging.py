"""The wheel a user installs carries everything the code reads at run time (found by the demo test:
a non-editable install once shipped without hardware profiles)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_package_list_matches_the_source_tree() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(REPO).parts)
        for top in ("edge_agent", "plugin")
        for p in (REPO / top).rglob("__init__.py")
    }
    assert on_disk | {"edge_agent.hardware_profiles"} == listed


def test_wheel_contains_profiles_migrations_and_static_assets(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("footfall-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    profiles = {p.name for p in (REPO / "hardware_profiles").glob("*.yaml")}
    assert profiles and {f"edge_agent/hardware_profiles/{n}" for n in profiles} <= names
    migrations = {p.name for p in (REPO / "plugin" / "migrations").glob("*.sql")}
    assert migrations and {f"plugin/migrations/{n}" for n in migrations} <= names
    web = REPO / "plugin" / "web"
    static = {p.relative_to(web).as_posix() for p in (web / "static").rglob("*") if p.is_file()}
    assert "static/js/main.js" in static and "static/js/pages/run.js" in static
    assert {f"plugin/web/{n}" for n in static} <= names
    assert not any(n.startswith(("tests/", "docs/", "benchmarks/")) for n in names)
