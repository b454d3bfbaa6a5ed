"""Targets are untrusted input: validated with a clear reason, never a crash; the last accepted one is kept on disk
and used offline (edge_agent/contract.py FeedbackTarget, edge_agent/runtime/feedback/targets.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from edge_agent.contract import (
    MAX_TARGET_BYTES,
    FeedbackTarget,
    PayloadError,
    parse_target,
    runner_target_topic,
)
from edge_agent.runtime.feedback.targets import TARGET_FILE, TargetKeeper
from plugin.targets import make_target, silence_target, target_payload

NOW = 1_767_250_800.0


def target(**kw: object) -> FeedbackTarget:
    args: dict = {"cadence_spm": 172.0, "set_by": "program", "now": NOW, **kw}
    runner = args.pop("runner", "alex")
    return make_target(runner, **args)  # type: ignore[arg-type]


def keeper(tmp_path: Path, runner: str | None = "alex", now: float = NOW + 10, **kw: object) -> TargetKeeper:
    return TargetKeeper(tmp_path, runner, wall_clock=lambda: now, **kw)  # type: ignore[arg-type]


GOOD = target(valr_baseline_bw_s=60.0, valr_max_pct_of_baseline=90.0)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"x" * (MAX_TARGET_BYTES + 1), "oversized"),
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_object"),
        (b"[" * 100_000 + b"]" * 100_000, "oversized"),
        (json.dumps({**json.loads(target_payload(GOOD)), "schema_version": 99}).encode(), "unknown_version"),
        (json.dumps({**json.loads(target_payload(GOOD)), "kind": "summary"}).encode(), "wrong_kind"),
        (target_payload(GOOD).replace(b'"spm":172.0', b'"spm":NaN'), "invalid"),
        (target_payload(GOOD).replace(b'"spm":172.0', b'"spm":1e400'), "invalid"),
        (target_payload(GOOD).replace(b'"spm":172.0', b'"spm":400'), "invalid"),
        (target_payload(GOOD).replace(b'"runner":"alex"', b'"runner":"a/+/#"'), "invalid"),
        (
            target_payload(GOOD).replace(b'"max_pct_of_baseline":90.0', b'"max_pct_of_baseline":90.0,"max_bw_s":50'),
            "invalid",
        ),
        (target_payload(GOOD).replace(b'"baseline_bw_s":60.0,', b""), "invalid"),
        (json.dumps({**json.loads(target_payload(GOOD)), "valid_until": NOW - 1}).encode(), "invalid"),
        (b"\xff\xfe" + target_payload(GOOD), "not_json"),
    ],
)
def test_hostile_payloads_are_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as err:
        parse_target(payload)
    assert err.value.reason == reason


@pytest.mark.parametrize("version", [1, 2])
def test_a_target_of_either_supported_schema_is_accepted(version: int) -> None:
    """Targets did not change from schema 1 to 2 (the loading-rate interval is agent→plugin only): a plugin of
    either version can set an agent's target."""
    payload = json.dumps({**json.loads(target_payload(GOOD)), "schema_version": version}).encode()
    assert parse_target(payload).loading == GOOD.loading


def test_deep_nesting_under_the_size_limit_is_a_clear_rejection() -> None:
    with pytest.raises(PayloadError) as err:
        parse_target(b"[" * 4000 + b"]" * 4000)
    assert err.value.reason in ("too_deep", "not_object")


def test_the_loading_ceiling_is_absolute_or_a_share_of_the_baseline() -> None:
    assert GOOD.loading is not None and GOOD.loading.ceiling_bw_s == pytest.approx(54.0)
    assert target(valr_max_bw_s=70.0).loading.ceiling_bw_s == 70.0  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="baseline alone"):
        target(valr_baseline_bw_s=60.0)


def test_runner_topic_refuses_names_that_are_not_one_topic_level() -> None:
    assert runner_target_topic("alex", "home/footfall/") == "home/footfall/_runners/alex/target"
    for bad in ("", "a/b", "+", "#", "_x", "ana maría"):
        with pytest.raises(ValueError, match="cannot name a topic"):
            runner_target_topic(bad)


