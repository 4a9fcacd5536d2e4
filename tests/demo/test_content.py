"""Tests of the synthetic document content of the demo population (carnet/demo/documents/)."""

import dataclasses
import datetime as dt
import json
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest

from carnet.demo.documents.catalogue import render, supported_mime_types
from carnet.demo.documents.model import (
    MIME_CDA,
    MIME_FHIR_JSON,
    MIME_PDF,
    MIME_TEXT,
    DocumentContext,
)
from factories.pdf import content_streams

TYPE_KEYS = (
    "lab-report",
    "patient-summary",
    "insurer-summary",
    "imaging-report",
    "medical-certificate",
    "discharge-summary",
    "prescription",
    "consultation-note",
    "vaccination-record",
    "emergency-visit-summary",
    "operative-report",
    "allergies",
    "advance-directives",
    "nursing-note",
    "dental-report",
    "emergency-liaison-file",
    "patient-provided",
)
FHIR_TYPES = ("patient-summary", "vaccination-record", "allergies")
CDA_TYPES = ("patient-summary", "discharge-summary", "consultation-note")
LANGUAGES = ("fr", "en", "de")
DOCUMENT_UUID = "2b1c7a8e-1f3e-4c1d-9b1a-0a1b2c3d4e5f"
CREATED_AT = dt.datetime(2026, 10, 1, 8, 30, tzinfo=dt.UTC)
V3 = "{urn:hl7-org:v3}"

COMBINATIONS = [
    (type_key, mime, LANGUAGES[i % 3])
    for i, (type_key, mime) in enumerate(
        (t, m) for t in TYPE_KEYS for m in (MIME_PDF, MIME_TEXT, MIME_FHIR_JSON, MIME_CDA)
    )
    if mime in (MIME_PDF, MIME_TEXT)
    or (mime == MIME_FHIR_JSON and type_key in FHIR_TYPES)
    or (mime == MIME_CDA and type_key in CDA_TYPES)
]


def make_context(
    type_key: str = "lab-report", language: str = "fr", **changes: Any
) -> DocumentContext:
    context = DocumentContext(
        type_key=type_key,
        title="Document",
        language=language,
        patient_family="Müller",
        patient_given="Léa",
        patient_birth_date=dt.date(1958, 6, 14),
        patient_sex="female",
        patient_identifier="1958061412345",
        author_name="Dr Anne Weber",
        organisation_name="Centre Hospitalier du Nord",
        created_at=CREATED_AT,
        document_id=f"urn:uuid:{DOCUMENT_UUID}",
    )
    return dataclasses.replace(context, **changes)


def pdf_text(pdf: bytes) -> bytes:
    """The decompressed content streams of a PDF, to look for drawn text."""
    return b"\n".join(content_streams(pdf))


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


# --- Every supported combination --------------------------------------------------


def test_supported_mime_types_match_the_brief() -> None:
    for type_key in TYPE_KEYS:
        expected = {MIME_PDF, MIME_TEXT}
        expected |= {MIME_FHIR_JSON} if type_key in FHIR_TYPES else set()
        expected |= {MIME_CDA} if type_key in CDA_TYPES else set()
        assert set(supported_mime_types(type_key)) == expected


@pytest.mark.parametrize(("type_key", "mime", "language"), COMBINATIONS)
def test_every_combination_renders_deterministically(
    type_key: str, mime: str, language: str
) -> None:
    context = make_context(type_key, language)
    first = render(context, mime, random.Random(7))
    again = render(context, mime, random.Random(7))
    assert first
    assert first == again
    assert render(context, mime, random.Random(8)) != first
    if mime == MIME_PDF:
        assert first.startswith(b"%PDF-")
        assert len(first) < 8 * 1024
    elif mime == MIME_TEXT:
        text = first.decode("utf-8")
        assert "MÜLLER Léa" in text
        assert "1958061412345" in text


def test_pdf_carries_the_document_date_not_the_current_time() -> None:
    pdf = render(make_context(), MIME_PDF, random.Random(1))
    assert b"/CreationDate (D:20261001083000" in pdf
    ids = re.findall(rb"/ID \[<([0-9A-F]+)>", pdf)
    assert len(ids) == 1  # content-derived identifier, hence reproducible


@pytest.mark.parametrize(
    ("family", "given", "drawn"),
    [
        ("Müller", "Léa", "MÜLLER Léa"),
        ("Ødegård", "Øystein", "ØDEGÅRD Øystein"),
        ("Kowalski", "Łukasz", "KOWALSKI Lukasz"),
        ("Dvořák", "Œdipe", "DVORÁK OEdipe"),
        ("Nguyễn", "Thị", "NGUYEN Thi"),
    ],
)
def test_names_outside_ascii_render_in_pdf(family: str, given: str, drawn: str) -> None:
    # Core fonts are latin-1: latin-1 letters are kept, others are transliterated.
    context = make_context("medical-certificate", patient_family=family, patient_given=given)
    pdf = render(context, MIME_PDF, random.Random(3))
    assert f"({drawn})".encode("latin-1") in pdf_text(pdf)


