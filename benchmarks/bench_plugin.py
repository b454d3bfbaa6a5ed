"""Plugin benchmarks: ingest rate (broker → SQLite) and trend latency over a simulated year.

Run: ``python benchmarks/bench_plugin.py [--n 20000] [--weeks 52]``. Needs Mosquitto on PATH.

1. Backlog drain: a raw paho client (not footfall's publisher) publishes N window summaries (QoS 1) while the
   plugin's persistent session is offline, so the broker queues them; then the plugin connects and we time
   broker → validate → SQLite commit → ack for all N. This isolates the plugin from the publisher.
2. Live: the same raw publisher in a separate process publishes while the plugin runs; time until all are stored.
3. Trend API latency over a year of history (≥ 300 runs): GET /api/trends through the web app
   (plugin.web.app, aiohttp test server) plus ``trends()`` called directly.
Targets (docs/design.md §7, brief): ≥ 2,000 summaries/s; trend query < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from plugin.config import MqttConfig  # noqa: E402
from plugin.history import RunnerModel, generate_history, seed_history  # noqa: E402
from plugin.ingest import Ingest  # noqa: E402
from plugin.store import Store  # noqa: E402
from plugin.trends import trends  # noqa: E402
from tests.support.brokers import MosquittoBroker  # noqa: E402

PUBLISHER = r"""
import sys, json, paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
port, path = int(sys.argv[1]), sys.argv[2]
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw-publisher")
c.max_inflight_messages_set(200)
c.connect("127.0.0.1", port); c.loop_start()
infos = []
for line in open(path):
    topic, payload = line.rstrip("\n").split(" ", 1)
    infos.append(c.publish(topic, payload, qos=1))
for i in infos:
    i.wait_for_publish(120)
