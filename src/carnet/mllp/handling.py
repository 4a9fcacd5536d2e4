"""One HL7 v2 message in, one ACK out: the MLLP way in's transaction around the laboratory intake.

Each message is one transaction (``unit_of_work``): everything it stores — the report
documents, their results, their audit events, the record of its control id — commits together,
and only then is the AA built (original acknowledgment mode: the sender may forget the message
once it has it). A refusal rolls the transaction back and, when it concerns a patient, is
audited in a short transaction of its own, as the FHIR way in does, before the AE/AR leaves.
When Carnet itself cannot store (database or store unreachable, a defect), the answer is AR with
error 207, which tells the sender to send again later; no exception reaches the listener.

``carnet hl7 import`` answers the messages of a file through ``answer`` as well.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from carnet.audit import service as audit_trail
from carnet.audit.service import Refusal
from carnet.db import unit_of_work
from carnet.documents.errors import DuplicateDocument
from carnet.errors import CarnetError
from carnet.laboratory import acknowledgement, intake
from carnet.laboratory.errors import AckCode, ErrorCode, MessageRefused
from carnet.laboratory.intake import Credentials
from carnet.laboratory.message import Header, Message, read, salvage_header
from carnet.platform import Platform
from carnet.storage import StorageError

log = logging.getLogger(__name__)

_UNAVAILABLE = "Carnet cannot store the message now; nothing was stored. Send it again later."


@dataclass(frozen=True)
class Peer:
    """Who is at the other end of an MLLP connection."""

    address: str
    # The SHA-256 of the client certificate's DER, lowercase hex, when TLS asked for one.
    certificate_sha256: str | None = None


@dataclass(frozen=True)
class Answer:
    """The ACK of one message, and what it said, for a caller that reports on it."""

    ack: bytes
    code: AckCode
    control_id: str
    text: str
    field: str | None = None
    document_ids: tuple[uuid.UUID, ...] = ()


def handle(platform: Platform, raw: bytes, peer: Peer) -> bytes:
    """Answer one HL7 v2 message (without MLLP framing) with its ACK (without framing).

    Blocking: the listener runs it in a thread. The ACK is returned only after what the
    message stored, and its audit events, are committed. The sender is recognised by MSH-3/
    MSH-4 and, when its feeding system is pinned to one, the certificate the connection showed.
    """
    credentials = Credentials(
        certificate_sha256=peer.certificate_sha256,
        certificate_required=True,
        network_address=peer.address,
    )
    return answer(platform, raw, credentials).ack


def answer(platform: Platform, raw: bytes | str, credentials: Credentials) -> Answer:
    """Process one message in its own transaction and build its ACK; never raises."""
    try:
        return _answer(platform, raw, credentials)
    except Exception:  # the listener must answer every message: a defect is an AR 207 too
        log.exception("HL7 message could not be processed")
        return _refused(
            platform,
            salvage_header(raw),
            MessageRefused(
                _UNAVAILABLE, field="MSH", code=ErrorCode.INTERNAL_ERROR, ack=AckCode.REJECT
            ),
        )


def _answer(platform: Platform, raw: bytes | str, credentials: Credentials) -> Answer:
    try:
        message = read(raw)
    except MessageRefused as refusal:
        return _refused(platform, salvage_header(raw), refusal)
    # A twin of this message committed first (same control id, same documents): the second
    # attempt finds the first's record and answers AA from it.
    for attempt in range(2):
        answered = _attempt(platform, message, credentials, last=attempt == 1)
        if answered is not None:
            return answered
    return _unavailable(platform, message.header)  # pragma: no cover — the last attempt answers


def _attempt(
    platform: Platform, message: Message, credentials: Credentials, *, last: bool
) -> Answer | None:
    """One transaction for the message: its answer, or None to try once more."""
    header = message.header
    try:
        with unit_of_work(platform.sessions) as session:
            accepted = intake.receive(
                session, platform.store, message, credentials, clock=platform.clock
            )
    except (CarnetError, SQLAlchemyError, StorageError) as error:
        return _translated(platform, header, error, last=last)
    return Answer(
        ack=acknowledgement.accepted(header, accepted.text, now=platform.clock.now()),
        code=AckCode.ACCEPT,
        control_id=header.control_id,
        text=accepted.text + (" (already received)" if accepted.repeated else ""),
        document_ids=accepted.document_ids,
    )


def _translated(
    platform: Platform, header: Header, error: Exception, *, last: bool
) -> Answer | None:
    """The one place the message's errors become answers (None: a twin won, try again)."""
    if isinstance(error, MessageRefused):
        if error.refusal is not None and not _audited(platform, error.refusal):
            return _unavailable(platform, header)
        return _refused(platform, header, error)
    if isinstance(error, IntegrityError | DuplicateDocument):
        if not last:
            return None
        log.warning("HL7 message %s: a concurrent twin kept conflicting", header.control_id)
        return _unavailable(platform, header)
    if isinstance(error, SQLAlchemyError | StorageError):
        log.exception("HL7 message %s: storage unavailable", header.control_id)
        return _unavailable(platform, header)
    assert isinstance(error, CarnetError)
    refusal = MessageRefused(str(error), field=error.field or "MSH", code=ErrorCode.INTERNAL_ERROR)
    return _refused(platform, header, refusal)


def _audited(platform: Platform, refusal: Refusal) -> bool:
    """Record a refusal in its own transaction; False if the trail cannot be written."""
    try:
        with unit_of_work(platform.sessions) as session:
            audit_trail.record_refusal(session, refusal, clock=platform.clock)
    except (SQLAlchemyError, CarnetError):
        log.exception("the refusal of an HL7 message could not be audited")
        return False
    return True


def _unavailable(platform: Platform, header: Header | None) -> Answer:
    return _refused(
        platform,
        header,
        MessageRefused(
            _UNAVAILABLE, field="MSH", code=ErrorCode.INTERNAL_ERROR, ack=AckCode.REJECT
        ),
    )


def _refused(platform: Platform, header: Header | None, refusal: MessageRefused) -> Answer:
    return Answer(
        ack=acknowledgement.refused(header, refusal, now=platform.clock.now()),
        code=refusal.ack,
        control_id=header.control_id if header else "",
        text=refusal.message,
        field=refusal.field,
    )
