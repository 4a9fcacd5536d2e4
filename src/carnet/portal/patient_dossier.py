"""The dossier itself: its state and history, activation with the letter's code, objection,
reopening, export, closing, and choosing whose dossier to act on (one's own, or that of someone
one represents).

State changes go through ``lifecycle.service`` (the policy lets only the patient or their
representative move the dossier); the export is the FHIR ``$export-dossier`` zip, built by
``carnet.exports`` through the same policy-checked, audited reads.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access import identification as access_identification
from carnet.access import purposes
from carnet.access import representation as access_representation
from carnet.access.door import open_dossier
from carnet.access.policy import Action
from carnet.audit.models import AuditAction
from carnet.errors import NotFound, StateRefused
from carnet.exports import build_export_zip
from carnet.lifecycle import service as lifecycle
from carnet.lifecycle.errors import ActivationRefused
from carnet.portal.error_words import said
from carnet.portal.patient_context import READABLE_STATES, whose_dossier
from carnet.portal.visits import CheckedForm, PatientVisit, Visit, form_text, parse_id

router = APIRouter()

DOSSIER_PAGE = "/portal/patient/dossier"
HOME_PAGE = "/portal/patient"


@dataclass(frozen=True)
class Represented:
    """Someone the visitor may act for, named when their dossier's state allows it."""

    patient_id: uuid.UUID
    name: str | None
    state: str


@router.get("/dossier")
def dossier(visit: PatientVisit) -> Response:
    """The dossier's state, what can be done with it now, its history, the people represented."""
    return _render(visit)


def _render(
    visit: Visit, *, problem: str | None = None, field: str | None = None, status_code: int = 200
) -> Response:
    clock = visit.platform.clock
    with visit.transaction() as session:
        whose = whose_dossier(session, visit, with_patient=True)
        transitions = lifecycle.dossier_history(
            session,
            open_dossier(
                session, visit.actor, visit.patient_id, purposes.MANAGE_DOSSIER, clock=clock
            ),
        )
        represented = _represented(session, visit)
    return visit.render(
        "patient/dossier.html",
        status_code=status_code,
        whose=whose,
        transitions=transitions,
        represented=represented,
        problem=problem,
        field=field,
    )


def _represented(session: Session, visit: Visit) -> list[Represented]:
    """The people the signed-in person represents now, each read as their representative."""
    person_id = visit.actor.person_id
    if person_id is None:
        return []
    clock = visit.platform.clock
    found = []
    for patient_id in access_representation.represented_patients(
        session, person_id, now=clock.now()
    ):
        actor = replace(visit.actor, acting_for=patient_id)
        access = access_guard.authorize(
            session,
            actor,
            patient_id,
            Action.MANAGE_DOSSIER,
            now=clock.now(),
            audit=AuditAction.LIFECYCLE,
        )
        name = None
        if access.dossier_state in READABLE_STATES:
            patient = access_identification.read_demographics(
                session, actor, patient_id, clock=clock
            )
            name = f"{patient.given} {patient.family}"
        found.append(Represented(patient_id, name, access.dossier_state))
    return sorted(found, key=lambda r: (r.name or "", str(r.patient_id)))


# --- the dossier's state -----------------------------------------------------------------------


@router.post("/dossier/activate")
def activate(visit: PatientVisit, form: CheckedForm) -> Response:
    """Activate an invited dossier with the code of its invitation letter."""
    code = form_text(form, "code")
    clock = visit.platform.clock
    refused = None
    with visit.transaction() as session:
        patient = access_identification.read_demographics(
            session, visit.actor, visit.patient_id, clock=clock
        )
        if not patient.identifiers:
            raise NotFound("This dossier has no national identifier to activate it with.")
        identifier = patient.identifiers[0]
        try:
            lifecycle.activate_with_code(
                session,
                system=identifier.system,
                identifier=identifier.value,
                code=code,
                clock=clock,
            )
        except ActivationRefused as error:
            # The wrong attempt counts against the letter's codes: it is committed with the
            # transaction, not rolled back with the error.
            refused = error
    if refused is not None:
        return _render(visit, problem=refused.message, field="code", status_code=422)
    return visit.redirect(
        HOME_PAGE, flash=visit.gettext("Your dossier is active. Welcome!"), kind="success"
    )


