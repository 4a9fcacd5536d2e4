"""The professional portal: find a patient, open the dossier, read and download a document,
add one, break the glass — each through the domain services, with the professional's sign-in.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2 as httpx
import pyotp
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.documentreference import DocumentReference
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.door import open_dossier
from carnet.access.models import GrantLevel
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.auth import accounts
from carnet.clock import FrozenClock
from carnet.demo import accounts as demo_accounts
from carnet.directory.models import Profession
from carnet.documents import reading
from carnet.documents.models import Document
from carnet.essentials import service as essentials
from carnet.notifications import internal as notifications_internal
from carnet.notifications.models import NotificationKind
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor, professional_actor
from factories.auth import (
    PASSWORD,
    ProfessionalLogin,
    Served,
    make_professional_login,
    ticket_of,
)
from factories.directory import make_organisation, make_professional
from factories.documents import PATIENT_SUMMARY, make_document
from factories.patients import make_patient
from factories.pdf import text_pdf
from factories.portal import csrf_of, sign_in_professional

HOME = "/portal/professional"


def patient_url(patient: Patient) -> str:
    return f"{HOME}/patients/{patient.id}"


def document_url(document: Document) -> str:
    return f"{HOME}/patients/{document.patient_id}/documents/{document.id}"


@dataclass
class Clinic:
    """A served Carnet, a signed-in professional and a patient whose dossier is active."""

    web: Served
    session: Session
    store: FilesystemDocumentStore
    clock: FrozenClock
    login: ProfessionalLogin
    patient: Patient

    @property
    def client(self) -> TestClient:
        return self.web.client

    def grant(self, level: GrantLevel = GrantLevel.NORMAL) -> None:
        """The patient grants the professional access, as from their own portal."""
        access_rules.grant_access(
            self.session,
            open_dossier(
                self.session,
                patient_actor(self.patient),
                self.patient.id,
                purposes.GRANT_ACCESS,
                clock=self.clock,
            ),
            level=level,
            professional_id=self.login.professional.id,
        )

    def document_by_a_colleague(self, **changes: object) -> tuple[Document, bytes]:
        """A document another professional published to the patient's dossier, and its bytes."""
        colleague = make_professional(self.session, self.clock, family="Kieffer")
        content = f"Hémoglobine 14.2 g/dL {uuid.uuid4()}".encode()
        document = make_document(
            self.session,
            self.store,
            self.clock,
            actor=professional_actor(colleague),
            patient_id=self.patient.id,
            content=content,
            **changes,
        )
        return document, content

    def search(self, **fields: str) -> httpx.Response:
        home = self.client.get(HOME)
        return self.client.post(
            HOME, data={"csrf": csrf_of(home.text), **fields}, follow_redirects=False
        )

    def events(self, action: AuditAction) -> list[AuditEvent]:
        """The dossier's audit events of one kind."""
        return list(
            self.session.scalars(
                select(AuditEvent)
                .where(AuditEvent.chain_id == self.patient.id, AuditEvent.action == action)
                .order_by(AuditEvent.seq)
            )
        )

    def notices(self) -> list[NotificationKind]:
        return [
            notice.kind
            for notice in notifications_internal.inbox(self.session, patient_id=self.patient.id)
        ]


def _login(
    session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper, profession: Profession
) -> ProfessionalLogin:
    """A professional of the given profession with an account and a card."""
    if profession is Profession.GENERAL_PRACTITIONER:
        return make_professional_login(session, clock, wrapper)
    organisation = make_organisation(session, clock)
    professional = make_professional(
        session, clock, profession=profession, organisation_id=organisation.id, family="Urbany"
    )
    secret = accounts.create_professional_account(
        session,
        professional_id=professional.id,
        password=PASSWORD,
        key_wrapper=wrapper,
        clock=clock,
    )
    demo_accounts.issue_demo_card(
        session,
        professional_id=professional.id,
        pin=demo_accounts.DEMO_PIN,
        key_wrapper=wrapper,
        clock=clock,
    )
    return ProfessionalLogin(professional, professional.identifier_value, pyotp.TOTP(secret))


