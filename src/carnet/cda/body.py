"""The body of a CDA document: structured (sections) or a nonXMLBody holding a file.

An unstructured document (CDA R2 §4.3.2, nonXMLBody) carries its content in ``text``, an ED:
inline (``representation="TXT"``, plain text) or base64 (``B64``), maybe compressed, or only a
``reference`` to a file elsewhere. Carnet keeps what it can show: embedded content is decoded
here (an embedded PDF must be a PDF); a body that only references its file is refused, since
Carnet cannot fetch it (no network) and a dossier must hold the document itself.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass
from typing import Any, Final

from carnet.cda.errors import CdaRefused
from carnet.cda.parsing import parse, v3

PDF: Final = "application/pdf"
# ED compression codes (HL7 Data Types R1 §2.8.2.4) Carnet decodes, with zlib's window bits.
_COMPRESSIONS: Final = {"DF": -15, "ZL": 15, "GZ": 31}
# A decompressed body may not grow past this (a "zip bomb" in a CDA stays a refusal).
_LARGEST_DECODED: Final = 64 * 1024 * 1024


@dataclass(frozen=True)
class EmbeddedFile:
    """The file a nonXMLBody holds: its media type and its bytes."""

    media_type: str
    content: bytes


def embedded_file(root: Any) -> EmbeddedFile | None:
    """The file embedded in a parsed ClinicalDocument's nonXMLBody; None for a structured body.

    Raises ``CdaRefused`` (reason ``body``) for a body that only references its file, one whose
    base64 or compression cannot be decoded, and an "application/pdf" that is not a PDF.
    """
    text = root.find(v3("component/nonXMLBody/text"))
    if text is None:
        return None
    media_type = (text.get("mediaType") or "text/plain").split(";", 1)[0].strip().lower()
    representation = (text.get("representation") or "TXT").strip().upper()
    data = "".join(
        part for part in (text.text or "", *(child.tail or "" for child in text)) if part
    )
    reference = text.find(v3("reference"))
    if not data.strip():
        where = f" ({reference.get('value')})" if reference is not None else ""
        raise CdaRefused(
            f"The nonXMLBody only references its file{where}: Carnet keeps documents whose file "
            "is embedded (representation B64), and fetches nothing.",
            reason="body",
        )
    if representation == "B64":
        content = _decoded(data)
    elif representation == "TXT":
        content = data.encode("utf-8")
    else:
        raise CdaRefused(
            f"The nonXMLBody's representation {representation!r} is neither B64 nor TXT.",
            reason="body",
        )
    compression = text.get("compression")
    if compression:
        content = _decompressed(content, compression.strip().upper())
    if media_type == PDF and not content.startswith(b"%PDF-"):
        raise CdaRefused(
            "The nonXMLBody says application/pdf but its content is not a PDF.", reason="body"
        )
    return EmbeddedFile(media_type=media_type, content=content)


def embedded_pdf(content: bytes) -> bytes | None:
    """The PDF a CDA document's nonXMLBody embeds, for the viewers; None for anything else (a
    structured CDA, another file, content that is no CDA Carnet reads). Never raises."""
    if b"nonXMLBody" not in content:
        return None
    try:
        found = embedded_file(parse(content))
    except CdaRefused:
        return None
    if found is None or found.media_type != PDF:
        return None
    return found.content


def _decoded(data: str) -> bytes:
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise CdaRefused(
            "The nonXMLBody's base64 content cannot be decoded.", reason="body"
        ) from error


def _decompressed(content: bytes, compression: str) -> bytes:
    bits = _COMPRESSIONS.get(compression)
    if bits is None:
        raise CdaRefused(
            f"The nonXMLBody's compression {compression!r} is not one Carnet reads "
            f"({', '.join(_COMPRESSIONS)}).",
            reason="body",
        )
    inflater = zlib.decompressobj(bits)
    try:
        decoded = inflater.decompress(content, _LARGEST_DECODED)
    except zlib.error as error:
        raise CdaRefused(
            f"The nonXMLBody's {compression} content cannot be decompressed.", reason="body"
        ) from error
    if inflater.unconsumed_tail:
        raise CdaRefused(
            f"The nonXMLBody decompresses to over {_LARGEST_DECODED} bytes.", reason="body"
        )
    return decoded
