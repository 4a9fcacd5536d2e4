"""Data portability: ``GET /fhir/Patient/{id}/$export-dossier`` — the whole dossier in one zip.

The zip holds a FHIR ``Bundle`` of the dossier and the original files (see ``carnet.exports``).
Only the patient or their representative may ask; the export is checked by the policy and
recorded in the audit trail like any reading. It is offered before a dossier is closed.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from carnet.access.errors import AccessDenied
from carnet.exports import build_export_zip
from carnet.fhir.capability import ResourceSupport
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.ids import parse_reference
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
    patient_id = parse_reference(patient, "Patient")
    if patient_id is None:
        raise AccessDenied("malformed id")
    with transaction(platform) as session:
        archive = build_export_zip(
            session, platform.store, actor, patient_id, clock=platform.clock, base_url=base
        )
    return Response(
        archive,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="carnet-{patient_id}.zip"',
            "Cache-Control": "no-store",
        },
    )
