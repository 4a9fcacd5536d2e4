"""Staff signing in: choosing the professional they act for (France's CPE card).

A staff member authenticates as themselves by any method (password, card, passkey, a federated
provider, onboarding); ``authorize.complete_sign_in`` sends them here first, and they become the
principal of a professional who allowed them (``carnet.auth.staff``). With
one such professional, at once; with several, a page lists them, each a button. Between the two
requests the authenticated staff member travels in a *choice ticket*, signed by Carnet, bound
to the browser by the sign-in cookie and spent on first use, as the consent ticket is. With
none, a page says so and nothing is issued. Each choice is audited on the staff member's chain.

Also here: the card agent's answer as the sign-in form carries it (``agent_response``).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction, AuditOutcome
from carnet.audit.service import Agent
from carnet.auth import clients, staff
from carnet.auth.card import CardRefusal, CardResponse
from carnet.auth.errors import AuthError, CardRefused
from carnet.auth.models import OAuthClient
from carnet.auth.tokens import Principal, TokenAuthority
from carnet.db import unit_of_work
from carnet.directory.models import Professional
from carnet.oauth import consent
from carnet.oauth.form import Form
from carnet.oauth.sign_in_page import (
    STEP_REQUEST,
    forms_back_to,
    issue_ticket,
    platform_of,
    principal_claims,
    principal_of,
    read_ticket,
    refusal_page,
    render,
    visitor_language,
)
from carnet.platform import Platform
from carnet.web.authentication import authority_of

router = APIRouter(tags=["authentication"])

CHOICE_TYPE = "carnet-act-for+jwt"
CHOICE_SECONDS = 600
PATH = "/oauth/authorize/act-for"
# The card agent posts the card's certificate chain; a national chain is a few KB.
MAX_CERTIFICATES_BYTES = 16 * 1024


def agent_response(form: dict[str, str]) -> CardResponse:
    """The card agent's answer in the sign-in form: ``certificate`` and ``signature``.

    ``certificate`` is the card's certificate then its intermediate authorities', each DER in
    base64url without padding, joined by ``.`` (a form field holds no line breaks, so no PEM);
    ``signature`` is the card's signature of the ticket's challenge, base64url. Raises
    ``CardRefused`` (unreadable) if either is malformed.
    """
    field = form.get("certificate", "")
    if len(field) > MAX_CERTIFICATES_BYTES:
        raise CardRefused(CardRefusal.UNREADABLE)
    try:
        signature = base64.urlsafe_b64decode(form.get("signature", "") + "==")
        certificates = [
            x509.load_der_x509_certificate(base64.urlsafe_b64decode(part + "=="))
            for part in field.split(".")
        ]
    except (binascii.Error, ValueError):
        raise CardRefused(CardRefusal.UNREADABLE) from None
    if not signature:
        raise CardRefused(CardRefusal.UNREADABLE)
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)
    return CardResponse(pem, signature)


def continue_sign_in(
    request: Request,
    session: Session,
    *,
    platform: Platform,
    authority: TokenAuthority,
    client: OAuthClient,
    ticket: dict[str, Any],
    principal: Principal,
) -> Response:
    """``authorize.complete_sign_in``, once a staff member has a professional to act for."""
    if not staff.is_staff(principal) or principal.professional_id is None:
        return consent.conclude(
            request,
            session,
            platform=platform,
            authority=authority,
            client=client,
            ticket=ticket,
            principal=principal,
        )
    professionals = staff.professionals_for(session, principal.professional_id)
    if len(professionals) == 1:
        return _act_for(
            request,
            session,
            platform=platform,
            authority=authority,
            client=client,
            ticket=ticket,
            principal=principal,
            professional_id=professionals[0].id,
        )
    choice = ""
    if professionals:
        claims = {
            **{name: ticket.get(name) for name in STEP_REQUEST},
            "principal": principal_claims(principal),
        }
        choice = issue_ticket(
            session,
            authority,
            platform,
            claims,
            typ=CHOICE_TYPE,
            audience=f"{authority.config.issuer}{PATH}",
            seconds=CHOICE_SECONDS,
        )
    return _choice_page(request, professionals, choice, ticket)


@router.post(PATH, include_in_schema=False)
def choose(request: Request, form: Form) -> Response:
    """The staff member chose the professional to act for: check the allowance, go on."""
    platform = platform_of(request)
    authority = authority_of(request)
    with unit_of_work(platform.sessions) as session:
        claims = _read_choice(session, authority, platform, form.get("choice", ""), request)
        if claims is None:
            return refusal_page(request, "ticket-refused", status_code=400)
        try:
            client = clients.get_client(session, str(claims["client_id"]))
            principal = principal_of(claims["principal"])
            professional_id = uuid.UUID(form.get("professional", ""))
        except (AuthError, KeyError, ValueError, TypeError):
            return refusal_page(request, "ticket-refused", status_code=400)
        return _act_for(
            request,
            session,
            platform=platform,
            authority=authority,
            client=client,
            ticket=claims,
            principal=principal,
            professional_id=professional_id,
        )


def _act_for(
    request: Request,
    session: Session,
    *,
    platform: Platform,
    authority: TokenAuthority,
    client: OAuthClient,
    ticket: dict[str, Any],
    principal: Principal,
    professional_id: uuid.UUID,
) -> Response:
    agent = Agent(
        kind=principal.kind.value,
        subject=f"Practitioner/{principal.professional_id}",
        professional_id=principal.professional_id,
        organisation_id=principal.organisation_id,
        profession=principal.profession,
        network_address=request.client.host if request.client else None,
    )
    try:
        acting = staff.act_for(session, principal, professional_id)
    except AuthError as refused:
        audit_trail.record(
            session,
            agent=agent,
            action=AuditAction.SIGN_IN,
            clock=platform.clock,
            outcome=AuditOutcome.DENIED,
            reason=refused.message,
            details={"method": "act-for", "for": f"Practitioner/{professional_id}"},
        )
        return _choice_page(request, [], "", ticket)
    audit_trail.record(
        session,
        agent=agent,
        action=AuditAction.SIGN_IN,
        clock=platform.clock,
        reason="staff acts for a professional who allowed them",
        details={"method": "act-for", "for": f"Practitioner/{professional_id}"},
    )
    # Acting for someone, they are no longer staff signed in as themselves: on to consent.
    return consent.conclude(
        request,
        session,
        platform=platform,
        authority=authority,
        client=client,
        ticket=ticket,
        principal=acting,
    )


def _read_choice(
    session: Session, authority: TokenAuthority, platform: Platform, choice: str, request: Request
) -> dict[str, Any] | None:
    """The choice ticket's claims if it is Carnet's, unexpired, unused and this browser's."""
    return read_ticket(
        session,
        authority,
        platform,
        choice,
        request,
        typ=CHOICE_TYPE,
        audience=f"{authority.config.issuer}{PATH}",
        essential=("jti", "client_id", "redirect_uri", "code_challenge", "browser"),
        named="act-for",
        spent_under="act-for:",
    )


def _choice_page(
    request: Request,
    professionals: list[Professional],
    choice: str,
    ticket: dict[str, Any],
) -> HTMLResponse:
    """The list of professionals to act for (403 with a plain message when there is none)."""
    return render(
        "act_for.html",
        language=visitor_language(request, ticket.get("ui_locales")),
        # The choice's answer redirects to the client: form-action must allow its origin.
        form_action=forms_back_to(str(ticket["redirect_uri"])),
        status_code=200 if professionals else 403,
        professionals=professionals,
        choice=choice,
        action=PATH,
    )
