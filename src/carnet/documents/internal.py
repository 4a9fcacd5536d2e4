"""What jobs need to know about documents without an actor: stored objects, counts, purging.

No way in may import this module (an import-linter contract says so): it reads across every
dossier, with no policy and no audit, because what it returns is never a document's metadata or
content — the store keys rows use (the store sweeper, carnet.lifecycle.sweep), how many
documents each dossier received (the daily digest) — or it deletes a whole dossier's documents
when the retention rule says so (the retention job, carnet.lifecycle.jobs).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.orm import Session

from carnet.catalogue import UnknownDocumentType, load_catalogue
from carnet.documents.models import Document, SubmissionSet
from carnet.storage import DocumentStore

# Bounds the values sent in one IN (...) list: SQLite and psycopg both cap bound parameters.
_IN_LIST = 500


def store_references(session: Session, keys: Collection[str]) -> set[str]:
    """The keys among ``keys`` that some document row names as its content, in any state.

    A superseded or entered-in-error document still points at its content (the history still
    shows it, and a correction may be undone): every row counts, whatever its status.
    ``Document.content_key`` is the only column of Carnet's schema that names a stored object
    (exports and essentials keep no store key). The query goes through
    each dossier's primary-key index (``patient_id`` leads the key, and leads the content key
    too), so a page of keys costs one indexed lookup per dossier it touches, not a scan.
    """
    canonical: list[tuple[uuid.UUID, str]] = []
    for key in keys:
        patient_part, _, _ = key.partition("/")
        try:
            patient_id = uuid.UUID(patient_part)
        except ValueError:
            continue  # no document row has a patient id that is not a UUID
        if str(patient_id) == patient_part:  # the only form Carnet writes
            canonical.append((patient_id, key))
    canonical.sort()
    referenced: set[str] = set()
    for start in range(0, len(canonical), _IN_LIST):
        chunk = canonical[start : start + _IN_LIST]
        referenced.update(
            session.scalars(
                select(Document.content_key)
                .where(
                    Document.patient_id.in_({patient_id for patient_id, _ in chunk}),
                    Document.content_key.in_([key for _, key in chunk]),
                )
                .distinct()
            )
        )
    return referenced


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
