"""What the Home Assistant integration reads from the dashboard: ``GET /api/summary``, ``GET /api/windows`` and
the mDNS announcement — against the real dashboard service (``DashboardService``: real broker, real SQLite, real
HTTP server on a free loopback port, real multicast DNS)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from zeroconf import ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from plugin.cli import main as dashboard_cli
from plugin.config import ConfigError, load_config
from plugin.mdns import SERVICE_TYPE, announce_addresses, should_announce
from plugin.risk import risk_summary
from plugin.service import DashboardService
from plugin.store import Store
from tests.support.brokers import free_port

TOKEN = "summary-api-token-0123456789"
DAY = 86400.0


def seeded(path: Path) -> Path:
    assert dashboard_cli(["seed-history", "--db", str(path), "--weeks", "6", "--demo-alerts"]) == 0
    return path


async def start(db: Path, broker: Any, *, listen: str | None = None, **extra: Any) -> DashboardService:
    cfg = load_config(None, mqtt={"url": broker.url}, db_path=db, listen=listen or f"127.0.0.1:{free_port()}",
                      token=TOKEN, **extra)  # fmt: skip
    service = DashboardService(cfg)
    await service.start()
    return service


async def get(service: DashboardService, path: str, token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.get(f"{service.url.rstrip('/')}{path}", headers=headers) as r:
        return r.status, await r.json()


@pytest.fixture
async def service(tmp_path: Path, broker: Any) -> AsyncIterator[DashboardService]:
    svc = await start(seeded(tmp_path / "d.db"), broker)
    yield svc
    await svc.stop()


def naive_period(db: Path, runner: str, since: float, until: float) -> dict[str, Any]:
    """Reference figures straight from the runs table, computed in Python (not by the trend engine's SQL)."""
    with Store(db) as store:
        runs = [r for r in store.list_runs(runner=runner, limit=1000) if since <= r["started_at"] < until]

    def wmean(value: str, weight: str) -> float | None:
        pairs = [(r[value], r[weight]) for r in runs if r[value] is not None and r[weight]]
        total = sum(w for _, w in pairs)
        return sum(v * w for v, w in pairs) / total if total else None

    zones = {z: sum(r[z] for r in runs) for z in ("rearfoot", "midfoot", "forefoot")}
    n = sum(zones.values())
    return {
        "runs": len(runs),
        "steps": sum(r["steps"] for r in runs),
        "valr_mean": wmean("valr_mean", "valr_n"),
        "contact_ms": wmean("contact_ms", "contact_n"),
        "cadence_spm": wmean("cadence_spm", "duration_s"),
        "zone_share_pct": {z: 100.0 * c / n if n else None for z, c in zones.items()},
        "load_min": sum(r["duration_s"] for r in runs) / 60.0,
    }


async def test_summary_figures_match_a_naive_reference_and_the_risk_engine(service: DashboardService) -> None:
    status, doc = await get(service, "/api/summary")
    assert status == 200
    [alex] = doc["runners"]
    assert alex["name"] == "alex" and alex["device_ids"] == ["sim-1"] and alex["runs"] > 20
    now = doc["generated_at"]
    for key, days in (("last_7_days", 7), ("last_28_days", 28)):
        want = naive_period(service.config.db_path, "alex", now - days * DAY, now)
        got = alex[key]
        assert want["runs"] >= 1 and got["runs"] == want["runs"] and got["steps"] == want["steps"]
        for measure in ("valr_mean", "contact_ms", "cadence_spm", "load_min"):
            assert got[measure] == pytest.approx(want[measure], rel=1e-9), (key, measure)
        for zone, share in want["zone_share_pct"].items():
            assert got["zone_share_pct"][zone] == pytest.approx(share, rel=1e-9)
    assert service.store is not None
    risk = risk_summary(service.store, runner="alex")
    assert alex["risk"]["level"] == risk["level"] == "high"  # the seeded spike, fatigue and transition alerts
    assert alex["open_alerts"] == doc["open_alerts"] == 3 and len(doc["recent_alerts"]) == 3
    assert {a["rule"] for a in doc["recent_alerts"]} == {"loading_spike", "fatigue_drift", "strike_transition"}
    assert "evidence" not in doc["recent_alerts"][0]
    assert alex["training_load"]["status"] == "ok" and alex["training_load"]["acwr"] > 0
    [device] = doc["devices"]
    assert device["device_id"] == "sim-1" and device["runs"] == alex["runs"] and device["last_runner"] == "alex"
    assert alex["last_run"]["ended_at"] <= now and alex["last_run"]["complete"] is True


async def test_summary_needs_the_token_and_rejects_parameters(service: DashboardService) -> None:
    assert (await get(service, "/api/summary", token=None))[0] == 401
    assert (await get(service, "/api/summary", token="wrong-token-0123456789"))[0] == 401
    status, body = await get(service, "/api/summary?runner=alex")
    assert status == 400 and "runner" in body["error"]


async def test_instance_id_is_stable_per_database_and_distinct_between_databases(tmp_path: Path, broker: Any) -> None:
    db = seeded(tmp_path / "a.db")
    ids = []
    for path in (db, db, tmp_path / "empty.db"):
        svc = await start(path, broker)
        try:
            status, doc = await get(svc, "/api/summary")
            assert status == 200
            ids.append(doc["instance"]["id"])
        finally:
            await svc.stop()
    assert ids[0] == ids[1] != ids[2] and len(ids[0]) == 32
    assert doc["runners"] == [] and doc["devices"] == [] and doc["open_alerts"] == 0


async def test_windows_listing_pages_through_every_window_once(service: DashboardService) -> None:
    assert service.store is not None
    total = service.store.counts()["windows"]
    seen: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        status, page = await get(service, f"/api/windows?runner=alex&limit=500&offset={offset}")
        assert status == 200
        seen.extend(page["windows"])
        offset = page["next_offset"]
    assert len(seen) == total == len({w["msg_id"] for w in seen})
    assert [w["t_start"] for w in seen] == sorted(w["t_start"] for w in seen)
    assert "json" not in seen[0] and {"valr_mean", "cadence_spm", "contact_ms", "run_id"} <= set(seen[0])
    # A time range returns exactly the windows starting in it.
    since, until = seen[100]["t_start"], seen[200]["t_start"]
    status, page = await get(service, f"/api/windows?since={since}&until={until}&limit=5000")
    assert [w["msg_id"] for w in page["windows"]] == [w["msg_id"] for w in seen[100:200]]


@pytest.mark.parametrize(
    ("query", "name"),
    [("limit=0", "limit"), ("limit=5001", "limit"), ("since=yesterday", "since"), ("colour=red", "colour"),
     ("since=1700000000&until=1600000000", "until"), ("device_id=../x", "device_id")],
)  # fmt: skip
async def test_windows_bad_parameters_name_the_parameter(service: DashboardService, query: str, name: str) -> None:
    status, body = await get(service, f"/api/windows?{query}")
    assert status == 400 and name in body["error"]


# ---------------------------------------------------------------------------------------------------- mDNS


def test_mdns_mode_rules() -> None:
    assert should_announce("auto", "192.168.1.5") and should_announce("auto", "0.0.0.0")
    assert not should_announce("auto", "127.0.0.1") and not should_announce("auto", "::1")
    assert not should_announce("off", "192.168.1.5") and should_announce("on", "192.168.1.5")
    with pytest.raises(ConfigError, match="mdns"):
        load_config(None, mdns="on")  # the default listen address is loopback
    with pytest.raises(ConfigError, match="mdns"):
        load_config(None, mdns="sometimes", listen="0.0.0.0:8765", token=TOKEN)


def _lan_address() -> str:
    addresses = [a for a in announce_addresses("0.0.0.0")[0] if ":" not in a]
    if not addresses:
        pytest.skip("no non-loopback IPv4 address on this machine to announce on")
    return addresses[0]


async def _browse(addr: str, seconds: float, want: int) -> tuple[list[AsyncServiceInfo], list[str]]:
    """Resolve every ``_footfall._tcp`` service seen on ``addr`` within ``seconds``, plus the names removed."""
    found: dict[str, AsyncServiceInfo] = {}
    removed: list[str] = []
    zc = AsyncZeroconf(interfaces=[addr])

    def on_change(zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            removed.append(name)
        elif name not in found:
            found[name] = AsyncServiceInfo(service_type, name)

    browser = AsyncServiceBrowser(zc.zeroconf, SERVICE_TYPE, handlers=[on_change])
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and len(found) < want:
            await asyncio.sleep(0.1)
        for info in found.values():
            await info.async_request(zc.zeroconf, 3000)
    finally:
        await browser.async_cancel()
        await zc.async_close()
    return list(found.values()), removed


async def test_dashboard_on_a_lan_address_announces_itself_and_says_goodbye(tmp_path: Path, broker: Any) -> None:
    addr = _lan_address()
    port = free_port()
    svc = await start(seeded(tmp_path / "d.db"), broker, listen=f"{addr}:{port}")
    try:
        assert svc.mdns is not None  # mdns: auto announces beyond loopback
        status, doc = await get(svc, "/api/summary")
        assert status == 200
        infos, _ = await _browse(addr, 10.0, want=1)
        mine = [i for i in infos if i.properties.get(b"id") == doc["instance"]["id"].encode()]
        assert len(mine) == 1, [i.name for i in infos]
        info = mine[0]
        assert info.port == port and info.parsed_addresses() == [addr]
        assert info.properties[b"auth"] == b"token" and info.properties[b"path"] == b"/"
        assert TOKEN.encode() not in b"".join(v or b"" for v in info.properties.values())
        # The announced address and port serve the dashboard.
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://{addr}:{port}/api/summary", headers={"Authorization": f"Bearer {TOKEN}"}) as r,
        ):
            assert r.status == 200 and (await r.json())["instance"]["id"] == doc["instance"]["id"]
        name = info.name
    finally:
        await svc.stop()
    assert svc.mdns is None
    # After stop() the goodbye packets are out: a fresh browser no longer resolves the service.
    infos, _ = await _browse(addr, 2.0, want=1)
    assert name not in [i.name for i in infos if i.port]


async def test_no_announcement_on_loopback_or_when_off(tmp_path: Path, broker: Any) -> None:
    addr = _lan_address()
    db = seeded(tmp_path / "d.db")
    for listen, mode in ((f"127.0.0.1:{free_port()}", "auto"), (f"{addr}:{free_port()}", "off")):
        svc = await start(db, broker, listen=listen, mdns=mode)
        try:
            assert svc.mdns is None
            infos, _ = await _browse(addr, 1.5, want=1)
            assert not [i for i in infos if i.port == svc.config.listen_port]
        finally:
            await svc.stop()
