"""A patient's health data for a professional: treatments, vaccinations, results over time.

One click from the patient page (``…/patients/<id>/health``), a result's chart one more; the
patient's header and the emergency banner on both, as on every page of a dossier. Read through
``portal.health`` from a dossier opened to read clinical facts: the professional sees the
facts of the documents they may see, no more.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import Response

from carnet.access import care as access_care
from carnet.access import identification as access_identification
from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.portal import professional_care
from carnet.portal.health import chart_query, health_view, result_chart
from carnet.portal.professional_header import header_of, patient_header
from carnet.portal.professional_links import patient_url
from carnet.portal.visits import ProfessionalVisit, parse_id
from carnet.web.refusals import record_refusal

router = APIRouter()


def health_url(patient_id: uuid.UUID) -> str:
    """The health data page of a patient."""
    return f"{patient_url(patient_id)}/health"


@router.get("/patients/{patient_id}/health")
def health(patient_id: str, visit: ProfessionalVisit) -> Response:
    """The medication list, the vaccination record and the latest results."""
    dossier = parse_id(patient_id)
    clock = visit.platform.clock
    try:
        with visit.transaction() as session:
            opened = open_dossier(
                session, visit.actor, dossier, purposes.FIND_CLINICAL_FACTS, clock=clock
            )
            patient = access_identification.read_demographics(
                session, visit.actor, dossier, clock=clock
            )
            view = health_view(session, opened, patient)
            # The demographics just read make the header (one read, one audit entry).
            running = access_care.emergency_access_in_force(
                session, visit.actor, dossier, clock=clock
            )
            header = header_of(patient, running.expires_at if running is not None else None)
    except AccessDenied as refusal:
        record_refusal(visit.platform, refusal)
        return professional_care.no_access_page(visit, dossier)
    return visit.render(
        "professional/health.html",
        patient_header=header,
        view=view,
        chart_url=lambda line: f"{health_url(dossier)}/result?{chart_query(line)}",
        today=clock.now().date(),
    )


@router.get("/patients/{patient_id}/health/result")
def result(patient_id: str, visit: ProfessionalVisit, code: str = "", system: str = "") -> Response:
    """One result's values over time: a chart, and the same values in a table."""
    dossier = parse_id(patient_id)
    clock = visit.platform.clock
    try:
        with visit.transaction() as session:
            opened = open_dossier(
                session, visit.actor, dossier, purposes.FIND_CLINICAL_FACTS, clock=clock
            )
            chart = result_chart(session, visit, opened, system, code) if code else None
            header = patient_header(session, visit, dossier)
    except AccessDenied as refusal:
        record_refusal(visit.platform, refusal)
        return professional_care.no_access_page(visit, dossier)
    return visit.render(
        "professional/result.html",
        patient_header=header,
        chart=chart,
        back=health_url(dossier),
        document_url_prefix=f"{patient_url(dossier)}/documents/",
    )
