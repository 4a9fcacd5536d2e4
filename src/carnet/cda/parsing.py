"""Reading a clinical document's XML without trusting it.

A CDA document comes from outside Carnet: it is parsed with no network, no DTD and no entity
expansion (a DOCTYPE is refused before libxml2 reads it: the "billion laughs" and external
entities live there), within libxml2's default limits (``huge_tree`` off: depth and text-node
size bounded) and under a byte limit of Carnet's own.
"""

from __future__ import annotations

import re
from typing import Any, Final

from lxml import etree

from carnet.cda.errors import CdaRefused

V3: Final = "urn:hl7-org:v3"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"

# The MIME types a CDA document travels under (IHE XDS and MHD say text/xml; senders also use
# these). Any other XML type is XML Carnet keeps as it is.
CDA_MIME_TYPES: Final = frozenset(
    {
        "text/xml",
        "application/xml",
        "application/hl7-v3+xml",
        "application/cda+xml",
        "application/hl7-cda+xml",
    }
)
# A CDA larger than this is no clinical document a person reads: refused before parsing (the
# embedded PDFs of the HL7 examples are a few hundred kilobytes).
LARGEST_CDA: Final = 32 * 1024 * 1024
# Where the root element's name is looked for when the XML is not well-formed (after the XML
# declaration, stylesheet instructions and the long comments guide examples open with).
_SNIFFED: Final = 16 * 1024
# A start tag named ClinicalDocument, with or without a namespace prefix.
_CLINICAL_DOCUMENT_TAG: Final = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?ClinicalDocument[\s>/]")
_DOCTYPE_MARKERS: Final = (b"<!DOCTYPE", b"<!doctype", b"<\x00!\x00D\x00O\x00C\x00T\x00")


def media_type(mime_type: str) -> str:
    """The type/subtype of a MIME type, lower case, without parameters."""
    return mime_type.split(";", 1)[0].strip().lower()


def claims_cda(mime_type: str, content: bytes) -> bool:
    """Whether these bytes present themselves as a CDA document: an XML type with a
    ``ClinicalDocument`` start tag early on (in any namespace, or none: ``parse`` then refuses
    what is not a CDA R2 document rather than let it pass as some other XML)."""
    if media_type(mime_type) not in CDA_MIME_TYPES:
        return False
    return _CLINICAL_DOCUMENT_TAG.search(content, 0, _SNIFFED) is not None


def parse(content: bytes) -> Any:
    """The root element of a clinical document; ``CdaRefused`` if it cannot be read safely."""
    if len(content) > LARGEST_CDA:
        raise CdaRefused(
            f"The CDA document is {len(content)} bytes; Carnet reads at most {LARGEST_CDA}.",
            reason="too-large",
        )
    if any(marker in content for marker in _DOCTYPE_MARKERS):
        raise CdaRefused("The CDA document has a DOCTYPE, which Carnet never reads.", reason="dtd")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as error:
        raise CdaRefused(
            f"The CDA document is not well-formed XML: {error.msg}.", reason="not-xml"
        ) from error
    docinfo = root.getroottree().docinfo
    # A DOCTYPE in an encoding the byte search above does not see is caught here.
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise CdaRefused("The CDA document has a DOCTYPE, which Carnet never reads.", reason="dtd")
    name = etree.QName(root)
    if name.localname != "ClinicalDocument":
        raise CdaRefused(
            f"The root element is {name.localname}, not ClinicalDocument.", reason="structure"
        )
    if name.namespace != V3:
        raise CdaRefused(
            "The ClinicalDocument is not in the CDA namespace urn:hl7-org:v3 "
            f"(it is in {name.namespace or 'no namespace'}).",
            reason="namespace",
        )
    return root


def v3(path: str) -> str:
    """An ElementPath in the CDA namespace: ``v3("component/nonXMLBody")``."""
    return "/".join(
        f"{{{V3}}}{step}" if step not in (".", "..") else step for step in path.split("/")
    )
