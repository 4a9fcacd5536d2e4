"""ITI-67 Find Document References: ``GET /fhir/DocumentReference`` and ``POST …/_search``.

https://profiles.ihe.net/ITI/MHD/ITI-67.html — answers a searchset Bundle holding only the
documents the actor may see; ``total`` counts only those; a search the policy refuses answers an
empty Bundle, as for a patient without documents. When the policy keeps some matching
documents from a professional, an OperationOutcome entry (``search.mode = outcome``, issue code
``suppressed``) says so, without saying which.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from carnet.access.actors import Actor
from carnet.access.errors import AccessDenied
from carnet.documents import reading
from carnet.documents.errors import InvalidDocument
from carnet.documents.models import Confidentiality, DocumentStatus
from carnet.fhir.capability import ResourceSupport, SearchParam
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.ids import parse_document_resource_id, parse_reference
from carnet.fhir.mapping.document_reference import document_reference
from carnet.fhir.outcome import FhirResponse, operation_outcome
from carnet.fhir.search import date_range
from carnet.patients import service as patients
from carnet.platform import Platform
from carnet.web.authentication import CurrentActor
from carnet.web.refusals import record_refusal

router = APIRouter()
# A page holds up to 1,000 documents: a whole dossier in one answer for nearly every patient.
MAX_COUNT = 1000
_PARAMS: dict[str, str] = {
    "patient": "reference",
    "patient.identifier": "token",
    "status": "token",
    "category": "token",
    "type": "token",
    "date": "date",
    "period": "date",
    "setting": "token",
    "facility": "token",
    "security-label": "token",
    "format": "token",
    "author.given": "string",
    "author.family": "string",
    "_id": "token",
    "_lastUpdated": "date",
    "_sort": "string",
    "_count": "number",
}
SUPPORT = (
    ResourceSupport(
        "DocumentReference",
        interactions=("search-type",),
        search_params=tuple(SearchParam(name, kind) for name, kind in _PARAMS.items()),
    ),
)


@router.get("/DocumentReference", summary="ITI-67 Find Document References", tags=["MHD"])
async def find_by_get(
    request: Request, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
) -> JSONResponse:
    """Search a patient's documents (query string)."""
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    return await run_in_threadpool(_search, platform, actor, base, pairs)


@router.post("/DocumentReference/_search", summary="ITI-67 (POST)", tags=["MHD"])
async def find_by_post(
    request: Request, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
) -> JSONResponse:
    """Search a patient's documents (form-encoded body, as FHIR allows)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    pairs = parse_qsl(request.url.query, keep_blank_values=True) + parse_qsl(body)
    return await run_in_threadpool(_search, platform, actor, base, pairs)


def _search(
    platform: Platform, actor: Actor, base: str, pairs: list[tuple[str, str]]
) -> JSONResponse:
    unknown = sorted({name for name, _ in pairs if name not in _PARAMS and name != "_offset"})
    if unknown:
        raise InvalidDocument(f"Unsupported search parameter {unknown[0]}.", field=unknown[0])
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    count = _int(params, "_count", 20, 1, MAX_COUNT)
    offset = _int(params, "_offset", 0, 0, 10**6)
    try:
        with transaction(platform) as session:
            patient_id = _patient(session, params)
            page = reading.list_documents(
                session, actor, patient_id, _filter(params, count, offset), clock=platform.clock
            )
            resources = [document_reference(d, base_url=base) for d in page.documents]
    except AccessDenied as denied:
        # For a search, "not found" is an empty result: a dossier the actor may not open, or
        # that does not exist, looks exactly like one with nothing in it. The refusal is
        # recorded all the same.
        record_refusal(platform, denied)
        page, resources = reading.DocumentPage(documents=[], total=0, withheld=False), []
    query = [(name, value) for name, value in pairs if name != "_offset"]
    links = [{"relation": "self", "url": _url(base, query, offset)}]
    if offset + count < page.total:
        links.append({"relation": "next", "url": _url(base, query, offset + count)})
    if offset > 0:
        links.append({"relation": "previous", "url": _url(base, query, max(0, offset - count))})
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"{base}/DocumentReference/{resource['id']}",
            "resource": resource,
            "search": {"mode": "match"},
        }
        for resource in resources
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
    return FhirResponse(bundle)


def _patient(session: Any, params: Mapping[str, list[str]]) -> uuid.UUID:
    if "patient" in params:
        patient_id = parse_reference(params["patient"][0].rsplit("/Patient/", 1)[-1], "Patient")
        if patient_id is None:
            raise InvalidDocument("patient must be Patient/<id>.", field="patient")
        return patient_id
    if "patient.identifier" in params:
        system, _, value = params["patient.identifier"][0].partition("|")
        if not value:
            raise InvalidDocument(
                "patient.identifier must be system|value.", field="patient.identifier"
            )
        found = patients.find_patient(session, system, value)
        if found is None:
            raise AccessDenied("no patient with this identifier")
        return found.id
    raise InvalidDocument("Give patient or patient.identifier.", field="patient")


def _filter(params: Mapping[str, list[str]], count: int, offset: int) -> reading.DocumentFilter:
    submitted = date_range(params.get("date", []), "date")
    updated = date_range(params.get("_lastUpdated", []), "_lastUpdated")
    period = date_range(params.get("period", []), "period")
    ids = []
    for value in _tokens(params, "_id"):
        parsed = parse_document_resource_id(value)
        if parsed is not None:
            ids.append(parsed[1])
    sort = params.get("_sort", ["-date"])[0]
    if sort not in ("date", "-date"):
        raise InvalidDocument("_sort must be date or -date.", field="_sort")
    return reading.DocumentFilter(
        statuses=_enum(params, "status", DocumentStatus) or (DocumentStatus.CURRENT,),
        type_codes=_tokens(params, "type"),
        class_codes=_tokens(params, "category"),
        submitted_from=submitted[0],
        submitted_to=submitted[1],
        updated_from=updated[0],
        updated_to=updated[1],
        service_from=period[0],
        service_to=period[1],
        practice_settings=_tokens(params, "setting"),
        facility_types=_tokens(params, "facility"),
        confidentialities=_enum(params, "security-label", Confidentiality),
        format_codes=_tokens(params, "format"),
        ids=ids if "_id" not in params else ids or [uuid.UUID(int=0)],
        author_given=params.get("author.given", [None])[0],
        author_family=params.get("author.family", [None])[0],
        oldest_first=sort == "date",
        limit=count,
        offset=offset,
    )


def _tokens(params: Mapping[str, list[str]], name: str) -> list[str]:
    # token: [system|]code, comma-separated alternatives; the system is not checked here.
    return [
        part.rsplit("|", 1)[-1]
        for value in params.get(name, [])
        for part in value.split(",")
        if part
    ]


def _enum(params: Mapping[str, list[str]], name: str, kind: Callable[[str], Any]) -> list[Any]:
    try:
        return [kind(code) for code in _tokens(params, name)]
    except ValueError as error:
        raise InvalidDocument(f"{name} has an unknown code.", field=name) from error


def _int(params: Mapping[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(params.get(name, [str(default)])[0])
    except ValueError as error:
        raise InvalidDocument(f"{name} must be a number.", field=name) from error
    if not low <= value <= high:
        raise InvalidDocument(f"{name} must be between {low} and {high}.", field=name)
    return value


def _url(base: str, query: list[tuple[str, str]], offset: int) -> str:
    return f"{base}/DocumentReference?{urlencode([*query, ('_offset', offset)])}"
