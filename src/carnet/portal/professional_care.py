"""A care contact from the professional portal: the patient is here, so the dossier opens.

A professional without access to a dossier lands on the "no access" page; when the patient is
in front of them, the page asks for the patient's one-time code (issued in the patient's own
portal or app) or, signed in with the professional card, for the confirmation that the patient's
card was read. ``access.care.record_care_contact`` asks the policy (a blocked professional, a
dossier not active are refused), checks the code and opens the care-contact window; the
professional is then sent to the patient page, one click from the documents.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import Response

from carnet.access import care as access_care
from carnet.access import purposes
from carnet.access.actors import Assurance
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.access.models import CareContactMethod
from carnet.directory.models import Profession
from carnet.errors import InvalidInput
from carnet.portal.error_words import said
from carnet.portal.professional_links import care_contact_url, emergency_url, patient_url
from carnet.portal.visits import CheckedForm, ProfessionalVisit, Visit, form_text, parse_id
from carnet.web.refusals import record_refusal

router = APIRouter()


@router.post("/patients/{patient_id}/care-contact")
def record_care_contact(patient_id: str, visit: ProfessionalVisit, form: CheckedForm) -> Response:
    """Record that the patient is present (their code, or their card), then open the dossier.

    A wrong or expired code, or a card claim without a card sign-in, is said on the same page
    with what was typed; a refusal by the policy is recorded (in its own transaction) and shown
    without its reason, as for break-the-glass.
    """
    dossier = parse_id(patient_id)
    by_card = form_text(form, "method") == CareContactMethod.CARD.value
    # People read codes out in groups ("1234 5678"): only the digits count.
    code = "".join(character for character in form_text(form, "code") if character.isdigit())
    typed = form_text(form, "code")
    if by_card and form.get("card_read") != "yes":
        return no_access_page(
            visit,
            dossier,
            code=typed,
            error=visit.gettext("Confirm that you read the patient's card."),
            status_code=422,
        )
    if not by_card and not code:
        return no_access_page(
            visit,
            dossier,
            code=typed,
            error=visit.gettext("Enter the code the patient shows you (8 digits)."),
            status_code=422,
        )
    clock = visit.platform.clock
    try:
        with visit.transaction() as session:
            contact = access_care.record_care_contact(
                session,
                open_dossier(
                    session, visit.actor, dossier, purposes.RECORD_CARE_CONTACT, clock=clock
                ),
                method=CareContactMethod.CARD if by_card else CareContactMethod.CODE,
                code=None if by_card else code,
            )
    except InvalidInput as error:
        return no_access_page(
            visit, dossier, code=typed, error=said(error, visit.language), status_code=422
        )
    except AccessDenied as refusal:
        record_refusal(visit.platform, refusal)
        return no_access_page(visit, dossier, refused=True, status_code=403)
    until = visit.formats.date(contact.window_ends_at)
    return visit.redirect(
        patient_url(dossier),
        flash=visit.gettext(
            "Care contact recorded: you may consult this dossier until %(until)s.", until=until
        ),
        kind="success",
    )


def no_access_page(
    visit: Visit,
    patient_id: uuid.UUID,
    *,
    code: str = "",
    error: str | None = None,
    refused: bool = False,
    status_code: int = 403,
) -> Response:
    """The page of a professional without access: the care contact first, then the emergency."""
    return visit.render(
        "professional/no_access.html",
        status_code=status_code,
        care_contact_url=care_contact_url(patient_id),
        emergency_url=emergency_url(patient_id),
        may_break_glass=visit.actor.profession == Profession.EMERGENCY_PHYSICIAN.value,
        # The card is read in the professional's own software; only a card sign-in vouches it.
        card_signed_in=visit.actor.assurance >= Assurance.HIGH,
        code=code,
        error=error,
        refused=refused,
    )
