"""Signing in through the pages, as a person would: the landing page, then Carnet's sign-in page.

Every field is found by its label, every button by its role and name: if a label changes or
stops being attached to its field, these steps fail, as a screen reader user would.
"""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from browser.cast import PASSWORD, PIN, OneTimeCodes, Person


def open_sign_in_page(page: Page) -> None:
    """From the landing page, follow "Sign in" to Carnet's sign-in page."""
    page.goto("/portal")
    page.get_by_role("link", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("Sign in"))


def _section(page: Page, name: str) -> Locator:
    return page.get_by_role("region", name=name, exact=True)


def sign_in_patient(page: Page, patient: Person, codes: OneTimeCodes) -> None:
    """National identifier, password and one-time code; lands on the patient's home."""
    open_sign_in_page(page)
    form = _section(page, "Patient")
    form.get_by_label("National identifier (matricule or NIR)").fill(patient.identifier)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_label("One-time code from your authenticator app").fill(
        codes.code(patient.identifier)
    )
    form.get_by_role("button", name="Sign in as a patient").click()
    page.wait_for_url(re.compile(r"/portal/patient"))


def sign_in_with_card(page: Page, professional: Person) -> None:
    """The professional's card and PIN (strong sign-in); lands on "Find a patient"."""
    open_sign_in_page(page)
    form = _section(page, "Health professional")
    form.get_by_label("Card holder's professional identifier").fill(professional.identifier)
    form.get_by_label("Card PIN").fill(PIN)
    form.get_by_role("button", name="Sign in with the card").click()
    page.wait_for_url(re.compile(r"/portal/professional"))


def sign_in_operator(page: Page, name: str, codes: OneTimeCodes) -> None:
    """An agency operator: name, password and one-time code; lands on the indicators."""
    open_sign_in_page(page)
    form = _section(page, "Agency operator")
    form.get_by_label("Operator name").fill(name)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_label("One-time code").fill(codes.code(name))
    form.get_by_role("button", name="Sign in as an operator").click()
    page.wait_for_url(re.compile(r"/portal/agency"))
