"""Patients built through the patients service, with valid national identifiers."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy.orm import Session

from carnet.clock import Clock
from carnet.patients import identifiers, service
from carnet.patients.models import DossierState, Patient, Sex

_serials = itertools.count(1)


def make_matricule(birth_date: dt.date = dt.date(1980, 5, 17)) -> str:
    """A valid Luxembourg matricule not used before in this test run."""
    return identifiers.lu_matricule(birth_date, next(_serials) % 1000)


def demographics(**overrides: object) -> service.Demographics:
    """Plausible demographics, with the given fields replaced."""
    fields: dict[str, object] = {
        "family": "Weber",
        "given": "Léa",
        "birth_date": dt.date(1980, 5, 17),
        "sex": Sex.FEMALE,
        "language": "fr",
        "email": "lea.weber@example.lu",
        "city": "Esch-sur-Alzette",
        "country": "LU",
    }
    fields.update(overrides)
    return service.Demographics(**fields)  # type: ignore[arg-type]


def make_patient(
    session: Session,
    clock: Clock,
    *,
    matricule: str | None = None,
    state: DossierState = DossierState.ACTIVE,
    **overrides: object,
) -> Patient:
    """A patient with a Luxembourg matricule and a dossier in ``state``."""
    birth_date = overrides.get("birth_date", dt.date(1980, 5, 17))
    assert isinstance(birth_date, dt.date)
    return service.create_dossier(
        session,
        identifiers_=[(identifiers.LU_MATRICULE, matricule or make_matricule(birth_date))],
        demographics=demographics(**overrides),
        clock=clock,
        state=state,
    )
