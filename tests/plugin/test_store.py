"""Store: migrations, dedupe, runs from windows, acks state, bad rows, export, retention — on real SQLite files and
a real PostgreSQL server (each test using ``store`` or ``dbs`` runs on both)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from edge_agent.contract import Alert, RunSummary, WindowSummary, loading_rate_basis
from plugin.history import generate_history
from plugin.store import WINDOW_COLS, Store, StoreError, summaries, window_measures
from plugin.store.backend import open_backend
from plugin.store.migrations import load_migrations, migrate
from tests.plugin.conftest import Databases
from tests.support.paths import REPO

LATEST = load_migrations()[-1].version


def one_run(seed: int = 0, step_records: int = 1) -> tuple[list[WindowSummary], RunSummary]:
    msgs = list(generate_history(weeks=1, seed=seed, step_records_last_runs=step_records))
    runs = [i for i, m in enumerate(msgs) if isinstance(m, RunSummary)]
    last = runs[-1]
    first = runs[-2] + 1 if len(runs) > 1 else 0
    windows = [m for m in msgs[first:last] if isinstance(m, WindowSummary)]
    return windows, msgs[last]  # type: ignore[return-value]


def test_migrations_apply_once_and_reopen_keeps_data(dbs: Databases) -> None:
    windows, run = one_run()
    with Store(dbs.target("a", empty=True)) as s:
        assert s.schema_version() == LATEST
        assert s.insert_many([*windows, run]) == len(windows) + 1
    with Store(dbs.target("a")) as s:  # reopening does not re-run migrations or lose rows
        assert s.schema_version() == LATEST
        assert s.counts()["windows"] == len(windows) == s.summaries()
        assert s.counts()["runs"] == 1


def test_upgrade_from_an_older_schema_keeps_rows(tmp_path: Path) -> None:
    db = tmp_path / "v2.db"
    mig = REPO / "plugin" / "migrations"
    with sqlite3.connect(db) as c:  # a database written by the version that had migrations 1–2 only
        c.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL)")
        for n, name in ((1, "0001_initial.sql"), (2, "0002_risk_state.sql")):
            c.executescript((mig / name).read_text())
            c.execute("INSERT INTO schema_version VALUES (?, 0)", (n,))
        c.execute("INSERT INTO streams VALUES ('dev1', 'stream1', 41, 42, 0)")
    with Store(db) as s:
        assert s.schema_version() == LATEST
        assert s.streams() == [{"device_id": "dev1", "stream_id": "stream1", "contiguous_seq": 41, "max_seq": 42,
                                "updated_at": 0.0, "abandoned": 0}]  # fmt: skip


def _v3_database(db: Path, windows: list[WindowSummary]) -> None:
    """A database as footfall wrote it before migration 0004: step records inside each window's JSON."""
    mig = REPO / "plugin" / "migrations"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL)")
        for n, name in ((1, "0001_initial.sql"), (2, "0002_risk_state.sql"), (3, "0003_stream_gaps.sql")):
            c.executescript((mig / name).read_text())
            c.execute("INSERT INTO schema_version VALUES (?, 0)", (n,))
        for w in windows:
            c.execute("INSERT INTO messages VALUES (?,?,?,?,?,?,?)",
                      (w.msg_id, w.device_id, w.stream_id, w.seq, w.kind, w.run_id, 1.0))  # fmt: skip
            row = {"msg_id": w.msg_id, "run_id": w.run_id, "device_id": w.device_id, "runner": w.runner,
                   "window_index": w.window_index, "t_start": w.t_start, "t_end": w.t_end,
                   "activity": w.activity, **window_measures(w)}  # fmt: skip
            then = [k for k in WINDOW_COLS if k in {r[1] for r in c.execute("PRAGMA table_info(windows)")}]
            cols = [*then, "json"]
            c.execute(f"INSERT INTO windows({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                      [*(row[k] for k in then), w.model_dump_json()])  # fmt: skip


def test_upgrade_moves_step_records_out_of_the_window_json_without_losing_any(tmp_path: Path) -> None:
    windows, run = one_run()
    with_records = [w for w in windows if w.step_records]
    assert len(with_records) >= 2
    db = tmp_path / "v3.db"
    _v3_database(db, windows)
    broken = with_records[1].msg_id
    with sqlite3.connect(db) as c:  # a row SQLite cannot parse must survive the migration untouched
        c.execute("UPDATE windows SET json = '{broken' || json WHERE msg_id = ?", (broken,))
        before = {r[0]: r[1] for r in c.execute("SELECT msg_id, json FROM windows")}
    with Store(db) as s:
        assert s.schema_version() == LATEST
        counts = s.counts()
        assert counts["windows"] == len(windows) and counts["messages"] == len(windows)
        assert counts["window_steps"] == len(with_records) - 1  # all but the unreadable row
        assert s.insert_message(run) is True  # the run's end arrives after the upgrade
        got = s.get_run(run.run_id)
        assert got is not None and len(got["windows"]) == len(windows)
        expected = [
            {**r.model_dump(mode="json"), "window_index": w.window_index}
            for w in windows if w.msg_id != broken for r in w.step_records
        ]  # fmt: skip
        assert got["steps"] == expected  # every record, values unchanged, in window order
        assert got["corrupt_rows"] == [{"table": "windows", "key": broken, "error": "stored JSON is not valid JSON"}]
        by_id = {w["msg_id"]: w for w in got["windows"]}
        assert by_id[with_records[0].msg_id]["step_records"] == len(with_records[0].step_records)
        assert by_id[broken]["step_records"] == 0
        after = {r["msg_id"]: r["json"] for r in s._rows("SELECT msg_id, json FROM windows")}
        assert after[broken] == before[broken]  # left as it was, still reported
        # migration 0008: what the old rows' loading rates compare with, from their own JSON
        basis = {r["msg_id"]: r["lr_basis"] for r in s._rows("SELECT msg_id, lr_basis FROM windows")}
        assert basis[broken] is None  # unreadable JSON: no basis, so never in a baseline
        assert all(basis[w.msg_id] == loading_rate_basis(w) for w in windows if w.msg_id != broken)
        for w in windows:  # the rest: the same message minus its step records
            if w.msg_id != broken:
                assert json.loads(after[w.msg_id]) == json.loads(w.model_dump_json(exclude={"step_records"}))
    with Store(db) as s:  # reopening does not migrate again
        assert s.schema_version() == LATEST and s.counts()["window_steps"] == len(with_records) - 1


def test_step_records_are_stored_apart_and_read_only_when_asked_for(store: Store) -> None:
    windows, run = one_run()
    store.insert_many([*windows, run])
    with_records = [w for w in windows if w.step_records]
    raw = store._one("SELECT json FROM windows WHERE msg_id = ?", (with_records[0].msg_id,))[0]
    assert "step_records" not in json.loads(raw)
    full = store.get_run(run.run_id)
    assert len(full["steps"]) == sum(len(w.step_records) for w in windows)
    assert full["steps"][0] == {**with_records[0].step_records[0].model_dump(mode="json"),
                                "window_index": with_records[0].window_index}  # fmt: skip
    with store._tx() as c:
        c.execute("UPDATE window_steps SET records = '[{oops' WHERE msg_id = ?", (with_records[0].msg_id,))
    lite = store.get_run(run.run_id, include_steps=False)
    assert lite["steps"] == run.steps and lite["corrupt_rows"] == []  # the step count; records not even read
    assert sum(w["step_records"] for w in lite["windows"]) == len(full["steps"])  # counts without parsing
    again = store.get_run(run.run_id)
    assert [c["table"] for c in again["corrupt_rows"]] == ["window_steps"]
    assert len(again["steps"]) == len(full["steps"]) - len(with_records[0].step_records)  # the rest still shown
    assert store.apply_retention(1.0, now=run.ended_at + 2 * 86400) == len(windows)
    assert store.counts()["window_steps"] == 0  # records go with their windows


def test_newer_schema_is_refused_with_the_path(dbs: Databases) -> None:
    with dbs.store("new") as s, s._tx() as c:
        c.execute("INSERT INTO schema_version VALUES (99, 0)")
    where = "new.db" if dbs.backend == "sqlite" else "127.0.0.1"
    with pytest.raises(StoreError, match=rf"{where}.*schema version 99 is newer"):
        dbs.store("new")


def test_corrupt_file_is_refused_with_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"garbage\.db: not a usable footfall database"):
        Store(bad)
    assert bad.read_bytes() == b"this is not sqlite" * 100  # nothing overwritten


