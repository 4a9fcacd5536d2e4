"""setId and versionNumber: a CDA document that is a new version of its set (relatedDocument
RPLC, CDA R2 §4.2.3.1) replaces, in the dossier, the version it names — through publication's
own replace path, so only a current document, and only by its author."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.cda.writing import write_lab_report
from carnet.clock import FrozenClock
from carnet.documents import publication
from carnet.documents.errors import DocumentNotCurrent
from carnet.documents.models import Document, DocumentStatus
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore
from factories.actors import professional_actor
from factories.cda import DOCUMENT, dataset, fitted, metadata_of, report
from factories.directory import make_professional

FIRST = dataset("General__External_Document_Reference__PROBLEMS_in_Empty_C-CDA_2.1__C-CDAR2.1.xml")
SECOND = dataset(
    "General__Parent_Document_Replace_Relationship__CCD_Parent_Document_Replace__C-CDAR2.1.xml"
)
ROOT = "2.16.840.1.113883.19.5.99999.1"


def _publish(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    actor: Actor,
    patient: Patient,
    content: bytes,
    master_identifier: str,
) -> Document:
    return publication.add_document(
        session,
        open_dossier(session, actor, patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock),
        store,
        metadata=metadata_of(content, master_identifier=master_identifier),
        content=content,
    )


def test_the_next_version_replaces_its_parent(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    author: Actor,
    patient: Patient,
    matricule: str,
) -> None:
    first = fitted(
        FIRST.read_bytes(), matricule=matricule, attributes={"id": {"extension": "TT661"}}
    )
    earlier = _publish(session, store, clock, author, patient, first, f"{ROOT}^TT661")
    second = fitted(SECOND.read_bytes(), matricule=matricule)

    later = _publish(session, store, clock, author, patient, second, f"{ROOT}^TT662")

    assert later.replaces_id == earlier.id
    assert earlier.status is DocumentStatus.SUPERSEDED
    assert later.status is DocumentStatus.CURRENT


def test_a_version_whose_parent_was_never_shared_is_added(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    author: Actor,
    patient: Patient,
    matricule: str,
) -> None:
    second = fitted(SECOND.read_bytes(), matricule=matricule)

    later = _publish(session, store, clock, author, patient, second, f"{ROOT}^TT662")

    assert later.replaces_id is None


def test_a_written_report_corrected_replaces_the_first(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    author: Actor,
    patient: Patient,
    matricule: str,
) -> None:
    first = write_lab_report(report(matricule))
    earlier = _publish(session, store, clock, author, patient, first, f"urn:uuid:{DOCUMENT}")
    corrected_id = uuid.uuid4()
    corrected = write_lab_report(
        report(
            matricule, document_id=corrected_id, set_id=DOCUMENT, version=2, replaces=(DOCUMENT,)
        )
    )

    later = _publish(session, store, clock, author, patient, corrected, f"urn:uuid:{corrected_id}")

    assert later.replaces_id == earlier.id
    assert earlier.status is DocumentStatus.SUPERSEDED
    # A third version naming the superseded first is refused: only a current one is replaced.
    third = write_lab_report(
        report(
            matricule, document_id=uuid.uuid4(), set_id=DOCUMENT, version=3, replaces=(DOCUMENT,)
        )
    )
    with pytest.raises(DocumentNotCurrent):
        _publish(session, store, clock, author, patient, third, f"urn:uuid:{uuid.uuid4()}")


def test_only_the_author_publishes_a_new_version(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    author: Actor,
    patient: Patient,
    matricule: str,
) -> None:
    first = fitted(
        FIRST.read_bytes(), matricule=matricule, attributes={"id": {"extension": "TT661"}}
    )
    earlier = _publish(session, store, clock, author, patient, first, f"{ROOT}^TT661")
    colleague = professional_actor(make_professional(session, clock))
    second = fitted(SECOND.read_bytes(), matricule=matricule)

    with pytest.raises(AccessDenied):
        _publish(session, store, clock, colleague, patient, second, f"{ROOT}^TT662")

    assert earlier.status is DocumentStatus.CURRENT
