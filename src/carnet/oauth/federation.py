"""Federated sign-in in the browser: the sign-in page's provider buttons and their callback.

The button (``GET /oauth/authorize/federated/{name}?ticket=…``) checks the sign-in ticket with
its browser cookie, as the sign-in form does, then sends the browser to the provider with a
fresh ``state``, ``nonce`` and PKCE verifier. These, with the validated authorization request,
travel in a cookie Carnet signs (no server-side state), ``SameSite=Lax`` because the provider's
redirect back is a cross-site navigation, which a ``Strict`` cookie would not follow.

The callback (``GET /oauth/federation/callback``) checks ``state`` against that cookie, lets
``carnet.auth.federation`` exchange the code and validate the ID token, matches the person and
ends in ``authorize.complete_sign_in`` like every other sign-in. Every refusal is shown in the
person's language and audited (``SIGN_IN``, denied, with the reason).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction, AuditOutcome
from carnet.audit.service import Agent
from carnet.auth import clients
from carnet.auth.errors import AuthError, FederationRefused, InvalidToken
from carnet.auth.federation import FederatedProvider, Federation, PendingSignIn, principal_for
from carnet.auth.tokens import LOGIN_TICKET_SECONDS, Principal, TokenAuthority, sign, verify_signed
from carnet.db import unit_of_work
from carnet.oauth import authorize
from carnet.oauth.sign_in_page import (
    NO_FORMS,
    platform_of,
    read_sign_in_ticket,
    render,
    visitor_language,
)
from carnet.platform import Platform
from carnet.web.authentication import authority_of

log = logging.getLogger(__name__)
router = APIRouter(tags=["authentication"])

CALLBACK_PATH = "/oauth/federation/callback"
_COOKIE = "carnet_federation"
PENDING_TYPE = "carnet-federation+jwt"


def federation_of(request: Request) -> Federation:
    """The configured providers (built with the application, see ``carnet.app``)."""
    federation: Federation | None = getattr(request.app.state, "federation", None)
    if federation is None:
        platform: Platform = request.app.state.platform
        federation = request.app.state.federation = Federation(platform.settings.external_issuers)
    return federation


@router.get("/oauth/authorize/federated/{name}", include_in_schema=False)
def start(request: Request, name: str) -> Response:
    """Send the browser to provider ``name`` for the pending sign-in named by ``ticket``."""
    platform = platform_of(request)
    authority = authority_of(request)
    language = visitor_language(request)
    with unit_of_work(platform.sessions) as session:
        ticket = read_sign_in_ticket(
            session, authority, platform, request.query_params.get("ticket", ""), request
        )
        if ticket is None:
            return _refusal(language, "ticket-refused", status_code=400)
        language = visitor_language(request, ticket.get("ui_locales"))
        try:
            provider = federation_of(request).provider(name)
            pending = PendingSignIn.fresh(provider.name)
            location = provider.authorization_url(
                pending,
                redirect_uri=_callback_uri(authority),
                now=platform.clock.now(),
                ui_locales=ticket.get("ui_locales"),
            )
        except FederationRefused as refused:
            log.info("federated sign-in not started: %s", refused.detail)
            _audit_refusal(session, platform, request, None, refused)
            return _refusal(language, refused.reason, status_code=_status(refused))
        cookie = _seal(session, authority, platform, pending, ticket)
    response = RedirectResponse(location, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        _COOKIE,
        cookie,
        max_age=LOGIN_TICKET_SECONDS,
        path=CALLBACK_PATH,
        httponly=True,
        # Lax, not Strict: the provider's redirect back is a cross-site top-level navigation.
        samesite="lax",
        secure=authority.config.issuer.startswith("https://"),
    )
    return response


@router.get(CALLBACK_PATH, include_in_schema=False)
def callback(request: Request) -> Response:
    """The provider's answer (OpenID Connect Core section 3.1.2.5/3.1.2.6): sign in or refuse."""
    platform = platform_of(request)
    authority = authority_of(request)
    query = request.query_params
    language = visitor_language(request)
    with unit_of_work(platform.sessions) as session:
        sealed = _unseal(session, authority, platform, request.cookies.get(_COOKIE, ""))
        provider: FederatedProvider | None = None
        try:
            if sealed is None:
                raise FederationRefused("state-mismatch", "no valid pending sign-in cookie")
            pending, ticket = sealed
            language = visitor_language(request, ticket.get("ui_locales"))
            provider = federation_of(request).provider(pending.provider)
            # CSRF and mix-up: the answer must be to this browser's request (RFC 6749 section
            # 10.12), from the provider it was sent to (RFC 9207).
            if not hmac.compare_digest(query.get("state", "").encode(), pending.state.encode()):
                raise FederationRefused("state-mismatch", "state is not this browser's")
            if "iss" in query and query["iss"] != provider.config.issuer:
                raise FederationRefused("wrong-issuer", f"iss parameter {query['iss']!r}")
            if "error" in query or not query.get("code"):
                raise FederationRefused("provider-error", f"error {query.get('error')!r}")
            now = platform.clock.now()
            claims = provider.redeem(
                query["code"], pending, redirect_uri=_callback_uri(authority), now=now
            )
            principal = principal_for(session, provider, claims, now=now)
            client = clients.get_client(session, ticket["client_id"])
        except FederationRefused as refused:
            log.info("federated sign-in refused (%s): %s", refused.reason, refused.detail)
            # Recorded with this transaction, which commits: nothing else was written.
            _audit_refusal(session, platform, request, provider, refused)
            return _forget(_refusal(language, refused.reason, status_code=_status(refused)))
        except AuthError:  # the client was removed while the person was at the provider
            return _forget(_refusal(language, "ticket-refused", status_code=400))
        _audit_sign_in(session, platform, request, provider, principal=principal, claims=claims)
        response = authorize.complete_sign_in(
            request,
            session,
            platform=platform,
            authority=authority,
            client=client,
            ticket=ticket,
            principal=principal,
        )
    return _forget(response)


