"""JSON API of the dashboard (documented in docs/dashboard.md).

Handlers validate every query parameter (a bad one is a 400 naming the parameter and the value)
and call the synchronous, thread-safe ``Store`` through ``asyncio.to_thread`` so one slow database
query never stalls the event loop (and with it the live SSE streams).

Every route is filtered by the request's principal (:mod:`plugin.web.accounts`): the runners a user may see are
passed to each query (``runners=``), a run or alert of another runner is "not found" (its existence is not
revealed), and settings are for admins. In home mode the principal is an admin and nothing is filtered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from edge_agent.common.fitfile import MIME_TYPE as FIT_MIME_TYPE
from edge_agent.common.fitfile import FitExportError
from edge_agent.common.redact import MASK, mask_url
from plugin.fit_export import export_run_fit
from plugin.risk import risk_summary
from plugin.store import Principal
from plugin.store.accounts import HOME_ADMIN
from plugin.summary import summary as dashboard_summary
from plugin.trends import trends as compute_trends
from plugin.web import schemas
from plugin.web.accounts import principal, require_admin
from plugin.web.auth import THROTTLE_KEY
from plugin.web.context import DashboardContext, SettingSpec
from plugin.web.schemas import dump

log = logging.getLogger(__name__)

CTX_KEY: web.AppKey[DashboardContext] = web.AppKey("footfall_ctx", DashboardContext)
LIVE_TASKS: web.AppKey[weakref.WeakSet[asyncio.Task[object]]] = web.AppKey("footfall_live_tasks", weakref.WeakSet)
_ID_RE = re.compile(r"^[A-Za-z0-9:_-]{1,64}$")
_DEVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
PERIODS = ("run", "day", "week")
EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json_default(obj: object) -> object:
    if isinstance(obj, (bytes, bytearray)):
        return obj.decode("utf-8", "replace")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")  # type: ignore[no-any-return, attr-defined]
    return str(obj)


def _clean(obj: Any) -> Any:
    """Replace NaN/inf (not valid JSON) by None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def encode_json(data: Any) -> str:
    """JSON text; the NaN/inf scrub only runs when needed (the store and the contract already reject them,
    and walking a 10,000-step run twice costs ~25 ms)."""
    try:
        return json.dumps(data, default=_json_default, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(_clean(data), default=_json_default, ensure_ascii=False, allow_nan=False)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=encode_json(data), status=status, content_type="application/json")


STEP_FORMATS = ("rows", "columns", "none")


