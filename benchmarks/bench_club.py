"""Club-scale benchmarks: PostgreSQL store, several ingest workers, a coach's team trends; SQLite beside PostgreSQL.

Run: ``python benchmarks/bench_club.py [--runners 500] [--weeks 52] [--n 20000]``. Needs Mosquitto and the
PostgreSQL server binaries (Debian's ``postgresql``); starts its own throw-away cluster with PostgreSQL's default
durability (fsync and synchronous commit ON) in a temp dir. Prints ratios, asserts nothing about time.

1. Seed ``--runners`` runners × ``--weeks`` weeks into PostgreSQL through the store (runs, and windows at
   ``--window-s`` granularity: the trend API reads runs, the risk baselines read windows), in 2 processes;
   10 teams of 50 runners, a coach for team 0.
2. Ingest 1 vs 2 workers: ``--n`` window summaries from 100 devices are queued by Mosquitto for the workers'
   persistent sessions (MQTT 5 shared subscription), then the workers — separate processes, as deployed — start
   and we time broker → validate → PostgreSQL commit → ack until the database holds them all.
3. A coach's team-of-50 trend through the real web app with the coach's token: ``GET /api/trends?team=…`` (the
   team pooled) and ``GET /api/trends?runner=…`` for team members; p50/p95.
4. Home-sized, SQLite beside PostgreSQL: 2 runners × 1 year stored through ``Store.store_batch``, then the trend
   and run-detail APIs, timed alike on both backends (the run detail is served from the web app's cache after
   the first request on both, revalidated with one query each time).
Targets (issue 11): ≥ 5,000 summaries/s with 2 workers; team trend p95 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from edge_agent.contract import WindowSummary  # noqa: E402
from plugin.history import RunnerModel, generate_history  # noqa: E402
from plugin.store import Store  # noqa: E402
from tests.support.brokers import MosquittoBroker  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402

WORKER = r"""
import sys, time, signal
sys.path.insert(0, sys.argv[4])
from plugin.config import MqttConfig
from plugin.ingest import Ingest
from plugin.store import Store
url, broker, name = sys.argv[1], sys.argv[2], sys.argv[3]
store = Store(url, shard=name)
ingest = Ingest(store, MqttConfig(url=broker, client_id=name, share_group="bench", ha_discovery=False))
print("imported", flush=True)
sys.stdin.readline()  # "go": the clock starts here, after Python's start-up and imports
ingest.start()
print("ready", flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
ingest.stop()
store.close()
"""


def p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


# -- 1. seed --------------------------------------------------------------------------------------------------------
def _seed_part(url: str, first: int, last: int, weeks: int, window_s: float, end: float) -> int:
    store = Store(url, shard=f"seed{first}")
    n = 0
    for i in range(first, last):
        model = RunnerModel(name=f"runner{i:03d}", device_id=f"dev{i:03d}", valr_bw_s=45 + (i % 20),
                            cadence_spm=160 + (i % 15))  # fmt: skip
        batch = []
        for m in generate_history(weeks=weeks, end=end, runner=model, window_s=window_s, seed=i,
                                  step_records_last_runs=0, stream_id=f"seedstream{i:05d}"):  # fmt: skip
            batch.append(m)
            if len(batch) >= 2000:
                n += store.insert_many(batch)
                batch = []
        n += store.insert_many(batch)
    store.close()
    return n


def seed(url: str, runners: int, weeks: int, window_s: float) -> None:
    t0 = time.perf_counter()
    end = time.time()
    half = runners // 2
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        parts = pool.starmap(_seed_part, [(url, 0, half, weeks, window_s, end), (url, half, runners, weeks,
                                                                                 window_s, end)])  # fmt: skip
    dt = time.perf_counter() - t0
    with Store(url) as s:
        counts = s.counts()
        for t in range(max(1, runners // 50)):
            s.add_team(f"team{t}")
            s.set_team_members(f"team{t}", [f"runner{i:03d}" for i in range(t * 50, min(runners, (t + 1) * 50))])
        s.add_user("coach0", "coach")
        s.set_team_coach("team0", "coach0")
    print(f"seeded {runners} runners × {weeks} weeks into PostgreSQL in {dt:.0f} s ({sum(parts) / dt:,.0f} "
          f"messages/s, 2 processes): {counts['runs']:,} runs, {counts['windows']:,} windows "
          f"({window_s:.0f} s windows), {counts['messages']:,} messages")  # fmt: skip


# -- 2. ingest, 1 vs 2 workers ----------------------------------------------------------------------------------------
def payloads(n: int, tag: str) -> list[tuple[str, str]]:
    """``n`` window summaries: 100 devices, one run each, in publish order (devices interleaved)."""
    per = max(1, n // 100)
    template = next(m for m in generate_history(weeks=1, seed=3, step_records_last_runs=0)
                    if isinstance(m, WindowSummary))  # fmt: skip
    out = []
    for k in range(per):
        for d in range(100):
            dev = f"bench-{tag}-{d:03d}"
            m = template.model_copy(update={
                "msg_id": f"{tag}{d:03d}w{k:06d}", "device_id": dev, "stream_id": f"s{tag}{d:03d}", "seq": k + 1,
                "run_id": f"{dev}-run", "window_index": k, "runner": f"bench-{tag}-{d:03d}",
                "t_start": template.t_start + 10 * k, "t_end": template.t_start + 10 * k + 10,
            })  # fmt: skip
            out.append((f"footfall/{dev}/summary", m.model_dump_json()))
    return out[:n]


def publish(port: int, msgs: list[tuple[str, str]]) -> None:
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{time.monotonic_ns()}")
    pub.max_inflight_messages_set(500)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    infos = [pub.publish(t, p, qos=1) for t, p in msgs]
    for i in infos:
        i.wait_for_publish(300)
    pub.disconnect()
    pub.loop_stop()


def start_workers(
    url: str, broker: MosquittoBroker, names: list[str], env: dict[str, str], on_go: Callable[[], None] | None = None
) -> list[Any]:
    argv = [sys.executable, "-c", WORKER, url, broker.url]
    procs = [
        subprocess.Popen([*argv, n, str(REPO)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        for n in names
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "imported"
    if on_go is not None:
        on_go()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return procs


def stop_workers(procs: list[Any]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(60)


def bench_ingest(url: str, work: Path, n: int, workers: int, tag: str) -> float:
    broker = MosquittoBroker(work / f"broker-{tag}", max_queued_messages=n + 1000)
    broker.start()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    names = [f"bench-{tag}-worker{i}" for i in range(workers)]
    try:
        stop_workers(start_workers(url, broker, names, env))  # sessions + shared subscription, then offline
        msgs = payloads(n, tag)
        publish(broker.port, msgs)  # queued by the broker for the offline sessions
        with Store(url) as s:
            before = s.summaries()
            t0 = time.perf_counter()

            def go() -> None:
                nonlocal t0
                t0 = time.perf_counter()

            procs = start_workers(url, broker, names, env, go)
            while s.summaries() < before + len(msgs):
                if time.perf_counter() - t0 > 600:
                    raise TimeoutError(f"{s.summaries() - before} of {len(msgs)} stored")
                time.sleep(0.02)
            dt = time.perf_counter() - t0
        stop_workers(procs)
    finally:
        broker.stop()
    rate = len(msgs) / dt
    print(f"ingest, {workers} worker(s): {len(msgs):,} summaries broker → PostgreSQL in {dt:.2f} s = {rate:,.0f}/s "
          f"({rate / 5000:.2f}× the 5,000/s target)")  # fmt: skip
    return rate


# -- 3. a coach's team trends --------------------------------------------------------------------------------------
async def bench_team_trends(url: str, repeats: int) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from plugin.events import EventHub
    from plugin.web.app import create_app
    from plugin.web.context import DashboardContext

    store = Store(url)
    token = store.create_token("coach0", "bench")
    members = store.teams("coach0")[0]["runners"]
    ctx = DashboardContext(store=store, hub=EventHub(), health=lambda: {}, token="x" * 32, prewarm_runs=False)
    headers = {"Authorization": f"Bearer {token}"}
    async with TestClient(TestServer(create_app(ctx))) as client:
        paths = [("team of 50, weekly, 1 year", "/api/trends?team=team0&period=week"),
                 ("team of 50, daily, 1 year", "/api/trends?team=team0&period=day")]  # fmt: skip
        for label, path in paths:
            await _time_get(client, label, [path] * repeats, headers)
        await _time_get(client, "one team member, weekly", [f"/api/trends?runner={members[i % len(members)]}"
                                                            for i in range(repeats)], headers)  # fmt: skip
        await _time_get(client, "runs list of the team (100)", ["/api/runs?limit=100"] * repeats, headers)
    store.close()


async def _time_get(client: Any, label: str, paths: list[str], headers: dict[str, str]) -> None:
    ts = []
    size = 0
    for path in paths:
        s = time.perf_counter()
        r = await client.get(path, headers=headers)
        body = await r.read()
        ts.append((time.perf_counter() - s) * 1000)
        assert r.status == 200, body[:200]
        size = len(body)
    print(f"  GET {label:<32} p50 {statistics.median(ts):6.1f} ms  p95 {p95(ts):6.1f} ms  "
          f"({size / 1024:.0f} KiB) — p95 {100 / p95(ts):.1f}× under 100 ms")  # fmt: skip


# -- 4. home-sized: SQLite beside PostgreSQL -----------------------------------------------------------------------
async def bench_home(targets: dict[str, Any], repeats: int) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from plugin.events import EventHub
    from plugin.web.app import create_app
    from plugin.web.context import DashboardContext

    msgs = []
    for i, name in enumerate(("alex", "sam")):
        msgs += list(
            generate_history(
                weeks=52,
                runner=RunnerModel(name=name, device_id=f"home-{name}"),
                seed=i,
                window_s=10.0,
                step_records_last_runs=2,
                stream_id=f"home{name}stream",
            )
        )
    print(f"home-sized: 2 runners × 52 weeks, {len(msgs):,} messages (10 s windows)")
    results: dict[str, dict[str, float]] = {}
    for backend, target in targets.items():
        r: dict[str, float] = {}
        with Store(target) as store:
            t0 = time.perf_counter()
            for k in range(0, len(msgs), 1000):
                store.store_batch([(m, time.time()) for m in msgs[k : k + 1000]])
            r["store_batch (summaries/s)"] = len(msgs) / (time.perf_counter() - t0)
            run_id = store.list_runs(runner="alex", limit=1)[0]["run_id"]
            ctx = DashboardContext(store=store, hub=EventHub(), health=lambda: {}, prewarm_runs=False)
            async with TestClient(TestServer(create_app(ctx))) as client:
                for label, path in (("trends week p50 (ms)", "/api/trends?period=week&runner=alex"),
                                    ("trends run p50 (ms)", "/api/trends?period=run&runner=alex"),
                                    ("run detail p50 (ms)", f"/api/runs/{run_id}?steps=columns"),
                                    ("runs list p50 (ms)", "/api/runs?limit=100")):  # fmt: skip
                    ts = []
                    for _ in range(repeats):
                        s = time.perf_counter()
                        resp = await client.get(path)
                        await resp.read()
                        ts.append((time.perf_counter() - s) * 1000)
                    r[label] = statistics.median(ts)
        results[backend] = r
    print(f"  {'':<28} {'SQLite':>10} {'PostgreSQL':>11} {'PG/SQLite':>10}")
    for key in results["sqlite"]:
        a, b = results["sqlite"][key], results["postgresql"][key]
        print(f"  {key:<28} {a:>10,.1f} {b:>11,.1f} {b / a:>9.2f}×")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runners", type=int, default=500)
    ap.add_argument("--weeks", type=int, default=52)
    ap.add_argument("--window-s", type=float, default=300.0, help="window length of the seeded history")
    ap.add_argument("--n", type=int, default=20_000, help="summaries for the ingest runs")
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--skip-seed", action="store_true", help="ingest and home comparison only")
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        "PostgreSQL with default durability (fsync, synchronous_commit on); SQLite WAL, synchronous=NORMAL"
    )
    cluster = PostgresCluster(durable=True)
    try:
        cluster.start()
        with tempfile.TemporaryDirectory(prefix="footfall-club-bench-") as d:
            work = Path(d)
            url = cluster.create_db("club")
            Store(url).close()
            if not args.skip_seed:
                seed(url, args.runners, args.weeks, args.window_s)
            one = bench_ingest(url, work, args.n, 1, "one")
            two = bench_ingest(url, work, args.n, 2, "two")
            print(f"ingest: 2 workers / 1 worker = {two / one:.2f}×")
            if not args.skip_seed:
                print("a coach's team (through the web app, coach token, role filters on):")
                asyncio.run(bench_team_trends(url, args.repeats))
            home_pg = cluster.create_db("home")
            asyncio.run(bench_home({"sqlite": work / "home.db", "postgresql": home_pg}, args.repeats))
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