def _clinic(
    web: Served,
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
    profession: Profession = Profession.GENERAL_PRACTITIONER,
) -> Clinic:
    login = _login(session, clock, wrapper, profession)
    patient = make_patient(session, clock, family="Weber", given="Léa")
    sign_in_professional(web.client, login, clock)
    return Clinic(web, session, store, clock, login, patient)


@pytest.fixture
def clinic(
    web: Served,
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
) -> Clinic:
    """A general practitioner signed in with their card, and a patient."""
    return _clinic(web, session, store, clock, wrapper)


@pytest.fixture
def emergency(
    web: Served,
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
) -> Clinic:
    """An emergency physician signed in with their card, and a patient they have no access to."""
    return _clinic(web, session, store, clock, wrapper, Profession.EMERGENCY_PHYSICIAN)


class TestFindAPatient:
    def test_the_home_page_names_the_professional_and_their_sign_in(self, clinic: Clinic) -> None:
        page = clinic.client.get(HOME)
        assert page.status_code == 200
        assert "Marc Schmit" in page.text
        assert "General practitioner" in page.text
        assert "Professional card" in page.text
        assert "not strong enough" not in page.text

    def test_an_exact_identifier_goes_straight_to_the_patient_page(self, clinic: Clinic) -> None:
        clinic.grant()
        matricule = clinic.patient.identifiers[0].value
        spaced = f"{matricule[:4]} {matricule[4:8]} {matricule[8:]}"
        answer = clinic.search(identifier=spaced)
        assert answer.status_code == 303
        assert answer.headers["location"] == patient_url(clinic.patient)
        page = clinic.client.get(patient_url(clinic.patient))
        assert page.status_code == 200
        assert "<h1>Léa Weber</h1>" in page.text

    def test_name_given_name_and_birth_date_identify_a_patient_without_access(
        self, clinic: Clinic
    ) -> None:
        answer = clinic.search(family="weber", given="LÉA", birth_date="1980-05-17")
        assert answer.status_code == 200
        assert f'href="{patient_url(clinic.patient)}"' in answer.text
        assert "No access" in answer.text
        assert [event.outcome for event in clinic.events(AuditAction.SEARCH)] == [
            AuditOutcome.ALLOWED
        ]

    def test_name_and_birth_date_alone_find_only_the_professionals_own_patients(
        self, clinic: Clinic
    ) -> None:
        unknown = clinic.search(family="Weber", birth_date="17/05/1980")
        assert "No patient found" in unknown.text
        clinic.grant()
        mine = clinic.search(family="Weber", birth_date="17/05/1980")
        assert f'href="{patient_url(clinic.patient)}"' in mine.text
        assert ">Access<" in mine.text

    def test_my_patients_lists_those_with_a_live_basis(self, clinic: Clinic) -> None:
        other = make_patient(clinic.session, clinic.clock, family="Muller", given="Tom")
        clinic.grant()
        listed = clinic.search(search="mine")
        assert "Weber" in listed.text
        assert str(other.id) not in listed.text

    def test_an_incomplete_search_keeps_what_was_typed(self, clinic: Clinic) -> None:
        answer = clinic.search(family="Weber", birth_date="")
        assert answer.status_code == 422
        assert "a family name and a birth date" in answer.text
        assert 'value="Weber"' in answer.text
        assert clinic.events(AuditAction.SEARCH) == []

    def test_a_mistyped_identifier_is_explained(self, clinic: Clinic) -> None:
        matricule = clinic.patient.identifiers[0].value
        wrong = matricule[:-1] + str((int(matricule[-1]) + 1) % 10)
        answer = clinic.search(identifier=wrong)
        assert answer.status_code == 422
        assert "Verhoeff" in answer.text


