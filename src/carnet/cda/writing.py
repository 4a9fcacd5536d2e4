"""A laboratory report written as a CDA R2 document (LOINC 11502-2), from neutral values.

For a report Carnet received as HL7 v2 (ORU^R01) and keeps as structured results: the same
results, in a ClinicalDocument a CDA consumer reads (IHE XD-LAB's shape, without its
templates: one "Laboratory studies" section, LOINC 26436-6, with the results as a narrative
table and one observation entry each). What is written passes the same structure check as
what Carnet receives (``structure.check_structure``), so a written report is one Carnet would
take.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from lxml import etree

from carnet.cda.header import CONFIDENTIALITY_CODES, CONFIDENTIALITY_OID, LOINC_OID, header_of
from carnet.cda.parsing import V3, XSI
from carnet.cda.patient import oid_of
from carnet.cda.structure import TYPE_ID_EXTENSION, TYPE_ID_ROOT
from carnet.patients.identifiers import FR_NIR, NationalIdentifier

LAB_REPORT_LOINC: Final = "11502-2"
LAB_SECTION_LOINC: Final = "26436-6"
# HL7 v2 table 0396 coding systems, and FHIR's URIs for them, to their OIDs.
_CODE_SYSTEMS: Final = {
    "LN": LOINC_OID,
    "http://loinc.org": LOINC_OID,
    "SCT": "2.16.840.1.113883.6.96",
    "http://snomed.info/sct": "2.16.840.1.113883.6.96",
}
# OBX-11 result status to the act's statusCode (HL7 v3 ActStatus).
_STATUS: Final = {"F": "completed", "C": "completed", "P": "active", "X": "cancelled"}
# OBX-8 abnormal flags that are HL7 v3 ObservationInterpretation codes as they are.
_INTERPRETATION_OID: Final = "2.16.840.1.113883.5.83"
_INTERPRETATIONS: Final = frozenset({"H", "L", "HH", "LL", "A", "AA", "N", "<", ">", "S", "R", "I"})
_GENDER_OID: Final = "2.16.840.1.113883.5.1"
_TABLE_HEADINGS: Final = ("Test", "Result", "Unit", "Reference range", "Flags", "Time")


@dataclass(frozen=True)
class ReportedResult:
    """One result of a report, as the laboratory gave it (an OBX)."""

    code_system: str
    code: str
    display: str
    value: str
    numeric_value: float | None = None
    unit: str = ""
    reference_range: str = ""
    abnormal_flags: tuple[str, ...] = ()
    status: str = "F"
    observed_at: dt.datetime | None = None


@dataclass(frozen=True)
class ReportedPatient:
    """The report's patient: a national identifier and the demographics a reader checks."""

    identifier: NationalIdentifier
    family: str
    given: str
    birth_date: dt.date | None = None
    sex: str = "UN"  # HL7 AdministrativeGender: F, M or UN


@dataclass(frozen=True)
class LaboratoryReport:
    """A laboratory report to write: who, by whom, when, and its results in order."""

    document_id: uuid.UUID
    title: str
    created_at: dt.datetime
    patient: ReportedPatient
    laboratory: str
    results: Sequence[ReportedResult]
    laboratory_id: uuid.UUID | None = None
    language: str = "en"
    confidentiality: str = "N"
    set_id: uuid.UUID | None = None
    version: int = 1
    replaces: tuple[uuid.UUID, ...] = field(default=())


def write_lab_report(report: LaboratoryReport) -> bytes:
    """The report as a CDA R2 ClinicalDocument, UTF-8 with its XML declaration.

    Raises ``ValueError`` for a naive ``created_at`` or a confidentiality other than N, R or V;
    the document written is read back through the header reader, so it is one Carnet takes.
    """
    if report.created_at.tzinfo is None:
        raise ValueError("created_at needs a time zone")
    if report.confidentiality not in CONFIDENTIALITY_CODES:
        raise ValueError(f"confidentiality must be N, R or V, not {report.confidentiality!r}")
    root = etree.Element(_v3("ClinicalDocument"), nsmap={None: V3, "xsi": XSI})
    _header(root, report)
    body = _add(_add(root, "component"), "structuredBody")
    _section(_add(_add(body, "component"), "section"), report)
    content: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    header_of(root)  # what Carnet writes, Carnet must read: a failure here is a bug, not input
    return content


