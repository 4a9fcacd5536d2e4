"""The directory as FHIR R4 ``Practitioner``, ``PractitionerRole`` and ``Organization``.

http://hl7.org/fhir/R4/practitioner.html, practitionerrole.html and organization.html. Each
professional has one PractitionerRole — their profession (and specialty) for the organisation
they act for — whose id is the professional's.
"""

from __future__ import annotations

from typing import Any

from carnet.directory.models import Organisation, Professional

PROFESSION_SYSTEM = "https://carnet.health/fhir/CodeSystem/profession"
SPECIALTY_SYSTEM = "https://carnet.health/fhir/CodeSystem/specialty"
ORGANISATION_KIND_SYSTEM = "https://carnet.health/fhir/CodeSystem/organisation-kind"


def practitioner(professional: Professional) -> dict[str, Any]:
    """The Practitioner resource of a professional; their profession is a qualification."""
    return {
        "resourceType": "Practitioner",
        "id": str(professional.id),
        "identifier": [_identifier(professional)],
        "active": professional.active,
        "name": [{"family": professional.family, "given": [professional.given]}],
        "qualification": [{"code": _concept(PROFESSION_SYSTEM, professional.profession.value)}],
    }


def practitioner_role(professional: Professional) -> dict[str, Any]:
    """The PractitionerRole of a professional: profession, specialty and organisation."""
    resource: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": str(professional.id),
        "active": professional.active,
        "practitioner": {
            "reference": f"Practitioner/{professional.id}",
            "display": f"{professional.given} {professional.family}",
        },
        "code": [_concept(PROFESSION_SYSTEM, professional.profession.value)],
    }
    if professional.organisation is not None:
        resource["organization"] = {
            "reference": f"Organization/{professional.organisation.id}",
            "display": professional.organisation.name,
        }
    if professional.specialty:
        resource["specialty"] = [_concept(SPECIALTY_SYSTEM, professional.specialty)]
    return resource


def organization(organisation: Organisation) -> dict[str, Any]:
    """The Organization resource of an organisation; its kind is its type."""
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": str(organisation.id),
        "identifier": [_identifier(organisation)],
        "active": organisation.active,
        "type": [_concept(ORGANISATION_KIND_SYSTEM, organisation.kind.value)],
        "name": organisation.name,
    }
    if organisation.city:
        resource["address"] = [{"city": organisation.city}]
    return resource


def _identifier(entry: Professional | Organisation) -> dict[str, str]:
    return {"system": entry.identifier_system, "value": entry.identifier_value}


def _concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}
