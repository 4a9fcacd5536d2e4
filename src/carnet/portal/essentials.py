"""Adding and withdrawing essential facts, from either portal (the forms of ``_essentials.html``).

Both audiences post here: the essentials service decides, through the access policy, who may
record or withdraw what. Each action goes back to the page it came from (post/redirect/get)
with a message; a refused fact says why in the visitor's language and nothing is written.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import Response

from carnet.access import purposes
from carnet.access.actors import ActorKind
from carnet.access.door import open_dossier
from carnet.errors import Conflict, InvalidInput
from carnet.essentials import service as essentials
from carnet.essentials.models import Category
from carnet.portal.browser_session import safe_next
from carnet.portal.visits import AnyVisit, CheckedForm, Visit, form_text

router = APIRouter(prefix="/portal/essentials", include_in_schema=False)


@router.post("/{patient_id}/facts")
def add_fact(patient_id: uuid.UUID, visit: AnyVisit, form: CheckedForm) -> Response:
    """Record the fact of the form (its category, text and structured parts) in the dossier."""
    back = _back(visit, patient_id, form_text(form, "next"))
    category = form_text(form, "category")
    names = essentials.DETAIL_PARTS.get(Category(category), ()) if _known(category) else ()
    details = {name: form_text(form, name) for name in names if form_text(form, name)}
    text = form_text(form, "text") or _written(category, details)
    try:
        with visit.transaction() as session:
            essentials.record_fact(
                session,
                open_dossier(
                    session,
                    visit.actor,
                    patient_id,
                    purposes.RECORD_ESSENTIALS,
                    clock=visit.platform.clock,
                ),
                category=category,
                text=text,
                details=details,
            )
    except (InvalidInput, Conflict) as error:
        # The form opens again with what was typed, to be corrected rather than retyped.
        typed = {"category": category, "text": form_text(form, "text"), **details}
        return visit.redirect(back, flash=_problem(visit, error), kind="error", kept=typed)
    return visit.redirect(
        back, flash=visit.gettext("Recorded in the essential data."), kind="success"
    )


@router.post("/{patient_id}/facts/{fact_id}/withdraw")
def withdraw_fact(
    patient_id: uuid.UUID, fact_id: uuid.UUID, visit: AnyVisit, form: CheckedForm
) -> Response:
    """Withdraw a fact: it leaves the essential data and stays in the dossier's history."""
    back = _back(visit, patient_id, form_text(form, "next"))
    with visit.transaction() as session:
        essentials.withdraw_fact(
            session,
            open_dossier(
                session,
                visit.actor,
                patient_id,
                purposes.WITHDRAW_ESSENTIALS,
                clock=visit.platform.clock,
            ),
            fact_id,
        )
    return visit.redirect(
        back, flash=visit.gettext("Withdrawn from the essential data."), kind="success"
    )


def _back(visit: Visit, patient_id: uuid.UUID, given: str) -> str:
    """The page the form came from (a local path only), at its essential data."""
    if visit.actor.kind is ActorKind.PATIENT:
        home = "/portal/patient"
    else:
        home = f"/portal/professional/patients/{patient_id}"
    return safe_next(given, home).split("#", 1)[0] + "#essential-data"


def _known(category: str) -> bool:
    return category in {member.value for member in Category}


def _written(category: str, details: dict[str, str]) -> str:
    """The text of a fact whose form asks for its parts only."""
    if category == Category.BLOOD_GROUP:
        return details.get("group", "")
    if category == Category.EMERGENCY_CONTACT and "name" in details:
        relationship = details.get("relationship")
        return f"{details['name']} ({relationship})" if relationship else details["name"]
    return ""


def _problem(visit: Visit, error: InvalidInput | Conflict) -> str:
    """What was wrong, in the visitor's language (the service names the field at fault)."""
    if isinstance(error, Conflict):
        return visit.gettext(
            "A professional recorded the blood group; only a professional can change it."
        )
    messages = {
        "text": visit.gettext("Write the fact down, in 500 characters at most."),
        "category": visit.gettext("Choose what kind of fact this is."),
        "group": visit.gettext("Choose a blood group from the list."),
        "severity": visit.gettext("Choose a severity from the list."),
        "kind": visit.gettext("Choose a kind of directive from the list."),
        "name": visit.gettext("Give the name of the contact."),
        "phone": visit.gettext("Give a telephone number, such as +352 621 123 456."),
        "date": visit.gettext("Give a date that is not in the future."),
        "since": visit.gettext("Give a date that is not in the future."),
    }
    return messages.get(
        error.field or "",
        visit.gettext("Nothing was recorded: a field is too long or not valid."),
    )
