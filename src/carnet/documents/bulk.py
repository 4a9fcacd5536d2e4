"""Bulk loading of documents' metadata: a national migration, a benchmark's population.

``load_documents`` writes many documents at once whose content is already in the store. The
caller ``put``s each distinct content once per patient: the store is content-addressed within
each dossier (``<patient_id>/<sha256>``), so documents of one dossier with the same bytes share
one object, and no object is ever shared between dossiers. On PostgreSQL the rows go in through
``COPY ... FROM STDIN`` (psycopg's ``cursor.copy``); on other databases through multi-row
INSERTs. Either way inside the caller's transaction: the caller commits, and a failure leaves
nothing of the call.

Every row is checked as ``add_document`` checks a publication (the type in the catalogue and its
class, title, MIME type, language, dates, author), its content receipt must name this dossier's
object, and every dossier must be active. What this path leaves out, on purpose:

- the policy's per-document decision: only the agency (an operator) loads, and it loads what it
  already holds — a legacy record being migrated, a benchmark population;
- the notices to patients: a migrated history is not news;
- one audit event per document: the audit trail gets **one event per call**, on the operator's
  own chain, naming every document loaded (``entity_ids``) and how many dossiers they went
  into. A dossier's own chain does not show the load; the operator's chain does.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access.actors import Actor, ActorKind
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.clock import Clock
from carnet.db import UTCDateTime
from carnet.directory.errors import OrganisationNotFound, ProfessionalNotFound
from carnet.directory.models import Organisation, Professional
from carnet.documents.errors import DossierNotActive, DuplicateDocument, InvalidDocument
from carnet.documents.metadata import DocumentMetadata, check_metadata
from carnet.documents.models import Document, DocumentStatus
from carnet.patients.errors import PatientNotFound
from carnet.patients.models import Dossier, DossierState
from carnet.storage import StoredContent
from carnet.storage.ports import is_sha256_hex

# Bounds the ids sent in one IN (...) list: SQLite and psycopg both cap bound parameters.
_IN_LIST = 500
# Rows per multi-row INSERT where COPY is not available.
_INSERT_CHUNK = 1000
_COLUMNS = (
    "patient_id", "id", "master_identifier", "status", "class_code", "type_system", "type_code",
    "format_code", "title", "mime_type", "size", "sha256", "language", "created_at",
    "service_start", "service_end", "author_professional_id", "author_organisation_id",
    "authored_by_patient", "custodian_organisation_id", "facility_type", "practice_setting",
    "confidentiality", "masked_from_professionals", "hidden_from_patient", "replaces_id",
    "submission_set_id", "source_system", "content_key", "submitted_at", "updated_at",
)  # fmt: skip
if set(_COLUMNS) != {column.name for column in Document.__table__.columns}:
    raise RuntimeError("documents.bulk does not list the documents table's columns")
# PostgreSQL types of the binary COPY, from the columns' types (strings and enums: text).
_PG_TYPE_OF = {uuid.UUID: "uuid", int: "int8", bool: "bool"}
_PG_TYPES = tuple(
    "timestamptz"
    if isinstance(Document.__table__.columns[name].type, UTCDateTime)
    else _PG_TYPE_OF.get(Document.__table__.columns[name].type.python_type, "text")
    for name in _COLUMNS
)
_CURRENT = DocumentStatus.CURRENT.value
_DUPLICATE = re.compile(r"master_identifier\)=\([^,]+, (.+)\) already exists")


@dataclass(frozen=True, slots=True)
class BulkDocument:
    """One document to load: its dossier, what its author said of it, and its stored content.

    ``metadata.replaces_id`` must be None: a bulk load adds documents, it replaces none.
    ``submitted_at`` is when the source system first published it (default: now).
    """

    patient_id: uuid.UUID
    metadata: DocumentMetadata
    content: StoredContent
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    submitted_at: dt.datetime | None = None


@dataclass(frozen=True)
class BulkReport:
    """What one call loaded."""

    documents: int
    dossiers: int
    method: str  # "copy" or "insert"


def load_documents(
    session: Session,
    actor: Actor,
    documents: Sequence[BulkDocument],
    *,
    clock: Clock,
    source: str,
) -> BulkReport:
    """Add ``documents`` (metadata rows; content already stored) to their active dossiers.

    ``source`` says what is being loaded, for the audit record ("legacy export 2026-11").
    All or nothing. Raises ``AccessDenied`` unless ``actor`` is an operator;
    ``InvalidDocument`` naming the row and field at fault (``documents[12].title``);
    ``PatientNotFound`` or ``DossierNotActive`` for a dossier that does not take documents;
    ``ProfessionalNotFound`` / ``OrganisationNotFound`` for an unknown author or custodian;
    ``DuplicateDocument`` for a master identifier already used in its dossier (in the batch or
    before it; on PostgreSQL the caller's transaction is then unusable and must roll back).
    """
    if actor.kind is not ActorKind.OPERATOR:
        raise access_guard.refuse(actor, AuditAction.PUBLISH, "only the agency loads in bulk", None)
    if not source.strip():
        raise InvalidDocument("Say what is being loaded.", field="source")
    now = clock.now()
    rows = [_row(index, document, now) for index, document in enumerate(documents)]
    if not rows:
        return BulkReport(documents=0, dossiers=0, method="none")
    _check_unique(rows)
    dossiers = {document.patient_id for document in documents}
    _check_dossiers(session, dossiers)
    _check_directory(session, documents)
    method = _write(session, rows)
    audit_trail.record(
        session,
        agent=actor.agent,
        action=AuditAction.PUBLISH,
        clock=clock,
        patient_id=None,
        entity_ids=[document.id for document in documents],
        details={"bulk": source.strip(), "documents": len(rows), "dossiers": len(dossiers)},
    )
    return BulkReport(documents=len(rows), dossiers=len(dossiers), method=method)


def refresh_statistics(session: Session) -> None:
    """Refresh the planner's statistics of the documents table (ANALYZE) after a bulk load.

    PostgreSQL plans a dossier's searches from them; autovacuum takes them late, or never where
    it is off. SQLite needs nothing.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql("ANALYZE documents")


def _row(index: int, document: BulkDocument, now: dt.datetime) -> tuple[Any, ...]:
    """The row's values in table order, once the document passes every check."""
    metadata = document.metadata
    where = f"documents[{index}]"
    try:
        class_code = check_metadata(metadata, now)
        if metadata.replaces_id is not None:
            raise InvalidDocument("A bulk load replaces no document.", field="replaces_id")
        stored = document.content
        if stored.size <= 0:
            raise InvalidDocument("The content is empty.", field="content")
        if stored.key != f"{document.patient_id}/{stored.sha256}" or not is_sha256_hex(
            stored.sha256
        ):
            raise InvalidDocument(
                "The content is not stored in this dossier (its key names another).",
                field="content",
            )
        if metadata.expected_size is not None and metadata.expected_size != stored.size:
            raise InvalidDocument("The declared size does not match the content.", field="size")
        if (
            metadata.expected_sha256 is not None
            and metadata.expected_sha256.lower() != stored.sha256
        ):
            raise InvalidDocument("The declared SHA-256 does not match the content.", field="hash")
    except InvalidDocument as error:
        raise InvalidDocument(error.message, field=f"{where}.{error.field}") from error
    submitted = document.submitted_at or now
    if submitted.tzinfo is None:
        raise InvalidDocument("The submission time has no time zone.", field=f"{where}.submitted")
    # In the order of _COLUMNS (checked against the table when the module loads).
    return (
        document.patient_id,
        document.id,
        metadata.master_identifier or f"urn:uuid:{document.id}",
        _CURRENT,
        class_code,
        metadata.type_system,
        metadata.type_code,
        metadata.format_code,
        metadata.title.strip(),
        metadata.mime_type,
        stored.size,
        stored.sha256,
        metadata.language,
        metadata.created_at,
        metadata.service_start,
        metadata.service_end,
        metadata.author_professional_id,
        metadata.author_organisation_id,
        metadata.authored_by_patient,
        metadata.custodian_organisation_id,
        metadata.facility_type,
        metadata.practice_setting,
        metadata.confidentiality.value,
        metadata.masked_from_professionals,
        metadata.hidden_from_patient,
        None,  # replaces_id
        None,  # submission_set_id
        metadata.source_system,
        stored.key,
        submitted,
        now,  # updated_at
    )


def _check_unique(rows: list[tuple[Any, ...]]) -> None:
    patient, master = _COLUMNS.index("patient_id"), _COLUMNS.index("master_identifier")
    seen: set[tuple[uuid.UUID, str]] = set()
    for row in rows:
        key = (row[patient], row[master])
        if key in seen:
            raise DuplicateDocument(row[master])
        seen.add(key)


def _check_dossiers(session: Session, patient_ids: set[uuid.UUID]) -> None:
    ordered = sorted(patient_ids)
    states: dict[uuid.UUID, DossierState] = {}
    for start in range(0, len(ordered), _IN_LIST):
        rows = session.execute(
            select(Dossier.patient_id, Dossier.state).where(
                Dossier.patient_id.in_(ordered[start : start + _IN_LIST])
            )
        )
        states.update((patient_id, state) for patient_id, state in rows)
    for patient_id in ordered:
        state = states.get(patient_id)
        if state is None:
            raise PatientNotFound()
        if state is not DossierState.ACTIVE:
            raise DossierNotActive(state.value)


def _check_directory(session: Session, documents: Sequence[BulkDocument]) -> None:
    professionals = {d.metadata.author_professional_id for d in documents} - {None}
    organisations = (
        {d.metadata.author_organisation_id for d in documents}
        | {d.metadata.custodian_organisation_id for d in documents}
    ) - {None}
    if _missing(session, Professional.id, professionals):
        raise ProfessionalNotFound()
    if _missing(session, Organisation.id, organisations):
        raise OrganisationNotFound()


def _missing(session: Session, column: Any, wanted: set[uuid.UUID | None]) -> bool:
    ordered = sorted(value for value in wanted if value is not None)
    found: set[uuid.UUID] = set()
    for start in range(0, len(ordered), _IN_LIST):
        found.update(
            session.scalars(select(column).where(column.in_(ordered[start : start + _IN_LIST])))
        )
    return len(found) < len(ordered)


def _write(session: Session, rows: list[tuple[Any, ...]]) -> str:
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        statement = f"COPY documents ({', '.join(_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        try:
            with driver.cursor() as cursor, cursor.copy(statement) as copy:
                copy.set_types(_PG_TYPES)
                for row in rows:
                    copy.write_row(row)
        except psycopg.errors.UniqueViolation as error:
            found = _DUPLICATE.search(error.diag.message_detail or "")
            raise DuplicateDocument(found.group(1) if found else "(one of the batch)") from error
        return "copy"
    try:
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[start : start + _INSERT_CHUNK]
            session.execute(
                insert(Document), [dict(zip(_COLUMNS, row, strict=True)) for row in chunk]
            )
    except IntegrityError as error:
        raise DuplicateDocument("(one of the batch)") from error
    return "insert"
