"""Whose dossier a professional is in: the patient's name, birth date and identifier, and the
emergency banner, on every page of the professional portal that shows or changes a dossier.

A clinician who opens a document must see whose it is without going back (a wrong-patient
error is the one a viewer must not invite), and one who broke the glass must see on every page
that they are under emergency access, until it ends.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from carnet.access import care as access_care
from carnet.access import identification as access_identification
from carnet.access.errors import AccessError
from carnet.patients.models import Patient
from carnet.portal.professional_links import patient_url
from carnet.portal.visits import Visit


@dataclass(frozen=True)
class PatientHeader:
    """What the header of a dossier's page shows (``base.html`` includes it when given)."""

    url: str
    name: str
    birth_date: dt.date
    identifiers: tuple[tuple[str, str], ...]
    emergency_until: dt.datetime | None


def patient_header(session: Session, visit: Visit, patient_id: uuid.UUID) -> PatientHeader:
    """The header of a page of ``patient_id``'s dossier.

    Reads the demographics through the policy (recorded, as any read of them is): call it only
    once the page's own access to the dossier is decided.
    """
    clock = visit.platform.clock
    patient = access_identification.read_demographics(session, visit.actor, patient_id, clock=clock)
    running = access_care.emergency_access_in_force(session, visit.actor, patient_id, clock=clock)
    return header_of(patient, running.expires_at if running is not None else None)


def optional_header(visit: Visit, patient_id: uuid.UUID) -> PatientHeader | None:
    """The header, or None where the professional may not read the demographics (an author
    adds a document to a dossier they cannot open): the form shows no one's name then."""
    try:
        with visit.transaction() as session:
            return patient_header(session, visit, patient_id)
    except AccessError:
        return None


def header_of(patient: Patient, emergency_until: dt.datetime | None) -> PatientHeader:
    """The header from demographics the page has already read."""
    return PatientHeader(
        url=patient_url(patient.id),
        name=f"{patient.given} {patient.family}",
        birth_date=patient.birth_date,
        identifiers=tuple((i.system, i.value) for i in patient.identifiers),
        emergency_until=emergency_until,
    )
