"""The OAuth 2.0 / OpenID Connect browser side: the authorization endpoint and the sign-in page.

Routes parse, call ``carnet.auth`` (``sign_in``, ``clients``, ``grants``) and render. The
sign-in page is the demo identity provider's: its form carries a *ticket*, a short-lived JWT
signed by Carnet holding the validated authorization request, bound to the browser by a cookie
(CSRF protection without server-side state). What clients call without a browser (discovery,
JWKS, token, revoke, userinfo) is ``carnet.oauth.tokens``.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections import deque
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction, AuditOutcome
from carnet.audit.service import Agent
from carnet.auth import card_authorities, clients, grants, passkeys, staff
from carnet.auth.card import CardResponse
from carnet.auth.errors import (
    AuthError,
    CardRefused,
    InvalidRequest,
    InvalidToken,
    SignInRefused,
    UnsupportedResponseType,
)
from carnet.auth.federation import Federation
from carnet.auth.models import OAuthClient
from carnet.auth.sign_in import sign_in_with_card, sign_in_with_password
from carnet.auth.tokens import LOGIN_TICKET_SECONDS, TICKET_TYPE, Principal, TokenAuthority, peek
from carnet.clock import Clock
from carnet.db import unit_of_work
from carnet.oauth import consent, staff_sign_in
from carnet.oauth.form import Form, screen_parameter
from carnet.oauth.sign_in_page import (
    AUTHORIZATION_REQUEST,
    BROWSER_COOKIE,
    back_to_client,
    fingerprint,
    forms_back_to,
    issue_ticket,
    platform_of,
    read_sign_in_ticket,
    refusal_page,
    render,
    sign_in_audience,
    spend,
    visitor_language,
)
from carnet.platform import Platform
from carnet.storage.ports import KeyWrapper
from carnet.web.authentication import authority_of
from carnet.web.i18n import translations
from carnet.web.scope_words import describe

router = APIRouter(tags=["authentication"])
# The methods that answer the ticket's challenge: each challenge is answered once.
CHALLENGED_METHODS = frozenset({"card", "passkey"})


class SignInThrottle:
    """At most ``limit`` sign-in attempts per client IP in ``window`` seconds, per process.

    A first line against password spraying from one address; the per-account lock in the
    database is what holds across workers.
    """

    def __init__(self, limit: int = 20, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._attempts: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, address: str, now: float | None = None) -> bool:
        """Record an attempt from ``address``; False if it is over the limit."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            attempts = self._attempts.setdefault(address, deque())
            while attempts and attempts[0] <= moment - self.window:
                attempts.popleft()
            if len(attempts) >= self.limit:
                return False
            attempts.append(moment)
            if len(self._attempts) > 10_000:  # forget idle addresses rather than grow forever
                self._attempts = {a: q for a, q in self._attempts.items() if q}
            return True


# --- the demo's card reader, installed by the application (never imported from here) ---------


class CardReader(Protocol):
    """An emulated card reader: checks the PIN, has the card sign the challenge.

    Only the demo has one (``carnet.demo.accounts.read_demo_card``); ``create_app`` installs it
    as ``app.state.demo_card_reader`` when ``CARNET_DEMO_IDP`` is on, so that production code
    holds no demo secret and the card method without it refuses.
    """

    def __call__(
        self,
        session: Session,
        *,
        identifier: str,
        pin: str,
        challenge: bytes,
        key_wrapper: KeyWrapper,
        clock: Clock,
    ) -> CardResponse: ...


def _card_reader(request: Request) -> CardReader | None:
    reader: CardReader | None = getattr(request.app.state, "demo_card_reader", None)
    return reader


# --- authorization endpoint and the sign-in page ---------------------------------------------


