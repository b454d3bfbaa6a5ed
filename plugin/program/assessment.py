"""The starting assessment: the runner's last 4 weeks, pooled as every trend is (docs/program.md).

Baseline cadence, VALR, strike mix and left/right asymmetry are one :func:`plugin.trends.period_summary` point over
the 28 days before the program starts — the runs combined as :data:`edge_agent.common.measures.COMBINE` defines,
in SQL — with the per-run spread from :func:`plugin.trends.baseline` beside it.
"""

from __future__ import annotations

from typing import Any

from plugin.trends import BASELINE_DAYS, DAY, MIN_BASELINE_RUNS, baseline, period_summary


class AssessmentError(ValueError):
    """Not enough history to assess (the message says what is missing)."""


def assess(store: Any, runner: str, *, at: float) -> dict[str, Any]:
    """The assessment of ``runner`` from the runs starting in the 28 days before ``at``."""
    since = at - BASELINE_DAYS * DAY
    point = period_summary(store, since=since, until=at, runner=runner)
    if (point["runs"] or 0) < MIN_BASELINE_RUNS or point["cadence_spm"] is None or point["valr_mean"] is None:
        raise AssessmentError(
            f"runner {runner!r} has {point['runs'] or 0} run(s) with cadence and loading rate in the 4 weeks before "
            f"the start; the assessment needs {MIN_BASELINE_RUNS}. Run as usual for a while, then start the program."
        )
    spread = baseline(store, ref=at, runner=runner)["measures"]
    shares = point["zone_share_pct"]
    return {
        "from": since,
        "to": at,
        "runs": point["runs"],
        "steps": point["steps"],
        "cadence_spm": point["cadence_spm"],
        "valr_mean": point["valr_mean"],
        "valr_p90": point["valr_p90"],
        "contact_ms": point["contact_ms"],
        "zone_share_pct": shares,
        "non_rearfoot_pct": None if shares["rearfoot"] is None else 100.0 - shares["rearfoot"],
        "asymmetry_contact_pct": point["asymmetry_contact_pct"],
        "asymmetry_valr_pct": point["asymmetry_valr_pct"],
        "run_sd": {k: (v or {}).get("sd") for k, v in spread.items() if k in ("cadence_spm", "valr_mean")},
    }
