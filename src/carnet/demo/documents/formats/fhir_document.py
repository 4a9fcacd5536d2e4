"""FHIR R4 document Bundle of a demo document (``application/fhir+json``).

A ``Composition`` first, then Patient, Practitioner and Organization, then one entry per
coded fact (AllergyIntolerance with SNOMED CT, MedicationStatement with ATC, Condition,
Immunization with CVX), as FHIR R4 "Documents" (https://hl7.org/fhir/R4/documents.html)
asks. Available for patient summary, vaccination record and allergies.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable, Sequence
from typing import Any, Final

from carnet.demo.documents.clinical import (
    Vaccination,
    allergy_section,
    criticality,
    draw_allergies,
    draw_summary,
    draw_vaccinations,
    medication_section,
    problem_section,
    vaccination_section,
)
from carnet.demo.documents.formats.narrative import xhtml_div
from carnet.demo.documents.model import (
    DocumentContext,
    Section,
    draw_uuid,
    identifier_system,
    split_name,
    tr,
)
from carnet.demo.documents.pools import (
    DOCUMENT_LOINC,
    LOINC_DISPLAY,
    NO_KNOWN_ALLERGY,
    Allergen,
    Coded,
    Medicine,
    Problem,
)

LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
ATC: Final = "http://www.whocc.no/atc"
CVX: Final = "http://hl7.org/fhir/sid/cvx"

_Json = dict[str, Any]


def _coding(system: str, code: str, display: str) -> _Json:
    """A CodeableConcept with one coding."""
    return {"coding": [{"system": system, "code": code, "display": display}]}


def _loinc(code: str) -> _Json:
    """A LOINC CodeableConcept with its display."""
    return _coding(LOINC, code, LOINC_DISPLAY[code])


def _status(system_tail: str, code: str) -> _Json:
    """A CodeableConcept from an HL7 terminology code system."""
    return {
        "coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{system_tail}", "code": code}]
    }


def _human_name(full: str) -> _Json:
    """A FHIR HumanName from "Dr Anne Weber"."""
    prefix, given, family = split_name(full)
    name: _Json = {"text": full, "family": family}
    if given:
        name["given"] = given
    if prefix:
        name["prefix"] = [prefix]
    return name


class _FhirDocument:
    """Builds a FHIR R4 document Bundle: Composition, Patient, authors, section entries."""

    def __init__(self, ctx: DocumentContext, rng: random.Random) -> None:
        """Allocate the Composition and add Patient, Practitioner and Organization entries."""
        self.ctx = ctx
        self.rng = rng
        self.entries: list[_Json] = []
        self.sections: list[_Json] = []
        self.composition_ref = f"urn:uuid:{draw_uuid(rng)}"
        self.patient_ref = self.add(self._patient())
        self.author_refs: list[str] = []
        self.custodian_ref: str | None = None
        if ctx.author_name:
            practitioner = {"resourceType": "Practitioner", "name": [_human_name(ctx.author_name)]}
            self.author_refs.append(self.add(practitioner))
        if ctx.organisation_name:
            organisation = {"resourceType": "Organization", "name": ctx.organisation_name}
            self.custodian_ref = self.add(organisation)
            self.author_refs.append(self.custodian_ref)

    def _patient(self) -> _Json:
        """The Patient resource of the context."""
        ctx = self.ctx
        gender = ctx.patient_sex if ctx.patient_sex in ("female", "male", "other") else "unknown"
        return {
            "resourceType": "Patient",
            "identifier": [
                {
                    "system": identifier_system(ctx.patient_identifier),
                    "value": ctx.patient_identifier,
                }
            ],
            "name": [{"family": ctx.patient_family, "given": [ctx.patient_given]}],
            "gender": gender,
            "birthDate": ctx.patient_birth_date.isoformat(),
        }

    def add(self, resource: _Json) -> str:
        """Give ``resource`` an id, add it as an entry, return its fullUrl."""
        resource_id = draw_uuid(self.rng)
        full_url = f"urn:uuid:{resource_id}"
        self.entries.append(
            {
                "fullUrl": full_url,
                "resource": {
                    "resourceType": resource["resourceType"],
                    "id": resource_id,
                    **resource,
                },
            }
        )
        return full_url

    def section(self, section: Section, resources: Sequence[_Json]) -> None:
        """Add a Composition section with its narrative and entries."""
        assert section.loinc is not None  # every FHIR section has a LOINC code
        data: _Json = {
            "title": section.heading,
            "code": _loinc(section.loinc),
            "text": {"status": "generated", "div": xhtml_div(section)},
        }
        if resources:
            data["entry"] = [{"reference": self.add(r)} for r in resources]
        else:
            data["emptyReason"] = _status("list-empty-reason", "nilknown")
        self.sections.append(data)

    def bundle(self) -> _Json:
        """The finished Bundle, Composition first."""
        ctx = self.ctx
        timestamp = ctx.created_at.astimezone(dt.UTC).isoformat(timespec="seconds")
        composition: _Json = {
            "resourceType": "Composition",
            "id": self.composition_ref.removeprefix("urn:uuid:"),
            "language": ctx.language,
            "status": "final",
            "type": _loinc(DOCUMENT_LOINC[ctx.type_key]),
            "subject": {"reference": self.patient_ref},
            "date": timestamp,
            "author": [{"reference": ref} for ref in self.author_refs or [self.patient_ref]],
            "title": ctx.title,
            "confidentiality": "N",
            "section": self.sections,
        }
        if self.custodian_ref:
            composition["custodian"] = {"reference": self.custodian_ref}
        return {
            "resourceType": "Bundle",
            "language": ctx.language,
            "identifier": {"system": "urn:ietf:rfc:3986", "value": ctx.document_id},
            "type": "document",
            "timestamp": timestamp,
            "entry": [{"fullUrl": self.composition_ref, "resource": composition}, *self.entries],
        }


def _allergy_resources(
    doc: _FhirDocument, allergies: Sequence[tuple[Allergen, Coded]]
) -> list[_Json]:
    """AllergyIntolerance resources, or one "no known allergy" statement."""
    clinical = _status("allergyintolerance-clinical", "active")
    if not allergies:
        concept = NO_KNOWN_ALLERGY
        return [
            {
                "resourceType": "AllergyIntolerance",
                "clinicalStatus": clinical,
                "code": _coding(SNOMED, concept.code, concept.display),
                "patient": {"reference": doc.patient_ref},
            }
        ]
    return [
        {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": clinical,
            "verificationStatus": _status("allergyintolerance-verification", "confirmed"),
            "type": "allergy",
            "category": [allergen.category],
            "criticality": criticality(reaction),
            "code": _coding(SNOMED, allergen.concept.code, allergen.concept.display),
            "patient": {"reference": doc.patient_ref},
            "reaction": [{"manifestation": [_coding(SNOMED, reaction.code, reaction.display)]}],
        }
        for allergen, reaction in allergies
    ]


def _medication_resources(
    doc: _FhirDocument, medications: Sequence[tuple[Medicine, dt.date]]
) -> list[_Json]:
    """MedicationStatement resources coded with ATC."""
    return [
        {
            "resourceType": "MedicationStatement",
            "status": "active",
            "medicationCodeableConcept": {
                **_coding(ATC, m.atc, m.name[0]),
                "text": tr(m.name, doc.ctx.language),
            },
            "subject": {"reference": doc.patient_ref},
            "effectivePeriod": {"start": start.isoformat()},
            "dosage": [{"text": tr(m.dosage, doc.ctx.language)}],
        }
        for m, start in medications
    ]


def _condition_resources(
    doc: _FhirDocument, problems: Sequence[tuple[Problem, dt.date]]
) -> list[_Json]:
    """Condition resources coded with SNOMED CT."""
    return [
        {
            "resourceType": "Condition",
            "clinicalStatus": _status("condition-clinical", "active"),
            "verificationStatus": _status("condition-ver-status", "confirmed"),
            "category": [_status("condition-category", "problem-list-item")],
            "code": {
                **_coding(SNOMED, p.concept.code, p.concept.display),
                "text": tr(p.concept.label, doc.ctx.language),
            },
            "subject": {"reference": doc.patient_ref},
            "onsetDateTime": onset.isoformat(),
        }
        for p, onset in problems
    ]


def _immunization_resources(doc: _FhirDocument, vaccinations: Sequence[Vaccination]) -> list[_Json]:
    """Immunization resources coded with CVX."""
    return [
        {
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": {
                **_coding(CVX, v.vaccine.code, v.vaccine.display),
                "text": tr(v.vaccine.label, doc.ctx.language),
            },
            "patient": {"reference": doc.patient_ref},
            "occurrenceDateTime": v.date.isoformat(),
            "lotNumber": v.lot,
            "protocolApplied": [{"doseNumberPositiveInt": v.dose}],
        }
        for v in vaccinations
    ]


def _fhir_patient_summary(ctx: DocumentContext, rng: random.Random) -> _Json:
    """Patient summary Bundle: allergies, medications, problems."""
    summary = draw_summary(ctx, rng)
    doc = _FhirDocument(ctx, rng)
    lang = ctx.language
    doc.section(
        allergy_section(lang, summary.allergies), _allergy_resources(doc, summary.allergies)
    )
    doc.section(
        medication_section(lang, summary.medications),
        _medication_resources(doc, summary.medications),
    )
    doc.section(
        problem_section(lang, summary.problems), _condition_resources(doc, summary.problems)
    )
    return doc.bundle()


def _fhir_vaccination_record(ctx: DocumentContext, rng: random.Random) -> _Json:
    """Immunization summary Bundle."""
    vaccinations = draw_vaccinations(ctx, rng)
    doc = _FhirDocument(ctx, rng)
    doc.section(
        vaccination_section(ctx.language, vaccinations), _immunization_resources(doc, vaccinations)
    )
    return doc.bundle()


def _fhir_allergies(ctx: DocumentContext, rng: random.Random) -> _Json:
    """Allergies and intolerances Bundle."""
    allergies = draw_allergies(rng, at_least_one=True)
    doc = _FhirDocument(ctx, rng)
    doc.section(allergy_section(ctx.language, allergies), _allergy_resources(doc, allergies))
    return doc.bundle()


FHIR_BUILDERS: Final[dict[str, Callable[[DocumentContext, random.Random], _Json]]] = {
    "patient-summary": _fhir_patient_summary,
    "vaccination-record": _fhir_vaccination_record,
    "allergies": _fhir_allergies,
}


def render_fhir(ctx: DocumentContext, rng: random.Random) -> bytes:
    """Render a FHIR R4 document Bundle as JSON."""
    return json.dumps(FHIR_BUILDERS[ctx.type_key](ctx, rng), ensure_ascii=False, indent=2).encode(
        "utf-8"
    )
