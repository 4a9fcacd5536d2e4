"""The portals' browser sessions: sealed cookies, the same on every worker.

A session holds the OAuth tokens Carnet's own authorization server issued to the portal, a
CSRF secret, the dossier a patient is acting on, and its timestamps. It lives in the browser,
sealed (AES-256-GCM under a data key wrapped by the master key), so any worker holding the
master key reads it and nothing is kept per process. Signing out revokes the tokens server-side,
so a copied cookie dies with them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
import secrets
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from carnet.storage import KeyWrapper
from carnet.storage.crypto import open_sealed, seal
from carnet.storage.errors import StorageError

SESSION_COOKIE = "carnet_session"
SIGN_IN_COOKIE = "carnet_portal_sign_in"
# A health record left open on a shared computer: idle sessions end after 30 minutes.
IDLE_LIMIT = dt.timedelta(minutes=30)
ABSOLUTE_LIMIT = dt.timedelta(hours=12)
_SESSION_AAD = b"carnet:browser-session:v1"
_SIGN_IN_AAD = b"carnet:portal-sign-in:v1"
_MAX_COOKIE = 3800  # browsers keep 4,096 bytes per cookie, name and attributes included
# The typed values a cookie carries back: room left for the tokens (sealing adds a third).
_MAX_KEPT = 1200


@dataclass(frozen=True)
class BrowserSession:
    """What a signed-in browser carries (sealed)."""

    access_token: str
    refresh_token: str | None
    started_at: float
    seen_at: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # A patient acting for someone they represent (a child): that patient's id.
    acting_for: str | None = None
    # One message shown on the next page (after a redirect), then dropped.
    flash: str | None = None
    flash_kind: str = "info"
    # What a refused form had typed, for the page it goes back to: kept once, like the message,
    # so a person corrects their entry instead of typing it all again.
    kept: dict[str, str] | None = None

    def expired(self, now: dt.datetime) -> bool:
        """Idle too long, or open too long."""
        moment = now.timestamp()
        return (
            moment - self.seen_at > IDLE_LIMIT.total_seconds()
            or moment - self.started_at > ABSOLUTE_LIMIT.total_seconds()
        )

    def touched(self, now: dt.datetime) -> BrowserSession:
        """The session seen now."""
        return replace(self, seen_at=now.timestamp())

    def with_flash(
        self, message: str, kind: str = "info", kept: dict[str, str] | None = None
    ) -> BrowserSession:
        """The session carrying a message (and what a refused form had typed) for the next
        page; typed values too long for a cookie are left out."""
        if kept is not None and sum(len(k) + len(v) for k, v in kept.items()) > _MAX_KEPT:
            kept = None
        return replace(self, flash=message, flash_kind=kind, kept=kept)

    def csrf_matches(self, submitted: str | None) -> bool:
        """Whether a form's CSRF token is this session's (constant time)."""
        return bool(submitted) and hmac.compare_digest(self.csrf, str(submitted))

    @property
    def acting_for_id(self) -> uuid.UUID | None:
        """The represented patient chosen, if any."""
        return uuid.UUID(self.acting_for) if self.acting_for else None


def start(access_token: str, refresh_token: str | None, now: dt.datetime) -> BrowserSession:
    """A new session, right after sign-in."""
    moment = now.timestamp()
    return BrowserSession(access_token, refresh_token, started_at=moment, seen_at=moment)


def seal_session(browser_session: BrowserSession, wrapper: KeyWrapper) -> str:
    """The cookie value of a session."""
    return _seal(asdict(browser_session), _SESSION_AAD, wrapper)


def open_session(value: str | None, wrapper: KeyWrapper) -> BrowserSession | None:
    """The session in a cookie; None if absent, forged, or from another master key."""
    fields = _open(value, _SESSION_AAD, wrapper)
    if fields is None:
        return None
    try:
        return BrowserSession(**fields)
    except TypeError:
        return None


@dataclass(frozen=True)
class SignInAttempt:
    """An authorization request under way: what the callback must find again."""

    state: str
    nonce: str
    code_verifier: str
    next_path: str


def new_sign_in(next_path: str) -> SignInAttempt:
    """A fresh state, nonce and PKCE verifier (RFC 7636: 43 to 128 characters)."""
    return SignInAttempt(
        state=secrets.token_urlsafe(24),
        nonce=secrets.token_urlsafe(24),
        code_verifier=secrets.token_urlsafe(48),
        next_path=next_path,
    )


def seal_sign_in(attempt: SignInAttempt, wrapper: KeyWrapper) -> str:
    """The cookie value of a sign-in under way."""
    return _seal(asdict(attempt), _SIGN_IN_AAD, wrapper)


def open_sign_in(value: str | None, wrapper: KeyWrapper) -> SignInAttempt | None:
    """The sign-in under way in a cookie; None if absent or forged."""
    fields = _open(value, _SIGN_IN_AAD, wrapper)
    if fields is None:
        return None
    try:
        return SignInAttempt(**fields)
    except TypeError:
        return None


def safe_next(path: str | None, default: str) -> str:
    """A path to go back to after sign-in: only a local path, never another site."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return default
    return path


def _seal(fields: dict[str, Any], aad: bytes, wrapper: KeyWrapper) -> str:
    blob = seal(json.dumps(fields, separators=(",", ":")).encode(), aad=aad, wrapper=wrapper)
    value = base64.urlsafe_b64encode(blob).decode().rstrip("=")
    if len(value) > _MAX_COOKIE:
        raise ValueError("The browser session no longer fits in a cookie.")
    return value


def _open(value: str | None, aad: bytes, wrapper: KeyWrapper) -> dict[str, Any] | None:
    if not value or len(value) > _MAX_COOKIE:
        return None
    try:
        blob = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        fields = json.loads(open_sealed(blob, aad=aad, wrapper=wrapper))
    except (binascii.Error, ValueError, StorageError):
        return None
    return fields if isinstance(fields, dict) else None
