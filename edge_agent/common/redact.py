"""What may be shown of a secret: one definition for logs, errors, the CLI and the dashboard.

* Broker URLs keep scheme, user, host and port; the password becomes ``***`` (:func:`redact_url`).
* Notification (Apprise) URLs carry tokens in every part, so only their scheme is shown, plus a short hash that
  tells entries apart (:func:`mask_url`).
* Free text (an exception message, a library's error) has any ``scheme://user:password@`` credentials
  replaced (:func:`redact_text`).
* Configuration keys whose name says secret (:func:`is_secret_key`) never have their value shown.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "••••••"
#: Key names (any part of a config path) whose values are secrets.
SECRET_WORDS = ("password", "secret", "token", "notify", "apprise")
_CREDENTIALS_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s:@/]*):(?P<pw>[^\s@/]*)@")


def redact_url(url: str) -> str:
    """``mqtt://user:secret@host:1883`` → ``mqtt://user:***@host:1883``; never raises."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rsplit("@", 1)[1]
        netloc = f"{parts.username or ''}:***@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        return redact_text(url)


def redact_text(text: str) -> str:
    """Replace the password of every ``scheme://user:password@`` in ``text`` by ``***``."""
    return _CREDENTIALS_RE.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def mask_url(url: str) -> str:
    """``tgram://bot123:secret/chat`` → ``tgram://••••••#1a2b3c``: the scheme is kept, nothing else; the hash
    suffix tells entries apart and lets the dashboard's settings form send a mask back to keep a value."""
    scheme = url.split("://", 1)[0] if "://" in url else "url"
    return f"{scheme[:16]}://{MASK}#{hashlib.sha256(url.encode()).hexdigest()[:6]}"


def is_secret_key(path: Iterable[object]) -> bool:
    """True when any part of a config key path names a secret (``mqtt.password``, ``token``, ``notify_urls``)."""
    return any(any(w in str(p).lower() for w in SECRET_WORDS) for p in path)
