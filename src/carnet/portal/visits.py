"""The portals' common ground: sign-in through Carnet's own OpenID Connect server, the browser
session, the language, CSRF, rendering and error pages.

The portal is an OAuth client like any other (``carnet-portal``, public, PKCE): it sends the
browser to ``/oauth/authorize``, redeems the code and keeps the tokens in a sealed session
cookie. Every page then acts with the ``Actor`` of that access token, through the same services
and policy as the FHIR API; nothing here reaches patient data another way.

Pages of one audience live in their own module (``patient``, ``professional``, ``agency``)
and depend on ``PatientVisit``, ``ProfessionalVisit`` or ``OperatorVisit``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from carnet.access.actors import Actor, ActorKind
from carnet.auth import clients, grants
from carnet.auth.errors import AuthError, InvalidToken
from carnet.auth.tokens import TokenAuthority, authenticate
from carnet.db import unit_of_work
from carnet.errors import NotFound
from carnet.platform import Platform
from carnet.portal import browser_session as sessions
from carnet.portal.browser_session import BrowserSession
from carnet.portal.i18n import environment
from carnet.storage import KeyWrapper
from carnet.web.i18n import LANGUAGE_COOKIE, LANGUAGES, Formats, negotiate, translations

log = logging.getLogger(__name__)
router = APIRouter(prefix="/portal", include_in_schema=False)

PORTAL_CLIENT_ID = "carnet-portal"
PORTAL_SCOPES = "openid fhirUser offline_access patient/*.cruds user/*.cruds system/*.rs"
STATIC_PATH = "/portal/static"
# Where each kind of person lands after signing in.
HOMES = {
    ActorKind.PATIENT: "/portal/patient",
    ActorKind.PROFESSIONAL: "/portal/professional",
    ActorKind.OPERATOR: "/portal/agency",
    ActorKind.SECURITY_OFFICER: "/portal/agency",
}
# Pages of a clinical portal may frame a document of the same origin (the PDF viewer), and
# nothing else; no inline script or style anywhere.
PORTAL_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


class SignInRequired(Exception):
    """The page needs a signed-in visitor (of another kind, or a stronger sign-in)."""

    def __init__(self, next_path: str, *, reason: str | None = None) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.reason = reason


class CsrfRefused(Exception):
    """A form came without this session's CSRF token."""


@dataclass
class Visit:
    """One request of a signed-in visitor: who they are, their session, their language.

    Routes open transactions with ``transaction()``, call services with ``actor`` and answer
    with ``render`` or ``redirect``; the session cookie is renewed on the way out.
    """

    request: Request
    platform: Platform
    actor: Actor
    browser: BrowserSession
    language: str

    @property
    def csrf(self) -> str:
        """The CSRF token every form of the page must carry."""
        return self.browser.csrf

    @property
    def formats(self) -> Formats:
        """Dates and numbers in the visitor's language and the portal's time zone."""
        return Formats(self.language, ZoneInfo(self.platform.settings.timezone))

    def gettext(self, message: str, **values: Any) -> str:
        """A message in the visitor's language, with ``%(name)s`` values filled in."""
        translated = _gettext(self.language)(message)
        return translated % values if values else translated

    @property
    def patient_id(self) -> uuid.UUID:
        """The dossier a patient (or their representative) is acting on."""
        if self.actor.acting_for is None:
            raise NotFound("No dossier is chosen.")
        return self.actor.acting_for

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work: committed if the block ends normally, rolled back otherwise."""
        with unit_of_work(self.platform.sessions) as session:
            yield session

    def render(self, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        """A page of the portal, in the visitor's language, never cached."""
        flash = (self.browser.flash, self.browser.flash_kind) if self.browser.flash else None
        kept = self.browser.kept or {}
        self.browser = replace(self.browser, flash=None, kept=None)
        page = (
            environment(self.language)
            .get_template(template)
            .render(
                visit=self,
                actor=self.actor,
                csrf=self.csrf,
                fmt=self.formats,
                flash=flash,
                static=STATIC_PATH,
                language=self.language,
                path=self.request.url.path,
                query=self.request.url.query,
                kept=kept,
                **context,
            )
        )
        response = HTMLResponse(page, status_code=status_code)
        self._keep(response)
        return response

    def redirect(
        self,
        url: str,
        *,
        flash: str | None = None,
        kind: str = "info",
        kept: dict[str, str] | None = None,
    ) -> Response:
        """Post/redirect/get: send the browser to ``url``, with a message for the next page
        and, for a refused form, what was typed (the page puts it back in its fields)."""
        if flash is not None:
            self.browser = self.browser.with_flash(flash, kind, kept)
        response = RedirectResponse(url, status_code=303)
        self._keep(response)
        return response

    def keep(self, response: Response) -> Response:
        """Renew the session cookie on a response built elsewhere (a download)."""
        self._keep(response)
        return response

    def _keep(self, response: Response) -> None:
        set_session_cookie(response, self.request, self.platform, self.browser)
        response.headers["Cache-Control"] = "no-store"
        response.headers.setdefault("Content-Security-Policy", PORTAL_CSP)


