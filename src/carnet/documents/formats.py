"""What a document's bytes are, and which of them a browser may be handed to show inline.

A document comes from outside Carnet and is served back on Carnet's own origin. A browser
that shows HTML, XHTML, SVG or XML there runs its scripts with the portal's cookies and pages,
so only a short list of passive types is ever handed over to be shown: PDF, PNG, JPEG, GIF,
WebP and plain text, each only when its first bytes are what the MIME type claims. Everything
else leaves as a download in a sandbox (the ways in set the headers; the rule is here, once).

The publisher's MIME type is also checked against the bytes for the image types Carnet can
recognise, so a "PNG" that is really an HTML page is refused when it is published rather than
discovered when it is shown.
"""

from __future__ import annotations

from typing import Final

# The signatures of the image types Carnet recognises (their specifications' magic numbers:
# PNG 1.2 §12.12, JFIF/JPEG SOI marker, GIF89a §17, WebP RIFF container, TIFF 6.0 §2, BMP).
_IMAGE_SIGNATURES: Final[dict[str, tuple[bytes, ...]]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/tiff": (b"II*\x00", b"MM\x00*"),
    "image/bmp": (b"BM",),
}
# Names senders use for the same types (old browsers and scanners still send them).
_IMAGE_ALIASES: Final = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
# What a browser may show inline from Carnet's origin: passive formats without scripts.
INLINE_IMAGES: Final = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
PDF: Final = "application/pdf"
PLAIN_TEXT: Final = "text/plain"


def media_type(mime_type: str) -> str:
    """The type/subtype of a MIME type, lower case, without parameters."""
    return mime_type.split(";", 1)[0].strip().lower()


def image_type(content: bytes) -> str | None:
    """The image type ``content`` starts like, or None if it is none Carnet recognises."""
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    for media, signatures in _IMAGE_SIGNATURES.items():
        if content.startswith(signatures):
            return media
    return None


def claimed_image_mismatch(mime_type: str, content: bytes) -> str | None:
    """Why ``content`` is not the image its MIME type claims, or None if nothing is wrong.

    Only the types Carnet recognises are checked (PNG, JPEG, GIF, WebP, TIFF, BMP); another
    ``image/*`` type (SVG, DICOM's JPEG 2000…) is accepted as declared and is only ever
    offered for download.
    """
    media = media_type(mime_type)
    claimed = _IMAGE_ALIASES.get(media, media)
    if claimed not in _IMAGE_SIGNATURES and claimed != "image/webp":
        return None
    found = image_type(content)
    if found == claimed:
        return None
    what = f"a {found.removeprefix('image/').upper()} image" if found else "not such an image"
    return f"The content type says {media}, but the content is {what}."


def shown_inline(mime_type: str, content: bytes) -> bool:
    """Whether the raw bytes may be shown by a browser on Carnet's origin (else: download).

    PDF (it starts ``%PDF-``), PNG, JPEG, GIF and WebP whose bytes match, and plain text;
    never HTML, XHTML, SVG, XML or anything else, whatever the bytes look like.
    """
    media = media_type(mime_type)
    if media == PDF:
        return content.startswith(b"%PDF-")
    if media in INLINE_IMAGES:
        return image_type(content) == media
    return media == PLAIN_TEXT
