"""How the portals show a document: a PDF drawn page by page as images, images, CDA and FHIR
documents rendered to HTML, HL7 v2 messages and plain text as text; anything else is offered
for download.

``render_document`` picks the rendition by media type. The structured formats have a module each
(``document_cda``, ``document_fhir``), over the safe XML parser and the HTML allow-list
(``document_safety``) and the labels and dates in the visitor's language
(``document_rendition``). A clinical document comes from outside Carnet and is treated as
hostile: see ``document_safety`` for how.

Anything that cannot be rendered falls back to its source as text (or to a download) with a
note saying why: a document never breaks the viewer page.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from typing import Final

from carnet.cda.body import embedded_pdf
from carnet.documents import formats
from carnet.portal.document_cda import CDA_MIME_TYPES, render_xml
from carnet.portal.document_fhir import FHIR_JSON_MIME_TYPES, FHIR_XML_MIME_TYPES, render_json
from carnet.portal.document_pdf import UnreadablePdf, draw_pdf
from carnet.portal.document_rendition import Rendition, labels_of

HL7_V2_MIME_TYPES: Final = frozenset(
    {
        "application/hl7-v2",
        "application/hl7-v2+er7",
        "x-application/hl7-v2+er7",
        "application/x-hl7",
        "text/hl7v2",
        "text/x-hl7",
    }
)


# Beyond this size a structured document is offered for download: laying out tens of megabytes
# of XML or JSON would hold a worker for seconds and give a page nobody can read.
LARGEST_RENDERED: Final = 10 * 1024 * 1024


def render_document(mime_type: str, content: bytes, *, language: str) -> Rendition:
    """The rendition of a document's content for the viewer, in ``language``.

    Never raises for bad content: a document that cannot be laid out is shown as its source
    text (or offered for download) with a ``note`` saying why.
    """
    media, parameters = _media_type(mime_type)
    if media == "application/pdf" or media.startswith("image/"):
        # Framed or shown in an <img> only when the bytes are the passive type they claim
        # (an SVG, a "PNG" that is an HTML page: a download, see ``documents.formats``).
        if not formats.shown_inline(media, content):
            return Rendition("download", note=labels_of(language)["note_not_shown"])
        if media == "application/pdf":
            return _render_pdf(content, language)
        return Rendition("image")
    if media == "text/plain":
        return Rendition("text", text=content.decode(_charset(parameters), errors="replace"))
    if media in HL7_V2_MIME_TYPES:
        return Rendition("text", text=_hl7_v2_segments(content))
    return _render_structured(media, content, language)


def _render_pdf(content: bytes, language: str) -> Rendition:
    """A PDF as the images of its pages (see ``document_pdf``): phones show no framed PDF."""
    labels = labels_of(language)
    if len(content) > LARGEST_RENDERED:
        return Rendition("download", note=labels["note_too_large"])
    try:
        drawn = draw_pdf(content)
    except UnreadablePdf:
        return Rendition("download", note=labels["note_pdf_unreadable"])
    if not drawn.pages:
        return Rendition("download", note=labels["note_pdf_unreadable"])
    note = labels["note_pdf_long"] if drawn.page_count > len(drawn.pages) else None
    return Rendition("pages", pages=drawn.pages, page_count=drawn.page_count, note=note)


def _render_structured(media: str, content: bytes, language: str) -> Rendition:
    labels = labels_of(language)
    if media in FHIR_XML_MIME_TYPES:
        return Rendition("download", note=labels["note_not_shown"])
    if media not in CDA_MIME_TYPES | FHIR_JSON_MIME_TYPES | {"application/json"}:
        return Rendition("download")
    if len(content) > LARGEST_RENDERED:
        return Rendition("download", note=labels["note_too_large"])
    if media in CDA_MIME_TYPES:
        # An unstructured CDA document whose nonXMLBody embeds a PDF shows that PDF, as a PDF
        # document is shown (issue 17), under the metadata the viewer page shows of it.
        pdf = embedded_pdf(content)
        if pdf is not None and formats.shown_inline(formats.PDF, pdf):
            return _render_pdf(pdf, language)
        return render_xml(content, language)
    return render_json(content, language)


def _media_type(mime_type: str) -> tuple[str, dict[str, str]]:
    media, *rest = mime_type.split(";")
    parameters = {}
    for part in rest:
        name, _, value = part.partition("=")
        parameters[name.strip().lower()] = value.strip().strip('"')
    return media.strip().lower(), parameters


def _charset(parameters: Mapping[str, str]) -> str:
    charset = parameters.get("charset", "utf-8")
    try:
        codecs.lookup(charset)
    except LookupError:
        return "utf-8"
    return charset


def _hl7_v2_segments(content: bytes) -> str:
    """An HL7 v2 message (or batch) one segment a line, without MLLP framing."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        # The v2 default character set (MSH-18 empty) is ASCII; older senders use 8859/1.
        text = content.decode("latin-1")
    text = text.replace("\x0b", "").replace("\x1c", "")
    return "\n".join(line for line in re.split(r"\r\n|\r|\n", text) if line.strip())
