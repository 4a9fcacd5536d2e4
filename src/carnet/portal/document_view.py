"""How the portals show a document: PDF in a frame, images, CDA and FHIR documents rendered to
HTML, HL7 v2 messages and plain text as text; anything else is offered for download.

A clinical document comes from outside Carnet and is treated as hostile:

- XML is parsed with entities unresolved, no network and no DTD loading, and a document that
  declares a DTD at all is refused (XXE, entity expansion);
- a CDA document is laid out by Carnet's own ``cda.xsl`` (HTML output: every value of the
  document becomes an escaped text node), run with ``XSLTAccessControl.DENY_ALL``;
- a FHIR narrative (XHTML) is rebuilt element by element from an allow-list;
- every HTML rendition then goes through that allow-list once more before it reaches a page, so
  no ``<script>``, event attribute, ``style`` attribute or URL (``href``/``src``) can come out,
  whatever a stylesheet or template did.

Anything that cannot be rendered falls back to its source as text (or to a download) with a
note saying why: a document never breaks the viewer page.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import datetime as dt
import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any, Final

from babel import dates
from lxml import etree, html  # type: ignore[import-untyped]  # lxml ships no type hints
from markupsafe import Markup

from carnet.documents import formats
from carnet.portal.i18n import environment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendition:
    """What the viewer page shows.

    ``kind`` is ``frame`` (the content URL in an iframe: PDF), ``image`` (the content URL in an
    img), ``html`` (``html`` holds safe, rendered markup), ``text`` (``text`` holds the text) or
    ``download`` (no preview: a download link only). ``note``, in the visitor's language, says
    why a document is shown as source text or only offered for download.
    """

    kind: str
    html: Markup | None = None
    text: str | None = None
    note: str | None = None


CDA_MIME_TYPES: Final = frozenset(
    {"text/xml", "application/xml", "application/hl7-v3+xml", "application/cda+xml"}
)
FHIR_JSON_MIME_TYPES: Final = frozenset({"application/fhir+json", "application/json+fhir"})
FHIR_XML_MIME_TYPES: Final = frozenset({"application/fhir+xml", "application/xml+fhir"})
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

V3: Final = "urn:hl7-org:v3"
XHTML: Final = "http://www.w3.org/1999/xhtml"
FHIR: Final = "http://hl7.org/fhir"
_EXTENSIONS: Final = "urn:carnet:document-view"

# The labels of rendered documents. They live here rather than in the gettext catalogue so the
# CDA stylesheet can receive them as parameters and so each language is complete on its own.
LABELS: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {
        "untitled_document": "Clinical document",
        "untitled_section": "Untitled section",
        "date": "Date",
        "status": "Status",
        "patient": "Patient",
        "birth_date": "Birth date",
        "gender": "Gender",
        "identifiers": "Identifiers",
        "author": "Author",
        "legal_authenticator": "Signed by",
        "custodian": "Custodian",
        "encounter": "Encounter",
        "location": "Location",
        "responsible": "Responsible",
        "male": "Male",
        "female": "Female",
        "other": "Other",
        "unknown": "Unknown",
        "undifferentiated": "Undifferentiated",
        "body": "Content",
        "attachment_body": (
            "The content of this document is an attached file that cannot be shown here: "
            "download the document to read it."
        ),
        "multimedia": "Multimedia content not shown",
        "image": "Image not shown",
        "no_narrative": "No text in this section.",
        "narrative_unreadable": "The text of this section could not be shown.",
        "entries": "Content of the document",
        "resource_type": "Kind of data",
        "count": "Number",
        "bundle": "Set of data",
        "status_preliminary": "Preliminary",
        "status_final": "Final",
        "status_amended": "Amended",
        "status_entered-in-error": "Entered in error",
        "note_unreadable": (
            "This document could not be laid out; its source is shown as it was received."
        ),
        "note_source": "This document is shown as it was received.",
        "note_refused": (
            "This document declares a DTD, which Carnet does not read for safety: "
            "download it to open it with another application."
        ),
        "note_too_large": "This document is too large to be shown here: download it.",
        "note_not_shown": "This kind of document cannot be shown here: download it.",
    },
    "fr": {
        "untitled_document": "Document médical",
        "untitled_section": "Section sans titre",
        "date": "Date",
        "status": "Statut",
        "patient": "Patient",
        "birth_date": "Date de naissance",
        "gender": "Sexe",
        "identifiers": "Identifiants",
        "author": "Auteur",
        "legal_authenticator": "Signé par",
        "custodian": "Responsable de la conservation",
        "encounter": "Prise en charge",
        "location": "Lieu",
        "responsible": "Responsable",
        "male": "Masculin",
        "female": "Féminin",
        "other": "Autre",
        "unknown": "Inconnu",
        "undifferentiated": "Indéterminé",
        "body": "Contenu",
        "attachment_body": (
            "Le contenu de ce document est un fichier joint qui ne peut pas être affiché ici : "
            "téléchargez le document pour le lire."
        ),
        "multimedia": "Contenu multimédia non affiché",
        "image": "Image non affichée",
        "no_narrative": "Pas de texte dans cette section.",
        "narrative_unreadable": "Le texte de cette section n'a pas pu être affiché.",
        "entries": "Contenu du document",
        "resource_type": "Type de données",
        "count": "Nombre",
        "bundle": "Ensemble de données",
        "status_preliminary": "Provisoire",
        "status_final": "Définitif",
        "status_amended": "Modifié",
        "status_entered-in-error": "Saisi par erreur",
        "note_unreadable": (
            "Ce document n'a pas pu être mis en forme ; sa source est affichée telle qu'elle "
            "a été reçue."
        ),
        "note_source": "Ce document est affiché tel qu'il a été reçu.",
        "note_refused": (
            "Ce document déclare une DTD, que Carnet ne lit pas par sécurité : "
            "téléchargez-le pour l'ouvrir avec une autre application."
        ),
        "note_too_large": "Ce document est trop volumineux pour être affiché ici : téléchargez-le.",
        "note_not_shown": "Ce type de document ne peut pas être affiché ici : téléchargez-le.",
    },
    "de": {
        "untitled_document": "Medizinisches Dokument",
        "untitled_section": "Abschnitt ohne Titel",
        "date": "Datum",
        "status": "Status",
        "patient": "Patient",
        "birth_date": "Geburtsdatum",
        "gender": "Geschlecht",
        "identifiers": "Kennungen",
        "author": "Autor",
        "legal_authenticator": "Unterzeichnet von",
        "custodian": "Verwahrer",
        "encounter": "Behandlungsfall",
        "location": "Ort",
        "responsible": "Verantwortlich",
        "male": "Männlich",
        "female": "Weiblich",
        "other": "Divers",
        "unknown": "Unbekannt",
        "undifferentiated": "Unbestimmt",
        "body": "Inhalt",
        "attachment_body": (
            "Der Inhalt dieses Dokuments ist eine angehängte Datei, die hier nicht angezeigt "
            "werden kann: Laden Sie das Dokument herunter, um es zu lesen."
        ),
        "multimedia": "Multimedia-Inhalt nicht angezeigt",
        "image": "Bild nicht angezeigt",
        "no_narrative": "Kein Text in diesem Abschnitt.",
        "narrative_unreadable": "Der Text dieses Abschnitts konnte nicht angezeigt werden.",
        "entries": "Inhalt des Dokuments",
        "resource_type": "Art der Daten",
        "count": "Anzahl",
        "bundle": "Datensammlung",
        "status_preliminary": "Vorläufig",
        "status_final": "Endgültig",
        "status_amended": "Geändert",
        "status_entered-in-error": "Irrtümlich erfasst",
        "note_unreadable": (
            "Dieses Dokument konnte nicht aufbereitet werden; seine Quelle wird so angezeigt, "
            "wie sie empfangen wurde."
        ),
        "note_source": "Dieses Dokument wird so angezeigt, wie es empfangen wurde.",
        "note_refused": (
            "Dieses Dokument deklariert eine DTD, die Carnet aus Sicherheitsgründen nicht "
            "liest: Laden Sie es herunter, um es mit einer anderen Anwendung zu öffnen."
        ),
        "note_too_large": (
            "Dieses Dokument ist zu groß, um hier angezeigt zu werden: Laden Sie es herunter."
        ),
        "note_not_shown": (
            "Diese Art von Dokument kann hier nicht angezeigt werden: Laden Sie es herunter."
        ),
    },
}


def labels_of(language: str) -> Mapping[str, str]:
    """The rendering labels in ``language`` (English for a language Carnet does not speak)."""
    return LABELS.get(language, LABELS["en"])


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
        return Rendition("frame" if media == "application/pdf" else "image")
    if media == "text/plain":
        return Rendition("text", text=content.decode(_charset(parameters), errors="replace"))
    if media in HL7_V2_MIME_TYPES:
        return Rendition("text", text=_hl7_v2_segments(content))
    return _render_structured(media, content, language)


def _render_structured(media: str, content: bytes, language: str) -> Rendition:
    labels = labels_of(language)
    if media in FHIR_XML_MIME_TYPES:
        return Rendition("download", note=labels["note_not_shown"])
    if media not in CDA_MIME_TYPES | FHIR_JSON_MIME_TYPES | {"application/json"}:
        return Rendition("download")
    if len(content) > LARGEST_RENDERED:
        return Rendition("download", note=labels["note_too_large"])
    if media in CDA_MIME_TYPES:
        return _render_xml(content, language)
    return _render_json(content, language)


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


# --------------------------------------------------------------------------------- dates


_TS = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?")
_FHIR_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def readable_timestamp(value: str, language: str) -> str:
    """An HL7 v3 TS (``20260315123000+0100``) as a reader would write it, at its own precision
    and in the document's own time zone; an unparseable value is returned as it is."""
    match = _TS.fullmatch(value.strip())
    if match is None:
        return value
    year, month, day, hour, minute, _second, offset = match.groups()
    zone = None if offset is None else f"{offset[:3]}:{offset[3:]}"
    return _readable(value, language, (year, month, day, hour, minute), zone)


