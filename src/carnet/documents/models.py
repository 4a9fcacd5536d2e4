"""Documents of a dossier and the submission sets that brought them.

Both tables lead with ``patient_id`` in their primary key: it is the partition and shard key.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
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
__all__ = ["Confidentiality", "Document", "DocumentStatus", "SubmissionSet"]


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

    __table_args__ = (Index(None, "patient_id", "master_identifier", unique=True),)


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
    )
