"""Actors as the authentication layer would build them, for service-level tests."""

from __future__ import annotations

from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.scopes import parse_scopes
from carnet.directory.models import Organisation, Professional
from carnet.patients.models import Patient

EVERYTHING = "user/*.cruds"


def patient_actor(
    patient: Patient,
    *,
    assurance: Assurance = Assurance.SUBSTANTIAL,
    scopes: str = EVERYTHING,
    acting_for: Patient | None = None,
) -> Actor:
    """The patient (or, with ``acting_for``, their representative) signed in."""
    return Actor(
        kind=ActorKind.PATIENT,
        subject=f"Patient/{patient.id}",
        assurance=assurance,
        scopes=parse_scopes(scopes)[0],
        person_id=patient.id,
        acting_for=(acting_for or patient).id,
    )


def professional_actor(
    professional: Professional, *, assurance: Assurance = Assurance.HIGH, scopes: str = EVERYTHING
) -> Actor:
    """A professional signed in (with their card, by default)."""
    return Actor(
        kind=ActorKind.PROFESSIONAL,
        subject=f"Practitioner/{professional.id}",
        assurance=assurance,
        scopes=parse_scopes(scopes)[0],
        professional_id=professional.id,
        organisation_id=professional.organisation_id,
        profession=professional.profession.value,
    )


def system_actor(
    organisation: Organisation,
    *,
    scopes: str = "system/DocumentReference.c",
    professional: Professional | None = None,
) -> Actor:
    """An organisation's feeding system, optionally acting for one of its professionals."""
    return Actor(
        kind=ActorKind.FEEDING_SYSTEM,
        subject=f"client:{organisation.identifier_value}",
        assurance=Assurance.HIGH,
        scopes=parse_scopes(scopes)[0],
        organisation_id=organisation.id,
        professional_id=professional.id if professional else None,
        profession=professional.profession.value if professional else None,
        client_id=f"system-{organisation.identifier_value}",
    )


def operator_actor(name: str = "operator-1", *, scopes: str = EVERYTHING) -> Actor:
    """An agency operator (even a token with every scope reaches no patient data)."""
    return Actor(
        kind=ActorKind.OPERATOR,
        subject=f"operator:{name}",
        assurance=Assurance.HIGH,
        scopes=parse_scopes(scopes)[0],
    )


def security_officer_actor(name: str = "officer-1", *, scopes: str = EVERYTHING) -> Actor:
    """A security officer: reads the audit trail, never clinical content."""
    return Actor(
        kind=ActorKind.SECURITY_OFFICER,
        subject=f"security-officer:{name}",
        assurance=Assurance.HIGH,
        scopes=parse_scopes(scopes)[0],
    )
