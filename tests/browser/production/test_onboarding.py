"""Onboarding in Chromium on a Carnet without the demo: from the letter, and by invitation.

A patient enrolled from the insurer's file (``carnet enrol``) reads the code in their letter,
creates their account with a password and a passkey (Chromium's virtual authenticator, through
the DevTools protocol), finds their dossier open, signs out and signs in with the passkey alone
to their documents. A professional invited by the agency (``carnet professionals invite``)
follows the link, creates their account with a passkey, and signs in to the professional portal.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from browser.conftest import Pages, Shot
from browser.production.conftest import ProductionCarnet
from browser.signing_in import open_sign_in_page
from carnet.clock import SystemClock
from carnet.db import make_engine, session_factory, unit_of_work
from carnet.directory import service as directory
from carnet.directory.models import Profession
from carnet.patients import identifiers
from carnet.patients.models import Dossier, DossierState
from carnet.patients.service import find_patient
from factories.lifecycle import registry_csv, registry_row
from factories.pdf import content_streams

PASSWORD = "lantern river quietly"
BORN = dt.date(1984, 3, 9)


def _virtual_authenticator(page: Page) -> None:
    """A platform authenticator holding discoverable passkeys, the user verified each time."""
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable", {"enableUI": False})
    devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )


def _code_in_letter(letters: Path) -> str:
    """The activation code printed in the (only) letter, read from the PDF's drawn text."""
    [pdf] = list(letters.glob("*.pdf"))
    text = b" ".join(content_streams(pdf.read_bytes())).decode("latin-1")
    found = re.search(r"\(([2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4})\)", text)
    assert found is not None, "no activation code in the letter"
    return found.group(1)


def _create_account_with_passkey(page: Page) -> None:
    form = page.get_by_role("region", name="With a passkey")
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_label("The same password again").fill(PASSWORD)
    form.get_by_role("button", name="Create my account with a passkey").click()


def test_a_patient_enrolled_from_the_file_onboards_with_the_letter_and_a_passkey(
    pages: Pages, carnet: ProductionCarnet, shot: Shot, tmp_path: Path
) -> None:
    row = registry_row(born=BORN, given="Noémie", family="Hoffmann")
    registry = tmp_path / "registry.csv"
    registry.write_text(registry_csv([row]), encoding="utf-8")
    letters = tmp_path / "letters"
    letters.mkdir()
    carnet.run("enrol", str(registry), "--letters", str(letters))
    code = _code_in_letter(letters)

    page = pages.open()
    _virtual_authenticator(page)
    open_sign_in_page(page)
    page.get_by_role("link", name="First time? Use your invitation letter").click()
    page.get_by_label("National identifier (matricule or NIR)").fill(row["national_identifier"])
    page.get_by_label("Day").fill(str(BORN.day))
    page.get_by_label("Month").fill(str(BORN.month))
    page.get_by_label("Year").fill(str(BORN.year))
    page.get_by_label("The code in your letter").fill(code)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="With a passkey")).to_be_visible()
    shot(page, "1-account-creation", twin=False)
    _create_account_with_passkey(page)
    page.wait_for_url(re.compile(r"/portal/patient"))
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("Noémie Hoffmann"))
    assert _dossier_state(carnet, row["national_identifier"]) is DossierState.ACTIVE

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/portal\?signed-out=1"))
    open_sign_in_page(page)
    page.get_by_role("region", name="Sign in with a passkey").get_by_role(
        "button", name="Sign in with a passkey"
    ).click()
    page.wait_for_url(re.compile(r"/portal/patient"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Documents").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("Documents"))
    shot(page, "2-documents-after-passkey", twin=False)


def test_an_invited_professional_onboards_with_a_passkey(
    pages: Pages, carnet: ProductionCarnet, shot: Shot
) -> None:
    rpps = identifiers.fr_rpps(424242)
    with _sessions(carnet) as session:
        directory.register_professional(
            session,
            identifier_system=identifiers.FR_RPPS,
            identifier_value=rpps,
            family="Lefèvre",
            given="Claire",
            profession=Profession.GENERAL_PRACTITIONER,
            clock=SystemClock(),
        )
    printed = carnet.run("professionals", "invite", rpps).stdout
    link = re.search(r"http://\S+/oauth/authorize/invitation\?code=\S+", printed)
    assert link is not None, printed

    page = pages.open()
    _virtual_authenticator(page)
    page.goto(link.group(0))
    _create_account_with_passkey(page)
    expect(page.get_by_text("Your account is ready.")).to_be_visible()
    shot(page, "3-professional-account-ready", twin=False)
    page.get_by_role("link", name="Sign in").click()
    page.get_by_role("region", name="Sign in with a passkey").get_by_role(
        "button", name="Sign in with a passkey"
    ).click()
    page.wait_for_url(re.compile(r"/portal/professional"))


def _dossier_state(carnet: ProductionCarnet, matricule: str) -> DossierState:
    with _sessions(carnet) as session:
        found = find_patient(session, identifiers.LU_MATRICULE, matricule)
        assert found is not None
        state = session.scalar(select(Dossier.state).where(Dossier.patient_id == found.id))
        assert state is not None
        return state


@contextmanager
def _sessions(carnet: ProductionCarnet) -> Iterator[Session]:
    """One transaction on the served Carnet's database, from the test's process."""
    engine = make_engine(carnet.settings.database_url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()
