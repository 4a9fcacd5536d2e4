"""What every sign-in step's page shares: the language it speaks, how it is rendered and
guarded, the signed tickets it carries between requests, and the way back to the client.

The steps (``oauth``'s sign-in form, ``onboarding``, ``federation``, ``consent`` and
``staff_sign_in``) each own their routes and their decisions; this module is the one place for
what they all do alike, so that a page's policy or a ticket's binding to the browser cannot
drift between them.

A *step ticket* is a short-lived JWT signed by Carnet that carries a sign-in from one request to
the next (no server-side state). It is bound to the browser by a cookie: the ticket holds the
cookie's digest, and a ticket that comes back without that cookie (a form replayed from another
site or browser: login CSRF) is refused. Tickets a second use would harm are spent on first use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Sequence
from functools import cache
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind, Assurance
from carnet.auth import approvals, grants
from carnet.auth.errors import InvalidToken
from carnet.auth.models import OAuthClient
from carnet.auth.tokens import TICKET_TYPE, Principal, TokenAuthority, sign, verify_signed
from carnet.platform import Platform
from carnet.web.i18n import LANGUAGE_COOKIE, negotiate, translations

log = logging.getLogger(__name__)

# The cookie that binds the sign-in's tickets to the browser the sign-in page was shown in.
BROWSER_COOKIE = "carnet_sign_in"
# The portals' stylesheet: the sign-in pages look like the portal they lead to.
PORTAL_STATIC = "/portal/static"
# What a sign-in ticket carries of the authorization request (the rest is the ticket's own).
AUTHORIZATION_REQUEST = (
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "ui_locales",
    "code_challenge",
)
# What a later step's ticket keeps of the sign-in ticket: the request, and its browser.
STEP_REQUEST = (*AUTHORIZATION_REQUEST, "browser")
# A page whose forms post nowhere (a refusal): nothing to allow.
NO_FORMS = "'none'"


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


# --- language and rendering ------------------------------------------------------------------


@cache
def environment(language: str) -> Environment:
    """The sign-in pages' templates, speaking ``language`` (the portals' catalogues)."""
    env = Environment(
        loader=PackageLoader("carnet.oauth", "templates"),
        autoescape=select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


def visitor_language(request: Request, ui_locales: str | None = None) -> str:
    """The visitor's language: their choice on the portal, else the client's, else the browser's.

    ``ui_locales`` (OpenID Connect Core section 3.1.2.1) is a space-separated list of tags the
    client prefers; it ranks before the browser's ``Accept-Language`` but after a choice the
    person made themselves (the language cookie).
    """
    preferred = ",".join(
        part
        for part in [*(ui_locales or "").split(), request.headers.get("accept-language")]
        if part
    )
    return negotiate(request.cookies.get(LANGUAGE_COOKIE), preferred)


def origin(uri: str) -> str:
    """The origin of ``uri`` as a CSP source (a private-use scheme is its scheme alone)."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}:"


def forms_back_to(redirect_uri: str | None) -> str:
    """The ``form-action`` sources of a page whose answer may redirect to ``redirect_uri``.

    Browsers apply form-action to the redirect that follows a form too: the client's origin is
    allowed beside Carnet's own, and nothing else.
    """
    return f"'self' {origin(redirect_uri)}" if redirect_uri else "'self'"