def test_dedupe_by_msg_id_and_run_assembled_from_windows_then_replaced(store: Store) -> None:
    windows, run = one_run()
    assert store.insert_message(windows[0], 1.0) is True
    assert store.insert_message(windows[0], 2.0) is False  # same msg_id
    assert store.insert_many(windows) == len(windows) - 1
    partial = store.get_run(run.run_id)
    assert partial is not None and partial["complete"] is False and partial["summary"] is None
    assert len(partial["windows"]) == len(windows)
    records = sum(len(w.step_records) for w in windows)
    assert records > 0 and len(partial["steps"]) == records  # step records flattened across windows
    assert partial["steps"][0]["side"] in ("left", "right") and partial["steps"][0]["window_index"] == 0
    total_steps = sum(w.steps for w in windows)
    assert store.list_runs()[0]["steps"] == total_steps
    # step-weighted VALR over windows equals the hand computation
    num = sum((w.left.valr_bw_s.mean * w.left.valr_bw_s.n + w.right.valr_bw_s.mean * w.right.valr_bw_s.n)
              for w in windows)  # fmt: skip
    den = sum(w.left.valr_bw_s.n + w.right.valr_bw_s.n for w in windows)
    assert store.list_runs()[0]["valr_mean"] == pytest.approx(num / den)
    assert store.insert_message(run, 3.0) is True
    full = store.get_run(run.run_id)
    assert full["complete"] is True and full["summary"]["msg_id"] == run.msg_id
    assert full["duration_s"] == pytest.approx(run.duration_s)
    assert store.latest_run()["run_id"] == run.run_id
    assert store.devices()[0]["device_id"] == run.device_id and store.runners()[0]["name"] == "alex"


