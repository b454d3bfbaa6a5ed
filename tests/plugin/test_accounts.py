"""Club accounts against a real aiohttp server and a real store (SQLite and PostgreSQL): a runner's token reads
only that runner, a coach exactly their team, settings are for admins, logins work on every worker, the CLI
manages users and teams. (Home mode — no users — is the rest of the web suite, unchanged.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from plugin.cli import main as cli
from plugin.events import EventHub
from plugin.history import RunnerModel, seed_history
from plugin.store import AccountError, Store
from plugin.web import DashboardContext, create_app
from tests.plugin.conftest import Databases
from tests.support.dashboard import health, make_alert

RUNNERS = {"alex": "dev-alex", "sam": "dev-sam", "kim": "dev-kim"}
PASSWORD = "correct horse battery"


@pytest.fixture
def club(dbs: Databases) -> Iterator[tuple[Store, dict[str, str]]]:
    """Three runners (alex and sam in team red, kim in team blue), an alert each, and one user per role."""
    store = dbs.store()
    for i, (name, device) in enumerate(RUNNERS.items()):
        seed_history(store, weeks=2, seed=50 + i, runner=RunnerModel(name=name, device_id=device),
                     step_records_last_runs=0)  # fmt: skip
        run_id = store.list_runs(runner=name, limit=1)[0]["run_id"]
        store.insert_alert(make_alert(i, runner=name, run_id=run_id))
    store.add_team("red")
    store.set_team_members("red", ["alex", "sam"])
    store.add_team("blue")
    store.set_team_members("blue", ["kim"])
    store.add_user("ada", "admin", password=PASSWORD)
    store.add_user("cory", "coach", password=PASSWORD)
    store.set_team_coach("red", "cory")
    store.add_user("alex1", "runner", runner="alex", password=PASSWORD)
    store.add_user("kim1", "runner", runner="kim")
    tokens = {u: store.create_token(u) for u in ("ada", "cory", "alex1", "kim1")}
    yield store, tokens
    store.close()


async def _client(store: Store, hub: EventHub | None = None, **kw: Any) -> TestClient:
    ctx = DashboardContext(store=store, hub=hub or EventHub(), health=health, sse_heartbeat_s=0.2, **kw)
    client = TestClient(TestServer(create_app(ctx), host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def client(club: tuple[Store, dict[str, str]]) -> AsyncIterator[TestClient]:
    c = await _client(club[0])
    yield c
    await c.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def get(client: TestClient, path: str, token: str) -> tuple[int, Any]:
    resp = await client.get(path, headers=bearer(token))
    return resp.status, await resp.json()


async def test_a_runner_reads_only_their_own_runs_trends_and_alerts(
    client: TestClient, club: tuple[Store, dict[str, str]]
) -> None:
    store, tokens = club
    t = tokens["alex1"]
    status, body = await get(client, "/api/runs?limit=1000", t)
    assert status == 200 and {r["runner"] for r in body["runs"]} == {"alex"}
    sams_run = store.list_runs(runner="sam", limit=1)[0]["run_id"]
    assert (await get(client, f"/api/runs/{sams_run}", t))[0] == 404  # another runner's run: "not found"
    assert (await get(client, f"/api/runs/{sams_run}?steps=none", t))[0] == 404
    own = store.list_runs(runner="alex", limit=1)[0]["run_id"]
    assert (await get(client, f"/api/runs/{own}", t))[0] == 200
    assert (await get(client, "/api/trends?runner=sam", t))[0] == 404
    assert (await get(client, "/api/trends?team=red", t))[0] == 404
    status, trend = await get(client, "/api/trends?period=run", t)
    assert status == 200 and {p["runner"] for p in trend["points"]} == {"alex"}
    status, alerts = await get(client, "/api/alerts", t)
    assert {a["runner"] for a in alerts["alerts"]} == {"alex"}
    sams_alert = store.list_alerts(runner="sam")[0]["alert_id"]
    resp = await client.post(f"/api/alerts/{sams_alert}/ack", headers=bearer(t))
    assert resp.status == 404 and store.get_alert(sams_alert)["acked"] is False
    status, meta = await get(client, "/api/meta", t)
    assert [r["name"] for r in meta["runners"]] == ["alex"] and [d["device_id"] for d in meta["devices"]] == [
        "dev-alex"
    ]
    status, overview = await get(client, "/api/overview", t)
    assert overview["latest_run"]["runner"] == "alex" and {a["runner"] for a in overview["alerts"]} == {"alex"}
    export = await client.get("/api/export?format=json", headers=bearer(t))
    assert {r["runner"] for r in await export.json()} == {"alex"}
    assert (await get(client, "/api/me", t))[1] == {"username": "alex1", "role": "runner", "runners": ["alex"],
                                                     "teams": []}  # fmt: skip


async def test_a_coach_sees_exactly_their_team(client: TestClient, club: tuple[Store, dict[str, str]]) -> None:
    store, tokens = club
    t = tokens["cory"]
    status, body = await get(client, "/api/runs?limit=1000", t)
    assert {r["runner"] for r in body["runs"]} == {"alex", "sam"}
    assert len(body["runs"]) == store.count_runs(runners=["alex", "sam"])
    assert (await get(client, "/api/trends?runner=kim", t))[0] == 404
    assert (await get(client, "/api/trends?team=blue", t))[0] == 404  # not their team
    status, team = await get(client, "/api/trends?team=red&period=run", t)
    assert status == 200 and team["team"] == "red" and {p["runner"] for p in team["points"]} == {"alex", "sam"}
    status, sam = await get(client, "/api/trends?runner=sam", t)
    assert status == 200 and sam["runner"] == "sam"
    status, alerts = await get(client, "/api/alerts", t)
    assert {a["runner"] for a in alerts["alerts"]} == {"alex", "sam"}
    kims_run = store.list_runs(runner="kim", limit=1)[0]["run_id"]
    assert (await get(client, f"/api/runs/{kims_run}", t))[0] == 404
    status, overview = await get(client, "/api/overview", t)
    assert set(overview["risk"]["by_runner"]) == {"alex", "sam"}
    me = (await get(client, "/api/me", t))[1]
    assert me["role"] == "coach" and me["runners"] == ["alex", "sam"] and me["teams"][0]["name"] == "red"
    # the admin sees everything, and the team trend of any team
    status, everything = await get(client, "/api/runs?limit=1000", tokens["ada"])
    assert {r["runner"] for r in everything["runs"]} == set(RUNNERS)
    assert (await get(client, "/api/trends?team=blue", tokens["ada"]))[0] == 200


async def test_settings_are_for_admins_and_health_details_too(
    client: TestClient, club: tuple[Store, dict[str, str]]
) -> None:
    _, tokens = club
    for user in ("cory", "alex1"):
        assert (await get(client, "/api/settings", tokens[user]))[0] == 403
        resp = await client.post("/api/settings", headers=bearer(tokens[user]), json={"acwr_threshold": 1.9})
        assert resp.status == 403
        status, h = await get(client, "/api/health", tokens[user])
        assert status == 200 and "ingest" not in h and "broker" in h and "url" not in h["broker"]
    assert (await get(client, "/api/settings", tokens["ada"]))[0] == 200
    assert "ingest" in (await get(client, "/api/health", tokens["ada"]))[1]
    assert (await client.get("/api/runs")).status == 401  # no credentials at all
    assert (await client.get("/api/runs", headers=bearer("fft_not-a-real-token"))).status == 401


async def test_live_stream_carries_only_the_runners_a_user_may_see(club: tuple[Store, dict[str, str]]) -> None:
    store, tokens = club
    hub = EventHub()
    client = await _client(store, hub)
    try:
        resp = await client.get("/api/live", headers=bearer(tokens["alex1"]))
        assert (await resp.content.readuntil(b"\n\n")).startswith(b"retry: 3000")
        hub.publish("summary", {"runner": "sam", "run_id": "sam-run", "device_id": "dev-sam"})
        hub.publish("live", {"device_id": "dev-sam", "cadence_spm": 180.0})
        hub.publish("alert", make_alert(7, runner="sam").model_dump(mode="json"))
        hub.publish("live", {"device_id": "dev-alex", "cadence_spm": 171.0})
        hub.publish("summary", {"runner": "alex", "run_id": "alex-run", "device_id": "dev-alex"})
        got: list[tuple[str, dict[str, Any]]] = []
        while len(got) < 2:
            block = (await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)).decode()
            if block.startswith(":"):
                continue
            fields = dict(line.split(": ", 1) for line in block.strip().splitlines())
            got.append((fields["event"], json.loads(fields["data"])))
        assert got == [("live", {"device_id": "dev-alex", "cadence_spm": 171.0}),
                       ("summary", {"runner": "alex", "run_id": "alex-run", "device_id": "dev-alex"})]  # fmt: skip
        resp.close()
    finally:
        await client.close()


async def test_login_with_a_password_works_on_every_worker_and_logout_ends_it(
    club: tuple[Store, dict[str, str]], dbs: Databases
) -> None:
    store, _ = club
    a = await _client(store)
    other = Store(dbs.target())  # a second worker: its own app and store on the same database
    b = await _client(other)
    try:
        page = await (await a.get("/login")).text()
        assert 'name="username"' in page and 'name="password"' in page
        origin = {"Origin": f"http://{a.host}:{a.port}"}
        bad = await a.post("/login", data={"username": "cory", "password": "wrong password!"}, headers=origin,
                           allow_redirects=False)  # fmt: skip
        assert bad.status == 401
        ok = await a.post("/login", data={"username": "cory", "password": PASSWORD, "next": "/runs"},
                          headers=origin, allow_redirects=False)  # fmt: skip
        assert ok.status == 303 and ok.headers["Location"] == "/runs"
        session = ok.cookies["footfall_user"].value
        assert "HttpOnly" in ok.headers["Set-Cookie"] and "SameSite=Strict" in ok.headers["Set-Cookie"]
        resp = await b.get("/api/me", cookies={"footfall_user": session})
        assert resp.status == 200 and (await resp.json())["username"] == "cory"
        # a cookie login must come from this origin to change anything
        forged = await b.post("/api/alerts/alert-test-0000/ack", cookies={"footfall_user": session},
                              headers={"Origin": "http://evil.example"})  # fmt: skip
        assert forged.status == 403
        out = await a.post("/logout", cookies={"footfall_user": session}, headers=origin, allow_redirects=False)
        assert out.status == 303
        assert (await b.get("/api/me", cookies={"footfall_user": session})).status == 401
    finally:
        await a.close()
        await b.close()
        other.close()


def test_secrets_are_stored_as_hashes_and_bad_input_is_refused(club: tuple[Store, dict[str, str]]) -> None:
    store, tokens = club
    row = store._one("SELECT password_hash FROM users WHERE username = 'cory'")
    assert row[0].startswith("$argon2id$") and PASSWORD not in row[0]
    stored = {r["token_hash"] for r in store._rows("SELECT token_hash FROM api_tokens")}
    assert not stored & set(tokens.values()) and len(stored) == 4
    assert store.verify_password("cory", PASSWORD).role == "coach"  # type: ignore[union-attr]
    assert store.verify_password("cory", "nope nope nope") is None
    assert store.verify_password("nobody", PASSWORD) is None
    assert store.verify_password("kim1", "") is None  # a token-only account has no password to guess
    with pytest.raises(AccountError, match="at least 10"):
        store.add_user("eve", "coach", password="short")
    with pytest.raises(AccountError, match="exists already"):
        store.add_user("cory", "coach")
    with pytest.raises(AccountError, match="runner name"):
        store.add_user("bob", "runner")
    with pytest.raises(AccountError, match="not a coach"):
        store.set_team_coach("blue", "alex1")
    store.delete_user("alex1")
    assert store.principal_for_token(tokens["alex1"]) is None


def test_cli_manages_users_teams_and_tokens(dbs: Databases, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(dbs.target("cli"))
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    assert cli(["users", "add", "coach1", "--role", "coach", "--password-file", str(pw), "--db", db]) == 0
    assert cli(["users", "add", "r1", "--role", "runner", "--runner", "alex", "--db", db]) == 0
    assert cli(["teams", "add", "red", "alex", "sam", "--db", db]) == 0
    assert cli(["teams", "add-coach", "red", "coach1", "--db", db]) == 0
    assert cli(["users", "token", "r1", "--label", "phone", "--db", db]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("fft_")
    assert cli(["users", "list", "--db", db]) == 0
    listing = capsys.readouterr().out
    assert "coach1" in listing and "red" in listing and "runner alex" in listing and PASSWORD not in listing
    with pytest.raises(SystemExit):
        cli(["users", "add", "x", "--role", "wizard", "--db", db])
    capsys.readouterr()
    assert cli(["users", "add", "coach1", "--role", "coach", "--db", db]) == 2  # exists: one clear line
    assert "exists already" in capsys.readouterr().err
    with Store(dbs.target("cli")) as s:
        assert s.principal_for_token(token).runners == frozenset({"alex"})  # type: ignore[union-attr]
        assert s.principal("coach1").runners == frozenset({"alex", "sam"})  # type: ignore[union-attr]
        ids = [t["id"] for t in s.tokens("r1")]
    assert cli(["users", "revoke", ids[0], "--db", db]) == 0
    with Store(dbs.target("cli")) as s:
        assert s.principal_for_token(token) is None


async def test_behind_a_trusted_proxy_a_cookie_login_may_change_things(club: tuple[Store, dict[str, str]]) -> None:
    """A TLS-terminating proxy talks plain HTTP: its X-Forwarded-* headers make the browser's https origin match,
    but only when it is a trusted proxy — anyone else sending them changes nothing."""
    store, _ = club
    session = store.create_session("cory")
    alert = store.list_alerts(runner="alex")[0]["alert_id"]
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "club.example",
                 "X-Forwarded-For": "203.0.113.7", "Origin": "https://club.example"}  # fmt: skip
    untrusted = await _client(store)
    trusted = await _client(store, trusted_proxies=("127.0.0.1",))
    try:
        resp = await untrusted.post(f"/api/alerts/{alert}/ack", cookies={"footfall_user": session}, headers=forwarded)
        assert resp.status == 403 and store.get_alert(alert)["acked"] is False
        resp = await trusted.post(f"/api/alerts/{alert}/ack", cookies={"footfall_user": session}, headers=forwarded)
        assert resp.status == 200 and store.get_alert(alert)["acked_by"] == "cory"
    finally:
        await untrusted.close()
        await trusted.close()
