"""HTML pages: small server-rendered shells; the content is drawn by the ES modules in ``static/js/`` (entry
``main.js``, one module per page in ``js/pages/``) from the JSON API.

Everything interpolated here goes through ``html.escape`` (run ids, titles, error text); the front end
only ever inserts user-supplied text with ``textContent``. No inline script anywhere, so the CSP can
forbid it (``script-src 'self'``).
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import plotly
from aiohttp import web

from plugin.store.accounts import SESSION_TTL_S
from plugin.web.accounts import USER_COOKIE
from plugin.web.api import _ID_RE, CTX_KEY
from plugin.web.auth import (
    COOKIE_NAME,
    THROTTLE_KEY,
    safe_next,
    same_origin,
    session_value,
    throttled,
    token_matches,
)

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: plotly.js ships inside the plotly Python package: served locally, never from a CDN.
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"

NAV = (
    ("/", "overview", "Overview"),
    ("/trends", "trends", "Trends"),
    ("/runs", "runs", "Runs"),
    ("/journey", "journey", "Journey"),
    ("/alerts", "alerts", "Alerts"),
    ("/settings", "settings", "Settings"),
)


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


def render(page: str, title: str, body: str, *, data: dict[str, str] | None = None, nav: bool = True) -> str:
    attrs = "".join(f' data-{e(k.replace("_", "-"))}="{e(v)}"' for k, v in (data or {}).items())
    links = "".join(
        f'<a href="{href}"{" aria-current=page" if key == page or (page == "run" and key == "runs") else ""}>'
        f"{label}</a>"
        for href, key, label in NAV
    )
    header = (
        f'<header class="topbar"><a class="brand" href="/"><span class="logo" aria-hidden="true"></span>footfall</a>'
        f'<nav aria-label="Main">{links}</nav>'
        '<span id="live-status" class="live-dot" data-state="connecting" title="Live updates">live</span></header>'
        if nav
        else '<header class="topbar"><span class="brand"><span class="logo" aria-hidden="true"></span>'
        "footfall</span></header>"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{e(title)} · footfall</title>"
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/static/app.css">'
        '<script type="module" src="/static/js/main.js"></script></head>'
        f'<body data-page="{e(page)}"{attrs}>{header}<main id="main">{body}</main>'
        '<div id="toasts" class="toasts" aria-live="polite"></div>'
        '<footer class="foot">footfall — your data stays at home. Measures are estimates from insoles; '
        "judge trends against your own baseline, not absolute cut-offs.</footer></body></html>"
    )


def _page(page: str, title: str, body: str, **data: str) -> web.Response:
    return web.Response(text=render(page, title, body, data=data), content_type="text/html", charset="utf-8")


def _card(id_: str, title: str, tip: str = "", extra_class: str = "") -> str:
    tip_html = f' <span class="tip" tabindex="0" data-tip="{e(tip)}">?</span>' if tip else ""
    return (
        f'<section class="card {extra_class}" id="{id_}"><h2>{e(title)}{tip_html}</h2>'
        f'<div class="card-body" aria-busy="true"><p class="muted">Loading…</p></div></section>'
    )


async def overview(request: web.Request) -> web.Response:
    body = (
        '<h1 class="page-title">Overview</h1>'
        '<div class="grid grid-top">'
        + _card("live-card", "Right now", "Updated about once a second from the insoles while you run.")
        + _card(
            "risk-card",
            "Injury-risk context",
            "Combines the active alerts: loading against your own baseline, strike transition speed, "
            "asymmetry and training load. Context, not a diagnosis.",
        )
        + "</div>"
        + _card("latest-run", "Latest run", "The most recent finished run recorded by your insoles.", "wide")
        + '<div class="grid">'
        + _card("recent-alerts", "Open alerts", "Unacknowledged findings of the risk engine, newest first.")
        + '<section class="card" id="week-glance"><h2>Last 8 weeks <span class="tip" tabindex="0" data-tip="'
        'Steps per week (bars) and mean vertical loading rate (line, BW/s).">?</span></h2>'
        '<div class="chart" id="chart-glance"></div></section>' + "</div>"
    )
    return _page("overview", "Overview", body)


async def trends_page(request: web.Request) -> web.Response:
    body = (
        '<div class="page-head"><h1 class="page-title">Trends</h1>'
        '<form id="trend-filters" class="filters" aria-label="Filters">'
        '<label>Period <select name="period"><option value="week">Weekly</option>'
        '<option value="day">Daily</option><option value="run">Per run</option></select></label>'
        '<label>Since <select name="range"><option value="84">12 weeks</option><option value="182">6 months</option>'
        '<option value="365" selected>1 year</option><option value="">All</option></select></label>'
        '<label>Runner <select name="runner"><option value="">All runners</option></select></label>'
        "</form></div>"
        + _card(
            "wow",
            "This week vs last week",
            "This week (since Monday, UTC — the weeks of the charts) up to your latest run against last week. "
            "Totals compare with last week by the same day and time. Small week-to-week changes are normal; "
            "look for trends that persist.",
            "wide",
        )
        + '<div class="charts">'
        + "".join(
            f'<section class="card chart-card" id="card-{cid}"><h2>{e(t)} '
            f'<span class="tip" tabindex="0" data-tip="{e(tip)}">?</span></h2>'
            f'<div class="chart" id="chart-{cid}" role="img" aria-label="{e(t)} chart"></div></section>'
            for cid, t, tip in TREND_CHARTS
        )
        + "</div>"
    )
    return _page("trends", "Trends", body)


TREND_CHARTS = (
    (
        "zones",
        "Strike-zone mix",
        "Share of steps landing on the rearfoot (strike index < 0.33), midfoot or forefoot (> 0.67); "
        "Cavanagh & Lafortune 1980. Change it gradually: abrupt switches to forefoot overload calf and "
        "Achilles (Ridge 2013).",
    ),
    (
        "si",
        "Strike index",
        "Centre of pressure at initial contact along the foot: 0 = heel, 1 = toe. Insole CoP error is "
        "about ±0.07 (Morin 2022).",
    ),
    (
        "valr",
        "Vertical loading rate (VALR)",
        "How fast force builds up after landing, in body weights per second: slope from 20 % to 80 % of the "
        "impact peak. Judge it against your own baseline band (28-day mean ± 1 SD); insoles under-read force plates.",
    ),
    ("cadence", "Cadence", "Steps per minute, both feet. +5–10 % cadence lowers loading rate (Heiderscheit 2011)."),
    ("contact", "Ground contact time", "Milliseconds each foot spends on the ground per step."),
    (
        "asym",
        "Left/right asymmetry",
        "Symmetry index (R − L) / mean × 100 (Herzog 1989): 0 % is perfectly even; positive means the right "
        "side is higher. 10 % is a convention, not an injury threshold.",
    ),
    (
        "load",
        "Training load",
        "Exponentially weighted acute (7-day) and chronic (28-day) load and their ratio ACWR (Williams 2017). "
        "ACWR ≥ 1.5 is a team-sport heuristic (Gabbett 2016), criticised (Impellizzeri 2020): context only.",
    ),
)


async def runs_page(request: web.Request) -> web.Response:
    body = (
        '<div class="page-head"><h1 class="page-title">Runs</h1><div class="filters"><label>Runner '
        '<select id="runs-runner"><option value="">All runners</option></select></label></div></div>'
        '<section class="card wide" id="runs-list"><div class="card-body" aria-busy="true">'
        '<p class="muted">Loading…</p></div><div class="pager"><button id="runs-more" class="btn" hidden>'
        "Load more</button></div></section>"
    )
    return _page("runs", "Runs", body)


async def run_page(request: web.Request) -> web.Response:
    run_id = request.match_info["run_id"]
    if not _ID_RE.fullmatch(run_id):
        return not_found_page(f"There is no run “{run_id}”: run ids are letters, digits, '-', '_', '.' and ':'.")
    body = (
        f'<div class="page-head"><h1 class="page-title"><span id="run-title">Run {e(run_id)}</span></h1>'
        f'<span><a class="btn" id="run-fit" href="/api/runs/{e(run_id)}/fit" download '
        'title="FIT activity file for Garmin Connect, Strava, intervals.icu or Golden Cheetah">Download FIT</a> '
        '<a class="btn ghost" href="/runs">All runs</a></span></div>'
        + _card("run-summary", "Summary", "Whole-run averages; L and R are the left and right foot.", "wide")
        + '<div class="grid">'
        + '<section class="card" id="card-scatter"><h2>Strike index vs loading rate <span class="tip" tabindex="0" '
        'data-tip="Each dot is one step. Rearfoot landings (left) usually load faster; lighter landings sit lower.">'
        '?</span></h2><div class="chart" id="chart-scatter"></div></section>'
        + '<section class="card" id="card-zonefoot"><h2>Strike zones per foot <span class="tip" tabindex="0" '
        'data-tip="Share of steps per zone for each foot.">?</span></h2><div class="chart" id="chart-zonefoot">'
        "</div></section>"
        + "</div>"
        + '<div class="grid">'
        + _card(
            "cop-map",
            "Where each foot lands",
            "Centre of pressure at initial contact on the insole outline (toes up, medial side inwards). "
            "Dashed lines are the rearfoot/midfoot/forefoot boundaries.",
        )
        + '<section class="card" id="card-windows"><h2>Through the run <span class="tip" tabindex="0" '
        'data-tip="10-second windows: cadence (spm), VALR (BW/s) and contact time (ms).">?</span></h2>'
        '<div class="chart tall" id="chart-windows"></div></section>' + "</div>"
    )
    return _page("run", f"Run {run_id}", body, run_id=run_id)


async def journey_page(request: web.Request) -> web.Response:
    body = (
        '<div class="page-head"><h1 class="page-title">Journey</h1><div class="filters"><label>Runner '
        '<select id="journey-runner"></select></label></div></div>'
        '<div id="journey-messages" role="status"></div>'
        + _card("journey-stage", "Where you are", "The program's stage, replayed from your runs since it started.",
                "wide")
        + '<div class="grid">'
        + _card("journey-targets", "This week's targets",
                "What the metronome and the cues on your Pi aim for this week (published to your agent).")
        + _card("journey-assessment", "Starting assessment", "Your last 4 weeks before the program started.")
        + "</div>"
        + '<div class="charts">'
        + "".join(
            f'<section class="card chart-card" id="card-{cid}"><h2>{e(t)} '
            f'<span class="tip" tabindex="0" data-tip="{e(tip)}">?</span></h2>'
            f'<div class="chart" id="chart-{cid}" role="img" aria-label="{e(t)} chart"></div></section>'
            for cid, t, tip in JOURNEY_CHARTS
        )
        + "</div>"
        + _card("journey-stages", "The stages", "What to do in each stage, why, what not to do yet, and the sources.",
                "wide")
        + _card("journey-shoes", "Shoes",
                "Each pair against your other runs at a similar cadence: loading rate, strike mix, cadence, contact "
                "time, and running time in the pair (the insoles measure no distance).", "wide")
        + _card("journey-program", "Your program", "Goals and injury history are yours to enter; they stay here.",
                "wide")
    )  # fmt: skip
    return _page("journey", "Journey", body)


JOURNEY_CHARTS = (
    ("journey-cadence", "Cadence", "Each run's cadence against your baseline and this week's target band."),
    ("journey-valr", "Loading rate", "Each run's mean VALR against your baseline and the ceiling (10 % under it)."),
    ("journey-strike", "Midfoot + forefoot share", "Share of steps not landing on the heel, per week."),
)


async def alerts_page(request: web.Request) -> web.Response:
    body = (
        '<div class="page-head"><h1 class="page-title">Alerts</h1>'
        '<label class="toggle"><input type="checkbox" id="show-acked" checked> show acknowledged</label></div>'
        '<section class="card wide" id="alerts-list"><div class="card-body" aria-busy="true">'
        '<p class="muted">Loading…</p></div></section>'
    )
    return _page("alerts", "Alerts", body)


async def settings_page(request: web.Request) -> web.Response:
    body = (
        '<h1 class="page-title">Settings</h1>'
        '<section class="card wide" id="settings-card"><form id="settings-form" class="settings" novalidate>'
        '<div class="card-body" aria-busy="true"><p class="muted">Loading…</p></div>'
        '<div class="form-actions"><button type="submit" class="btn primary">Save</button>'
        '<button type="button" id="notify-test" class="btn ghost" hidden>Send test notification</button>'
        '<span id="settings-status" role="status"></span></div></form></section>'
        + _card(
            "system-card",
            "System",
            "Ingest counters since the dashboard started, the MQTT broker connection and the notifiers.",
            "wide",
        )
        + '<section class="card wide"><h2>Export</h2><p>Download every run summary: '
        '<a class="btn ghost" href="/api/export?format=csv">CSV</a> '
        '<a class="btn ghost" href="/api/export?format=json">JSON</a></p></section>'
    )
    return _page("settings", "Settings", body)


def not_found_page(message: str = "There is no page at this address.") -> web.Response:
    """The footfall page for an unknown address (status 404), with the navigation to find the way back."""
    body = (
        '<section class="card not-found" id="not-found"><h1 class="page-title">Page not found</h1>'
        f'<p>{e(message)}</p><p><a class="btn" href="/">Overview</a> <a class="btn ghost" href="/runs">Runs</a></p>'
        "</section>"
    )
    return web.Response(
        status=404, text=render("not-found", "Not found", body), content_type="text/html", charset="utf-8"
    )


@web.middleware
async def page_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown page addresses get the footfall 404 page (the API answers JSON, static files stay plain)."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if request.method != "GET" or request.path.startswith(("/api/", "/static/")):
            raise
        return not_found_page()


# ---------------------------------------------------------------- login


def _login_form(next_: str, error: str = "", *, users: bool = False) -> str:
    err = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    if users:
        fields = (
            '<label>User name <input type="text" name="username" autocomplete="username" required autofocus></label>'
            '<label>Password <input type="password" name="password" autocomplete="current-password" required>'
            "</label>"
        )
        intro = "<p>Sign in with the user name and password your club's admin gave you.</p>"
    else:
        fields = (
            '<label>Access token <input type="password" name="token" autocomplete="current-password" required '
            "autofocus></label>"
        )
        intro = (
            "<p>This dashboard is reachable from your network, so it needs the access token from its configuration.</p>"
        )
    body = (
        f'<section class="card login"><h1>Sign in</h1>{intro}'
        f'{err}<form method="post" action="/login"><input type="hidden" name="next" value="{e(next_)}">'
        f'{fields}<button class="btn primary" type="submit">Sign in</button></form></section>'
    )
    return render("login", "Sign in", body, nav=False)


async def _accounts_on(request: web.Request) -> bool:
    return bool(await asyncio.to_thread(request.app[CTX_KEY].store.has_users))


async def login_get(request: web.Request) -> web.Response:
    users = await _accounts_on(request)
    if request.app[CTX_KEY].token is None and not users:
        raise web.HTTPFound("/")
    return web.Response(text=_login_form(safe_next(request.query.get("next")), users=users), content_type="text/html")


async def login_post(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    token = ctx.token
    users = await _accounts_on(request)
    if token is None and not users:
        raise web.HTTPFound("/")
    if not same_origin(request):
        return web.Response(status=403, text="cross-origin login refused")
    refused = throttled(request, request.app[THROTTLE_KEY])
    if refused is not None:
        return refused
    form = await request.post()
    next_ = safe_next(str(form.get("next", "/")))
    resp = web.HTTPSeeOther(next_)
    if "username" in form and users:
        name, password = str(form.get("username", ""))[:64], str(form.get("password", ""))[:1024]
        who = await asyncio.to_thread(ctx.store.verify_password, name, password)
        if who is None:
            request.app[THROTTLE_KEY].failed(request.remote)  # per client: see plugin/web/throttle.py
            log.warning("dashboard login failed for a user from %s", request.remote)  # never log the password
            return web.Response(status=401, text=_login_form(next_, "User name or password is not right.",
                                                            users=True), content_type="text/html")  # fmt: skip
        session = await asyncio.to_thread(ctx.store.create_session, name)
        resp.set_cookie(USER_COOKIE, session, httponly=True, samesite="Strict", path="/", secure=request.secure,
                        max_age=int(SESSION_TTL_S))  # fmt: skip
        raise resp
    given = str(form.get("token", ""))
    if token is None or not token_matches(given, token):
        request.app[THROTTLE_KEY].failed(request.remote)  # per client: see plugin/web/throttle.py
        log.warning("dashboard login failed from %s", request.remote)  # never log the attempted token
        return web.Response(
            status=401, text=_login_form(next_, "That token is not right.", users=users), content_type="text/html"
        )
    resp.set_cookie(
        COOKIE_NAME,
        session_value(token),
        httponly=True,
        samesite="Strict",
        path="/",
        secure=request.secure,
        max_age=30 * 24 * 3600,
    )
    raise resp


async def logout(request: web.Request) -> web.Response:
    resp = web.HTTPSeeOther("/login")
    session = request.cookies.get(USER_COOKIE)
    if session and len(session) < 200:
        await asyncio.to_thread(request.app[CTX_KEY].store.end_session, session)
    resp.del_cookie(COOKIE_NAME, path="/")
    resp.del_cookie(USER_COOKIE, path="/")
    raise resp


async def plotly_js(request: web.Request) -> web.FileResponse:
    return web.FileResponse(PLOTLY_JS, headers={"Cache-Control": "public, max-age=86400"})


async def favicon(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/static/favicon.svg")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", overview)
    r.add_get("/trends", trends_page)
    r.add_get("/runs", runs_page)
    r.add_get("/runs/{run_id}", run_page)
    r.add_get("/journey", journey_page)
    r.add_get("/alerts", alerts_page)
    r.add_get("/settings", settings_page)
    r.add_get("/login", login_get)
    r.add_post("/login", login_post)
    r.add_post("/logout", logout)
    r.add_get("/static/plotly.min.js", plotly_js)
    r.add_get("/favicon.ico", favicon)
    r.add_static("/static", STATIC_DIR, append_version=False)
