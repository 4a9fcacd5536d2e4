"""Audit events, chained per dossier.

Each dossier has its own hash chain (``chain_id`` is the patient's id): appending needs the
previous hash, so one global chain would make every request in the country queue behind one
lock; per-dossier chains contend only within a dossier and shard with it. Events that concern no
dossier (a professional's sign-in) go to a chain of their own per actor.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from carnet.db import Base, UTCDateTime
from carnet.enums import checked_enum


class AuditAction(enum.StrEnum):
    """What happened."""

    SEARCH = "search"
    READ = "read"
    RETRIEVE = "retrieve"
    PUBLISH = "publish"
    REPLACE = "replace"
    STATUS_CHANGE = "status-change"
    VISIBILITY_CHANGE = "visibility-change"
    GRANT = "grant"
    REVOKE = "revoke"
    BLOCK = "block"
    UNBLOCK = "unblock"
    DESIGNATE = "designate-treating-doctor"
    PREFERENCES = "preferences"
    MASK = "mask"
    CARE_CONTACT = "care-contact"
    CARE_CONTACT_CODE = "care-contact-code"
    BREAK_GLASS = "break-glass"
    REPRESENTATION = "representation"
    ACCESS_OVERVIEW = "access-overview"
    AUDIT_SEARCH = "audit-search"
    EXPORT = "export"
    LIFECYCLE = "lifecycle"
    SIGN_IN = "sign-in"


class AuditOutcome(enum.StrEnum):
    """How it ended."""

    ALLOWED = "allowed"
    DENIED = "denied"


class AuditEvent(Base):
    """One event: when, who (for whom, from where, with which app), on what, and how it ended."""

    __tablename__ = "audit_events"

    chain_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    patient_id: Mapped[uuid.UUID | None] = mapped_column()
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    action: Mapped[AuditAction] = mapped_column(checked_enum(AuditAction, "audit_action"))
    outcome: Mapped[AuditOutcome] = mapped_column(checked_enum(AuditOutcome, "audit_outcome"))
    reason: Mapped[str | None] = mapped_column(String(1000))
    agent_kind: Mapped[str] = mapped_column(String(32))
    agent_subject: Mapped[str] = mapped_column(String(200))
    agent_professional_id: Mapped[uuid.UUID | None] = mapped_column()
    agent_organisation_id: Mapped[uuid.UUID | None] = mapped_column()
    agent_profession: Mapped[str | None] = mapped_column(String(64))
    on_behalf_of: Mapped[uuid.UUID | None] = mapped_column()
    client_id: Mapped[str | None] = mapped_column(String(200))
    network_address: Mapped[str | None] = mapped_column(String(64))
    entity_ids: Mapped[str] = mapped_column(Text, default="[]")
    details: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index(None, "chain_id", "recorded_at"),
        # "Has this professional opened this dossier before?" (first-access notices).
        Index(None, "chain_id", "agent_professional_id"),
        # The agency's counts (consultations per day) scan by date across all dossiers; the
        # index holds dates and actions only, no patient data.
        Index(None, "recorded_at", "action"),
    )


class AuditChainHead(Base):
    """The last link of each chain: where the next event attaches, and what it must follow.

    ``signature`` is Carnet's audit key's signature of ``(chain_id, last_seq, last_hash)``
    (``carnet.audit.signing``), by the key ``key_id``: whoever can write the table but does not
    hold the key cannot move a head to a state Carnet never signed. Empty on heads last written
    before signing began (revision 0009), or by a session without the key.
    """

    __tablename__ = "audit_chain_heads"

    chain_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    signature: Mapped[str | None] = mapped_column(String(88))
    key_id: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        # Checkpoints read the heads changed since the previous one, not every dossier's.
        Index(None, "updated_at"),
    )
