"""All FHIR interactions, mounted at ``/fhir``; their declarations make the CapabilityStatement."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from carnet.fhir.capability import ResourceSupport, SystemSupport
from carnet.fhir.interactions import (
    audit_event,
    consent,
    directory,
    document_reference,
    export,
    metadata,
    patient,
)
from carnet.fhir.mhd import iti65_provide, iti66_find_lists, iti67_find, iti68_retrieve
from carnet.fhir.search import screen_request

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
)

# Every FHIR route's parameters are screened before its own code reads them (see search.py).
router = APIRouter(dependencies=[Depends(screen_request)])
router.include_router(metadata.router, prefix="/fhir")
for module in MODULES:
    router.include_router(module.router, prefix="/fhir")

DECLARATIONS: tuple[ResourceSupport | SystemSupport, ...] = tuple(
    declaration for module in MODULES for declaration in module.SUPPORT
)
