"""Read and search of the structured clinical facts: Observation, Immunization,
AllergyIntolerance, Condition, MedicationStatement, MedicationRequest.

http://hl7.org/fhir/R4/http.html#read and http://hl7.org/fhir/R4/search.html — each type takes
``patient`` (required), its code (``code``; ``vaccine-code`` for Immunization), ``category``,
its date (``date``, ``onset-date``, ``effective``, ``authoredon``: when what the fact tells
began), ``_id`` and ``_sort`` on that date (newest first by default), with the paging and result
parameters every Carnet search takes. A fact is shown exactly when its source document is
(``carnet.clinical.facts``); ``meta.source`` names that document. As for documents, a search
the policy refuses answers an empty Bundle, a read answers 404, and an OperationOutcome entry
says when the policy kept some matches from the actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.clinical import facts as clinical
from carnet.clinical.models import FactKind
from carnet.fhir.capability import ResourceSupport
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.ids import parse_document_resource_id
from carnet.fhir.mapping.clinical import clinical_resource
from carnet.fhir.outcome import FhirResponse
from carnet.fhir.patient_reference import patient_id
from carnet.fhir.search import InvalidSearch, Parameter, Search, SearchPairs, SearchType
from carnet.fhir.searchset import Found, searchset
from carnet.platform import Platform
from carnet.web.authentication import CurrentActor
from carnet.web.refusals import record_refusal

router = APIRouter()


@dataclass(frozen=True)
class _Served:
    kind: FactKind
    code: str
    date: str
    search: SearchType


def _served(kind: FactKind, *, code: str = "code", date: str = "date") -> _Served:
    search = SearchType(
        kind.value,
        parameters=(
            Parameter("patient", "reference"),
            Parameter(code, "token", repeats=True),
            Parameter("category", "token", repeats=True),
            Parameter(date, "date", repeats=True),
            Parameter("_id", "token", repeats=True),
        ),
        max_count=1000,
        sorts=(date, f"-{date}"),
        declared=(Parameter("_sort", "string"), Parameter("_count", "number")),
    )
    return _Served(kind, code, date, search)


SERVED = (
    _served(FactKind.OBSERVATION),
    _served(FactKind.IMMUNIZATION, code="vaccine-code"),
    _served(FactKind.ALLERGY),
    _served(FactKind.CONDITION, date="onset-date"),
    _served(FactKind.MEDICATION_STATEMENT, date="effective"),
    _served(FactKind.MEDICATION_REQUEST, date="authoredon"),
)
SUPPORT = tuple(
    ResourceSupport(
        served.kind.value,
        interactions=("read", "search-type"),
        search_params=served.search.search_params(),
    )
    for served in SERVED
)


def _routes(served: _Served) -> None:
    name = served.kind.value

    async def search_by_get(
        pairs: SearchPairs, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
    ) -> JSONResponse:
        return await run_in_threadpool(_search, platform, actor, base, pairs, served)

    async def search_by_post(
        pairs: SearchPairs, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
    ) -> JSONResponse:
        return await run_in_threadpool(_search, platform, actor, base, pairs, served)

    def read(
        resource_id: str, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
    ) -> JSONResponse:
        return _read(platform, actor, base, resource_id, served.kind)

    search_by_get.__doc__ = f"Search a patient's {name} resources (query string)."
    search_by_post.__doc__ = f"Search a patient's {name} resources (form body)."
    read.__doc__ = f"One {name}, if the policy lets the actor see its source document."
    tags: list[str | Enum] = ["Clinical data"]
    router.get(f"/{name}", summary=f"Search {name}", tags=tags)(search_by_get)
    router.post(f"/{name}/_search", summary=f"Search {name} (POST)", tags=tags)(search_by_post)
    router.get(f"/{name}/{{resource_id}}", summary=f"Read {name}", tags=tags)(read)


for _each in SERVED:
    _routes(_each)


def _search(
    platform: Platform,
    actor: Actor,
    base: str,
    pairs: list[tuple[str, str]],
    served: _Served,
) -> JSONResponse:
    search = Search.read(pairs, served.search)
    reference = search.one("patient")
    if reference is None:
        raise InvalidSearch("Give patient.", field="patient")
    patient = patient_id(reference, base=base, field="patient")
    filters = _filter(search, served)
    try:
        with transaction(platform) as session:
            dossier = open_dossier(
                session, actor, patient, purposes.FIND_CLINICAL_FACTS, clock=platform.clock
            )
            page = clinical.find_facts(
                session,
                dossier,
                (served.kind,),
                filters,
                offset=search.offset,
                limit=0 if search.count_only else search.count,
            )
            resources = [clinical_resource(fact, base_url=base) for fact in page.facts]
    except AccessDenied as denied:
        # As for documents: a dossier the actor may not open looks like one with nothing in it.
        record_refusal(platform, denied)
        page, resources = clinical.FactPage([], total=0), []
    found = Found(resources, total=page.total, withheld=page.withheld)
    return FhirResponse(searchset(base, search, found))


def _filter(search: Search, served: _Served) -> clinical.FactFilter:
    since, until = search.dates(served.date)
    ids = []
    for value in search.codes("_id"):
        parsed = parse_document_resource_id(value)
        if parsed is not None:
            ids.append(parsed[1])
    sort = search.sort()
    return clinical.FactFilter(
        codes=tuple(clinical.Code(t.system, t.code) for t in search.tokens(served.code)),
        categories=tuple(search.codes("category")),
        since=since,
        until=until,
        ids=tuple(ids) if search.all("_id") else None,
        newest_first=sort is None or sort.startswith("-"),
    )


def _read(
    platform: Platform, actor: Actor, base: str, resource_id: str, kind: FactKind
) -> JSONResponse:
    ids = parse_document_resource_id(resource_id)
    if ids is None:
        raise AccessDenied("malformed id")
    with transaction(platform) as session:
        dossier = open_dossier(
            session, actor, ids[0], purposes.READ_CLINICAL_FACTS, clock=platform.clock
        )
        fact = clinical.get_fact(session, dossier, kind, ids[1])
        resource = clinical_resource(fact, base_url=base)
    return FhirResponse(resource)
