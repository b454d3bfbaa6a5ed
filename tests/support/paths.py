"""Where things are, for every test and benchmark."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Small excerpts of real recordings kept in the repository (see tests/data/README.md).
DATA = REPO / "tests" / "data"
#: The real recordings of ../shared/data (present in CI and in sessions, not in a user's clone).
SHARED_DATA = Path(os.environ.get("FOOTFALL_SHARED_DATA", REPO.parent / "shared" / "data"))
