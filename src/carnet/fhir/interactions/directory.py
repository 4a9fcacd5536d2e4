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
from carnet.fhir.capability import ResourceSupport
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.mapping.directory import organization, practitioner, practitioner_role
from carnet.fhir.outcome import FhirResponse
from carnet.fhir.search import (
    InvalidSearch,
    Parameter,
    Search,
    SearchPairs,
    SearchType,
    Token,
    TooCostly,
)
from carnet.fhir.searchset import Found, searchset
from carnet.web.authentication import require_scope

router = APIRouter()
MAX_COUNT = 100
# What ``_summary=count`` and ``_total=accurate`` count at most: the directory's finders page
# without counting, so these read the matches, and a search matching more is too loose.
MAX_COUNTED = 1000
_PAGING = (Parameter("_count", "number"), Parameter("_offset", "number"))


def _identifier(search: Search) -> tuple[str | None, str] | None:
    token = search.token("identifier")
    return None if token is None else (token.system or None, token.code)


def _find_practitioners(session: Session, search: Search, limit: int, offset: int) -> Sequence[Any]:
    return directory.find_professionals(
        session,
        identifier=_identifier(search),
        family=search.one("family"),
        given=search.one("given"),
        name=search.one("name"),
        limit=limit,
        offset=offset,
    )


def _find_roles(session: Session, search: Search, limit: int, offset: int) -> Sequence[Any]:
    practitioner_id = search.reference("practitioner", "Practitioner")
    specialty: Token | None = search.token("specialty")
    return directory.find_professionals(
        session,
        ids=None if practitioner_id is None else [practitioner_id],
        organisation_id=search.reference("organization", "Organization"),
        profession=_code(search, "role", Profession),
        specialty=specialty.code if specialty else None,
        limit=limit,
        offset=offset,
    )


def _find_organisations(session: Session, search: Search, limit: int, offset: int) -> Sequence[Any]:
    return directory.find_organisations(
        session,
        identifier=_identifier(search),
        name=search.one("name"),
        kind=_code(search, "type", OrganisationKind),
        limit=limit,
        offset=offset,
    )


@dataclass(frozen=True)
class Listing:
    """One resource type of the directory: its search parameters, how to load and render it."""

    search: SearchType
    load: Callable[[Session, uuid.UUID], Any]
    render: Callable[[Any], dict[str, Any]]
    find: Callable[[Session, Search, int, int], Sequence[Any]]

    @property
    def resource_type(self) -> str:
        """The FHIR resource type listed."""
        return self.search.resource_type


def _search_type(resource_type: str, params: dict[str, str]) -> SearchType:
    return SearchType(
        resource_type,
        parameters=tuple(Parameter(name, kind) for name, kind in params.items()),
        max_count=MAX_COUNT,
        declared=_PAGING,
    )


LISTINGS = (
    Listing(
        _search_type(
            "Practitioner",
            {"identifier": "token", "family": "string", "given": "string", "name": "string"},
        ),
        directory.get_professional,
        practitioner,
        _find_practitioners,
    ),
    Listing(
        _search_type(
            "PractitionerRole",
            {
                "practitioner": "reference",
                "organization": "reference",
                "role": "token",
                "specialty": "token",
            },
        ),
        directory.get_professional,
        practitioner_role,
        _find_roles,
    ),
    Listing(
        _search_type("Organization", {"identifier": "token", "name": "string", "type": "token"}),
        directory.get_organisation,
        organization,
        _find_organisations,
    ),
)
SUPPORT = tuple(
    ResourceSupport(
        listing.resource_type,
        interactions=("read", "search-type"),
        search_params=listing.search.search_params(),
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
        request = Search.read(pairs, listing.search)
        count, offset = request.count, request.offset
        with transaction(platform) as session:
            if request.wants_total:
                rows = listing.find(session, request, MAX_COUNTED + 1, 0)
                if len(rows) > MAX_COUNTED:
                    raise TooCostly(
                        f"More than {MAX_COUNTED} entries match: narrow the search.",
                        field="_total",
                    )
                total: int | None = len(rows)
                rows = rows[offset : offset + count + 1]
            else:
                # One more than the page: whether a next page exists, without counting them all.
                rows, total = listing.find(session, request, count + 1, offset), None
            resources = [listing.render(row) for row in rows[:count]]
        found = Found(resources, total=total, more=len(rows) > count)
        return FhirResponse(searchset(base, request, found))

    names = ", ".join(parameter.name for parameter in listing.search.parameters)
    search.__doc__ = f"{listing.resource_type} by {names}."
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


def _code(search: Search, name: str, kind: type[Code]) -> Code | None:
    token = search.token(name)
    if token is None:
        return None
    try:
        return kind(token.code)
    except ValueError:
        known = ", ".join(kind)
        raise InvalidSearch(f"{name} must be one of {known}.", field=name) from None
