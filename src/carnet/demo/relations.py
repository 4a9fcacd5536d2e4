"""Who cares for whom in the demo: treating doctors, grants, care contacts, emergency accesses.

Without them the demo's professionals would find nobody: a professional reaches a dossier only
through the patient's rules (a grant, a designation, a care contact) or by breaking the glass.
The plan is drawn from the population's seed, so the same seed gives the same relations; the
loader applies a patient's relations in the transaction that creates the patient.

The featured patient (the one ``carnet demo`` prints) has every kind: the featured general
practitioner as treating doctor, a pharmacist granted, an open care contact with a
physiotherapist, and an emergency access in their history, so both portals show each page with
something in it on first run.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from carnet.access import care, purposes
from carnet.access import rules as access_rules
from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.door import open_dossier
from carnet.access.models import CareContactMethod, GrantLevel
from carnet.access.scopes import parse_scope
from carnet.clock import Clock
from carnet.demo.population import DEMO_NOW, PatientSpec, Population
from carnet.demo.professionals import ProfessionalSpec
from carnet.directory import service as directory
from carnet.directory.models import Profession
from carnet.patients.identifiers import LU_MATRICULE
from carnet.patients.models import DossierState

# Said by the emergency physician when breaking the glass: the patient reads it in their history.
EMERGENCY_REASON = (
    "Brought in unconscious after a fall; allergies and current treatments needed at once."
)
_ADULT_DAYS = 18 * 366


@dataclass(frozen=True)
class Relations:
    """One patient's relations with professionals, by the professionals' identifiers."""

    treating_doctor: str | None = None
    grants: tuple[tuple[str, GrantLevel], ...] = ()
    care_contacts: tuple[str, ...] = ()
    emergency_by: str | None = None


def is_adult(spec: PatientSpec) -> bool:
    """Of age at the demo's date: a child's dossier is managed by their parents."""
    return (DEMO_NOW.date() - spec.birth_date).days > _ADULT_DAYS


def featured_patient(population: Population) -> PatientSpec | None:
    """The patient the sign-in guide offers: an active adult with a matricule and five
    documents or more."""
    return next(
        (
            spec
            for spec in population.patients
            if spec.state is DossierState.ACTIVE
            and len(spec.documents) >= 5
            and is_adult(spec)
            and any(system == LU_MATRICULE for system, _ in spec.identifiers)
        ),
        None,
    )


def featured_professional(
    population: Population, profession: Profession
) -> ProfessionalSpec | None:
    """The first professional of ``profession``: whom the sign-in guide offers."""
    return next((p for p in population.professionals if p.profession is profession), None)


def plan_relations(population: Population, seed: int) -> dict[str, Relations]:
    """Each active adult patient's relations, by their first identifier's value."""
    rng = random.Random(f"relations-{seed}")  # noqa: S311 — synthetic data
    by_profession: dict[Profession, list[ProfessionalSpec]] = {}
    for professional in population.professionals:
        by_profession.setdefault(professional.profession, []).append(professional)
    gps = by_profession.get(Profession.GENERAL_PRACTITIONER, [])
    granted = [
        p
        for kind in (Profession.PHARMACIST, Profession.SPECIALIST, Profession.DENTIST)
        for p in by_profession.get(kind, [])
    ]
    seen_in_person = [
        p
        for kind in (Profession.NURSE, Profession.PHYSIOTHERAPIST, Profession.SPECIALIST)
        for p in by_profession.get(kind, [])
    ]
    emergency = by_profession.get(Profession.EMERGENCY_PHYSICIAN, [])
    featured = featured_patient(population)
    plans: dict[str, Relations] = {}
    for index, spec in enumerate(
        s for s in population.patients if s.state is DossierState.ACTIVE and is_adult(s)
    ):
        if spec is featured:
            plans[spec.identifiers[0][1]] = _featured(by_profession, gps, emergency)
            continue
        # The featured GP treats one patient in three; the other GPs share the rest.
        doctor = gps[0] if gps and index % 3 == 0 else (rng.choice(gps) if gps else None)
        grants = (
            ((rng.choice(granted).value, rng.choice(list(GrantLevel))),)
            if granted and rng.random() < 0.35
            else ()
        )
        contacts = (
            (rng.choice(seen_in_person).value,) if seen_in_person and rng.random() < 0.2 else ()
        )
        plans[spec.identifiers[0][1]] = Relations(
            treating_doctor=doctor.value if doctor else None,
            grants=grants,
            care_contacts=contacts,
            emergency_by=emergency[0].value if emergency and rng.random() < 0.04 else None,
        )
    return plans


def _featured(
    by_profession: dict[Profession, list[ProfessionalSpec]],
    gps: list[ProfessionalSpec],
    emergency: list[ProfessionalSpec],
) -> Relations:
    pharmacist = by_profession.get(Profession.PHARMACIST, [])
    physiotherapist = by_profession.get(Profession.PHYSIOTHERAPIST, [])
    return Relations(
        treating_doctor=gps[0].value if gps else None,
        grants=((pharmacist[0].value, GrantLevel.NORMAL),) if pharmacist else (),
        care_contacts=(physiotherapist[0].value,) if physiotherapist else (),
        emergency_by=emergency[0].value if emergency else None,
    )


# The patient sets their own rules; professionals record what they did, with their card.
_EVERYTHING = frozenset({parse_scope("user/*.cruds")})


def apply_relations(
    session: Session,
    patient_id: uuid.UUID,
    relations: Relations,
    professional_ids: Mapping[str, uuid.UUID],
    *,
    clock: Clock,
    care_clock: Clock,
) -> None:
    """Record ``relations`` through the access services, as each person would.

    ``care_clock`` dates the care contacts: their window (90 days) is counted from when the
    demo is loaded, so they are open when someone first tries it.
    """
    patient = Actor(
        kind=ActorKind.PATIENT,
        subject=f"Patient/{patient_id}",
        assurance=Assurance.SUBSTANTIAL,
        scopes=_EVERYTHING,
        person_id=patient_id,
        acting_for=patient_id,
    )
    if relations.treating_doctor is not None:
        access_rules.designate_treating_doctor(
            session,
            open_dossier(
                session, patient, patient_id, purposes.DESIGNATE_TREATING_DOCTOR, clock=clock
            ),
            professional_ids[relations.treating_doctor],
        )
    for value, level in relations.grants:
        access_rules.grant_access(
            session,
            open_dossier(session, patient, patient_id, purposes.GRANT_ACCESS, clock=clock),
            level=level,
            professional_id=professional_ids[value],
        )
    if relations.emergency_by is not None:
        care.break_glass(
            session,
            open_dossier(
                session,
                _professional(session, professional_ids[relations.emergency_by]),
                patient_id,
                purposes.BREAK_GLASS,
                clock=clock,
            ),
            reason=EMERGENCY_REASON,
        )
    for value in relations.care_contacts:
        care.record_care_contact(
            session,
            open_dossier(
                session,
                _professional(session, professional_ids[value]),
                patient_id,
                purposes.RECORD_CARE_CONTACT,
                clock=care_clock,
            ),
            method=CareContactMethod.CARD,
        )


def _professional(session: Session, professional_id: uuid.UUID) -> Actor:
    """The professional signed in with their card."""
    professional = directory.get_professional(session, professional_id)
    return Actor(
        kind=ActorKind.PROFESSIONAL,
        subject=f"Practitioner/{professional_id}",
        assurance=Assurance.HIGH,
        scopes=_EVERYTHING,
        professional_id=professional_id,
        organisation_id=professional.organisation_id,
        profession=professional.profession.value,
    )