# --- the pending sign-in, sealed in a cookie -------------------------------------------------


def _seal(
    session: Session,
    authority: TokenAuthority,
    platform: Platform,
    pending: PendingSignIn,
    ticket: dict[str, Any],
) -> str:
    now = int(platform.clock.now().timestamp())
    # The validated authorization request goes along, not the ticket: the ticket is checked
    # against a Strict cookie that the provider's cross-site redirect back does not bring. It
    # keeps its browser fingerprint (the consent screen checks it) and expires with the ticket.
    request = {
        name: value
        for name, value in ticket.items()
        if name not in ("iss", "aud", "jti", "iat", "exp")
    }
    claims = {
        "iss": authority.config.issuer,
        "aud": f"{authority.config.issuer}{CALLBACK_PATH}",
        "jti": secrets.token_urlsafe(12),
        "iat": now,
        "exp": min(now + LOGIN_TICKET_SECONDS, int(ticket["exp"])),
        "provider": pending.provider,
        "state": pending.state,
        "nonce": pending.nonce,
        "verifier": pending.code_verifier,
        "request": request,
    }
    return sign(session, authority, claims, typ=PENDING_TYPE, clock=platform.clock)


def _unseal(
    session: Session, authority: TokenAuthority, platform: Platform, cookie: str
) -> tuple[PendingSignIn, dict[str, Any]] | None:
    if not cookie:
        return None
    try:
        claims = verify_signed(
            session,
            authority,
            cookie,
            typ=PENDING_TYPE,
            audience=f"{authority.config.issuer}{CALLBACK_PATH}",
            clock=platform.clock,
            essential=("jti", "provider", "state", "nonce", "verifier", "request"),
        )
    except InvalidToken as error:
        log.info("federation cookie refused: %s", error.detail)
        return None
    pending = PendingSignIn(
        provider=str(claims["provider"]),
        state=str(claims["state"]),
        nonce=str(claims["nonce"]),
        code_verifier=str(claims["verifier"]),
    )
    request = claims["request"]
    return (pending, request) if isinstance(request, dict) else None


def _forget(response: Response) -> Response:
    # One sign-in per cookie: a replayed callback finds no pending sign-in.
    response.delete_cookie(_COOKIE, path=CALLBACK_PATH)
    return response


def _callback_uri(authority: TokenAuthority) -> str:
    return f"{authority.config.issuer}{CALLBACK_PATH}"


# --- audit -----------------------------------------------------------------------------------


def _audit_sign_in(
    session: Session,
    platform: Platform,
    request: Request,
    provider: FederatedProvider,
    *,
    principal: Principal,
    claims: dict[str, Any],
) -> None:
    acr, _ = provider.assurance(claims)
    audit_trail.record(
        session,
        agent=Agent(
            kind=principal.kind.value,
            subject=principal.subject,
            professional_id=principal.professional_id,
            organisation_id=principal.organisation_id,
            profession=principal.profession,
            network_address=request.client.host if request.client else None,
        ),
        action=AuditAction.SIGN_IN,
        clock=platform.clock,
        reason=f"acr {principal.assurance.acr}",
        details={"method": "federated", "provider": provider.name, "acr": acr},
    )


def _audit_refusal(
    session: Session,
    platform: Platform,
    request: Request,
    provider: FederatedProvider | None,
    refused: FederationRefused,
) -> None:
    """A refused federated sign-in, under the provider's name (the person is not known)."""
    name = provider.name if provider else "unknown"
    kind = provider.config.actor_kind if provider else "patient"
    audit_trail.record(
        session,
        agent=Agent(
            kind=kind,
            subject=f"attempt:federated:{name}",
            network_address=request.client.host if request.client else None,
        ),
        action=AuditAction.SIGN_IN,
        clock=platform.clock,
        outcome=AuditOutcome.DENIED,
        reason=refused.reason,
        details={"method": "federated", "provider": name},
    )


# --- pages -----------------------------------------------------------------------------------


def _status(refused: FederationRefused) -> int:
    if refused.reason == "unknown-provider":
        return 404
    if refused.reason in ("unavailable", "token-refused"):
        return 502  # the provider's fault, not the person's
    return 403


def _refusal(language: str, reason: str, *, status_code: int) -> HTMLResponse:
    return render(
        "federation_refused.html",
        language=language,
        form_action=NO_FORMS,
        status_code=status_code,
        reason=reason,
    )
