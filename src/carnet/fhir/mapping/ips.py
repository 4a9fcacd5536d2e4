"""The International Patient Summary: a FHIR document Bundle built from the facts a caller sees.

HL7 IPS IG (http://hl7.org/fhir/uv/ips, 2.0): a ``Bundle`` of type ``document`` whose first
entry is a ``Composition`` (LOINC 60591-5) with the required sections — allergies (48765-2),
medication (10160-0), problems (11450-4) — each holding entries or saying why it has none
(``emptyReason``), and the optional immunizations (11369-6) and results (30954-2) when there is
something to put there. ``summary_problems`` states the profile rules the Bundle is held to,
beyond what the R4 structure (fhir.resources) checks.
"""

from __future__ import annotations

import datetime as dt
import html
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from carnet.clinical.facts import Fact
from carnet.clinical.models import FactKind
from carnet.fhir.mapping.clinical import clinical_resource

IPS = "http://hl7.org/fhir/uv/ips/StructureDefinition"
LOINC = "http://loinc.org"
_EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
_XHTML = "http://www.w3.org/1999/xhtml"


@dataclass(frozen=True)
class Section:
    """One IPS section: its LOINC code, title, the kinds of fact it lists, whether required."""

    code: str
    title: str
    kinds: tuple[FactKind, ...]
    required: bool
    category: str | None = None


SECTIONS = (
    Section("48765-2", "Allergies and Intolerances", (FactKind.ALLERGY,), required=True),
    Section(
        "10160-0",
        "Medication Summary",
        (FactKind.MEDICATION_STATEMENT, FactKind.MEDICATION_REQUEST),
        required=True,
    ),
    Section("11450-4", "Problem List", (FactKind.CONDITION,), required=True),
    Section("11369-6", "History of Immunizations", (FactKind.IMMUNIZATION,), required=False),
    Section(
        "30954-2",
        "Relevant diagnostic tests/laboratory data",
        (FactKind.OBSERVATION,),
        required=False,
        category="laboratory",
    ),
)
SUMMARY_KINDS = tuple(dict.fromkeys(kind for section in SECTIONS for kind in section.kinds))


def patient_summary(
    patient: dict[str, Any], facts: Sequence[Fact], *, base_url: str, now: dt.datetime
) -> dict[str, Any]:
    """The IPS document Bundle of ``patient`` (its FHIR resource) with ``facts``."""
    patient_url = f"{base_url}/Patient/{patient['id']}"
    author_id = "carnet"
    author_url = f"{base_url}/Organization/{author_id}"
    when = now.isoformat().replace("+00:00", "Z")
    entries: list[dict[str, Any]] = []
    sections: list[dict[str, Any]] = []
    for section in SECTIONS:
        chosen = [
            fact
            for fact in facts
            if fact.kind in section.kinds
            and (section.category is None or fact.category == section.category)
        ]
        if not chosen and not section.required:
            continue
        resources = [clinical_resource(fact, base_url=base_url) for fact in chosen]
        urls = [f"{base_url}/{r['resourceType']}/{r['id']}" for r in resources]
        entries += [
            {"fullUrl": url, "resource": resource}
            for url, resource in zip(urls, resources, strict=True)
        ]
        sections.append(_section(section, chosen, urls))
    composition = {
        "resourceType": "Composition",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [f"{IPS}/Composition-uv-ips"]},
        "status": "final",
        "type": {
            "coding": [{"system": LOINC, "code": "60591-5", "display": "Patient summary Document"}]
        },
        "subject": {"reference": patient_url},
        "date": when,
        "author": [{"reference": author_url}],
        "title": "International Patient Summary",
        "section": sections,
    }
    patient = {**patient, "meta": {"profile": [f"{IPS}/Patient-uv-ips"]}}
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [f"{IPS}/Bundle-uv-ips"]},
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
        "type": "document",
        "timestamp": when,
        "entry": [
            {"fullUrl": f"urn:uuid:{composition['id']}", "resource": composition},
            {"fullUrl": patient_url, "resource": patient},
            {
                "fullUrl": author_url,
                "resource": {"resourceType": "Organization", "id": author_id, "name": "Carnet"},
            },
            *entries,
        ],
    }


