"""Onboarding pages: a first sign-in set up from the invitation letter or the agency's link.

``/oauth/authorize/letter``: a patient types their national identifier, birth date and the
letter's code; ``/oauth/authorize/invitation?code=…``: the link ``carnet professionals invite``
printed. Both lead to ``/oauth/authorize/account``, where the person chooses a password and a
passkey or an authenticator app; the account is created (or, with a new letter, its credentials
replaced), the code spent and the dossier opened in one transaction (``carnet.auth.onboarding``).

The pages sit under ``/oauth/authorize`` so that the sign-in cookie reaches them: a person who
came from an app's sign-in page goes on, signed in, through ``authorize.complete_sign_in``; one who
came from a link is sent to sign in. Between the steps the page carries an *onboarding state*,
a short-lived JWT signed by Carnet (like the sign-in ticket), bound to this browser by a cookie;
it holds the TOTP secret being shown, which the person's own page displays anyway.
"""

from __future__ import annotations

import datetime as dt
import io
import secrets
import uuid
from typing import Any

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from carnet.access.actors import ActorKind
from carnet.auth import accounts, clients, onboarding, passkeys
from carnet.auth.errors import AuthError, PasskeyRefused
from carnet.auth.onboarding import Newcomer
from carnet.auth.tokens import TokenAuthority
from carnet.db import unit_of_work
from carnet.errors import InvalidInput
from carnet.lifecycle.errors import ActivationRefused
from carnet.oauth import authorize
from carnet.oauth.form import Form, screen_parameter
from carnet.oauth.sign_in_page import (
    fingerprint,
    forms_back_to,
    issue_ticket,
    platform_of,
    read_sign_in_ticket,
    read_ticket,
    render,
    visitor_language,
)
from carnet.platform import Platform
from carnet.web.authentication import authority_of

router = APIRouter(tags=["authentication"], include_in_schema=False)
_COOKIE = "carnet_onboarding"
_STATE_TYPE = "carnet-onboarding+jwt"
# Long enough to install an authenticator app and read its first code.
_STATE_SECONDS = 900
_BIRTH_DATE_FIELDS = ("birth_year", "birth_month", "birth_day")


@router.get("/oauth/authorize/letter")
def letter_form(request: Request, ticket: str = "") -> Response:
    """The letter's page: national identifier, birth date and the letter's code."""
    screen_parameter("ticket", ticket)
    response = _render(request, "letter", ticket=ticket)
    _set_cookie(request, response)
    return response


@router.post("/oauth/authorize/letter")
def letter(request: Request, form: Form) -> Response:
    """Check the letter; on success, the account page (nothing is spent yet)."""
    refused = _refuse_early(request)
    if refused is not None:
        return refused
    ticket = form.get("ticket", "")
    platform = platform_of(request)
    try:
        birth_date = dt.date(*(int(form.get(name) or "0") for name in _BIRTH_DATE_FIELDS))
    except ValueError:
        return _render(request, "letter", ticket=ticket, error="birth-date", status_code=400)
    with unit_of_work(platform.sessions) as session:
        try:
            newcomer = onboarding.check_letter(
                session,
                identifier=form.get("identifier", ""),
                birth_date=birth_date,
                code=form.get("code", ""),
                clock=platform.clock,
            )
        except ActivationRefused:
            # Committed: the wrong attempt counts against the letter and is audited.
            newcomer = None
    if newcomer is None:
        return _render(request, "letter", ticket=ticket, error="letter", status_code=400)
    return _account_page(request, newcomer, ticket=ticket, totp_secret=None)


@router.get("/oauth/authorize/invitation")
def invitation(request: Request, code: str = "") -> Response:
    """The agency's invitation link: the account page, if the invitation is live."""
    screen_parameter("code", code)
    platform = platform_of(request)
    with unit_of_work(platform.sessions) as session:
        try:
            newcomer = onboarding.check_invitation(session, code=code, clock=platform.clock)
        except onboarding.InvitationRefused:
            return _render(request, "invitation-refused", status_code=400)
    response = _account_page(request, newcomer, ticket="", totp_secret=None, new_cookie=True)
    return response


