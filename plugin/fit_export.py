"""A stored run as a FIT activity file: ``footfall-dashboard export --format fit`` and ``GET /api/runs/{id}/fit``.

The run and its windows come from :meth:`plugin.store.Store.get_run` (without the per-step records): every
measure in the file is a stored column — the window's or the run's cadence, contact time and VALR pooled over both
feet, the contact-time symmetry index (turned into the left foot's share by
:func:`edge_agent.common.fitfile.stance_time_balance_pct`), each foot's strike index and the zone counts — so the
file says what the run page says. A run whose windows retention has removed exports its whole-run values as one
span. Encoding: :mod:`edge_agent.common.fitfile`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge_agent.common.fitfile import EncodedFit, FitRun, FitSpan, encode_run, fit_filename


def _span(row: Mapping[str, Any], t_start: float, t_end: float) -> FitSpan:
    return FitSpan(
        t_start=t_start,
        t_end=t_end,
        steps=int(row.get("steps") or 0),
        cadence_spm=row.get("cadence_spm"),
        contact_ms=row.get("contact_ms"),
        contact_asymmetry_pct=row.get("asym_contact_pct"),
        valr_bw_s=row.get("valr_mean"),
        strike_index_left=row.get("si_left"),
        strike_index_right=row.get("si_right"),
        rearfoot=int(row.get("rearfoot") or 0),
        midfoot=int(row.get("midfoot") or 0),
        forefoot=int(row.get("forefoot") or 0),
    )


def fit_run(run: Mapping[str, Any]) -> FitRun:
    """The encoder's view of a run as :meth:`Store.get_run` returns it (columns plus ``windows``)."""
    windows = [_span(w, float(w["t_start"]), float(w["t_end"])) for w in run.get("windows") or []]
    summary = _span(run, float(run["started_at"]), float(run["ended_at"]))
    return FitRun(
        run_id=str(run["run_id"]),
        device_id=str(run["device_id"]),
        summary=summary,
        windows=windows,
        sport="running",  # the agent opens a run only once it classifies the steps as running
        profile=run.get("profile"),
    )


def export_run_fit(store: Any, run_id: str) -> tuple[str, EncodedFit] | None:
    """(file name, encoded file) of a stored run; None when the store has no such run. Raises
    :class:`edge_agent.common.fitfile.FitExportError` for a run that cannot be a FIT file."""
    run = store.get_run(run_id, include_steps=False)
    if run is None:
        return None
    return fit_filename(run_id), encode_run(fit_run(run))
