"""The agency portal's pages (see ``carnet.portal.visits`` for what they share)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from carnet.portal.visits import OperatorVisit

router = APIRouter(prefix="/portal/agency", include_in_schema=False)


@router.get("")
def home(visit: OperatorVisit) -> Response:
    """The agency's home page."""
    return visit.render("agency/home.html")
