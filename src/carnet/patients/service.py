"""Patient and dossier services: create, find, update demographics.

Every function takes its session and does not commit: the way in owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.clock import Clock
from carnet.patients import identifiers
from carnet.patients.errors import (
    DuplicateIdentifier,
    InvalidDemographics,
    PatientNotFound,
)
from carnet.patients.models import Dossier, DossierState, Patient, PatientIdentifier, Sex

LANGUAGES = ("fr", "en", "de", "lb", "pt")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EARLIEST_BIRTH = dt.date(1890, 1, 1)


@dataclass(frozen=True)
class Demographics:
    """What the insurer's registry says of a person."""

    family: str
    given: str
    birth_date: dt.date
    sex: Sex
    language: str = "fr"
    email: str | None = None
    address_line: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: str | None = None
    insured_since: dt.date | None = None


def create_dossier(
    session: Session,
    *,
    identifiers_: Sequence[tuple[str, str]],
    demographics: Demographics,
    clock: Clock,
    state: DossierState = DossierState.ACTIVE,
) -> Patient:
    """Record a patient with their national identifiers and their dossier in ``state``.

    Raises ``InvalidIdentifier`` (naming the failed check), ``InvalidDemographics`` (naming the
    field) or ``DuplicateIdentifier`` if an identifier already belongs to a patient.
    """
    if not identifiers_:
        raise InvalidDemographics(
            "At least one national identifier is required.", field="identifier"
        )
    validated = [identifiers.validate(system, value) for system, value in identifiers_]
    _check_demographics(demographics, clock.now().date())
    for identifier in validated:
        if _patient_id_by_identifier(session, identifier.system, identifier.value) is not None:
            raise DuplicateIdentifier(system=identifier.system, value=identifier.value)

    now = clock.now()
    patient = Patient(id=uuid.uuid4(), created_at=now, updated_at=now, **_columns(demographics))
    patient.identifiers = [
        PatientIdentifier(system=identifier.system, value=identifier.value)
        for identifier in dict.fromkeys(validated)
    ]
    patient.dossier = Dossier(
        state=state,
        state_changed_at=now,
        opened_at=now if state is DossierState.ACTIVE else None,
        created_at=now,
    )
    session.add(patient)
    session.flush()
    return patient


def get_patient(session: Session, patient_id: uuid.UUID) -> Patient:
    """The patient with this id; ``PatientNotFound`` otherwise."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise PatientNotFound()
    return patient


def find_patient(session: Session, system: str, value: str) -> Patient | None:
    """The patient holding this national identifier, or None.

    The identifier is validated first: a malformed one raises ``InvalidIdentifier`` rather than
    quietly finding nobody.
    """
    identifier = identifiers.validate(system, value)
    patient_id = _patient_id_by_identifier(session, identifier.system, identifier.value)
    return None if patient_id is None else session.get(Patient, patient_id)


def search_patients(
    session: Session,
    *,
    family: str | None = None,
    given: str | None = None,
    birth_date: dt.date | None = None,
    limit: int = 50,
) -> list[Patient]:
    """Patients whose names start with the given ones (case-insensitive) and born on the date."""
    if not (family or given or birth_date):
        raise InvalidDemographics(
            "Give a family name, a given name or a birth date.", field="family"
        )
    query = select(Patient)
    if family:
        query = query.where(Patient.family.ilike(_prefix(family)))
    if given:
        query = query.where(Patient.given.ilike(_prefix(given)))
    if birth_date:
        query = query.where(Patient.birth_date == birth_date)
    query = query.order_by(Patient.family, Patient.given, Patient.id).limit(limit)
    return list(session.scalars(query))


def update_demographics(
    session: Session, patient_id: uuid.UUID, demographics: Demographics, *, clock: Clock
) -> bool:
    """Bring a patient's demographics up to date; returns whether anything changed."""
    patient = get_patient(session, patient_id)
    _check_demographics(demographics, clock.now().date())
    changed = False
    for name, value in _columns(demographics).items():
        if getattr(patient, name) != value:
            setattr(patient, name, value)
            changed = True
    if changed:
        patient.updated_at = clock.now()
        session.flush()
    return changed


def get_dossier(session: Session, patient_id: uuid.UUID) -> Dossier:
    """The dossier of this patient; ``PatientNotFound`` if there is none."""
    dossier = session.get(Dossier, patient_id)
    if dossier is None:
        raise PatientNotFound()
    return dossier


def _patient_id_by_identifier(session: Session, system: str, value: str) -> uuid.UUID | None:
    return session.scalar(
        select(PatientIdentifier.patient_id).where(
            PatientIdentifier.system == system, PatientIdentifier.value == value
        )
    )


def _prefix(text: str) -> str:
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _columns(demographics: Demographics) -> dict[str, object]:
    return {
        "family": demographics.family.strip(),
        "given": demographics.given.strip(),
        "birth_date": demographics.birth_date,
        "sex": demographics.sex,
        "language": demographics.language,
        "email": demographics.email.strip().lower() if demographics.email else None,
        "address_line": demographics.address_line,
        "postal_code": demographics.postal_code,
        "city": demographics.city,
        "country": demographics.country.upper() if demographics.country else None,
        "insured_since": demographics.insured_since,
    }


def _check_demographics(demographics: Demographics, today: dt.date) -> None:
    for field in ("family", "given"):
        value: str = getattr(demographics, field)
        if not value.strip():
            raise InvalidDemographics(f"The {field} name is empty.", field=field)
        if len(value) > 200:
            raise InvalidDemographics(f"The {field} name is over 200 characters.", field=field)
    if demographics.birth_date > today:
        raise InvalidDemographics(
            f"The birth date {demographics.birth_date.isoformat()} is in the future.",
            field="birth_date",
        )
    if demographics.birth_date < _EARLIEST_BIRTH:
        raise InvalidDemographics(
            f"The birth date {demographics.birth_date.isoformat()} is before 1890.",
            field="birth_date",
        )
    if demographics.language not in LANGUAGES:
        raise InvalidDemographics(
            f"The language {demographics.language!r} is not one of {', '.join(LANGUAGES)}.",
            field="language",
        )
    if demographics.email is not None and not _EMAIL.match(demographics.email.strip()):
        raise InvalidDemographics(
            f"The e-mail address {demographics.email!r} is not valid.", field="email"
        )
    if demographics.country is not None and not re.fullmatch(r"[A-Za-z]{2}", demographics.country):
        raise InvalidDemographics(
            "The country must be a two-letter ISO 3166 code such as LU or FR.", field="country"
        )
