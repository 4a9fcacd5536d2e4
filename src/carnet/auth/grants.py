"""Token grants: the scopes granted, authorization codes, refresh rotation, client credentials,
revocation and the purge of what expired, and tokens minted for scripts.

Some refusals must still be *recorded*: a replayed code or refresh token revokes what it
produced, so those functions write first and then raise; the way in commits such an
``AuthError`` rather than rolling back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind, Assurance
from carnet.access.guard import represents
from carnet.access.scopes import InvalidScope as MalformedScope
from carnet.access.scopes import Scope, parse_scopes
from carnet.auth import staff
from carnet.auth.accounts import OPERATOR_KINDS, b64url
from carnet.auth.errors import (
    DemoIdentityProviderDisabled,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidToken,
    StaffNotAllowed,
    UnauthorizedClient,
)
from carnet.auth.models import (
    AuthorizationCode,
    ClientKind,
    OAuthClient,
    OperatorAccount,
    RefreshToken,
    RevokedToken,
)
from carnet.auth.sign_in import principal_for, principal_for_spec
from carnet.auth.tokens import (
    ACCESS_TOKEN_TYPE,
    CLOCK_SKEW_SECONDS,
    IssuedToken,
    Principal,
    TokenAuthority,
    issue_access_token,
    issue_id_token,
    verify_signed,
)
from carnet.clock import Clock

CODE_LIFETIME = dt.timedelta(seconds=60)
# RFC 7636 section 4.1: 43 to 128 unreserved characters.
_CODE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CODE_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
_DEFAULT_SCOPES = {
    ActorKind.PATIENT: "openid fhirUser launch/patient patient/*.cruds",
    ActorKind.PROFESSIONAL: "openid fhirUser user/*.cruds",
    ActorKind.FEEDING_SYSTEM: "system/*.cruds",
    ActorKind.OPERATOR: "system/*.rs",
    ActorKind.SECURITY_OFFICER: "system/*.rs",
}


def token_digest(token: str) -> str:
    """The SHA-256 hex digest under which a code, refresh token or used assertion is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


# --- scopes ----------------------------------------------------------------------------------


def grant_scopes(requested: str | None, allowed: str) -> str:
    """What a token may carry: the requested scopes narrowed to what the client is allowed.

    ``patient/Observation.rs`` requested of a client allowed ``patient/*.r`` grants
    ``patient/Observation.r``. No request means everything allowed. Raises ``InvalidScope`` for
    a malformed or unknown scope, or when nothing requested is allowed (RFC 6749 section 3.3).
    """
    allowed_resources, allowed_others = _parse(allowed)
    if requested is None or not requested.strip():
        return normalise_scopes(allowed)
    resources, others = _parse(requested)
    granted: dict[tuple[str, str], set[str]] = {}
    for asked in resources:
        for offered in allowed_resources:
            compatible = asked.context == offered.context and (
                offered.resource in ("*", asked.resource) or asked.resource == "*"
            )
            if not compatible:
                continue
            resource = asked.resource if offered.resource == "*" else offered.resource
            letters = asked.permissions & offered.permissions
            if letters:
                granted.setdefault((asked.context, resource), set()).update(letters)
    kept_others = others & allowed_others
    if not granted and not kept_others:
        raise InvalidScope("None of the requested scopes is allowed for this client.")
    scopes = [Scope(context, resource, frozenset(p)) for (context, resource), p in granted.items()]
    return _format(kept_others, scopes)


def _parse(text: str) -> tuple[frozenset[Scope], frozenset[str]]:
    try:
        return parse_scopes(text)
    except MalformedScope as error:
        raise InvalidScope(str(error)) from None


def normalise_scopes(text: str) -> str:
    """``text`` as a canonical scope string (sorted); ``InvalidScope`` if malformed."""
    resources, others = _parse(text)
    return _format(others, resources)


def _format(others: Iterable[str], resources: Iterable[Scope]) -> str:
    return " ".join([*sorted(others), *sorted(str(scope) for scope in resources)])


