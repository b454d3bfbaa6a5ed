"""Form trends per run / day / week, personal baselines, week-over-week change and training load.

Everything is computed from the ``runs`` table with SQL aggregates over indexed columns (a year of runs is a
few hundred rows), so a trend query stays in the low milliseconds. Definitions (docs/design.md §4):

- Runs combine into a point (a run, day, week, or a coach's team) as :data:`edge_agent.common.measures.COMBINE`
  defines, in SQL: per-step measures (VALR, VILR, contact time, strike index) weighted by their step counts,
  cadence by run duration. ``valr_p90`` per period is the step-weighted mean of the runs' p90 — an
  approximation (an exact pooled percentile needs every step), stated in the API output.
- Baseline: the runner's own runs in the 28 days before the reference time (the end of the latest run in
  the query range) — mean, SD and a time-aware EWMA (λ = 2/(28+1) per day, Williams 2017). Fewer than
  ``MIN_BASELINE_RUNS`` runs → ``status: "no_baseline"`` and no numbers: we say so instead of guessing.
- Training load: running minutes per day; acute 7-day and chronic 28-day EWMA with λ = 2/(N+1)
  (Williams et al. 2017, BJSM 51:209), both seeded with the mean daily load of the first 28 days.
  ACWR = acute/chronic is shown as context only: the ≥ 1.5 "danger zone" comes from team sports
  (Gabbett 2016, BJSM 50:273) and its validity is disputed (Impellizzeri et al. 2020, IJSPP 15:907).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

from plugin.store import run_filters
from plugin.store.base import Runners
from plugin.store.measures_sql import combine_sql

DAY = 86400.0
BASELINE_DAYS = 28
MIN_BASELINE_RUNS = 3
ACUTE_DAYS = 7
CHRONIC_DAYS = 28

Period = Literal["run", "day", "week"]

#: Run-level measures that get a baseline (column or SQL expression over the runs table).
BASELINE_MEASURES: dict[str, str] = {
    "valr_mean": "valr_mean",
    "valr_p90": "valr_p90",
    "vilr_mean": "vilr_mean",
    "cadence_spm": "cadence_spm",
    "contact_ms": "contact_ms",
    "strike_index_left": "si_left",
    "strike_index_right": "si_right",
    "forefoot_share_pct": "100.0 * forefoot / NULLIF(rearfoot + midfoot + forefoot, 0)",
    "asymmetry_contact_pct": "asym_contact_pct",
    "asymmetry_valr_pct": "asym_valr_pct",
}


def _bucket(store: Any, period: str) -> str:
    """Day number (days since 1970-01-01 UTC) of a run's start, or of the Monday starting its ISO week (day 0 was
    a Thursday, so Monday is the day whose (day + 3) mod 7 is 0)."""
    day = store.db.dialect.day("started_at")
    return day if period == "day" else f"({day} - ({day} + 3) % 7)"


#: Trend points' names for the pooled columns (edge_agent.common.measures.COMBINE defines how each combines).
_POINT_NAMES = {
    "si_left": "strike_index_left", "si_right": "strike_index_right", "asym_contact_pct": "asymmetry_contact_pct",
    "asym_valr_pct": "asymmetry_valr_pct", "asym_si_pct": "asymmetry_si_pct",
}  # fmt: skip
_AGG = (
    "COUNT(*) AS runs, SUM(duration_s) AS duration_s, "
    + combine_sql(
        "runs",
        columns=(
            "steps",
            "cadence_spm",
            "valr_mean",
            "valr_p90",
            "valr_max",
            "vilr_mean",
            "contact_ms",
            "si_left",
            "si_right",
            "rearfoot",
            "midfoot",
            "forefoot",
            "asym_contact_pct",
            "asym_valr_pct",
            "asym_si_pct",
        ),
        rename=_POINT_NAMES,
    )
    + ", MIN(started_at) AS first_start, MAX(ended_at) AS last_end"
)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _point(row: dict[str, Any], t: str) -> dict[str, Any]:
    zones = {k: int(row.pop(k) or 0) for k in ("rearfoot", "midfoot", "forefoot")}
    total = sum(zones.values())
    row.pop("first_start", None)
    row.pop("last_end", None)
    row["t"] = t
    row["zones"] = zones
    row["zone_share_pct"] = {k: (100.0 * v / total if total else None) for k, v in zones.items()}
    row["forefoot_share_pct"] = row["zone_share_pct"]["forefoot"]
    row["steps"] = int(row["steps"] or 0)
    row["load_min"] = (row["duration_s"] or 0.0) / 60.0
    return row


def trend_points(
    store: Any,
    period: Period = "week",
    *,
    since: float | None = None,
    until: float | None = None,
    runner: str | None = None,
    device_id: str | None = None,
    runners: Runners = None,
) -> list[dict[str, Any]]:
    """One point per run, UTC day or ISO week (Monday), oldest first (``runners``: only these runners, pooled)."""
    where, args = run_filters(device_id, runner, since, until, "started_at", runners)
    if period == "run":
        sql = (
            f"SELECT run_id, device_id, runner, started_at, {_AGG} FROM runs{where} GROUP BY run_id "
            "ORDER BY started_at, run_id"
        )
        points = []
        for d in store._rows(sql, args):
            points.append(_point(d, _iso(d.pop("started_at"))))
        return points
    if period not in ("day", "week"):
        raise ValueError(f"period must be 'run', 'day' or 'week', not {period!r}")
    sql = f"SELECT {_bucket(store, period)} AS bucket, {_AGG} FROM runs{where} GROUP BY bucket ORDER BY bucket"
    return [_point(d, _iso(int(d.pop("bucket")) * DAY)) for d in store._rows(sql, args)]


def baseline(
    store: Any,
    *,
    ref: float,
    runner: str | None = None,
    device_id: str | None = None,
    days: float = BASELINE_DAYS,
    min_runs: int = MIN_BASELINE_RUNS,
    exclude_run: str | None = None,
    runners: Runners = None,
) -> dict[str, Any]:
    """Personal baseline from the runs ending in the ``days`` before ``ref`` (``exclude_run`` left out)."""
    where, args = run_filters(device_id, runner, ref - days * DAY, None, "started_at", runners)
    where += " AND ended_at <= ?" if where else " WHERE ended_at <= ?"
    args.append(ref)
    if exclude_run is not None:
        where += " AND run_id != ?"
        args.append(exclude_run)
    cols = ", ".join(f"{expr} AS {name}" for name, expr in BASELINE_MEASURES.items())
    sql = f"SELECT started_at, {cols} FROM runs{where} ORDER BY started_at, run_id"
    rows = store._rows(sql, args)
    out: dict[str, Any] = {
        "window_days": days,
        "from": _iso(ref - days * DAY),
        "to": _iso(ref),
        "runs": len(rows),
        "min_runs": min_runs,
    }
    if len(rows) < min_runs:
        out["status"] = "no_baseline"
        out["message"] = (
            f"No baseline yet: {len(rows)} run(s) in the last {days:g} days, {min_runs} needed. "
            "Keep running as usual; comparisons start once there is enough history."
        )
        out["measures"] = {}
        return out
    lam = 2.0 / (days + 1.0)
    measures: dict[str, Any] = {}
    for name in BASELINE_MEASURES:
        vals = [(r["started_at"], r[name]) for r in rows if r[name] is not None]
        if len(vals) < min_runs:
            measures[name] = None
            continue
        xs = [v for _, v in vals]
        mean = sum(xs) / len(xs)
        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
        ewma = xs[0]
        prev_t = vals[0][0]
        for t, x in vals[1:]:
            # Time-aware EWMA: λ per day compounded over the gap since the previous run.
            alpha = 1.0 - (1.0 - lam) ** max((t - prev_t) / DAY, 0.0)
            ewma += alpha * (x - ewma)
            prev_t = t
        measures[name] = {"mean": mean, "sd": sd, "ewma": ewma, "n": len(xs), "min": min(xs), "max": max(xs)}
    out["status"] = "ok"
    out["measures"] = measures
    return out


def period_summary(
    store: Any,
    *,
    since: float,
    until: float,
    runner: str | None = None,
    device_id: str | None = None,
    runners: Runners = None,
) -> dict[str, Any]:
    """The pooled measures of the runs starting in [since, until) (one trend point, ``t`` = since)."""
    where, args = run_filters(device_id, runner, since, until, "started_at", runners)
    row = store._rows(f"SELECT {_AGG} FROM runs{where}", args)[0]
    return _point(row, _iso(since))


#: Week-over-week measures that are totals: a week in progress is compared with last week up to the same moment.
_WOW_TOTALS = ("runs", "steps", "load_min")


def week_start(t: float) -> float:
    """Unix time of the Monday 00:00 UTC starting the week holding ``t`` (the weeks of the trend charts)."""
    day = int(t // DAY)
    return (day - (day + 3) % 7) * DAY


def week_over_week(
    store: Any, *, ref: float, runner: str | None = None, device_id: str | None = None, runners: Runners = None
) -> dict[str, Any]:
    """This week (Monday 00:00 UTC up to ``ref``, the weeks the charts use) against last week (Monday to Monday).

    Averages compare with the whole of last week; totals (runs, steps, minutes) with last week up to the same
    weekday and time (``last_week_to_date``), so a week in progress does not look like a collapse."""
    monday = week_start(ref)
    who = {"runner": runner, "device_id": device_id, "runners": runners}
    this = period_summary(store, since=monday, until=ref + 1.0, **who)
    last = period_summary(store, since=monday - 7 * DAY, until=monday, **who)
    last_to_date = period_summary(store, since=monday - 7 * DAY, until=ref + 1.0 - 7 * DAY, **who)
    keys = ("runs", "steps", "load_min", "cadence_spm", "valr_mean", "valr_p90", "contact_ms",
            "forefoot_share_pct", "asymmetry_contact_pct")  # fmt: skip
    changes: dict[str, Any] = {}
    for key in keys:
        a, b = this.get(key), last.get(key)
        ref_value = last_to_date.get(key) if key in _WOW_TOTALS else b
        pct = None
        if a is not None and ref_value not in (None, 0):
            pct = 100.0 * (a - ref_value) / abs(ref_value)
        entry = {"this_week": a, "last_week": b, "change_pct": pct}
        if key in _WOW_TOTALS:
            entry["last_week_to_date"] = ref_value
        changes[key] = entry
    return {"this_week_from": _iso(monday), "last_week_from": _iso(monday - 7 * DAY), "to": _iso(ref),
            "measures": changes}  # fmt: skip


def training_load(
    store: Any,
    *,
    ref: float,
    runner: str | None = None,
    device_id: str | None = None,
    since: float | None = None,
    with_series: bool = True,
    runners: Runners = None,
) -> dict[str, Any]:
    """Daily running minutes with acute (7 d) / chronic (28 d) EWMA and their ratio, up to ``ref``'s day."""
    where, args = run_filters(device_id, runner, None, ref, "started_at", runners)
    day = _bucket(store, "day")
    rows = [
        (r["day"], r["load"])
        for r in store._rows(
            f"SELECT {day} AS day, SUM(duration_s) / 60.0 AS load FROM runs{where} GROUP BY {day} ORDER BY day", args
        )
    ]
    la, lc = 2.0 / (ACUTE_DAYS + 1), 2.0 / (CHRONIC_DAYS + 1)
    out: dict[str, Any] = {
        "unit": "min",
        "metric": "running minutes per day",
        "acute_days": ACUTE_DAYS,
        "chronic_days": CHRONIC_DAYS,
        "lambda_acute": la,
        "lambda_chronic": lc,
        "note": (
            "ACWR is context, not a diagnosis: the 1.5 threshold comes from team sports (Gabbett 2016) "
            "and is disputed (Impellizzeri 2020)."
        ),
    }
    if not rows:
        out.update(status="no_data", acute=None, chronic=None, acwr=None, series=[])
        return out
    loads = {int(r[0]): float(r[1]) for r in rows}
    first, last = min(loads), int((ref - 1e-3) // DAY)  # the day holding the last instant before ref
    span = last - first + 1
    if span < CHRONIC_DAYS:
        out.update(
            status="no_baseline",
            message=f"Training load needs {CHRONIC_DAYS} days of history; have {span}.",
            acute=None, chronic=None, acwr=None, series=[],
        )  # fmt: skip
        return out
    seed = sum(loads.get(d, 0.0) for d in range(first, first + CHRONIC_DAYS)) / CHRONIC_DAYS
    acute = chronic = seed
    series = []
    since_day = int(since // DAY) if since is not None else first
    for d in range(first, last + 1):
        load = loads.get(d, 0.0)
        acute = la * load + (1 - la) * acute
        chronic = lc * load + (1 - lc) * chronic
        if with_series and d >= since_day:
            series.append({
                "t": _iso(d * DAY), "load": load, "acute": acute, "chronic": chronic,
                "acwr": acute / chronic if chronic > 0 else None,
            })  # fmt: skip
    out.update(status="ok", acute=acute, chronic=chronic, acwr=acute / chronic if chronic > 0 else None, series=series)
    return out


def latest_end(
    store: Any,
    *,
    runner: str | None = None,
    device_id: str | None = None,
    until: float | None = None,
    runners: Runners = None,
) -> float | None:
    where, args = run_filters(device_id, runner, None, until, "started_at", runners)
    row = store._one(f"SELECT MAX(ended_at) FROM runs{where}", args)
    return None if row[0] is None else float(row[0])


def trends(
    store: Any,
    *,
    period: Period = "week",
    since: float | None = None,
    until: float | None = None,
    runner: str | None = None,
    device_id: str | None = None,
    runners: Runners = None,
) -> dict[str, Any]:
    """The dashboard's trend document: points, baseline, week-over-week and training load.

    ``since``/``until`` are Unix seconds (run start times, ``until`` exclusive). The reference time for the
    baseline, week-over-week and load is the end of the latest run in range.
    """
    if period not in ("run", "day", "week"):
        raise ValueError(f"period must be 'run', 'day' or 'week', not {period!r}")
    if since is not None and until is not None and since >= until:
        raise ValueError(f"since ({since}) must be before until ({until})")
    who: dict[str, Any] = {"runner": runner, "device_id": device_id, "runners": runners}
    points = trend_points(store, period, since=since, until=until, **who)
    ref = latest_end(store, until=until, **who)
    out: dict[str, Any] = {
        "period": period,
        "since": _iso(since) if since is not None else None,
        "until": _iso(until) if until is not None else None,
        "runner": runner,
        "device_id": device_id,
        "reference_time": _iso(ref) if ref is not None else None,
        "points": points,
        "notes": {
            "valr_p90": "step-weighted mean of per-run p90 (approximation of the pooled p90)",
            "asymmetry": "SI% = (R − L) / (0.5 (R + L)) × 100 (Herzog 1989); compare with your own baseline",
            "time": "days and weeks are UTC; weeks start on Monday",
        },
    }
    if ref is None:
        out["baseline"] = {"status": "no_baseline", "message": "No runs yet.", "measures": {}, "runs": 0}
        out["week_over_week"] = None
        out["training_load"] = {"status": "no_data", "acute": None, "chronic": None, "acwr": None, "series": []}
        return out
    # The band is the baseline the latest run is judged against: the runs before it, the latest left out.
    latest = store.list_runs(until=until, limit=1, **who)
    out["baseline"] = baseline(store, ref=ref, exclude_run=latest[0]["run_id"] if latest else None, **who)
    out["week_over_week"] = week_over_week(store, ref=ref, **who)
    out["training_load"] = training_load(store, ref=ref + 1.0, since=since, **who)
    return out