# --- Laboratory report ------------------------------------------------------------


def lab_rows(text: str) -> list[dict[str, str]]:
    """The result table of a plain-text lab report, as dicts keyed by column header."""
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("Analysis"))
    spans = [m.span() for m in re.finditer(r"-+", lines[top + 1])]
    header = [lines[top][a:b].strip() for a, b in spans]
    rows = []
    for line in lines[top + 2 : lines.index("", top)]:
        rows.append({h: line[a:b].strip() for h, (a, b) in zip(header, spans, strict=True)})
    return rows


@pytest.mark.parametrize("seed", range(8))
def test_lab_report_lists_5_to_12_analyses_with_consistent_flags(seed: int) -> None:
    text = render(make_context("lab-report", "en"), MIME_TEXT, random.Random(seed)).decode()
    rows = lab_rows(text)
    assert 5 <= len(rows) <= 12
    for row in rows:
        value, reference, flag = float(row["Result"]), row["Reference range"], row["Flag"]
        assert row["Unit"]
        if reference.startswith("<"):
            expected = "H" if value > float(reference[1:]) else ""
        elif reference.startswith(">"):
            expected = "L" if value < float(reference[1:]) else ""
        else:
            low, high = (float(x) for x in reference.split(" - "))
            expected = "L" if value < low else "H" if value > high else ""
        assert flag == expected, row


def test_lab_report_flags_some_values_across_seeds() -> None:
    flags = {
        row["Flag"]
        for seed in range(10)
        for row in lab_rows(
            render(make_context("lab-report", "en"), MIME_TEXT, random.Random(seed)).decode()
        )
    }
    assert flags == {"", "H", "L"}


def test_lab_report_uses_decimal_commas_in_french() -> None:
    text = render(make_context("lab-report", "fr"), MIME_TEXT, random.Random(2)).decode()
    assert "Valeurs de référence" in text
    assert re.search(r"\d,\d", text)


# --- FHIR ------------------------------------------------------------------------


@pytest.mark.parametrize("type_key", FHIR_TYPES)
@pytest.mark.parametrize("seed", range(3))
def test_fhir_document_bundle_is_consistent(type_key: str, seed: int) -> None:
    bundle = json.loads(render(make_context(type_key), MIME_FHIR_JSON, random.Random(seed)))
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "document"
    assert bundle["identifier"]["value"] == f"urn:uuid:{DOCUMENT_UUID}"
    assert bundle["timestamp"] == "2026-10-01T08:30:00+00:00"
    entries = bundle["entry"]
    assert entries[0]["resource"]["resourceType"] == "Composition"
    full_urls = [entry["fullUrl"] for entry in entries]
    assert len(set(full_urls)) == len(full_urls)
    for entry in entries:
        assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", entry["fullUrl"])
        assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"
    assert set(references(bundle)) <= set(full_urls)
    composition = entries[0]["resource"]
    assert composition["subject"]["reference"] in full_urls
    for section in composition["section"]:
        assert section["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
        ET.fromstring(section["text"]["div"])
        assert ("entry" in section) != ("emptyReason" in section)


def test_patient_summary_bundle_has_the_three_sections_and_coded_entries() -> None:
    bundle = json.loads(render(make_context("patient-summary"), MIME_FHIR_JSON, random.Random(4)))
    composition = bundle["entry"][0]["resource"]
    assert composition["type"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "60591-5",
        "display": "Patient summary Document",
    }
    codes = [s["code"]["coding"][0]["code"] for s in composition["section"]]
    assert codes == ["48765-2", "10160-0", "11450-4"]
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "Practitioner", "Organization", "AllergyIntolerance"} <= kinds
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert patient["identifier"][0]["value"] == "1958061412345"
    assert patient["birthDate"] == "1958-06-14"
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "MedicationStatement":
            assert (
                resource["medicationCodeableConcept"]["coding"][0]["system"]
                == "http://www.whocc.no/atc"
            )
        if resource["resourceType"] in ("Condition", "AllergyIntolerance"):
            assert resource["code"]["coding"][0]["system"] == "http://snomed.info/sct"


def test_older_patients_get_problems_and_medications() -> None:
    kinds: set[str] = set()
    for seed in range(10):
        bundle = json.loads(
            render(make_context("patient-summary"), MIME_FHIR_JSON, random.Random(seed))
        )
        kinds |= {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"MedicationStatement", "Condition"} <= kinds