def readable_fhir_date(value: str, language: str) -> str:
    """A FHIR date or dateTime (``2013-02-01T12:30:02Z``) as a reader would write it."""
    match = _FHIR_DATE.fullmatch(value.strip())
    if match is None:
        return value
    year, month, day, hour, minute, _second, zone = match.groups()
    return _readable(value, language, (year, month, day, hour, minute), zone)


def _readable(raw: str, language: str, parts: tuple[str | None, ...], zone: str | None) -> str:
    year, month, day, hour, minute = parts
    locale = language if language in LABELS else "en"
    try:
        if month is None:
            return str(year)
        if day is None:
            return dates.format_skeleton(
                "yMMMM", dt.date(int(str(year)), int(month), 1), locale=locale
            )
        shown = dates.format_date(
            dt.date(int(str(year)), int(month), int(day)), "medium", locale=locale
        )
        if hour is None:
            return shown
        clock = dates.format_time(dt.time(int(hour), int(minute or 0)), "short", locale=locale)
    except ValueError:
        return raw
    shown = f"{shown} {clock}"
    if zone in ("Z", "+00:00", "-00:00"):
        return f"{shown} (UTC)"
    return f"{shown} (UTC{zone})" if zone else shown


# ----------------------------------------------------------------------------------- XML


class _DtdRefused(Exception):
    """The XML declares a DTD: Carnet reads no DTD and expands no entity."""


