"""The agent's delivery path in-process (Outbox → OutboxPublisher → MqttConnection), for delivery tests.

Run as a script (``python -m tests.support.delivery agent URL DB N RATE``) it is the small publishing agent
that the agent-kill test SIGKILLs and restarts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from edge_agent.common.mqtt import BrokerSettings, MqttConnection
from edge_agent.contract import RunSummary, Topics, WindowSummary
from edge_agent.runtime.outbox import Outbox
from edge_agent.runtime.publisher import OutboxPublisher

DEVICE = "dev1"
TOPICS = Topics(DEVICE)


def make_message(i: int, kind: str = "summary", device_id: str = DEVICE) -> WindowSummary | RunSummary:
    common: dict[str, Any] = dict(
        msg_id="placeholder",
        device_id=device_id,
        stream_id="none",
        seq=1,
        device_time=1.7e9 + i,
        run_id=f"{device_id}-20260101T0000{i % 60:02d}",
    )
    if kind == "run":
        return RunSummary(**common, started_at=1.7e9, ended_at=1.7e9 + 600, duration_s=600, windows=60, steps=1700)
    return WindowSummary(
        **common, window_index=i, t_start=1.7e9 + 10 * i, t_end=1.7e9 + 10 * i + 10, steps=28, cadence_spm=168.0
    )


class Agent:
    """The agent's delivery path, in-process: Outbox → OutboxPublisher → MqttConnection."""

    def __init__(
        self, url: str, db: Path, tls_ca: Path | None = None, *, device_id: str = DEVICE, **outbox_kw: Any
    ) -> None:
        outbox_kw.setdefault("resend_after_s", 1.0)
        outbox_kw.setdefault("max_resend_after_s", 2.0)
        self.device_id = device_id
        self.topics = Topics(device_id)
        self.outbox = Outbox(db, device_id, **outbox_kw)
        self.settings = BrokerSettings(
            url=url, client_id=f"agent-{device_id}", backoff_min_s=0.05, backoff_max_s=0.5, tls_ca=tls_ca
        )
        self.conn = MqttConnection(self.settings, will=(self.topics.status, b"offline", True))
        self.publisher = OutboxPublisher(
            self.conn, self.outbox, self.topics, window=100, poll_s=0.1, expire_every_s=1.0
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Agent:
        await self.conn.__aenter__()
        self._task = asyncio.create_task(self.publisher.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.conn.close()
        self.outbox.close()

    async def produce(self, n: int, rate_hz: float | None = None, run_every: int = 0, first: int = 0) -> list[int]:
        """Put messages ``first`` … ``first + n - 1`` (each its own window index) into the outbox."""
        seqs = []
        for i in range(first, first + n):
            kind = "run" if run_every and (i + 1) % run_every == 0 else "summary"
            topic = self.topics.run if kind == "run" else self.topics.summary
            seqs.append(await asyncio.to_thread(self.outbox.put, topic, make_message(i, kind, self.device_id)))
            if rate_hz:
                await asyncio.sleep(1 / rate_hz)
        return seqs


def agent_main(url: str, db: str, n: int, rate: float) -> int:
    """Script mode: produce up to seq n into the outbox (continuing after a restart), then drain."""

    async def run() -> int:
        async with Agent(url, Path(db)) as agent:
            i = agent.outbox.last_seq()
            while i < n:
                seq = await asyncio.to_thread(agent.outbox.put, TOPICS.summary, make_message(i))
                print(f"put {seq}", flush=True)
                i = seq
                await asyncio.sleep(1 / rate)
            ok = await agent.publisher.drain(30)
            print("stats " + json.dumps(agent.outbox.stats()), flush=True)
            return 0 if ok else 3

    return asyncio.run(run())


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "agent":
        logging.basicConfig(level=logging.WARNING)
        sys.exit(agent_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
    print(__doc__)
    sys.exit(2)
