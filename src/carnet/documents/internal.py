"""What jobs need to know about documents without an actor: which stored objects rows use.

No way in may import this module (an import-linter contract says so): it reads across every
dossier, with no policy and no audit, because what it returns is store keys, never a
document's metadata or content. Its one reader is the store sweeper (carnet.lifecycle.sweep).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.documents.models import Document

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
