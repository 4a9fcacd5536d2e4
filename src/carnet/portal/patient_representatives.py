"""The people the patient names to act for them: a trusted person, a grown-up child, a carer.

Shown on the access page (``patient_access``); named and ended here, through
``access.representation``, which only the patient in person may use.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from fastapi.responses import Response

from carnet.access import purposes
from carnet.access import representation as access_representation
from carnet.access.door import open_dossier
from carnet.access.errors import AccessRuleNotFound
from carnet.errors import InvalidInput
from carnet.patients import identifiers
from carnet.portal.error_words import said
from carnet.portal.patient_context import start_of_day
from carnet.portal.visits import CheckedForm, PatientVisit, form_text, parse_date, parse_id

router = APIRouter()

ACCESS_PAGE = "/portal/patient/access"
_SECTION = f"{ACCESS_PAGE}#representatives-heading"
_TYPED = ("identifier", "birth_date", "ends")


@router.post("/access/representatives")
def name(visit: PatientVisit, form: CheckedForm) -> Response:
    """Name someone, by identifier and birth date, to act for the patient (until a date)."""
    typed = {field: form_text(form, field).strip() for field in _TYPED}
    clock = visit.platform.clock
    try:
        birth_date = parse_date(typed["birth_date"])
        until = parse_date(typed["ends"])
    except ValueError:
        birth_date = until = None
    try:
        if birth_date is None:
            raise InvalidInput(
                visit.gettext("Enter the birth date, and the end date if any, as YYYY-MM-DD."),
                field="birth_date",
            )
        with visit.transaction() as session:
            access_representation.name_representative(
                session,
                open_dossier(
                    session,
                    visit.actor,
                    visit.patient_id,
                    purposes.NAME_REPRESENTATIVE,
                    clock=clock,
                ),
                system=identifiers.system_of_typed(typed["identifier"]),
                value=typed["identifier"],
                birth_date=birth_date,
                # An end date gives the whole day.
                ends_at=(
                    start_of_day(until + dt.timedelta(days=1), visit.formats.zone)
                    if until
                    else None
                ),
            )
    except InvalidInput as error:
        return visit.redirect(
            _SECTION,
            flash=said(error, visit.language),
            kind="error",
            kept={"form": "representative", **typed},
        )
    return visit.redirect(
        _SECTION,
        flash=visit.gettext(
            "This person may now act for you. Every act is traced under their name."
        ),
        kind="success",
    )


@router.post("/access/representatives/{representation_id}/end")
def end(visit: PatientVisit, representation_id: str, form: CheckedForm) -> Response:
    """Stop someone the patient named from acting for them, now."""
    try:
        with visit.transaction() as session:
            access_representation.end_named_representative(
                session,
                open_dossier(
                    session,
                    visit.actor,
                    visit.patient_id,
                    purposes.NAME_REPRESENTATIVE,
                    clock=visit.platform.clock,
                ),
                parse_id(representation_id),
            )
    except (InvalidInput, AccessRuleNotFound) as error:
        return visit.redirect(_SECTION, flash=said(error, visit.language), kind="error")
    return visit.redirect(
        _SECTION, flash=visit.gettext("This person no longer acts for you."), kind="success"
    )