_DOCTYPE_MARKERS: Final = tuple(
    "<!DOCTYPE".encode(encoding) for encoding in ("utf-8", "utf-16-le", "utf-16-be")
)


def _parse_xml(content: bytes) -> Any:
    """The root element of ``content``, parsed without entities, network or DTD.

    Raises ``etree.XMLSyntaxError`` for malformed XML and ``_DtdRefused`` for a DTD.
    """
    # Refused before libxml2 reads the internal subset at all; the check after parsing
    # catches a declaration in an encoding this byte search does not see.
    if any(marker in content for marker in _DOCTYPE_MARKERS):
        raise _DtdRefused
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
    )
    root = etree.fromstring(content, parser)
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _DtdRefused
    return root


def _render_xml(content: bytes, language: str) -> Rendition:
    labels = labels_of(language)
    try:
        root = _parse_xml(content)
    except _DtdRefused:
        return Rendition("download", note=labels["note_refused"])
    except (etree.LxmlError, ValueError):
        return Rendition(
            "text", text=content.decode("utf-8", errors="replace"), note=labels["note_unreadable"]
        )
    name = etree.QName(root)
    if name.namespace == FHIR:
        return Rendition("download", note=labels["note_not_shown"])
    if name.localname != "ClinicalDocument" or name.namespace not in (V3, None):
        return Rendition("text", text=_pretty_xml(root), note=labels["note_source"])
    if name.namespace is None:
        _adopt_v3_namespace(root)
    try:
        return Rendition("html", html=_render_cda(root, language))
    except (etree.LxmlError, ValueError, RecursionError) as error:
        # No document content in the log: it is patient data.
        log.warning("CDA document not laid out: %s", type(error).__name__)
        return Rendition("text", text=_pretty_xml(root), note=labels["note_unreadable"])


