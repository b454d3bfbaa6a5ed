"""Devices, runners, the dashboard's settings and the risk engine's persisted state."""

from __future__ import annotations

import json
import time
from typing import Any

from plugin.store.backend import StoreError
from plugin.store.base import Runners, StoreBase


def _in(col: str, runners: Runners) -> tuple[str, list[Any]]:
    if runners is None:
        return "", []
    names = sorted(set(runners))
    return (f" WHERE {col} IN ({','.join('?' * len(names))})" if names else " WHERE 1 = 0"), names


class CatalogQueries(StoreBase):
    def devices(self, runners: Runners = None) -> list[dict[str, Any]]:
        """Devices; with ``runners``, only those whose latest runner is one of them."""
        where, args = _in("d.last_runner", runners)
        return self._rows(
            "SELECT d.*, (SELECT COUNT(*) FROM runs r WHERE r.device_id = d.device_id) AS runs "
            f"FROM devices d{where} ORDER BY d.device_id",
            args,
        )

    def runners(self, runners: Runners = None) -> list[dict[str, Any]]:
        where, args = _in("n.name", runners)
        return self._rows(
            f"SELECT n.*, (SELECT COUNT(*) FROM runs r WHERE r.runner = n.name) AS runs FROM runners n{where} "
            "ORDER BY n.name",
            args,
        )

    def get_setting(self, key: str, default: Any = None) -> Any:
        row = self._one("SELECT value FROM settings WHERE key = ?", (key,))
        if row is None:
            return default
        try:
            return json.loads(row[0])
        except ValueError as err:
            raise StoreError(f"{self.where}: setting {key!r} holds unreadable JSON: {err}") from None

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value (raises ValueError for NaN or non-JSON values)."""
        text = json.dumps(value, allow_nan=False)
        with self._tx() as w:
            w.execute(
                "INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, text),
            )

    def setting_default(self, key: str, value: Any) -> Any:
        """The stored value of ``key``; stores ``value`` first if there is none (atomic: concurrent callers
        all get the one value that was stored first)."""
        text = json.dumps(value, allow_nan=False)
        with self._tx() as w:
            w.execute("INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING", (key, text))
            stored = w.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()[0]
        return json.loads(stored)

    def settings(self) -> dict[str, Any]:
        return {r["key"]: json.loads(r["value"]) for r in self._rows("SELECT key, value FROM settings ORDER BY key")}

    def get_state(self, key: str) -> Any:
        row = self._one("SELECT value FROM risk_state WHERE key = ?", (key,))
        return None if row is None else json.loads(row[0])

    def set_state(self, key: str, value: Any) -> None:
        with self._tx() as w:
            w.execute(
                "INSERT INTO risk_state(key, value, updated_at) VALUES (?,?,?) ON CONFLICT(key) DO UPDATE SET "
                "value = excluded.value, updated_at = excluded.updated_at",
                (key, json.dumps(value, allow_nan=False), time.time()),
            )
