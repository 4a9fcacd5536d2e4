"""Patient and dossier services: create, find, update demographics.

Every function takes its session and does not commit: the way in owns the transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from carnet.clock import Clock
from carnet.patients import identifiers
from carnet.patients.errors import (
    DuplicateIdentifier,
    InvalidDemographics,
    InvalidIdentifier,
    PatientError,
    PatientNotFound,
)
from carnet.patients.models import Dossier, DossierState, Patient, PatientIdentifier, Sex

LANGUAGES = ("fr", "en", "de", "lb", "pt")
# The identifier systems that name patients (professionals have their own).
PATIENT_SYSTEMS = (identifiers.LU_MATRICULE, identifiers.FR_NIR)
# Bounds the values sent in one IN (...) list: SQLite and psycopg both cap bound parameters.
_IN_LIST = 500
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


@dataclass(frozen=True)
class RegistryEntry:
    """One person as the insurer's registry lists them: an identifier and demographics.

    ``kept`` names the demographic fields the registry says nothing of (a column the file does
    not have, a cell left empty): a known person keeps what is stored for them, a new one gets
    the default.
    """

    system: str
    value: str
    demographics: Demographics
    kept: frozenset[str] = frozenset()


@dataclass
class EnrolmentOutcome:
    """What ``enrol_batch`` did with each entry, by its index in the batch.

    ``updated`` also names the fields that changed; ``rejected`` carries the error (its
    ``field`` names the one at fault).
    """

    created: list[tuple[int, uuid.UUID]] = dataclasses.field(default_factory=list)
    updated: list[tuple[int, uuid.UUID, tuple[str, ...]]] = dataclasses.field(default_factory=list)
    unchanged: list[tuple[int, uuid.UUID]] = dataclasses.field(default_factory=list)
    rejected: list[tuple[int, PatientError]] = dataclasses.field(default_factory=list)

    def patient_ids(self) -> dict[int, uuid.UUID]:
        """The patient of every entry that was not rejected."""
        found = dict(self.created + self.unchanged)
        found.update((index, patient_id) for index, patient_id, _ in self.updated)
        return found


def enrol_batch(  # patient-data: enrolment by the agency
    session: Session,
    entries: Sequence[RegistryEntry],
    *,
    clock: Clock,
    opening_deadline: dt.datetime,
) -> EnrolmentOutcome:
    """Create the invited dossiers of people not known yet; bring known people up to date.

    Each entry is validated as ``create_dossier`` does; a bad one is rejected without stopping
    the others. A known identifier whose demographics differ is updated; the same entry twice
    (in this batch or a batch before) changes nothing the second time. New dossiers are
    ``invited``, opening by themselves at ``opening_deadline``. Built for the national registry:
    one query finds the batch's known people, a few multi-row statements write the rest.
    """
    now = clock.now()
    outcome = EnrolmentOutcome()
    valid: list[tuple[int, identifiers.NationalIdentifier, dict[str, object], frozenset[str]]] = []
    for index, entry in enumerate(entries):
        try:
            identifier = identifiers.validate(entry.system, entry.value)
            _check_demographics(entry.demographics, now.date())
        except (InvalidIdentifier, InvalidDemographics) as error:
            outcome.rejected.append((index, error))
            continue
        valid.append((index, identifier, _columns(entry.demographics), entry.kept))
    known = _known_demographics(session, {identifier for _, identifier, _, _ in valid})
    created: dict[uuid.UUID, dict[str, object]] = {}
    updated: dict[uuid.UUID, dict[str, object]] = {}
    for index, identifier, columns, kept in valid:
        found = known.get(identifier)
        if found is None:
            patient_id = uuid.uuid4()
            row = {"id": patient_id, "created_at": now, "updated_at": now, **columns}
            known[identifier] = (patient_id, row)
            created[patient_id] = row
            outcome.created.append((index, patient_id))
            continue
        patient_id, current = found
        # What the registry says nothing of stays as stored (it never blanks a known value).
        told = {name: value for name, value in columns.items() if name not in kept}
        changed = tuple(name for name, value in told.items() if current[name] != value)
        if not changed:
            outcome.unchanged.append((index, patient_id))
            continue
        current.update(told)
        if patient_id not in created:
            # Merged: the same person twice in a batch may leave different fields alone.
            updated.setdefault(patient_id, {"id": patient_id}).update(updated_at=now, **told)
        outcome.updated.append((index, patient_id, changed))
    if created:
        session.execute(insert(Patient), list(created.values()))
        session.execute(
            insert(PatientIdentifier),
            [
                {"patient_id": patient_id, "system": identifier.system, "value": identifier.value}
                for identifier, (patient_id, _) in known.items()
                if patient_id in created
            ],
        )
        session.execute(
            insert(Dossier),
            [
                {
                    "patient_id": patient_id,
                    "state": DossierState.INVITED,
                    "state_changed_at": now,
                    "created_at": now,
                    "opening_deadline": opening_deadline,
                }
                for patient_id in created
            ],
        )
    if updated:
        session.execute(update(Patient), list(updated.values()))
        # The bulk UPDATE bypasses the identity map: drop stale copies this session holds.
        for patient_id in updated:
            cached = session.identity_map.get(identity_key(Patient, patient_id))
            if cached is not None:
                session.expire(cached)
    return outcome


def refresh_statistics(session: Session) -> None:
    """Refresh the query planner's statistics of the patient tables (ANALYZE), for bulk loads.

    PostgreSQL plans ``enrol_batch``'s identifier lookups from these statistics: for a table
    that grew from nothing to a million rows since they were taken (autovacuum takes them a
    minute later at best, never where it is off) it would scan every identifier of a system
    instead of looking each up in the index. SQLite needs nothing.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql("ANALYZE patients, patient_identifiers, dossiers")


