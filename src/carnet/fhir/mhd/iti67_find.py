"""ITI-67 Find Document References: ``GET /fhir/DocumentReference`` and ``POST …/_search``.

https://profiles.ihe.net/ITI/MHD/ITI-67.html — answers a searchset Bundle holding only the
documents the actor may see; ``total`` counts only those; a search the policy refuses answers an
empty Bundle, as for a patient without documents. When the policy keeps some matching
documents from a professional, an OperationOutcome entry (``search.mode = outcome``, issue code
``suppressed``) says so, without saying which.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.documents import reading
from carnet.documents.models import Confidentiality, DocumentStatus
from carnet.fhir.capability import ResourceSupport
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.ids import parse_document_resource_id
from carnet.fhir.mapping.document_reference import document_reference
from carnet.fhir.outcome import FhirResponse
from carnet.fhir.patient_reference import identified_patient, patient_id
from carnet.fhir.search import InvalidSearch, Parameter, Search, SearchPairs, SearchType
from carnet.fhir.searchset import Found, searchset
from carnet.platform import Platform
from carnet.web.authentication import CurrentActor
from carnet.web.refusals import record_refusal

router = APIRouter()
# Tokens may repeat and list alternatives (``status=current,superseded``): each adds matches.
SEARCH = SearchType(
    "DocumentReference",
    parameters=(
        Parameter("patient", "reference"),
        Parameter("patient.identifier", "token"),
        Parameter("status", "token", repeats=True),
        Parameter("category", "token", repeats=True),
        Parameter("type", "token", repeats=True),
        Parameter("date", "date", repeats=True),
        Parameter("period", "date", repeats=True),
        Parameter("setting", "token", repeats=True),
        Parameter("facility", "token", repeats=True),
        Parameter("security-label", "token", repeats=True),
        Parameter("format", "token", repeats=True),
        Parameter("author.given", "string"),
        Parameter("author.family", "string"),
        Parameter("_id", "token", repeats=True),
        Parameter("_lastUpdated", "date", repeats=True),
    ),
    # A page holds up to 1,000 documents: a whole dossier in one answer for nearly every patient.
    max_count=1000,
    sorts=("date", "-date"),
    declared=(Parameter("_sort", "string"), Parameter("_count", "number")),
)
MAX_COUNT = SEARCH.max_count
SUPPORT = (
    ResourceSupport(
        "DocumentReference",
        interactions=("search-type",),
        search_params=SEARCH.search_params(),
    ),
)
# ``_summary=count`` asks for a page past any dossier's end: the service counts every visible
# document, and none is read out or recorded as shown.
_PAST_THE_END = 10**9


@router.get("/DocumentReference", summary="ITI-67 Find Document References", tags=["MHD"])
async def find_by_get(
    pairs: SearchPairs, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
) -> JSONResponse:
    """Search a patient's documents (query string)."""
    return await run_in_threadpool(_search, platform, actor, base, pairs)


@router.post("/DocumentReference/_search", summary="ITI-67 (POST)", tags=["MHD"])
async def find_by_post(
    pairs: SearchPairs, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
) -> JSONResponse:
    """Search a patient's documents (form-encoded body, as FHIR allows)."""
    return await run_in_threadpool(_search, platform, actor, base, pairs)


def _search(
    platform: Platform, actor: Actor, base: str, pairs: list[tuple[str, str]]
) -> JSONResponse:
    search = Search.read(pairs, SEARCH)
    filters = _filter(search)
    try:
        with transaction(platform) as session:
            patient_id = _patient(session, search, base)
            dossier = open_dossier(
                session, actor, patient_id, purposes.FIND_DOCUMENTS, clock=platform.clock
            )
            page = reading.list_documents(session, dossier, filters)
            resources = [document_reference(d, base_url=base) for d in page.documents]
    except AccessDenied as denied:
        # For a search, "not found" is an empty result: a dossier the actor may not open, or
        # that does not exist, looks exactly like one with nothing in it. The refusal is
        # recorded all the same.
        record_refusal(platform, denied)
        page, resources = reading.DocumentPage(documents=[], total=0, withheld=False), []
    found = Found(resources, total=page.total, withheld=page.withheld)
    return FhirResponse(searchset(base, search, found))


def _patient(session: Any, search: Search, base: str) -> uuid.UUID:
    reference = search.one("patient")
    if reference is not None:
        return patient_id(reference, base=base, field="patient")
    token = search.token("patient.identifier")
    if token is not None:
        found = identified_patient(session, token, field="patient.identifier")
        if found is None:
            raise AccessDenied("no patient with this identifier")
        return found
    raise InvalidSearch("Give patient or patient.identifier.", field="patient")


def _filter(search: Search) -> reading.DocumentFilter:
    submitted = search.dates("date")
    updated = search.dates("_lastUpdated")
    period = search.dates("period")
    ids = []
    for value in search.codes("_id"):
        parsed = parse_document_resource_id(value)
        if parsed is not None:
            ids.append(parsed[1])
    return reading.DocumentFilter(
        statuses=_enum(search, "status", DocumentStatus) or (DocumentStatus.CURRENT,),
        type_codes=search.codes("type"),
        class_codes=search.codes("category"),
        submitted_from=submitted[0],
        submitted_to=submitted[1],
        updated_from=updated[0],
        updated_to=updated[1],
        service_from=period[0],
        service_to=period[1],
        practice_settings=search.codes("setting"),
        facility_types=search.codes("facility"),
        confidentialities=_enum(search, "security-label", Confidentiality),
        format_codes=search.codes("format"),
        # Ids none of which is a document of Carnet match nothing, not everything.
        ids=ids if not search.all("_id") else ids or [uuid.UUID(int=0)],
        author_given=search.one("author.given"),
        author_family=search.one("author.family"),
        oldest_first=search.sort() == "date",
        limit=search.count,
        offset=_PAST_THE_END if search.count_only else search.offset,
    )


def _enum(search: Search, name: str, kind: Callable[[str], Any]) -> list[Any]:
    try:
        return [kind(code) for code in search.codes(name)]
    except ValueError as error:
        raise InvalidSearch(f"{name} has an unknown code.", field=name) from error