def steps_as_columns(steps: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """``[{"side": "left", "t": …}, …]`` → ``{"side": [...], "t": [...]}``: 40 % fewer bytes for a long run,
    and the shape plotly wants anyway."""
    keys: dict[str, None] = {}
    for st in steps[:50]:
        keys.update(dict.fromkeys(st))
    return {k: [st.get(k) for st in steps] for k in keys}


class RunCache:
    """Encoded run-detail responses, revalidated on every request by a primary-key lookup.

    A long run with per-step records costs ~80 ms in ``Store.get_run`` (it parses every window's JSON)
    plus ~40 ms of JSON encoding, and a finished run never changes — except when a resent window arrives
    late or retention deletes windows. The version key (run ``updated_at``, window count) covers both.
    """

    def __init__(self, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], tuple[tuple[Any, ...], bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @staticmethod
    def version(store: Any, run_id: str) -> tuple[Any, ...] | None:
        return store.run_version(run_id)  # type: ignore[no-any-return]

    def get(self, key: tuple[str, str], version: tuple[Any, ...]) -> bytes | None:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] != version:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[1]

    def put(self, key: tuple[str, str], version: tuple[Any, ...], body: bytes) -> None:
        if len(body) > self.max_bytes // 4:
            return
        with self._lock:
            self._items[key] = (version, body)
            self._items.move_to_end(key)
            while sum(len(b) for _, b in self._items.values()) > self.max_bytes:
                self._items.popitem(last=False)


# ---------------------------------------------------------------- query parsing


def parse_time(name: str, raw: str | None) -> float | None:
    """Unix seconds, or an ISO 8601 date / date-time (naive means UTC) → Unix seconds."""
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(
                400, f"query parameter {name!r}: expected ISO 8601 date/time or Unix seconds, got {raw[:40]!r}"
            ) from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    if not math.isfinite(value) or not 0 <= value < 1e11:
        raise ApiError(400, f"query parameter {name!r}: {raw[:40]!r} is not a plausible Unix time")
    return value


def parse_int(name: str, raw: str | None, default: int, lo: int, hi: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name!r}: expected an integer, got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise ApiError(400, f"query parameter {name!r}: {value} outside {lo}…{hi}")
    return value


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise ApiError(400, f"query parameter {name!r}: expected true/false, got {raw[:40]!r}")


def parse_choice(name: str, raw: str | None, choices: tuple[str, ...] | list[str], default: str) -> str:
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise ApiError(400, f"query parameter {name!r}: {raw[:40]!r} is not one of {', '.join(choices)}")
    return raw


def parse_device(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if not _DEVICE_RE.fullmatch(raw):
        raise ApiError(400, f"query parameter 'device_id': {raw[:40]!r} is not a valid device id")
    return raw


def parse_runner(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if len(raw) > 64:
        raise ApiError(400, "query parameter 'runner': longer than 64 characters")
    return raw


def _check_unknown(request: web.Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        raise ApiError(
            400,
            f"unknown query parameter(s): {', '.join(unknown)[:200]} (allowed: {', '.join(sorted(allowed)) or 'none'})",
        )


def _path_id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not _ID_RE.fullmatch(value):
        raise ApiError(400, f"{name} {value[:64]!r} is not a valid id ([A-Za-z0-9:_-], ≤ 64 chars)")
    return value


def _ctx(request: web.Request) -> DashboardContext:
    return request.app[CTX_KEY]


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


# ---------------------------------------------------------------- handlers


async def health(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    data = dict(await _call(ctx.health))  # the service's health() reads the store: not on the event loop
    if not principal(request).is_admin:  # coaches and runners: up or not, no broker or ingest details
        store = data.get("store") or {}
        return json_response(
            dump(
                schemas.Health,
                {
                    "version": data.get("version"),
                    "store": {"ok": store.get("ok")},
                    "broker": {"connected": (data.get("broker") or {}).get("connected")},
                },
            )
        )
    cache = request.app[RUN_CACHE]
    throttle = request.app[THROTTLE_KEY]
    data["web"] = {
        "live_clients": len(request.app[LIVE_TASKS]),
        "auth": "token" if ctx.token else "loopback-open",
        "run_cache": {"hits": cache.hits, "misses": cache.misses},
        "auth_throttle": {"clients": throttle.clients, "failures": throttle.failures, "refused": throttle.refused},
    }
    return json_response(dump(schemas.Health, data))


_LEVEL_ORDER = ("unknown", "low", "elevated", "high")


def _risk(ctx: DashboardContext, who: Principal = HOME_ADMIN) -> dict[str, Any]:
    """``{"level", "reasons", ...}`` from the injected callable, else the risk engine's summary. A runner gets
    their own; a coach the worst of their team's runners, with each runner's level."""
    if who.runners is not None:
        by_runner = {r: risk_summary(ctx.store, runner=r) for r in sorted(who.runners)}
        if not by_runner:
            return {"level": "unknown", "reasons": ["no runners to show"], "by_runner": {}}
        worst = max(by_runner.items(), key=lambda kv: _LEVEL_ORDER.index(kv[1]["level"]))
        if len(by_runner) == 1:
            return worst[1]
        return {"level": worst[1]["level"], "reasons": [f"{worst[0]}: {r}" for r in worst[1]["reasons"][:3]],
                "by_runner": {k: v["level"] for k, v in by_runner.items()}}  # fmt: skip
    if ctx.risk is not None:
        r = ctx.risk()
        return r if isinstance(r, dict) else {"level": str(r), "reasons": []}
    return risk_summary(ctx.store)


async def overview(request: web.Request) -> web.Response:
    """Everything the overview page shows at load time, in one round trip."""
    _check_unknown(request, {"device_id"})
    ctx = _ctx(request)
    device = parse_device(request.query.get("device_id"))
    who = principal(request)
    scope = who.runners

    def gather() -> dict[str, Any]:
        try:
            risk = _risk(ctx, who)
        except Exception:  # the page still works without the risk engine; say why in the log
            log.exception("risk level unavailable")
            risk = {"level": "unknown", "reasons": ["risk engine error (see the dashboard log)"]}
        newest = ctx.store.list_runs(device_id=device, limit=1, runners=scope)
        return {
            # The run row only: the overview shows the run's measures, not its windows and steps.
            "latest_run": newest[0] if newest else None,
            "risk_level": risk.get("level", "unknown"),
            "risk": risk,
            "alerts": ctx.store.list_alerts(limit=5, include_acked=False, runners=scope),
            "devices": ctx.store.devices(runners=scope),
            "runners": ctx.store.runners(runners=scope),
        }

    return json_response(dump(schemas.Overview, await _call(gather)))


async def _paged(request: web.Request, key: str, fetch: Callable[..., Any], default_limit: int, max_limit: int,
                 model: type[schemas.ApiModel]) -> web.Response:  # fmt: skip
    """A filtered, paged listing (``device_id, runner, since, until, limit, offset``): ``{key: [...], "limit",
    "offset", "next_offset"}`` (``next_offset`` null on the last page)."""
    _check_unknown(request, {"device_id", "runner", "since", "until", "limit", "offset"})
    q = request.query
    limit = parse_int("limit", q.get("limit"), default_limit, 1, max_limit)
    offset = parse_int("offset", q.get("offset"), 0, 0, 10_000_000)
    since, until = parse_time("since", q.get("since")), parse_time("until", q.get("until"))
    if since is not None and until is not None and until < since:
        raise ApiError(400, "query parameters: 'until' is before 'since'")
    rows = await _call(fetch, device_id=parse_device(q.get("device_id")), runner=parse_runner(q.get("runner")),
                       since=since, until=until, limit=limit, offset=offset,
                       runners=principal(request).runners)  # fmt: skip
    next_offset = offset + limit if len(rows) == limit else None
    return json_response(dump(model, {key: rows, "limit": limit, "offset": offset, "next_offset": next_offset}))


async def list_runs(request: web.Request) -> web.Response:
    return await _paged(request, "runs", _ctx(request).store.list_runs, 100, 1000, schemas.RunsPage)


RUN_CACHE: web.AppKey[RunCache] = web.AppKey("footfall_run_cache", RunCache)


def run_detail_body(store: Any, cache: RunCache, run_id: str, fmt: str) -> bytes | None:
    """Encoded ``GET /api/runs/{id}`` body (from the cache when the run is unchanged); None if unknown."""
    version = RunCache.version(store, run_id)
    if version is None:
        return None
    cached = cache.get((run_id, fmt), version)
    if cached is not None:
        return cached
    run = store.get_run(run_id, include_steps=fmt != "none")
    if run is None:
        return None
    # The store reuses "steps" for the records (or the count without them): the API always gives the
    # count as "step_count" and the records (if asked for) as "steps".
    if fmt == "none":
        run["step_count"] = run.pop("steps", None)
    else:
        summary = run.get("summary") or {}
        run["step_count"] = summary.get("steps", sum(w.get("steps") or 0 for w in run.get("windows", [])))
        if fmt == "columns":
            run["steps"] = steps_as_columns(run.get("steps") or [])
    run["steps_format"] = fmt
    body = encode_json(dump(schemas.RunDetail, run)).encode()
    cache.put((run_id, fmt), version, body)
    return body


async def get_run(request: web.Request) -> web.Response:
    """One run with its windows and per-step records (``steps=rows|columns|none``, default rows)."""
    _check_unknown(request, {"steps"})
    run_id = _path_id(request, "run_id")
    fmt = parse_choice("steps", request.query.get("steps"), STEP_FORMATS, "rows")
    await _visible_run(request, run_id)
    body = await _call(run_detail_body, _ctx(request).store, request.app[RUN_CACHE], run_id, fmt)
    if body is None:
        raise ApiError(404, f"run {run_id!r} not found")
    return web.Response(body=body, content_type="application/json", charset="utf-8")


async def _visible_run(request: web.Request, run_id: str) -> None:
    """404 unless the run exists and the principal may see its runner (another runner's run is "not found")."""
    who = principal(request)
    if who.runners is None:
        return
    row = await _call(_ctx(request).store.run_row, run_id)
    if row is None or not who.can_see(row["runner"]):
        raise ApiError(404, f"run {run_id!r} not found")


async def get_run_fit(request: web.Request) -> web.Response:
    """The run as a FIT activity file (``application/vnd.ant.fit``, an attachment named after the run)."""
    _check_unknown(request, set())
    run_id = _path_id(request, "run_id")
    await _visible_run(request, run_id)
    try:
        exported = await _call(export_run_fit, _ctx(request).store, run_id)
    except FitExportError as err:
        raise ApiError(422, str(err)) from None
    if exported is None:
        raise ApiError(404, f"run {run_id!r} not found")
    name, fit = exported
    return web.Response(
        body=fit.data,
        content_type=FIT_MIME_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def _prewarm_runs(app: web.Application) -> None:
    """When a run ends, encode its detail page in the background so the runner's first look is instant
    (a 60-min run at 10-s windows costs ~130 ms cold, ~5 ms from the cache)."""
    ctx = app[CTX_KEY]
    async for event in ctx.hub.subscribe():
        run_id = event.data.get("run_id") if event.type == "run" else None
        if isinstance(run_id, str) and _ID_RE.fullmatch(run_id):
            try:
                await _call(run_detail_body, ctx.store, app[RUN_CACHE], run_id, "columns")
            except Exception:  # a cache warm-up must never take the dashboard down
                log.exception("pre-encoding run %s failed", run_id)


async def _prewarm_ctx(app: web.Application) -> Any:
    task = asyncio.create_task(_prewarm_runs(app), name="footfall-web-prewarm")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def trends(request: web.Request) -> web.Response:
    """One runner's trend (``runner=``), a team's pooled trend (``team=``), or everything the user may see."""
    _check_unknown(request, {"period", "since", "until", "runner", "device_id", "team"})
    q = request.query
    since, until = parse_time("since", q.get("since")), parse_time("until", q.get("until"))
    if since is not None and until is not None and until <= since:
        raise ApiError(400, "query parameters: 'until' must be after 'since'")
    who = principal(request)
    runner = parse_runner(q.get("runner"))
    if runner is not None and not who.can_see(runner):
        raise ApiError(404, f"runner {runner!r} not found")
    scope = who.runners
    team = q.get("team")
    if team:
        teams = await _call(_ctx(request).store.teams, None if who.is_admin else who.username)
        found = next((t for t in teams if t["name"] == team), None)
        if found is None:
            raise ApiError(404, f"team {team[:64]!r} not found")
        scope = frozenset(found["runners"]) if scope is None else frozenset(found["runners"]) & scope
    try:
        data = await _call(
            compute_trends,
            _ctx(request).store,
            period=parse_choice("period", q.get("period"), PERIODS, "week"),
            since=since,
            until=until,
            runner=runner,
            device_id=parse_device(q.get("device_id")),
            runners=scope,
        )
    except ValueError as err:  # the trend engine names the offending argument
        raise ApiError(400, str(err)) from None
    if team:
        data["team"] = team
    return json_response(dump(schemas.Trends, data))


async def list_alerts(request: web.Request) -> web.Response:
    _check_unknown(request, {"since", "limit", "include_acked"})
    q = request.query
    alerts = await _call(
        _ctx(request).store.list_alerts,
        since=parse_time("since", q.get("since")),
        limit=parse_int("limit", q.get("limit"), 100, 1, 1000),
        include_acked=parse_bool("include_acked", q.get("include_acked"), True),
        runners=principal(request).runners,
    )
    return json_response(dump(schemas.AlertsPage, {"alerts": alerts}))


async def _json_body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    if not request.can_read_body:
        if optional:
            return {}
        raise ApiError(400, "request body: expected a JSON object")
    if request.content_type != "application/json":
        raise ApiError(415, f"request body: Content-Type must be application/json, not {request.content_type!r}")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ApiError(400, f"request body: invalid JSON ({str(err)[:120]})") from None
    except RecursionError:
        raise ApiError(400, "request body: JSON nested too deeply") from None
    except ValueError as err:  # e.g. an integer of more than 4,300 digits
        raise ApiError(400, f"request body: unusable JSON value ({str(err)[:80]})") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"request body: expected a JSON object, got {type(body).__name__}")
    return body


async def ack_alert(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    alert_id = _path_id(request, "alert_id")
    body = await _json_body(request, optional=True)
    who = principal(request)
    by = body.get("by", who.username or "dashboard")
    if not isinstance(by, str) or not 1 <= len(by) <= 64:
        raise ApiError(400, "request body: 'by' must be a string of 1–64 characters")
    alert = await _call(ctx.store.get_alert, alert_id)
    if alert is None or not who.can_see(alert["runner"]):
        raise ApiError(404, f"alert {alert_id!r} not found")
    if not await _call(ctx.store.ack_alert, alert_id, by):
        existing = await _call(ctx.store.get_alert, alert_id)
        if existing is None:
            raise ApiError(404, f"alert {alert_id!r} not found")
        # Idempotent: the first acknowledgement is kept and reported.
        return json_response(
            dump(
                schemas.AckResult,
                {
                    "ok": True,
                    "alert_id": alert_id,
                    "already_acked": True,
                    "by": existing.get("acked_by"),
                    "acked_at": existing.get("acked_at"),
                },
            )
        )
    ctx.hub.publish("alert_ack", {"alert_id": alert_id, "by": by, "runner": alert["runner"]})
    return json_response(dump(schemas.AckResult, {"ok": True, "alert_id": alert_id, "already_acked": False, "by": by}))


# ---------------------------------------------------------------- settings


def _masked(spec: SettingSpec, value: Any) -> Any:
    if not spec.secret or value is None:
        return value
    if isinstance(value, list):
        return [mask_url(str(v)) for v in value]
    return MASK if value else value


def _validate(spec: SettingSpec, value: Any, current: Any) -> Any:
    where = f"setting {spec.key!r}"
    if value is None:
        return None
    if spec.type in ("float", "int"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ApiError(400, f"{where}: expected a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise ApiError(400, f"{where}: must be finite")
        if spec.type == "int" and value != int(value):
            raise ApiError(400, f"{where}: expected an integer, got {value}")
        if (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
            raise ApiError(400, f"{where}: {value} outside {spec.min}…{spec.max} {spec.unit}".rstrip())
        return int(value) if spec.type == "int" else float(value)
    if spec.type == "bool":
        if not isinstance(value, bool):
            raise ApiError(400, f"{where}: expected true/false")
        return value
    if spec.type == "str":
        if not isinstance(value, str) or len(value) > spec.max_length:
            raise ApiError(400, f"{where}: expected a string of at most {spec.max_length} characters")
        if spec.secret and value == MASK:
            return current
        return value
    # url_list
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(400, f"{where}: expected a list of strings")
    if len(value) > spec.max_items:
        raise ApiError(400, f"{where}: at most {spec.max_items} entries")
    known = {mask_url(u): u for u in (current or []) if isinstance(u, str)}
    out: list[str] = []
    for i, item in enumerate(v.strip() for v in value):
        if not item:
            continue
        if item in known:  # the browser sent the mask back: keep the stored secret
            out.append(known[item])
            continue
        if MASK in item:
            raise ApiError(400, f"setting '{spec.key}[{i}]': masked value does not match a stored URL; re-enter it")
        if len(item) > spec.max_length or not re.fullmatch(r"[a-z][a-z0-9+.-]{1,15}://\S+", item):
            raise ApiError(400, f"setting '{spec.key}[{i}]': expected an Apprise URL like 'ntfy://topic'")
        out.append(item)
    return out


def _read_settings(ctx: DashboardContext) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in ctx.settings_schema:
        value = ctx.store.get_setting(spec.key)
        out[spec.key] = spec.default if value is None else value
    return out


async def get_settings(request: web.Request) -> web.Response:
    require_admin(request)
    ctx = _ctx(request)
    values = await _call(_read_settings, ctx)
    return json_response(
        dump(
            schemas.Settings,
            {
                "settings": {s.key: _masked(s, values[s.key]) for s in ctx.settings_schema},
                "schema": [s.as_json() for s in ctx.settings_schema],
                "notify_test": ctx.notify_test is not None,
            },
        )
    )


async def post_settings(request: web.Request) -> web.Response:
    """Validate the whole body first, then write: a bad field changes nothing."""
    require_admin(request)
    ctx = _ctx(request)
    body = await _json_body(request)
    specs = {s.key: s for s in ctx.settings_schema}
    unknown = sorted(set(body) - set(specs))
    if unknown:
        raise ApiError(400, f"unknown setting(s): {', '.join(unknown)[:200]}")
    current = await _call(_read_settings, ctx)
    validated = {k: _validate(specs[k], v, current.get(k)) for k, v in body.items()}

    def write() -> None:
        for k, v in validated.items():
            ctx.store.set_setting(k, v)

    await _call(write)
    log.info("settings changed: %s", ", ".join(sorted(validated)))  # keys only, never values
    return await get_settings(request)


async def notify_test(request: web.Request) -> web.Response:
    require_admin(request)
    ctx = _ctx(request)
    if ctx.notify_test is None:
        raise ApiError(501, "no notifier configured in this dashboard")
    delivered = await ctx.notify_test()
    return json_response(
        dump(schemas.NotifyTestResult, {"delivered": bool(delivered)}), status=200 if delivered else 502
    )


async def export(request: web.Request) -> web.Response:
    _check_unknown(request, {"format", "runner", "device_id", "since", "until"})
    q = request.query
    fmt = parse_choice("format", q.get("format"), tuple(EXPORT_FORMATS), "json")
    text = await _call(
        _ctx(request).store.export_runs,
        fmt,
        runner=parse_runner(q.get("runner")),
        device_id=parse_device(q.get("device_id")),
        since=parse_time("since", q.get("since")),
        until=parse_time("until", q.get("until")),
        runners=principal(request).runners,
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return web.Response(
        text=text if isinstance(text, str) else json.dumps(text, default=_json_default),
        content_type=EXPORT_FORMATS[fmt].split(";")[0],
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="footfall-runs-{stamp}.{fmt}"'},
    )


async def summary(request: web.Request) -> web.Response:
    """This dashboard's identity, runners with their current figures, devices, recent alerts (plugin/summary.py)."""
    _check_unknown(request, set())
    ctx = _ctx(request)
    config = ctx.risk_config() if ctx.risk_config is not None else None
    scope = principal(request).runners
    return json_response(
        dump(schemas.DashboardSummary, await _call(dashboard_summary, ctx.store, risk_config=config, runners=scope))
    )


async def list_windows(request: web.Request) -> web.Response:
    """Window measures (no step records) starting in [since, until), oldest first — e.g. for hourly statistics."""
    return await _paged(request, "windows", _ctx(request).store.list_windows, 1000, 5000, schemas.WindowsPage)


async def meta(request: web.Request) -> web.Response:
    """Devices and runners, for filter menus."""
    ctx = _ctx(request)
    scope = principal(request).runners
    devices, runners = await asyncio.gather(_call(ctx.store.devices, scope), _call(ctx.store.runners, scope))
    return json_response(dump(schemas.Meta, {"devices": devices, "runners": runners}))


async def me(request: web.Request) -> web.Response:
    """Who is signed in: user name (None in home mode), role, the runners they see (None = all) and teams."""
    who = principal(request)
    teams: list[dict[str, Any]] = []
    if who.role != "runner" and who.username is not None:
        teams = await _call(_ctx(request).store.teams, None if who.is_admin else who.username)
    return json_response(dump(schemas.Me, {
        "username": who.username, "role": who.role,
        "runners": None if who.runners is None else sorted(who.runners),
        "teams": [{"name": t["name"], "runners": t["runners"]} for t in teams],
    }))  # fmt: skip


@web.middleware
async def api_errors(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    """API failures are JSON ``{"error": ...}`` with a proper status; internal errors are logged, not leaked."""
    if not request.path.startswith("/api/"):
        return await handler(request)  # type: ignore[no-any-return]
    try:
        return await handler(request)  # type: ignore[no-any-return]
    except ApiError as err:
        return json_response({"error": err.message}, status=err.status)
    except web.HTTPRequestEntityTooLarge:
        return json_response({"error": "request body too large"}, status=413)
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        message = f"method {request.method} not allowed on {request.path} (allowed: {allowed})"
        resp = json_response({"error": message}, 405)
        resp.headers["Allow"] = allowed
        return resp
    except web.HTTPNotFound:
        return json_response({"error": f"no API route {request.method} {request.path}"}, status=404)
    except web.HTTPException as exc:
        if exc.status >= 400:
            return json_response({"error": exc.reason}, status=exc.status)
        raise
    except Exception:
        log.exception("API error on %s %s", request.method, request.path)
        return json_response({"error": "internal error (see the dashboard log)"}, status=500)


def add_routes(app: web.Application) -> None:
    app[RUN_CACHE] = RunCache()
    if app[CTX_KEY].prewarm_runs:
        app.cleanup_ctx.append(_prewarm_ctx)
    r = app.router
    r.add_get("/api/health", health)
    r.add_get("/api/overview", overview)
    r.add_get("/api/meta", meta)
    r.add_get("/api/me", me)
    r.add_get("/api/summary", summary)
    r.add_get("/api/windows", list_windows)
    r.add_get("/api/runs", list_runs)
    r.add_get("/api/runs/{run_id}", get_run)
    r.add_get("/api/runs/{run_id}/fit", get_run_fit)
    r.add_get("/api/trends", trends)
    r.add_get("/api/alerts", list_alerts)
    r.add_post("/api/alerts/{alert_id}/ack", ack_alert)
    r.add_get("/api/settings", get_settings)
    r.add_post("/api/settings", post_settings)
    r.add_post("/api/settings/notify-test", notify_test)
    r.add_get("/api/export", export)
