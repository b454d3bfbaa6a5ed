"""The real-time pipeline on simulated insoles: run detection, windows, bad input, backpressure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from edge_agent.config import PipelineConfig, RunDetectionConfig
from edge_agent.contract import LiveUpdate, RunSummary, Topics, WindowSummary, parse_stored_message
from edge_agent.profiles import load_profile
from edge_agent.recordings.simulator import RunParams, simulate
from edge_agent.runtime.activity import ActivityThresholds, ActivityTracker, classify_steps
from edge_agent.runtime.outbox import Outbox
from edge_agent.runtime.pipeline import OutboxSink, Pipeline
from edge_agent.sources.base import FrameBatch, InsoleSource
from edge_agent.sources.simulator import SimulatorSource, SimulatorSourceConfig

G = 9.80665


@pytest.fixture(scope="module")
def profile():  # type: ignore[no-untyped-def]
    return load_profile("moticon-opengo")


class Collect:
    def __init__(self) -> None:
        self.messages: list[WindowSummary | RunSummary] = []

    async def __call__(self, msg: WindowSummary | RunSummary) -> None:
        # round-trip through JSON like the outbox would, so the contract is checked too
        self.messages.append(type(msg).model_validate_json(msg.model_dump_json()))

    @property
    def windows(self) -> list[WindowSummary]:
        return [m for m in self.messages if isinstance(m, WindowSummary)]

    @property
    def runs(self) -> list[RunSummary]:
        return [m for m in self.messages if isinstance(m, RunSummary)]


def settings(**rd: float) -> PipelineConfig:
    return PipelineConfig(run_detection=RunDetectionConfig(**rd))


async def test_session_standing_walking_running_walking(profile) -> None:  # type: ignore[no-untyped-def]
    """One run found, starting/ending where the simulator ran, body weight from the standing phase."""
    params = RunParams(duration_s=40, standing_s=8, walking_s=20, seed=3, body_mass_kg=64.0)
    src = SimulatorSource(SimulatorSourceConfig(params=params, speed=0), profile)
    sink = Collect()
    # Configured mass deliberately wrong: the standing calibration must replace it.
    pipe = Pipeline(profile, device_id="pi-test", sink=sink, settings=settings(run_stop_s=10), body_mass_kg=90.0,
                    shoe="Daily trainer")  # fmt: skip
    async with src:
        await pipe.run(src, lossless=True)
    assert len(sink.runs) == 1, [m.kind for m in sink.messages]
    run = sink.runs[0]
    assert run.shoe == "Daily trainer"  # the agent's `shoe:`, for the dashboard's per-pair comparison
    t0 = pipe.unix(pipe.t_first or 0.0)
    run_begin = params.standing_s + params.walking_s
    assert run.started_at - t0 == pytest.approx(run_begin, abs=3.0)
    assert run.duration_s == pytest.approx(params.duration_s, abs=4.0)
    assert run.run_id.startswith("pi-test-") and len(run.run_id) == len("pi-test-20260101T000000")
    truths = [tr for tr in src.stream.truths if tr.gait == "run"]
    assert abs(run.steps - len(truths)) <= 0.05 * len(truths) + 4
    assert run.cadence_spm == pytest.approx(params.cadence_spm, rel=0.03)
    assert run.duty_factor is not None and run.duty_factor < 0.5
    # quiet standing reads body weight + the insoles' unloaded reading (simulated 15 N per foot):
    # the pipeline learns that reading from the feet in the air while walking and subtracts it (a few N
    # high: some batch minima fall into the insoles' slow unloading after toe-off)
    assert run.body_mass_kg == pytest.approx(64.0, rel=0.01)
    unloaded = float(pipe.bw_source.split("minus unloaded insoles (")[1].split(" N)")[0])
    assert unloaded == pytest.approx(2 * params.swing_offset_n, abs=5.0)
    # version 2: the run's loading rate with its interval, at the profile's rate
    assert run.valr is not None and run.valr.sample_rate_hz == 100.0
    assert run.valr.lo <= run.valr.mean <= run.valr.hi and run.valr.n > 50
    wins = sink.windows
    assert len(wins) == run.windows >= 3
    assert [w.window_index for w in wins] == list(range(len(wins)))
    assert sum(w.steps for w in wins) == run.steps
    assert all(w.run_id == run.run_id for w in wins)
    assert sum(w.activity == "running" for w in wins) >= len(wins) - 1
    assert all(w.t_start < w.t_end for w in wins)
    assert wins[0].t_start == pytest.approx(run.started_at)
    # no window published outside the run: all steps between its start and end (+ one window of slack)
    assert all(run.started_at <= r.t <= run.ended_at + 10.0 for w in wins for r in w.step_records)
    assert run.quality.frames > 0 and run.quality.corrupt_frames == 0
    assert run.quality.loading_rate_low_confidence is True  # 100 Hz


def _batches(rec, n: int = 5) -> list[FrameBatch]:  # type: ignore[no-untyped-def]
    out = []
    for i in range(0, len(rec.left.t), n):
        for side, fs in (("left", rec.left), ("right", rec.right)):
            out.append(FrameBatch(side=side, t=fs.t[i : i + n], raw=fs.raw[i : i + n].copy()))
    return out


async def test_bad_input_is_counted_logged_once_and_processing_continues(profile, caplog) -> None:  # type: ignore[no-untyped-def]
    rec, truths = simulate(profile, RunParams(duration_s=30, seed=5))
    batches = _batches(rec)
    bad: list[FrameBatch] = []
    stuck = 3
    for b in batches:
        t0 = float(b.t[0])
        if 10.0 <= t0 < 10.05 and b.side == "left":
            bad.append(FrameBatch(side="left", t=b.t, raw=np.ones((len(b.t), 15), np.float32)))  # wrong width
            continue
        if (12.0 <= t0 < 12.05 or 13.0 <= t0 < 13.05) and b.side == "left":
            b.raw[1:3, :] = np.nan  # NaN frames, twice: logged once
        if 14.0 <= t0 < 14.05 and b.side == "left":
            bad.append(FrameBatch(side="left", t=b.t - 0.5, raw=b.raw))  # time going backwards
        if t0 >= 16.0 and b.side == "right":
            b.raw[:, stuck] = profile.raw_max  # a sensor stuck at its maximum
        bad.append(b)
    sink = Collect()
    pipe = Pipeline(profile, device_id="pi-test", sink=sink, body_mass_kg=70.0)
    with caplog.at_level(logging.WARNING, logger="edge_agent.runtime.pipeline"):
        for i in range(0, len(bad), 4):  # four batches per wakeup, like a real loop
            await pipe.process(bad[i : i + 4])
        await pipe.finish()
    assert len(sink.runs) == 1
    run = sink.runs[0]
    q = run.quality
    assert q.corrupt_frames >= 5 + 2 + 2
    assert q.late_frames >= 5
    assert profile.n_sensors + stuck in q.saturated_sensors
    assert q.saturated_samples >= 100
    # processing continued: steps all the way to the end, nearly all of them found
    assert run.steps >= 0.9 * len(truths)
    assert max(r.t for w in sink.windows for r in w.step_records) - pipe.unix(0.0) > 28.0
    nan_logs = [r for r in caplog.records if "NaN/inf" in r.getMessage()]
    shape_logs = [r for r in caplog.records if "batch rejected" in r.getMessage()]
    assert len(nan_logs) == 1 and len(shape_logs) == 1
    # the windows' counters (since the previous window closed) add up to the run's
    assert sum(w.quality.corrupt_frames for w in sink.windows) == q.corrupt_frames
    assert sum(w.quality.late_frames for w in sink.windows) == q.late_frames
    assert sink.windows[-1].quality.corrupt_frames == 0  # after 14 s nothing was corrupt


class _Flood(InsoleSource):
    """Yields batches as fast as it can, never awaiting: a source the pipeline can't keep up with."""

    name = "flood"

    def __init__(self, profile, batches: list[FrameBatch]) -> None:  # type: ignore[no-untyped-def]
        super().__init__(profile)
        self._b = batches

    async def batches(self) -> AsyncIterator[FrameBatch]:
        for b in self._b:
            yield self._count(b)


