"""ITI-66 Find Document Lists: ``GET /fhir/List?patient=...&code=submissionset``.

https://profiles.ihe.net/ITI/MHD/ITI-66.html — the dossier's SubmissionSets, each listing the
documents the actor may see; a submission none of whose documents the actor may see is absent.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from carnet.access.errors import AccessDenied
from carnet.documents import reading
from carnet.documents.errors import InvalidDocument
from carnet.fhir.capability import ResourceSupport, SearchParam
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.ids import document_resource_id, parse_reference
from carnet.fhir.outcome import FhirResponse
from carnet.web.authentication import CurrentActor
from carnet.web.refusals import record_refusal

router = APIRouter()
SUPPORT = (
    ResourceSupport(
        "List",
        interactions=("search-type",),
        search_params=(SearchParam("patient", "reference"), SearchParam("code", "token")),
    ),
)
_LIST_TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"


@router.get("/List", summary="ITI-66 Find Document Lists", tags=["MHD"])
def find_lists(
    actor: CurrentActor,
    platform: CurrentPlatform,
    base: BaseUrl,
    patient: Annotated[str, Query(description="Patient/<id>")],
    code: Annotated[str, Query(description="submissionset")] = "submissionset",
) -> JSONResponse:
    """The dossier's submission sets as MHD SubmissionSet Lists."""
    patient_id = parse_reference(patient.rsplit("/Patient/", 1)[-1], "Patient")
    if patient_id is None:
        raise InvalidDocument("patient must be Patient/<id>.", field="patient")
    if code.rsplit("|", 1)[-1] != "submissionset":
        raise InvalidDocument("Carnet keeps SubmissionSets only (no Folders).", field="code")
    try:
        with transaction(platform) as session:
            found = reading.list_submission_sets(session, actor, patient_id, clock=platform.clock)
            resources = [_submission_set(s, docs, base) for s, docs in found]
    except AccessDenied as denied:
        record_refusal(platform, denied)
        resources = []
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"{base}/List/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }
    return FhirResponse(bundle)


def _submission_set(submission: Any, docs: list[Any], base: str) -> dict[str, Any]:
    return {
        "resourceType": "List",
        "id": str(submission.id),
        "identifier": [
            {"use": "usual", "system": "urn:ietf:rfc:3986", "value": submission.master_identifier}
        ],
        "extension": [
            {
                "url": "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId",
                "valueIdentifier": {"value": submission.source_id},
            }
        ],
        "status": "current",
        "mode": "working",
        "code": {"coding": [{"system": _LIST_TYPES, "code": "submissionset"}]},
        "subject": {"reference": f"Patient/{submission.patient_id}"},
        "date": submission.submitted_at.isoformat().replace("+00:00", "Z"),
        "entry": [
            {
                "item": {
                    "reference": "DocumentReference/"
                    + document_resource_id(submission.patient_id, document.id)
                }
            }
            for document in docs
        ],
    }
