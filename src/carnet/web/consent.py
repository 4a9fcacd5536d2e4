"""The consent screen: a third-party app's access, in plain words, approved or refused.

``oauth.complete_sign_in`` comes here once a person is authenticated and the app is not one
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

import datetime as dt
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from carnet.access import identification as access_identification
from carnet.access import representation as access_representation
from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.errors import AccessError
from carnet.access.scopes import parse_scope
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction, AuditOutcome
from carnet.auth import approvals, service
from carnet.auth.errors import AuthError, InvalidRequest, InvalidToken
from carnet.auth.models import OAuthClient
from carnet.auth.tokens import Principal, TokenAuthority, sign, verify_signed
from carnet.db import unit_of_work
from carnet.platform import Platform
from carnet.web import oauth
from carnet.web.authentication import authority_of
from carnet.web.i18n import translations
from carnet.web.scope_words import describe

log = logging.getLogger(__name__)
router = APIRouter(tags=["authentication"])

CONSENT_TYPE = "carnet-consent+jwt"
# Long enough to read the page and choose; the person has just signed in.
CONSENT_SECONDS = 600
PATH = "/oauth/authorize/consent"
# What the sign-in ticket carries that the code needs (see oauth.authorize).
_REQUEST_CLAIMS = (
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "ui_locales",
    "code_challenge",
    "browser",
)


_ESSENTIAL = ("jti", "client_id", "redirect_uri", "code_challenge", "browser", "principal")


@dataclass(frozen=True)
class Choice:
    """A dossier the app may be launched with: the person's own, or a represented person's."""

    patient_id: uuid.UUID
    name: str | None
    own: bool


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
    now = int(platform.clock.now().timestamp())
    claims = {
        **{name: ticket.get(name) for name in _REQUEST_CLAIMS},
        "principal": _principal_claims(principal),
        "choices": [str(choice.patient_id) for choice in choices],
        "iss": authority.config.issuer,
        "aud": f"{authority.config.issuer}{PATH}",
        "jti": secrets.token_urlsafe(12),
        "iat": now,
        "exp": now + CONSENT_SECONDS,
    }
    consent = sign(session, authority, claims, typ=CONSENT_TYPE, clock=platform.clock)
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
def decide(request: Request, form: oauth.Form) -> Response:
    """Approve (the code is issued) or refuse (``access_denied``) what the app asked for."""
    platform = oauth._platform(request)
    authority = authority_of(request)
    with unit_of_work(platform.sessions) as session:
        claims = _read_consent(session, authority, platform, form.get("consent", ""), request)
        if claims is None:
            return oauth._page(request, "ticket-refused", status_code=400)
        try:
            client = service.get_client(session, str(claims["client_id"]))
            principal = _principal_of(claims["principal"])
        except (AuthError, KeyError, ValueError, TypeError):
            return oauth._page(request, "ticket-refused", status_code=400)
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
            return oauth._redirect(
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
            return oauth._page(request, "ticket-refused", status_code=400)
        return oauth.issue_code(
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


def _principal_claims(principal: Principal) -> dict[str, Any]:
    return {
        "kind": principal.kind.value,
        "subject": principal.subject,
        "assurance": int(principal.assurance),
        "methods": list(principal.methods),
        "person_id": _text(principal.person_id),
        "professional_id": _text(principal.professional_id),
        "organisation_id": _text(principal.organisation_id),
        "profession": principal.profession,
        "auth_time": int(principal.auth_time.timestamp()) if principal.auth_time else None,
        # A staff member acting for the professional (auth.staff): kept, or they would leave
        # the consent screen as the professional themself.
        "staff_id": _text(principal.staff_id),
    }


def _principal_of(claims: dict[str, Any]) -> Principal:
    auth_time = claims.get("auth_time")
    return Principal(
        kind=ActorKind(claims["kind"]),
        subject=str(claims["subject"]),
        assurance=Assurance(int(claims["assurance"])),
        methods=tuple(str(method) for method in claims.get("methods") or ()),
        person_id=_uuid(claims.get("person_id")),
        professional_id=_uuid(claims.get("professional_id")),
        organisation_id=_uuid(claims.get("organisation_id")),
        profession=claims.get("profession"),
        auth_time=dt.datetime.fromtimestamp(int(auth_time), dt.UTC) if auth_time else None,
        staff_id=_uuid(claims.get("staff_id")),
    )


def _text(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def _uuid(value: object) -> uuid.UUID | None:
    return uuid.UUID(str(value)) if value else None


def _read_consent(
    session: Session,
    authority: TokenAuthority,
    platform: Platform,
    consent: str,
    request: Request,
) -> dict[str, Any] | None:
    """The consent ticket's claims if it is Carnet's, unexpired, unused and this browser's."""
    try:
        claims = verify_signed(
            session,
            authority,
            consent,
            typ=CONSENT_TYPE,
            audience=f"{authority.config.issuer}{PATH}",
            clock=platform.clock,
            essential=(
                "jti",
                "client_id",
                "redirect_uri",
                "code_challenge",
                "browser",
                "principal",
            ),
        )
    except InvalidToken as error:
        log.info("consent ticket refused: %s", error.detail)
        return None
    browser = request.cookies.get(oauth._COOKIE, "")
    if not hmac.compare_digest(oauth._fingerprint(browser), str(claims["browser"])):
        log.info("consent ticket refused: not this browser's")
        return None
    # Spent on first use: the same form sent twice would issue two codes.
    expires_at = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
    if not approvals.spend_consent_ticket(
        session, str(claims["jti"]), expires_at, clock=platform.clock
    ):
        log.info("consent ticket refused: already used")
        return None
    return claims


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
    language = oauth._language(request, ui_locales)
    gettext = translations(language).gettext
    page = (
        oauth._environment(language)
        .get_template("consent.html")
        .render(
            language=language,
            client_name=client.name,
            access=describe(scope, gettext),
            consent=consent,
            choices=choices,
            approved=approved,
            static=oauth.PORTAL_STATIC,
            action=PATH,
        )
    )
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": (
                "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; "
                f"base-uri 'none'; form-action 'self' {oauth._origin(redirect_uri)}"
            ),
            "Cache-Control": "no-store",
        },
    )
