"""Shoes: the per-pair comparison against the runner's own baseline, mileage, and the new-pair alert.

Every number is a pooled aggregate of runs (:meth:`plugin.store.program.ProgramQueries.pooled_runs`, rendered from
:data:`edge_agent.common.measures.COMBINE`). The insoles measure no distance, so a pair's "mileage" is its running
time and step count.

- **Comparison**: a pair's runs against the runner's runs in *other* pairs (or untagged) at a similar cadence
  (± :data:`SIMILAR_CADENCE_PCT`; cadence stands in for pace, which the insoles do not measure), from 12 weeks
  before the pair's first run on. Too few matching runs → all other runs, and ``cadence_matched`` says so.
- **Alert** (rule ``shoe_change``, once per pair): over the first :data:`NEW_PAIR_RUNS` runs in a pair (from the
  second on), VALR up by :data:`VALR_JUMP_PCT` % or more, or the forefoot or midfoot + forefoot share moved by
  :data:`STRIKE_JUMP_POINTS` points or more, against the runs of the 28 days before the pair's first run.
  Abrupt changes of shoes are what injure (Ridge 2013; Salzler 2012): ease in.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from edge_agent.contract import Alert
from plugin.trends import DAY, MIN_BASELINE_RUNS

log = logging.getLogger(__name__)

SIMILAR_CADENCE_PCT = 4.0
COMPARE_DAYS = 84
NEW_PAIR_RUNS = 3
VALR_JUMP_PCT = 15.0
STRIKE_JUMP_POINTS = 15.0


def _share(row: dict[str, Any], zone: str) -> float | None:
    total = sum(int(row.get(z) or 0) for z in ("rearfoot", "midfoot", "forefoot"))
    if not total:
        return None
    if zone == "non_rearfoot":
        return 100.0 * (total - int(row.get("rearfoot") or 0)) / total
    return 100.0 * int(row.get(zone) or 0) / total


def _pct(a: float | None, b: float | None) -> float | None:
    return None if a is None or b in (None, 0) else 100.0 * (a - b) / b  # type: ignore[operator]


def _points(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def measures(row: dict[str, Any]) -> dict[str, Any]:
    """The comparison's numbers of one pooled row."""
    return {
        "runs": int(row.get("runs") or 0),
        "cadence_spm": row.get("cadence_spm"),
        "valr_mean": row.get("valr_mean"),
        "contact_ms": row.get("contact_ms"),
        "forefoot_share_pct": _share(row, "forefoot"),
        "non_rearfoot_pct": _share(row, "non_rearfoot"),
    }


def change(pair: dict[str, Any], base: dict[str, Any]) -> dict[str, float | None]:
    return {
        "cadence_pct": _pct(pair["cadence_spm"], base["cadence_spm"]),
        "valr_pct": _pct(pair["valr_mean"], base["valr_mean"]),
        "contact_pct": _pct(pair["contact_ms"], base["contact_ms"]),
        "forefoot_points": _points(pair["forefoot_share_pct"], base["forefoot_share_pct"]),
        "non_rearfoot_points": _points(pair["non_rearfoot_pct"], base["non_rearfoot_pct"]),
    }


def compare_shoes(store: Any, runner: str) -> list[dict[str, Any]]:
    """Every pair of ``runner`` with its mileage, measures, and the change against the runner's baseline."""
    out = []
    for row in store.shoes(runner):
        pair = measures(row)
        entry: dict[str, Any] = {
            "shoe_id": row["shoe_id"], "name": row["name"], "added_at": row["added_at"],
            "retired_at": row["retired_at"], "alerted_at": row["alerted_at"], "first_run": row["first_run"],
            "last_run": row["last_run"], "runs": pair["runs"], "hours": float(row["duration_s"] or 0.0) / 3600.0,
            "steps": int(row["steps"] or 0), "measures": pair, "baseline": None, "change": None,
            "cadence_matched": False,
        }  # fmt: skip
        if pair["runs"] and pair["cadence_spm"] is not None:
            window = {"since": row["first_run"] - COMPARE_DAYS * DAY}
            c = pair["cadence_spm"]
            lo, hi = c * (1 - SIMILAR_CADENCE_PCT / 100), c * (1 + SIMILAR_CADENCE_PCT / 100)
            base_row = store.pooled_runs(runner, not_shoe=row["shoe_id"], cadence_range=(lo, hi), **window)
            entry["cadence_matched"] = int(base_row["runs"] or 0) >= MIN_BASELINE_RUNS
            if not entry["cadence_matched"]:
                base_row = store.pooled_runs(runner, not_shoe=row["shoe_id"], **window)
            if int(base_row["runs"] or 0) >= MIN_BASELINE_RUNS:
                entry["baseline"] = measures(base_row)
                entry["change"] = change(pair, entry["baseline"])
        out.append(entry)
    return out


