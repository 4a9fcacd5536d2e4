"""Issue 21's words and ways on: the home page at ``/``, the sign-in page in plain words,
notifications that lead to their document, and a refused form that keeps what was typed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.door import open_dossier
from carnet.access.models import GrantLevel
from carnet.clock import FrozenClock
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor, professional_actor
from factories.auth import Served, authorize_params, make_app, make_patient_login, pkce
from factories.directory import make_professional
from factories.documents import make_document
from factories.portal import csrf_of, sign_in_patient


class TestHomePage:
    def test_it_leads_patients_professionals_and_software_makers_on(self, web: Served) -> None:
        page = web.client.get("/")
        assert page.status_code == 200
        assert "on their way" not in page.text
        for link in (
            'href="/portal/sign-in"',
            'href="/portal/sign-in?next=/portal/patient"',
            'href="/portal/sign-in?next=/portal/professional"',
            'href="/docs"',
            'href="/fhir/metadata"',
        ):
            assert link in page.text, link
        assert '<link rel="stylesheet" href="/portal/static/carnet.css">' in page.text

    def test_it_speaks_the_visitors_language(self, web: Served) -> None:
        page = web.client.get("/", headers={"Accept-Language": "de-DE,de;q=0.9"})
        assert '<html lang="de">' in page.text
        assert "Anmelden" in page.text
        web.client.cookies.set("carnet_lang", "fr")
        french = web.client.get("/")
        assert '<html lang="fr">' in french.text
        assert "Se connecter" in french.text


class TestSignInPage:
    def test_an_app_asks_in_plain_words_never_in_scope_strings(
        self, web: Served, session: Session, clock: FrozenClock
    ) -> None:
        app = make_app(session, clock)
        _, challenge = pkce()
        page = web.client.get("/oauth/authorize", params=authorize_params(app.client_id, challenge))
        assert page.status_code == 200
        access = page.text.split('id="sign-in-access"')[1].split("</ul>")[0]
        assert "Read your whole dossier" in access
        assert "Know who you are" in access
        assert "patient/*.rs" not in page.text
        assert "<code>" not in page.text

    def test_carnets_own_portal_lists_no_permissions(self, web: Served) -> None:
        start = web.client.get("/portal/sign-in", follow_redirects=True)
        assert start.status_code == 200
        assert 'id="sign-in-access"' not in start.text
        assert "user/*.cruds" not in start.text


class TestNotificationLinks:
    def test_a_new_document_notice_opens_the_document(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        store: FilesystemDocumentStore,
        wrapper: MasterKeyWrapper,
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        author = professional_actor(make_professional(session, clock, family="Kieffer"))
        document = make_document(session, store, clock, actor=author, patient_id=login.patient.id)
        sign_in_patient(web.client, login, clock)
        page = web.client.get("/portal/patient/notifications")
        assert page.status_code == 200
        assert f'href="/portal/patient/documents/{document.id}"' in page.text
        assert "Open the document" in page.text


class TestFormsKeepWhatWasTyped:
    def test_a_refused_emergency_contact_comes_back_filled_in(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(web.client, login, clock)
        home = web.client.get("/portal/patient")
        answer = web.client.post(
            f"/portal/essentials/{login.patient.id}/facts",
            data={
                "csrf": csrf_of(home.text),
                "next": "/portal/patient",
                "category": "emergency-contact",
                "name": "Jeanne Weber",
                "relationship": "Sœur",
                "phone": "not a number",
            },
        )
        assert answer.status_code == 200
        assert "Give a telephone number" in answer.text
        assert 'value="Jeanne Weber"' in answer.text
        assert 'value="Sœur"' in answer.text
        assert 'value="not a number"' in answer.text
        # Shown once: the next visit starts from an empty form.
        again = web.client.get("/portal/patient")
        assert 'value="Jeanne Weber"' not in again.text

    def test_the_grant_of_the_gp_still_works_alongside(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        # A control: a kept form does not disturb the next successful action.
        login = make_patient_login(session, clock, wrapper)
        doctor = make_professional(session, clock)
        access_rules.grant_access(
            session,
            open_dossier(
                session,
                patient_actor(login.patient),
                login.patient.id,
                purposes.GRANT_ACCESS,
                clock=clock,
            ),
            level=GrantLevel.NORMAL,
            professional_id=doctor.id,
            ends_at=clock.now() + dt.timedelta(days=30),
        )
        sign_in_patient(web.client, login, clock)
        assert "Marc Schmit" in web.client.get("/portal/patient/access").text