def render(
    template: str,
    *,
    language: str,
    form_action: str,
    scripts: bool = False,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """``template`` in ``language``, never cached, under a policy that allows only Carnet's
    stylesheet, its own scripts where ``scripts`` (passkeys.js), and forms to ``form_action``."""
    page = (
        environment(language)
        .get_template(template)
        .render(language=language, static=PORTAL_STATIC, **context)
    )
    policy = [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        *(["script-src 'self'"] if scripts else []),
        "frame-ancestors 'none'",
        "base-uri 'none'",
        f"form-action {form_action}",
    ]
    return HTMLResponse(
        page,
        status_code=status_code,
        headers={
            "Content-Security-Policy": "; ".join(policy),
            "Cache-Control": "no-store",
            **(headers or {}),
        },
    )


def refusal_page(
    request: Request,
    problem: str,
    *,
    status_code: int,
    reason: str | None = None,
    language: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The sign-in page reduced to why it cannot be used (``problem``, see login.html)."""
    return render(
        "login.html",
        language=language or visitor_language(request),
        form_action=NO_FORMS,
        status_code=status_code,
        headers=headers,
        fatal=problem,
        reason=reason,
    )


# --- back to the client ----------------------------------------------------------------------


def back_to_client(redirect_uri: str, params: dict[str, str | None]) -> RedirectResponse:
    """The browser sent to ``redirect_uri`` with ``params`` (RFC 6749 section 4.1.2)."""
    query = urlencode({name: value for name, value in params.items() if value is not None})
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{query}", status_code=303)


def issue_code(
    session: Session,
    *,
    platform: Platform,
    authority: TokenAuthority,
    client: OAuthClient,
    ticket: dict[str, Any],
    principal: Principal,
    launch_patient: uuid.UUID | None = None,
) -> RedirectResponse:
    """The authorization code, and the browser sent back to the client with it.

    ``launch_patient`` is the person a representative chose on the consent screen.
    """
    code = grants.create_authorization_code(
        session,
        client=client,
        redirect_uri=ticket["redirect_uri"],
        scope=ticket["scope"],
        code_challenge=ticket["code_challenge"],
        nonce=ticket.get("nonce"),
        principal=principal,
        clock=platform.clock,
        launch_patient=launch_patient,
    )
    params = {"code": code, "state": ticket.get("state"), "iss": authority.config.issuer}
    return back_to_client(ticket["redirect_uri"], params)


# --- step tickets, bound to the browser ------------------------------------------------------


def fingerprint(browser: str) -> str:
    """What a ticket holds of its browser's cookie: a digest, so the ticket does not reveal it."""
    return hashlib.sha256(browser.encode()).hexdigest()


def issue_ticket(
    session: Session,
    authority: TokenAuthority,
    platform: Platform,
    claims: dict[str, Any],
    *,
    typ: str,
    audience: str,
    seconds: int,
    jti: str | None = None,
) -> str:
    """``claims`` signed as a ticket for the step at ``audience``, good for ``seconds``.

    ``jti`` when the step binds something else to the ticket (a passkey ceremony).
    """
    now = int(platform.clock.now().timestamp())
    signed = {
        **claims,
        "iss": authority.config.issuer,
        "aud": audience,
        "jti": jti or secrets.token_urlsafe(12),
        "iat": now,
        "exp": now + seconds,
    }
    return sign(session, authority, signed, typ=typ, clock=platform.clock)


def read_ticket(
    session: Session,
    authority: TokenAuthority,
    platform: Platform,
    ticket: str,
    request: Request,
    *,
    typ: str,
    audience: str,
    essential: Sequence[str],
    named: str,
    cookie: str = BROWSER_COOKIE,
    spent_under: str | None = None,
) -> dict[str, Any] | None:
    """The ticket's claims if it is Carnet's, for this step, unexpired and this browser's.

    ``cookie`` is the one the ticket is bound to. With ``spent_under`` (the prefix its ``jti``
    is kept under), the ticket is spent on first use: the same form sent twice would act twice.
    None, and the refusal logged under ``named``, when it is not good.
    """
    try:
        claims = verify_signed(
            session,
            authority,
            ticket,
            typ=typ,
            audience=audience,
            clock=platform.clock,
            essential=essential,
        )
    except InvalidToken as error:
        log.info("%s ticket refused: %s", named, error.detail)
        return None
    if not hmac.compare_digest(
        fingerprint(request.cookies.get(cookie, "")), str(claims["browser"])
    ):
        log.info("%s ticket refused: not this browser's", named)
        return None
    if spent_under is not None and not spend(
        session, platform, f"{spent_under}{claims['jti']}", claims
    ):
        log.info("%s ticket refused: already used", named)
        return None
    return claims


def spend(session: Session, platform: Platform, key: str, claims: dict[str, Any]) -> bool:
    """Mark ``key`` used until the ticket ``claims`` expires; False if it already was."""
    expires_at = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
    return approvals.spend_consent_ticket(session, key, expires_at, clock=platform.clock)


def sign_in_audience(authority: TokenAuthority) -> str:
    return f"{authority.config.issuer}/oauth/authorize"


def read_sign_in_ticket(
    session: Session,
    authority: TokenAuthority,
    platform: Platform,
    ticket: str,
    request: Request,
) -> dict[str, Any] | None:
    """The sign-in form's ticket (``authorize.authorize``), if good and this browser's."""
    return read_ticket(
        session,
        authority,
        platform,
        ticket,
        request,
        typ=TICKET_TYPE,
        audience=sign_in_audience(authority),
        essential=("jti", "client_id", "redirect_uri", "code_challenge", "browser"),
        named="sign-in",
    )


# --- the authenticated person, as a later step's ticket carries them --------------------------


def principal_claims(principal: Principal) -> dict[str, Any]:
    """``principal`` as JSON claims (``principal_of`` reads them back)."""
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
        # the next step as the professional themself.
        "staff_id": _text(principal.staff_id),
    }


def principal_of(claims: dict[str, Any]) -> Principal:
    """The principal ``principal_claims`` wrote; KeyError, ValueError or TypeError if mangled."""
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