@pytest.mark.parametrize("lossless", [False, True])
async def test_backpressure_bounded_queue(profile, lossless: bool) -> None:  # type: ignore[no-untyped-def]
    rec, _ = simulate(profile, RunParams(duration_s=10, seed=2))
    batches = _batches(rec)
    pipe = Pipeline(profile, device_id="pi-test", sink=Collect(), settings=PipelineConfig(queue_batches=4))
    await pipe.run(_Flood(profile, batches), lossless=lossless)
    total = sum(len(b) for b in batches)
    if lossless:
        assert pipe.counters["queue_dropped"] == 0
        assert pipe.counters["frames_in"] == total
    else:
        assert pipe.counters["queue_dropped"] > 0
        assert pipe.counters["frames_in"] + pipe.counters["queue_dropped"] == total


async def test_windows_by_step_count_and_outbox_and_live(profile, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outbox = Outbox(tmp_path / "outbox.sqlite", "pi-test")
    topics = Topics("pi-test")
    lives: list[LiveUpdate] = []
    pipe = Pipeline(
        profile,
        device_id="pi-test",
        runner="ana",
        sink=OutboxSink(outbox, topics),
        settings=PipelineConfig(window_steps=20, live_hz=10.0),
        live=lives.append,
        backlog=lambda: outbox.backlog,
        body_mass_kg=70.0,
    )
    src = SimulatorSource(SimulatorSourceConfig(params=RunParams(duration_s=30, seed=4), speed=0), profile)
    async with src:
        await pipe.run(src, lossless=True)
    rows = outbox.pending(1000)
    msgs = [parse_stored_message(r.payload) for r in rows]
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    wins = [m for m in msgs if isinstance(m, WindowSummary)]
    runs = [m for m in msgs if isinstance(m, RunSummary)]
    assert len(runs) == 1 and runs[0].runner == "ana" and runs[0].profile == "moticon-opengo"
    assert all(m.stream_id == outbox.stream_id and m.device_id == "pi-test" for m in msgs)
    assert all(w.steps <= 20 for w in wins) and sum(w.steps == 20 for w in wins) >= len(wins) - 2
    assert sum(w.steps for w in wins) == runs[0].steps
    assert lives and all(lv.device_id == "pi-test" for lv in lives)
    outbox.close()


async def test_duration_stops_at_source_time(profile) -> None:  # type: ignore[no-untyped-def]
    """An endless source: the pipeline stops by itself after 20 s of source time, run summary written."""
    src = SimulatorSource(SimulatorSourceConfig(params=RunParams(seed=1), speed=0, endless=True), profile)
    sink = Collect()
    pipe = Pipeline(profile, device_id="pi-test", sink=sink, body_mass_kg=70.0)
    async with src:
        await asyncio.wait_for(pipe.run(src, duration_s=20.0, lossless=True), timeout=60)
    assert pipe.now is not None and pipe.t_first is not None
    assert 19.9 <= pipe.now - pipe.t_first < 20.0
    assert pipe.counters["frames_in"] == 2 * 20 * 100  # exactly 20 s of both feet at 100 Hz
    assert len(sink.runs) == 1 and sink.runs[0].duration_s == pytest.approx(20.0, abs=1.5)


def test_activity_classifier_on_simulated_gaits(profile) -> None:  # type: ignore[no-untyped-def]
    """Walking and running from the simulator are told apart; standing needs load, idle none."""
    from edge_agent.analysis.analyzer import analyze_recording

    rec, _ = simulate(profile, RunParams(duration_s=20, walking_s=20, seed=8))
    steps = analyze_recording(rec, profile, body_mass_kg=70.0).steps
    walk = [s for s in steps if 2.0 < s.t_contact < 18.0]
    run = [s for s in steps if 25.0 < s.t_contact < 38.0]
    assert classify_steps(walk) == "walking"
    assert classify_steps(run) == "running"
    tr = ActivityTracker(ActivityThresholds(run_start_s=4.0, run_stop_s=5.0))
    tr.add_steps(run)
    events = [e for now in np.arange(25.0, 45.0, 0.5) for e in tr.update(float(now), load_bw=0.0)]
    assert [e.kind for e in events] == ["start", "stop"]
    assert events[0].t == pytest.approx(25.0, abs=1.0)
    assert tr.update(50.0, load_bw=1.0) == [] and tr.activity == "standing"
    tr.update(51.0, load_bw=0.0)
    assert tr.activity == "idle"


async def test_dropped_frames_counted_once(profile) -> None:  # type: ignore[no-untyped-def]
    """Frames lost on the link are reported by the source AND seen as gaps by the kernels: count once."""
    params = RunParams(duration_s=20, seed=6, dropout_prob=0.03)
    src = SimulatorSource(SimulatorSourceConfig(params=params, speed=0), profile)
    sink = Collect()
    pipe = Pipeline(profile, device_id="pi-test", sink=sink, body_mass_kg=70.0)
    async with src:
        await pipe.run(src, lossless=True)
    lost = src.stats["dropped"]
    assert lost > 0.02 * 2 * 20 * profile.sample_rate_hz
    run = sink.runs[0]
    # the run covers nearly the whole stream; its count is the source's, not source + kernel
    assert 0.8 * lost <= run.quality.dropped_frames <= lost
    assert run.steps > 0.9 * len([t for t in src.stream.truths if t.gait == "run"])


def test_activity_on_real_recordings(shared_data: Path) -> None:
    """Plantar-activity S04/S05 (Moticon, real people, labelled): every *Jogging* segment reads as
    running, every *Walking* / *Walking backwards* / *Walking on tiptoes* segment as walking."""
    from edge_agent.analysis.analyzer import analyze_recording
    from edge_agent.recordings import load_recording

    files = sorted((shared_data / "plantar-activity-moticon").glob("S0*/Sequence_*/insoles.csv.gz"))
    if not files:
        pytest.skip(f"no plantar-activity sequences under {shared_data}")
    expect = {
        "Jogging": "running",
        "Walking": "walking",
        "Walking backwards": "walking",
        "Walking on tiptoes": "walking",
    }
    got: dict[str, list[str]] = {k: [] for k in expect}
    for path in files:
        rec = load_recording(path)
        steps = analyze_recording(rec).steps
        for seg in rec.segments:
            label = seg.label.strip()
            if label in expect:
                got[label].append(classify_steps([s for s in steps if seg.t_start <= s.t_contact < seg.t_end]))
    assert len(got["Jogging"]) >= 5
    for label, want in expect.items():
        assert got[label] == [want] * len(got[label]), (label, got[label])


async def test_calibration_file_offsets_and_body_weight_are_used(profile) -> None:  # type: ignore[no-untyped-def]
    """What `calibrate` wrote: per-sensor zero offsets are subtracted, its body weight is used."""
    from edge_agent.runtime.pipeline import Calibration

    rec, _ = simulate(profile, RunParams(duration_s=20, seed=9, body_mass_kg=70, swing_offset_n=0))
    offsets = np.linspace(0.2, 0.6, profile.n_sensors, dtype=np.float32)  # N/cm², a drifting insole
    shifted = []
    for b in _batches(rec, 20):
        shifted.append(FrameBatch(side=b.side, t=b.t, raw=b.raw + offsets))

    async def run_with(cal: Calibration | None) -> RunSummary:
        sink = Collect()
        pipe = Pipeline(
            profile,
            device_id="pi-test",
            sink=sink,
            calibration=cal,
            body_mass_kg=50.0,
            settings=PipelineConfig(standing_calibration=False),
        )
        for i in range(0, len(shifted), 2):
            await pipe.process(shifted[i : i + 2])
        await pipe.finish()
        assert len(sink.runs) == 1
        return sink.runs[0]

    cal = Calibration(
        profile=profile.name,
        created_at=0.0,
        body_weight_n=70 * G,
        offsets={"left": offsets.tolist(), "right": offsets.tolist()},
    )
    good = await run_with(cal)
    assert good.body_mass_kg == pytest.approx(70.0)
    assert good.left.peak_force_bw.mean == pytest.approx(2.5, rel=0.1)  # the simulated active peak
    assert good.quality.calibration_age_s is not None and good.quality.calibration_age_s > 1e9  # 1970
    raw = await run_with(None)  # no calibration: offsets read as load, configured 50 kg
    assert raw.body_mass_kg == pytest.approx(50.0)
    assert raw.left.peak_force_bw.mean > 1.2 * good.left.peak_force_bw.mean
    wrong = Calibration(profile="pedar-99", created_at=0.0, body_weight_n=999.0)
    pipe = Pipeline(profile, device_id="pi-test", sink=Collect(), calibration=wrong, body_mass_kg=60.0)
    assert pipe.bw_source == "configured body mass"  # another insole's calibration is ignored


async def test_result_does_not_depend_on_how_frames_are_batched(profile) -> None:  # type: ignore[no-untyped-def]
    """One huge wakeup (replay at full speed, a backlog) finds the same run as small real-time ones."""
    rec, _ = simulate(profile, RunParams(duration_s=35, standing_s=5, walking_s=8, seed=21))
    batches = _batches(rec, 20)

    async def run_in(groups: int) -> tuple[RunSummary, list[WindowSummary], Pipeline]:
        sink = Collect()
        pipe = Pipeline(profile, device_id="pi-test", sink=sink, body_mass_kg=70.0)
        for i in range(0, len(batches), groups):
            await pipe.process(batches[i : i + groups])
        await pipe.finish()
        assert len(sink.runs) == 1
        return sink.runs[0], sink.windows, pipe

    small, small_w, p1 = await run_in(2)
    huge, huge_w, p2 = await run_in(len(batches))
    assert p2.counters["wakeups"] == 1
    assert huge.steps == small.steps and len(huge_w) == len(small_w) == huge.windows
    assert huge.started_at - p2.unix(0.0) == pytest.approx(small.started_at - p1.unix(0.0), abs=0.01)
    assert huge.duration_s == pytest.approx(small.duration_s, abs=0.01)
    assert [w.steps for w in huge_w] == [w.steps for w in small_w]


async def test_every_frame_of_a_full_speed_replay_is_analysed(profile, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The end of the source must not cut off what is still queued (regression: a replay at speed 0
    with 200 ms batches lost up to two thirds of its frames)."""
    from edge_agent.recordings import save_recording
    from edge_agent.sources.replay import ReplaySource, ReplaySourceConfig

    rec, _ = simulate(profile, RunParams(duration_s=60, seed=2))
    save_recording(rec, tmp_path / "r.ffrec")
    src = ReplaySource(ReplaySourceConfig(path=tmp_path / "r.ffrec", speed=0, batch_ms=200), profile)
    outbox = Outbox(tmp_path / "outbox.sqlite", "pi-test")  # a real sink: storing a window yields the loop
    pipe = Pipeline(profile, device_id="pi-test", sink=OutboxSink(outbox, Topics("pi-test")), body_mass_kg=70.0)
    async with src:
        await pipe.run(src, lossless=True)
    assert pipe.counters["frames_in"] == src.stats["frames"] == 2 * 60 * 100
    runs = [m for m in (parse_stored_message(r.payload) for r in outbox.pending(100)) if isinstance(m, RunSummary)]
    assert len(runs) == 1 and runs[0].duration_s == pytest.approx(60.0, abs=1.0)
    outbox.close()
