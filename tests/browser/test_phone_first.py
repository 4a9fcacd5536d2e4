"""Issue 21's phone-first journeys: a lab result read on a phone, the patient's access managed
on a phone, the emergency banner on every page of an emergency access.

Each key step is also saved at 360x740 (phone) and 1366x768 (laptop): under ``docs/screens/``,
the screenshots kept with the code, when ``CARNET_UPDATE_SCREENS=1`` (``make screens``); else
under ``test-artifacts/screens/`` so that a test run leaves the repository as it found it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from browser.cast import (
    PDF_LAB_REPORT_LINES,
    PDF_LAB_REPORT_TITLE,
    publish_fhir_record,
    publish_pdf_lab_report,
)
from browser.conftest import PHONE, ROOT, Accessible, Pages, ServedCarnet
from browser.signing_in import sign_in_patient, sign_in_with_card

SCREENS = (
    ROOT / "docs" / "screens"
    if os.environ.get("CARNET_UPDATE_SCREENS") == "1"
    else ROOT / "test-artifacts" / "screens"
)
LAPTOP: dict[str, Any] = {"viewport": {"width": 1366, "height": 768}}
EMERGENCY_REASON = "Found unconscious at home; treatments and allergies needed now."


def _screens(pages: Pages, page: Page, name: str) -> None:
    """``<SCREENS>/<name>-phone.png`` and ``-laptop.png`` of the page's URL; the phone one
    must fit 360 px without scrolling sideways."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    for size, label in ((PHONE, "phone"), (LAPTOP, "laptop")):
        other = pages.open(size)
        other.context.add_cookies(page.context.cookies())  # type: ignore[arg-type]
        other.goto(page.url)
        other.screenshot(path=Path(SCREENS, f"{name}-{label}.png"), full_page=True)
        if label == "phone":
            pages.check_fits_phone(other)


def test_a_lab_result_reads_on_a_phone_without_downloading(
    pages: Pages, carnet: ServedCarnet, accessible: Accessible
) -> None:
    patient = carnet.cast.followed
    publish_pdf_lab_report(carnet.settings, patient, carnet.cast.biologist)
    phone = pages.open(PHONE)
    sign_in_patient(phone, patient, carnet.codes)
    phone.goto("/portal/patient/documents")
    phone.get_by_role("link", name=PDF_LAB_REPORT_TITLE).first.click()
    expect(phone.get_by_role("heading", level=1)).to_have_text(PDF_LAB_REPORT_TITLE)
    # The page is drawn on the server: an image in the page, not a PDF the phone cannot frame.
    drawn = phone.get_by_role("img", name=re.compile(f"Page 1 of 1 of {PDF_LAB_REPORT_TITLE}"))
    expect(drawn).to_be_visible()
    assert phone.locator("iframe").count() == 0
    # The content comes first: the page's image starts within the first screen.
    box = drawn.bounding_box()
    assert box is not None
    assert box["y"] < 740, box
    assert box["x"] + box["width"] <= 360 + 1, box
    phone.get_by_text("Text of page 1").click()
    expect(phone.get_by_text(PDF_LAB_REPORT_LINES[1])).to_be_visible()
    pages.check_fits_phone(phone)
    accessible(phone, "lab-result-phone")
    _screens(pages, phone, "lab-result")


def test_the_patient_grants_revokes_and_blocks_on_a_phone(
    pages: Pages, carnet: ServedCarnet, accessible: Accessible
) -> None:
    patient, biologist = carnet.cast.injured, carnet.cast.biologist
    phone = pages.open(PHONE)
    sign_in_patient(phone, patient, carnet.codes)
    phone.goto("/portal/patient/access")
    # Given and family name, without the accent: the directory still finds her.
    phone.get_by_label("Name or identifier").fill("irene kieffer")
    phone.get_by_role("button", name="Search", exact=True).click()
    phone.get_by_role("button", name=f"Grant access to {biologist.name}").click()
    expect(phone.get_by_role("status")).to_have_text("Access granted.")
    pages.check_fits_phone(phone)
    _screens(pages, phone, "access-granted")
    # Granting again changes the one grant.
    phone.get_by_label("Level").first.select_option("extended")
    phone.get_by_role("button", name=f"Change the access of {biologist.name}").click()
    grants = phone.get_by_role("region", name="Access you granted")
    expect(grants.get_by_role("button", name=re.compile("Revoke the access of"))).to_have_count(1)
    accessible(phone, "access-phone")
    grants.get_by_role("button", name=f"Revoke the access of {biologist.name}").click()
    expect(phone.get_by_role("status")).to_have_text("Access revoked.")
    phone.goto("/portal/patient/access?q=kieffer")
    phone.get_by_role("button", name=f"Block {biologist.name}").click()
    blocks = phone.get_by_role("region", name="Blocked professionals")
    expect(blocks).to_contain_text(biologist.name)
    pages.check_fits_phone(phone)
    _screens(pages, phone, "access-blocked")
    blocks.get_by_role("button", name=f"Lift the block on {biologist.name}").click()
    expect(phone.get_by_role("status")).to_have_text("The block is lifted.")