c.disconnect(); c.loop_stop()
"""


def payloads(n: int) -> list[tuple[str, str]]:
    out = []
    for m in generate_history(weeks=60, window_s=10.0, step_records_last_runs=0, seed=1):
        if m.kind == "summary":
            out.append((f"footfall/{m.device_id}/summary", m.model_dump_json()))
            if len(out) == n:
                break
    return out


def wait_stored(ingest: Ingest, n: int, timeout: float = 300.0) -> float:
    t0 = time.perf_counter()
    while ingest.stats.stored + ingest.stats.duplicates < n:
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"only {ingest.stats.stored} of {n} stored")
        time.sleep(0.005)
    return time.perf_counter()


def bench_backlog(work: Path, msgs: list[tuple[str, str]]) -> float:
    broker = MosquittoBroker(work / "b1", max_queued_messages=len(msgs) + 10)
    broker.start()
    try:
        store = Store(work / "backlog.db")
        cfg = MqttConfig(url=broker.url, client_id="bench-dash", ha_discovery=False)
        first = Ingest(store, cfg)
        first.start()
        first.stop()  # the persistent session (clean_session=False) keeps the subscriptions while offline
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub")
        pub.max_inflight_messages_set(200)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        infos = [pub.publish(t, p, qos=1) for t, p in msgs]
        for i in infos:
            i.wait_for_publish(120)
        pub.disconnect()
        pub.loop_stop()
        ingest = Ingest(store, cfg)
        t0 = time.perf_counter()
        ingest.start(connect_timeout=10)
        t1 = wait_stored(ingest, len(msgs))
        ingest.wait_idle(10)
        ingest.stop()
        assert store.counts()["windows"] == len(msgs)
        rate = len(msgs) / (t1 - t0)
        print(f"backlog drain: {len(msgs)} summaries broker→SQLite in {t1 - t0:.2f} s = {rate:,.0f}/s "
              f"(batches {ingest.stats.batches}, max batch {ingest.stats.max_batch}) — "
              f"{rate / 2000:.1f}× the 2,000/s target")  # fmt: skip
        store.close()
        return rate
    finally:
        broker.stop()


def bench_live(work: Path, msgs: list[tuple[str, str]], with_risk: bool = False) -> float:
    tag = "risk" if with_risk else "plain"
    broker = MosquittoBroker(work / f"b2{tag}", max_queued_messages=len(msgs) + 10)
    broker.start()
    try:
        store = Store(work / f"live-{tag}.db")
        on_stored = None
        if with_risk:  # the service's post-store path: every new window through the risk engine
            from plugin.risk import RiskEngine

            engine = RiskEngine(store)

            def on_stored(new: list) -> None:  # type: ignore[type-arg]
                for m in new:
                    engine.on_summary(m) if m.kind == "summary" else engine.on_run(m)

        ingest = Ingest(
            store, MqttConfig(url=broker.url, client_id=f"bench-live-{tag}", ha_discovery=False), on_stored=on_stored
        )
        ingest.start()
        feed = work / f"feed-{tag}.txt"
        feed.write_text("".join(f"{t} {p}\n" for t, p in msgs))
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", PUBLISHER, str(broker.port), str(feed)])
        t1 = wait_stored(ingest, len(msgs))
        proc.wait(120)
        ingest.stop()
        rate = len(msgs) / (t1 - t0)
        what = "with the risk engine on every window" if with_risk else "ingest only"
        print(f"live, {what} (raw publisher in another process, same 2 cores): {len(msgs)} in {t1 - t0:.2f} s "
              f"= {rate:,.0f}/s")  # fmt: skip
        store.close()
        return rate
    finally:
        broker.stop()


async def bench_trends(work: Path, weeks: int, repeats: int = 30) -> None:
    store = Store(work / "year.db")
    t0 = time.perf_counter()
    n = seed_history(store, weeks=weeks, seed=2, runner=RunnerModel(runs_per_week=6), step_records_last_runs=3)
    print(f"seeded {weeks} weeks: {store.count_runs()} runs, {n} messages in {time.perf_counter() - t0:.1f} s")
    for period in ("week", "day", "run"):
        ts = []
        for _ in range(repeats):
            s = time.perf_counter()
            trends(store, period=period)  # type: ignore[arg-type]
            ts.append((time.perf_counter() - s) * 1000)
        print(f"trends(period={period}) direct: median {statistics.median(ts):.1f} ms, max {max(ts):.1f} ms")
    try:
        from aiohttp.test_utils import TestClient, TestServer

        from plugin.events import EventHub
        from plugin.web.app import create_app
        from plugin.web.context import DashboardContext
    except ImportError as err:
        print(f"web app not importable ({err}); API latency skipped — the direct timings above stand in")
        return
    ctx = DashboardContext(store=store, hub=EventHub(), health=lambda: {"ingest": {}, "broker": {}})
    async with TestClient(TestServer(create_app(ctx))) as client:
        for path in ("/api/trends?period=week", "/api/trends?period=run", "/api/trends?period=day"):
            ts = []
            for _ in range(repeats):
                s = time.perf_counter()
                r = await client.get(path)
                body = await r.read()
                ts.append((time.perf_counter() - s) * 1000)
                assert r.status == 200, body[:200]
            pts = len(json.loads(body)["points"])
            med = statistics.median(ts)
            print(f"GET {path}: {pts} points, {len(body) / 1024:.0f} KiB, median {med:.1f} ms, "
                  f"p95 {sorted(ts)[int(0.95 * len(ts)) - 1]:.1f} ms — {100 / med:.0f}× under 100 ms")  # fmt: skip
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="summaries for the ingest runs")
    ap.add_argument("--weeks", type=int, default=52, help="weeks of history for the trend latency")
    ap.add_argument("--skip-live", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="footfall-bench-") as d:
        work = Path(d)
        msgs = payloads(args.n)
        print(f"{len(msgs)} WindowSummary payloads, {sum(len(p) for _, p in msgs) / len(msgs):.0f} bytes each")
        bench_backlog(work, msgs)
        if not args.skip_live:
            bench_live(work, msgs)
            bench_live(work, msgs, with_risk=True)
        asyncio.run(bench_trends(work, args.weeks))


if __name__ == "__main__":
    main()
