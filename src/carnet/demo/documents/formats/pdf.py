"""PDF layout of a demo document (``application/pdf``): a small A4 page on fpdf2.

The core font Helvetica keeps files small and needs no font file; text outside latin-1
is transliterated. The creation date is the document's ``created_at``, so the bytes are
deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from carnet.demo.documents.formats.text import footer, header_lines
from carnet.demo.documents.model import DocumentContext, Section, Table
from carnet.pdftext import latin1 as _latin1


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

    def table(self, table: Table) -> None:
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


def render_pdf(ctx: DocumentContext, sections: Sequence[Section]) -> bytes:
    """Render a document as PDF."""
    pdf = _Pdf(ctx)
    pdf.title(ctx.title)
    pdf.key_values(header_lines(ctx))
    for section in sections:
        if section.heading:
            pdf.heading(section.heading)
        else:
            pdf.gap(2)
        for paragraph in section.paragraphs:
            pdf.paragraph(paragraph)
        if section.table is not None:
            pdf.table(section.table)
    pdf.footer(footer(ctx))
    return pdf.output()
