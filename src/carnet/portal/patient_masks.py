"""Who sees one document: the patient hides it from named professionals, or shows it again.

Besides hiding a document from every professional (the viewer's switch), the patient may hide
it from one person only — a colleague at their workplace, a relative who is a nurse — while the
others who follow them still see it. The page lists the professionals who may open the dossier
now (grants, care contacts, the treating doctor) and the masks in force; ``access.masks`` and
``access.rules`` make each change, through the door, on the dossier's audit trail.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.orm import Session

from carnet.access import masks as access_masks
from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.door import open_dossier
from carnet.access.errors import AccessRuleNotFound
from carnet.directory.errors import ProfessionalNotFound
from carnet.documents import reading
from carnet.portal.error_words import said
from carnet.portal.patient_context import professionals_by_id, whose_dossier
from carnet.portal.visits import CheckedForm, PatientVisit, Visit, form_text, parse_id

router = APIRouter()


def masks_url(document_id: uuid.UUID) -> str:
    """The page choosing who sees one document."""
    return f"/portal/patient/documents/{document_id}/who-sees-it"


@router.get("/documents/{document_id}/who-sees-it")
def who_sees_it(visit: PatientVisit, document_id: str) -> Response:
    """The professionals who may open the dossier, each hidden from this document or not."""
    wanted = parse_id(document_id)
    clock = visit.platform.clock
    with visit.transaction() as session:
        whose = whose_dossier(session, visit)
        document = reading.get_document(
            session,
            open_dossier(
                session, visit.actor, visit.patient_id, purposes.READ_DOCUMENTS, clock=clock
            ),
            wanted,
        )
        overview = access_rules.access_overview(
            session,
            open_dossier(
                session, visit.actor, visit.patient_id, purposes.READ_ACCESS_RULES, clock=clock
            ),
        )
        masks = access_masks.masks_of_document(
            session,
            open_dossier(
                session, visit.actor, visit.patient_id, purposes.MASK_DOCUMENT, clock=clock
            ),
            wanted,
        )
        with_access: list[uuid.UUID] = [
            g.professional_id for g in overview.grants if g.professional_id
        ] + [c.professional_id for c in overview.care_contacts]
        if overview.treating_doctor is not None:
            with_access.append(overview.treating_doctor.professional_id)
        masked = {mask.professional_id: mask for mask in masks}
        # Its author always sees what they wrote: hiding it from them would say otherwise.
        candidates = [
            p
            for p in dict.fromkeys(with_access)
            if p not in masked and p != document.author_professional_id
        ]
        people = professionals_by_id(session, {*candidates, *masked.keys()})
    return visit.render(
        "patient/who_sees_it.html",
        whose=whose,
        document=document,
        masks=masks,
        candidates=candidates,
        people=people,
        here=masks_url(wanted),
    )


@router.post("/documents/{document_id}/who-sees-it")
def hide_from(visit: PatientVisit, document_id: str, form: CheckedForm) -> Response:
    """Hide the document from one professional."""
    wanted = parse_id(document_id)
    professional_id = parse_id(form_text(form, "professional"))
    clock = visit.platform.clock
    try:
        with visit.transaction() as session:
            opened = open_dossier(
                session, visit.actor, visit.patient_id, purposes.READ_DOCUMENTS, clock=clock
            )
            reading.get_document(session, opened, wanted)  # one the patient can see
            access_masks.mask_once(
                session,
                open_dossier(
                    session, visit.actor, visit.patient_id, purposes.MASK_DOCUMENT, clock=clock
                ),
                wanted,
                professional_id,
            )
            name = _name(session, professional_id)
    except ProfessionalNotFound as error:
        return _back(visit, wanted, said(error, visit.language), "error")
    return _back(
        visit, wanted, visit.gettext("%(name)s no longer sees this document.", name=name), "success"
    )


@router.post("/documents/{document_id}/who-sees-it/{mask_id}/lift")
def show_again(visit: PatientVisit, document_id: str, mask_id: str, form: CheckedForm) -> Response:
    """Show the document again to a professional it was hidden from."""
    wanted, mask = parse_id(document_id), parse_id(mask_id)
    clock = visit.platform.clock
    try:
        with visit.transaction() as session:
            lifted = access_masks.lift_mask(
                session,
                open_dossier(
                    session, visit.actor, visit.patient_id, purposes.MASK_DOCUMENT, clock=clock
                ),
                mask,
            )
            name = _name(session, lifted.professional_id)
    except AccessRuleNotFound as error:
        return _back(visit, wanted, said(error, visit.language), "error")
    return _back(
        visit,
        wanted,
        visit.gettext("%(name)s may see this document again.", name=name),
        "success",
    )


def _name(session: Session, professional_id: uuid.UUID) -> str:
    person = professionals_by_id(session, {professional_id}).get(professional_id)
    return f"{person.given} {person.family}" if person else ""


def _back(visit: Visit, document_id: uuid.UUID, message: str, kind: str) -> Response:
    return visit.redirect(masks_url(document_id), flash=message, kind=kind)