def _gettext(language: str) -> Callable[[str], str]:
    return translations(language).gettext


def wrapper_of(platform: Platform) -> KeyWrapper:
    """The master key wrapper that seals browser sessions."""
    if platform.key_wrapper is None:
        raise RuntimeError("The portal needs the platform's key wrapper.")
    return platform.key_wrapper


def _secure(request: Request) -> bool:
    platform: Platform = request.app.state.platform
    return platform.settings.public_url.startswith("https://")


def set_session_cookie(
    response: Response, request: Request, platform: Platform, browser: BrowserSession | None
) -> None:
    """Write (or, with None, clear) the session cookie: HttpOnly, SameSite=Lax, Secure on https.

    Lax, not Strict: a link to the portal in a notification e-mail must arrive signed in.
    """
    if browser is None:
        response.delete_cookie(sessions.SESSION_COOKIE, path="/portal")
        return
    response.set_cookie(
        sessions.SESSION_COOKIE,
        sessions.seal_session(browser, wrapper_of(platform)),
        path="/portal",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def language_of(request: Request) -> str:
    """The visitor's language: their choice (cookie), else the browser's."""
    return negotiate(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def _authority(request: Request) -> TokenAuthority:
    authority: TokenAuthority = request.app.state.authority
    return authority


def requested_path(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query and request.method == "GET" else path


def current_visit(request: Request) -> Visit:
    """The signed-in visitor of this request; ``SignInRequired`` when there is none.

    An expired access token is renewed with the session's refresh token (rotated, as for any
    client); when that fails too, the visitor signs in again.
    """
    platform = platform_of(request)
    authority = _authority(request)
    wrapper = wrapper_of(platform)
    browser = sessions.open_session(request.cookies.get(sessions.SESSION_COOKIE), wrapper)
    now = platform.clock.now()
    if browser is None or browser.expired(now):
        raise SignInRequired(requested_path(request))
    actor = _actor_of(platform, authority, browser.access_token)
    if actor is None:
        browser = _refreshed(platform, authority, browser)
        actor = _actor_of(platform, authority, browser.access_token) if browser else None
        if browser is None or actor is None:
            raise SignInRequired(requested_path(request))
    if actor.kind is ActorKind.PATIENT and browser.acting_for_id is not None:
        # The policy checks that a live representation links them, on every call.
        actor = replace(actor, acting_for=browser.acting_for_id)
    actor = replace(actor, network_address=request.client.host if request.client else None)
    request.state.actor = actor
    return Visit(request, platform, actor, browser.touched(now), language_of(request))


def _actor_of(platform: Platform, authority: TokenAuthority, token: str) -> Actor | None:
    try:
        with platform.sessions() as session:
            return authenticate(session, authority, token, clock=platform.clock)
    except InvalidToken:
        return None


def _refreshed(
    platform: Platform, authority: TokenAuthority, browser: BrowserSession
) -> BrowserSession | None:
    if browser.refresh_token is None:
        return None
    try:
        with unit_of_work(platform.sessions) as session:
            client = clients.get_client(session, PORTAL_CLIENT_ID)
            tokens = grants.refresh_access_token(
                session,
                authority,
                client=client,
                refresh_token=browser.refresh_token,
                scope=None,
                clock=platform.clock,
            )
    except AuthError as error:
        log.info("portal session not renewed: %s", error.message)
        return None
    return replace(
        browser, access_token=tokens.access_token.token, refresh_token=tokens.refresh_token
    )


def _visit_of(*kinds: ActorKind) -> Callable[[Request], Visit]:
    def dependency(request: Request) -> Visit:
        visit = current_visit(request)
        if visit.actor.kind not in kinds:
            raise SignInRequired(requested_path(request), reason="kind")
        return visit

    return dependency


AnyVisit = Annotated[Visit, Depends(current_visit)]
PatientVisit = Annotated[Visit, Depends(_visit_of(ActorKind.PATIENT))]
ProfessionalVisit = Annotated[Visit, Depends(_visit_of(ActorKind.PROFESSIONAL))]
OperatorVisit = Annotated[Visit, Depends(_visit_of(ActorKind.OPERATOR, ActorKind.SECURITY_OFFICER))]


async def checked_form(request: Request) -> FormData:
    """The submitted form, once its CSRF token is checked against the session's.

    SameSite cookies already keep most cross-site posts out; the token covers the rest (older
    browsers, a same-site subdomain).
    """
    form = await request.form()
    platform = platform_of(request)
    browser = sessions.open_session(
        request.cookies.get(sessions.SESSION_COOKIE), wrapper_of(platform)
    )
    submitted = form.get("csrf")
    if browser is None or not browser.csrf_matches(
        submitted if isinstance(submitted, str) else None
    ):
        # The uploads of a refused form are spooled temporary files: release them now.
        await form.close()
        raise CsrfRefused()
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def form_text(form: FormData, name: str) -> str:
    """A text field of a form, stripped; empty when absent."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def parse_id(text: str) -> uuid.UUID:
    """An id from a URL or a form; ``NotFound`` when it is not one (a mistyped link), answered
    like a dossier or document the visitor may not see."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound("No such dossier or document.") from None


def page_number(text: str | None) -> int:
    """The page asked for in a query string; the first for anything unreadable, and never a
    page so far that its OFFSET would scan the table."""
    try:
        number = int(text or "1")
    except ValueError:
        return 1
    return min(max(number, 1), 100_000)


# Browsers without a date picker send what was typed: ISO, or the day first as in Europe.
_DAY_FIRST = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{4})$")


def parse_date(text: str) -> dt.date | None:
    """The date in ``text`` (2026-05-31, 31/05/2026 or 31.05.2026); None when empty.

    Raises ``ValueError`` for anything else, or a day that does not exist, for the page to say so.
    """
    text = text.strip()
    if not text:
        return None
    day_first = _DAY_FIRST.match(text)
    if day_first:
        day, month, year = (int(part) for part in day_first.groups())
        return dt.date(year, month, day)
    return dt.date.fromisoformat(text)


# --- pages common to everyone ------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def landing(request: Request) -> Response:
    """Signed in: go to one's own home. Otherwise: what Carnet is, and the sign-in button."""
    try:
        visit = current_visit(request)
    except SignInRequired:
        return public_page(request, "landing.html")
    return visit.redirect(HOMES[visit.actor.kind])


@router.get("/sign-in")
def sign_in(request: Request, next: str | None = None) -> Response:
    """Start the authorization code flow with PKCE against Carnet's own server."""
    platform = platform_of(request)
    authority = _authority(request)
    redirect_uri = f"{platform.settings.public_url}/portal/callback"
    with unit_of_work(platform.sessions) as session:
        clients.ensure_first_party_client(
            session,
            client_id=PORTAL_CLIENT_ID,
            name="Carnet",
            redirect_uri=redirect_uri,
            allowed_scopes=PORTAL_SCOPES,
            clock=platform.clock,
        )
    attempt = sessions.new_sign_in(sessions.safe_next(next, "/portal"))
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(attempt.code_verifier.encode("ascii")).digest())
        .decode()
        .rstrip("=")
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": PORTAL_CLIENT_ID,
            "redirect_uri": redirect_uri,
            "scope": PORTAL_SCOPES,
            "state": attempt.state,
            "nonce": attempt.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "ui_locales": language_of(request),
        }
    )
    response = RedirectResponse(f"{authority.config.issuer}/oauth/authorize?{query}", 303)
    response.set_cookie(
        sessions.SIGN_IN_COOKIE,
        sessions.seal_sign_in(attempt, wrapper_of(platform)),
        max_age=600,
        path="/portal/callback",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    return response


@router.get("/callback")
def callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    iss: str | None = None,
) -> Response:
    """Finish the sign-in: check state and issuer, redeem the code, open the session."""
    platform = platform_of(request)
    authority = _authority(request)
    wrapper = wrapper_of(platform)
    attempt = sessions.open_sign_in(request.cookies.get(sessions.SIGN_IN_COOKIE), wrapper)
    refused = public_page(request, "error.html", status_code=400, problem="sign-in-expired")
    if attempt is None or state is None or not _same(attempt.state, state):
        return refused
    if error is not None or code is None or (iss is not None and iss != authority.config.issuer):
        return public_page(request, "error.html", status_code=400, problem="sign-in-refused")
    try:
        with unit_of_work(platform.sessions) as session:
            client = clients.get_client(session, PORTAL_CLIENT_ID)
            tokens = grants.redeem_authorization_code(
                session,
                authority,
                client=client,
                code=code,
                redirect_uri=f"{platform.settings.public_url}/portal/callback",
                code_verifier=attempt.code_verifier,
                clock=platform.clock,
            )
    except AuthError as failure:
        log.info("portal sign-in refused: %s", failure.message)
        return refused
    browser = sessions.start(tokens.access_token.token, tokens.refresh_token, platform.clock.now())
    actor = _actor_of(platform, authority, browser.access_token)
    home = HOMES.get(actor.kind, "/portal") if actor else "/portal"
    target = attempt.next_path if attempt.next_path != "/portal" else home
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, request, platform, browser)
    response.delete_cookie(sessions.SIGN_IN_COOKIE, path="/portal/callback")
    return response