def test_the_emergency_banner_is_on_every_page_of_the_access(
    pages: Pages, carnet: ServedCarnet, accessible: Accessible
) -> None:
    physician, patient = carnet.cast.emergency_physician, carnet.cast.followed
    page = pages.open(LAPTOP)
    sign_in_with_card(page, physician)
    page.get_by_label("Luxembourg matricule or French NIR").fill(patient.identifier)
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_role("link", name="Open in an emergency").click()
    page.get_by_label("Reason for emergency access").fill(EMERGENCY_REASON)
    page.get_by_label(re.compile("I confirm this is an emergency")).check()
    page.get_by_role("button", name="Open the dossier in an emergency").click()
    banner = page.get_by_role("alert").filter(has_text="EMERGENCY ACCESS")
    header = page.get_by_role("region", name="Patient")

    expect(banner).to_be_visible()
    expect(header).to_contain_text(patient.name)
    _screens(pages, page, "emergency-patient")
    patient_page = page.url
    page.get_by_role("link", name=PDF_LAB_REPORT_TITLE).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(PDF_LAB_REPORT_TITLE)
    expect(banner).to_be_visible()
    expect(header).to_contain_text(patient.name)
    expect(header).to_contain_text(patient.identifier)
    accessible(page, "emergency-document")
    _screens(pages, page, "emergency-document")
    page.goto(f"{patient_page}/upload")
    expect(banner).to_be_visible()
    expect(header).to_contain_text(patient.name)


def test_health_data_and_a_results_chart_in_two_clicks_for_patient_and_doctor(
    pages: Pages, carnet: ServedCarnet, accessible: Accessible
) -> None:
    patient, gp = carnet.cast.followed, carnet.cast.gp
    publish_fhir_record(carnet.settings, patient, gp)
    # The patient, on a phone: "Health data" in the menu, then a result.
    phone = pages.open(PHONE)
    sign_in_patient(phone, patient, carnet.codes)
    phone.get_by_role("link", name="Health data").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Health data")
    vaccinations = phone.get_by_role("region", name="Vaccinations")
    expect(vaccinations).to_contain_text("Tetanus, diphtheria, pertussis")
    expect(phone.get_by_role("region", name="Treatments")).to_be_visible()
    pages.check_fits_phone(phone)
    accessible(phone, "health-phone")
    _screens(pages, phone, "health")
    phone.get_by_role("link", name="PULSE").click()
    expect(phone.get_by_role("img", name="PULSE over time")).to_be_visible()
    pages.check_fits_phone(phone)
    accessible(phone, "result-chart-phone")
    _screens(pages, phone, "result-chart")
    # The GP, from the patient page: the health data, then the same result.
    page = pages.open(LAPTOP)
    sign_in_with_card(page, gp)
    page.get_by_label("Luxembourg matricule or French NIR").fill(patient.identifier)
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(patient.name)
    page.get_by_role("link", name="Treatments, vaccinations and results").click()
    expect(page.get_by_role("region", name="Vaccinations")).to_contain_text("Influenza")
    expect(page.get_by_role("region", name="Patient")).to_contain_text(patient.name)
    page.get_by_role("link", name="PULSE").click()
    expect(page.get_by_role("img", name="PULSE over time")).to_be_visible()
    accessible(page, "result-chart-laptop")
    _screens(pages, page, "professional-result-chart")
