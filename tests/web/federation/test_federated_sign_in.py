"""Federated sign-in in the browser, against a real OpenID Connect provider on loopback.

OpenID Connect Core 1.0 section 3.1 (code flow, ID token validation in 3.1.3.7), RFC 7636
(PKCE), RFC 9207. The provider is ``oidc-provider`` (OpenID Certified), only configured by
``op.mjs``; the browser is two cookie jars (Carnet's TestClient, an httpx client for the OP)
following the redirects as a browser would. Carnet runs with ``CARNET_DEMO_IDP=false``.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx2 as httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.actors import Assurance
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.auth import staff
from carnet.directory import service as directory
from carnet.directory.models import Profession
from carnet.patients.models import Patient
from factories.auth import (
    PUBLIC_URL,
    REDIRECT_URI,
    Served,
    authorize_params,
    decide,
    is_consent_page,
    make_app,
    pkce,
    query_of,
)
from factories.directory import make_professional
from factories.patients import make_patient

from .conftest import (
    ID_TOKEN_TTL,
    PATIENT_MATRICULE,
    PROFESSIONAL_RPPS,
    LiveClock,
    OpenIdProvider,
)


@pytest.fixture
def op_browser() -> Iterator[httpx.Client]:
    """The browser's side at the provider: its own cookies, redirects followed by hand."""
    with httpx.Client(timeout=10, follow_redirects=False) as client:
        yield client


def _patient(session: Session, clock: LiveClock) -> Patient:
    return make_patient(session, clock, matricule=PATIENT_MATRICULE)


def _professional(session: Session, clock: LiveClock) -> Any:
    return directory.register_professional(
        session,
        identifier_system="urn:oid:1.2.250.1.71.4.2.1",
        identifier_value=PROFESSIONAL_RPPS,
        family="Martin",
        given="Claire",
        profession=Profession.GENERAL_PRACTITIONER,
        specialty=None,
        organisation_id=None,
        clock=clock,
    )


def federated_sign_in(
    web: Served,
    browser: httpx.Client,
    *,
    provider: str,
    account: str,
    scope: str = "openid fhirUser launch/patient offline_access patient/*.rs",
    tamper: Callable[[str], str] | None = None,
    before_callback: Callable[[], None] | None = None,
) -> tuple[httpx.Response, str, str]:
    """Walk the sign-in page's button, the provider's form and the callback.

    Returns Carnet's answer to the callback, the PKCE verifier and the app's client id.
    """
    session_app = web.platform.sessions
    with session_app() as session, session.begin():
        app = make_app(session, web.platform.clock)
    verifier, challenge = pkce()
    page = web.client.get(
        "/oauth/authorize", params=authorize_params(app.client_id, challenge, scope=scope)
    )
    assert page.status_code == 200, page.text
    button = re.search(rf'href="(/oauth/authorize/federated/{provider}\?ticket=[^"]+)"', page.text)
    assert button is not None, page.text
    start = web.client.get(html.unescape(button.group(1)), follow_redirects=False)
    assert start.status_code == 303, start.text
    location = start.headers["location"]
    if tamper is not None:
        location = tamper(location)
    answer = browser.get(location)
    while answer.is_redirect and not answer.headers["location"].startswith(PUBLIC_URL):
        answer = browser.get(str(answer.next_request.url if answer.next_request else ""))
    assert answer.status_code == 200, answer.text  # the provider's sign-in form
    answer = browser.post(str(answer.url), data={"account": account})
    while answer.is_redirect and not answer.headers["location"].startswith(PUBLIC_URL):
        answer = browser.get(str(answer.next_request.url if answer.next_request else ""))
    assert answer.is_redirect, answer.text
    back = answer.headers["location"]
    assert back.startswith(f"{PUBLIC_URL}/oauth/federation/callback?")
    if before_callback is not None:
        before_callback()
    callback = web.client.get(back.removeprefix(PUBLIC_URL), follow_redirects=False)
    if is_consent_page(callback):
        callback = decide(web.client, callback.text, "approve")
    return callback, verifier, app.client_id


