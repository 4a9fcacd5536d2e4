"""Search requests read once, and their results as FHIR ``searchset`` Bundles.

http://hl7.org/fhir/R4/search.html and http://hl7.org/fhir/R4/bundle.html#searchset — the same
parameters arrive in a query string (``GET``) or a form body (``POST …/_search``); an unknown
parameter is refused rather than ignored, so that a search never silently matches more than
was asked. Paging is by ``_count`` and ``_offset``, with ``self``, ``next`` and ``previous``
links.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, Request

from carnet.fhir.ids import parse_reference
from carnet.fhir.search import InvalidSearch

# The paging parameters, for searches that page.
PAGING = ("_count", "_offset")
# Parameters about the answer's form, which Carnet serves one way only.
_FORMAT = ("_format", "_pretty")


async def request_pairs(request: Request) -> list[tuple[str, str]]:
    """A dependency: the parameters of a ``GET`` query string, plus a ``POST`` form body."""
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    if request.method == "POST":
        body = (await request.body()).decode("utf-8", errors="replace")
        pairs += parse_qsl(body, keep_blank_values=True)
    return pairs


SearchPairs = Annotated[list[tuple[str, str]], Depends(request_pairs)]


@dataclass(frozen=True)
class SearchRequest:
    """The parameters of one search, by name, in the order given."""

    pairs: tuple[tuple[str, str], ...]

    @classmethod
    def read(cls, pairs: Iterable[tuple[str, str]], known: Collection[str]) -> SearchRequest:
        """The search of ``pairs``; ``InvalidSearch`` names the first parameter not ``known``."""
        kept = tuple((name, value) for name, value in pairs if name not in _FORMAT)
        for name, _ in kept:
            if name not in known:
                raise InvalidSearch(f"Unsupported search parameter {name}.", field=name)
        return cls(kept)

    def all(self, name: str) -> list[str]:
        """Every value given for ``name``, blank ones left out."""
        return [value for key, value in self.pairs if key == name and value.strip()]

    def one(self, name: str) -> str | None:
        """The value of ``name``; ``InvalidSearch`` if it was given more than once."""
        values = self.all(name)
        if len(values) > 1:
            raise InvalidSearch(f"Give {name} once.", field=name)
        return values[0].strip() if values else None

    def number(self, name: str, *, default: int, high: int) -> int:
        """An integer parameter between 0 (1 for ``_count``) and ``high``."""
        text = self.one(name)
        low = 1 if name == "_count" else 0
        try:
            value = default if text is None else int(text)
        except ValueError as error:
            raise InvalidSearch(f"{name} must be a whole number.", field=name) from error
        if not low <= value <= high:
            raise InvalidSearch(f"{name} must be between {low} and {high}.", field=name)
        return value

    def token(self, name: str) -> tuple[str | None, str] | None:
        """A ``[system|]code`` token as (system or None, code)."""
        text = self.one(name)
        if text is None:
            return None
        system, bar, code = text.rpartition("|")
        if not code:
            raise InvalidSearch(f"{name} must be [system|]code.", field=name)
        return (system or None) if bar else None, code

    def reference(self, name: str, resource_type: str) -> uuid.UUID | None:
        """A ``<resource_type>/<id>`` (or bare id) reference parameter, as the id."""
        text = self.one(name)
        found = None if text is None else parse_reference(text, resource_type)
        if text is not None and found is None:
            raise InvalidSearch(f"{name} must be {resource_type}/<id>.", field=name)
        return found

    def links_query(self) -> list[tuple[str, str]]:
        """The parameters to repeat in paging links (all but ``_offset``)."""
        return [(name, value) for name, value in self.pairs if name != "_offset"]


def searchset(
    base: str,
    resource_type: str,
    resources: Iterable[dict[str, Any]],
    *,
    search: SearchRequest,
    offset: int = 0,
    count: int | None = None,
    more: bool = False,
) -> dict[str, Any]:
    """A searchset Bundle of ``resources`` (a page of them when ``count`` is given).

    ``more`` says whether another page follows. ``total`` is given only for a search answered
    in one page: counting every match would cost a second query for little use.
    """
    query = search.links_query()
    links = [{"relation": "self", "url": _url(base, resource_type, query, offset)}]
    if count is not None and more:
        links.append({"relation": "next", "url": _url(base, resource_type, query, offset + count)})
    if count is not None and offset > 0:
        previous = max(0, offset - count)
        links.append({"relation": "previous", "url": _url(base, resource_type, query, previous)})
    entries = [
        {
            "fullUrl": f"{base}/{resource_type}/{resource['id']}",
            "resource": resource,
            "search": {"mode": "match"},
        }
        for resource in resources
    ]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if offset == 0 and not more:
        bundle["total"] = len(entries)
    return {**bundle, "link": links, "entry": entries}


def _url(base: str, resource_type: str, query: list[tuple[str, str]], offset: int) -> str:
    pairs = [*query, ("_offset", str(offset))] if offset else query
    return f"{base}/{resource_type}" + (f"?{urlencode(pairs)}" if pairs else "")
