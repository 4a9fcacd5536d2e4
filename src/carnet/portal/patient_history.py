"""Who opened the dossier: its audit trail as the patient reads it (``access.history``).

The trail holds the patient's own reading too (every page they open is recorded); by default
the page leaves it out, since the question a patient asks here is who else looked. The history
service pages the trail oldest first and cannot leave an agent out, so the page reads it back
from its newest end, a service page at a time, keeping what it shows. Each reading is itself
recorded by the service (and is not listed: it is not one of ``HISTORY_ACTIONS``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access import history as access_history
from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.directory.models import Professional
from carnet.portal.patient_context import (
    organisations_by_id,
    professionals_by_id,
    whose_dossier,
)
from carnet.portal.visits import (
    PatientVisit,
    Visit,
    page_number,
)

router = APIRouter()

HISTORY_PAGE = "/portal/patient/history"
PAGE_SIZE = 25
# What the history lists: the consultations, publications and openings of the dossier, not
# changes of settings (each has its own page) nor the reading of this very history.
HISTORY_ACTIONS = (
    AuditAction.SEARCH,
    AuditAction.READ,
    AuditAction.RETRIEVE,
    AuditAction.PUBLISH,
    AuditAction.REPLACE,
    AuditAction.STATUS_CHANGE,
    AuditAction.BREAK_GLASS,
    AuditAction.CARE_CONTACT,
    AuditAction.EXPORT,
)


@dataclass(frozen=True)
class HistoryRow:
    """One event of the trail, as the patient reads it."""

    event: AuditEvent
    who: str
    profession: str | None
    organisation: str | None
    own: bool
    emergency: bool
    document_ids: list[str]
    details: dict[str, Any]


@dataclass(frozen=True)
class HistoryPage:
    """The events of one page, newest first, and the links to the pages beside it."""

    events: list[AuditEvent]
    number: int
    newer_url: str | None
    older_url: str | None


@router.get("/history")
def history(visit: PatientVisit, page: str = "1", mine: str = "") -> Response:
    """Who consulted the dossier, when and what, newest first."""
    number = page_number(page)
    with_mine = mine == "1"
    rows: list[HistoryRow] = []
    shown = None
    with visit.transaction() as session:
        whose = whose_dossier(session, visit)
        if whose.state != "opposed":
            shown = _newest_first(session, visit, number, with_mine=with_mine)
            rows = _history_rows(session, visit, shown.events)
    return visit.render(
        "patient/history.html",
        whose=whose,
        rows=rows,
        shown=shown,
        with_mine=with_mine,
    )


def _newest_first(session: Session, visit: Visit, number: int, *, with_mine: bool) -> HistoryPage:
    """Page ``number`` of the trail counted from its newest event.

    A first, one-event reading tells how long the trail is; then windows of the service's
    largest page are read back from the end until the page is full (and one more event tells
    whether an older page exists) or the trail's start is reached.
    """
    clock = visit.platform.clock
    query = access_history.HistoryQuery(
        patient_id=visit.patient_id, actions=HISTORY_ACTIONS, limit=1
    )
    dossier = open_dossier(
        session, visit.actor, visit.patient_id, purposes.READ_AUDIT_TRAIL, clock=clock
    )
    end = access_history.read_dossier_trail(session, dossier, query).total
    own_subject = f"Patient/{visit.actor.person_id}"
    wanted = number * PAGE_SIZE + 1
    kept: list[AuditEvent] = []
    while end > 0 and len(kept) < wanted:
        # Only as much as the page still needs when every event counts.
        size = access_history.MAX_PAGE if not with_mine else min(access_history.MAX_PAGE, wanted)
        start = max(0, end - size)
        window = access_history.read_dossier_trail(
            session, dossier, replace(query, offset=start, limit=end - start)
        )
        kept += [
            event
            for event in reversed(window.events)
            if with_mine or event.agent_subject != own_subject
        ]
        end = start
    params = {"mine": "1"} if with_mine else {}
    return HistoryPage(
        events=kept[(number - 1) * PAGE_SIZE : number * PAGE_SIZE],
        number=number,
        newer_url=_url(params, number - 1) if number > 1 else None,
        older_url=_url(params, number + 1) if len(kept) > number * PAGE_SIZE else None,
    )


def _url(params: dict[str, str], number: int) -> str:
    query = {**params, "page": str(number)} if number > 1 else params
    return f"{HISTORY_PAGE}?{urlencode(query)}" if query else HISTORY_PAGE


def _history_rows(session: Session, visit: Visit, events: list[AuditEvent]) -> list[HistoryRow]:
    people = professionals_by_id(
        session,
        {e.agent_professional_id for e in events} | {_staff_id(e) for e in events},
    )
    organisations = organisations_by_id(
        session,
        {e.agent_organisation_id for e in events} | {p.organisation_id for p in people.values()},
    )
    own_subject = f"Patient/{visit.actor.person_id}"
    rows = []
    for event in events:
        details = _json(event.details, {})
        person = people.get(event.agent_professional_id or uuid.UUID(int=0))
        organisation_id = event.agent_organisation_id or (
            person.organisation_id if person else None
        )
        organisation = organisations.get(organisation_id) if organisation_id else None
        own = event.agent_subject == own_subject
        who = _who(visit, event, person, own, _representative(session, event))
        staff = people.get(_staff_id(event) or uuid.UUID(int=0))
        if staff is not None and person is not None:
            # A secretary used the doctor's access: both are named, as the trail names them.
            who = visit.gettext(
                "%(staff)s (secretary) for %(professional)s",
                staff=f"{staff.given} {staff.family}",
                professional=f"{person.given} {person.family}",
            )
        rows.append(
            HistoryRow(
                event=event,
                who=who,
                profession=event.agent_profession or (person.profession.value if person else None),
                organisation=organisation.name if organisation else None,
                own=own,
                emergency=event.action is AuditAction.BREAK_GLASS
                or str(details.get("basis", "")).startswith("emergency"),
                document_ids=[str(i) for i in _json(event.entity_ids, [])],
                details=details,
            )
        )
    return rows


def _who(
    visit: Visit,
    event: AuditEvent,
    person: Professional | None,
    own: bool,
    representative: bool,
) -> str:
    if person is not None:
        return f"{person.given} {person.family}"
    if own:
        return visit.gettext("You")
    if event.agent_kind == "patient":
        # Only the dossier's own patient is "the patient"; any other patient (one refused on
        # this dossier, one who claimed to represent its patient) is someone else.
        if event.agent_subject == f"Patient/{event.chain_id}":
            return visit.gettext("The patient")
        if representative:
            return visit.gettext("A representative")
        return visit.gettext("Another patient")
    others = {
        "feeding-system": visit.gettext("An organisation's software"),
        "job": visit.gettext("Carnet (automatic)"),
    }
    return others.get(event.agent_kind, visit.gettext("The agency"))


def _staff_id(event: AuditEvent) -> uuid.UUID | None:
    """The staff member who acted for the event's professional, if one did.

    Staff are audited under their own name with the professional whose access they used
    (``Actor.agent``): the subject names someone other than ``agent_professional_id``.
    """
    if event.agent_kind != "professional" or event.agent_professional_id is None:
        return None
    try:
        subject = uuid.UUID(event.agent_subject.removeprefix("Practitioner/"))
    except ValueError:
        return None
    return subject if subject != event.agent_professional_id else None


def _representative(session: Session, event: AuditEvent) -> bool:
    """Whether a patient-kind agent acted as a representative of the dossier's patient.

    An allowed event on their behalf was checked by the policy; a refused one is only a
    claim, checked against the representations live when it was made.
    """
    if event.agent_kind != "patient" or event.on_behalf_of != event.chain_id:
        return False
    if event.outcome is AuditOutcome.ALLOWED:
        return True
    try:
        person = uuid.UUID(event.agent_subject.removeprefix("Patient/"))
    except ValueError:
        return False
    return access_guard.represents(session, person, event.chain_id, now=event.recorded_at)


def _json(text: str, default: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default
