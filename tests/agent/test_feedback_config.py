"""The ``feedback:`` section: strict like the rest of the config, ``--feedback``/``--target-cadence`` on the command
line, and the batch length it implies (edge_agent/runtime/feedback/settings.py, edge_agent/config.py, cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.cli import build_parser, config_from_args
from edge_agent.config import AGENT_BATCH_MS, ConfigError, load_config
from edge_agent.runtime.feedback.settings import FEEDBACK_BATCH_MS


def cfg_from(tmp_path: Path, yaml_text: str, *argv: str):  # type: ignore[no-untyped-def]
    f = tmp_path / "agent.yaml"
    f.write_text(yaml_text)
    return config_from_args(build_parser().parse_args(["run", "--config", str(f), *argv]))


def test_off_by_default_and_batches_follow(tmp_path: Path) -> None:
    cfg = load_config(None, state_dir=tmp_path)
    assert not cfg.feedback.enabled and cfg.feedback.sink.type == "none"
    assert cfg.source.batch_ms == AGENT_BATCH_MS
    on = cfg_from(tmp_path, "runner: alex\n", "--feedback", "wav:/tmp/x.wav")
    assert on.feedback.enabled and on.source.batch_ms == FEEDBACK_BATCH_MS
    explicit = cfg_from(tmp_path, "source: {type: simulator, batch_ms: 200}\n", "--feedback", "wav:/tmp/x.wav")
    assert explicit.source.batch_ms == 200  # a batch length in the file wins


def test_command_line_sink_merges_with_the_files_when_the_type_matches(tmp_path: Path) -> None:
    text = "feedback:\n  sink: {type: wav, path: a.wav, sample_rate_hz: 16000}\n  latency_offset_ms: 20\n"
    same = cfg_from(tmp_path, text, "--feedback", "wav:b.wav", "--target-cadence", "171")
    assert same.feedback.sink.type == "wav" and str(same.feedback.sink.path) == "b.wav"  # type: ignore[union-attr]
    assert same.feedback.sink.sample_rate_hz == 16000 and same.feedback.target_cadence_spm == 171  # type: ignore[union-attr]
    other = cfg_from(tmp_path, text, "--feedback", "gpio:GPIO23")
    assert other.feedback.sink.type == "gpio" and other.feedback.sink.pin == "GPIO23"  # type: ignore[union-attr]
    assert other.feedback.latency_offset_ms == 20
    off = cfg_from(tmp_path, text, "--feedback", "none")
    assert not off.feedback.enabled


@pytest.mark.parametrize(
    ("text", "argv", "message"),
    [
        ("feedback: {volum: 0.3}\n", (), "feedback.volum"),
        ("feedback: {sink: {type: speaker}}\n", (), "feedback.sink"),
        ("feedback: {sink: {type: gpio}}\n", (), "feedback.sink.gpio.pin"),
        ("feedback: {sink: {type: wav, path: x.wav, sample_rate_hz: 1000}}\n", (), "sample_rate_hz"),
        ("feedback: {target_cadence_spm: 300}\n", (), "target_cadence_spm"),
        ("feedback: {sink: {type: gpio, pin: '18'}, latency_offset_ms: 200}\n", (), "a GPIO pin has none"),
        ("runner: ana maría\n", ("--feedback", "wav:x.wav"), "cannot name the target topic"),
        ("{}\n", ("--feedback", "speaker"), "expected wav:PATH"),
        ("{}\n", ("--target-cadence", "90"), "target_cadence_spm"),
    ],
)
def test_bad_feedback_settings_are_clear_errors(tmp_path: Path, text: str, argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cfg_from(tmp_path, text, *argv)


def test_a_runner_that_cannot_name_a_topic_is_fine_without_feedback(tmp_path: Path) -> None:
    assert cfg_from(tmp_path, "runner: ana maría\n").runner == "ana maría"


def test_environment_sets_the_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTFALL_FEEDBACK__SINK__TYPE", "gpio")
    monkeypatch.setenv("FOOTFALL_FEEDBACK__SINK__PIN", "BOARD12")
    cfg = load_config(None, state_dir=tmp_path)
    assert cfg.feedback.sink.type == "gpio" and cfg.feedback.sink.pin == "BOARD12"  # type: ignore[union-attr]
