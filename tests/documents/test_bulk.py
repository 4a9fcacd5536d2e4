"""Bulk loading of documents: COPY on PostgreSQL, multi-row INSERT on SQLite, same rules."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.access.models import GrantLevel
from carnet.access.rules import grant_access
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction, AuditEvent
from carnet.catalogue import LOCAL_TYPE_SYSTEM
from carnet.clock import FrozenClock
from carnet.directory.errors import ProfessionalNotFound
from carnet.directory.models import Organisation, Profession, Professional
from carnet.documents import bulk, reading
from carnet.documents.errors import DossierNotActive, DuplicateDocument, InvalidDocument
from carnet.documents.models import Confidentiality, Document, DocumentStatus
from carnet.patients.errors import PatientNotFound
from carnet.patients.models import DossierState, Patient
from carnet.storage import FilesystemDocumentStore, StoredContent
from factories.actors import operator_actor, patient_actor, professional_actor
from factories.directory import make_organisation, make_professional
from factories.documents import lab_metadata
from factories.patients import make_patient

PDF = b"%PDF-1.4\n% a laboratory report\n%%EOF\n"


@pytest.fixture
def lab(session: Session, clock: FrozenClock) -> Organisation:
    return make_organisation(session, clock)


@pytest.fixture
def biologist(session: Session, clock: FrozenClock, lab: Organisation) -> Professional:
    return make_professional(
        session, clock, profession=Profession.BIOLOGIST, organisation_id=lab.id
    )


def _documents(
    patient: Patient,
    stored: StoredContent,
    clock: FrozenClock,
    biologist: Professional,
    count: int,
) -> list[bulk.BulkDocument]:
    return [
        bulk.BulkDocument(
            patient_id=patient.id,
            metadata=lab_metadata(
                clock,
                mime_type="application/pdf",
                title=f"Bilan {number}",
                author_professional_id=biologist.id,
                author_organisation_id=biologist.organisation_id,
                created_at=clock.now() - dt.timedelta(days=number + 1),
                confidentiality=Confidentiality.RESTRICTED
                if number == 0
                else Confidentiality.NORMAL,
                source_system="legacy-lab",
            ),
            content=stored,
        )
        for number in range(count)
    ]


def test_loads_readable_documents_and_records_one_event(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    biologist: Professional,
) -> None:
    patients = [make_patient(session, clock) for _ in range(3)]
    rows = []
    for patient in patients:
        # One stored object per dossier, shared by that dossier's documents.
        rows += _documents(patient, store.put(str(patient.id), PDF), clock, biologist, 4)
    operator = operator_actor()

    report = bulk.load_documents(session, operator, rows, clock=clock, source="legacy export")
    bulk.refresh_statistics(session)

    dialect = session.get_bind().dialect.name
    assert report == bulk.BulkReport(
        documents=12, dossiers=3, method="copy" if dialect == "postgresql" else "insert"
    )
    assert session.scalar(select(func.count()).select_from(Document)) == 12
    me = patient_actor(patients[1])
    page = reading.list_documents(
        session, open_dossier(session, me, patients[1].id, purposes.FIND_DOCUMENTS, clock=clock)
    )
    assert [d.title for d in page.documents] == ["Bilan 0", "Bilan 1", "Bilan 2", "Bilan 3"]
    loaded = page.documents[2]
    assert loaded.status is DocumentStatus.CURRENT
    assert loaded.class_code == "laboratory"
    assert loaded.master_identifier == f"urn:uuid:{loaded.id}"
    assert loaded.submitted_at == clock.now()
    assert loaded.source_system == "legacy-lab"
    document, content = reading.read_content(
        session,
        open_dossier(session, me, patients[1].id, purposes.RETRIEVE_DOCUMENTS, clock=clock),
        loaded.id,
        store,
    )
    assert content == PDF
    assert document.sha256 == loaded.sha256
    # A professional under a normal grant sees the normal documents, not the restricted one.
    doctor = make_professional(session, clock)
    grant_access(
        session,
        open_dossier(session, me, patients[1].id, purposes.GRANT_ACCESS, clock=clock),
        level=GrantLevel.NORMAL,
        professional_id=doctor.id,
    )
    seen = reading.list_documents(
        session,
        open_dossier(
            session,
            professional_actor(doctor),
            patients[1].id,
            purposes.FIND_DOCUMENTS,
            clock=clock,
        ),
    )
    assert len(seen.documents) == 3
    assert seen.withheld

    events = session.scalars(
        select(AuditEvent).where(AuditEvent.chain_id == audit_trail.chain_of(operator.agent, None))
    ).all()
    assert [event.action for event in events] == [AuditAction.PUBLISH]
    assert json.loads(events[0].details) == {
        "bulk": "legacy export",
        "documents": 12,
        "dossiers": 3,
    }
    assert sorted(json.loads(events[0].entity_ids)) == sorted(str(row.id) for row in rows)
    assert audit_trail.verify(session).intact


def test_only_an_operator_loads(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, biologist: Professional
) -> None:
    patient = make_patient(session, clock)
    rows = _documents(patient, store.put(str(patient.id), PDF), clock, biologist, 1)
    with pytest.raises(AccessDenied):
        bulk.load_documents(
            session, professional_actor(biologist), rows, clock=clock, source="feed"
        )
    assert session.scalar(select(func.count()).select_from(Document)) == 0


def test_bad_row_is_named_and_nothing_is_written(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, biologist: Professional
) -> None:
    patient = make_patient(session, clock)
    rows = _documents(patient, store.put(str(patient.id), PDF), clock, biologist, 3)
    unknown = replace(rows[2].metadata, type_system=LOCAL_TYPE_SYSTEM, type_code="no-such-type")
    rows[2] = replace(rows[2], metadata=unknown)
    with pytest.raises(InvalidDocument) as raised:
        bulk.load_documents(session, operator_actor(), rows, clock=clock, source="x")
    assert raised.value.field == "documents[2].type"

    rows[2] = replace(rows[2], metadata=replace(rows[1].metadata, title="  "))
    with pytest.raises(InvalidDocument) as raised:
        bulk.load_documents(session, operator_actor(), rows, clock=clock, source="x")
    assert raised.value.field == "documents[2].title"
    assert session.scalar(select(func.count()).select_from(Document)) == 0


def test_content_must_be_stored_in_the_same_dossier(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, biologist: Professional
) -> None:
    mine, theirs = make_patient(session, clock), make_patient(session, clock)
    rows = _documents(mine, store.put(str(theirs.id), PDF), clock, biologist, 1)
    with pytest.raises(InvalidDocument) as raised:
        bulk.load_documents(session, operator_actor(), rows, clock=clock, source="x")
    assert raised.value.field == "documents[0].content"


def test_dossiers_must_be_active_and_exist(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, biologist: Professional
) -> None:
    invited = make_patient(session, clock, state=DossierState.INVITED)
    rows = _documents(invited, store.put(str(invited.id), PDF), clock, biologist, 1)
    with pytest.raises(DossierNotActive):
        bulk.load_documents(session, operator_actor(), rows, clock=clock, source="x")
    nobody = uuid.uuid4()
    stranger = [replace(rows[0], patient_id=nobody, content=store.put(str(nobody), PDF))]
    with pytest.raises(PatientNotFound):
        bulk.load_documents(session, operator_actor(), stranger, clock=clock, source="x")


def test_unknown_author_is_refused(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, biologist: Professional
) -> None:
    patient = make_patient(session, clock)
    rows = _documents(patient, store.put(str(patient.id), PDF), clock, biologist, 1)
    rows[0] = replace(
        rows[0], metadata=replace(rows[0].metadata, author_professional_id=uuid.uuid4())
    )
    with pytest.raises(ProfessionalNotFound):
        bulk.load_documents(session, operator_actor(), rows, clock=clock, source="x")


def test_duplicate_master_identifiers_are_refused(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, biologist: Professional
) -> None:
    patient = make_patient(session, clock)
    rows = _documents(patient, store.put(str(patient.id), PDF), clock, biologist, 2)
    twins = [
        replace(row, metadata=replace(row.metadata, master_identifier="urn:oid:1.2.3"))
        for row in rows
    ]
    with pytest.raises(DuplicateDocument):
        bulk.load_documents(session, operator_actor(), twins, clock=clock, source="x")

    bulk.load_documents(session, operator_actor(), twins[:1], clock=clock, source="x")
    again = [replace(twins[1], id=uuid.uuid4())]
    with pytest.raises(DuplicateDocument) as raised, session.begin_nested():
        # Already in the dossier: the database's unique index refuses it.
        bulk.load_documents(session, operator_actor(), again, clock=clock, source="x")
    assert raised.value.master_identifier in ("urn:oid:1.2.3", "(one of the batch)")
