"""The docs cannot drift from the code: generated files are current, links resolve, snippets parse and validate.

``docs/gen_reference.py`` is the single source of the generated parts; these tests run it in memory and compare,
so a changed config field, contract model or Home Assistant entity fails CI until the docs are regenerated.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest
import yaml

from edge_agent import contract
from edge_agent.config import AgentConfig
from edge_agent.config import load_config as load_agent_config
from plugin.config import DashboardConfig
from plugin.config import load_config as load_dashboard_config

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```", re.S | re.M)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\((?P<img>[^)\s]+)\)")


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("footfall_gen_reference", DOCS / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses need the module registered
    spec.loader.exec_module(mod)
    return mod


gen = _load_generator()


def _markdown_files() -> list[Path]:
    return [*sorted(DOCS.glob("*.md")), REPO / "README.md"]


def _blocks(path: Path, lang: str) -> list[str]:
    return [m["body"] for m in FENCE.finditer(path.read_text(encoding="utf-8")) if m["lang"] == lang]


# -- generated files -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["config-reference.md", "mqtt-schema.json", "api-schema.json", *gen.FILLED_DOCS])
def test_generated_file_is_current(name: str) -> None:
    expected = gen.outputs()
    path = DOCS / name
    assert path in expected, f"{name} is not produced by docs/gen_reference.py"
    assert path.exists(), f"{path} is missing: run `python docs/gen_reference.py`"
    current = path.read_text(encoding="utf-8")
    if current != expected[path]:
        cur, exp = current.splitlines(), expected[path].splitlines()
        first = next((i for i, (a, b) in enumerate(zip(cur, exp, strict=False)) if a != b), min(len(cur), len(exp)))
        pytest.fail(
            f"docs/{name} differs from the code at line {first + 1}:\n"
            f"  committed: {cur[first] if first < len(cur) else '<end of file>'}\n"
            f"  generated: {exp[first] if first < len(exp) else '<end of file>'}\n"
            "run `python docs/gen_reference.py` and commit the result"
        )


def test_check_mode_reports_drift_and_write_mode_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("config-reference.md", "mqtt-schema.json", "api-schema.json", *gen.FILLED_DOCS):
        shutil.copy(DOCS / name, docs / name)
    (docs / "config-reference.md").write_text("stale\n", encoding="utf-8")
    mqtt = docs / "mqtt.md"
    mqtt.write_text(mqtt.read_text(encoding="utf-8").replace('"acked_seq": 40', '"acked_seq": 39'), encoding="utf-8")
    monkeypatch.setattr(gen, "DOCS", docs)
    monkeypatch.setattr(gen, "REPO", tmp_path)
    assert gen.main(["--check"]) == 1
    out = capsys.readouterr().out
    assert "docs/config-reference.md" in out and "docs/mqtt.md" in out and "home-assistant.md" not in out
    assert (docs / "config-reference.md").read_text(encoding="utf-8") == "stale\n"  # --check writes nothing
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
    assert (docs / "config-reference.md").read_text(encoding="utf-8") == (DOCS / "config-reference.md").read_text(
        encoding="utf-8"
    )


def test_unknown_generated_block_is_an_error() -> None:
    text = "intro\n<!-- generated:begin example-Nope -->\nold\n<!-- generated:end example-Nope -->\n"
    with pytest.raises(KeyError, match=r"mqtt\.md: unknown generated block 'example-Nope'"):
        gen.fill_blocks(text, gen.generated_blocks(), "mqtt.md")


def test_every_generated_block_is_used_somewhere() -> None:
    used = set()
    for name in gen.FILLED_DOCS:
        used |= set(re.findall(r"<!-- generated:begin ([\w-]+) -->", (DOCS / name).read_text(encoding="utf-8")))
    assert used == set(gen.generated_blocks())


def _leaf_paths(d: dict, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and not k.endswith(("cooldown_days", "spi_devices", "i2c_addresses")):
            out |= _leaf_paths(v, key + ".")
        else:
            out.add(key)
    return out


def test_reference_lists_every_config_key() -> None:
    ref = (DOCS / "config-reference.md").read_text(encoding="utf-8")
    agent = AgentConfig(state_dir=Path("/x"))  # type: ignore[call-arg]
    for key in _leaf_paths(agent.model_dump(mode="json")):
        assert f"| `{key}` |" in ref, f"agent key {key} missing from the reference"
    for key in _leaf_paths(DashboardConfig().model_dump(mode="json")):
        assert f"| `{key}` |" in ref, f"dashboard key {key} missing from the reference"
    for source_type in ("simulator", "replay", "serial", "ble", "adc"):
        assert f"— Insole source (type: {source_type})" in ref
    for key in ("sensors[].area_cm2", "calibration.k", "transport.frame.checksum", "transport.channels"):
        assert f"| `{key}` |" in ref


def _reference_defaults() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in (DOCS / "config-reference.md").read_text(encoding="utf-8").splitlines():
        m = re.match(
            r"^\| `([^`]+)` \| .*? \| (`[^|]*?`|\*\*required\*\*|[^|`]+)(?: \(the model's own.*?\))? \| ", line
        )
        if m:
            rows.setdefault(m.group(1), []).append(m.group(2))
    return rows


def test_reference_defaults_are_what_loading_an_empty_file_gives() -> None:
    """Defaults are the effective ones (validators included, e.g. the agent's 200 ms source batches)."""
    documented = _reference_defaults()
    checked = 0
    for cfg in (load_agent_config(None, state_dir="/x"), load_dashboard_config(None)):
        dump = cfg.model_dump(mode="json")
        for key in _leaf_paths(dump):
            if key in ("state_dir",):
                continue
            value: object = dump
            for part in key.split("."):
                value = value[part]  # type: ignore[index]
            cells = [c for c in documented[key] if c.startswith("`")]
            assert any(json.loads(c.strip("`")) == value for c in cells), f"{key}: loads as {value!r}, doc {cells}"
            checked += 1
    assert checked > 60


def test_documented_environment_variables_take_effect(monkeypatch: pytest.MonkeyPatch) -> None:
    """The env names in the reference are real: set some nested ones and see them in the loaded configs."""
    names = gen.env_names()
    values = {
        "FOOTFALL_MQTT__HA_DISCOVERY__PREFIX": "ha-test",
        "FOOTFALL_SOURCE__TYPE": "simulator",
        "FOOTFALL_SOURCE__PARAMS__SEED": "7",
        "FOOTFALL_PIPELINE__RUN_DETECTION__RUN_STOP_S": "45",
        "FOOTFALL_DASHBOARD_RISK__SPIKE_PCT": "30",
        "FOOTFALL_DASHBOARD_NOTIFY_URLS": '["ntfy://ntfy.sh/footfall-test"]',
        "FOOTFALL_DASHBOARD_MQTT__HA_PREFIX": "ha-dash",
    }
    for name, value in values.items():
        assert name in names, f"{name} is not in the generated reference"
        monkeypatch.setenv(name, value)
    a = load_agent_config(None)
    assert a.mqtt.ha_discovery.prefix == "ha-test"
    assert a.source.type == "simulator" and a.source.params.seed == 7  # type: ignore[union-attr]
    assert a.pipeline.run_detection.run_stop_s == 45
    d = load_dashboard_config(None)
    assert d.risk.spike_pct == 30 and d.mqtt.ha_prefix == "ha-dash"
    assert [u.get_secret_value() for u in d.notify_urls] == ["ntfy://ntfy.sh/footfall-test"]


def test_api_schema_file_is_the_response_models_schema() -> None:
    from plugin.web.schemas import openapi_like_schema

    on_disk = json.loads((DOCS / "api-schema.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(openapi_like_schema()))
    jsonschema.Draft202012Validator.check_schema(on_disk)


def test_mqtt_schema_file_is_the_contracts_schema() -> None:
    on_disk = json.loads((DOCS / "mqtt-schema.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(contract.json_schema()))
    assert set(on_disk["messages"]) == {"WindowSummary", "RunSummary", "LiveUpdate", "Ack", "Alert", "FeedbackTarget"}


def test_topic_table_matches_the_code() -> None:
    """Every topic leaf in mqtt.md's table exists in the code, and every topic the code uses is in the table."""
    from plugin.ha import HaPublisher
    from plugin.ingest import PLUGIN_NODE
    from plugin.notify import AlertDispatcher

    text = (DOCS / "mqtt.md").read_text(encoding="utf-8")
    table = text[text.index("## Topics") : text.index("## Rules every message follows")]
    device_leaves = set(re.findall(r"^\| `<base>/<device_id>/(\w+)` \|", table, re.M))
    t = contract.Topics("dev")
    code_leaves = {getattr(t, a).rsplit("/", 1)[1] for a in ("status", "summary", "run", "live", "ack", "alert")}
    assert device_leaves == code_leaves
    plugin_leaves = set(re.findall(rf"^\| `<base>/{PLUGIN_NODE}/(\w+)` \|", table, re.M))
    pub = HaPublisher(lambda *a: None, store=None)  # type: ignore[arg-type]
    dispatcher = AlertDispatcher(publish=None, base_topic="footfall", hub=None, notifier=None, loop=None)
    deviceless = gen.examples()["Alert"].model_copy(update={"device_id": None})
    code_plugin = {pub.status_topic, pub.state_topic, pub.event_topic, dispatcher.alert_topic(deviceless)}
    assert {f"footfall/{PLUGIN_NODE}/{leaf}" for leaf in plugin_leaves} == code_plugin
    assert f"`homeassistant/device/{gen.DEVICE}/config`".replace(gen.DEVICE, "<device_id>") in table
    assert f"`{pub.config_topic}`" in table


# -- payload examples ----------------------------------------------------------------------------------------------

EXAMPLE = re.compile(r"<!-- generated:begin example-(?P<model>\w+) -->\n```json\n(?P<json>.*?)```", re.S)


def test_mqtt_examples_validate_against_models_and_schema() -> None:
    text = (DOCS / "mqtt.md").read_text(encoding="utf-8")
    schema = json.loads((DOCS / "mqtt-schema.json").read_text(encoding="utf-8"))["messages"]
    found = {}
    for m in EXAMPLE.finditer(text):
        data = json.loads(m["json"])
        model = m["model"]
        found[model] = data
        getattr(contract, model).model_validate(data)
        jsonschema.Draft202012Validator(schema[model]).validate(data)
    assert set(found) == {"WindowSummary", "RunSummary", "LiveUpdate", "Ack", "Alert", "FeedbackTarget"}
    assert contract.parse_target(json.dumps(found["FeedbackTarget"])).runner == found["FeedbackTarget"]["runner"]
    # The stored kinds also pass the plugin's own entry point (size, version, discriminator).
    for model in ("WindowSummary", "RunSummary"):
        assert contract.parse_stored_message(json.dumps(found[model])).kind == found[model]["kind"]
    # The numbers tell a consistent story: the Ack's gap is below its highest seq, the window is 10 s.
    ack = found["Ack"]
    assert all(lo > ack["acked_seq"] and hi < ack["highest_seq"] for lo, hi in ack["missing"])
    assert found["WindowSummary"]["t_end"] - found["WindowSummary"]["t_start"] == 10.0


def test_every_json_block_in_the_deployment_docs_parses() -> None:
    # Other pages (e.g. recordings.md) sketch formats with "…" placeholders on purpose; these pages promise JSON.
    for path in (DOCS / "mqtt.md", DOCS / "home-assistant.md", DOCS / "docker.md", DOCS / "README.md"):
        for body in _blocks(path, "json"):
            try:
                json.loads(body)
            except json.JSONDecodeError as err:
                pytest.fail(f"{path.name}: JSON block does not parse: {err}\n{body[:200]}")


# -- YAML snippets -------------------------------------------------------------------------------------------------


def test_every_yaml_block_in_the_docs_parses() -> None:
    count = 0
    for path in _markdown_files():
        for body in _blocks(path, "yaml"):
            try:
                yaml.safe_load(body)
            except yaml.YAMLError as err:
                pytest.fail(f"{path.name}: YAML block does not parse: {err}\n{body[:200]}")
            count += 1
    assert count >= 3  # at least the Lovelace dashboard and the two automations


def test_config_snippets_in_the_docs_validate(tmp_path: Path) -> None:
    """A YAML block that is clearly an agent (or dashboard) config must pass that config's loader."""
    agent_keys, dash_keys = set(AgentConfig.model_fields), set(DashboardConfig.model_fields)
    checked = 0
    # secret files named in a snippet (/run/secrets/…) exist where it is deployed: stand one in here
    secret = tmp_path / "secret"
    secret.write_text("a-secret\n", encoding="utf-8")
    for path in sorted(DOCS.glob("*.md")):
        for i, body in enumerate(_blocks(path, "yaml")):
            data = yaml.safe_load(body)
            if not isinstance(data, dict) or not data:
                continue
            keys = set(data)
            f = tmp_path / f"{path.stem}-{i}.yaml"
            body = re.sub(r"(password_file:\s*)\S+", rf"\g<1>{secret}", body)
            f.write_text(body, encoding="utf-8")
            if keys <= agent_keys and not keys <= dash_keys:
                load_agent_config(f)
                checked += 1
            elif keys <= dash_keys and not keys <= agent_keys:
                load_dashboard_config(f)
                checked += 1
    assert checked >= 1


def _ha_yaml() -> list[dict]:
    return [yaml.safe_load(b) for b in _blocks(DOCS / "home-assistant.md", "yaml")]


def test_home_assistant_entity_ids_exist_in_the_discovery_code() -> None:
    text = (DOCS / "home-assistant.md").read_text(encoding="utf-8")
    known = gen.all_entity_ids()
    used = set(re.findall(r"\b(?:sensor|event|binary_sensor)\.footfall_[a-z0-9_]+", text))
    assert used, "no entity ids found in home-assistant.md"
    assert used <= known, f"entity ids not produced by the discovery code: {sorted(used - known)}"


def test_lovelace_dashboard_has_history_of_cadence_and_valr_and_the_risk_level() -> None:
    dash = next(d for d in _ha_yaml() if "views" in d)
    cards = [c for v in dash["views"] for c in v["cards"]]
    graphs = [c for c in cards if c["type"] == "history-graph"]
    graphed = {e["entity"] if isinstance(e, dict) else e for g in graphs for e in g["entities"]}
    assert any(e.endswith("_cadence") for e in graphed)
    assert any("valr" in e for e in graphed)
    risk = "sensor.footfall_dashboard_injury_risk_level"
    shown = {c.get("entity") for c in cards} | {
        e["entity"] if isinstance(e, dict) else e for c in cards if c["type"] == "entities" for e in c["entities"]
    }
    assert risk in shown | graphed
    assert any(c["type"] == "entities" for c in cards)


def test_alert_automation_pushes_the_event_attributes_to_the_phone() -> None:
    auto = next(d for d in _ha_yaml() if "triggers" in d and "running_alert" in json.dumps(d["triggers"]))
    [trigger] = auto["triggers"]
    assert trigger["trigger"] == "state" and trigger["entity_id"] == "event.footfall_dashboard_running_alert"
    assert "to" not in trigger  # every new event changes the state (its timestamp)
    [action] = auto["actions"]
    assert action["action"].startswith("notify.mobile_app_")
    assert "trigger.to_state.attributes.message" in action["data"]["message"]
    assert "trigger.to_state.attributes.title" in action["data"]["title"]
    # The attributes the automation reads are keys the plugin really publishes on the event topic.
    published = set(gen.ha_event_payload(gen.examples()["Alert"]))
    for attr in re.findall(r"trigger\.to_state\.attributes\.(\w+)", json.dumps(auto)):
        assert attr in published, f"automation reads attribute {attr!r} the event does not carry"


def test_risk_automation_fires_on_high() -> None:
    auto = next(d for d in _ha_yaml() if "triggers" in d and "risk_level" in json.dumps(d["triggers"]))
    [trigger] = auto["triggers"]
    assert trigger["entity_id"] == "sensor.footfall_dashboard_injury_risk_level" and trigger["to"] == "high"
    from plugin.ha import RISK_LEVELS

    assert "high" in RISK_LEVELS and set(trigger["not_from"]) == {"unavailable", "unknown"}
    assert auto["actions"][0]["action"].startswith("notify.mobile_app_")


# -- links ---------------------------------------------------------------------------------------------------------


def _github_anchor(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces → hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_github_anchor(m) for m in re.findall(r"^#{1,6}\s+(.*)$", text, re.M)}


def _link_problems(files: list[Path], root: Path) -> tuple[list[str], int]:
    """Relative links (and #anchors into Markdown files) that do not resolve; links in code are skipped."""
    problems, checked = [], 0
    for path in files:
        text = FENCE.sub("", path.read_text(encoding="utf-8"))
        text = re.sub(r"`[^`\n]*`", "", text)  # links inside inline code are examples, not links
        for m in LINK.finditer(text):
            target = m["target"] or m["img"]
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: …
                continue
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            checked += 1
            where = path.relative_to(root)
            if not dest.exists():
                problems.append(f"{where}: link to {target} — {file_part} does not exist")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                problems.append(f"{where}: link to {target} — no heading #{anchor} there")
    return problems, checked


def test_every_relative_link_points_to_an_existing_file() -> None:
    problems, checked = _link_problems(_markdown_files(), REPO)
    assert not problems, "\n".join(problems)
    assert checked > 20


def test_link_checker_catches_broken_links(tmp_path: Path) -> None:
    """The checker is not vacuous: a missing file and a missing anchor are caught, code spans are not links."""
    (tmp_path / "b.md").write_text("# Other page\n", encoding="utf-8")
    (tmp_path / "a.md").write_text(
        "# Title\n\n[b](b.md) [b2](b.md#other-page) [t](#title) [gone](c.md) [x](b.md#nope) `[d](d.md)`\n"
        "```\n[e](e.md)\n```\n![img](pic.png) [web](https://example.org/x.md)\n",
        encoding="utf-8",
    )
    problems, checked = _link_problems([tmp_path / "a.md"], tmp_path)
    assert checked == 6
    assert problems == [
        "a.md: link to c.md — c.md does not exist",
        "a.md: link to b.md#nope — no heading #nope there",
        "a.md: link to pic.png — pic.png does not exist",
    ]


def test_documented_dashboard_settings_are_the_ones_it_accepts() -> None:
    """docs/dashboard.md lists the settings POST /api/settings takes; a key documented but refused is a lie."""
    from plugin.web.context import DEFAULT_SETTINGS_SCHEMA

    text = (REPO / "docs" / "dashboard.md").read_text(encoding="utf-8")
    sentence = text[text.index("Defaults:\n`notify_urls`") : text.index("POST a JSON object with any subset")]
    documented = set(re.findall(r"`([a-z_]+)` \(", sentence))
    assert documented == {s.key for s in DEFAULT_SETTINGS_SCHEMA}
