"""Break-the-glass from the professional portal: open a dossier in an emergency.

The form says what follows (the patient is told at once, the access is recorded, it ends by
itself) and asks for a reason and an explicit confirmation; ``access.care.break_glass``
decides and records. A refusal — the patient opposed emergency access, the professional may not
break the glass, the dossier is not open — is shown without saying which: the policy keeps its
reasons for the audit trail.
"""

from __future__ import annotations

import datetime as dt
import uuid

from fastapi import APIRouter
from fastapi.responses import Response

from carnet.access import care as access_care
from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.directory.models import Profession
from carnet.errors import InvalidInput
from carnet.portal.error_words import said
from carnet.portal.professional_links import emergency_url, patient_url
from carnet.portal.visits import CheckedForm, ProfessionalVisit, Visit, form_text, parse_id
from carnet.web.refusals import record_refusal

router = APIRouter()


@router.get("/patients/{patient_id}/emergency")
def emergency_form(patient_id: str, visit: ProfessionalVisit) -> Response:
    """The break-the-glass form, with what it entails."""
    return _form(visit, parse_id(patient_id))


@router.post("/patients/{patient_id}/emergency")
def break_glass(patient_id: str, visit: ProfessionalVisit, form: CheckedForm) -> Response:
    """Open the dossier in an emergency, then show it with the emergency banner.

    Nothing is written unless the reason is given and the consequences confirmed; a refusal by
    the policy is recorded (in its own transaction) and shown on the form.
    """
    dossier = parse_id(patient_id)
    reason = form_text(form, "reason")
    if form.get("confirm") != "yes":
        errors = [visit.gettext("Confirm that you understand what emergency access entails.")]
        if not reason:
            errors.append(visit.gettext("State the reason for emergency access."))
        return _form(visit, dossier, reason=reason, errors=errors, status_code=422)
    clock = visit.platform.clock
    try:
        with visit.transaction() as session:
            opened = access_care.break_glass(
                session,
                open_dossier(session, visit.actor, dossier, purposes.BREAK_GLASS, clock=clock),
                reason=reason,
            )
    except InvalidInput as error:
        return _form(
            visit, dossier, reason=reason, errors=[said(error, visit.language)], status_code=422
        )
    except AccessDenied as refusal:
        record_refusal(visit.platform, refusal)
        return _form(visit, dossier, reason=reason, refused=True, status_code=403)
    until = visit.formats.datetime(opened.expires_at, "short")
    return visit.redirect(
        patient_url(dossier),
        flash=visit.gettext(
            "Emergency access is open until %(until)s. The patient has been told.", until=until
        ),
        kind="warning",
    )


def emergency_expiry(visit: Visit, patient_id: uuid.UUID) -> dt.datetime | None:
    """When this professional's emergency access to the dossier ends, if one is running."""
    with visit.transaction() as session:
        running = access_care.emergency_access_in_force(
            session, visit.actor, patient_id, clock=visit.platform.clock
        )
    return running.expires_at if running is not None else None


def _form(
    visit: Visit,
    patient_id: uuid.UUID,
    *,
    reason: str = "",
    errors: list[str] | None = None,
    refused: bool = False,
    status_code: int = 200,
) -> Response:
    return visit.render(
        "professional/emergency.html",
        status_code=status_code,
        patient_id=patient_id,
        action=emergency_url(patient_id),
        back=patient_url(patient_id),
        may_break_glass=visit.actor.profession == Profession.EMERGENCY_PHYSICIAN.value,
        duration_hours=int(access_care.EMERGENCY_DURATION.total_seconds() // 3600),
        reason=reason,
        errors=errors or [],
        refused=refused,
    )
