"""The stored queries of ITI-18 and their parameters: which exist, and how their values read.

IHE ITI TF-2a 3.18.4.1.2.3.7 lists each query's id and parameters (required or optional, one
value or several); 3.18.4.1.2.3.5 the value syntax: a string is single-quoted (a quote inside
doubled), a number or time is bare, several values are a parenthesised comma-separated list,
and a parameter may repeat its ``Value`` element — which for the code lists that say so
(``$XDSDocumentEntryEventCodeList``, ``$XDSDocumentEntryConfidentialityCode``,
``$XDSFolderCodeList``) means AND between elements and OR within one. A coded value is
``code^^scheme``.

Everything wrong with a request is a ``QueryRefused`` carrying its IHE error code
(``XDSStoredQueryParamNumber`` for a missing, repeated or conflicting parameter,
``XDSUnknownStoredQuery``, ``XDSRegistryError`` for a malformed value), naming the parameter.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from lxml import etree

from carnet.xds import mapping
from carnet.xds import vocabulary as v

PARAM_NUMBER: Final = "XDSStoredQueryParamNumber"
UNKNOWN_QUERY: Final = "XDSUnknownStoredQuery"
REGISTRY_ERROR: Final = "XDSRegistryError"
TOO_MANY_RESULTS: Final = "XDSTooManyResults"


class QueryRefused(Exception):
    """A stored query Carnet will not run as asked; answered as a Failure naming the parameter."""

    def __init__(self, code: str, context: str, location: str = "") -> None:
        super().__init__(context)
        self.code = code
        self.context = context
        self.location = location


class Kind(enum.Enum):
    """How a parameter's values read."""

    STRING = "string"  # quoted strings, OR'ed
    TIME = "time"  # one bare DTM
    CODES = "codes"  # code^^scheme values, OR'ed
    CODES_AND = "codes-and"  # code^^scheme values, AND between Value elements


class StoredQuery(enum.StrEnum):
    """The stored queries Carnet answers, by their ids."""

    FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
    FIND_SUBMISSION_SETS = "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"
    FIND_FOLDERS = "urn:uuid:958f3006-baad-4929-a4de-ff1114824431"
    GET_ALL = "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3"
    GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
    GET_FOLDERS = "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4"
    GET_ASSOCIATIONS = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
    GET_DOCUMENTS_AND_ASSOCIATIONS = "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a"
    GET_SUBMISSION_SETS = "urn:uuid:51224314-5390-4169-9b91-b1980040715a"
    GET_SUBMISSION_SET_AND_CONTENTS = "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83"
    GET_FOLDER_AND_CONTENTS = "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7"
    GET_FOLDERS_FOR_DOCUMENT = "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578"
    GET_RELATED_DOCUMENTS = "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6"


@dataclass(frozen=True)
class Spec:
    """A query's parameters: name → (kind, required); ``one_of``: groups needing exactly one."""

    params: Mapping[str, tuple[Kind, bool]]
    one_of: tuple[tuple[str, ...], ...] = ()


_S, _T, _C, _A = Kind.STRING, Kind.TIME, Kind.CODES, Kind.CODES_AND
# Accepted by every query and ignored: Carnet is a single community, and answers metadata at
# its one level.
_IGNORED = frozenset({"$homeCommunityId", "$MetadataLevel"})
_DOCUMENT_FILTERS = {
    "$XDSDocumentEntryFormatCode": (_C, False),
    "$XDSDocumentEntryConfidentialityCode": (_A, False),
    "$XDSDocumentEntryType": (_S, False),
}
_DOCUMENT = {"$XDSDocumentEntryEntryUUID": (_S, False), "$XDSDocumentEntryUniqueId": (_S, False)}
_DOCUMENT_ONE = (("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId"),)
_FOLDER = {"$XDSFolderEntryUUID": (_S, False), "$XDSFolderUniqueId": (_S, False)}
_FOLDER_ONE = (("$XDSFolderEntryUUID", "$XDSFolderUniqueId"),)
_SUBMISSION_SET = {
    "$XDSSubmissionSetEntryUUID": (_S, False),
    "$XDSSubmissionSetUniqueId": (_S, False),
}

