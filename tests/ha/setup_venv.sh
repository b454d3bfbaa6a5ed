#!/usr/bin/env bash
# Build .venv-ha: Python 3.13 with pytest-homeassistant-custom-component, which pins the Home Assistant
# Core the integration's tests run against (custom_components/footfall, docs/home-assistant.md).
#   tests/ha/setup_venv.sh            # at the repository root; needs a Python 3.13 interpreter
# The interpreter: $FOOTFALL_HA_PYTHON, else python3.13 on PATH, else pyenv's 3.13.
set -euo pipefail
cd "$(dirname "$0")/../.."
HA_TEST_PIN="pytest-homeassistant-custom-component==0.13.236"  # pins homeassistant==2025.4.4
py="${FOOTFALL_HA_PYTHON:-}"
if [ -z "$py" ]; then
  for cand in python3.13 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3; do
    # a pyenv shim answers to python3.13 but may fail to run it: try each candidate
    if "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; then
      py="$("$cand" -c 'import sys; print(sys.executable)')"; break
    fi
  done
fi
if [ -z "$py" ]; then
  echo "tests/ha/setup_venv.sh: no Python 3.13 found (set FOOTFALL_HA_PYTHON)" >&2
  exit 2
fi
"$py" -m venv .venv-ha
.venv-ha/bin/pip install -q "$HA_TEST_PIN"
# A whole Home Assistant Core (tests/ha/test_real_core.py) also needs its frontend (without it, it starts in
# recovery mode): the release that this Home Assistant's frontend integration pins.
frontend="$(.venv-ha/bin/python -c 'import json, homeassistant.components.frontend as f, pathlib
print(json.loads((pathlib.Path(f.__file__).parent / "manifest.json").read_text())["requirements"][0])')"
.venv-ha/bin/pip install -q "$frontend"
.venv-ha/bin/python -c "import homeassistant.const as c; print('.venv-ha: Home Assistant', c.__version__)"
