"""Registry files as the insurer sends them, and invited dossiers built through the services."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable

from sqlalchemy.orm import Session

from carnet.clock import Clock
from carnet.lifecycle.enrolment import OPTIONAL, REQUIRED
from carnet.patients import identifiers, service
from carnet.patients.models import DossierState, Patient
from factories.patients import demographics, make_matricule

HEADER = (*REQUIRED, *OPTIONAL)
OPENING_DELAY = dt.timedelta(days=30)
CODE_LIFETIME = dt.timedelta(days=60)


def registry_row(*, born: dt.date = dt.date(1980, 5, 17), **overrides: str) -> dict[str, str]:
    """One registry row of a new person (a fresh matricule), with the given columns replaced."""
    row = {
        "national_identifier": make_matricule(born),
        "identifier_system": "lu",
        "family": "Weber",
        "given": "Léa",
        "birth_date": born.isoformat(),
        "sex": "female",
        "address_line": "12, rue de l'Alzette",
        "postal_code": "4011",
        "city": "Esch-sur-Alzette",
        "country": "LU",
        "email": "lea.weber@example.lu",
        "language": "fr",
        "insured_since": "2001-09-01",
        "representative_identifier": "",
        "representation_kind": "",
    }
    row.update(overrides)
    return row


def registry_csv(rows: Iterable[dict[str, str]], header: Iterable[str] = HEADER) -> str:
    """The text of a registry file holding ``rows`` under ``header``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def make_invited_patient(
    session: Session, clock: Clock, *, deadline: dt.datetime | None = None, **overrides: object
) -> Patient:
    """A patient whose dossier is invited, opening by itself at ``deadline`` (30 days ahead)."""
    born = overrides.get("birth_date", dt.date(1980, 5, 17))
    assert isinstance(born, dt.date)
    return service.create_dossier(
        session,
        identifiers_=[(identifiers.LU_MATRICULE, make_matricule(born))],
        demographics=demographics(**overrides),
        clock=clock,
        state=DossierState.INVITED,
        opening_deadline=deadline or clock.now() + OPENING_DELAY,
    )
