"""ACK messages (original acknowledgment mode), with an ERR segment for every refusal.

HL7 v2.5.1, 2.9.2 and 2.14.5: MSH, then MSA (the code, the control id acknowledged, a text),
then for AE/AR an ERR naming where the error is (ERR-2, ``PID^1^3``), its code in table 0357
(ERR-3), its severity (ERR-4) and what a person should read (ERR-8). Senders of v2.3/v2.4
read ERR-1 (the error location and code in one field) instead: it is filled for them too.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

from carnet.laboratory.errors import AckCode, ErrorCode, MessageRefused
from carnet.laboratory.message import SUPPORTED_VERSIONS, Header

_FIELD = re.compile(r"^(?P<segment>[A-Z][A-Z0-9]{2})(?:-(?P<field>\d+))?")
# MSA-3 is 80 characters in v2.5; the whole text goes in ERR-8.
_MSA_TEXT = 80
_OLD_ERR = frozenset({"2.3", "2.3.1", "2.4"})


def accepted(header: Header, text: str, *, now: dt.datetime) -> bytes:
    """The AA answering ``header``'s message."""
    return _ack(header, AckCode.ACCEPT, text, None, now)


def refused(header: Header | None, refusal: MessageRefused, *, now: dt.datetime) -> bytes:
    """The AE or AR answering a message (``header`` None when even its MSH was unreadable)."""
    return _ack(header, refusal.ack, refusal.message, refusal, now)


def _ack(
    header: Header | None,
    code: AckCode,
    text: str,
    refusal: MessageRefused | None,
    now: dt.datetime,
) -> bytes:
    version = header.version if header and header.version in SUPPORTED_VERSIONS else "2.5.1"
    trigger = header.trigger_event if header else ""
    msh = [
        "MSH",
        "^~\\&",
        "CARNET",
        "CARNET",
        _escape(header.sending_application[0]) if header else "",
        _escape(header.sending_facility[0]) if header else "",
        now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S+0000"),
        "",
        f"ACK^{_escape(trigger)}^ACK" if trigger else "ACK",
        uuid.uuid4().hex[:20],
        "P",
        version,
    ]
    control_id = _escape(header.control_id) if header else ""
    msa = ["MSA", code.value, control_id, _escape(_one_line(text)[:_MSA_TEXT])]
    segments = ["|".join(msh), "|".join(msa)]
    if refusal is not None:
        segments.append("|".join(_err(refusal, version)))
    return ("\r".join(segments) + "\r").encode("utf-8")


def _err(refusal: MessageRefused, version: str) -> list[str]:
    match = _FIELD.match(refusal.field or "")
    segment = match.group("segment") if match else "MSH"
    field = match.group("field") if match and match.group("field") else ""
    location = "^".join(part for part in (segment, "1", field) if part)
    code = refusal.code if isinstance(refusal.code, ErrorCode) else ErrorCode.INTERNAL_ERROR
    text = _escape(_one_line(refusal.message))
    legacy = (
        f"{segment}^1^{field}^{code.value}&{_escape(code.text)}&HL70357"
        if version in _OLD_ERR
        else ""
    )
    return [
        "ERR",
        legacy,
        location,
        f"{code.value}^{_escape(code.text)}^HL70357",
        "E",
        "",
        "",
        "",
        text,
    ]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _escape(text: str) -> str:
    # HL7 v2, 2.7.4: the delimiters in text are sent as escape sequences (the escape first).
    for character, sequence in (
        ("\\", "\\E\\"),
        ("|", "\\F\\"),
        ("^", "\\S\\"),
        ("&", "\\T\\"),
        ("~", "\\R\\"),
    ):
        text = text.replace(character, sequence)
    return "".join(c for c in text if ord(c) >= 32)
