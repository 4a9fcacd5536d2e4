"""ITI-67 Find Document References: ``GET /fhir/DocumentReference?patient=...``.

https://profiles.ihe.net/ITI/MHD/ITI-67.html — answers a searchset Bundle holding only the
documents the actor may see; ``total`` counts only those; a search the policy refuses answers an
empty Bundle, as for a patient without documents. When the policy keeps some matching
documents from a professional, an OperationOutcome entry (``search.mode = outcome``, issue code
``suppressed``) says so, without saying which.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from carnet.access.errors import AccessDenied
from carnet.documents import service as documents
from carnet.documents.errors import InvalidDocument
from carnet.documents.models import DocumentStatus
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.ids import parse_reference
from carnet.fhir.mapping.document_reference import document_reference
from carnet.fhir.outcome import FHIR_JSON, operation_outcome, record_refusal
from carnet.web.authentication import CurrentActor

router = APIRouter()
MAX_COUNT = 100


@router.get("/DocumentReference", summary="ITI-67 Find Document References", tags=["MHD"])
def find_document_references(
    *,
    actor: CurrentActor,
    platform: CurrentPlatform,
    base: BaseUrl,
    patient: Annotated[str, Query(description="Patient/<id> or the patient's id")],
    status: Annotated[
        str | None, Query(description="current, superseded, entered-in-error")
    ] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=MAX_COUNT)] = 20,
    offset: Annotated[int, Query(alias="_offset", ge=0)] = 0,
) -> JSONResponse:
    """Search a patient's documents, as far as the policy lets the actor see them."""
    patient_id = parse_reference(patient, "Patient")
    if patient_id is None:
        raise InvalidDocument("patient must be Patient/<id>.", field="patient")
    statuses = _statuses(status)
    try:
        with transaction(platform) as session:
            page = documents.list_documents(
                session,
                actor,
                patient_id,
                documents.DocumentFilter(statuses=statuses, limit=count, offset=offset),
                clock=platform.clock,
            )
    except AccessDenied as denied:
        # For a search, "not found" is an empty result: a dossier the actor may not open, or
        # that does not exist, looks exactly like one with nothing in it. The refusal is
        # recorded all the same.
        record_refusal(platform, denied)
        page = documents.DocumentPage(documents=[], total=0, withheld=False)
    query = {"patient": f"Patient/{patient_id}", "_count": count}
    if status:
        query["status"] = status
    links = [{"relation": "self", "url": _url(base, query, offset)}]
    if offset + count < page.total:
        links.append({"relation": "next", "url": _url(base, query, offset + count)})
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"{base}/DocumentReference/{resource['id']}",
            "resource": resource,
            "search": {"mode": "match"},
        }
        for resource in (document_reference(d, base_url=base) for d in page.documents)
    ]
    if page.withheld:
        entries.append(
            {
                "resource": operation_outcome(
                    "Some documents of this dossier are not shown to you.",
                    code="suppressed",
                    severity="information",
                ),
                "search": {"mode": "outcome"},
            }
        )
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
        "entry": entries,
    }
    return JSONResponse(bundle, media_type=FHIR_JSON)


def _statuses(status: str | None) -> tuple[DocumentStatus, ...]:
    if not status:
        return (DocumentStatus.CURRENT,)
    try:
        return tuple(DocumentStatus(value) for value in status.split(","))
    except ValueError as error:
        raise InvalidDocument(
            "status must be current, superseded or entered-in-error.", field="status"
        ) from error


def _url(base: str, query: dict[str, Any], offset: int) -> str:
    return f"{base}/DocumentReference?{urlencode({**query, '_offset': offset})}"
