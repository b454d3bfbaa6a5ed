"""``footfall demo``: the whole product on one machine with nothing but pip.

It starts a local MQTT broker (Mosquitto when installed, else the embedded amqtt broker), seeds the
dashboard with a few weeks of simulated history so that trends and baselines mean something, starts
the dashboard plugin and an edge agent that runs a simulated run containing a loading spike, and
prints the dashboard URL. The spike raises an alert in the dashboard (and a push notification when
``--notify`` is given). Ctrl-C stops everything and leaves no process behind.

The agent and the dashboard run as separate processes, exactly as on a Pi and a home server: this
module only orchestrates them (the agent package never imports the plugin).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

from edge_agent.tools.broker import AmqttBroker, MosquittoBroker, free_port, have_mosquitto

DEVICE_ID = "demo-insoles"
RUNNER = "Demo Runner"


USAGE = (
    "usage: footfall demo [--listen HOST:PORT] [--notify APPRISE_URL]…\n"
    "       (the agent is `footfall-agent`, the dashboard `footfall-dashboard`)"
)


def _parse_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--listen expects HOST:PORT, got {value!r}")
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="footfall demo",
        description="Run a simulated insole, a local broker and the dashboard on this machine.",
    )
    p.add_argument(
        "--listen",
        type=_parse_listen,
        default=None,
        metavar="HOST:PORT",
        help="dashboard address (default 127.0.0.1 on a free port, 8765 if free)",
    )
    p.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="APPRISE_URL",
        help="also push alerts to this Apprise URL (repeatable), e.g. ntfy://ntfy.sh/TOPIC",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="keep the demo's databases here (default: a temporary folder removed at exit)",
    )
    p.add_argument(
        "--weeks", type=int, default=10,
        help="weeks of simulated history to seed, 8–12: a runner mid-way through the retraining program (default 10)",
    )  # fmt: skip
    p.add_argument("--speed", type=float, default=1.0, help="time factor for the simulated run (default 1 = real time)")
    p.add_argument("--run-minutes", type=float, default=6.0, help="length of the simulated run (default 6)")
    p.add_argument("--seed", type=int, default=7, help="random seed of the simulation")
    p.add_argument("--token", default=None, help="dashboard token (required when --listen is not loopback)")
    return p


#: The pair the demo runner runs in now (plugin.cli.program_scenario's new pair).
DEMO_SHOE = "Carbon racer"


def agent_config(state_dir: Path, broker_url: str, run_s: float, seed: int) -> dict[str, object]:
    """A simulated run: a little standing (body-weight calibration), then running with a loading spike."""
    spike_start = min(75.0, 0.3 * run_s)
    return {
        "device_id": DEVICE_ID,
        "runner": RUNNER,
        "shoe": DEMO_SHOE,
        "profile": "moticon-opengo",
        "body_mass_kg": 68.0,
        "state_dir": str(state_dir / "agent"),
        "mqtt": {"url": broker_url},
        "source": {
            "type": "simulator",
            "params": {
                "duration_s": run_s + 40.0,
                "seed": seed,
                "body_mass_kg": 68.0,
                "standing_s": 8.0,
                "walking_s": 15.0,
                "cadence_spm": 168.0,
                "impact_rise_ms": 45.0,  # VALR ≈ 50 BW/s, the seeded history's runner
                "strike_index_left": 0.16,
                "strike_index_right": 0.2,
                "fatigue": 0.3,
                "spikes": [[spike_start, spike_start + 40.0, 1.9]],
            },
        },
    }


def _wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the dashboard exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1.0):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.broker: MosquittoBroker | AmqttBroker | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._stop = threading.Event()

    def _spawn(
        self, name: str, argv: list[str], log: Path, extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env.update(extra_env or {})
        env.setdefault("NUMBA_CACHE_DIR", str(Path(self.state_dir) / "numba-cache"))
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.procs.append((name, proc))
        return proc

    def run(self) -> int:
        args = self.args
        if args.state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="footfall-demo-")
            self.state_dir = Path(self._tmp.name)
        else:
            self.state_dir = args.state_dir.resolve()
            self.state_dir.mkdir(parents=True, exist_ok=True)
        logs = self.state_dir / "logs"
        logs.mkdir(exist_ok=True)

        host, port = args.listen or ("127.0.0.1", _default_port())
        if host not in ("127.0.0.1", "localhost", "::1") and not args.token:
            print("footfall demo: --listen beyond localhost needs --token", file=sys.stderr)
            return 2

        print("footfall demo: starting a local MQTT broker…", flush=True)
        self.broker = (MosquittoBroker if have_mosquitto() else AmqttBroker)(self.state_dir / "broker")
        self.broker.start()
        broker_url = self.broker.url
        kind = "Mosquitto" if isinstance(self.broker, MosquittoBroker) else "embedded amqtt"
        print(f"footfall demo: broker ({kind}) at {broker_url}", flush=True)

        db = self.state_dir / "dashboard.db"
        exe = [sys.executable, "-m"]
        print(f"footfall demo: seeding {args.weeks} weeks of simulated history…", flush=True)
        seed_log = logs / "seed-history.log"
        with open(seed_log, "wb") as out:  # its log lines belong in the log, not on the demo's terminal
            seeded = subprocess.run(
                [
                    *exe,
                    "plugin.cli",
                    "seed-history",
                    "--db",
                    str(db),
                    "--weeks",
                    str(args.weeks),
                    "--device-id",
                    DEVICE_ID,
                    "--runner",
                    RUNNER,
                    "--seed",
                    str(args.seed),
                    *(["--program"] if 8 <= args.weeks <= 12 else []),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if seeded.returncode != 0:
            raise RuntimeError(f"seeding the history failed:\n{seed_log.read_text(errors='replace')[-2000:]}")

        dash_argv = [*exe, "plugin.cli", "run", "--db", str(db), "--broker", broker_url, "--listen", f"{host}:{port}"]
        for url in args.notify:
            dash_argv += ["--notify", url]
        # The token goes through the environment, never the command line (visible in `ps`).
        dash_env = {"FOOTFALL_DASHBOARD_TOKEN": args.token} if args.token else {}
        if not isinstance(self.broker, MosquittoBroker):  # the embedded broker speaks MQTT 3.1.1 only
            dash_env["FOOTFALL_DASHBOARD_MQTT__PROTOCOL"] = "3.1.1"
        dashboard = self._spawn("dashboard", dash_argv, logs / "dashboard.log", dash_env or None)
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
        _wait_http(url + "api/health", 60.0, dashboard)

        cfg_path = self.state_dir / "agent.yaml"
        cfg_path.write_text(yaml.safe_dump(agent_config(self.state_dir, broker_url, args.run_minutes * 60, args.seed)))
        self._spawn(
            "agent",
            [*exe, "edge_agent.cli", "run", "--config", str(cfg_path), "--speed", str(args.speed)],
            logs / "agent.log",
        )

        print(f"\n  footfall dashboard: {url}\n", flush=True)
        print(
            f"footfall demo: a simulated run is in progress (logs in {logs}); "
            "a loading spike is coming. Ctrl-C stops everything.",
            flush=True,
        )
        self._watch()
        return 0

    def _watch(self) -> None:
        announced = False
        while not self._stop.wait(1.0):
            for name, proc in self.procs:
                if proc.poll() is not None and name == "dashboard":
                    print(f"footfall demo: the dashboard exited with code {proc.returncode}", file=sys.stderr)
                    return
                if proc.poll() is not None and name == "agent" and not announced:
                    announced = True
                    if proc.returncode == 0:
                        print("footfall demo: the simulated run has ended; the dashboard keeps running.", flush=True)
                    else:
                        log = self.state_dir / "logs" / "agent.log"
                        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                        print(f"footfall demo: the agent failed (exit {proc.returncode}):", file=sys.stderr)
                        for line in tail:
                            print(f"  {line}", file=sys.stderr)

    def stop(self) -> None:
        self._stop.set()
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in reversed(self.procs):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.broker is not None:
            self.broker.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


def _default_port() -> int:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 8765))
            return 8765
        except OSError:
            return free_port()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):  # asked for help: print it and succeed
        print(f"{USAGE}\n\n{build_parser().format_help()}")
        return 0
    if not argv or argv[0] != "demo":
        print(USAGE, file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv[1:])
    demo = Demo(args)

    def _on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_signal)
    try:
        return demo.run()
    except KeyboardInterrupt:
        print("\nfootfall demo: stopping…", flush=True)
        return 0
    except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as err:
        print(f"footfall demo: {err}", file=sys.stderr)
        return 1
    finally:
        demo.stop()


if __name__ == "__main__":
    raise SystemExit(main())
