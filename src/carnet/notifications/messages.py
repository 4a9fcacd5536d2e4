"""The texts of the notices, in French, English and German (a plain catalogue until the portals
bring Babel).

Texts stay short and say what happened to the dossier, never what is in it: a new document is
named by its type's patient-facing label, nothing more. Only the emergency notice quotes the
reason the professional stated, because the patient has a right to know why their dossier was
opened without their consent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from carnet.catalogue import UnknownDocumentType, load_catalogue
from carnet.notifications.errors import InvalidNotification
from carnet.notifications.models import NotificationKind, RecipientKind

LANGUAGES = ("fr", "en", "de")
DEFAULT_LANGUAGE = "fr"
# Until the directory records a professional's language, their notices are in French, the
# administrative language both Luxembourg and France share.
PROFESSIONAL_LANGUAGE = "fr"
# Carnet holds patients speaking Luxembourgish or Portuguese, for whom there are no texts yet:
# Luxembourgish speakers read German at school first, Portuguese residents mostly French.
_FALLBACK = {"lb": "de", "pt": "fr"}
# Carnet's patients live in Luxembourg and its border regions, all on Central European Time.
_LOCAL_TIME = ZoneInfo("Europe/Luxembourg")


@dataclass(frozen=True)
class Template:
    """A notice's subject and body, with ``{field}`` placeholders filled from its data."""

    subject: str
    body: str


@dataclass(frozen=True)
class Rendered:
    """A notice's subject and body in the recipient's language."""

    subject: str
    body: str


@dataclass(frozen=True)
class _Language:
    datetime_format: str
    date_format: str
    count_line: str
    greeting: str
    footer: str
    # E-mail is not a safe channel for a clinical reason: the emergency e-mail says only that
    # the dossier was opened and where to read more.
    emergency_email: str
    patient: Mapping[NotificationKind, Template]


