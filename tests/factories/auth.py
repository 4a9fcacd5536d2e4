"""Accounts, clients, assertions and a served Carnet, built through the auth services."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy.orm import Session, sessionmaker

from carnet.access.actors import Actor
from carnet.app import create_app
from carnet.auth import accounts, clients
from carnet.auth.models import OAuthClient
from carnet.auth.tokens import Principal, TokenAuthority, issue_access_token
from carnet.clock import Clock, FrozenClock
from carnet.demo import accounts as demo_accounts
from carnet.directory.models import Organisation, Professional
from carnet.patients.models import Patient
from carnet.platform import Platform
from carnet.settings import Settings
from carnet.storage import DocumentStore, KeyWrapper
from factories.directory import make_organisation, make_professional
from factories.patients import make_matricule, make_patient

PASSWORD = "correct horse battery staple"
PUBLIC_URL = "http://testserver"  # TestClient's own base URL: the issuer is the server tested
REDIRECT_URI = "https://app.example/callback"
APP_SCOPES = "openid fhirUser launch/patient offline_access patient/*.rs user/*.rs"


def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash with a low scrypt cost: the cost travels with each hash, so checks run unchanged.

    At the production cost, hashing would be half of the authentication tests' time.
    """
    monkeypatch.setattr(accounts, "SCRYPT_N", 2**10)


def settings(**overrides: Any) -> Settings:
    """Settings for a test Carnet answering at ``PUBLIC_URL``."""
    return Settings(public_url=PUBLIC_URL, **overrides)


def authority(wrapper: KeyWrapper, **overrides: Any) -> TokenAuthority:
    """A token authority as the app builds it."""
    return TokenAuthority.from_settings(settings(**overrides), wrapper)


@dataclass
class Served:
    """A running Carnet: its HTTP client, its platform and its token authority."""

    client: TestClient
    platform: Platform

    @property
    def authority(self) -> TokenAuthority:
        """The app's own token authority."""
        authority: TokenAuthority = self.client.app.state.authority  # type: ignore[attr-defined]
        return authority


@contextmanager
def serve(
    session: Session,
    store: DocumentStore,
    clock: FrozenClock,
    wrapper: KeyWrapper,
    **overrides: Any,
) -> Iterator[Served]:
    """Carnet served over the test's own connection: what it commits is rolled back after.

    Its sessions join the test's transaction through savepoints, so rows the test made are
    visible to the app and nothing outlives the test.
    """
    sessions = sessionmaker(
        bind=session.connection(),
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
    )
    platform = Platform(
        settings=settings(**overrides),
        engine=session.get_bind().engine,
        sessions=sessions,
        store=store,
        clock=clock,
        key_wrapper=wrapper,
    )
    with TestClient(create_app(platform=platform), raise_server_exceptions=True) as client:
        yield Served(client, platform)


# --- accounts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientLogin:
    """A patient with an account, and what they sign in with."""

    patient: Patient
    identifier: str
    totp: pyotp.TOTP


@dataclass(frozen=True)
class ProfessionalLogin:
    """A professional with an account (and a card, PIN ``demo_accounts.DEMO_PIN``)."""

    professional: Professional
    identifier: str
    totp: pyotp.TOTP


def make_patient_login(session: Session, clock: Clock, wrapper: KeyWrapper) -> PatientLogin:
    """A patient with a matricule, the password ``PASSWORD`` and a fresh TOTP secret."""
    matricule = make_matricule()
    patient = make_patient(session, clock, matricule=matricule)
    secret = accounts.create_patient_account(
        session, patient_id=patient.id, password=PASSWORD, key_wrapper=wrapper, clock=clock
    )
    return PatientLogin(patient, matricule, pyotp.TOTP(secret))


def make_professional_login(
    session: Session, clock: Clock, wrapper: KeyWrapper, *, card: bool = True
) -> ProfessionalLogin:
    """A general practitioner of a laboratory, password ``PASSWORD``, TOTP and a demo card."""
    organisation = make_organisation(session, clock)
    professional = make_professional(session, clock, organisation_id=organisation.id)
    secret = accounts.create_professional_account(
        session,
        professional_id=professional.id,
        password=PASSWORD,
        key_wrapper=wrapper,
        clock=clock,
    )
    if card:
        demo_accounts.issue_demo_card(
            session,
            professional_id=professional.id,
            pin=demo_accounts.DEMO_PIN,
            key_wrapper=wrapper,
            clock=clock,
        )
    return ProfessionalLogin(professional, professional.identifier_value, pyotp.TOTP(secret))


def code_now(totp: pyotp.TOTP, clock: Clock) -> str:
    """The code the person's authenticator shows at the clock's time."""
    return totp.at(clock.now())


# --- clients ---------------------------------------------------------------------------------


def make_app(session: Session, clock: Clock, *, scopes: str = APP_SCOPES) -> OAuthClient:
    """A public SMART app redirecting to ``REDIRECT_URI``."""
    return clients.register_public_client(
        session,
        name="Mon Carnet mobile",
        redirect_uris=[REDIRECT_URI],
        allowed_scopes=scopes,
        clock=clock,
        client_id=f"app-{secrets.token_hex(4)}",
    )


