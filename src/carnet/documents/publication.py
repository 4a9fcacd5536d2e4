"""Publishing documents: add one, submit several under a submission set, replace one.

Order of work in every write: validate everything, then make the content durable in the store,
then add the metadata rows. The caller commits; until then the document is invisible, and if the
transaction fails the stored object is unreferenced (never read, swept later) — so a crash at
any point leaves the whole document or nothing visible.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor, ActorKind
from carnet.access.door import OpenedDossier
from carnet.audit.models import AuditAction
from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.documents import guard
from carnet.documents.errors import (
    DocumentNotCurrent,
    DocumentTooLarge,
    DuplicateDocument,
    InvalidDocument,
)
from carnet.documents.metadata import (
    DocumentMetadata,
    SubmissionSetMetadata,
    check_content,
    check_metadata,
    replaced_version,
)
from carnet.documents.models import Document, DocumentStatus, SubmissionSet
from carnet.notifications import service as notices
from carnet.storage import ContentTooLarge, DocumentStore


def add_document(
    session: Session,
    dossier: OpenedDossier,
    store: DocumentStore,
    *,
    metadata: DocumentMetadata,
    content: bytes,
) -> Document:
    """Add one document to an active dossier, authored by (or for) the dossier's actor.

    Serves a dossier opened to ``PUBLISH_DOCUMENTS`` (the door refused an inactive dossier with
    ``DossierNotActive``). Policy: the patient (or representative) uploads their own documents;
    a professional publishes as author unless blocked; a feeding system publishes for its
    organisation. Raises ``InvalidDocument`` (with the field at fault), ``DocumentTooLarge``,
    ``DuplicateDocument``, ``ProfessionalNotFound`` or ``OrganisationNotFound``; in every case
    nothing is stored.
    """
    dossier.require(purposes.PUBLISH_DOCUMENTS)
    document = _add_or_replace(
        session, store, dossier, metadata=metadata, content=content, submission_set_id=None
    )
    dossier.record(session, AuditAction.PUBLISH, entity_ids=[document.id])
    _announce(session, dossier, [document])
    return document


def submit(
    session: Session,
    dossier: OpenedDossier,
    store: DocumentStore,
    *,
    submission_set: SubmissionSetMetadata,
    documents: Sequence[tuple[DocumentMetadata, bytes]],
) -> tuple[SubmissionSet, list[Document]]:
    """Publish several documents at once, all or nothing, under one submission set.

    Serves a dossier opened to ``PUBLISH_DOCUMENTS``. A document whose metadata names
    ``replaces_id`` supersedes that document, which must be current and the actor's to manage
    (its author's).
    """
    dossier.require(purposes.PUBLISH_DOCUMENTS)
    patient_id, clock = dossier.patient_id, dossier.clock
    if not documents:
        raise InvalidDocument("A submission needs at least one document.", field="documents")
    if not submission_set.source_id.strip():
        raise InvalidDocument("The submission's source id is empty.", field="source_id")
    master_identifier = submission_set.master_identifier or f"urn:uuid:{uuid.uuid4()}"
    if session.scalar(
        select(SubmissionSet.id).where(
            SubmissionSet.patient_id == patient_id,
            SubmissionSet.master_identifier == master_identifier,
        )
    ):
        raise DuplicateDocument(master_identifier)
    if (
        submission_set.entry_id is not None
        and session.get(SubmissionSet, (patient_id, submission_set.entry_id)) is not None
    ):
        raise DuplicateDocument(f"urn:uuid:{submission_set.entry_id}")
    _check_authors(
        session, submission_set.author_professional_id, submission_set.author_organisation_id
    )
    record = SubmissionSet(
        patient_id=patient_id,
        id=submission_set.entry_id or uuid.uuid4(),
        master_identifier=master_identifier,
        source_id=submission_set.source_id.strip(),
        title=submission_set.title,
        author_professional_id=submission_set.author_professional_id,
        author_organisation_id=submission_set.author_organisation_id,
        submitted_at=clock.now(),
    )
    session.add(record)
    session.flush()
    added = [
        _add_or_replace(
            session,
            store,
            dossier,
            metadata=metadata,
            content=content,
            submission_set_id=record.id,
        )
        for metadata, content in documents
    ]
    dossier.record(
        session,
        AuditAction.PUBLISH,
        entity_ids=[d.id for d in added],
        details={"submission_set": record.master_identifier},
    )
    _announce(session, dossier, added)
    return record, added


def _add_or_replace(
    session: Session,
    store: DocumentStore,
    dossier: OpenedDossier,
    *,
    metadata: DocumentMetadata,
    content: bytes,
    submission_set_id: uuid.UUID | None,
) -> Document:
    clock = dossier.clock
    previous = None
    # A CDA document that is a new version of its set replaces its parent (issue 17).
    replaced = replaced_version(session, dossier, metadata, content)
    metadata = replace(metadata, replaces_id=replaced)
    if metadata.replaces_id is not None:
        previous = guard.require_manage(session, dossier, metadata.replaces_id, AuditAction.REPLACE)
        if previous.status is not DocumentStatus.CURRENT:
            raise DocumentNotCurrent(previous.status.value)
    document = _add(
        session,
        store,
        patient_id=dossier.patient_id,
        metadata=_attributed(session, dossier.actor, metadata),
        content=content,
        clock=clock,
        submission_set_id=submission_set_id,
        replaces_id=previous.id if previous else None,
    )
    if previous is not None:
        previous.status = DocumentStatus.SUPERSEDED
        previous.updated_at = clock.now()
        session.flush()
        dossier.record(
            session,
            AuditAction.REPLACE,
            entity_ids=[document.id, previous.id],
            details={"replaces": previous.id},
        )
    return document


def replace_document(
    session: Session,
    dossier: OpenedDossier,
    store: DocumentStore,
    *,
    replaced_id: uuid.UUID,
    metadata: DocumentMetadata,
    content: bytes,
) -> Document:
    """Add a new version of a current document; the previous one becomes superseded.

    Serves a dossier opened to ``REPLACE_DOCUMENT``. Policy: only the author (its professional,
    its organisation's system, or the patient for their own uploads) replaces a document.
    """
    dossier.require(purposes.REPLACE_DOCUMENT)
    replacement = _add_or_replace(
        session,
        store,
        dossier,
        metadata=replace(metadata, replaces_id=replaced_id),
        content=content,
        submission_set_id=None,
    )
    _announce(session, dossier, [replacement])
    return replacement


def _announce(session: Session, dossier: OpenedDossier, added: list[Document]) -> None:
    """Tell the patient of documents others published (not of their own uploads)."""
    if dossier.actor.kind is ActorKind.PATIENT:
        return
    for document in added:
        author = (
            directory.author_name(
                session,
                professional_id=document.author_professional_id,
                organisation_id=document.author_organisation_id,
            )
            or "Carnet"
        )
        notices.notify_new_document(
            session,
            patient_id=dossier.patient_id,
            document_type_label_key=guard.facts(document).type_key,
            author_name=author,
            clock=dossier.clock,
            document_id=document.id,
        )


def _attributed(session: Session, actor: Actor, metadata: DocumentMetadata) -> DocumentMetadata:
    """The metadata with its author set from the actor; refuse an author the actor is not."""
    if actor.kind is ActorKind.PATIENT:
        if metadata.author_professional_id or metadata.author_organisation_id:
            raise InvalidDocument(
                "A document uploaded by the patient is authored by the patient.", field="author"
            )
        return replace(metadata, authored_by_patient=True)
    if metadata.authored_by_patient:
        raise InvalidDocument(
            "Only the patient uploads a patient-authored document.", field="author"
        )
    if actor.kind is ActorKind.PROFESSIONAL:
        if metadata.author_professional_id not in (None, actor.professional_id):
            raise InvalidDocument(
                "A professional publishes as the author of the document.", field="author"
            )
        return replace(
            metadata,
            author_professional_id=actor.professional_id,
            author_organisation_id=metadata.author_organisation_id or actor.organisation_id,
        )
    if metadata.author_organisation_id not in (None, actor.organisation_id):
        raise InvalidDocument(
            "A feeding system publishes for its own organisation only.", field="author"
        )
    if metadata.author_professional_id is not None:
        author = directory.get_professional(session, metadata.author_professional_id)
        if author.organisation_id != actor.organisation_id:
            raise InvalidDocument(
                "The author does not work for the publishing organisation.", field="author"
            )
    return replace(metadata, author_organisation_id=actor.organisation_id)


def _add(
    session: Session,
    store: DocumentStore,
    *,
    patient_id: uuid.UUID,
    metadata: DocumentMetadata,
    content: bytes,
    clock: Clock,
    submission_set_id: uuid.UUID | None,
    replaces_id: uuid.UUID | None,
) -> Document:
    now = clock.now()
    class_code = check_metadata(metadata, now)
    check_content(metadata, content, session=session, patient_id=patient_id)
    _check_authors(session, metadata.author_professional_id, metadata.author_organisation_id)
    if metadata.custodian_organisation_id is not None:
        directory.get_organisation(session, metadata.custodian_organisation_id)
    master_identifier = metadata.master_identifier or f"urn:uuid:{uuid.uuid4()}"
    if session.scalar(
        select(Document.id).where(
            Document.patient_id == patient_id, Document.master_identifier == master_identifier
        )
    ):
        raise DuplicateDocument(master_identifier)
    if (
        metadata.entry_id is not None
        and session.get(Document, (patient_id, metadata.entry_id)) is not None
    ):
        raise DuplicateDocument(f"urn:uuid:{metadata.entry_id}")
    # Should the row not commit, the object stays behind on purpose: the same bytes in this
    # dossier are one object, maybe another document's. The store sweeper removes it later.
    try:
        stored = store.put(str(patient_id), content)
    except ContentTooLarge as error:
        raise DocumentTooLarge(size=error.size, limit=error.limit) from error
    document = Document(
        patient_id=patient_id,
        id=metadata.entry_id or uuid.uuid4(),
        master_identifier=master_identifier,
        status=DocumentStatus.CURRENT,
        class_code=class_code,
        type_system=metadata.type_system,
        type_code=metadata.type_code,
        format_code=metadata.format_code,
        title=metadata.title.strip(),
        mime_type=metadata.mime_type,
        size=stored.size,
        sha256=stored.sha256,
        language=metadata.language,
        created_at=metadata.created_at,
        service_start=metadata.service_start,
        service_end=metadata.service_end,
        author_professional_id=metadata.author_professional_id,
        author_organisation_id=metadata.author_organisation_id,
        authored_by_patient=metadata.authored_by_patient,
        custodian_organisation_id=metadata.custodian_organisation_id,
        facility_type=metadata.facility_type,
        practice_setting=metadata.practice_setting,
        confidentiality=metadata.confidentiality,
        masked_from_professionals=metadata.masked_from_professionals,
        hidden_from_patient=metadata.hidden_from_patient,
        replaces_id=replaces_id,
        submission_set_id=submission_set_id,
        source_system=metadata.source_system,
        content_key=stored.key,
        submitted_at=now,
        updated_at=now,
    )
    session.add(document)
    session.flush()
    return document


def _check_authors(
    session: Session, professional_id: uuid.UUID | None, organisation_id: uuid.UUID | None
) -> None:
    if professional_id is not None:
        directory.get_professional(session, professional_id)
    if organisation_id is not None:
        directory.get_organisation(session, organisation_id)
