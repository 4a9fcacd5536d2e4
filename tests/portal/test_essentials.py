"""The essential data partial both portals include, and its add and withdraw forms."""

from __future__ import annotations

import datetime as dt
import uuid
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.models import GrantLevel
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.catalogue import LOINC_SYSTEM
from carnet.clock import FrozenClock
from carnet.essentials import service as essentials
from carnet.essentials.models import Category, EssentialFact
from carnet.patients.models import Patient
from carnet.portal import browser_session
from carnet.portal import essentials as essential_routes
from carnet.portal.i18n import environment
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from carnet.web.i18n import Formats
from factories.actors import patient_actor, professional_actor
from factories.auth import Served, make_patient_login, make_professional_login
from factories.directory import make_professional
from factories.documents import make_document
from factories.patients import make_patient
from factories.portal import sign_in_patient, sign_in_professional

FORMATS = Formats("en", ZoneInfo("Europe/Luxembourg"))


class _Page(HTMLParser):
    """The parts of a rendered page the assertions look at."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: set[str] = set()
        self.fields: list[dict[str, str | None]] = []
        self.forms: list[str] = []
        self.links: list[str] = []
        self.headings: list[str] = []
        self.styled = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.styled |= "style" in found or tag == "script"
        if tag == "label" and found.get("for"):
            self.labels.add(str(found["for"]))
        if tag in ("input", "select", "textarea") and found.get("type") != "hidden":
            self.fields.append(found)
        if tag == "form":
            self.forms.append(str(found.get("action")))
        if tag == "a":
            self.links.append(str(found.get("href")))
        if tag in ("h1", "h2", "h3", "h4"):
            self.headings.append(tag)


def _render(essentials_: essentials.Essentials, **context: Any) -> str:
    values: dict[str, Any] = {
        "essentials": essentials_,
        "fmt": FORMATS,
        "csrf": "token-1",
        "actor": None,
        "path": "/portal/patient",
        "query": "",
        "static": "/portal/static",
        "document_url_prefix": "/portal/patient/documents/",
    }
    values.update(context)
    return environment("en").get_template("_essentials.html").render(**values)


def _parsed(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture
def patient(session: Session, clock: FrozenClock) -> Patient:
    return make_patient(session, clock)


@pytest.fixture
def me(patient: Patient) -> Actor:
    return patient_actor(patient)


@pytest.fixture
def doctor(session: Session, clock: FrozenClock, patient: Patient, me: Actor) -> Actor:
    gp = make_professional(session, clock, family="Hoffmann")
    access_rules.grant_access(
        session,
        open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
        level=GrantLevel.NORMAL,
        professional_id=gp.id,
    )
    return professional_actor(gp)


def _record(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    clock: FrozenClock,
    category: Category,
    text: str,
    details: dict[str, str] | None = None,
) -> EssentialFact:
    return essentials.record_fact(
        session,
        open_dossier(session, actor, patient_id, purposes.RECORD_ESSENTIALS, clock=clock),
        category=category,
        text=text,
        details=details,
    )


class TestPartial:
    def test_every_category_has_its_box_and_empty_ones_say_so(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, doctor: Actor
    ) -> None:
        _record(session, me, patient.id, clock, Category.BLOOD_GROUP, "O+", {"group": "O+"})
        _record(
            session,
            me,
            patient.id,
            clock,
            Category.ALLERGY,
            "Penicillin",
            {"reaction": "anaphylaxis", "severity": "severe"},
        )
        _record(
            session,
            me,
            patient.id,
            clock,
            Category.EMERGENCY_CONTACT,
            "Anne Weber (sister)",
            {"name": "Anne Weber", "phone": "+352 621 123 456"},
        )
        _record(session, doctor, patient.id, clock, Category.TREATMENT, "Ramipril 5 mg")
        html = _render(
            essentials.read_essentials(
                session,
                open_dossier(session, me, patient.id, purposes.READ_ESSENTIALS, clock=clock),
            ),
            actor=me,
        )
        page = _parsed(html)
        assert "Essential data" in html
        assert 'class="essentials"' in html
        for title in (
            "Blood group",
            "Allergies and intolerances",
            "Current treatments",
            "Vaccinations",
            "Emergency contacts",
            "Advance directives",
        ):
            assert title in html
        assert html.count("Nothing recorded") == 2  # vaccinations, advance directives
        assert '<p class="blood-group"><strong>O+</strong></p>' in html
        assert "Severe" in html  # the severity in words, not by colour alone
        assert "tel:+352621123456" in page.links
        assert "Recorded by you on" in html
        assert "Recorded by Marc Hoffmann on" in html
        assert page.headings == ["h2"] + ["h3"] * 6
        assert not page.styled

    def test_the_forms_are_those_the_reader_may_use_and_every_field_is_labelled(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor
    ) -> None:
        fact = _record(session, me, patient.id, clock, Category.ALLERGY, "Latex")
        html = _render(
            essentials.read_essentials(
                session,
                open_dossier(session, me, patient.id, purposes.READ_ESSENTIALS, clock=clock),
            ),
            actor=me,
        )
        page = _parsed(html)
        add = f"/portal/essentials/{patient.id}/facts"
        # The patient records four categories, not treatments nor vaccinations.
        assert page.forms.count(add) == 4
        assert 'name="category" value="treatment"' not in html
        assert f"{add}/{fact.id}/withdraw" in page.forms
        assert 'name="csrf" value="token-1"' in html
        assert '<input type="hidden" name="next" value="/portal/patient">' in html
        assert html.count("<details") == 4
        assert page.fields
        for field in page.fields:
            assert field.get("id") in page.labels, field

    def test_without_a_csrf_token_nothing_is_offered_to_change(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor
    ) -> None:
        _record(session, me, patient.id, clock, Category.ALLERGY, "Latex")
        html = _render(
            essentials.read_essentials(
                session,
                open_dossier(session, me, patient.id, purposes.READ_ESSENTIALS, clock=clock),
            ),
            actor=me,
            csrf=None,
        )
        assert "<form" not in html
        assert "Latex" in html

    def test_documents_link_to_the_portal_that_shows_them(
        self,
        session: Session,
        clock: FrozenClock,
        store: FilesystemDocumentStore,
        patient: Patient,
        doctor: Actor,
    ) -> None:
        document = make_document(
            session,
            store,
            clock,
            actor=doctor,
            patient_id=patient.id,
            type_system=LOINC_SYSTEM,
            type_code="48765-2",
            title="Allergy report",
        )
        prefix = f"/portal/professional/patients/{patient.id}/documents/"
        html = _render(
            essentials.read_essentials(
                session,
                open_dossier(session, doctor, patient.id, purposes.READ_ESSENTIALS, clock=clock),
            ),
            actor=doctor,
            document_url_prefix=prefix,
            path=f"/portal/professional/patients/{patient.id}",
        )
        assert f"{prefix}{document.id}" in _parsed(html).links
        assert "Allergy report" in html
        assert "Essential documents" in html
        # A professional records every category.
        assert html.count("<details") == len(Category)


# --- the forms' routes ------------------------------------------------------------------------


@pytest.fixture
def portal(web: Served) -> Served:
    """The portal with the essential data routes (``application.install`` may serve them)."""
    app = web.client.app
    routes = {getattr(route, "path", None) for route in app.routes}  # type: ignore[attr-defined]
    if "/portal/essentials/{patient_id}/facts" not in routes:
        app.include_router(essential_routes.router)  # type: ignore[attr-defined]
    return web


def _browser(served: Served, wrapper: MasterKeyWrapper) -> browser_session.BrowserSession:
    browser = browser_session.open_session(
        served.client.cookies.get(browser_session.SESSION_COOKIE), wrapper
    )
    assert browser is not None
    return browser


def _facts(session: Session, patient_id: uuid.UUID) -> list[EssentialFact]:
    return list(
        session.scalars(
            select(EssentialFact)
            .where(EssentialFact.patient_id == patient_id)
            .order_by(EssentialFact.recorded_at)
        )
    )


class TestForms:
    def test_a_patient_adds_a_contact_and_comes_back_with_a_message(
        self, portal: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(portal.client, login, clock)
        patient_id = login.patient.id
        answer = portal.client.post(
            f"/portal/essentials/{patient_id}/facts",
            data={
                "csrf": _browser(portal, wrapper).csrf,
                "next": "/portal/patient",
                "category": "emergency-contact",
                "name": "Anne Weber",
                "relationship": "sister",
                "phone": "+352 621 123 456",
            },
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/portal/patient#essential-data"
        browser = _browser(portal, wrapper)
        assert (browser.flash, browser.flash_kind) == ("Recorded in the essential data.", "success")
        (fact,) = _facts(session, patient_id)
        assert fact.text == "Anne Weber (sister)"
        assert fact.details == {
            "name": "Anne Weber",
            "relationship": "sister",
            "phone": "+352 621 123 456",
        }
        assert fact.recorded_by_kind == "patient"

    def test_a_bad_fact_comes_back_with_what_is_wrong_and_nothing_written(
        self, portal: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(portal.client, login, clock)
        answer = portal.client.post(
            f"/portal/essentials/{login.patient.id}/facts",
            data={
                "csrf": _browser(portal, wrapper).csrf,
                "next": "https://evil.example/",
                "category": "emergency-contact",
                "name": "Anne Weber",
                "phone": "ask the neighbours",
            },
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/portal/patient#essential-data"
        browser = _browser(portal, wrapper)
        assert browser.flash_kind == "error"
        assert browser.flash == "Give a telephone number, such as +352 621 123 456."
        assert _facts(session, login.patient.id) == []

    def test_a_professional_withdraws_a_fact_and_it_stays_in_the_history(
        self, portal: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        patient = make_patient(session, clock)
        login = make_professional_login(session, clock, wrapper)
        access_rules.grant_access(
            session,
            open_dossier(
                session, patient_actor(patient), patient.id, purposes.GRANT_ACCESS, clock=clock
            ),
            level=GrantLevel.NORMAL,
            professional_id=login.professional.id,
        )
        fact = _record(
            session, patient_actor(patient), patient.id, clock, Category.ALLERGY, "Latex"
        )
        sign_in_professional(portal.client, login, clock)
        clock.advance(dt.timedelta(minutes=1))
        answer = portal.client.post(
            f"/portal/essentials/{patient.id}/facts/{fact.id}/withdraw",
            data={"csrf": _browser(portal, wrapper).csrf, "next": ""},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == (
            f"/portal/professional/patients/{patient.id}#essential-data"
        )
        session.refresh(fact)
        assert fact.withdrawn_at == clock.now()
        assert fact.withdrawn_by == f"Practitioner/{login.professional.id}"

    def test_a_professional_without_access_is_refused_and_the_refusal_recorded(
        self, portal: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        patient = make_patient(session, clock)
        fact = _record(
            session, patient_actor(patient), patient.id, clock, Category.ALLERGY, "Latex"
        )
        login = make_professional_login(session, clock, wrapper)
        sign_in_professional(portal.client, login, clock)
        answer = portal.client.post(
            f"/portal/essentials/{patient.id}/facts/{fact.id}/withdraw",
            data={"csrf": _browser(portal, wrapper).csrf},
            follow_redirects=False,
        )
        assert answer.status_code == 404
        session.refresh(fact)
        assert fact.withdrawn_at is None
        refused = session.scalar(
            select(AuditEvent)
            .where(AuditEvent.chain_id == patient.id)
            .order_by(AuditEvent.seq.desc())
        )
        assert refused is not None
        assert (refused.action, refused.outcome) == (
            AuditAction.STATUS_CHANGE,
            AuditOutcome.DENIED,
        )
        assert refused.agent_professional_id == login.professional.id

    def test_a_form_without_its_csrf_token_is_refused(
        self, portal: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(portal.client, login, clock)
        answer = portal.client.post(
            f"/portal/essentials/{login.patient.id}/facts",
            data={"category": "allergy", "text": "Latex"},
            follow_redirects=False,
        )
        assert answer.status_code == 403
        assert _facts(session, login.patient.id) == []
