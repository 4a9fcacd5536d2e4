"""Which demo documents exist and the formats each can be rendered in: the entry point.

:func:`render` turns a :class:`~carnet.demo.documents.model.DocumentContext` (document
type, patient, author, date) into the bytes of one document in one of four formats:

* ``application/pdf``: a small A4 PDF drawn with the fpdf2 core font Helvetica
  (text outside latin-1, such as "Łukasz" or "œ", is transliterated);
* ``text/plain``: the same content as UTF-8 text with aligned tables;
* ``application/fhir+json``: a FHIR R4 document ``Bundle`` (patient summary,
  vaccination record, allergies);
* ``text/xml``: an HL7 CDA R2 ``ClinicalDocument`` (patient summary, discharge
  summary, consultation note).

Only the given ``random.Random`` is used, so the same context and random state always
give byte-identical output (PDFs carry ``context.created_at`` as their creation date and
a content-derived file identifier). All people, values and events are fictitious.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

from carnet.demo.documents import clinical, narratives, notes, reports
from carnet.demo.documents.formats.cda import CDA_TYPES, render_cda
from carnet.demo.documents.formats.fhir_document import FHIR_BUILDERS, render_fhir
from carnet.demo.documents.formats.pdf import render_pdf
from carnet.demo.documents.formats.text import render_text
from carnet.demo.documents.model import (
    LANGUAGES,
    MIME_CDA,
    MIME_FHIR_JSON,
    MIME_PDF,
    MIME_TEXT,
    SUPPORTED_MIME_TYPES,
    DocumentContext,
    Section,
)

__all__ = ["render", "supported_mime_types"]

# A section builder: the content of one document type, drawn for one context.
_Builder = Callable[[DocumentContext, random.Random], list[Section]]

_BUILDERS: Final[dict[str, _Builder]] = {
    "lab-report": reports.lab_report,
    "patient-summary": clinical.patient_summary,
    "insurer-summary": reports.insurer_summary,
    "imaging-report": reports.imaging_report,
    "medical-certificate": reports.medical_certificate,
    "discharge-summary": narratives.discharge_summary,
    "prescription": reports.prescription,
    "consultation-note": narratives.consultation_note,
    "vaccination-record": clinical.vaccination_record,
    "emergency-visit-summary": narratives.emergency_visit_summary,
    "operative-report": narratives.operative_report,
    "allergies": clinical.allergy_record,
    "advance-directives": notes.advance_directives,
    "nursing-note": notes.nursing_note,
    "dental-report": notes.dental_report,
    "emergency-liaison-file": notes.emergency_liaison_file,
    "patient-provided": notes.patient_provided,
}


def supported_mime_types(type_key: str) -> tuple[str, ...]:
    """The MIME types :func:`render` accepts for a document type."""
    if type_key not in _BUILDERS:
        raise ValueError(f"unknown document type {type_key!r}")
    extra = ((MIME_FHIR_JSON,) if type_key in FHIR_BUILDERS else ()) + (
        (MIME_CDA,) if type_key in CDA_TYPES else ()
    )
    return (MIME_PDF, MIME_TEXT, *extra)


def _check(context: DocumentContext, mime_type: str) -> None:
    """Raise ValueError for an unknown type or language, a naive date, or an unsupported format."""
    if mime_type not in SUPPORTED_MIME_TYPES:
        expected = ", ".join(SUPPORTED_MIME_TYPES)
        raise ValueError(f"unsupported MIME type {mime_type!r}: expected one of {expected}")
    if context.language not in LANGUAGES:
        raise ValueError(
            f"unsupported language {context.language!r}: expected one of {', '.join(LANGUAGES)}"
        )
    if context.created_at.tzinfo is None:
        raise ValueError("context.created_at must be timezone-aware (UTC)")
    supported = supported_mime_types(context.type_key)
    if mime_type not in supported:
        raise ValueError(
            f"document type {context.type_key!r} cannot be rendered as {mime_type!r}: "
            f"supported formats are {', '.join(supported)}"
        )


def render(context: DocumentContext, mime_type: str, rng: random.Random) -> bytes:
    """Render the document described by ``context`` as ``mime_type``.

    PDF and plain text are available for every type; FHIR JSON for
    patient-summary, vaccination-record and allergies; CDA (``text/xml``) for
    patient-summary, discharge-summary and consultation-note. Raises
    :class:`ValueError` for any other combination, an unknown type or language,
    or a naive ``created_at``. The output depends only on ``context`` and the state
    of ``rng``.
    """
    _check(context, mime_type)
    if mime_type == MIME_FHIR_JSON:
        return render_fhir(context, rng)
    sections = _BUILDERS[context.type_key](context, rng)
    if mime_type == MIME_CDA:
        return render_cda(context, sections, rng)
    if mime_type == MIME_TEXT:
        return render_text(context, sections)
    return render_pdf(context, sections)
