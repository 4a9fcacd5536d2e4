"""The demo population as pure data: organisations, professionals, patients and document plans.

Everything is drawn from one seeded generator before anything is loaded, so the population is
the same whatever is already in the database, and loading it twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import random  # synthetic data, not secrets: S311 does not apply
import uuid
from dataclasses import dataclass, replace

from carnet.catalogue import DocumentType, load_catalogue
from carnet.demo.essentials import FactPlan, draw_essentials
from carnet.demo.professionals import ProfessionalSpec
from carnet.directory.models import OrganisationKind, Profession
from carnet.directory.service import LU_PROFESSIONAL
from carnet.documents.models import Confidentiality
from carnet.patients import identifiers
from carnet.patients.models import DossierState, Sex

# Every demo date is relative to this instant, not to today: the demo is the same every day.
DEMO_NOW = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
_NAMESPACE = uuid.UUID("8f4c2a1e-5b3d-4c6e-9a7f-1d2e3f4a5b6c")


@dataclass(frozen=True)
class OrganisationSpec:
    """A demo organisation."""

    code: str
    name: str
    kind: OrganisationKind
    city: str


@dataclass(frozen=True)
class DocumentPlan:
    """One document to load: its type, format, author and dates, drawn in advance."""

    master_identifier: str
    type: DocumentType
    mime_type: str
    author: ProfessionalSpec | None
    organisation: str | None
    created_at: dt.datetime
    confidentiality: Confidentiality
    masked: bool
    hidden: bool
    seed: str


@dataclass(frozen=True)
class PatientSpec:
    """A demo patient with their identifiers, dossier state and planned documents."""

    identifiers: tuple[tuple[str, str], ...]
    family: str
    given: str
    birth_date: dt.date
    sex: Sex
    language: str
    city: str
    country: str
    state: DossierState
    documents: tuple[DocumentPlan, ...] = ()
    essentials: tuple[FactPlan, ...] = ()


@dataclass(frozen=True)
class Population:
    """The whole demo population."""

    organisations: tuple[OrganisationSpec, ...]
    professionals: tuple[ProfessionalSpec, ...]
    patients: tuple[PatientSpec, ...]


ORGANISATIONS = (
    OrganisationSpec(
        "LAB-ALZETTE",
        "Laboratoire Central Alzette",
        OrganisationKind.LABORATORY,
        "Esch-sur-Alzette",
    ),
    OrganisationSpec("LAB-MOSELLE", "BioLab Moselle", OrganisationKind.LABORATORY, "Thionville"),
    OrganisationSpec(
        "HOSP-KIRCHBERG", "Hôpital du Plateau", OrganisationKind.HOSPITAL, "Luxembourg"
    ),
    OrganisationSpec(
        "HOSP-NORD", "Centre Hospitalier du Nord", OrganisationKind.HOSPITAL, "Ettelbruck"
    ),
    OrganisationSpec("PHARM-GARE", "Pharmacie de la Gare", OrganisationKind.PHARMACY, "Luxembourg"),
    OrganisationSpec("PHARM-SURE", "Pharmacie de la Sûre", OrganisationKind.PHARMACY, "Diekirch"),
    OrganisationSpec(
        "PRACT-CENTRE", "Cabinet médical du Centre", OrganisationKind.PRACTICE, "Luxembourg"
    ),
    OrganisationSpec(
        "HOMECARE-HELP", "Soins à domicile Hëllef", OrganisationKind.HOME_CARE, "Mersch"
    ),
    OrganisationSpec(
        "INSURER-CNS", "Caisse nationale de santé (démo)", OrganisationKind.INSURER, "Luxembourg"
    ),
    OrganisationSpec(
        "AGENCY-ESANTE", "Agence eSanté (démo)", OrganisationKind.AGENCY, "Luxembourg"
    ),
)

# profession, specialty, organisation code, how many
_STAFF: tuple[tuple[Profession, str | None, str | None, int], ...] = (
    (Profession.GENERAL_PRACTITIONER, None, "PRACT-CENTRE", 6),
    (Profession.GENERAL_PRACTITIONER, None, None, 8),
    (Profession.SPECIALIST, "cardiology", "HOSP-KIRCHBERG", 1),
    (Profession.SPECIALIST, "radiology", "HOSP-KIRCHBERG", 1),
    (Profession.SPECIALIST, "radiology", "HOSP-NORD", 1),
    (Profession.SPECIALIST, "general-surgery", "HOSP-NORD", 1),
    (Profession.SPECIALIST, "paediatrics", "HOSP-KIRCHBERG", 1),
    (Profession.SPECIALIST, "gynaecology", "HOSP-NORD", 1),
    (Profession.SPECIALIST, "dermatology", None, 1),
    (Profession.SPECIALIST, "ophthalmology", None, 1),
    (Profession.SPECIALIST, "internal-medicine", "HOSP-KIRCHBERG", 1),
    (Profession.SPECIALIST, "psychiatry", None, 1),
    (Profession.DENTIST, None, None, 3),
    (Profession.PHARMACIST, None, "PHARM-GARE", 3),
    (Profession.PHARMACIST, None, "PHARM-SURE", 2),
    (Profession.NURSE, None, "HOMECARE-HELP", 4),
    (Profession.NURSE, None, "HOSP-NORD", 2),
    (Profession.MIDWIFE, None, None, 2),
    (Profession.PHYSIOTHERAPIST, None, None, 2),
    (Profession.EMERGENCY_PHYSICIAN, None, "HOSP-KIRCHBERG", 2),
    (Profession.EMERGENCY_PHYSICIAN, None, "HOSP-NORD", 2),
    (Profession.BIOLOGIST, None, "LAB-ALZETTE", 2),
    (Profession.BIOLOGIST, None, "LAB-MOSELLE", 2),
)

# Who writes each type of document: a profession (and specialty), or an organisation alone.
_AUTHORS: dict[str, tuple[Profession | None, str | None]] = {
    "lab-report": (Profession.BIOLOGIST, None),
    "patient-summary": (Profession.GENERAL_PRACTITIONER, None),
    "insurer-summary": (None, None),
    "imaging-report": (Profession.SPECIALIST, "radiology"),
    "medical-certificate": (Profession.GENERAL_PRACTITIONER, None),
    "discharge-summary": (Profession.SPECIALIST, "internal-medicine"),
    "prescription": (Profession.GENERAL_PRACTITIONER, None),
    "consultation-note": (Profession.SPECIALIST, None),
    "vaccination-record": (Profession.GENERAL_PRACTITIONER, None),
    "emergency-visit-summary": (Profession.EMERGENCY_PHYSICIAN, None),
    "operative-report": (Profession.SPECIALIST, "general-surgery"),
    "allergies": (Profession.GENERAL_PRACTITIONER, None),
    "advance-directives": (Profession.GENERAL_PRACTITIONER, None),
    "nursing-note": (Profession.NURSE, None),
    "dental-report": (Profession.DENTIST, None),
    "emergency-liaison-file": (Profession.NURSE, None),
    "patient-provided": (None, None),
}

_FAMILY = (
    "Schmit",
    "Muller",
    "Weber",
    "Wagner",
    "Hoffmann",
    "Thill",
    "Schmitz",
    "Klein",
    "Kremer",
    "Reuter",
    "Meyer",
    "Schneider",
    "Becker",
    "Faber",
    "Welter",
    "Majerus",
    "Steffen",
    "Hansen",
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
    "Garcia",
    "Da Silva",
    "Pereira",
    "Ferreira",
    "Rodrigues",
    "Gonçalves",
    "Rossi",
    "Lambert",
    "Fontaine",
    "Nilles",
    "Kieffer",
    "Goedert",
)
_GIVEN = {
    Sex.FEMALE: (
        "Léa",
        "Emma",
        "Sophie",
        "Anne",
        "Marie",
        "Julie",
        "Laura",
        "Sarah",
        "Claire",
        "Mia",
        "Chloé",
        "Nathalie",
        "Isabelle",
        "Ana",
        "Carla",
        "Tessy",
        "Lisa",
        "Nora",
    ),
    Sex.MALE: (
        "Luc",
        "Marc",
        "Paul",
        "Tom",
        "Jean",
        "Pierre",
        "Michel",
        "Gilles",
        "Yves",
        "Ben",
        "Noah",
        "Lucas",
        "Hugo",
        "João",
        "Carlos",
        "Max",
        "Jeff",
        "Raphaël",
    ),
}
_LU_CITIES = (
    "Luxembourg",
    "Esch-sur-Alzette",
    "Differdange",
    "Dudelange",
    "Ettelbruck",
    "Diekirch",
    "Mersch",
    "Wiltz",
    "Echternach",
    "Remich",
)
_FR_PLACES = (
    ("57", "672", "Thionville"),
    ("57", "463", "Metz"),
    ("54", "323", "Longwy"),
    ("75", "056", "Paris"),
    ("2A", "004", "Ajaccio"),
    ("67", "482", "Strasbourg"),
)


def build_population(seed: int, *, patients: int = 200, documents: int = 2000) -> Population:
    """Draw the demo population for ``seed``: the same seed gives the same population."""
    rng = random.Random(seed)  # noqa: S311 — synthetic data
    professionals = _professionals(rng)
    patient_specs = [_patient(rng, index) for index in range(patients)]
    active = [i for i, spec in enumerate(patient_specs) if spec.state is DossierState.ACTIVE]
    # Everyone active has at least one document; older people have more.
    counts = dict.fromkeys(active, 1)
    weights = [1 + (DEMO_NOW.date() - patient_specs[i].birth_date).days / 3650 for i in active]
    for index in rng.choices(active, weights=weights, k=max(0, documents - len(active))):
        counts[index] += 1
    built = tuple(
        replace(
            spec,
            documents=tuple(
                _document(rng, f"{seed}:{index}:{number}", spec.birth_date, professionals)
                for number in range(counts.get(index, 0))
            ),
            essentials=_essentials(seed, index, spec, professionals),
        )
        for index, spec in enumerate(patient_specs)
    )
    return Population(ORGANISATIONS, tuple(professionals), built)


def _essentials(
    seed: int, index: int, spec: PatientSpec, professionals: list[ProfessionalSpec]
) -> tuple[FactPlan, ...]:
    """The patient's essential facts, drawn from a generator of their own (see demo.essentials)."""
    if spec.state is not DossierState.ACTIVE:
        return ()
    return draw_essentials(
        f"{seed}:{index}:essentials",
        birth_date=spec.birth_date,
        family=spec.family,
        language=spec.language,
        country=spec.country,
        today=DEMO_NOW.date(),
        professionals=professionals,
    )


