"""A laboratory report as a person reads it: one PDF per report, in the patient's language.

Drawn with fpdf2's core fonts as the invitation letters are (``lifecycle.letters``), so text is
latin-1 (``carnet.pdftext``). The words are Carnet's own, in French, English and German; the
results keep the laboratory's wording (test names, units, ranges), which no translation may
change. Times are shown in Luxembourg's local time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from carnet.catalogue import LOINC_SYSTEM, load_catalogue
from carnet.laboratory.oru import LOCAL_TIME, Observation, Order
from carnet.notifications.messages import language_for
from carnet.pdftext import latin1

LAB_REPORT_CODE = "11502-2"


@dataclass(frozen=True)
class _Words:
    patient: str
    born: str
    laboratory: str
    order: str
    sampled: str
    reported: str
    specimen: str
    status: str
    test: str
    result: str
    unit: str
    reference: str
    flag: str
    notes: str
    statuses: dict[str, str]


_WORDS = {
    "fr": _Words(
        patient="Patient",
        born="né(e) le",
        laboratory="Laboratoire",
        order="Demande n°",
        sampled="Prélèvement",
        reported="Résultats du",
        specimen="Échantillon",
        status="Statut",
        test="Analyse",
        result="Résultat",
        unit="Unité",
        reference="Valeurs de référence",
        flag="Indicateur",
        notes="Remarques",
        statuses={"F": "définitif", "P": "préliminaire", "C": "corrigé", "X": "annulé"},
    ),
    "en": _Words(
        patient="Patient",
        born="born",
        laboratory="Laboratory",
        order="Order no.",
        sampled="Sampled",
        reported="Reported",
        specimen="Specimen",
        status="Status",
        test="Test",
        result="Result",
        unit="Unit",
        reference="Reference range",
        flag="Flag",
        notes="Notes",
        statuses={"F": "final", "P": "preliminary", "C": "corrected", "X": "cancelled"},
    ),
    "de": _Words(
        patient="Patient",
        born="geboren am",
        laboratory="Labor",
        order="Auftrag Nr.",
        sampled="Probenahme",
        reported="Befund vom",
        specimen="Probe",
        status="Status",
        test="Untersuchung",
        result="Ergebnis",
        unit="Einheit",
        reference="Referenzbereich",
        flag="Kennzeichen",
        notes="Bemerkungen",
        statuses={"F": "endgültig", "P": "vorläufig", "C": "korrigiert", "X": "storniert"},
    ),
}
# Column widths (mm) of the results table on A4 with 15 mm margins: 180 mm in all.
_COLUMNS = (62.0, 38.0, 22.0, 40.0, 18.0)


@dataclass(frozen=True)
class ReportView:
    """What the rendering shows: the order, who it is about and who wrote it."""

    order: Order
    patient_name: str
    birth_date: str
    laboratory: str


def title(order: Order, language: str) -> str:
    """The document's title: the catalogue's name of a laboratory report, then the test."""
    label = (
        load_catalogue()
        .by_code(LOINC_SYSTEM, LAB_REPORT_CODE)
        .labels.in_language(language_for(language))
    )
    return f"{label} - {order.service.display}"[:300]


def render_pdf(view: ReportView, *, language: str, printed_at: dt.datetime) -> bytes:
    """The report as a PDF, worded in ``language`` (fr, en, de; others read French)."""
    chosen = language_for(language)
    words = _WORDS.get(chosen, _WORDS["fr"])
    pdf = FPDF(format="A4")
    pdf.set_creation_date(printed_at)
    pdf.set_creator("Carnet")
    pdf.set_title(latin1(title(view.order, chosen)))
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    _line(pdf, title(view.order, chosen), 8)
    pdf.ln(2)
    pdf.set_font("Helvetica", "", 10)
    order = view.order
    facts = [
        (words.patient, _patient(view, words)),
        (words.laboratory, view.laboratory),
        (words.order, order.filler or order.placer),
        (words.sampled, _time(order.observed_at)),
        (words.reported, _time(order.reported_at)),
        (words.specimen, order.specimen),
        (words.status, words.statuses.get(order.status, order.status)),
    ]
    for label, value in facts:
        if value:
            _line(pdf, f"{label}: {value}")
    pdf.ln(3)
    _table(pdf, words, order.observations)
    notes = [*order.notes, *(note for o in order.observations for note in o.notes)]
    if notes:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 10)
        _line(pdf, words.notes)
        pdf.set_font("Helvetica", "", 9)
        for note in notes:
            _line(pdf, note, 4.5)
    return bytes(pdf.output())


def _table(pdf: FPDF, words: _Words, observations: tuple[Observation, ...]) -> None:
    pdf.set_font("Helvetica", "B", 9)
    header = (words.test, words.result, words.unit, words.reference, words.flag)
    _row(pdf, header, fill=True)
    pdf.set_font("Helvetica", "", 9)
    for observation in observations:
        _row(
            pdf,
            (
                observation.code.display,
                observation.value,
                observation.unit,
                observation.reference_range,
                ",".join(observation.abnormal_flags),
            ),
            bold=bool(set(observation.abnormal_flags) - {"N", ""}),
        )


def _row(pdf: FPDF, cells: tuple[str, ...], *, fill: bool = False, bold: bool = False) -> None:
    if fill:
        pdf.set_fill_color(230, 230, 230)
    if bold:
        pdf.set_font("Helvetica", "B", 9)
    texts = [latin1(text) for text in cells]
    if all(_fits(pdf, text, width) for width, text in zip(_COLUMNS, texts, strict=True)):
        # Most rows: every cell on one line, drawn as plain cells (line breaking is what most
        # of a report's drawing time went to, and it is a third of a message's handling).
        if pdf.will_page_break(5):
            pdf.add_page()
        for width, text in zip(_COLUMNS, texts, strict=True):
            pdf.cell(width, 5, text, border=1, fill=fill)
        pdf.ln(5)
    else:
        _wrapped_row(pdf, texts, fill=fill)
    if bold:
        pdf.set_font("Helvetica", "", 9)


def _fits(pdf: FPDF, text: str, width: float) -> bool:
    return "\n" not in text and pdf.get_string_width(text) <= width - 2 * pdf.c_margin


def _wrapped_row(pdf: FPDF, cells: list[str], *, fill: bool) -> None:
    # Every cell of a row is drawn at the same height: the tallest cell's lines.
    lines = [
        len(cast(list[str], pdf.multi_cell(width, 5, latin1(text), dry_run=True, output="LINES")))
        for width, text in zip(_COLUMNS, cells, strict=True)
    ]
    height = 5 * max(1, *lines)
    if pdf.will_page_break(height):
        pdf.add_page()
    top = pdf.get_y()
    left = pdf.l_margin
    for width, text in zip(_COLUMNS, cells, strict=True):
        pdf.set_xy(left, top)
        pdf.multi_cell(width, 5, text, fill=fill, max_line_height=5)
        left += width
    # Frame every cell to the row's height, whatever each one's text took.
    left = pdf.l_margin
    for width in _COLUMNS:
        pdf.rect(left, top, width, height)
        left += width
    pdf.set_xy(pdf.l_margin, top + height)


def _line(pdf: FPDF, text: str, height: float = 5.5) -> None:
    shown = latin1(text)
    if _fits(pdf, shown, pdf.epw):
        pdf.cell(0, height, shown, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    else:
        pdf.multi_cell(0, height, shown, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _patient(view: ReportView, words: _Words) -> str:
    born = view.birth_date
    if len(born) == 8 and born.isdigit():
        born = f"{born[6:8]}.{born[4:6]}.{born[0:4]}"
    return f"{view.patient_name}, {words.born} {born}" if born else view.patient_name


def _time(value: dt.datetime | None) -> str:
    return value.astimezone(LOCAL_TIME).strftime("%d.%m.%Y %H:%M") if value else ""