@router.post("/oauth/authorize/account")
def account(request: Request, form: Form) -> Response:
    """Create the account (or replace its credentials) and continue signed in.

    Password, then either the authenticator's first code (``second_factor=totp``) or the
    passkey the page just made (``second_factor=passkey``, ``credential``); all in one
    transaction with spending the code and opening the dossier.
    """
    refused = _refuse_early(request)
    if refused is not None:
        return refused
    platform = platform_of(request)
    authority = authority_of(request)
    with unit_of_work(platform.sessions) as session:
        state = _read_state(session, authority, platform, form.get("state", ""), request)
    if state is None:
        return _render(request, "expired", status_code=400)
    second_factor = "passkey" if form.get("credential") else "totp"
    try:
        with unit_of_work(platform.sessions) as session:
            newcomer = onboarding.resume(
                session,
                kind=ActorKind(state["kind"]),
                subject_id=uuid.UUID(state["sub"]),
                code_id=uuid.UUID(state["code_id"]),
            )
            if form.get("password", "") != form.get("password_again", ""):
                raise onboarding.PasswordsDiffer()
            if second_factor == "totp":
                onboarding.check_first_code(
                    state["totp"], form.get("otp", ""), clock=platform.clock
                )
            principal = onboarding.enrol_credentials(
                session,
                newcomer,
                password=form.get("password", ""),
                totp_secret=state["totp"],
                second_factor=second_factor,
                key_wrapper=authority.key_wrapper,
                clock=platform.clock,
                network_address=request.client.host if request.client else None,
            )
            if second_factor == "passkey":
                passkeys.finish_registration(
                    session,
                    authority,
                    state=form.get("passkey_state", ""),
                    response=form.get("credential", ""),
                    name=form.get("passkey_name", ""),
                    binding=state["jti"],
                    clock=platform.clock,
                    network_address=request.client.host if request.client else None,
                )
            ticket = (
                read_sign_in_ticket(session, authority, platform, state["ticket"], request)
                if state.get("ticket")
                else None
            )
            client = _client_of(session, ticket)
            if ticket is not None and client is not None:
                return authorize.complete_sign_in(
                    request,
                    session,
                    platform=platform,
                    authority=authority,
                    client=client,
                    ticket=ticket,
                    principal=principal,
                )
    except (ActivationRefused, onboarding.InvitationRefused):
        return _render(request, "spent", status_code=400)
    except (InvalidInput, PasskeyRefused) as problem:
        return _account_page(
            request,
            newcomer_of(state),
            ticket=state.get("ticket") or "",
            totp_secret=state["totp"],
            problem=problem.message,
        )
    # Came from a link, or the app's sign-in form has expired meanwhile: sign in afresh.
    return _render(request, "done")


def newcomer_of(state: dict[str, Any]) -> Newcomer:
    """The newcomer a state speaks for, as far as showing the account page again needs."""
    return Newcomer(
        kind=ActorKind(state["kind"]),
        subject_id=uuid.UUID(state["sub"]),
        code_id=uuid.UUID(state["code_id"]),
        identifiers=(),
        has_account=bool(state.get("has_account")),
    )


# --- the pages ----------------------------------------------------------------------------------


