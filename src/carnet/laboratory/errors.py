"""Errors of the laboratory domain: why a message is refused, in HL7 v2's own terms.

A refusal names the field at fault as HL7 v2 does (``PID-3``, ``OBX-5``), the HL7 error code
(table 0357) and the acknowledgment it earns: ``AR`` for a message Carnet will not process at
all (unknown sender, unsupported type or version, unreadable), ``AE`` for one it read and could
not store (unknown patient, dossier not active, a value that is not what its type says).
"""

from __future__ import annotations

import enum

from carnet.audit.service import Refusal
from carnet.errors import CarnetError


class AckCode(enum.StrEnum):
    """HL7 table 0008, original acknowledgment mode."""

    ACCEPT = "AA"
    ERROR = "AE"
    REJECT = "AR"


class ErrorCode(enum.StrEnum):
    """HL7 table 0357, message error condition codes."""

    SEGMENT_SEQUENCE = "100"
    REQUIRED_FIELD_MISSING = "101"
    DATA_TYPE = "102"
    TABLE_VALUE = "103"
    UNSUPPORTED_MESSAGE_TYPE = "200"
    UNSUPPORTED_EVENT = "201"
    UNSUPPORTED_PROCESSING_ID = "202"
    UNSUPPORTED_VERSION = "203"
    UNKNOWN_KEY = "204"
    DUPLICATE_KEY = "205"
    RECORD_LOCKED = "206"
    INTERNAL_ERROR = "207"

    @property
    def text(self) -> str:
        """The code's name in table 0357."""
        return _ERROR_TEXT[self]


_ERROR_TEXT = {
    ErrorCode.SEGMENT_SEQUENCE: "Segment sequence error",
    ErrorCode.REQUIRED_FIELD_MISSING: "Required field missing",
    ErrorCode.DATA_TYPE: "Data type error",
    ErrorCode.TABLE_VALUE: "Table value not found",
    ErrorCode.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    ErrorCode.UNSUPPORTED_EVENT: "Unsupported event code",
    ErrorCode.UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    ErrorCode.UNSUPPORTED_VERSION: "Unsupported version id",
    ErrorCode.UNKNOWN_KEY: "Unknown key identifier",
    ErrorCode.DUPLICATE_KEY: "Duplicate key identifier",
    ErrorCode.RECORD_LOCKED: "Application record locked",
    ErrorCode.INTERNAL_ERROR: "Application internal error",
}


class MessageRefused(CarnetError):
    """A message Carnet does not store: ``field`` (``PID-3``) and ``code`` say why.

    ``refusal`` is what the audit trail records of it (a refused publication, an unknown
    patient), in a transaction of the way in's own since the message's is rolled back.
    """

    field: str

    def __init__(
        self,
        message: str,
        *,
        field: str,
        code: ErrorCode,
        ack: AckCode = AckCode.ERROR,
        refusal: Refusal | None = None,
    ) -> None:
        super().__init__(message, field=field)
        self.code = code
        self.ack = ack
        self.refusal = refusal
