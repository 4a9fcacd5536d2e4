"""``GET /fhir/metadata``: the CapabilityStatement (no authentication: clients need it first)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from carnet.fhir.capability import capability_statement
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform
from carnet.fhir.outcome import FhirResponse

router = APIRouter()


@router.get("/metadata", summary="CapabilityStatement", tags=["FHIR"])
def metadata(platform: CurrentPlatform, base: BaseUrl) -> JSONResponse:
    """What this server supports, exactly."""
    from carnet.fhir.router import DECLARATIONS  # noqa: PLC0415 — the router lists this module

    statement = capability_statement(
        DECLARATIONS, base_url=base, issuer=platform.settings.public_url.rstrip("/")
    )
    return FhirResponse(statement)
