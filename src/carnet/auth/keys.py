"""Token signing keys: generation, rotation without downtime, the published JWKS.

Keys are EC P-256 (ES256), named by their RFC 7638 thumbprint, their private half sealed under
the master key in the database so every worker signs with the same key. Rotation creates a new
key, which signs from then on, and retires the old one: it stays in the JWKS and is accepted
until ``expires_at``, by which time every token it signed has expired.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.auth.models import SigningKey
from carnet.clock import Clock
from carnet.storage.crypto import open_sealed, seal
from carnet.storage.ports import KeyWrapper

ALGORITHM = "ES256"
# How long a worker trusts what it loaded about a key (its retirement date may change).
_CACHE_SECONDS = 60
# How long a worker may act on what it read of the keys (a retirement, a withdrawal) before it
# reads them again; verified tokens are remembered no longer (carnet.auth.verified).
KEY_CACHE = dt.timedelta(seconds=_CACHE_SECONDS)


def _aad(kid: str) -> bytes:
    # Binds the sealed key to its row: a sealed key copied under another kid fails to open.
    return b"carnet-signing-key:" + kid.encode("ascii")


def create_signing_key(session: Session, *, key_wrapper: KeyWrapper, clock: Clock) -> SigningKey:
    """Generate a new ES256 key, seal its private half and record it; it signs from now on."""
    key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": ALGORITHM}, private=True)
    kid = key.thumbprint()
    private = key.as_dict(private=True)
    row = SigningKey(
        kid=kid,
        algorithm=ALGORITHM,
        public_jwk={**key.as_dict(private=False), "kid": kid},
        sealed_private_key=seal(json.dumps(private).encode(), aad=_aad(kid), wrapper=key_wrapper),
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    return row


def rotate_signing_key(
    session: Session, *, key_wrapper: KeyWrapper, clock: Clock, overlap: dt.timedelta
) -> SigningKey:
    """Create a new signing key and retire the current ones.

    A retired key stops signing now but stays published and accepted for ``overlap`` — at least
    the lifetime of the tokens it signed — so no valid token is refused during a rotation.
    """
    now = clock.now()
    for row in session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
        row.retired_at = now
        row.expires_at = now + overlap
    return create_signing_key(session, key_wrapper=key_wrapper, clock=clock)


def published_keys(session: Session, clock: Clock) -> list[SigningKey]:
    """Keys that may have signed a still-valid token: the current one and those in overlap."""
    now = clock.now()
    rows = session.scalars(select(SigningKey).order_by(SigningKey.created_at.desc()))
    return [row for row in rows if row.expires_at is None or row.expires_at > now]


def all_keys(session: Session) -> list[SigningKey]:
    """Every key ever created, newest first (for ``carnet keys list``)."""
    return list(session.scalars(select(SigningKey).order_by(SigningKey.created_at.desc())))


def jwks(session: Session, clock: Clock) -> dict[str, Any]:
    """The JSON Web Key Set of Carnet's published public keys (RFC 7517 section 5)."""
    return {"keys": [dict(row.public_jwk) for row in published_keys(session, clock)]}


@dataclass(frozen=True)
class _Cached:
    key: ECKey
    expires_at: dt.datetime | None
    loaded_at: dt.datetime


class KeyRing:
    """Loads, unseals and caches the signing keys for one process.

    Verification by ``kid`` is served from memory; a kid not seen before is looked up once in
    the database (one primary-key read), and entries are reloaded after a minute so that a
    rotation made by another worker is seen.
    """

    def __init__(self, key_wrapper: KeyWrapper | None) -> None:
        self._key_wrapper = key_wrapper
        self._public: dict[str, _Cached] = {}
        self._private: dict[str, ECKey] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyRing(cached={sorted(self._public)!r})"

    @property
    def key_wrapper(self) -> KeyWrapper:
        """The master key wrapper that seals the private keys."""
        if self._key_wrapper is None:
            raise RuntimeError("This Carnet was built without a master key: it cannot sign.")
        return self._key_wrapper

    def signing_key(self, session: Session, clock: Clock) -> ECKey:
        """The current private signing key, created on first use."""
        row = session.scalar(
            select(SigningKey)
            .where(SigningKey.retired_at.is_(None))
            .order_by(SigningKey.created_at.desc(), SigningKey.kid)
            .limit(1)
        )
        if row is None:
            row = create_signing_key(session, key_wrapper=self.key_wrapper, clock=clock)
        with self._lock:
            cached = self._private.get(row.kid)
        if cached is not None:
            return cached
        private = json.loads(
            open_sealed(row.sealed_private_key, aad=_aad(row.kid), wrapper=self.key_wrapper)
        )
        key = ECKey.import_key(private, parameters={"kid": row.kid, "use": "sig"})
        with self._lock:
            self._private[row.kid] = key
        return key

    def verification_key(self, session: Session, kid: str, clock: Clock) -> ECKey | None:
        """The public key ``kid`` if it is published now, else None (unknown or retired)."""
        now = clock.now()
        with self._lock:
            cached = self._public.get(kid)
        if cached is None or now - cached.loaded_at > dt.timedelta(seconds=_CACHE_SECONDS):
            row = session.get(SigningKey, kid)
            if row is None:
                return None
            cached = _Cached(ECKey.import_key(dict(row.public_jwk)), row.expires_at, now)
            with self._lock:
                self._public[kid] = cached
        if cached.expires_at is not None and cached.expires_at <= now:
            return None
        return cached.key
