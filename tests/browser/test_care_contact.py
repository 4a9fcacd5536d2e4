"""Issue 21's care-contact journey: the patient in front of their GP gives a one-time code from
their phone; the GP, who had no access, types it and reads a document — in at most four clicks
after signing in. The patient then sees the window on their access page and can end it.

Each key step is saved at 360x740 (phone) and 1366x768 (laptop), under ``docs/screens/`` with
``CARNET_UPDATE_SCREENS=1`` (``make screens``), as in ``test_phone_first``.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from browser.cast import LAB_REPORT_TITLE, OneTimeCodes, Person
from browser.conftest import PHONE, Accessible, Pages, ServedCarnet
from browser.signing_in import sign_in_patient, sign_in_with_card
from browser.test_journeys import Clicks
from browser.test_phone_first import LAPTOP, SCREENS, _screens


def _code_from_the_patients_phone(
    pages: Pages, patient: Person, codes: OneTimeCodes, accessible: Accessible
) -> tuple[Page, str]:
    """The patient signs in on their phone and asks for a code: its eight digits."""
    phone = pages.open(PHONE)
    sign_in_patient(phone, patient, codes)
    phone.goto("/portal/patient/access")
    phone.get_by_role("button", name="Give a code to a professional").click()
    shown = phone.get_by_role("status").filter(has_text="Your code for the professional")
    expect(shown).to_be_visible()
    pages.check_fits_phone(phone)
    accessible(phone, "care-contact-code-phone")
    SCREENS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=Path(SCREENS, "care-contact-code-phone.png"), full_page=True)
    code = re.sub(r"\D", "", shown.locator(".care-code").inner_text())
    assert len(code) == 8, code
    return phone, code


def test_the_gp_reads_a_document_with_the_patient_present_in_four_clicks(
    pages: Pages, carnet: ServedCarnet, accessible: Accessible
) -> None:
    gp, patient = carnet.cast.gp, carnet.cast.injured
    phone, code = _code_from_the_patients_phone(pages, patient, carnet.codes, accessible)

    page = pages.open(LAPTOP)
    sign_in_with_card(page, gp)
    clicks = Clicks()
    page.get_by_label("Luxembourg matricule or French NIR").fill(patient.identifier)
    clicks.on(page.get_by_role("button", name="Search", exact=True))
    expect(page.get_by_role("heading", level=1)).to_have_text("No access to this dossier")
    care = page.get_by_role("region", name="The patient is with you")
    expect(care).to_be_visible()
    accessible(page, "care-contact-no-access")
    _screens(pages, page, "care-contact-no-access")

    # A mistyped code is said on the page, and what was typed stays in the field.
    care.get_by_label("The patient's code").fill("0000 0000")
    care.get_by_role("button", name="Record the care contact and open the dossier").click()
    expect(page.get_by_role("alert")).to_contain_text("The patient's code is wrong or expired.")
    expect(care.get_by_label("The patient's code")).to_have_value("0000 0000")
    care.get_by_label("The patient's code").fill(f"{code[:4]} {code[4:]}")
    clicks.on(care.get_by_role("button", name="Record the care contact and open the dossier"))

    expect(page.get_by_role("heading", level=1)).to_have_text(patient.name)
    expect(page.get_by_role("status")).to_contain_text("Care contact recorded")
    accessible(page, "care-contact-patient")
    _screens(pages, page, "care-contact-patient")
    patient_page = page.url
    clicks.on(page.get_by_role("link", name=LAB_REPORT_TITLE).first)
    expect(page.get_by_role("heading", level=1)).to_have_text(LAB_REPORT_TITLE)
    assert clicks.count <= 4, f"the document took {clicks.count} clicks after signing in"
    _screens(pages, page, "care-contact-document")

    # The patient sees the window on their access page, and ends it.
    phone.goto("/portal/patient/access")
    contacts = phone.get_by_role("region", name="Care contacts")
    expect(contacts).to_contain_text(gp.name)
    pages.check_fits_phone(phone)
    accessible(phone, "care-contact-window-phone")
    _screens(pages, phone, "care-contact-window")
    contacts.get_by_role("button", name=f"End the care contact of {gp.name} now").click()
    expect(phone.get_by_role("status")).to_have_text("The care contact has ended.")
    page.goto(patient_page)
    expect(page.get_by_role("heading", level=1)).to_have_text("No access to this dossier")
