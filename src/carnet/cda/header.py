"""The header of a CDA R2 document, read into frozen values (HL7 CDA R2 §4.2, POCD_MT000040).

``read_header`` parses the document safely (``parsing``), checks the structure Carnet relies on
(``structure``) and reads what Carnet keeps of it: the document id, its LOINC code, title,
effectiveTime, confidentialityCode, languageCode, setId and versionNumber, the recordTarget's
patient ids, the authors, the custodian, the documents it replaces (relatedDocument RPLC) and
the kind of body.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Final

from carnet.catalogue import LOINC_SYSTEM
from carnet.cda.errors import CdaRefused
from carnet.cda.parsing import claims_cda, parse, v3
from carnet.cda.structure import check_structure

LOINC_OID: Final = "2.16.840.1.113883.6.1"
CONFIDENTIALITY_OID: Final = "2.16.840.1.113883.5.25"
CONFIDENTIALITY_CODES: Final = ("N", "R", "V")
# HL7 v3 TS: YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+|-ZZZZ] (Data Types R1, §2.23.4).
_TS: Final = re.compile(
    r"^(?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?(?P<hour>\d{2})?(?P<minute>\d{2})?"
    r"(?P<second>\d{2})?(?:\.(?P<fraction>\d{1,6}))?(?P<offset>[+-]\d{4})?$"
)


@dataclass(frozen=True)
class InstanceId:
    """An HL7 v3 II: an OID or UUID ``root`` and maybe an ``extension`` (or a nullFlavor)."""

    root: str | None
    extension: str | None = None

    def __str__(self) -> str:
        if self.extension is None:
            return self.root or "(unknown)"
        return f"{self.root}^{self.extension}"


@dataclass(frozen=True)
class Coded:
    """A coded value (CE/CS): its code, the OID of its code system and its display name."""

    code: str
    code_system: str | None = None
    display: str | None = None

    @property
    def system_uri(self) -> str:
        """The code system as a FHIR system URI (LOINC's own URI, else ``urn:oid:``)."""
        if self.code_system == LOINC_OID:
            return LOINC_SYSTEM
        return f"urn:oid:{self.code_system}" if self.code_system else ""


@dataclass(frozen=True)
class Instant:
    """An HL7 v3 TS: the instant it starts at, its ``precision`` (``year`` … ``second``) and
    whether it carried a UTC offset (without one, local time of an unnamed place)."""

    at: dt.datetime
    precision: str
    has_offset: bool
    text: str

    def covers(self, moment: dt.datetime) -> bool:
        """Whether ``moment`` falls in this TS at its precision (any offset if it has none)."""
        width = _PRECISION_WIDTH[self.precision]
        if self.has_offset:
            return self.at <= moment < self.at + width
        # Local time of an unknown zone: UTC-12 to UTC+14 are the offsets in use.
        return self.at - dt.timedelta(hours=14) <= moment < self.at + width + dt.timedelta(hours=12)


@dataclass(frozen=True)
class Participant:
    """An author or the custodian: their ids, a person's name and an organisation's name."""

    ids: tuple[InstanceId, ...]
    person: str | None = None
    organisation: str | None = None


@dataclass(frozen=True)
class CdaHeader:
    """What Carnet reads from a ClinicalDocument's header."""

    document_id: InstanceId
    code: Coded
    title: str | None
    effective_time: Instant
    confidentiality: str
    language: str | None
    set_id: InstanceId | None
    version: int | None
    record_targets: int
    patient_ids: tuple[InstanceId, ...]
    patient_name: str | None
    authors: tuple[Participant, ...]
    custodian: Participant
    replaces: tuple[InstanceId, ...]
    body: str  # "structured" or "nonxml"


_PRECISION_WIDTH: Final = {
    "year": dt.timedelta(days=366),
    "month": dt.timedelta(days=31),
    "day": dt.timedelta(days=1),
    "hour": dt.timedelta(hours=1),
    "minute": dt.timedelta(minutes=1),
    "second": dt.timedelta(seconds=1),
}


def read_header(content: bytes) -> CdaHeader:
    """The header of the CDA R2 document ``content``.

    Raises ``CdaRefused`` naming the reason: not well-formed, a DOCTYPE, too large, not in the
    urn:hl7-org:v3 namespace, a structure POCD_MT000040 does not allow, a confidentiality other
    than N, R or V, an effectiveTime that is no TS, a versionNumber that is no positive integer.
    """
    return header_of(parse(content))


def effective_time(mime_type: str, content: bytes) -> dt.datetime | None:
    """When a CDA document was written (its effectiveTime, in UTC), for a way in that has no
    creation time of its own to send (a portal upload); None for content that is no readable
    CDA document (publication refuses such a CDA, naming why)."""
    if not claims_cda(mime_type, content):
        return None
    try:
        return read_header(content).effective_time.at
    except CdaRefused:
        return None


def header_of(root: Any) -> CdaHeader:
    """The header of a parsed ClinicalDocument (see ``read_header``)."""
    check_structure(root)
    version = root.find(v3("versionNumber"))
    return CdaHeader(
        document_id=_identifier(root.find(v3("id"))),
        code=_coded(root.find(v3("code"))),
        title=_text(root.find(v3("title"))),
        effective_time=read_instant(root.find(v3("effectiveTime")).get("value"), "effectiveTime"),
        confidentiality=_confidentiality(root.find(v3("confidentialityCode"))),
        language=_language(root.find(v3("languageCode"))),
        set_id=_optional_identifier(root.find(v3("setId"))),
        version=None if version is None else _version(version.get("value")),
        record_targets=len(root.findall(v3("recordTarget"))),
        patient_ids=tuple(
            _identifier(element) for element in root.iterfind(v3("recordTarget/patientRole/id"))
        ),
        patient_name=_name(root.find(v3("recordTarget/patientRole/patient/name"))),
        authors=tuple(_author(author) for author in root.iterfind(v3("author"))),
        custodian=_organisation(
            root.find(v3("custodian/assignedCustodian/representedCustodianOrganization"))
        ),
        replaces=tuple(
            _identifier(element)
            for related in root.iterfind(v3("relatedDocument"))
            if related.get("typeCode") == "RPLC"
            for element in related.iterfind(v3("parentDocument/id"))
        ),
        body="nonxml" if root.find(v3("component/nonXMLBody")) is not None else "structured",
    )


def read_instant(value: str, where: str) -> Instant:
    """An HL7 v3 TS value; ``CdaRefused`` naming ``where`` if it is not one."""
    match = _TS.match(value.strip())
    if match is None:
        raise CdaRefused(
            f"{where} {value!r} is not an HL7 TS (YYYYMMDDHHMMSS±ZZZZ).", reason="structure"
        )
    parts = match.groupdict()
    precision = next(
        name
        for name in ("second", "minute", "hour", "day", "month", "year")
        if parts[name] is not None
    )
    offset = parts["offset"]
    zone = dt.UTC
    if offset is not None:
        sign = -1 if offset[0] == "-" else 1
        hours, minutes = int(offset[1:3]), int(offset[3:5])
        if hours > 14 or minutes > 59:
            raise CdaRefused(f"{where} {value!r} has no valid UTC offset.", reason="structure")
        zone = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    try:
        local = dt.datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int((parts["fraction"] or "0").ljust(6, "0")),
            tzinfo=zone,
        )
    except ValueError as error:
        raise CdaRefused(
            f"{where} {value!r} is not a date that exists.", reason="structure"
        ) from error
    return Instant(
        at=local.astimezone(dt.UTC),
        precision=precision,
        has_offset=offset is not None,
        text=value.strip(),
    )


