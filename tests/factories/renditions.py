"""Renditions read back by a browser-like parser: text, headings, and nothing active in them."""

from __future__ import annotations

from typing import Any

from lxml import html

from carnet.portal.document_rendition import Rendition


def rendered(rendition: Rendition) -> Any:
    """The rendition's HTML as a browser would read it, after checking it is inert."""
    assert rendition.kind == "html", rendition
    assert rendition.html is not None
    assert_inert(str(rendition.html))
    root = html.fragment_fromstring(str(rendition.html))
    assert root.tag == "article"
    assert "rendered-document" in root.get("class", "").split()
    return root


def assert_inert(markup: str) -> None:
    """No script, event handler, inline style, URL or embedded object anywhere."""
    root = html.fragment_fromstring(markup, create_parent="div")
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        assert element.tag not in {"script", "style", "iframe", "object", "embed", "img", "a"}
        for attribute in element.attrib:
            assert not attribute.lower().startswith("on"), (element.tag, attribute)
            assert attribute.lower() not in {"style", "href", "src", "srcdoc", "action"}
    assert "javascript:" not in markup.lower()


def text_of(root: Any) -> str:
    return " ".join(root.text_content().split())


def headings(root: Any) -> list[str]:
    return [
        " ".join(h.text_content().split()) for h in root.iter("h1", "h2", "h3", "h4", "h5", "h6")
    ]
