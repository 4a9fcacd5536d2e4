"""ITI-66 Find Document Lists: ``GET /fhir/List?patient=...&code=submissionset``.

https://profiles.ihe.net/ITI/MHD/ITI-66.html — the dossier's SubmissionSets, each listing the
documents the actor may see; a submission none of whose documents the actor may see is absent.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.documents import reading
from carnet.fhir.capability import ResourceSupport
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.ids import document_resource_id
from carnet.fhir.outcome import FhirResponse
from carnet.fhir.patient_reference import patient_id as patient_of
from carnet.fhir.search import InvalidSearch, Parameter, Search, SearchPairs, SearchType
from carnet.fhir.searchset import Found, searchset
from carnet.web.authentication import CurrentActor
from carnet.web.refusals import record_refusal

router = APIRouter()
SEARCH = SearchType(
    "List",
    parameters=(Parameter("patient", "reference"), Parameter("code", "token")),
    max_count=1000,
)
SUPPORT = (
    ResourceSupport("List", interactions=("search-type",), search_params=SEARCH.search_params()),
)
_LIST_TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"


@router.get("/List", summary="ITI-66 Find Document Lists", tags=["MHD"])
def find_lists(
    pairs: SearchPairs, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
) -> JSONResponse:
    """The dossier's submission sets as MHD SubmissionSet Lists (``patient``, ``code``)."""
    search = Search.read(pairs, SEARCH)
    reference = search.one("patient")
    if reference is None:
        raise InvalidSearch("Give the patient whose lists to find.", field="patient")
    patient_id = patient_of(reference, base=base, field="patient")
    code = search.token("code")
    if code is not None and code.code != "submissionset":
        raise InvalidSearch("Carnet keeps SubmissionSets only (no Folders).", field="code")
    try:
        with transaction(platform) as session:
            dossier = open_dossier(
                session, actor, patient_id, purposes.FIND_SUBMISSION_SETS, clock=platform.clock
            )
            found = reading.list_submission_sets(session, dossier)
            resources = [_submission_set(s, docs, base) for s, docs in found]
    except AccessDenied as denied:
        record_refusal(platform, denied)
        resources = []
    # A dossier's submissions are read whole; the page is cut from them.
    page = resources[search.offset : search.offset + search.count]
    return FhirResponse(searchset(base, search, Found(page, total=len(resources))))


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
