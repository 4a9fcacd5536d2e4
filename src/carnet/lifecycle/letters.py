"""Invitation letters: one A4 page per patient, in their language (fr, en, de), as PDF.

A letter names the date the dossier opens by itself, and carries the one-time activation code
with its last day of validity. Drawn with fpdf2's core font, so text is latin-1
(``carnet.pdftext``); a run prints them into one batch PDF (``LetterBook``) or one file each
(``write_letter``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from carnet.lifecycle.service import Invitation
from carnet.notifications.messages import language_for
from carnet.pdftext import latin1

# Letters go to Luxembourg and its border regions: dates are local dates there.
_LOCAL_TIME = ZoneInfo("Europe/Luxembourg")
_MONTHS_EN = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True)
class _Wording:
    subject: str
    greeting: str
    what: str
    opening: str
    choice: str
    code_label: str
    validity: str
    how: str
    signature: str


_WORDING = {
    "fr": _Wording(
        subject="Votre dossier de soins partagé",
        greeting="Bonjour {given} {family},",
        what=(
            "Votre assurance maladie ouvre pour vous un dossier de soins partagé : un dossier "
            "sécurisé où les professionnels de santé qui vous soignent déposent vos comptes "
            "rendus, résultats et ordonnances. C'est vous qui décidez qui y a accès."
        ),
        opening="Sans démarche de votre part, votre dossier sera ouvert le {date}.",
        choice=(
            "Vous pouvez l'activer dès maintenant avec le code ci-dessous, ou vous y opposer "
            "avant cette date : il ne sera alors pas créé. Vous pourrez aussi le fermer à tout "
            "moment."
        ),
        code_label="Votre code d'activation",
        validity="Utilisable une seule fois, jusqu'au {date}. Ne le communiquez à personne.",
        how="Rendez-vous sur {url} et saisissez votre numéro d'identification national et ce code.",
        signature="L'équipe Carnet",
    ),
    "en": _Wording(
        subject="Your shared health record",
        greeting="Dear {given} {family},",
        what=(
            "Your health insurer is opening a shared health record for you: a secure record "
            "where the health professionals who care for you file your reports, results and "
            "prescriptions. You decide who may see it."
        ),
        opening="Unless you act, your record will be opened on {date}.",
        choice=(
            "You may activate it now with the code below, or object to it before that date: it "
            "will then not be created. You may also close it at any time."
        ),
        code_label="Your activation code",
        validity="It works once, until {date}. Do not share it with anyone.",
        how="Go to {url} and enter your national identification number and this code.",
        signature="The Carnet team",
    ),
    "de": _Wording(
        subject="Ihre gemeinsame Patientenakte",
        greeting="Guten Tag {given} {family},",
        what=(
            "Ihre Krankenkasse eröffnet für Sie eine gemeinsame Patientenakte: eine sichere "
            "Akte, in der die Gesundheitsfachleute, die Sie behandeln, Ihre Berichte, Befunde "
            "und Rezepte ablegen. Sie entscheiden, wer sie einsehen darf."
        ),
        opening="Wenn Sie nichts unternehmen, wird Ihre Akte am {date} eröffnet.",
        choice=(
            "Sie können sie schon jetzt mit dem untenstehenden Code aktivieren oder ihr vor "
            "diesem Datum widersprechen: Sie wird dann nicht angelegt. Sie können sie auch "
            "jederzeit schließen."
        ),
        code_label="Ihr Aktivierungscode",
        validity="Nur einmal gültig, bis zum {date}. Geben Sie ihn niemandem weiter.",
        how="Gehen Sie auf {url} und geben Sie Ihre nationale Kennnummer und diesen Code ein.",
        signature="Ihr Carnet-Team",
    ),
}


class LetterBook:
    """One PDF holding a page per letter, for a whole enrolment run.

    It stays in memory until written: for a national run, write one file per patient (or per
    batch) instead.
    """

    def __init__(self, *, portal_url: str, printed_at: dt.datetime) -> None:
        self._pdf = _new_pdf(printed_at)
        self._portal_url = portal_url
        self.pages = 0

    def add(self, invitation: Invitation) -> None:
        """Print one letter on a page of its own."""
        _draw(self._pdf, invitation, self._portal_url)
        self.pages += 1

    def write(self, path: Path) -> None:
        """Write the PDF to ``path``."""
        path.write_bytes(bytes(self._pdf.output()))


def letter_pdf(invitation: Invitation, *, portal_url: str, printed_at: dt.datetime) -> bytes:
    """One patient's letter as a PDF of its own."""
    pdf = _new_pdf(printed_at)
    _draw(pdf, invitation, portal_url)
    return bytes(pdf.output())