def _professionals(rng: random.Random) -> list[ProfessionalSpec]:
    staff = []
    serial = 0
    for profession, specialty, organisation, count in _STAFF:
        for _ in range(count):
            serial += 1
            sex = rng.choice((Sex.FEMALE, Sex.MALE))
            # Half the workforce crosses the border from France and holds an RPPS number.
            if serial % 2:
                system, value = identifiers.FR_RPPS, identifiers.fr_rpps(1_000_000 + serial)
            else:
                system, value = LU_PROFESSIONAL, f"LU{serial:06d}"
            staff.append(
                ProfessionalSpec(
                    system=system,
                    value=value,
                    family=rng.choice(_FAMILY),
                    given=rng.choice(_GIVEN[sex]),
                    profession=profession,
                    specialty=specialty,
                    organisation=organisation,
                )
            )
    return staff


def _patient(rng: random.Random, index: int) -> PatientSpec:
    sex = rng.choice((Sex.FEMALE, Sex.MALE))
    age_days = rng.randint(0, 95 * 365)
    birth_date = DEMO_NOW.date() - dt.timedelta(days=age_days)
    french = rng.random() < 0.35
    ids: list[tuple[str, str]] = []
    if french:
        department, commune, city = rng.choice(_FR_PLACES)
        nir = identifiers.fr_nir(
            1 if sex is Sex.MALE else 2,
            birth_date.year,
            birth_date.month,
            department,
            commune,
            index + 1,
        )
        ids.append((identifiers.FR_NIR, nir))
        country = "FR"
    else:
        city, country = rng.choice(_LU_CITIES), "LU"
    # Residents, and the cross-border workers insured in Luxembourg, hold a matricule.
    if not french or rng.random() < 0.3:
        ids.append((identifiers.LU_MATRICULE, identifiers.lu_matricule(birth_date, index)))
    language = rng.choices(("fr", "de", "en"), weights=(5, 3, 2))[0]
    state = (
        DossierState.INVITED
        if index % 40 == 7
        else DossierState.OPPOSED
        if index % 97 == 13
        else DossierState.CLOSED
        if index % 89 == 21
        else DossierState.ACTIVE
    )
    return PatientSpec(
        identifiers=tuple(ids),
        family=rng.choice(_FAMILY),
        given=rng.choice(_GIVEN[sex]),
        birth_date=birth_date,
        sex=sex,
        language=language,
        city=city,
        country=country,
        state=state,
    )