def _known_demographics(
    session: Session, wanted: set[identifiers.NationalIdentifier]
) -> dict[identifiers.NationalIdentifier, tuple[uuid.UUID, dict[str, object]]]:
    """The patient id and demographic columns of each identifier already recorded."""
    names = [column.name for column in dataclasses.fields(Demographics)]
    known: dict[identifiers.NationalIdentifier, tuple[uuid.UUID, dict[str, object]]] = {}
    by_system: dict[str, list[str]] = {}
    for identifier in wanted:
        by_system.setdefault(identifier.system, []).append(identifier.value)
    for system, values in by_system.items():
        for start in range(0, len(values), _IN_LIST):
            rows = session.execute(
                select(PatientIdentifier.value, Patient.id, *(getattr(Patient, n) for n in names))
                .join(Patient, Patient.id == PatientIdentifier.patient_id)
                .where(
                    PatientIdentifier.system == system,
                    PatientIdentifier.value.in_(values[start : start + _IN_LIST]),
                )
            )
            for value, patient_id, *columns in rows:
                known[identifiers.NationalIdentifier(system, value)] = (
                    patient_id,
                    dict(zip(names, columns, strict=True)),
                )
    return known


def create_dossier(
    session: Session,
    *,
    identifiers_: Sequence[tuple[str, str]],
    demographics: Demographics,
    clock: Clock,
    state: DossierState = DossierState.ACTIVE,
    opening_deadline: dt.datetime | None = None,
) -> Patient:
    """Record a patient with their national identifiers and their dossier in ``state``.

    An ``invited`` dossier opens by itself at ``opening_deadline`` (never, if None).
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
        opening_deadline=opening_deadline if state is DossierState.INVITED else None,
    )
    session.add(patient)
    session.flush()
    return patient


def get_patient(
    session: Session, patient_id: uuid.UUID
) -> Patient:  # patient-data: identification and jobs; see access.identification
    """The patient with this id; ``PatientNotFound`` otherwise."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise PatientNotFound()
    return patient


def find_patient(
    session: Session, system: str, value: str
) -> Patient | None:  # patient-data: identification and jobs; see access.identification
    """The patient holding this national identifier, or None.

    The identifier is validated first: a malformed one raises ``InvalidIdentifier`` rather than
    quietly finding nobody.
    """
    patient_id = find_patient_id(session, system, value)
    return None if patient_id is None else session.get(Patient, patient_id)


def find_patient_id(session: Session, system: str, value: str) -> uuid.UUID | None:
    """The id of the patient holding this national identifier, or None (one indexed lookup).

    Raises ``InvalidIdentifier`` for a malformed identifier, as ``find_patient`` does.
    """
    identifier = identifiers.validate(system, value)
    return _patient_id_by_identifier(session, identifier.system, identifier.value)


def find_by_reference(
    session: Session, reference: str
) -> Patient:  # patient-data: identification and jobs; see access.identification
    """The patient named by their Carnet id, or by a national identifier of any patient system.

    Raises ``PatientNotFound`` when nobody matches (a malformed identifier matches nobody).
    """
    try:
        patient = session.get(Patient, uuid.UUID(reference.strip()))
    except ValueError:
        patient = None
    for system in PATIENT_SYSTEMS:
        if patient is not None:
            break
        try:
            patient = find_patient(session, system, reference)
        except InvalidIdentifier:
            continue
    if patient is None:
        raise PatientNotFound()
    return patient


def search_patients(  # patient-data: identification and jobs; see access.identification
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


def get_dossier(
    session: Session, patient_id: uuid.UUID
) -> Dossier:  # patient-data: identification and jobs; see access.identification
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


@dataclass(frozen=True)
class PatientCriteria:
    """What a patient search asks for; a field left empty asks nothing."""

    identifier: tuple[str, str] | None = None  # (system, value)
    family: str | None = None
    given: str | None = None
    birth_date: dt.date | None = None
    sex: Sex | None = None
    # Whole names, case-insensitively, rather than their beginnings.
    exact_names: bool = False


def select_patients(
    criteria: PatientCriteria,
) -> Select[Patient]:  # patient-data: identification and jobs; see access.identification
    """The query (not yet run) of the patients matching ``criteria``, in name order.

    Names match from their start, case-insensitively, unless ``exact_names``. The identifier is
    validated first: a malformed one raises ``InvalidIdentifier`` rather than finding nobody.
    Callers narrow the query further (who may see whom) and page through it.
    """
    query = select(Patient)
    if criteria.identifier is not None:
        identifier = identifiers.validate(*criteria.identifier)
        query = query.join(PatientIdentifier, PatientIdentifier.patient_id == Patient.id).where(
            PatientIdentifier.system == identifier.system,
            PatientIdentifier.value == identifier.value,
        )
    for column, text in ((Patient.family, criteria.family), (Patient.given, criteria.given)):
        if text is None:
            continue
        if criteria.exact_names:
            query = query.where(func.lower(column) == text.strip().lower())
        else:
            query = query.where(column.ilike(_prefix(text), escape="\\"))
    if criteria.birth_date is not None:
        query = query.where(Patient.birth_date == criteria.birth_date)
    if criteria.sex is not None:
        query = query.where(Patient.sex == criteria.sex)
    return query.order_by(Patient.family, Patient.given, Patient.id)