class TestThreeClicks:
    def test_a_document_is_three_clicks_from_sign_in(self, clinic: Clinic) -> None:
        clinic.grant()
        _, content = clinic.document_by_a_colleague(title="Bilan sanguin")
        # Click 1: the search, on the page the professional lands on after signing in.
        results = clinic.search(family="Weber", given="Léa", birth_date="1980-05-17")
        patients = re.findall(r'href="(/portal/professional/patients/[0-9a-f-]{36})"', results.text)
        assert patients == [patient_url(clinic.patient)]
        # Click 2: the patient.
        page = clinic.client.get(patients[0])
        documents_listed = re.findall(r'href="([^"]+/documents/[0-9a-f-]{36})"', page.text)
        assert len(documents_listed) == 1
        # Click 3: the document.
        viewer = clinic.client.get(documents_listed[0])
        assert viewer.status_code == 200
        assert content.decode() in viewer.text


class TestPatientPage:
    def test_without_access_the_page_says_so_and_the_search_is_audited(
        self, clinic: Clinic
    ) -> None:
        document, _ = clinic.document_by_a_colleague(title="Bilan confidentiel")
        answer = clinic.search(identifier=clinic.patient.identifiers[0].value)
        assert answer.headers["location"] == patient_url(clinic.patient)
        page = clinic.client.get(patient_url(clinic.patient))
        assert page.status_code == 403
        assert "No access to this dossier" in page.text
        assert "Only emergency physicians may open a dossier in an emergency" in page.text
        assert "Bilan confidentiel" not in page.text
        assert "Léa" not in page.text
        assert [e.outcome for e in clinic.events(AuditAction.SEARCH)] == [AuditOutcome.ALLOWED]
        refused = clinic.events(AuditAction.READ)
        assert [(e.outcome, e.agent_professional_id) for e in refused] == [
            (AuditOutcome.DENIED, clinic.login.professional.id)
        ]
        assert clinic.client.get(document_url(document)).status_code == 404

    def test_with_a_grant_the_latest_documents_open_in_the_viewer(self, clinic: Clinic) -> None:
        clinic.grant()
        older, _ = clinic.document_by_a_colleague(
            title="Bilan de janvier", created_at=clinic.clock.now() - dt.timedelta(days=120)
        )
        newer, content = clinic.document_by_a_colleague(title="Bilan de mai")
        page = clinic.client.get(patient_url(clinic.patient))
        assert page.status_code == 200
        assert "Access granted by the patient" in page.text
        assert page.text.index("Bilan de mai") < page.text.index("Bilan de janvier")
        assert f'href="{document_url(newer)}"' in page.text
        assert "Marc Kieffer" in page.text

        viewer = clinic.client.get(document_url(newer))
        assert viewer.status_code == 200
        assert content.decode() in viewer.text
        assert f'href="{document_url(newer)}/fhir"' in viewer.text

        served = clinic.client.get(f"{document_url(newer)}/content")
        assert served.status_code == 200
        assert served.content == content
        assert served.headers["content-type"].startswith("text/plain")
        assert served.headers["content-disposition"].startswith("inline")
        assert served.headers["x-frame-options"] == "SAMEORIGIN"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.headers["content-security-policy"].startswith("default-src 'none'")
        assert served.headers["cache-control"] == "no-store"
        retrieved = clinic.events(AuditAction.RETRIEVE)
        assert len(retrieved) == 2  # the viewer page, then its content
        assert all(str(newer.id) in event.entity_ids for event in retrieved)
        assert older.id != newer.id

    def test_documents_filter_by_type(self, clinic: Clinic) -> None:
        clinic.grant()
        clinic.document_by_a_colleague(title="Bilan sanguin")
        clinic.document_by_a_colleague(
            title="Résumé patient", type_system=PATIENT_SUMMARY[0], type_code=PATIENT_SUMMARY[1]
        )
        page = clinic.client.get(patient_url(clinic.patient), params={"type": "patient-summary"})
        assert "Résumé patient" in page.text
        assert "Bilan sanguin" not in page.text

    def test_documents_come_twenty_to_a_page(self, clinic: Clinic) -> None:
        clinic.grant()
        for day in range(21):
            clinic.document_by_a_colleague(
                title=f"Bilan n° {day}",
                created_at=clinic.clock.now() - dt.timedelta(days=day + 1),
            )
        first = clinic.client.get(patient_url(clinic.patient))
        assert "Bilan n° 0<" in first.text
        assert "Bilan n° 20<" not in first.text
        assert f'href="{patient_url(clinic.patient)}?page=2"' in first.text
        second = clinic.client.get(patient_url(clinic.patient), params={"page": "2"})
        assert "Bilan n° 20<" in second.text
        assert "Bilan n° 0<" not in second.text

    def test_a_malformed_patient_id_is_not_found(self, clinic: Clinic) -> None:
        page = clinic.client.get(f"{HOME}/patients/not-a-uuid")
        assert page.status_code == 404
        assert "text/html" in page.headers["content-type"]


