"""Outbox on real SQLite files: order, ids, acks, resends, bounds, crash recovery, bad files."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_agent.contract import Ack, Topics, WindowSummary, parse_stored_message
from edge_agent.runtime.outbox import AckRefused, Outbox, OutboxError
from tests.support.paths import REPO

T = Topics("dev1")


class Clock:
    def __init__(self, t: float = 1.75e9) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def window(i: int) -> WindowSummary:
    """A real contract message; the outbox overwrites its envelope placeholders."""
    return WindowSummary(
        msg_id="placeholder",
        device_id="dev1",
        stream_id="none",
        seq=1,
        device_time=1e9 + i,
        run_id="dev1-20260101T000000",
        window_index=i,
        t_start=1e9 + 10 * i,
        t_end=1e9 + 10 * i + 10,
        steps=28,
        cadence_spm=168.0,
    )


def test_order_ids_and_envelope(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", "dev1")
    seqs = [ob.put(T.summary, window(i)) for i in range(30)]
    seqs.append(ob.put(T.run, lambda s, m: json.dumps({"seq": s, "msg_id": m}).encode(), kind="run"))
    seqs.append(ob.put(T.summary, {"kind": "summary", "hello": 1}))
    assert seqs == list(range(1, 33))
    rows = ob.pending(100)
    assert [r.seq for r in rows] == seqs
    assert len({r.msg_id for r in rows}) == len(rows)
    for r in rows[:30]:
        msg = parse_stored_message(r.payload)  # what the plugin does
        assert (msg.seq, msg.msg_id, msg.stream_id, msg.device_id) == (r.seq, r.msg_id, ob.stream_id, "dev1")
    assert json.loads(rows[30].payload) == {"seq": 31, "msg_id": rows[30].msg_id}
    assert json.loads(rows[31].payload)["stream_id"] == ob.stream_id
    assert [r.seq for r in ob.pending(5, exclude=[1, 2])] == [3, 4, 5, 6, 7]
    with pytest.raises(ValueError, match="qos"):
        ob.put(T.summary, window(0), qos=5)
    with pytest.raises(ValueError, match="kind is required"):
        ob.put(T.summary, lambda s, m: b"{}")
    assert ob.last_seq() == 32  # failed puts consumed nothing


def test_ack_deletes_and_missing_ranges_resend(tmp_path: Path) -> None:
    clock = Clock()
    ob = Outbox(tmp_path / "o.db", "dev1", resend_after_s=30, clock=clock)
    for i in range(20):
        ob.put(T.summary, window(i))
    ob.mark_sent(list(range(1, 21)))
    assert ob.pending(100) == []  # all in flight, not yet due
    deleted = ob.ack(10, [(13, 14), (17, 17)])
    assert deleted == 10
    assert ob.backlog == 10
    assert [r.seq for r in ob.pending(100)] == [13, 14, 17]
    ob.mark_sent([13, 14, 17])
    clock.t += 31  # resend timer: rows not acked within resend_after_s go again
    assert [r.seq for r in ob.pending(100)] == [11, 12, 15, 16, 18, 19, 20]
    clock.t += 100
    ob.mark_sent([11, 12, 15, 16, 18, 19, 20])
    stats = ob.stats()
    assert stats["sent"] == 30 and stats["resent"] == 10 and stats["acked"] == 10
    # plugin stored everything: contiguous up to 20
    assert ob.apply_ack(Ack(device_id="dev1", stream_id=ob.stream_id, acked_seq=20)) == 10
    assert ob.backlog == 0


def test_ack_guards(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ob = Outbox(tmp_path / "o.db", "dev1")
    for i in range(5):
        ob.put(T.summary, window(i))
    assert ob.apply_ack(Ack(device_id="dev1", stream_id="otherstream", acked_seq=5)) == 0
    assert ob.apply_ack(Ack(device_id="dev2", stream_id=ob.stream_id, acked_seq=5)) == 0
    assert ob.backlog == 5
    # a forged ack (or one for a lost copy of this outbox) claims seqs never assigned: refused, nothing deleted
    for acked, highest in ((99, None), (0, 99), (5, 6)):
        with pytest.raises(AckRefused, match="beyond the last assigned seq 5"):
            ob.ack(acked, [], highest_seq=highest)
    assert ob.backlog == 5 and ob.stats()["refused_acks"] == 3
    # an ack only covers rows handed to the broker: none yet, then 1..3
    assert ob.ack(5) == 0 and ob.backlog == 5
    for seq in (1, 2, 3):
        ob.handing_over(seq)
    assert ob.ack(5, [], highest_seq=5) == 3 and [r.seq for r in ob.pending(100)] == [4, 5]
    ob.mark_sent([4, 5])
    assert ob.ack(5) == 2
    ob.put(T.summary, window(6))
    assert ob.last_seq() == 6 and ob.backlog == 1


def test_what_was_sent_before_a_restart_is_known_after_it(tmp_path: Path) -> None:
    """Acks after a restart may cover rows the previous process sent (attempts > 0), never the others."""
    path = tmp_path / "o.db"
    ob = Outbox(path, "dev1")
    for i in range(6):
        ob.put(T.summary, window(i))
    ob.mark_sent([1, 2, 3, 4])
    ob.close()
    ob = Outbox(path, "dev1")
    assert ob.ack(6) == 4 and [r.seq for r in ob.pending(100)] == [5, 6]
    ob.close()
    ob = Outbox(path, "dev1")  # only unsent rows left: acks delete nothing
    assert ob.ack(6) == 0 and ob.backlog == 2


def test_highest_seq_releases_rows_above_a_gap(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", "dev1")
    for i in range(10):
        ob.put(T.summary, window(i))
    ob.handing_over(10)  # the publisher handed seqs up to 10 to the broker
    # plugin: has 1-3, 6-8 (4-5 missing), highest 8
    assert ob.ack(3, [(4, 5)], highest_seq=8) == 6
    assert [r.seq for r in ob.pending(100)] == [4, 5, 9, 10]
    # a possibly truncated missing list (256 ranges) is not trusted beyond acked_seq
    many = [(100 + 2 * k, 100 + 2 * k) for k in range(256)]
    assert ob.ack(3, many, highest_seq=10) == 0


def test_bound_warns_first_then_drops_window_summaries_before_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ob = Outbox(tmp_path / "o.db", "dev1", max_rows=10)
    with caplog.at_level(logging.WARNING, logger="edge_agent.runtime.outbox"):
        ob.put(T.run, window(0).model_dump() | {"kind": "run"}, kind="run")  # seq 1: a run summary
        for i in range(6):
            ob.put(T.summary, window(i))  # seq 2..7
        assert "NEARLY FULL" not in caplog.text
        ob.put(T.summary, window(7))  # seq 8 → 80 %
        warned = [r for r in caplog.records if "NEARLY FULL" in r.message]
        assert len(warned) == 1 and warned[0].levelno == logging.WARNING
        assert ob.stats()["dropped"] == 0  # warned BEFORE anything was dropped
        ob.put(T.run, lambda s, m: b"{}", kind="run")  # seq 9
        ob.put(T.summary, window(9))  # seq 10: full
        ob.put(T.summary, window(10))  # seq 11: must drop one
        ob.put(T.summary, window(11))  # seq 12
    dropped = [r for r in caplog.records if "DROPPED" in r.message]
    assert len(dropped) == 2 and all(r.levelno == logging.ERROR for r in dropped)
    kept = [r.seq for r in ob.pending(100)]
    assert kept == [1, 4, 5, 6, 7, 8, 9, 10, 11, 12]  # oldest summaries 2, 3 went; runs 1 and 9 stayed
    st = ob.stats()
    assert st["dropped"] == 2 and st["dropped_run"] == 0 and st["rows"] == 10
    # only runs left to drop → runs go too, oldest first, and that is counted separately
    ob2 = Outbox(tmp_path / "o2.db", "dev1", max_rows=2)
    for _ in range(3):
        ob2.put(T.run, lambda s, m: b"{}", kind="run")
    assert [r.seq for r in ob2.pending(10)] == [2, 3] and ob2.stats()["dropped_run"] == 1


def test_size_bound_counts_payload_bytes_on_every_path_and_drops_by_priority(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A window summary is ~11 kB, so bytes, not rows, bind first. The byte count lives in SQLite
    (triggers): puts, acks, drops and reopening must all agree with the payloads really stored."""

    def real_bytes(path: Path) -> int:
        import sqlite3

        with sqlite3.connect(path) as db:
            return int(db.execute("SELECT COALESCE(SUM(length(payload)), 0) FROM outbox").fetchone()[0])

    def blob(n: int) -> Callable[[int, str], bytes]:
        return lambda seq, msg_id: b"x" * n

    path = tmp_path / "o.db"
    ob = Outbox(path, "dev1", max_bytes=10_000)
    with caplog.at_level(logging.WARNING, logger="edge_agent.runtime.outbox"):
        ob.put(T.run, blob(1_000), kind="run")  # seq 1
        for _ in range(6):
            ob.put(T.summary, blob(1_000), kind="summary")  # seq 2..7: 7,000 bytes
        assert "NEARLY FULL" not in caplog.text
        ob.put(T.summary, blob(1_000), kind="summary")  # seq 8: 8,000 bytes = 80 %
        assert sum("NEARLY FULL" in r.message for r in caplog.records) == 1 and ob.stats()["dropped"] == 0
        ob.put(T.run, blob(1_000), kind="run")  # seq 9
        ob.put(T.summary, blob(2_500), kind="summary")  # seq 10: 11,500 > 10,000 → free 1,500 = two rows
    assert [r.seq for r in ob.pending(100)] == [1, 4, 5, 6, 7, 8, 9, 10]  # oldest summaries went, runs stayed
    st = ob.stats()
    assert st["bytes"] == real_bytes(path) == 9_500 and st["dropped"] == 2 and st["dropped_run"] == 0
    assert any(
        "size bound 10,000 payload bytes reached" in r.message and r.levelno == logging.ERROR for r in caplog.records
    )
    ob.handing_over(10)
    assert ob.ack(5, []) == 3  # seqs 1, 4, 5 acked
    assert ob.payload_bytes() == real_bytes(path) == 6_500
    ob.close()

    # the count survives a reopen; a lower bound in the config applies at the next expire()
    ob = Outbox(path, "dev1", max_bytes=4_000)
    assert ob.payload_bytes() == 6_500
    assert ob.expire() == {"summary": 3}  # seqs 6, 7, 8 (3,000 bytes) → 3,500 left
    assert [r.seq for r in ob.pending(100)] == [9, 10] and ob.payload_bytes() == real_bytes(path) == 3_500
    ob.close()


