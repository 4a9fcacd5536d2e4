"""The revocation list as one process holds it: access tokens revoked before they expire.

Every authenticated request asks whether its token was revoked. Asking the table each time
costs a transaction of its own (three round trips) on the path of every request; the list of
revoked, unexpired access tokens is short (access tokens live minutes, and few are revoked), so
each process keeps it in memory and reloads it whole once it is older than
``CARNET_REVOCATION_REFRESH_SECONDS``. A token revoked through one worker is refused by that
worker at once (the way in marks its list stale after committing) and by every other within that
time — as a resource server that caches token introspection would do. Zero asks the table on
every request.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.auth.models import RevokedToken

# Single-use client assertions share the table (see auth.clients); they are never access tokens.
ASSERTION_PREFIX = "assertion:"


class RevocationList:
    """Which access tokens are revoked, reloaded from the table when older than ``refresh``."""

    def __init__(
        self, refresh_seconds: float, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.refresh_seconds = refresh_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._revoked: frozenset[str] = frozenset()
        self._loaded_at: float | None = None

    def __repr__(self) -> str:
        return f"RevocationList(refresh={self.refresh_seconds}s, known={len(self._revoked)})"

    def is_revoked(self, session: Session, jti: str, *, now: dt.datetime) -> bool:
        """Whether the access token ``jti`` was revoked, as of at most ``refresh`` ago."""
        if self.refresh_seconds <= 0:
            return session.get(RevokedToken, jti) is not None
        with self._lock:
            loaded_at = self._loaded_at
        if loaded_at is None or self._monotonic() - loaded_at >= self.refresh_seconds:
            self.reload(session, now=now)
        return jti in self._revoked

    def known(self, jti: str) -> bool | None:
        """Whether ``jti`` is revoked as the list in memory says; None when the table must say.

        None when the list is older than ``refresh`` (or was never read, or is marked stale) and
        always when ``refresh`` is zero: the caller then asks ``is_revoked`` with a session.
        """
        if self.refresh_seconds <= 0:
            return None
        with self._lock:
            loaded_at, revoked = self._loaded_at, self._revoked
        if loaded_at is None or self._monotonic() - loaded_at >= self.refresh_seconds:
            return None
        return jti in revoked

    def mark_stale(self) -> None:
        """Read the table again at the next question: this process has just revoked tokens."""
        with self._lock:
            self._loaded_at = None

    def reload(self, session: Session, *, now: dt.datetime) -> None:
        """Read the revoked access tokens that have not expired yet."""
        started = self._monotonic()
        revoked = frozenset(
            session.scalars(
                select(RevokedToken.jti).where(
                    RevokedToken.expires_at > now,
                    RevokedToken.jti.not_like(f"{ASSERTION_PREFIX}%"),
                )
            )
        )
        with self._lock:
            # Two threads may reload at once: the one that started last wins.
            if self._loaded_at is None or started >= self._loaded_at:
                self._revoked, self._loaded_at = revoked, started
