"""What every part of the store shares: the backend, the column lists, the usual run filters."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from typing import Any

from edge_agent.common.measures import MEASURE_COLUMNS
from edge_agent.contract import RunSummary, WindowSummary
from plugin.store.backend import Backend, Conn

StoredMsg = WindowSummary | RunSummary

RUN_COLS = (
    "run_id", "device_id", "runner", "started_at", "ended_at", "duration_s", "windows", *MEASURE_COLUMNS,
    "lr_basis", "profile", "complete", "updated_at",
)  # fmt: skip
WINDOW_COLS = (
    "msg_id", "run_id", "device_id", "runner", "window_index", "t_start", "t_end", "activity", *MEASURE_COLUMNS,
    "lr_basis",
)  # fmt: skip
# lr_basis: what a row's VALR may be compared with besides the same device (edge_agent.contract.loading_rate_basis).

#: Who may be seen: None = everyone (admin, home mode); otherwise the runner names a user may see.
Runners = Collection[str] | None


def run_filters(
    device_id: str | None,
    runner: str | None,
    since: float | None,
    until: float | None,
    col: str,
    runners: Runners = None,
) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause (or "") and its arguments for the usual run filters; ``col`` is the time column and
    ``runners`` limits the rows to those runner names (an empty collection matches nothing)."""
    where: list[str] = []
    args: list[Any] = []
    if device_id is not None:
        where.append("device_id = ?")
        args.append(device_id)
    if runner is not None:
        where.append("runner = ?")
        args.append(runner)
    if runners is not None:
        names = sorted(set(runners))
        if names:
            where.append(f"runner IN ({','.join('?' * len(names))})")
            args.extend(names)
        else:
            where.append("1 = 0")
    if since is not None:
        where.append(f"{col} >= ?")
        args.append(float(since))
    if until is not None:
        where.append(f"{col} < ?")
        args.append(float(until))
    return (" WHERE " + " AND ".join(where)) if where else "", args


class StoreBase:
    """The backend and the helpers every part uses."""

    db: Backend

    @property
    def where(self) -> str:
        """How this database is named in messages (a path, or a PostgreSQL URL without its password)."""
        return self.db.describe()

    @contextlib.contextmanager
    def _read(self) -> Iterator[Conn]:
        with self.db.read() as c:
            yield c

    def _tx(self) -> contextlib.AbstractContextManager[Conn]:
        return self.db.tx()

    def _rows(self, sql: str, args: Any = ()) -> list[dict[str, Any]]:
        with self._read() as c:
            return [dict(r) for r in c.execute(sql, args)]

    def _one(self, sql: str, args: Any = ()) -> Any:
        with self._read() as c:
            return c.execute(sql, args).fetchone()

    @staticmethod
    def _run_dict(r: Any) -> dict[str, Any]:
        d = dict(r)
        d["complete"] = bool(d["complete"])
        return d
