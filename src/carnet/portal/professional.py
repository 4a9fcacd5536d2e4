"""The professional portal: find a patient, open their dossier, read a document.

Built so a document is three clicks from sign-in: the search (one click; an exact national
identifier goes straight on to the patient), the patient, the document. Every page acts with
the professional's ``Actor`` through the domain services, which apply the access policy and
write the audit trail; a professional without access is told so plainly, and offered the one
thing left: break-the-glass, when they may.

The pages live in three modules: this one (search and the patient page),
``professional_documents`` (viewer, downloads, uploads) and ``professional_emergency``.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import Response

from carnet.access import identification as access_identification
from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.access.policy import Basis
from carnet.catalogue import UnknownDocumentType, load_catalogue
from carnet.directory import service as directory
from carnet.documents import reading
from carnet.errors import InvalidInput
from carnet.essentials import service as essentials_service
from carnet.patients import identifiers
from carnet.patients.service import PatientCriteria
from carnet.portal import (
    professional_care,
    professional_documents,
    professional_emergency,
    professional_health,
)
from carnet.portal.error_words import said
from carnet.portal.professional_documents import document_rows, document_types
from carnet.portal.professional_emergency import emergency_expiry
from carnet.portal.professional_header import header_of
from carnet.portal.professional_links import (
    HOME,
    patient_url,
    upload_url,
)
from carnet.portal.visits import (
    CheckedForm,
    ProfessionalVisit,
    Visit,
    form_text,
    page_number,
    parse_date,
    parse_id,
)
from carnet.web.refusals import record_refusal

router = APIRouter(prefix=HOME, include_in_schema=False)
router.include_router(professional_documents.router)
router.include_router(professional_emergency.router)
router.include_router(professional_care.router)
router.include_router(professional_health.router)

PAGE_SIZE = 20
_SEARCH_FIELDS = ("identifier", "family", "given", "birth_date")
_EMERGENCY_BASES = (Basis.EMERGENCY, Basis.EMERGENCY_WIDENED)


@dataclass(frozen=True)
class SearchForm:
    """What the professional typed in the search form (kept to show it again)."""

    identifier: str = ""
    family: str = ""
    given: str = ""
    birth_date: str = ""
    mine: bool = False


@router.get("")
def home(visit: ProfessionalVisit) -> Response:
    """Find a patient: the search form, under who is signed in and how strongly."""
    return _home(visit, SearchForm())


@router.post("")
def search(visit: ProfessionalVisit, form: CheckedForm) -> Response:
    """Find patients by national identifier, or by family name and birth date.

    ``access.identification.find_patients`` decides who may be found and records the search in each
    dossier found. A single match by identifier goes straight to the patient page. A name search
    without the given name, like "my patients", reaches only patients the professional already
    has a basis for; with it, anyone is identified (the identification only).
    """
    typed = SearchForm(
        **{name: form_text(form, name) for name in _SEARCH_FIELDS},
        mine=form_text(form, "search") == "mine",
    )
    try:
        criteria = _criteria(visit, typed)
        with visit.transaction() as session:
            found = access_identification.find_patients(
                session, visit.actor, criteria, clock=visit.platform.clock, limit=PAGE_SIZE
            )
    except InvalidInput as error:
        return _home(visit, typed, error=said(error, visit.language), status_code=422)
    if criteria.identifier is not None and len(found) == 1:
        return visit.redirect(patient_url(found[0].patient.id))
    return _home(visit, typed, found=found, searched=True)


def _criteria(visit: Visit, typed: SearchForm) -> PatientCriteria:
    """The search asked for; ``InvalidInput`` (in the visitor's language) for an incomplete one."""
    if typed.mine:
        return PatientCriteria()
    if typed.identifier:
        system = identifiers.system_of_typed(typed.identifier)
        return PatientCriteria(identifier=(system, typed.identifier))
    try:
        born = parse_date(typed.birth_date)
    except ValueError as error:
        raise InvalidInput(
            visit.gettext("The birth date is not a date (for example 1980-05-17)."),
            field="birth_date",
        ) from error
    if not typed.family or born is None:
        raise InvalidInput(
            visit.gettext("Enter a national identifier, or a family name and a birth date."),
            field="identifier",
        )
    return PatientCriteria(family=typed.family, given=typed.given or None, birth_date=born)


def _home(
    visit: Visit,
    typed: SearchForm,
    *,
    found: list[access_identification.FoundPatient] | None = None,
    searched: bool = False,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    assert visit.actor.professional_id is not None  # every professional's token names them
    with visit.transaction() as session:
        me = directory.get_professional(session, visit.actor.professional_id)
    return visit.render(
        "professional/home.html",
        status_code=status_code,
        me=me,
        organisation=me.organisation,
        assurance=visit.actor.assurance.name.lower(),
        strong=visit.actor.is_strong,
        typed=typed,
        found=found or [],
        searched=searched,
        error=error,
        patient_url=patient_url,
        identifier_kinds={identifiers.LU_MATRICULE: "lu", identifiers.FR_NIR: "fr"},
    )


# --- the patient page ---------------------------------------------------------------------


@router.get("/patients/{patient_id}")
def patient_page(
    patient_id: str,
    visit: ProfessionalVisit,
    type_key: Annotated[str, Query(alias="type")] = "",
    page: str = "1",
) -> Response:
    """The patient: demographics, essential data and the latest documents, newest first.

    Without access (no grant, care contact, designation or emergency access), the refusal is
    recorded and the page says so, offering break-the-glass alone.
    """
    dossier = parse_id(patient_id)
    number = page_number(page)
    type_codes = _type_codes(type_key)
    clock = visit.platform.clock
    try:
        with visit.transaction() as session:
            patient = access_identification.read_demographics(
                session, visit.actor, dossier, clock=clock
            )
            found = open_dossier(
                session, visit.actor, dossier, purposes.FIND_DOCUMENTS, clock=clock
            )
            # The same facts the policy decided on: which basis opened the dossier.
            bases = found.access.bases
            # What an emergency needs first: blood group, allergies, treatments, directives.
            essentials = essentials_service.read_essentials(
                session,
                open_dossier(session, visit.actor, dossier, purposes.READ_ESSENTIALS, clock=clock),
            )
            listing = reading.list_documents(
                session,
                found,
                reading.DocumentFilter(
                    type_codes=type_codes, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
                ),
            )
            rows = document_rows(session, visit, listing.documents)
    except AccessDenied as refusal:
        record_refusal(visit.platform, refusal)
        return professional_care.no_access_page(visit, dossier)
    emergency = any(basis in _EMERGENCY_BASES for basis in bases)
    emergency_until = emergency_expiry(visit, dossier) if emergency else None
    pages = max(1, math.ceil(listing.total / PAGE_SIZE))
    return visit.render(
        "professional/patient.html",
        patient_header=header_of(patient, emergency_until),
        patient=patient,
        essentials=essentials,
        document_url_prefix=f"{patient_url(dossier)}/documents/",
        basis=bases[0].value if bases else None,
        emergency=emergency,
        emergency_until=emergency_until,
        rows=rows,
        total=listing.total,
        withheld=listing.withheld,
        types=document_types(visit.language),
        chosen_type=type_key if type_codes else "",
        page=number,
        newer_url=_page_url(dossier, type_key, number - 1) if number > 1 else None,
        older_url=_page_url(dossier, type_key, number + 1) if number < pages else None,
        pages=pages,
        here=patient_url(dossier),
        upload_url=upload_url(dossier),
        age=_age(patient.birth_date, clock.now().date()),
    )


def _type_codes(key: str) -> tuple[str, ...]:
    """The type codes a filter by catalogue key asks for; none (any type) for an unknown key."""
    if not key:
        return ()
    try:
        return (load_catalogue().by_key(key).code,)
    except UnknownDocumentType:
        return ()


def _page_url(patient_id: uuid.UUID, type_key: str, number: int) -> str:
    query = {"type": type_key} if type_key else {}
    if number > 1:
        query["page"] = str(number)
    return f"{patient_url(patient_id)}?{urlencode(query)}" if query else patient_url(patient_id)


def _age(born: dt.date, today: dt.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
