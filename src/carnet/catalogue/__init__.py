"""The document type catalogue: which kinds of document a Carnet dossier holds.

The catalogue lives in ``document_types.toml`` next to this module (its header
comment states the origin of the data and the rules it follows). This module
reads it with :mod:`tomllib`, checks every rule, and exposes it as frozen
dataclasses. A file that breaks a rule does not load: :func:`parse_catalogue`
raises :class:`ValueError` naming the problem.
"""

from __future__ import annotations

import functools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = [
    "CLASS_SYSTEM",
    "CONFIDENTIALITY_CODES",
    "LOCAL_TYPE_SYSTEM",
    "LOINC_SYSTEM",
    "Catalogue",
    "DocumentClass",
    "DocumentType",
    "Labels",
    "UnknownDocumentType",
    "load_catalogue",
    "parse_catalogue",
]

LOINC_SYSTEM = "http://loinc.org"
LOCAL_TYPE_SYSTEM = "https://carnet.health/fhir/CodeSystem/document-type"
CLASS_SYSTEM = "https://carnet.health/fhir/CodeSystem/document-class"

CONFIDENTIALITY_CODES = frozenset({"N", "R", "V"})
"""HL7 v3 Confidentiality codes a document type may default to."""

_RESOURCE = "document_types.toml"
_SHARE_TOLERANCE = 1e-6
_LANGUAGES = ("fr", "en", "de")
_CLASS_FIELDS = frozenset({"code", "labels"})
_TYPE_FIELDS = frozenset(
    {
        "key",
        "loinc",
        "local_code",
        "display",
        "labels",
        "class_code",
        "default_confidentiality",
        "demo_mime_types",
        "demo_share",
    }
)


class UnknownDocumentType(LookupError):
    """Raised when a key or code does not name a document type of the catalogue."""


@dataclass(frozen=True)
class Labels:
    """Patient-facing wording of one concept in each supported language."""

    fr: str
    en: str
    de: str

    def in_language(self, lang: str) -> str:
        """Return the label for ``lang`` (e.g. ``"fr"``, ``"de-LU"``), falling back to English."""
        primary = lang.replace("_", "-").split("-", 1)[0].strip().lower()
        if primary == "fr":
            return self.fr
        if primary == "de":
            return self.de
        return self.en


@dataclass(frozen=True)
class DocumentClass:
    """A document class (XDS/MHD classCode) in :data:`CLASS_SYSTEM`."""

    code: str
    labels: Labels


@dataclass(frozen=True)
class DocumentType:
    """One document type (XDS/MHD typeCode, ``DocumentReference.type``).

    ``system``/``code`` are :data:`LOINC_SYSTEM` and the LOINC code when LOINC
    has one, else :data:`LOCAL_TYPE_SYSTEM` and Carnet's local code.
    """

    key: str
    system: str
    code: str
    display: str
    labels: Labels
    class_code: str
    default_confidentiality: str
    demo_mime_types: tuple[str, ...]
    demo_share: float


@dataclass(frozen=True)
class Catalogue:
    """The validated catalogue: document types and the classes they belong to."""

    types: tuple[DocumentType, ...]
    classes: tuple[DocumentClass, ...]

    def by_key(self, key: str) -> DocumentType:
        """Return the document type with slug ``key``; raise :class:`UnknownDocumentType`."""
        found = self._by_key.get(key)
        if found is None:
            raise UnknownDocumentType(f"no document type with key {key!r} in the catalogue")
        return found

    def by_code(self, system: str, code: str) -> DocumentType:
        """Return the type coded ``system``/``code``; raise :class:`UnknownDocumentType`."""
        found = self._by_code.get((system, code))
        if found is None:
            raise UnknownDocumentType(
                f"no document type with code {code!r} in system {system!r} in the catalogue"
            )
        return found

    # Indexes built on first use: a find looks up every document's type, twice.
    @functools.cached_property
    def _by_key(self) -> dict[str, DocumentType]:
        return {t.key: t for t in reversed(self.types)}

    @functools.cached_property
    def _by_code(self) -> dict[tuple[str, str], DocumentType]:
        return {(t.system, t.code): t for t in reversed(self.types)}

    def document_class(self, code: str) -> DocumentClass:
        """Return the document class ``code``; raise :class:`UnknownDocumentType`."""
        for document_class in self.classes:
            if document_class.code == code:
                return document_class
        raise UnknownDocumentType(f"no document class with code {code!r} in the catalogue")


@functools.cache
def load_catalogue() -> Catalogue:
    """Load and validate the catalogue shipped with the package (read once, then cached)."""
    resource = resources.files("carnet.catalogue").joinpath(_RESOURCE)
    return parse_catalogue(resource.read_text(encoding="utf-8"))


