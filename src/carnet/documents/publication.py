"""Publishing documents: add one, submit several under a submission set, replace one.

Order of work in every write: validate everything, then make the content durable in the store,
then add the metadata rows. The caller commits; until then the document is invisible, and if the
transaction fails the stored object is unreferenced (never read, swept later) — so a crash at
any point leaves the whole document or nothing visible.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access.actors import Actor, ActorKind
from carnet.access.policy import Action, DossierAccess
from carnet.access.scopes import Interaction
from carnet.audit.models import AuditAction
from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.documents import guard
from carnet.documents.errors import (
    DocumentNotCurrent,
    DocumentTooLarge,
    DossierNotActive,
    DuplicateDocument,
    InvalidDocument,
)
from carnet.documents.metadata import (
    DocumentMetadata,
    SubmissionSetMetadata,
    check_content,
    check_metadata,
)
from carnet.documents.models import Document, DocumentStatus, SubmissionSet
from carnet.notifications import service as notices
from carnet.patients import service as patients
from carnet.patients.models import DossierState
from carnet.storage import ContentTooLarge, DocumentStore


def add_document(
    session: Session,
    store: DocumentStore,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    metadata: DocumentMetadata,
    content: bytes,
    clock: Clock,
) -> Document:
    """Add one document to an active dossier, authored by (or for) ``actor``.

    Policy: the patient (or representative) uploads their own documents; a professional
    publishes as author unless blocked; a feeding system publishes for its organisation.
    Raises ``DossierNotActive``, ``AccessDenied``, ``InsufficientScope``, ``InvalidDocument``
    (with the field at fault), ``DocumentTooLarge``, ``DuplicateDocument``,
    ``ProfessionalNotFound`` or ``OrganisationNotFound``; in every case nothing is stored.
    """
    now = clock.now()
    access = _authorize_publication(session, actor, patient_id, now, AuditAction.PUBLISH)
    document = _add_or_replace(
        session,
        store,
        actor=actor,
        access=access,
        metadata=metadata,
        content=content,
        clock=clock,
        submission_set_id=None,
    )
    guard.record(session, actor, AuditAction.PUBLISH, patient_id, clock, documents=[document.id])
    _announce(session, actor, patient_id, [document], clock)
    return document


def submit(
    session: Session,
    store: DocumentStore,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    submission_set: SubmissionSetMetadata,
    documents: Sequence[tuple[DocumentMetadata, bytes]],
    clock: Clock,
) -> tuple[SubmissionSet, list[Document]]:
    """Publish several documents at once, all or nothing, under one submission set.

    A document whose metadata names ``replaces_id`` supersedes that document, which must be
    current and the actor's to manage (its author's).
    """
    access = _authorize_publication(session, actor, patient_id, clock.now(), AuditAction.PUBLISH)
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
    _check_authors(
        session, submission_set.author_professional_id, submission_set.author_organisation_id
    )
    record = SubmissionSet(
        patient_id=patient_id,
        id=uuid.uuid4(),
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
            actor=actor,
            access=access,
            metadata=metadata,
            content=content,
            clock=clock,
            submission_set_id=record.id,
        )
        for metadata, content in documents
    ]
    guard.record(
        session,
        actor,
        AuditAction.PUBLISH,
        patient_id,
        clock,
        documents=[d.id for d in added],
        details={"submission_set": record.master_identifier},
    )
    _announce(session, actor, patient_id, added, clock)
    return record, added


def _add_or_replace(
    session: Session,
    store: DocumentStore,
    *,
    actor: Actor,
    access: DossierAccess,
    metadata: DocumentMetadata,
    content: bytes,
    clock: Clock,
    submission_set_id: uuid.UUID | None,
) -> Document:
    previous = None
    if metadata.replaces_id is not None:
        previous = guard.managed(session, actor, access, metadata.replaces_id, AuditAction.REPLACE)
        if previous.status is not DocumentStatus.CURRENT:
            raise DocumentNotCurrent(previous.status.value)
    document = _add(
        session,
        store,
        patient_id=access.patient_id,
        metadata=_attributed(session, actor, metadata),
        content=content,
        clock=clock,
        submission_set_id=submission_set_id,
        replaces_id=previous.id if previous else None,
    )
    if previous is not None:
        previous.status = DocumentStatus.SUPERSEDED
        previous.updated_at = clock.now()
        session.flush()
        guard.record(
            session,
            actor,
            AuditAction.REPLACE,
            access.patient_id,
            clock,
            documents=[document.id, previous.id],
            details={"replaces": previous.id},
        )
    return document


def replace_document(
    session: Session,
    store: DocumentStore,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    replaced_id: uuid.UUID,
    metadata: DocumentMetadata,
    content: bytes,
    clock: Clock,
) -> Document:
    """Add a new version of a current document; the previous one becomes superseded.

    Policy: only the author (its professional, its organisation's system, or the patient for
    their own uploads) replaces a document.
    """
    access = _authorize_publication(session, actor, patient_id, clock.now(), AuditAction.REPLACE)
    replacement = _add_or_replace(
        session,
        store,
        actor=actor,
        access=access,
        metadata=replace(metadata, replaces_id=replaced_id),
        content=content,
        clock=clock,
        submission_set_id=None,
    )
    _announce(session, actor, patient_id, [replacement], clock)
    return replacement


def _announce(
    session: Session, actor: Actor, patient_id: uuid.UUID, added: list[Document], clock: Clock
) -> None:
    """Tell the patient of documents others published (not of their own uploads)."""
    if actor.kind is ActorKind.PATIENT:
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
            patient_id=patient_id,
            document_type_label_key=guard.facts(document).type_key,
            author_name=author,
            clock=clock,
        )


def _authorize_publication(
    session: Session, actor: Actor, patient_id: uuid.UUID, now: dt.datetime, audit: AuditAction
) -> DossierAccess:
    access_guard.check_scope(
        actor, "DocumentReference", Interaction.CREATE, patient_id, audit=audit
    )
    access_guard.require_strong(actor, patient_id=patient_id, audit=audit)
    # A feed must hear why its document was refused (issue: lifecycle), so the dossier's state
    # is checked before the policy, whose refusals all look like "not found".
    _require_active_dossier(session, patient_id)
    return access_guard.authorize(session, actor, patient_id, Action.PUBLISH, now=now, audit=audit)


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


def _require_active_dossier(session: Session, patient_id: uuid.UUID) -> None:
    dossier = patients.get_dossier(session, patient_id)
    if dossier.state is not DossierState.ACTIVE:
        raise DossierNotActive(dossier.state.value)


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
    check_content(metadata, content)
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
    # Should the row not commit, the object stays behind on purpose: the same bytes in this
    # dossier are one object, maybe another document's. The store sweeper removes it later.
    try:
        stored = store.put(str(patient_id), content)
    except ContentTooLarge as error:
        raise DocumentTooLarge(size=error.size, limit=error.limit) from error
    document = Document(
        patient_id=patient_id,
        id=uuid.uuid4(),
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
