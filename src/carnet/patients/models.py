"""Patients, their national identifiers and their dossier."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from carnet.db import Base, UTCDateTime, new_id
from carnet.enums import checked_enum


class Sex(enum.StrEnum):
    """Administrative sex, as FHIR's AdministrativeGender."""

    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class DossierState(enum.StrEnum):
    """Where a dossier stands in its life (see the lifecycle domain for the transitions)."""

    INVITED = "invited"
    ACTIVE = "active"
    OPPOSED = "opposed"
    CLOSED = "closed"


class Patient(Base):
    """An insured person. Demographics only; clinical content lives in documents."""

    __tablename__ = "patients"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    family: Mapped[str] = mapped_column(String(200))
    given: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    sex: Mapped[Sex] = mapped_column(checked_enum(Sex, "sex"))
    language: Mapped[str] = mapped_column(String(8), default="fr")
    email: Mapped[str | None] = mapped_column(String(320))
    address_line: Mapped[str | None] = mapped_column(String(300))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    city: Mapped[str | None] = mapped_column(String(120))
    country: Mapped[str | None] = mapped_column(String(2))
    insured_since: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    identifiers: Mapped[list[PatientIdentifier]] = relationship(
        back_populates="patient", lazy="selectin", order_by="PatientIdentifier.system"
    )
    dossier: Mapped[Dossier] = relationship(back_populates="patient", lazy="joined")

    __table_args__ = (Index(None, "family", "given", "birth_date"),)


class PatientIdentifier(Base):
    """A national identifier (Luxembourg matricule, French NIR/INS) of a patient."""

    __tablename__ = "patient_identifiers"

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    system: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(40), primary_key=True)

    patient: Mapped[Patient] = relationship(back_populates="identifiers")

    # The one global index over patient data: identifier -> patient is how every feed finds a
    # dossier. Sharded, it becomes its own small lookup table.
    __table_args__ = (Index(None, "system", "value", unique=True),)


class Dossier(Base):
    """The shared record of one patient, and its state."""

    __tablename__ = "dossiers"

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[DossierState] = mapped_column(checked_enum(DossierState, "dossier_state"))
    state_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # An invited dossier opens by itself at this instant unless the patient acts first.
    opening_deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # When a closed dossier's documents were purged at the end of the retention period.
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship(back_populates="dossier")

    __table_args__ = (
        Index(None, "state"),
        # The opening job's queue: invited dossiers by deadline (a state and a date, no
        # patient data in the index).
        Index(None, "state", "opening_deadline"),
    )
