"""ITI-78 Mobile Patient Demographics Query: ``Patient`` read and search.

https://profiles.ihe.net/ITI/PDQm/ITI-78.html — ``GET /fhir/Patient/{id}``, ``GET /fhir/Patient``
and ``POST /fhir/Patient/_search`` (form-encoded) by ``identifier`` (``system|value``),
``family``, ``given``, ``birthdate``, ``gender`` and ``_count``.

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
import uuid

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from carnet.access import identification as access_identification
from carnet.access.errors import AccessDenied
from carnet.fhir.capability import ResourceSupport, SearchParam
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.mapping.patient import PDQM_PATIENT, patient_resource
from carnet.fhir.mapping.searchset import SearchPairs, SearchRequest, searchset
from carnet.fhir.outcome import FhirResponse
from carnet.fhir.search import InvalidSearch
from carnet.patients.models import Sex
from carnet.patients.service import PatientCriteria
from carnet.web.authentication import CurrentActor
from carnet.web.refusals import record_refusal

router = APIRouter()
MAX_COUNT = 100
_PARAMS = {
    "identifier": "token",
    "family": "string",
    "given": "string",
    "birthdate": "date",
    "gender": "token",
    "_count": "number",
}
SUPPORT = (
    ResourceSupport(
        "Patient",
        interactions=("read", "search-type"),
        search_params=tuple(SearchParam(name, kind) for name, kind in _PARAMS.items()),
        profiles=(PDQM_PATIENT,),
    ),
)


@router.get("/Patient/{resource_id}", summary="ITI-78 read a Patient", tags=["PDQm"])
def read_patient(
    *, resource_id: str, actor: CurrentActor, platform: CurrentPlatform
) -> JSONResponse:
    """The patient's demographics, if the policy lets the actor read them (404 otherwise)."""
    try:
        patient_id = uuid.UUID(resource_id)
    except ValueError:
        raise AccessDenied("malformed id") from None
    with transaction(platform) as session:
        patient = access_identification.read_demographics(
            session, actor, patient_id, clock=platform.clock
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
    search = SearchRequest.read(pairs, _PARAMS)
    criteria = _criteria(search)
    count = search.number("_count", default=20, high=MAX_COUNT)
    try:
        with transaction(platform) as session:
            found = access_identification.find_patients(
                session, actor, criteria, clock=platform.clock, limit=count
            )
            resources = [patient_resource(item.patient, full=item.full) for item in found]
    except AccessDenied as denied:
        # A search the actor may not make looks like one that found nobody; it is recorded.
        record_refusal(platform, denied)
        resources = []
    return FhirResponse(searchset(base, "Patient", resources, search=search))


def _criteria(search: SearchRequest) -> PatientCriteria:
    identifier = search.token("identifier")
    if identifier is not None and identifier[0] is None:
        raise InvalidSearch("identifier must be <system>|<value>.", field="identifier")
    gender = search.one("gender")
    if gender is not None and gender not in set(Sex):
        raise InvalidSearch("gender must be male, female, other or unknown.", field="gender")
    return PatientCriteria(
        identifier=(identifier[0], identifier[1]) if identifier and identifier[0] else None,
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
