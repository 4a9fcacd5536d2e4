"""Whom to sign in as on a demo Carnet: drawn from the same seed as the population itself.

Read from the generated population, not from the database: the guide names demo people without
reading anyone's dossier. The featured patient's id (for the API session of the README) is
given by the caller, which looks it up by matricule.
"""

from __future__ import annotations

import uuid

from carnet.demo.accounts import DEMO_OPERATOR, DEMO_PASSWORD, DEMO_PIN
from carnet.demo.population import build_population
from carnet.demo.relations import featured_patient, featured_professional
from carnet.directory.models import Profession
from carnet.patients.identifiers import LU_MATRICULE


def featured_matricule(seed: int) -> str | None:
    """The matricule of the patient the guide offers, or None if the population has none."""
    spec = featured_patient(build_population(seed))
    if spec is None:
        return None
    return next(value for system, value in spec.identifiers if system == LU_MATRICULE)


def sign_in_guide(seed: int, public_url: str, *, patient_id: uuid.UUID | None = None) -> list[str]:
    """Lines telling a visitor of the demo whom to sign in as, and how."""
    population = build_population(seed)
    patient = featured_patient(population)
    lines = [f"Portals: {public_url}/portal — every demo password is {DEMO_PASSWORD!r}."]
    if patient is not None:
        matricule = next(value for system, value in patient.identifiers if system == LU_MATRICULE)
        lines.append(
            f"  patient {patient.given} {patient.family}: matricule {matricule}, one-time code "
            f"from `carnet otp --as patient:{matricule}`"
        )
        if patient_id is not None:
            lines.append(f"    patient id {patient_id} (the API's Patient/{patient_id})")
    for profession in (Profession.GENERAL_PRACTITIONER, Profession.EMERGENCY_PHYSICIAN):
        doctor = featured_professional(population, profession)
        if doctor is not None:
            lines.append(
                f"  {profession.value.replace('-', ' ')} {doctor.given} {doctor.family}: "
                f"card of {doctor.value}, PIN {DEMO_PIN}"
            )
    lines.append(
        f"  agency operator: {DEMO_OPERATOR!r}, one-time code from "
        f"`carnet otp --as operator:{DEMO_OPERATOR}`"
    )
    return lines