# --- codes and tokens ------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenResponse:
    """A successful token response (RFC 6749 section 5.1, SMART App Launch)."""

    access_token: IssuedToken
    expires_in: int
    refresh_token: str | None = None
    id_token: str | None = None
    patient: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The JSON body, without absent members."""
        body: dict[str, Any] = {
            "access_token": self.access_token.token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.access_token.scope,
            "refresh_token": self.refresh_token,
            "id_token": self.id_token,
            "patient": self.patient,
        }
        return {name: value for name, value in body.items() if value is not None}


def check_code_challenge(code_challenge: str | None, method: str | None) -> str:
    """A PKCE challenge Carnet accepts: S256 only (RFC 7636 section 4.2; ``plain`` refused)."""
    if method != "S256":
        raise InvalidRequest("code_challenge_method must be S256.", field="code_challenge_method")
    if not code_challenge or not _CODE_CHALLENGE.match(code_challenge):
        raise InvalidRequest("code_challenge must be a base64url SHA-256.", field="code_challenge")
    return code_challenge


def check_redirect_uri(client: OAuthClient, redirect_uri: str | None) -> str:
    """The redirect URI if it is exactly one the client registered; ``InvalidRequest`` else."""
    if client.kind is not ClientKind.PUBLIC:
        raise UnauthorizedClient("This client may not use the authorization code grant.")
    if redirect_uri is None or redirect_uri not in client.redirect_uris:
        raise InvalidRequest(
            "redirect_uri does not match the client's registration.", field="redirect_uri"
        )
    return redirect_uri


def create_authorization_code(
    session: Session,
    *,
    client: OAuthClient,
    redirect_uri: str,
    scope: str,
    code_challenge: str,
    nonce: str | None,
    principal: Principal,
    clock: Clock,
    launch_patient: uuid.UUID | None = None,
) -> str:
    """A single-use code for ``principal``, valid 60 s, bound to client, URI and challenge.

    ``launch_patient`` is the SMART launch context a representative chose (someone they
    represent, checked by the caller); None for the person themself.
    """
    code = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(
        AuthorizationCode(
            code_hash=token_digest(code),
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            code_challenge=code_challenge,
            nonce=nonce,
            expires_at=now + CODE_LIFETIME,
            launch_patient_id=launch_patient,
            **_subject_columns(session, principal, now),
        )
    )
    session.flush()
    return code


def redeem_authorization_code(
    session: Session,
    authority: TokenAuthority,
    *,
    client: OAuthClient,
    code: str,
    redirect_uri: str | None,
    code_verifier: str | None,
    clock: Clock,
) -> TokenResponse:
    """Exchange a code for tokens (RFC 6749 section 4.1.3, RFC 7636 section 4.6).

    The code is spent on the first attempt, right or wrong. A code presented twice revokes the
    tokens it produced (RFC 6749 section 4.1.2), recorded before ``InvalidGrant`` is raised.
    """
    now = clock.now()
    row = session.get(AuthorizationCode, token_digest(code or ""))
    refused = InvalidGrant("The authorization code is invalid, expired or already used.")
    if row is None or row.client_id != client.client_id:
        raise refused
    if row.used_at is not None:
        _revoke_issued(session, row, clock)
        raise refused
    if not _claim(session, AuthorizationCode, AuthorizationCode.code_hash == row.code_hash, now):
        raise refused
    if row.expires_at <= now:
        raise refused
    if redirect_uri != row.redirect_uri:
        raise InvalidGrant("redirect_uri differs from the one of the authorization request.")
    if not code_verifier or not _CODE_VERIFIER.match(code_verifier):
        raise InvalidGrant("code_verifier is missing or malformed.")
    challenge = b64url(hashlib.sha256(code_verifier.encode("ascii")).digest())
    if not hmac.compare_digest(challenge, row.code_challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge.")
    family_id = uuid.uuid4()
    row.family_id = family_id
    response = _respond(
        session,
        authority,
        client,
        _principal_of(session, row),
        scope=row.scope,
        nonce=row.nonce,
        family=(family_id, now + authority.config.refresh_token_lifetime),
        clock=clock,
        launch_patient=_still_represented(session, row, now),
    )
    row.access_token_jti = response.access_token.jti
    row.access_token_expires_at = response.access_token.expires_at
    return response


def refresh_access_token(
    session: Session,
    authority: TokenAuthority,
    *,
    client: OAuthClient,
    refresh_token: str,
    scope: str | None,
    clock: Clock,
) -> TokenResponse:
    """Rotate a refresh token: a new access and refresh token, the old one spent.

    Presenting a spent refresh token again means it was stolen (or the client is confused):
    the whole family — every refresh token descended from the same sign-in, and the access
    tokens they produced — is revoked (OAuth 2.0 Security BCP, section 4.14.2). The family
    keeps the expiry of its first token, so rotation never extends a sign-in.
    """
    now = clock.now()
    row = session.get(RefreshToken, token_digest(refresh_token or ""))
    refused = InvalidGrant("The refresh token is invalid, expired or revoked.")
    if row is None or row.client_id != client.client_id or row.revoked_at is not None:
        raise refused
    if row.used_at is not None or not _claim(
        session,
        RefreshToken,
        (RefreshToken.token_hash == row.token_hash) & RefreshToken.revoked_at.is_(None),
        now,
    ):
        revoke_family(session, row.family_id, clock=clock)
        raise refused
    if row.expires_at <= now:
        raise refused
    granted = grant_scopes(scope, row.scope) if scope else row.scope
    return _respond(
        session,
        authority,
        client,
        _principal_of(session, row),
        scope=granted,
        nonce=None,
        family=(row.family_id, row.expires_at),
        clock=clock,
        launch_patient=_still_represented(session, row, now),
    )


def _still_represented(
    session: Session, row: AuthorizationCode | RefreshToken, now: dt.datetime
) -> uuid.UUID | None:
    """The row's launch patient, if its person still represents them; ``InvalidGrant`` if not.

    A representation ends (a child comes of age, a guardianship is lifted): the app's tokens
    for that person end with it, whatever their own lifetime.
    """
    launch = row.launch_patient_id
    if launch is None or launch == row.subject_id:
        return launch
    if row.subject_kind is not ActorKind.PATIENT or not represents(
        session, row.subject_id, launch, now=now
    ):
        raise InvalidGrant("The person no longer represents the patient this app was launched for.")
    return launch


def client_credentials(
    session: Session,
    authority: TokenAuthority,
    *,
    client: OAuthClient,
    scope: str | None,
    clock: Clock,
) -> TokenResponse:
    """An access token for a feeding system (RFC 6749 section 4.4; no refresh token)."""
    if client.kind is not ClientKind.BACKEND:
        raise UnauthorizedClient("Only backend clients may use client_credentials.")
    principal = Principal(
        kind=ActorKind.FEEDING_SYSTEM,
        subject=client.client_id,
        # A key held by the system itself, proven with each assertion.
        assurance=Assurance.HIGH,
        organisation_id=client.organisation_id,
    )
    return _respond(
        session,
        authority,
        client,
        principal,
        scope=grant_scopes(scope, client.allowed_scopes),
        nonce=None,
        family=None,
        clock=clock,
    )


def _respond(
    session: Session,
    authority: TokenAuthority,
    client: OAuthClient,
    principal: Principal,
    *,
    scope: str,
    nonce: str | None,
    family: tuple[uuid.UUID, dt.datetime] | None,
    clock: Clock,
    launch_patient: uuid.UUID | None = None,
) -> TokenResponse:
    now = clock.now()
    access = issue_access_token(
        session,
        authority,
        principal,
        scope=scope,
        client_id=client.client_id,
        clock=clock,
        launch_patient=launch_patient,
    )
    words = scope.split()
    refresh = None
    # SMART App Launch: refresh tokens for offline_access or online_access only.
    if family is not None and ({"offline_access", "online_access"} & set(words)):
        refresh = secrets.token_urlsafe(32)
        family_id, expires_at = family
        session.add(
            RefreshToken(
                token_hash=token_digest(refresh),
                family_id=family_id,
                client_id=client.client_id,
                scope=scope,
                issued_at=now,
                access_token_jti=access.jti,
                access_token_expires_at=access.expires_at,
                expires_at=expires_at,
                launch_patient_id=launch_patient,
                **_subject_columns(session, principal, now),
            )
        )
        session.flush()
    id_token = None
    if "openid" in words and principal.kind is not ActorKind.FEEDING_SYSTEM:
        id_token = issue_id_token(
            session, authority, principal, client_id=client.client_id, nonce=nonce, clock=clock
        )
    return TokenResponse(
        access_token=access,
        expires_in=int((access.expires_at - now).total_seconds()),
        refresh_token=refresh,
        id_token=id_token,
        # SMART launch context: the patient whose record the app works on.
        patient=str(launch_patient or principal.person_id)
        if principal.kind is ActorKind.PATIENT
        else None,
    )


def _subject_columns(session: Session, principal: Principal, now: dt.datetime) -> dict[str, Any]:
    if principal.kind in OPERATOR_KINDS:
        # An operator's token names them (``operator:<name>``); the row keeps their account id.
        name = principal.subject.partition(":")[2]
        subject_id = session.scalar(select(OperatorAccount.id).where(OperatorAccount.name == name))
        if subject_id is None:
            raise InvalidGrant("The operator has no account.")
    elif principal.kind is ActorKind.PATIENT:
        subject_id = principal.person_id
    else:
        subject_id = principal.professional_id
    return {
        "subject_kind": principal.kind,
        "subject_id": subject_id,
        "assurance": int(principal.assurance),
        "amr": " ".join(principal.methods),
        "auth_time": principal.auth_time or now,
        "staff_id": principal.staff_id,
    }


def _principal_of(session: Session, row: AuthorizationCode | RefreshToken) -> Principal:
    principal = principal_for(
        session,
        row.subject_kind,
        row.subject_id,
        assurance=Assurance(row.assurance),
        methods=row.amr.split(),
        auth_time=row.auth_time,
    )
    if row.staff_id is None:
        return principal
    # A revoked allowance, or a staff member who left, ends at the next refresh.
    try:
        staff.check_allowed(session, row.staff_id, row.subject_id)
    except StaffNotAllowed as refused:
        raise InvalidGrant(refused.message) from None
    return dataclasses.replace(principal, staff_id=row.staff_id)


def _claim(
    session: Session,
    model: type[AuthorizationCode] | type[RefreshToken],
    condition: Any,
    now: dt.datetime,
) -> bool:
    # A conditional update, so that two concurrent requests cannot both spend the same code
    # or refresh token: exactly one sees its row change.
    result = session.execute(
        update(model).where(condition, model.used_at.is_(None)).values(used_at=now),
        execution_options={"synchronize_session": "fetch"},
    )
    return bool(getattr(result, "rowcount", 0) == 1)


# --- revocation ------------------------------------------------------------------------------


def revoke_token(
    session: Session,
    authority: TokenAuthority,
    *,
    client: OAuthClient,
    token: str,
    clock: Clock,
) -> None:
    """Revoke a refresh token (and its family) or an access token of ``client`` (RFC 7009).

    Unknown tokens, and tokens of other clients, are ignored: the answer is the same either
    way (RFC 7009 section 2.2), so it reveals nothing.
    """
    row = session.get(RefreshToken, token_digest(token))
    if row is not None:
        if row.client_id == client.client_id:
            revoke_family(session, row.family_id, clock=clock)
        return
    try:
        claims = verify_signed(
            session,
            authority,
            token,
            typ=ACCESS_TOKEN_TYPE,
            audience=authority.config.audience,
            clock=clock,
            essential=("jti",),
        )
    except InvalidToken:
        return
    if claims.get("client_id") == client.client_id:
        revoke_access_token(
            session,
            jti=str(claims["jti"]),
            expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
            clock=clock,
        )


def revoke_access_token(
    session: Session, *, jti: str, expires_at: dt.datetime, clock: Clock
) -> None:
    """Put an access token on the revocation list until it would have expired anyway."""
    if session.get(RevokedToken, jti) is None:
        session.add(RevokedToken(jti=jti, expires_at=expires_at, revoked_at=clock.now()))
        session.flush()


def revoke_family(session: Session, family_id: uuid.UUID, *, clock: Clock) -> None:
    """Revoke every refresh token of a family and the access tokens they produced."""
    now = clock.now()
    for row in session.scalars(select(RefreshToken).where(RefreshToken.family_id == family_id)):
        if row.revoked_at is None:
            row.revoked_at = now
        revoke_access_of(session, row, clock)
    session.flush()


def _revoke_issued(session: Session, code: AuthorizationCode, clock: Clock) -> None:
    revoke_access_of(session, code, clock)
    if code.family_id is not None:
        revoke_family(session, code.family_id, clock=clock)


def revoke_access_of(session: Session, row: AuthorizationCode | RefreshToken, clock: Clock) -> None:
    """Revoke the access token a code or refresh token produced, unless it has expired already."""
    if (
        row.access_token_jti is not None
        and row.access_token_expires_at is not None
        and row.access_token_expires_at > clock.now()
    ):
        revoke_access_token(
            session, jti=row.access_token_jti, expires_at=row.access_token_expires_at, clock=clock
        )


def purge_expired(session: Session, *, clock: Clock) -> int:
    """Delete revocations, codes and refresh tokens that expired; returns the rows deleted.

    Spent codes are kept a day longer, so that a late replay still revokes what they produced.
    """
    now = clock.now() - dt.timedelta(seconds=CLOCK_SKEW_SECONDS)
    retention: list[tuple[Any, dt.datetime]] = [
        (RevokedToken, now),
        (RefreshToken, now),
        (AuthorizationCode, now - dt.timedelta(days=1)),
    ]
    deleted = 0
    for model, cutoff in retention:
        result = session.execute(delete(model).where(model.expires_at < cutoff))
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted


# --- tokens minted for scripts (carnet token) ------------------------------------------------


def mint_token(
    session: Session,
    authority: TokenAuthority,
    *,
    as_: str,
    assurance: Assurance,
    scope: str | None,
    lifetime: dt.timedelta | None,
    clock: Clock,
) -> IssuedToken:
    """An access token signed directly with the server's key, for scripts and tests.

    ``as_`` is ``patient:<national identifier>``, ``professional:<identifier>``,
    ``system:<organisation identifier>``, ``operator:<name>`` or ``security-officer:<name>``.
    Only where the demo identity provider is enabled (``DemoIdentityProviderDisabled``).
    """
    if not authority.config.demo_idp:
        raise DemoIdentityProviderDisabled()
    principal, client_id = principal_for_spec(session, as_, assurance=assurance, clock=clock)
    granted = normalise_scopes(scope if scope is not None else _DEFAULT_SCOPES[principal.kind])
    return issue_access_token(
        session,
        authority,
        principal,
        scope=granted,
        client_id=client_id,
        clock=clock,
        lifetime=lifetime,
    )
