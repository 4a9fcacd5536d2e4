"""A patient as a FHIR R4 ``Patient``, after the IHE PDQm Patient profile.

http://hl7.org/fhir/R4/patient.html and
https://profiles.ihe.net/ITI/PDQm/StructureDefinition-IHE.PDQm.Patient.html — ``active`` says
whether the dossier is open. Someone who may only identify the patient (a professional before
any care relationship, a feeding system) gets the identification alone — names, birth date,
sex, national identifiers — marked ``SUBSETTED`` as FHIR marks a partial resource.
"""

from __future__ import annotations

from typing import Any

from carnet.patients.models import DossierState, Patient

PDQM_PATIENT = "https://profiles.ihe.net/ITI/PDQm/StructureDefinition/IHE.PDQm.Patient"
_SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}


def patient_resource(patient: Patient, *, full: bool) -> dict[str, Any]:
    """The Patient resource; the identification only unless ``full``."""
    meta: dict[str, Any] = {
        "lastUpdated": patient.updated_at.isoformat().replace("+00:00", "Z"),
        "profile": [PDQM_PATIENT],
    }
    if not full:
        meta["tag"] = [_SUBSETTED]
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient.id),
        "meta": meta,
        "identifier": [
            {"use": "official", "system": identifier.system, "value": identifier.value}
            for identifier in patient.identifiers
        ],
        "name": [{"use": "official", "family": patient.family, "given": [patient.given]}],
        "gender": patient.sex.value,
        "birthDate": patient.birth_date.isoformat(),
    }
    if full:
        resource.update(_contact_details(patient))
    return resource


def _contact_details(patient: Patient) -> dict[str, Any]:
    details: dict[str, Any] = {
        "active": patient.dossier.state is DossierState.ACTIVE,
        "communication": [
            {
                "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": patient.language}]},
                "preferred": True,
            }
        ],
    }
    if patient.email:
        details["telecom"] = [{"system": "email", "value": patient.email, "use": "home"}]
    address = {
        key: value
        for key, value in (
            ("line", [patient.address_line] if patient.address_line else None),
            ("postalCode", patient.postal_code),
            ("city", patient.city),
            ("country", patient.country),
        )
        if value
    }
    if address:
        details["address"] = [{"use": "home", **address}]
    return details