def write_letter(
    invitation: Invitation, directory: Path, *, portal_url: str, printed_at: dt.datetime
) -> Path:
    """Write one patient's letter to ``<directory>/<patient id>.pdf``; its path."""
    path = directory / f"{invitation.patient_id}.pdf"
    path.write_bytes(letter_pdf(invitation, portal_url=portal_url, printed_at=printed_at))
    return path


def _new_pdf(printed_at: dt.datetime) -> FPDF:
    pdf = FPDF(format="A4")
    pdf.set_creation_date(printed_at)
    pdf.set_creator("Carnet")
    pdf.set_title("Carnet")
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(auto=False)
    return pdf


def _draw(pdf: FPDF, invitation: Invitation, portal_url: str) -> None:
    language = language_for(invitation.language)
    words = _WORDING.get(language, _WORDING["fr"])
    pdf.add_page()
    pdf.set_font("Helvetica", "", 11)
    # The address block sits where a C5/6 window envelope shows it.
    pdf.set_xy(110, 45)
    for line in _address(invitation):
        pdf.cell(0, 5.5, latin1(line), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_xy(20, 95)
    pdf.set_font("Helvetica", "B", 15)
    _paragraph(pdf, words.subject, 8)
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 11)
    _paragraph(pdf, words.greeting.format(given=invitation.given, family=invitation.family))
    pdf.ln(2)
    _paragraph(pdf, words.what)
    pdf.ln(2)
    if invitation.opening_deadline is not None:
        pdf.set_font("Helvetica", "B", 11)
        _paragraph(pdf, words.opening.format(date=_date(invitation.opening_deadline, language)))
        pdf.set_font("Helvetica", "", 11)
    _paragraph(pdf, words.choice)
    pdf.ln(6)
    pdf.set_font("Helvetica", "", 10)
    _paragraph(pdf, words.code_label)
    pdf.set_font("Courier", "B", 20)
    _paragraph(pdf, _grouped(invitation.code), 11)
    pdf.set_font("Helvetica", "", 10)
    _paragraph(pdf, words.validity.format(date=_date(invitation.code_expires_at, language)))
    _paragraph(pdf, words.how.format(url=portal_url))
    pdf.ln(8)
    pdf.set_font("Helvetica", "", 11)
    _paragraph(pdf, words.signature)


def _paragraph(pdf: FPDF, text: str, height: float = 5.5) -> None:
    pdf.multi_cell(0, height, latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _address(invitation: Invitation) -> list[str]:
    lines = [f"{invitation.given} {invitation.family}"]
    if invitation.address_line:
        lines.append(invitation.address_line)
    place = " ".join(part for part in (invitation.postal_code, invitation.city) if part)
    if invitation.country and invitation.country != "LU":
        place = f"{invitation.country}-{place}" if place else invitation.country
    if place:
        lines.append(place)
    return lines


def _grouped(code: str) -> str:
    return "-".join(code[start : start + 4] for start in range(0, len(code), 4))


def _date(instant: dt.datetime, language: str) -> str:
    day = instant.astimezone(_LOCAL_TIME).date()
    if language == "en":
        return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
    separator = "." if language == "de" else "/"
    return day.strftime(f"%d{separator}%m{separator}%Y")
