"""All FHIR interactions, mounted at ``/fhir``."""

from __future__ import annotations

from fastapi import APIRouter

from carnet.fhir.interactions import audit_event
from carnet.fhir.mhd import iti67_find, iti68_retrieve

router = APIRouter(prefix="/fhir")
router.include_router(iti67_find.router)
router.include_router(iti68_retrieve.router)
router.include_router(audit_event.router)
