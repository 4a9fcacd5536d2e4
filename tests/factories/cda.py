"""CDA R2 documents for the tests: the shared datasets' documents, fitted to a test dossier."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from lxml import etree

from carnet.cda.header import LOINC_OID, read_header
from carnet.cda.parsing import V3
from carnet.cda.patient import oid_of
from carnet.cda.writing import LaboratoryReport, ReportedPatient, ReportedResult
from carnet.documents.metadata import DocumentMetadata
from carnet.documents.models import Confidentiality
from carnet.patients import identifiers
from conftest import DATASETS

CDA_FILES = sorted(
    [
        *(DATASETS / "hl7-c-cda-examples").glob("*.xml"),
        *(DATASETS / "ms-fhir-converter" / "ccda").glob("*.ccda"),
    ]
)
EMBEDDED_PDF = (
    DATASETS
    / "hl7-c-cda-examples"
    / ("Unstructured__CDA_with_Embedded_PDF_1__Unstructured_Document_embed.xml")
)
CCD = DATASETS / "hl7-c-cda-examples" / "CCD__CCD_1__CCD.xml"


def dataset(name: str) -> Path:
    """The dataset CDA file named ``name`` (hl7-c-cda-examples or ms-fhir-converter/ccda)."""
    return next(path for path in CDA_FILES if path.name == name)


def minimal(header: str = "", body: str | None = None, *, root: str = "") -> bytes:
    """The smallest CDA R2 document POCD_MT000040 allows, with ``header`` after the
    confidentialityCode and ``body`` as the component's content."""
    body = body or (
        "<structuredBody><component><section><title>A</title><text>a</text></section>"
        "</component></structuredBody>"
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" {root}>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <id root="1.2.3.4" extension="doc-1"/>
  <code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/>
  <effectiveTime value="20260530100000+0200"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  {header}
  <recordTarget><patientRole><id root="1.2.3" extension="7"/></patientRole></recordTarget>
  <author><time value="20260530"/><assignedAuthor><id root="1.2.3.5"/></assignedAuthor></author>
  <custodian><assignedCustodian><representedCustodianOrganization><id root="1.2.3.6"/>
  </representedCustodianOrganization></assignedCustodian></custodian>
  <component>{body}</component>
</ClinicalDocument>""".encode()


def fitted(
    content: bytes,
    *,
    matricule: str,
    system: str = identifiers.LU_MATRICULE,
    loinc: str | None = None,
    attributes: dict[str, dict[str, str]] | None = None,
) -> bytes:
    """The document about the patient with national identifier ``matricule`` (its recordTarget's
    ids replaced by that one), its code made LOINC ``loinc`` if given, and the header elements
    named in ``attributes`` given those attributes (``{"confidentialityCode": {"code": "R"}}``).

    The datasets are US documents: their patients are named by US ids no dossier holds.
    """
    root = etree.fromstring(content, etree.XMLParser(resolve_entities=False, no_network=True))
    for role in root.iterfind(f"{{{V3}}}recordTarget/{{{V3}}}patientRole"):
        ids = role.findall(f"{{{V3}}}id")
        for element in ids[1:]:
            role.remove(element)
        ids[0].attrib.clear()
        ids[0].set("root", oid_of(system))
        ids[0].set("extension", matricule)
    if loinc is not None:
        code = root.find(f"{{{V3}}}code")
        assert code is not None
        code.attrib.clear()
        code.set("code", loinc)
        code.set("codeSystem", LOINC_OID)
    for name, values in (attributes or {}).items():
        found = root.find(f"{{{V3}}}{name}")
        assert found is not None
        for key, value in values.items():
            found.set(key, value)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def metadata_of(content: bytes, **changes: object) -> DocumentMetadata:
    """The metadata a sender would send with the document: what its header says."""
    header = read_header(content)
    fields: dict[str, object] = {
        "type_system": header.code.system_uri,
        "type_code": header.code.code,
        "title": header.title or "Clinical document",
        "mime_type": "text/xml",
        "created_at": header.effective_time.at,
        "language": header.language,
        "confidentiality": Confidentiality(header.confidentiality),
    }
    fields.update(changes)
    return DocumentMetadata(**fields)  # type: ignore[arg-type]


DOCUMENT = uuid.UUID("0b8e6c8e-2d55-4c0e-9d7c-8f3b3f7a1c11")


def report(matricule: str, **changes: object) -> LaboratoryReport:
    fields: dict[str, object] = {
        "document_id": DOCUMENT,
        "title": "Bilan sanguin",
        "created_at": dt.datetime(2026, 5, 30, 8, 15, tzinfo=dt.UTC),
        "patient": ReportedPatient(
            identifier=identifiers.validate(identifiers.LU_MATRICULE, matricule),
            family="Weber",
            given="Léa",
            birth_date=dt.date(1980, 5, 17),
            sex="F",
        ),
        "laboratory": "Laboratoire national de santé",
        "laboratory_id": uuid.UUID("6a1d6c1e-8f0e-4a55-b1f1-3c3a1b0f9e22"),
        "language": "fr",
        "results": (
            ReportedResult(
                code_system="LN",
                code="718-7",
                display="Hémoglobine",
                value="14.2",
                numeric_value=14.2,
                unit="g/dL",
                reference_range="12.0-16.0",
                observed_at=dt.datetime(2026, 5, 30, 7, 0, tzinfo=dt.UTC),
            ),
            ReportedResult(
                code_system="LN",
                code="2345-7",
                display="Glucose",
                value="7.9",
                numeric_value=7.9,
                unit="mmol/L",
                reference_range="3.9-6.1",
                abnormal_flags=("H",),
                status="P",
            ),
            ReportedResult(
                code_system="L", code="COMMENT", display="Remarque", value="Échantillon hémolysé"
            ),
        ),
    }
    fields.update(changes)
    return LaboratoryReport(**fields)  # type: ignore[arg-type]
