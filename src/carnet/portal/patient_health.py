"""The patient's health data: treatments, vaccinations with what is due, results over time.

One click from the patient's home (``/portal/patient/health``); a result's chart one more.
Read through ``portal.health`` from a dossier opened to read clinical facts, so the patient (or
their representative) sees exactly what the documents they may read carry.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.portal.health import chart_query, health_view, result_chart
from carnet.portal.patient_context import whose_dossier
from carnet.portal.visits import PatientVisit

router = APIRouter()

HEALTH_PAGE = "/portal/patient/health"


@router.get("/health")
def health(visit: PatientVisit) -> Response:
    """The medication list, the vaccination record and the latest results."""
    view = None
    with visit.transaction() as session:
        whose = whose_dossier(session, visit, with_patient=True)
        if whose.readable and whose.patient is not None:
            view = health_view(
                session,
                open_dossier(
                    session,
                    visit.actor,
                    visit.patient_id,
                    purposes.FIND_CLINICAL_FACTS,
                    clock=visit.platform.clock,
                ),
                whose.patient,
            )
    return visit.render(
        "patient/health.html",
        whose=whose,
        view=view,
        chart_url=lambda line: f"{HEALTH_PAGE}/result?{chart_query(line)}",
        today=visit.platform.clock.now().date(),
    )


@router.get("/health/result")
def result(visit: PatientVisit, code: str = "", system: str = "") -> Response:
    """One result's values over time: a chart, and the same values in a table."""
    chart = None
    with visit.transaction() as session:
        whose = whose_dossier(session, visit)
        if whose.readable and code:
            chart = result_chart(
                session,
                visit,
                open_dossier(
                    session,
                    visit.actor,
                    visit.patient_id,
                    purposes.FIND_CLINICAL_FACTS,
                    clock=visit.platform.clock,
                ),
                system,
                code,
            )
    return visit.render(
        "patient/result.html",
        whose=whose,
        chart=chart,
        back=HEALTH_PAGE,
        document_url_prefix="/portal/patient/documents/",
    )