def test_stream_state_reports_contiguous_seq_and_gaps(store: Store) -> None:
    windows, _ = one_run()
    base = windows[0]
    for seq in (1, 2, 3, 5, 6, 9):
        store.insert_message(base.model_copy(update={"msg_id": f"m{seq:08d}", "seq": seq}), time.time())
    assert store.stream_state(base.device_id, base.stream_id) == (3, [(4, 4), (7, 8)])
    for seq in (4, 7, 8):
        store.insert_message(base.model_copy(update={"msg_id": f"m{seq:08d}", "seq": seq}), time.time())
    assert store.stream_state(base.device_id, base.stream_id) == (9, [])
    assert store.stream_state("nobody", "nostream") == (0, [])


def test_gap_older_than_a_week_is_given_up_and_counted(store: Store) -> None:
    windows, _ = one_run()
    base = windows[0]
    old = time.time() - 8 * 86400
    for seq in (1, 2, 4):
        store.insert_message(base.model_copy(update={"msg_id": f"g{seq:08d}", "seq": seq}), old)
    store.insert_message(base.model_copy(update={"msg_id": "g00000005", "seq": 5}), time.time())
    # seq 3 was asked for during a week and never came (the agent's outbox dropped it): stop asking
    assert store.stream_state(base.device_id, base.stream_id) == (5, [])
    assert store.streams(base.device_id)[0]["abandoned"] == 1
    store.insert_message(base.model_copy(update={"msg_id": "g00000007", "seq": 7}), time.time())
    assert store.stream_state(base.device_id, base.stream_id) == (5, [(6, 6)])  # a fresh gap is still asked for


