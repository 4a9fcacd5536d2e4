"""The OAuth 2.0 / OpenID Connect token side: discovery, JWKS, token, revoke, userinfo.

What clients and resource servers call directly, without a browser: the server's metadata
(OpenID Connect Discovery 1.0, RFC 8414, SMART App Launch), its public keys (RFC 7517), the
token endpoint (RFC 6749 section 3.2), revocation (RFC 7009) and UserInfo (OIDC Core section
5.3). The browser's side, authorize and the sign-in page, is ``carnet.oauth.authorize``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind, Assurance
from carnet.access.scopes import NON_RESOURCE_SCOPES
from carnet.auth import clients, grants, keys
from carnet.auth.errors import AuthError, InvalidRequest, UnsupportedGrantType
from carnet.auth.models import OAuthClient
from carnet.auth.tokens import TokenAuthority
from carnet.db import unit_of_work
from carnet.directory.service import get_professional
from carnet.oauth.form import Form
from carnet.oauth.sign_in_page import platform_of
from carnet.patients.service import get_patient
from carnet.platform import Platform
from carnet.web.authentication import CurrentActor, authority_of

log = logging.getLogger(__name__)
router = APIRouter(tags=["authentication"])
# Served at the site's root and at the FHIR base (where SMART apps look): beside the ways in,
# not inside the OAuth one under /oauth.
discovery = APIRouter(tags=["authentication"])
# RFC 6749 section 5.1 and OIDC Core section 3.1.3.3: token responses are never cached.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_SCOPES_SUPPORTED = [
    *sorted(NON_RESOURCE_SCOPES),
    "patient/*.rs",
    "patient/*.cruds",
    "user/*.rs",
    "user/*.cruds",
    "system/*.rs",
    "system/*.cruds",
]


# --- discovery -------------------------------------------------------------------------------


@discovery.get("/.well-known/openid-configuration", summary="OpenID Connect discovery")
def openid_configuration(request: Request) -> JSONResponse:
    """The authorization server's metadata (OpenID Connect Discovery 1.0, RFC 8414)."""
    issuer = authority_of(request).config.issuer
    return JSONResponse(
        {
            **_endpoints(issuer),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [keys.ALGORITHM],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
            "token_endpoint_auth_signing_alg_values_supported": list(
                clients.CLIENT_ASSERTION_ALGORITHMS
            ),
            "revocation_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": _SCOPES_SUPPORTED,
            "claims_supported": [
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "acr",
                "amr",
                "fhirUser",
                "name",
                "carnet_kind",
            ],
            "acr_values_supported": [level.acr for level in Assurance],
            "authorization_response_iss_parameter_supported": True,
        },
        headers={"Cache-Control": "public, max-age=3600"},
    )


@discovery.get("/fhir/.well-known/smart-configuration", summary="SMART App Launch configuration")
def smart_configuration(request: Request) -> JSONResponse:
    """What SMART apps need to know (SMART App Launch 2.x, section "Conformance")."""
    issuer = authority_of(request).config.issuer
    return JSONResponse(
        {
            **_endpoints(issuer),
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
            "token_endpoint_auth_signing_alg_values_supported": list(
                clients.CLIENT_ASSERTION_ALGORITHMS
            ),
            "scopes_supported": _SCOPES_SUPPORTED,
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "capabilities": [
                "launch-standalone",
                "client-public",
                "client-confidential-asymmetric",
                "context-standalone-patient",
                "sso-openid-connect",
                "permission-offline",
                "permission-online",
                "permission-patient",
                "permission-user",
                "permission-v1",
                "permission-v2",
            ],
        },
        headers={"Cache-Control": "public, max-age=3600"},
    )


def _endpoints(issuer: str) -> dict[str, str]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/oauth/jwks",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
    }


@router.get("/oauth/jwks", summary="Carnet's public signing keys (JWKS)")
def jwks(request: Request) -> JSONResponse:
    """The current signing key and the retired ones still in their overlap (RFC 7517)."""
    platform = platform_of(request)
    with unit_of_work(platform.sessions) as session:
        # Never an empty set: the first key is created here if no token was signed yet.
        authority_of(request).keys.signing_key(session, platform.clock)
        document = keys.jwks(session, platform.clock)
    return JSONResponse(
        document,
        media_type="application/jwk-set+json",
        headers={"Cache-Control": "public, max-age=300"},
    )


_T = TypeVar("_T")


def _protocol(
    request: Request, action: Callable[[Session, TokenAuthority, Platform], _T]
) -> _T | AuthError:
    platform = platform_of(request)
    authority = authority_of(request)
    with unit_of_work(platform.sessions) as session:
        try:
            return action(session, authority, platform)
        except AuthError as error:
            # Committed, not rolled back: a spent code, a revoked family or a used assertion
            # must stay so even though this request is refused (see carnet.auth.grants).
            refused = error
    # A replayed code or a reused refresh token has just revoked tokens: this worker refuses
    # them from the next request on.
    authority.revocations.mark_stale()
    return refused


