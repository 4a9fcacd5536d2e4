"""Folders and associations of a dossier (IHE XDS Folders; MHD shows a Folder as a ``List``).

A submission may create Folders, file documents in them (a Folder's ``HasMember``), and relate
documents to each other: ``APND`` (an addendum), ``XFRM`` (a transformation), ``signs`` (a
signature), besides the replacements (``RPLC``, ``XFRM_RPLC``) that ``publication`` applies as
``replaces_id``. Every association is kept with its own id so that a registry query returns
what was submitted (ITI TF-3 4.2.2).

Each function serves a dossier opened to publish (``PUBLISH_DOCUMENTS``), runs in the caller's
transaction and records what it filed on the dossier's trail. An association naming an object
that is neither in the submission nor in the dossier — or a document the actor may not see — is
refused as ``UnresolvedReference``: the two are not told apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import OpenedDossier
from carnet.access.policy import decide_manage
from carnet.audit.models import AuditAction
from carnet.documents import guard
from carnet.documents.errors import (
    DocumentNotCurrent,
    DuplicateDocument,
    InvalidDocument,
    UnresolvedReference,
)
from carnet.documents.metadata import SubmissionSetMetadata
from carnet.documents.models import (
    AssociationKind,
    Document,
    DocumentAssociation,
    DocumentStatus,
    Folder,
    SubmissionSet,
)

# What each kind of association links: its source and its target.
_DOCUMENT_RELATIONS = frozenset(
    {
        AssociationKind.REPLACES,
        AssociationKind.APPENDS,
        AssociationKind.TRANSFORMS,
        AssociationKind.TRANSFORMS_AND_REPLACES,
    }
)
# Relations that leave their target current: it must be current when they are made.
_AMENDING = frozenset({AssociationKind.APPENDS, AssociationKind.TRANSFORMS})


@dataclass(frozen=True)
class FolderMetadata:
    """A Folder as submitted: ``codes`` is its codeList (``{"code", "scheme", "display"}``)."""

    unique_id: str
    title: str | None
    comments: str | None
    codes: Sequence[dict[str, Any]]
    entry_id: uuid.UUID | None = None


@dataclass(frozen=True)
class AssociationMetadata:
    """An association between two objects, named by their ids (submitted or already stored)."""

    kind: AssociationKind
    source_id: uuid.UUID
    target_id: uuid.UUID
    entry_id: uuid.UUID | None = None
    submission_set_status: str | None = None


@dataclass
class Filed:
    """What ``file`` stored."""

    folders: list[Folder] = field(default_factory=list)
    associations: list[DocumentAssociation] = field(default_factory=list)


def open_submission_set(
    session: Session, dossier: OpenedDossier, submission_set: SubmissionSetMetadata
) -> SubmissionSet:
    """Record a submission set that brings no document (a Folder, or filing existing ones).

    ``publication.submit`` records the submission sets that bring documents.
    """
    dossier.require(purposes.PUBLISH_DOCUMENTS)
    master_identifier = submission_set.master_identifier or f"urn:uuid:{uuid.uuid4()}"
    if not submission_set.source_id.strip():
        raise InvalidDocument("The submission's source id is empty.", field="source_id")
    taken = session.scalar(
        select(SubmissionSet.id).where(
            SubmissionSet.patient_id == dossier.patient_id,
            SubmissionSet.master_identifier == master_identifier,
        )
    )
    if taken or (
        submission_set.entry_id is not None
        and session.get(SubmissionSet, (dossier.patient_id, submission_set.entry_id))
    ):
        raise DuplicateDocument(master_identifier)
    record = SubmissionSet(
        patient_id=dossier.patient_id,
        id=submission_set.entry_id or uuid.uuid4(),
        master_identifier=master_identifier,
        source_id=submission_set.source_id.strip(),
        title=submission_set.title,
        author_professional_id=None,
        author_organisation_id=dossier.actor.organisation_id,
        submitted_at=dossier.clock.now(),
    )
    session.add(record)
    session.flush()
    dossier.record(
        session, AuditAction.PUBLISH, details={"submission_set": record.master_identifier}
    )
    return record


def file(
    session: Session,
    dossier: OpenedDossier,
    *,
    submission_set: SubmissionSet,
    folders: Sequence[FolderMetadata],
    associations: Sequence[AssociationMetadata],
    submitted: Collection[uuid.UUID],
) -> Filed:
    """Create ``folders`` and record ``associations`` under ``submission_set``.

    ``submitted`` holds the ids of the objects the same submission created (documents,
    folders, the submission set): an association may name those, or any object of the dossier
    (a document only if the actor may see it). Filing a document in a Folder moves the Folder's
    ``updated_at`` on (its lastUpdateTime).
    """
    dossier.require(purposes.PUBLISH_DOCUMENTS)
    now = dossier.clock.now()
    filed = Filed()
    for folder_metadata in folders:
        filed.folders.append(_create_folder(session, dossier, folder_metadata, submission_set))
    created = {folder.id: folder for folder in filed.folders}
    known = set(submitted) | set(created) | {submission_set.id}
    ids = [a.entry_id for a in associations if a.entry_id is not None]
    known |= set(ids)
    for metadata in associations:
        _check_end(session, dossier, metadata.source_id, known, metadata.kind, source=True)
        target = _check_end(
            session, dossier, metadata.target_id, known, metadata.kind, source=False
        )
        taken: DocumentAssociation | None = (
            session.get(DocumentAssociation, (dossier.patient_id, metadata.entry_id))
            if metadata.entry_id is not None
            else None
        )
        if taken is not None:
            raise DuplicateDocument(f"urn:uuid:{metadata.entry_id}")
        association = DocumentAssociation(
            patient_id=dossier.patient_id,
            id=metadata.entry_id or uuid.uuid4(),
            kind=metadata.kind,
            source_id=metadata.source_id,
            target_id=metadata.target_id,
            submission_set_id=submission_set.id,
            submission_set_status=metadata.submission_set_status,
            created_at=now,
        )
        session.add(association)
        filed.associations.append(association)
        if isinstance(target, Document) and metadata.kind is AssociationKind.HAS_MEMBER:
            folder = created.get(metadata.source_id) or session.get(
                Folder, (dossier.patient_id, metadata.source_id)
            )
            if folder is not None:
                folder.updated_at = now
    session.flush()
    if filed.folders or filed.associations:
        dossier.record(
            session,
            AuditAction.PUBLISH,
            entity_ids=[f.id for f in filed.folders],
            details={
                "submission_set": submission_set.master_identifier,
                "associations": len(filed.associations),
            },
        )
    return filed


def _create_folder(
    session: Session,
    dossier: OpenedDossier,
    metadata: FolderMetadata,
    submission_set: SubmissionSet,
) -> Folder:
    if not metadata.codes:
        raise InvalidDocument("A Folder needs at least one code (codeList).", field="codeList")
    if session.scalar(
        select(Folder.id).where(
            Folder.patient_id == dossier.patient_id, Folder.unique_id == metadata.unique_id
        )
    ) or (
        metadata.entry_id is not None
        and session.get(Folder, (dossier.patient_id, metadata.entry_id))
    ):
        raise DuplicateDocument(metadata.unique_id)
    now = dossier.clock.now()
    folder = Folder(
        patient_id=dossier.patient_id,
        id=metadata.entry_id or uuid.uuid4(),
        unique_id=metadata.unique_id,
        title=metadata.title,
        comments=metadata.comments,
        codes=[dict(code) for code in metadata.codes],
        submission_set_id=submission_set.id,
        created_at=now,
        updated_at=now,
    )
    session.add(folder)
    session.flush()
    return folder


def _check_end(
    session: Session,
    dossier: OpenedDossier,
    object_id: uuid.UUID,
    known: set[uuid.UUID],
    kind: AssociationKind,
    *,
    source: bool,
) -> Document | Folder | SubmissionSet | DocumentAssociation | None:
    """The stored object an association names (None for one of this submission's)."""
    if object_id in known:
        return session.get(Document, (dossier.patient_id, object_id))
    patient_id = dossier.patient_id
    document = session.get(Document, (patient_id, object_id))
    if document is not None:
        # An association may name a document the actor sees, or one it manages (its author's
        # system, which reads nothing on its own, appends to and transforms its documents).
        if not (
            guard.sees(dossier, document)
            or decide_manage(dossier.actor, dossier.access, guard.facts(document))
        ):
            raise UnresolvedReference(f"urn:uuid:{object_id}")
        if source and kind in _DOCUMENT_RELATIONS:
            # The new document is the source of a relation: an old one cannot be.
            raise InvalidDocument(
                f"The source of a {kind.value} association is a document of this submission.",
                field="association",
            )
        if not source and kind in _AMENDING and document.status is not DocumentStatus.CURRENT:
            # A replaced or withdrawn document is not appended to or transformed (ITI TF-3
            # 4.2.2; the NIST toolkit's test 11994). A replacement's target was checked, and
            # superseded, when the new document was published.
            raise DocumentNotCurrent(document.status.value)
        return document
    found = (
        session.get(Folder, (patient_id, object_id))
        or session.get(SubmissionSet, (patient_id, object_id))
        or session.get(DocumentAssociation, (patient_id, object_id))
    )
    if found is not None:
        return found
    raise UnresolvedReference(f"urn:uuid:{object_id}")


@dataclass
class Filing:
    """A dossier's folders and stored associations as one actor may see them (``list_filing``)."""

    folders: list[Folder] = field(default_factory=list)
    associations: list[DocumentAssociation] = field(default_factory=list)


def list_filing(session: Session, dossier: OpenedDossier) -> Filing:
    """The dossier's folders and stored associations (ITI-18), without what the actor may not see.

    Serves a dossier opened to ``FIND_DOCUMENTS``. An association naming a document the policy
    keeps from the actor is left out, and so is a folder every document of which is kept from
    them (an empty folder is shown): a folder's title can say as much as its documents. Records
    the folders shown as a consultation.
    """
    dossier.require(purposes.FIND_DOCUMENTS)
    patient_id = dossier.patient_id
    rows = list(
        session.scalars(
            select(DocumentAssociation)
            .where(DocumentAssociation.patient_id == patient_id)
            .order_by(DocumentAssociation.created_at, DocumentAssociation.id)
        )
    )
    named = {row.source_id for row in rows} | {row.target_id for row in rows}
    documents = {
        document.id: guard.sees(dossier, document)
        for document in session.scalars(
            select(Document).where(Document.patient_id == patient_id, Document.id.in_(named))
        )
    }
    associations = [
        row
        for row in rows
        if documents.get(row.source_id, True) and documents.get(row.target_id, True)
    ]
    members: dict[uuid.UUID, list[bool]] = {}
    for row in rows:
        if row.kind is AssociationKind.HAS_MEMBER and row.target_id in documents:
            members.setdefault(row.source_id, []).append(documents[row.target_id])
    every_folder = list(
        session.scalars(
            select(Folder)
            .where(Folder.patient_id == patient_id)
            .order_by(Folder.created_at, Folder.id)
        )
    )
    folders = [f for f in every_folder if not members.get(f.id) or any(members[f.id])]
    # The memberships of a folder left out go with it.
    hidden = {f.id for f in every_folder} - {f.id for f in folders}
    associations = [row for row in associations if row.source_id not in hidden]
    dossier.record(
        session,
        AuditAction.SEARCH,
        entity_ids=[folder.id for folder in folders],
        details={"resource": "Folder", "total": len(folders)},
    )
    return Filing(folders=folders, associations=associations)