def parse_catalogue(text: str) -> Catalogue:
    """Parse and validate catalogue TOML ``text``; raise :class:`ValueError` naming any problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"document catalogue is not valid TOML: {exc}") from exc

    unknown_tables = set(data) - {"class", "type"}
    if unknown_tables:
        raise ValueError(
            f"document catalogue has unknown top-level entries: {sorted(unknown_tables)}"
        )

    classes = tuple(
        _parse_class(entry, index) for index, entry in enumerate(_table_list(data, "class"))
    )
    types = tuple(
        _parse_type(entry, index) for index, entry in enumerate(_table_list(data, "type"))
    )
    _check_catalogue(types, classes)
    return Catalogue(types=types, classes=classes)


def _table_list(data: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    value = data.get(name)
    if not isinstance(value, list) or not value:
        raise ValueError(f"document catalogue needs at least one [[{name}]] table")
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise ValueError(f"document catalogue [[{name}]] entry #{index + 1} is not a table")
    return value


def _check_fields(entry: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = set(entry) - allowed
    if unknown:
        raise ValueError(f"{where} has unknown fields: {sorted(unknown)}")


def _string(entry: Mapping[str, Any], name: str, where: str, *, allow_empty: bool = False) -> str:
    value = entry.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{where} needs a string {name!r}")
    if not allow_empty and not value.strip():
        raise ValueError(f"{where} has an empty {name!r}")
    return value


def _labels(entry: Mapping[str, Any], where: str) -> Labels:
    raw = entry.get("labels")
    if not isinstance(raw, dict):
        raise ValueError(f"{where} needs labels = {{ fr = ..., en = ..., de = ... }}")
    unknown = set(raw) - set(_LANGUAGES)
    if unknown:
        raise ValueError(f"{where} has labels in unsupported languages: {sorted(unknown)}")
    values: dict[str, str] = {}
    for lang in _LANGUAGES:
        label = raw.get(lang)
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"{where} has a missing or empty {lang!r} label")
        values[lang] = label
    return Labels(fr=values["fr"], en=values["en"], de=values["de"])


def _parse_class(entry: Mapping[str, Any], index: int) -> DocumentClass:
    code = _string(entry, "code", f"document class #{index + 1}")
    where = f"document class {code!r}"
    _check_fields(entry, _CLASS_FIELDS, where)
    return DocumentClass(code=code, labels=_labels(entry, where))


def _parse_type(entry: Mapping[str, Any], index: int) -> DocumentType:
    key = _string(entry, "key", f"document type #{index + 1}")
    where = f"document type {key!r}"
    _check_fields(entry, _TYPE_FIELDS, where)

    loinc = _string(entry, "loinc", where, allow_empty=True).strip()
    if loinc:
        if "local_code" in entry:
            raise ValueError(f"{where} has both a LOINC code and a local_code; keep one")
        system, code = LOINC_SYSTEM, loinc
    else:
        system, code = LOCAL_TYPE_SYSTEM, _string(entry, "local_code", where).strip()

    confidentiality = _string(entry, "default_confidentiality", where)
    if confidentiality not in CONFIDENTIALITY_CODES:
        raise ValueError(
            f"{where} has invalid default_confidentiality {confidentiality!r} "
            f"(expected one of {', '.join(sorted(CONFIDENTIALITY_CODES))})"
        )

    mime_types = entry.get("demo_mime_types")
    if (
        not isinstance(mime_types, list)
        or not mime_types
        or not all(isinstance(m, str) and m.count("/") == 1 for m in mime_types)
    ):
        raise ValueError(f"{where} needs demo_mime_types, a non-empty list of MIME types")

    share = entry.get("demo_share")
    if isinstance(share, bool) or not isinstance(share, int | float):
        raise ValueError(f"{where} needs a numeric demo_share")
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"{where} has demo_share {share} outside [0, 1]")

    return DocumentType(
        key=key,
        system=system,
        code=code,
        display=_string(entry, "display", where),
        labels=_labels(entry, where),
        class_code=_string(entry, "class_code", where),
        default_confidentiality=confidentiality,
        demo_mime_types=tuple(mime_types),
        demo_share=float(share),
    )


def _check_catalogue(types: tuple[DocumentType, ...], classes: tuple[DocumentClass, ...]) -> None:
    class_codes: set[str] = set()
    for document_class in classes:
        if document_class.code in class_codes:
            raise ValueError(f"duplicate document class code {document_class.code!r}")
        class_codes.add(document_class.code)

    keys: set[str] = set()
    codes: set[tuple[str, str]] = set()
    for document_type in types:
        if document_type.key in keys:
            raise ValueError(f"duplicate document type key {document_type.key!r}")
        keys.add(document_type.key)
        coding = (document_type.system, document_type.code)
        if coding in codes:
            raise ValueError(
                f"duplicate document type code {document_type.code!r} in system "
                f"{document_type.system!r} (document type {document_type.key!r})"
            )
        codes.add(coding)
        if document_type.class_code not in class_codes:
            raise ValueError(
                f"document type {document_type.key!r} references unknown document class "
                f"{document_type.class_code!r}"
            )

    total = math.fsum(document_type.demo_share for document_type in types)
    if abs(total - 1.0) > _SHARE_TOLERANCE:
        raise ValueError(f"demo_share values sum to {total:.6f}, expected 1.0")
