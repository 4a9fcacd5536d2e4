"""Access tokens: issued as short-lived ES256 JWTs (RFC 9068), verified, mapped to actors.

Every JOSE operation goes through joserfc. Verification pins the algorithm before looking at
anything else (RFC 8725 section 3.1: no ``none``, no HS256 keyed with a public key), requires
the ``kid`` of a published key, checks ``typ`` so one kind of Carnet JWT cannot stand in for
another (RFC 8725 section 3.11), then ``iss``, ``aud``, ``exp``, ``nbf``, ``iat`` and the
revocation list.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from sqlalchemy.orm import Session

from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.scopes import InvalidScope as MalformedScope
from carnet.access.scopes import parse_scopes
from carnet.auth.errors import InvalidToken
from carnet.auth.external import ExternalIssuers, Fetch, RemoteJwks, fetch_url
from carnet.auth.keys import ALGORITHM, KEY_CACHE, KeyRing
from carnet.auth.revocations import RevocationList
from carnet.auth.verified import VerifiedTokens
from carnet.clock import Clock
from carnet.settings import Settings
from carnet.storage.ports import KeyWrapper

# Tolerated clock difference between Carnet's workers and the identity providers.
CLOCK_SKEW_SECONDS = 30
# A bearer token larger than this is refused before any parsing.
MAX_TOKEN_BYTES = 8192
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 — a JWT type (RFC 9068 section 2.1), not a secret
ID_TOKEN_TYPE = "JWT"  # noqa: S105 — a JWT type, not a secret
TICKET_TYPE = "carnet-login+jwt"
# The sign-in form is signed (a ticket) and must be submitted within this time.
LOGIN_TICKET_SECONDS = 600
# Claims Carnet adds to its tokens, namespaced so they cannot clash with registered ones.
KIND_CLAIM = "carnet_kind"
ORGANISATION_CLAIM = "carnet_org"
PROFESSION_CLAIM = "carnet_profession"
# A patient's token launched for someone they represent: that person's patient id.
PATIENT_CLAIM = "carnet_patient"


@dataclass(frozen=True)
class AuthConfig:
    """What the authorization server needs to know about itself."""

    issuer: str
    audience: str
    access_token_lifetime: dt.timedelta
    refresh_token_lifetime: dt.timedelta
    demo_idp: bool
    revocation_refresh_seconds: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthConfig:
        """Read the issuer (``CARNET_PUBLIC_URL``), lifetimes and demo switch from settings."""
        return cls(
            issuer=settings.public_url,
            audience=f"{settings.public_url}/fhir",
            access_token_lifetime=dt.timedelta(seconds=settings.access_token_seconds),
            refresh_token_lifetime=dt.timedelta(days=settings.refresh_token_days),
            demo_idp=settings.demo_idp,
            revocation_refresh_seconds=settings.revocation_refresh_seconds,
        )

    @property
    def token_endpoint(self) -> str:
        """The token endpoint's URL: the audience of client assertions (RFC 7523 section 3)."""
        return f"{self.issuer}/oauth/token"

    @property
    def key_overlap(self) -> dt.timedelta:
        """How long a retired key stays published: the longest-lived token it can have signed."""
        longest = max(self.access_token_lifetime, dt.timedelta(seconds=LOGIN_TICKET_SECONDS))
        return longest + dt.timedelta(seconds=CLOCK_SKEW_SECONDS)


class TokenAuthority:
    """The authorization server's runtime: its configuration, keys and trusted issuers.

    One per process, shared by requests (its caches are thread-safe).
    """

    def __init__(
        self,
        config: AuthConfig,
        key_wrapper: KeyWrapper | None,
        *,
        external: ExternalIssuers | None = None,
        fetch: Fetch = fetch_url,
    ) -> None:
        self.config = config
        self.keys = KeyRing(key_wrapper)
        self.revocations = RevocationList(config.revocation_refresh_seconds)
        self.verified = VerifiedTokens()
        self.external = external or ExternalIssuers(())
        self._fetch = fetch
        self._client_jwks: dict[str, RemoteJwks] = {}

    @classmethod
    def from_settings(cls, settings: Settings, key_wrapper: KeyWrapper | None) -> TokenAuthority:
        """The authority described by ``settings``, sealing with ``key_wrapper``."""
        return cls(
            AuthConfig.from_settings(settings),
            key_wrapper,
            external=ExternalIssuers(settings.external_issuers),
        )

    @property
    def key_wrapper(self) -> KeyWrapper:
        """The master key wrapper (raises if this authority was built without one)."""
        return self.keys.key_wrapper

    def client_jwks(self, url: str) -> RemoteJwks:
        """The cached JWKS a client publishes at ``url``."""
        if url not in self._client_jwks:
            self._client_jwks[url] = RemoteJwks(url, fetch=self._fetch)
        return self._client_jwks[url]