def _adopt_v3_namespace(root: Any) -> None:
    """Put a ``<ClinicalDocument>`` written without its namespace (as in many guide examples)
    into urn:hl7-org:v3, so it is laid out like any CDA document."""
    for element in root.iter():
        if isinstance(element.tag, str) and not element.tag.startswith("{"):
            element.tag = f"{{{V3}}}{element.tag}"


def _pretty_xml(root: Any) -> str:
    copy = deepcopy(root)
    etree.indent(copy)
    return str(etree.tostring(copy, encoding="unicode"))


# ----------------------------------------------------------------------------------- CDA


_transforms = threading.local()


def _cda_transform() -> Any:
    """Carnet's CDA stylesheet, compiled once per thread (the portal serves from a pool)."""
    transform = getattr(_transforms, "cda", None)
    if transform is None:
        source = resources.files("carnet.portal").joinpath("cda.xsl").read_bytes()
        transform = compiled_stylesheet(source)
        _transforms.cda = transform
    return transform


def compiled_stylesheet(source: bytes) -> Any:
    """An XSLT stylesheet ready to run: it may read no file and no URL (``document()``,
    ``xsl:import``), write nothing, and call ``carnet:timestamp()``."""
    return etree.XSLT(
        _parse_xml(source),
        extensions={(_EXTENSIONS, "timestamp"): _xslt_timestamp},
        access_control=etree.XSLTAccessControl.DENY_ALL,
    )


def _xslt_timestamp(_context: Any, value: Any, language: Any) -> str:
    return readable_timestamp(str(value), str(language))


def _render_cda(root: Any, language: str) -> Markup:
    parameters = {
        f"label_{key}": etree.XSLT.strparam(text)
        for key, text in labels_of(language).items()
        if not key.startswith(("note_", "status_"))
    }
    parameters["language"] = etree.XSLT.strparam(language)
    parameters["embedded_text"] = etree.XSLT.strparam(_embedded_text(root))
    result = _cda_transform()(root.getroottree(), **parameters)
    article = result.getroot()
    if article is None:
        raise ValueError("the stylesheet produced nothing")
    return _serialized(_cleaned(article, narrative=False))


