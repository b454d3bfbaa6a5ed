"""The metronome on the sample clock: exact click positions, tempo changes without a double click or a gap, and the
renderer that mixes clicks and cues block by block (edge_agent/runtime/feedback/scheduler.py, renderer.py)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.runtime.feedback.renderer import Onset, Renderer, SampleClock
from edge_agent.runtime.feedback.scheduler import ClickScheduler


def render_clicks(sched: ClickScheduler, total: int, blocks: list[int] | int) -> list[int]:
    """Ask for onsets block by block, as a sink does, until ``total`` samples."""
    out: list[int] = []
    pos, i = 0, 0
    while pos < total:
        n = blocks if isinstance(blocks, int) else blocks[i % len(blocks)]
        n = min(n, total - pos)
        out += sched.clicks_in(pos, n)
        pos += n
        i += 1
    return out


@pytest.mark.parametrize("fs", [8000, 16000, 22050, 44100, 48000, 96000])
@pytest.mark.parametrize("spm", [100.0, 150.0, 172.5, 177.7, 180.0, 240.0])
@pytest.mark.parametrize("block", [1, 7, 480, 1024])
def test_click_positions_are_exact_at_any_cadence_rate_and_block(fs: int, spm: float, block: int) -> None:
    sched = ClickScheduler(fs)
    sched.set_tempo(spm, 0)
    total = fs * 10
    got = render_clicks(sched, total, block)
    period = fs * 60.0 / spm
    want = [
        math.floor(k * period + 0.5) for k in range(int(total / period) + 2) if math.floor(k * period + 0.5) < total
    ]
    assert got == want
    # no drift: the 10-second grid stays within half a sample of k · period
    assert all(abs(p - k * period) <= 0.5 for k, p in enumerate(got))


def test_long_run_accumulates_no_error() -> None:
    fs, spm = 48_000, 173.3
    sched = ClickScheduler(fs)
    sched.set_tempo(spm, 0)
    hour = fs * 3600
    period = fs * 60.0 / spm
    last = render_clicks(sched, hour, 4800)[-1]
    k = round(last / period)
    assert abs(last - k * period) <= 0.5


def test_tempo_change_continues_from_the_last_click() -> None:
    fs = 1000
    sched = ClickScheduler(fs)
    sched.set_tempo(120.0, 0)  # every 500 samples
    assert sched.clicks_in(0, 1200) == [0, 500, 1000]
    sched.set_tempo(150.0, 1200)  # every 400: next at 1000 + 400
    assert sched.clicks_in(1200, 1000) == [1400, 1800]
    # slowing down: the next comes a new period after the last click
    sched.set_tempo(100.0, 2200)  # every 600: 1800 + 600
    assert sched.clicks_in(2200, 1000) == [2400, 3000]


def test_speeding_up_late_in_a_period_clicks_at_once_not_twice() -> None:
    fs = 1000
    sched = ClickScheduler(fs)
    sched.set_tempo(60.0, 0)  # every 1000
    assert sched.clicks_in(0, 900) == [0]
    sched.set_tempo(200.0, 900)  # every 300: 0 + 300 has passed → the first sample not yet rendered
    assert sched.clicks_in(900, 700) == [900, 1200, 1500]


def test_stop_and_restart_and_aligned_start() -> None:
    sched = ClickScheduler(1000)
    sched.set_tempo(120.0, 0)
    assert sched.clicks_in(0, 600) == [0, 500]
    sched.set_tempo(None, 600)
    assert sched.clicks_in(600, 2000) == []
    sched.set_tempo(120.0, 2600, first_at=2750)  # e.g. the runner's next footfall
    assert sched.clicks_in(2600, 1000) == [2750, 3250]
    sched.set_tempo(None, 3600)
    sched.set_tempo(120.0, 3600, first_at=100)  # a moment already past: start now
    assert sched.clicks_in(3600, 10) == [3600]


def test_same_tempo_again_changes_nothing() -> None:
    sched = ClickScheduler(1000)
    sched.set_tempo(120.0, 0)
    assert sched.clicks_in(0, 700) == [0, 500]
    sched.set_tempo(120.0, 700)
    assert sched.clicks_in(700, 400) == [1000]


@settings(max_examples=200, deadline=None)
@given(
    fs=st.sampled_from([8000, 16000, 44100, 48000]),
    changes=st.lists(st.tuples(st.floats(100.0, 240.0), st.integers(1, 30_000)), min_size=1, max_size=12),
    block=st.integers(1, 2048),
)
def test_tempo_changes_never_double_click_nor_leave_a_gap(
    fs: int, changes: list[tuple[float, int]], block: int
) -> None:
    """Property: every interval is between the shorter and the longer of the tempos around it (±1 sample)."""
    sched = ClickScheduler(fs)
    pos = 0
    clicks: list[tuple[int, float]] = []  # (onset, period in force when it was scheduled)
    periods: list[float] = []
    for spm, dur in changes:
        sched.set_tempo(spm, pos)
        periods.append(fs * 60.0 / spm)
        end = pos + dur
        while pos < end:
            n = min(block, end - pos)
            clicks += [(c, periods[-1]) for c in sched.clicks_in(pos, n)]
            pos += n
    onsets = [c for c, _ in clicks]
    assert onsets == sorted(set(onsets))
    lo, hi = min(periods), max(periods)
    for (a, _), (b, _) in itertools.pairwise(clicks):
        assert lo - 1 <= b - a <= hi + 1


# -- renderer -------------------------------------------------------------------------------------------------------


def make_renderer(fs: int = 1000) -> Renderer:
    return Renderer(fs, np.array([1.0, 0.5, 0.25], dtype=np.float32))


def test_renderer_places_the_click_wave_at_its_onset_across_blocks() -> None:
    whole, blocks = make_renderer(), make_renderer()
    for r in (whole, blocks):
        r.set_tempo(120.0)
    a = whole.render(1500)
    b = np.concatenate([blocks.render(n) for n in (499, 2, 1, 998)])  # the onset at 500 falls on a block edge
    assert np.array_equal(a, b)
    assert np.flatnonzero(a).tolist() == [0, 1, 2, 500, 501, 502, 1000, 1001, 1002]
    assert a[500:503].tolist() == [1.0, 0.5, 0.25]


def test_a_cue_starts_at_the_next_block_and_is_reported_with_its_cause() -> None:
    r = make_renderer()
    seen: list[Onset] = []
    r.onset_listeners.append(seen.append)
    r.render(100)
    r.play("loading", np.full(250, 0.5, dtype=np.float32), cause_t=12.5, value=71.0)
    block = r.render(100)
    assert block.tolist() == [0.5] * 100
    rest = r.render(200)
    assert rest[:150].tolist() == [0.5] * 150 and not rest[150:].any()
    assert seen == [Onset("loading", 100, 12.5, {"value": 71.0})]


def test_mixing_clips_instead_of_wrapping() -> None:
    r = make_renderer()
    r.play("a", np.full(10, 0.8, dtype=np.float32))
    r.play("b", np.full(10, 0.8, dtype=np.float32))
    assert r.render(10).max() == pytest.approx(1.0)


def test_sample_clock_maps_both_ways_with_the_latency_offset() -> None:
    clock = SampleClock(48_000, latency_offset_s=0.2)
    assert clock.heard_at(0) is None and clock.sample_heard_at(1.0) is None
    clock.anchor(4800, 100.0)
    assert clock.played_at(9600) == pytest.approx(100.1)
    assert clock.heard_at(9600) == pytest.approx(100.3)
    assert clock.sample_heard_at(100.3) == 9600


def test_the_first_click_can_be_heard_at_a_chosen_moment() -> None:
    r = Renderer(1000, np.ones(1, dtype=np.float32), latency_offset_s=0.150)
    r.clock.anchor(0, 50.0)
    r.set_tempo(120.0, first_heard_at=50.400)  # output 150 ms earlier, at sample 250
    out = r.render(1000)
    assert np.flatnonzero(out).tolist() == [250, 750]
