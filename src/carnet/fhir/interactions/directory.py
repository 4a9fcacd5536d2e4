"""The directory: ``Practitioner``, ``PractitionerRole`` and ``Organization`` read and search.

http://hl7.org/fhir/R4/practitioner.html#search, practitionerrole.html#search and
organization.html#search — the directory holds no patient data, so no policy decides and
nothing is audited; but every call is authenticated and its token must carry a scope on the
resource (``user/Practitioner.rs``, ``patient/*.rs``, ``system/*.rs``…): a patient looks up the
doctor they want to grant access to, a professional a colleague, a system its own staff.

Searches page by ``_count`` and ``_offset``; names match from their start, case-insensitively;
``identifier`` is ``[system|]value``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from carnet.access.scopes import Interaction
from carnet.directory import service as directory
from carnet.directory.models import OrganisationKind, Profession
from carnet.errors import NotFound
from carnet.fhir.capability import ResourceSupport, SearchParam
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.mapping.directory import organization, practitioner, practitioner_role
from carnet.fhir.mapping.searchset import PAGING, SearchPairs, SearchRequest, searchset
from carnet.fhir.outcome import FhirResponse
from carnet.fhir.search import InvalidSearch
from carnet.web.authentication import require_scope

router = APIRouter()
MAX_COUNT = 100
_PAGE_PARAMS = {"_count": "number", "_offset": "number"}


def _find_practitioners(
    session: Session, search: SearchRequest, limit: int, offset: int
) -> Sequence[Any]:
    return directory.find_professionals(
        session,
        identifier=search.token("identifier"),
        family=search.one("family"),
        given=search.one("given"),
        name=search.one("name"),
        limit=limit,
        offset=offset,
    )


def _find_roles(session: Session, search: SearchRequest, limit: int, offset: int) -> Sequence[Any]:
    practitioner_id = search.reference("practitioner", "Practitioner")
    specialty = search.token("specialty")
    return directory.find_professionals(
        session,
        ids=None if practitioner_id is None else [practitioner_id],
        organisation_id=search.reference("organization", "Organization"),
        profession=_code(search, "role", Profession),
        specialty=specialty[1] if specialty else None,
        limit=limit,
        offset=offset,
    )


def _find_organisations(
    session: Session, search: SearchRequest, limit: int, offset: int
) -> Sequence[Any]:
    return directory.find_organisations(
        session,
        identifier=search.token("identifier"),
        name=search.one("name"),
        kind=_code(search, "type", OrganisationKind),
        limit=limit,
        offset=offset,
    )


@dataclass(frozen=True)
class Listing:
    """One resource type of the directory: its search parameters, how to load and render it."""

    resource_type: str
    params: dict[str, str]
    load: Callable[[Session, uuid.UUID], Any]
    render: Callable[[Any], dict[str, Any]]
    find: Callable[[Session, SearchRequest, int, int], Sequence[Any]]


LISTINGS = (
    Listing(
        "Practitioner",
        {"identifier": "token", "family": "string", "given": "string", "name": "string"},
        directory.get_professional,
        practitioner,
        _find_practitioners,
    ),
    Listing(
        "PractitionerRole",
        {
            "practitioner": "reference",
            "organization": "reference",
            "role": "token",
            "specialty": "token",
        },
        directory.get_professional,
        practitioner_role,
        _find_roles,
    ),
    Listing(
        "Organization",
        {"identifier": "token", "name": "string", "type": "token"},
        directory.get_organisation,
        organization,
        _find_organisations,
    ),
)
SUPPORT = tuple(
    ResourceSupport(
        listing.resource_type,
        interactions=("read", "search-type"),
        search_params=tuple(
            SearchParam(name, kind) for name, kind in (listing.params | _PAGE_PARAMS).items()
        ),
    )
    for listing in LISTINGS
)
Code = TypeVar("Code", Profession, OrganisationKind)


def _reader(listing: Listing) -> Callable[..., JSONResponse]:
    def read(resource_id: str, platform: CurrentPlatform) -> JSONResponse:
        try:
            entry_id = uuid.UUID(resource_id)
        except ValueError:
            raise NotFound("No such directory entry.") from None
        with transaction(platform) as session:
            resource = listing.render(listing.load(session, entry_id))
        return FhirResponse(resource)

    read.__doc__ = f"One {listing.resource_type} of the directory."
    return read


def _searcher(listing: Listing) -> Callable[..., JSONResponse]:
    def search(pairs: SearchPairs, platform: CurrentPlatform, base: BaseUrl) -> JSONResponse:
        request = SearchRequest.read(pairs, (*listing.params, *PAGING))
        count = request.number("_count", default=20, high=MAX_COUNT)
        offset = request.number("_offset", default=0, high=10**6)
        with transaction(platform) as session:
            # One more than the page: whether a next page exists, without counting them all.
            rows = listing.find(session, request, count + 1, offset)
            resources = [listing.render(row) for row in rows[:count]]
        bundle = searchset(
            base,
            listing.resource_type,
            resources,
            search=request,
            offset=offset,
            count=count,
            more=len(rows) > count,
        )
        return FhirResponse(bundle)

    search.__doc__ = f"{listing.resource_type} by " + ", ".join(listing.params) + "."
    return search


for _listing in LISTINGS:
    _type = _listing.resource_type
    router.add_api_route(
        f"/{_type}/{{resource_id}}",
        _reader(_listing),
        methods=["GET"],
        summary=f"Read a {_type}",
        tags=["Directory"],
        dependencies=[Depends(require_scope(_type, Interaction.READ))],
    )
    router.add_api_route(
        f"/{_type}",
        _searcher(_listing),
        methods=["GET"],
        summary=f"Search {_type} resources",
        tags=["Directory"],
        dependencies=[Depends(require_scope(_type, Interaction.SEARCH))],
    )


def _code(search: SearchRequest, name: str, kind: type[Code]) -> Code | None:
    token = search.token(name)
    if token is None:
        return None
    try:
        return kind(token[1])
    except ValueError:
        known = ", ".join(kind)
        raise InvalidSearch(f"{name} must be one of {known}.", field=name) from None
