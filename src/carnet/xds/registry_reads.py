"""What ITI-18 reads of a dossier: every call the registry queries make to the document services.

Kept in one module so that a change of a service's signature is one edit here. Each read opens
the dossier at the door (``carnet.access.door``) for its purpose — ``FIND_DOCUMENTS`` or
``FIND_SUBMISSION_SETS`` — and lists through ``documents.reading`` and ``documents.folders``,
which decide document by document and record the consultation; a refusal is raised as the door
raises it (``AccessError`` carrying its audit record).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from carnet.access import door, purposes
from carnet.access.actors import Actor
from carnet.access.door import OpenedDossier
from carnet.clock import Clock
from carnet.documents import folders, locating, reading
from carnet.documents.models import Document, DocumentStatus, SubmissionSet
from carnet.patients import service as patients
from carnet.xds import mapping
from carnet.xds import registry_objects as objects
from carnet.xds import vocabulary as v
from carnet.xds.query_parameters import TOO_MANY_RESULTS, QueryRefused

# The most documents one answer holds: XDS has no paging, and reading.list_documents serves
# at most a page of 1,000 — a whole dossier for nearly every patient (see iti67_find.py).
MAX_DOCUMENTS = 1000
NOT_SINGLE_PATIENT = "XDSResultNotSinglePatient"


@dataclass
class Found:
    """What one query found in one dossier, before it is written as registry objects."""

    patient_id: uuid.UUID | None = None
    documents: list[Document] = field(default_factory=list)
    submission_sets: list[SubmissionSet] = field(default_factory=list)
    folders: list[objects.FolderEntry] = field(default_factory=list)
    associations: list[objects.AssociationEntry] = field(default_factory=list)
    withheld: bool = False


def find_patient(session: Session, system: str, value: str) -> uuid.UUID | None:
    """The patient holding this national identifier, or None."""
    return patients.find_patient_id(session, system, value)


def located(
    session: Session,
    *,
    entry_ids: Collection[uuid.UUID] = (),
    document_identifiers: Collection[str] = (),
    unique_ids: Collection[str] = (),
) -> uuid.UUID | None:
    """The one patient whose dossier holds the named objects, or None if none does.

    ``entry_ids`` are entryUUIDs of any object; ``document_identifiers`` documents'
    masterIdentifiers; ``unique_ids`` submission sets' or folders' uniqueIds. Objects of
    several patients in one query are refused (``XDSResultNotSinglePatient``, TF-2a 3.18.4.1.3).
    """
    holders: set[uuid.UUID] = set()
    for patients_holding in locating.dossiers_by_entry_id(session, entry_ids).values():
        holders |= patients_holding
    for patients_holding in locating.dossiers_by_unique_id(session, unique_ids).values():
        holders |= patients_holding
    documents = locating.documents_by_master_identifier(session, document_identifiers)
    holders |= {patient_id for pairs in documents.values() for patient_id, _ in pairs}
    if len(holders) > 1:
        raise QueryRefused(NOT_SINGLE_PATIENT, "The objects named belong to several patients.")
    return next(iter(holders), None)


def open_to_find(
    session: Session, actor: Actor, patient_id: uuid.UUID, *, clock: Clock
) -> OpenedDossier:
    """The dossier opened to find documents."""
    return door.open_dossier(session, actor, patient_id, purposes.FIND_DOCUMENTS, clock=clock)


def list_documents(
    session: Session, dossier: OpenedDossier, filters: reading.DocumentFilter
) -> reading.DocumentPage:
    """The documents the actor may see; ``XDSTooManyResults`` past ``MAX_DOCUMENTS``."""
    page = reading.list_documents(session, dossier, filters)
    if page.total > MAX_DOCUMENTS:
        raise QueryRefused(
            TOO_MANY_RESULTS, f"More than {MAX_DOCUMENTS} documents match: narrow the query."
        )
    return page


def list_submission_sets(
    session: Session, actor: Actor, patient_id: uuid.UUID, *, clock: Clock
) -> list[SubmissionSet]:
    """The submission sets holding a document the actor may see."""
    dossier = door.open_dossier(
        session, actor, patient_id, purposes.FIND_SUBMISSION_SETS, clock=clock
    )
    return [submission for submission, _ in reading.list_submission_sets(session, dossier)]


def snapshot(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    *,
    clock: Clock,
    statuses: Collection[DocumentStatus] = (),
) -> Found:
    """The dossier's documents, submission sets, folders and associations the actor may see.

    Associations are those a submission recorded (ITI-41) and, for documents published through
    MHD — which records none — the submission set's ``HasMember`` and the ``RPLC`` read from the
    document itself.
    """
    dossier = open_to_find(session, actor, patient_id, clock=clock)
    page = list_documents(
        session, dossier, reading.DocumentFilter(statuses=statuses, limit=MAX_DOCUMENTS)
    )
    sets = list_submission_sets(session, actor, patient_id, clock=clock)
    filing = folders.list_filing(session, dossier)
    associations = [objects.stored_association(row) for row in filing.associations]
    stored = {(a.type, a.source, a.target) for a in associations}
    for document in page.documents:
        derived = [objects.replacement(document)]
        if document.submission_set_id is not None:
            derived.append(objects.membership(document.submission_set_id, document.id))
        associations += [
            a for a in derived if a is not None and (a.type, a.source, a.target) not in stored
        ]
    return Found(
        patient_id,
        documents=page.documents,
        submission_sets=sets,
        folders=[objects.folder_entry(folder) for folder in filing.folders],
        associations=associations,
        withheld=page.withheld,
    )


def patient_cx(session: Session, patient_id: uuid.UUID) -> str:
    """The patient's national identifier as a CX (read once the dossier has been opened)."""
    patient = patients.get_patient(session, patient_id)
    for identifier in patient.identifiers:
        if identifier.system in mapping.ASSIGNING_AUTHORITIES.values():
            return mapping.patient_cx(identifier.system, identifier.value)
    return f"{patient_id}^^^&{v.CARNET_OID}&ISO"