def test_unstorable_message_is_rejected_alone_and_nothing_else_changes(store: Store) -> None:
    windows, _ = one_run()
    store.insert_many(windows[:5])
    before = (store.counts(), store.fingerprint())
    huge = windows[5].model_copy(update={"seq": 2**70})  # does not fit a 64-bit integer column
    results = store.store_batch([(huge, 0.0), (windows[6], 0.0)])
    assert isinstance(results[0], str) and results[0].startswith("out_of_range: ")
    assert results[1] is True
    assert store.counts()["windows"] == before[0]["windows"] + 1
    assert store.counts()["messages"] == before[0]["messages"] + 1
    # raw text the database cannot read as JSON (the ingest hands over the received text): rejected alone, named
    # (a window without step records: with them, PostgreSQL stores the model re-serialised without the records)
    bare = windows[7].model_copy(update={"step_records": []})
    results = store.store_batch([(bare, 0.0, "{not json"), (windows[8], 0.0, windows[8].model_dump_json())])
    assert isinstance(results[0], str) and windows[7].msg_id in results[0] and "JSON" in results[0]
    assert results[1] is True and store.counts()["windows"] == before[0]["windows"] + 2
    assert store.insert_message(windows[7]) is True  # nothing half-stored: the same message stores fine later


def test_unreadable_json_row_is_reported_not_dropped(store: Store) -> None:
    windows, run = one_run()
    store.insert_many(windows)
    with store._tx() as c:
        c.execute("UPDATE windows SET json = '{broken' WHERE msg_id = ?", (windows[2].msg_id,))
    got = store.get_run(run.run_id)
    assert len(got["windows"]) == len(windows)  # the row is still listed
    assert got["corrupt_rows"] == [
        {"table": "windows", "key": windows[2].msg_id, "error": got["corrupt_rows"][0]["error"]}
    ]


def test_alerts_settings_and_acknowledgement(store: Store) -> None:
    a = Alert(alert_id="a" * 16, rule="loading_spike", severity="warning", confidence=0.7, title="t",
              message="m", evidence={"valr": 80.0}, runner="alex", run_id="r1", created_at=100.0)  # fmt: skip
    store.insert_alert(a)
    assert store.list_alerts()[0]["evidence"] == {"valr": 80.0}
    assert store.ack_alert(a.alert_id, by="coach") is True
    assert store.ack_alert(a.alert_id, by="someone-else") is False  # first ack kept
    assert store.get_alert(a.alert_id)["acked_by"] == "coach"
    assert store.list_alerts(include_acked=False) == []
    assert store.ack_alert("unknown-id") is False
    store.set_setting("notify_urls", ["json://127.0.0.1:1/"])
    assert store.get_setting("notify_urls") == ["json://127.0.0.1:1/"]
    with pytest.raises(ValueError):
        store.set_setting("x", float("nan"))
    assert store.get_setting("x", "default") == "default"


def test_export_csv_json_and_formula_injection(store: Store) -> None:
    windows, run = one_run()
    store.insert_many([*windows, run.model_copy(update={"runner": '=HYPERLINK("x")'})])
    rows = list(csv.DictReader(io.StringIO(store.export_runs("csv"))))
    assert len(rows) == 1 and rows[0]["runner"].startswith("'=")
    data = json.loads(store.export_runs("json"))
    assert data[0]["run_id"] == run.run_id and data[0]["complete"] is True
    with pytest.raises(ValueError, match="csv"):
        store.export_runs("xml")  # type: ignore[arg-type]


def test_retention_deletes_old_windows_keeps_runs(store: Store) -> None:
    windows, run = one_run()
    store.insert_many([*windows, run])
    assert store.apply_retention(None) == 0
    assert store.apply_retention(1.0, now=run.ended_at + 0.5 * 86400) == 0
    assert store.apply_retention(1.0, now=run.ended_at + 2 * 86400) == len(windows)
    assert store.counts()["runs"] == 1 and store.get_run(run.run_id)["windows"] == []
    with pytest.raises(ValueError):
        store.apply_retention(0)


