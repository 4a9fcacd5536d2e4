"""The one place the XDS way in reaches dossiers and document services.

Every dossier is opened through the door (``carnet.access.door``) for the transaction's purpose:
publishing (ITI-41) or retrieving (ITI-43). Kept in one module so that a change of a service's
signature is one edit here.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence

from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import OpenedDossier, open_dossier
from carnet.clinical import extraction
from carnet.clock import Clock
from carnet.documents import folders, locating, publication, reading
from carnet.documents.metadata import DocumentMetadata, SubmissionSetMetadata
from carnet.documents.models import Document, SubmissionSet
from carnet.patients import service as patients
from carnet.storage import DocumentStore

FolderMetadata = folders.FolderMetadata
AssociationMetadata = folders.AssociationMetadata


def find_patient(session: Session, system: str, value: str) -> uuid.UUID | None:
    """The patient holding this national identifier (``InvalidIdentifier`` if malformed)."""
    return patients.find_patient_id(session, system, value)


def open_to_publish(
    session: Session, actor: Actor, patient_id: uuid.UUID, *, clock: Clock
) -> OpenedDossier:
    """The dossier opened to publish (refusals raised as the door raises them)."""
    return open_dossier(session, actor, patient_id, purposes.PUBLISH_DOCUMENTS, clock=clock)


def open_to_retrieve(
    session: Session, actor: Actor, patient_id: uuid.UUID, *, clock: Clock
) -> OpenedDossier:
    """The dossier opened to retrieve document content."""
    return open_dossier(session, actor, patient_id, purposes.RETRIEVE_DOCUMENTS, clock=clock)


def publish(
    session: Session,
    dossier: OpenedDossier,
    store: DocumentStore,
    *,
    submission_set: SubmissionSetMetadata,
    documents: Sequence[tuple[DocumentMetadata, bytes]],
) -> tuple[SubmissionSet, list[Document]]:
    """Publish the documents under one submission set (or record one that brings none).

    A FHIR document among them brings its structured facts, in the same transaction, as ITI-65
    does: a result is the same whichever profile carried it.
    """
    if documents:
        submission, added = publication.submit(
            session, dossier, store, submission_set=submission_set, documents=documents
        )
        extraction.record_facts(
            session, dossier, zip(added, (content for _, content in documents), strict=True)
        )
        return submission, added
    return folders.open_submission_set(session, dossier, submission_set), []


def file(
    session: Session,
    dossier: OpenedDossier,
    *,
    submission_set: SubmissionSet,
    new_folders: Sequence[FolderMetadata],
    associations: Sequence[AssociationMetadata],
    submitted: Collection[uuid.UUID],
) -> folders.Filed:
    """Create the submission's Folders and record its associations."""
    return folders.file(
        session,
        dossier,
        submission_set=submission_set,
        folders=new_folders,
        associations=associations,
        submitted=submitted,
    )


def stored_sha256(session: Session, dossier: OpenedDossier, master_identifier: str) -> str | None:
    """The SHA-256 of the document already holding this uniqueId in the dossier, if any."""
    return locating.stored_sha256(session, dossier, master_identifier)


def holders(
    session: Session, master_identifiers: Collection[str]
) -> dict[str, list[tuple[uuid.UUID, uuid.UUID]]]:
    """Where documents named by ``masterIdentifier`` are: ``(patient_id, document_id)``s."""
    return locating.documents_by_master_identifier(session, master_identifiers)


def read_content(
    session: Session, dossier: OpenedDossier, document_id: uuid.UUID, store: DocumentStore
) -> tuple[Document, bytes]:
    """A document and its bytes, if the policy lets the actor see it (``AccessDenied`` else)."""
    return reading.read_content(session, dossier, document_id, store)