@router.post("/dossier/oppose")
def oppose(visit: PatientVisit, form: CheckedForm) -> Response:
    """Object to an invited dossier: nothing will be accepted in it."""
    return _transition(
        visit,
        lambda session: lifecycle.oppose(
            session,
            open_dossier(
                session,
                visit.actor,
                visit.patient_id,
                purposes.MANAGE_DOSSIER,
                clock=visit.platform.clock,
            ),
        ),
        visit.gettext("Your objection is recorded: the dossier will not be opened."),
    )


@router.post("/dossier/reopen")
def reopen(visit: PatientVisit, form: CheckedForm) -> Response:
    """Open an opposed or closed dossier again."""
    return _transition(
        visit,
        lambda session: lifecycle.activate(
            session,
            open_dossier(
                session,
                visit.actor,
                visit.patient_id,
                purposes.MANAGE_DOSSIER,
                clock=visit.platform.clock,
            ),
        ),
        visit.gettext("Your dossier is open again."),
    )


@router.post("/dossier/close")
def close(visit: PatientVisit, form: CheckedForm) -> Response:
    """Close the dossier, once the patient confirmed they understand what it means."""
    if form_text(form, "understood") != "yes":
        return _render(
            visit,
            problem=visit.gettext(
                "Tick the box to confirm that you understand what closing the dossier means."
            ),
            field="understood",
            status_code=422,
        )
    return _transition(
        visit,
        lambda session: lifecycle.close(
            session,
            open_dossier(
                session,
                visit.actor,
                visit.patient_id,
                purposes.MANAGE_DOSSIER,
                clock=visit.platform.clock,
            ),
        ),
        visit.gettext("Your dossier is closed."),
    )


def _transition(visit: Visit, change: Callable[[Session], object], message: str) -> Response:
    try:
        with visit.transaction() as session:
            change(session)
    except StateRefused as error:
        return visit.redirect(DOSSIER_PAGE, flash=said(error, visit.language), kind="error")
    return visit.redirect(DOSSIER_PAGE, flash=message, kind="success")


# --- export ------------------------------------------------------------------------------------


@router.post("/dossier/export")
def export(visit: PatientVisit, form: CheckedForm) -> Response:
    """The whole dossier as one zip: the FHIR Bundle of ``$export-dossier`` and the files."""
    settings = visit.platform.settings
    with visit.transaction() as session:
        dossier = open_dossier(
            session,
            visit.actor,
            visit.patient_id,
            purposes.EXPORT_DOSSIER,
            clock=visit.platform.clock,
        )
        archive = build_export_zip(
            session,
            dossier,
            visit.platform.store,
            base_url=settings.public_url.rstrip("/") + "/fhir",
        )
    day = visit.platform.clock.now().date().isoformat()
    response = Response(
        archive,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="carnet-{day}.zip"',
            "X-Content-Type-Options": "nosniff",
        },
    )
    return visit.keep(response)


# --- whose dossier -----------------------------------------------------------------------------


@router.post("/dossier/acting-for")
def act_for(visit: PatientVisit, form: CheckedForm) -> Response:
    """Act on the dossier of someone one represents (the policy checks it on every call)."""
    wanted = parse_id(form_text(form, "patient"))
    person_id = visit.actor.person_id
    with visit.transaction() as session:
        represented = (
            access_representation.represented_patients(
                session, person_id, now=visit.platform.clock.now()
            )
            if person_id is not None
            else []
        )
    if wanted not in represented:
        raise NotFound("You do not represent this person.")
    visit.browser = replace(visit.browser, acting_for=str(wanted))
    return visit.redirect(
        HOME_PAGE,
        flash=visit.gettext("You are now acting for the person you represent."),
        kind="info",
    )


@router.post("/dossier/own")
def act_for_oneself(visit: PatientVisit, form: CheckedForm) -> Response:
    """Back to one's own dossier."""
    visit.browser = replace(visit.browser, acting_for=None)
    return visit.redirect(
        HOME_PAGE, flash=visit.gettext("You are back in your own dossier."), kind="info"
    )
