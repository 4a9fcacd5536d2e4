"""The consent screen for third-party SMART apps, and representatives over the API.

SMART App Launch 2.x standalone launch (``launch/patient``, the ``patient`` launch context in
the token response); RFC 6749 section 4.1.2.1 (``access_denied``); RFC 7636 (PKCE).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access import representation as access_representation
from carnet.access.door import open_dossier
from carnet.access.models import RepresentationKind
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.auth.models import AppApproval
from carnet.clock import FrozenClock
from carnet.documents.models import Document
from carnet.fhir.ids import parse_document_resource_id
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from carnet.web.scope_words import describe
from factories.actors import operator_actor, patient_actor
from factories.auth import (
    PASSWORD,
    REDIRECT_URI,
    PatientLogin,
    Served,
    authorize_params,
    code_now,
    decide,
    is_consent_page,
    make_app,
    make_patient_login,
    pkce,
    query_of,
    sign_in,
)
from factories.documents import make_document
from factories.patients import make_patient
from factories.portal import csrf_of, sign_in_patient

STANDALONE = "openid fhirUser launch/patient offline_access patient/*.rs"


def _fields(login: PatientLogin, clock: FrozenClock) -> dict[str, str]:
    return {
        "method": "patient",
        "identifier": login.identifier,
        "password": PASSWORD,
        "otp": code_now(login.totp, clock),
    }


def _launch(
    web: Served, client_id: str, login: PatientLogin, clock: FrozenClock, scope: str = STANDALONE
) -> tuple[Any, str]:
    """Authorize and sign in; the response (consent page or redirect) and the PKCE verifier."""
    # A one-time code is accepted once: each sign-in in its own time step (RFC 6238).
    clock.advance(dt.timedelta(seconds=30))
    verifier, challenge = pkce()
    params = authorize_params(client_id, challenge, scope=scope)
    response = sign_in(web.client, params, _fields(login, clock), consent=None)
    return response, verifier


def _token(web: Served, client_id: str, redirect: Any, verifier: str) -> dict[str, Any]:
    assert redirect.status_code == 303, redirect.text
    back = query_of(redirect.headers["location"])
    response = web.client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": back["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": client_id,
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _launch_for_self(
    web: Served, client_id: str, login: PatientLogin, clock: FrozenClock
) -> dict[str, Any]:
    """A representative's launch approved for their own dossier: the token response."""
    page, verifier = _launch(web, client_id, login, clock)
    own = decide(web.client, page.text, "approve", patient=str(login.patient.id))
    return _token(web, client_id, own, verifier)


def _documents(web: Served, token: str, patient: Patient, **headers: str) -> Any:
    return web.client.get(
        "/fhir/DocumentReference",
        params={"patient": f"Patient/{patient.id}"},
        headers={"Authorization": f"Bearer {token}", **headers},
    )


def _ids(bundle: Any) -> set[str]:
    """The documents of a searchset, as ``str(document.id)``."""
    assert bundle.status_code == 200, bundle.text
    found = set()
    for entry in bundle.json().get("entry", []):
        parsed = parse_document_resource_id(entry["resource"]["id"])
        assert parsed is not None
        found.add(str(parsed[1]))
    return found


def _nothing(response: Any) -> bool:
    """Refused (403) or an empty searchset: nothing of the dossier reached the app."""
    return response.status_code == 403 or (response.status_code == 200 and not _ids(response))


def _publish(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, patient: Patient
) -> Document:
    return make_document(session, store, clock, actor=patient_actor(patient), patient_id=patient.id)