class TestDownloads:
    def test_the_original_downloads_as_a_named_file(self, clinic: Clinic) -> None:
        clinic.grant()
        document, content = clinic.document_by_a_colleague(title="Bilan sanguin à jeun")
        answer = clinic.client.get(f"{document_url(document)}/content", params={"download": "1"})
        assert answer.content == content
        assert answer.headers["content-disposition"] == (
            'attachment; filename="2026-05-31-bilan-sanguin-a-jeun.txt"'
        )

    def test_download_as_fhir_is_a_valid_bundle_carrying_the_bytes(self, clinic: Clinic) -> None:
        clinic.grant()
        document, content = clinic.document_by_a_colleague()
        answer = clinic.client.get(f"{document_url(document)}/fhir")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/fhir+json")
        assert answer.headers["content-disposition"].startswith("attachment;")
        assert answer.headers["content-disposition"].endswith('.fhir.json"')
        bundle = Bundle.model_validate_json(answer.content)
        assert bundle.type == "collection"
        assert bundle.entry is not None
        reference = bundle.entry[0].resource
        assert isinstance(reference, DocumentReference)
        assert reference.subject is not None
        assert reference.subject.reference == f"Patient/{clinic.patient.id}"
        attachment = reference.content[0].attachment
        assert attachment.contentType == "text/plain"
        # fhir.resources decodes base64Binary; the JSON itself carries the base64 text.
        assert attachment.data == content
        assert base64.b64encode(content).decode() in answer.text
        assert clinic.events(AuditAction.RETRIEVE)[-1].outcome is AuditOutcome.ALLOWED