def test_outbox_file_from_before_the_size_bound_gets_its_byte_count(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "o.db"
    ob = Outbox(path, "dev1")
    for _ in range(3):
        ob.put(T.summary, window(0))
    stored = ob.payload_bytes()
    ob.close()
    with sqlite3.connect(path) as db:  # what an older agent left behind: no count, no triggers
        db.execute("DELETE FROM meta WHERE key = 'bytes'")
        db.execute("DROP TRIGGER outbox_bytes_ins")
        db.execute("DROP TRIGGER outbox_bytes_del")
    ob = Outbox(path, "dev1")
    assert ob.payload_bytes() == stored > 0 and ob.backlog == 3
    ob.put(T.summary, window(1))
    ob.handing_over(4)
    assert ob.ack(4, []) == 4 and ob.payload_bytes() == 0


def test_age_bound_and_no_plugin_retention(tmp_path: Path) -> None:
    clock = Clock()
    ob = Outbox(
        tmp_path / "o.db", "dev1", max_age_s=100, retention_without_plugin_s=50, require_plugin_ack=False, clock=clock
    )
    ob.put(T.summary, window(0))
    clock.t += 60
    for i in range(1, 4):
        ob.put(T.summary, window(i))
    ob.mark_sent([2, 3])
    ob.mark_puback([2, 3])
    assert [r.seq for r in ob.pending(10)] == [1, 4]  # no-plugin mode: PUBACKed rows are done
    assert ob.undelivered() == 2
    clock.t += 45  # seq 1 is 105 s old; PUBACK of 2, 3 is 45 s old
    assert ob.expire() == {"summary": 1}
    assert ob.backlog == 3
    clock.t += 10  # retention (50 s) after PUBACK passed
    assert ob.expire() == {}
    assert ob.backlog == 1 and ob.stats()["expired_retained"] == 2


def test_rows_stamped_before_clock_sync_are_not_aged_out(tmp_path: Path) -> None:
    """A Pi without RTC boots at 1970 until NTP: those rows must not look 56 years old."""
    clock = Clock(86_400.0)
    ob = Outbox(tmp_path / "o.db", "dev1", max_age_s=3600, clock=clock)
    ob.put(T.summary, window(0))
    assert ob.expire() == {}
    clock.t = 1.75e9  # NTP sync
    ob.put(T.summary, window(1))
    clock.t += 7200
    assert ob.expire() == {"summary": 1}  # only the row with a real, too-old timestamp
    assert [r.seq for r in ob.pending(10)] == [1]


def test_reschedule_after_reconnect(tmp_path: Path) -> None:
    for plugin in (True, False):
        ob = Outbox(tmp_path / f"o{plugin}.db", "dev1", require_plugin_ack=plugin)
        for i in range(4):
            ob.put(T.summary, window(i))
        ob.mark_sent([1, 2, 3, 4])
        ob.mark_puback([1, 2])
        assert ob.pending(10) == []
        ob.reschedule_unacked()
        expect = [1, 2, 3, 4] if plugin else [3, 4]
        assert [r.seq for r in ob.pending(10)] == expect


def test_reschedule_leaves_old_pubacked_backlog_to_its_timers(tmp_path: Path) -> None:
    clock = Clock()
    ob = Outbox(tmp_path / "o.db", "dev1", resend_after_s=600, clock=clock)
    for i in range(4):
        ob.put(T.summary, window(i))
    ob.mark_sent([1, 2, 3, 4])
    ob.mark_puback([1, 2])  # long ago: the plugin is absent, these wait for their timer
    clock.t += 300
    ob.mark_puback([3])  # recently PUBACKed: may have died with the broker
    assert ob.reschedule_unacked(recent_s=120) == 2
    assert [r.seq for r in ob.pending(10)] == [3, 4]
    clock.t += 301  # timers of 1 and 2 (600 s) expire
    assert [r.seq for r in ob.pending(10)] == [1, 2, 3, 4]


CHILD = textwrap.dedent(
    """
    import sys
    from edge_agent.runtime.outbox import Outbox
    ob = Outbox(sys.argv[1], "dev1")
    print("stream", ob.stream_id, flush=True)
    i = 0
    while True:
        seq = ob.put("footfall/dev1/summary", lambda s, m: b'{"x":1}' * 50, kind="summary")
        print(seq, flush=True)  # put() returned: the row must survive anything now
        i += 1
    """
)


def test_rows_survive_kill_9_and_reopen(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    for round_ in range(2):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert proc.stdout is not None
        stream = proc.stdout.readline().split()[1]
        confirmed: list[int] = []
        while len(confirmed) < 150:
            confirmed.append(int(proc.stdout.readline()))
        proc.send_signal(signal.SIGKILL)  # mid-run, no cleanup
        proc.wait(10)
        ob = Outbox(db, "dev1")
        assert ob.stream_id == stream  # the stream survives restarts
        held = [r.seq for r in ob.pending(10_000)]
        assert set(confirmed) <= set(held)  # nothing confirmed was lost
        assert held == list(range(1, len(held) + 1))  # and no holes
        print(f"round {round_}: confirmed {len(confirmed)}, held {len(held)} after kill -9")
        nxt = ob.put(T.summary, window(0))
        assert nxt == held[-1] + 1  # seq continues, never reused
        ob.close()


def test_bad_files_are_refused_and_left_untouched(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    before = junk.read_bytes()
    with pytest.raises(OutboxError, match=r"junk\.db.*cannot open"):
        Outbox(junk, "dev1")
    assert junk.read_bytes() == before
    ob = Outbox(tmp_path / "o.db", "dev1")
    ob.put(T.summary, window(0))
    ob.close()
    with pytest.raises(OutboxError, match="belongs to device 'dev1'"):
        Outbox(tmp_path / "o.db", "dev2")
    assert Outbox(tmp_path / "o.db", "dev1").backlog == 1
    with pytest.raises(ValueError, match="device_id"):
        Outbox(tmp_path / "x.db", "bad id!")


def test_disk_full_is_a_clear_error_and_keeps_what_is_stored(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", "dev1")
    for i in range(3):
        ob.put(T.summary, window(i))
    pages = ob._db.execute("PRAGMA page_count").fetchone()[0]
    ob._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
    big = window(9).model_copy(update={"run_id": "x" * 60})
    with pytest.raises(OutboxError, match=r"o\.db: cannot store summary message .*full"):
        for _ in range(50):
            ob.put(T.summary, big)
    ob._db.execute("PRAGMA max_page_count = 1073741823")
    held = [r.seq for r in ob.pending(100)]
    assert held[:3] == [1, 2, 3] and held == list(range(1, len(held) + 1))
    assert ob.put(T.summary, window(4)) == held[-1] + 1  # the failed put consumed no seq


def test_space_is_given_back_after_a_backlog_drains(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    ob = Outbox(db, "dev1")
    for _ in range(400):
        ob.put(T.summary, lambda s, m: b"x" * 8000, kind="summary")
    pages = lambda: ob._db.execute("PRAGMA page_count").fetchone()[0]  # noqa: E731
    full = pages()
    ob.handing_over(400)
    ob.ack(400)
    for _ in range(3):
        ob.expire()
    assert pages() < full / 4, (full, pages())
    assert ob.put(T.summary, window(0)) == 401


def test_large_acks_are_applied_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import edge_agent.runtime.outbox as outbox_mod

    monkeypatch.setattr(outbox_mod, "ACK_CHUNK", 7)
    ob = Outbox(tmp_path / "o.db", "dev1")
    for i in range(30):
        ob.put(T.summary, window(i))
    ob.handing_over(30)
    assert ob.ack(22, [(25, 26)], highest_seq=28) == 26  # 1..22 in 4 chunks, then 23, 24, 27, 28
    assert [r.seq for r in ob.pending(100)] == [25, 26, 29, 30]
    assert ob.backlog == 4 and ob.stats()["acked"] == 26
