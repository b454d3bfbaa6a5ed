"""Risk engine on simulated histories (plugin/history.py), stored as the service does, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import pytest

from edge_agent.contract import Alert, LoadingRateEstimate, RunSummary, WindowSummary
from plugin.config import RiskConfig
from plugin.history import RunnerModel, Scenario, generate_history
from plugin.risk import RiskEngine, risk_level, risk_summary
from plugin.store import Store, window_measures
from plugin.trends import DAY
from tests.plugin.conftest import Databases

Msg = WindowSummary | RunSummary


def feed(store: Store, engine: RiskEngine, msgs: Iterable[Msg]) -> list[tuple[Msg, Alert]]:
    """Store each message, then evaluate it — the order the service uses."""
    out = []
    for m in msgs:
        if not store.insert_message(m, 0.0):
            continue
        alerts = engine.on_summary(m) if isinstance(m, WindowSummary) else engine.on_run(m)
        out += [(m, a) for a in alerts]
    return out


def history(**kw: object) -> list[Msg]:
    kw.setdefault("weeks", 8)
    kw.setdefault("step_records_last_runs", 0)
    return list(generate_history(**kw))  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_eight_steady_weeks_raise_no_alert(store: Store, seed: int) -> None:
    fired = feed(store, RiskEngine(store), history(seed=seed))
    assert fired == []
    assert store.counts()["runs"] >= 30
    assert risk_level(store) == "low"


def test_spike_alerts_exactly_once_on_the_first_spiking_window(store: Store) -> None:
    msgs = history(seed=5, scenario=Scenario(spike=(20, 10, 3, 1.6)))
    fired = feed(store, RiskEngine(store), msgs)
    assert len(fired) == 1
    msg, alert = fired[0]
    assert alert.rule == "loading_spike" and isinstance(msg, WindowSummary)
    assert msg.window_index == 10  # alerted on the window that crossed, not later
    assert alert.created_at == msg.t_end and alert.evidence["window_index"] == 10
    assert alert.evidence["rise_pct"] > 25 and alert.evidence["baseline_runs"] >= 3
    assert "cadence" in alert.message and "Heiderscheit 2011" in alert.message
    assert "BW/s" in alert.title and alert.severity in ("warning", "critical")
    assert 0 < alert.confidence < 1
    assert store.list_alerts()[0]["alert_id"] == alert.alert_id


def test_restart_and_redelivery_do_not_realert_and_ack_holds(store: Store) -> None:
    msgs = history(seed=5, scenario=Scenario(spike=(20, 10, 3, 1.6)))
    fired = feed(store, RiskEngine(store), msgs)
    assert len(fired) == 1
    alert = fired[0][1]
    assert risk_summary(store, now=alert.created_at)["level"] in ("elevated", "high")
    assert store.ack_alert(alert.alert_id, by="runner")
    assert risk_summary(store, now=alert.created_at)["level"] == "low"  # acknowledged → no longer counted
    engine = RiskEngine(store)  # a restarted process: in-memory state is gone
    spiked_run = [m for m in msgs if m.run_id == fired[0][0].run_id]
    again = [a for m in spiked_run for a in
             (engine.on_summary(m) if isinstance(m, WindowSummary) else engine.on_run(m))]  # fmt: skip
    assert again == []
    assert len(store.list_alerts()) == 1 and store.list_alerts()[0]["acked_by"] == "runner"


def test_cooldown_holds_then_expires(dbs: Databases) -> None:
    sc = Scenario(spike=(20, 10, 2, 1.6))
    two_spikes = history(seed=6, scenario=sc)
    # a second spike in the next run (two days later)
    nxt = sorted({m.run_id for m in two_spikes})[21]
    for i, m in enumerate(two_spikes):
        if isinstance(m, WindowSummary) and m.run_id == nxt and m.window_index in (5, 6):
            two_spikes[i] = _scaled(m, 1.6)
    long_cd = RiskConfig(cooldown_days={"loading_spike": 7.0})
    with dbs.store("a") as s:
        assert [a.rule for _, a in feed(s, RiskEngine(s, long_cd), two_spikes)] == ["loading_spike"]
    short_cd = RiskConfig(cooldown_days={"loading_spike": 1.0})
    with dbs.store("b") as s:
        assert [a.rule for _, a in feed(s, RiskEngine(s, short_cd), two_spikes)] == ["loading_spike"] * 2


def _scaled(m: Msg, k: float) -> Msg:
    left = m.left.model_copy(update={"valr_bw_s": m.left.valr_bw_s.model_copy(
        update={"mean": m.left.valr_bw_s.mean * k})})  # type: ignore[operator]  # fmt: skip
    right = m.right.model_copy(update={"valr_bw_s": m.right.valr_bw_s.model_copy(
        update={"mean": m.right.valr_bw_s.mean * k})})  # type: ignore[operator]  # fmt: skip
    return m.model_copy(update={"left": left, "right": right})


def test_no_baseline_yet_says_so_and_does_not_guess(store: Store) -> None:
    msgs = history(weeks=1, seed=7, scenario=Scenario(spike=(1, 5, 3, 2.0)))
    two_runs = sorted({m.run_id for m in msgs})[:2]
    msgs = [m for m in msgs if m.run_id in two_runs]
    engine = RiskEngine(store)
    assert feed(store, engine, msgs) == []  # a 2× spike in the second run ever: no baseline to judge it by
    assert risk_level(store) == "unknown"
    summary = risk_summary(store)
    assert "No baseline yet" in summary["reasons"][0]
    assert any("no baseline yet" in s.lower() for s in engine.last_status.values())


def test_too_fast_forefoot_transition_alerts_once(store: Store) -> None:
    msgs = history(seed=8, scenario=Scenario(forefoot_transition=(4, 7, 0.6)))
    fired = feed(store, RiskEngine(store), msgs)
    assert [a.rule for _, a in fired] == ["strike_transition"]
    ev = fired[0][1].evidence
    assert ev["slope_pp_per_week"] > 10 and ev["last_share_pct"] > ev["first_share_pct"]
    assert "Ridge 2013" in fired[0][1].message


def test_slow_transition_within_the_limit_is_quiet(store: Store) -> None:
    msgs = history(seed=8, scenario=Scenario(forefoot_transition=(2, 7, 0.25)))  # ≈ 3.5 points/week
    assert feed(store, RiskEngine(store), msgs) == []


def test_fatigue_drift_alerts_once_in_the_second_half(store: Store) -> None:
    msgs = history(seed=9, scenario=Scenario(fatigue_runs=(24,)))
    fired = feed(store, RiskEngine(store), msgs)
    assert [a.rule for _, a in fired] == ["fatigue_drift"]
    msg, alert = fired[0]
    n_windows = sum(1 for m in msgs if isinstance(m, WindowSummary) and m.run_id == msg.run_id)
    assert msg.window_index >= n_windows // 2  # type: ignore[union-attr]
    assert alert.evidence["change_pct"]["cadence_spm"] <= -4


def test_persistent_asymmetry_alerts_once(store: Store) -> None:
    msgs = history(seed=10, scenario=Scenario(asymmetry=(22, 12.0)))
    fired = feed(store, RiskEngine(store), msgs)
    assert [a.rule for _, a in fired] == ["asymmetry"]
    run_ids = sorted({m.run_id for m in msgs})
    assert fired[0][0].run_id == run_ids[24]  # the third asymmetric run in a row
    assert "asymmetry_contact_pct" in fired[0][1].evidence["measures"]


def test_training_load_spike_is_context_with_low_confidence(store: Store) -> None:
    msgs = history(seed=11, scenario=Scenario(load_jump=(6, 3.0)))
    fired = feed(store, RiskEngine(store), msgs)
    assert [a.rule for _, a in fired] == ["training_load"]
    alert = fired[0][1]
    assert alert.evidence["acwr"] >= 1.5 and alert.confidence <= 0.4
    assert "Impellizzeri 2020" in alert.message


def test_absolute_valr_is_informational_and_not_repeated(store: Store, dbs: Databases) -> None:
    heavy = RunnerModel(valr_bw_s=80.0)
    fired = feed(store, RiskEngine(store), history(weeks=4, seed=12, runner=heavy))
    assert [(a.rule, a.severity) for _, a in fired] == [("valr_absolute", "info")]
    assert "Napier 2018" in fired[0][1].message
    off = RiskConfig(valr_absolute_enabled=False)
    with dbs.store("off") as s:
        assert feed(s, RiskEngine(s, off), history(weeks=4, seed=12, runner=heavy)) == []


def _with_estimate(m: Msg, k: float, lo: float, hi: float, rate: float = 100.0) -> Msg:
    """A contract-v2 message: VALR ×k (corrected) and its interval as fractions of the new mean."""
    m = _scaled(m, k)
    mean = window_measures(m)["valr_mean"]  # type: ignore[arg-type]
    est = LoadingRateEstimate(mean=mean, lo=mean * lo, hi=mean * hi, n=m.steps, sample_rate_hz=rate)
    return m.model_copy(update={"valr": est, "profile": "moticon-opengo"})


@pytest.mark.parametrize(("lo", "fires"), [(0.9, True), (0.75, False)])
def test_absolute_valr_fires_only_when_the_interval_clears_the_threshold(store: Store, lo: float, fires: bool) -> None:
    """A v2 run at ≈ 80 BW/s: with the interval's low end above 66 BW/s an (informational) alert naming the
    interval; with it below, no alert and the engine says the reading is uncertain at that rate."""
    msgs = history(weeks=4, seed=12, schema_version=1)  # ≈ 50 BW/s: never near the threshold
    last_run = max(i for i, m in enumerate(msgs) if isinstance(m, RunSummary))
    mean = window_measures(msgs[last_run])["valr_mean"]  # type: ignore[arg-type]
    msgs[last_run] = _with_estimate(msgs[last_run], 80.0 / mean, lo, 1.15)
    engine = RiskEngine(store)
    fired = feed(store, engine, msgs)
    if fires:
        assert [(a.rule, a.severity) for _, a in fired] == [("valr_absolute", "info")]
        alert = fired[0][1]
        assert "≈ 80 BW/s (72–92)" in alert.message and "low end of its 90 % interval" in alert.message
        assert alert.evidence["valr_interval_bw_s"] == pytest.approx([72.0, 92.0])
        assert alert.evidence["lr_basis"] == "corrected@100Hz/moticon-opengo"
    else:
        assert fired == []
        status = " ".join(engine.last_status.values())
        assert "≈ 80 BW/s (60–92)" in status and "uncertainty at 100 Hz" in status


def test_spike_baseline_compares_like_with_like(store: Store, dbs: Databases) -> None:
    """Weeks of schema-1 windows (uncorrected) are no baseline for corrected ones, which read ≈ 30 % higher at
    100 Hz: no spike; nor are another device's windows. The same jump within one basis is a spike."""
    msgs = history(seed=5, schema_version=1)
    runs = sorted({m.run_id for m in msgs})
    new_run = runs[-1]
    upgraded = [_with_estimate(m, 1.3, 0.85, 1.2) if m.run_id == new_run else m for m in msgs]
    engine = RiskEngine(store)
    assert feed(store, engine, [m for m in upgraded if isinstance(m, WindowSummary)]) == []
    assert any("no baseline yet" in v and "corrected@100Hz/moticon-opengo" in v for v in engine.last_status.values())
    with dbs.store("same") as s:  # the same +30 % inside one basis: a spike
        same = [_scaled(m, 1.3) if m.run_id == new_run and isinstance(m, WindowSummary) else m for m in msgs]
        assert [a.rule for _, a in feed(s, RiskEngine(s), same)] == ["loading_spike"]
    with dbs.store("other") as s:  # another device's history is not this one's baseline
        moved = [m.model_copy(update={"device_id": "other-pair"}) if m.run_id != new_run else m for m in same]
        e = RiskEngine(s)
        assert [a.rule for _, a in feed(s, e, moved) if a.rule == "loading_spike"] == []


