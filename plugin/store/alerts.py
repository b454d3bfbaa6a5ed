"""Alerts the risk engine raised, their acknowledgement, and what its cooldowns look up."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from edge_agent.contract import Alert
from plugin.store.base import Runners, StoreBase

log = logging.getLogger(__name__)


class AlertQueries(StoreBase):
    def insert_alert(self, alert: Alert) -> None:
        with self._tx() as w:
            w.execute(
                "INSERT INTO alerts(alert_id, rule, severity, confidence, title, message, evidence, device_id, "
                "runner, run_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    alert.alert_id, alert.rule, alert.severity, alert.confidence, alert.title, alert.message,
                    json.dumps(alert.evidence, allow_nan=False), alert.device_id, alert.runner, alert.run_id,
                    alert.created_at,
                ),
            )  # fmt: skip

    def _alert_dict(self, r: Any) -> dict[str, Any]:
        d = dict(r)
        try:
            d["evidence"] = json.loads(d["evidence"])
        except ValueError as err:
            log.error("store %s: unreadable evidence JSON in alert %s: %s", self.where, d["alert_id"], err)
            d["evidence"] = {"_unreadable": d["evidence"]}
        d["acked"] = d["acked_at"] is not None
        return d

    def list_alerts(
        self,
        *,
        since: float | None = None,
        limit: int = 100,
        include_acked: bool = True,
        runner: str | None = None,
        rule: str | None = None,
        run_id: str | None = None,
        runners: Runners = None,
    ) -> list[dict[str, Any]]:
        """Alerts newest first; ``evidence`` decoded; ``acked`` bool plus ``acked_at``/``acked_by``."""
        where: list[str] = []
        args: list[Any] = []
        if since is not None:
            where.append("created_at >= ?")
            args.append(float(since))
        if not include_acked:
            where.append("acked_at IS NULL")
        for col, val in (("runner", runner), ("rule", rule), ("run_id", run_id)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if runners is not None:
            names = sorted(set(runners))
            where.append(f"runner IN ({','.join('?' * len(names))})" if names else "1 = 0")
            args.extend(names)
        sql = "SELECT * FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at DESC, alert_id LIMIT ?"
        return [self._alert_dict(r) for r in self._rows(sql, [*args, int(limit)])]

    def get_alert(self, alert_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM alerts WHERE alert_id = ?", (alert_id,))
        return self._alert_dict(rows[0]) if rows else None

    def ack_alert(self, alert_id: str, by: str = "user", at: float | None = None) -> bool:
        """Acknowledge an alert; False if unknown or already acknowledged (the first ack is kept)."""
        with self._tx() as w:
            cur = w.execute(
                "UPDATE alerts SET acked_at = ?, acked_by = ? WHERE alert_id = ? AND acked_at IS NULL",
                (time.time() if at is None else at, by[:64], alert_id),
            )
            return cur.rowcount == 1

    def last_alert_time(self, rule: str, runner: str | None) -> float | None:
        row = self._one(
            f"SELECT MAX(created_at) FROM alerts WHERE rule = ? AND runner {self.db.dialect.is_} ?", (rule, runner)
        )
        return None if row[0] is None else float(row[0])

    def has_alert(self, rule: str, run_id: str) -> bool:
        return self._one("SELECT 1 FROM alerts WHERE rule = ? AND run_id = ? LIMIT 1", (rule, run_id)) is not None
