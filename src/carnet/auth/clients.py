"""OAuth clients: registering them, Carnet's own apps, and authenticating them at the endpoints.

A public client (portal, mobile or SMART app) only names itself; a backend client (a feeding
system) proves itself with a signed assertion (``private_key_jwt``), which is spent on first use
and stays spent even when the request is refused: the way in commits that ``InvalidClient``.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carnet.auth.accounts import DuplicateAccount
from carnet.auth.errors import InvalidClient, InvalidRequest, InvalidToken, UnknownSubject
from carnet.auth.grants import normalise_scopes, token_digest
from carnet.auth.models import ClientKind, OAuthClient, RevokedToken
from carnet.auth.revocations import ASSERTION_PREFIX
from carnet.auth.tokens import CLOCK_SKEW_SECONDS, TokenAuthority, peek
from carnet.clock import Clock
from carnet.directory.models import Organisation

# SMART Backend Services: a client assertion expires no more than five minutes after now.
MAX_ASSERTION_LIFETIME = dt.timedelta(minutes=5)
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# SMART Backend Services requires RS384 and ES384; the rest are common and sound.
CLIENT_ASSERTION_ALGORITHMS = ("ES256", "ES384", "RS256", "RS384", "PS256", "PS384")

_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")


# --- clients ---------------------------------------------------------------------------------


def register_public_client(
    session: Session,
    *,
    name: str,
    redirect_uris: Sequence[str],
    allowed_scopes: str,
    clock: Clock,
    client_id: str | None = None,
) -> OAuthClient:
    """Register a portal, mobile or SMART app: authorization code with PKCE, no secret.

    Redirect URIs are compared exactly; each must be https, a loopback http URL (RFC 8252
    section 7.3) or a private-use scheme (RFC 8252 section 7.1), without a fragment.
    """
    if not redirect_uris:
        raise InvalidRequest("An app needs at least one redirect URI.", field="redirect_uri")
    for uri in redirect_uris:
        _check_redirect_uri(uri)
    return _add_client(
        session,
        client_id=client_id,
        name=name,
        kind=ClientKind.PUBLIC,
        redirect_uris=list(redirect_uris),
        allowed_scopes=allowed_scopes,
        clock=clock,
    )


def ensure_first_party_client(
    session: Session,
    *,
    client_id: str,
    name: str,
    redirect_uri: str,
    allowed_scopes: str,
    clock: Clock,
) -> OAuthClient:
    """Register (or bring up to date) one of Carnet's own apps, such as the portal.

    Its redirect URI is Carnet's own public URL, whatever its scheme: Carnet trusts itself. The
    row follows the settings, so a changed public URL takes effect at the next sign-in.
    """
    client = session.get(OAuthClient, client_id)
    scopes = normalise_scopes(allowed_scopes)
    if client is None:
        return _add_client(
            session,
            client_id=client_id,
            name=name,
            kind=ClientKind.PUBLIC,
            redirect_uris=[redirect_uri],
            allowed_scopes=scopes,
            clock=clock,
            first_party=True,
        )
    if (
        client.redirect_uris != [redirect_uri]
        or client.allowed_scopes != scopes
        or not client.first_party
    ):
        client.redirect_uris = [redirect_uri]
        client.allowed_scopes = scopes
        client.active = True
        # Carnet's own app: it skips the consent screen (see carnet.oauth.consent).
        client.first_party = True
        session.flush()
    return client


def register_backend_client(
    session: Session,
    *,
    name: str,
    organisation_identifier: str,
    allowed_scopes: str,
    clock: Clock,
    jwks: dict[str, Any] | None = None,
    jwks_url: str | None = None,
    client_id: str | None = None,
) -> OAuthClient:
    """Register a feeding system of an organisation, authenticating with ``private_key_jwt``.

    Its public keys are given inline (``jwks``) or published at ``jwks_url``. Raises
    ``UnknownSubject`` for an unknown organisation, ``InvalidRequest`` for unusable keys.
    """
    organisation = session.scalar(
        select(Organisation)
        .where(Organisation.identifier_value == organisation_identifier.strip().upper())
        .limit(1)
    )
    if organisation is None:
        raise UnknownSubject(f"No organisation has the identifier {organisation_identifier!r}.")
    if (jwks is None) == (jwks_url is None):
        raise InvalidRequest("Give the system's public keys as a JWKS or a JWKS URL.", field="jwks")
    if jwks is not None:
        _check_public_jwks(jwks)
    if jwks_url is not None and not jwks_url.startswith(("https://", "http://")):
        raise InvalidRequest("The JWKS URL must be http(s).", field="jwks_url")
    return _add_client(
        session,
        client_id=client_id,
        name=name,
        kind=ClientKind.BACKEND,
        redirect_uris=[],
        allowed_scopes=allowed_scopes,
        clock=clock,
        organisation_id=organisation.id,
        jwks=jwks,
        jwks_url=jwks_url,
    )


def _add_client(
    session: Session, *, client_id: str | None, allowed_scopes: str, clock: Clock, **fields: Any
) -> OAuthClient:
    client_id = client_id or secrets.token_hex(16)
    if not _CLIENT_ID.match(client_id):
        raise InvalidRequest(
            "A client id is 3 to 64 letters, digits, dots, dashes or underscores.",
            field="client_id",
        )
    if session.get(OAuthClient, client_id) is not None:
        raise DuplicateAccount(f"The client id {client_id!r} is taken.", field="client_id")
    if not fields["name"].strip():
        raise InvalidRequest("The client needs a name.", field="name")
    client = OAuthClient(
        client_id=client_id,
        allowed_scopes=normalise_scopes(allowed_scopes),
        active=True,
        created_at=clock.now(),
        **fields,
    )
    session.add(client)
    session.flush()
    return client


def _check_redirect_uri(uri: str) -> None:
    parts = urlsplit(uri)
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    private_use = parts.scheme not in ("http", "https", "") and "." in parts.scheme
    https = parts.scheme == "https" and bool(parts.netloc)
    if parts.fragment or not (https or loopback or private_use):
        raise InvalidRequest(
            f"{uri!r} is not an acceptable redirect URI: use https, a loopback http URL or a "
            "private-use scheme such as com.example.app:/callback, without a fragment.",
            field="redirect_uri",
        )


def _check_public_jwks(jwks: dict[str, Any]) -> None:
    try:
        key_set = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, KeyError, TypeError) as error:
        raise InvalidRequest(f"The JWKS is not usable: {error}", field="jwks") from None
    for key in key_set:
        if key.key_type == "oct" or key.is_private:
            raise InvalidRequest(
                "The JWKS must hold public asymmetric keys only (never a private or shared key).",
                field="jwks",
            )


def get_client(session: Session, client_id: str) -> OAuthClient:
    """The active client ``client_id``; ``InvalidClient`` otherwise."""
    client = session.get(OAuthClient, client_id) if client_id else None
    if client is None or not client.active:
        raise InvalidClient()
    return client


def list_clients(session: Session) -> list[OAuthClient]:
    """Every registered client, by id."""
    return list(session.scalars(select(OAuthClient).order_by(OAuthClient.client_id)))


def authenticate_client(
    session: Session,
    authority: TokenAuthority,
    *,
    client_id: str | None,
    assertion_type: str | None,
    assertion: str | None,
    clock: Clock,
) -> OAuthClient:
    """Identify the client calling the token or revocation endpoint.

    A backend client proves itself with a signed assertion (``private_key_jwt``, RFC 7523
    section 2.2): signed by one of its registered keys, ``iss`` and ``sub`` its client id, ``aud``
    the token endpoint, expiring within five minutes, its ``jti`` never seen before. A public
    client only names itself. Raises ``InvalidClient``.
    """
    if assertion_type is not None or assertion is not None:
        if assertion_type != CLIENT_ASSERTION_TYPE or not assertion:
            raise InvalidClient(f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}.")
        return _verify_assertion(session, authority, assertion, client_id, clock)
    client = get_client(session, client_id or "")
    if client.kind is not ClientKind.PUBLIC:
        raise InvalidClient("This client must authenticate with private_key_jwt.")
    return client


def _verify_assertion(
    session: Session,
    authority: TokenAuthority,
    assertion: str,
    client_id: str | None,
    clock: Clock,
) -> OAuthClient:
    try:
        header, unverified = peek(assertion)
    except InvalidToken:
        raise InvalidClient("The client assertion is not a JWT.") from None
    subject = unverified.get("sub")
    if not isinstance(subject, str) or (client_id and client_id != subject):
        raise InvalidClient()
    client = get_client(session, subject)
    algorithm = header.get("alg")
    if client.kind is not ClientKind.BACKEND or algorithm not in CLIENT_ASSERTION_ALGORITHMS:
        raise InvalidClient()
    key = _client_key(authority, client, header.get("kid"), clock)
    now = clock.now()
    try:
        claims = jwt.decode(assertion, key, algorithms=[str(algorithm)]).claims
        jwt.JWTClaimsRegistry(
            now=int(now.timestamp()),
            leeway=CLOCK_SKEW_SECONDS,
            iss={"essential": True, "value": client.client_id},
            sub={"essential": True, "value": client.client_id},
            aud={"essential": True, "values": [authority.config.token_endpoint]},
            exp={"essential": True},
            jti={"essential": True},
        ).validate(claims)
    except (JoseError, ValueError):
        raise InvalidClient() from None
    expires_at = dt.datetime.fromtimestamp(claims["exp"], dt.UTC)
    if expires_at > now + MAX_ASSERTION_LIFETIME + dt.timedelta(seconds=CLOCK_SKEW_SECONDS):
        raise InvalidClient("The client assertion must expire within five minutes.")
    _consume_assertion(session, client.client_id, str(claims["jti"]), expires_at, now)
    return client


def _client_key(authority: TokenAuthority, client: OAuthClient, kid: object, clock: Clock) -> Key:
    name = kid if isinstance(kid, str) else None
    key: Key | None
    if client.jwks is not None:
        try:
            key = KeySet.import_key_set(client.jwks).get_by_kid(name)  # type: ignore[arg-type]
        except (JoseError, ValueError):
            key = None
    else:
        key = authority.client_jwks(client.jwks_url or "").key(name, clock.now())
    if key is None:
        raise InvalidClient()
    return key


def _consume_assertion(
    session: Session, client_id: str, jti: str, expires_at: dt.datetime, now: dt.datetime
) -> None:
    # RFC 7523 section 3: an assertion is used once. Used ones are kept beside revoked tokens
    # until they expire, under a digest so that a client cannot collide with a token id.
    key = ASSERTION_PREFIX + token_digest(f"{client_id}\n{jti}")
    if session.get(RevokedToken, key) is not None:
        raise InvalidClient("The client assertion was already used.")
    try:
        with session.begin_nested():
            session.add(RevokedToken(jti=key, expires_at=expires_at, revoked_at=now))
    except IntegrityError:
        raise InvalidClient("The client assertion was already used.") from None