def test_fatigue_compares_windows_of_one_basis_only(store: Store) -> None:
    msgs = history(seed=9, scenario=Scenario(fatigue_runs=(24,)), schema_version=1)
    run = sorted({m.run_id for m in msgs})[24]
    n = sum(1 for m in msgs if isinstance(m, WindowSummary) and m.run_id == run)
    # the second half of that run measured at another sample rate: its VALR is not comparable with the first
    mixed = [
        _with_estimate(m, 1.0, 0.9, 1.1, rate=200.0)
        if isinstance(m, WindowSummary) and m.run_id == run and m.window_index >= n // 2
        else m
        for m in msgs
    ]
    assert [a.rule for _, a in feed(store, RiskEngine(store), mixed)] == []


def _open_alert(store: Store, n: int, severity: str, at: float, title: str) -> str:
    alert_id = f"{n:016x}"
    alert = Alert(alert_id=alert_id, rule="loading_spike", severity=severity, confidence=0.6,  # type: ignore[arg-type]
                  title=title, message="m", evidence={}, runner="alex", run_id=f"r{n}", created_at=at)  # fmt: skip
    store.insert_alert(alert)
    return alert_id


def test_level_follows_the_open_alerts_the_overview_lists(store: Store) -> None:
    store.insert_many(history(seed=1))
    end = store.list_runs(limit=1)[0]["ended_at"]
    s = risk_summary(store)
    assert s["level"] == "low" and s["reasons"] == ["no open warnings in the last 28 days"], s
    # An unacknowledged warning from 12 days ago: the 7-day rule called this "low" while the overview listed it.
    w12 = _open_alert(store, 1, "warning", end - 12 * DAY, "Loading-rate spike: 70 BW/s")
    s = risk_summary(store)
    assert s["level"] == "elevated" and s["open_warnings"] == 1
    assert s["reasons"] == ["Loading-rate spike: 70 BW/s (warning, 12 days before the latest run, not acknowledged)"]
    # an informational alert is named but does not raise the level; one older than the window no longer counts
    _open_alert(store, 2, "info", end - 2 * DAY, "Loading rate 68 BW/s (above 66)")
    old = _open_alert(store, 3, "critical", end - 40 * DAY, "Old spike")
    s = risk_summary(store)
    assert s["level"] == "elevated" and (s["open_info"], s["open_older"]) == (1, 1)
    assert any("1 open informational alert (not raising the level): Loading rate 68 BW/s" in r for r in s["reasons"])
    assert any("1 open alert older than 28 days no longer count" in r for r in s["reasons"])
    # two warnings within 7 days → high; a critical within 7 days alone → high as well
    _open_alert(store, 4, "warning", end - 3 * DAY, "Fatigue")
    _open_alert(store, 5, "warning", end - 1 * DAY, "Asymmetry")
    assert risk_summary(store)["level"] == "high"
    for a in store.list_alerts(include_acked=False):
        if a["severity"] != "critical":
            store.ack_alert(a["alert_id"])
    s = risk_summary(store)
    assert s["level"] == "low" and s["open_alerts"] == 0 and s["open_older"] == 1  # the old critical: named only
    crit = _open_alert(store, 6, "critical", end - 6.5 * DAY, "Spike")
    assert risk_summary(store)["level"] == "high"
    assert risk_summary(store, now=end + 1 * DAY)["level"] == "elevated"  # 7.5 days old: still open, not recent
    for a in (crit, old, w12):
        store.ack_alert(a)
    assert risk_summary(store)["level"] == "low"