class TestTheConsentScreen:
    def test_a_standalone_launch_asks_once_then_remembers(
        self,
        web: Served,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        document = _publish(session, store, clock, login.patient)
        app = make_app(session, clock)

        page, verifier = _launch(web, app.client_id, login, clock)
        assert is_consent_page(page)
        assert "Mon Carnet mobile" in page.text
        # Plain words, not scope strings.
        assert "Read your whole dossier" in page.text
        assert "Stay signed in" in page.text
        assert "patient/*.rs" not in page.text
        assert page.headers["cache-control"] == "no-store"
        body = _token(web, app.client_id, decide(web.client, page.text, "approve"), verifier)
        assert body["patient"] == str(login.patient.id)
        assert _ids(_documents(web, body["access_token"], login.patient)) == {str(document.id)}

        again, verifier = _launch(web, app.client_id, login, clock)
        assert not is_consent_page(again)
        assert _token(web, app.client_id, again, verifier)["patient"] == str(login.patient.id)
        granted = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == AuditAction.GRANT,
                AuditEvent.agent_subject == f"Patient/{login.patient.id}",
            )
        ).all()
        assert len(granted) == 1
        assert app.client_id in granted[0].details

    def test_a_wider_request_asks_again(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        app = make_app(session, clock)
        page, _ = _launch(web, app.client_id, login, clock)
        decide(web.client, page.text, "approve")
        _verifier, challenge = pkce()
        wider = authorize_params(app.client_id, challenge, scope=f"{STANDALONE} user/*.rs")
        clock.advance(dt.timedelta(seconds=30))
        assert is_consent_page(sign_in(web.client, wider, _fields(login, clock), consent=None))

    def test_refusing_sends_access_denied_back_to_the_app(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        app = make_app(session, clock)
        page, _ = _launch(web, app.client_id, login, clock)
        refused = decide(web.client, page.text, "refuse")
        assert refused.status_code == 303
        assert refused.headers["location"].startswith(REDIRECT_URI + "?")
        back = query_of(refused.headers["location"])
        assert back["error"] == "access_denied"
        assert "code" not in back
        assert back["state"]
        assert session.scalars(select(AppApproval)).all() == []
        # Refused is not remembered: the next sign-in asks again.
        assert is_consent_page(_launch(web, app.client_id, login, clock)[0])

    def test_a_consent_form_is_spent_on_first_use(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        app = make_app(session, clock)
        page, _ = _launch(web, app.client_id, login, clock)
        assert decide(web.client, page.text, "approve").status_code == 303
        assert decide(web.client, page.text, "approve").status_code == 400

    def test_another_browser_cannot_answer_it(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        app = make_app(session, clock)
        page, _ = _launch(web, app.client_id, login, clock)
        web.client.cookies.clear()
        assert decide(web.client, page.text, "approve").status_code == 400

    def test_the_portal_never_shows_it(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        # sign_in_patient asserts the sign-in goes straight back to the portal with a code.
        assert sign_in_patient(web.client, login, clock) == "/portal/patient"
        assert session.scalars(select(AppApproval)).all() == []


class TestRevokingFromThePortal:
    def test_revoking_ends_the_refresh_token_and_asks_again(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        app = make_app(session, clock)
        page, verifier = _launch(web, app.client_id, login, clock)
        body = _token(web, app.client_id, decide(web.client, page.text, "approve"), verifier)

        clock.advance(dt.timedelta(seconds=30))
        sign_in_patient(web.client, login, clock)
        apps = web.client.get("/portal/patient/apps")
        assert apps.status_code == 200
        assert "Mon Carnet mobile" in apps.text
        assert "Read your whole dossier" in apps.text
        revoked = web.client.post(
            f"/portal/patient/apps/{app.client_id}/revoke", data={"csrf": csrf_of(apps.text)}
        )
        assert revoked.status_code == 200
        assert "Mon Carnet mobile" not in revoked.text

        refresh = web.client.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": body["refresh_token"],
                "client_id": app.client_id,
            },
        )
        assert refresh.status_code == 400
        assert refresh.json()["error"] == "invalid_grant"
        assert _documents(web, body["access_token"], login.patient).status_code == 401
        assert session.scalars(
            select(AuditEvent).where(AuditEvent.action == AuditAction.REVOKE)
        ).all()
        assert is_consent_page(_launch(web, app.client_id, login, clock)[0])

    def test_revoking_an_app_never_approved_is_not_found(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        app = make_app(session, clock)
        sign_in_patient(web.client, login, clock)
        apps = web.client.get("/portal/patient/apps")
        assert "You have not allowed any app." in apps.text
        answer = web.client.post(
            f"/portal/patient/apps/{app.client_id}/revoke", data={"csrf": csrf_of(apps.text)}
        )
        assert answer.status_code == 404


class TestRepresentatives:
    @pytest.fixture
    def family(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> tuple[PatientLogin, Patient, Patient, dict[str, Document]]:
        """A parent with an account, their child, a stranger; one document each."""
        login = make_patient_login(session, clock, wrapper)
        child = make_patient(session, clock, given="Tom", birth_date=dt.date(2015, 3, 1))
        stranger = make_patient(session, clock, given="Zoé")
        access_representation.record_representation(
            session,
            open_dossier(
                session, operator_actor(), child.id, purposes.RECORD_REPRESENTATION, clock=clock
            ),
            login.patient.id,
            kind=RepresentationKind.PARENT,
        )
        documents = {
            "parent": _publish(session, store, clock, login.patient),
            "child": _publish(session, store, clock, child),
            "stranger": _publish(session, store, clock, stranger),
        }
        return login, child, stranger, documents

    # With user/ scopes too: the launch context, not the scopes, bounds a representative's token.
    @pytest.mark.parametrize("scope", [STANDALONE, f"{STANDALONE} user/*.rs"])
    def test_a_launch_for_the_child_reads_the_childs_documents_and_nothing_else(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        family: tuple[PatientLogin, Patient, Patient, dict[str, Document]],
        scope: str,
    ) -> None:
        login, child, stranger, documents = family
        app = make_app(session, clock)
        page, verifier = _launch(web, app.client_id, login, clock, scope=scope)
        assert is_consent_page(page)
        assert "Whose dossier" in page.text
        assert "Tom" in page.text
        answer = decide(web.client, page.text, "approve", patient=str(child.id))
        body = _token(web, app.client_id, answer, verifier)
        assert body["patient"] == str(child.id)
        token = body["access_token"]

        assert _ids(_documents(web, token, child)) == {str(documents["child"].id)}
        assert _nothing(_documents(web, token, login.patient))
        assert _nothing(_documents(web, token, stranger))
        read = session.scalars(
            select(AuditEvent).where(
                AuditEvent.chain_id == child.id, AuditEvent.outcome == AuditOutcome.ALLOWED
            )
        ).all()
        assert any(event.on_behalf_of == child.id for event in read)

        # Refreshed tokens keep the launch context.
        refreshed = web.client.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": body["refresh_token"],
                "client_id": app.client_id,
            },
        )
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["patient"] == str(child.id)

    def test_the_choice_is_offered_at_every_launch(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        family: tuple[PatientLogin, Patient, Patient, dict[str, Document]],
    ) -> None:
        login, _child, _stranger, _documents = family
        app = make_app(session, clock)
        assert _launch_for_self(web, app.client_id, login, clock)["patient"] == str(
            login.patient.id
        )
        assert is_consent_page(_launch(web, app.client_id, login, clock)[0])

    def test_a_dossier_not_offered_is_refused(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        family: tuple[PatientLogin, Patient, Patient, dict[str, Document]],
    ) -> None:
        login, _child, stranger, _documents = family
        app = make_app(session, clock)
        page, _ = _launch(web, app.client_id, login, clock)
        answer = decide(web.client, page.text, "approve", patient=str(stranger.id))
        assert answer.status_code == 400
        assert session.scalars(select(AppApproval)).all() == []

    def test_on_behalf_of_reaches_the_represented_dossier_only(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        family: tuple[PatientLogin, Patient, Patient, dict[str, Document]],
    ) -> None:
        login, child, stranger, documents = family
        app = make_app(session, clock)
        token = _launch_for_self(web, app.client_id, login, clock)["access_token"]
        # Without the header, patient/ scopes reach the parent's own dossier only.
        assert _nothing(_documents(web, token, child))

        for_child = {"On-Behalf-Of": f"Patient/{child.id}"}
        assert _ids(_documents(web, token, child, **for_child)) == {str(documents["child"].id)}
        assert _nothing(_documents(web, token, login.patient, **for_child))
        for_stranger = {"On-Behalf-Of": f"Patient/{stranger.id}"}
        assert _nothing(_documents(web, token, stranger, **for_stranger))
        refused = session.scalars(
            select(AuditEvent).where(
                AuditEvent.chain_id == stranger.id, AuditEvent.outcome == AuditOutcome.DENIED
            )
        ).all()
        assert refused
        assert all(event.on_behalf_of == stranger.id for event in refused)
        allowed = session.scalars(
            select(AuditEvent).where(
                AuditEvent.chain_id == child.id, AuditEvent.outcome == AuditOutcome.ALLOWED
            )
        ).all()
        assert any(event.on_behalf_of == child.id for event in allowed)
        malformed = _documents(web, token, child, **{"On-Behalf-Of": "nobody"})
        assert malformed.status_code == 400


class TestScopesInPlainWords:
    @pytest.mark.parametrize(
        ("scope", "expected"),
        [
            ("patient/*.rs", ["Read your whole dossier"]),
            ("patient/DocumentReference.rs", ["Read your documents"]),
            (
                "patient/AllergyIntolerance.r",
                ["Read your essential data (allergies, blood group…)"],
            ),
            ("offline_access", ["Stay signed in, even while you do not use it (offline access)"]),
            ("openid fhirUser", ["Know who you are (openid, fhirUser)"]),
            ("user/DocumentReference.rs", ["Read your documents, in every dossier you may open"]),
            ("patient/Encounter.rs", ["patient/Encounter.rs"]),
        ],
    )
    def test_each_scope_reads_as_a_sentence(self, scope: str, expected: list[str]) -> None:
        assert describe(scope, lambda message: message) == expected

    def test_every_scope_carnet_offers_has_words(self) -> None:
        from carnet.access.scopes import NON_RESOURCE_SCOPES
        from carnet.oauth.tokens import _SCOPES_SUPPORTED

        for scope in {*NON_RESOURCE_SCOPES, *_SCOPES_SUPPORTED}:
            for sentence in describe(scope, lambda message: message):
                assert "/" not in sentence or "launch" in scope, (scope, sentence)
