"""Home Assistant integration tests (run in .venv-ha; see tests/ha/conftest.py)."""
