"""The patient's access rules, kept as data with their history.

Nothing here is ever deleted or overwritten: a revoked grant keeps its row with ``revoked_at``,
a lifted block its ``lifted_at``; preferences are a series of rows, the latest one in force.
Every table leads its primary key with ``patient_id``.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from carnet.db import Base, UTCDateTime, new_id
from carnet.enums import checked_enum


class GrantLevel(enum.StrEnum):
    """Normal sees normal (N) documents; extended sees N and restricted (R). Secret (V): never."""

    NORMAL = "normal"
    EXTENDED = "extended"


class CareContactMethod(enum.StrEnum):
    """How the patient's presence was shown when a care contact was recorded."""

    CARD = "card"
    CODE = "code"


class RepresentationKind(enum.StrEnum):
    """Why someone acts for a patient."""

    PARENT = "parent"
    GUARDIAN = "guardian"
    # Someone the patient names themself (a trusted person, an adult child, a carer), until a
    # date or until the patient ends it; the agency's links above are not the patient's to end.
    NAMED = "named"


class Grant(Base):
    """The patient's permission for a named professional or organisation to see their dossier."""

    __tablename__ = "grants"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    professional_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("professionals.id"))
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    level: Mapped[GrantLevel] = mapped_column(checked_enum(GrantLevel, "grant_level"))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    granted_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint(
            "(professional_id IS NULL) <> (organisation_id IS NULL)", name="one_grantee"
        ),
        Index(None, "patient_id", "professional_id"),
        Index(None, "patient_id", "organisation_id"),
    )


class CareContact(Base):
    """A care contact recorded with the patient present; opens a time-limited normal access."""

    __tablename__ = "care_contacts"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professionals.id"))
    method: Mapped[CareContactMethod] = mapped_column(
        checked_enum(CareContactMethod, "care_contact_method")
    )
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    window_ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index(None, "patient_id", "professional_id"),)


class Block(Base):
    """A professional the patient has barred from their dossier, emergencies included."""

    __tablename__ = "blocks"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professionals.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    lifted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index(None, "patient_id", "professional_id"),)


class TreatingDoctor(Base):
    """The doctor the patient designated as their treating doctor (extended access)."""

    __tablename__ = "treating_doctors"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professionals.id"))
    designated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    designated_by: Mapped[str] = mapped_column(String(200))
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(200))


class AccessPreferences(Base):
    """The patient's standing choices; the latest row is in force, earlier rows are history."""

    __tablename__ = "access_preferences"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    emergency_opposed: Mapped[bool] = mapped_column(Boolean)
    emergency_widened: Mapped[bool] = mapped_column(Boolean)
    care_contacts_enabled: Mapped[bool] = mapped_column(Boolean)
    care_contact_days: Mapped[int | None] = mapped_column(Integer)
    set_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    set_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (Index(None, "patient_id", "set_at"),)


class EmergencyAccess(Base):
    """A break-the-glass opening of a dossier: who, why, until when."""

    __tablename__ = "emergency_accesses"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professionals.id"))
    reason: Mapped[str] = mapped_column(String(1000))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "patient_id", "professional_id"),)


class DocumentMask(Base):
    """A document the patient hides from one named professional."""

    __tablename__ = "document_masks"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    document_id: Mapped[uuid.UUID] = mapped_column()
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professionals.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    lifted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "patient_id", "professional_id"),)


class Representation(Base):
    """Someone (a parent, a guardian, a person the patient named) who acts for the patient,
    within the same policy."""

    __tablename__ = "representations"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    representative_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    kind: Mapped[RepresentationKind] = mapped_column(
        checked_enum(RepresentationKind, "representation_kind")
    )
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(200))

    # "Whom do I represent?" is asked by the representative, whose own patient id leads.
    __table_args__ = (Index(None, "representative_id", "patient_id"),)


class CareContactCode(Base):
    """A one-time code the patient shows a professional to prove presence (stored hashed)."""

    __tablename__ = "care_contact_codes"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code_hash: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
