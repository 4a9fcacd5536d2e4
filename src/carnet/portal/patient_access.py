"""Who may open the dossier: the patient's access rules, and the directory to choose from.

The rules are read and changed only through ``access.rules``, which asks the policy and
records each change on the dossier's audit trail.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.orm import Session

from carnet.access import care as access_care
from carnet.access import purposes
from carnet.access import representation as access_representation
from carnet.access import rules as access_rules
from carnet.access.door import open_dossier
from carnet.access.errors import AccessRuleNotFound, ProfessionalBlocked
from carnet.access.models import GrantLevel
from carnet.directory import service as directory
from carnet.directory.models import Profession, Professional
from carnet.errors import InvalidInput, NotFound
from carnet.portal.error_words import said
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
    return _access_page(visit, q.strip())


@dataclass(frozen=True)
class CareCode:
    """A one-time code just issued, shown once: the patient reads it out to a professional."""

    code: str
    expires_at: dt.datetime

    @property
    def grouped(self) -> str:
        """The code in two groups of four digits, easier to read out."""
        return f"{self.code[:4]} {self.code[4:]}"


@dataclass(frozen=True)
class BlockedQuestion:
    """The grant the patient asked for while its professional is blocked: asked again."""

    professional: uuid.UUID
    level: str
    ends: str


def _access_page(
    visit: Visit,
    query: str,
    *,
    question: BlockedQuestion | None = None,
    care_code: CareCode | None = None,
    status_code: int = 200,
) -> Response:
    overview = None
    representatives: list[access_representation.Representative] = []
    found: list[Professional] = []
    emergency_choice_id = None
    with visit.transaction() as session:
        whose = whose_dossier(session, visit)
        if whose.state != "opposed":
            opened = open_dossier(
                session,
                visit.actor,
                visit.patient_id,
                purposes.READ_ACCESS_RULES,
                clock=visit.platform.clock,
            )
            overview = access_rules.access_overview(session, opened)
            representatives = access_representation.representatives(session, opened)
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
        if question is not None:
            named.add(question.professional)
        people = professionals_by_id(session, named) | {p.id: p for p in found}
        organisations = organisations_by_id(
            session,
            {p.organisation_id for p in people.values()}
            | ({g.organisation_id for g in overview.grants} if overview else set()),
        )
    blocked = {b.professional_id for b in overview.blocks} if overview else set()
    granted = (
        {g.professional_id: g for g in overview.grants if g.professional_id} if overview else {}
    )
    zone = visit.formats.zone
    return visit.render(
        "patient/access.html",
        status_code=status_code,
        whose=whose,
        overview=overview,
        emergency_choice_id=emergency_choice_id,
        people=people,
        organisations=organisations,
        q=query,
        found=found,
        blocked=blocked,
        granted=granted,
        # The last day of access, as the grant form takes it (an end date gives that whole day).
        granted_until={
            professional: (grant.ends_at.astimezone(zone) - dt.timedelta(days=1)).date().isoformat()
            for professional, grant in granted.items()
            if grant.ends_at is not None
        },
        question=question,
        care_code=care_code,
        representatives=representatives,
        # Only the patient in person names who acts for them, not someone acting for them.
        names_representatives=not visit.actor.represents_someone_else,
        # The last day of each care-contact window, as its date field takes it.
        care_until={
            contact.id: (contact.window_ends_at.astimezone(zone) - dt.timedelta(days=1))
            .date()
            .isoformat()
            for contact in (overview.care_contacts if overview else [])
        },
        treating_professions=[p.value for p in _TREATING_PROFESSIONS],
        today=visit.platform.clock.now().astimezone(zone).date().isoformat(),
    )


def _directory_search(session: Session, query: str) -> list[Professional]:
    """Active professionals named by every word of ``query`` (in any order, accents and case
    aside), or whose identifier it is."""
    return directory.search_professionals(session, name=query, limit=SEARCH_LIMIT)


def _done(visit: Visit, message: str) -> Response:
    return visit.redirect(ACCESS_PAGE, flash=message, kind="success")


def _failed(
    visit: Visit,
    error: InvalidInput | AccessRuleNotFound,
    query: str = "",
    *,
    kept: dict[str, str] | None = None,
) -> Response:
    return visit.redirect(
        _access_url(query), flash=said(error, visit.language), kind="error", kept=kept
    )


def _act(
    visit: Visit,
    change: Callable[[Session], object],
    done: str,
    *,
    kept: dict[str, str] | None = None,
) -> Response:
    """Make one change to the patient's rules in its own transaction, then back to the page
    (with what was ``kept`` of the form, if refused)."""
    try:
        with visit.transaction() as session:
            change(session)
    except _ACTION_FAILURES as error:
        return _failed(visit, error, kept=kept)
    return _done(visit, done)


def _professional_of(form_value: str) -> uuid.UUID:
    return parse_id(form_value)


@router.post("/access/grants")
def grant(visit: PatientVisit, form: CheckedForm) -> Response:
    """Let a professional open the dossier (normal or extended), until a date or for good.

    A professional who already has access has their grant changed, not a second one; a blocked
    professional is granted only with ``lift_block`` (the button or the question says so),
    else the page asks whether to lift the block.
    """
    professional_id = _professional_of(form_text(form, "professional"))
    query = form_text(form, "q").strip()
    # Put back in the professional's grant form if refused.
    typed = {
        "professional": str(professional_id),
        "level": form_text(form, "level"),
        "ends": form_text(form, "ends"),
    }
    try:
        level = GrantLevel(form_text(form, "level") or GrantLevel.NORMAL.value)
        until = parse_date(form_text(form, "ends"))
    except ValueError:
        return visit.redirect(
            _access_url(query),
            flash=visit.gettext("Choose the level of access and an end date as YYYY-MM-DD."),
            kind="error",
            kept=typed,
        )
    # An end date gives access through that whole day.
    ends_at = start_of_day(until + dt.timedelta(days=1), visit.formats.zone) if until else None
    clock = visit.platform.clock
    try:
        with visit.transaction() as session:
            if form_text(form, "lift_block") == "1":
                _lift_block_if_any(session, visit, professional_id)
            access_rules.grant_access(
                session,
                open_dossier(
                    session, visit.actor, visit.patient_id, purposes.GRANT_ACCESS, clock=clock
                ),
                level=level,
                professional_id=professional_id,
                ends_at=ends_at,
            )
    except ProfessionalBlocked:
        question = BlockedQuestion(professional_id, level.value, form_text(form, "ends"))
        return _access_page(visit, query, question=question, status_code=409)
    except _ACTION_FAILURES as error:
        return _failed(visit, error, query, kept=typed)
    return visit.redirect(
        _access_url(query), flash=visit.gettext("Access granted."), kind="success"
    )


def _lift_block_if_any(session: Session, visit: Visit, professional_id: uuid.UUID) -> None:
    """Lift the block on the professional, if one stands (the page may be older than a lift)."""
    try:
        access_rules.lift_block(
            session,
            open_dossier(
                session,
                visit.actor,
                visit.patient_id,
                purposes.LIFT_BLOCK,
                clock=visit.platform.clock,
            ),
            professional_id,
        )
    except AccessRuleNotFound:
        return


def _access_url(query: str) -> str:
    """The access page, back on the search the patient made (their results still listed)."""
    return f"{ACCESS_PAGE}?{urlencode({'q': query})}#find-heading" if query else ACCESS_PAGE


@router.post("/access/grants/{grant_id}/revoke")
def revoke(visit: PatientVisit, grant_id: str, form: CheckedForm) -> Response:
    """End a grant now."""
    return _act(
        visit,
        lambda session: access_rules.revoke_grant(
            session,
            open_dossier(
                session,
                visit.actor,
                visit.patient_id,
                purposes.REVOKE_ACCESS,
                clock=visit.platform.clock,
            ),
            parse_id(grant_id),
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
            session,
            open_dossier(
                session,
                visit.actor,
                visit.patient_id,
                purposes.BLOCK_PROFESSIONAL,
                clock=visit.platform.clock,
            ),
            professional_id,
        ),
        visit.gettext("The professional is blocked from your dossier."),
    )


@router.post("/access/blocks/{block_id}/lift")
def lift_block(visit: PatientVisit, block_id: str, form: CheckedForm) -> Response:
    """Lift a block: the professional's other rules apply again."""
    return _act(
        visit,
        lambda session: access_rules.lift_block_by_id(
            session,
            open_dossier(
                session,
                visit.actor,
                visit.patient_id,
                purposes.LIFT_BLOCK,
                clock=visit.platform.clock,
            ),
            parse_id(block_id),
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
            session,
            open_dossier(
                session,
                visit.actor,
                visit.patient_id,
                purposes.DESIGNATE_TREATING_DOCTOR,
                clock=visit.platform.clock,
            ),
            professional_id,
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
            open_dossier(
                session,
                visit.actor,
                visit.patient_id,
                purposes.DESIGNATE_TREATING_DOCTOR,
                clock=visit.platform.clock,
            ),
            parse_id(designation_id),
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
                    session,
                    open_dossier(
                        session,
                        visit.actor,
                        visit.patient_id,
                        purposes.READ_ACCESS_RULES,
                        clock=clock,
                    ),
                ).preferences
                access_rules.set_preferences(
                    session,
                    open_dossier(
                        session,
                        visit.actor,
                        visit.patient_id,
                        purposes.SET_ACCESS_PREFERENCES,
                        clock=clock,
                    ),
                    replace(current, emergency_opposed=True, emergency_widened=False),
                )
                message = visit.gettext(
                    "Emergency access is opposed: no professional may break the glass."
                )
            elif choice == "withdraw":
                access_rules.withdraw_emergency_choice(
                    session,
                    open_dossier(
                        session,
                        visit.actor,
                        visit.patient_id,
                        purposes.SET_ACCESS_PREFERENCES,
                        clock=clock,
                    ),
                    parse_id(form_text(form, "preferences")),
                )
                message = visit.gettext(
                    "Your opposition is withdrawn: emergency physicians may open your dossier."
                )
            else:
                raise NotFound("There is nothing at this address.")
    except _ACTION_FAILURES as error:
        return _failed(visit, error)
    return _done(visit, message)


# --- care contacts: the code the patient shows, and the windows they adjust ------------------


@router.post("/access/care-contact-code")
def care_contact_code(visit: PatientVisit, form: CheckedForm) -> Response:
    """Issue a one-time code for a professional the patient is with, and show it once.

    The page is answered directly (not redirected): the code is never stored in clear, so it
    is shown on this answer only.
    """
    clock = visit.platform.clock
    try:
        with visit.transaction() as session:
            code = access_care.issue_care_contact_code(
                session,
                open_dossier(
                    session,
                    visit.actor,
                    visit.patient_id,
                    purposes.ISSUE_CARE_CONTACT_CODE,
                    clock=clock,
                ),
            )
    except _ACTION_FAILURES as error:
        return _failed(visit, error)
    expires_at = clock.now() + access_care.CARE_CONTACT_CODE_LIFETIME
    return _access_page(visit, "", care_code=CareCode(code, expires_at))


@router.post("/access/care-contacts/{contact_id}")
def adjust_care_contact(visit: PatientVisit, contact_id: str, form: CheckedForm) -> Response:
    """Change the last day a professional seen in person may consult the dossier, or end it now.

    The chosen date gives access through that whole day; ``end`` ends the window at once.
    """
    wanted = parse_id(contact_id)
    clock = visit.platform.clock
    if form_text(form, "end") == "1":
        ends_at = clock.now()
        done = visit.gettext("The care contact has ended.")
    else:
        try:
            until = parse_date(form_text(form, "until"))
        except ValueError:
            until = None
        if until is None:
            return visit.redirect(
                ACCESS_PAGE,
                flash=visit.gettext("Choose the last day of access as YYYY-MM-DD."),
                kind="error",
                kept={"contact": str(wanted), "until": form_text(form, "until")},
            )
        ends_at = start_of_day(until + dt.timedelta(days=1), visit.formats.zone)
        done = visit.gettext(
            "The care contact now lasts until %(until)s.", until=visit.formats.date(until)
        )
    return _act(
        visit,
        lambda session: access_care.adjust_care_contact(
            session,
            open_dossier(
                session, visit.actor, visit.patient_id, purposes.ADJUST_CARE_CONTACT, clock=clock
            ),
            wanted,
            ends_at=ends_at,
        ),
        done,
        kept={"contact": str(wanted), "until": form_text(form, "until")},
    )
