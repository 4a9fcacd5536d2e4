"""Data portability: ``GET /fhir/Patient/{id}/$export-dossier`` — the whole dossier in one zip.

The zip holds a FHIR ``Bundle`` of the dossier and the original files (see ``carnet.exports``).
Only the patient or their representative may ask; the export is checked by the policy and
recorded in the audit trail like any reading. It is offered before a dossier is closed.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.exports import build_export_zip
from carnet.fhir.capability import ResourceSupport
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.patient_reference import InvalidPatientReference
from carnet.fhir.patient_reference import patient_id as patient_of
from carnet.web.authentication import CurrentActor

router = APIRouter()
SUPPORT = (ResourceSupport("Patient", operations=("export-dossier",)),)


@router.get(
    "/Patient/{patient}/$export-dossier", summary="Export the whole dossier (zip)", tags=["Export"]
)
def export_dossier(
    patient: str, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
) -> Response:
    """The dossier as a zip: a FHIR Bundle and the original files."""
    try:
        patient_id = patient_of(patient, field="patient")
    except InvalidPatientReference:
        raise AccessDenied("malformed id") from None
    with transaction(platform) as session:
        dossier = open_dossier(
            session, actor, patient_id, purposes.EXPORT_DOSSIER, clock=platform.clock
        )
        archive = build_export_zip(session, dossier, platform.store, base_url=base)
    return Response(
        archive,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="carnet-{patient_id}.zip"',
            "Cache-Control": "no-store",
        },
    )
