"""Who is asking: the :class:`~plugin.store.Principal` of a request, for the role filters of every route.

- Home mode (no users in the database): the configured token — or an open loopback dashboard — is the one user,
  an admin who sees everything. Nothing changes for a home install.
- Club mode (users exist, ``footfall-dashboard users add …``): a request carries a per-user API token
  (``Authorization: Bearer fft_…``) or the session cookie of a login with user name and password. The configured
  token, if any, still works as an admin token (scripts, Home Assistant).
- Sessions and tokens live in the database, so any worker behind a reverse proxy accepts any login.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from plugin.store import Principal
from plugin.store.accounts import HOME_ADMIN

PRINCIPAL_KEY = web.RequestKey("footfall_principal", Principal)
USER_COOKIE = "footfall_user"
_ENABLED_TTL_S = 2.0


class AccountsGate:
    """Whether the database has users (re-checked every 2 s) and who a request's credentials name."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._enabled: tuple[float, bool] = (0.0, False)

    async def enabled(self) -> bool:
        at, value = self._enabled
        if time.monotonic() - at > _ENABLED_TTL_S:
            value = bool(await asyncio.to_thread(self.store.has_users))
            self._enabled = (time.monotonic(), value)
        return value

    async def for_token(self, token: str) -> Principal | None:
        if not token.startswith("fft_") or len(token) > 200:
            return None
        return await asyncio.to_thread(self.store.principal_for_token, token)  # type: ignore[no-any-return]

    async def for_session(self, session: str) -> Principal | None:
        if len(session) > 200:
            return None
        return await asyncio.to_thread(self.store.principal_for_session, session)  # type: ignore[no-any-return]


def principal(request: web.Request) -> Principal:
    """The request's principal (set by the auth middleware; the home admin when accounts are off)."""
    return request.get(PRINCIPAL_KEY, HOME_ADMIN)


def require_admin(request: web.Request) -> Principal:
    p = principal(request)
    if not p.is_admin:
        raise web.HTTPForbidden(reason=f"this needs an admin account ({p.username} is a {p.role})")
    return p
