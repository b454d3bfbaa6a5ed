"""One definition per derived measure (edge_agent/common/measures.py), and every consumer agrees with it: the
store's columns, the run assembled in SQL from its windows, the trend points, the simulated history's run
summaries and Home Assistant's templates — on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import math
from typing import Any

import jinja2
import pytest

from edge_agent.common.measures import (
    COMBINE,
    MEASURE_COLUMNS,
    combine_rows,
    pool_stats,
    pooled_measures,
    symmetry_angle_pct,
    symmetry_index_pct,
)
from edge_agent.contract import RunSummary, Stat, WindowSummary
from edge_agent.runtime.ha_discovery import SENSORS
from plugin.history import generate_history
from plugin.store import Store
from plugin.trends import trend_points


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def _windows_and_run(seed: int = 3) -> tuple[list[WindowSummary], RunSummary]:
    msgs = list(generate_history(weeks=1, seed=seed, step_records_last_runs=0))
    run = next(m for m in msgs if isinstance(m, RunSummary))
    return [m for m in msgs if isinstance(m, WindowSummary) and m.run_id == run.run_id], run


def _one_foot_silent(w: WindowSummary) -> WindowSummary:
    """A window whose right foot measured no loading rate and whose left p90 is unknown (edge cases)."""
    right = w.right.model_copy(update={"valr_bw_s": Stat()})
    left = w.left.model_copy(update={"valr_bw_s": w.left.valr_bw_s.model_copy(update={"p90": None})})
    return w.model_copy(update={"left": left, "right": right})


def test_pool_stats_is_the_union_of_the_groups() -> None:
    a = Stat(n=3, mean=10.0, sd=1.0, p90=11.0, max=12.0)
    b = Stat(n=1, mean=14.0, sd=None, p90=14.0, max=14.0)
    p = pool_stats([a, b, Stat()])
    assert p.n == 4 and p.mean == pytest.approx(11.0) and p.max == 14.0
    assert p.p90 == pytest.approx((11.0 * 3 + 14.0) / 4)  # the documented approximation
    # pooled variance: within (3·1² + 1·0²)/4 plus between (3·1² + 1·3²)/4
    assert p.sd == pytest.approx(math.sqrt((3 + 0 + 3 + 9) / 4))
    assert pool_stats([Stat(), Stat()]) == Stat()


def test_symmetry_angle_has_the_correction_beyond_90_degrees() -> None:
    assert symmetry_angle_pct(200.0, 300.0) == pytest.approx(12.5666, abs=1e-3)
    # values of opposite sign: the raw term exceeds 90° and is brought back (Zifchock 2008)
    raw = 45.0 - math.degrees(math.atan(-2.0 / 1.0))  # 108.4°: beyond 90°
    assert symmetry_angle_pct(-2.0, 1.0) == pytest.approx((raw - 180.0) / 90.0 * 100.0)
    assert abs(symmetry_angle_pct(-2.0, 1.0)) <= 100.0  # type: ignore[arg-type]
    assert symmetry_index_pct(1.0, -1.0) is None  # undefined when R + L = 0


def test_the_simulated_history_pools_and_compares_feet_with_the_one_definition() -> None:
    windows, run = _windows_and_run()
    for side in ("left", "right"):
        for measure in ("valr_bw_s", "contact_ms", "strike_index", "peak_force_bw"):
            expected = pool_stats([getattr(getattr(w, side), measure) for w in windows])
            got = getattr(getattr(run, side), measure)
            assert got.n == expected.n and _close(got.mean, expected.mean) and _close(got.p90, expected.p90)
    lc, rc = run.left.contact_ms.mean, run.right.contact_ms.mean
    assert _close(run.asymmetry.contact_ms_sa, symmetry_angle_pct(lc, rc))
    assert _close(run.asymmetry.contact_ms_pct, symmetry_index_pct(lc, rc))


def test_home_assistant_templates_show_what_the_dashboard_stores() -> None:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    templates = {s.key: env.from_string(s.template or "") for s in SENSORS if s.key in ("valr_mean", "valr_p90")}
    windows, _ = _windows_and_run()
    for w in [*windows[:5], _one_foot_silent(windows[5])]:
        m = pooled_measures(w)
        data = json.loads(w.model_dump_json())
        for key, col in (("valr_mean", "valr_mean"), ("valr_p90", "valr_p90")):
            rendered = templates[key].render(value_json=data)
            want = getattr(m, col)
            assert rendered == ("None" if want is None else str(round(want, 1))), (key, rendered, want)


def test_store_run_sql_and_trends_agree_with_the_definition(store: Store) -> None:
    windows, run = _windows_and_run()
    windows[4] = _one_foot_silent(windows[4])
    store.insert_many(windows)  # no RunSummary yet: the run is assembled from its windows, in SQL
    rows = store.run_windows(run.run_id)
    assert len(rows) == len(windows)
    for w, row in zip(windows, rows, strict=True):  # each window's columns are the pooled measures
        m = pooled_measures(w).as_dict()
        assert all(_close(row[c], m[c]) for c in MEASURE_COLUMNS), w.window_index
    assembled = store.run_row(run.run_id)
    assert assembled is not None and assembled["complete"] is False
    twin = combine_rows([{**r, "duration": r["t_end"] - r["t_start"]} for r in rows], duration="duration")
    for c in COMBINE:
        assert _close(assembled[c.column], twin[c.column]), c
    store.insert_message(run)
    # a second runner-less run on another day, then the trend points combine the run rows the same way
    other = [m for m in generate_history(weeks=1, seed=4, step_records_last_runs=0)]
    store.insert_many(other)
    runs = store.list_runs(limit=1000)
    names = {"si_left": "strike_index_left", "si_right": "strike_index_right"}
    for period in ("run", "week"):
        points = trend_points(store, period)
        assert points
        if period == "run":
            by_start = sorted(runs, key=lambda r: (r["started_at"], r["run_id"]))
            groups = [[r] for r in by_start]
        else:
            weeks: dict[int, list[dict[str, Any]]] = {}
            for r in runs:
                day = int(r["started_at"] // 86400)
                weeks.setdefault(day - (day + 3) % 7, []).append(r)
            groups = [weeks[k] for k in sorted(weeks)]
        assert len(points) == len(groups)
        for point, group in zip(points, groups, strict=True):
            want = combine_rows(group)
            for col in ("valr_mean", "valr_p90", "valr_max", "cadence_spm", "contact_ms", "si_left", "si_right"):
                assert _close(point[names.get(col, col)], want[col]), (period, col)
            assert point["steps"] == want["steps"]
