"""Plain-text layout of a demo document (``text/plain``): UTF-8 with aligned tables.

The header lines and the footer are shared with the PDF layout, which prints the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from carnet.demo.documents.model import (
    DocumentContext,
    Section,
    Table,
    document_date,
    fmt_date,
    patient_line,
)
from carnet.demo.documents.pools import term

_SEXES: Final = frozenset({"female", "male", "other", "unknown"})


def header_lines(ctx: DocumentContext) -> list[tuple[str, str]]:
    """(label, value) pairs printed under the title of PDF and text documents."""
    lang = ctx.language
    sex = term(ctx.patient_sex, lang) if ctx.patient_sex in _SEXES else ctx.patient_sex
    lines = [
        (term("patient", lang), patient_line(ctx)),
        (term("birth_date", lang), fmt_date(ctx.patient_birth_date, lang)),
        (term("sex", lang), sex),
        (term("identifier", lang), ctx.patient_identifier),
        (term("date", lang), fmt_date(document_date(ctx), lang)),
    ]
    if ctx.organisation_name:
        lines.insert(0, (term("organisation", lang), ctx.organisation_name))
    if ctx.author_name:
        lines.insert(1 if ctx.organisation_name else 0, (term("author", lang), ctx.author_name))
    return lines


def footer(ctx: DocumentContext) -> str:
    """Footer line: document identifier and the synthetic-data notice."""
    return (
        f"{term('document', ctx.language)} {ctx.document_id} - {term('disclaimer', ctx.language)}"
    )


def _text_table(table: Table) -> list[str]:
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


def render_text(ctx: DocumentContext, sections: Sequence[Section]) -> bytes:
    """Render a document as UTF-8 plain text."""
    header = header_lines(ctx)
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
    lines += ["", footer(ctx), ""]
    return "\n".join(lines).encode("utf-8")
