"""A PDF shown as the images of its pages, drawn on the server by PDFium (pypdfium2).

Phone browsers do not show a PDF inside a page (an ``<iframe>`` of a PDF is an empty box on
Android and a first-page thumbnail on iOS), so the viewer shows each page as an image that
fits the screen, with the page's text beside it for screen readers and for copying. The images
travel inside the viewer page as ``data:`` URLs: one read of the document, one consultation on
the audit trail, no second request that could be made without the viewer.

The PDF comes from outside Carnet and is hostile: PDFium (Chromium's own PDF engine, maintained
by Google) parses it, with no form script run (``may_draw_forms`` off), at most
``MOST_PAGES`` pages at a bounded size. A PDF PDFium cannot open is offered for download.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import pypdfium2 as pdfium

# Wide enough to stay sharp on a phone held at twice its CSS width, and when zoomed a little;
# an A4 page of a lab report is then some 30 kB as grey PNG.
PAGE_WIDTH_PX: Final = 1000
# Beyond these the page is a poster or a malicious size: drawn no taller than this.
TALLEST_PAGE_PX: Final = 4000
# A lab report is one to three pages; a long document shows its first pages and a note.
MOST_PAGES: Final = 12


@dataclass(frozen=True)
class PageImage:
    """One drawn page: a ``data:`` URL of its PNG, its size, and its text (may be empty)."""

    data_url: str
    width: int
    height: int
    text: str


@dataclass(frozen=True)
class DrawnPdf:
    """The pages drawn, and how many the PDF has (more than drawn when it is long)."""

    pages: tuple[PageImage, ...]
    page_count: int


class UnreadablePdf(Exception):
    """PDFium could not open or draw the document."""


def draw_pdf(content: bytes, *, most_pages: int = MOST_PAGES) -> DrawnPdf:
    """The first ``most_pages`` pages of a PDF as grey PNG images with their text.

    Raises ``UnreadablePdf`` when PDFium cannot open or draw it (damaged, encrypted).
    """
    # Imported when a page is drawn: PDFium's bindings cost a worker 0.15 s at start-up, and a
    # worker must serve within seconds of a restart on a busy machine (test_serve_restart.py).
    import pypdfium2 as pdfium  # noqa: PLC0415

    try:
        document = pdfium.PdfDocument(content)
    except pdfium.PdfiumError as error:
        raise UnreadablePdf(str(error)) from error
    try:
        count = len(document)
        pages = tuple(_draw(document, index) for index in range(min(count, most_pages)))
    except pdfium.PdfiumError as error:
        raise UnreadablePdf(str(error)) from error
    finally:
        document.close()
    return DrawnPdf(pages, count)


def _draw(document: pdfium.PdfDocument, index: int) -> PageImage:
    page = document[index]
    try:
        width, height = page.get_size()
        if width <= 0 or height <= 0:
            raise UnreadablePdf(f"page {index + 1} has no size")
        scale = min(PAGE_WIDTH_PX / width, TALLEST_PAGE_PX / height)
        bitmap = page.render(scale=scale, grayscale=True, may_draw_forms=False)
        try:
            image = bitmap.to_pil().convert("L")
        finally:
            bitmap.close()
        textpage = page.get_textpage()
        try:
            text = textpage.get_text_bounded().replace("\r\n", "\n").strip()
        finally:
            textpage.close()
    finally:
        page.close()
    png = io.BytesIO()
    image.save(png, "PNG", optimize=True)
    encoded = base64.b64encode(png.getvalue()).decode("ascii")
    return PageImage(f"data:image/png;base64,{encoded}", image.width, image.height, text)
