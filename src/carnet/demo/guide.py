"""Whom to sign in as on a demo Carnet: drawn from the same seed as the population itself.

Read from the generated population, not from the database: the guide names demo people without
reading anyone's dossier.
"""

from __future__ import annotations

from carnet.demo.accounts import DEMO_OPERATOR, DEMO_PASSWORD, DEMO_PIN
from carnet.demo.population import DEMO_NOW, build_population
from carnet.directory.models import Profession
from carnet.patients.identifiers import LU_MATRICULE
from carnet.patients.models import DossierState


def sign_in_guide(seed: int, public_url: str) -> list[str]:
    """Lines telling a visitor of the demo whom to sign in as, and how."""
    population = build_population(seed)
    patient = next(
        (
            (spec, value)
            for spec in population.patients
            for system, value in spec.identifiers
            if system == LU_MATRICULE
            and spec.state is DossierState.ACTIVE
            and len(spec.documents) >= 5
            # An adult: a child's dossier is opened by their parents.
            and (DEMO_NOW.date() - spec.birth_date).days > 18 * 366
        ),
        None,
    )
    doctors = {
        profession: next((p for p in population.professionals if p.profession is profession), None)
        for profession in (Profession.GENERAL_PRACTITIONER, Profession.EMERGENCY_PHYSICIAN)
    }
    lines = [f"Portals: {public_url}/portal — every demo password is {DEMO_PASSWORD!r}."]
    if patient is not None:
        spec, matricule = patient
        lines.append(
            f"  patient {spec.given} {spec.family}: matricule {matricule}, one-time code from "
            f"`carnet otp --as patient:{matricule}`"
        )
    for profession, doctor in doctors.items():
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
