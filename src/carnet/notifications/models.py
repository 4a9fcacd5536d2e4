"""Notices kept for the patient (their inbox), the outbox of their e-mails, and their choices.

A notice is about one dossier and leads its key with that dossier's ``patient_id``, whoever
receives it: the patient, or (for an emergency access) their treating doctor.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from carnet.db import Base, UTCDateTime, new_id
from carnet.enums import checked_enum


class NotificationKind(enum.StrEnum):
    """What happened to the dossier that the patient is told about."""

    EMERGENCY_ACCESS = "emergency-access"
    FIRST_ACCESS = "first-access"
    NEW_DOCUMENT = "new-document"
    DOCUMENT_DIGEST = "document-digest"
    DOSSIER_OPENED = "dossier-opened"


class RecipientKind(enum.StrEnum):
    """Who reads the notice."""

    PATIENT = "patient"
    PROFESSIONAL = "professional"


class EmailStatus(enum.StrEnum):
    """Where the notice's e-mail stands; ``not-applicable``: no address, or e-mail switched off."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    NOT_APPLICABLE = "not-applicable"


class NewDocuments(enum.StrEnum):
    """How the patient wants to hear of new documents."""

    IMMEDIATE = "immediate"
    DIGEST = "digest"
    OFF = "off"


class Notification(Base):
    """One notice: the inbox entry, and its e-mail while it waits in the outbox.

    ``subject`` and ``body`` are rendered once, in the recipient's language, when the notice is
    made; ``data`` (JSON) keeps what they were rendered from: ids, names, times, the reason.
    """

    __tablename__ = "notifications"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    recipient_kind: Mapped[RecipientKind] = mapped_column(
        checked_enum(RecipientKind, "notification_recipient_kind")
    )
    recipient_professional_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("professionals.id")
    )
    kind: Mapped[NotificationKind] = mapped_column(
        checked_enum(NotificationKind, "notification_kind")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    email_status: Mapped[EmailStatus] = mapped_column(
        checked_enum(EmailStatus, "notification_email_status")
    )
    emailed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    email_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # After a failed attempt, the next one waits until then: a mail server down for an hour
    # must not use up every attempt in the first minutes.
    email_retry_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(
            "(recipient_kind = 'professional') = (recipient_professional_id IS NOT NULL)",
            name="professional_recipient_named",
        ),
        Index(None, "patient_id", "created_at"),
        # The outbox's queue: delivery takes the oldest pending e-mails of every dossier at
        # once, so this one index is global. It holds no patient data (a status and a time);
        # sharded, each shard keeps its own outbox.
        Index(None, "email_status", "created_at"),
    )

    def details(self) -> dict[str, Any]:
        """``data`` read back: times as ISO 8601 text."""
        details: dict[str, Any] = json.loads(self.data)
        return details


class NotificationPreferences(Base):
    """The patient's choices about notices; no row means the defaults."""

    __tablename__ = "notification_preferences"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    new_documents: Mapped[NewDocuments] = mapped_column(
        checked_enum(NewDocuments, "notification_new_documents"), default=NewDocuments.IMMEDIATE
    )
    email: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
