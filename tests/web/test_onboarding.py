"""Production sign-in (no demo) and onboarding over HTTP: the letter, the invitation link."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pyotp
import pytest
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.auth import onboarding
from carnet.auth.models import ProfessionalAccount
from carnet.clock import FrozenClock
from carnet.lifecycle import service as lifecycle
from carnet.patients.models import DossierState
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import operator_actor
from factories.auth import (
    REDIRECT_URI,
    Served,
    authorize_params,
    decide,
    is_consent_page,
    make_app,
    pkce,
    query_of,
    serve,
    ticket_of,
)
from factories.directory import make_professional
from factories.lifecycle import CODE_LIFETIME, make_invited_patient

BORN = dt.date(1980, 5, 17)
PASSWORD = "lantern river quietly"


@pytest.fixture
def production(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
) -> Iterator[Served]:
    """Carnet as a deployment runs it: the demo identity provider off."""
    with serve(session, store, clock, wrapper, demo_idp=False) as served:
        yield served


def _field(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found is not None, name
    return found.group(1)


def _secret(page: str) -> str:
    found = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page)
    assert found is not None
    return found.group(1)


class TestProductionSignIn:
    def test_the_sign_in_page_works_without_the_demo_and_offers_the_letter(
        self, production: Served, session: Session, clock: FrozenClock
    ) -> None:
        app = make_app(session, clock)
        page = production.client.get(
            "/oauth/authorize", params=authorize_params(app.client_id, pkce()[1])
        )
        assert page.status_code == 200
        assert "/oauth/authorize/letter?ticket=" in page.text
        assert 'id="demo-hints"' not in page.text
        assert 'value="card"' not in page.text  # no card reader without a card authority

    def test_the_demo_adds_its_hints(
        self, web: Served, session: Session, clock: FrozenClock
    ) -> None:
        app = make_app(session, clock)
        page = web.client.get("/oauth/authorize", params=authorize_params(app.client_id, pkce()[1]))
        assert 'id="demo-hints"' in page.text


class TestLetter:
    def test_a_patient_creates_their_account_from_the_letter_and_goes_on_signed_in(
        self, production: Served, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_invited_patient(session, clock, birth_date=BORN)
        code = lifecycle.issue_invitation(
            session,
            open_dossier(
                session, operator_actor(), patient.id, purposes.ISSUE_INVITATION, clock=clock
            ),
            lifetime=CODE_LIFETIME,
        ).code
        app = make_app(session, clock)
        client = production.client
        sign_in_page = client.get(
            "/oauth/authorize", params=authorize_params(app.client_id, pkce()[1])
        )
        ticket = ticket_of(sign_in_page.text)
        letter = client.get("/oauth/authorize/letter", params={"ticket": ticket})
        assert letter.status_code == 200
        fields = {
            "ticket": ticket,
            "identifier": patient.identifiers[0].value,
            "birth_day": "17",
            "birth_month": "5",
            "birth_year": "1980",
        }
        wrong = client.post("/oauth/authorize/letter", data={**fields, "code": "ABCDEFGHJKMN"})
        assert wrong.status_code == 400
        assert 'id="letter-error"' in wrong.text
        account = client.post("/oauth/authorize/letter", data={**fields, "code": code})
        assert account.status_code == 200, account.text
        assert "<svg" in account.text  # the QR code, drawn on the server
        secret = _secret(account.text)
        done = client.post(
            "/oauth/authorize/account",
            data={
                "state": _field(account.text, "state"),
                "password": PASSWORD,
                "password_again": PASSWORD,
                "otp": pyotp.TOTP(secret).at(clock.now()),
            },
            follow_redirects=False,
        )
        if is_consent_page(done):
            done = decide(client, done.text, "approve")
        assert done.status_code == 303, done.text
        assert done.headers["location"].startswith(REDIRECT_URI)
        assert "code" in query_of(done.headers["location"])
        session.refresh(patient.dossier)
        assert patient.dossier.state is DossierState.ACTIVE

    def test_a_weak_password_shows_the_page_again_with_the_reason(
        self, production: Served, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_invited_patient(session, clock, birth_date=BORN)
        code = lifecycle.issue_invitation(
            session,
            open_dossier(
                session, operator_actor(), patient.id, purposes.ISSUE_INVITATION, clock=clock
            ),
            lifetime=CODE_LIFETIME,
        ).code
        client = production.client
        client.get("/oauth/authorize/letter")
        account = client.post(
            "/oauth/authorize/letter",
            data={
                "identifier": patient.identifiers[0].value,
                "birth_day": "17",
                "birth_month": "5",
                "birth_year": "1980",
                "code": code,
            },
        )
        secret = _secret(account.text)
        refused = client.post(
            "/oauth/authorize/account",
            data={
                "state": _field(account.text, "state"),
                "password": "password1234",
                "password_again": "password1234",
                "otp": pyotp.TOTP(secret).at(clock.now()),
            },
        )
        assert refused.status_code == 400
        assert "most common" in refused.text
        session.refresh(patient.dossier)
        assert patient.dossier.state is DossierState.INVITED  # nothing half-done

    def test_a_form_posted_from_elsewhere_is_refused(self, production: Served) -> None:
        response = production.client.post(
            "/oauth/authorize/letter", data={"identifier": "1", "code": "X"}
        )
        assert response.status_code == 400


class TestInvitation:
    def test_a_professional_sets_up_their_sign_in_from_the_agency_link(
        self, production: Served, session: Session, clock: FrozenClock
    ) -> None:
        professional = make_professional(session, clock)
        _, code = onboarding.invite_professional(
            session, identifier=professional.identifier_value, issued_by="operator:a", clock=clock
        )
        client = production.client
        account = client.get("/oauth/authorize/invitation", params={"code": code})
        assert account.status_code == 200, account.text
        secret = _secret(account.text)
        done = client.post(
            "/oauth/authorize/account",
            data={
                "state": _field(account.text, "state"),
                "password": PASSWORD,
                "password_again": PASSWORD,
                "otp": pyotp.TOTP(secret).at(clock.now()),
            },
        )
        assert done.status_code == 200
        assert 'id="account-ready"' in done.text
        assert session.get(ProfessionalAccount, professional.id) is not None
        again = client.get("/oauth/authorize/invitation", params={"code": code})
        assert again.status_code == 400