_XML_UNSAFE_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _embedded_text(root: Any) -> str:
    """The text of a base64 ``text/plain`` nonXMLBody (XSLT 1.0 cannot decode base64)."""
    body = root.find(f"{{{V3}}}component/{{{V3}}}nonXMLBody/{{{V3}}}text")
    if body is None or (body.get("representation") or "").upper() != "B64":
        return ""
    media = (body.get("mediaType") or "text/plain").strip().lower()
    if not media.startswith("text/plain") or body.get("compression"):
        return ""
    try:
        decoded = base64.b64decode("".join((body.text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        return ""
    return _XML_UNSAFE_CHARACTERS.sub("", decoded.decode("utf-8", errors="replace"))


# ---------------------------------------------------------------------------------- FHIR


def _render_json(content: bytes, language: str) -> Rendition:
    labels = labels_of(language)
    try:
        parsed = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Rendition(
            "text", text=content.decode("utf-8", errors="replace"), note=labels["note_unreadable"]
        )
    source = json.dumps(parsed, indent=2, ensure_ascii=False)
    if not isinstance(parsed, dict) or not isinstance(parsed.get("resourceType"), str):
        return Rendition("text", text=source, note=labels["note_source"])
    try:
        return Rendition("html", html=_render_fhir(parsed, language))
    except (etree.LxmlError, ValueError, TypeError, RecursionError) as error:
        log.warning("FHIR document not laid out: %s", type(error).__name__)
        return Rendition("text", text=source, note=labels["note_unreadable"])


@dataclass(frozen=True)
class Shown:
    """One value of a fact: its text, and a detail shown muted (an identifier's system)."""

    text: str
    detail: str | None = None


@dataclass(frozen=True)
class Fact:
    """A labelled line of a document's header (Patient, Author, ...), with its values."""

    label: str
    values: list[Shown]


@dataclass(frozen=True)
class FhirSection:
    """A Composition section: its title, its sanitized narrative and its subsections."""

    title: str
    narrative: Markup | None
    note: str | None = None
    sections: list[FhirSection] = field(default_factory=list)


@dataclass(frozen=True)
class FhirView:
    """What ``document/fhir.html`` lays out."""

    title: str
    facts: list[Fact] = field(default_factory=list)
    narrative: Markup | None = None
    sections: list[FhirSection] = field(default_factory=list)
    entries: list[tuple[str, int]] = field(default_factory=list)


def _render_fhir(resource: dict[str, Any], language: str) -> Markup:
    labels = labels_of(language)
    if resource["resourceType"] == "Bundle":
        bundle = _FhirBundle(resource)
        composition = bundle.composition()
        if resource.get("type") == "document" and composition is not None:
            view = _document_view(bundle, composition, labels, language)
        else:
            view = _bundle_view(bundle, labels)
    else:
        view = _resource_view(resource, labels, language)
    template = environment(language).get_template("document/fhir.html")
    return _verified(template.render(view=view, labels=labels))


class _FhirBundle:
    """A Bundle's entries, with references resolved the way FHIR documents use them
    (``fullUrl``, ``urn:uuid:``, absolute URL or ``Type/id``)."""

    def __init__(self, bundle: Mapping[str, Any]) -> None:
        self.resources: list[dict[str, Any]] = []
        self._by_url: dict[str, dict[str, Any]] = {}
        self._by_type_id: dict[str, dict[str, Any]] = {}
        for entry in _list(bundle.get("entry")):
            resource = _dict(entry).get("resource")
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                continue
            self.resources.append(resource)
            full_url = _dict(entry).get("fullUrl")
            if isinstance(full_url, str):
                self._by_url[full_url] = resource
            if isinstance(resource.get("id"), str):
                self._by_type_id[f"{resource['resourceType']}/{resource['id']}"] = resource

    def composition(self) -> dict[str, Any] | None:
        """The document's Composition (FHIR puts it first; a misplaced one is still found)."""
        return next((r for r in self.resources if r["resourceType"] == "Composition"), None)

    def resolve(self, reference: Any) -> dict[str, Any] | None:
        """The entry a Reference points to, if the bundle holds it."""
        target = _dict(reference).get("reference")
        if not isinstance(target, str):
            return None
        if target in self._by_url:
            return self._by_url[target]
        match = re.search(r"([A-Za-z]+/[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]*)?$", target)
        return self._by_type_id.get(match.group(1)) if match else None

    def counts(self, *, without: Any = None) -> list[tuple[str, int]]:
        """How many entries of each resource type, by type name."""
        counted = Counter(r["resourceType"] for r in self.resources if r is not without)
        return sorted(counted.items())


def _document_view(
    bundle: _FhirBundle, composition: dict[str, Any], labels: Mapping[str, str], language: str
) -> FhirView:
    facts: list[Fact] = []
    if isinstance(composition.get("date"), str):
        facts.append(
            Fact(labels["date"], [Shown(readable_fhir_date(composition["date"], language))])
        )
    status = composition.get("status")
    if isinstance(status, str) and status != "final":
        facts.append(Fact(labels["status"], [Shown(labels.get(f"status_{status}", status))]))
    subject = bundle.resolve(composition.get("subject"))
    if subject is not None and subject["resourceType"] == "Patient":
        facts.extend(_patient_facts(subject, labels, language))
    elif composition.get("subject"):
        facts.append(Fact(labels["patient"], [Shown(_party(composition["subject"], bundle))]))
    authors = [Shown(_party(author, bundle)) for author in _list(composition.get("author"))]
    if authors:
        facts.append(Fact(labels["author"], authors))
    for attester in _list(composition.get("attester")):
        if _dict(attester).get("mode") == "legal" and _dict(attester).get("party"):
            facts.append(
                Fact(labels["legal_authenticator"], [Shown(_party(attester["party"], bundle))])
            )
    if composition.get("custodian"):
        facts.append(Fact(labels["custodian"], [Shown(_party(composition["custodian"], bundle))]))
    encounter = bundle.resolve(composition.get("encounter"))
    if encounter is not None:
        shown = _encounter_text(encounter, language)
        if shown:
            facts.append(Fact(labels["encounter"], [Shown(shown)]))
    return FhirView(
        title=_text(composition.get("title"))
        or _concept(composition.get("type"))
        or labels["untitled_document"],
        facts=facts,
        sections=[_section(s, labels) for s in _list(composition.get("section"))],
        entries=bundle.counts(without=composition),
    )


def _bundle_view(bundle: _FhirBundle, labels: Mapping[str, str]) -> FhirView:
    return FhirView(title=labels["bundle"], entries=bundle.counts())


def _resource_view(resource: dict[str, Any], labels: Mapping[str, str], language: str) -> FhirView:
    kind = resource["resourceType"]
    name = _resource_name(resource)
    title = f"{kind} — {name}" if name else kind
    div = _dict(resource.get("text")).get("div")
    if isinstance(div, str) and div.strip():
        narrative = _narrative(div, labels)
        if narrative is not None:
            return FhirView(title=title, narrative=narrative)
    facts = [
        Fact(key, [Shown(_summary(value))])
        for key, value in resource.items()
        if key not in {"resourceType", "meta", "text", "contained"} and _summary(value)
    ]
    return FhirView(title=title, facts=facts)


def _section(section: Any, labels: Mapping[str, str]) -> FhirSection:
    section = _dict(section)
    title = (
        _text(section.get("title")) or _concept(section.get("code")) or labels["untitled_section"]
    )
    div = _dict(section.get("text")).get("div")
    narrative = _narrative(div, labels) if isinstance(div, str) and div.strip() else None
    note = None
    if narrative is None:
        if isinstance(div, str) and div.strip():
            note = labels["narrative_unreadable"]
        else:
            note = _concept(section.get("emptyReason")) or labels["no_narrative"]
    return FhirSection(
        title=title,
        narrative=narrative,
        note=note,
        sections=[_section(s, labels) for s in _list(section.get("section"))],
    )


def _patient_facts(
    patient: Mapping[str, Any], labels: Mapping[str, str], language: str
) -> list[Fact]:
    facts = [Fact(labels["patient"], [Shown(_human_name(patient.get("name")) or "—")])]
    if isinstance(patient.get("birthDate"), str):
        facts.append(
            Fact(labels["birth_date"], [Shown(readable_fhir_date(patient["birthDate"], language))])
        )
    gender = patient.get("gender")
    if isinstance(gender, str):
        facts.append(Fact(labels["gender"], [Shown(labels.get(gender, gender))]))
    identifiers = [
        Shown(_text(identifier.get("value")), _text(identifier.get("system")) or None)
        for identifier in map(_dict, _list(patient.get("identifier")))
        if _text(identifier.get("value"))
    ]
    if identifiers:
        facts.append(Fact(labels["identifiers"], identifiers))
    return facts


def _party(reference: Any, bundle: _FhirBundle) -> str:
    """Who a Reference names: its display, else the referenced entry's name, else the
    reference itself."""
    display = _text(_dict(reference).get("display"))
    if display:
        return display
    resolved = bundle.resolve(reference)
    name = _resource_name(resolved) if resolved is not None else ""
    return name or _text(_dict(reference).get("reference")) or "—"


def _resource_name(resource: Mapping[str, Any]) -> str:
    if resource.get("resourceType") in {"Patient", "Practitioner", "RelatedPerson", "Person"}:
        return _human_name(resource.get("name"))
    if resource.get("resourceType") == "PractitionerRole":
        return _text(_dict(resource.get("practitioner")).get("display"))
    for key in ("name", "title"):
        if isinstance(resource.get(key), str):
            return str(resource[key])
    return _concept(resource.get("code"))


def _human_name(names: Any) -> str:
    candidates = [_dict(n) for n in _list(names)]
    preferred = next((n for n in candidates if n.get("use") == "official"), None)
    name = preferred or (candidates[0] if candidates else {})
    if _text(name.get("text")):
        return _text(name.get("text"))
    parts = [
        *map(_text, _list(name.get("prefix"))),
        *map(_text, _list(name.get("given"))),
        _text(name.get("family")),
        *map(_text, _list(name.get("suffix"))),
    ]
    return " ".join(part for part in parts if part)


def _encounter_text(encounter: Mapping[str, Any], language: str) -> str:
    kinds = [_concept(kind) for kind in _list(encounter.get("type"))]
    what = next((kind for kind in kinds if kind), "") or _text(
        _dict(encounter.get("class")).get("display")
    )
    period = _dict(encounter.get("period"))
    ends = [
        readable_fhir_date(value, language) if isinstance(value, str) else ""
        for value in (period.get("start"), period.get("end"))
    ]
    when = " \N{EN DASH} ".join(ends) if any(ends) else ""
    return ", ".join(part for part in (what, when) if part)


def _concept(concept: Any) -> str:
    """A CodeableConcept's text, else its first coding's display."""
    concept = _dict(concept)
    if _text(concept.get("text")):
        return _text(concept.get("text"))
    displays = (_text(_dict(coding).get("display")) for coding in _list(concept.get("coding")))
    return next((display for display in displays if display), "")


_SUMMARY_LENGTH: Final = 300


def _summary(value: Any, depth: int = 0) -> str:
    """A top-level field of a resource as one readable line (for a resource without
    narrative): a display or text where FHIR has one, else its parts, cut to a line."""
    shown = _summary_of(value, depth)
    return shown if len(shown) <= _SUMMARY_LENGTH else shown[: _SUMMARY_LENGTH - 1] + "…"


def _summary_of(value: Any, depth: int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if depth > 3:
        return "…"
    if isinstance(value, list):
        return "; ".join(filter(None, (_summary_of(item, depth + 1) for item in value)))
    return _summary_of_mapping(value, depth) if isinstance(value, dict) else ""


def _summary_of_mapping(value: dict[str, Any], depth: int) -> str:
    """A FHIR datatype as one line: its display or text where it has one (Coding,
    CodeableConcept, Reference, Narrative), else the parts a reader knows it by."""
    for key in ("display", "text"):
        if isinstance(value.get(key), str):
            return str(value[key])
    if "family" in value or "given" in value:
        shown = _human_name([value])
    elif "reference" in value:
        shown = _text(value.get("reference"))
    elif "value" in value and ("unit" in value or "code" in value):
        unit = _text(value.get("unit") or value.get("code"))
        shown = f"{_summary_of(value['value'], depth + 1)} {unit}"
    elif "coding" in value:
        shown = _concept(value) or _summary_of(value["coding"], depth + 1)
    else:
        shown = ", ".join(
            f"{key}: {part}"
            for key, item in value.items()
            if key != "extension" and (part := _summary_of(item, depth + 1))
        )
    return shown


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


# ---------------------------------------------------------------- allow-list sanitising


# Elements kept (without any attribute but those below); everything else is unwrapped (its text
# kept) or, for the ones listed after, dropped with its content.
_KEPT_ELEMENTS: Final = frozenset(
    {
        "article", "section", "header", "div", "p", "span", "br", "hr", "pre", "blockquote",
        "address", "strong", "b", "em", "i", "u", "s", "sub", "sup", "small", "big", "code",
        "tt", "kbd", "samp", "var", "cite", "q", "abbr", "acronym", "dfn", "del", "ins",
        "ul", "ol", "li", "dl", "dt", "dd", "table", "caption", "thead", "tbody", "tfoot", "tr",
        "th", "td", "h1", "h2", "h3", "h4", "h5", "h6",
    }
)  # fmt: skip
_DROPPED_ELEMENTS: Final = frozenset(
    {
        "script", "style", "template", "noscript", "iframe", "frame", "frameset", "noframes",
        "object", "embed", "applet", "param", "form", "input", "button", "select", "option",
        "optgroup", "textarea", "label", "fieldset", "link", "meta", "base", "head", "title",
        "svg", "math", "audio", "video", "source", "track", "canvas", "map", "area",
        "picture", "dialog", "slot", "xmp", "plaintext", "col", "colgroup",
    }
)  # fmt: skip
_HEADINGS: Final = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_SCOPES: Final = frozenset({"row", "col", "rowgroup", "colgroup"})
_CLASS = re.compile(r"[a-z][a-z0-9-]{0,40}")
_SHOWN_URL = re.compile(r"(?i)(https?|mailto|tel):\S+")


@dataclass(frozen=True)
class _Cleaning:
    """How a tree is rebuilt: a FHIR narrative (``narrative``: headings demoted so the page's
    outline holds, tables wrapped, no classes of its own) or Carnet's own rendition."""

    narrative: bool
    image_label: str
    in_thead: bool = False


def _cleaned(source: Any, *, narrative: bool, image_label: str = "") -> Any:
    """A new element holding only the allowed parts of ``source`` (which stays untouched)."""
    holder = etree.Element("div")
    _copy_node(holder, source, _Cleaning(narrative=narrative, image_label=image_label))
    if len(holder) == 1 and not (holder.text or "").strip() and not (holder[0].tail or "").strip():
        only = holder[0]
        only.tail = None
        return only
    return holder


def _copy_children(target: Any, source: Any, cleaning: _Cleaning) -> None:
    _append_text(target, source.text)
    for child in source:
        _copy_node(target, child, cleaning)
        _append_text(target, child.tail)


def _copy_node(target: Any, source: Any, cleaning: _Cleaning) -> None:
    if not isinstance(source.tag, str):
        return  # comments, processing instructions, entity references
    name = etree.QName(source)
    tag = name.localname.lower()
    if name.namespace not in (None, XHTML) or tag in _DROPPED_ELEMENTS:
        return
    if tag == "a":
        _copy_children(target, source, cleaning)
        href = (source.get("href") or "").strip()
        if _SHOWN_URL.fullmatch(href) and href != "".join(source.itertext()).strip():
            _append_text(target, " ")
            etree.SubElement(target, "span", {"class": "doc-link-url"}).text = f"({href})"
        return
    if tag == "img":
        alt = " ".join((source.get("alt") or "").split())
        placeholder = etree.SubElement(target, "span", {"class": "doc-placeholder"})
        # Images are never loaded from a narrative (external ones would leak the visit).
        placeholder.text = (
            f"[{cleaning.image_label}: {alt}]" if alt else f"[{cleaning.image_label}]"
        )
        return
    if cleaning.narrative and tag in _HEADINGS:
        # A narrative's own headings would break the page's outline: shown as strong lines.
        paragraph = etree.SubElement(target, "p", {"class": "doc-narrative-heading"})
        _copy_children(etree.SubElement(paragraph, "strong"), source, cleaning)
        return
    if tag not in _KEPT_ELEMENTS:
        _copy_children(target, source, cleaning)
        return
    if cleaning.narrative and tag == "table":
        target = etree.SubElement(target, "div", {"class": "table-wrap"})
    if cleaning.narrative and tag == "td" and cleaning.in_thead:
        tag = "th"
    element = etree.SubElement(target, tag)
    _copy_attributes(element, source, cleaning)
    if tag in {"thead", "tbody", "tfoot", "table"}:
        cleaning = replace(cleaning, in_thead=tag == "thead")
    _copy_children(element, source, cleaning)


def _copy_attributes(element: Any, source: Any, cleaning: _Cleaning) -> None:
    tag = element.tag
    if tag in {"td", "th"}:
        for span in ("colspan", "rowspan"):
            value = (source.get(span) or "").strip()
            if value.isdigit() and 1 <= int(value) <= 1000:
                element.set(span, str(int(value)))
    if tag == "th":
        scope = (source.get("scope") or "").strip().lower()
        if scope in _SCOPES:
            element.set("scope", scope)
        elif cleaning.narrative:
            element.set("scope", "col" if cleaning.in_thead else "row")
    if not cleaning.narrative:
        classes = [c for c in (source.get("class") or "").split() if _CLASS.fullmatch(c)]
        if classes:
            element.set("class", " ".join(classes))


def _append_text(target: Any, text: str | None) -> None:
    if not text:
        return
    if len(target):
        target[-1].tail = (target[-1].tail or "") + text
    else:
        target.text = (target.text or "") + text


def _serialized(element: Any) -> Markup:
    return Markup(str(etree.tostring(element, method="html", encoding="unicode")))  # noqa: S704  # rebuilt from the allow-list above


def _narrative(div: str, labels: Mapping[str, str]) -> Markup | None:
    """A FHIR narrative (XHTML ``div``) rebuilt from the allow-list, or None if unreadable."""
    try:
        root = _parse_xml(div.encode("utf-8"))
    except _DtdRefused:
        return None
    except (etree.LxmlError, ValueError):
        # Real narratives carry HTML entities (&nbsp;) that XML does not know: read them as
        # HTML instead; what comes out is rebuilt from the allow-list all the same.
        try:
            root = html.fragment_fromstring(div, create_parent="div")
        except (etree.LxmlError, ValueError):
            return None
    cleaned = _cleaned(root, narrative=True, image_label=labels["image"])
    if cleaned.tag != "div":
        holder = etree.Element("div")
        holder.append(cleaned)
        cleaned = holder
    cleaned.set("class", "doc-narrative")
    return _serialized(cleaned)


def _verified(rendered: str) -> Markup:
    """Carnet's own rendition, read back and rebuilt from the allow-list: whatever a template
    or a narrative let through, no script, event attribute, style or URL leaves here."""
    root = html.fragment_fromstring(rendered.strip())
    return _serialized(_cleaned(root, narrative=False))