@router.get("/oauth/authorize", include_in_schema=False)
def authorize(request: Request) -> Response:
    """Validate an authorization request (RFC 6749 section 4.1.1, RFC 7636) and show sign-in.

    An unknown client or an unregistered redirect URI is shown as an error page, never
    redirected to (RFC 6749 section 4.1.2.1); other errors go back to the client.
    """
    platform = platform_of(request)
    authority = authority_of(request)
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in params:
            return refusal_page(request, "repeated", status_code=400, reason=name)
        try:
            screen_parameter(name, value)
        except InvalidRequest as refused:
            return refusal_page(request, "invalid-link", status_code=400, reason=refused.message)
        params[name] = value
    language = visitor_language(request, params.get("ui_locales"))
    browser = secrets.token_urlsafe(24)
    with unit_of_work(platform.sessions) as session:
        try:
            client = clients.get_client(session, params.get("client_id", ""))
            redirect_uri = grants.check_redirect_uri(client, params.get("redirect_uri"))
        except AuthError as error:
            return refusal_page(
                request, "invalid-link", status_code=400, reason=error.message, language=language
            )
        state = params.get("state")
        try:
            if params.get("response_type") != "code":
                raise UnsupportedResponseType("Only response_type=code is supported.")
            if "aud" in params and params["aud"].rstrip("/") != authority.config.audience:
                raise InvalidRequest(f"aud must be {authority.config.audience}.", field="aud")
            scope = grants.grant_scopes(params.get("scope"), client.allowed_scopes)
            claims = {
                "client_id": client.client_id,
                "redirect_uri": redirect_uri,
                "scope": scope,
                "state": state,
                "nonce": params.get("nonce"),
                # Kept so that the form shown again after a failure speaks the same language.
                "ui_locales": params.get("ui_locales"),
                "code_challenge": grants.check_code_challenge(
                    params.get("code_challenge"), params.get("code_challenge_method")
                ),
            }
            ticket = _issue_ticket(session, authority, platform, claims, browser)
        except AuthError as error:
            return back_to_client(redirect_uri, _error_params(error, state, authority))
        response = _login_page(
            client,
            ticket,
            scope,
            redirect_uri,
            language=language,
            demo_idp=authority.config.demo_idp,
            providers=_federated_buttons(request, language),
            card_sign_in=authority.config.demo_idp or card_authorities.any_trusted(session),
        )
    response.set_cookie(
        BROWSER_COOKIE,
        browser,
        max_age=LOGIN_TICKET_SECONDS,
        path="/oauth/authorize",
        httponly=True,
        samesite="strict",
        secure=authority.config.issuer.startswith("https://"),
    )
    return response


@router.post("/oauth/authorize", include_in_schema=False)
def sign_in(request: Request, form: Form) -> Response:
    """Check the credentials of the sign-in form and send the browser back with a code."""
    platform = platform_of(request)
    authority = authority_of(request)
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    if not throttle.allow(request.client.host if request.client else "unknown"):
        return refusal_page(request, "throttled", status_code=429, headers={"Retry-After": "60"})
    with unit_of_work(platform.sessions) as session:
        ticket = read_sign_in_ticket(session, authority, platform, form.get("ticket", ""), request)
        if ticket is None:
            return refusal_page(request, "ticket-refused", status_code=400)
        try:
            client = clients.get_client(session, ticket["client_id"])
        except AuthError:
            return refusal_page(request, "ticket-refused", status_code=400)
        card_refusal: str | None = None
        challenged = form.get("method") in CHALLENGED_METHODS
        if challenged and not _spend_challenge(session, platform, ticket):
            # A card's signature or a passkey's assertion of this challenge was sent before:
            # a replay, whether that first answer was taken or refused.
            return refusal_page(request, "ticket-refused", status_code=400)
        try:
            principal = _authenticate(
                session,
                authority,
                platform,
                form,
                ticket,
                card_reader=_card_reader(request),
                address=request.client.host if request.client else None,
            )
        except SignInRefused as refused:
            # Committed with this transaction: the failure counts towards the account's lock.
            principal = None
            # A card is told why it was refused (card.CardRefusal); a password never is.
            card_refusal = refused.reason if isinstance(refused, CardRefused) else None
        _record_sign_in(session, platform, form, principal, request, card_refusal=card_refusal)
        cards = card_authorities.any_trusted(session)
        # The challenge is spent: another try by card or passkey needs a fresh one.
        again = None
        if challenged and principal is None:
            again = _renew_ticket(session, platform, authority, ticket, request)
        if principal is not None:
            return complete_sign_in(
                request,
                session,
                platform=platform,
                authority=authority,
                client=client,
                ticket=ticket,
                principal=principal,
            )
    page = _login_page(
        client,
        again or form.get("ticket", ""),
        ticket["scope"],
        ticket["redirect_uri"],
        language=visitor_language(request, ticket.get("ui_locales")),
        refused=True,
        method=form.get("method"),
        identifier=form.get("identifier", ""),
        demo_idp=authority.config.demo_idp,
        card_sign_in=authority.config.demo_idp or cards,
        card_refusal=card_refusal,
        providers=_federated_buttons(request, visitor_language(request, ticket.get("ui_locales"))),
    )
    page.status_code = 401
    return page


