"""Finding and reading documents: search (ITI-67), submission sets (ITI-66), one document's
metadata, and its content (ITI-68).

Each read checks the scope, opens the dossier through the policy, decides document by document
(``guard``) and records the consultation with the basis it was allowed on.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from carnet.access import guard as access_guard
from carnet.access.actors import Actor
from carnet.access.errors import InsufficientScope
from carnet.access.matrix import load_matrix
from carnet.access.policy import Action, decide_document, scope_allows
from carnet.access.scopes import Interaction
from carnet.audit.models import AuditAction
from carnet.audit.service import Refusal
from carnet.clock import Clock
from carnet.directory.models import Professional
from carnet.documents import guard
from carnet.documents.errors import InvalidDocument
from carnet.documents.models import Confidentiality, Document, DocumentStatus, SubmissionSet
from carnet.storage import DocumentStore


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


def get_document(
    session: Session, actor: Actor, patient_id: uuid.UUID, document_id: uuid.UUID, *, clock: Clock
) -> Document:
    """One document's metadata, if the policy lets ``actor`` see it.

    Raises ``AccessDenied`` — indistinguishable from not found — when the dossier or document
    does not exist or may not be seen; ``StrongerAuthenticationRequired`` for a weak sign-in.
    """
    access_guard.check_scope(
        actor, "DocumentReference", Interaction.READ, patient_id, audit=AuditAction.READ
    )
    access = access_guard.authorize(
        session, actor, patient_id, Action.READ_DOCUMENTS, now=clock.now(), audit=AuditAction.READ
    )
    document = guard.visible(session, actor, access, document_id, AuditAction.READ)
    guard.record(
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
    access_guard.check_scope(
        actor, "DocumentReference", Interaction.SEARCH, patient_id, audit=AuditAction.SEARCH
    )
    access = access_guard.authorize(
        session, actor, patient_id, Action.READ_DOCUMENTS, now=clock.now(), audit=AuditAction.SEARCH
    )
    matrix = load_matrix()
    # The policy is applied row by row, in one place, rather than re-expressed in SQL: a
    # dossier holds hundreds of documents, not millions (see bench/ for the cost).
    rows = list(session.scalars(_filtered(patient_id, filters)))
    visible = [row for row in rows if decide_document(actor, access, guard.facts(row), matrix)]
    # Only a professional with some basis of access is told that documents are withheld; to
    # anyone else the dossier must look no different from one they may not know exists.
    withheld = len(visible) < len(rows) and bool(access.bases)
    page = visible[filters.offset : filters.offset + filters.limit]
    guard.record(
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
    access_guard.check_scope(
        actor, "List", Interaction.SEARCH, patient_id, audit=AuditAction.SEARCH
    )
    access = access_guard.authorize(
        session, actor, patient_id, Action.READ_DOCUMENTS, now=clock.now(), audit=AuditAction.SEARCH
    )
    matrix = load_matrix()
    rows = session.scalars(_filtered(patient_id, DocumentFilter(statuses=())))
    visible: dict[uuid.UUID, list[Document]] = {}
    for row in rows:
        if row.submission_set_id is not None and decide_document(
            actor, access, guard.facts(row), matrix
        ):
            visible.setdefault(row.submission_set_id, []).append(row)
    sets = session.scalars(
        select(SubmissionSet)
        .where(SubmissionSet.patient_id == patient_id, SubmissionSet.id.in_(list(visible)))
        .order_by(SubmissionSet.submitted_at.desc(), SubmissionSet.id)
    )
    found = [(submission, visible[submission.id]) for submission in sets]
    guard.record(
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
    access = access_guard.authorize(
        session,
        actor,
        patient_id,
        Action.READ_DOCUMENTS,
        now=clock.now(),
        audit=AuditAction.RETRIEVE,
    )
    document = guard.visible(session, actor, access, document_id, AuditAction.RETRIEVE)
    content = store.get(document.content_key)
    guard.record(
        session,
        actor,
        AuditAction.RETRIEVE,
        patient_id,
        clock,
        documents=[document.id],
        access=access,
    )
    return document, content


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
