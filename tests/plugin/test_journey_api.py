"""The journey API against a real aiohttp server and a real store (SQLite and PostgreSQL), with club accounts: a
runner starts and changes their own program and tags their own runs, a coach their team's, nobody anyone else's;
bodies are validated (a 400 names the field) and responses follow plugin/program/models.py."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from plugin.program.models import JourneyResponse
from plugin.store import Store
from tests.plugin.test_accounts import bearer, client, club, get
from tests.plugin.test_api_schema import validator

__all__ = ["client", "club"]


async def send(client: TestClient, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    resp = await client.request(method, path, headers=bearer(token), json=body)
    return resp.status, await resp.json()


async def test_a_runner_runs_their_own_journey_only(client: TestClient, club: tuple[Store, dict[str, str]]) -> None:
    store, tokens = club
    t = tokens["alex1"]
    status, doc = await get(client, "/api/journey", t)
    assert status == 200 and doc["runners"] == ["alex"] and doc["runner"] == "alex" and doc["program"] is None
    assert "no program yet" in doc["message"]
    assert (await get(client, "/api/journey?runner=sam", t))[0] == 404
    assert (await send(client, "POST", "/api/journey/sam/program", t, {}))[0] == 404
    assert store.get_program("sam") is None

    start = {"goals": "sub-50 10 km", "injury_note": "shin splints 2025", "cadence_goal_pct": 6}
    status, doc = await send(client, "POST", "/api/journey/alex/program", t, start)
    assert status == 201, doc
    JourneyResponse.model_validate(doc)
    validator("POST", "/api/journey/{runner}/program").validate(doc)  # the committed docs/api-schema.json
    validator("GET", "/api/journey").validate((await get(client, "/api/journey", t))[1])
    p = doc["program"]
    assert p["stage"] == 1 and p["goals"] == "sub-50 10 km" and p["cadence_goal_pct"] == 6
    assert p["targets"]["cadence_spm"] == round(p["assessment"]["cadence_spm"] * 1.025, 1)
    assert [s["status"] for s in p["stages"]] == ["current", "locked", "upcoming"]
    assert all(s["sources"] and s["what"] and s["why"] and s["not_yet"] for s in p["stages"])

    status, doc = await send(client, "PATCH", "/api/journey/alex/program", t, {"skip_transition": True})
    assert status == 200 and [s["status"] for s in doc["program"]["stages"]] == ["current", "skipped", "upcoming"]

    # retro-tagging: own runs only; the pair is created on first use
    own = store.list_runs(runner="alex", limit=2)
    status, body = await send(client, "POST", f"/api/runs/{own[0]['run_id']}/shoe", t, {"shoe": "Road"})
    assert status == 200 and body["shoe"] == "Road" and body["shoe_id"]
    sams = store.list_runs(runner="sam", limit=1)[0]["run_id"]
    assert (await send(client, "POST", f"/api/runs/{sams}/shoe", t, {"shoe": "Road"}))[0] == 404
    status, doc = await get(client, "/api/journey", t)
    assert [(s["name"], s["runs"]) for s in doc["shoes"]] == [("Road", 1)] and doc["current_shoe"] == "Road"
    assert (await send(client, "POST", f"/api/runs/{own[0]['run_id']}/shoe", t, {"shoe": None}))[1]["shoe"] is None
    assert store.run_shoe(own[0]["run_id"]) is None
    road = store.shoe("alex", "Road")
    assert road is not None
    sams_shoe = store.shoe("sam", "Trail", create=True)
    assert sams_shoe is not None
    assert (await send(client, "POST", f"/api/shoes/{sams_shoe['shoe_id']}/retire", t))[0] == 404
    assert (await send(client, "POST", f"/api/shoes/{road['shoe_id']}/retire", t))[1]["already_retired"] is False

    status, ended = await send(client, "DELETE", "/api/journey/alex/program", t)
    assert status == 200 and ended == {"ok": True, "runner": "alex"}
    validator("DELETE", "/api/journey/{runner}/program").validate(ended)
    assert store.get_program("alex") is None


async def test_a_coach_sees_and_starts_their_teams_programs(
    client: TestClient,
    club: tuple[Store, dict[str, str]],
) -> None:
    _store, tokens = club
    t = tokens["cory"]
    status, doc = await get(client, "/api/journey", t)
    assert status == 200 and doc["runners"] == ["alex", "sam"]
    assert (await get(client, "/api/journey?runner=kim", t))[0] == 404
    assert (await send(client, "POST", "/api/journey/sam/program", t, {}))[0] == 201
    status, doc = await get(client, "/api/journey", t)
    assert doc["runner"] == "sam" and doc["program"]["runner"] == "sam"  # the first with a program
    # the runner kim (another team) sees nothing of it
    assert (await get(client, "/api/journey?runner=sam", tokens["kim1"]))[0] == 404


async def test_bad_bodies_are_400_naming_the_field_and_change_nothing(
    client: TestClient,
    club: tuple[Store, dict[str, str]],
) -> None:
    store, tokens = club
    t = tokens["ada"]
    for body, field in (({"cadence_goal_pct": 20}, "cadence_goal_pct"), ({"stage": 3}, "stage"),
                        ({"goals": 5}, "goals"), ({"skip_transition": "maybe"}, "skip_transition")):  # fmt: skip
        status, err = await send(client, "POST", "/api/journey/alex/program", t, body)
        assert status == 400 and field in err["error"], (body, err)
    assert store.get_program("alex") is None
    status, err = await send(client, "POST", "/api/journey/nobody/program", t, {})
    assert status == 409 and "needs 3" in err["error"]
    assert (await send(client, "PATCH", "/api/journey/alex/program", t, {"goals": "x"}))[0] == 404
    run_id = store.list_runs(runner="alex", limit=1)[0]["run_id"]
    status, err = await send(client, "POST", f"/api/runs/{run_id}/shoe", t, {"shoe": " padded"})
    assert status == 400 and "shoe name" in err["error"] and store.run_shoe(run_id) is None
