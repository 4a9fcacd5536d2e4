"""Which dossiers hold an object named by an XDS identifier sent without its patient.

XDS names documents, submission sets and folders by their uniqueId (ITI-43 Retrieve, ITI-18
GetDocuments) or entryUUID, never with the dossier that holds them, while Carnet's keys lead
with ``patient_id``. These lookups answer only patient ids — nothing of the objects — so that
the way in opens each dossier through the door, which decides what the caller may see. The
same uniqueId may exist in two dossiers (it is unique per dossier): every holder is returned.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import OpenedDossier
from carnet.documents.models import Document, DocumentAssociation, Folder, SubmissionSet

# A Retrieve or a query naming more objects than this is refused by the way in first.
MAX_IDENTIFIERS = 1000


def documents_by_master_identifier(  # patient-data: ids only, to open each dossier at the door
    session: Session, master_identifiers: Collection[str]
) -> dict[str, list[tuple[uuid.UUID, uuid.UUID]]]:
    """For each document ``masterIdentifier`` (XDS uniqueId), its ``(patient_id, document_id)``
    in every dossier holding one."""
    found: dict[str, list[tuple[uuid.UUID, uuid.UUID]]] = {}
    if not master_identifiers:
        return found
    rows = session.execute(
        select(Document.master_identifier, Document.patient_id, Document.id).where(
            Document.master_identifier.in_(list(master_identifiers)[:MAX_IDENTIFIERS])
        )
    )
    for master_identifier, patient_id, document_id in rows:
        found.setdefault(master_identifier, []).append((patient_id, document_id))
    return found


def stored_sha256(session: Session, dossier: OpenedDossier, master_identifier: str) -> str | None:
    """The SHA-256 of the dossier's document with this ``masterIdentifier``, or None.

    For a publisher told its uniqueId is taken (a dossier opened to publish): whether it sent
    the same content again or different content (XDS ``XDSNonIdenticalHash``).
    """
    dossier.require(purposes.PUBLISH_DOCUMENTS)
    return session.scalar(
        select(Document.sha256).where(
            Document.patient_id == dossier.patient_id,
            Document.master_identifier == master_identifier,
        )
    )


def dossiers_by_entry_id(
    session: Session, entry_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """For each id (XDS entryUUID) of a document, submission set, folder or association, the
    patients holding an object with that id."""
    found: dict[uuid.UUID, set[uuid.UUID]] = {}
    wanted = list(entry_ids)[:MAX_IDENTIFIERS]
    if not wanted:
        return found
    for model in (Document, SubmissionSet, Folder, DocumentAssociation):
        rows = session.execute(select(model.id, model.patient_id).where(model.id.in_(wanted)))
        for entry_id, patient_id in rows:
            found.setdefault(entry_id, set()).add(patient_id)
    return found


def dossiers_by_unique_id(  # patient-data: patient ids only, to open each dossier at the door
    session: Session, unique_ids: Collection[str]
) -> dict[str, set[uuid.UUID]]:
    """For each uniqueId of a submission set or folder, the patients holding it."""
    found: dict[str, set[uuid.UUID]] = {}
    wanted = list(unique_ids)[:MAX_IDENTIFIERS]
    if not wanted:
        return found
    queries = (
        select(SubmissionSet.master_identifier, SubmissionSet.patient_id).where(
            SubmissionSet.master_identifier.in_(wanted)
        ),
        select(Folder.unique_id, Folder.patient_id).where(Folder.unique_id.in_(wanted)),
    )
    for query in queries:
        for unique_id, patient_id in session.execute(query):
            found.setdefault(unique_id, set()).add(patient_id)
    return found