def _redeem(web: Served, response: httpx.Response, verifier: str, client_id: str) -> dict[str, Any]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    tokens = web.client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(location)["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": client_id,
        },
    )
    assert tokens.status_code == 200, tokens.text
    body: dict[str, Any] = tokens.json()
    return body


def _claims(token: str, web: Served) -> dict[str, Any]:
    jwks = KeySet.import_key_set(web.client.get("/oauth/jwks").json())
    return dict(jwt.decode(token, jwks, algorithms=["ES256"]).claims)


def _sign_ins(session: Session, outcome: AuditOutcome) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == AuditAction.SIGN_IN, AuditEvent.outcome == outcome
            )
        )
    )


def _assert_refused(web: Served, session: Session, response: httpx.Response, reason: str) -> None:
    """A page saying why, no code for the app, and the refusal in the audit trail."""
    assert response.status_code in (403, 502), response.text
    assert f'data-reason="{reason}"' in response.text
    assert "location" not in response.headers
    (event,) = _sign_ins(session, AuditOutcome.DENIED)
    assert event.reason == reason
    assert json.loads(event.details or "{}")["method"] == "federated"


class TestSignedIn:
    def test_patient_with_eidas_high_gets_a_session_that_reads_their_dossier(
        self,
        federated: Served,
        op_browser: httpx.Client,
        session: Session,
        clock: LiveClock,
    ) -> None:
        patient = _patient(session, clock)
        response, verifier, client_id = federated_sign_in(
            federated, op_browser, provider="eid", account="patient-high"
        )
        body = _redeem(federated, response, verifier, client_id)
        assert body["patient"] == str(patient.id)
        claims = _claims(body["access_token"], federated)
        assert claims["sub"] == str(patient.id)
        assert claims["acr"] == Assurance.HIGH.acr
        assert claims["amr"] == ["sc"]  # the provider's
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        userinfo = federated.client.get("/oauth/userinfo", headers=bearer)
        assert userinfo.status_code == 200
        assert userinfo.json()["fhirUser"] == f"Patient/{patient.id}"
        read = federated.client.get(f"/fhir/Patient/{patient.id}", headers=bearer)
        assert read.status_code == 200, read.text
        (event,) = _sign_ins(session, AuditOutcome.ALLOWED)
        assert json.loads(event.details or "{}") == {
            "method": "federated",
            "provider": "eid",
            "acr": "eidas3",
        }

    def test_professional_with_card_level_acr_and_private_key_jwt(
        self,
        federated: Served,
        op_browser: httpx.Client,
        session: Session,
        clock: LiveClock,
    ) -> None:
        professional = _professional(session, clock)
        response, verifier, client_id = federated_sign_in(
            federated,
            op_browser,
            provider="psc",
            account="professional-card",
            scope="openid fhirUser user/*.rs",
        )
        body = _redeem(federated, response, verifier, client_id)
        claims = _claims(body["access_token"], federated)
        assert claims["fhirUser"] == f"Practitioner/{professional.id}"
        assert claims["acr"] == Assurance.HIGH.acr
        assert set(claims["amr"]) == {"sc", "pin"}
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        userinfo = federated.client.get("/oauth/userinfo", headers=bearer)
        assert userinfo.json()["fhirUser"] == f"Practitioner/{professional.id}"
        search = federated.client.get(f"/fhir/Practitioner/{professional.id}", headers=bearer)
        assert search.status_code == 200, search.text

    def test_staff_acting_for_one_doctor_get_the_doctor_s_token_naming_them_as_actor(
        self,
        federated: Served,
        op_browser: httpx.Client,
        session: Session,
        clock: LiveClock,
    ) -> None:
        # The provider's professional is, in the directory, a secretary (CPE card).
        secretary = directory.register_professional(
            session,
            identifier_system="urn:oid:1.2.250.1.71.4.2.1",
            identifier_value=PROFESSIONAL_RPPS,
            family="Muller",
            given="Sophie",
            profession=Profession.STAFF,
            clock=clock,
        )
        doctor = make_professional(session, clock, family="Weber")
        staff.allow(
            session,
            staff_id=secretary.id,
            professional_id=doctor.id,
            granted_by="operator:test",
            clock=clock,
        )
        response, verifier, client_id = federated_sign_in(
            federated,
            op_browser,
            provider="psc",
            account="professional-card",
            scope="openid fhirUser user/*.rs",
        )
        claims = _claims(
            _redeem(federated, response, verifier, client_id)["access_token"], federated
        )
        assert claims["fhirUser"] == f"Practitioner/{doctor.id}"
        assert claims["act"] == {"sub": f"Practitioner/{secretary.id}"}

    def test_the_sign_in_page_shows_each_provider_in_the_visitors_language(
        self, federated: Served, session: Session, clock: LiveClock
    ) -> None:
        app = make_app(session, clock)
        _, challenge = pkce()
        page = federated.client.get(
            "/oauth/authorize",
            params=authorize_params(app.client_id, challenge),
            headers={"Accept-Language": "fr"},
        )
        assert page.status_code == 200
        assert "eID nationale" in page.text
        assert "Pro Santé Connect" in page.text