SPECS: Final[Mapping[StoredQuery, Spec]] = {
    StoredQuery.FIND_DOCUMENTS: Spec(
        {
            "$XDSDocumentEntryPatientId": (_S, True),
            "$XDSDocumentEntryClassCode": (_C, False),
            "$XDSDocumentEntryTypeCode": (_C, False),
            "$XDSDocumentEntryPracticeSettingCode": (_C, False),
            "$XDSDocumentEntryCreationTimeFrom": (_T, False),
            "$XDSDocumentEntryCreationTimeTo": (_T, False),
            "$XDSDocumentEntryServiceStartTimeFrom": (_T, False),
            "$XDSDocumentEntryServiceStartTimeTo": (_T, False),
            "$XDSDocumentEntryServiceStopTimeFrom": (_T, False),
            "$XDSDocumentEntryServiceStopTimeTo": (_T, False),
            "$XDSDocumentEntryHealthcareFacilityTypeCode": (_C, False),
            "$XDSDocumentEntryEventCodeList": (_A, False),
            "$XDSDocumentEntryAuthorPerson": (_S, False),
            "$XDSDocumentEntryStatus": (_S, True),
            **_DOCUMENT_FILTERS,
        }
    ),
    StoredQuery.FIND_SUBMISSION_SETS: Spec(
        {
            "$XDSSubmissionSetPatientId": (_S, True),
            "$XDSSubmissionSetSourceId": (_S, False),
            "$XDSSubmissionSetSubmissionTimeFrom": (_T, False),
            "$XDSSubmissionSetSubmissionTimeTo": (_T, False),
            "$XDSSubmissionSetAuthorPerson": (_S, False),
            "$XDSSubmissionSetContentType": (_C, False),
            "$XDSSubmissionSetStatus": (_S, True),
        }
    ),
    StoredQuery.FIND_FOLDERS: Spec(
        {
            "$XDSFolderPatientId": (_S, True),
            "$XDSFolderLastUpdateTimeFrom": (_T, False),
            "$XDSFolderLastUpdateTimeTo": (_T, False),
            "$XDSFolderCodeList": (_A, False),
            "$XDSFolderStatus": (_S, True),
        }
    ),
    StoredQuery.GET_ALL: Spec(
        {
            "$patientId": (_S, True),
            "$XDSDocumentEntryStatus": (_S, True),
            "$XDSSubmissionSetStatus": (_S, True),
            "$XDSFolderStatus": (_S, True),
            **_DOCUMENT_FILTERS,
        }
    ),
    StoredQuery.GET_DOCUMENTS: Spec(_DOCUMENT, _DOCUMENT_ONE),
    StoredQuery.GET_FOLDERS: Spec(_FOLDER, _FOLDER_ONE),
    StoredQuery.GET_ASSOCIATIONS: Spec({"$uuid": (_S, True)}),
    StoredQuery.GET_DOCUMENTS_AND_ASSOCIATIONS: Spec(_DOCUMENT, _DOCUMENT_ONE),
    StoredQuery.GET_SUBMISSION_SETS: Spec({"$uuid": (_S, True)}),
    StoredQuery.GET_SUBMISSION_SET_AND_CONTENTS: Spec(
        {**_SUBMISSION_SET, **_DOCUMENT_FILTERS},
        (("$XDSSubmissionSetEntryUUID", "$XDSSubmissionSetUniqueId"),),
    ),
    StoredQuery.GET_FOLDER_AND_CONTENTS: Spec({**_FOLDER, **_DOCUMENT_FILTERS}, _FOLDER_ONE),
    StoredQuery.GET_FOLDERS_FOR_DOCUMENT: Spec(_DOCUMENT, _DOCUMENT_ONE),
    StoredQuery.GET_RELATED_DOCUMENTS: Spec(
        {**_DOCUMENT, "$AssociationTypes": (_S, True), "$XDSDocumentEntryType": (_S, False)},
        _DOCUMENT_ONE,
    ),
}
# Parameters whose one value is a single string, not a list.
_SINGLE = frozenset(
    {
        "$XDSDocumentEntryPatientId",
        "$XDSSubmissionSetPatientId",
        "$XDSFolderPatientId",
        "$patientId",
    }
)
_STATUSES = frozenset({v.APPROVED, v.DEPRECATED, v.SUBMITTED})


@dataclass(frozen=True)
class Code:
    """A coded value of a query (``code^^scheme``)."""

    code: str
    scheme: str


@dataclass(frozen=True)
class Request:
    """A parsed ``AdhocQueryRequest``: the query, how to answer, and its parameters' values.

    ``values`` maps each given parameter to its Value elements, each a list of items (strings,
    or ``Code``s for the code lists, or one instant for a time).
    """

    query: StoredQuery
    leaf_class: bool
    values: Mapping[str, list[list[str]]]

    def strings(self, name: str) -> list[str]:
        """Every string given for ``name`` (OR'ed), or [] when the parameter is absent."""
        return [item for element in self.values.get(name, []) for item in element]

    def single(self, name: str) -> str | None:
        """The one string of ``name``, or None when absent."""
        items = self.strings(name)
        return items[0] if items else None

    def codes(self, name: str) -> list[list[Code]]:
        """The codes of ``name``: one OR-group per Value element (AND between groups)."""
        return [[_code(name, item) for item in element] for element in self.values.get(name, [])]

    def any_codes(self, name: str) -> list[Code]:
        """The codes of ``name``, all OR'ed."""
        return [code for group in self.codes(name) for code in group]

    def time(self, name: str) -> dt.datetime | None:
        """The instant of a time parameter, or None when absent."""
        text = self.single(name)
        if text is None:
            return None
        instant = mapping.parse_time(text)
        if instant is None:
            raise QueryRefused(REGISTRY_ERROR, f"{name} must be a time such as 20240131.", name)
        return instant

    def statuses(self, name: str) -> set[str]:
        """The status URNs of ``name``; unknown statuses refused."""
        found = set(self.strings(name))
        for status in found - _STATUSES:
            raise QueryRefused(REGISTRY_ERROR, f"{name}: {status!r} is not a status.", name)
        return found


