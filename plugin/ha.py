"""Home Assistant MQTT discovery for the plugin's own entities (device-based discovery, docs/design.md §3).

One retained QoS 1 message on ``<prefix>/device/footfall_dashboard/config`` declares the "footfall dashboard"
device with its components (entities described as data, Home Assistant style): the risk level (enum sensor),
the latest alert (an MQTT ``event`` entity whose ``event_types`` are the rule kinds), 7-day trend sensors, and the
form journey (program stage, target cadence, progress, current shoe).
State is one retained JSON document on ``<base>/_dashboard/state`` read by ``value_template``s; alerts are
published (not retained) on ``<base>/_dashboard/event`` with ``event_type`` = the rule. Availability follows
the plugin's retained status topic (last will ``offline``). Discovery is re-sent when ``homeassistant/status``
turns ``online``; components from an older version are removed by re-announcing them with only ``p``
(Home Assistant's documented way to drop a component from a device config).

Entity ids: each component carries ``default_entity_id`` (HA ≥ 2025.10; it replaced ``object_id``, which HA
deprecated in 2025.10 and stops honouring in 2026.4), set to the id HA itself derives from the device name
"footfall dashboard" and the component name — e.g. ``sensor.footfall_dashboard_injury_risk_level`` — so all HA
versions agree. ``unique_id``s are unchanged (HA's entity registry keys on them: existing installs keep the ids
they already have, including ``sensor.footfall_risk_level`` from the old ``object_id``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, get_args

from edge_agent.common.ha_discovery import EntityDescription, device_document, device_identifier, discovery_topic
from edge_agent.contract import Alert, AlertKind
from plugin import __version__
from plugin.config import RiskConfig
from plugin.ingest import PLUGIN_NODE
from plugin.program.journey import journey
from plugin.program.shoes import current_shoe
from plugin.risk import risk_summary
from plugin.store import Store
from plugin.trends import DAY, period_summary, training_load

log = logging.getLogger(__name__)

#: The dashboard in discovery: device identifier ``footfall_dashboard``, topic ``…/device/footfall_dashboard``.
NODE_ID = "dashboard"
DEVICE_ID = device_identifier(NODE_ID)
DEVICE_NAME = "footfall dashboard"
RISK_LEVELS = ("low", "elevated", "high", "unknown")
ALERT_EVENT = "latest_alert"

ENTITIES: tuple[EntityDescription, ...] = (
    EntityDescription("risk_level", "Injury-risk level", "state", device_class="enum", state_class=None,
                      icon="mdi:shield-alert", options=RISK_LEVELS),
    EntityDescription("valr_7d", "Loading rate (7 days)", "state", unit="BW/s", icon="mdi:chart-bell-curve",
                      precision=1),
    EntityDescription("valr_p90_7d", "Loading rate p90 (7 days)", "state", unit="BW/s", icon="mdi:chart-bell-curve",
                      precision=1),
    EntityDescription("cadence_7d", "Cadence (7 days)", "state", unit="spm", icon="mdi:run-fast", precision=0),
    EntityDescription("contact_7d", "Contact time (7 days)", "state", unit="ms", device_class="duration",
                      precision=0),
    EntityDescription("forefoot_share_7d", "Forefoot strikes (7 days)", "state", unit="%", icon="mdi:shoe-print",
                      precision=1),
    EntityDescription("asymmetry_contact_7d", "Contact-time asymmetry (7 days)", "state", unit="%",
                      icon="mdi:scale-unbalanced", precision=1),
    EntityDescription("steps_7d", "Steps (7 days)", "state", unit="steps", state_class="total",
                      icon="mdi:shoe-print"),
    EntityDescription("runs_7d", "Runs (7 days)", "state", state_class="total", icon="mdi:run"),
    EntityDescription("load_7d", "Running time (7 days)", "state", unit="min", device_class="duration",
                      state_class="total"),
    EntityDescription("acwr", "Acute:chronic load ratio", "state", icon="mdi:scale-balance", precision=2),
    EntityDescription("program_stage", "Program stage", "state", state_class=None, icon="mdi:stairs-up"),
    EntityDescription("program_target_cadence", "Target cadence", "state", unit="spm", icon="mdi:metronome",
                      precision=0),
    EntityDescription("program_progress", "Program progress", "state", unit="%", icon="mdi:progress-check",
                      precision=0),
    EntityDescription("current_shoe", "Current shoe", "state", state_class=None, icon="mdi:shoe-sneaker"),
    EntityDescription(ALERT_EVENT, "Running alert", "event", platform="event", state_class=None,
                      icon="mdi:alert-decagram", extra=(("event_types", list(get_args(AlertKind))),)),
)  # fmt: skip


def program_state(store: Store, now: float) -> dict[str, Any]:
    """The program entities: the journey of the runner who ran most recently among those with a program (one
    dashboard device for the household; the journey page shows every runner)."""
    out: dict[str, Any] = {"program_stage": None, "program_target_cadence": None, "program_progress": None,
                           "current_shoe": None, "program_runner": None}  # fmt: skip
    latest = store.list_runs(limit=1)
    programs = {p["runner"] for p in store.list_programs()}
    runner = latest[0]["runner"] if latest and latest[0]["runner"] in programs else min(programs, default=None)
    if latest and latest[0]["runner"]:
        shoe = current_shoe(store, latest[0]["runner"])
        out["current_shoe"] = shoe["name"] if shoe else None
    if runner is None:
        return out
    doc = journey(store, runner, now=now)
    if doc is None:
        return out
    stage = f"{doc['stage']}: {doc['stage_title']}" + (" (done)" if doc["done"] else "")
    if doc["lock"]["locked"] and doc["stage"] == 1 and doc["completed"]:
        stage += " (stage 2 locked)"
    out.update(program_stage=stage[:255], program_target_cadence=doc["targets"]["cadence_spm"],
               program_progress=doc["progress_pct"], program_runner=runner)  # fmt: skip
    if out["current_shoe"] is None:
        out["current_shoe"] = doc["current_shoe"]
    return out


class HaPublisher:
    """Builds and publishes discovery, state and alert events through ``publish(topic, payload, qos, retain)``."""

    def __init__(
        self,
        publish: Callable[[str, str, int, bool], None],
        *,
        store: Store,
        prefix: str = "homeassistant",
        base_topic: str = "footfall",
        risk_config: RiskConfig | None = None,
    ) -> None:
        self.publish = publish
        self.store = store
        self.prefix = prefix.rstrip("/")
        base = base_topic.rstrip("/")
        self.config_topic = discovery_topic(DEVICE_ID, self.prefix)
        self.status_topic = f"{base}/{PLUGIN_NODE}/status"
        self.state_topic = f"{base}/{PLUGIN_NODE}/state"
        self.event_topic = f"{base}/{PLUGIN_NODE}/event"
        self.risk_config = risk_config
        self.announcements = 0

    def components(self) -> list[str]:
        return [e.key for e in ENTITIES]

    def discovery_payload(self, removed: list[str] | None = None) -> dict[str, Any]:
        """Components keyed by entity key (never change: HA keys its discovery entries on it)."""
        return device_document(
            node_id=NODE_ID,
            device_name=DEVICE_NAME,
            model="dashboard plugin",
            sw_version=__version__,
            entities=ENTITIES,
            state_topics={"state": self.state_topic, "event": self.event_topic},
            availability_topic=self.status_topic,
            component_key="key",
            removed={k: "sensor" for k in removed or []},
        )

    def announce(self) -> None:
        """(Re)publish discovery; components announced by an older version are removed once."""
        current = sorted(self.components())
        try:
            previous = self.store.get_setting("ha.components", []) or []
        except Exception:
            previous = []
        removed = [k for k in previous if k not in current]
        self.publish(self.config_topic, json.dumps(self.discovery_payload(removed)), 1, True)
        if previous != current:
            self.store.set_setting("ha.components", current)
        self.announcements += 1
        self.publish_state()

    def state(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        this = period_summary(self.store, since=now - 7 * DAY, until=now)  # the last 7 days, rolling
        risk = risk_summary(self.store, config=self.risk_config)
        tl = training_load(self.store, ref=now, with_series=False)
        program = program_state(self.store, now)
        return {
            **program,
            "risk_level": risk["level"], "risk_reasons": risk["reasons"][:5],
            "valr_7d": this["valr_mean"], "valr_p90_7d": this["valr_p90"], "cadence_7d": this["cadence_spm"],
            "contact_7d": this["contact_ms"], "forefoot_share_7d": this["forefoot_share_pct"],
            "asymmetry_contact_7d": this["asymmetry_contact_pct"], "steps_7d": this["steps"],
            "runs_7d": this["runs"], "load_7d": this["load_min"], "acwr": tl.get("acwr"),
            "updated_at": now, "window_days": 7, "since": now - 7 * DAY,
        }  # fmt: skip

    def publish_state(self) -> None:
        try:
            self.publish(self.state_topic, json.dumps(self.state(), allow_nan=False), 1, True)
        except Exception:
            log.exception("could not publish the Home Assistant state")

    def publish_alert(self, alert: Alert) -> None:
        payload = {
            "event_type": alert.rule, "title": alert.title, "severity": alert.severity,
            "confidence": alert.confidence, "runner": alert.runner, "run_id": alert.run_id,
            "alert_id": alert.alert_id, "message": alert.message[:1000],
        }  # fmt: skip
        self.publish(self.event_topic, json.dumps(payload), 1, False)
        self.publish_state()
