"""How a document's own bytes leave the portals: the headers of the original, by what it is.

The original is served on the portal's origin, so what a browser would run there never runs:
only the passive types of ``documents.formats.shown_inline`` (a PDF in the viewer's frame,
PNG, JPEG, GIF and WebP in its ``<img>``, plain text) are served ``inline``; anything else
(HTML, XHTML, SVG, XML, a mislabelled image…) only as an ``attachment``, and every original but
the PDF in a ``Content-Security-Policy: sandbox`` (no ``allow-scripts``, no ``allow-same-origin``),
so that even a browser that showed it would run nothing and reach no cookie. The PDF keeps its
policy without the sandbox because browsers' PDF viewers refuse to run in one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from fastapi.responses import Response

from carnet.documents import formats
from carnet.documents.models import Document
from carnet.errors import InvalidInput

# The framed original may show itself and its own images, never run a script or be framed by
# another site (see the portal brief: the viewer's <iframe> and <img>).
CONTENT_CSP: Final = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'"
)
SANDBOXED_CSP: Final = f"{CONTENT_CSP}; sandbox"


def original_response(
    document: Document, content: bytes, *, file_parameters: str, download: bool
) -> Response:
    """The document's bytes with the headers that keep its origin safe.

    ``download`` asks for an attachment; a type that may not be shown inline is one anyway.
    ``file_parameters`` are the disposition's file name parameters (``filename="…"``, and
    ``filename*`` where the name needs more than ASCII).
    """
    passive = formats.shown_inline(document.mime_type, content)
    disposition = "inline" if passive and not download else "attachment"
    sandboxed = not (passive and formats.media_type(document.mime_type) == formats.PDF)
    return Response(
        content,
        media_type=document.mime_type,
        headers={
            "Content-Disposition": f"{disposition}; {file_parameters}",
            "Content-Security-Policy": SANDBOXED_CSP if sandboxed else CONTENT_CSP,
            "X-Frame-Options": "SAMEORIGIN",
            "X-Content-Type-Options": "nosniff",
        },
    )


def uploaded_type(declared: str, content: bytes, gettext: Callable[[str], str]) -> str:
    """The MIME type to store for an uploaded file, from what the browser declared.

    A browser names a file's type after its extension: a photo saved as ``.png`` that is a JPEG
    is stored as the JPEG it is. A file that claims an image type and is no image Carnet knows
    is refused (``InvalidInput`` on ``file``, in the visitor's language) before the documents
    service would refuse it in English.
    """
    if formats.claimed_image_mismatch(declared, content) is None:
        return declared
    found = formats.image_type(content)
    if found is None:
        raise InvalidInput(
            gettext("This file is not the image its name says it is."),
            field="file",
        )
    return found
