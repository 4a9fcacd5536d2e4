"""What every page of the patient portal knows: whose dossier it shows, in which state, and the
small parsing the pages share (pages of a list, dates typed in forms, document type labels).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access import identification as access_identification
from carnet.access.policy import Action
from carnet.audit.models import AuditAction
from carnet.catalogue import UnknownDocumentType, load_catalogue
from carnet.directory import service as directory
from carnet.directory.models import Organisation, Professional
from carnet.patients.models import Patient
from carnet.portal.visits import Visit

# The states in which the patient reads their documents and demographics (an opposed dossier
# does not exist for anyone; a closed one is out of everyone's reach but its authors').
READABLE_STATES = ("active", "invited")


@dataclass(frozen=True)
class Whose:
    """Whose dossier a page shows, and what the visitor may expect of it.

    ``patient`` holds the demographics when the page asked for them (or the visitor acts for
    someone else, whose name every page must show) and the dossier's state lets them be read.
    """

    patient_id: uuid.UUID
    state: str
    acting_for_other: bool
    patient: Patient | None = None

    @property
    def readable(self) -> bool:
        """Whether documents, demographics and notices of this dossier can be read now."""
        return self.state in READABLE_STATES


def whose_dossier(session: Session, visit: Visit, *, with_patient: bool = False) -> Whose:
    """The dossier the visitor acts on, checked by the policy; for GET pages only.

    The check is ``MANAGE_DOSSIER``: the one thing a patient (or representative) may do with
    their dossier in every state, so it tells the state and that the visitor is its patient or
    representative without refusing an opposed or closed dossier. A representation that ended
    since the visitor chose it sends them back to their own dossier rather than to an error
    page they could not leave; actions (POST) never switch dossiers this way.
    """
    clock = visit.platform.clock
    actor = visit.actor
    if (
        actor.represents_someone_else
        and actor.person_id is not None
        and actor.acting_for is not None
        and not access_guard.represents(session, actor.person_id, actor.acting_for, now=clock.now())
    ):
        visit.actor = replace(actor, acting_for=actor.person_id)
        visit.browser = replace(visit.browser, acting_for=None).with_flash(
            visit.gettext("You no longer act for that person: your own dossier is shown."),
            "warning",
        )
    access = access_guard.authorize(
        session,
        visit.actor,
        visit.patient_id,
        Action.MANAGE_DOSSIER,
        now=clock.now(),
        audit=AuditAction.LIFECYCLE,
    )
    other = visit.actor.represents_someone_else
    patient = None
    if (with_patient or other) and access.dossier_state in READABLE_STATES:
        patient = access_identification.read_demographics(
            session, visit.actor, visit.patient_id, clock=clock
        )
    return Whose(visit.patient_id, access.dossier_state, other, patient)


# --- lists in pages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pages:
    """Where a paginated list stands, with links to its neighbours (keeping the filters)."""

    number: int
    size: int
    total: int
    previous_url: str | None
    next_url: str | None

    @property
    def count(self) -> int:
        """How many pages the list has (one, when empty)."""
        return max(1, -(-self.total // self.size))


def pages(path: str, number: int, size: int, total: int, params: dict[str, str]) -> Pages:
    """The pagination of a list of ``total`` items at page ``number``."""
    kept = {name: value for name, value in params.items() if value}

    def url(target: int) -> str:
        return f"{path}?{urlencode({**kept, 'page': str(target)})}"

    last = max(1, -(-total // size))
    return Pages(
        number=number,
        size=size,
        total=total,
        previous_url=url(number - 1) if number > 1 else None,
        next_url=url(number + 1) if number < last else None,
    )


# --- forms -------------------------------------------------------------------------------------


def start_of_day(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """Midnight of ``day`` in the portal's time zone, as a UTC instant."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


# --- the catalogue and the directory, in the visitor's words ----------------------------------


def type_label(type_system: str, type_code: str, language: str) -> str:
    """A document type's patient-facing label; its code when the catalogue does not know it."""
    try:
        return load_catalogue().by_code(type_system, type_code).labels.in_language(language)
    except UnknownDocumentType:
        return type_code


def professionals_by_id(
    session: Session, ids: set[uuid.UUID | None]
) -> dict[uuid.UUID, Professional]:
    """The directory entries of these professionals (the directory holds no patient data)."""
    wanted = sorted(i for i in ids if i is not None)
    if not wanted:
        return {}
    found = directory.find_professionals(session, ids=wanted, limit=len(wanted))
    return {professional.id: professional for professional in found}


def organisations_by_id(
    session: Session, ids: set[uuid.UUID | None]
) -> dict[uuid.UUID, Organisation]:
    """The directory entries of these organisations."""
    return {i: directory.get_organisation(session, i) for i in sorted(j for j in ids if j)}
