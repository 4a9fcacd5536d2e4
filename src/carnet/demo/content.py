"""Synthetic clinical content for the documents of the demo population.

:func:`render` turns a :class:`DocumentContext` (document type, patient, author,
date) into the bytes of one document in one of four formats:

* ``application/pdf``: a small A4 PDF drawn with the fpdf2 core font Helvetica
  (text outside latin-1, such as "Łukasz" or "œ", is transliterated);
* ``text/plain``: the same content as UTF-8 text with aligned tables;
* ``application/fhir+json``: a FHIR R4 document ``Bundle`` (patient summary,
  vaccination record, allergies);
* ``text/xml``: an HL7 CDA R2 ``ClinicalDocument`` (patient summary, discharge
  summary, consultation note).

Content is drawn from small, realistic pools: a laboratory panel with reference
ranges, SNOMED CT problems and allergies, ATC medicines, CVX vaccines following the
Luxembourg/French schedules, and short scenario-based narratives in French, English
and German. Only the given ``random.Random`` is used, so the same context and random
state always give byte-identical output (PDFs carry ``context.created_at`` as their
creation date and a content-derived file identifier). All people, values and events
are fictitious.

``random`` is used on purpose: this is synthetic demo data, not a security feature
(hence the ruff S311 exemption).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
import xml.etree.ElementTree as ET  # builds documents only; nothing is parsed
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from carnet.patients.identifiers import FR_NIR, LU_MATRICULE
from carnet.pdftext import latin1 as _latin1

__all__ = [
    "LANGUAGES",
    "MIME_CDA",
    "MIME_FHIR_JSON",
    "MIME_PDF",
    "MIME_TEXT",
    "SUPPORTED_MIME_TYPES",
    "DocumentContext",
    "render",
    "supported_mime_types",
]

MIME_PDF: Final = "application/pdf"
MIME_TEXT: Final = "text/plain"
MIME_FHIR_JSON: Final = "application/fhir+json"
MIME_CDA: Final = "text/xml"
SUPPORTED_MIME_TYPES: Final = (MIME_PDF, MIME_TEXT, MIME_FHIR_JSON, MIME_CDA)
LANGUAGES: Final = ("fr", "en", "de")

LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
ATC: Final = "http://www.whocc.no/atc"
CVX: Final = "http://hl7.org/fhir/sid/cvx"
_LOINC_OID: Final = "2.16.840.1.113883.6.1"
_XHTML: Final = "http://www.w3.org/1999/xhtml"
_HL7_V3: Final = "urn:hl7-org:v3"
_XML_DECLARATION: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'


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
_Tr = tuple[str, ...]
_LANG_INDEX: Final = {"en": 0, "fr": 1, "de": 2}


def _t(text: _Tr, lang: str) -> str:
    """Return ``text`` in ``lang``, falling back to English."""
    index = _LANG_INDEX[lang]
    return text[index] if index < len(text) else text[0]


_HEADINGS: Final[dict[str, _Tr]] = {
    # Header and common
    "patient": ("Patient", "Patient", "Patient"),
    "birth_date": ("Date of birth", "Date de naissance", "Geburtsdatum"),
    "sex": ("Sex", "Sexe", "Geschlecht"),
    "identifier": ("National identifier", "Identifiant national", "Nationale Kennnummer"),
    "date": ("Date", "Date", "Datum"),
    "author": ("Author", "Auteur", "Verfasser"),
    "organisation": ("Organisation", "Établissement", "Einrichtung"),
    "document": ("Document", "Document", "Dokument"),
    "female": ("female", "féminin", "weiblich"),
    "male": ("male", "masculin", "männlich"),
    "other": ("other", "autre", "divers"),
    "unknown": ("unknown", "inconnu", "unbekannt"),
    "disclaimer": (
        "Synthetic demo document - all data are fictitious.",
        "Document de démonstration synthétique - toutes les données sont fictives.",
        "Synthetisches Demodokument - alle Daten sind fiktiv.",
    ),
    "medicine": ("Medicine", "Médicament", "Arzneimittel"),
    "dosage": ("Dosage", "Posologie", "Dosierung"),
    "since": ("Since", "Depuis", "Seit"),
    "diagnosis": ("Diagnosis", "Diagnostic", "Diagnose"),
    "examination": ("Clinical examination", "Examen clinique", "Klinische Untersuchung"),
    "allergies": (
        "Allergies and intolerances",
        "Allergies et intolérances",
        "Allergien und Unverträglichkeiten",
    ),
    "medications": ("Current medications", "Traitements en cours", "Aktuelle Medikation"),
    "problems": ("Active problems", "Problèmes actifs", "Aktive Probleme"),
    # Laboratory
    "sample": ("Sample", "Prélèvement", "Probenentnahme"),
    "laboratory": ("Laboratory", "Laboratoire", "Labor"),
    "sampled_at": ("Sampling date", "Date de prélèvement", "Entnahmedatum"),
    "results": ("Results", "Résultats", "Ergebnisse"),
    "analysis": ("Analysis", "Analyse", "Untersuchung"),
    "result": ("Result", "Résultat", "Ergebnis"),
    "unit": ("Unit", "Unité", "Einheit"),
    "reference": ("Reference range", "Valeurs de référence", "Referenzbereich"),
    "flag": ("Flag", "Alerte", "Hinweis"),
    "flag_legend": (
        "H: above the reference range; L: below the reference range.",
        "H : supérieur aux valeurs de référence ; L : inférieur aux valeurs de référence.",
        "H: oberhalb des Referenzbereichs; L: unterhalb des Referenzbereichs.",
    ),
    "validated_by": ("Validated by", "Validé par", "Freigegeben von"),
    "default_lab": (
        "Medical laboratory",
        "Laboratoire d'analyses médicales",
        "Medizinisches Labor",
    ),
    # Patient summary and allergies
    "substance": ("Substance", "Substance", "Substanz"),
    "reaction": ("Reaction", "Réaction", "Reaktion"),
    "criticality": ("Criticality", "Criticité", "Kritikalität"),
    "high": ("high", "élevée", "hoch"),
    "low": ("low", "faible", "niedrig"),
    "condition": ("Condition", "Pathologie", "Erkrankung"),
    "code": ("Code", "Code", "Code"),
    "no_allergy": ("No known allergy.", "Aucune allergie connue.", "Keine bekannten Allergien."),
    "no_medication": (
        "No current medication.",
        "Aucun traitement en cours.",
        "Keine aktuelle Medikation.",
    ),
    "no_problem": ("No active problem.", "Aucun problème actif.", "Keine aktiven Probleme."),
    # Insurer summary
    "services": (
        "Reimbursed services (last 12 months)",
        "Prestations remboursées (12 derniers mois)",
        "Erstattete Leistungen (letzte 12 Monate)",
    ),
    "period": (
        "Period: {start} to {end}",
        "Période : du {start} au {end}",
        "Zeitraum: {start} bis {end}",
    ),
    "provider": ("Provider", "Prestataire", "Leistungserbringer"),
    "tariff_code": ("Code", "Code", "Tarifcode"),
    "amount": ("Amount (EUR)", "Montant (EUR)", "Betrag (EUR)"),
    "reimbursed": ("Reimbursed (EUR)", "Remboursé (EUR)", "Erstattet (EUR)"),
    "total": ("Total", "Total", "Summe"),
    # Imaging
    "exam": ("Examination", "Examen", "Untersuchung"),
    "indication": ("Indication", "Indication", "Indikation"),
    "technique": ("Technique", "Technique", "Technik"),
    "findings": ("Findings", "Résultats", "Befund"),
    "conclusion": ("Conclusion", "Conclusion", "Beurteilung"),
    # Certificate and prescription
    "certificate": ("Certificate", "Certificat", "Bescheinigung"),
    "prescribed": ("Prescribed medicines", "Médicaments prescrits", "Verordnete Arzneimittel"),
    "duration": ("Duration", "Durée", "Dauer"),
    "days": ("{n} days", "{n} jours", "{n} Tage"),
    # Vaccination
    "vaccinations": ("Vaccinations", "Vaccinations", "Impfungen"),
    "vaccine": ("Vaccine", "Vaccin", "Impfstoff"),
    "dose": ("Dose", "Dose", "Dosis"),
    "lot": ("Lot number", "N° de lot", "Charge"),
    "no_vaccination": (
        "No vaccination recorded.",
        "Aucune vaccination enregistrée.",
        "Keine Impfung erfasst.",
    ),
    # Discharge summary
    "admission_reason": ("Reason for admission", "Motif d'hospitalisation", "Aufnahmegrund"),
    "stay": (
        "Admitted on {start}, discharged on {end}.",
        "Hospitalisation du {start} au {end}.",
        "Stationärer Aufenthalt vom {start} bis {end}.",
    ),
    "hospital_course": ("Hospital course", "Évolution pendant le séjour", "Verlauf"),
    "discharge_diagnosis": ("Discharge diagnosis", "Diagnostic de sortie", "Entlassungsdiagnose"),
    "discharge_medications": (
        "Medications at discharge",
        "Traitement de sortie",
        "Entlassungsmedikation",
    ),
    "follow_up": ("Follow-up", "Suivi", "Weiteres Vorgehen"),
    # Consultation note
    "consultation_reason": (
        "Reason for consultation",
        "Motif de consultation",
        "Konsultationsgrund",
    ),
    "history": ("History", "Anamnèse", "Anamnese"),
    "assessment": (
        "Assessment and plan",
        "Conclusion et conduite à tenir",
        "Beurteilung und Procedere",
    ),
    # Emergency visit
    "arrival": ("Arrival: {when}", "Arrivée : {when}", "Aufnahme: {when}"),
    "visit_reason": ("Reason for visit", "Motif de recours", "Vorstellungsgrund"),
    "ed_treatment": (
        "Treatment in the emergency department",
        "Prise en charge aux urgences",
        "Therapie in der Notaufnahme",
    ),
    "instructions": ("Discharge instructions", "Consignes de sortie", "Entlassungsempfehlungen"),
    # Operative report
    "preop_diagnosis": (
        "Preoperative diagnosis",
        "Diagnostic préopératoire",
        "Präoperative Diagnose",
    ),
    "procedure": ("Procedure", "Intervention", "Eingriff"),
    "surgery_facts": (
        "Surgery on {date}; duration {minutes} min.",
        "Intervention le {date} ; durée {minutes} min.",
        "Operation am {date}; Dauer {minutes} min.",
    ),
    "anaesthesia": ("Anaesthesia", "Anesthésie", "Anästhesie"),
    "operative_description": (
        "Operative description",
        "Description opératoire",
        "Operationsbericht",
    ),
    "postop": (
        "Postoperative instructions",
        "Consignes postopératoires",
        "Postoperatives Procedere",
    ),
    # Nursing note
    "observations": ("Observations", "Observations", "Beobachtungen"),
    "care": ("Care provided", "Soins réalisés", "Durchgeführte Pflege"),
    "plan": ("Plan", "Suite de la prise en charge", "Pflegeplanung"),
    # Dental report
    "dental_findings": ("Findings", "Constatations", "Befund"),
    "treatment": ("Treatment", "Soins réalisés", "Behandlung"),
    "next_visit": ("Next appointment", "Prochain rendez-vous", "Nächster Termin"),
    "recall": ("Check-up in {n} months.", "Contrôle dans {n} mois.", "Kontrolle in {n} Monaten."),
    # Emergency liaison file and advance directives
    "contacts": ("Contact persons", "Personnes à prévenir", "Kontaktpersonen"),
    "usual_state": ("Usual condition", "État habituel", "Üblicher Zustand"),
    "directives": ("Advance directives", "Directives anticipées", "Patientenverfügung"),
    "trusted_person": ("Trusted person", "Personne de confiance", "Vertrauensperson"),
    "wishes": ("My wishes", "Mes volontés", "Meine Wünsche"),
    "signed": (
        "Written in full possession of my mental faculties on {date}.",
        "Rédigé en pleine possession de mes facultés mentales, le {date}.",
        "Verfasst im Vollbesitz meiner geistigen Kräfte am {date}.",
    ),
    # Patient-provided
    "home_measurements": (
        "Home blood pressure measurements",
        "Automesures tensionnelles",
        "Blutdruck-Selbstmessungen",
    ),
    "time_of_day": ("Time", "Moment", "Zeitpunkt"),
    "morning": ("morning", "matin", "morgens"),
    "evening": ("evening", "soir", "abends"),
    "systolic": ("Systolic (mmHg)", "Systolique (mmHg)", "Systolisch (mmHg)"),
    "diastolic": ("Diastolic (mmHg)", "Diastolique (mmHg)", "Diastolisch (mmHg)"),
    "pulse": ("Pulse (/min)", "Pouls (/min)", "Puls (/min)"),
    "measurement_note": (
        "Measured at home with an automatic arm monitor, seated after 5 minutes of rest.",
        (
            "Mesures à domicile avec un tensiomètre de bras automatique, en position assise après "
            "5 minutes de repos."
        ),
        "Zu Hause mit einem automatischen Oberarmgerät gemessen, im Sitzen nach 5 Minuten Ruhe.",
    ),
    "vitals": (
        "BP {sys}/{dia} mmHg, HR {hr}/min, temperature {temp} °C, SpO2 {spo2} %, weight {kg} kg.",
        "TA {sys}/{dia} mmHg, FC {hr}/min, température {temp} °C, SpO2 {spo2} %, poids {kg} kg.",
        "RR {sys}/{dia} mmHg, HF {hr}/min, Temperatur {temp} °C, SpO2 {spo2} %, Gewicht {kg} kg.",
    ),
}


def _h(key: str, lang: str, **values: object) -> str:
    """Return the heading or label ``key`` in ``lang``, formatted with ``values``."""
    text = _t(_HEADINGS[key], lang)
    return text.format(**values) if values else text


# --- Formatting helpers ---------------------------------------------------------------


def _labelled(label: str, value: str, lang: str) -> str:
    """Return "label: value", with the space French puts before a colon."""
    return f"{label} : {value}" if lang == "fr" else f"{label}: {value}"


def _fmt_date(day: dt.date, lang: str) -> str:
    """Format a date the way it is written in ``lang`` (ISO for English)."""
    if lang == "fr":
        return f"{day.day:02d}/{day.month:02d}/{day.year}"
    if lang == "de":
        return f"{day.day:02d}.{day.month:02d}.{day.year}"
    return day.isoformat()


def _fmt_num(value: float, decimals: int, lang: str) -> str:
    """Format a number with a decimal comma in French and German."""
    text = f"{value:.{decimals}f}"
    return text if lang == "en" else text.replace(".", ",")


def _age(birth: dt.date, on: dt.date) -> int:
    """Age in whole years on ``on``."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _random_date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    """A uniformly drawn date between ``start`` and ``end`` (``start`` if empty)."""
    return start + dt.timedelta(days=rng.randint(0, max(0, (end - start).days)))


def _years_after(day: dt.date, years: float) -> dt.date:
    """``day`` plus an approximate number of years (no leap-day pitfalls)."""
    return day + dt.timedelta(days=round(years * 365.25))


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (deterministic)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _patient_line(ctx: DocumentContext) -> str:
    """Patient name as printed on documents: FAMILY Given."""
    return f"{ctx.patient_family.upper()} {ctx.patient_given}"


def _today(ctx: DocumentContext) -> dt.date:
    """The document date (UTC)."""
    return ctx.created_at.astimezone(dt.UTC).date()


_NAME_PREFIXES: Final = frozenset(
    {"dr", "dr.", "pr", "pr.", "prof", "prof.", "mr", "mrs", "ms", "mme", "m."}
)


def _split_name(full: str) -> tuple[str | None, list[str], str]:
    """Split "Dr Anne Weber" into (prefix, given names, family name)."""
    parts = full.split()
    prefix = parts.pop(0) if len(parts) > 1 and parts[0].lower() in _NAME_PREFIXES else None
    if not parts:
        return prefix, [], full
    return prefix, parts[:-1], parts[-1]


def _identifier_system(identifier: str) -> str:
    """FHIR system of a national identifier: 15 characters is a French NIR, else a LU matricule."""
    return FR_NIR if len(identifier) == 15 else LU_MATRICULE


def _oid_of(uri: str) -> str:
    """An OID for an identifier system: the OID of ``urn:oid:`` URIs, else a UUID-based 2.25 OID."""
    if uri.startswith("urn:oid:"):
        return uri.removeprefix("urn:oid:")
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, uri).int}"


# --- Content model ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Table:
    """A table: header, rows, relative column widths and alignment letters (L/R/C)."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[int, ...]
    align: str


