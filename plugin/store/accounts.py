"""Accounts for a club: users with a role, teams, per-user API tokens and login sessions (docs/club.md).

- Roles: ``admin`` sees and changes everything; ``coach`` sees the runners of the teams they coach; ``runner``
  sees their own runner name only. What a user may see is a :class:`Principal`; the web layer passes its
  ``runners`` to every query.
- Passwords are hashed with argon2id (argon2-cffi's ``PasswordHasher`` defaults, RFC 9106's second recommended
  option); an unknown user name costs the same verification as a wrong password.
- API tokens and session ids are 256-bit random values shown once; the database keeps only their SHA-256, so a
  copy of the database does not hand out logins.
- No users at all is the home mode: the configured token (or loopback) is the one way in, as before.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from plugin.store.base import StoreBase

Role = Literal["admin", "coach", "runner"]
ROLES: tuple[Role, ...] = ("admin", "coach", "runner")
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
TEAM_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
MIN_PASSWORD_LENGTH = 10
SESSION_TTL_S = 14 * 86400.0
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("footfall: no such user")


class AccountError(ValueError):
    """A user, team or token operation that cannot be done as asked; the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who is asking, and which runners they may see (``runners`` None = every runner)."""

    username: str | None
    role: Role
    runners: frozenset[str] | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def can_see(self, runner: str | None) -> bool:
        return self.runners is None or (runner is not None and runner in self.runners)


#: The home mode's one user: the configured token or an open loopback dashboard.
HOME_ADMIN = Principal(None, "admin", None)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _check_username(username: str) -> str:
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise AccountError(f"user name {username[:64]!r}: 1–64 letters, digits or . _ @ - (starting with one)")
    return username


def _check_team(name: str) -> str:
    if not isinstance(name, str) or not TEAM_RE.match(name) or name.strip() != name:
        raise AccountError(f"team name {name[:64]!r}: 1–64 printable characters, no surrounding spaces")
    return name


class Accounts(StoreBase):
    # -- users ---------------------------------------------------------------------------------------------------
    def has_users(self) -> bool:
        return self._one("SELECT 1 FROM users LIMIT 1") is not None

    def add_user(self, username: str, role: str, *, password: str | None = None, runner: str | None = None) -> None:
        _check_username(username)
        if role not in ROLES:
            raise AccountError(f"role {role!r}: one of {', '.join(ROLES)}")
        if role == "runner" and not runner:
            raise AccountError(f"user {username!r}: a runner account needs the runner name their insoles report")
        if runner is not None and (len(runner) > 64 or not runner):
            raise AccountError("runner name: 1–64 characters")
        hashed = _hash_password(password) if password is not None else None
        with self._tx() as w:
            if w.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                raise AccountError(f"user {username!r} exists already")
            w.execute(
                "INSERT INTO users(username, role, runner, password_hash, created_at) VALUES (?,?,?,?,?)",
                (username, role, runner if role == "runner" else None, hashed, time.time()),
            )

    def set_password(self, username: str, password: str) -> None:
        hashed = _hash_password(password)
        with self._tx() as w:
            if w.execute("UPDATE users SET password_hash = ? WHERE username = ?", (hashed, username)).rowcount != 1:
                raise AccountError(f"no user {username!r}")
            w.execute("DELETE FROM sessions WHERE username = ?", (username,))  # a new password ends old logins

    def delete_user(self, username: str) -> None:
        with self._tx() as w:
            for table in ("sessions", "api_tokens", "team_coaches"):
                w.execute(f"DELETE FROM {table} WHERE username = ?", (username,))
            if w.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount != 1:
                raise AccountError(f"no user {username!r}")

    def users(self) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT username, role, runner, created_at, disabled, password_hash IS NOT NULL AS has_password "
            "FROM users ORDER BY username"
        )
        coached = self._rows("SELECT username, team FROM team_coaches ORDER BY team")
        for r in rows:
            r["has_password"] = bool(r["has_password"])
            r["disabled"] = bool(r["disabled"])
            r["teams"] = [c["team"] for c in coached if c["username"] == r["username"]]
        return rows

    def principal(self, username: str) -> Principal | None:
        row = self._one("SELECT role, runner, disabled FROM users WHERE username = ?", (username,))
        if row is None or row[2]:
            return None
        role: Role = row[0]
        if role == "admin":
            return Principal(username, role, None)
        if role == "runner":
            return Principal(username, role, frozenset([row[1]]) if row[1] else frozenset())
        members = self._rows(
            "SELECT DISTINCT m.runner FROM team_members m JOIN team_coaches c ON c.team = m.team WHERE c.username = ?",
            (username,),
        )
        return Principal(username, role, frozenset(r["runner"] for r in members))

    def verify_password(self, username: str, password: str) -> Principal | None:
        """The user's principal when the password is right; None otherwise (same cost for unknown users)."""
        row = self._one("SELECT password_hash FROM users WHERE username = ? AND disabled = 0", (username,))
        stored = row[0] if row is not None and row[0] else None
        try:
            _hasher.verify(stored or _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if stored is None:
            return None
        if _hasher.check_needs_rehash(stored):
            with self._tx() as w:
                w.execute("UPDATE users SET password_hash = ? WHERE username = ?", (_hasher.hash(password), username))
        return self.principal(username)

    # -- tokens and sessions -------------------------------------------------------------------------------------
    def create_token(self, username: str, label: str = "api") -> str:
        """A new API token for the user (shown once; only its hash is stored)."""
        token = "fft_" + secrets.token_urlsafe(32)
        with self._tx() as w:
            if not w.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                raise AccountError(f"no user {username!r}")
            w.execute(
                "INSERT INTO api_tokens(token_hash, username, label, created_at) VALUES (?,?,?,?)",
                (token_hash(token), username, label[:64], time.time()),
            )
        return token

    def tokens(self, username: str | None = None) -> list[dict[str, Any]]:
        where = " WHERE username = ?" if username else ""
        return self._rows(
            f"SELECT substr(token_hash, 1, 12) AS id, username, label, created_at, last_used_at FROM api_tokens{where} "
            "ORDER BY username, created_at",
            (username,) if username else (),
        )

    def revoke_token(self, token_id: str) -> int:
        """Revoke tokens whose id (the first 12 hex digits of the hash, as :meth:`tokens` lists) matches."""
        if not re.fullmatch(r"[0-9a-f]{12}", token_id):
            raise AccountError("token id: the 12 hex digits `users tokens` lists")
        with self._tx() as w:
            return int(w.execute("DELETE FROM api_tokens WHERE substr(token_hash, 1, 12) = ?", (token_id,)).rowcount)

    def principal_for_token(self, token: str) -> Principal | None:
        row = self._one("SELECT username FROM api_tokens WHERE token_hash = ?", (token_hash(token),))
        if row is None:
            return None
        with self._tx() as w:
            w.execute("UPDATE api_tokens SET last_used_at = ? WHERE token_hash = ?", (time.time(), token_hash(token)))
        return self.principal(row[0])

    def create_session(self, username: str, ttl_s: float = SESSION_TTL_S) -> str:
        session = secrets.token_urlsafe(32)
        now = time.time()
        with self._tx() as w:
            w.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
            w.execute(
                "INSERT INTO sessions(session_hash, username, created_at, expires_at) VALUES (?,?,?,?)",
                (token_hash(session), username, now, now + ttl_s),
            )
        return session

    def principal_for_session(self, session: str) -> Principal | None:
        row = self._one(
            "SELECT username FROM sessions WHERE session_hash = ? AND expires_at > ?",
            (token_hash(session), time.time()),
        )
        return None if row is None else self.principal(row[0])

    def end_session(self, session: str) -> None:
        with self._tx() as w:
            w.execute("DELETE FROM sessions WHERE session_hash = ?", (token_hash(session),))

    # -- teams ---------------------------------------------------------------------------------------------------
    def add_team(self, name: str) -> None:
        _check_team(name)
        with self._tx() as w:
            w.execute("INSERT INTO teams(name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (name, time.time()))

    def delete_team(self, name: str) -> None:
        with self._tx() as w:
            w.execute("DELETE FROM team_members WHERE team = ?", (name,))
            w.execute("DELETE FROM team_coaches WHERE team = ?", (name,))
            if w.execute("DELETE FROM teams WHERE name = ?", (name,)).rowcount != 1:
                raise AccountError(f"no team {name!r}")

    def set_team_members(self, team: str, runners: list[str], *, add: bool = True) -> None:
        with self._tx() as w:
            if not w.execute("SELECT 1 FROM teams WHERE name = ?", (team,)).fetchone():
                raise AccountError(f"no team {team!r}")
            for r in runners:
                if not r or len(r) > 64:
                    raise AccountError("runner name: 1–64 characters")
                if add:
                    w.execute("INSERT INTO team_members(team, runner) VALUES (?, ?) ON CONFLICT DO NOTHING", (team, r))
                else:
                    w.execute("DELETE FROM team_members WHERE team = ? AND runner = ?", (team, r))

    def set_team_coach(self, team: str, username: str, *, add: bool = True) -> None:
        with self._tx() as w:
            if not w.execute("SELECT 1 FROM teams WHERE name = ?", (team,)).fetchone():
                raise AccountError(f"no team {team!r}")
            role = w.execute("SELECT role FROM users WHERE username = ?", (username,)).fetchone()
            if role is None:
                raise AccountError(f"no user {username!r}")
            if add:
                if role[0] != "coach":
                    raise AccountError(f"user {username!r} is a {role[0]}, not a coach")
                w.execute(
                    "INSERT INTO team_coaches(team, username) VALUES (?, ?) ON CONFLICT DO NOTHING", (team, username)
                )
            else:
                w.execute("DELETE FROM team_coaches WHERE team = ? AND username = ?", (team, username))

    def teams(self, username: str | None = None) -> list[dict[str, Any]]:
        """Teams with members and coaches; with ``username``, only the teams that user coaches."""
        teams = self._rows("SELECT name, created_at FROM teams ORDER BY name")
        members = self._rows("SELECT team, runner FROM team_members ORDER BY runner")
        coaches = self._rows("SELECT team, username FROM team_coaches ORDER BY username")
        out = []
        for t in teams:
            t["runners"] = [m["runner"] for m in members if m["team"] == t["name"]]
            t["coaches"] = [c["username"] for c in coaches if c["team"] == t["name"]]
            if username is None or username in t["coaches"]:
                out.append(t)
        return out


def _hash_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise AccountError("password: at most 1024 characters")
    return _hasher.hash(password)
