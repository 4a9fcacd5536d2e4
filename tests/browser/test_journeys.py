"""The journeys of issue 7's acceptance, in headless Chromium against a served Carnet.

Each drives the pages only, by labels and roles, as its person would, in a browser context of
their own (two people, two devices); the seeding in ``cast.py`` is the only shortcut. Each saves
screenshots of its key steps at desktop and phone sizes, and runs axe-core on the main pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from playwright.sync_api import Locator, Page, expect

from browser.cast import (
    ALLERGY,
    BLOOD_GROUP,
    LAB_REPORT_TEXT,
    LAB_REPORT_TITLE,
    Person,
    publish_lab_report,
)
from browser.conftest import PHONE, Accessible, Pages, ServedCarnet, Shot
from browser.signing_in import sign_in_operator, sign_in_patient, sign_in_with_card

EMERGENCY_REASON = "Unconscious after a road accident; allergies and treatments needed now."


@dataclass
class Clicks:
    """Counts the clicks a person makes (typing is not a click; pressing a button is)."""

    count: int = 0

    def on(self, target: Locator) -> None:
        """Click ``target`` and count it."""
        target.click()
        self.count += 1


def _find_patient(page: Page, patient: Person, clicks: Clicks) -> None:
    """From "Find a patient": type the national identifier and search (one click)."""
    page.get_by_label("Luxembourg matricule or French NIR").fill(patient.identifier)
    clicks.on(page.get_by_role("button", name="Search", exact=True))


def _open_in_navigation(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def _expect_essential_data(page: Page) -> None:
    """The patient page opens on the essential data: the allergy and blood group recorded."""
    essential = page.get_by_role("region", name="Essential data")
    expect(essential.get_by_role("group", name="Allergies and intolerances")).to_contain_text(
        ALLERGY
    )
    expect(essential.get_by_role("group", name="Blood group")).to_contain_text(BLOOD_GROUP)


def _read_lab_report(page: Page) -> None:
    """From a page listing the report, open it; its text is on the page."""
    page.get_by_role("link", name=LAB_REPORT_TITLE).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(LAB_REPORT_TITLE)
    expect(page.get_by_text(LAB_REPORT_TEXT)).to_be_visible()


def test_patient_activates_reads_grants_and_sees_the_gp_consult(
    pages: Pages, carnet: ServedCarnet, shot: Shot, accessible: Accessible
) -> None:
    patient, gp = carnet.cast.invited, carnet.cast.gp
    page = pages.open()
    sign_in_patient(page, patient, carnet.codes)

    # The letter's code activates the dossier.
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Hello, {patient.name}")
    shot(page, "1-home-invited")
    page.get_by_role("link", name="Activate the dossier").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dossier settings")
    shot(page, "2-dossier-settings")
    page.get_by_label("Activation code").fill(carnet.cast.activation_code)
    page.get_by_role("button", name="Activate", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Your dossier is active")).to_be_visible()
    accessible(page, "patient-home")

    # A lab report arrives; the patient finds it in the timeline and reads it.
    publish_lab_report(carnet.settings, patient, carnet.cast.biologist)
    _open_in_navigation(page, "Documents")
    shot(page, "3-timeline")
    accessible(page, "timeline")
    _read_lab_report(page)
    shot(page, "4-lab-report")
    accessible(page, "viewer")

    # The patient grants their GP access, found in the directory.
    _open_in_navigation(page, "Who has access")
    page.get_by_label("Name or identifier").fill(gp.family)
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_role("button", name=f"Grant access to {gp.name}").click()
    granted = page.get_by_role("region", name="Access you granted")
    expect(granted.get_by_role("listitem").filter(has_text=gp.name)).to_be_visible()
    shot(page, "5-access")
    accessible(page, "access")

    # Meanwhile, on the GP's computer: they find the patient and read the report.
    doctor = pages.open()
    sign_in_with_card(doctor, gp)
    _find_patient(doctor, patient, Clicks())
    expect(doctor.get_by_role("heading", level=1)).to_have_text(patient.name)
    _read_lab_report(doctor)
    shot(doctor, "6-gp-reads-the-report")

    # The patient sees that consultation in the access history.
    _open_in_navigation(page, "Access history")
    consultation = page.get_by_role("row").filter(has_text=gp.name)
    expect(consultation.filter(has_text="Opened a document").first).to_be_visible()
    shot(page, "7-history")
    accessible(page, "history")


def test_gp_opens_a_document_within_three_clicks_of_signing_in(
    pages: Pages, carnet: ServedCarnet, shot: Shot, accessible: Accessible
) -> None:
    gp, patient = carnet.cast.gp, carnet.cast.followed
    page = pages.open()
    sign_in_with_card(page, gp)
    clicks = Clicks()

    expect(page.get_by_role("heading", level=1)).to_have_text("Find a patient")
    shot(page, "1-find-a-patient")
    accessible(page, "find-a-patient")
    _find_patient(page, patient, clicks)
    landed = page.get_by_role("heading", name=re.compile(f"^({patient.name}|Patients found)$"))
    expect(landed).to_be_visible()
    if landed.inner_text() == "Patients found":
        # The search listed the patient rather than going straight to their page.
        clicks.on(page.get_by_role("link", name=re.compile(patient.family)))
    expect(page.get_by_role("heading", level=1)).to_have_text(patient.name)
    _expect_essential_data(page)
    shot(page, "2-patient")
    accessible(page, "patient-page")
    clicks.on(page.get_by_role("link", name=LAB_REPORT_TITLE).first)

    expect(page.get_by_role("heading", level=1)).to_have_text(LAB_REPORT_TITLE)
    expect(page.get_by_text(LAB_REPORT_TEXT)).to_be_visible()
    assert clicks.count <= 3, f"the document took {clicks.count} clicks after signing in"
    shot(page, "3-document")
    accessible(page, "viewer")


def test_emergency_physician_breaks_the_glass_and_the_patient_is_told(
    pages: Pages, carnet: ServedCarnet, shot: Shot, accessible: Accessible
) -> None:
    physician, patient = carnet.cast.emergency_physician, carnet.cast.injured
    page = pages.open()
    sign_in_with_card(page, physician)

    _find_patient(page, patient, Clicks())
    expect(page.get_by_role("heading", level=1)).to_have_text("No access to this dossier")
    shot(page, "1-no-access")
    page.get_by_role("link", name="Open in an emergency").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Emergency access")
    shot(page, "2-break-the-glass-form")
    accessible(page, "break-the-glass")
    page.get_by_label("Reason for emergency access").fill(EMERGENCY_REASON)
    page.get_by_label(re.compile("I confirm this is an emergency")).check()
    page.get_by_role("button", name="Open the dossier in an emergency").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(patient.name)
    expect(page.get_by_role("alert").filter(has_text="EMERGENCY ACCESS")).to_be_visible()
    _expect_essential_data(page)
    expect(page.get_by_role("link", name=LAB_REPORT_TITLE).first).to_be_visible()
    shot(page, "3-patient-in-emergency")

    # The patient, on their phone, finds the notice of the emergency access.
    phone = pages.open(PHONE)
    sign_in_patient(phone, patient, carnet.codes)
    phone.get_by_role("link", name=re.compile("unread notification")).click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Notifications")
    notice = phone.locator("li").filter(has=phone.get_by_text("Emergency access", exact=True))
    expect(notice.first).to_be_visible()
    expect(notice.first).to_contain_text(physician.family)
    shot(phone, "4-patient-notified")
    accessible(phone, "notifications")


def test_operator_sees_the_indicators_with_their_charts(
    pages: Pages, carnet: ServedCarnet, shot: Shot, accessible: Accessible
) -> None:
    page = pages.open()
    sign_in_operator(page, carnet.cast.operator, carnet.codes)

    expect(page.get_by_role("heading", level=1)).to_have_text("Indicators")
    for section in ("Dossiers", "Activity", "Documents by type"):
        expect(page.get_by_role("region", name=section, exact=True)).to_be_visible()
    charts = page.locator("figure.chart")
    expect(charts).to_have_count(2)
    for index in range(2):
        expect(charts.nth(index).locator("svg")).to_be_visible()
        expect(charts.nth(index).locator("figcaption")).not_to_be_empty()
    by_type = page.get_by_role("table", name="Documents by type")
    expect(by_type.get_by_role("row").filter(has_text="Laboratory")).to_be_visible()
    shot(page, "1-indicators")
    accessible(page, "agency-indicators")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download these indicators (CSV)").click()
    exported = download.value.path().read_text(encoding="utf-8")
    assert exported.splitlines()[0] == "indicator,key,value", exported[:200]
