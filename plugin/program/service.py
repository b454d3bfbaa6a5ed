"""The program's wiring: start a program, and on every finished run tag its shoe, raise the new-pair alert, push a
completed stage once and publish the runner's target for their agent when it changes.

:class:`ProgramService` is called from the ingest writer thread (:meth:`on_run`) and from the web API (start,
change, retro-tag). Publishing goes through ``publish(topic, payload, qos, retain)`` (the running dashboard's
``Ingest.publish``) with :func:`plugin.targets.publish_target`; pushes go through ``push(title, body)`` (the
service schedules :meth:`plugin.notify.Notifier.send` on its loop). Both are optional, so the CLI and tests can
use the same class without a broker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge_agent.contract import Alert, FeedbackTarget, RunSummary
from plugin.program.assessment import assess
from plugin.program.journey import journey, program_target, target_key
from plugin.program.shoes import new_pair_alert
from plugin.program.stages import CADENCE_MAX_PCT, CADENCE_MIN_PCT, STAGE_TEXT
from plugin.store import StoreError
from plugin.targets import PublishFn, publish_target

log = logging.getLogger(__name__)

PushFn = Callable[[str, str], Any]
DEFAULT_GOAL_PCT = 7.5  # Willy 2016's cue
MAX_TEXT = 2000


@dataclass
class RunOutcome:
    """What one finished run changed: alerts to dispatch, stages newly completed (already pushed)."""

    alerts: list[Alert] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    published: bool = False


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ValueError(f"{name}: a text of at most {MAX_TEXT} characters")
    return value


class ProgramService:
    def __init__(
        self,
        store: Any,
        *,
        publish: PublishFn | None = None,
        base_topic: str = "footfall",
        push: PushFn | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.publish = publish
        self.base_topic = base_topic
        self.push = push
        self.clock = clock

    # -- the runner's choices ---------------------------------------------------------------------------------
    def start(
        self,
        runner: str,
        *,
        goals: str = "",
        injury_note: str = "",
        cadence_goal_pct: float = DEFAULT_GOAL_PCT,
        skip_transition: bool = False,
        at: float | None = None,
    ) -> dict[str, Any]:
        """Assess the last 4 weeks and start (or restart) the program; returns the journey. Raises
        :class:`~plugin.program.assessment.AssessmentError` without enough history, ValueError for bad input."""
        if not CADENCE_MIN_PCT <= cadence_goal_pct <= CADENCE_MAX_PCT:
            raise ValueError(f"cadence_goal_pct: {cadence_goal_pct} outside {CADENCE_MIN_PCT:g}–{CADENCE_MAX_PCT:g} %")
        at = self.clock() if at is None else at
        assessment = assess(self.store, runner, at=at)
        self.store.save_program(
            runner, started_at=at, assessment=assessment, cadence_goal_pct=float(cadence_goal_pct),
            goals=_text("goals", goals), injury_note=_text("injury_note", injury_note),
            skip_transition=bool(skip_transition),
        )  # fmt: skip
        return self.refresh(runner)

    def change(self, runner: str, **fields: Any) -> dict[str, Any] | None:
        """Change goals, the injury note or ``skip_transition``; None without a program."""
        clean = {k: (bool(v) if k == "skip_transition" else _text(k, v)) for k, v in fields.items()}
        if not self.store.update_program(runner, **clean):
            return None
        return self.refresh(runner)

    # -- runs -------------------------------------------------------------------------------------------------
    def on_run(self, msg: RunSummary) -> RunOutcome:
        """A RunSummary was stored: tag the agent's shoe, check the pair, advance the program."""
        out = RunOutcome()
        runner = msg.runner
        if not runner:
            return out
        with self.store.exclusive(f"program:{runner}"):
            if msg.shoe:
                try:
                    shoe = self.store.shoe(runner, msg.shoe, create=True, at=msg.started_at)
                    assert shoe is not None
                    self.store.tag_run(msg.run_id, shoe["shoe_id"], source="agent", replace=False)
                except (ValueError, StoreError) as err:
                    log.warning("run %s: shoe %r not tagged: %s", msg.run_id, msg.shoe, err)
            tagged = self.store.run_shoe(msg.run_id)
            if tagged is not None:
                alert = new_pair_alert(
                    self.store, runner, tagged["shoe_id"], device_id=msg.device_id, run_id=msg.run_id
                )
                if alert is not None:
                    out.alerts.append(alert)
            if self.store.get_program(runner) is not None:
                self._advance(runner, out)
        return out

    def refresh(self, runner: str) -> dict[str, Any]:
        """Evaluate, push newly completed stages and publish a changed target; returns the journey."""
        out = RunOutcome()
        with self.store.exclusive(f"program:{runner}"):
            doc = self._advance(runner, out)
        return doc

    def _advance(self, runner: str, out: RunOutcome) -> dict[str, Any]:
        now = self.clock()
        doc = journey(self.store, runner, now=now)
        assert doc is not None
        program = self.store.get_program(runner)
        for stage in sorted(int(s) for s in doc["completed"]):
            if stage > program["notified_stage"] and self.store.mark_stage_notified(
                runner, stage, program["started_at"]
            ):
                out.completed.append(stage)
                self._push_stage(doc, stage)
        target = program_target(doc, now=now)
        if target is None:
            return doc
        dumped = target.model_dump(mode="json", exclude_none=True)
        if self.publish is not None and target_key(dumped) != target_key(program["target"]):
            out.published = self._publish(runner, target)
            if out.published:
                doc["published_target"] = dumped
        return doc

    def _publish(self, runner: str, target: FeedbackTarget) -> bool:
        """Publish (retained) and remember what was published; without a broker nothing is remembered, so the
        target goes out once one is there."""
        assert self.publish is not None
        try:
            publish_target(self.publish, target, base_topic=self.base_topic)
        except Exception:
            log.exception("could not publish the program target of %r", runner)
            return False
        self.store.set_program_target(runner, target.model_dump(mode="json", exclude_none=True))
        return True

    def publish_all(self) -> int:
        """Publish every program's current target (the dashboard's start: the broker may have lost its retained
        copies); returns how many were published."""
        if self.publish is None:
            return 0
        n = 0
        for program in self.store.list_programs():
            runner = program["runner"]
            with self.store.exclusive(f"program:{runner}"):
                doc = journey(self.store, runner, now=self.clock())
                target = None if doc is None else program_target(doc, now=self.clock())
                if target is not None and self._publish(runner, target):
                    n += 1
        return n

    def _push_stage(self, doc: dict[str, Any], stage: int) -> None:
        title = f"{doc['runner']}: stage {stage} done — {STAGE_TEXT[stage].title}"
        if doc["done"]:
            body = "You have completed the program: the new form is yours. Keep an eye on the journey page."
        else:
            nxt = STAGE_TEXT[doc["stage"]]
            body = f"Next: stage {nxt.number}, {nxt.title}. {nxt.what}"
            if doc["lock"]["locked"] and doc["lock"]["reason"]:
                body += f" {doc['lock']['reason']}"
        log.info("program: %s", title)
        if self.push is not None:
            try:
                self.push(title, body)
            except Exception:
                log.exception("could not push the completed stage of %r", doc["runner"])