@dataclass(frozen=True)
class Principal:
    """Who a token is issued to and how they authenticated; becomes an ``Actor`` on use."""

    kind: ActorKind
    subject: str
    assurance: Assurance
    methods: tuple[str, ...] = ()
    person_id: uuid.UUID | None = None
    professional_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    profession: str | None = None
    auth_time: dt.datetime | None = None
    # A staff member acting for ``professional_id`` (``auth.staff``): their professional id.
    staff_id: uuid.UUID | None = None

    @property
    def fhir_user(self) -> str | None:
        """The SMART ``fhirUser`` reference of a person, None for systems."""
        if self.kind is ActorKind.PATIENT:
            return f"Patient/{self.person_id}"
        if self.kind is ActorKind.PROFESSIONAL:
            return f"Practitioner/{self.professional_id}"
        return None


@dataclass(frozen=True)
class IssuedToken:
    """A signed access token with its id and expiry."""

    token: str
    jti: str
    expires_at: dt.datetime
    scope: str = ""
    claims: dict[str, Any] = field(default_factory=dict, repr=False)


def issue_access_token(
    session: Session,
    authority: TokenAuthority,
    principal: Principal,
    *,
    scope: str,
    client_id: str,
    clock: Clock,
    lifetime: dt.timedelta | None = None,
    launch_patient: uuid.UUID | None = None,
) -> IssuedToken:
    """Sign an access token for ``principal`` with the current key.

    ``scope`` must already be the granted scope (see ``service.grant_scopes``); ``lifetime``
    defaults to ``CARNET_ACCESS_TOKEN_SECONDS``; ``launch_patient`` is the person a patient
    represents and launched the app for (``PATIENT_CLAIM``).
    """
    now = clock.now()
    expires_at = now + (lifetime or authority.config.access_token_lifetime)
    jti = secrets.token_urlsafe(18)
    claims: dict[str, Any] = {
        "iss": authority.config.issuer,
        "aud": authority.config.audience,
        "sub": principal.subject,
        "client_id": client_id,
        "scope": scope,
        "jti": jti,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "acr": principal.assurance.acr,
        KIND_CLAIM: principal.kind.value,
    }
    if principal.methods:
        claims["amr"] = list(principal.methods)
    if principal.auth_time is not None:
        claims["auth_time"] = int(principal.auth_time.timestamp())
    if principal.fhir_user is not None:
        claims["fhirUser"] = principal.fhir_user
    if principal.organisation_id is not None:
        claims[ORGANISATION_CLAIM] = str(principal.organisation_id)
    if principal.profession is not None:
        claims[PROFESSION_CLAIM] = principal.profession
    if principal.staff_id is not None:
        # RFC 8693 section 4.1: the token is the professional's, the actor is the staff member.
        claims["act"] = {"sub": f"Practitioner/{principal.staff_id}"}
    if launch_patient is not None and launch_patient != principal.person_id:
        claims[PATIENT_CLAIM] = str(launch_patient)
    token = sign(session, authority, claims, typ=ACCESS_TOKEN_TYPE, clock=clock)
    return IssuedToken(token=token, jti=jti, expires_at=expires_at, scope=scope, claims=claims)


