"""Finding and reading documents: search (ITI-67), submission sets (ITI-66), one document's
metadata, and its content (ITI-68).

Each read takes a dossier opened at the door for its purpose (``carnet.access.purposes``),
decides document by document (``guard``) and records the consultation with the basis it was
allowed on.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from carnet.access import purposes
from carnet.access.door import OpenedDossier
from carnet.audit.models import AuditAction
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
    # XDS.b ITI-18: the documents' uniqueId, and its start and stop time bounds (each bound
    # on its own time, From inclusive, To exclusive, unlike the overlapping ``period``).
    master_identifiers: Collection[str] = ()
    service_start_from: dt.datetime | None = None
    service_start_to: dt.datetime | None = None
    service_end_from: dt.datetime | None = None
    service_end_to: dt.datetime | None = None
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


def get_document(session: Session, dossier: OpenedDossier, document_id: uuid.UUID) -> Document:
    """One document's metadata, if the policy lets the dossier's actor see it.

    Serves a dossier opened to ``READ_DOCUMENTS``. Raises ``AccessDenied`` — indistinguishable
    from not found — when the document does not exist or may not be seen.
    """
    dossier.require(purposes.READ_DOCUMENTS)
    document = guard.visible(session, dossier, document_id, AuditAction.READ)
    dossier.record(session, AuditAction.READ, entity_ids=[document.id])
    return document


def list_documents(
    session: Session, dossier: OpenedDossier, filters: DocumentFilter | None = None
) -> DocumentPage:
    """The documents of the dossier matching ``filters`` that its actor may see, newest first.

    Serves a dossier opened to ``FIND_DOCUMENTS``.
    """
    dossier.require(purposes.FIND_DOCUMENTS)
    filters = filters or DocumentFilter()
    if not 0 < filters.limit <= 1000:
        raise InvalidDocument("The page size must be between 1 and 1000.", field="limit")
    if filters.offset < 0:
        raise InvalidDocument("The offset cannot be negative.", field="offset")
    # The policy is applied row by row, in one place, rather than re-expressed in SQL: a
    # dossier holds hundreds of documents, not millions (see bench/ for the cost).
    rows = list(session.scalars(_filtered(dossier.patient_id, filters)))
    visible = [row for row in rows if guard.sees(dossier, row)]
    # Only a professional with some basis of access is told that documents are withheld; to
    # anyone else the dossier must look no different from one they may not know exists.
    withheld = len(visible) < len(rows) and bool(dossier.access.bases)
    page = visible[filters.offset : filters.offset + filters.limit]
    dossier.record(
        session,
        AuditAction.SEARCH,
        entity_ids=[d.id for d in page],
        details={"total": len(visible), "withheld": withheld},
    )
    return DocumentPage(documents=page, total=len(visible), withheld=withheld)


def list_submission_sets(
    session: Session, dossier: OpenedDossier
) -> list[tuple[SubmissionSet, list[Document]]]:
    """The dossier's submission sets (ITI-66), each with the documents its actor may see.

    Serves a dossier opened to ``FIND_SUBMISSION_SETS``. A submission set none of whose
    documents the actor may see is not listed at all.
    """
    dossier.require(purposes.FIND_SUBMISSION_SETS)
    patient_id = dossier.patient_id
    rows = session.scalars(_filtered(patient_id, DocumentFilter(statuses=())))
    visible: dict[uuid.UUID, list[Document]] = {}
    for row in rows:
        if row.submission_set_id is not None and guard.sees(dossier, row):
            visible.setdefault(row.submission_set_id, []).append(row)
    sets = session.scalars(
        select(SubmissionSet)
        .where(SubmissionSet.patient_id == patient_id, SubmissionSet.id.in_(list(visible)))
        .order_by(SubmissionSet.submitted_at.desc(), SubmissionSet.id)
    )
    found = [(submission, visible[submission.id]) for submission in sets]
    dossier.record(
        session,
        AuditAction.SEARCH,
        entity_ids=[d.id for _, docs in found for d in docs],
        details={"resource": "List", "total": len(found)},
    )
    return found


def read_content(
    session: Session, dossier: OpenedDossier, document_id: uuid.UUID, store: DocumentStore
) -> tuple[Document, bytes]:
    """A document and its bytes, decrypted and checked against the recorded SHA-256.

    Serves a dossier opened to ``RETRIEVE_DOCUMENTS``, or to ``READ_DOCUMENTS`` (whose scope,
    ``DocumentReference`` read, covers the content as well): a page showing a document and
    its content opens the dossier once.
    """
    dossier.require(purposes.RETRIEVE_DOCUMENTS, purposes.READ_DOCUMENTS)
    document = guard.visible(session, dossier, document_id, AuditAction.RETRIEVE)
    content = store.get(document.content_key)
    dossier.record(session, AuditAction.RETRIEVE, entity_ids=[document.id])
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
        (Document.master_identifier, filters.master_identifiers),
        (Document.submission_set_id, filters.submission_set_ids),
    ]
    for column, values in within:
        if values:
            query = query.where(column.in_(list(values)))
    for column, start, end in (
        (Document.created_at, filters.created_from, filters.created_to),
        (Document.submitted_at, filters.submitted_from, filters.submitted_to),
        (Document.updated_at, filters.updated_from, filters.updated_to),
        (Document.service_start, filters.service_start_from, filters.service_start_to),
        (Document.service_end, filters.service_end_from, filters.service_end_to),
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
