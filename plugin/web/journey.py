"""The journey API (docs/dashboard.md "Journey"): a runner's program and shoes, starting and changing a program,
tagging runs with a pair. Responses are :mod:`plugin.program.models` documents, validated before they are sent.

Who may do what follows the run routes: a runner sees and changes their own journey, a coach their team's, an
admin everyone's; another runner's journey is "not found".
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from plugin.program import AssessmentError, ProgramService
from plugin.program.journey import journey as build_journey
from plugin.program.models import (
    ChangeProgram,
    JourneyResponse,
    ProgramEnded,
    ShoeRetired,
    StartProgram,
    TagResponse,
    TagRun,
)
from plugin.program.shoes import compare_shoes, current_shoe
from plugin.store import StoreError
from plugin.web.accounts import principal
from plugin.web.api import ApiError, _call, _check_unknown, _ctx, _json_body, _path_id, json_response, parse_runner


def _service(request: web.Request) -> ProgramService:
    ctx = _ctx(request)
    if ctx.program is None:  # a web app without the dashboard service (tests, tools): store only, no broker
        ctx.program = ProgramService(ctx.store)
    return ctx.program


def _runner(request: web.Request, raw: str | None) -> str:
    runner = parse_runner(raw)
    if runner is None:
        raise ApiError(400, "runner: required")
    if not principal(request).can_see(runner):
        raise ApiError(404, f"runner {runner!r} not found")
    return runner


def _parse(model: type[BaseModel], body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(400, f"request body: {where}: {first['msg']}") from None


def _document(store: Any, runner: str | None, runners: list[str], message: str | None = None) -> dict[str, Any]:
    doc = None if runner is None else build_journey(store, runner, now=time.time())
    shoes: list[dict[str, Any]] = []
    shoe = None
    if doc is not None:
        shoes, shoe = doc["shoes"], doc["current_shoe"]
    elif runner is not None:
        shoes = compare_shoes(store, runner)
        shoe = (current_shoe(store, runner) or {}).get("name")
    return JourneyResponse.model_validate({
        "runner": runner, "runners": runners, "program": doc, "shoes": shoes, "current_shoe": shoe,
        "message": message,
    }).model_dump(mode="json")  # fmt: skip


async def get_journey(request: web.Request) -> web.Response:
    """``?runner=`` (default: the only runner, or the first with a program, the user may see)."""
    _check_unknown(request, {"runner"})
    ctx = _ctx(request)
    who = principal(request)

    def gather() -> dict[str, Any]:
        names = [r["name"] for r in ctx.store.runners(runners=who.runners)]
        programs = [p["runner"] for p in ctx.store.list_programs(runners=who.runners)]
        names = sorted(set(names) | set(programs))
        raw = request.query.get("runner")
        runner = _runner(request, raw) if raw else (programs[0] if programs else (names[0] if names else None))
        message = None
        if runner is not None and ctx.store.get_program(runner) is None:
            message = f"{runner} has no program yet: start one below (it assesses the last 4 weeks of runs)."
        return _document(ctx.store, runner, names, message)

    return json_response(await _call(gather))


async def start_program(request: web.Request) -> web.Response:
    runner = _runner(request, request.match_info["runner"])
    req: StartProgram = _parse(StartProgram, await _json_body(request))
    svc = _service(request)
    try:
        await _call(svc.start, runner, **req.model_dump())
    except AssessmentError as err:
        raise ApiError(409, str(err)) from None
    except ValueError as err:
        raise ApiError(400, str(err)) from None
    _ctx(request).hub.publish("program", {"runner": runner, "started": True})
    return json_response(await _call(_document, _ctx(request).store, runner, [runner]), status=201)


async def change_program(request: web.Request) -> web.Response:
    runner = _runner(request, request.match_info["runner"])
    req: ChangeProgram = _parse(ChangeProgram, await _json_body(request))
    fields = {k: v for k, v in req.model_dump().items() if v is not None}
    if await _call(_service(request).change, runner, **fields) is None:
        raise ApiError(404, f"{runner!r} has no program")
    return json_response(await _call(_document, _ctx(request).store, runner, [runner]))


async def end_program(request: web.Request) -> web.Response:
    runner = _runner(request, request.match_info["runner"])
    if not await _call(_ctx(request).store.delete_program, runner):
        raise ApiError(404, f"{runner!r} has no program")
    return json_response(ProgramEnded(ok=True, runner=runner).model_dump(mode="json"))


async def tag_run(request: web.Request) -> web.Response:
    """Retro-tag a run with a pair (``{"shoe": "name"}``, created if new) or remove its tag (``null``)."""
    ctx = _ctx(request)
    run_id = _path_id(request, "run_id")
    req: TagRun = _parse(TagRun, await _json_body(request))
    run = await _call(ctx.store.run_row, run_id)
    if run is None or not principal(request).can_see(run["runner"]):
        raise ApiError(404, f"run {run_id!r} not found")
    if not run["runner"]:
        raise ApiError(409, f"run {run_id!r} has no runner name: shoes belong to a runner")

    def tag() -> dict[str, Any]:
        shoe_id = None
        if req.shoe is not None:
            shoe = ctx.store.shoe(run["runner"], req.shoe, create=True, at=run["started_at"])
            assert shoe is not None
            shoe_id = shoe["shoe_id"]
        ctx.store.tag_run(run_id, shoe_id, source="dashboard")
        return {"run_id": run_id, "shoe": req.shoe, "shoe_id": shoe_id}

    try:
        out = await _call(tag)
    except (ValueError, StoreError) as err:
        raise ApiError(400, str(err)) from None
    return json_response(TagResponse.model_validate(out).model_dump(mode="json"))


async def retire_shoe(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    shoe_id = _path_id(request, "shoe_id")
    shoe = await _call(ctx.store.get_shoe, shoe_id)
    if shoe is None or not principal(request).can_see(shoe["runner"]):
        raise ApiError(404, f"shoe {shoe_id!r} not found")
    retired = await _call(ctx.store.retire_shoe, shoe_id)
    return json_response(ShoeRetired(ok=True, shoe_id=shoe_id, already_retired=not retired).model_dump(mode="json"))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/journey", get_journey)
    r.add_post("/api/journey/{runner}/program", start_program)
    r.add_patch("/api/journey/{runner}/program", change_program)
    r.add_delete("/api/journey/{runner}/program", end_program)
    r.add_post("/api/runs/{run_id}/shoe", tag_run)
    r.add_post("/api/shoes/{shoe_id}/retire", retire_shoe)