def issue_id_token(
    session: Session,
    authority: TokenAuthority,
    principal: Principal,
    *,
    client_id: str,
    nonce: str | None,
    clock: Clock,
) -> str:
    """Sign an OpenID Connect ID token for ``client_id`` (OIDC Core section 2)."""
    now = clock.now()
    claims: dict[str, Any] = {
        "iss": authority.config.issuer,
        "aud": client_id,
        "sub": principal.subject,
        "iat": int(now.timestamp()),
        "exp": int((now + authority.config.access_token_lifetime).timestamp()),
        "acr": principal.assurance.acr,
        "amr": list(principal.methods),
        KIND_CLAIM: principal.kind.value,
    }
    if principal.auth_time is not None:
        claims["auth_time"] = int(principal.auth_time.timestamp())
    if nonce:
        claims["nonce"] = nonce
    if principal.fhir_user is not None:
        claims["fhirUser"] = principal.fhir_user
    return sign(session, authority, claims, typ=ID_TOKEN_TYPE, clock=clock)


def sign(
    session: Session, authority: TokenAuthority, claims: dict[str, Any], *, typ: str, clock: Clock
) -> str:
    """Sign ``claims`` as a compact JWT with the current key, naming it in ``kid``."""
    key = authority.keys.signing_key(session, clock)
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": typ}
    return jwt.encode(header, dict(claims), key, algorithms=[ALGORITHM])


