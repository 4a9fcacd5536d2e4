"""The patient portal: home, the documents timeline, the viewer and its content, uploads."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.catalogue import load_catalogue
from carnet.clock import FrozenClock
from carnet.directory.models import Professional
from carnet.documents import reading
from carnet.documents.models import Document
from carnet.patients.models import Patient
from carnet.portal.document_content import CONTENT_CSP
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor, professional_actor
from factories.auth import PatientLogin, Served, make_patient_login
from factories.directory import make_organisation, make_professional
from factories.documents import PATIENT_SUMMARY, make_document
from factories.pdf import text_pdf
from factories.portal import csrf_of, sign_in_patient

# A real one-page PDF: the viewer draws its page with PDFium.
PDF = text_pdf("Compte rendu: 4 mmol/L")


def _signed_in(
    web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> PatientLogin:
    login = make_patient_login(session, clock, wrapper)
    sign_in_patient(web.client, login, clock)
    return login


def _doctor(session: Session, clock: FrozenClock, family: str = "Schmit") -> Professional:
    organisation = make_organisation(session, clock, name="Cabinet Alzette")
    return make_professional(session, clock, organisation_id=organisation.id, family=family)


def _publish(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    author: Actor,
    patient: Patient,
    content: bytes | None = None,
    **changes: object,
) -> Document:
    return make_document(
        session, store, clock, actor=author, patient_id=patient.id, content=content, **changes
    )


def _listed(session: Session, clock: FrozenClock, patient: Patient) -> list[Document]:
    return reading.list_documents(
        session,
        open_dossier(
            session, patient_actor(patient), patient.id, purposes.FIND_DOCUMENTS, clock=clock
        ),
    ).documents


class TestHome:
    def test_greets_the_patient_with_their_latest_documents_and_unread_notices(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        store: FilesystemDocumentStore,
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        doctor = professional_actor(_doctor(session, clock))
        for day in range(7):
            _publish(
                session,
                store,
                clock,
                doctor,
                login.patient,
                title=f"Bilan {day}",
                created_at=clock.now() - dt.timedelta(days=day + 1),
            )
        page = web.client.get("/portal/patient")
        assert page.status_code == 200
        assert "Hello, Léa Weber" in page.text
        assert "Active" in page.text
        # The five newest, linked to the viewer; the sixth is left for the timeline.
        for day in range(5):
            assert f"Bilan {day}</a>" in page.text
        assert "Bilan 5</a>" not in page.text
        assert "/portal/patient/documents/" in page.text
        # Each new document from a professional is a notice the patient has not read yet.
        assert "7 unread notifications" in page.text

    def test_a_patient_without_documents_sees_an_empty_home(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        _signed_in(web, session, clock, wrapper)
        page = web.client.get("/portal/patient")
        assert page.status_code == 200
        assert "There is no document in the dossier yet." in page.text
        assert "No unread notification." in page.text
        # The essential data card, empty for now, invites the patient to fill it in.
        assert 'id="essential-data"' in page.text
        assert "Blood group" in page.text


class TestTimeline:
    def test_lists_the_patients_documents_newest_first(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        store: FilesystemDocumentStore,
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        doctor = professional_actor(_doctor(session, clock))
        _publish(
            session, store, clock, doctor, login.patient, title="Ancien bilan",
            created_at=clock.now() - dt.timedelta(days=30),
        )  # fmt: skip
        _publish(session, store, clock, doctor, login.patient, title="Nouveau bilan")
        someone_else = make_patient_login(session, clock, wrapper).patient
        _publish(session, store, clock, doctor, someone_else, title="Pas le mien")
        page = web.client.get("/portal/patient/documents")
        assert page.status_code == 200
        assert page.text.index("Nouveau bilan") < page.text.index("Ancien bilan")
        assert "Pas le mien" not in page.text
        assert "2 documents" in page.text
        assert "Laboratory results · Marc Schmit · Cabinet Alzette" in page.text

    def test_filters_by_type_author_and_period_in_the_query_string(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        store: FilesystemDocumentStore,
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        schmit = professional_actor(_doctor(session, clock))
        muller = professional_actor(_doctor(session, clock, family="Muller"))
        _publish(session, store, clock, schmit, login.patient, title="Bilan sanguin")
        _publish(
            session, store, clock, muller, login.patient, title="Synthèse annuelle",
            type_system=PATIENT_SUMMARY[0], type_code=PATIENT_SUMMARY[1],
            created_at=clock.now() - dt.timedelta(days=40),
        )  # fmt: skip
        by_type = web.client.get("/portal/patient/documents", params={"type": "patient-summary"})
        assert "Synthèse annuelle" in by_type.text
        assert "Bilan sanguin" not in by_type.text
        assert 'value="patient-summary" selected' in by_type.text
        by_author = web.client.get("/portal/patient/documents", params={"author": "mul"})
        assert "Synthèse annuelle" in by_author.text
        assert "Bilan sanguin" not in by_author.text
        recent = web.client.get(
            "/portal/patient/documents", params={"from": "2026-05-01", "to": "2026-06-01"}
        )
        assert "Bilan sanguin" in recent.text
        assert "Synthèse annuelle" not in recent.text

    def test_type_labels_follow_the_visitors_language(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        _signed_in(web, session, clock, wrapper)
        french = web.client.get("/portal/patient/documents", headers={"Accept-Language": "fr"})
        assert "Document ajouté par moi" in french.text
        english = web.client.get("/portal/patient/documents", headers={"Accept-Language": "en"})
        assert "Document I added" in english.text

    def test_a_period_ending_before_it_starts_is_explained(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        _signed_in(web, session, clock, wrapper)
        page = web.client.get(
            "/portal/patient/documents", params={"from": "2026-05-10", "to": "2026-05-01"}
        )
        assert page.status_code == 422
        assert "The period ends before it starts." in page.text

    def test_pages_through_a_long_dossier(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        store: FilesystemDocumentStore,
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        doctor = professional_actor(_doctor(session, clock))
        for number in range(22):
            _publish(
                session, store, clock, doctor, login.patient, title=f"Bilan n{number:02d}",
                created_at=clock.now() - dt.timedelta(days=number + 1),
            )  # fmt: skip
        first = web.client.get("/portal/patient/documents", params={"type": "lab-report"})
        assert "Bilan n19<" in first.text
        assert "Bilan n20<" not in first.text
        assert "page=2" in first.text
        assert "type=lab-report" in first.text
        second = web.client.get("/portal/patient/documents?type=lab-report&page=2")
        assert "Bilan n20<" in second.text
        assert "Bilan n21<" in second.text
        assert "Page 2 of 2" in second.text


class TestViewer:
    def test_shows_a_pdf_page_by_page_and_serves_its_bytes_safely(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        store: FilesystemDocumentStore,
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        doctor = professional_actor(_doctor(session, clock))
        document = _publish(
            session, store, clock, doctor, login.patient, title="Compte rendu",
            mime_type="application/pdf", content=PDF,
        )  # fmt: skip
        page = web.client.get(f"/portal/patient/documents/{document.id}")
        assert page.status_code == 200
        content_url = f"/portal/patient/documents/{document.id}/content"
        # Drawn as images in the page (phones show no framed PDF), its text beside them.
        assert '<img src="data:image/png;base64,' in page.text
        assert "Compte rendu: 4 mmol/L" in page.text
        assert "<iframe" not in page.text
        assert f'href="{content_url}?download=1"' in page.text
        assert '<dl class="facts">' in page.text
        inline = web.client.get(content_url)
        assert inline.status_code == 200
        assert inline.content == PDF
        assert inline.headers["content-type"] == "application/pdf"
        assert inline.headers["content-security-policy"] == CONTENT_CSP
        assert inline.headers["x-frame-options"] == "SAMEORIGIN"
        assert inline.headers["x-content-type-options"] == "nosniff"
        assert inline.headers["cache-control"] == "no-store"
        assert inline.headers["content-disposition"].startswith("inline;")
        download = web.client.get(content_url, params={"download": "1"})
        assert download.headers["content-disposition"].startswith(
            'attachment; filename="Compte-rendu.pdf"'
        )

    def test_plain_text_is_shown_in_the_page(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        store: FilesystemDocumentStore,
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        doctor = professional_actor(_doctor(session, clock))
        document = _publish(
            session, store, clock, doctor, login.patient, content=b"Ferritine 85 ng/mL <ok>"
        )
        page = web.client.get(f"/portal/patient/documents/{document.id}")
        assert "<pre>Ferritine 85 ng/mL &lt;ok&gt;</pre>" in page.text

    def test_another_patients_document_is_not_found_and_the_refusal_is_audited(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        store: FilesystemDocumentStore,
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        doctor = professional_actor(_doctor(session, clock))
        other = make_patient_login(session, clock, wrapper).patient
        theirs = _publish(session, store, clock, doctor, other, title="Pas le mien")
        for path in (
            f"/portal/patient/documents/{theirs.id}",
            f"/portal/patient/documents/{theirs.id}/content",
        ):
            answer = web.client.get(path)
            assert answer.status_code == 404
            assert "Pas le mien" not in answer.text
        refused = session.scalars(
            select(AuditEvent).where(
                AuditEvent.agent_subject == f"Patient/{login.patient.id}",
                AuditEvent.outcome == AuditOutcome.DENIED,
                AuditEvent.action == AuditAction.RETRIEVE,
            )
        ).all()
        assert len(refused) == 2
        assert all(str(theirs.id) in event.entity_ids for event in refused)

    def test_a_malformed_document_id_is_a_readable_404(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        _signed_in(web, session, clock, wrapper)
        answer = web.client.get("/portal/patient/documents/not-an-id")
        assert answer.status_code == 404
        assert "<h1>" in answer.text

    def test_the_patient_hides_a_document_from_professionals_and_shows_it_again(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        store: FilesystemDocumentStore,
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        doctor = professional_actor(_doctor(session, clock))
        document = _publish(session, store, clock, doctor, login.patient)
        viewer = f"/portal/patient/documents/{document.id}"
        page = web.client.get(viewer)
        hidden = web.client.post(
            f"{viewer}/visibility", data={"csrf": csrf_of(page.text), "masked": "1"}
        )
        assert hidden.status_code == 200
        assert "The document is now hidden from professionals." in hidden.text
        assert "Show it to professionals again" in hidden.text
        session.refresh(document)
        assert document.masked_from_professionals
        shown = web.client.post(
            f"{viewer}/visibility", data={"csrf": csrf_of(hidden.text), "masked": "0"}
        )
        assert "Hide it from professionals" in shown.text
        session.refresh(document)
        assert not document.masked_from_professionals
        changes = session.scalars(
            select(AuditEvent).where(
                AuditEvent.chain_id == login.patient.id,
                AuditEvent.action == AuditAction.VISIBILITY_CHANGE,
            )
        ).all()
        assert len(changes) == 2

    def test_a_change_without_the_csrf_token_is_refused(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        store: FilesystemDocumentStore,
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        doctor = professional_actor(_doctor(session, clock))
        document = _publish(session, store, clock, doctor, login.patient)
        for token in ({}, {"csrf": "guessed"}):
            answer = web.client.post(
                f"/portal/patient/documents/{document.id}/visibility",
                data={"masked": "1", **token},
            )
            assert answer.status_code == 403
            assert "This form has expired" in answer.text
        session.refresh(document)
        assert not document.masked_from_professionals


class TestUpload:
    def test_the_patient_adds_a_document_and_lands_on_its_viewer(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        form = web.client.get("/portal/patient/documents/new")
        assert form.status_code == 200
        assert 'enctype="multipart/form-data"' in form.text
        added = web.client.post(
            "/portal/patient/documents/new",
            data={
                "csrf": csrf_of(form.text),
                "type": "vaccination-record",
                "title": "Carnet de vaccination",
                "date": "2026-05-20",
            },
            files={"file": ("vaccins.pdf", PDF, "application/pdf")},
            follow_redirects=False,
        )
        assert added.status_code == 303
        viewer = web.client.get(added.headers["location"])
        assert "Your document was added to the dossier." in viewer.text
        assert "<h1>Carnet de vaccination</h1>" in viewer.text
        [document] = _listed(session, clock, login.patient)
        assert document.authored_by_patient
        assert document.mime_type == "application/pdf"
        vaccination = load_catalogue().by_key("vaccination-record")
        assert (document.type_system, document.type_code) == (vaccination.system, vaccination.code)
        assert added.headers["location"] == f"/portal/patient/documents/{document.id}"

    def test_a_bad_upload_keeps_what_was_typed_and_writes_nothing(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        tmp_path: Path,
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        form = web.client.get("/portal/patient/documents/new")
        answer = web.client.post(
            "/portal/patient/documents/new",
            data={
                "csrf": csrf_of(form.text),
                "type": "advance-directives",
                "title": "Mes directives",
                "date": "2026-05-20",
            },
            files={"file": ("directives.pdf", b"not a pdf at all", "application/pdf")},
        )
        assert answer.status_code == 422
        assert "The content is not a PDF" in answer.text
        assert 'value="Mes directives"' in answer.text
        assert 'value="advance-directives" selected' in answer.text
        assert _listed(session, clock, login.patient) == []
        # Validation comes before the store: not even an unreferenced object was written.
        assert not (tmp_path / "store" / str(login.patient.id)).exists()

    def test_a_kind_of_document_the_patient_may_not_add_is_refused(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        form = web.client.get("/portal/patient/documents/new")
        assert 'value="lab-report"' not in form.text
        answer = web.client.post(
            "/portal/patient/documents/new",
            data={
                "csrf": csrf_of(form.text),
                "type": "lab-report",
                "title": "Faux bilan",
                "date": "2026-05-20",
            },
            files={"file": ("bilan.txt", b"Hemoglobine 20", "text/plain")},
        )
        assert answer.status_code == 422
        assert "Choose the kind of document." in answer.text
        assert _listed(session, clock, login.patient) == []

    def test_a_date_in_the_future_is_refused_with_a_message(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        form = web.client.get("/portal/patient/documents/new")
        answer = web.client.post(
            "/portal/patient/documents/new",
            data={
                "csrf": csrf_of(form.text),
                "type": "patient-provided",
                "title": "Plus tard",
                "date": "2027-01-01",
            },
            files={"file": ("note.txt", b"hello", "text/plain")},
        )
        assert answer.status_code == 422
        assert "future" in answer.text
        assert _listed(session, clock, login.patient) == []


def test_every_page_has_one_main_heading(
    web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> None:
    _signed_in(web, session, clock, wrapper)
    for path in (
        "/portal/patient",
        "/portal/patient/documents",
        "/portal/patient/documents/new",
        "/portal/patient/access",
        "/portal/patient/history",
        "/portal/patient/notifications",
        "/portal/patient/dossier",
    ):
        page = web.client.get(path)
        assert page.status_code == 200, path
        assert len(re.findall(r"<h1[ >]", page.text)) == 1, path
        assert "style=" not in page.text, path
        assert "<script>" not in page.text, path
