"""The agent's side of the target topic: validate what arrives, keep the last accepted target on disk, run with it.

A target arrives retained on ``<base>/_runners/<runner>/target`` (:func:`edge_agent.contract.runner_target_topic`)
and is untrusted input. :meth:`TargetKeeper.offer` accepts it only if the payload passes
:func:`edge_agent.contract.parse_target`, names this agent's runner, has not expired and is not older than the
target in use; every rejection has a reason (counted, logged once per reason) and changes nothing. An empty
retained payload (someone cleared the retained message) is not an instruction either: the agent keeps its
target. To switch feedback off, the plugin publishes a target without cadence and loading.

The accepted payload is written atomically (temporary file, fsync, rename) to ``<state_dir>/feedback-target.json``
and read at the next start, so the agent runs without a broker on the last target it was given. A corrupt file is
reported and ignored; an expired one is kept but not used. ``--target-cadence`` (``feedback.target_cadence_spm``)
overrides the cadence of whatever target is in use, and works with none.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.contract import CadenceTarget, CueSettings, FeedbackTarget, LoadingTarget, PayloadError, parse_target

log = logging.getLogger(__name__)

TARGET_FILE = "feedback-target.json"


@dataclass(frozen=True)
class ActiveTarget:
    """What the engine works with now: the target in use (if any) with the command-line override applied."""

    cadence: CadenceTarget | None
    loading: LoadingTarget | None
    cues: CueSettings
    source: str  # "program:<set_by>", "override" or "none"
    target_id: str | None


class TargetKeeper:
    """The runner's current target: loaded from disk, replaced by accepted MQTT payloads."""

    def __init__(
        self,
        state_dir: Path,
        runner: str | None,
        *,
        cadence_override_spm: float | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = state_dir / TARGET_FILE
        self.runner = runner
        self.cadence_override_spm = cadence_override_spm
        self._wall = wall_clock
        self.current: FeedbackTarget | None = None
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self._logged: set[str] = set()
        self._active: tuple[tuple[int, str | None], ActiveTarget] | None = None
        self._load()

    # -- disk -----------------------------------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as err:
            log.warning("feedback target file %s unreadable (%s): starting without a stored target", self.path, err)
            return
        try:
            target = parse_target(raw)
        except PayloadError as err:
            log.warning("feedback target file %s is not a valid target (%s): ignored", self.path, err)
            return
        if self.runner is not None and target.runner != self.runner:
            log.warning("stored target is for runner %r, not %r: ignored", target.runner, self.runner)
            return
        self.current = target
        state = "expired, not used" if target.expired(self._wall()) else "in use until the plugin sends another"
        log.info("feedback target %s (set by %s) loaded from %s: %s", target.target_id, target.set_by, self.path, state)

    def _save(self, payload: bytes) -> None:
        tmp = self.path.with_suffix(".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)
        with contextlib.suppress(OSError):  # the directory entry too (power loss on the Pi)
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    # -- MQTT -----------------------------------------------------------------------------------------------------
    def offer(self, payload: bytes) -> tuple[bool, str]:
        """Validate a payload from the target topic; (accepted, reason). Never raises on bad input."""
        if not payload:
            return self._reject("empty", "an empty retained payload (the target was cleared at the broker)")
        try:
            target = parse_target(payload)
        except PayloadError as err:
            return self._reject(err.reason, err.detail)
        if self.runner is None or target.runner != self.runner:
            return self._reject("wrong_runner", f"target for runner {target.runner!r}, this agent is {self.runner!r}")
        now = self._wall()
        if target.expired(now):
            return self._reject("expired", f"valid until {target.valid_until}, now {now:.0f}")
        cur = self.current
        if cur is not None and target.target_id == cur.target_id:
            return False, "unchanged"
        if cur is not None and target.set_at < cur.set_at:
            return self._reject("stale", f"set at {target.set_at:.0f}, older than the target in use ({cur.set_at:.0f})")
        canonical = target.model_dump_json(exclude_none=True).encode()
        try:
            self._save(canonical)
        except OSError as err:
            log.error("could not store the feedback target in %s (%s): using it for this run only", self.path, err)
        self.current = target
        self.accepted += 1
        log.info(
            "feedback target %s accepted (set by %s%s): cadence %s, loading ceiling %s",
            target.target_id,
            target.set_by,
            f", {target.note}" if target.note else "",
            f"{target.cadence.spm:.0f} spm" if target.cadence else "none",
            f"{target.loading.ceiling_bw_s:.1f} BW/s" if target.loading else "none",
        )
        return True, "accepted"

    def _reject(self, reason: str, detail: str) -> tuple[bool, str]:
        self.rejected[reason] += 1
        if reason not in self._logged:
            self._logged.add(reason)
            log.warning("feedback target rejected: %s (%s); keeping the current one (logged once per reason)",
                        reason, detail[:300])  # fmt: skip
        return False, reason

    # -- what the engine uses -------------------------------------------------------------------------------------
    def active(self) -> ActiveTarget:
        """The target to work with now (cached: the engine asks on every pipeline wakeup)."""
        t = self.current
        if t is not None and t.expired(self._wall()):
            t = None
        key = (id(t), t.target_id if t is not None else None)
        if self._active is None or self._active[0] != key:
            self._active = (key, self._compute_active(t))
        return self._active[1]

    def _compute_active(self, t: FeedbackTarget | None) -> ActiveTarget:
        cadence = t.cadence if t is not None else None
        if self.cadence_override_spm is not None:
            band = cadence.band_spm if cadence is not None else CadenceTarget.model_fields["band_spm"].default
            cadence = CadenceTarget(spm=self.cadence_override_spm, band_spm=band)
        cues = t.cues if t is not None else CueSettings()
        if t is not None:
            source = f"program:{t.set_by}" + (" + cadence override" if self.cadence_override_spm is not None else "")
        else:
            source = "override" if self.cadence_override_spm is not None else "none"
        return ActiveTarget(cadence, t.loading if t is not None else None, cues, source, t.target_id if t else None)