def parse_request(request: etree._Element) -> Request:
    """Read an ``AdhocQueryRequest``; ``QueryRefused`` names what is wrong with it."""
    if request.tag != f"{{{v.QUERY}}}AdhocQueryRequest":
        raise QueryRefused(REGISTRY_ERROR, "The body must be a query:AdhocQueryRequest.")
    option = request.find(f"{{{v.QUERY}}}ResponseOption")
    return_type = option.get("returnType", "LeafClass") if option is not None else "LeafClass"
    if return_type not in ("LeafClass", "ObjectRef"):
        raise QueryRefused(
            REGISTRY_ERROR, "returnType must be LeafClass or ObjectRef.", "returnType"
        )
    adhoc = request.find(v.rim("AdhocQuery"))
    if adhoc is None:
        raise QueryRefused(REGISTRY_ERROR, "The request holds no rim:AdhocQuery.")
    try:
        query = StoredQuery(adhoc.get("id", "").strip())
    except ValueError:
        raise QueryRefused(
            UNKNOWN_QUERY, f"No stored query {adhoc.get('id')!r}.", adhoc.get("id", "")
        ) from None
    spec = SPECS[query]
    values: dict[str, list[list[str]]] = {}
    for slot in adhoc.findall(v.rim("Slot")):
        name = slot.get("name", "")
        if name in _IGNORED:
            continue
        if name not in spec.params:
            raise QueryRefused(
                REGISTRY_ERROR, f"{name!r} is not a parameter of {query.name}.", name
            )
        if name in values:
            raise QueryRefused(PARAM_NUMBER, f"{name} is given twice.", name)
        kind = spec.params[name][0]
        elements = [value.text or "" for value in slot.iter(v.rim("Value"))]
        values[name] = [_items(name, kind, text) for text in elements]
        if (kind is Kind.TIME or name in _SINGLE) and (
            len(values[name]) != 1 or len(values[name][0]) != 1
        ):
            raise QueryRefused(PARAM_NUMBER, f"{name} takes exactly one value.", name)
    _check_numbers(query, spec, values)
    parsed = Request(query, return_type == "LeafClass", values)
    _check_values(parsed, spec)
    return parsed


def _check_values(parsed: Request, spec: Spec) -> None:
    # Every value is checked before anything is looked up: a malformed request is refused
    # the same whatever the registry holds.
    for name in parsed.values:
        kind = spec.params[name][0]
        if kind is Kind.TIME:
            parsed.time(name)
        elif kind in (Kind.CODES, Kind.CODES_AND):
            parsed.codes(name)
        elif name.endswith("Status"):
            parsed.statuses(name)


def _check_numbers(query: StoredQuery, spec: Spec, values: Mapping[str, list[list[str]]]) -> None:
    for name, (_kind, required) in spec.params.items():
        if required and not any(values.get(name, [])):
            raise QueryRefused(PARAM_NUMBER, f"{query.name} needs {name}.", name)
    for group in spec.one_of:
        given = [name for name in group if values.get(name)]
        if len(given) != 1:
            raise QueryRefused(
                PARAM_NUMBER, f"{query.name} needs exactly one of {', '.join(group)}.", group[0]
            )


def _items(name: str, kind: Kind, text: str) -> list[str]:
    text = text.strip()
    if kind is Kind.TIME:
        return [text]
    inner = text[1:-1] if text.startswith("(") and text.endswith(")") else text
    items = _split(name, inner)
    if not items:
        raise QueryRefused(REGISTRY_ERROR, f"{name} has an empty value.", name)
    return items


def _split(name: str, text: str) -> list[str]:
    """The quoted strings of ``'a', 'b'`` (a quote inside a string is doubled)."""
    items: list[str] = []
    position = 0
    while position < len(text):
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text):
            break
        if text[position] != "'":
            raise QueryRefused(REGISTRY_ERROR, f"{name}: values must be 'quoted'.", name)
        position += 1
        value: list[str] = []
        while True:
            if position >= len(text):
                raise QueryRefused(REGISTRY_ERROR, f"{name}: a quote is not closed.", name)
            if text[position] == "'":
                if text[position + 1 : position + 2] == "'":
                    value.append("'")
                    position += 2
                    continue
                position += 1
                break
            value.append(text[position])
            position += 1
        items.append("".join(value))
    return items


def _code(name: str, item: str) -> Code:
    code, separator, scheme = item.partition("^^")
    # TF-2a 3.18.4.1.2.3.4: a coded value names its scheme; one that does not cannot be matched.
    if not separator or not code.strip() or not scheme.strip() or "^" in scheme:
        raise QueryRefused(
            REGISTRY_ERROR, f"{name}: {item!r} is not a coded value code^^scheme.", name
        )
    return Code(code.strip(), scheme.strip())


def uniques(items: Sequence[str]) -> list[str]:
    """``items`` without repeats, in order."""
    return list(dict.fromkeys(items))