def test_readers_in_threads_while_writing(store: Store) -> None:
    msgs = list(generate_history(weeks=2, seed=4, step_records_last_runs=0))
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                for r in store.list_runs(limit=5):
                    assert r["steps"] >= 0
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(0, len(msgs), 100):
        store.insert_many(msgs[i : i + 100])
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert store.counts()["messages"] == len(msgs)
    assert store.integrity_check() == ["ok"]


# -- upgrading a database written by the previous release -----------------------------------------------------
MAIN_DB = REPO / "tests" / "data" / "dashboard-main-v4.db.gz"


def _main_v4_copy(tmp_path: Path) -> Path:
    db = tmp_path / "main-v4.db"
    db.write_bytes(gzip.decompress(MAIN_DB.read_bytes()))
    return db


def _v4_into_postgres(sqlite_db: Path, url: str) -> None:
    """The same rows in a PostgreSQL database at schema version 4 (what a v4 store there would hold)."""
    backend = open_backend(url)
    try:
        migrate(backend, target=4)
        with sqlite3.connect(sqlite_db) as src, backend.tx() as dst:
            for table in ("devices", "runners", "messages", "streams", "runs", "windows", "window_steps", "alerts",
                          "settings", "risk_state"):  # fmt: skip
                cols = [r[1] for r in src.execute(f"PRAGMA table_info({table})")]
                rows = src.execute(f"SELECT {','.join(cols)} FROM {table}").fetchall()
                dst.executemany(f"INSERT INTO {table}({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", rows)
    finally:
        backend.close()


def test_a_database_written_by_the_previous_release_upgrades_on_both_backends(dbs: Databases, tmp_path: Path) -> None:
    sqlite_db = _main_v4_copy(tmp_path)
    with sqlite3.connect(sqlite_db) as c:
        before = {t: c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("messages", "windows", "runs")}
        runs_before = {r[0]: r[1:] for r in c.execute("SELECT run_id, steps, valr_mean, complete FROM runs")}
        copy_id, pos_id = "copy0000000000000001", "copy0000000000000002"
        copy = c.execute("SELECT run_id, window_index, json FROM windows WHERE msg_id = ?", (copy_id,)).fetchone()
    assert before == {"messages": 102, "windows": 100, "runs": 2}
    if dbs.backend == "sqlite":
        target: Path | str = sqlite_db
    else:
        target = dbs.target("old", empty=True)
        _v4_into_postgres(sqlite_db, str(target))
    with Store(target) as s:
        assert s.schema_version() == LATEST
        counts = s.counts()
        # the later copy of a window and the second msg_id on a stored stream position (with its window) are
        # moved aside, not lost: 102 - 2 ledger rows, 100 - 2 windows
        assert (counts["messages"], counts["windows"], counts["runs"]) == (101, 98, 2)
        moved = s._rows("SELECT tbl, key, reason, row_json FROM quarantine ORDER BY tbl, key")
        assert [(m["tbl"], m["key"]) for m in moved] == [
            ("messages", pos_id),
            ("windows", copy_id),
            ("windows", pos_id),
        ]
        assert moved[1]["row_json"] == copy[2] and "later copy" in moved[1]["reason"]
        assert s.summaries() == 98
        assert {r["run_id"]: (r["steps"], r["valr_mean"], r["complete"]) for r in s.list_runs()} == {
            k: (v[0], v[1], bool(v[2])) for k, v in runs_before.items()
        }
        assert s.list_alerts()[0]["alert_id"] == "alert-main-0001"
        assert s.get_setting("notify_urls") == ["json://127.0.0.1:9/x"]
        run = s.get_run(copy[0])
        assert [w["window_index"] for w in run["windows"]].count(copy[1]) == 1 and run["corrupt_rows"] == []
        # the unique slots hold from now on: the same copy again is a duplicate, not a second row
        first = s._one("SELECT json FROM windows WHERE run_id = ? AND window_index = ?", copy[:2])[0]
        msg = WindowSummary.model_validate_json(first).model_copy(update={"msg_id": "copy0000000000000009",
                                                                           "seq": 10_000})  # fmt: skip
        assert s.insert_message(msg) is False and s.counts()["windows"] == 98
        # migration 0008: the release's schema-1 rows keep their VALR, with the basis the contract gives them
        for r in s._rows("SELECT json, valr_lo, valr_hi, lr_basis FROM windows"):
            w = WindowSummary.model_validate_json(r["json"])
            assert (r["lr_basis"], r["valr_lo"], r["valr_hi"]) == (loading_rate_basis(w), None, None)
            assert r["lr_basis"].startswith("sampled@")
        for r in s._rows("SELECT summary_json, lr_basis FROM runs WHERE summary_json IS NOT NULL"):
            assert r["lr_basis"] == loading_rate_basis(RunSummary.model_validate_json(r["summary_json"]))
    with Store(target) as s:  # opening again changes nothing
        assert s.counts()["windows"] == 98 and len(s._rows("SELECT key FROM quarantine")) == 3