def test_vaccination_bundle_lists_completed_immunizations_up_to_the_document_date() -> None:
    bundle = json.loads(
        render(make_context("vaccination-record"), MIME_FHIR_JSON, random.Random(5))
    )
    assert bundle["entry"][0]["resource"]["type"]["coding"][0]["code"] == "82593-5"
    immunizations = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Immunization"
    ]
    assert immunizations
    for immunization in immunizations:
        assert immunization["status"] == "completed"
        assert immunization["vaccineCode"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/cvx"
        assert immunization["lotNumber"]
        assert "1958-06-14" <= immunization["occurrenceDateTime"] <= "2026-10-01"


def test_a_newborn_has_an_empty_vaccination_section() -> None:
    context = make_context("vaccination-record", patient_birth_date=dt.date(2026, 9, 20))
    bundle = json.loads(render(context, MIME_FHIR_JSON, random.Random(1)))
    section = bundle["entry"][0]["resource"]["section"][0]
    assert "emptyReason" in section
    assert all(e["resource"]["resourceType"] != "Immunization" for e in bundle["entry"])


def test_document_without_author_or_organisation_is_authored_by_the_patient() -> None:
    context = make_context("allergies", author_name=None, organisation_name=None)
    bundle = json.loads(render(context, MIME_FHIR_JSON, random.Random(1)))
    composition = bundle["entry"][0]["resource"]
    assert composition["author"] == [composition["subject"]]
    assert "custodian" not in composition


# --- CDA -----------------------------------------------------------------------


@pytest.mark.parametrize("type_key", CDA_TYPES)
def test_cda_is_a_well_formed_clinical_document(type_key: str) -> None:
    xml = render(make_context(type_key), MIME_CDA, random.Random(6))
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(xml)
    assert root.tag == f"{V3}ClinicalDocument"
    type_id = root.find(f"{V3}typeId")
    assert type_id is not None
    assert type_id.attrib == {"root": "2.16.840.1.113883.1.3", "extension": "POCD_HD000040"}
    document_id = root.find(f"{V3}id")
    assert document_id is not None
    assert document_id.get("root") == DOCUMENT_UUID.upper()
    loinc = {
        "patient-summary": "60591-5",
        "discharge-summary": "18842-5",
        "consultation-note": "11488-4",
    }
    code = root.find(f"{V3}code")
    assert code is not None
    assert code.get("code") == loinc[type_key]
    assert code.get("codeSystem") == "2.16.840.1.113883.6.1"
    patient_id = root.find(f"{V3}recordTarget/{V3}patientRole/{V3}id")
    assert patient_id is not None
    assert patient_id.get("extension") == "1958061412345"
    assert (
        root.findtext(f"{V3}recordTarget/{V3}patientRole/{V3}patient/{V3}name/{V3}family")
        == "Müller"
    )
    assert root.find(f"{V3}author/{V3}assignedAuthor") is not None
    assert root.find(f"{V3}custodian") is not None
    sections = root.findall(f"{V3}component/{V3}structuredBody/{V3}component/{V3}section")
    assert sections
    for section in sections:
        assert section.find(f"{V3}code") is not None
        assert section.find(f"{V3}text") is not None


def test_cda_patient_summary_sections_and_french_nir() -> None:
    context = make_context("patient-summary", patient_identifier="258067511512345")
    root = ET.fromstring(render(context, MIME_CDA, random.Random(2)))
    patient_id = root.find(f"{V3}recordTarget/{V3}patientRole/{V3}id")
    assert patient_id is not None
    assert patient_id.get("root") == "1.2.250.1.213.1.4.8"
    sections = root.findall(f"{V3}component/{V3}structuredBody/{V3}component/{V3}section/{V3}code")
    assert [s.get("code") for s in sections] == ["48765-2", "10160-0", "11450-4"]


def test_cda_escapes_markup_in_names() -> None:
    context = make_context("consultation-note", organisation_name="Cabinet <Dupont & Fils>")
    root = ET.fromstring(render(context, MIME_CDA, random.Random(1)))
    assert root.findtext(
        f"{V3}custodian/{V3}assignedCustodian/{V3}representedCustodianOrganization/{V3}name"
    ) == ("Cabinet <Dupont & Fils>")


# --- Refusals ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "mime"),
    [
        (make_context("lab-report"), MIME_FHIR_JSON),
        (make_context("lab-report"), MIME_CDA),
        (make_context("vaccination-record"), MIME_CDA),
        (make_context("discharge-summary"), MIME_FHIR_JSON),
        (make_context("patient-summary"), "image/png"),
        (make_context("unknown-type"), MIME_PDF),
        (make_context(language="it"), MIME_PDF),
        (make_context(created_at=dt.datetime(2026, 10, 1, 8, 30)), MIME_PDF),  # noqa: DTZ001
    ],
)
def test_unsupported_requests_raise_value_error(context: DocumentContext, mime: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        render(context, mime, random.Random(1))
