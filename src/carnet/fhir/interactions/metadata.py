"""``GET /fhir/metadata``: the CapabilityStatement (no authentication: clients need it first).

The router hands it what the other interactions declare, so this module imports none of them
and the router is not imported back.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from carnet.fhir.capability import ResourceSupport, SystemSupport, capability_statement
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform
from carnet.fhir.outcome import FhirResponse


def capability_router(declarations: Sequence[ResourceSupport | SystemSupport]) -> APIRouter:
    """The ``/metadata`` route, stating exactly ``declarations``."""
    router = APIRouter()
    declared = tuple(declarations)

    @router.get("/metadata", summary="CapabilityStatement", tags=["FHIR"])
    def metadata(platform: CurrentPlatform, base: BaseUrl) -> JSONResponse:
        """What this server supports, exactly."""
        statement = capability_statement(
            declared, base_url=base, issuer=platform.settings.public_url.rstrip("/")
        )
        return FhirResponse(statement)

    return router
