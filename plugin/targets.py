"""The plugin's side of in-run feedback: build a runner's target and publish it, retained, for their agent.

One topic per runner, ``<base>/_runners/<runner>/target`` (:func:`edge_agent.contract.runner_target_topic`),
QoS 1 and retained, so an agent that connects later (or after a broker restart with persistence) gets the latest
target at once and keeps it on disk for runs out of Wi-Fi range (docs/feedback.md, docs/mqtt.md).

* :func:`make_target` builds a validated :class:`~edge_agent.contract.FeedbackTarget` (the program computes the
  numbers; a runner without a program sets them by hand).
* :func:`publish_target` hands it to any ``publish(topic, payload, qos, retain)`` — the running dashboard's
  ``Ingest.publish`` — and :func:`silence_target` publishes a target without cadence or loading (the agent then
  stays silent; an empty retained payload would not switch it off, it only clears the broker's copy).
* ``footfall-dashboard target set|off|show`` (:func:`cmd_target`) does the same from the command line with a short
  connection of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.common.cli import add_broker_arguments
from edge_agent.contract import (
    CadenceTarget,
    CueSettings,
    FeedbackTarget,
    LoadingTarget,
    PayloadError,
    parse_target,
    runner_target_topic,
)
from plugin.config import DashboardConfig, MqttConfig

#: ``publish(topic, payload, qos, retain)``, e.g. :meth:`plugin.ingest.Ingest.publish`.
PublishFn = Callable[[str, bytes, int, bool], Any]
PUBLISH_TIMEOUT_S = 10.0


def make_target(
    runner: str,
    *,
    cadence_spm: float | None = None,
    cadence_band_spm: float | None = None,
    valr_max_bw_s: float | None = None,
    valr_max_pct_of_baseline: float | None = None,
    valr_baseline_bw_s: float | None = None,
    cues: CueSettings | dict[str, Any] | None = None,
    set_by: str = "dashboard",
    note: str | None = None,
    valid_for_s: float | None = None,
    now: float | None = None,
) -> FeedbackTarget:
    """A validated target (raises ``ValueError`` naming the field when a number is out of bounds)."""
    set_at = time.time() if now is None else now
    cadence = None
    if cadence_spm is not None:
        cadence = CadenceTarget(
            spm=cadence_spm, **({"band_spm": cadence_band_spm} if cadence_band_spm is not None else {})
        )
    loading = None
    if valr_max_bw_s is not None or valr_max_pct_of_baseline is not None:
        loading = LoadingTarget(
            baseline_bw_s=valr_baseline_bw_s, max_bw_s=valr_max_bw_s, max_pct_of_baseline=valr_max_pct_of_baseline
        )
    elif valr_baseline_bw_s is not None:
        raise ValueError("a VALR baseline alone is no target: give valr_max_bw_s or valr_max_pct_of_baseline")
    return FeedbackTarget(
        target_id=uuid.uuid4().hex,
        runner=runner,
        set_by=set_by,
        set_at=set_at,
        valid_until=None if valid_for_s is None else set_at + valid_for_s,
        note=note,
        cadence=cadence,
        loading=loading,
        cues=cues if isinstance(cues, CueSettings) else CueSettings(**(cues or {})),
    )


def target_payload(target: FeedbackTarget) -> bytes:
    return target.model_dump_json(exclude_none=True).encode()


def publish_target(publish: PublishFn, target: FeedbackTarget, *, base_topic: str = "footfall") -> str:
    """Publish ``target`` retained with QoS 1 on its runner's topic; returns the topic."""
    topic = runner_target_topic(target.runner, base_topic)
    publish(topic, target_payload(target), 1, True)
    return topic


def silence_target(runner: str, *, set_by: str = "dashboard", note: str | None = "feedback off") -> FeedbackTarget:
    """A target with nothing to aim for: the runner's agent plays no metronome and gives no cues."""
    return make_target(runner, set_by=set_by, note=note)


# -- command line -------------------------------------------------------------------------------------------------


def _broker(cfg: MqttConfig) -> Any:
    return cfg.connection_settings(f"footfall-dashboard-target-{os.getpid()}")


async def publish_over_mqtt(cfg: MqttConfig, target: FeedbackTarget, timeout_s: float = PUBLISH_TIMEOUT_S) -> str:
    """Connect, publish retained, wait for the broker's PUBACK, disconnect."""
    from edge_agent.common.mqtt import MqttConnection

    async with MqttConnection(_broker(cfg)) as conn:
        if not await conn.wait_connected(timeout_s):
            raise ConnectionError(f"broker {cfg.redacted_url} not reachable within {timeout_s:.0f} s")
        topic = runner_target_topic(target.runner, cfg.base_topic)
        futures: list[asyncio.Future[None]] = []
        publish_target(lambda *a: futures.append(conn.publish_nowait(*a)), target, base_topic=cfg.base_topic)
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*futures)  # the broker's PUBACK
    return topic


