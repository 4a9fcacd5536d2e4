"""MDM^T02 and MDM^T10 (medical document management) read into one notified document.

HL7 v2.5.1, chapter 9: MDM^T02 is "original document notification and content", MDM^T10
"document replacement notification and content". Both are MSH EVN PID PV1 [{ORC OBR}] TXA
{OBX {NTE}}: TXA describes the document (its type, unique number, times, completion and
confidentiality), the OBX segments carry it. Carnet takes a document carried whole, as an OBX of
type ED (encapsulated data): a PDF, or a CDA R2 document (its header is then checked by the
documents service as for every other way in). Long content is often split: the ED data of
several OBX segments of the same observation, the repetitions of OBX-5 and ADD continuation
segments are joined in order. Every value is checked here, before anything is stored, and a
refusal names the field (``TXA-2``, ``OBX-5``) as the ERR segment will.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass

from carnet.catalogue import LOINC_SYSTEM, DocumentType, UnknownDocumentType, load_catalogue
from carnet.cda import intake as cda
from carnet.cda.header import InstanceId
from carnet.cda.parsing import claims_cda
from carnet.errors import InvalidValue
from carnet.laboratory.errors import ErrorCode, MessageRefused
from carnet.laboratory.message import Message, Segment
from carnet.laboratory.oru import (
    PatientIdentifier,
    parse_time,
    patient_identifiers,
    patient_segment,
)
from carnet.storable import check_text

ORIGINAL = "T02"
REPLACEMENT = "T10"
# HL7 table 0270 (document type, user-defined): the codes of HL7's own examples that name a
# type of Carnet's catalogue, by its LOINC code. A sender may also put the catalogue's code
# itself in TXA-2 (a LOINC document code, or Carnet's local code).
DOCUMENT_TYPES = {
    "CN": "11488-4",  # consultation: Consult note
    "PC": "11488-4",  # psychiatric consultation: a consult note
    "DI": "18748-4",  # diagnostic imaging: Diagnostic imaging study
    "DS": "18842-5",  # discharge summary
    "ED": "59258-4",  # emergency department report: Emergency department Discharge summary
    "OP": "11504-8",  # operative report: Surgical operation note
}
# HL7 table 0271 (document completion status): a dossier shares what its author signed —
# authenticated, legally authenticated, or pre-authenticated (signed by a resident, say).
# Dictated, documented, in progress and incomplete documents are not ready to share.
COMPLETE = frozenset({"AU", "LA", "PA"})
# HL7 table 0272 (document confidentiality status) as HL7 v3 Confidentiality: usual control
# is normal (N, which some senders write as such).
CONFIDENTIALITY = {"U": "N", "N": "N", "R": "R", "V": "V"}
# Table 0299 (encoding) and the ED type of data (table 0191) / subtype (table 0291).
_BASE64 = "BASE64"
_HEX = "HEX"
_ASCII = "A"
_PDF = "PDF"
_XML = frozenset({"XML", "X-HL7-CDA-LEVEL-ONE", "CDA"})
# Carnet keeps documents up to this size (the CDA parser's own limit too).
LARGEST_DOCUMENT = 32 * 1024 * 1024
_WHITESPACE = re.compile(r"\s+")
_MASTER_IDENTIFIER_LIMIT = 128


@dataclass(frozen=True)
class NotifiedDocument:
    """An MDM read: the patient as the sender names them, what TXA says, and the content."""

    event: str
    identifiers: tuple[PatientIdentifier, ...]
    document_type: DocumentType
    # TXA-12 and, for a replacement, TXA-13, as HL7 v3 instance ids (root ^ extension).
    number: InstanceId
    parent: InstanceId | None
    # TXA-6 (origination), else TXA-4 (activity); ``created_field`` says which one.
    created_at: dt.datetime | None
    created_field: str
    completion: str
    confidentiality: str | None
    mime_type: str
    content: bytes

    @property
    def master_identifier(self) -> str:
        """TXA-12 as the dossier keeps it: as an XDS uniqueId or FHIR masterIdentifier is."""
        return cda.master_identifiers(self.number)[0]

    @property
    def is_cda(self) -> bool:
        """Whether the content presents itself as a CDA document (checked as one)."""
        return claims_cda(self.mime_type, self.content)


def read_notification(message: Message) -> NotifiedDocument:
    """The document an MDM^T02/T10 carries; ``MessageRefused`` (AE) naming the field at fault."""
    identifiers = patient_identifiers(patient_segment(message))
    txa = _the_txa(message)
    document_type = _document_type(txa)
    number = _document_number(txa, 12, "TXA-12")
    if number is None:
        raise _refused(
            "TXA-12 (unique document number) is empty.", "TXA-12", ErrorCode.REQUIRED_FIELD_MISSING
        )
    event = message.header.trigger_event
    parent = _document_number(txa, 13, "TXA-13") if event == REPLACEMENT else None
    if event == REPLACEMENT and parent is None:
        raise _refused(
            "TXA-13 (parent document number) is empty: a replacement (T10) names the document "
            "it replaces.",
            "TXA-13",
            ErrorCode.REQUIRED_FIELD_MISSING,
        )
    origination = parse_time(txa.value(6, 1), "TXA-6")
    activity = parse_time(txa.value(4, 1), "TXA-4")
    completion = txa.value(17, 1).upper()
    if completion not in COMPLETE:
        raise _refused(
            f"TXA-17 (document completion status) is {completion or 'empty'}: Carnet shares "
            "authenticated documents only (AU, LA or PA).",
            "TXA-17",
            ErrorCode.REQUIRED_FIELD_MISSING if not completion else ErrorCode.TABLE_VALUE,
        )
    confidentiality_status = txa.value(18, 1).upper()
    if confidentiality_status and confidentiality_status not in CONFIDENTIALITY:
        raise _refused(
            f"TXA-18 (document confidentiality status) {confidentiality_status[:10]!r} is not "
            "U, R or V (HL7 table 0272).",
            "TXA-18",
            ErrorCode.TABLE_VALUE,
        )
    mime_type, content = _content(message)
    return NotifiedDocument(
        event=event,
        identifiers=identifiers,
        document_type=document_type,
        number=number,
        parent=parent,
        created_at=origination or activity,
        created_field="TXA-6" if origination is not None or activity is None else "TXA-4",
        completion=completion,
        confidentiality=CONFIDENTIALITY.get(confidentiality_status),
        mime_type=mime_type,
        content=content,
    )


def _the_txa(message: Message) -> Segment:
    found = [segment for segment in message.segments if segment.name == "TXA"]
    if not found:
        raise _refused(
            "The message has no TXA segment (the document's description).",
            "TXA",
            ErrorCode.SEGMENT_SEQUENCE,
        )
    if len(found) > 1:
        raise _refused(
            "One MDM message carries one document: it has one TXA segment.",
            "TXA",
            ErrorCode.SEGMENT_SEQUENCE,
        )
    return found[0]


def _document_type(txa: Segment) -> DocumentType:
    code = _bounded(txa.value(2, 1), "TXA-2", 100, free_text=False)
    if not code:
        raise _refused("TXA-2 (document type) is empty.", "TXA-2", ErrorCode.REQUIRED_FIELD_MISSING)
    catalogue = load_catalogue()
    loinc = DOCUMENT_TYPES.get(code.upper())
    if loinc is not None:
        return catalogue.by_code(LOINC_SYSTEM, loinc)
    for document_type in catalogue.types:
        if document_type.code == code:
            return document_type
    try:
        return catalogue.by_key(code)
    except UnknownDocumentType:
        pass
    raise _refused(
        f"TXA-2 document type {code!r} is none Carnet's catalogue holds: send one of "
        f"{', '.join(sorted(DOCUMENT_TYPES))} (HL7 table 0270) or a catalogue code such as "
        "LOINC 11488-4.",
        "TXA-2",
        ErrorCode.TABLE_VALUE,
    )


def _document_number(txa: Segment, field: int, name: str) -> InstanceId | None:
    """An EI (entity id ^ namespace id ^ universal id ^ type) as a v3 II: the universal id (an
    OID or UUID) is the root and the entity id its extension; an entity id alone is a root."""
    entity = _bounded(txa.value(field, 1), name, 199, free_text=False)
    if not entity:
        return None
    assigner = _bounded(txa.value(field, 3) or txa.value(field, 2), name, 199, free_text=False)
    number = InstanceId(root=assigner, extension=entity) if assigner else InstanceId(root=entity)
    if any(len(form) > _MASTER_IDENTIFIER_LIMIT for form in cda.master_identifiers(number)):
        raise _refused(
            f"{name} is over {_MASTER_IDENTIFIER_LIMIT} characters as a document identifier.",
            name,
            ErrorCode.DATA_TYPE,
        )
    return number


@dataclass
class _Encapsulated:
    """The ED content being gathered: its kind from the first OBX, its data from all."""

    observation: tuple[str, str]
    type_of_data: str
    subtype: str
    encoding: str
    chunks: list[str]


def _content(message: Message) -> tuple[str, bytes]:
    observations = [segment for segment in message.segments if segment.name == "OBX"]
    if not observations:
        raise _refused(
            "The message has no OBX segment: MDM^T02 carries its document in an OBX of type ED.",
            "OBX",
            ErrorCode.SEGMENT_SEQUENCE,
        )
    found: _Encapsulated | None = None
    last_was_ed = False
    for segment in message.segments:
        if segment.name == "ADD" and last_was_ed and found is not None:
            found.chunks.append(segment.value(1))  # a continuation of the field before it
            continue
        if segment.name != "OBX":
            last_was_ed = last_was_ed and segment.name == "NTE"
            continue
        last_was_ed = segment.value(2, 1).upper() == "ED"
        if not last_was_ed:
            continue  # text (TX) or references (HD, RP) beside the document: not the document
        observation = (segment.value(3, 1), segment.value(4, 1))
        chunks = [segment.value(5, 5, 1, r) for r in range(1, segment.repetitions(5) + 1)]
        if found is None:
            found = _Encapsulated(
                observation=observation,
                type_of_data=segment.value(5, 2).upper(),
                subtype=segment.value(5, 3).upper(),
                encoding=segment.value(5, 4).upper(),
                chunks=chunks,
            )
        elif observation == found.observation:
            found.chunks.extend(chunks)  # the same observation, continued
        else:
            raise _refused(
                "The message carries more than one document (OBX of type ED for "
                f"{found.observation[0] or '?'} and {observation[0] or '?'}): send one per "
                "message.",
                "OBX-3",
                ErrorCode.SEGMENT_SEQUENCE,
            )
    if found is None:
        raise _refused(
            "No OBX is of type ED: Carnet takes the document itself (a PDF or a CDA document "
            "encapsulated in OBX-5), not its text line by line.",
            "OBX-2",
            ErrorCode.TABLE_VALUE,
        )
    mime_type = _mime_type(found)
    content = _decoded(found)
    if mime_type != "application/pdf" and not claims_cda(mime_type, content):
        raise _refused(
            "OBX-5 holds XML that is no CDA document (no ClinicalDocument root).",
            "OBX-5",
            ErrorCode.DATA_TYPE,
        )
    return mime_type, content


def _mime_type(found: _Encapsulated) -> str:
    if found.subtype == _PDF:
        return "application/pdf"
    if found.subtype in _XML:
        return "text/xml" if found.type_of_data in ("TEXT", "TX") else "application/xml"
    raise _refused(
        f"OBX-5 holds {found.type_of_data or '?'}^{found.subtype or '?'}: Carnet takes a PDF "
        "(Application^PDF) or a CDA document (text^XML).",
        "OBX-5",
        ErrorCode.TABLE_VALUE,
    )


def _decoded(found: _Encapsulated) -> bytes:
    text = "".join(found.chunks)
    if not text.strip():
        raise _refused(
            "OBX-5 (the encapsulated data, ED.5) is empty.",
            "OBX-5",
            ErrorCode.REQUIRED_FIELD_MISSING,
        )
    if len(text) > LARGEST_DOCUMENT * 2:
        raise _refused(
            f"OBX-5 is over {LARGEST_DOCUMENT} bytes: too large a document.",
            "OBX-5",
            ErrorCode.DATA_TYPE,
        )
    try:
        if found.encoding == _BASE64:
            # Line breaks a sender wrapped the data with (escaped as \X0D0A\ or \.br\) go.
            content = base64.b64decode(_WHITESPACE.sub("", text), validate=True)
        elif found.encoding == _HEX:
            content = bytes.fromhex(_WHITESPACE.sub("", text))
        elif found.encoding == _ASCII:
            content = text.encode("utf-8")
        else:
            raise _refused(
                f"OBX-5 encoding {found.encoding or '(none)'!r} is not Base64, Hex or A.",
                "OBX-5",
                ErrorCode.TABLE_VALUE,
            )
    except (binascii.Error, ValueError) as error:
        raise _refused(
            f"OBX-5 is not valid {found.encoding.title()} data.", "OBX-5", ErrorCode.DATA_TYPE
        ) from error
    if not content:
        raise _refused("OBX-5 decodes to nothing.", "OBX-5", ErrorCode.REQUIRED_FIELD_MISSING)
    if len(content) > LARGEST_DOCUMENT:
        raise _refused(
            f"OBX-5 is {len(content)} bytes; Carnet keeps documents up to {LARGEST_DOCUMENT}.",
            "OBX-5",
            ErrorCode.DATA_TYPE,
        )
    return content


def _bounded(value: str, field: str, limit: int, *, free_text: bool = True) -> str:
    try:
        return check_text(value, field=field, limit=limit, free_text=free_text)
    except InvalidValue as error:
        raise _refused(str(error), field, ErrorCode.DATA_TYPE) from error


def _refused(message: str, field: str, code: ErrorCode) -> MessageRefused:
    return MessageRefused(message, field=field, code=code)
