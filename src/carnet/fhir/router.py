"""The FHIR way in: every interaction under ``/fhir``, one application with its own error
handlers (``outcome.install``); the interactions' declarations make the CapabilityStatement."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from starlette.datastructures import State

from carnet.fhir import outcome
from carnet.fhir.capability import ResourceSupport, SystemSupport
from carnet.fhir.interactions import (
    audit_event,
    care_contact,
    clinical,
    consent,
    directory,
    document_reference,
    export,
    metadata,
    patient,
    summary,
)
from carnet.fhir.mhd import iti65_provide, iti66_find_lists, iti67_find, iti68_retrieve
from carnet.fhir.search import screen_request
from carnet.web.way_in import way_in_application

# Each module serves a part of the API and says which (``SUPPORT``); keep the two lists in step.
MODULES = (
    iti65_provide,
    iti66_find_lists,
    iti67_find,
    iti68_retrieve,
    document_reference,
    audit_event,
    patient,
    export,
    directory,
    consent,
    care_contact,
    clinical,
    summary,
)

DECLARATIONS: tuple[ResourceSupport | SystemSupport, ...] = tuple(
    declaration for module in MODULES for declaration in module.SUPPORT
)

# Every FHIR route's parameters are screened before its own code reads them (see search.py).
router = APIRouter(dependencies=[Depends(screen_request)])
router.include_router(metadata.capability_router(DECLARATIONS), prefix="/fhir")
for module in MODULES:
    router.include_router(module.router, prefix="/fhir")


def application(state: State) -> FastAPI:
    """The FHIR API, answering every error under ``/fhir`` with an OperationOutcome."""
    app = way_in_application(state, title="Carnet FHIR")
    app.include_router(router)
    outcome.install(app)
    return app
