"""The pooled measures as SQL aggregates, rendered from :data:`edge_agent.common.measures.COMBINE` (the one
definition): a run assembled from its windows and a trend point (day, week, team) from its runs use the same
weighted means, in the database, on both backends."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from edge_agent.common.measures import COMBINE, MEASURE_COLUMNS, Combine

#: Length in seconds of one row, per table (the weight of cadence).
DURATION = {"windows": "(t_end - t_start)", "runs": "duration_s"}


def aggregate(c: Combine, duration: str) -> str:
    col = c.column
    if c.how == "sum":
        return f"SUM({col})"
    if c.how == "max":
        return f"MAX({col})"
    w = duration if c.weight == "duration" else c.weight
    return f"SUM({col} * {w}) / NULLIF(SUM(CASE WHEN {col} IS NOT NULL THEN {w} END), 0)"


def combine_exprs(table: str) -> dict[str, str]:
    """Column → its aggregate over ``table``'s rows, for every pooled column."""
    return {c.column: aggregate(c, DURATION[table]) for c in COMBINE}


def combine_sql(
    table: str, *, columns: Iterable[str] = MEASURE_COLUMNS, rename: Mapping[str, str] | None = None
) -> str:
    """``agg AS name, …`` for ``columns`` of ``table`` (``windows`` or ``runs``)."""
    wanted = set(columns)
    rename = rename or {}
    return ", ".join(
        f"{aggregate(c, DURATION[table])} AS {rename.get(c.column, c.column)}" for c in COMBINE if c.column in wanted
    )