def test_no_baseline_stays_unknown_but_names_open_alerts(store: Store) -> None:
    msgs = history(weeks=1, seed=7)
    two_runs = sorted({m.run_id for m in msgs})[:2]
    store.insert_many([m for m in msgs if m.run_id in two_runs])
    _open_alert(store, 1, "warning", store.list_runs(limit=1)[0]["ended_at"], "Spike")
    s = risk_summary(store)
    assert s["level"] == "unknown" and "No baseline yet" in s["reasons"][0]
    assert s["reasons"][1] == "Spike (warning, not acknowledged)"


def test_two_workers_evaluating_one_runner_at_once_raise_one_alert(
    dbs: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers (their own Store and RiskEngine on one database) each store one spiking window of the same run
    and evaluate it at the same moment. The "once per run" check is held open for 0.3 s to make the race wide:
    the runner's lock (a PostgreSQL advisory lock across processes; per process on SQLite) makes check + alert one
    step, so exactly one alert is raised (without the lock both workers pass the check)."""
    msgs = history(seed=5, scenario=Scenario(spike=(20, 10, 3, 1.6)))
    spiked_run = next(m.run_id for m in msgs if isinstance(m, WindowSummary) and m.window_index == 10
                      and m.run_id.endswith(sorted({x.run_id for x in msgs})[20].split("-")[-1]))  # fmt: skip
    first, second = (next(m for m in msgs if isinstance(m, WindowSummary) and m.run_id == spiked_run
                          and m.window_index == i) for i in (10, 11))  # fmt: skip
    held_open = Store.has_alert

    def slow_check(self: Store, rule: str, run_id: str) -> bool:
        found = held_open(self, rule, run_id)
        time.sleep(0.3)
        return found

    monkeypatch.setattr(Store, "has_alert", slow_check)
    with dbs.store() as one, dbs.store() as two:
        earlier = [m for m in msgs if m.run_id != spiked_run or (isinstance(m, WindowSummary) and m.window_index < 10)]
        one.insert_many(earlier)
        assert one.insert_message(first) and two.insert_message(second)
        engines = (RiskEngine(one), RiskEngine(two))
        barrier = threading.Barrier(2)
        raised: list[Alert] = []

        def evaluate(engine: RiskEngine, window: WindowSummary) -> None:
            barrier.wait()
            raised.extend(engine.on_summary(window))

        threads = [threading.Thread(target=evaluate, args=pair) for pair in zip(engines, (first, second), strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert [a.rule for a in raised] == ["loading_spike"]
        assert [a["rule"] for a in one.list_alerts()] == ["loading_spike"]


def test_acknowledged_is_not_resolved_while_the_latest_run_stays_high(store: Store) -> None:
    """Acknowledging the only alert must not turn the level "low" while the latest run is ~35 % over baseline."""
    steady = history(seed=1)
    last = len({m.run_id for m in steady}) - 1
    msgs = history(seed=1, scenario=Scenario(spike=(last, 0, 10_000, 1.35)))  # the whole latest run loads faster
    fired = feed(store, RiskEngine(store), msgs)
    assert [a.rule for _, a in fired if a.severity != "info"] == ["loading_spike"], fired
    before = risk_summary(store)
    assert before["level"] == "elevated" and before["latest_run"]["rise_pct"] > 25
    for a in store.list_alerts(include_acked=False):
        store.ack_alert(a["alert_id"], by="runner")
    s = risk_summary(store)
    assert s["level"] == "elevated" and s["open_alerts"] == 0
    assert "latest run's loading rate" in s["headline"] and "28-day baseline" in s["headline"]
    assert "7 days" not in s["headline"], "one time window per sentence"
    assert any(r.startswith("latest run: VALR") and "above your 28-day baseline" in r for r in s["reasons"])
    assert any(r.startswith("1 acknowledged alert in the last 7 days") for r in s["reasons"]), s["reasons"]
    # the baseline it compares with leaves the latest run out
    latest = store.list_runs(limit=1)[0]
    assert s["latest_run"]["run_id"] == latest["run_id"]
    assert s["latest_run"]["valr_mean"] == pytest.approx(latest["valr_mean"])


def test_high_says_several_only_when_there_are_several(store: Store) -> None:
    store.insert_many(history(seed=1))
    end = store.list_runs(limit=1)[0]["ended_at"]
    s = risk_summary(store)
    assert s["level"] == "low" and s["headline"].startswith("No open warnings in the last 28 days")
    crit = _open_alert(store, 1, "critical", end - 2 * DAY, "Spike")
    s = risk_summary(store)
    assert s["level"] == "high" and s["headline"] == "A critical alert in the last 7 days, not acknowledged."
    store.ack_alert(crit)
    _open_alert(store, 2, "warning", end - 2 * DAY, "Fatigue")
    s = risk_summary(store)
    assert s["level"] == "elevated" and s["headline"] == "1 open warning from the last 28 days."
    _open_alert(store, 3, "warning", end - 1 * DAY, "Asymmetry")
    s = risk_summary(store)
    assert s["level"] == "high" and s["headline"] == "2 warnings in the last 7 days, not acknowledged."
