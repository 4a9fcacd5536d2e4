"""How the portals show a document: PDF in a frame, images, plain text; anything else is
offered for download.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup


@dataclass(frozen=True)
class Rendition:
    """What the viewer page shows.

    ``kind`` is ``frame`` (the content URL in an iframe: PDF), ``image`` (the content URL in an
    img), ``html`` (``html`` holds safe, rendered markup), ``text`` (``text`` holds the text) or
    ``download`` (no preview: a download link only).
    """

    kind: str
    html: Markup | None = None
    text: str | None = None


def render_document(mime_type: str, content: bytes, *, language: str) -> Rendition:
    """The rendition of a document's content for the viewer, in ``language``."""
    if mime_type == "application/pdf":
        return Rendition("frame")
    if mime_type.startswith("image/"):
        return Rendition("image")
    if mime_type.startswith("text/plain"):
        return Rendition("text", text=content.decode("utf-8", errors="replace"))
    return Rendition("download")
