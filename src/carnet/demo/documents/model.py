"""What every demo document is made of, whatever its type and format.

A :class:`DocumentContext` says who the document is about and who wrote it; section
builders turn it into :class:`Section` lists (paragraphs and :class:`Table` s) that each
format in :mod:`carnet.demo.documents.formats` lays out. The small helpers here write
dates, numbers and names the way each of the three demo languages (French, English,
German) writes them, and draw ids and dates from the given ``random.Random`` only, so
the same context and random state always give the same document.

``random`` is used on purpose: this is synthetic demo data, not a security feature.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass
from typing import Final

from carnet.patients.identifiers import FR_NIR, LU_MATRICULE

MIME_PDF: Final = "application/pdf"
MIME_TEXT: Final = "text/plain"
MIME_FHIR_JSON: Final = "application/fhir+json"
MIME_CDA: Final = "text/xml"
SUPPORTED_MIME_TYPES: Final = (MIME_PDF, MIME_TEXT, MIME_FHIR_JSON, MIME_CDA)
LANGUAGES: Final = ("fr", "en", "de")


@dataclass(frozen=True)
class DocumentContext:
    """Everything about one demo document except its clinical content."""

    type_key: str
    title: str
    language: str
    patient_family: str
    patient_given: str
    patient_birth_date: dt.date
    patient_sex: str
    patient_identifier: str
    author_name: str | None
    organisation_name: str | None
    created_at: dt.datetime
    document_id: str


# --- Translations ---------------------------------------------------------------

# A translatable text: (English, French, German). A shorter tuple falls back to English.
Tr = tuple[str, ...]
_LANG_INDEX: Final = {"en": 0, "fr": 1, "de": 2}


def tr(text: Tr, lang: str) -> str:
    """Return ``text`` in ``lang``, falling back to English."""
    index = _LANG_INDEX[lang]
    return text[index] if index < len(text) else text[0]


def labelled(label: str, value: str, lang: str) -> str:
    """Return "label: value", with the space French puts before a colon."""
    return f"{label} : {value}" if lang == "fr" else f"{label}: {value}"


def fmt_date(day: dt.date, lang: str) -> str:
    """Format a date the way it is written in ``lang`` (ISO for English)."""
    if lang == "fr":
        return f"{day.day:02d}/{day.month:02d}/{day.year}"
    if lang == "de":
        return f"{day.day:02d}.{day.month:02d}.{day.year}"
    return day.isoformat()


def fmt_num(value: float, decimals: int, lang: str) -> str:
    """Format a number with a decimal comma in French and German."""
    text = f"{value:.{decimals}f}"
    return text if lang == "en" else text.replace(".", ",")


def age_in_years(birth: dt.date, on: dt.date) -> int:
    """Age in whole years on ``on``."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def random_date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    """A uniformly drawn date between ``start`` and ``end`` (``start`` if empty)."""
    return start + dt.timedelta(days=rng.randint(0, max(0, (end - start).days)))


def years_after(day: dt.date, years: float) -> dt.date:
    """``day`` plus an approximate number of years (no leap-day pitfalls)."""
    return day + dt.timedelta(days=round(years * 365.25))


def draw_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (deterministic)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def patient_line(ctx: DocumentContext) -> str:
    """Patient name as printed on documents: FAMILY Given."""
    return f"{ctx.patient_family.upper()} {ctx.patient_given}"


def document_date(ctx: DocumentContext) -> dt.date:
    """The document date (UTC)."""
    return ctx.created_at.astimezone(dt.UTC).date()


_NAME_PREFIXES: Final = frozenset(
    {"dr", "dr.", "pr", "pr.", "prof", "prof.", "mr", "mrs", "ms", "mme", "m."}
)


def split_name(full: str) -> tuple[str | None, list[str], str]:
    """Split "Dr Anne Weber" into (prefix, given names, family name)."""
    parts = full.split()
    prefix = parts.pop(0) if len(parts) > 1 and parts[0].lower() in _NAME_PREFIXES else None
    if not parts:
        return prefix, [], full
    return prefix, parts[:-1], parts[-1]


def identifier_system(identifier: str) -> str:
    """FHIR system of a national identifier: 15 characters is a French NIR, else a LU matricule."""
    return FR_NIR if len(identifier) == 15 else LU_MATRICULE


def oid_of(uri: str) -> str:
    """An OID for an identifier system: the OID of ``urn:oid:`` URIs, else a UUID-based 2.25 OID."""
    if uri.startswith("urn:oid:"):
        return uri.removeprefix("urn:oid:")
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, uri).int}"


# --- Content model ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Table:
    """A table: header, rows, relative column widths and alignment letters (L/R/C)."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[int, ...]
    align: str


@dataclass(frozen=True, slots=True)
class Section:
    """A titled part of a document: paragraphs, then an optional table."""

    heading: str
    paragraphs: tuple[str, ...] = ()
    table: Table | None = None
    loinc: str | None = None


def text_section(heading: str, *paragraphs: str, loinc: str | None = None) -> Section:
    """A section made of paragraphs only."""
    return Section(heading, tuple(paragraphs), None, loinc)
