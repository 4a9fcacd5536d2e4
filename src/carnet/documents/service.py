"""Document services: add, list, read, replace, mark entered-in-error.

Order of work in every write: validate everything, then make the content durable in the store,
then add the metadata rows. The caller commits; until then the document is invisible, and if the
transaction fails the stored object is unreferenced (never read, swept later) — so a crash at
any point leaves the whole document or nothing visible.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import CursorResult, Select, delete, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from carnet.access import service as access_service
from carnet.access.actors import Actor, ActorKind
from carnet.access.errors import InsufficientScope
from carnet.access.matrix import load_matrix
from carnet.access.policy import (
    Action,
    DocumentFacts,
    DossierAccess,
    decide_document,
    decide_manage,
    scope_allows,
)
from carnet.access.scopes import Interaction
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.audit.service import Refusal
from carnet.catalogue import UnknownDocumentType, load_catalogue
from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.directory.models import Professional
from carnet.documents import formats
from carnet.documents.errors import (
    DocumentNotCurrent,
    DocumentTooLarge,
    DossierNotActive,
    DuplicateDocument,
    InvalidDocument,
)
from carnet.documents.models import (
    Confidentiality,
    Document,
    DocumentStatus,
    SubmissionSet,
)
from carnet.notifications import service as notices
from carnet.patients import service as patients
from carnet.patients.models import DossierState
from carnet.storage import ContentTooLarge, DocumentStore

_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_LANGUAGE = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$")
# A document dated a little ahead is a clock off by a few minutes, not a mistake worth refusing.
_CLOCK_SKEW = dt.timedelta(minutes=5)
# Bounds the ids sent in one IN (...) list: SQLite and psycopg both cap bound parameters.
_IN_LIST = 500


@dataclass(frozen=True)
class DocumentMetadata:
    """What the author says of a document (FHIR DocumentReference / XDS DocumentEntry)."""

    type_system: str
    type_code: str
    title: str
    mime_type: str
    created_at: dt.datetime
    author_professional_id: uuid.UUID | None = None
    author_organisation_id: uuid.UUID | None = None
    authored_by_patient: bool = False
    master_identifier: str | None = None
    class_code: str | None = None
    format_code: str | None = None
    language: str | None = None
    service_start: dt.datetime | None = None
    service_end: dt.datetime | None = None
    custodian_organisation_id: uuid.UUID | None = None
    facility_type: str | None = None
    practice_setting: str | None = None
    confidentiality: Confidentiality = Confidentiality.NORMAL
    masked_from_professionals: bool = False
    hidden_from_patient: bool = False
    source_system: str | None = None
    expected_size: int | None = None
    expected_sha256: str | None = None
    # IHE relatesTo "replaces": this document supersedes that one (of the same dossier).
    replaces_id: uuid.UUID | None = None


@dataclass(frozen=True)
class SubmissionSetMetadata:
    """One act of publication (IHE SubmissionSet)."""

    source_id: str
    master_identifier: str | None = None
    title: str | None = None
    author_professional_id: uuid.UUID | None = None
    author_organisation_id: uuid.UUID | None = None


@dataclass(frozen=True)
class DocumentFilter:
    """Which of a patient's documents to list. Empty collections and None mean "any".

    The fields follow the ITI-67 search parameters: ``submitted_*`` is ``date``,
    ``service_*`` is ``period`` (documents whose service period overlaps), ``updated_*`` is
    ``_lastUpdated``.
    """

    statuses: Collection[DocumentStatus] = (DocumentStatus.CURRENT,)
    type_codes: Collection[str] = ()
    class_codes: Collection[str] = ()
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    submitted_from: dt.datetime | None = None
    submitted_to: dt.datetime | None = None
    updated_from: dt.datetime | None = None
    updated_to: dt.datetime | None = None
    service_from: dt.datetime | None = None
    service_to: dt.datetime | None = None
    practice_settings: Collection[str] = ()
    facility_types: Collection[str] = ()
    confidentialities: Collection[Confidentiality] = ()
    format_codes: Collection[str] = ()
    ids: Collection[uuid.UUID] = ()
    submission_set_ids: Collection[uuid.UUID] = ()
    author_professional_id: uuid.UUID | None = None
    author_family: str | None = None
    author_given: str | None = None
    oldest_first: bool = False
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class DocumentPage:
    """One page of a patient's documents as one actor may see them.

    ``withheld`` says that documents matching the search exist which the policy keeps from this
    actor — without saying which, so clinicians know the record they see is not complete.
    """

    documents: list[Document]
    total: int
    withheld: bool


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
    _log(session, actor, AuditAction.PUBLISH, patient_id, clock, documents=[document.id])
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
    _log(
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
        previous = _managed(session, actor, access, metadata.replaces_id, AuditAction.REPLACE)
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
        _log(
            session,
            actor,
            AuditAction.REPLACE,
            access.patient_id,
            clock,
            documents=[document.id, previous.id],
            details={"replaces": previous.id},
        )
    return document


def get_document(
    session: Session, actor: Actor, patient_id: uuid.UUID, document_id: uuid.UUID, *, clock: Clock
) -> Document:
    """One document's metadata, if the policy lets ``actor`` see it.

    Raises ``AccessDenied`` — indistinguishable from not found — when the dossier or document
    does not exist or may not be seen; ``StrongerAuthenticationRequired`` for a weak sign-in.
    """
    access_service.check_scope(
        actor, "DocumentReference", Interaction.READ, patient_id, audit=AuditAction.READ
    )
    access = access_service.authorize(
        session, actor, patient_id, Action.READ_DOCUMENTS, now=clock.now(), audit=AuditAction.READ
    )
    document = _visible(session, actor, access, document_id, AuditAction.READ)
    _log(
        session, actor, AuditAction.READ, patient_id, clock, documents=[document.id], access=access
    )
    return document


def list_documents(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    filters: DocumentFilter | None = None,
    *,
    clock: Clock,
) -> DocumentPage:
    """The documents of a dossier matching ``filters`` that ``actor`` may see, newest first."""
    filters = filters or DocumentFilter()
    if not 0 < filters.limit <= 1000:
        raise InvalidDocument("The page size must be between 1 and 1000.", field="limit")
    if filters.offset < 0:
        raise InvalidDocument("The offset cannot be negative.", field="offset")
    access_service.check_scope(
        actor, "DocumentReference", Interaction.SEARCH, patient_id, audit=AuditAction.SEARCH
    )
    access = access_service.authorize(
        session, actor, patient_id, Action.READ_DOCUMENTS, now=clock.now(), audit=AuditAction.SEARCH
    )
    matrix = load_matrix()
    # The policy is applied row by row, in one place, rather than re-expressed in SQL: a
    # dossier holds hundreds of documents, not millions (see bench/ for the cost).
    rows = list(session.scalars(_filtered(patient_id, filters)))
    visible = [row for row in rows if decide_document(actor, access, facts(row), matrix)]
    # Only a professional with some basis of access is told that documents are withheld; to
    # anyone else the dossier must look no different from one they may not know exists.
    withheld = len(visible) < len(rows) and bool(access.bases)
    page = visible[filters.offset : filters.offset + filters.limit]
    _log(
        session,
        actor,
        AuditAction.SEARCH,
        patient_id,
        clock,
        documents=[d.id for d in page],
        details={"total": len(visible), "withheld": withheld},
        access=access,
    )
    return DocumentPage(documents=page, total=len(visible), withheld=withheld)


def list_submission_sets(
    session: Session, actor: Actor, patient_id: uuid.UUID, *, clock: Clock
) -> list[tuple[SubmissionSet, list[Document]]]:
    """The dossier's submission sets (ITI-66), each with the documents ``actor`` may see.

    A submission set none of whose documents the actor may see is not listed at all.
    """
    access_service.check_scope(
        actor, "List", Interaction.SEARCH, patient_id, audit=AuditAction.SEARCH
    )
    access = access_service.authorize(
        session, actor, patient_id, Action.READ_DOCUMENTS, now=clock.now(), audit=AuditAction.SEARCH
    )
    matrix = load_matrix()
    rows = session.scalars(_filtered(patient_id, DocumentFilter(statuses=())))
    visible: dict[uuid.UUID, list[Document]] = {}
    for row in rows:
        if row.submission_set_id is not None and decide_document(actor, access, facts(row), matrix):
            visible.setdefault(row.submission_set_id, []).append(row)
    sets = session.scalars(
        select(SubmissionSet)
        .where(SubmissionSet.patient_id == patient_id, SubmissionSet.id.in_(list(visible)))
        .order_by(SubmissionSet.submitted_at.desc(), SubmissionSet.id)
    )
    found = [(submission, visible[submission.id]) for submission in sets]
    _log(
        session,
        actor,
        AuditAction.SEARCH,
        patient_id,
        clock,
        documents=[d.id for _, docs in found for d in docs],
        details={"resource": "List", "total": len(found)},
        access=access,
    )
    return found


def read_content(
    session: Session,
    store: DocumentStore,
    actor: Actor,
    patient_id: uuid.UUID,
    document_id: uuid.UUID,
    *,
    clock: Clock,
) -> tuple[Document, bytes]:
    """A document and its bytes, decrypted and checked against the recorded SHA-256."""
    if not (
        scope_allows(actor, "Binary", Interaction.READ, patient_id)
        or scope_allows(actor, "DocumentReference", Interaction.READ, patient_id)
    ):
        raise InsufficientScope("reading Binary").for_audit(
            Refusal(actor.agent, AuditAction.RETRIEVE, "scope", patient_id, (document_id,))
        )
    access = access_service.authorize(
        session,
        actor,
        patient_id,
        Action.READ_DOCUMENTS,
        now=clock.now(),
        audit=AuditAction.RETRIEVE,
    )
    document = _visible(session, actor, access, document_id, AuditAction.RETRIEVE)
    content = store.get(document.content_key)
    _log(
        session,
        actor,
        AuditAction.RETRIEVE,
        patient_id,
        clock,
        documents=[document.id],
        access=access,
    )
    return document, content


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


def mark_entered_in_error(
    session: Session, *, actor: Actor, patient_id: uuid.UUID, document_id: uuid.UUID, clock: Clock
) -> Document:
    """Withdraw a current document published by mistake; it is kept, marked entered-in-error."""
    audit = AuditAction.STATUS_CHANGE
    access_service.check_scope(
        actor, "DocumentReference", Interaction.UPDATE, patient_id, audit=audit
    )
    access = access_service.authorize(
        session, actor, patient_id, Action.MANAGE_DOCUMENT, now=clock.now(), audit=audit
    )
    document = _managed(session, actor, access, document_id, audit)
    if document.status is not DocumentStatus.CURRENT:
        raise DocumentNotCurrent(document.status.value)
    document.status = DocumentStatus.ENTERED_IN_ERROR
    document.updated_at = clock.now()
    session.flush()
    _log(
        session,
        actor,
        audit,
        patient_id,
        clock,
        documents=[document.id],
        details={"status": "entered-in-error"},
    )
    return document


def set_visibility(
    session: Session,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    document_id: uuid.UUID,
    clock: Clock,
    confidentiality: Confidentiality | None = None,
    masked_from_professionals: bool | None = None,
) -> Document:
    """Change a document's confidentiality or its masking from all professionals.

    Policy: the patient (or representative) sets both on any document they can see; the author
    sets the confidentiality of what they wrote.
    """
    audit = AuditAction.VISIBILITY_CHANGE
    access_service.check_scope(
        actor, "DocumentReference", Interaction.UPDATE, patient_id, audit=audit
    )
    now = clock.now()
    if actor.kind is ActorKind.PATIENT:
        access = access_service.authorize(
            session, actor, patient_id, Action.SET_VISIBILITY, now=now, audit=audit
        )
        document = _visible(session, actor, access, document_id, audit)
    else:
        if masked_from_professionals is not None:
            raise access_service.refuse(
                actor, audit, "only the patient masks documents", patient_id, (document_id,)
            )
        access = access_service.authorize(
            session, actor, patient_id, Action.MANAGE_DOCUMENT, now=now, audit=audit
        )
        document = _managed(session, actor, access, document_id, audit)
    if confidentiality is not None:
        document.confidentiality = confidentiality
    if masked_from_professionals is not None:
        document.masked_from_professionals = masked_from_professionals
    document.updated_at = now
    session.flush()
    _log(
        session,
        actor,
        audit,
        patient_id,
        clock,
        documents=[document.id],
        details={"confidentiality": confidentiality, "masked": masked_from_professionals},
    )
    return document


def disclose_to_patient(
    session: Session, *, actor: Actor, patient_id: uuid.UUID, document_id: uuid.UUID, clock: Clock
) -> Document:
    """Release a document held back from the patient (after the announcement consultation)."""
    audit = AuditAction.VISIBILITY_CHANGE
    access_service.check_scope(
        actor, "DocumentReference", Interaction.UPDATE, patient_id, audit=audit
    )
    access = access_service.authorize(
        session, actor, patient_id, Action.MANAGE_DOCUMENT, now=clock.now(), audit=audit
    )
    document = _managed(session, actor, access, document_id, audit)
    document.hidden_from_patient = False
    document.updated_at = clock.now()
    session.flush()
    _log(
        session,
        actor,
        audit,
        patient_id,
        clock,
        documents=[document.id],
        details={"disclosed": True},
    )
    return document


def facts(document: Document) -> DocumentFacts:
    """What the policy needs to know of a document."""
    try:
        type_key = load_catalogue().by_code(document.type_system, document.type_code).key
    except UnknownDocumentType:
        type_key = document.type_code
    return DocumentFacts(
        document_id=document.id,
        type_key=type_key,
        status=document.status.value,
        confidentiality=document.confidentiality.value,
        masked_from_professionals=document.masked_from_professionals,
        hidden_from_patient=document.hidden_from_patient,
        author_professional_id=document.author_professional_id,
        author_organisation_id=document.author_organisation_id,
        authored_by_patient=document.authored_by_patient,
    )


def _filtered(patient_id: uuid.UUID, filters: DocumentFilter) -> Select[Document]:
    query = select(Document).where(Document.patient_id == patient_id)
    within: list[tuple[InstrumentedAttribute[Any], Collection[Any]]] = [
        (Document.status, filters.statuses),
        (Document.type_code, filters.type_codes),
        (Document.class_code, filters.class_codes),
        (Document.practice_setting, filters.practice_settings),
        (Document.facility_type, filters.facility_types),
        (Document.confidentiality, filters.confidentialities),
        (Document.format_code, filters.format_codes),
        (Document.id, filters.ids),
        (Document.submission_set_id, filters.submission_set_ids),
    ]
    for column, values in within:
        if values:
            query = query.where(column.in_(list(values)))
    for column, start, end in (
        (Document.created_at, filters.created_from, filters.created_to),
        (Document.submitted_at, filters.submitted_from, filters.submitted_to),
        (Document.updated_at, filters.updated_from, filters.updated_to),
    ):
        if start is not None:
            query = query.where(column >= start)
        if end is not None:
            query = query.where(column < end)
    if filters.service_from is not None or filters.service_to is not None:
        # A period search finds documents whose service period overlaps it; a document with no
        # service period is not about any period.
        query = query.where(Document.service_start.is_not(None))
    if filters.service_from is not None:
        query = query.where(
            (Document.service_end.is_(None)) | (Document.service_end >= filters.service_from)
        )
    if filters.service_to is not None:
        query = query.where(Document.service_start < filters.service_to)
    if filters.author_professional_id is not None:
        query = query.where(Document.author_professional_id == filters.author_professional_id)
    if filters.author_family or filters.author_given:
        authors = select(Professional.id)
        if filters.author_family:
            authors = authors.where(Professional.family.ilike(_prefix(filters.author_family)))
        if filters.author_given:
            authors = authors.where(Professional.given.ilike(_prefix(filters.author_given)))
        query = query.where(Document.author_professional_id.in_(authors))
    order = Document.created_at if filters.oldest_first else Document.created_at.desc()
    return query.order_by(order, Document.id)


def _prefix(text: str) -> str:
    return text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _visible(
    session: Session,
    actor: Actor,
    access: DossierAccess,
    document_id: uuid.UUID,
    audit: AuditAction,
) -> Document:
    document = session.get(Document, (access.patient_id, document_id))
    decision = (
        decide_document(actor, access, facts(document), load_matrix())
        if document is not None
        else None
    )
    if document is None or not decision:
        reason = decision.reason if decision is not None else "no such document"
        raise access_service.refuse(actor, audit, reason, access.patient_id, (document_id,))
    return document


def _managed(
    session: Session,
    actor: Actor,
    access: DossierAccess,
    document_id: uuid.UUID,
    audit: AuditAction,
) -> Document:
    document = session.get(Document, (access.patient_id, document_id))
    decision = decide_manage(actor, access, facts(document)) if document is not None else None
    if document is None or not decision:
        reason = decision.reason if decision is not None else "no such document"
        raise access_service.refuse(actor, audit, reason, access.patient_id, (document_id,))
    return document


def _log(
    session: Session,
    actor: Actor,
    action: AuditAction,
    patient_id: uuid.UUID,
    clock: Clock,
    *,
    documents: list[uuid.UUID],
    details: dict[str, object] | None = None,
    access: DossierAccess | None = None,
) -> None:
    """Record an allowed event; a consultation names the basis on which it was allowed."""
    if action in (AuditAction.SEARCH, AuditAction.READ, AuditAction.RETRIEVE):
        access_service.record_consultation(
            session,
            actor,
            access,
            patient_id,
            action=action,
            clock=clock,
            entity_ids=documents,
            details=details,
        )
        return
    if access is not None and access.bases:
        details = {**(details or {}), "basis": access.bases[0].value}
    audit_trail.record(
        session,
        agent=actor.agent,
        action=action,
        clock=clock,
        patient_id=patient_id,
        entity_ids=documents,
        details=details,
    )


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
            document_type_label_key=facts(document).type_key,
            author_name=author,
            clock=clock,
        )


def _authorize_publication(
    session: Session, actor: Actor, patient_id: uuid.UUID, now: dt.datetime, audit: AuditAction
) -> DossierAccess:
    access_service.check_scope(
        actor, "DocumentReference", Interaction.CREATE, patient_id, audit=audit
    )
    access_service.require_strong(actor, patient_id=patient_id, audit=audit)
    # A feed must hear why its document was refused (issue: lifecycle), so the dossier's state
    # is checked before the policy, whose refusals all look like "not found".
    _require_active_dossier(session, patient_id)
    return access_service.authorize(
        session, actor, patient_id, Action.PUBLISH, now=now, audit=audit
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
    class_code = _check_metadata(metadata, now)
    _check_content(metadata, content)
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


def _check_metadata(metadata: DocumentMetadata, now: dt.datetime) -> str:
    """Validate the metadata; return the class code (from the catalogue if not given)."""
    try:
        document_type = load_catalogue().by_code(metadata.type_system, metadata.type_code)
    except UnknownDocumentType as error:
        raise InvalidDocument(str(error), field="type") from error
    if metadata.class_code is not None and metadata.class_code != document_type.class_code:
        raise InvalidDocument(
            f"The class {metadata.class_code!r} does not fit the type {document_type.display!r}, "
            f"whose class is {document_type.class_code!r}.",
            field="class_code",
        )
    title = metadata.title.strip()
    if not title:
        raise InvalidDocument("The title is empty.", field="title")
    if len(title) > 300:
        raise InvalidDocument("The title is over 300 characters.", field="title")
    if not _MIME.match(metadata.mime_type):
        raise InvalidDocument(
            f"The MIME type {metadata.mime_type!r} is not of the form type/subtype.",
            field="mime_type",
        )
    if metadata.language is not None and not _LANGUAGE.match(metadata.language):
        raise InvalidDocument(
            f"The language {metadata.language!r} is not a language tag such as fr or de-LU.",
            field="language",
        )
    for name in ("created_at", "service_start", "service_end"):
        value: dt.datetime | None = getattr(metadata, name)
        if value is not None and value.tzinfo is None:
            raise InvalidDocument(f"The {name} has no time zone.", field=name)
    if metadata.created_at > now + _CLOCK_SKEW:
        raise InvalidDocument("The creation time is in the future.", field="created_at")
    if (
        metadata.service_start is not None
        and metadata.service_end is not None
        and metadata.service_end < metadata.service_start
    ):
        raise InvalidDocument("The service period ends before it starts.", field="service_end")
    if not (
        metadata.author_professional_id
        or metadata.author_organisation_id
        or metadata.authored_by_patient
    ):
        raise InvalidDocument(
            "A document needs an author: a professional, an organisation or the patient.",
            field="author",
        )
    return document_type.class_code


def _check_content(metadata: DocumentMetadata, content: bytes) -> None:
    if metadata.expected_size is not None and metadata.expected_size != len(content):
        raise InvalidDocument(
            f"The declared size {metadata.expected_size} does not match the content's "
            f"{len(content)} bytes.",
            field="size",
        )
    if metadata.expected_sha256 is not None:
        actual = hashlib.sha256(content).hexdigest()
        if metadata.expected_sha256.lower() != actual:
            raise InvalidDocument("The declared SHA-256 does not match the content.", field="hash")
    _check_format(metadata.mime_type, content)


def _check_format(mime_type: str, content: bytes) -> None:
    """Refuse content that plainly is not what its MIME type says (a PDF that is not a PDF)."""
    head = content[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if mime_type == "application/pdf" and not content.startswith(b"%PDF-"):
        raise InvalidDocument(
            "The content is not a PDF (it lacks the %PDF- header).", field="content"
        )
    if mime_type in ("application/json", "application/fhir+json"):
        try:
            json.loads(content)
        except (UnicodeDecodeError, ValueError) as error:
            raise InvalidDocument("The content is not valid JSON.", field="content") from error
    if mime_type.endswith(("/xml", "+xml")) and not head.startswith(b"<"):
        raise InvalidDocument("The content is not XML.", field="content")
    # An image that is not what it claims would be shown as one (see ``formats``).
    mismatch = formats.claimed_image_mismatch(mime_type, content)
    if mismatch is not None:
        raise InvalidDocument(mismatch, field="mime_type")


def _check_authors(
    session: Session, professional_id: uuid.UUID | None, organisation_id: uuid.UUID | None
) -> None:
    if professional_id is not None:
        directory.get_professional(session, professional_id)
    if organisation_id is not None:
        directory.get_organisation(session, organisation_id)


def new_document_counts(
    session: Session,
    patient_ids: Collection[uuid.UUID],
    *,
    since: dt.datetime,
    until: dt.datetime,
) -> dict[uuid.UUID, dict[str, int]]:
    """How many documents others published in each dossier from ``since`` until ``until``.

    Counted per catalogue type key, for the daily digest (a job: counts, never content). The
    patient's own uploads are left out, as they are from the immediate notices; dossiers with
    nothing new are absent from the result.
    """
    catalogue = load_catalogue()
    counts: dict[uuid.UUID, dict[str, int]] = {}
    ordered = sorted(patient_ids)
    for start in range(0, len(ordered), _IN_LIST):
        rows = session.execute(
            select(Document.patient_id, Document.type_system, Document.type_code, func.count())
            .where(
                Document.patient_id.in_(ordered[start : start + _IN_LIST]),
                Document.submitted_at >= since,
                Document.submitted_at < until,
                Document.authored_by_patient.is_(False),
            )
            .group_by(Document.patient_id, Document.type_system, Document.type_code)
        )
        for patient_id, type_system, type_code, count in rows:
            try:
                key = catalogue.by_code(type_system, type_code).key
            except UnknownDocumentType:
                key = type_code
            per_type = counts.setdefault(patient_id, {})
            per_type[key] = per_type.get(key, 0) + count
    return counts


def purge_documents(
    session: Session, store: DocumentStore, patient_id: uuid.UUID
) -> tuple[int, int]:
    """Delete every document of a dossier, rows and stored content; ``(documents, objects)``.

    For the retention job alone, on a closed dossier whose retention period has ended: no actor
    and no policy, the retention rule decides. The stored objects go first: should the
    transaction then fail, its rows point at nothing and the next run deletes them.
    """
    objects = store.delete_patient(str(patient_id))
    deleted = session.execute(delete(Document).where(Document.patient_id == patient_id))
    session.execute(delete(SubmissionSet).where(SubmissionSet.patient_id == patient_id))
    return cast(CursorResult[Any], deleted).rowcount, objects
