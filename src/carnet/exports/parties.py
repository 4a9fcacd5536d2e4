"""The bundle's parties: the Patient, and the Organizations, Practitioners and PractitionerRoles
the dossier names (authors, custodians, the patient's grantees, blocked and treating doctors).

On import the patient's dossier is created (active) and each directory entry is found by its
identifier, or registered when this Carnet does not know it yet.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.directory.models import Organisation, OrganisationKind, Profession, Professional
from carnet.exports.fields import (
    INSURED_SINCE_EXTENSION,
    LANGUAGE_SYSTEM,
    ORGANISATION_KIND_SYSTEM,
    PROFESSION_SYSTEM,
    extension_of,
    identifier_of,
    json_path,
    known_code,
    reference_id,
)
from carnet.lifecycle.errors import ImportConflict, InvalidExportFile
from carnet.patients import service as patients
from carnet.patients.models import Patient, Sex


@dataclass(frozen=True)
class DirectoryIds:
    """Organisation and professional ids in the export → their ids here."""

    organisations: Mapping[str, uuid.UUID]
    professionals: Mapping[str, uuid.UUID]


def patient_resource(patient: Patient) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient.id),
        "identifier": [{"system": i.system, "value": i.value} for i in patient.identifiers],
        "name": [{"family": patient.family, "given": [patient.given]}],
        "gender": patient.sex.value,
        "birthDate": patient.birth_date.isoformat(),
        "communication": [
            {
                "language": {"coding": [{"system": LANGUAGE_SYSTEM, "code": patient.language}]},
                "preferred": True,
            }
        ],
    }
    if patient.email:
        resource["telecom"] = [{"system": "email", "value": patient.email}]
    address = {
        "line": [patient.address_line] if patient.address_line else None,
        "postalCode": patient.postal_code,
        "city": patient.city,
        "country": patient.country,
    }
    if any(address.values()):
        resource["address"] = [{key: value for key, value in address.items() if value}]
    if patient.insured_since:
        resource["extension"] = [
            {"url": INSURED_SINCE_EXTENSION, "valueDate": patient.insured_since.isoformat()}
        ]
    return resource


def organization_resource(organisation: Organisation) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": str(organisation.id),
        "identifier": [
            {"system": organisation.identifier_system, "value": organisation.identifier_value}
        ],
        "name": organisation.name,
        "type": [{"coding": [{"system": ORGANISATION_KIND_SYSTEM, "code": organisation.kind}]}],
    }
    if organisation.city:
        resource["address"] = [{"city": organisation.city}]
    return resource


def practitioner_resources(professional: Professional) -> Iterator[dict[str, Any]]:
    yield {
        "resourceType": "Practitioner",
        "id": str(professional.id),
        "identifier": [
            {"system": professional.identifier_system, "value": professional.identifier_value}
        ],
        "name": [{"family": professional.family, "given": [professional.given]}],
    }
    role: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": str(professional.id),
        "practitioner": {"reference": f"Practitioner/{professional.id}"},
        "code": [{"coding": [{"system": PROFESSION_SYSTEM, "code": professional.profession}]}],
    }
    if professional.organisation_id:
        role["organization"] = {"reference": f"Organization/{professional.organisation_id}"}
    if professional.specialty:
        role["specialty"] = [{"coding": [{"code": professional.specialty}]}]
    yield role


def import_patient(session: Session, resource: dict[str, Any], clock: Clock) -> Patient:
    names = (resource.get("name") or [{}])[0]
    address = (resource.get("address") or [{}])[0]
    email = next(
        (t.get("value") for t in resource.get("telecom", []) if t.get("system") == "email"), None
    )
    language = json_path(resource, "communication", 0, "language", "coding", 0, "code") or "fr"
    insured = extension_of(resource, INSURED_SINCE_EXTENSION).get("valueDate")
    found_identifiers = [
        (i["system"], i["value"])
        for i in resource.get("identifier", [])
        if i.get("system") in patients.PATIENT_SYSTEMS and i.get("value")
    ]
    for system, value in found_identifiers:
        if patients.find_patient(session, system, value) is not None:
            raise ImportConflict(value)
    try:
        return patients.create_dossier(
            session,
            identifiers_=found_identifiers,
            demographics=patients.Demographics(
                family=names.get("family", ""),
                given=" ".join(names.get("given", [])),
                birth_date=dt.date.fromisoformat(resource.get("birthDate", "")),
                sex=Sex(resource.get("gender", "unknown")),
                language=language,
                email=email,
                address_line=" ".join(address.get("line", [])) or None,
                postal_code=address.get("postalCode"),
                city=address.get("city"),
                country=address.get("country"),
                insured_since=dt.date.fromisoformat(insured) if insured else None,
            ),
            clock=clock,
        )
    except ValueError as error:
        raise InvalidExportFile(
            f"The Patient resource is not usable: {error}.", field="Patient"
        ) from error


def import_organisation(
    session: Session, resource: dict[str, Any], clock: Clock
) -> tuple[Organisation, bool]:
    system, value = identifier_of(resource, "Organization")
    found = directory.find_organisation(session, system, value)
    if found is not None:
        return found, False
    kind = json_path(resource, "type", 0, "coding", 0, "code") or OrganisationKind.LABORATORY.value
    return (
        directory.register_organisation(
            session,
            identifier_system=system,
            identifier_value=value,
            name=resource.get("name", ""),
            kind=known_code(OrganisationKind, kind, "Organization.type"),
            city=json_path(resource, "address", 0, "city"),
            clock=clock,
        ),
        True,
    )


def import_professional(
    session: Session,
    resource: dict[str, Any],
    role: dict[str, Any] | None,
    organisations: Mapping[str, tuple[Organisation, bool]],
    clock: Clock,
) -> tuple[Professional, bool]:
    system, value = identifier_of(resource, "Practitioner")
    found = directory.find_professional(session, system, value)
    if found is not None:
        return found, False
    role = role or {}
    organisation = organisations.get(reference_id(role.get("organization"), "Organization") or "")
    names = (resource.get("name") or [{}])[0]
    profession = json_path(role, "code", 0, "coding", 0, "code") or ""
    return (
        directory.register_professional(
            session,
            identifier_system=system,
            identifier_value=value,
            family=names.get("family", ""),
            given=" ".join(names.get("given", [])),
            profession=known_code(Profession, profession, "PractitionerRole.code"),
            specialty=json_path(role, "specialty", 0, "coding", 0, "code"),
            organisation_id=organisation[0].id if organisation else None,
            clock=clock,
        ),
        True,
    )
