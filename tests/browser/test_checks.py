"""The browser tests' own checks catch what they are there for (a check that cannot fail is
worth nothing): axe-core's serious violations, CSP refusals, pages wider than a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import Route

from browser.conftest import PHONE, Accessible, Pages

# An unlabelled field, an image without text, an inline style and a block wider than a phone.
_CARELESS_PAGE = """<!doctype html>
<html><head><meta name="viewport" content="width=device-width"><title>Careless</title></head>
<body><main><img src="/x.png"><input type="text" name="q">
<p style="color: red">inline</p><div id="wide">wide</div></main></body></html>"""


def _serve_careless_page(route: Route) -> None:
    route.fulfill(
        status=200,
        headers={"Content-Security-Policy": "default-src 'self'; style-src 'self'"},
        content_type="text/html; charset=utf-8",
        body=_CARELESS_PAGE,
    )


def test_checks_catch_a_careless_page(pages: Pages, accessible: Accessible) -> None:
    page = pages.open(PHONE)
    page.route("**/careless", _serve_careless_page)
    page.goto("/careless")
    # Through the CSSOM, which the CSP allows (unlike the style attribute above).
    page.evaluate("document.getElementById('wide').style.width = '900px'")

    with pytest.raises(AssertionError) as failure:
        accessible(page, "careless")
    pages.check_fits_phone(page)
    problems = "\n".join(pages.problems())
    # Found, then forgotten: this page is careless on purpose, the test must not fail for it.
    pages.csp_refusals.clear()
    pages.too_wide.clear()

    assert "image-alt (critical)" in str(failure.value)
    assert "label (critical)" in str(failure.value)
    assert "Content-Security-Policy refusals" in problems
    assert "<div id=wide> ends at 9" in problems