def oauth_error(error: AuthError) -> JSONResponse:
    """An RFC 6749 section 5.2 error response: 401 for ``invalid_client``, 400 otherwise."""
    status = 401 if error.error == "invalid_client" else 400
    log.info("token endpoint refused: %s (%s)", error.error, error.message)
    return JSONResponse(
        {"error": error.error, "error_description": error.message},
        status_code=status,
        headers=_NO_STORE,
    )


@router.post("/oauth/token", summary="Token endpoint (RFC 6749 section 3.2)")
def token(request: Request, form: Form) -> JSONResponse:
    """Exchange a code, a refresh token or client credentials for an access token."""

    def exchange(
        session: Session, authority: TokenAuthority, platform: Platform
    ) -> grants.TokenResponse:
        client = _client(session, authority, platform, form)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return grants.redeem_authorization_code(
                session,
                authority,
                client=client,
                code=form.get("code", ""),
                redirect_uri=form.get("redirect_uri"),
                code_verifier=form.get("code_verifier"),
                clock=platform.clock,
            )
        if grant_type == "refresh_token":
            return grants.refresh_access_token(
                session,
                authority,
                client=client,
                refresh_token=form.get("refresh_token", ""),
                scope=form.get("scope"),
                clock=platform.clock,
            )
        if grant_type == "client_credentials":
            return grants.client_credentials(
                session, authority, client=client, scope=form.get("scope"), clock=platform.clock
            )
        if not grant_type:
            raise InvalidRequest("grant_type is required.", field="grant_type")
        raise UnsupportedGrantType(f"The grant type {grant_type!r} is not supported.")

    outcome = _protocol(request, exchange)
    if isinstance(outcome, AuthError):
        return oauth_error(outcome)
    return JSONResponse(outcome.as_json(), headers=_NO_STORE)


@router.post("/oauth/revoke", summary="Token revocation (RFC 7009)")
def revoke(request: Request, form: Form) -> Response:
    """Revoke an access or refresh token; 200 whether or not the token was known."""

    def revoke_it(session: Session, authority: TokenAuthority, platform: Platform) -> None:
        client = _client(session, authority, platform, form)
        if not form.get("token"):
            raise InvalidRequest("token is required.", field="token")
        grants.revoke_token(
            session, authority, client=client, token=form["token"], clock=platform.clock
        )

    outcome = _protocol(request, revoke_it)
    authority_of(request).revocations.mark_stale()
    if isinstance(outcome, AuthError):
        return oauth_error(outcome)
    return Response(status_code=200, headers=_NO_STORE)


def _client(
    session: Session, authority: TokenAuthority, platform: Platform, form: dict[str, str]
) -> OAuthClient:
    return clients.authenticate_client(
        session,
        authority,
        client_id=form.get("client_id"),
        assertion_type=form.get("client_assertion_type"),
        assertion=form.get("client_assertion"),
        clock=platform.clock,
    )


@router.get("/oauth/userinfo", summary="OpenID Connect UserInfo", operation_id="userinfo")
@router.post("/oauth/userinfo", include_in_schema=False, operation_id="userinfo_post")
def userinfo(request: Request, actor: CurrentActor) -> JSONResponse:
    """Who the access token speaks for: ``sub``, ``fhirUser``, ``name``, ``carnet_kind``."""
    body: dict[str, Any] = {"sub": actor.subject, "carnet_kind": actor.kind.value}
    platform = platform_of(request)
    with unit_of_work(platform.sessions) as session:
        if actor.kind is ActorKind.PATIENT and actor.person_id is not None:
            patient = get_patient(session, actor.person_id)
            body |= {
                "fhirUser": f"Patient/{patient.id}",
                "name": f"{patient.given} {patient.family}",
            }
        elif actor.kind is ActorKind.PROFESSIONAL and actor.professional_id is not None:
            professional = get_professional(session, actor.professional_id)
            body |= {
                "fhirUser": f"Practitioner/{professional.id}",
                "name": f"{professional.given} {professional.family}",
            }
        elif actor.kind in (ActorKind.OPERATOR, ActorKind.SECURITY_OFFICER):
            # An agency account has no directory entry: its name is who it is.
            body["name"] = actor.subject.partition(":")[2] or actor.subject
        elif actor.client_id is not None:
            client = session.get(OAuthClient, actor.client_id)
            body["name"] = client.name if client else actor.client_id
        else:
            body["name"] = actor.subject
    return JSONResponse(body, headers=_NO_STORE)
