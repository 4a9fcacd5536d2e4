"""Reading what a generated PDF draws, for tests (no PDF library in the product to ask)."""

from __future__ import annotations

import re
import zlib


def content_streams(pdf: bytes) -> list[bytes]:
    """The decompressed content streams of a PDF (raw, when a stream is not deflated).

    The end-of-line before ``endstream`` is kept: compressed bytes may themselves end in a
    carriage return, and a decompressor object ignores whatever follows the data.
    """
    streams = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.DOTALL):
        try:
            streams.append(zlib.decompressobj().decompress(stream))
        except zlib.error:
            streams.append(stream)
    return streams


def text_pdf(*lines: str, pages: int = 1) -> bytes:
    """A real A4 PDF (drawn by fpdf2) showing ``lines`` on each of its ``pages``."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=12)
    for _ in range(pages):
        pdf.add_page()
        for line in lines:
            pdf.cell(text=line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
