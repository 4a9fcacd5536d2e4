"""The professional portal's pages (see ``carnet.portal.visits`` for what they share)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from carnet.portal.visits import ProfessionalVisit

router = APIRouter(prefix="/portal/professional", include_in_schema=False)


@router.get("")
def home(visit: ProfessionalVisit) -> Response:
    """The professional's home page."""
    return visit.render("professional/home.html")