class TestRefused:
    def test_unknown_person_is_refused_and_nothing_is_created(
        self, federated: Served, op_browser: httpx.Client, session: Session
    ) -> None:
        before = session.scalar(select(Patient.id).limit(1))
        response, _, _ = federated_sign_in(
            federated, op_browser, provider="eid", account="patient-unknown"
        )
        _assert_refused(federated, session, response, "unknown-person")
        assert "Nothing was created" in response.text
        assert session.scalar(select(Patient.id).limit(1)) == before

    def test_too_low_acr_is_refused(
        self, federated: Served, op_browser: httpx.Client, session: Session, clock: LiveClock
    ) -> None:
        _patient(session, clock)
        response, _, _ = federated_sign_in(
            federated, op_browser, provider="eid", account="patient-low"
        )
        _assert_refused(federated, session, response, "too-low")

    def test_wrong_nonce_is_refused(
        self, federated: Served, op_browser: httpx.Client, session: Session, clock: LiveClock
    ) -> None:
        # The provider faithfully returns the nonce it was sent: one changed on the way (an
        # injected authorization response, OIDC Core section 15.5.2) must not sign anyone in.
        _patient(session, clock)
        response, _, _ = federated_sign_in(
            federated,
            op_browser,
            provider="eid",
            account="patient-high",
            tamper=lambda url: _replace_query(url, nonce="attacker-chosen"),
        )
        _assert_refused(federated, session, response, "wrong-nonce")

    def test_expired_id_token_is_refused(
        self, federated: Served, op_browser: httpx.Client, session: Session, clock: LiveClock
    ) -> None:
        _patient(session, clock)
        response, _, _ = federated_sign_in(
            federated,
            op_browser,
            provider="eid",
            account="patient-high",
            # The ID token is issued at the token exchange, which Carnet does "later" than
            # the provider's short ID token lifetime and the leeway allow.
            before_callback=lambda: clock.advance(dt.timedelta(seconds=ID_TOKEN_TTL + 60)),
        )
        _assert_refused(federated, session, response, "expired")

    def test_callback_without_this_browsers_state_is_refused(
        self, federated: Served, op_browser: httpx.Client, session: Session, clock: LiveClock
    ) -> None:
        _patient(session, clock)

        def forget_cookie() -> None:
            federated.client.cookies.clear()

        response, _, _ = federated_sign_in(
            federated,
            op_browser,
            provider="eid",
            account="patient-high",
            before_callback=forget_cookie,
        )
        _assert_refused(federated, session, response, "state-mismatch")


def _replace_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_provider_pages_speak_french(
    federated: Served, op_browser: httpx.Client, session: Session, openid_provider: OpenIdProvider
) -> None:
    response = federated.client.get(
        "/oauth/federation/callback?state=x&code=y", headers={"Accept-Language": "fr"}
    )
    assert response.status_code == 403
    assert 'lang="fr"' in response.text