def _header(root: Any, report: LaboratoryReport) -> None:
    realm = "FR" if report.patient.identifier.system == FR_NIR else "LU"
    _add(root, "realmCode", code=realm)
    _add(root, "typeId", root=TYPE_ID_ROOT, extension=TYPE_ID_EXTENSION)
    _add(root, "id", root=str(report.document_id).upper())
    _add(
        root,
        "code",
        code=LAB_REPORT_LOINC,
        codeSystem=LOINC_OID,
        codeSystemName="LOINC",
        displayName="Laboratory report",
    )
    _add(root, "title").text = report.title
    _add(root, "effectiveTime", value=_ts(report.created_at))
    _add(root, "confidentialityCode", code=report.confidentiality, codeSystem=CONFIDENTIALITY_OID)
    _add(root, "languageCode", code=report.language)
    _add(root, "setId", root=str(report.set_id or report.document_id).upper())
    _add(root, "versionNumber", value=str(report.version))
    _record_target(root, report.patient)
    author = _add(root, "author")
    _add(author, "time", value=_ts(report.created_at))
    assigned = _add(author, "assignedAuthor")
    _organisation_id(assigned, report.laboratory_id)
    _organisation(assigned, "representedOrganization", report)
    custodian = _add(_add(root, "custodian"), "assignedCustodian")
    organisation = _add(custodian, "representedCustodianOrganization")
    _organisation_id(organisation, report.laboratory_id)
    _add(organisation, "name").text = report.laboratory
    for replaced in report.replaces:
        related = _add(root, "relatedDocument", typeCode="RPLC")
        _add(_add(related, "parentDocument"), "id", root=str(replaced).upper())


def _record_target(root: Any, patient: ReportedPatient) -> None:
    role = _add(_add(root, "recordTarget"), "patientRole")
    _add(role, "id", root=oid_of(patient.identifier.system), extension=patient.identifier.value)
    person = _add(role, "patient")
    name = _add(person, "name")
    _add(name, "given").text = patient.given
    _add(name, "family").text = patient.family
    _add(person, "administrativeGenderCode", code=patient.sex, codeSystem=_GENDER_OID)
    if patient.birth_date is not None:
        _add(person, "birthTime", value=patient.birth_date.strftime("%Y%m%d"))


def _organisation_id(parent: Any, organisation_id: uuid.UUID | None) -> None:
    if organisation_id is None:
        _add(parent, "id", nullFlavor="UNK")
    else:
        _add(parent, "id", root=str(organisation_id).upper())


def _organisation(parent: Any, tag: str, report: LaboratoryReport) -> None:
    organisation = _add(parent, tag)
    _organisation_id(organisation, report.laboratory_id)
    _add(organisation, "name").text = report.laboratory


def _section(section: Any, report: LaboratoryReport) -> None:
    results = report.results
    _add(
        section,
        "code",
        code=LAB_SECTION_LOINC,
        codeSystem=LOINC_OID,
        codeSystemName="LOINC",
        displayName="Laboratory studies",
    )
    _add(section, "title").text = "Laboratory results"
    table = _add(_add(section, "text"), "table")
    row = _add(_add(table, "thead"), "tr")
    for heading in _TABLE_HEADINGS:
        _add(row, "th").text = heading
    rows = _add(table, "tbody")
    for index, result in enumerate(results, 1):
        row = _add(rows, "tr", ID=f"result-{index}")
        cells = (
            result.display or result.code,
            result.value,
            result.unit,
            result.reference_range,
            " ".join(result.abnormal_flags),
            _readable(result.observed_at),
        )
        for cell in cells:
            _add(row, "td").text = cell
    for index, result in enumerate(results, 1):
        # The same report written twice is the same document: each result's id is derived.
        result_id = uuid.uuid5(report.document_id, f"result-{index}")
        _entry(_add(section, "entry", typeCode="DRIV"), result, result_id, f"#result-{index}")


def _entry(entry: Any, result: ReportedResult, result_id: uuid.UUID, narrative: str) -> None:
    observation = _add(entry, "observation", classCode="OBS", moodCode="EVN")
    _add(observation, "id", root=str(result_id).upper())
    system = _CODE_SYSTEMS.get(result.code_system)
    _add(
        observation,
        "code",
        code=result.code,
        displayName=result.display,
        **({"codeSystem": system} if system else {"codeSystemName": result.code_system}),
    )
    _add(_add(observation, "text"), "reference", value=narrative)
    _add(observation, "statusCode", code=_STATUS.get(result.status, "completed"))
    if result.observed_at is not None:
        _add(observation, "effectiveTime", value=_ts(result.observed_at))
    number = result.numeric_value
    if number is not None and math.isfinite(number):
        if result.unit:
            _value(observation, "PQ", value=_number(number), unit=result.unit)
        else:
            _value(observation, "REAL", value=_number(number))
    elif result.value:
        _value(observation, "ST").text = result.value
    for flag in result.abnormal_flags:
        if flag in _INTERPRETATIONS:
            _add(observation, "interpretationCode", code=flag, codeSystem=_INTERPRETATION_OID)
    if result.reference_range:
        observed_range = _add(_add(observation, "referenceRange"), "observationRange")
        _add(observed_range, "text").text = result.reference_range


def _value(parent: Any, xsi_type: str, **attributes: str) -> Any:
    element = _add(parent, "value", **attributes)
    element.set(f"{{{XSI}}}type", xsi_type)
    return element


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _ts(moment: dt.datetime) -> str:
    """An HL7 v3 TS to the second, in UTC (Carnet keeps instants in UTC)."""
    return moment.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S+0000")


def _readable(moment: dt.datetime | None) -> str:
    return "" if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _add(parent: Any, tag: str, **attributes: str) -> Any:
    return etree.SubElement(parent, _v3(tag), attributes)


def _v3(tag: str) -> str:
    return f"{{{V3}}}{tag}"
