"""Dashboard API latency over a simulated year of history (target: < 100 ms per request).

Seeds a real SQLite store with ``plugin.history`` — 52 weeks × 6 runs (≥ 300 runs, 60-s windows) for one
runner, plus one week at the agent's real 10-s windows whose newest run carries every step record
(~10 k steps, the heaviest run-detail payload) — serves the real aiohttp app on a loopback port and
times real HTTP requests (aiohttp client, sequential, after one warm-up request). For reference it
also times ``plugin.trends.trends()`` called directly, so the HTTP + JSON overhead shows as a ratio.

    python benchmarks/bench_web.py [--weeks 52] [--repeat 30] [--db PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from aiohttp import ClientSession, web

from plugin.events import EventHub
from plugin.history import RunnerModel, seed_history
from plugin.store import Store
from plugin.trends import trends
from plugin.web import DashboardContext, create_app
from plugin.web.api import RUN_CACHE

TARGET_MS = 100.0


def seed(path: Path, weeks: int) -> Store:
    store = Store(path)
    if store.count_runs() == 0:
        t0 = time.perf_counter()
        seed_history(store, weeks=weeks, runner=RunnerModel(runs_per_week=6), step_records_last_runs=1, seed=1)
        seed_history(
            store, weeks=1, window_s=10.0, step_records_last_runs=1, seed=2,
            runner=RunnerModel(name="sam", device_id="sim-2", runs_per_week=3, long_run_minutes=60.0),
        )  # fmt: skip
        print(f"seeded {store.count_runs()} runs in {time.perf_counter() - t0:.1f} s → {path}")
    return store


def stats_ms(samples: list[float]) -> tuple[float, float, float]:
    s = sorted(samples)
    p95 = s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]
    return statistics.median(s) * 1e3, p95 * 1e3, s[-1] * 1e3


async def bench(store: Store, repeat: int) -> None:
    ctx = DashboardContext(store=store, hub=EventHub(), health=lambda: {"ingest": {}})
    app = create_app(ctx)
    cache = app[RUN_CACHE]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"

    heavy = store.list_runs(runner="sam", limit=1)[0]["run_id"]
    light = store.list_runs(runner="alex", limit=1, offset=100)[0]["run_id"]
    n_steps = len(store.get_run(heavy)["steps"])  # type: ignore[index]
    year_ago = int(time.time()) - 365 * 86400
    cases = [
        ("/api/trends?period=week (all history)", "/api/trends?period=week"),
        ("/api/trends?period=week&since=1 year", f"/api/trends?period=week&since={year_ago}"),
        ("/api/trends?period=day", "/api/trends?period=day"),
        ("/api/trends?period=run", "/api/trends?period=run"),
        (f"/api/runs/{{id}} ({n_steps} steps, cached)", f"/api/runs/{heavy}?steps=columns"),
        ("/api/runs/{id} (no step records, cached)", f"/api/runs/{light}?steps=columns"),
        ("/api/runs?limit=100", "/api/runs?limit=100"),
        ("/api/overview", "/api/overview"),
    ]
    n_windows = store.counts()["windows"]
    print(f"\n{store.count_runs()} runs, {n_windows} windows; {repeat} sequential requests each")
    print(f"{'request':44s} {'median':>9s} {'p95':>9s} {'max':>9s} {'bytes':>10s}  target < {TARGET_MS:.0f} ms")
    worst = 0.0
    async with ClientSession() as http:
        for label, path in cases:
            async with http.get(base + path) as r:  # warm-up (SQLite page cache, first-import costs)
                size = len(await r.read())
                assert r.status == 200, (path, r.status)
            samples = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                async with http.get(base + path) as r:
                    await r.read()
                samples.append(time.perf_counter() - t0)
            med, p95, mx = stats_ms(samples)
            worst = max(worst, p95)
            ok = "ok" if p95 < TARGET_MS else "SLOW"
            print(f"{label:44s} {med:8.1f}ms {p95:8.1f}ms {mx:8.1f}ms {size:10d}  {ok}")
        # Cold run detail: the response cache emptied before every request (first view of a run).
        print(f"\n{'cold (uncached) run detail':44s} {'median':>9s} {'p95':>9s} {'max':>9s}")
        for label, path in [
            (f"/api/runs/{{id}}?steps=columns ({n_steps} steps)", f"/api/runs/{heavy}?steps=columns"),
            (f"/api/runs/{{id}}?steps=rows ({n_steps} steps)", f"/api/runs/{heavy}"),
            ("/api/runs/{id}?steps=none (same run)", f"/api/runs/{heavy}?steps=none"),
            ("/api/runs/{id} (60 windows, no step records)", f"/api/runs/{light}?steps=columns"),
        ]:
            samples = []
            for _ in range(max(5, repeat // 3)):
                cache._items.clear()
                t0 = time.perf_counter()
                async with http.get(base + path) as r:
                    await r.read()
                samples.append(time.perf_counter() - t0)
            med, p95, mx = stats_ms(samples)
            print(f"{label:44s} {med:8.1f}ms {p95:8.1f}ms {mx:8.1f}ms  {'ok' if p95 < TARGET_MS else 'SLOW'}")
        t0 = time.perf_counter()
        for _ in range(5):
            store.get_run(heavy)
        print(f"  of which Store.get_run({n_steps} steps) alone: {(time.perf_counter() - t0) / 5 * 1e3:.1f} ms")
    await runner.cleanup()

    direct = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        trends(store, period="week")
        direct.append(time.perf_counter() - t0)
    d_med, d_p95, _ = stats_ms(direct)
    print(
        f"\ntrends(period='week') called directly: median {d_med:.1f} ms, p95 {d_p95:.1f} ms "
        "(the rest of the HTTP figure is JSON encoding + HTTP)"
    )
    print(
        f"worst p95 over the cached/regular requests: {worst:.1f} ms → {'MEETS' if worst < TARGET_MS else 'MISSES'} "
        f"the {TARGET_MS:.0f} ms target"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weeks", type=int, default=52)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--db", type=Path, default=None, help="reuse/keep a store here (default: a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = seed(args.db or Path(tmp) / "bench.db", args.weeks)
        try:
            asyncio.run(bench(store, args.repeat))
        finally:
            store.close()


if __name__ == "__main__":
    main()
