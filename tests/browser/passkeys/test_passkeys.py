"""Passkeys in Chromium, with its virtual authenticator (DevTools protocol, WebAuthn domain).

A patient signed in with password and one-time code adds a passkey on the Security page, signs
out, and signs in again with the passkey alone: no identifier, no password. The authenticator
is Chromium's own (CTAP2, built in, with user verification), driven through
``WebAuthn.addVirtualAuthenticator``, so the page's script, the browser's WebAuthn
implementation and Carnet's verification all run for real.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from browser.conftest import Pages, ServedCarnet, Shot
from browser.signing_in import open_sign_in_page, sign_in_patient


def _virtual_authenticator(page: Page) -> str:
    """A platform authenticator holding discoverable passkeys, the user verified each time."""
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable", {"enableUI": False})
    added = devtools.send(
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
    return str(added["authenticatorId"])


def test_patient_adds_a_passkey_and_signs_in_with_it_alone(
    pages: Pages, carnet: ServedCarnet, shot: Shot
) -> None:
    patient = carnet.cast.followed
    page = pages.open()
    _virtual_authenticator(page)
    sign_in_patient(page, patient, carnet.codes)

    page.get_by_role("link", name="Security").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Security")
    expect(page.get_by_text("You have no passkey yet.")).to_be_visible()
    page.get_by_label("A name to recognise it (optional)").fill("Test phone")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("Test phone.*was added"))
    expect(page.get_by_role("cell", name="Test phone", exact=True)).to_be_visible()
    shot(page, "1-security-passkey-added", twin=False)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/portal\?signed-out=1"))

    open_sign_in_page(page)
    passkey = page.get_by_role("region", name="Sign in with a passkey")
    expect(passkey).to_be_visible()
    shot(page, "2-sign-in-page", twin=False)
    passkey.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(re.compile(r"/portal/patient"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Hello, {patient.name}")
    # A passkey is a strong sign-in: the documents open with no further step.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Documents").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("Documents"))
    shot(page, "3-documents-after-passkey", twin=False)


def test_without_javascript_the_passkey_method_stays_hidden(
    pages: Pages, carnet: ServedCarnet
) -> None:
    page = pages.open(javascript=False)
    open_sign_in_page(page)
    expect(page.get_by_role("region", name="Sign in with a passkey")).to_have_count(0)
    expect(page.get_by_role("region", name="Patient", exact=True)).to_be_visible()