@dataclass(frozen=True, slots=True)
class _Section:
    """A titled part of a document: paragraphs, then an optional table."""

    heading: str
    paragraphs: tuple[str, ...] = ()
    table: _Table | None = None
    loinc: str | None = None


def _text_section(heading: str, *paragraphs: str, loinc: str | None = None) -> _Section:
    """A section made of paragraphs only."""
    return _Section(heading, tuple(paragraphs), None, loinc)


# --- Clinical pools ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Analyte:
    """A laboratory analysis with per-sex reference ranges and a value distribution."""

    name: _Tr
    unit: str
    female: tuple[float | None, float | None]
    male: tuple[float | None, float | None] | None
    decimals: int
    mean: float | None = None
    sd: float | None = None
    floor: float = 0.0

    def reference(self, sex: str) -> tuple[float | None, float | None]:
        """Reference range (low, high) for ``sex``; ``None`` for an open bound."""
        return self.male if sex == "male" and self.male is not None else self.female

    def draw(self, sex: str, rng: random.Random) -> float:
        """A plausible value: mostly within range, sometimes just outside."""
        low, high = self.reference(sex)
        if self.mean is not None and self.sd is not None:
            mean, sd = self.mean, self.sd
        elif low is not None and high is not None:
            mean, sd = (low + high) / 2, (high - low) / 3.6
        else:
            raise ValueError(f"analyte {self.name[0]!r} needs a mean and sd")
        return round(max(self.floor, rng.gauss(mean, sd)), self.decimals)


_MICRO: Final = "\u00b5"
_ANALYTES: Final = (
    _Analyte(("Haemoglobin", "Hémoglobine", "Hämoglobin"), "g/dL", (12.0, 16.0), (13.0, 17.0), 1),
    _Analyte(("Leucocytes", "Leucocytes", "Leukozyten"), "G/L", (4.0, 10.0), None, 1),
    _Analyte(("Platelets", "Plaquettes", "Thrombozyten"), "G/L", (150, 400), None, 0),
    _Analyte(
        ("Fasting glucose", "Glycémie à jeun", "Nüchternglukose"),
        "mmol/L",
        (3.9, 6.1),
        None,
        1,
        5.3,
        0.8,
        2.5,
    ),
    _Analyte(("Creatinine", "Créatinine", "Kreatinin"), f"{_MICRO}mol/L", (45, 84), (59, 104), 0),
    _Analyte(
        ("eGFR (CKD-EPI)", "DFG estimé (CKD-EPI)", "eGFR (CKD-EPI)"),
        "mL/min/1.73 m²",
        (60, None),
        None,
        0,
        90,
        18,
        8,
    ),
    _Analyte(
        ("C-reactive protein", "Protéine C-réactive", "C-reaktives Protein"),
        "mg/L",
        (None, 5.0),
        None,
        1,
        2.5,
        4.0,
        0.3,
    ),
    _Analyte(("TSH", "TSH", "TSH"), "mU/L", (0.27, 4.2), None, 2, 1.9, 1.1, 0.02),
    _Analyte(("ALT", "ALAT", "ALT (GPT)"), "U/L", (None, 33), (None, 41), 0, 24, 10, 6),
    _Analyte(("AST", "ASAT", "AST (GOT)"), "U/L", (None, 32), (None, 40), 0, 23, 8, 8),
    _Analyte(
        ("Total cholesterol", "Cholestérol total", "Gesamtcholesterin"),
        "mmol/L",
        (None, 5.2),
        None,
        2,
        5.0,
        0.9,
        2.5,
    ),
    _Analyte(
        ("HDL cholesterol", "Cholestérol HDL", "HDL-Cholesterin"),
        "mmol/L",
        (1.2, None),
        (1.0, None),
        2,
        1.45,
        0.35,
        0.5,
    ),
    _Analyte(
        ("LDL cholesterol", "Cholestérol LDL", "LDL-Cholesterin"),
        "mmol/L",
        (None, 3.0),
        None,
        2,
        2.9,
        0.8,
        0.8,
    ),
    _Analyte(
        ("Triglycerides", "Triglycérides", "Triglyzeride"),
        "mmol/L",
        (None, 1.7),
        None,
        2,
        1.3,
        0.6,
        0.3,
    ),
    _Analyte(
        ("HbA1c", "Hémoglobine glyquée (HbA1c)", "HbA1c"), "%", (4.0, 6.0), None, 1, 5.5, 0.6, 4.0
    ),
    _Analyte(("Ferritin", "Ferritine", "Ferritin"), f"{_MICRO}g/L", (15, 150), (30, 400), 0),
    _Analyte(
        ("25-OH vitamin D", "Vitamine D (25-OH)", "25-OH-Vitamin D"),
        "nmol/L",
        (75, 250),
        None,
        0,
        62,
        22,
        10,
    ),
    _Analyte(("Sodium", "Sodium", "Natrium"), "mmol/L", (136, 145), None, 0),
    _Analyte(("Potassium", "Potassium", "Kalium"), "mmol/L", (3.5, 5.1), None, 1),
)


@dataclass(frozen=True, slots=True)
class _Medicine:
    """A medicine (ATC code) with its usual dosage instructions."""

    atc: str
    name: _Tr
    dosage: _Tr


_ONCE_DAILY: Final = ("1 tablet once daily", "1 comprimé par jour", "1 Tablette täglich")
_MORNING: Final = ("1 tablet in the morning", "1 comprimé le matin", "1 Tablette morgens")
_EVENING: Final = ("1 tablet in the evening", "1 comprimé le soir", "1 Tablette abends")
_TWICE_DAILY: Final = (
    "1 tablet twice daily",
    "1 comprimé matin et soir",
    "2-mal täglich 1 Tablette",
)

_MEDICINES: Final[dict[str, _Medicine]] = {
    "ramipril": _Medicine("C09AA05", ("Ramipril 5 mg",), _ONCE_DAILY),
    "amlodipine": _Medicine(
        "C08CA01", ("Amlodipine 5 mg", "Amlodipine 5 mg", "Amlodipin 5 mg"), _ONCE_DAILY
    ),
    "atorvastatin": _Medicine(
        "C10AA05", ("Atorvastatin 20 mg", "Atorvastatine 20 mg", "Atorvastatin 20 mg"), _EVENING
    ),
    "metformin": _Medicine(
        "A10BA02",
        ("Metformin 850 mg", "Metformine 850 mg", "Metformin 850 mg"),
        (
            "1 tablet twice daily with meals",
            "1 comprimé matin et soir au cours des repas",
            "2-mal täglich 1 Tablette zu den Mahlzeiten",
        ),
    ),
    "levothyroxine": _Medicine(
        "H03AA01",
        (
            f"Levothyroxine 75 {_MICRO}g",
            f"Lévothyroxine 75 {_MICRO}g",
            f"Levothyroxin 75 {_MICRO}g",
        ),
        (
            "1 tablet in the morning on an empty stomach",
            "1 comprimé le matin à jeun",
            "1 Tablette morgens nüchtern",
        ),
    ),
    "bisoprolol": _Medicine("C07AB07", ("Bisoprolol 5 mg",), _MORNING),
    "rivaroxaban": _Medicine(
        "B01AF01",
        ("Rivaroxaban 20 mg",),
        (
            "1 tablet with the evening meal",
            "1 comprimé au cours du repas du soir",
            "1 Tablette zum Abendessen",
        ),
    ),
    "escitalopram": _Medicine("N06AB10", ("Escitalopram 10 mg",), _MORNING),
    "pantoprazole": _Medicine(
        "A02BC02",
        ("Pantoprazole 20 mg", "Pantoprazole 20 mg", "Pantoprazol 20 mg"),
        (
            "1 tablet before breakfast",
            "1 comprimé le matin avant le petit-déjeuner",
            "1 Tablette vor dem Frühstück",
        ),
    ),
    "paracetamol": _Medicine(
        "N02BE01",
        ("Paracetamol 1 g", "Paracétamol 1 g", "Paracetamol 1 g"),
        (
            "1 tablet up to 4 times a day if pain, at least 6 hours apart",
            "1 comprimé jusqu'à 4 fois par jour si douleur, espacer les prises de 6 heures",
            "bei Schmerzen bis zu 4-mal täglich 1 Tablette, Abstand mindestens 6 Stunden",
        ),
    ),
    "salmeterol": _Medicine(
        "R03AK06",
        (
            f"Salmeterol/fluticasone 50/250 {_MICRO}g inhaler",
            f"Salmétérol/fluticasone 50/250 {_MICRO}g inhalateur",
            f"Salmeterol/Fluticason 50/250 {_MICRO}g Inhalator",
        ),
        ("1 inhalation twice daily", "1 inhalation matin et soir", "2-mal täglich 1 Inhalation"),
    ),
    "tiotropium": _Medicine(
        "R03BB04",
        (
            f"Tiotropium 18 {_MICRO}g inhalation powder",
            f"Tiotropium 18 {_MICRO}g poudre pour inhalation",
            f"Tiotropium 18 {_MICRO}g Inhalationspulver",
        ),
        ("1 inhalation once daily", "1 inhalation par jour", "1 Inhalation täglich"),
    ),
    "furosemide": _Medicine(
        "C03CA01", ("Furosemide 40 mg", "Furosémide 40 mg", "Furosemid 40 mg"), _MORNING
    ),
    "aspirin": _Medicine(
        "B01AC06",
        (
            "Acetylsalicylic acid 100 mg",
            "Acide acétylsalicylique 100 mg",
            "Acetylsalicylsäure 100 mg",
        ),
        _ONCE_DAILY,
    ),
    "ticagrelor": _Medicine("B01AC24", ("Ticagrelor 90 mg",), _TWICE_DAILY),
    "amoxicillin": _Medicine(
        "J01CA04",
        ("Amoxicillin 1 g", "Amoxicilline 1 g", "Amoxicillin 1 g"),
        ("1 tablet three times a day", "1 comprimé 3 fois par jour", "3-mal täglich 1 Tablette"),
    ),
    "co-amoxiclav": _Medicine(
        "J01CR02",
        (
            "Amoxicillin/clavulanic acid 875/125 mg",
            "Amoxicilline/acide clavulanique 875/125 mg",
            "Amoxicillin/Clavulansäure 875/125 mg",
        ),
        _TWICE_DAILY,
    ),
    "ibuprofen": _Medicine(
        "M01AE01",
        ("Ibuprofen 400 mg", "Ibuprofène 400 mg", "Ibuprofen 400 mg"),
        (
            "1 tablet up to 3 times a day with meals if pain",
            "1 comprimé jusqu'à 3 fois par jour au cours des repas si douleur",
            "bei Schmerzen bis zu 3-mal täglich 1 Tablette zum Essen",
        ),
    ),
    "prednisolone": _Medicine(
        "H02AB06",
        ("Prednisolone 20 mg", "Prednisolone 20 mg", "Prednisolon 20 mg"),
        ("2 tablets in the morning", "2 comprimés le matin", "2 Tabletten morgens"),
    ),
    "cetirizine": _Medicine(
        "R06AE07", ("Cetirizine 10 mg", "Cétirizine 10 mg", "Cetirizin 10 mg"), _EVENING
    ),
    "enoxaparin": _Medicine(
        "B01AB05",
        ("Enoxaparin 4000 IU", "Énoxaparine 4000 UI", "Enoxaparin 4000 I.E."),
        (
            "1 subcutaneous injection daily",
            "1 injection sous-cutanée par jour",
            "1 subkutane Injektion täglich",
        ),
    ),
}

# (medicine key, possible durations in days) for prescriptions
_PRESCRIPTION_ITEMS: Final = (
    ("amoxicillin", (6, 7, 10)),
    ("ibuprofen", (5, 7)),
    ("paracetamol", (5, 10)),
    ("pantoprazole", (28, 56)),
    ("prednisolone", (5,)),
    ("cetirizine", (14, 30)),
    ("ramipril", (90,)),
    ("atorvastatin", (90,)),
    ("metformin", (90,)),
    ("levothyroxine", (90,)),
)


@dataclass(frozen=True, slots=True)
class _Coded:
    """A coded concept: code, display in its code system, patient-facing label."""

    code: str
    display: str
    label: _Tr


@dataclass(frozen=True, slots=True)
class _Problem:
    """A chronic condition (SNOMED CT), its usual medicines and minimum onset age."""

    concept: _Coded
    medicines: tuple[str, ...]
    min_age: int


_PROBLEMS: Final = (
    _Problem(
        _Coded(
            "38341003",
            "Hypertensive disorder, systemic arterial",
            ("Hypertension", "Hypertension artérielle", "Arterielle Hypertonie"),
        ),
        ("ramipril", "amlodipine"),
        30,
    ),
    _Problem(
        _Coded(
            "44054006",
            "Diabetes mellitus type 2",
            ("Type 2 diabetes", "Diabète de type 2", "Diabetes mellitus Typ 2"),
        ),
        ("metformin",),
        35,
    ),
    _Problem(
        _Coded(
            "55822004", "Hyperlipidemia", ("Hyperlipidaemia", "Hyperlipidémie", "Hyperlipidämie")
        ),
        ("atorvastatin",),
        30,
    ),
    _Problem(
        _Coded("195967001", "Asthma", ("Asthma", "Asthme", "Asthma bronchiale")), ("salmeterol",), 5
    ),
    _Problem(
        _Coded("40930008", "Hypothyroidism", ("Hypothyroidism", "Hypothyroïdie", "Hypothyreose")),
        ("levothyroxine",),
        20,
    ),
    _Problem(
        _Coded(
            "49436004",
            "Atrial fibrillation",
            ("Atrial fibrillation", "Fibrillation atriale", "Vorhofflimmern"),
        ),
        ("rivaroxaban", "bisoprolol"),
        55,
    ),
    _Problem(
        _Coded(
            "35489007",
            "Depressive disorder",
            ("Depression", "Trouble dépressif", "Depressive Störung"),
        ),
        ("escitalopram",),
        18,
    ),
    _Problem(
        _Coded(
            "235595009",
            "Gastroesophageal reflux disease",
            ("Gastro-oesophageal reflux disease", "Reflux gastro-oesophagien", "Refluxkrankheit"),
        ),
        ("pantoprazole",),
        18,
    ),
    _Problem(
        _Coded("396275006", "Osteoarthritis", ("Osteoarthritis", "Arthrose", "Arthrose")),
        ("paracetamol",),
        45,
    ),
    _Problem(
        _Coded(
            "709044004",
            "Chronic kidney disease",
            ("Chronic kidney disease", "Maladie rénale chronique", "Chronische Nierenkrankheit"),
        ),
        ("furosemide",),
        55,
    ),
    _Problem(
        _Coded("13645005", "Chronic obstructive lung disease", ("COPD", "BPCO", "COPD")),
        ("tiotropium",),
        45,
    ),
    _Problem(
        _Coded(
            "53741008",
            "Coronary arteriosclerosis",
            ("Coronary artery disease", "Maladie coronarienne", "Koronare Herzkrankheit"),
        ),
        ("aspirin", "atorvastatin"),
        50,
    ),
    _Problem(_Coded("414916001", "Obesity", ("Obesity", "Obésité", "Adipositas")), (), 18),
    _Problem(
        _Coded(
            "73430006",
            "Sleep apnea",
            ("Sleep apnoea", "Syndrome d'apnées du sommeil", "Schlafapnoe"),
        ),
        (),
        35,
    ),
)