def _section(section: Section, facts: Sequence[Fact], urls: Sequence[str]) -> dict[str, Any]:
    made: dict[str, Any] = {
        "title": section.title,
        "code": {"coding": [{"system": LOINC, "code": section.code}]},
        "text": {"status": "generated", "div": _narrative(facts)},
    }
    if facts:
        made["entry"] = [{"reference": url} for url in urls]
    else:
        made["emptyReason"] = {
            "coding": [{"system": _EMPTY_REASON, "code": "unavailable", "display": "Unavailable"}]
        }
    return made


def _narrative(facts: Sequence[Fact]) -> str:
    if not facts:
        return f'<div xmlns="{_XHTML}"><p>No information available.</p></div>'
    items = "".join(
        f"<li>{html.escape(fact.display or fact.code)}"
        f"{' — ' + fact.started_at.date().isoformat() if fact.started_at else ''}</li>"
        for fact in facts
    )
    return f'<div xmlns="{_XHTML}"><ul>{items}</ul></div>'


_ALLOWED = {
    "48765-2": {"AllergyIntolerance"},
    "10160-0": {"MedicationStatement", "MedicationRequest"},
    "11450-4": {"Condition"},
    "11369-6": {"Immunization"},
    "30954-2": {"Observation", "DiagnosticReport"},
}


def summary_problems(bundle: dict[str, Any]) -> list[str]:  # noqa: PLR0912 — one rule a branch
    """What in ``bundle`` breaks the IPS profiles' rules (Bundle-uv-ips, Composition-uv-ips):
    empty when it holds to them."""
    problems: list[str] = []
    if bundle.get("type") != "document":
        problems.append("Bundle.type must be document")
    if not bundle.get("identifier") or not bundle.get("timestamp"):
        problems.append("Bundle.identifier and Bundle.timestamp are required")
    entries = bundle.get("entry") or []
    urls = [entry.get("fullUrl") for entry in entries]
    if None in urls or len(set(urls)) != len(urls):
        problems.append("every entry needs a fullUrl, each distinct")
    by_url = {entry.get("fullUrl"): entry.get("resource") or {} for entry in entries}
    composition = (entries[0].get("resource") or {}) if entries else {}
    if composition.get("resourceType") != "Composition":
        return [*problems, "the first entry must be the Composition"]
    codings = (composition.get("type") or {}).get("coding") or [{}]
    if (codings[0].get("system"), codings[0].get("code")) != (LOINC, "60591-5"):
        problems.append("Composition.type must be LOINC 60591-5")
    for element in ("status", "date", "author", "title", "subject"):
        if not composition.get(element):
            problems.append(f"Composition.{element} is required")
    subject = by_url.get((composition.get("subject") or {}).get("reference"))
    if (subject or {}).get("resourceType") != "Patient":
        problems.append("Composition.subject must resolve to the Patient entry")
    for author in composition.get("author") or []:
        if author.get("reference") not in by_url:
            problems.append("Composition.author must resolve in the Bundle")
    sections = {
        ((s.get("code") or {}).get("coding") or [{}])[0].get("code"): s
        for s in composition.get("section") or []
    }
    for required in ("48765-2", "10160-0", "11450-4"):
        if required not in sections:
            problems.append(f"the section {required} is required")
    base = (composition.get("subject") or {}).get("reference", "").rsplit("/Patient/", 1)[0]
    for code, section in sections.items():
        if not (section.get("text") or {}).get("div"):
            problems.append(f"section {code} needs a narrative")
        references = [e.get("reference") for e in section.get("entry") or []]
        if not references and not section.get("emptyReason"):
            problems.append(f"section {code} needs entries or an emptyReason")
        for reference in references:
            resource = by_url.get(reference)
            if resource is None:
                problems.append(f"section {code}: {reference} does not resolve")
            elif resource.get("resourceType") not in _ALLOWED.get(str(code), set()):
                problems.append(f"section {code} may not hold a {resource.get('resourceType')}")
            else:
                patient = resource.get("subject") or resource.get("patient") or {}
                if by_url.get(f"{base}/{patient.get('reference')}") is not subject:
                    problems.append(f"{reference} is not about the Composition's subject")
    return problems
