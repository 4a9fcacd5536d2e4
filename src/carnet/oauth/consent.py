"""The consent screen: a third-party app's access, in plain words, approved or refused.

``authorize.complete_sign_in`` comes here once a person is authenticated and the app is not one
of Carnet's own. Unless the person already approved the app for everything it now asks, the
page lists the access in their language (``scope_words``) with Approve and Refuse. A patient
who represents someone, asked for ``launch/patient``, also chooses whose dossier the app gets
(SMART App Launch, standalone launch): their own or a represented person's, which the token
response then names as ``patient``.

The authenticated person travels from the sign-in to this form in a *consent ticket*: a
short-lived JWT signed by Carnet, bound to the browser by the sign-in cookie as the sign-in
ticket is, and spent on first use. Refusing sends the browser back to the app with
``error=access_denied`` (RFC 6749 section 4.1.2.1); approving is remembered
(``carnet.auth.approvals``) and the authorization code is issued as for any sign-in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from carnet.access import identification as access_identification
from carnet.access import representation as access_representation
from carnet.access.actors import Actor, ActorKind
from carnet.access.errors import AccessError
from carnet.access.scopes import parse_scope
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction, AuditOutcome
from carnet.auth import approvals, clients
from carnet.auth.errors import AuthError, InvalidRequest
from carnet.auth.models import OAuthClient
from carnet.auth.tokens import Principal, TokenAuthority
from carnet.db import unit_of_work
from carnet.oauth.form import Form
from carnet.oauth.sign_in_page import (
    STEP_REQUEST,
    back_to_client,
    forms_back_to,
    issue_code,
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
from carnet.web.i18n import translations
from carnet.web.scope_words import describe

router = APIRouter(tags=["authentication"])

CONSENT_TYPE = "carnet-consent+jwt"
# Long enough to read the page and choose; the person has just signed in.
CONSENT_SECONDS = 600
PATH = "/oauth/authorize/consent"
_ESSENTIAL = ("jti", "client_id", "redirect_uri", "code_challenge", "browser", "principal")


@dataclass(frozen=True)
class Choice:
    """A dossier the app may be launched with: the person's own, or a represented person's."""

    patient_id: uuid.UUID
    name: str | None
    own: bool


def conclude(
    request: Request,
    session: Session,
    *,
    platform: Platform,
    authority: TokenAuthority,
    client: OAuthClient,
    ticket: dict[str, Any],
    principal: Principal,
) -> Response:
    """The end of a sign-in (``authorize.complete_sign_in``) once nobody is left to choose whom
    they act for: the consent page if the app needs one and it was not all approved, else the
    code and the browser sent back to the app."""
    if approvals.needs_consent(client):
        page = screen(
            request,
            session,
            platform=platform,
            authority=authority,
            client=client,
            ticket=ticket,
            principal=principal,
        )
        if page is not None:
            return page
    return issue_code(
        session,
        platform=platform,
        authority=authority,
        client=client,
        ticket=ticket,
        principal=principal,
    )


def screen(
    request: Request,
    session: Session,
    *,
    platform: Platform,
    authority: TokenAuthority,
    client: OAuthClient,
    ticket: dict[str, Any],
    principal: Principal,
) -> Response | None:
    """The consent page for this sign-in, or None when the person already approved it all.

    Runs in the sign-in's transaction. A representative asked for ``launch/patient`` always
    sees the page: whose dossier the app gets is chosen at each launch.
    """
    scope = str(ticket["scope"])
    choices = _choices(session, platform, principal, scope)
    approval = approvals.covering_approval(session, principal, client, scope)
    if approval is not None and len(choices) < 2:
        approvals.record_use(approval, clock=platform.clock)
        return None
    claims = {
        **{name: ticket.get(name) for name in STEP_REQUEST},
        "principal": principal_claims(principal),
        "choices": [str(choice.patient_id) for choice in choices],
    }
    consent = issue_ticket(
        session,
        authority,
        platform,
        claims,
        typ=CONSENT_TYPE,
        audience=f"{authority.config.issuer}{PATH}",
        seconds=CONSENT_SECONDS,
    )
    return _consent_page(
        request,
        client,
        consent,
        scope,
        choices=choices,
        approved=approval is not None,
        redirect_uri=str(ticket["redirect_uri"]),
        ui_locales=ticket.get("ui_locales"),
    )


@router.post(PATH, include_in_schema=False)
def decide(request: Request, form: Form) -> Response:
    """Approve (the code is issued) or refuse (``access_denied``) what the app asked for."""
    platform = platform_of(request)
    authority = authority_of(request)
    with unit_of_work(platform.sessions) as session:
        claims = _read_consent(session, authority, platform, form.get("consent", ""), request)
        if claims is None:
            return refusal_page(request, "ticket-refused", status_code=400)
        try:
            client = clients.get_client(session, str(claims["client_id"]))
            principal = principal_of(claims["principal"])
        except (AuthError, KeyError, ValueError, TypeError):
            return refusal_page(request, "ticket-refused", status_code=400)
        redirect_uri = str(claims["redirect_uri"])
        if form.get("decision") != "approve":
            audit_trail.record(
                session,
                agent=approvals.agent_of(principal, client.client_id),
                action=AuditAction.GRANT,
                clock=platform.clock,
                outcome=AuditOutcome.DENIED,
                reason="the person refused the app",
                details={"app": client.client_id, "scope": claims["scope"]},
            )
            return back_to_client(
                redirect_uri,
                {
                    "error": "access_denied",
                    "error_description": "The person refused this access.",
                    "state": claims.get("state"),
                    "iss": authority.config.issuer,
                },
            )
        try:
            launch = _chosen(form.get("patient"), claims.get("choices") or [], principal)
            approvals.approve(
                session,
                principal,
                client,
                str(claims["scope"]),
                clock=platform.clock,
                launch_patient=launch,
            )
        except AuthError:
            return refusal_page(request, "ticket-refused", status_code=400)
        return issue_code(
            session,
            platform=platform,
            authority=authority,
            client=client,
            ticket=claims,
            principal=principal,
            launch_patient=launch,
        )


def _chosen(field: str | None, offered: list[str], principal: Principal) -> uuid.UUID | None:
    """The launch patient picked on the form: None for the person themself.

    Only a dossier the page offered is accepted (``InvalidRequest`` otherwise).
    """
    if not offered:
        return None
    if not field or field not in offered:
        raise InvalidRequest("Choose one of the dossiers offered.", field="patient")
    chosen = uuid.UUID(field)
    return None if chosen == principal.person_id else chosen


def _choices(
    session: Session, platform: Platform, principal: Principal, scope: str
) -> list[Choice]:
    """Whose dossier the app may get: offered to a patient who represents someone and whose
    app asks for ``launch/patient``; empty otherwise (the app gets the person's own)."""
    if (
        "launch/patient" not in scope.split()
        or principal.kind is not ActorKind.PATIENT
        or principal.person_id is None
    ):
        return []
    now = platform.clock.now()
    represented = access_representation.represented_patients(session, principal.person_id, now=now)
    if not represented:
        return []
    found = [Choice(principal.person_id, None, own=True)]
    for patient_id in represented:
        # Their name is read as their representative, through the policy and audited: the
        # same read the portal makes to list them.
        actor = Actor(
            kind=ActorKind.PATIENT,
            subject=principal.subject,
            assurance=principal.assurance,
            scopes=frozenset({parse_scope("patient/Patient.r")}),
            person_id=principal.person_id,
            acting_for=patient_id,
            launch_patient=patient_id,
        )
        try:
            patient = access_identification.read_demographics(
                session, actor, patient_id, clock=platform.clock
            )
        except AccessError as refused:
            # An opposed or closed dossier, a weak sign-in: nothing to launch an app on. The
            # refusal is recorded in this transaction, which commits.
            if refused.refusal is not None:
                audit_trail.record_refusal(session, refused.refusal, clock=platform.clock)
            continue
        found.append(Choice(patient_id, f"{patient.given} {patient.family}", own=False))
    return found if len(found) > 1 else []


def _read_consent(
    session: Session,
    authority: TokenAuthority,
    platform: Platform,
    consent: str,
    request: Request,
) -> dict[str, Any] | None:
    """The consent ticket's claims if it is Carnet's, unexpired, unused and this browser's."""
    # Spent on first use: the same form sent twice would issue two codes.
    return read_ticket(
        session,
        authority,
        platform,
        consent,
        request,
        typ=CONSENT_TYPE,
        audience=f"{authority.config.issuer}{PATH}",
        essential=_ESSENTIAL,
        named="consent",
        spent_under="",
    )


def _consent_page(
    request: Request,
    client: OAuthClient,
    consent: str,
    scope: str,
    *,
    choices: list[Choice],
    approved: bool,
    redirect_uri: str,
    ui_locales: str | None,
) -> HTMLResponse:
    language = visitor_language(request, ui_locales)
    return render(
        "consent.html",
        language=language,
        form_action=forms_back_to(redirect_uri),
        client_name=client.name,
        access=describe(scope, translations(language).gettext),
        consent=consent,
        choices=choices,
        approved=approved,
        action=PATH,
    )
