"""Documents of a dossier and the submission sets that brought them.

Both tables lead with ``patient_id`` in their primary key: it is the partition and shard key.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from carnet.db import Base, UTCDateTime, new_id
from carnet.enums import Confidentiality, DocumentStatus, checked_enum

# The document vocabulary lives in ``carnet.enums`` so that the access policy, which sits below
# documents, judges documents in it; it is re-exported here, where it has always been read.
__all__ = [
    "AssociationKind",
    "Confidentiality",
    "Document",
    "DocumentAssociation",
    "DocumentStatus",
    "Folder",
    "SubmissionSet",
]


class SubmissionSet(Base):
    """One act of publication (IHE XDS/MHD SubmissionSet): one or more documents at once."""

    __tablename__ = "submission_sets"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    master_identifier: Mapped[str] = mapped_column(String(128))
    source_id: Mapped[str] = mapped_column(String(128))
    title: Mapped[str | None] = mapped_column(String(300))
    author_professional_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("professionals.id"))
    author_organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index(None, "patient_id", "master_identifier", unique=True),
        # XDS names a submission set by uniqueId or entryUUID without its patient.
        Index(None, "master_identifier"),
        Index(None, "id"),
    )


class Document(Base):
    """A document's metadata (FHIR DocumentReference); its bytes sit in the document store.

    ``class_code`` is the XDS classCode, exposed by FHIR as ``DocumentReference.category``;
    ``type_system``/``type_code`` the precise type (LOINC where LOINC has one).
    """

    __tablename__ = "documents"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    master_identifier: Mapped[str] = mapped_column(String(128))
    status: Mapped[DocumentStatus] = mapped_column(checked_enum(DocumentStatus, "document_status"))
    class_code: Mapped[str] = mapped_column(String(64))
    type_system: Mapped[str] = mapped_column(String(100))
    type_code: Mapped[str] = mapped_column(String(64))
    format_code: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(300))
    mime_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    service_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    service_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    author_professional_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("professionals.id"))
    author_organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    authored_by_patient: Mapped[bool] = mapped_column(Boolean, default=False)
    custodian_organisation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organisations.id")
    )
    facility_type: Mapped[str | None] = mapped_column(String(64))
    practice_setting: Mapped[str | None] = mapped_column(String(64))
    confidentiality: Mapped[Confidentiality] = mapped_column(
        checked_enum(Confidentiality, "confidentiality")
    )
    masked_from_professionals: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden_from_patient: Mapped[bool] = mapped_column(Boolean, default=False)
    replaces_id: Mapped[uuid.UUID | None] = mapped_column()
    submission_set_id: Mapped[uuid.UUID | None] = mapped_column()
    source_system: Mapped[str | None] = mapped_column(String(128))
    content_key: Mapped[str] = mapped_column(String(200))
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        ForeignKeyConstraint(
            ["patient_id", "replaces_id"], ["documents.patient_id", "documents.id"]
        ),
        ForeignKeyConstraint(
            ["patient_id", "submission_set_id"],
            ["submission_sets.patient_id", "submission_sets.id"],
        ),
        Index(None, "patient_id", "master_identifier", unique=True),
        # The timeline: a patient's documents by status, newest first.
        Index(None, "patient_id", "status", "created_at"),
        Index(None, "patient_id", "type_code"),
        Index(None, "patient_id", "replaces_id"),
        # XDS names a document by its uniqueId (ITI-43) or entryUUID (ITI-18) without its
        # patient: these find the dossier holding it (``documents.locating``).
        Index(None, "master_identifier"),
        Index(None, "id"),
    )


class Folder(Base):
    """An XDS Folder (MHD: a ``List`` of code ``folder``): documents gathered by a care episode.

    ``codes`` is the Folder's codeList as ``[{"code", "scheme", "display"}]``; ``updated_at``
    its lastUpdateTime, moved on when a document is filed in it (ITI TF-3 4.1.9.1).
    """

    __tablename__ = "folders"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    unique_id: Mapped[str] = mapped_column(String(128))
    title: Mapped[str | None] = mapped_column(String(300))
    comments: Mapped[str | None] = mapped_column(String(1000))
    codes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    submission_set_id: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        ForeignKeyConstraint(
            ["patient_id", "submission_set_id"],
            ["submission_sets.patient_id", "submission_sets.id"],
        ),
        Index(None, "patient_id", "unique_id", unique=True),
        Index(None, "unique_id"),
        Index(None, "id"),
    )


class AssociationKind(enum.StrEnum):
    """XDS association types (ITI TF-3 4.2.2): membership, and document relationships."""

    HAS_MEMBER = "HasMember"
    REPLACES = "RPLC"
    APPENDS = "APND"
    TRANSFORMS = "XFRM"
    TRANSFORMS_AND_REPLACES = "XFRM_RPLC"
    SIGNS = "signs"


class DocumentAssociation(Base):
    """An XDS Association between two objects of one dossier, as its submission named it.

    ``source_id`` and ``target_id`` are ids of documents, folders, submission sets or other
    associations (a SubmissionSet's HasMember of a Folder's HasMember). A replacement is also
    ``documents.replaces_id``, which MHD reads; this row keeps the association's own entryUUID.
    """

    __tablename__ = "document_associations"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[AssociationKind] = mapped_column(checked_enum(AssociationKind, "association_kind"))
    source_id: Mapped[uuid.UUID] = mapped_column()
    target_id: Mapped[uuid.UUID] = mapped_column()
    submission_set_id: Mapped[uuid.UUID] = mapped_column()
    # SubmissionSetStatus of a SubmissionSet's HasMember: Original (submitted with it) or
    # Reference (an object already in the registry).
    submission_set_status: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        ForeignKeyConstraint(
            ["patient_id", "submission_set_id"],
            ["submission_sets.patient_id", "submission_sets.id"],
        ),
        Index(None, "patient_id", "source_id"),
        Index(None, "patient_id", "target_id"),
    )