_REACTIONS: Final[dict[str, _Coded]] = {
    "rash": _Coded(
        "271807003", "Eruption of skin", ("Skin rash", "Éruption cutanée", "Hautausschlag")
    ),
    "urticaria": _Coded("126485001", "Urticaria", ("Hives", "Urticaire", "Urtikaria")),
    "anaphylaxis": _Coded("39579001", "Anaphylaxis", ("Anaphylaxis", "Anaphylaxie", "Anaphylaxie")),
    "dyspnoea": _Coded("267036007", "Dyspnea", ("Shortness of breath", "Dyspnée", "Atemnot")),
    "rhinitis": _Coded("70076002", "Rhinitis", ("Rhinitis", "Rhinite", "Rhinitis")),
    "itching": _Coded("418290006", "Itching", ("Itching", "Prurit", "Juckreiz")),
    "nausea": _Coded("422587007", "Nausea", ("Nausea", "Nausées", "Übelkeit")),
}


@dataclass(frozen=True, slots=True)
class _Allergen:
    """An allergy substance (SNOMED CT), its FHIR category and usual reactions."""

    concept: _Coded
    category: str
    reactions: tuple[str, ...]


_ALLERGENS: Final = (
    _Allergen(
        _Coded("764146007", "Penicillin", ("Penicillin", "Pénicilline", "Penicillin")),
        "medication",
        ("rash", "urticaria", "anaphylaxis"),
    ),
    _Allergen(
        _Coded("372687004", "Amoxicillin", ("Amoxicillin", "Amoxicilline", "Amoxicillin")),
        "medication",
        ("rash", "urticaria"),
    ),
    _Allergen(
        _Coded("387207008", "Ibuprofen", ("Ibuprofen", "Ibuprofène", "Ibuprofen")),
        "medication",
        ("urticaria", "dyspnoea"),
    ),
    _Allergen(
        _Coded(
            "387458008",
            "Aspirin",
            ("Acetylsalicylic acid", "Acide acétylsalicylique", "Acetylsalicylsäure"),
        ),
        "medication",
        ("urticaria", "dyspnoea"),
    ),
    _Allergen(
        _Coded("762952008", "Peanut", ("Peanut", "Arachide", "Erdnuss")),
        "food",
        ("urticaria", "anaphylaxis", "nausea"),
    ),
    _Allergen(
        _Coded("256259004", "Pollen", ("Pollen", "Pollens", "Pollen")),
        "environment",
        ("rhinitis", "itching"),
    ),
    _Allergen(
        _Coded("260147004", "House dust mite", ("House dust mite", "Acariens", "Hausstaubmilbe")),
        "environment",
        ("rhinitis", "dyspnoea"),
    ),
    _Allergen(
        _Coded("111088007", "Latex", ("Latex", "Latex", "Latex")),
        "environment",
        ("rash", "itching"),
    ),
    _Allergen(
        _Coded("288328004", "Bee venom", ("Bee venom", "Venin d'abeille", "Bienengift")),
        "environment",
        ("urticaria", "anaphylaxis"),
    ),
)
_NO_KNOWN_ALLERGY: Final = _Coded(
    "716186003",
    "No known allergy",
    ("No known allergy", "Aucune allergie connue", "Keine bekannten Allergien"),
)

_VACCINES: Final[dict[str, _Coded]] = {
    "146": _Coded(
        "146",
        "DTaP,IPV,Hib,HepB",
        (
            "Diphtheria, tetanus, pertussis, polio, Hib, hepatitis B",
            "Hexavalent DTCaP-Hib-VHB",
            "Sechsfachimpfung DTaP-IPV-Hib-HepB",
        ),
    ),
    "20": _Coded(
        "20",
        "DTaP",
        (
            "Diphtheria, tetanus, pertussis (DTaP)",
            "Diphtérie, tétanos, coqueluche (DTCa)",
            "Diphtherie, Tetanus, Pertussis (DTaP)",
        ),
    ),
    "03": _Coded(
        "03",
        "MMR",
        (
            "Measles, mumps, rubella (MMR)",
            "Rougeole, oreillons, rubéole (ROR)",
            "Masern, Mumps, Röteln (MMR)",
        ),
    ),
    "08": _Coded(
        "08", "Hep B, adolescent or pediatric", ("Hepatitis B", "Hépatite B", "Hepatitis B")
    ),
    "165": _Coded(
        "165",
        "HPV9",
        (
            "Human papillomavirus (HPV)",
            "Papillomavirus humains (HPV)",
            "Humane Papillomviren (HPV)",
        ),
    ),
    "115": _Coded(
        "115",
        "Tdap",
        (
            "Tetanus, diphtheria, pertussis (Tdap)",
            "Diphtérie, tétanos, coqueluche (dTca)",
            "Tetanus, Diphtherie, Pertussis (Tdap)",
        ),
    ),
    "113": _Coded(
        "113",
        "Td (adult) preservative free",
        ("Tetanus, diphtheria (Td)", "Diphtérie, tétanos (dT)", "Tetanus, Diphtherie (Td)"),
    ),
    "141": _Coded(
        "141",
        "Influenza, seasonal, injectable",
        ("Seasonal influenza", "Grippe saisonnière", "Saisonale Influenza"),
    ),
    "208": _Coded(
        "208",
        "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose",
        ("COVID-19 (mRNA)", "COVID-19 (ARNm)", "COVID-19 (mRNA)"),
    ),
    "133": _Coded(
        "133",
        "Pneumococcal conjugate PCV 13",
        ("Pneumococcal (conjugate)", "Pneumocoque (conjugué)", "Pneumokokken (Konjugat)"),
    ),
}

# Document and section LOINC codes with their LOINC displays.
_LOINC_DISPLAY: Final = {
    "60591-5": "Patient summary Document",
    "82593-5": "Immunization summary report",
    "48765-2": "Allergies and adverse reactions Document",
    "18842-5": "Discharge summary",
    "11488-4": "Consult note",
    "10160-0": "History of Medication use Narrative",
    "11450-4": "Problem list - Reported",
    "11369-6": "History of Immunization Narrative",
    "29299-5": "Reason for visit Narrative",
    "8648-8": "Hospital course Narrative",
    "11535-2": "Hospital discharge Dx Narrative",
    "10183-2": "Hospital discharge medications Narrative",
    "8653-8": "Hospital Discharge instructions",
    "42349-1": "Reason for referral (narrative)",
    "10164-2": "History of Present illness Narrative",
    "29545-1": "Physical findings Narrative",
    "51847-2": "Evaluation + Plan note",
}
_DOCUMENT_LOINC: Final = {
    "patient-summary": "60591-5",
    "vaccination-record": "82593-5",
    "allergies": "48765-2",
    "discharge-summary": "18842-5",
    "consultation-note": "11488-4",
}


def _vitals(rng: random.Random, lang: str) -> str:
    """A line of plausible vital signs."""
    return _h(
        "vitals",
        lang,
        sys=rng.randint(108, 152),
        dia=rng.randint(64, 94),
        hr=rng.randint(56, 96),
        temp=_fmt_num(rng.uniform(36.2, 37.6), 1, lang),
        spo2=rng.randint(94, 99),
        kg=rng.randint(52, 104),
    )


# --- Laboratory report ---------------------------------------------------------------


def _lab_row(analyte: _Analyte, sex: str, lang: str, rng: random.Random) -> tuple[str, ...]:
    """One result row: analysis, value, unit, reference range, H/L flag."""
    low, high = analyte.reference(sex)
    value = analyte.draw(sex, rng)
    flag = (
        "L" if low is not None and value < low else "H" if high is not None and value > high else ""
    )
    if low is not None and high is not None:
        reference = (
            f"{_fmt_num(low, analyte.decimals, lang)} - {_fmt_num(high, analyte.decimals, lang)}"
        )
    elif high is not None:
        reference = f"< {_fmt_num(high, analyte.decimals, lang)}"
    else:
        reference = f"> {_fmt_num(low or 0.0, analyte.decimals, lang)}"
    return (
        _t(analyte.name, lang),
        _fmt_num(value, analyte.decimals, lang),
        analyte.unit,
        reference,
        flag,
    )