CATALOGUE: Mapping[str, _Language] = {
    "fr": _Language(
        datetime_format="%d/%m/%Y à %H:%M",
        date_format="%d/%m/%Y",
        count_line="- {label} : {count}",
        greeting="Bonjour,",
        emergency_email=(
            "Votre dossier Carnet a été ouvert en urgence par un professionnel de santé. "
            "Qui, quand et pourquoi : consultez vos notifications dans Carnet."
        ),
        footer="Carnet, votre dossier de santé partagé. "
        "Message automatique : merci de ne pas y répondre.",
        patient={
            NotificationKind.EMERGENCY_ACCESS: Template(
                "Accès d'urgence à votre dossier",
                "{professional_name} a ouvert votre dossier Carnet en urgence le {opened_at}, "
                "pour ce motif :\n« {reason} »\n\n"
                "Cet accès prend fin le {expires_at}. S'il ne vous semble pas justifié, vous "
                "pouvez le signaler et bloquer ce professionnel depuis votre espace Carnet.",
            ),
            NotificationKind.FIRST_ACCESS: Template(
                "Un nouveau professionnel a consulté votre dossier",
                "{professional_name} a consulté votre dossier Carnet pour la première fois. "
                "Vous pouvez voir qui a accès à votre dossier, et le changer, depuis votre "
                "espace Carnet.",
            ),
            NotificationKind.NEW_DOCUMENT: Template(
                "Nouveau document dans votre dossier",
                "Un document a été ajouté à votre dossier Carnet : {document_type}, "
                "par {author_name}. Vous pouvez le lire depuis votre espace Carnet.",
            ),
            NotificationKind.DOCUMENT_DIGEST: Template(
                "Les nouveaux documents de votre dossier",
                "Depuis le {since}, votre dossier Carnet a reçu :\n{counts}\n\n"
                "Vous pouvez les lire depuis votre espace Carnet.",
            ),
            NotificationKind.DOSSIER_OPENED: Template(
                "Votre dossier Carnet est ouvert",
                "Votre dossier Carnet a été ouvert le {opened_at}. Les professionnels qui vous "
                "soignent peuvent y déposer vos documents, et c'est vous qui décidez qui peut "
                "les lire. Vous pouvez vous y opposer à tout moment depuis votre espace Carnet.",
            ),
        },
    ),
    "en": _Language(
        datetime_format="%d/%m/%Y at %H:%M",
        date_format="%d/%m/%Y",
        count_line="- {label}: {count}",
        greeting="Hello,",
        emergency_email=(
            "Your Carnet dossier was opened in an emergency by a health professional. "
            "Who, when and why: see the notifications in your Carnet."
        ),
        footer="Carnet, your shared health record. "
        "This message was sent automatically: please do not reply.",
        patient={
            NotificationKind.EMERGENCY_ACCESS: Template(
                "Emergency access to your dossier",
                "{professional_name} opened your Carnet dossier in an emergency on {opened_at}, "
                "for this reason:\n“{reason}”\n\n"
                "This access ends on {expires_at}. If it does not seem justified to you, you can "
                "report it and block this professional from your Carnet space.",
            ),
            NotificationKind.FIRST_ACCESS: Template(
                "A new professional consulted your dossier",
                "{professional_name} consulted your Carnet dossier for the first time. You can "
                "see who has access to your dossier, and change it, from your Carnet space.",
            ),
            NotificationKind.NEW_DOCUMENT: Template(
                "New document in your dossier",
                "A document was added to your Carnet dossier: {document_type}, "
                "from {author_name}. You can read it from your Carnet space.",
            ),
            NotificationKind.DOCUMENT_DIGEST: Template(
                "The new documents in your dossier",
                "Since {since}, your Carnet dossier has received:\n{counts}\n\n"
                "You can read them from your Carnet space.",
            ),
            NotificationKind.DOSSIER_OPENED: Template(
                "Your Carnet dossier is open",
                "Your Carnet dossier was opened on {opened_at}. The professionals who care for "
                "you can add your documents to it, and you decide who may read them. You can "
                "object to it at any time from your Carnet space.",
            ),
        },
    ),
    "de": _Language(
        datetime_format="%d.%m.%Y um %H:%M Uhr",
        date_format="%d.%m.%Y",
        count_line="- {label}: {count}",
        greeting="Guten Tag,",
        emergency_email=(
            "Ihre Carnet-Akte wurde im Notfall von einer Gesundheitsfachkraft geöffnet. "
            "Wer, wann und warum: siehe Ihre Mitteilungen in Carnet."
        ),
        footer="Carnet, Ihre gemeinsame Gesundheitsakte. "
        "Automatische Nachricht: bitte nicht antworten.",
        patient={
            NotificationKind.EMERGENCY_ACCESS: Template(
                "Notfallzugriff auf Ihre Akte",
                "{professional_name} hat Ihre Carnet-Akte am {opened_at} im Notfall geöffnet, "
                "mit dieser Begründung:\n„{reason}“\n\n"
                "Dieser Zugriff endet am {expires_at}. Wenn er Ihnen nicht gerechtfertigt "
                "erscheint, können Sie ihn in Ihrem Carnet-Bereich melden und diese Fachperson "
                "sperren.",
            ),
            NotificationKind.FIRST_ACCESS: Template(
                "Eine neue Fachperson hat Ihre Akte eingesehen",
                "{professional_name} hat Ihre Carnet-Akte zum ersten Mal eingesehen. In Ihrem "
                "Carnet-Bereich sehen Sie, wer Zugriff auf Ihre Akte hat, und können es ändern.",
            ),
            NotificationKind.NEW_DOCUMENT: Template(
                "Neues Dokument in Ihrer Akte",
                "Ihrer Carnet-Akte wurde ein Dokument hinzugefügt: {document_type}, "
                "von {author_name}. Sie können es in Ihrem Carnet-Bereich lesen.",
            ),
            NotificationKind.DOCUMENT_DIGEST: Template(
                "Die neuen Dokumente Ihrer Akte",
                "Seit dem {since} hat Ihre Carnet-Akte erhalten:\n{counts}\n\n"
                "Sie können sie in Ihrem Carnet-Bereich lesen.",
            ),
            NotificationKind.DOSSIER_OPENED: Template(
                "Ihre Carnet-Akte ist eröffnet",
                "Ihre Carnet-Akte wurde am {opened_at} eröffnet. Die Fachpersonen, die Sie "
                "behandeln, können Ihre Dokumente darin ablegen, und Sie entscheiden, wer sie "
                "lesen darf. Sie können jederzeit in Ihrem Carnet-Bereich widersprechen.",
            ),
        },
    ),
}

