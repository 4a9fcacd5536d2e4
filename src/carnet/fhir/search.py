"""FHIR search requests, read one way for every search Carnet serves.

http://hl7.org/fhir/R4/search.html — each search type declares its parameters once
(``SearchType``: name and FHIR type, whether they may repeat, the ``_count`` bound, whether it
pages, its ``_sort`` orders); ``Search.read`` reads a request against it, from a query string
(``GET``) or a form body (``POST …/_search``) alike:

- an unknown parameter (a modifier such as ``:exact`` included) is refused naming it, rather than
  ignored: a search never silently matches more than was asked (search.html#errors);
- ``_count`` is bounded (1 to the type's maximum), ``_offset`` pages (within a million);
- the result parameters every search takes: ``_summary=count`` (the total, no entries),
  ``_total`` (``none``, ``estimate``, ``accurate``), ``_elements`` (the elements to return);
  ``_format`` and ``_pretty`` are accepted and have no effect (Carnet answers compact JSON);
- typed values: a token is ``[system|]code`` (``|code``: no system; a bare code: any system,
  search.html#token), a date ``[ge|gt|le|lt|eq]YYYY-MM-DD[Thh:mm:ss]``, a reference
  ``Type/<id>`` or ``<base>/Type/<id>`` (``patient_reference`` resolves patients).

Every request under ``/fhir`` has its parameters screened first (``screen_request``, a
dependency of the whole FHIR router): the query string, a form body and the path's ids. A
control character or an over-long value is refused with 400 naming the parameter, whatever the
interaction; nothing of it reaches a query or the audit trail.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Request

from carnet.errors import InvalidInput, LimitExceeded
from carnet.fhir.capability import SearchParam
from carnet.fhir.ids import parse_reference
from carnet.storable import check_text, utc_instant

# No FHIR search parameter Carnet knows has a longer name (``patient.identifier``).
MAX_NAME_CHARS = 64
# A value: an identifier, a name, a date, or a comma-separated list of ids (``_id``); the
# longest Carnet takes, a list of 50 DocumentReference ids, is 3,700 characters.
MAX_VALUE_CHARS = 4096
# Deeper pages than this are not a lookup but an export (``$export-dossier`` is for that).
MAX_OFFSET = 10**6
_FORM = "application/x-www-form-urlencoded"
# Parameters about the answer's form, which Carnet serves one way only.
_FORMAT = ("_format", "_pretty")
# A FHIR element name (http://hl7.org/fhir/R4/elementdefinition.html#path): what ``_elements``
# lists, top-level elements only.
_ELEMENT = re.compile(r"[a-z][A-Za-z0-9]*")


class InvalidSearch(InvalidInput):
    """A search parameter Carnet cannot read; ``field`` names it."""


class TooCostly(LimitExceeded):
    """A search whose answer would cost more than Carnet serves; ``field`` names why."""


class Total(enum.StrEnum):
    """``_total``: whether, and how exactly, the Bundle counts every match (search.html#total)."""

    NONE = "none"
    ESTIMATE = "estimate"
    ACCURATE = "accurate"


@dataclass(frozen=True)
class Parameter:
    """One search parameter: its name, its FHIR type, and whether it may be given again."""

    name: str
    kind: str
    repeats: bool = False


@dataclass(frozen=True)
class SearchType:
    """What one search takes: its parameters, its page size, its orders."""

    resource_type: str
    parameters: tuple[Parameter, ...]
    max_count: int = 100
    default_count: int = 20
    # Whether ``_offset`` pages through the matches; a search that does not page answers its
    # first ``_count`` matches only.
    paged: bool = True
    sorts: tuple[str, ...] = ()
    # The result parameters the CapabilityStatement names for this type, beside its own.
    declared: tuple[Parameter, ...] = ()
    _names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Index the names this search takes."""
        names = {parameter.name for parameter in self.parameters}
        names |= {"_count", "_summary", "_total", "_elements"}
        if self.paged:
            names.add("_offset")
        if self.sorts:
            names.add("_sort")
        object.__setattr__(self, "_names", frozenset(names))

    def takes(self, name: str) -> bool:
        """Whether ``name`` is a parameter of this search."""
        return name in self._names

    def repeats(self, name: str) -> bool:
        """Whether ``name`` may be given more than once."""
        return any(p.name == name and p.repeats for p in self.parameters)

    def search_params(self) -> tuple[SearchParam, ...]:
        """The CapabilityStatement's ``searchParam`` list for this type."""
        return tuple(SearchParam(p.name, p.kind) for p in (*self.parameters, *self.declared))


@dataclass(frozen=True)
class Token:
    """A token value: ``system`` None matches any system, ``""`` only values without one."""

    system: str | None
    code: str


@dataclass(frozen=True)
class Search:
    """One search request, read and bounded: its parameters in the order given, and the
    page and the form of the answer it asks for."""

    type: SearchType
    pairs: tuple[tuple[str, str], ...]
    count: int
    offset: int
    # ``_summary=count``: the total alone, no entries.
    count_only: bool
    total: Total | None
    elements: tuple[str, ...] | None

    @classmethod
    def read(cls, pairs: Iterable[tuple[str, str]], search_type: SearchType) -> Search:
        """The search of ``pairs``; ``InvalidSearch`` names the first parameter at fault."""
        kept = tuple((name, value) for name, value in pairs if name not in _FORMAT)
        seen: set[str] = set()
        for name, _ in kept:
            if not search_type.takes(name):
                raise InvalidSearch(f"Unsupported search parameter {name}.", field=name)
            if name in seen and not search_type.repeats(name):
                raise InvalidSearch(f"Give {name} once.", field=name)
            seen.add(name)
        values = dict(kept)
        summary = values.get("_summary", "false").strip()
        if summary not in ("count", "false"):
            raise InvalidSearch("_summary must be count or false.", field="_summary")
        return cls(
            type=search_type,
            pairs=kept,
            count=_number(values, "_count", search_type.default_count, 1, search_type.max_count),
            offset=_number(values, "_offset", 0, 0, MAX_OFFSET),
            count_only=summary == "count",
            total=_total(values.get("_total")),
            elements=_elements(values.get("_elements")),
        )

    @property
    def wants_total(self) -> bool:
        """Whether the answer must count every match (``_summary=count``, ``_total=accurate``)."""
        return self.count_only or self.total is Total.ACCURATE

    def all(self, name: str) -> list[str]:
        """Every value given for ``name``, blank ones left out, trimmed."""
        return [value.strip() for key, value in self.pairs if key == name and value.strip()]

    def one(self, name: str) -> str | None:
        """The value of ``name``, or None."""
        values = self.all(name)
        return values[0] if values else None

    def token(self, name: str) -> Token | None:
        """A ``[system|]code`` token, or None."""
        text = self.one(name)
        return None if text is None else _token(name, text)

    def tokens(self, name: str) -> list[Token]:
        """Every token of ``name``: each occurrence a comma-separated list of alternatives."""
        return [_token(name, part) for value in self.all(name) for part in value.split(",") if part]

    def codes(self, name: str) -> list[str]:
        """The codes of ``name``'s tokens, whatever their systems."""
        return [token.code for token in self.tokens(name)]

    def reference(self, name: str, resource_type: str) -> uuid.UUID | None:
        """A ``<resource_type>/<id>`` (or bare id) reference parameter, as the id."""
        text = self.one(name)
        found = None if text is None else parse_reference(text, resource_type)
        if text is not None and found is None:
            raise InvalidSearch(f"{name} must be {resource_type}/<id>.", field=name)
        return found

    def dates(self, name: str) -> tuple[dt.datetime | None, dt.datetime | None]:
        """``name``'s date values as a half-open interval (see ``date_range``)."""
        return date_range(self.all(name), name)

    def sort(self) -> str | None:
        """The ``_sort`` order asked for, one of the type's; None for its default."""
        text = self.one("_sort")
        if text is not None and text not in self.type.sorts:
            raise InvalidSearch(f"_sort must be {' or '.join(self.type.sorts)}.", field="_sort")
        return text

    def links_query(self) -> list[tuple[str, str]]:
        """The parameters to repeat in paging links (all but ``_offset``)."""
        return [(name, value) for name, value in self.pairs if name != "_offset"]


async def request_pairs(request: Request) -> list[tuple[str, str]]:
    """A dependency: the parameters of a query string, plus a ``POST`` form body."""
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    if request.method == "POST":
        body = (await request.body()).decode("utf-8", errors="replace")
        pairs += parse_qsl(body, keep_blank_values=True)
    return pairs


SearchPairs = Annotated[list[tuple[str, str]], Depends(request_pairs)]


def date_range(values: list[str], name: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """FHIR date parameters (``ge``, ``gt``, ``le``, ``lt``, ``eq``) as a half-open interval."""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    for value in values:
        prefix, text = (
            (value[:2], value[2:]) if value[:2] in ("ge", "gt", "le", "lt", "eq") else ("eq", value)
        )
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as error:
            raise InvalidSearch(
                f"{name} {value!r} is not [ge|gt|le|lt]YYYY-MM-DD[Thh:mm:ss].", field=name
            ) from error
        moment = utc_instant(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC), field=name)
        try:
            step = dt.timedelta(days=1) if len(text) == 10 else dt.timedelta(microseconds=1)
            after = moment + step
        except OverflowError:
            # The end of year 9999: nothing is stored after it.
            after = dt.datetime.max.replace(tzinfo=dt.UTC)
        if prefix in ("ge", "eq"):
            since = moment
        if prefix == "gt":
            since = after
        if prefix == "lt":
            until = moment
        if prefix in ("le", "eq"):
            until = after
    return since, until


def screen_parameters(pairs: Iterable[tuple[str, str]]) -> None:
    """Refuse (``InvalidValue``, naming it) a parameter with a control character or too long."""
    for name, value in pairs:
        shown = name.encode("unicode_escape").decode("ascii")
        check_text(name, field=shown, limit=MAX_NAME_CHARS, free_text=False)
        check_text(value, field=name, limit=MAX_VALUE_CHARS, free_text=False)


async def screen_request(request: Request) -> None:
    """A dependency of every FHIR route: screen the query string, a form body and path ids."""
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and content_type == _FORM:
        body = (await request.body()).decode("utf-8", errors="replace")
        pairs += parse_qsl(body, keep_blank_values=True)
    pairs += [(name, str(value)) for name, value in request.path_params.items()]
    screen_parameters(pairs)


def _token(name: str, text: str) -> Token:
    system, bar, code = text.partition("|")
    if not bar:
        return Token(None, text.strip())
    if not code.strip():
        raise InvalidSearch(f"{name} must be [system|]code, with a code.", field=name)
    return Token(system.strip(), code.strip())


def _number(values: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = values.get(name, "").strip()
    try:
        value = int(text) if text else default
    except ValueError as error:
        raise InvalidSearch(f"{name} must be a whole number.", field=name) from error
    if not low <= value <= high:
        raise InvalidSearch(f"{name} must be between {low} and {high}.", field=name)
    return value


def _total(text: str | None) -> Total | None:
    if text is None or not text.strip():
        return None
    try:
        return Total(text.strip())
    except ValueError:
        raise InvalidSearch("_total must be none, estimate or accurate.", field="_total") from None


def _elements(text: str | None) -> tuple[str, ...] | None:
    if text is None or not text.strip():
        return None
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    for name in names:
        if not _ELEMENT.fullmatch(name):
            raise InvalidSearch(
                f"_elements lists element names (such as id,status); {name!r} is not one.",
                field="_elements",
            )
    return names
