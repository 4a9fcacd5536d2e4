"""Card and staff sign-in at /oauth/authorize, with the demo identity provider off.

The test plays the card agent: it reads the challenge from the sign-in page, has the card
(built by ``factories.cards``) sign it, and posts the certificate and signature.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pyotp
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.auth import accounts, staff
from carnet.clock import FrozenClock
from carnet.directory.models import Profession, Professional
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories import cards
from factories.auth import (
    PASSWORD,
    Served,
    authorize_params,
    code_now,
    decide,
    is_consent_page,
    make_app,
    pkce,
    query_of,
    serve,
    ticket_of,
)
from factories.directory import make_organisation, make_professional


def _post(client: TestClient, page: str, fields: dict[str, str]) -> Any:
    response = client.post(
        "/oauth/authorize",
        data={"ticket": ticket_of(page), **fields},
        follow_redirects=False,
    )
    if is_consent_page(response):
        return decide(client, response.text, "approve")
    return response


def _token_claims(served: Served, client_id: str, redirect: Any, verifier: str) -> dict[str, Any]:
    assert redirect.status_code == 303, redirect.text
    response = served.client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(redirect.headers["location"])["code"],
            "redirect_uri": authorize_params(client_id, "x")["redirect_uri"],
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    keys = KeySet.import_key_set(served.client.get("/oauth/jwks").json())
    claims: dict[str, Any] = jwt.decode(response.json()["access_token"], keys).claims
    return claims


class TestCardAgent:
    def test_a_real_card_signs_in_without_the_demo_and_a_revoked_one_is_told_why(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        app = make_app(session, clock)
        doctor = make_professional(session, clock)
        authority = cards.root("Test card authority", clock.now())
        card = cards.issue(authority, doctor, clock.now())
        with serve(session, store, clock, wrapper, demo_idp=False) as served:
            verifier, challenge = pkce()
            params = authorize_params(app.client_id, challenge, scope="openid fhirUser user/*.rs")
            untrusted = served.client.get("/oauth/authorize", params=params)
            assert untrusted.status_code == 200
            # No authority trusted yet: no card method on the page.
            assert "data-card-challenge" not in untrusted.text
            cards.trust(session, authority, clock)
            page = served.client.get("/oauth/authorize", params=params).text
            # The demo's reader (identifier and PIN) is not there.
            assert 'name="pin"' not in page
            redirect = _post(served.client, page, cards.agent_fields(page, card))
            claims = _token_claims(served, app.client_id, redirect, verifier)
            assert claims["fhirUser"] == f"Practitioner/{doctor.id}"
            assert claims["amr"] == ["sc", "hwk", "pin", "mfa"]

            authority.revoked.append(card.certificate.serial_number)
            cards.publish_crl(session, authority, clock, name="Test card authority")
            page = served.client.get("/oauth/authorize", params=params).text
            refused = _post(served.client, page, cards.agent_fields(page, card))
        assert refused.status_code == 401
        assert 'data-reason="card-revoked"' in refused.text
        assert "revoked by its authority" in refused.text
        event = session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.action == AuditAction.SIGN_IN,
                AuditEvent.outcome == AuditOutcome.DENIED,
            )
            .order_by(AuditEvent.recorded_at.desc(), AuditEvent.seq.desc())
        ).first()
        assert event is not None
        assert event.reason == "card-revoked"

    def test_a_malformed_signature_is_refused_as_unreadable(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        app = make_app(session, clock)
        authority = cards.root("Test card authority", clock.now())
        cards.trust(session, authority, clock)
        with serve(session, store, clock, wrapper, demo_idp=False) as served:
            _, challenge = pkce()
            page = served.client.get(
                "/oauth/authorize", params=authorize_params(app.client_id, challenge)
            ).text
            refused = _post(
                served.client,
                page,
                {"method": "card", "certificate": "not.base64!", "signature": "%%%"},
            )
        assert refused.status_code == 401
        assert 'data-reason="unreadable-certificate"' in refused.text


def _staff_login(
    session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> tuple[Professional, pyotp.TOTP]:
    organisation = make_organisation(session, clock)
    secretary = make_professional(
        session, clock, profession=Profession.STAFF, organisation_id=organisation.id
    )
    secret = accounts.create_professional_account(
        session, professional_id=secretary.id, password=PASSWORD, key_wrapper=wrapper, clock=clock
    )
    return secretary, pyotp.TOTP(secret)


class TestStaffSignIn:
    def test_staff_of_one_doctor_get_the_doctor_s_token_naming_them_as_actor(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        app = make_app(session, clock)
        secretary, totp = _staff_login(session, clock, wrapper)
        doctor = make_professional(session, clock, family="Weber")
        staff.allow(
            session,
            staff_id=secretary.id,
            professional_id=doctor.id,
            granted_by="operator:test",
            clock=clock,
        )
        with serve(session, store, clock, wrapper, demo_idp=False) as served:
            verifier, challenge = pkce()
            params = authorize_params(
                app.client_id, challenge, scope="openid fhirUser offline_access user/*.rs"
            )
            page = served.client.get("/oauth/authorize", params=params).text
            redirect = _post(
                served.client,
                page,
                {
                    "method": "professional",
                    "identifier": secretary.identifier_value,
                    "password": PASSWORD,
                    "otp": code_now(totp, clock),
                },
            )
            claims = _token_claims(served, app.client_id, redirect, verifier)
        assert claims["sub"] == str(doctor.id)
        assert claims["carnet_profession"] == "general-practitioner"
        assert claims["act"] == {"sub": f"Practitioner/{secretary.id}"}

    def test_staff_of_several_doctors_choose_and_staff_of_none_are_told(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        app = make_app(session, clock)
        secretary, totp = _staff_login(session, clock, wrapper)
        with serve(session, store, clock, wrapper, demo_idp=False) as served:
            _, challenge = pkce()
            params = authorize_params(app.client_id, challenge, scope="user/*.rs")
            fields = {
                "method": "professional",
                "identifier": secretary.identifier_value,
                "password": PASSWORD,
                "otp": code_now(totp, clock),
            }
            page = served.client.get("/oauth/authorize", params=params).text
            nobody = _post(served.client, page, fields)
            assert nobody.status_code == 403
            assert "No professional has allowed you" in nobody.text

            doctors = [make_professional(session, clock, family=name) for name in ("Ab", "Cd")]
            for doctor in doctors:
                staff.allow(
                    session,
                    staff_id=secretary.id,
                    professional_id=doctor.id,
                    granted_by="operator:test",
                    clock=clock,
                )
            clock.advance(dt.timedelta(seconds=30))  # a new one-time code
            fields["otp"] = code_now(totp, clock)
            page = served.client.get("/oauth/authorize", params=params).text
            picker = _post(served.client, page, fields)
            assert picker.status_code == 200
            assert "For whom do you act?" in picker.text
            choice = re.search(r'name="choice" value="([^"]+)"', picker.text)
            assert choice is not None
            # Staff cannot pick someone who did not allow them.
            stranger = make_professional(session, clock, family="Ef")
            refused = served.client.post(
                "/oauth/authorize/act-for",
                data={"choice": choice.group(1), "professional": str(stranger.id)},
                follow_redirects=False,
            )
            assert refused.status_code == 403
            clock.advance(dt.timedelta(seconds=30))
            page = served.client.get("/oauth/authorize", params=params).text
            picker = _post(served.client, page, fields | {"otp": code_now(totp, clock)})
            choice = re.search(r'name="choice" value="([^"]+)"', picker.text)
            assert choice is not None
            chosen = served.client.post(
                "/oauth/authorize/act-for",
                data={"choice": choice.group(1), "professional": str(doctors[1].id)},
                follow_redirects=False,
            )
            if is_consent_page(chosen):
                chosen = decide(served.client, chosen.text, "approve")
        assert chosen.status_code == 303, chosen.text
        assert "code" in query_of(chosen.headers["location"])
