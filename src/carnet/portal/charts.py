"""Charts drawn on the server as SVG by pygal and inlined in a portal page.

The pages' CSP refuses inline ``<style>`` and ``<script>``, and pygal puts both in every SVG;
they are taken out (``inline_svg``) and the portal's CSS styles pygal's classes instead, so
``_STYLE`` only gives pygal the font sizes it lays text out with, and names the colours the CSS
uses. Every chart sits in a ``<figure>`` with its caption and a table of the same numbers.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from markupsafe import Markup
from pygal.style import Style  # type: ignore[import-untyped]

from carnet.portal.visits import Visit

_SVG = "http://www.w3.org/2000/svg"
ET.register_namespace("", _SVG)
ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
# carnet.css's palette: --brand, --ok, --ink, --ink-soft, --line, --paper.
_STYLE = Style(
    font_family='system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif',
    background="transparent",
    plot_background="#ffffff",
    foreground="#1b1f24",
    foreground_strong="#1b1f24",
    foreground_subtle="#4a5360",
    guide_stroke_color="#c9d0d9",
    major_guide_stroke_color="#c9d0d9",
    colors=("#0b5cab", "#1d6b35"),
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
    value_font_size=12,
    tooltip_font_size=12,
    title_font_size=14,
)


def chart_options(visit: Visit, *, width: int, height: int) -> dict[str, Any]:
    return {
        "style": _STYLE,
        # The drawing's own size: the SVG then scales to its box, text with it.
        "width": width,
        "height": height,
        # Dates are short enough; pygal would shorten them to "…" when there are many.
        "truncate_label": -1,
        # Never a script from elsewhere (pygal's default tooltips load one from a CDN).
        "js": [],
        "no_prefix": True,
        "disable_xml_declaration": True,
        "explicit_size": False,
        "margin": 12,
        "value_formatter": visit.formats.number,
    }


def inline_svg(chart: Any, labelled_by: str) -> Markup:
    """The chart's SVG, ready to sit in the page under its CSP.

    Out go pygal's ``<defs>`` (an inline ``<style>`` and ``<script>``, both refused by the CSP),
    its comments (dropped by the parser), its title ("Pygal") and the tooltip layer its script
    would have driven. The SVG becomes one image named by its figure's caption.
    """
    svg = str(chart.render(is_unicode=True))
    root = ET.fromstring(svg)  # noqa: S314 — pygal's own output, never outside input
    for child in list(root):
        if child.tag in (f"{{{_SVG}}}defs", f"{{{_SVG}}}title"):
            root.remove(child)
    for parent in list(root.iter()):
        for child in list(parent):
            if "tooltip-overlay" in child.get("class", ""):
                parent.remove(child)
    root.attrib.pop("id", None)
    root.set("role", "img")
    root.set("aria-labelledby", labelled_by)
    root.set("focusable", "false")
    text = ET.tostring(root, encoding="unicode")
    return Markup(text)  # noqa: S704 — serialised from the tree above, built from escaped data
