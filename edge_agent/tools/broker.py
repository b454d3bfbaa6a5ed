"""A local MQTT broker the demo and the tests can start and stop: a private Mosquitto instance
(killable and restartable, for fault tests) when Mosquitto is installed, else an embedded amqtt
broker in a thread, so ``footfall demo`` needs nothing but pip (docs/design.md §8).

Both listen on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0, up: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not come {'up' if up else 'down'} within {timeout}s")


class MosquittoBroker:
    """A private Mosquitto on a free loopback port; ``kill()`` is SIGKILL, ``start()`` restarts."""

    def __init__(
        self,
        workdir: Path,
        persistence: bool = False,
        max_queued_messages: int | None = None,
        autosave_interval: int = 1,
    ) -> None:
        self.port = free_port()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.persistence = persistence
        self.proc: subprocess.Popen[bytes] | None = None
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "log_dest stderr", "log_type error"]
        if persistence:
            lines += [
                "persistence true",
                f"persistence_location {self.workdir}/",
                f"autosave_interval {autosave_interval}",
            ]
        else:
            lines.append("persistence false")
        if max_queued_messages is not None:
            lines.append(f"max_queued_messages {max_queued_messages}")
        self.conf = self.workdir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.url = f"mqtt://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start(self) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        with open(self.workdir / "log", "ab") as log:
            self.proc = subprocess.Popen([exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=log)
        wait_port(self.port)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        wait_port(self.port, up=False)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()


class AmqttBroker:
    """Embedded Python broker (amqtt) in a thread, for machines without Mosquitto."""

    def __init__(self, workdir: Path, **_: object) -> None:
        self.port = free_port()
        self.workdir = Path(workdir)
        self.persistence = False
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: object | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
            "topic-check": {"enabled": False},
        }
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            broker = Broker(config, loop=loop)
            self._broker = broker
            loop.run_until_complete(broker.start())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="amqtt-broker")
        self._thread.start()
        ready.wait(10)
        wait_port(self.port)

    def stop(self) -> None:
        if self._loop and self._broker:
            fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)  # type: ignore[attr-defined]
            try:
                fut.result(10)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
        self._broker = None

    kill = stop

    def restart(self) -> None:
        self.stop()
        self.start()


def have_mosquitto() -> bool:
    return bool(shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto"))


def make_broker(workdir: Path, **kw: object) -> MosquittoBroker | AmqttBroker:
    if have_mosquitto():
        return MosquittoBroker(workdir, **kw)  # type: ignore[arg-type]
    return AmqttBroker(workdir, **kw)
