"""Essential facts of a dossier, kept with their history.

A fact is never deleted nor edited: withdrawing it stamps ``withdrawn_at``, and correcting it
is withdrawing it and recording another, so what a doctor read on a given day stays readable.
The table leads its primary key with ``patient_id``: it is the partition and shard key.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy import text as sql
from sqlalchemy.orm import Mapped, mapped_column

from carnet.db import Base, UTCDateTime, new_id
from carnet.enums import checked_enum


class Category(enum.StrEnum):
    """The kinds of essential fact, in the order a reader looks for them."""

    BLOOD_GROUP = "blood-group"
    ALLERGY = "allergy"
    TREATMENT = "treatment"
    VACCINATION = "vaccination"
    EMERGENCY_CONTACT = "emergency-contact"
    ADVANCE_DIRECTIVE = "advance-directive"


class EssentialFact(Base):
    """One fact as it was written (``text``), its structured parts (``details``), and who said it.

    ``recorded_by`` is the audit trail's name of the author (``Practitioner/…``, ``Patient/…``);
    ``recorded_by_kind`` says which side they spoke for: ``professional``, ``patient`` or
    ``representative``. ``source_document_id`` names the document a fact was taken from; it
    is not a foreign key, since a closed dossier's documents are purged after retention while
    the facts taken from them are history.
    """

    __tablename__ = "essential_facts"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    category: Mapped[Category] = mapped_column(checked_enum(Category, "essential_category"))
    text: Mapped[str] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_by_kind: Mapped[str] = mapped_column(String(32))
    recorded_by_professional_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("professionals.id")
    )
    source_document_id: Mapped[uuid.UUID | None] = mapped_column()
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    withdrawn_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        # One live blood group per dossier, whatever two concurrent requests try.
        Index(
            "uq_essential_facts_live_blood_group",
            "patient_id",
            unique=True,
            sqlite_where=sql("category = 'blood-group' AND withdrawn_at IS NULL"),
            postgresql_where=sql("category = 'blood-group' AND withdrawn_at IS NULL"),
        ),
    )