def complete_sign_in(
    request: Request,
    session: Session,
    *,
    platform: Platform,
    authority: TokenAuthority,
    client: OAuthClient,
    ticket: dict[str, Any],
    principal: Principal,
) -> Response:
    """Where every way of signing in ends, once the person is authenticated.

    Password, card, passkey and federated sign-ins all come here, so what follows
    authentication (staff choosing whom they act for, then ``consent.conclude``: the consent
    screen for third-party apps, the authorization code, the redirect back) is written once.
    Runs inside the caller's transaction: the code is committed with the sign-in's audit
    record before the browser is sent back.
    """
    if staff.is_staff(principal) and principal.professional_id is not None:
        # Whichever way they signed in (password, card, passkey, provider, onboarding): without
        # this step their principal would be their own, which no rule lets see a dossier.
        return staff_sign_in.continue_sign_in(
            request,
            session,
            platform=platform,
            authority=authority,
            client=client,
            ticket=ticket,
            principal=principal,
        )
    return consent.conclude(
        request,
        session,
        platform=platform,
        authority=authority,
        client=client,
        ticket=ticket,
        principal=principal,
    )


def _record_sign_in(
    session: Session,
    platform: Platform,
    form: dict[str, str],
    principal: Principal | None,
    request: Request,
    *,
    card_refusal: str | None = None,
) -> None:
    """Professionals' and operators' sign-ins, successful or not, go to the audit trail.

    Recorded with this transaction, which is committed whatever the outcome; a refused card
    with the rule that refused it (``card.CardRefusal``).
    """
    method = form.get("method")
    if method not in ("professional", "card", "operator"):
        return
    address = request.client.host if request.client else None
    if principal is not None:
        agent = Agent(
            kind=principal.kind.value,
            subject=principal.subject,
            professional_id=principal.professional_id,
            organisation_id=principal.organisation_id,
            profession=principal.profession,
            network_address=address,
        )
        outcome, reason = AuditOutcome.ALLOWED, f"acr {principal.assurance.acr}"
    else:
        # The identifier typed, not a verified one: the chain of attempts under that name.
        kind = ActorKind.OPERATOR if method == "operator" else ActorKind.PROFESSIONAL
        agent = Agent(
            kind=kind.value,
            subject=f"attempt:{form.get('identifier', '')[:64]}",
            network_address=address,
        )
        outcome, reason = AuditOutcome.DENIED, card_refusal or "sign-in refused"
    audit_trail.record(
        session,
        agent=agent,
        action=AuditAction.SIGN_IN,
        clock=platform.clock,
        outcome=outcome,
        reason=reason,
        details={"method": method},
    )


def _authenticate(
    session: Session,
    authority: TokenAuthority,
    platform: Platform,
    form: dict[str, str],
    ticket: dict[str, Any],
    *,
    card_reader: CardReader | None = None,
    address: str | None = None,
) -> Principal:
    method = form.get("method")
    identifier = form.get("identifier", "")
    # --- passkeys: the ticket's challenge is the WebAuthn challenge (carnet.auth.passkeys) ---
    if method == "passkey":
        return passkeys.sign_in_with_passkey(
            session,
            rp=passkeys.RelyingParty.of(authority),
            response=form.get("credential", ""),
            challenge=base64.urlsafe_b64decode(ticket["challenge"] + "=="),
            clock=platform.clock,
            network_address=address,
        )
    # --- end passkeys ---
    if method == "card":
        challenge = base64.urlsafe_b64decode(ticket["challenge"] + "==")
        if form.get("certificate"):
            # A real card, through the card agent (staff_sign_in documents its contract).
            return sign_in_with_card(
                session,
                response=staff_sign_in.agent_response(form),
                challenge=challenge,
                clock=platform.clock,
            )
        if card_reader is None:
            raise SignInRefused()
        response = card_reader(
            session,
            identifier=identifier,
            pin=form.get("pin", ""),
            challenge=challenge,
            key_wrapper=authority.key_wrapper,
            clock=platform.clock,
        )
        return sign_in_with_card(
            session, response=response, challenge=challenge, clock=platform.clock
        )
    kinds = {
        "patient": ActorKind.PATIENT,
        "professional": ActorKind.PROFESSIONAL,
        # The account says whether this is an operator or a security officer.
        "operator": ActorKind.OPERATOR,
    }
    if method not in kinds:
        raise SignInRefused()
    return sign_in_with_password(
        session,
        kind=kinds[method],
        identifier=identifier,
        password=form.get("password", ""),
        otp=form.get("otp") or None,
        key_wrapper=authority.key_wrapper,
        clock=platform.clock,
    )


