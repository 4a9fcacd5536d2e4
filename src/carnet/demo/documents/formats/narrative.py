"""Section narrative as XML elements, shared by the FHIR XHTML ``div`` and the CDA ``text``.

Both standards want the human-readable section as paragraphs and an HTML-like table; one
writer keeps the two formats showing the same words.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # builds documents only; nothing is parsed
from typing import Final

from carnet.demo.documents.model import Section

_XHTML: Final = "http://www.w3.org/1999/xhtml"


def append_narrative(parent: ET.Element, section: Section, paragraph_tag: str) -> None:
    """Append a section's paragraphs and table as XHTML-like narrative elements."""
    for text in section.paragraphs:
        ET.SubElement(parent, paragraph_tag).text = text
    if section.table is None:
        return
    table = ET.SubElement(parent, "table")
    head_row = ET.SubElement(ET.SubElement(table, "thead"), "tr")
    for text in section.table.header:
        ET.SubElement(head_row, "th").text = text
    body = ET.SubElement(table, "tbody")
    for row in section.table.rows:
        tr = ET.SubElement(body, "tr")
        for text in row:
            ET.SubElement(tr, "td").text = text


def xhtml_div(section: Section) -> str:
    """FHIR narrative ``div`` of a section."""
    div = ET.Element("div", {"xmlns": _XHTML})
    append_narrative(div, section, "p")
    return ET.tostring(div, encoding="unicode")
