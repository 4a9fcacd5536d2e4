"""Feeding systems, the identifier authorities they use, and the messages they sent.

None of these tables holds health data: a feeding system is a directory organisation's sender;
an authority mapping says which national identifier a sender's PID-3 carries; a remembered
message names its sender, its control id, the answer it got and the ids of the documents it
brought (no patient id), so that a resend is answered the same without storing twice.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from carnet.db import Base, UTCDateTime, new_id


class FeedingSystem(Base):
    """A laboratory or hospital system registered to send HL7 v2 messages for an organisation.

    It is recognised by MSH-4 (the sending facility; its namespace id or its universal id) and,
    when registered with one, MSH-3 (the sending application). ``certificate_sha256`` pins the
    TLS client certificate the system presents (SHA-256 of its DER, lowercase hex).
    """

    __tablename__ = "feeding_systems"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    sending_facility: Mapped[str] = mapped_column(String(200))
    # Empty: any application of the facility.
    sending_application: Mapped[str] = mapped_column(String(200), default="")
    certificate_sha256: Mapped[str | None] = mapped_column(String(64))
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    deactivated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # One sender per facility and application: a message names exactly one feeding system.
        Index(None, "sending_facility", "sending_application", unique=True),
    )


class IdentifierAuthority(Base):
    """A sender's assigning authority (PID-3's CX.4) and the national identifier it issues.

    ``authority`` matches the namespace id or the universal id of CX.4; ``system`` is one of
    ``carnet.patients.identifiers``' systems (Luxembourg matricule, French NIR/INS).
    """

    __tablename__ = "feed_identifier_authorities"

    feeding_system_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("feeding_systems.id", ondelete="CASCADE"), primary_key=True
    )
    authority: Mapped[str] = mapped_column(String(200), primary_key=True)
    system: Mapped[str] = mapped_column(String(100))


class FeedMessage(Base):
    """A message a feeding system sent and Carnet accepted (AA), by its control id (MSH-10).

    Only accepted messages are remembered, in the transaction that stored what they brought: a
    refused one stored nothing, and may be sent again once its fault is put right.
    """

    __tablename__ = "feed_messages"

    feeding_system_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("feeding_systems.id"), primary_key=True
    )
    control_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    message_type: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ack_code: Mapped[str] = mapped_column(String(2))
    # The ACK's MSA-3, given again to a resend.
    ack_text: Mapped[str] = mapped_column(String(200), default="")
    # JSON list of the ids of the documents the message published, replaced or withdrawn.
    document_ids: Mapped[str] = mapped_column(Text, default="[]")
