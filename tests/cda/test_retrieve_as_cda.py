"""ITI-68 with ``Accept: application/hl7-cda+xml``: a laboratory report received as HL7 v2 is
retrieved as a CDA R2 laboratory report written from its results; a CDA document as received;
anything else is 406. The read goes through the door and is on the trail as a RETRIEVE."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from httpx2 import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.audit.models import AuditAction, AuditEvent
from carnet.cda.header import read_header
from carnet.cda.parsing import V3
from carnet.cda.patient import national_identifiers
from carnet.clock import FrozenClock
from carnet.directory.models import Organisation
from carnet.fhir.ids import document_resource_id
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor, professional_actor
from factories.auth import Served, bearer, serve
from factories.cda import CCD, fitted, metadata_of
from factories.directory import make_professional
from factories.documents import make_document
from laboratory.sending import lead_report, register_lab, send

CDA = {"Accept": "application/hl7-cda+xml"}


@dataclass
class Reader:
    served: Served
    session: Session
    clock: FrozenClock
    me: Actor

    def get(self, patient: Patient, document_id: uuid.UUID) -> Response:
        token = bearer(self.served, self.session, self.me, self.clock, "patient/*.rs")
        return self.served.client.get(
            f"/fhir/Binary/{document_resource_id(patient.id, document_id)}",
            headers={**CDA, **token},
        )


@pytest.fixture
def reader(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
    patient: Patient,
) -> Iterator[Reader]:
    with serve(session, store, clock, wrapper) as served:
        yield Reader(served, session, clock, patient_actor(patient))


def test_a_v2_laboratory_report_is_retrieved_as_cda(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    lab: Organisation,
    patient: Patient,
    matricule: str,
    reader: Reader,
) -> None:
    register_lab(session, clock, lab, "Central Lab")
    [document_id] = send(session, store, clock, lead_report(matricule)).document_ids

    answer = reader.get(patient, document_id)

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/hl7-cda+xml"
    assert answer.headers["cache-control"] == "no-store"
    content = answer.content
    header = read_header(content)
    assert header.code.code == "11502-2"
    assert [i.value for i in national_identifiers(header)] == [matricule]
    assert header.patient_name == "Léa Weber"
    assert b'code="10368-9"' in content  # the blood lead result, as an observation
    assert b'unit="ug/dL"' in content
    retrievals = session.scalars(
        select(AuditEvent).where(
            AuditEvent.patient_id == patient.id, AuditEvent.action == AuditAction.RETRIEVE
        )
    ).all()
    assert [event.outcome.value for event in retrievals] == ["allowed"]
    assert V3.encode() in content


def test_a_cda_document_is_retrieved_as_it_was_received(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    author: Actor,
    patient: Patient,
    matricule: str,
    reader: Reader,
) -> None:
    content = fitted(CCD.read_bytes(), matricule=matricule)
    metadata = metadata_of(content)
    document = make_document(
        session,
        store,
        clock,
        actor=author,
        patient_id=patient.id,
        content=content,
        **{
            name: getattr(metadata, name)
            for name in ("type_code", "created_at", "language", "mime_type")
        },
    )

    answer = reader.get(patient, document.id)

    assert answer.status_code == 200
    assert answer.content == content


def test_a_document_that_is_no_cda_is_not_acceptable(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    patient: Patient,
    reader: Reader,
) -> None:
    author = professional_actor(make_professional(session, clock))
    document = make_document(session, store, clock, actor=author, patient_id=patient.id)

    answer = reader.get(patient, document.id)

    assert answer.status_code == 406
    issue = answer.json()["issue"][0]
    assert issue["code"] == "not-supported"


def test_a_stranger_gets_no_cda(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
    lab: Organisation,
    patient: Patient,
    matricule: str,
) -> None:
    register_lab(session, clock, lab, "Central Lab")
    [document_id] = send(session, store, clock, lead_report(matricule)).document_ids
    stranger = professional_actor(make_professional(session, clock))
    with serve(session, store, clock, wrapper) as served:
        token = bearer(served, session, stranger, clock, "user/*.rs")
        answer = served.client.get(
            f"/fhir/Binary/{document_resource_id(patient.id, document_id)}",
            headers={**CDA, **token},
        )
    assert answer.status_code in (403, 404)
    assert b"ClinicalDocument" not in answer.content