@dataclass(frozen=True)
class Backend:
    """A feeding system: its registration and its private key."""

    client: OAuthClient
    key: ECKey
    organisation: Organisation


def make_backend(
    session: Session, clock: Clock, *, scopes: str = "system/DocumentReference.cru"
) -> Backend:
    """A laboratory's feeding system with an inline JWKS of one ES256 key."""
    organisation = make_organisation(session, clock)
    key = ECKey.generate_key("P-256", parameters={"alg": "ES256"}, private=True)
    key.ensure_kid()
    client = clients.register_backend_client(
        session,
        name="LIS Alzette",
        organisation_identifier=organisation.identifier_value,
        allowed_scopes=scopes,
        jwks={"keys": [key.as_dict(private=False)]},
        clock=clock,
        client_id=f"lis-{secrets.token_hex(4)}",
    )
    return Backend(client, key, organisation)


def client_assertion(
    key: ECKey,
    client_id: str,
    clock: Clock,
    *,
    audience: str = f"{PUBLIC_URL}/oauth/token",
    lifetime: dt.timedelta = dt.timedelta(minutes=4),
    jti: str | None = None,
    issued_at: dt.datetime | None = None,
) -> str:
    """A ``private_key_jwt`` client assertion (RFC 7523 section 3)."""
    now = issued_at or clock.now()
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": jti or secrets.token_urlsafe(12),
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])


def assertion_form(assertion: str, **fields: str) -> dict[str, str]:
    """Token endpoint parameters authenticating with ``assertion``."""
    return {
        "client_assertion_type": clients.CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
        **fields,
    }


# --- the authorization code flow -------------------------------------------------------------


def pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge (RFC 7636 section 4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(client_id: str, challenge: str, **overrides: str) -> dict[str, str]:
    """A SMART standalone-launch authorization request."""
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid fhirUser launch/patient offline_access patient/*.rs",
        "state": "st-" + secrets.token_hex(6),
        "nonce": "n-" + secrets.token_hex(6),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "aud": f"{PUBLIC_URL}/fhir",
        **overrides,
    }


def ticket_of(page: str) -> str:
    """The signed ticket in a sign-in page's hidden field."""
    marker = 'name="ticket" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def query_of(location: str) -> dict[str, str]:
    """The query parameters of a redirect's Location."""
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def sign_in(
    client: TestClient,
    params: dict[str, str],
    fields: dict[str, str],
    *,
    consent: str | None = "approve",
) -> Any:
    """Open the sign-in page for ``params`` and submit ``fields``; the POST's response.

    A third-party app's consent screen, if one is shown, is answered with ``consent``
    (``"approve"`` or ``"refuse"``) and the answer's response returned; with None, the screen
    itself is returned.
    """
    page = client.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    response = client.post(
        "/oauth/authorize",
        data={"ticket": ticket_of(page.text), **fields},
        follow_redirects=False,
    )
    if consent is None or not is_consent_page(response):
        return response
    return decide(client, response.text, consent)


def is_consent_page(response: Any) -> bool:
    """Whether ``response`` is the consent screen."""
    return response.status_code == 200 and 'name="consent"' in response.text


def consent_of(page: str) -> str:
    """The signed consent ticket in a consent page's hidden field."""
    marker = 'name="consent" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def decide(client: TestClient, page: str, decision: str, **fields: str) -> Any:
    """Answer the consent screen ``page`` with ``decision``; the POST's response."""
    return client.post(
        "/oauth/authorize/consent",
        data={"consent": consent_of(page), "decision": decision, **fields},
        follow_redirects=False,
    )


# --- a JWKS over real HTTP -------------------------------------------------------------------


class JwksServer:
    """A local HTTP server publishing a JWKS that tests can change, counting fetches."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.fetches = 0
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.fetches += 1
                body = json.dumps(served.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/jwks.json"
        # A short poll interval: shutdown() waits for the serving loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def publish(self, *keys: ECKey) -> None:
        """Publish the public halves of ``keys``."""
        self.document = {"keys": [key.as_dict(private=False) for key in keys]}


def bearer(
    served: Served, session: Session, actor: Actor, clock: Clock, scope: str = "user/*.rs"
) -> dict[str, str]:
    """An Authorization header with a token Carnet signed for ``actor``."""
    principal = Principal(
        kind=actor.kind,
        # Carnet's tokens name people by their id (fhirUser carries the resource type).
        subject=str(actor.person_id or actor.professional_id or actor.subject),
        assurance=actor.assurance,
        person_id=actor.person_id,
        professional_id=actor.professional_id,
        organisation_id=actor.organisation_id,
        profession=actor.profession,
    )
    issued = issue_access_token(
        session, served.authority, principal, scope=scope, client_id="test-app", clock=clock
    )
    return {"Authorization": f"Bearer {issued.token}"}
