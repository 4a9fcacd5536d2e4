"""HL7 CDA R2 ``ClinicalDocument`` of a demo document (``text/xml``).

Header (realm, type id, LOINC document code, confidentiality, language), record target
with the national identifier, author and custodian, then one narrative section per
content section. Available for patient summary, discharge summary and consultation note.
"""

from __future__ import annotations

import datetime as dt
import random
import xml.etree.ElementTree as ET  # builds documents only; nothing is parsed
from collections.abc import Sequence
from typing import Final

from carnet.demo.documents.formats.narrative import append_narrative
from carnet.demo.documents.model import (
    DocumentContext,
    Section,
    draw_uuid,
    identifier_system,
    oid_of,
    split_name,
)
from carnet.demo.documents.pools import DOCUMENT_LOINC, LOINC_DISPLAY
from carnet.patients.identifiers import FR_NIR

_LOINC_OID: Final = "2.16.840.1.113883.6.1"
_HL7_V3: Final = "urn:hl7-org:v3"
_XML_DECLARATION: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'

CDA_TYPES: Final = frozenset({"patient-summary", "discharge-summary", "consultation-note"})


def _cda_ts(moment: dt.datetime) -> str:
    """An HL7 v3 TS value with seconds and UTC offset."""
    return moment.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S+0000")


def _cda_code(parent: ET.Element, tag: str, code: str) -> None:
    """A LOINC-coded ``code`` element."""
    ET.SubElement(
        parent,
        tag,
        code=code,
        codeSystem=_LOINC_OID,
        codeSystemName="LOINC",
        displayName=LOINC_DISPLAY.get(code, ""),
    )


def _cda_name(parent: ET.Element, prefix: str | None, given: Sequence[str], family: str) -> None:
    """A PN ``name`` element."""
    name = ET.SubElement(parent, "name")
    if prefix:
        ET.SubElement(name, "prefix").text = prefix
    for part in given:
        ET.SubElement(name, "given").text = part
    ET.SubElement(name, "family").text = family


def _cda_document_id(document_id: str) -> dict[str, str]:
    """II attributes of the document id: the UUID of ``urn:uuid:`` ids, else root + extension."""
    if document_id.startswith("urn:uuid:"):
        return {"root": document_id.removeprefix("urn:uuid:").upper()}
    return {"root": oid_of("https://carnet.health/document"), "extension": document_id}


def _cda_header(root: ET.Element, ctx: DocumentContext) -> None:
    """Document-level header elements up to languageCode."""
    realm = "FR" if identifier_system(ctx.patient_identifier) == FR_NIR else "LU"
    ET.SubElement(root, "realmCode", code=realm)
    ET.SubElement(root, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    ET.SubElement(root, "id", _cda_document_id(ctx.document_id))
    _cda_code(root, "code", DOCUMENT_LOINC[ctx.type_key])
    ET.SubElement(root, "title").text = ctx.title
    ET.SubElement(root, "effectiveTime", value=_cda_ts(ctx.created_at))
    ET.SubElement(root, "confidentialityCode", code="N", codeSystem="2.16.840.1.113883.5.25")
    ET.SubElement(root, "languageCode", code=ctx.language)


def _cda_record_target(root: ET.Element, ctx: DocumentContext) -> None:
    """recordTarget/patientRole with the national identifier and demographics."""
    role = ET.SubElement(ET.SubElement(root, "recordTarget"), "patientRole")
    ET.SubElement(
        role,
        "id",
        root=oid_of(identifier_system(ctx.patient_identifier)),
        extension=ctx.patient_identifier,
    )
    patient = ET.SubElement(role, "patient")
    _cda_name(patient, None, [ctx.patient_given], ctx.patient_family)
    gender = {"female": "F", "male": "M"}.get(ctx.patient_sex, "UN")
    ET.SubElement(
        patient, "administrativeGenderCode", code=gender, codeSystem="2.16.840.1.113883.5.1"
    )
    ET.SubElement(patient, "birthTime", value=ctx.patient_birth_date.strftime("%Y%m%d"))


def _cda_organisation(parent: ET.Element, tag: str, name: str, rng: random.Random) -> None:
    """An organisation element with a UUID id and a name."""
    organisation = ET.SubElement(parent, tag)
    ET.SubElement(organisation, "id", root=draw_uuid(rng).upper())
    ET.SubElement(organisation, "name").text = name


def _cda_participants(root: ET.Element, ctx: DocumentContext, rng: random.Random) -> None:
    """author (person and/or organisation) and custodian."""
    author = ET.SubElement(root, "author")
    ET.SubElement(author, "time", value=_cda_ts(ctx.created_at))
    assigned = ET.SubElement(author, "assignedAuthor")
    ET.SubElement(assigned, "id", root=draw_uuid(rng).upper())
    if ctx.author_name:
        _cda_name(ET.SubElement(assigned, "assignedPerson"), *split_name(ctx.author_name))
    if ctx.organisation_name:
        _cda_organisation(assigned, "representedOrganization", ctx.organisation_name, rng)
    custodian = ET.SubElement(ET.SubElement(root, "custodian"), "assignedCustodian")
    _cda_organisation(
        custodian, "representedCustodianOrganization", ctx.organisation_name or "Carnet", rng
    )


def _cda_body(root: ET.Element, sections: Sequence[Section]) -> None:
    """component/structuredBody with one narrative section per content section."""
    body = ET.SubElement(ET.SubElement(root, "component"), "structuredBody")
    for section in sections:
        element = ET.SubElement(ET.SubElement(body, "component"), "section")
        if section.loinc:
            _cda_code(element, "code", section.loinc)
        ET.SubElement(element, "title").text = section.heading
        append_narrative(ET.SubElement(element, "text"), section, "paragraph")


def render_cda(ctx: DocumentContext, sections: Sequence[Section], rng: random.Random) -> bytes:
    """Render an HL7 CDA R2 ClinicalDocument."""
    root = ET.Element("ClinicalDocument", {"xmlns": _HL7_V3})
    _cda_header(root, ctx)
    _cda_record_target(root, ctx)
    _cda_participants(root, ctx, rng)
    _cda_body(root, sections)
    ET.indent(root)
    return _XML_DECLARATION + ET.tostring(root, encoding="unicode").encode("utf-8") + b"\n"
