"""Publishing documents: add, submit, replace — and their refusals (``documents.publication``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.clock import FrozenClock
from carnet.directory.errors import OrganisationNotFound
from carnet.directory.models import Organisation, Professional
from carnet.documents import publication, reading
from carnet.documents.errors import (
    DocumentNotCurrent,
    DocumentTooLarge,
    DossierNotActive,
    DuplicateDocument,
    InvalidDocument,
)
from carnet.documents.metadata import SubmissionSetMetadata
from carnet.documents.models import Confidentiality, Document, DocumentStatus, SubmissionSet
from carnet.notifications import internal as notifications_internal
from carnet.notifications.models import NotificationKind
from carnet.patients.errors import PatientNotFound
from carnet.patients.models import DossierState, Patient
from carnet.storage import FilesystemDocumentStore
from factories.documents import lab_metadata, make_document
from factories.patients import make_patient


def _count(session: Session, model: type[Document] | type[SubmissionSet]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _store_files(store: FilesystemDocumentStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file()]


class TestAddDocument:
    def test_stores_metadata_and_encrypted_content(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
    ) -> None:
        content = b"Hemoglobin 14.2 g/dL - distinctive plaintext"
        document = make_document(
            session, store, clock, actor=author, patient_id=patient.id, content=content
        )
        assert document.status is DocumentStatus.CURRENT
        assert document.class_code == "laboratory"
        assert document.size == len(content)
        assert document.sha256 == hashlib.sha256(content).hexdigest()
        assert document.content_key == f"{patient.id}/{document.sha256}"
        assert document.master_identifier.startswith("urn:uuid:")
        assert document.submitted_at == clock.now()
        _, read = reading.read_content(
            session,
            open_dossier(session, author, patient.id, purposes.RETRIEVE_DOCUMENTS, clock=clock),
            document.id,
            store,
        )
        assert read == content
        (on_disk,) = _store_files(store)
        assert content not in on_disk.read_bytes()

    def test_the_patient_is_told_who_published(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
        biologist: Professional,
        me: Actor,
    ) -> None:
        make_document(session, store, clock, actor=author, patient_id=patient.id)
        make_document(session, store, clock, actor=me, patient_id=patient.id)
        (notice,) = notifications_internal.inbox(session, patient_id=patient.id)
        assert notice.kind is NotificationKind.NEW_DOCUMENT
        assert f"{biologist.given} {biologist.family}" in notice.body

    def test_all_metadata_round_trips(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
        lab: Organisation,
        biologist: Professional,
    ) -> None:
        start = clock.now() - dt.timedelta(days=3)
        metadata = lab_metadata(
            clock,
            author_professional_id=biologist.id,
            author_organisation_id=lab.id,
            custodian_organisation_id=lab.id,
            master_identifier="urn:oid:1.2.3.4.5",
            format_code="urn:ihe:lab:xd-lab:2008",
            service_start=start,
            service_end=start + dt.timedelta(hours=1),
            facility_type="LAB",
            practice_setting="laboratory-medicine",
            confidentiality=Confidentiality.RESTRICTED,
            masked_from_professionals=True,
            hidden_from_patient=True,
            source_system="urn:oid:1.2.3",
            class_code="laboratory",
        )
        document = publication.add_document(
            session,
            open_dossier(session, author, patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock),
            store,
            metadata=metadata,
            content=b"x",
        )
        session.expire_all()
        stored = reading.get_document(
            session,
            open_dossier(session, author, patient.id, purposes.READ_DOCUMENTS, clock=clock),
            document.id,
        )
        assert stored.author_professional_id == biologist.id
        assert stored.custodian_organisation_id == lab.id
        assert stored.master_identifier == "urn:oid:1.2.3.4.5"
        assert stored.service_start == start
        assert stored.confidentiality is Confidentiality.RESTRICTED
        assert stored.masked_from_professionals
        assert stored.hidden_from_patient
        assert stored.practice_setting == "laboratory-medicine"

    def test_declared_size_and_hash_must_match(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
    ) -> None:
        content = b"some report"
        good = lab_metadata(
            clock, expected_size=len(content), expected_sha256=hashlib.sha256(content).hexdigest()
        )
        publication.add_document(
            session,
            open_dossier(session, author, patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock),
            store,
            metadata=good,
            content=content,
        )
        for changes, field in (
            ({"expected_size": 3}, "size"),
            ({"expected_sha256": "0" * 64}, "hash"),
        ):
            with pytest.raises(InvalidDocument) as caught:
                publication.add_document(
                    session,
                    open_dossier(
                        session, author, patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock
                    ),
                    store,
                    metadata=lab_metadata(clock, **changes),
                    content=b"other",
                )
            assert caught.value.field == field
        assert _count(session, Document) == 1

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"type_code": "00000-0"}, "type"),
            ({"class_code": "imaging"}, "class_code"),
            ({"title": "  "}, "title"),
            ({"title": "t" * 301}, "title"),
            ({"mime_type": "pdf"}, "mime_type"),
            ({"language": "français"}, "language"),
            ({"created_at": dt.datetime(2026, 1, 1)}, "created_at"),  # noqa: DTZ001 — naive on purpose
            ({"created_at": dt.datetime(2027, 1, 1, tzinfo=dt.UTC)}, "created_at"),
            (
                {
                    "service_start": dt.datetime(2026, 5, 2, tzinfo=dt.UTC),
                    "service_end": dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
                },
                "service_end",
            ),
        ],
    )
    def test_bad_metadata_names_the_field_and_stores_nothing(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        changes: dict[str, object],
        field: str,
        author: Actor,
    ) -> None:
        with pytest.raises(InvalidDocument) as caught:
            publication.add_document(
                session,
                open_dossier(session, author, patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock),
                store,
                metadata=lab_metadata(clock, **changes),
                content=b"content",
            )
        assert caught.value.field == field
        assert caught.value.message
        assert _count(session, Document) == 0
        assert _store_files(store) == []

    @pytest.mark.parametrize(
        ("mime_type", "content"),
        [
            ("application/pdf", b"not a pdf"),
            ("application/fhir+json", b"{not json"),
            ("text/xml", b"plain words"),
        ],
    )
    def test_content_must_be_what_its_type_says(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        mime_type: str,
        content: bytes,
        author: Actor,
    ) -> None:
        with pytest.raises(InvalidDocument) as caught:
            publication.add_document(
                session,
                open_dossier(session, author, patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock),
                store,
                metadata=lab_metadata(clock, mime_type=mime_type),
                content=content,
            )
        assert caught.value.field == "content"

    def test_too_large_is_refused_with_the_limit(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
    ) -> None:
        with pytest.raises(DocumentTooLarge, match=r"limit is 1\.0 MB") as caught:
            make_document(
                session,
                store,
                clock,
                actor=author,
                patient_id=patient.id,
                content=b"x" * (1024 * 1024 + 1),
            )
        assert caught.value.limit == 1024 * 1024
        assert _count(session, Document) == 0
        assert _store_files(store) == []

    def test_duplicate_master_identifier(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
    ) -> None:
        make_document(
            session,
            store,
            clock,
            actor=author,
            patient_id=patient.id,
            master_identifier="urn:oid:1.2.9",
        )
        with pytest.raises(DuplicateDocument):
            make_document(
                session,
                store,
                clock,
                actor=author,
                patient_id=patient.id,
                master_identifier="urn:oid:1.2.9",
            )

    def test_same_master_identifier_in_two_dossiers_is_allowed(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
    ) -> None:
        other = make_patient(session, clock, given="Paul")
        make_document(
            session,
            store,
            clock,
            actor=author,
            patient_id=patient.id,
            master_identifier="urn:oid:7",
        )
        make_document(
            session, store, clock, actor=author, patient_id=other.id, master_identifier="urn:oid:7"
        )

    @pytest.mark.parametrize(
        "state", [DossierState.INVITED, DossierState.OPPOSED, DossierState.CLOSED]
    )
    def test_dossier_must_be_active(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        state: DossierState,
        author: Actor,
    ) -> None:
        patient = make_patient(session, clock, state=state)
        with pytest.raises(DossierNotActive, match=state.value) as caught:
            make_document(session, store, clock, actor=author, patient_id=patient.id)
        assert caught.value.state == state.value
        assert _store_files(store) == []

    def test_unknown_patient(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock, author: Actor
    ) -> None:
        with pytest.raises(PatientNotFound):
            make_document(session, store, clock, actor=author, patient_id=uuid.uuid4())

    def test_unknown_custodian_and_foreign_author(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
    ) -> None:
        with pytest.raises(InvalidDocument, match="publishes as the author"):
            make_document(
                session,
                store,
                clock,
                actor=author,
                patient_id=patient.id,
                author_professional_id=uuid.uuid4(),
            )
        with pytest.raises(OrganisationNotFound):
            make_document(
                session,
                store,
                clock,
                actor=author,
                patient_id=patient.id,
                custodian_organisation_id=uuid.uuid4(),
            )
        assert _store_files(store) == []


class TestSubmit:
    def test_submission_set_groups_documents(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
    ) -> None:
        submission, documents = publication.submit(
            session,
            open_dossier(session, author, patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock),
            store,
            submission_set=SubmissionSetMetadata(source_id="urn:oid:1.3.6.1.4.1.21367"),
            documents=[(lab_metadata(clock), b"one"), (lab_metadata(clock), b"two")],
        )
        assert {d.submission_set_id for d in documents} == {submission.id}
        assert submission.submitted_at == clock.now()

    def test_one_bad_document_rejects_the_whole_submission(
        self,
        engine: object,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
    ) -> None:
        with pytest.raises(InvalidDocument), session.begin_nested():
            publication.submit(
                session,
                open_dossier(session, author, patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock),
                store,
                submission_set=SubmissionSetMetadata(source_id="urn:oid:1.2"),
                documents=[(lab_metadata(clock), b"good"), (lab_metadata(clock, title=""), b"bad")],
            )
        assert _count(session, Document) == 0
        assert _count(session, SubmissionSet) == 0

    @pytest.mark.parametrize(
        ("source_id", "documents", "field"), [(" ", 1, "source_id"), ("urn:oid:1", 0, "documents")]
    )
    def test_invalid_submission(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        source_id: str,
        documents: int,
        field: str,
        author: Actor,
    ) -> None:
        with pytest.raises(InvalidDocument) as caught:
            publication.submit(
                session,
                open_dossier(session, author, patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock),
                store,
                submission_set=SubmissionSetMetadata(source_id=source_id),
                documents=[(lab_metadata(clock), b"x")] * documents,
            )
        assert caught.value.field == field

    def test_duplicate_submission_identifier(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
    ) -> None:
        metadata = SubmissionSetMetadata(source_id="urn:oid:1", master_identifier="urn:oid:9.9")
        publication.submit(
            session,
            open_dossier(session, author, patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock),
            store,
            submission_set=metadata,
            documents=[(lab_metadata(clock), b"x")],
        )
        with pytest.raises(DuplicateDocument):
            publication.submit(
                session,
                open_dossier(session, author, patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock),
                store,
                submission_set=metadata,
                documents=[(lab_metadata(clock), b"y")],
            )


class TestReplaceDocument:
    def test_previous_becomes_superseded(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
        me: Actor,
    ) -> None:
        first = make_document(
            session, store, clock, actor=author, patient_id=patient.id, content=b"v1"
        )
        clock.advance(dt.timedelta(hours=1))
        second = publication.replace_document(
            session,
            open_dossier(session, author, patient.id, purposes.REPLACE_DOCUMENT, clock=clock),
            store,
            replaced_id=first.id,
            metadata=lab_metadata(clock, title="Bilan corrigé"),
            content=b"v2",
        )
        assert first.status is DocumentStatus.SUPERSEDED
        assert first.updated_at == clock.now()
        assert second.replaces_id == first.id
        assert second.status is DocumentStatus.CURRENT
        assert [
            d.id
            for d in reading.list_documents(
                session, open_dossier(session, me, patient.id, purposes.FIND_DOCUMENTS, clock=clock)
            ).documents
        ] == [second.id]

    def test_only_current_documents_can_be_replaced(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
    ) -> None:
        first = make_document(session, store, clock, actor=author, patient_id=patient.id)
        publication.replace_document(
            session,
            open_dossier(session, author, patient.id, purposes.REPLACE_DOCUMENT, clock=clock),
            store,
            replaced_id=first.id,
            metadata=lab_metadata(clock),
            content=b"v2",
        )
        with pytest.raises(DocumentNotCurrent, match="superseded"):
            publication.replace_document(
                session,
                open_dossier(session, author, patient.id, purposes.REPLACE_DOCUMENT, clock=clock),
                store,
                replaced_id=first.id,
                metadata=lab_metadata(clock),
                content=b"v3",
            )

    def test_invalid_replacement_leaves_the_original_current(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
    ) -> None:
        first = make_document(session, store, clock, actor=author, patient_id=patient.id)
        with pytest.raises(InvalidDocument):
            publication.replace_document(
                session,
                open_dossier(session, author, patient.id, purposes.REPLACE_DOCUMENT, clock=clock),
                store,
                replaced_id=first.id,
                metadata=replace(lab_metadata(clock), title=""),
                content=b"v2",
            )
        assert first.status is DocumentStatus.CURRENT

    def test_replacing_an_unknown_document(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
    ) -> None:
        with pytest.raises(AccessDenied):
            publication.replace_document(
                session,
                open_dossier(session, author, patient.id, purposes.REPLACE_DOCUMENT, clock=clock),
                store,
                replaced_id=uuid.uuid4(),
                metadata=lab_metadata(clock),
                content=b"v2",
            )