def test_migration_0008_fills_interval_and_basis_from_the_stored_json_on_both_backends(dbs: Databases) -> None:
    """Rows stored before 0008 (schema-1 and schema-2 messages alike) get the interval and the basis the store
    gives a new message: the migration's SQL follows edge_agent.contract.loading_rate_basis on both databases."""
    windows, run = one_run(seed=5)
    old = list(generate_history(weeks=1, seed=6, step_records_last_runs=0, schema_version=1))
    v1_run = next(m for m in old if isinstance(m, RunSummary))
    v1 = [m for m in old if m.run_id == v1_run.run_id]
    odd = windows[1].model_copy(update={"msg_id": "oddrate00001", "seq": 90_001, "window_index": 9_001,
        "valr": windows[1].valr.model_copy(update={"sample_rate_hz": 99.5})})  # fmt: skip
    assert windows[0].valr is not None and v1_run.valr is None
    partial = windows[:6]  # a run whose RunSummary has not arrived: assembled from its windows
    with dbs.store() as s:
        assert s.insert_many([*partial, odd, *v1]) == len(partial) + 1 + len(v1)
        cols = "msg_id, valr_lo, valr_hi, lr_basis"
        want_w = {r["msg_id"]: r for r in s._rows(f"SELECT {cols} FROM windows")}
        want_r = {r["run_id"]: r for r in s._rows("SELECT run_id, valr_lo, valr_hi, lr_basis FROM runs")}
        assert want_w["oddrate00001"]["lr_basis"] == "corrected@100Hz/moticon-opengo"  # half up, as the contract
        assert want_r[run.run_id]["lr_basis"] == loading_rate_basis(windows[0]) and want_r[run.run_id]["valr_lo"]
        with s._tx() as w:  # back to version 7: the columns gone
            w.execute("DROP INDEX windows_basis_t")
            for table in ("windows", "runs"):
                for col in ("valr_lo", "valr_hi", "lr_basis"):
                    w.execute(f"ALTER TABLE {table} DROP COLUMN {col}")
            for table in ("run_shoes", "shoes", "programs"):  # and 0009's tables
                w.execute(f"DROP TABLE {table}")
            w.execute("DELETE FROM schema_version WHERE version >= 8")
    with dbs.store() as s:
        assert s.schema_version() == LATEST
        got_w = {r["msg_id"]: r for r in s._rows(f"SELECT {cols} FROM windows")}
        got_r = {r["run_id"]: r for r in s._rows("SELECT run_id, valr_lo, valr_hi, lr_basis FROM runs")}
    assert got_w == want_w  # the windows' own values, exactly
    assert got_r.keys() == want_r.keys()
    for k, r in got_r.items():  # a run assembled again: the same sums, maybe in another order (PostgreSQL)
        assert r["lr_basis"] == want_r[k]["lr_basis"], k
        for col in ("valr_lo", "valr_hi"):
            want = want_r[k][col]
            assert r[col] is None if want is None else r[col] == pytest.approx(want, rel=1e-12), (k, col)


