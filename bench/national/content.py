"""The documents' bytes: a 50 KB laboratory PDF, and one rendered document per other format.

The bulk set shares bytes between documents, the way the store allows it: the store keys an
object by ``<patient_id>/<sha256>`` and binds it to that key (the key is the encryption's
associated data), so an object can never be shared between dossiers — but within a dossier,
documents with identical bytes share one object. Every bulk document therefore points at its
own dossier's copy of one of these templates, chosen by MIME type.

Publications (ITI-65) stamp a serial into the PDF, so that every published document is distinct
content — a new encrypted object, fsynced — as it would be in life.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, replace

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from carnet.demo.documents.catalogue import render
from carnet.demo.documents.model import DocumentContext

PDF = "application/pdf"
_STAMP = b"BENCH-SAMPLE-"
_DIGITS = 16
_ANALYTES = (
    ("Haemoglobin", "14.2", "g/dL", "13.0 - 17.0"),
    ("Leucocytes", "6.8", "G/L", "4.0 - 10.0"),
    ("Platelets", "251", "G/L", "150 - 400"),
    ("Glucose (fasting)", "5.1", "mmol/L", "3.9 - 5.8"),
    ("Creatinine", "82", "umol/L", "62 - 106"),
    ("Potassium", "4.3", "mmol/L", "3.5 - 5.1"),
    ("Sodium", "139", "mmol/L", "136 - 145"),
    ("ALAT", "24", "U/L", "< 45"),
    ("Cholesterol, total", "5.2", "mmol/L", "< 5.2"),
    ("TSH", "1.9", "mU/L", "0.27 - 4.2"),
)


@dataclass(frozen=True)
class Templates:
    """The bytes of each format, and the PDF's stamp position."""

    by_mime: dict[str, bytes]
    stamp_at: int

    def stamped_pdf(self, serial: int) -> bytes:
        """The PDF with ``serial`` in its sample number: same length, distinct bytes."""
        pdf = self.by_mime[PDF]
        digits = f"{serial % 10**_DIGITS:0{_DIGITS}d}".encode()
        return pdf[: self.stamp_at] + digits + pdf[self.stamp_at + _DIGITS :]


def templates(pdf_bytes: int = 50_000) -> Templates:
    """A laboratory PDF of about ``pdf_bytes`` and one demo rendering of each other format."""
    pdf = laboratory_pdf(pdf_bytes)
    stamp_at = pdf.index(_STAMP) + len(_STAMP)
    context = DocumentContext(
        type_key="patient-summary",
        title="Patient summary",
        language="fr",
        patient_family="Bench",
        patient_given="Patient",
        patient_birth_date=dt.date(1970, 1, 1),
        patient_sex="female",
        patient_identifier="1970010100012",
        author_name="Marc Schmit",
        organisation_name="Cabinet médical du Centre",
        created_at=dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC),
        document_id="bench",
    )
    rng = random.Random(20261123)  # noqa: S311 — synthetic content
    lab = replace(context, type_key="lab-report", title="Bilan sanguin")
    by_mime = {
        PDF: pdf,
        "text/plain": render(lab, "text/plain", rng),
        "application/fhir+json": render(context, "application/fhir+json", rng),
        "text/xml": render(context, "text/xml", rng),
    }
    return Templates(by_mime=by_mime, stamp_at=stamp_at)


def laboratory_pdf(size: int) -> bytes:
    """A real, uncompressed laboratory-report PDF of about ``size`` bytes (at least 2 KB)."""
    per_line = 100  # measured below, refined once
    lines = max(1, (size - 1500) // per_line)
    pdf = _draw(lines)
    if len(pdf) < size:
        per_line = max(1, (len(pdf) - 1500) // lines)
        pdf = _draw(lines + (size - len(pdf)) // per_line + 1)
    return pdf


def _draw(lines: int) -> bytes:
    document = FPDF()
    document.set_compression(False)
    document.set_creation_date(dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC))
    document.add_page()
    document.set_font("Helvetica", style="B", size=12)
    document.cell(
        0, 7, "Laboratoire Central Alzette - Bilan sanguin", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    document.set_font("Helvetica", size=9)
    sample = (_STAMP + b"0" * _DIGITS).decode()
    document.cell(
        0,
        5,
        f"Sample {sample}   Patient: Bench Patient   Born 01/01/1970",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    for number in range(lines):
        name, value, unit, reference = _ANALYTES[number % len(_ANALYTES)]
        document.cell(
            0,
            4,
            f"{number // len(_ANALYTES) + 1:>4}  {name:<22} {value:>7} {unit:<8} ({reference})",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    return bytes(document.output())
