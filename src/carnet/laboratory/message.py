"""Reading HL7 v2 messages into plain values, with python-hl7; refusing what cannot be read.

python-hl7 splits a message by its own separators (MSH-1, MSH-2) and undoes its escapes; this
module gives the rest of the domain typed, 1-based access that never raises (a field a sender
left out reads as ""), and checks the header: the message type, control id, processing id and
version Carnet accepts. Segment separators are taken as they come — CR (the standard), LF or
CRLF — because real senders use all three. Text is UTF-8, or ISO 8859-1 when it is not valid
UTF-8 (MSH-18 is often absent or wrong; 8859/1 is what European senders use otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hl7  # python-hl7

from carnet.laboratory.errors import AckCode, ErrorCode, MessageRefused

# HL7 v2.3 to v2.5.1: the ORU^R01 structure Carnet reads did not change in between.
SUPPORTED_VERSIONS = frozenset({"2.3", "2.3.1", "2.4", "2.5", "2.5.1"})
# Production only: a training (T) or debugging (D) message never reaches a real dossier.
PRODUCTION = "P"
_SEGMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_MAX_CONTROL_ID = 199
_FRAMING = frozenset({"FHS", "FTS", "BHS", "BTS"})


@dataclass(frozen=True)
class Segment:
    """One segment, read 1-based as HL7 numbers fields: ``pid.value(3, 4, 2)`` is PID-3.4.2.

    ``position`` counts segments of this name in the message, from 1 (ERR-2's sequence).
    """

    name: str
    position: int
    raw: Any

    def value(
        self, field: int, component: int = 1, subcomponent: int = 1, repetition: int = 1
    ) -> str:
        """The text at this place, unescaped and stripped; "" where the sender left nothing."""
        if field >= len(self.raw):
            return ""
        try:
            found = self.raw.extract_field(1, field, repetition, component, subcomponent)
        except (IndexError, ValueError, TypeError, KeyError, AttributeError):
            # python-hl7 raises when a path goes deeper than the sender wrote: nothing there.
            return ""
        return str(found).strip()

    def repetitions(self, field: int) -> int:
        """How many repetitions field ``field`` holds (0 if it is empty or absent)."""
        if field >= len(self.raw):
            return 0
        content = self.raw[field]
        if not str(content):
            return 0
        return len(content) if isinstance(content, hl7.Field) else 1

    def components(self, field: int, repetition: int = 1) -> tuple[str, ...]:
        """The components of one repetition of a field, unescaped (at least one, maybe "")."""
        if field >= len(self.raw):
            return ("",)
        try:
            repeated = self.raw(field)(repetition)
        except (IndexError, ValueError, TypeError, KeyError, AttributeError):
            return ("",)
        count = len(repeated) if isinstance(repeated, hl7.Repetition) else 1
        return tuple(self.value(field, index, 1, repetition) for index in range(1, count + 1))


@dataclass(frozen=True)
class Header:
    """What MSH says of a message: who sent it, what it is, and how to answer it."""

    sending_application: tuple[str, str]
    sending_facility: tuple[str, str]
    receiving_application: str
    receiving_facility: str
    message_code: str
    trigger_event: str
    control_id: str
    processing_id: str
    version: str

    @property
    def message_type(self) -> str:
        """``ORU^R01``."""
        return f"{self.message_code}^{self.trigger_event}"


@dataclass(frozen=True)
class Message:
    """One message: its header and its segments in order (MSH first)."""

    header: Header
    segments: tuple[Segment, ...]

    def first(self, name: str) -> Segment | None:
        """The first segment named ``name``, if any."""
        return next((segment for segment in self.segments if segment.name == name), None)


def decode(raw: bytes | str) -> str:
    """The message's text: UTF-8 (without its BOM), else ISO 8859-1; CR between segments."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    else:
        text = raw
    text = text.replace("\ufeff", "").replace("\r\n", "\r").replace("\n", "\r")
    return "\r".join(line.strip(" \t\x0b\x1c") for line in text.split("\r") if line.strip())


def split_batch(raw: bytes | str) -> list[str]:
    """The messages of a file or batch (FHS/BHS … BTS/FTS), each as its own text.

    A single message is a batch of one. Text before the first MSH that is not batch framing is
    kept with it, so that reading it refuses it rather than losing it silently.
    """
    messages: list[list[str]] = []
    for line in decode(raw).split("\r"):
        if line[:3] in _FRAMING:
            continue
        if line.startswith("MSH") or not messages:
            messages.append([line])
        else:
            messages[-1].append(line)
    return ["\r".join(lines) for lines in messages]


def read(raw: bytes | str) -> Message:
    """Read one message; ``MessageRefused`` (AR) if it is not an HL7 v2 message at all.

    The header's values are checked by ``check_header``, separately, so that a refusal of an
    unsupported message can still be answered to the right sender and control id.
    """
    text = decode(raw)
    if not text.startswith("MSH") or len(text) < 8:
        raise MessageRefused(
            "The message does not start with an MSH segment.",
            field="MSH",
            code=ErrorCode.SEGMENT_SEQUENCE,
            ack=AckCode.REJECT,
        )
    _check_separators(text)
    try:
        parsed = hl7.parse(text)
    except Exception as error:  # python-hl7 raises assorted errors on malformed text
        raise MessageRefused(
            f"The message cannot be read as HL7 v2 ({type(error).__name__}).",
            field="MSH",
            code=ErrorCode.DATA_TYPE,
            ack=AckCode.REJECT,
        ) from error
    segments = tuple(_segments(parsed))
    return Message(header=_header(segments[0]), segments=segments)


def check_header(message: Message, accepted: frozenset[tuple[str, str]]) -> None:
    """Refuse (AR) a message whose type, control id, processing id or version Carnet refuses.

    ``accepted`` holds the (message code, trigger event) pairs the caller processes.
    """
    header = message.header
    if not header.control_id:
        raise _rejected(
            "MSH-10 (message control id) is empty.", "MSH-10", ErrorCode.REQUIRED_FIELD_MISSING
        )
    if len(header.control_id) > _MAX_CONTROL_ID or any(ord(c) < 32 for c in header.control_id):
        raise _rejected(
            "MSH-10 (message control id) is over 199 characters or holds control characters.",
            "MSH-10",
            ErrorCode.DATA_TYPE,
        )
    codes = {code for code, _ in accepted}
    if header.message_code not in codes:
        raise _rejected(
            f"Message type {header.message_type or '(none)'} is not accepted; "
            f"Carnet takes {', '.join(sorted(f'{c}^{t}' for c, t in accepted))}.",
            "MSH-9",
            ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
        )
    if (header.message_code, header.trigger_event) not in accepted:
        raise _rejected(
            f"Trigger event {header.trigger_event or '(none)'} of {header.message_code} is not "
            "accepted.",
            "MSH-9",
            ErrorCode.UNSUPPORTED_EVENT,
        )
    if header.processing_id != PRODUCTION:
        raise _rejected(
            f"Processing id {header.processing_id or '(none)'}: only production (P) messages "
            "are stored in dossiers.",
            "MSH-11",
            ErrorCode.UNSUPPORTED_PROCESSING_ID,
        )
    if header.version not in SUPPORTED_VERSIONS:
        raise _rejected(
            f"HL7 version {header.version or '(none)'} is not accepted; Carnet takes 2.3 to 2.5.1.",
            "MSH-12",
            ErrorCode.UNSUPPORTED_VERSION,
        )


def salvage_header(raw: bytes | str) -> Header | None:
    """The header of a message that could not be read whole, if its MSH can be: to answer it."""
    try:
        text = decode(raw).split("\r", 1)[0]
        _check_separators(text)
        return _header(next(_segments(hl7.parse(text))))
    except Exception:
        return None


def _rejected(message: str, field: str, code: ErrorCode) -> MessageRefused:
    return MessageRefused(message, field=field, code=code, ack=AckCode.REJECT)


def _check_separators(text: str) -> None:
    # python-hl7 trusts MSH-1 and MSH-2; a sender's typo there would parse as nonsense (or
    # trip its assertions), so the delimiters are checked first (HL7 v2, 2.5.4).
    separator = text[3]
    end = text.find(separator, 4)
    encoding = text[4:end] if end > 0 else ""
    delimiters = separator + encoding
    if (
        not 2 <= len(encoding) <= 5
        or len(set(delimiters)) != len(delimiters)
        or any(c.isalnum() or c.isspace() or ord(c) < 32 for c in delimiters)
    ):
        raise MessageRefused(
            "MSH-1/MSH-2 do not hold distinct delimiter characters.",
            field="MSH-2",
            code=ErrorCode.DATA_TYPE,
            ack=AckCode.REJECT,
        )


def _segments(parsed: Any) -> Iterator[Segment]:
    seen: dict[str, int] = {}
    previous = "MSH"
    for raw in parsed:
        name = str(raw[0]).strip() if len(raw) else ""
        if not _SEGMENT_NAME.match(name):
            # Most often a segment broken over two lines: the fault is in the one before.
            raise MessageRefused(
                f"A segment has no valid name ({name[:10]!r}); it follows {previous}, which "
                "may have been broken over several lines.",
                field=previous,
                code=ErrorCode.SEGMENT_SEQUENCE,
                ack=AckCode.REJECT,
            )
        previous = name
        seen[name] = seen.get(name, 0) + 1
        yield Segment(name=name, position=seen[name], raw=raw)


def _header(msh: Segment) -> Header:
    return Header(
        sending_application=(msh.value(3, 1), msh.value(3, 2)),
        sending_facility=(msh.value(4, 1), msh.value(4, 2)),
        receiving_application=msh.value(5, 1),
        receiving_facility=msh.value(6, 1),
        message_code=msh.value(9, 1).upper(),
        trigger_event=msh.value(9, 2).upper(),
        control_id=msh.value(10),
        processing_id=msh.value(11, 1).upper(),
        version=msh.value(12, 1),
    )