# What a treating doctor is told, in PROFESSIONAL_LANGUAGE: only emergencies, for now.
PROFESSIONAL: Mapping[NotificationKind, Template] = {
    NotificationKind.EMERGENCY_ACCESS: Template(
        "Accès d'urgence au dossier d'un de vos patients",
        "Le dossier Carnet de {patient_name}, né(e) le {birth_date}, dont vous êtes le médecin "
        "traitant, a été ouvert en urgence par {professional_name} le {opened_at}, pour ce "
        "motif :\n« {reason} »\n\nCet accès prend fin le {expires_at}.",
    ),
}


def language_for(preferred: str | None) -> str:
    """The catalogue language to write in for someone who prefers ``preferred``."""
    primary = (preferred or "").replace("_", "-").split("-", 1)[0].strip().lower()
    if primary in CATALOGUE:
        return primary
    return _FALLBACK.get(primary, DEFAULT_LANGUAGE)


def render(
    recipient: RecipientKind,
    kind: NotificationKind,
    language: str,
    data: Mapping[str, object],
) -> Rendered:
    """Fill the template of ``kind`` for ``recipient`` in ``language`` from ``data``.

    Raises ``InvalidNotification`` when there is no such text or a field it needs is missing.
    """
    templates = CATALOGUE[language].patient if recipient is RecipientKind.PATIENT else PROFESSIONAL
    template = templates.get(kind)
    if template is None:
        raise InvalidNotification(f"No {kind.value} notice is written for a {recipient.value}.")
    fields = {name: _field(name, value, language) for name, value in data.items()}
    try:
        return Rendered(template.subject.format_map(fields), template.body.format_map(fields))
    except KeyError as error:
        raise InvalidNotification(
            f"A {kind.value} notice needs its {error.args[0]}.", field=str(error.args[0])
        ) from error


def email_text(language: str, body: str, *, kind: NotificationKind | None = None) -> str:
    """The notice as an e-mail: greeting, body (for an emergency, a pointer), signature."""
    words = CATALOGUE[language]
    if kind is NotificationKind.EMERGENCY_ACCESS:
        body = words.emergency_email
    return f"{words.greeting}\n\n{body}\n\n-- \n{words.footer}\n"


def document_type_label(key: str, language: str) -> str:
    """The patient-facing label of the document type ``key``; ``InvalidNotification`` if none."""
    try:
        return load_catalogue().by_key(key).labels.in_language(language)
    except UnknownDocumentType as error:
        raise InvalidNotification(
            f"No document type {key!r} in the catalogue.", field="document_type"
        ) from error


def _field(name: str, value: object, language: str) -> str:
    words = CATALOGUE[language]
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise InvalidNotification(f"The {name} must be an aware UTC time.", field=name)
        return value.astimezone(_LOCAL_TIME).strftime(words.datetime_format)
    if isinstance(value, dt.date):
        return value.strftime(words.date_format)
    if name == "document_type":
        return document_type_label(str(value), language)
    if name == "counts" and isinstance(value, Mapping):
        labelled = sorted(
            (document_type_label(str(key), language), int(count)) for key, count in value.items()
        )
        return "\n".join(
            words.count_line.format(label=label, count=count) for label, count in labelled
        )
    return str(value)