@router.post("/sign-out")
def sign_out(request: Request, form: CheckedForm) -> Response:
    """Revoke the session's tokens, forget the cookie, back to the landing page."""
    platform = platform_of(request)
    authority = _authority(request)
    browser = sessions.open_session(
        request.cookies.get(sessions.SESSION_COOKIE), wrapper_of(platform)
    )
    if browser is not None:
        with unit_of_work(platform.sessions) as session:
            client = clients.get_client(session, PORTAL_CLIENT_ID)
            for token in (browser.refresh_token, browser.access_token):
                if token:
                    grants.revoke_token(
                        session, authority, client=client, token=token, clock=platform.clock
                    )
        authority.revocations.mark_stale()
    response = RedirectResponse("/portal?signed-out=1", status_code=303)
    set_session_cookie(response, request, platform, None)
    return response


@router.get("/language")
def choose_language(request: Request, lang: str, next: str | None = None) -> Response:
    """Remember the visitor's language for a year and go back to where they were."""
    response = RedirectResponse(sessions.safe_next(next, "/portal"), status_code=303)
    if lang in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            lang,
            max_age=365 * 24 * 3600,
            path="/",
            samesite="lax",
            secure=_secure(request),
        )
    return response


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def public_page(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A page for a visitor who is not signed in (landing, errors)."""
    language = language_of(request)
    page = (
        environment(language)
        .get_template(template)
        .render(
            visit=None,
            actor=None,
            csrf=None,
            fmt=Formats(language, ZoneInfo(platform_of(request).settings.timezone)),
            flash=None,
            static=STATIC_PATH,
            language=language,
            path=request.url.path,
            query=request.url.query,
            **context,
        )
    )
    return HTMLResponse(
        page,
        status_code=status_code,
        headers={"Cache-Control": "no-store", "Content-Security-Policy": PORTAL_CSP},
    )


def markup(text: str) -> Markup:
    """Trusted HTML (produced by Carnet's own renderers, never by a user)."""
    return Markup(text)  # noqa: S704 — callers pass only HTML Carnet generated and escaped