class TestBreakGlass:
    def _break(self, clinic: Clinic, **fields: str) -> httpx.Response:
        form = clinic.client.get(f"{patient_url(clinic.patient)}/emergency")
        assert form.status_code == 200
        return clinic.client.post(
            f"{patient_url(clinic.patient)}/emergency",
            data={"csrf": csrf_of(form.text), **fields},
            follow_redirects=False,
        )

    def test_with_a_reason_the_dossier_opens_under_a_banner_and_the_patient_is_told(
        self, emergency: Clinic
    ) -> None:
        clinic = emergency
        clinic.document_by_a_colleague(title="Bilan sanguin")
        essentials.record_fact(
            clinic.session,
            open_dossier(
                clinic.session,
                professional_actor(make_professional(clinic.session, clinic.clock)),
                clinic.patient.id,
                purposes.RECORD_ESSENTIALS,
                clock=clinic.clock,
            ),
            category="allergy",
            text="Penicillin: anaphylaxis",
            details={"substance": "Penicillin", "severity": "severe"},
        )
        no_access = clinic.client.get(patient_url(clinic.patient))
        assert no_access.status_code == 403
        assert f'href="{patient_url(clinic.patient)}/emergency"' in no_access.text

        answer = self._break(
            clinic, reason="Unconscious on arrival, allergies unknown.", confirm="yes"
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == patient_url(clinic.patient)
        page = clinic.client.get(patient_url(clinic.patient))
        assert page.status_code == 200
        assert 'class="notice emergency"' in page.text
        # 12:00 UTC is 14:00 in Luxembourg; the access lasts 24 hours.
        assert "EMERGENCY ACCESS until 6/2/26, 2:00" in page.text
        assert "Bilan sanguin" in page.text
        assert "Penicillin: anaphylaxis" in page.text  # the essential data come first
        assert page.text.index("Penicillin") < page.text.index("Bilan sanguin")
        assert NotificationKind.EMERGENCY_ACCESS in clinic.notices()
        [opened] = clinic.events(AuditAction.BREAK_GLASS)
        assert opened.reason == "Unconscious on arrival, allergies unknown."

    def test_without_a_reason_it_asks_again_and_writes_nothing(self, emergency: Clinic) -> None:
        answer = self._break(emergency, reason="  ", confirm="yes")
        assert answer.status_code == 422
        assert "State the reason for emergency access" in answer.text
        assert emergency.events(AuditAction.BREAK_GLASS) == []
        assert NotificationKind.EMERGENCY_ACCESS not in emergency.notices()
        assert emergency.client.get(patient_url(emergency.patient)).status_code == 403

    def test_without_the_confirmation_it_keeps_the_reason_and_writes_nothing(
        self, emergency: Clinic
    ) -> None:
        answer = self._break(emergency, reason="Unconscious on arrival.")
        assert answer.status_code == 422
        assert "Unconscious on arrival." in answer.text
        assert emergency.events(AuditAction.BREAK_GLASS) == []

    def test_a_patient_who_opposed_emergency_access_is_not_opened(self, emergency: Clinic) -> None:
        clinic = emergency
        access_rules.set_preferences(
            clinic.session,
            open_dossier(
                clinic.session,
                patient_actor(clinic.patient),
                clinic.patient.id,
                purposes.SET_ACCESS_PREFERENCES,
                clock=clinic.clock,
            ),
            access_guard.Preferences(emergency_opposed=True),
        )
        answer = self._break(clinic, reason="Unconscious on arrival.", confirm="yes")
        assert answer.status_code == 403
        assert "Emergency access to this dossier was refused" in answer.text
        [refused] = clinic.events(AuditAction.BREAK_GLASS)
        assert refused.outcome is AuditOutcome.DENIED
        assert refused.reason == "the patient opposed emergency access"
        assert NotificationKind.EMERGENCY_ACCESS not in clinic.notices()
        assert clinic.client.get(patient_url(clinic.patient)).status_code == 403

    def test_a_general_practitioner_is_not_offered_the_form(self, clinic: Clinic) -> None:
        page = clinic.client.get(f"{patient_url(clinic.patient)}/emergency")
        assert page.status_code == 200
        assert "Only emergency physicians may open a dossier in an emergency" in page.text
        assert 'name="reason"' not in page.text


class TestUpload:
    def _upload(
        self, clinic: Clinic, content: bytes, name: str, mime: str, **fields: str
    ) -> httpx.Response:
        form = clinic.client.get(f"{patient_url(clinic.patient)}/upload")
        assert form.status_code == 200
        return clinic.client.post(
            f"{patient_url(clinic.patient)}/upload",
            data={"csrf": csrf_of(form.text), **fields},
            files={"file": (name, content, mime)},
            follow_redirects=False,
        )

    def test_an_upload_lands_in_the_dossier_and_its_viewer(self, clinic: Clinic) -> None:
        clinic.grant()
        answer = self._upload(
            clinic,
            b"Consultation du 30 mai: tension 12/8.",
            "note.txt",
            "text/plain; charset=utf-8",
            type="consultation-note",
            title="Consultation de contrôle",
            service_date="2026-05-30",
            confidentiality="N",
            hidden_from_patient="yes",
        )
        assert answer.status_code == 303
        viewer = clinic.client.get(answer.headers["location"])
        assert viewer.status_code == 200
        assert "tension 12/8" in viewer.text
        assert "Disclose to the patient now" in viewer.text
        page = clinic.client.get(patient_url(clinic.patient))
        assert "Consultation de contrôle" in page.text
        assert "Hidden from the patient" in page.text
        [added] = clinic.session.scalars(
            select(Document).where(Document.patient_id == clinic.patient.id)
        ).all()
        assert added.author_professional_id == clinic.login.professional.id
        assert added.mime_type == "text/plain"
        assert added.hidden_from_patient
        assert added.service_start == dt.datetime(2026, 5, 29, 22, 0, tzinfo=dt.UTC)
        as_patient = reading.list_documents(
            clinic.session,
            open_dossier(
                clinic.session,
                patient_actor(clinic.patient),
                clinic.patient.id,
                purposes.FIND_DOCUMENTS,
                clock=clinic.clock,
            ),
        )
        assert as_patient.total == 0  # masked from the patient until disclosed

    def test_a_pdf_shows_page_by_page_and_serves_its_own_content(self, clinic: Clinic) -> None:
        pdf = text_pdf("Compte rendu: 4 mmol/L")
        answer = self._upload(
            clinic,
            pdf,
            "CR opératoire.pdf",
            "application/octet-stream",  # what a browser sends when it does not know
            type="operative-report",
            title="Compte rendu opératoire",
        )
        assert answer.status_code == 303
        location = answer.headers["location"]
        viewer = clinic.client.get(location)
        assert '<img src="data:image/png;base64,' in viewer.text
        assert "Compte rendu: 4 mmol/L" in viewer.text
        served = clinic.client.get(f"{location}/content")
        assert served.content == pdf
        assert served.headers["content-type"] == "application/pdf"
        assert served.headers["content-disposition"] == (
            'inline; filename="2026-06-01-compte-rendu-operatoire.pdf"'
        )

    def test_a_refused_upload_keeps_what_was_typed_and_adds_nothing(self, clinic: Clinic) -> None:
        answer = self._upload(
            clinic,
            b"not a pdf",
            "report.pdf",
            "application/pdf",
            type="lab-report",
            title="Bilan lipidique",
            confidentiality="R",
        )
        assert answer.status_code == 422
        assert "not a PDF" in answer.text
        assert 'value="Bilan lipidique"' in answer.text
        assert 'value="R" checked' in answer.text
        assert clinic.events(AuditAction.PUBLISH) == []


class TestWeakSignIn:
    def test_a_password_only_sign_in_is_told_a_stronger_one_is_needed(
        self,
        web: Served,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        login = make_professional_login(session, clock, wrapper)
        patient = make_patient(session, clock)
        access_rules.grant_access(
            session,
            open_dossier(
                session, patient_actor(patient), patient.id, purposes.GRANT_ACCESS, clock=clock
            ),
            level=GrantLevel.NORMAL,
            professional_id=login.professional.id,
        )
        document = make_document(
            session,
            store,
            clock,
            actor=professional_actor(make_professional(session, clock)),
            patient_id=patient.id,
        )
        start = web.client.get("/portal/sign-in", follow_redirects=False)
        authorize = urlsplit(start.headers["location"])
        form = web.client.get(f"{authorize.path}?{authorize.query}")
        answer = web.client.post(
            "/oauth/authorize",
            data={
                "ticket": ticket_of(form.text),
                "method": "professional",
                "identifier": login.identifier,
                "password": PASSWORD,
            },
            follow_redirects=False,
        )
        back = urlsplit(answer.headers["location"])
        web.client.get(f"{back.path}?{back.query}")

        home = web.client.get(HOME)
        assert home.status_code == 200
        assert "Password only" in home.text
        assert "not strong enough for clinical content" in home.text
        page = web.client.get(document_url(document))
        assert page.status_code == 403
        assert "A stronger sign-in is needed" in page.text
