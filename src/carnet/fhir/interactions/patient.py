"""ITI-78 Mobile Patient Demographics Query: ``Patient`` read and search.

https://profiles.ihe.net/ITI/PDQm/ITI-78.html — ``GET /fhir/Patient/{id}``, ``GET /fhir/Patient``
and ``POST /fhir/Patient/_search`` (form-encoded) by ``identifier`` (``[system|]value``: without
a system, the value is read in each patient identifier system, see ``patient_reference``),
``family``, ``given``, ``birthdate``, ``gender``, ``_count``, and the result parameters of every
search (``_summary=count``, ``_total``, ``_elements``).

Demographics are patient data: ``access.identification`` decides. A read the policy refuses answers
404 like an unknown patient, and is recorded; a search answers only whom the actor may find (see
``access.policy.decide_patient_search``: a professional without a basis must name one person, by
identifier or by family name, given name and birth date together), and a search the actor may not
make at all answers an empty Bundle, recorded too. Results are capped at ``_count`` (at most 100)
without further pages: a search that needs more is too loose to be a patient lookup.
"""

from __future__ import annotations

import datetime as dt
import email.utils

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from carnet.access import identification as access_identification
from carnet.access.errors import AccessDenied
from carnet.fhir.capability import ResourceSupport
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.mapping.patient import PDQM_PATIENT, patient_resource
from carnet.fhir.outcome import FhirResponse
from carnet.fhir.patient_reference import (
    InvalidPatientReference,
    national_identifier,
    patient_id,
)
from carnet.fhir.search import (
    InvalidSearch,
    Parameter,
    Search,
    SearchPairs,
    SearchType,
    TooCostly,
)
from carnet.fhir.searchset import Found, searchset
from carnet.patients.models import Sex
from carnet.patients.service import PatientCriteria
from carnet.web.authentication import CurrentActor
from carnet.web.refusals import record_refusal

router = APIRouter()
# No further pages: a search that needs more than this is too loose to be a patient lookup.
SEARCH = SearchType(
    "Patient",
    parameters=(
        Parameter("identifier", "token"),
        Parameter("family", "string"),
        Parameter("given", "string"),
        Parameter("birthdate", "date"),
        Parameter("gender", "token"),
    ),
    max_count=100,
    paged=False,
    declared=(Parameter("_count", "number"),),
)
MAX_COUNT = SEARCH.max_count
SUPPORT = (
    ResourceSupport(
        "Patient",
        interactions=("read", "search-type"),
        search_params=SEARCH.search_params(),
        profiles=(PDQM_PATIENT,),
    ),
)


@router.get("/Patient/{resource_id}", summary="ITI-78 read a Patient", tags=["PDQm"])
def read_patient(
    *, resource_id: str, actor: CurrentActor, platform: CurrentPlatform
) -> JSONResponse:
    """The patient's demographics, if the policy lets the actor read them (404 otherwise)."""
    try:
        wanted = patient_id(resource_id, field="id")
    except InvalidPatientReference:
        raise AccessDenied("malformed id") from None
    with transaction(platform) as session:
        patient = access_identification.read_demographics(
            session, actor, wanted, clock=platform.clock
        )
        resource = patient_resource(patient, full=True)
    modified = email.utils.format_datetime(patient.updated_at.astimezone(dt.UTC), usegmt=True)
    return FhirResponse(resource, headers={"Last-Modified": modified})


@router.get("/Patient", summary="ITI-78 search Patients", tags=["PDQm"])
def search_patients(
    *, pairs: SearchPairs, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
) -> JSONResponse:
    """Find patients by identifier, names, birth date and gender (query string)."""
    return _search(pairs, actor=actor, platform=platform, base=base)


@router.post("/Patient/_search", summary="ITI-78 search Patients (POST)", tags=["PDQm"])
def search_patients_by_post(
    *, pairs: SearchPairs, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
) -> JSONResponse:
    """Find patients, the parameters in a form-encoded body (FHIR's POST search)."""
    return _search(pairs, actor=actor, platform=platform, base=base)


def _search(
    pairs: list[tuple[str, str]], *, actor: CurrentActor, platform: CurrentPlatform, base: str
) -> JSONResponse:
    search = Search.read(pairs, SEARCH)
    criteria = _criteria(search)
    # Every match counted (``_summary=count``, ``_total=accurate``) within the lookup's bound.
    limit = MAX_COUNT + 1 if search.wants_total else search.count
    try:
        with transaction(platform) as session:
            found = access_identification.find_patients(
                session, actor, criteria, clock=platform.clock, limit=limit
            )
            resources = [patient_resource(item.patient, full=item.full) for item in found]
    except AccessDenied as denied:
        # A search the actor may not make looks like one that found nobody; it is recorded.
        record_refusal(platform, denied)
        resources = []
    if len(resources) > MAX_COUNT:
        raise TooCostly(f"More than {MAX_COUNT} patients match: narrow the search.", field="_total")
    total = len(resources) if search.wants_total else None
    page = Found(resources[: search.count], total=total)
    return FhirResponse(searchset(base, search, page))


def _criteria(search: Search) -> PatientCriteria:
    identifier = search.token("identifier")
    gender = search.one("gender")
    if gender is not None and gender not in set(Sex):
        raise InvalidSearch("gender must be male, female, other or unknown.", field="gender")
    national = None if identifier is None else national_identifier(identifier, field="identifier")
    return PatientCriteria(
        identifier=None if national is None else (national.system, national.value),
        family=search.one("family"),
        given=search.one("given"),
        birth_date=_birth_date(search.one("birthdate")),
        sex=Sex(gender) if gender else None,
    )


def _birth_date(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text.removeprefix("eq"))
    except ValueError as error:
        raise InvalidSearch("birthdate must be a date, YYYY-MM-DD.", field="birthdate") from error
