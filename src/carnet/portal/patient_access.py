"""Who may open the dossier: the patient's access rules, and the directory to choose from.

The rules are read and changed only through ``access.rules``, which asks the policy and
records each change on the dossier's audit trail.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import replace

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.orm import Session

from carnet.access import rules as access_rules
from carnet.access.errors import AccessRuleNotFound
from carnet.access.models import GrantLevel
from carnet.directory import service as directory
from carnet.directory.models import Profession, Professional
from carnet.errors import InvalidInput, NotFound
from carnet.portal.patient_context import (
    organisations_by_id,
    professionals_by_id,
    start_of_day,
    whose_dossier,
)
from carnet.portal.visits import CheckedForm, PatientVisit, Visit, form_text, parse_date, parse_id

router = APIRouter()

ACCESS_PAGE = "/portal/patient/access"
SEARCH_LIMIT = 20
# Failures a patient can act on: said on the page they came from, nothing written.
_ACTION_FAILURES = (InvalidInput, AccessRuleNotFound)
_TREATING_PROFESSIONS = (Profession.GENERAL_PRACTITIONER, Profession.SPECIALIST)


# --- who has access ----------------------------------------------------------------------------


@router.get("/access")
def access(visit: PatientVisit, q: str = "") -> Response:
    """The rules in force, and a search of the directory to grant, block or designate."""
    query = q.strip()
    overview = None
    found: list[Professional] = []
    emergency_choice_id = None
    with visit.transaction() as session:
        whose = whose_dossier(session, visit)
        if whose.state != "opposed":
            overview = access_rules.access_overview(
                session, visit.actor, visit.patient_id, clock=visit.platform.clock
            )
            row = access_rules.preferences_in_force(session, visit.patient_id)
            emergency_choice_id = row.id if row is not None else None
        if query:
            found = _directory_search(session, query)
        named = set()
        if overview is not None:
            named = (
                {g.professional_id for g in overview.grants}
                | {c.professional_id for c in overview.care_contacts}
                | {b.professional_id for b in overview.blocks}
                | {e.professional_id for e in overview.emergency_accesses}
            )
            if overview.treating_doctor is not None:
                named.add(overview.treating_doctor.professional_id)
        people = professionals_by_id(session, named) | {p.id: p for p in found}
        organisations = organisations_by_id(
            session,
            {p.organisation_id for p in people.values()}
            | ({g.organisation_id for g in overview.grants} if overview else set()),
        )
    blocked = {b.professional_id for b in overview.blocks} if overview else set()
    return visit.render(
        "patient/access.html",
        whose=whose,
        overview=overview,
        emergency_choice_id=emergency_choice_id,
        people=people,
        organisations=organisations,
        q=query,
        found=found,
        blocked=blocked,
        treating_professions=[p.value for p in _TREATING_PROFESSIONS],
        today=visit.platform.clock.now().astimezone(visit.formats.zone).date().isoformat(),
    )


def _directory_search(session: Session, query: str) -> list[Professional]:
    """Professionals whose name starts with ``query``, or whose identifier it is."""
    by_name = directory.find_professionals(session, name=query, limit=SEARCH_LIMIT)
    by_identifier = directory.find_professionals(
        session, identifier=(None, query), limit=SEARCH_LIMIT
    )
    found = {p.id: p for p in [*by_identifier, *by_name] if p.active}
    return list(found.values())[:SEARCH_LIMIT]


def _done(visit: Visit, message: str) -> Response:
    return visit.redirect(ACCESS_PAGE, flash=message, kind="success")


def _failed(visit: Visit, error: InvalidInput | AccessRuleNotFound) -> Response:
    return visit.redirect(ACCESS_PAGE, flash=error.message, kind="error")


def _act(visit: Visit, change: Callable[[Session], object], done: str) -> Response:
    """Make one change to the patient's rules in its own transaction, then back to the page."""
    try:
        with visit.transaction() as session:
            change(session)
    except _ACTION_FAILURES as error:
        return _failed(visit, error)
    return _done(visit, done)


def _professional_of(form_value: str) -> uuid.UUID:
    return parse_id(form_value)


