"""The pages anyone sees before signing in: the landing page and Carnet's sign-in page."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from browser.conftest import Accessible, Pages, Shot
from browser.signing_in import open_sign_in_page


def test_landing_page_leads_to_sign_in(page: Page, shot: Shot, accessible: Accessible) -> None:
    page.goto("/portal")

    expect(page.get_by_role("heading", level=1)).to_have_text("Your shared health record")
    shot(page, "landing")
    accessible(page, "landing")
    open_sign_in_page(page)
    for section in ("Patient", "Health professional"):
        expect(page.get_by_role("region", name=section, exact=True)).to_be_visible()
    shot(page, "sign-in")
    accessible(page, "sign-in")


def test_language_is_switchable_with_or_without_javascript(pages: Pages) -> None:
    scripted, plain = pages.open(), pages.open(javascript=False)
    for page in (scripted, plain):
        page.goto("/portal")

    # With JavaScript, choosing is enough; without, the "Change" button sends the choice.
    scripted.get_by_label("Language").select_option("de")
    plain.get_by_label("Language").select_option("fr")
    plain.get_by_role("button", name="Change").click()

    expect(scripted.locator("html")).to_have_attribute("lang", "de")
    expect(plain.locator("html")).to_have_attribute("lang", "fr")


def test_keyboard_reaches_the_content_first(page: Page) -> None:
    page.goto("/portal")

    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")

    expect(page.locator("main")).to_be_focused()