def _identifier(element: Any) -> InstanceId:
    return InstanceId(element.get("root"), element.get("extension"))


def _optional_identifier(element: Any) -> InstanceId | None:
    return None if element is None else _identifier(element)


def _coded(element: Any) -> Coded:
    return Coded(
        code=element.get("code", "").strip(),
        code_system=element.get("codeSystem"),
        display=element.get("displayName"),
    )


def _text(element: Any) -> str | None:
    if element is None:
        return None
    text = " ".join("".join(element.itertext()).split())
    return text or None


def _confidentiality(element: Any) -> str:
    code, system = element.get("code", "").strip(), element.get("codeSystem")
    if code not in CONFIDENTIALITY_CODES or system not in (None, CONFIDENTIALITY_OID):
        raise CdaRefused(
            f"confidentialityCode {code!r} (code system {system}) is not N, R or V of "
            f"HL7 Confidentiality ({CONFIDENTIALITY_OID}).",
            reason="structure",
            field="confidentiality",
        )
    return str(code)


def _language(element: Any) -> str | None:
    return None if element is None else str(element.get("code")).strip()


def _version(value: str | None) -> int:
    if value is None or not value.strip().isdigit() or int(value) < 1:
        raise CdaRefused(
            f"versionNumber {value!r} is not a positive whole number.", reason="structure"
        )
    return int(value)


def _name(element: Any) -> str | None:
    if element is None:
        return None
    parts = [
        " ".join("".join(part.itertext()).split())
        for part in element
        if isinstance(part.tag, str) and part.tag.endswith(("}given", "}family"))
    ]
    return " ".join(part for part in parts if part) or _text(element)


def _author(element: Any) -> Participant:
    assigned = element.find(v3("assignedAuthor"))
    organisation = assigned.find(v3("representedOrganization/name"))
    return Participant(
        ids=tuple(_identifier(i) for i in assigned.iterfind(v3("id"))),
        person=_name(assigned.find(v3("assignedPerson/name")))
        or _text(assigned.find(v3("assignedAuthoringDevice/softwareName"))),
        organisation=_text(organisation),
    )


def _organisation(element: Any) -> Participant:
    return Participant(
        ids=tuple(_identifier(i) for i in element.iterfind(v3("id"))),
        organisation=_text(element.find(v3("name"))),
    )