@router.post("/access/grants")
def grant(visit: PatientVisit, form: CheckedForm) -> Response:
    """Let a professional open the dossier (normal or extended), until a date or for good."""
    professional_id = _professional_of(form_text(form, "professional"))
    try:
        level = GrantLevel(form_text(form, "level") or GrantLevel.NORMAL.value)
        until = parse_date(form_text(form, "ends"))
    except ValueError:
        return visit.redirect(
            ACCESS_PAGE,
            flash=visit.gettext("Choose the level of access and an end date as YYYY-MM-DD."),
            kind="error",
        )
    # An end date gives access through that whole day.
    ends_at = start_of_day(until + dt.timedelta(days=1), visit.formats.zone) if until else None
    try:
        with visit.transaction() as session:
            access_rules.grant_access(
                session,
                visit.actor,
                visit.patient_id,
                level=level,
                professional_id=professional_id,
                ends_at=ends_at,
                clock=visit.platform.clock,
            )
    except _ACTION_FAILURES as error:
        return _failed(visit, error)
    return _done(visit, visit.gettext("Access granted."))


@router.post("/access/grants/{grant_id}/revoke")
def revoke(visit: PatientVisit, grant_id: str, form: CheckedForm) -> Response:
    """End a grant now."""
    return _act(
        visit,
        lambda session: access_rules.revoke_grant(
            session, visit.actor, visit.patient_id, parse_id(grant_id), clock=visit.platform.clock
        ),
        visit.gettext("Access revoked."),
    )


@router.post("/access/blocks")
def block(visit: PatientVisit, form: CheckedForm) -> Response:
    """Bar a professional from the dossier, emergencies included."""
    professional_id = _professional_of(form_text(form, "professional"))
    return _act(
        visit,
        lambda session: access_rules.block_professional(
            session, visit.actor, visit.patient_id, professional_id, clock=visit.platform.clock
        ),
        visit.gettext("The professional is blocked from your dossier."),
    )


@router.post("/access/blocks/{block_id}/lift")
def lift_block(visit: PatientVisit, block_id: str, form: CheckedForm) -> Response:
    """Lift a block: the professional's other rules apply again."""
    return _act(
        visit,
        lambda session: access_rules.lift_block_by_id(
            session, visit.actor, visit.patient_id, parse_id(block_id), clock=visit.platform.clock
        ),
        visit.gettext("The block is lifted."),
    )


@router.post("/access/treating-doctor")
def designate(visit: PatientVisit, form: CheckedForm) -> Response:
    """Make a doctor one's treating doctor (ends the previous designation)."""
    professional_id = _professional_of(form_text(form, "professional"))
    return _act(
        visit,
        lambda session: access_rules.designate_treating_doctor(
            session, visit.actor, visit.patient_id, professional_id, clock=visit.platform.clock
        ),
        visit.gettext("Your treating doctor is designated."),
    )


@router.post("/access/treating-doctor/{designation_id}/end")
def end_designation(visit: PatientVisit, designation_id: str, form: CheckedForm) -> Response:
    """End the treating-doctor designation."""
    return _act(
        visit,
        lambda session: access_rules.end_treating_doctor(
            session,
            visit.actor,
            visit.patient_id,
            parse_id(designation_id),
            clock=visit.platform.clock,
        ),
        visit.gettext("The designation of your treating doctor has ended."),
    )


@router.post("/access/emergency")
def emergency(visit: PatientVisit, form: CheckedForm) -> Response:
    """Oppose emergency access (break-the-glass), or withdraw the opposition."""
    choice = form_text(form, "choice")
    clock = visit.platform.clock
    try:
        with visit.transaction() as session:
            if choice == "oppose":
                # The opposition keeps the care-contact choices in force: read them through
                # the policy first.
                current = access_rules.access_overview(
                    session, visit.actor, visit.patient_id, clock=clock
                ).preferences
                access_rules.set_preferences(
                    session,
                    visit.actor,
                    visit.patient_id,
                    replace(current, emergency_opposed=True, emergency_widened=False),
                    clock=clock,
                )
                message = visit.gettext(
                    "Emergency access is opposed: no professional may break the glass."
                )
            elif choice == "withdraw":
                access_rules.withdraw_emergency_choice(
                    session,
                    visit.actor,
                    visit.patient_id,
                    parse_id(form_text(form, "preferences")),
                    clock=clock,
                )
                message = visit.gettext(
                    "Your opposition is withdrawn: emergency physicians may open your dossier."
                )
            else:
                raise NotFound("There is nothing at this address.")
    except _ACTION_FAILURES as error:
        return _failed(visit, error)
    return _done(visit, message)