def current_shoe(store: Any, runner: str) -> dict[str, Any] | None:
    """The pair of the runner's latest tagged run."""
    rows = store.list_runs(runner=runner, limit=20)
    for r in rows:
        s = store.run_shoe(r["run_id"])
        if s is not None:
            return s  # type: ignore[no-any-return]
    return None


def new_pair_alert(store: Any, runner: str, shoe_id: str, *, device_id: str | None, run_id: str) -> Alert | None:
    """The pair's shoe-change alert, if its first runs changed loading or strike abruptly and it was not raised
    before (stored; the caller dispatches it)."""
    shoe = store.get_shoe(shoe_id)
    if shoe is None or shoe["alerted_at"] is not None:
        return None
    runs = store.shoe_runs(shoe_id, limit=NEW_PAIR_RUNS + 1)
    ids = [r["run_id"] for r in runs]
    if run_id not in ids[:NEW_PAIR_RUNS] or len(ids[:NEW_PAIR_RUNS]) < 2:
        return None
    first = ids[:NEW_PAIR_RUNS]
    first_start = runs[0]["started_at"]
    pair = measures(store.pooled_runs(runner, run_ids=first))
    base = measures(store.pooled_runs(runner, since=first_start - 28 * DAY, until=first_start, not_shoe=shoe_id))
    if base["runs"] < MIN_BASELINE_RUNS:
        return None
    d = change(pair, base)
    parts = []
    if d["valr_pct"] is not None and d["valr_pct"] >= VALR_JUMP_PCT:
        parts.append(f"VALR {d['valr_pct']:+.0f} %")
    for key, label in (("forefoot_points", "forefoot share"), ("non_rearfoot_points", "midfoot + forefoot share")):
        if d[key] is not None and abs(d[key]) >= STRIKE_JUMP_POINTS:  # type: ignore[arg-type]
            parts.append(f"{label} {d[key]:+.0f} points")
            break
    if not parts:
        return None
    ended = store.run_row(run_id)
    at = float(ended["ended_at"]) if ended else first_start
    if not store.mark_shoe_alerted(shoe_id, at):
        return None  # another worker raised it
    n = len(first)
    message = (
        f"First {n} runs in the new pair \u201c{shoe['name']}\u201d: {', '.join(parts)} against your runs of the 4 "
        f"weeks before ({base['runs']} runs): ease in. A new pair that changes how you land asks your calves, "
        "Achilles and feet for something new; abrupt changes of shoes are when injuries happen (Ridge 2013, "
        "Salzler 2012). What to try: alternate with your previous pair for 2–3 weeks, keep the runs in the new "
        "pair short and easy, and keep your cadence. Insoles read loading rate less exactly than force plates "
        "(Peebles 2018), so this compares you with yourself."
    )
    alert = Alert(
        alert_id=uuid.uuid4().hex, rule="shoe_change", severity="warning", confidence=0.6,
        title=f"New shoes \u201c{shoe['name']}\u201d: {', '.join(parts)}: ease in"[:200], message=message,
        evidence={"shoe_id": shoe_id, "shoe": shoe["name"], "runs": first, "pair": pair, "baseline": base,
                  "change": d, "thresholds": {"valr_pct": VALR_JUMP_PCT, "strike_points": STRIKE_JUMP_POINTS}},
        device_id=device_id, runner=runner, run_id=run_id, created_at=at,
    )  # fmt: skip
    store.insert_alert(alert)
    log.info("alert shoe_change for runner %r, pair %s", runner, shoe_id)
    return alert