def _account_page(
    request: Request,
    newcomer: Newcomer,
    *,
    ticket: str,
    totp_secret: str | None,
    problem: str | None = None,
    new_cookie: bool = False,
) -> Response:
    """The page where the person chooses a password and a second factor."""
    platform = platform_of(request)
    authority = authority_of(request)
    browser = request.cookies.get(_COOKIE, "")
    if new_cookie or not browser:
        browser = secrets.token_urlsafe(24)
    secret = totp_secret or onboarding.new_totp_secret()
    jti = secrets.token_urlsafe(12)
    with unit_of_work(platform.sessions) as session:
        holder = (
            passkeys.patient_account(session, newcomer.subject_id)
            if newcomer.kind is ActorKind.PATIENT
            else passkeys.professional_account(session, newcomer.subject_id)
        )
        ceremony = passkeys.begin_registration(
            session, authority, holder, binding=jti, clock=platform.clock
        )
        state = issue_ticket(
            session,
            authority,
            platform,
            {
                "kind": newcomer.kind.value,
                "sub": str(newcomer.subject_id),
                "code_id": str(newcomer.code_id),
                "has_account": newcomer.has_account,
                "totp": secret,
                "ticket": ticket or None,
                "browser": fingerprint(browser),
            },
            typ=_STATE_TYPE,
            audience=_state_audience(authority),
            seconds=_STATE_SECONDS,
            # The passkey ceremony begun above is bound to this state.
            jti=jti,
        )
        claims = (
            read_sign_in_ticket(session, authority, platform, ticket, request) if ticket else None
        )
    uri = accounts.totp_provisioning_uri(secret, name=holder.user_name)
    response = _render(
        request,
        "account",
        status_code=400 if problem else 200,
        state=state,
        kind=newcomer.kind.value,
        has_account=newcomer.has_account,
        totp_secret=secret,
        totp_uri=uri,
        totp_qr=_qr_svg(uri),
        passkey_options=ceremony.options_json.replace("<", "\\u003c"),
        passkey_state=ceremony.state,
        problem=problem,
        form_action=forms_back_to(claims["redirect_uri"] if claims else None),
    )
    _set_cookie(request, response, browser)
    return response


def _render(
    request: Request,
    step: str,
    *,
    status_code: int = 200,
    form_action: str = "'self'",
    **context: Any,
) -> HTMLResponse:
    """``onboarding.html`` at ``step``, in the visitor's language, with a strict policy.

    form-action: the account form's answer may redirect to the app that asked for sign-in
    (browsers apply it to that redirect too), whose origin the signed sign-in ticket fixed;
    nowhere else. Scripts: the account step's passkeys.js.
    """
    return render(
        "onboarding.html",
        language=visitor_language(request),
        form_action=form_action,
        scripts=True,
        status_code=status_code,
        step=step,
        **context,
    )


def _qr_svg(uri: str) -> str:
    """The provisioning URI as an inline SVG QR code (drawn here: no image from elsewhere)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(
        buffer, kind="svg", xmldecl=False, svgns=True, scale=4, title="QR code"
    )
    return buffer.getvalue().decode("utf-8")


# --- state, cookie, refusals -------------------------------------------------------------------


def _refuse_early(request: Request) -> Response | None:
    throttle: authorize.SignInThrottle = request.app.state.sign_in_throttle
    if not throttle.allow(request.client.host if request.client else "unknown"):
        return _render(request, "throttled", status_code=429)
    # SameSite=Strict: a form posted from another site arrives without it (no login CSRF).
    if not request.cookies.get(_COOKIE):
        return _render(request, "expired", status_code=400)
    return None


def _set_cookie(request: Request, response: Response, value: str | None = None) -> None:
    authority = authority_of(request)
    response.set_cookie(
        _COOKIE,
        value or request.cookies.get(_COOKIE) or secrets.token_urlsafe(24),
        max_age=_STATE_SECONDS,
        path="/oauth/authorize",
        httponly=True,
        samesite="strict",
        secure=authority.config.issuer.startswith("https://"),
    )


def _state_audience(authority: TokenAuthority) -> str:
    return f"{authority.config.issuer}/oauth/authorize/account"


def _read_state(
    session: Any, authority: TokenAuthority, platform: Platform, state: str, request: Request
) -> dict[str, Any] | None:
    """The onboarding state, if Carnet's, unexpired and bound to this browser's cookie."""
    return read_ticket(
        session,
        authority,
        platform,
        state,
        request,
        typ=_STATE_TYPE,
        audience=_state_audience(authority),
        essential=("jti", "kind", "sub", "code_id", "totp", "browser"),
        named="onboarding",
        cookie=_COOKIE,
    )


def _client_of(session: Any, ticket: dict[str, Any] | None) -> Any:
    if ticket is None:
        return None
    try:
        return clients.get_client(session, ticket["client_id"])
    except AuthError:
        return None