def _issue_ticket(
    session: Session,
    authority: TokenAuthority,
    platform: Platform,
    request: dict[str, Any],
    browser: str,
) -> str:
    claims = {
        **request,
        # The card emulation's challenge: fresh for each sign-in form.
        "challenge": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="),
        "browser": fingerprint(browser),
    }
    return issue_ticket(
        session,
        authority,
        platform,
        claims,
        typ=TICKET_TYPE,
        audience=sign_in_audience(authority),
        seconds=LOGIN_TICKET_SECONDS,
    )


def _spend_challenge(session: Session, platform: Platform, ticket: dict[str, Any]) -> bool:
    """Mark the ticket's challenge answered; False if it already was.

    The ticket lives ten minutes and a failed sign-in shows the form again: without this, one
    card signature or passkey assertion captured in the browser would sign in again and again
    until the ticket expired. Kept beside the used consent tickets until the ticket expires.
    """
    return spend(session, platform, f"sign-in-challenge:{ticket['jti']}", ticket)


def _renew_ticket(
    session: Session,
    platform: Platform,
    authority: TokenAuthority,
    ticket: dict[str, Any],
    request: Request,
) -> str:
    """A new ticket (new jti and challenge) for the same request, in this browser."""
    return _issue_ticket(
        session,
        authority,
        platform,
        {name: ticket.get(name) for name in AUTHORIZATION_REQUEST},
        request.cookies.get(BROWSER_COOKIE, ""),
    )


def _login_page(
    client: OAuthClient,
    ticket: str,
    scope: str,
    redirect_uri: str,
    *,
    language: str,
    refused: bool = False,
    method: str | None = None,
    identifier: str = "",
    demo_idp: bool = False,
    providers: list[tuple[str, str]] | None = None,
    card_sign_in: bool | None = None,
    card_refusal: str | None = None,
) -> HTMLResponse:
    return render(
        "login.html",
        language=language,
        form_action=forms_back_to(redirect_uri),
        # Passkeys: static/passkeys.js, and no other script.
        scripts=True,
        # The demo adds its hints and its card reader; the page is otherwise the same.
        demo_idp=demo_idp,
        # Cards: the demo's reader, or any trusted card authority (a card agent answers).
        card_sign_in=demo_idp if card_sign_in is None else card_sign_in,
        card_refusal=card_refusal,
        challenge=_challenge_of(ticket),
        client_name=client.name,
        # What signing in lets the application do, in plain words (never raw scope strings);
        # Carnet's own portal needs no such list: it is Carnet.
        first_party=client.first_party,
        access=describe(scope, translations(language).gettext),
        ticket=ticket,
        refused=refused,
        # After a failure, the form that failed is the one to try again, its identifier kept
        # (never the password, code or PIN).
        method=method,
        identifier=identifier,
        # Federated sign-in (carnet.oauth.federation): one button per provider.
        providers=providers or [],
        # Passkeys: the request options, for static/passkeys.js.
        passkey_request=_passkey_request(ticket),
    )


def _passkey_request(ticket: str) -> dict[str, Any] | None:
    """The passkey request options for the page, built on the ticket's challenge.

    Read from the ticket without verifying it: Carnet has just signed it (or verified it, when
    the form is shown again), and the options are only what the browser asks the
    authenticator; the answer is verified against the verified ticket on POST.
    """
    try:
        claims = peek(ticket)[1]
        options: dict[str, Any] = json.loads(
            passkeys.authentication_options(
                rp=passkeys.RelyingParty.from_public_url(str(claims["iss"])),
                challenge=base64.urlsafe_b64decode(str(claims["challenge"]) + "=="),
            )
        )
    except (InvalidToken, KeyError, ValueError):
        return None
    return options


def _federated_buttons(request: Request, language: str) -> list[tuple[str, str]]:
    """The configured identity providers' names and labels (``carnet.auth.federation``)."""
    federation: Federation | None = getattr(request.app.state, "federation", None)
    return federation.buttons(language) if federation is not None else []


def _error_params(
    error: AuthError, state: str | None, authority: TokenAuthority
) -> dict[str, str | None]:
    return {
        "error": error.error,
        "error_description": error.message,
        "state": state,
        "iss": authority.config.issuer,
    }


def _challenge_of(ticket: str) -> str | None:
    """The card challenge a sign-in ticket carries, for the card agent (unverified: the
    ticket is verified when the form comes back; the challenge is no secret)."""
    try:
        challenge = peek(ticket)[1].get("challenge")
    except InvalidToken:
        return None
    return challenge if isinstance(challenge, str) else None
