"""What the document viewer shows, and the words and dates it shows them with.

``Rendition`` is what every format's renderer returns (``document_view`` picks the renderer);
the labels and the readable dates are in the visitor's language, kept here rather than in the
gettext catalogue so the CDA stylesheet can receive them as parameters and each language is
complete on its own.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from babel import dates
from markupsafe import Markup

from carnet.portal.document_pdf import PageImage


@dataclass(frozen=True)
class Rendition:
    """What the viewer page shows.

    ``kind`` is ``pages`` (a PDF drawn page by page: ``pages``, of ``page_count`` in all),
    ``frame`` (the content URL in an iframe), ``image`` (the content URL in an
    img), ``html`` (``html`` holds safe, rendered markup), ``text`` (``text`` holds the text) or
    ``download`` (no preview: a download link only). ``note``, in the visitor's language, says
    why a document is shown as source text or only offered for download.
    """

    kind: str
    html: Markup | None = None
    text: str | None = None
    note: str | None = None
    pages: tuple[PageImage, ...] = ()
    page_count: int = 0


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
        "note_pdf_unreadable": "This PDF could not be shown here: download it to open it.",
        "note_pdf_long": (
            "Only the first pages of this long document are shown here: download it to read "
            "the rest."
        ),
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
        "note_pdf_unreadable": (
            "Ce PDF n'a pas pu être affiché ici : téléchargez-le pour l'ouvrir."
        ),
        "note_pdf_long": (
            "Seules les premières pages de ce long document sont affichées ici : "
            "téléchargez-le pour lire la suite."
        ),
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
        "note_pdf_unreadable": (
            "Dieses PDF konnte hier nicht angezeigt werden: Laden Sie es herunter, um es zu öffnen."
        ),
        "note_pdf_long": (
            "Nur die ersten Seiten dieses langen Dokuments werden hier angezeigt: Laden Sie es "
            "herunter, um den Rest zu lesen."
        ),
    },
}


def labels_of(language: str) -> Mapping[str, str]:
    """The rendering labels in ``language`` (English for a language Carnet does not speak)."""
    return LABELS.get(language, LABELS["en"])


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
