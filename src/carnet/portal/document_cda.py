"""CDA R2 documents in the viewer: laid out to HTML by Carnet's own ``cda.xsl``.

The stylesheet's output method is HTML, so every value of the document becomes an escaped text
node; it runs with ``XSLTAccessControl.DENY_ALL`` (no file, no URL) and its result is rebuilt
from the allow-list (``document_safety``) once more. XML that is not a CDA document is shown as
its source; XML that cannot be laid out falls back to its source with a note saying why.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
from copy import deepcopy
from importlib import resources
from typing import Any, Final

from lxml import etree
from markupsafe import Markup

from carnet.portal.document_fhir import FHIR
from carnet.portal.document_rendition import Rendition, labels_of, readable_timestamp
from carnet.portal.document_safety import DtdRefused, parse_xml, rebuilt, serialized

log = logging.getLogger(__name__)


CDA_MIME_TYPES: Final = frozenset(
    {"text/xml", "application/xml", "application/hl7-v3+xml", "application/cda+xml"}
)


V3: Final = "urn:hl7-org:v3"


_EXTENSIONS: Final = "urn:carnet:document-view"


def render_xml(content: bytes, language: str) -> Rendition:
    """A CDA document laid out as HTML; other XML as its source, a DTD as a download."""
    labels = labels_of(language)
    try:
        root = parse_xml(content)
    except DtdRefused:
        return Rendition("download", note=labels["note_refused"])
    except (etree.LxmlError, ValueError):
        return Rendition(
            "text", text=content.decode("utf-8", errors="replace"), note=labels["note_unreadable"]
        )
    name = etree.QName(root)
    if name.namespace == FHIR:
        return Rendition("download", note=labels["note_not_shown"])
    if name.localname != "ClinicalDocument" or name.namespace not in (V3, None):
        return Rendition("text", text=_pretty_xml(root), note=labels["note_source"])
    if name.namespace is None:
        _adopt_v3_namespace(root)
    try:
        return Rendition("html", html=_render_cda(root, language))
    except (etree.LxmlError, ValueError, RecursionError) as error:
        # No document content in the log: it is patient data.
        log.warning("CDA document not laid out: %s", type(error).__name__)
        return Rendition("text", text=_pretty_xml(root), note=labels["note_unreadable"])


def _adopt_v3_namespace(root: Any) -> None:
    """Put a ``<ClinicalDocument>`` written without its namespace (as in many guide examples)
    into urn:hl7-org:v3, so it is laid out like any CDA document."""
    for element in root.iter():
        if isinstance(element.tag, str) and not element.tag.startswith("{"):
            element.tag = f"{{{V3}}}{element.tag}"


def _pretty_xml(root: Any) -> str:
    copy = deepcopy(root)
    etree.indent(copy)
    return str(etree.tostring(copy, encoding="unicode"))


_transforms = threading.local()


def _cda_transform() -> Any:
    """Carnet's CDA stylesheet, compiled once per thread (the portal serves from a pool)."""
    transform = getattr(_transforms, "cda", None)
    if transform is None:
        source = resources.files("carnet.portal").joinpath("cda.xsl").read_bytes()
        transform = compiled_stylesheet(source)
        _transforms.cda = transform
    return transform


def compiled_stylesheet(source: bytes) -> Any:
    """An XSLT stylesheet ready to run: it may read no file and no URL (``document()``,
    ``xsl:import``), write nothing, and call ``carnet:timestamp()``."""
    return etree.XSLT(
        parse_xml(source),
        # lxml calls a plain function as an XPath extension; types-lxml types only elements.
        extensions={(_EXTENSIONS, "timestamp"): _xslt_timestamp},  # type: ignore[dict-item]
        access_control=etree.XSLTAccessControl.DENY_ALL,
    )


def _xslt_timestamp(_context: Any, value: Any, language: Any) -> str:
    return readable_timestamp(str(value), str(language))


def _render_cda(root: Any, language: str) -> Markup:
    parameters = {
        f"label_{key}": etree.XSLT.strparam(text)
        for key, text in labels_of(language).items()
        if not key.startswith(("note_", "status_"))
    }
    parameters["language"] = etree.XSLT.strparam(language)
    parameters["embedded_text"] = etree.XSLT.strparam(_embedded_text(root))
    result = _cda_transform()(root.getroottree(), **parameters)
    article = result.getroot()
    if article is None:
        raise ValueError("the stylesheet produced nothing")
    return serialized(rebuilt(article, narrative=False))


_XML_UNSAFE_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _embedded_text(root: Any) -> str:
    """The text of a base64 ``text/plain`` nonXMLBody (XSLT 1.0 cannot decode base64)."""
    body = root.find(f"{{{V3}}}component/{{{V3}}}nonXMLBody/{{{V3}}}text")
    if body is None or (body.get("representation") or "").upper() != "B64":
        return ""
    media = (body.get("mediaType") or "text/plain").strip().lower()
    if not media.startswith("text/plain") or body.get("compression"):
        return ""
    try:
        decoded = base64.b64decode("".join((body.text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        return ""
    return _XML_UNSAFE_CHARACTERS.sub("", decoded.decode("utf-8", errors="replace"))
