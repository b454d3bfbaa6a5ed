"""The dashboard's aiohttp application factory."""

from __future__ import annotations

from aiohttp import web

from plugin.web import api, journey, live, pages
from plugin.web.accounts import AccountsGate
from plugin.web.auth import THROTTLE_KEY, auth_middleware, require_token_if_exposed, security_headers
from plugin.web.context import DashboardContext
from plugin.web.proxy import forwarded_middleware, parse_networks
from plugin.web.throttle import FailureThrottle

#: POST bodies are small JSON objects (settings, acks); anything bigger is refused with 413.
MAX_BODY_BYTES = 64 * 1024


def create_app(ctx: DashboardContext) -> web.Application:
    """Build the web app. Raises ``ConfigError`` when listening beyond loopback without a token."""
    require_token_if_exposed(ctx.listen_host, ctx.token)
    throttle = FailureThrottle()
    app = web.Application(
        middlewares=[
            forwarded_middleware(parse_networks(ctx.trusted_proxies)),
            security_headers,
            api.api_errors,
            pages.page_errors,
            auth_middleware(ctx.token, throttle, AccountsGate(ctx.store)),
        ],
        client_max_size=MAX_BODY_BYTES,
    )
    app[api.CTX_KEY] = ctx
    app[THROTTLE_KEY] = throttle
    api.add_routes(app)
    journey.add_routes(app)
    live.setup_live(app)
    pages.add_routes(app)
    app.on_response_prepare.append(_strip_server_header)
    return app


async def _strip_server_header(request: web.Request, response: web.StreamResponse) -> None:
    """Don't advertise the Python/aiohttp versions to whoever can reach the port."""
    response.headers["Server"] = "footfall"
