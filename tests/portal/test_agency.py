"""The agency portal: indicators from real rows, their CSV export, enrolment, who may see them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction, AuditEvent
from carnet.auth import accounts
from carnet.catalogue import load_catalogue
from carnet.clock import Clock, FrozenClock
from carnet.patients.identifiers import LU_MATRICULE
from carnet.patients.models import DossierState
from carnet.patients.service import find_patient
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from carnet.web.i18n import Formats
from factories.actors import professional_actor
from factories.auth import (
    PASSWORD,
    Served,
    code_now,
    make_patient_login,
    make_professional_login,
)
from factories.directory import make_organisation, make_professional
from factories.documents import PATIENT_SUMMARY, make_document
from factories.lifecycle import make_invited_patient, registry_csv, registry_row
from factories.patients import make_patient
from factories.portal import csrf_of, sign_in_patient, sign_in_professional

_TICKET = re.compile(r'name="ticket" value="([^"]+)"')
ENGLISH = Formats("en", ZoneInfo("Europe/Luxembourg"))


def sign_in_operator(
    client: TestClient,
    session: Session,
    clock: Clock,
    wrapper: MasterKeyWrapper,
    *,
    name: str = "jdupont",
    kind: ActorKind = ActorKind.OPERATOR,
) -> str:
    """Create an agency account and sign it in through Carnet's page; where the portal sent it."""
    totp = pyotp.TOTP(
        accounts.create_operator_account(
            session, name=name, kind=kind, password=PASSWORD, key_wrapper=wrapper, clock=clock
        )
    )
    start = client.get("/portal/sign-in", follow_redirects=False)
    authorize = urlsplit(start.headers["location"])
    page = client.get(f"{authorize.path}?{authorize.query}")
    ticket = _TICKET.search(page.text)
    assert ticket is not None, page.text
    answer = client.post(
        "/oauth/authorize",
        data={
            "ticket": ticket.group(1),
            "method": "operator",
            "identifier": name,
            "password": PASSWORD,
            "otp": code_now(totp, clock),
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    back = urlsplit(answer.headers["location"])
    landed = client.get(f"{back.path}?{back.query}", follow_redirects=False)
    assert landed.status_code == 303, landed.text
    return str(landed.headers["location"])


def _populate(session: Session, store: FilesystemDocumentStore, clock: FrozenClock) -> None:
    """Two active dossiers, one invited, one closed; three documents, two consultations."""
    first, second = make_patient(session, clock), make_patient(session, clock)
    make_invited_patient(session, clock)
    make_patient(session, clock, state=DossierState.CLOSED)
    lab = make_organisation(session, clock)
    author = professional_actor(make_professional(session, clock, organisation_id=lab.id))
    make_document(session, store, clock, actor=author, patient_id=first.id)
    make_document(session, store, clock, actor=author, patient_id=second.id)
    make_document(
        session,
        store,
        clock,
        actor=author,
        patient_id=first.id,
        type_system=PATIENT_SUMMARY[0],
        type_code=PATIENT_SUMMARY[1],
    )
    for patient in (first, second):
        audit_trail.record(
            session, agent=author.agent, action=AuditAction.READ, clock=clock, patient_id=patient.id
        )
    audit_trail.record(
        session,
        agent=author.agent,
        action=AuditAction.BREAK_GLASS,
        clock=clock,
        patient_id=second.id,
    )


def _figure(page: str, label: str) -> str:
    """The value shown in the figure labelled ``label``."""
    found = re.search(
        r'<span class="value">([^<]+)</span> <span class="label">' + re.escape(label), page
    )
    assert found is not None, label
    return found.group(1)


class TestIndicators:
    def test_an_operator_lands_on_the_indicators_built_from_the_rows(
        self,
        web: Served,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        _populate(session, store, clock)
        assert sign_in_operator(web.client, session, clock, wrapper) == "/portal/agency"
        page = web.client.get("/portal/agency")
        assert page.status_code == 200
        text = page.text
        assert (_figure(text, "invited"), _figure(text, "active")) == ("1", "2")
        assert (_figure(text, "opposed"), _figure(text, "closed")) == ("0", "1")
        assert _figure(text, "coverage") == ENGLISH.percent(2 / 4)
        assert _figure(text, "documents in the dossiers") == "3"
        assert _figure(text, "consultations in the period") == "2"
        assert _figure(text, "emergency accesses in the period") == "1"
        assert _figure(text, "organisations that published") == "1"
        lab_label = load_catalogue().by_key("lab-report").labels.en
        assert f"<td>{lab_label}</td>" in text
        assert ENGLISH.percent(2 / 3) in text
        # Two charts drawn on the server, inline, with nothing the CSP would refuse.
        main = text[text.index("<main") :]
        assert main.count('<svg xmlns="http://www.w3.org/2000/svg"') == 2
        assert 'role="img"' in main
        assert "<script" not in main
        assert "<style" not in main
        assert "style=" not in main
        assert "<figcaption" in main
        assert 'href="/portal/static/agency.css"' in text

    def test_each_reading_is_in_the_audit_trail(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        sign_in_operator(web.client, session, clock, wrapper)
        web.client.get("/portal/agency")
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.agent_subject == "operator:jdupont")
        ).all()
        assert AuditAction.AUDIT_SEARCH in {event.action for event in events}

    def test_the_period_selector_narrows_the_daily_figures(
        self,
        web: Served,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        _populate(session, store, clock)
        sign_in_operator(web.client, session, clock, wrapper)
        today = clock.now().date()
        earlier = web.client.get(
            "/portal/agency",
            params={
                "from": (today - dt.timedelta(days=40)).isoformat(),
                "to": (today - dt.timedelta(days=10)).isoformat(),
            },
        )
        assert earlier.status_code == 200
        assert _figure(earlier.text, "consultations in the period") == "0"
        assert _figure(earlier.text, "documents in the dossiers") == "3"  # as of now
        assert 'value="' + (today - dt.timedelta(days=40)).isoformat() + '"' in earlier.text

    def test_a_backwards_period_is_explained_and_kept_in_the_form(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        sign_in_operator(web.client, session, clock, wrapper)
        page = web.client.get("/portal/agency", params={"from": "2026-05-20", "to": "2026-05-01"})
        assert page.status_code == 422
        assert "ends after it starts" in page.text
        assert 'value="2026-05-20"' in page.text
        bad = web.client.get("/portal/agency", params={"from": "yesterday"})
        assert bad.status_code == 422


class TestExport:
    def test_the_csv_parses_and_holds_the_figures(
        self,
        web: Served,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        _populate(session, store, clock)
        sign_in_operator(web.client, session, clock, wrapper)
        home = web.client.get("/portal/agency")
        link = re.search(r'href="(/portal/agency/indicators\.csv\?[^"]+)"', home.text)
        assert link is not None
        response = web.client.get(link.group(1).replace("&amp;", "&"))
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        disposition = response.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="carnet-indicators-')
        assert response.headers["cache-control"] == "no-store"
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0] == ["indicator", "key", "value"]
        table = {(indicator, key): value for indicator, key, value in rows[1:]}
        assert table[("dossiers", "active")] == "2"
        assert table[("dossiers", "invited")] == "1"
        assert table[("insured_population", "")] == "4"
        assert table[("coverage", "")] == "0.5000"
        assert table[("documents_by_type", "lab-report")] == "2"
        assert table[("documents_by_type_share", "patient-summary")] == "0.3333"
        assert table[("consultations_per_day", clock.now().date().isoformat())] == "2"
        assert table[("emergency_accesses", "")] == "1"
        daily = [key for indicator, key in table if indicator == "consultations_per_day"]
        assert len(daily) == 90
        exported = session.scalars(
            select(AuditEvent).where(
                AuditEvent.agent_subject == "operator:jdupont",
                AuditEvent.action == AuditAction.EXPORT,
            )
        ).all()
        assert len(exported) == 1


class TestWhoMaySee:
    def test_a_patient_gets_the_refusal_page(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        sign_in_patient(web.client, make_patient_login(session, clock, wrapper), clock)
        for path in ("/portal/agency", "/portal/agency/indicators.csv", "/portal/agency/enrolment"):
            page = web.client.get(path)
            assert page.status_code == 403, path
            assert "This page is not for your account" in page.text

    def test_a_professional_gets_the_refusal_page(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        sign_in_professional(web.client, make_professional_login(session, clock, wrapper), clock)
        page = web.client.get("/portal/agency")
        assert page.status_code == 403
        assert "text/csv" not in web.client.get("/portal/agency/indicators.csv").headers.get(
            "content-type", ""
        )

    def test_a_security_officer_reads_the_indicators_but_does_not_enrol(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        landed = sign_in_operator(
            web.client, session, clock, wrapper, name="officer", kind=ActorKind.SECURITY_OFFICER
        )
        assert landed == "/portal/agency"
        assert web.client.get("/portal/agency").status_code == 200
        page = web.client.get("/portal/agency/enrolment")
        assert page.status_code == 200
        assert 'type="file"' not in page.text
        refused = web.client.post(
            "/portal/agency/enrolment",
            data={"csrf": csrf_of(page.text)},
            files={"registry": ("r.csv", registry_csv([registry_row()]).encode(), "text/csv")},
        )
        assert refused.status_code == 404


class TestEnrolment:
    def test_an_upload_creates_invited_dossiers_and_lists_the_bad_rows(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        sign_in_operator(web.client, session, clock, wrapper)
        page = web.client.get("/portal/agency/enrolment")
        assert page.status_code == 200
        assert "No enrolment has been run from the portal yet." in page.text
        good, other = registry_row(), registry_row(given="Paul", sex="male")
        content = registry_csv([good, registry_row(sex="sometimes"), other]).encode()
        report = web.client.post(
            "/portal/agency/enrolment",
            data={"csrf": csrf_of(page.text)},
            files={"registry": ("registre-juin.csv", content, "text/csv")},
        )
        assert report.status_code == 200, report.text
        assert "Rows read: 3. Dossiers created: 2" in report.text
        assert "rows rejected: 1" in report.text
        problem = re.search(r'<td class="number">3</td>\s*<td><code>sex</code></td>', report.text)
        assert problem is not None
        for row in (good, other):
            patient = find_patient(session, LU_MATRICULE, row["national_identifier"])
            assert patient is not None
            assert patient.dossier.state is DossierState.INVITED
        listed = web.client.get("/portal/agency/enrolment")
        assert "registre-juin.csv" in listed.text
        assert "operator:jdupont" in listed.text

    def test_a_file_that_is_not_a_registry_is_explained(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        sign_in_operator(web.client, session, clock, wrapper)
        page = web.client.get("/portal/agency/enrolment")
        wrong = web.client.post(
            "/portal/agency/enrolment",
            data={"csrf": csrf_of(page.text)},
            files={"registry": ("notes.csv", b"name,birth\nWeber,1980\n", "text/csv")},
        )
        assert wrong.status_code == 422
        assert "lacks national_identifier" in wrong.text
        empty = web.client.post(
            "/portal/agency/enrolment",
            data={"csrf": csrf_of(page.text)},
            files={"registry": ("", b"", "text/csv")},
        )
        assert empty.status_code == 422
        assert "Choose the registry file to upload." in empty.text

    def test_an_upload_without_the_forms_token_is_refused(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        sign_in_operator(web.client, session, clock, wrapper)
        # A multipart form, as the page sends, without its CSRF token.
        refused = web.client.post(
            "/portal/agency/enrolment", files={"registry": (None, "national_identifier")}
        )
        assert refused.status_code == 403
        assert "This form has expired" in refused.text