def test_accepted_target_is_stored_and_used_after_a_restart(tmp_path: Path) -> None:
    k = keeper(tmp_path)
    assert k.active().source == "none" and k.active().cadence is None
    assert k.offer(target_payload(GOOD)) == (True, "accepted")
    stored = json.loads((tmp_path / TARGET_FILE).read_text())
    assert stored["target_id"] == GOOD.target_id
    again = keeper(tmp_path)  # a new process, no broker
    a = again.active()
    assert a.target_id == GOOD.target_id and a.cadence.spm == 172.0 and a.source == "program:program"  # type: ignore[union-attr]
    assert a.loading is not None and a.loading.ceiling_bw_s == pytest.approx(54.0)


def test_rejections_change_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    k = keeper(tmp_path)
    k.offer(target_payload(GOOD))
    before = (tmp_path / TARGET_FILE).read_bytes()
    newer_other_runner = target(runner="bo", now=NOW + 5)
    expired = target(now=NOW - 100, valid_for_s=50)
    stale = target(cadence_spm=180.0, now=NOW - 5)
    caplog.set_level(logging.WARNING)
    assert k.offer(target_payload(newer_other_runner)) == (False, "wrong_runner")
    assert k.offer(target_payload(expired)) == (False, "expired")
    assert k.offer(target_payload(stale)) == (False, "stale")
    assert k.offer(b"") == (False, "empty")  # the retained message was cleared: not an instruction
    assert k.offer(b"garbage") == (False, "not_json")
    assert k.offer(b"garbage") == (False, "not_json")
    assert k.offer(target_payload(GOOD)) == (False, "unchanged")
    assert k.current is not None and k.current.target_id == GOOD.target_id
    assert (tmp_path / TARGET_FILE).read_bytes() == before
    assert dict(k.rejected) == {"wrong_runner": 1, "expired": 1, "stale": 1, "empty": 1, "not_json": 2}
    assert sum("not_json" in r.getMessage() for r in caplog.records) == 1  # logged once per reason


def test_a_newer_target_replaces_the_old_one(tmp_path: Path) -> None:
    k = keeper(tmp_path)
    k.offer(target_payload(GOOD))
    newer = target(cadence_spm=176.0, now=NOW + 5)
    assert k.offer(target_payload(newer)) == (True, "accepted")
    assert keeper(tmp_path).active().cadence.spm == 176.0  # type: ignore[union-attr]
    off = silence_target("alex")
    assert k.offer(target_payload(off))[0] is True
    assert k.active().cadence is None and k.active().loading is None


def test_no_runner_means_no_program_target(tmp_path: Path) -> None:
    k = keeper(tmp_path, runner=None)
    assert k.offer(target_payload(GOOD)) == (False, "wrong_runner")


def test_expired_stored_target_is_kept_but_not_used(tmp_path: Path) -> None:
    t = target(valid_for_s=3600)
    keeper(tmp_path).offer(target_payload(t))
    later = keeper(tmp_path, now=NOW + 7200)
    assert later.current is not None and later.active().cadence is None and later.active().source == "none"


def test_corrupt_or_foreign_file_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / TARGET_FILE).write_bytes(b'{"half": ')
    caplog.set_level(logging.WARNING)
    assert keeper(tmp_path).current is None
    assert "not a valid target" in caplog.text
    (tmp_path / TARGET_FILE).write_bytes(target_payload(target(runner="bo")))
    assert keeper(tmp_path).current is None
    assert "for runner 'bo'" in caplog.text


def test_cadence_override_works_with_and_without_a_target(tmp_path: Path) -> None:
    k = keeper(tmp_path, cadence_override_spm=168.0)
    a = k.active()
    assert a.cadence is not None and a.cadence.spm == 168.0 and a.source == "override"
    k.offer(target_payload(target(cadence_band_spm=5.0, valr_max_bw_s=70.0)))
    a = k.active()
    assert a.cadence.spm == 168.0 and a.cadence.band_spm == 5.0  # type: ignore[union-attr]
    assert a.loading is not None and a.source == "program:program + cadence override"
