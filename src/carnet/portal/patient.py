"""The patient portal's pages (see ``carnet.portal.visits`` for what they share)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from carnet.portal.visits import PatientVisit

router = APIRouter(prefix="/portal/patient", include_in_schema=False)


@router.get("")
def home(visit: PatientVisit) -> Response:
    """The patient's home page."""
    return visit.render("patient/home.html")