async def read_retained(cfg: MqttConfig, runner: str, timeout_s: float = 3.0) -> FeedbackTarget | None:
    """The target the broker holds for ``runner`` (None when there is none); raises PayloadError if invalid."""
    from edge_agent.common.mqtt import MqttConnection, MqttMessage

    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def on_message(msg: MqttMessage) -> None:
        if not got.done():
            got.set_result(msg.payload)

    async with MqttConnection(_broker(cfg)) as conn:
        conn.subscribe(runner_target_topic(runner, cfg.base_topic), on_message, qos=1)
        if not await conn.wait_connected(PUBLISH_TIMEOUT_S):
            raise ConnectionError(f"broker {cfg.redacted_url} not reachable within {PUBLISH_TIMEOUT_S:.0f} s")
        try:
            payload = await asyncio.wait_for(got, timeout_s)
        except TimeoutError:
            return None
    return parse_target(payload) if payload else None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("set", "off", "show"), help="set a target, switch feedback off, or show it")
    p.add_argument("--runner", required=True, help="runner name (as in the agent's `runner:`)")
    p.add_argument("--config", type=Path, help="dashboard YAML config (broker, base topic)")
    add_broker_arguments(p, env="FOOTFALL_DASHBOARD_MQTT__PASSWORD")
    p.add_argument("--cadence", type=float, metavar="SPM", help="target cadence, steps/min")
    p.add_argument("--band", type=float, metavar="SPM", help="cadence band ± SPM (default 3)")
    p.add_argument("--valr-max", type=float, metavar="BW/S", help="VALR ceiling in BW/s")
    p.add_argument("--valr-pct", type=float, metavar="PCT", help="VALR ceiling as %% of --valr-baseline")
    p.add_argument("--valr-baseline", type=float, metavar="BW/S", help="the runner's baseline VALR")
    p.add_argument("--no-metronome", action="store_true", help="cues only, no clicks")
    p.add_argument("--min-interval", type=float, metavar="S", help="at most one cue per S seconds (default 20)")
    p.add_argument("--summary-every", type=float, metavar="MIN", help="spoken summary every MIN minutes")
    p.add_argument("--valid-days", type=float, metavar="DAYS", help="expires after DAYS (default: until replaced)")
    p.add_argument("--note", help="why, in plain words (max 200 characters)")


def cmd_target(args: argparse.Namespace, config: Callable[[argparse.Namespace], DashboardConfig]) -> int:
    try:
        runner_target_topic(args.runner)
    except ValueError as err:
        print(f"footfall-dashboard target: {err}", file=sys.stderr)
        return 2
    cfg = config(args)
    if args.action == "show":
        try:
            target = asyncio.run(read_retained(cfg.mqtt, args.runner))
        except PayloadError as err:
            print(f"the retained target of {args.runner!r} is invalid: {err}", file=sys.stderr)
            return 1
        except (ConnectionError, TimeoutError) as err:
            print(f"footfall-dashboard target: {err}", file=sys.stderr)
            return 1
        if target is None:
            print(f"no target retained for runner {args.runner!r}")
            return 1
        print(json.dumps(target.model_dump(mode="json", exclude_none=True), indent=2))
        return 0
    if args.action == "off":
        target = silence_target(args.runner, set_by="dashboard-cli", note=args.note or "feedback off")
    else:
        cues: dict[str, Any] = {}
        if args.no_metronome:
            cues["metronome"] = False
        if args.min_interval is not None:
            cues["min_interval_s"] = args.min_interval
        if args.summary_every is not None:
            cues["summary_every_min"] = args.summary_every
        if args.cadence is None and args.valr_max is None and args.valr_pct is None:
            print("footfall-dashboard target set: give --cadence and/or --valr-max / --valr-pct", file=sys.stderr)
            return 2
        try:
            target = make_target(
                args.runner,
                cadence_spm=args.cadence,
                cadence_band_spm=args.band,
                valr_max_bw_s=args.valr_max,
                valr_max_pct_of_baseline=args.valr_pct,
                valr_baseline_bw_s=args.valr_baseline,
                cues=cues,
                set_by="dashboard-cli",
                note=args.note,
                valid_for_s=None if args.valid_days is None else args.valid_days * 86400.0,
            )
        except ValueError as err:
            print(f"footfall-dashboard target set: {err}", file=sys.stderr)
            return 2
    try:
        topic = asyncio.run(publish_over_mqtt(cfg.mqtt, target))
    except (ConnectionError, TimeoutError) as err:
        print(f"footfall-dashboard target: {err}", file=sys.stderr)
        return 1
    print(f"published target {target.target_id} for {target.runner} on {topic} (retained)")
    print(json.dumps(target.model_dump(mode="json", exclude_none=True)))
    return 0
