"""How hostile document content is made safe to show: the XML parser and the HTML allow-list.

A clinical document comes from outside Carnet and is treated as hostile. XML is parsed with
entities unresolved, no network and no DTD loading, and a document that declares a DTD at all is
refused (XXE, entity expansion). Every HTML rendition — CDA laid out by Carnet's stylesheet,
a FHIR narrative, Carnet's own template — is rebuilt element by element from an allow-list
before it reaches a page, so no ``<script>``, event attribute, ``style`` attribute or URL
(``href``/``src``) can come out, whatever a stylesheet, template or narrative did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Final

from lxml import etree, html
from markupsafe import Markup

XHTML: Final = "http://www.w3.org/1999/xhtml"


class DtdRefused(Exception):
    """The XML declares a DTD: Carnet reads no DTD and expands no entity."""


_DOCTYPE_MARKERS: Final = tuple(
    "<!DOCTYPE".encode(encoding) for encoding in ("utf-8", "utf-16-le", "utf-16-be")
)


def parse_xml(content: bytes) -> Any:
    """The root element of ``content``, parsed without entities, network or DTD.

    Raises ``etree.XMLSyntaxError`` for malformed XML and ``DtdRefused`` for a DTD.
    """
    # Refused before libxml2 reads the internal subset at all; the check after parsing
    # catches a declaration in an encoding this byte search does not see.
    if any(marker in content for marker in _DOCTYPE_MARKERS):
        raise DtdRefused
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
    )
    root = etree.fromstring(content, parser)
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise DtdRefused
    return root


# Elements kept (without any attribute but those below); everything else is unwrapped (its text
# kept) or, for the ones listed after, dropped with its content.
_KEPT_ELEMENTS: Final = frozenset(
    {
        "article", "section", "header", "div", "p", "span", "br", "hr", "pre", "blockquote",
        "address", "strong", "b", "em", "i", "u", "s", "sub", "sup", "small", "big", "code",
        "tt", "kbd", "samp", "var", "cite", "q", "abbr", "acronym", "dfn", "del", "ins",
        "ul", "ol", "li", "dl", "dt", "dd", "table", "caption", "thead", "tbody", "tfoot", "tr",
        "th", "td", "h1", "h2", "h3", "h4", "h5", "h6",
    }
)  # fmt: skip


_DROPPED_ELEMENTS: Final = frozenset(
    {
        "script", "style", "template", "noscript", "iframe", "frame", "frameset", "noframes",
        "object", "embed", "applet", "param", "form", "input", "button", "select", "option",
        "optgroup", "textarea", "label", "fieldset", "link", "meta", "base", "head", "title",
        "svg", "math", "audio", "video", "source", "track", "canvas", "map", "area",
        "picture", "dialog", "slot", "xmp", "plaintext", "col", "colgroup",
    }
)  # fmt: skip


_HEADINGS: Final = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})


_SCOPES: Final = frozenset({"row", "col", "rowgroup", "colgroup"})


_CLASS = re.compile(r"[a-z][a-z0-9-]{0,40}")


_SHOWN_URL = re.compile(r"(?i)(https?|mailto|tel):\S+")


@dataclass(frozen=True)
class _Cleaning:
    """How a tree is rebuilt: a FHIR narrative (``narrative``: headings demoted so the page's
    outline holds, tables wrapped, no classes of its own) or Carnet's own rendition."""

    narrative: bool
    image_label: str
    in_thead: bool = False


def rebuilt(source: Any, *, narrative: bool, image_label: str = "") -> Any:
    """A new element holding only the allowed parts of ``source`` (which stays untouched)."""
    holder = etree.Element("div")
    _copy_node(holder, source, _Cleaning(narrative=narrative, image_label=image_label))
    if len(holder) == 1 and not (holder.text or "").strip() and not (holder[0].tail or "").strip():
        only = holder[0]
        only.tail = None
        return only
    return holder


def _copy_children(target: Any, source: Any, cleaning: _Cleaning) -> None:
    _append_text(target, source.text)
    for child in source:
        _copy_node(target, child, cleaning)
        _append_text(target, child.tail)


def _copy_node(target: Any, source: Any, cleaning: _Cleaning) -> None:
    if not isinstance(source.tag, str):
        return  # comments, processing instructions, entity references
    name = etree.QName(source)
    tag = name.localname.lower()
    if name.namespace not in (None, XHTML) or tag in _DROPPED_ELEMENTS:
        return
    if tag == "a":
        _copy_children(target, source, cleaning)
        href = (source.get("href") or "").strip()
        if _SHOWN_URL.fullmatch(href) and href != "".join(source.itertext()).strip():
            _append_text(target, " ")
            etree.SubElement(target, "span", {"class": "doc-link-url"}).text = f"({href})"
        return
    if tag == "img":
        alt = " ".join((source.get("alt") or "").split())
        placeholder = etree.SubElement(target, "span", {"class": "doc-placeholder"})
        # Images are never loaded from a narrative (external ones would leak the visit).
        placeholder.text = (
            f"[{cleaning.image_label}: {alt}]" if alt else f"[{cleaning.image_label}]"
        )
        return
    if cleaning.narrative and tag in _HEADINGS:
        # A narrative's own headings would break the page's outline: shown as strong lines.
        paragraph = etree.SubElement(target, "p", {"class": "doc-narrative-heading"})
        _copy_children(etree.SubElement(paragraph, "strong"), source, cleaning)
        return
    if tag not in _KEPT_ELEMENTS:
        _copy_children(target, source, cleaning)
        return
    if cleaning.narrative and tag == "table":
        target = etree.SubElement(target, "div", {"class": "table-wrap"})
    if cleaning.narrative and tag == "td" and cleaning.in_thead:
        tag = "th"
    element = etree.SubElement(target, tag)
    _copy_attributes(element, source, cleaning)
    if tag in {"thead", "tbody", "tfoot", "table"}:
        cleaning = replace(cleaning, in_thead=tag == "thead")
    _copy_children(element, source, cleaning)


def _copy_attributes(element: Any, source: Any, cleaning: _Cleaning) -> None:
    tag = element.tag
    if tag in {"td", "th"}:
        for span in ("colspan", "rowspan"):
            value = (source.get(span) or "").strip()
            if value.isdigit() and 1 <= int(value) <= 1000:
                element.set(span, str(int(value)))
    if tag == "th":
        scope = (source.get("scope") or "").strip().lower()
        if scope in _SCOPES:
            element.set("scope", scope)
        elif cleaning.narrative:
            element.set("scope", "col" if cleaning.in_thead else "row")
    if not cleaning.narrative:
        classes = [c for c in (source.get("class") or "").split() if _CLASS.fullmatch(c)]
        if classes:
            element.set("class", " ".join(classes))


def _append_text(target: Any, text: str | None) -> None:
    if not text:
        return
    if len(target):
        target[-1].tail = (target[-1].tail or "") + text
    else:
        target.text = (target.text or "") + text


def serialized(element: Any) -> Markup:
    """An element rebuilt by ``rebuilt`` as HTML markup a template may insert unescaped."""
    return Markup(str(etree.tostring(element, method="html", encoding="unicode")))  # noqa: S704  # rebuilt from the allow-list above


def verified(rendered: str) -> Markup:
    """Carnet's own rendition, read back and rebuilt from the allow-list: whatever a template
    or a narrative let through, no script, event attribute, style or URL leaves here."""
    root = html.fragment_fromstring(rendered.strip())
    return serialized(rebuilt(root, narrative=False))