def verify_signed(
    session: Session,
    authority: TokenAuthority,
    token: str,
    *,
    typ: str,
    audience: str,
    clock: Clock,
    essential: Sequence[str] = ("sub", "jti", "iat"),
) -> dict[str, Any]:
    """Verify a JWT Carnet signed itself: algorithm, key, type, issuer, audience and times.

    Raises ``InvalidToken`` whatever the cause; the cause is in ``detail``, for logs only.
    """
    header = unverified_header(token)
    if header.get("typ") != typ:
        raise InvalidToken(f"typ {header.get('typ')!r} is not {typ!r}")
    kid = header.get("kid")
    key = authority.keys.verification_key(session, kid, clock) if isinstance(kid, str) else None
    if key is None:
        raise InvalidToken(f"kid {kid!r} is not a published key")
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM]).claims
        options: dict[str, Any] = {name: {"essential": True} for name in essential}
        jwt.JWTClaimsRegistry(
            now=int(clock.now().timestamp()),
            leeway=CLOCK_SKEW_SECONDS,
            iss={"essential": True, "value": authority.config.issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            **options,
        ).validate(claims)
    except (JoseError, ValueError) as error:
        raise InvalidToken(f"refused: {error}") from None
    return claims


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, only if it names Carnet's one accepted algorithm.

    Nothing in it is trusted yet; refusing every other ``alg`` here is what closes the
    ``none`` and HS256-with-the-public-key attacks whatever the key lookup does next.
    """
    header = _peek(token).headers()
    if header.get("alg") != ALGORITHM:
        raise InvalidToken(f"algorithm {header.get('alg')!r} refused")
    return dict(header)


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS, unverified: only to choose how to verify it."""
    signed = _peek(token)
    return dict(signed.headers()), _claims_of(signed)


def _peek(token: str) -> jws.CompactSignature:
    if len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
        raise InvalidToken("not a compact JWS of acceptable size")
    try:
        return jws.extract_compact(token.encode("ascii"))
    except (JoseError, ValueError, UnicodeError) as error:
        raise InvalidToken(f"malformed: {error}") from None


def authenticate(session: Session, authority: TokenAuthority, token: str, *, clock: Clock) -> Actor:
    """The actor a bearer token speaks for: Carnet's own tokens, or a trusted issuer's.

    Raises ``InvalidToken`` if the token is malformed, forged, expired, not yet valid, for
    another audience, from an unknown issuer, or revoked.
    """
    now = clock.now()
    actor = authority.verified.actor(token, now=now) or _verify(session, authority, token, clock)
    revoked = authority.revocations.is_revoked
    if actor.token_id is not None and revoked(session, actor.token_id, now=now):
        raise InvalidToken("revoked")
    return actor


def remembered(authority: TokenAuthority, token: str, *, clock: Clock) -> Actor | None:
    """The actor of a token verified before, when memory alone can say; None otherwise.

    What ``authenticate`` answers without a database: the token is among those this process
    verified and remembers (``verified``), and the revocation list it holds is fresh. Raises
    ``InvalidToken`` when that list names the token. None sends the caller to ``authenticate``.
    """
    now = clock.now()
    actor = authority.verified.actor(token, now=now)
    if actor is None:
        return None
    if actor.token_id is None:
        return actor
    revoked = authority.revocations.known(actor.token_id)
    if revoked is None:
        return None
    if revoked:
        raise InvalidToken("revoked")
    return actor


def _verify(session: Session, authority: TokenAuthority, token: str, clock: Clock) -> Actor:
    """Check a token not verified before; Carnet's own are then remembered until they expire."""
    # The issuer is read before verification only to choose whose keys verify the token.
    header, unverified = peek(token)
    issuer = unverified.get("iss")
    if issuer == authority.config.issuer:
        claims = verify_signed(
            session,
            authority,
            token,
            typ=ACCESS_TOKEN_TYPE,
            audience=authority.config.audience,
            clock=clock,
        )
        actor = actor_from_claims(claims)
        # Remembered no longer than the keys are: a retired or withdrawn key then refuses it.
        expires_at = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
        authority.verified.keep(token, actor, expires_at=min(expires_at, clock.now() + KEY_CACHE))
    elif isinstance(issuer, str) and authority.external.knows(issuer):
        actor = authority.external.authenticate(
            session,
            token,
            header,
            issuer,
            clock=clock,
            leeway=CLOCK_SKEW_SECONDS,
        )
    else:
        raise InvalidToken(f"issuer {issuer!r} is not trusted")
    return actor


def _claims_of(signed: jws.CompactSignature) -> dict[str, Any]:
    try:
        claims = json.loads(signed.payload)
    except (ValueError, TypeError) as error:
        raise InvalidToken(f"payload is not JSON: {error}") from None
    if not isinstance(claims, dict):
        raise InvalidToken("payload is not a JSON object")
    return claims


def actor_from_claims(claims: dict[str, Any]) -> Actor:
    """The ``Actor`` a verified Carnet access token speaks for.

    Raises ``InvalidToken`` if the claims do not describe an actor (a token Carnet would not
    have issued).
    """
    try:
        kind = ActorKind(claims[KIND_CLAIM])
        subject = str(claims["sub"])
        scopes, _others = parse_scopes(str(claims.get("scope", "")))
        organisation = claims.get(ORGANISATION_CLAIM)
        organisation_id = uuid.UUID(organisation) if organisation else None
        fields: dict[str, Any] = {}
        if kind is ActorKind.PATIENT:
            fields = {"person_id": uuid.UUID(subject), "acting_for": uuid.UUID(subject)}
            launched = claims.get(PATIENT_CLAIM)
            if launched:
                # Acting for the person they represent, and for them only (SMART launch
                # context); the policy checks the representation again at every access.
                fields |= {"acting_for": uuid.UUID(launched), "launch_patient": uuid.UUID(launched)}
        elif kind is ActorKind.PROFESSIONAL:
            fields = {
                "professional_id": uuid.UUID(subject),
                "organisation_id": organisation_id,
                "profession": claims.get(PROFESSION_CLAIM),
                "staff_id": _staff_of(claims.get("act")),
            }
        elif kind is ActorKind.FEEDING_SYSTEM:
            fields = {"organisation_id": organisation_id}
    except (KeyError, ValueError, TypeError, MalformedScope) as error:
        raise InvalidToken(f"claims do not describe an actor: {error}") from None
    client_id = claims.get("client_id")
    return Actor(
        kind=kind,
        subject=subject,
        assurance=Assurance.from_acr(claims.get("acr")),
        scopes=scopes,
        client_id=client_id if isinstance(client_id, str) else None,
        token_id=str(claims["jti"]),
        **fields,
    )


def _staff_of(act: Any) -> uuid.UUID | None:
    """The staff member an ``act`` claim names (``{"sub": "Practitioner/<id>"}``), if any."""
    if act is None:
        return None
    prefix, _, staff = str(act["sub"]).partition("/")
    if prefix != "Practitioner":
        raise ValueError("act names no practitioner")
    return uuid.UUID(staff)