# -- exactly once, caps --------------------------------------------------------------------------------------------
def test_later_copies_of_a_window_are_duplicates_and_do_not_inflate_the_run(store: Store) -> None:
    windows, run = one_run()
    store.insert_many(windows)
    runs_before = store.list_runs()
    w = windows[3]
    copies = [w.model_copy(update={"msg_id": f"copy{i:012d}", "seq": 10_000 + i}) for i in range(50)]
    results = store.store_batch([(c, time.time()) for c in copies])
    assert results == [False] * 50  # each copy is a duplicate of window 3
    assert store.counts()["windows"] == len(windows) == store.summaries()
    assert store.list_runs() == [{**runs_before[0], "updated_at": store.list_runs()[0]["updated_at"]}]
    # a new msg_id on a stream position already stored is a duplicate too, whatever window it claims to be
    forged = windows[5].model_copy(update={"msg_id": "forged000001", "seq": windows[2].seq, "window_index": 9999})
    assert store.insert_message(forged) is False
    assert store.get_run(run.run_id)["windows"][-1]["window_index"] == windows[-1].window_index


def test_a_run_holds_at_most_max_windows(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(summaries, "MAX_WINDOWS_PER_RUN", 5)
    windows, _ = one_run()
    results = store.store_batch([(w, time.time()) for w in windows[:8]])
    assert results[:5] == [True] * 5
    assert all(isinstance(r, str) and r.startswith("run_full: ") for r in results[5:])
    assert store.counts()["windows"] == 5 and store.stream_state(windows[0].device_id, windows[0].stream_id)[0] < 8


def test_streams_per_device_are_capped_and_another_device_is_not_affected(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(summaries, "MAX_STREAMS_PER_DEVICE", 3)
    windows, _ = one_run()
    base = windows[0]
    flood = [base.model_copy(update={"msg_id": f"flood{i:08d}", "stream_id": f"str{i:05d}", "seq": 1,
                                     "window_index": i}) for i in range(6)]  # fmt: skip
    results = store.store_batch([(m, time.time()) for m in flood])
    assert results[:3] == [True] * 3
    assert all(isinstance(r, str) and r.startswith("too_many_streams: ") for r in results[3:])
    assert len(store.streams(base.device_id)) == 3
    other = base.model_copy(update={"msg_id": "other0000001", "device_id": "dev-other", "run_id": "other-run"})
    assert store.insert_message(other) is True  # the cap is per device


def test_a_window_for_another_devices_run_is_refused(store: Store) -> None:
    windows, run = one_run()
    store.insert_many([*windows[:3], run])
    intruder = windows[4].model_copy(update={"msg_id": "intruder0001", "device_id": "dev-evil", "seq": 1})
    (result,) = store.store_batch([(intruder, time.time())])
    assert isinstance(result, str) and result.startswith("foreign_run: ")
    assert store.counts()["windows"] == 3


def test_dashboard_database_file_is_private_and_a_damaged_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "private.db"
    windows, run = one_run()
    with Store(db) as s:
        s.insert_many([*windows, run])
        s.set_setting("notify_urls", ["json://user:secret@127.0.0.1:9/"])
    assert stat.S_IMODE(db.stat().st_mode) == 0o600  # it holds notification URLs (secrets)
    raw = bytearray(db.read_bytes())
    mid = len(raw) // 2
    raw[mid : mid + 20 * 1024] = random.Random(1).randbytes(20 * 1024)
    db.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match=r"private\.db: .*(damaged|not a usable)"):
        Store(db)
    assert db.read_bytes() == bytes(raw)  # left as it was


def test_a_message_twice_in_one_batch_is_stored_once(store: Store) -> None:
    windows, run = one_run()
    batch = [*windows[:6], windows[2], run, windows[4], run]  # re-sent copies inside the same batch
    results = store.store_batch([(m, time.time()) for m in batch])
    assert results == [True] * 6 + [False, True, False, False]
    assert store.counts()["windows"] == 6 == store.summaries() and store.counts()["messages"] == 7
