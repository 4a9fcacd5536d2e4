"""Tokens from external identity providers, and JWKS fetched over HTTP(S).

A national professional IdP or a citizen eID signs its own tokens; Carnet verifies them with the
provider's published keys (fetched, cached, refetched when a token names an unknown ``kid`` —
at most once a minute, so forged kids cannot make Carnet hammer the provider) and maps the
identifier claim to the Carnet patient or professional it names.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet
from sqlalchemy.orm import Session

from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.scopes import InvalidScope as MalformedScope
from carnet.access.scopes import parse_scope
from carnet.auth.errors import InvalidToken
from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.errors import CarnetError
from carnet.patients import service as patients
from carnet.settings import ExternalIssuer

log = logging.getLogger(__name__)

MAX_JWKS_BYTES = 256 * 1024
Fetch = Callable[[str], bytes]


def fetch_url(url: str, *, timeout: float = 5.0) -> bytes:
    """GET ``url`` (http or https only), refusing bodies over ``MAX_JWKS_BYTES``."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"JWKS URLs must be http(s), not {url!r}")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 — scheme checked above
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 — scheme checked above
        body: bytes = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError(f"the JWKS at {url} is larger than {MAX_JWKS_BYTES} bytes")
    return body


class RemoteJwks:
    """A JWKS published at a URL, cached in this process.

    Keys are reused for ``max_age``; a ``kid`` not in the cache triggers a refetch unless one
    happened less than ``min_refetch`` ago. A failed fetch keeps the keys already known.
    """

    def __init__(
        self,
        url: str,
        *,
        fetch: Fetch = fetch_url,
        max_age: dt.timedelta = dt.timedelta(hours=1),
        min_refetch: dt.timedelta = dt.timedelta(minutes=1),
    ) -> None:
        self.url = url
        self._fetch = fetch
        self._max_age = max_age
        self._min_refetch = min_refetch
        self._keys: dict[str, Key] = {}
        self._fetched_at: dt.datetime | None = None
        self._lock = threading.Lock()

    def key(self, kid: str | None, now: dt.datetime) -> Key | None:
        """The key named ``kid`` (or the only key, when the token names none), or None."""
        with self._lock:
            stale = self._fetched_at is None or now - self._fetched_at > self._max_age
            unknown = self._lookup(kid) is None
            may_refetch = self._fetched_at is None or now - self._fetched_at >= self._min_refetch
            if stale or (unknown and may_refetch):
                self._refresh(now)
            return self._lookup(kid)

    def _lookup(self, kid: str | None) -> Key | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _refresh(self, now: dt.datetime) -> None:
        self._fetched_at = now
        try:
            document = json.loads(self._fetch(self.url))
            key_set = KeySet.import_key_set(document)
        except (OSError, ValueError, JoseError, KeyError, TypeError) as error:
            log.warning("could not fetch the JWKS at %s: %s", self.url, error)
            return
        self._keys = {key.kid: key for key in key_set if key.kid is not None}


class ExternalIssuers:
    """The configured external identity providers, by issuer."""

    def __init__(self, issuers: Sequence[ExternalIssuer], *, fetch: Fetch = fetch_url) -> None:
        # A provider without an audience only signs people in (carnet.auth.federation): its
        # tokens are not accepted by the API.
        accepted = [issuer for issuer in issuers if issuer.audience is not None]
        self._issuers = {issuer.issuer: issuer for issuer in accepted}
        self._jwks = {
            issuer.issuer: RemoteJwks(issuer.jwks_url, fetch=fetch) for issuer in accepted
        }

    def knows(self, issuer: str) -> bool:
        """Whether tokens from ``issuer`` are accepted."""
        return issuer in self._issuers

    def authenticate(
        self,
        session: Session,
        token: str,
        header: dict[str, Any],
        issuer: str,
        *,
        clock: Clock,
        leeway: int,
    ) -> Actor:
        """Verify a token of a configured ``issuer`` and map it to the Carnet actor it names.

        Raises ``InvalidToken`` for a bad signature, an algorithm the issuer is not configured
        for, wrong audience, expiry, or an identifier no Carnet patient or professional holds.
        """
        config = self._issuers[issuer]
        algorithm = header.get("alg")
        if algorithm not in config.algorithms:
            raise InvalidToken(f"algorithm {algorithm!r} not accepted from {issuer}")
        kid = header.get("kid")
        key = self._jwks[issuer].key(kid if isinstance(kid, str) else None, clock.now())
        if key is None:
            raise InvalidToken(f"no key {kid!r} in the JWKS of {issuer}")
        try:
            claims = jwt.decode(token, key, algorithms=[algorithm]).claims
            jwt.JWTClaimsRegistry(
                now=int(clock.now().timestamp()),
                leeway=leeway,
                iss={"essential": True, "value": issuer},
                aud={"essential": True, "value": config.audience or ""},
                exp={"essential": True},
            ).validate(claims)
        except (JoseError, ValueError) as error:
            raise InvalidToken(f"external token refused: {error}") from None
        return self._actor(session, config, claims)

    def _actor(self, session: Session, config: ExternalIssuer, claims: dict[str, Any]) -> Actor:
        value = claims.get(config.identifier_claim)
        if not isinstance(value, str) or not value.strip():
            raise InvalidToken(f"no {config.identifier_claim} claim")
        level = config.assurance_levels.get(str(claims.get(config.assurance_claim)), "low")
        assurance = Assurance[level.upper()]
        jti = claims.get("jti")
        common: dict[str, Any] = {
            "assurance": assurance,
            "scopes": _resource_scopes(claims),
            "token_id": jti if isinstance(jti, str) else None,
            "client_id": claims.get("azp") if isinstance(claims.get("azp"), str) else None,
        }
        try:
            if config.actor_kind == "patient":
                patient = patients.find_patient(session, config.identifier_system, value)
                if patient is not None:
                    return Actor(
                        kind=ActorKind.PATIENT,
                        subject=str(patient.id),
                        person_id=patient.id,
                        acting_for=patient.id,
                        **common,
                    )
            else:
                professional = directory.find_professional(session, config.identifier_system, value)
                if professional is not None and professional.active:
                    return Actor(
                        kind=ActorKind.PROFESSIONAL,
                        subject=str(professional.id),
                        professional_id=professional.id,
                        organisation_id=professional.organisation_id,
                        profession=professional.profession.value,
                        **common,
                    )
        except CarnetError as error:
            raise InvalidToken(f"unusable identifier: {error}") from None
        raise InvalidToken(f"{config.identifier_system} identifier unknown to Carnet")


def _resource_scopes(claims: dict[str, Any]) -> frozenset[Any]:
    # Providers carry their own scopes too (email, profile…): only SMART resource scopes
    # matter to Carnet, and a word that is not one is ignored rather than refused.
    raw = claims.get("scope", claims.get("scp", ""))
    words = raw.split() if isinstance(raw, str) else [w for w in raw if isinstance(w, str)]
    scopes = set()
    for word in words:
        try:
            scopes.add(parse_scope(word))
        except MalformedScope:
            continue
    return frozenset(scopes)
