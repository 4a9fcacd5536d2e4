"""Search results as FHIR ``searchset`` Bundles, built one way for every search.

http://hl7.org/fhir/R4/bundle.html#searchset and http://hl7.org/fhir/R4/search.html — entries
in ``search.mode = match``; ``self``, ``next`` and ``previous`` links repeating the parameters
given (``_offset`` moving); ``total`` when it is known, as ``_total`` asks
(search.html#total: ``none`` leaves it out, ``accurate`` makes the search count every match);
``_summary=count``, the total alone; ``_elements``, each resource cut to the elements named
(plus ``resourceType``, ``id``, ``meta`` and the elements the resource must hold, which the
spec asks servers to keep), tagged ``SUBSETTED`` (search.html#elements). When
the policy keeps some matches from the actor, an OperationOutcome entry (``search.mode =
outcome``, issue code ``suppressed``) says so, without saying which.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fhir.resources.R4B import get_fhir_model_class
from pydantic.fields import FieldInfo

from carnet.fhir.outcome import operation_outcome
from carnet.fhir.search import Search, TooCostly, Total

# http://hl7.org/fhir/R4/v3/ObservationValue/cs.html: what a client reads to know the resource
# it holds is not the whole of it.
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
_ALWAYS = ("resourceType", "id", "meta")


@dataclass(frozen=True)
class Found:
    """What a search found: one page of resources, and what is known of the rest.

    ``total`` counts every match the actor may see, when the search counted them; ``more``
    says another page follows (the page size is the search's ``_count``); ``withheld``, that
    the policy kept some matches from the actor.
    """

    resources: Sequence[dict[str, Any]]
    total: int | None = None
    more: bool = False
    withheld: bool = False


def searchset(base: str, search: Search, found: Found) -> dict[str, Any]:
    """The searchset Bundle answering ``search`` with ``found``.

    Raises ``TooCostly`` if the search asks for an accurate total the search did not count
    (each search counts when ``search.wants_total`` says so; this is the safety net).
    """
    resource_type = search.type.resource_type
    total = _total(search, found)
    more = found.more or (total is not None and search.offset + search.count < total)
    query = search.links_query()
    links = [{"relation": "self", "url": _url(base, resource_type, query, search.offset)}]
    if not search.count_only and search.type.paged:
        if more:
            following = search.offset + search.count
            links.append({"relation": "next", "url": _url(base, resource_type, query, following)})
        if search.offset > 0:
            previous = max(0, search.offset - search.count)
            links.append(
                {"relation": "previous", "url": _url(base, resource_type, query, previous)}
            )
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None and search.total is not Total.NONE:
        bundle["total"] = total
    elif search.wants_total:
        raise TooCostly("Carnet cannot count every match of this search.", field="_total")
    bundle["link"] = links
    if search.count_only:
        return bundle
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"{base}/{resource_type}/{resource['id']}",
            "resource": _elements(resource, search.elements),
            "search": {"mode": "match"},
        }
        for resource in found.resources
    ]
    if found.withheld:
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
    bundle["entry"] = entries
    return bundle


def _total(search: Search, found: Found) -> int | None:
    if found.total is not None:
        return found.total
    if search.offset == 0 and not found.more:
        # The whole answer is in this page: its length is the total, at no cost.
        return len(found.resources)
    return None


def _elements(resource: dict[str, Any], elements: tuple[str, ...] | None) -> dict[str, Any]:
    if elements is None:
        return resource
    wanted = {*_ALWAYS, *elements, *_mandatory(resource["resourceType"])}
    kept = {name: value for name, value in resource.items() if name in wanted}
    meta = dict(kept.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    kept["meta"] = meta
    return kept


@functools.cache
def _mandatory(resource_type: str) -> frozenset[str]:
    """The elements a ``resource_type`` must hold (cardinality 1..), by the R4 definitions."""
    fields = get_fhir_model_class(resource_type).model_fields.values()
    return frozenset(field.alias or "" for field in fields if _required(field))


def _required(field: FieldInfo) -> bool:
    # fhir.resources marks a required primitive (``DocumentReference.status``) in the field's
    # schema extras: its pydantic field is optional, so that its ``_status`` extension may stand
    # in for the value.
    extra = field.json_schema_extra
    return field.is_required() or (isinstance(extra, dict) and bool(extra.get("element_required")))


def _url(base: str, resource_type: str, query: list[tuple[str, str]], offset: int) -> str:
    pairs = [*query, ("_offset", str(offset))] if offset else query
    return f"{base}/{resource_type}" + (f"?{urlencode(pairs)}" if pairs else "")
