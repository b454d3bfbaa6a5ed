"""Trends, baselines and training load against independent hand computations, on SQLite and PostgreSQL stores."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from edge_agent.contract import RunSummary
from plugin.history import RunnerModel, generate_history, seed_history
from plugin.store import Store
from plugin.trends import DAY, baseline, training_load, trends

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC (a Thursday)


def template() -> RunSummary:
    return next(m for m in generate_history(weeks=1, seed=1) if isinstance(m, RunSummary))


def make_run(i: int, start: float, minutes: float, runner: str = "alex", **stats: float) -> RunSummary:
    t = template()
    left = t.left.model_copy(deep=True)
    right = t.right.model_copy(deep=True)
    if "valr" in stats:
        for f in (left, right):
            f.valr_bw_s = f.valr_bw_s.model_copy(update={"mean": stats["valr"]})
    return t.model_copy(update={
        "msg_id": f"run{runner}{i:08d}", "seq": i + 1, "run_id": f"{runner}-{i}", "runner": runner,
        "started_at": start, "ended_at": start + minutes * 60, "duration_s": minutes * 60, "left": left,
        "right": right,
    })  # fmt: skip


def test_weekly_points_match_a_hand_computation(store: Store) -> None:
    seed_history(store, weeks=8, seed=2, step_records_last_runs=0)
    runs = store.list_runs(limit=1000)
    doc = trends(store, period="week")
    by_week: dict[str, list[dict]] = {}
    for r in runs:
        d = datetime.fromtimestamp(r["started_at"], UTC).date()
        monday = d.fromordinal(d.toordinal() - d.weekday())
        by_week.setdefault(f"{monday.isoformat()}T00:00:00Z", []).append(r)
    assert [p["t"] for p in doc["points"]] == sorted(by_week)
    for p in doc["points"]:
        rs = by_week[p["t"]]
        assert p["runs"] == len(rs) and p["steps"] == sum(r["steps"] for r in rs)
        valr = sum(r["valr_mean"] * r["valr_n"] for r in rs) / sum(r["valr_n"] for r in rs)
        assert p["valr_mean"] == pytest.approx(valr)
        assert p["duration_s"] == pytest.approx(sum(r["duration_s"] for r in rs))
        assert sum(p["zone_share_pct"].values()) == pytest.approx(100.0)
        assert p["zones"]["forefoot"] == sum(r["forefoot"] for r in rs)
    assert len(trends(store, period="run")["points"]) == len(runs)
    days = {datetime.fromtimestamp(r["started_at"], UTC).date() for r in runs}
    assert len(trends(store, period="day")["points"]) == len(days)


def test_baseline_mean_sd_and_time_aware_ewma(store: Store) -> None:
    valrs = [50.0, 54.0, 46.0, 60.0]
    for i, v in enumerate(valrs):
        store.insert_message(make_run(i, T0 + i * 2 * DAY, 30, valr=v))
    b = baseline(store, ref=T0 + 8 * DAY)
    m = b["measures"]["valr_mean"]
    assert b["status"] == "ok" and b["runs"] == 4
    assert m["mean"] == pytest.approx(sum(valrs) / 4)
    assert m["sd"] == pytest.approx(math.sqrt(sum((v - 52.5) ** 2 for v in valrs) / 3))
    lam = 2 / 29
    ewma = valrs[0]
    for v in valrs[1:]:  # runs two days apart: the daily λ compounds over two days
        ewma += (1 - (1 - lam) ** 2) * (v - ewma)
    assert m["ewma"] == pytest.approx(ewma)
    few = baseline(store, ref=T0 + 3 * DAY)  # only two runs ended by then
    assert few["status"] == "no_baseline" and "No baseline yet" in few["message"] and few["measures"] == {}


def test_training_load_ewma_williams_2017(store: Store) -> None:
    minutes = {0: 30, 2: 40, 4: 30, 6: 60, 9: 30, 11: 45, 13: 70, 16: 30, 18: 40, 20: 30, 23: 90, 25: 30,
               27: 40, 29: 30, 31: 120, 32: 90, 33: 100}  # fmt: skip
    for i, (day, mins) in enumerate(minutes.items()):
        store.insert_message(make_run(i, T0 + day * DAY + 3600, mins))
    ref = T0 + 34 * DAY
    tl = training_load(store, ref=ref)
    loads = [float(minutes.get(d, 0)) for d in range(34)]
    la, lc = 2 / 8, 2 / 29
    acute = chronic = sum(loads[:28]) / 28  # seeded with the mean of the first 28 days
    for x in loads:
        acute = la * x + (1 - la) * acute
        chronic = lc * x + (1 - lc) * chronic
    assert tl["status"] == "ok"
    assert tl["acute"] == pytest.approx(acute) and tl["chronic"] == pytest.approx(chronic)
    assert tl["acwr"] == pytest.approx(acute / chronic)
    assert len(tl["series"]) == 34 and tl["series"][31]["load"] == 120
    short = training_load(store, ref=T0 + 20 * DAY)
    assert short["status"] == "no_baseline" and short["acwr"] is None


def test_week_over_week_and_runner_filter(store: Store) -> None:
    for i in range(3):
        store.insert_message(make_run(i, T0 + i * DAY, 30, valr=50.0))  # days 0–2
    for i in range(3, 5):
        store.insert_message(make_run(i, T0 + (i + 5) * DAY, 45, valr=60.0))  # days 8–9
    store.insert_message(make_run(9, T0 + 9 * DAY, 300, runner="sam", valr=90.0))
    doc = trends(store, runner="alex")
    wow = doc["week_over_week"]["measures"]
    assert wow["runs"]["this_week"] == 2 and wow["runs"]["last_week"] == 3
    assert wow["load_min"]["change_pct"] == pytest.approx(100 * (90 - 90) / 90)
    assert wow["valr_mean"]["change_pct"] == pytest.approx(20.0)
    assert all(p["runs"] > 0 for p in doc["points"]) and sum(p["runs"] for p in doc["points"]) == 5
    assert sum(p["runs"] for p in trends(store, runner="sam")["points"]) == 1


def test_bad_arguments_and_empty_store(store: Store) -> None:
    with pytest.raises(ValueError, match="period"):
        trends(store, period="month")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="before"):
        trends(store, since=T0 + 10, until=T0)
    empty = trends(store)
    assert empty["points"] == [] and empty["baseline"]["status"] == "no_baseline"
    assert empty["training_load"]["status"] == "no_data"


def test_a_year_of_runs_is_served_from_sql_aggregates(store: Store) -> None:
    seed_history(store, weeks=52, seed=3, runner=RunnerModel(runs_per_week=6), step_records_last_runs=0)
    assert store.count_runs() >= 300
    doc = trends(store, period="week")
    assert 52 <= len(doc["points"]) <= 53
    assert doc["baseline"]["status"] == "ok" and doc["training_load"]["status"] == "ok"
    assert 0.7 < doc["training_load"]["acwr"] < 1.4  # steady year: no load spike


def test_week_over_week_uses_the_charts_monday_weeks(store: Store) -> None:
    # T0 is a Thursday: day 3 = Sunday 4 Jan, day 4 = Monday 5 Jan, day 10 = Sunday 11, day 11 = Monday 12.
    for i, (day, minutes, valr) in enumerate([(3, 30, 50.0), (4, 40, 55.0), (10, 30, 60.0), (11, 20, 70.0)]):
        store.insert_message(make_run(i, T0 + day * DAY, minutes, valr=valr))
    doc = trends(store, period="week")
    wow = doc["week_over_week"]
    assert wow["this_week_from"] == "2026-01-12T00:00:00Z" and wow["last_week_from"] == "2026-01-05T00:00:00Z"
    m = wow["measures"]
    # a rolling 7 days would hold Sunday's and Monday's runs; the Monday week holds Monday's only
    assert m["runs"]["this_week"] == 1 and m["runs"]["last_week"] == 2
    assert m["valr_mean"]["this_week"] == pytest.approx(70.0) and m["valr_mean"]["change_pct"] is not None
    # the same numbers as the chart's weekly points
    week = {p["t"]: p for p in doc["points"]}
    assert week[wow["this_week_from"]]["runs"] == 1 and week[wow["last_week_from"]]["runs"] == 2
    assert week[wow["last_week_from"]]["valr_mean"] == pytest.approx(m["valr_mean"]["last_week"])
    # totals of a week in progress compare with last week up to the same moment (Monday's first 20 minutes)
    assert m["runs"]["last_week_to_date"] == 1 and m["runs"]["change_pct"] == pytest.approx(0.0)
    assert m["load_min"]["last_week_to_date"] == pytest.approx(40.0)


def test_trend_baseline_band_leaves_the_latest_run_out(store: Store) -> None:
    valrs = [50.0, 52.0, 48.0, 51.0, 90.0]  # the latest run is far above the others
    for i, v in enumerate(valrs):
        store.insert_message(make_run(i, T0 + i * 2 * DAY, 30, valr=v))
    b = trends(store)["baseline"]
    assert b["status"] == "ok" and b["runs"] == 4
    assert b["measures"]["valr_mean"]["mean"] == pytest.approx(sum(valrs[:4]) / 4)