def _lab_report(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Laboratory report: sample information and 5 to 12 results with flags."""
    lang = ctx.language
    sampled = (ctx.created_at - dt.timedelta(hours=rng.randint(3, 36))).date()
    picks = sorted(rng.sample(range(len(_ANALYTES)), rng.randint(5, 12)))
    rows = tuple(_lab_row(_ANALYTES[i], ctx.patient_sex, lang, rng) for i in picks)
    sample = [
        _labelled(_h("laboratory", lang), ctx.organisation_name or _h("default_lab", lang), lang),
        _labelled(_h("sampled_at", lang), _fmt_date(sampled, lang), lang),
    ]
    header = tuple(_h(key, lang) for key in ("analysis", "result", "unit", "reference", "flag"))
    notes = [_h("flag_legend", lang)]
    if ctx.author_name:
        notes.append(_labelled(_h("validated_by", lang), ctx.author_name, lang))
    return [
        _text_section(_h("sample", lang), *sample),
        _Section(_h("results", lang), table=_Table(header, rows, (36, 14, 18, 22, 10), "LRLCC")),
        _text_section("", *notes),
    ]


# --- Patient summary and allergies -------------------------------------------------


# Allergies of a patient: (substance, typical reaction) pairs.
_Allergies = tuple[tuple[_Allergen, _Coded], ...]


@dataclass(frozen=True, slots=True)
class _Summary:
    """Drawn clinical data of a patient summary."""

    allergies: _Allergies
    medications: tuple[tuple[_Medicine, dt.date], ...]
    problems: tuple[tuple[_Problem, dt.date], ...]


def _draw_allergies(rng: random.Random, *, at_least_one: bool = False) -> _Allergies:
    """Allergies with one typical reaction each: 0-2 in a summary, 1-3 in an allergy record."""
    counts, weights = ((1, 2, 3), (60, 30, 10)) if at_least_one else ((0, 1, 2), (60, 30, 10))
    count = rng.choices(counts, weights=weights)[0]
    return tuple((a, _REACTIONS[rng.choice(a.reactions)]) for a in rng.sample(_ALLERGENS, count))


def _draw_summary(ctx: DocumentContext, rng: random.Random) -> _Summary:
    """Draw age-appropriate problems, the medicines treating them, and allergies."""
    today = _today(ctx)
    birth = ctx.patient_birth_date
    age = _age(birth, today)
    eligible = [p for p in _PROBLEMS if p.min_age <= age]
    most = 0 if age < 5 else 1 if age < 30 else 2 if age < 50 else 4
    chosen = rng.sample(eligible, min(len(eligible), rng.randint(0, most)))
    problems = tuple((p, _random_date(rng, _years_after(birth, p.min_age), today)) for p in chosen)
    starts: dict[str, dt.date] = {}
    for problem, onset in problems:
        for key in problem.medicines:
            starts.setdefault(key, _random_date(rng, onset, today))
    medications = tuple((_MEDICINES[key], start) for key, start in starts.items())
    return _Summary(_draw_allergies(rng), medications, problems)


def _allergy_section(lang: str, allergies: Sequence[tuple[_Allergen, _Coded]]) -> _Section:
    """Allergies section (LOINC 48765-2) as a table, or "no known allergy"."""
    heading = _h("allergies", lang)
    if not allergies:
        return _text_section(heading, _h("no_allergy", lang), loinc="48765-2")
    header = (_h("substance", lang), _h("reaction", lang), _h("criticality", lang))
    rows = tuple(
        (_t(a.concept.label, lang), _t(r.label, lang), _h(_criticality(r), lang))
        for a, r in allergies
    )
    return _Section(heading, table=_Table(header, rows, (40, 40, 20), "LLL"), loinc="48765-2")


def _criticality(reaction: _Coded) -> str:
    """FHIR AllergyIntolerance criticality implied by a reaction."""
    return "high" if reaction.code == _REACTIONS["anaphylaxis"].code else "low"


def _medication_section(lang: str, medications: Sequence[tuple[_Medicine, dt.date]]) -> _Section:
    """Medication section (LOINC 10160-0)."""
    heading = _h("medications", lang)
    if not medications:
        return _text_section(heading, _h("no_medication", lang), loinc="10160-0")
    header = (_h("medicine", lang), _h("dosage", lang), _h("since", lang))
    rows = tuple((_t(m.name, lang), _t(m.dosage, lang), _fmt_date(d, lang)) for m, d in medications)
    return _Section(heading, table=_Table(header, rows, (38, 46, 16), "LLL"), loinc="10160-0")


def _problem_section(lang: str, problems: Sequence[tuple[_Problem, dt.date]]) -> _Section:
    """Problem list section (LOINC 11450-4)."""
    heading = _h("problems", lang)
    if not problems:
        return _text_section(heading, _h("no_problem", lang), loinc="11450-4")
    header = (_h("condition", lang), "SNOMED CT", _h("since", lang))
    rows = tuple(
        (_t(p.concept.label, lang), p.concept.code, _fmt_date(d, lang)) for p, d in problems
    )
    return _Section(heading, table=_Table(header, rows, (50, 25, 25), "LLL"), loinc="11450-4")


def _summary_sections(lang: str, summary: _Summary) -> list[_Section]:
    """The three sections of a patient summary."""
    return [
        _allergy_section(lang, summary.allergies),
        _medication_section(lang, summary.medications),
        _problem_section(lang, summary.problems),
    ]


def _patient_summary(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Patient summary: allergies, current medications, active problems."""
    return _summary_sections(ctx.language, _draw_summary(ctx, rng))


def _allergies(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Allergy record: the allergy table alone."""
    return [_allergy_section(ctx.language, _draw_allergies(rng, at_least_one=True))]


# --- Vaccination record -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Vaccination:
    """One administered vaccine dose."""

    date: dt.date
    vaccine: _Coded
    dose: int
    lot: str


def _childhood_doses(birth: dt.date, rng: random.Random) -> list[tuple[dt.date, str, int]]:
    """Infant and adolescent doses of the Luxembourg/French schedules, by birth cohort."""

    def at(months: float, code: str, dose: int) -> tuple[dt.date, str, int]:
        return birth + dt.timedelta(days=round(months * 30.44) + rng.randint(0, 20)), code, dose

    doses: list[tuple[dt.date, str, int]] = []
    if birth.year >= 2000:
        doses += [at(2, "146", 1), at(4, "146", 2), at(11, "146", 3)]
    elif birth.year >= 1970:
        doses += [at(2, "20", 1), at(3, "20", 2), at(4, "20", 3)]
    if birth.year >= 1985:
        doses += [at(12, "03", 1), at(16, "03", 2)]
    if 1985 <= birth.year < 2000:
        doses += [at(132, "08", 1), at(138, "08", 2)]
    if birth.year >= 2006:
        doses += [at(134, "165", 1), at(140, "165", 2)]
    return doses


def _adult_doses(
    birth: dt.date, today: dt.date, rng: random.Random
) -> list[tuple[dt.date, str, int]]:
    """Adult boosters, seasonal influenza, COVID-19 and pneumococcal doses."""
    doses: list[tuple[dt.date, str, int]] = []
    for number, age in enumerate((25, 45, 65, 75), start=1):
        if rng.random() < 0.75:
            doses.append(
                (
                    _random_date(rng, _years_after(birth, age), _years_after(birth, age + 1)),
                    "115" if age == 25 else "113",
                    number,
                )
            )
    for year in range(today.year - 4, today.year + 1):
        season = dt.date(year, 10, 10)
        if _age(birth, season) >= 18 and rng.random() < (
            0.8 if _age(birth, season) >= 65 else 0.15
        ):
            doses.append((_random_date(rng, season, season + dt.timedelta(days=50)), "141", 1))
    covid_age = _age(birth, dt.date(2021, 1, 1))
    if covid_age >= 12 and rng.random() < 0.85:
        first = _random_date(rng, dt.date(2021, 2, 1), dt.date(2021, 7, 31))
        doses += [(first, "208", 1), (first + dt.timedelta(days=rng.randint(21, 42)), "208", 2)]
        if covid_age >= 18:
            doses.append((_random_date(rng, dt.date(2021, 11, 15), dt.date(2022, 1, 31)), "208", 3))
        if covid_age >= 60:
            doses.append((_random_date(rng, dt.date(2022, 10, 1), dt.date(2022, 12, 15)), "208", 4))
    if rng.random() < 0.5:
        doses.append(
            (_random_date(rng, _years_after(birth, 65), _years_after(birth, 66)), "133", 1)
        )
    return doses


def _draw_vaccinations(ctx: DocumentContext, rng: random.Random) -> list[_Vaccination]:
    """All doses given up to the document date, oldest first, with lot numbers."""
    today = _today(ctx)
    birth = ctx.patient_birth_date
    doses = _childhood_doses(birth, rng) + _adult_doses(birth, today, rng)
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return [
        _Vaccination(
            day,
            _VACCINES[code],
            dose,
            f"{rng.choice(letters)}{rng.choice(letters)}{rng.randint(1000, 9999)}",
        )
        for day, code, dose in sorted(doses)
        if day <= today
    ]


def _vaccination_section(lang: str, vaccinations: Sequence[_Vaccination]) -> _Section:
    """Immunization history section (LOINC 11369-6)."""
    heading = _h("vaccinations", lang)
    if not vaccinations:
        return _text_section(heading, _h("no_vaccination", lang), loinc="11369-6")
    header = (_h("date", lang), _h("vaccine", lang), _h("dose", lang), _h("lot", lang))
    rows = tuple(
        (_fmt_date(v.date, lang), _t(v.vaccine.label, lang), str(v.dose), v.lot)
        for v in vaccinations
    )
    return _Section(heading, table=_Table(header, rows, (16, 56, 10, 18), "LLCL"), loinc="11369-6")


def _vaccination_record(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Vaccination record: a table of administered doses."""
    return [_vaccination_section(ctx.language, _draw_vaccinations(ctx, rng))]


# --- Insurer summary ---------------------------------------------------------------

# (tariff code, provider kind, amount range in EUR, reimbursement rate)
_SERVICES: Final = (
    (
        "C1",
        ("General practitioner", "Médecin généraliste", "Allgemeinmediziner"),
        (56.3, 56.3),
        0.88,
    ),
    ("C2", ("Specialist", "Médecin spécialiste", "Facharzt"), (68.1, 68.1), 0.88),
    (
        "V1",
        ("Home visit (GP)", "Visite à domicile (généraliste)", "Hausbesuch (Allgemeinmedizin)"),
        (94.1, 94.1),
        0.88,
    ),
    ("LAB", ("Medical laboratory", "Laboratoire d'analyses", "Labor"), (12.0, 85.0), 1.0),
    ("PHA", ("Pharmacy", "Pharmacie", "Apotheke"), (4.5, 120.0), 0.8),
    ("K21", ("Physiotherapist", "Kinésithérapeute", "Physiotherapeut"), (28.6, 28.6), 0.7),
    ("D1", ("Dentist", "Médecin-dentiste", "Zahnarzt"), (36.8, 36.8), 0.88),
    ("RX", ("Radiology", "Radiologie", "Radiologie"), (40.0, 250.0), 1.0),
)


def _insurer_summary(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Insurer summary: services reimbursed over the past 12 months with totals."""
    lang = ctx.language
    today = _today(ctx)
    start = today - dt.timedelta(days=365)
    drawn = []
    for _ in range(rng.randint(4, 14)):
        code, provider, (low, high), rate = rng.choices(
            _SERVICES, weights=(30, 10, 3, 20, 25, 5, 4, 3)
        )[0]
        amount = round(rng.uniform(low, high), 2)
        drawn.append(
            (_random_date(rng, start, today), code, provider, amount, round(amount * rate, 2))
        )
    drawn.sort(key=lambda service: service[0])
    rows = [
        (
            _fmt_date(day, lang),
            _t(provider, lang),
            code,
            _fmt_num(amount, 2, lang),
            _fmt_num(paid, 2, lang),
        )
        for day, code, provider, amount, paid in drawn
    ]
    total = sum(s[3] for s in drawn)
    paid_total = sum(s[4] for s in drawn)
    rows.append(
        ("", _h("total", lang), "", _fmt_num(total, 2, lang), _fmt_num(paid_total, 2, lang))
    )
    header = tuple(
        _h(key, lang) for key in ("date", "provider", "tariff_code", "amount", "reimbursed")
    )
    period = _h("period", lang, start=_fmt_date(start, lang), end=_fmt_date(today, lang))
    return [
        _Section(
            _h("services", lang),
            (period,),
            _Table(header, tuple(rows), (16, 38, 12, 17, 17), "LLCRR"),
        )
    ]


# --- Imaging report ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Exam:
    """An imaging examination with indications and (findings, conclusion) outcomes."""

    name: _Tr
    indications: tuple[_Tr, ...]
    technique: _Tr
    outcomes: tuple[tuple[_Tr, _Tr], ...]


_EXAMS: Final = (
    _Exam(
        (
            "Chest X-ray, PA and lateral",
            "Radiographie thoracique de face et de profil",
            "Röntgen Thorax in zwei Ebenen",
        ),
        (
            (
                "Persistent cough for three weeks.",
                "Toux persistante depuis trois semaines.",
                "Seit drei Wochen anhaltender Husten.",
            ),
            (
                "Fever and dyspnoea; rule out pneumonia.",
                "Fièvre et dyspnée, recherche de pneumopathie.",
                "Fieber und Dyspnoe, Ausschluss einer Pneumonie.",
            ),
        ),
        (
            "Standing radiographs, posteroanterior and lateral views.",
            "Clichés debout de face et de profil.",
            "Aufnahmen im Stehen, p.a. und seitlich.",
        ),
        (
            (
                (
                    (
                        "Lungs clear. No focal consolidation, pleural effusion or pneumothorax. "
                        "Normal cardiac silhouette."
                    ),
                    (
                        "Parenchyme pulmonaire normal. Pas de foyer, pas d'épanchement pleural, "
                        "pas de pneumothorax. Silhouette cardiaque normale."
                    ),
                    (
                        "Lunge frei belüftet. Kein Infiltrat, kein Pleuraerguss, kein "
                        "Pneumothorax. Herz normal groß."
                    ),
                ),
                (
                    "No acute cardiopulmonary abnormality.",
                    "Pas d'anomalie cardio-pulmonaire aiguë.",
                    "Kein akuter kardiopulmonaler Befund.",
                ),
            ),
            (
                (
                    (
                        "Alveolar opacity in the right lower lobe with air bronchogram. Slight "
                        "blunting of the right costophrenic angle."
                    ),
                    (
                        "Opacité alvéolaire du lobe inférieur droit avec bronchogramme aérien. "
                        "Discret comblement du cul-de-sac costo-diaphragmatique droit."
                    ),
                    (
                        "Alveoläre Verschattung im rechten Unterlappen mit Aerobronchogramm. "
                        "Diskret verschatteter rechter Recessus."
                    ),
                ),
                (
                    "Right lower lobe pneumonia. Follow-up radiograph advised in 6 weeks.",
                    (
                        "Pneumopathie du lobe inférieur droit. Contrôle radiologique conseillé à "
                        "6 semaines."
                    ),
                    "Unterlappenpneumonie rechts. Verlaufskontrolle in 6 Wochen empfohlen.",
                ),
            ),
        ),
    ),
    _Exam(
        ("MRI of the right knee", "IRM du genou droit", "MRT des rechten Kniegelenks"),
        (
            (
                "Knee pain after a twisting injury during sport; suspected meniscal tear.",
                (
                    "Gonalgie après un traumatisme en torsion lors d'une activité sportive ; "
                    "suspicion de lésion méniscale."
                ),
                "Knieschmerzen nach Verdrehtrauma beim Sport; Verdacht auf Meniskusläsion.",
            ),
            (
                "Chronic medial knee pain in a runner.",
                "Douleurs chroniques médiales du genou chez un coureur.",
                "Chronische mediale Knieschmerzen bei einem Läufer.",
            ),
        ),
        (
            (
                "Proton-density fat-saturated and T1-weighted sequences in three planes, without "
                "contrast."
            ),
            (
                "Séquences DP avec saturation de la graisse et T1 dans les trois plans, sans "
                "injection."
            ),
            "PD-fettgesättigte und T1-gewichtete Sequenzen in drei Ebenen, ohne Kontrastmittel.",
        ),
        (
            (
                (
                    (
                        "Menisci and cruciate ligaments intact. No bone marrow oedema. No joint "
                        "effusion."
                    ),
                    (
                        "Ménisques et ligaments croisés intacts. Pas d'oedème osseux. Pas "
                        "d'épanchement articulaire."
                    ),
                    "Menisken und Kreuzbänder intakt. Kein Knochenmarködem. Kein Gelenkerguss.",
                ),
                (
                    "Normal MRI of the knee.",
                    "IRM du genou normale.",
                    "Unauffälliges MRT des Kniegelenks.",
                ),
            ),
            (
                (
                    (
                        "Oblique tear of the posterior horn of the medial meniscus reaching the "
                        "inferior articular surface. Small joint effusion. Cruciate ligaments "
                        "intact."
                    ),
                    (
                        "Fissure oblique de la corne postérieure du ménisque médial atteignant la "
                        "surface articulaire inférieure. Petit épanchement articulaire. Ligaments "
                        "croisés intacts."
                    ),
                    (
                        "Schräger Riss des Innenmeniskushinterhorns mit Kontakt zur tibialen "
                        "Gelenkfläche. Kleiner Gelenkerguss. Kreuzbänder intakt."
                    ),
                ),
                (
                    (
                        "Tear of the posterior horn of the medial meniscus. Orthopaedic opinion "
                        "suggested."
                    ),
                    (
                        "Lésion de la corne postérieure du ménisque médial. Avis orthopédique "
                        "conseillé."
                    ),
                    "Innenmeniskushinterhornriss. Orthopädische Vorstellung empfohlen.",
                ),
            ),
        ),
    ),
    _Exam(
        ("Abdominal ultrasound", "Échographie abdominale", "Sonographie des Abdomens"),
        (
            (
                "Right upper quadrant pain after meals.",
                "Douleurs de l'hypocondre droit post-prandiales.",
                "Postprandiale Schmerzen im rechten Oberbauch.",
            ),
            ("Abnormal liver tests.", "Perturbation du bilan hépatique.", "Erhöhte Leberwerte."),
        ),
        (
            "Real-time ultrasound with a 3.5 MHz curved probe.",
            "Échographie en temps réel, sonde convexe 3,5 MHz.",
            "Echtzeit-Sonographie mit 3,5-MHz-Konvexschallkopf.",
        ),
        (
            (
                (
                    (
                        "Liver of normal size and echotexture. Gallbladder without stones. Bile "
                        "ducts not dilated. Pancreas, spleen and kidneys unremarkable."
                    ),
                    (
                        "Foie de taille et d'échostructure normales. Vésicule biliaire "
                        "alithiasique. Voies biliaires non dilatées. Pancréas, rate et reins sans "
                        "particularité."
                    ),
                    (
                        "Leber normal groß, Parenchym homogen. Gallenblase steinfrei. Gallenwege "
                        "nicht erweitert. Pankreas, Milz und Nieren unauffällig."
                    ),
                ),
                (
                    "Normal abdominal ultrasound.",
                    "Échographie abdominale normale.",
                    "Unauffällige Abdomensonographie.",
                ),
            ),
            (
                (
                    (
                        "Enlarged, diffusely hyperechoic liver. Gallbladder without stones. No "
                        "ascites."
                    ),
                    (
                        "Foie augmenté de taille, hyperéchogène de façon homogène. Vésicule "
                        "alithiasique. Pas d'ascite."
                    ),
                    "Vergrößerte, diffus echoreiche Leber. Gallenblase steinfrei. Kein Aszites.",
                ),
                ("Hepatic steatosis.", "Stéatose hépatique.", "Hepatische Steatose."),
            ),
            (
                (
                    (
                        "Several mobile gallstones up to 12 mm with acoustic shadowing. "
                        "Gallbladder wall not thickened."
                    ),
                    (
                        "Plusieurs calculs vésiculaires mobiles jusqu'à 12 mm avec cône d'ombre. "
                        "Paroi vésiculaire fine."
                    ),
                    (
                        "Mehrere bewegliche Gallensteine bis 12 mm mit Schallschatten. "
                        "Gallenblasenwand nicht verdickt."
                    ),
                ),
                (
                    "Uncomplicated cholelithiasis.",
                    "Lithiase vésiculaire non compliquée.",
                    "Unkomplizierte Cholezystolithiasis.",
                ),
            ),
        ),
    ),
)


def _imaging_report(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Imaging report: examination, indication, technique, findings, conclusion."""
    lang = ctx.language
    exam = rng.choice(_EXAMS)
    findings, conclusion = rng.choice(exam.outcomes)
    parts = (
        ("exam", exam.name),
        ("indication", rng.choice(exam.indications)),
        ("technique", exam.technique),
        ("findings", findings),
        ("conclusion", conclusion),
    )
    return [_text_section(_h(key, lang), _t(text, lang)) for key, text in parts]


# --- Medical certificate -------------------------------------------------------------

_SPORTS: Final = (
    ("football", "football", "Fußball"),
    ("basketball", "basket-ball", "Basketball"),
    ("running", "course à pied", "Laufsport"),
    ("swimming", "natation", "Schwimmen"),
    ("judo", "judo", "Judo"),
    ("tennis", "tennis", "Tennis"),
)
_SPORT_CERTIFICATE: Final = (
    (
        "I, the undersigned, {author}, certify that I examined {patient}, born on {birth}, on "
        "{date}, and found no clinical contraindication to the practice of {sport}, including in "
        "competition."
    ),
    (
        "Je soussigné(e), {author}, certifie avoir examiné le {date} {patient}, né(e) le {birth}, "
        "et n'avoir constaté aucune contre-indication clinique à la pratique sportive suivante, y "
        "compris en compétition : {sport}."
    ),
    (
        "Hiermit bescheinige ich, {author}, dass ich {patient}, geboren am {birth}, am {date} "
        "untersucht und keine Kontraindikation gegen die Ausübung von {sport}, auch im Wettkampf, "
        "festgestellt habe."
    ),
)
_SICK_LEAVE: Final = (
    (
        "I, the undersigned, {author}, certify that the state of health of {patient}, born on "
        "{birth}, requires a work stoppage from {start} to {end} inclusive."
    ),
    (
        "Je soussigné(e), {author}, certifie que l'état de santé de {patient}, né(e) le {birth}, "
        "nécessite un arrêt de travail du {start} au {end} inclus."
    ),
    (
        "Hiermit bescheinige ich, {author}, dass {patient}, geboren am {birth}, vom {start} bis "
        "einschließlich {end} arbeitsunfähig ist."
    ),
)
_OUTINGS: Final = (
    ("Outings allowed.", "Sorties autorisées.", "Ausgang erlaubt."),
    ("Outings not allowed.", "Sorties non autorisées.", "Ausgang nicht erlaubt."),
)
_CERTIFICATE_CLOSING: Final = (
    "Certificate issued at the request of the person concerned and handed over in person.",
    "Certificat établi à la demande de l'intéressé(e) et remis en main propre.",
    (
        "Diese Bescheinigung wurde auf Wunsch der betroffenen Person ausgestellt und persönlich "
        "ausgehändigt."
    ),
)
_UNDERSIGNED: Final = ("physician", "médecin", "Ärztin/Arzt")


def _medical_certificate(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Medical certificate: fitness for sport or sick leave with dates."""
    lang = ctx.language
    today = _today(ctx)
    values = {
        "author": ctx.author_name or _t(_UNDERSIGNED, lang),
        "patient": f"{ctx.patient_given} {ctx.patient_family}",
        "birth": _fmt_date(ctx.patient_birth_date, lang),
        "date": _fmt_date(today, lang),
    }
    if _age(ctx.patient_birth_date, today) < 18 or rng.random() < 0.3:
        body = [_t(_SPORT_CERTIFICATE, lang).format(sport=_t(rng.choice(_SPORTS), lang), **values)]
    else:
        end = today + dt.timedelta(days=rng.randint(2, 14))
        leave = _t(_SICK_LEAVE, lang).format(
            start=_fmt_date(today, lang), end=_fmt_date(end, lang), **values
        )
        body = [leave, _t(rng.choice(_OUTINGS), lang)]
    return [_text_section(_h("certificate", lang), *body, _t(_CERTIFICATE_CLOSING, lang))]


# --- Prescription --------------------------------------------------------------------


def _prescription(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Prescription: one to four medicines with dosage and duration."""
    lang = ctx.language
    items = rng.sample(_PRESCRIPTION_ITEMS, rng.randint(1, 4))
    rows = tuple(
        (
            _t(_MEDICINES[key].name, lang),
            _t(_MEDICINES[key].dosage, lang),
            _h("days", lang, n=rng.choice(durations)),
        )
        for key, durations in items
    )
    header = (_h("medicine", lang), _h("dosage", lang), _h("duration", lang))
    return [_Section(_h("prescribed", lang), table=_Table(header, rows, (36, 50, 14), "LLL"))]


# --- Narrative scenarios --------------------------------------------------------------

# A scenario maps section keys to texts; "medicines" lists medicine keys.
_Scenario = dict[str, _Tr]

_DISCHARGES: Final[tuple[tuple[_Scenario, tuple[str, ...]], ...]] = (
    (
        {
            "admission_reason": (
                "Fever, productive cough and dyspnoea.",
                "Fièvre, toux productive et dyspnée.",
                "Fieber, produktiver Husten und Dyspnoe.",
            ),
            "hospital_course": (
                (
                    "Right lower lobe pneumonia on chest X-ray, CRP 145 mg/L. Intravenous "
                    "amoxicillin-clavulanate for 3 days, then oral. Rapid improvement; no fever "
                    "from day 2."
                ),
                (
                    "Pneumopathie du lobe inférieur droit à la radiographie, CRP à 145 mg/L. "
                    "Amoxicilline-acide clavulanique intraveineuse pendant 3 jours puis relais "
                    "oral. Amélioration rapide, apyrexie dès J2."
                ),
                (
                    "Unterlappenpneumonie rechts im Röntgen, CRP 145 mg/L. "
                    "Amoxicillin-Clavulansäure i.v. für 3 Tage, danach oral. Rasche Besserung, "
                    "fieberfrei ab Tag 2."
                ),
            ),
            "discharge_diagnosis": (
                "Community-acquired pneumonia, right lower lobe.",
                "Pneumopathie aiguë communautaire du lobe inférieur droit.",
                "Ambulant erworbene Pneumonie des rechten Unterlappens.",
            ),
            "follow_up": (
                (
                    "Complete 7 days of antibiotics. GP visit within one week; follow-up chest "
                    "X-ray in 6 weeks."
                ),
                (
                    "Poursuivre l'antibiothérapie (7 jours au total). Consultation chez le "
                    "médecin traitant sous 8 jours ; radiographie de contrôle à 6 semaines."
                ),
                (
                    "Antibiotikatherapie über insgesamt 7 Tage. Hausarztkontrolle innerhalb einer "
                    "Woche; Röntgenkontrolle in 6 Wochen."
                ),
            ),
        },
        ("co-amoxiclav", "paracetamol"),
    ),
    (
        {
            "admission_reason": (
                "Oppressive chest pain at rest for one hour.",
                "Douleur thoracique constrictive de repos depuis une heure.",
                "Seit einer Stunde drückender Thoraxschmerz in Ruhe.",
            ),
            "hospital_course": (
                (
                    "Troponin rise without ST elevation. Coronary angiography: significant "
                    "stenosis of the left anterior descending artery treated with a drug-eluting "
                    "stent. Uneventful course."
                ),
                (
                    "Élévation de la troponine sans sus-décalage du segment ST. Coronarographie : "
                    "sténose significative de l'interventriculaire antérieure traitée par stent "
                    "actif. Suites simples."
                ),
                (
                    "Troponinanstieg ohne ST-Hebung. Koronarangiographie: signifikante Stenose "
                    "des RIVA, Versorgung mit medikamentenbeschichtetem Stent. Unkomplizierter "
                    "Verlauf."
                ),
            ),
            "discharge_diagnosis": (
                "Non-ST-elevation myocardial infarction (NSTEMI).",
                "Infarctus du myocarde sans sus-décalage du segment ST (NSTEMI).",
                "Nicht-ST-Hebungsinfarkt (NSTEMI).",
            ),
            "follow_up": (
                (
                    "Dual antiplatelet therapy for 12 months. Cardiac rehabilitation. Cardiology "
                    "review in 6 weeks."
                ),
                (
                    "Double antiagrégation plaquettaire pendant 12 mois. Réadaptation cardiaque. "
                    "Consultation de cardiologie à 6 semaines."
                ),
                (
                    "Duale Plättchenhemmung für 12 Monate. Kardiologische Rehabilitation. "
                    "Kardiologische Kontrolle in 6 Wochen."
                ),
            ),
        },
        ("aspirin", "ticagrelor", "atorvastatin", "bisoprolol", "ramipril"),
    ),
    (
        {
            "admission_reason": (
                "Fall at home with pain and inability to bear weight on the left hip.",
                "Chute à domicile avec douleur et impotence de la hanche gauche.",
                "Sturz zu Hause mit Schmerzen und Belastungsunfähigkeit der linken Hüfte.",
            ),
            "hospital_course": (
                (
                    "Displaced femoral neck fracture. Left hip hemiarthroplasty on day 1. Early "
                    "mobilisation with physiotherapy; wound healing satisfactory."
                ),
                (
                    "Fracture déplacée du col fémoral. Hémiarthroplastie de hanche gauche à J1. "
                    "Verticalisation précoce avec kinésithérapie ; cicatrisation satisfaisante."
                ),
                (
                    "Dislozierte Schenkelhalsfraktur. Hemiendoprothese links am Tag 1. "
                    "Frühmobilisation mit Physiotherapie; Wundheilung regelrecht."
                ),
            ),
            "discharge_diagnosis": (
                "Displaced fracture of the left femoral neck.",
                "Fracture déplacée du col du fémur gauche.",
                "Dislozierte Schenkelhalsfraktur links.",
            ),
            "follow_up": (
                (
                    "Thromboprophylaxis for 5 weeks. Staples removed on day 14 by the home nurse. "
                    "Orthopaedic review with X-ray in 6 weeks."
                ),
                (
                    "Anticoagulation préventive pendant 5 semaines. Ablation des agrafes à J14 "
                    "par l'infirmier à domicile. Consultation orthopédique avec radiographie à 6 "
                    "semaines."
                ),
                (
                    "Thromboseprophylaxe für 5 Wochen. Klammerentfernung am Tag 14 durch den "
                    "Pflegedienst. Orthopädische Kontrolle mit Röntgen in 6 Wochen."
                ),
            ),
        },
        ("enoxaparin", "paracetamol"),
    ),
)

_CONSULTATIONS: Final[tuple[_Scenario, ...]] = (
    {
        "consultation_reason": (
            "Palpitations for two months.",
            "Palpitations depuis deux mois.",
            "Palpitationen seit zwei Monaten.",
        ),
        "history": (
            (
                "Episodes of rapid, irregular heartbeat lasting a few minutes, without syncope or "
                "chest pain. No family history of sudden death."
            ),
            (
                "Épisodes de palpitations rapides et irrégulières de quelques minutes, sans "
                "syncope ni douleur thoracique. Pas d'antécédent familial de mort subite."
            ),
            (
                "Episoden von schnellem, unregelmäßigem Herzschlag über wenige Minuten, ohne "
                "Synkope oder Thoraxschmerz. Keine familiäre Belastung für plötzlichen Herztod."
            ),
        ),
        "examination": (
            "Regular heart sounds, no murmur. ECG: sinus rhythm, normal conduction.",
            "Bruits du coeur réguliers, pas de souffle. ECG : rythme sinusal, conduction normale.",
            (
                "Herztöne rein und rhythmisch, kein Geräusch. EKG: Sinusrhythmus, normale "
                "Erregungsleitung."
            ),
        ),
        "assessment": (
            (
                "Probable paroxysmal supraventricular tachycardia. 24-hour Holter monitoring and "
                "echocardiography requested; review with the results."
            ),
            (
                "Probable tachycardie supraventriculaire paroxystique. Holter ECG des 24 heures "
                "et échocardiographie demandés ; à revoir avec les résultats."
            ),
            (
                "Verdacht auf paroxysmale supraventrikuläre Tachykardie. 24-Stunden-Holter-EKG "
                "und Echokardiographie veranlasst; Wiedervorstellung mit Befunden."
            ),
        ),
    },
    {
        "consultation_reason": (
            "Follow-up of arterial hypertension.",
            "Suivi d'hypertension artérielle.",
            "Verlaufskontrolle bei arterieller Hypertonie.",
        ),
        "history": (
            (
                "Treatment well tolerated. Home readings around 135/85 mmHg. No headache or chest "
                "pain."
            ),
            (
                "Traitement bien toléré. Automesures autour de 135/85 mmHg. Pas de céphalée ni de "
                "douleur thoracique."
            ),
            (
                "Therapie gut verträglich. Selbstmessungen um 135/85 mmHg. Keine Kopf- oder "
                "Thoraxschmerzen."
            ),
        ),
        "examination": (
            "Heart and lung auscultation normal. No leg oedema.",
            "Auscultation cardio-pulmonaire normale. Pas d'oedème des membres inférieurs.",
            "Herz und Lunge auskultatorisch unauffällig. Keine Beinödeme.",
        ),
        "assessment": (
            (
                "Blood pressure at target; treatment unchanged. Blood test (creatinine, "
                "potassium, lipids) before the next visit in 6 months."
            ),
            (
                "Pression artérielle à l'objectif, traitement inchangé. Bilan sanguin "
                "(créatinine, kaliémie, bilan lipidique) avant la prochaine consultation dans 6 "
                "mois."
            ),
            (
                "Blutdruck im Zielbereich, Therapie unverändert. Laborkontrolle (Kreatinin, "
                "Kalium, Lipide) vor der nächsten Konsultation in 6 Monaten."
            ),
        ),
    },
    {
        "consultation_reason": (
            "Skin check of pigmented lesions.",
            "Contrôle dermatologique des naevus.",
            "Kontrolle pigmentierter Hautläsionen.",
        ),
        "history": (
            (
                "Fair skin, several sunburns in childhood. A naevus on the back has recently "
                "changed colour."
            ),
            (
                "Phototype clair, plusieurs coups de soleil dans l'enfance. Un naevus du dos "
                "aurait récemment changé de couleur."
            ),
            (
                "Heller Hauttyp, mehrere Sonnenbrände in der Kindheit. Ein Nävus am Rücken hat "
                "kürzlich die Farbe verändert."
            ),
        ),
        "examination": (
            (
                "Dermoscopy of about 40 naevi: one asymmetric 7 mm lesion of the left scapular "
                "region with an irregular pigment network; other naevi benign."
            ),
            (
                "Dermoscopie d'une quarantaine de naevus : une lésion asymétrique de 7 mm de la "
                "région scapulaire gauche avec réseau pigmentaire irrégulier ; autres naevus "
                "bénins."
            ),
            (
                "Auflichtmikroskopie von etwa 40 Nävi: eine asymmetrische 7-mm-Läsion links "
                "skapulär mit unregelmäßigem Pigmentnetz; übrige Nävi benigne."
            ),
        ),
        "assessment": (
            (
                "Excision of the left scapular lesion for histology scheduled. Sun protection "
                "advice; yearly check."
            ),
            (
                "Exérèse de la lésion scapulaire gauche pour histologie programmée. Conseils de "
                "photoprotection ; contrôle annuel."
            ),
            (
                "Exzision der Läsion links skapulär zur Histologie geplant. Beratung zum "
                "Sonnenschutz; jährliche Kontrolle."
            ),
        ),
    },
)

_EMERGENCIES: Final[tuple[_Scenario, ...]] = (
    {
        "visit_reason": (
            "Twisted right ankle while playing football.",
            "Traumatisme en torsion de la cheville droite lors d'un match de football.",
            "Supinationstrauma des rechten Sprunggelenks beim Fußball.",
        ),
        "examination": (
            (
                "Swelling and tenderness over the anterior talofibular ligament. Ottawa ankle "
                "rules negative; no X-ray needed."
            ),
            (
                "Oedème et douleur en regard du ligament talo-fibulaire antérieur. Règles "
                "d'Ottawa négatives, pas d'indication radiologique."
            ),
            (
                "Schwellung und Druckschmerz über dem Lig. fibulotalare anterius. Ottawa-Regeln "
                "negativ, keine Röntgenindikation."
            ),
        ),
        "ed_treatment": (
            "Ice, compression bandage and ankle brace. Paracetamol given.",
            "Glaçage, bandage compressif et attelle de cheville. Paracétamol administré.",
            "Kühlung, Kompressionsverband und Sprunggelenksorthese. Paracetamol verabreicht.",
        ),
        "diagnosis": (
            "Mild lateral ankle sprain.",
            "Entorse bénigne du ligament latéral externe.",
            "Leichte Distorsion des Außenbandapparats.",
        ),
        "instructions": (
            (
                "Rest, elevation, weight-bearing as tolerated. Brace for 3 weeks. See your GP if "
                "there is no improvement within a week."
            ),
            (
                "Repos, surélévation, appui selon tolérance. Attelle pendant 3 semaines. "
                "Consulter le médecin traitant en l'absence d'amélioration sous 8 jours."
            ),
            (
                "Schonung, Hochlagerung, Belastung nach Schmerz. Orthese für 3 Wochen. "
                "Hausarztkontrolle, falls keine Besserung innerhalb einer Woche."
            ),
        ),
    },
    {
        "visit_reason": (
            "Scalp wound after hitting a cupboard door; no loss of consciousness.",
            (
                "Plaie du cuir chevelu après un choc contre une porte de placard, sans perte de "
                "connaissance."
            ),
            "Kopfplatzwunde nach Anstoßen an einer Schranktür, keine Bewusstlosigkeit.",
        ),
        "examination": (
            "Clean 3 cm scalp laceration. Glasgow Coma Scale 15, normal neurological examination.",
            (
                "Plaie franche du cuir chevelu de 3 cm. Score de Glasgow à 15, examen "
                "neurologique normal."
            ),
            "3 cm lange, glattrandige Kopfplatzwunde. GCS 15, neurologisch unauffällig.",
        ),
        "ed_treatment": (
            "Wound irrigation and closure with 4 staples. Tetanus vaccination up to date.",
            "Lavage et fermeture par 4 agrafes. Vaccination antitétanique à jour.",
            "Wundspülung und Versorgung mit 4 Klammern. Tetanusschutz aktuell.",
        ),
        "diagnosis": (
            "Scalp laceration, minor head injury.",
            "Plaie du cuir chevelu, traumatisme crânien léger.",
            "Kopfplatzwunde, leichtes Schädel-Hirn-Trauma.",
        ),
        "instructions": (
            (
                "Staples to be removed in 7 days. Come back at once in case of vomiting, "
                "drowsiness or worsening headache."
            ),
            (
                "Ablation des agrafes à J7. Reconsulter immédiatement en cas de vomissements, de "
                "somnolence ou de céphalées croissantes."
            ),
            (
                "Klammerentfernung nach 7 Tagen. Sofortige Wiedervorstellung bei Erbrechen, "
                "Schläfrigkeit oder zunehmenden Kopfschmerzen."
            ),
        ),
    },
    {
        "visit_reason": (
            "Vomiting and diarrhoea since yesterday.",
            "Vomissements et diarrhée depuis la veille.",
            "Erbrechen und Durchfall seit gestern.",
        ),
        "examination": (
            "Soft abdomen, mild diffuse tenderness, no guarding. Mild dehydration.",
            "Abdomen souple, sensibilité diffuse modérée, pas de défense. Déshydratation légère.",
            (
                "Abdomen weich, leichter diffuser Druckschmerz, keine Abwehrspannung. Leichte "
                "Exsikkose."
            ),
        ),
        "ed_treatment": (
            "Intravenous rehydration 1 L, ondansetron 4 mg. Oral fluids tolerated.",
            "Réhydratation intraveineuse 1 L, ondansétron 4 mg. Reprise hydrique bien tolérée.",
            "Intravenöse Rehydratation 1 L, Ondansetron 4 mg. Orale Flüssigkeit toleriert.",
        ),
        "diagnosis": ("Acute gastroenteritis.", "Gastro-entérite aiguë.", "Akute Gastroenteritis."),
        "instructions": (
            (
                "Oral rehydration solution, light diet. Come back if unable to drink, blood in "
                "stools or fever above 39 °C."
            ),
            (
                "Soluté de réhydratation orale, alimentation légère. Reconsulter en cas "
                "d'impossibilité de boire, de sang dans les selles ou de fièvre au-delà de 39 °C."
            ),
            (
                "Orale Rehydratationslösung, leichte Kost. Wiedervorstellung bei "
                "Trinkunfähigkeit, Blut im Stuhl oder Fieber über 39 °C."
            ),
        ),
    },
)

_GENERAL_ANAESTHESIA: Final = (
    "General anaesthesia with endotracheal intubation.",
    "Anesthésie générale avec intubation orotrachéale.",
    "Allgemeinanästhesie mit endotrachealer Intubation.",
)
_SPINAL_ANAESTHESIA: Final = ("Spinal anaesthesia.", "Rachianesthésie.", "Spinalanästhesie.")

_OPERATIONS: Final[tuple[_Scenario, ...]] = (
    {
        "preop_diagnosis": (
            "Symptomatic gallstones.",
            "Lithiase vésiculaire symptomatique.",
            "Symptomatische Cholezystolithiasis.",
        ),
        "procedure": (
            "Laparoscopic cholecystectomy.",
            "Cholécystectomie par coelioscopie.",
            "Laparoskopische Cholezystektomie.",
        ),
        "anaesthesia": _GENERAL_ANAESTHESIA,
        "operative_description": (
            (
                "Four-trocar technique. Critical view of safety obtained; cystic duct and artery "
                "clipped and divided. Retrograde dissection of the gallbladder, extraction in a "
                "bag. Haemostasis checked; minimal blood loss."
            ),
            (
                "Technique à quatre trocarts. Obtention de la vue critique de sécurité ; clipage "
                "et section du canal et de l'artère cystiques. Cholécystectomie rétrograde, "
                "extraction en sac. Hémostase contrôlée ; pertes sanguines minimes."
            ),
            (
                "Vier-Trokar-Technik. Critical View of Safety dargestellt; Ductus und A. cystica "
                "geclippt und durchtrennt. Retrograde Auslösung der Gallenblase, Bergung im "
                "Beutel. Bluttrockenheit; minimaler Blutverlust."
            ),
        ),
        "postop": (
            (
                "Discharge the next day. Paracetamol for pain. Absorbable skin sutures. Surgical "
                "review in one month."
            ),
            (
                "Retour à domicile le lendemain. Antalgie par paracétamol. Fils cutanés "
                "résorbables. Consultation chirurgicale à un mois."
            ),
            (
                "Entlassung am Folgetag. Analgesie mit Paracetamol. Resorbierbare Hautnaht. "
                "Chirurgische Kontrolle in einem Monat."
            ),
        ),
    },
    {
        "preop_diagnosis": (
            "Tear of the medial meniscus, right knee.",
            "Lésion du ménisque médial du genou droit.",
            "Innenmeniskusriss rechtes Kniegelenk.",
        ),
        "procedure": (
            "Arthroscopic partial medial meniscectomy, right knee.",
            "Méniscectomie médiale partielle sous arthroscopie, genou droit.",
            "Arthroskopische Innenmeniskusteilresektion rechts.",
        ),
        "anaesthesia": _SPINAL_ANAESTHESIA,
        "operative_description": (
            (
                "Standard anterolateral and anteromedial portals. Unstable flap tear of the "
                "posterior horn of the medial meniscus resected back to a stable rim. Cartilage "
                "and cruciate ligaments intact. Joint lavage."
            ),
            (
                "Voies d'abord antérolatérale et antéromédiale. Languette instable de la corne "
                "postérieure du ménisque médial régularisée jusqu'à un mur stable. Cartilage et "
                "ligaments croisés intacts. Lavage articulaire."
            ),
            (
                "Standardzugänge anterolateral und anteromedial. Instabiler Lappenriss des "
                "Innenmeniskushinterhorns bis auf einen stabilen Rand reseziert. Knorpel und "
                "Kreuzbänder intakt. Gelenklavage."
            ),
        ),
        "postop": (
            (
                "Full weight-bearing, crutches as needed. Thromboprophylaxis for 10 days. "
                "Physiotherapy. Review in 6 weeks."
            ),
            (
                "Appui complet autorisé, cannes selon besoin. Anticoagulation préventive pendant "
                "10 jours. Kinésithérapie. Contrôle à 6 semaines."
            ),
            (
                "Vollbelastung, Unterarmgehstützen nach Bedarf. Thromboseprophylaxe für 10 Tage. "
                "Physiotherapie. Kontrolle in 6 Wochen."
            ),
        ),
    },
    {
        "preop_diagnosis": (
            "Right inguinal hernia.",
            "Hernie inguinale droite.",
            "Leistenhernie rechts.",
        ),
        "procedure": (
            "Open right inguinal hernia repair with mesh (Lichtenstein).",
            "Cure de hernie inguinale droite par voie ouverte avec prothèse (Lichtenstein).",
            "Offene Leistenhernienreparation rechts mit Netz (Lichtenstein).",
        ),
        "anaesthesia": _SPINAL_ANAESTHESIA,
        "operative_description": (
            (
                "Inguinal incision. Indirect hernia sac dissected and reduced. Polypropylene mesh "
                "fixed with a running suture. Ilioinguinal nerve preserved. Layered closure."
            ),
            (
                "Incision inguinale. Dissection et réintégration d'un sac herniaire oblique "
                "externe. Prothèse en polypropylène fixée par un surjet. Nerf ilio-inguinal "
                "préservé. Fermeture plan par plan."
            ),
            (
                "Inguinaler Zugang. Indirekter Bruchsack präpariert und reponiert. "
                "Polypropylennetz mit fortlaufender Naht fixiert. N. ilioinguinalis geschont. "
                "Schichtweiser Wundverschluss."
            ),
        ),
        "postop": (
            "Day surgery. No heavy lifting for 4 weeks. Surgical review in 6 weeks.",
            (
                "Chirurgie ambulatoire. Pas de port de charges lourdes pendant 4 semaines. "
                "Consultation chirurgicale à 6 semaines."
            ),
            (
                "Ambulanter Eingriff. Kein schweres Heben für 4 Wochen. Chirurgische Kontrolle in "
                "6 Wochen."
            ),
        ),
    },
)


def _scenario_sections(
    scenario: _Scenario, keys: Sequence[str], lang: str, loincs: Sequence[str | None] = ()
) -> list[_Section]:
    """One paragraph section per scenario key, with optional section LOINC codes."""
    codes = list(loincs) or [None] * len(keys)
    return [
        _text_section(_h(key, lang), _t(scenario[key], lang), loinc=code)
        for key, code in zip(keys, codes, strict=True)
    ]


def _discharge_summary(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Discharge summary: reason, course, diagnosis, medications, follow-up."""
    lang = ctx.language
    scenario, medicines = rng.choice(_DISCHARGES)
    end = _today(ctx)
    start = end - dt.timedelta(days=rng.randint(2, 9))
    stay = _h("stay", lang, start=_fmt_date(start, lang), end=_fmt_date(end, lang))
    reason = _text_section(
        _h("admission_reason", lang), stay, _t(scenario["admission_reason"], lang), loinc="29299-5"
    )
    middle = _scenario_sections(
        scenario, ("hospital_course", "discharge_diagnosis"), lang, ("8648-8", "11535-2")
    )
    header = (_h("medicine", lang), _h("dosage", lang))
    rows = tuple(
        (_t(_MEDICINES[key].name, lang), _t(_MEDICINES[key].dosage, lang)) for key in medicines
    )
    meds = _Section(
        _h("discharge_medications", lang),
        table=_Table(header, rows, (45, 55), "LL"),
        loinc="10183-2",
    )
    return [reason, *middle, meds, *_scenario_sections(scenario, ("follow_up",), lang, ("8653-8",))]


def _consultation_note(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Consultation note: reason, history, examination with vital signs, plan."""
    lang = ctx.language
    scenario = rng.choice(_CONSULTATIONS)
    sections = _scenario_sections(
        scenario,
        ("consultation_reason", "history", "examination", "assessment"),
        lang,
        ("42349-1", "10164-2", "29545-1", "51847-2"),
    )
    exam = sections[2]
    sections[2] = _Section(exam.heading, (_vitals(rng, lang), *exam.paragraphs), loinc=exam.loinc)
    return sections


def _emergency_visit_summary(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Emergency department summary: arrival, reason, findings, treatment, outcome."""
    lang = ctx.language
    scenario = rng.choice(_EMERGENCIES)
    arrival = ctx.created_at - dt.timedelta(minutes=rng.randint(90, 480))
    when = f"{_fmt_date(arrival.date(), lang)} {arrival:%H:%M} UTC"
    reason = _text_section(
        _h("visit_reason", lang), _h("arrival", lang, when=when), _t(scenario["visit_reason"], lang)
    )
    exam = _text_section(
        _h("examination", lang), _vitals(rng, lang), _t(scenario["examination"], lang)
    )
    rest = _scenario_sections(scenario, ("ed_treatment", "diagnosis", "instructions"), lang)
    return [reason, exam, *rest]


def _operative_report(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Operative report: diagnosis, procedure, anaesthesia, description, aftercare."""
    lang = ctx.language
    scenario = rng.choice(_OPERATIONS)
    facts = _h(
        "surgery_facts", lang, date=_fmt_date(_today(ctx), lang), minutes=rng.randint(35, 95)
    )
    sections = _scenario_sections(
        scenario,
        ("preop_diagnosis", "procedure", "anaesthesia", "operative_description", "postop"),
        lang,
    )
    procedure = sections[1]
    sections[1] = _Section(procedure.heading, (*procedure.paragraphs, facts))
    return sections


# --- Short notes -------------------------------------------------------------------

_NURSING_OBSERVATIONS: Final = (
    (
        "Calm and cooperative; pain rated {pain}/10.",
        "Calme et coopérant(e) ; douleur évaluée à {pain}/10.",
        "Ruhig und kooperativ; Schmerz {pain}/10.",
    ),
    (
        "Slept well; eating and drinking normally.",
        "Nuit calme ; s'alimente et s'hydrate normalement.",
        "Gut geschlafen; isst und trinkt normal.",
    ),
    (
        "Slightly confused in the evening, easily reoriented.",
        "Légère désorientation en soirée, réorienté(e) sans difficulté.",
        "Abends leicht verwirrt, problemlos reorientiert.",
    ),
)
_NURSING_CARE: Final = (
    (
        "Leg ulcer dressing changed; wound clean and granulating.",
        "Réfection du pansement de l'ulcère de jambe ; plaie propre, bourgeonnante.",
        "Verbandwechsel am Ulcus cruris; Wunde sauber, granulierend.",
    ),
    (
        "Subcutaneous insulin given according to protocol; capillary glucose {glucose} mmol/L.",
        "Insuline sous-cutanée selon protocole ; glycémie capillaire {glucose} mmol/L.",
        "Subkutane Insulingabe nach Schema; Blutzucker kapillär {glucose} mmol/L.",
    ),
    (
        "Helped with washing and mobilised to the armchair.",
        "Aide à la toilette et installation au fauteuil.",
        "Unterstützung bei der Körperpflege, Mobilisation in den Sessel.",
    ),
    (
        "Medicines given as prescribed.",
        "Administration des traitements selon prescription.",
        "Medikamente gemäß Verordnung verabreicht.",
    ),
)
_NURSING_PLAN: Final = (
    (
        "Continue daily dressings; inform the doctor of any sign of infection.",
        "Poursuivre les pansements quotidiens ; prévenir le médecin en cas de signe infectieux.",
        "Tägliche Verbandwechsel fortsetzen; Arzt bei Infektzeichen informieren.",
    ),
    (
        "Monitor fluid intake and weight twice a week.",
        "Surveillance des apports hydriques et du poids deux fois par semaine.",
        "Trinkmenge und Gewicht zweimal wöchentlich kontrollieren.",
    ),
    (
        "Next visit tomorrow morning.",
        "Prochain passage demain matin.",
        "Nächster Besuch morgen früh.",
    ),
)


def _pick(
    rng: random.Random, pool: Sequence[_Tr], count: int, lang: str, **values: object
) -> list[str]:
    """``count`` distinct texts from ``pool`` in ``lang``, formatted with ``values``."""
    return [_t(text, lang).format(**values) for text in rng.sample(pool, count)]


def _nursing_note(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Nursing note: observations with vital signs, care given, plan."""
    lang = ctx.language
    values = {"pain": rng.randint(0, 5), "glucose": _fmt_num(rng.uniform(5.2, 11.8), 1, lang)}
    return [
        _text_section(
            _h("observations", lang),
            _vitals(rng, lang),
            *_pick(rng, _NURSING_OBSERVATIONS, 1, lang, **values),
        ),
        _text_section(_h("care", lang), *_pick(rng, _NURSING_CARE, 2, lang, **values)),
        _text_section(_h("plan", lang), *_pick(rng, _NURSING_PLAN, 1, lang)),
    ]


_DENTAL: Final = (
    (
        (
            "Carious lesion on the occlusal surface of tooth {tooth}.",
            "Lésion carieuse occlusale sur la dent {tooth}.",
            "Okklusale Karies an Zahn {tooth}.",
        ),
        (
            "Composite restoration of tooth {tooth} under local anaesthesia.",
            "Restauration composite de la dent {tooth} sous anesthésie locale.",
            "Kompositfüllung an Zahn {tooth} unter Lokalanästhesie.",
        ),
    ),
    (
        (
            "Moderate tartar deposits; gingival bleeding on probing.",
            "Dépôts de tartre modérés ; saignement gingival au sondage.",
            "Mäßiger Zahnstein; Blutung auf Sondierung.",
        ),
        (
            "Scaling and polishing; oral hygiene instructions.",
            "Détartrage et polissage ; conseils d'hygiène bucco-dentaire.",
            "Zahnsteinentfernung und Politur; Mundhygieneinstruktion.",
        ),
    ),
    (
        (
            "Fractured filling on tooth {tooth}.",
            "Obturation fracturée sur la dent {tooth}.",
            "Frakturierte Füllung an Zahn {tooth}.",
        ),
        (
            "Filling of tooth {tooth} replaced with composite.",
            "Remplacement de l'obturation de la dent {tooth} par un composite.",
            "Erneuerung der Füllung an Zahn {tooth} mit Komposit.",
        ),
    ),
)


def _dental_report(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Dental report: findings (FDI tooth numbers), treatment, recall."""
    lang = ctx.language
    finding, treatment = rng.choice(_DENTAL)
    tooth = f"{rng.randint(1, 4)}{rng.randint(4, 7)}"
    return [
        _text_section(_h("dental_findings", lang), _t(finding, lang).format(tooth=tooth)),
        _text_section(_h("treatment", lang), _t(treatment, lang).format(tooth=tooth)),
        _text_section(_h("next_visit", lang), _h("recall", lang, n=rng.choice((6, 12)))),
    ]


_FEMALE_NAMES: Final = ("Claire", "Sophie", "Anne", "Julie", "Nathalie", "Isabelle")
_MALE_NAMES: Final = ("Marc", "Paul", "Luc", "Thomas", "Jean", "Patrick")
# (relationship, first names to draw from)
_RELATIVES: Final = (
    (("daughter", "fille", "Tochter"), _FEMALE_NAMES),
    (("son", "fils", "Sohn"), _MALE_NAMES),
    (("wife", "épouse", "Ehefrau"), _FEMALE_NAMES),
    (("husband", "époux", "Ehemann"), _MALE_NAMES),
)
_AUTONOMY: Final = (
    (
        "Walks with a frame; needs help with washing.",
        "Se déplace avec un déambulateur ; aide pour la toilette.",
        "Geht mit Rollator; braucht Hilfe bei der Körperpflege.",
    ),
    (
        "Independent for transfers; wheelchair outdoors.",
        "Autonome pour les transferts ; fauteuil roulant à l'extérieur.",
        "Selbstständig bei Transfers; draußen Rollstuhl.",
    ),
)
_COGNITION: Final = (
    (
        "Oriented, communicates well.",
        "Orienté(e), communique bien.",
        "Orientiert, gute Kommunikation.",
    ),
    (
        "Moderate cognitive impairment; hearing aid on the right.",
        "Troubles cognitifs modérés ; appareil auditif à droite.",
        "Mäßige kognitive Einschränkung; Hörgerät rechts.",
    ),
)
_DIRECTIVE_STATUS: Final = (
    (
        "Advance directives written; copy in the file.",
        "Directives anticipées rédigées, copie dans le dossier.",
        "Patientenverfügung vorhanden, Kopie in der Akte.",
    ),
    ("No advance directives.", "Pas de directives anticipées.", "Keine Patientenverfügung."),
)


def _relative(ctx: DocumentContext, rng: random.Random) -> str:
    """A contact person: name, relationship and phone number."""
    phone = f"+352 621 {rng.randint(100, 999)} {rng.randint(100, 999)}"
    relationship, names = rng.choice(_RELATIVES)
    name = f"{rng.choice(names)} {ctx.patient_family}"
    return f"{name} ({_t(relationship, ctx.language)}), {phone}"


def _emergency_liaison_file(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Emergency liaison file of a nursing-home resident."""
    lang = ctx.language
    summary = _draw_summary(ctx, rng)
    return [
        _text_section(_h("contacts", lang), _relative(ctx, rng)),
        _text_section(
            _h("usual_state", lang),
            _t(rng.choice(_AUTONOMY), lang),
            _t(rng.choice(_COGNITION), lang),
        ),
        *_summary_sections(lang, summary),
        _text_section(_h("directives", lang), _t(rng.choice(_DIRECTIVE_STATUS), lang)),
    ]


_WISHES: Final = (
    (
        "I do not wish to be resuscitated in case of cardiac arrest.",
        "Je ne souhaite pas être réanimé(e) en cas d'arrêt cardiaque.",
        "Ich wünsche keine Wiederbelebung im Falle eines Herzstillstands.",
    ),
    (
        "I refuse prolonged mechanical ventilation if there is no reasonable hope of recovery.",
        (
            "Je refuse une ventilation mécanique prolongée s'il n'existe pas d'espoir raisonnable "
            "de récupération."
        ),
        "Ich lehne eine dauerhafte künstliche Beatmung ohne begründete Aussicht auf Besserung ab.",
    ),
    (
        "I refuse artificial nutrition and hydration at the end of life.",
        "Je refuse une nutrition et une hydratation artificielles en fin de vie.",
        "Ich lehne künstliche Ernährung und Flüssigkeitszufuhr am Lebensende ab.",
    ),
    (
        "I wish to receive every treatment that relieves pain, even if it may shorten my life.",
        (
            "Je souhaite recevoir tous les traitements soulageant la douleur, même s'ils risquent "
            "d'abréger ma vie."
        ),
        (
            "Ich wünsche alle Maßnahmen zur Schmerzlinderung, auch wenn sie mein Leben verkürzen "
            "könnten."
        ),
    ),
    (
        "If possible, I wish to die at home.",
        "Je souhaite, si possible, finir ma vie à domicile.",
        "Ich möchte nach Möglichkeit zu Hause sterben.",
    ),
    (
        "I agree to donate my organs after my death.",
        "J'accepte le don de mes organes après mon décès.",
        "Ich stimme einer Organspende nach meinem Tod zu.",
    ),
)


def _advance_directives(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Advance directives: trusted person, wishes, signature date."""
    lang = ctx.language
    signed = _h("signed", lang, date=_fmt_date(_today(ctx), lang))
    return [
        _text_section(_h("trusted_person", lang), _relative(ctx, rng)),
        _text_section(_h("wishes", lang), *_pick(rng, _WISHES, rng.randint(3, 5), lang), signed),
    ]


def _patient_provided(ctx: DocumentContext, rng: random.Random) -> list[_Section]:
    """Patient-provided document: a week of home blood pressure readings."""
    lang = ctx.language
    today = _today(ctx)
    base_sys, base_dia = rng.randint(118, 150), rng.randint(72, 92)
    rows = []
    for back in range(rng.randint(3, 7), 0, -1):
        day = _fmt_date(today - dt.timedelta(days=back), lang)
        for moment in ("morning", "evening"):
            reading = (
                base_sys + rng.randint(-9, 9),
                base_dia + rng.randint(-6, 6),
                rng.randint(58, 88),
            )
            rows.append((day, _h(moment, lang), *(str(v) for v in reading)))
    header = tuple(
        _h(key, lang) for key in ("date", "time_of_day", "systolic", "diastolic", "pulse")
    )
    table = _Table(header, tuple(rows), (20, 16, 22, 22, 20), "LLRRR")
    return [_Section(_h("home_measurements", lang), (_h("measurement_note", lang),), table)]


_Builder = Callable[[DocumentContext, random.Random], list[_Section]]

_BUILDERS: Final[dict[str, _Builder]] = {
    "lab-report": _lab_report,
    "patient-summary": _patient_summary,
    "insurer-summary": _insurer_summary,
    "imaging-report": _imaging_report,
    "medical-certificate": _medical_certificate,
    "discharge-summary": _discharge_summary,
    "prescription": _prescription,
    "consultation-note": _consultation_note,
    "vaccination-record": _vaccination_record,
    "emergency-visit-summary": _emergency_visit_summary,
    "operative-report": _operative_report,
    "allergies": _allergies,
    "advance-directives": _advance_directives,
    "nursing-note": _nursing_note,
    "dental-report": _dental_report,
    "emergency-liaison-file": _emergency_liaison_file,
    "patient-provided": _patient_provided,
}


# --- Plain text rendering -------------------------------------------------------------


_SEXES: Final = frozenset({"female", "male", "other", "unknown"})


def _header_lines(ctx: DocumentContext) -> list[tuple[str, str]]:
    """(label, value) pairs printed under the title of PDF and text documents."""
    lang = ctx.language
    sex = _h(ctx.patient_sex, lang) if ctx.patient_sex in _SEXES else ctx.patient_sex
    lines = [
        (_h("patient", lang), _patient_line(ctx)),
        (_h("birth_date", lang), _fmt_date(ctx.patient_birth_date, lang)),
        (_h("sex", lang), sex),
        (_h("identifier", lang), ctx.patient_identifier),
        (_h("date", lang), _fmt_date(_today(ctx), lang)),
    ]
    if ctx.organisation_name:
        lines.insert(0, (_h("organisation", lang), ctx.organisation_name))
    if ctx.author_name:
        lines.insert(1 if ctx.organisation_name else 0, (_h("author", lang), ctx.author_name))
    return lines


def _footer(ctx: DocumentContext) -> str:
    """Footer line: document identifier and the synthetic-data notice."""
    return f"{_h('document', ctx.language)} {ctx.document_id} - {_h('disclaimer', ctx.language)}"


def _text_table(table: _Table) -> list[str]:
    """A table as aligned text lines."""
    widths = [
        max(len(row[i]) for row in (table.header, *table.rows)) for i in range(len(table.header))
    ]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width)
            if align == "R"
            else cell.center(width)
            if align == "C"
            else cell.ljust(width)
            for cell, width, align in zip(cells, widths, table.align, strict=True)
        )
        return "  ".join(padded).rstrip()

    return [
        line(table.header),
        "  ".join("-" * w for w in widths),
        *(line(row) for row in table.rows),
    ]


def _render_text(ctx: DocumentContext, sections: Sequence[_Section]) -> bytes:
    """Render a document as UTF-8 plain text."""
    header = _header_lines(ctx)
    label_width = max(len(label) for label, _ in header)
    lines = [ctx.title, "=" * len(ctx.title), ""]
    lines += [f"{label.ljust(label_width)} : {value}" for label, value in header]
    for section in sections:
        lines.append("")
        if section.heading:
            lines += [section.heading, "-" * len(section.heading)]
        lines += section.paragraphs
        if section.table is not None:
            lines += _text_table(section.table)
    lines += ["", _footer(ctx), ""]
    return "\n".join(lines).encode("utf-8")


# --- PDF rendering -----------------------------------------------------------------


class _Pdf:
    """A small A4 PDF writer on fpdf2 with Helvetica, deterministic output."""

    LINE = 5.0
    TABLE_SIZE = 8.5

    def __init__(self, ctx: DocumentContext) -> None:
        pdf = FPDF(format="A4")
        pdf.set_creation_date(ctx.created_at)
        pdf.set_title(_latin1(ctx.title))
        pdf.set_creator("Carnet demo")
        if ctx.author_name:
            pdf.set_author(_latin1(ctx.author_name))
        pdf.set_margins(15, 15, 15)
        pdf.set_auto_page_break(auto=True, margin=15)
        pdf.set_draw_color(190)
        pdf.set_line_width(0.2)
        pdf.add_page()
        self.pdf = pdf

    def _line(
        self,
        text: str,
        height: float,
        width: float = 0,
        align: str = "L",
        *,
        fill: bool = False,
        border: str = "",
    ) -> None:
        """One cell, then move to the next line."""
        self.pdf.cell(
            width,
            height,
            _latin1(text),
            border=border,
            align=align,
            fill=fill,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )

    def gap(self, height: float) -> None:
        """Vertical space."""
        self.pdf.ln(height)

    def title(self, text: str) -> None:
        """The document title."""
        self.pdf.set_font("Helvetica", "B", 15)
        self._line(text, 9)
        self.pdf.ln(2)

    def key_values(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Label/value lines of the header."""
        for label, value in pairs:
            self.pdf.set_font("Helvetica", "B", 9)
            self.pdf.cell(42, 4.6, _latin1(label))
            self.pdf.set_font("Helvetica", "", 9)
            self._line(value, 4.6)

    def heading(self, text: str) -> None:
        """A section heading."""
        self.pdf.ln(3)
        self.pdf.set_font("Helvetica", "B", 11)
        self._line(text, 7, border="B")
        self.pdf.ln(1)

    def paragraph(self, text: str, size: float = 9.5, height: float = LINE) -> None:
        """A paragraph wrapped at word boundaries.

        Wrapping is done here rather than with ``multi_cell``, whose line breaking
        costs about ten times more; words are measured with the core font metrics.
        """
        self.pdf.set_font("Helvetica", "", size)
        width = self.pdf.epw
        space = self.pdf.get_string_width(" ")
        line: list[str] = []
        used = 0.0
        for word in _latin1(text).split():
            word_width = self.pdf.get_string_width(word)
            if line and used + space + word_width > width:
                self._line(" ".join(line), height)
                line, used = [], 0.0
            used += (space if line else 0.0) + word_width
            line.append(word)
        self._line(" ".join(line), height)

    def table(self, table: _Table) -> None:
        """A table drawn with cells: shaded bold header, ruled rows."""
        total = sum(table.widths)
        widths = [self.pdf.epw * w / total for w in table.widths]
        self.pdf.set_fill_color(232)
        self._row(table.header, widths, table.align, bold=True)
        for row in table.rows:
            self._row(row, widths, table.align, bold=False)

    def _row(
        self, cells: Sequence[str], widths: Sequence[float], align: str, *, bold: bool
    ) -> None:
        """One table row; text too wide for its column is set smaller, then cut."""
        self.pdf.set_font("Helvetica", "B" if bold else "", self.TABLE_SIZE)
        for cell, width, side in zip(cells, widths, align, strict=True):
            text = _latin1(cell)
            room = width - 2 * self.pdf.c_margin
            needed = self.pdf.get_string_width(text)
            if needed > room:
                self.pdf.set_font_size(max(6.0, self.TABLE_SIZE * room / needed))
                while len(text) > 1 and self.pdf.get_string_width(text) > room:
                    text = text[:-2] + "."
            self.pdf.cell(width, self.LINE + 0.5, text, border="B", align=side, fill=bold)
            self.pdf.set_font_size(self.TABLE_SIZE)
        self.pdf.ln()

    def footer(self, text: str) -> None:
        """A small grey closing line."""
        self.pdf.ln(6)
        self.pdf.set_text_color(120)
        self.paragraph(text, size=7, height=3.5)

    def output(self) -> bytes:
        """The PDF bytes."""
        return bytes(self.pdf.output())


def _render_pdf(ctx: DocumentContext, sections: Sequence[_Section]) -> bytes:
    """Render a document as PDF."""
    pdf = _Pdf(ctx)
    pdf.title(ctx.title)
    pdf.key_values(_header_lines(ctx))
    for section in sections:
        if section.heading:
            pdf.heading(section.heading)
        else:
            pdf.gap(2)
        for paragraph in section.paragraphs:
            pdf.paragraph(paragraph)
        if section.table is not None:
            pdf.table(section.table)
    pdf.footer(_footer(ctx))
    return pdf.output()


# --- Narrative XML (shared by FHIR XHTML and CDA) ------------------------------------


def _append_narrative(parent: ET.Element, section: _Section, paragraph_tag: str) -> None:
    """Append a section's paragraphs and table as XHTML-like narrative elements."""
    for text in section.paragraphs:
        ET.SubElement(parent, paragraph_tag).text = text
    if section.table is None:
        return
    table = ET.SubElement(parent, "table")
    head_row = ET.SubElement(ET.SubElement(table, "thead"), "tr")
    for text in section.table.header:
        ET.SubElement(head_row, "th").text = text
    body = ET.SubElement(table, "tbody")
    for row in section.table.rows:
        tr = ET.SubElement(body, "tr")
        for text in row:
            ET.SubElement(tr, "td").text = text


def _xhtml_div(section: _Section) -> str:
    """FHIR narrative ``div`` of a section."""
    div = ET.Element("div", {"xmlns": _XHTML})
    _append_narrative(div, section, "p")
    return ET.tostring(div, encoding="unicode")


# --- FHIR rendering ----------------------------------------------------------------

_Json = dict[str, Any]


def _coding(system: str, code: str, display: str) -> _Json:
    """A CodeableConcept with one coding."""
    return {"coding": [{"system": system, "code": code, "display": display}]}


def _loinc(code: str) -> _Json:
    """A LOINC CodeableConcept with its display."""
    return _coding(LOINC, code, _LOINC_DISPLAY[code])


def _status(system_tail: str, code: str) -> _Json:
    """A CodeableConcept from an HL7 terminology code system."""
    return {
        "coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{system_tail}", "code": code}]
    }


def _human_name(full: str) -> _Json:
    """A FHIR HumanName from "Dr Anne Weber"."""
    prefix, given, family = _split_name(full)
    name: _Json = {"text": full, "family": family}
    if given:
        name["given"] = given
    if prefix:
        name["prefix"] = [prefix]
    return name


class _FhirDocument:
    """Builds a FHIR R4 document Bundle: Composition, Patient, authors, section entries."""

    def __init__(self, ctx: DocumentContext, rng: random.Random) -> None:
        """Allocate the Composition and add Patient, Practitioner and Organization entries."""
        self.ctx = ctx
        self.rng = rng
        self.entries: list[_Json] = []
        self.sections: list[_Json] = []
        self.composition_ref = f"urn:uuid:{_uuid(rng)}"
        self.patient_ref = self.add(self._patient())
        self.author_refs: list[str] = []
        self.custodian_ref: str | None = None
        if ctx.author_name:
            practitioner = {"resourceType": "Practitioner", "name": [_human_name(ctx.author_name)]}
            self.author_refs.append(self.add(practitioner))
        if ctx.organisation_name:
            organisation = {"resourceType": "Organization", "name": ctx.organisation_name}
            self.custodian_ref = self.add(organisation)
            self.author_refs.append(self.custodian_ref)

    def _patient(self) -> _Json:
        """The Patient resource of the context."""
        ctx = self.ctx
        gender = ctx.patient_sex if ctx.patient_sex in ("female", "male", "other") else "unknown"
        return {
            "resourceType": "Patient",
            "identifier": [
                {
                    "system": _identifier_system(ctx.patient_identifier),
                    "value": ctx.patient_identifier,
                }
            ],
            "name": [{"family": ctx.patient_family, "given": [ctx.patient_given]}],
            "gender": gender,
            "birthDate": ctx.patient_birth_date.isoformat(),
        }

    def add(self, resource: _Json) -> str:
        """Give ``resource`` an id, add it as an entry, return its fullUrl."""
        resource_id = _uuid(self.rng)
        full_url = f"urn:uuid:{resource_id}"
        self.entries.append(
            {
                "fullUrl": full_url,
                "resource": {
                    "resourceType": resource["resourceType"],
                    "id": resource_id,
                    **resource,
                },
            }
        )
        return full_url

    def section(self, section: _Section, resources: Sequence[_Json]) -> None:
        """Add a Composition section with its narrative and entries."""
        assert section.loinc is not None  # every FHIR section has a LOINC code
        data: _Json = {
            "title": section.heading,
            "code": _loinc(section.loinc),
            "text": {"status": "generated", "div": _xhtml_div(section)},
        }
        if resources:
            data["entry"] = [{"reference": self.add(r)} for r in resources]
        else:
            data["emptyReason"] = _status("list-empty-reason", "nilknown")
        self.sections.append(data)

    def bundle(self) -> _Json:
        """The finished Bundle, Composition first."""
        ctx = self.ctx
        timestamp = ctx.created_at.astimezone(dt.UTC).isoformat(timespec="seconds")
        composition: _Json = {
            "resourceType": "Composition",
            "id": self.composition_ref.removeprefix("urn:uuid:"),
            "language": ctx.language,
            "status": "final",
            "type": _loinc(_DOCUMENT_LOINC[ctx.type_key]),
            "subject": {"reference": self.patient_ref},
            "date": timestamp,
            "author": [{"reference": ref} for ref in self.author_refs or [self.patient_ref]],
            "title": ctx.title,
            "confidentiality": "N",
            "section": self.sections,
        }
        if self.custodian_ref:
            composition["custodian"] = {"reference": self.custodian_ref}
        return {
            "resourceType": "Bundle",
            "language": ctx.language,
            "identifier": {"system": "urn:ietf:rfc:3986", "value": ctx.document_id},
            "type": "document",
            "timestamp": timestamp,
            "entry": [{"fullUrl": self.composition_ref, "resource": composition}, *self.entries],
        }


def _allergy_resources(
    doc: _FhirDocument, allergies: Sequence[tuple[_Allergen, _Coded]]
) -> list[_Json]:
    """AllergyIntolerance resources, or one "no known allergy" statement."""
    clinical = _status("allergyintolerance-clinical", "active")
    if not allergies:
        concept = _NO_KNOWN_ALLERGY
        return [
            {
                "resourceType": "AllergyIntolerance",
                "clinicalStatus": clinical,
                "code": _coding(SNOMED, concept.code, concept.display),
                "patient": {"reference": doc.patient_ref},
            }
        ]
    return [
        {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": clinical,
            "verificationStatus": _status("allergyintolerance-verification", "confirmed"),
            "type": "allergy",
            "category": [allergen.category],
            "criticality": _criticality(reaction),
            "code": _coding(SNOMED, allergen.concept.code, allergen.concept.display),
            "patient": {"reference": doc.patient_ref},
            "reaction": [{"manifestation": [_coding(SNOMED, reaction.code, reaction.display)]}],
        }
        for allergen, reaction in allergies
    ]


def _medication_resources(
    doc: _FhirDocument, medications: Sequence[tuple[_Medicine, dt.date]]
) -> list[_Json]:
    """MedicationStatement resources coded with ATC."""
    return [
        {
            "resourceType": "MedicationStatement",
            "status": "active",
            "medicationCodeableConcept": {
                **_coding(ATC, m.atc, m.name[0]),
                "text": _t(m.name, doc.ctx.language),
            },
            "subject": {"reference": doc.patient_ref},
            "effectivePeriod": {"start": start.isoformat()},
            "dosage": [{"text": _t(m.dosage, doc.ctx.language)}],
        }
        for m, start in medications
    ]


def _condition_resources(
    doc: _FhirDocument, problems: Sequence[tuple[_Problem, dt.date]]
) -> list[_Json]:
    """Condition resources coded with SNOMED CT."""
    return [
        {
            "resourceType": "Condition",
            "clinicalStatus": _status("condition-clinical", "active"),
            "verificationStatus": _status("condition-ver-status", "confirmed"),
            "category": [_status("condition-category", "problem-list-item")],
            "code": {
                **_coding(SNOMED, p.concept.code, p.concept.display),
                "text": _t(p.concept.label, doc.ctx.language),
            },
            "subject": {"reference": doc.patient_ref},
            "onsetDateTime": onset.isoformat(),
        }
        for p, onset in problems
    ]


def _immunization_resources(
    doc: _FhirDocument, vaccinations: Sequence[_Vaccination]
) -> list[_Json]:
    """Immunization resources coded with CVX."""
    return [
        {
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": {
                **_coding(CVX, v.vaccine.code, v.vaccine.display),
                "text": _t(v.vaccine.label, doc.ctx.language),
            },
            "patient": {"reference": doc.patient_ref},
            "occurrenceDateTime": v.date.isoformat(),
            "lotNumber": v.lot,
            "protocolApplied": [{"doseNumberPositiveInt": v.dose}],
        }
        for v in vaccinations
    ]


def _fhir_patient_summary(ctx: DocumentContext, rng: random.Random) -> _Json:
    """Patient summary Bundle: allergies, medications, problems."""
    summary = _draw_summary(ctx, rng)
    doc = _FhirDocument(ctx, rng)
    lang = ctx.language
    doc.section(
        _allergy_section(lang, summary.allergies), _allergy_resources(doc, summary.allergies)
    )
    doc.section(
        _medication_section(lang, summary.medications),
        _medication_resources(doc, summary.medications),
    )
    doc.section(
        _problem_section(lang, summary.problems), _condition_resources(doc, summary.problems)
    )
    return doc.bundle()


def _fhir_vaccination_record(ctx: DocumentContext, rng: random.Random) -> _Json:
    """Immunization summary Bundle."""
    vaccinations = _draw_vaccinations(ctx, rng)
    doc = _FhirDocument(ctx, rng)
    doc.section(
        _vaccination_section(ctx.language, vaccinations), _immunization_resources(doc, vaccinations)
    )
    return doc.bundle()


def _fhir_allergies(ctx: DocumentContext, rng: random.Random) -> _Json:
    """Allergies and intolerances Bundle."""
    allergies = _draw_allergies(rng, at_least_one=True)
    doc = _FhirDocument(ctx, rng)
    doc.section(_allergy_section(ctx.language, allergies), _allergy_resources(doc, allergies))
    return doc.bundle()


_FHIR_BUILDERS: Final[dict[str, Callable[[DocumentContext, random.Random], _Json]]] = {
    "patient-summary": _fhir_patient_summary,
    "vaccination-record": _fhir_vaccination_record,
    "allergies": _fhir_allergies,
}


def _render_fhir(ctx: DocumentContext, rng: random.Random) -> bytes:
    """Render a FHIR R4 document Bundle as JSON."""
    return json.dumps(_FHIR_BUILDERS[ctx.type_key](ctx, rng), ensure_ascii=False, indent=2).encode(
        "utf-8"
    )


# --- CDA rendering -----------------------------------------------------------------

_CDA_TYPES: Final = frozenset({"patient-summary", "discharge-summary", "consultation-note"})


def _cda_ts(moment: dt.datetime) -> str:
    """An HL7 v3 TS value with seconds and UTC offset."""
    return moment.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S+0000")


def _cda_code(parent: ET.Element, tag: str, code: str) -> None:
    """A LOINC-coded ``code`` element."""
    ET.SubElement(
        parent,
        tag,
        code=code,
        codeSystem=_LOINC_OID,
        codeSystemName="LOINC",
        displayName=_LOINC_DISPLAY.get(code, ""),
    )


def _cda_name(parent: ET.Element, prefix: str | None, given: Sequence[str], family: str) -> None:
    """A PN ``name`` element."""
    name = ET.SubElement(parent, "name")
    if prefix:
        ET.SubElement(name, "prefix").text = prefix
    for part in given:
        ET.SubElement(name, "given").text = part
    ET.SubElement(name, "family").text = family


def _cda_document_id(document_id: str) -> dict[str, str]:
    """II attributes of the document id: the UUID of ``urn:uuid:`` ids, else root + extension."""
    if document_id.startswith("urn:uuid:"):
        return {"root": document_id.removeprefix("urn:uuid:").upper()}
    return {"root": _oid_of("https://carnet.health/document"), "extension": document_id}


def _cda_header(root: ET.Element, ctx: DocumentContext) -> None:
    """Document-level header elements up to languageCode."""
    realm = "FR" if _identifier_system(ctx.patient_identifier) == FR_NIR else "LU"
    ET.SubElement(root, "realmCode", code=realm)
    ET.SubElement(root, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    ET.SubElement(root, "id", _cda_document_id(ctx.document_id))
    _cda_code(root, "code", _DOCUMENT_LOINC[ctx.type_key])
    ET.SubElement(root, "title").text = ctx.title
    ET.SubElement(root, "effectiveTime", value=_cda_ts(ctx.created_at))
    ET.SubElement(root, "confidentialityCode", code="N", codeSystem="2.16.840.1.113883.5.25")
    ET.SubElement(root, "languageCode", code=ctx.language)


def _cda_record_target(root: ET.Element, ctx: DocumentContext) -> None:
    """recordTarget/patientRole with the national identifier and demographics."""
    role = ET.SubElement(ET.SubElement(root, "recordTarget"), "patientRole")
    ET.SubElement(
        role,
        "id",
        root=_oid_of(_identifier_system(ctx.patient_identifier)),
        extension=ctx.patient_identifier,
    )
    patient = ET.SubElement(role, "patient")
    _cda_name(patient, None, [ctx.patient_given], ctx.patient_family)
    gender = {"female": "F", "male": "M"}.get(ctx.patient_sex, "UN")
    ET.SubElement(
        patient, "administrativeGenderCode", code=gender, codeSystem="2.16.840.1.113883.5.1"
    )
    ET.SubElement(patient, "birthTime", value=ctx.patient_birth_date.strftime("%Y%m%d"))


def _cda_organisation(parent: ET.Element, tag: str, name: str, rng: random.Random) -> None:
    """An organisation element with a UUID id and a name."""
    organisation = ET.SubElement(parent, tag)
    ET.SubElement(organisation, "id", root=_uuid(rng).upper())
    ET.SubElement(organisation, "name").text = name


def _cda_participants(root: ET.Element, ctx: DocumentContext, rng: random.Random) -> None:
    """author (person and/or organisation) and custodian."""
    author = ET.SubElement(root, "author")
    ET.SubElement(author, "time", value=_cda_ts(ctx.created_at))
    assigned = ET.SubElement(author, "assignedAuthor")
    ET.SubElement(assigned, "id", root=_uuid(rng).upper())
    if ctx.author_name:
        _cda_name(ET.SubElement(assigned, "assignedPerson"), *_split_name(ctx.author_name))
    if ctx.organisation_name:
        _cda_organisation(assigned, "representedOrganization", ctx.organisation_name, rng)
    custodian = ET.SubElement(ET.SubElement(root, "custodian"), "assignedCustodian")
    _cda_organisation(
        custodian, "representedCustodianOrganization", ctx.organisation_name or "Carnet", rng
    )


def _cda_body(root: ET.Element, sections: Sequence[_Section]) -> None:
    """component/structuredBody with one narrative section per content section."""
    body = ET.SubElement(ET.SubElement(root, "component"), "structuredBody")
    for section in sections:
        element = ET.SubElement(ET.SubElement(body, "component"), "section")
        if section.loinc:
            _cda_code(element, "code", section.loinc)
        ET.SubElement(element, "title").text = section.heading
        _append_narrative(ET.SubElement(element, "text"), section, "paragraph")


def _render_cda(ctx: DocumentContext, sections: Sequence[_Section], rng: random.Random) -> bytes:
    """Render an HL7 CDA R2 ClinicalDocument."""
    root = ET.Element("ClinicalDocument", {"xmlns": _HL7_V3})
    _cda_header(root, ctx)
    _cda_record_target(root, ctx)
    _cda_participants(root, ctx, rng)
    _cda_body(root, sections)
    ET.indent(root)
    return _XML_DECLARATION + ET.tostring(root, encoding="unicode").encode("utf-8") + b"\n"


# --- Entry point ---------------------------------------------------------------------


def supported_mime_types(type_key: str) -> tuple[str, ...]:
    """The MIME types :func:`render` accepts for a document type."""
    if type_key not in _BUILDERS:
        raise ValueError(f"unknown document type {type_key!r}")
    extra = ((MIME_FHIR_JSON,) if type_key in _FHIR_BUILDERS else ()) + (
        (MIME_CDA,) if type_key in _CDA_TYPES else ()
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
        return _render_fhir(context, rng)
    sections = _BUILDERS[context.type_key](context, rng)
    if mime_type == MIME_CDA:
        return _render_cda(context, sections, rng)
    if mime_type == MIME_TEXT:
        return _render_text(context, sections)
    return _render_pdf(context, sections)