def _document(
    rng: random.Random, key: str, birth_date: dt.date, professionals: list[ProfessionalSpec]
) -> DocumentPlan:
    types = load_catalogue().types
    document_type = rng.choices(types, weights=[t.demo_share for t in types])[0]
    profession, specialty = _AUTHORS[document_type.key]
    author: ProfessionalSpec | None = None
    organisation: str | None = None
    if profession is not None:
        candidates = [
            p
            for p in professionals
            if p.profession is profession and (specialty is None or p.specialty == specialty)
        ]
        author = rng.choice(candidates)
        organisation = author.organisation
    elif document_type.key == "insurer-summary":
        organisation = "INSURER-CNS"
    earliest = max(
        DEMO_NOW - dt.timedelta(days=3 * 365),
        dt.datetime.combine(birth_date, dt.time(12), tzinfo=dt.UTC),
    )
    span = int((DEMO_NOW - earliest).total_seconds())
    created_at = earliest + dt.timedelta(seconds=rng.randint(0, max(span, 0)))
    draw = rng.random()
    confidentiality = (
        Confidentiality.VERY_RESTRICTED
        if draw < 0.01
        else Confidentiality.RESTRICTED
        if draw < 0.04
        else Confidentiality.NORMAL
    )
    return DocumentPlan(
        master_identifier=f"urn:uuid:{uuid.uuid5(_NAMESPACE, key)}",
        type=document_type,
        mime_type=rng.choice(document_type.demo_mime_types),
        author=author,
        organisation=organisation,
        created_at=created_at.replace(microsecond=0),
        confidentiality=confidentiality,
        masked=rng.random() < 0.01,
        hidden=document_type.key == "imaging-report" and rng.random() < 0.2,
        seed=key,
    )
