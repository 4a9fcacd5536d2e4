"""Signing in to the portals through Carnet's own sign-in page, as a browser would."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from carnet.clock import Clock
from carnet.demo import accounts as demo_accounts
from factories.auth import PASSWORD, PatientLogin, ProfessionalLogin, code_now

_TICKET = re.compile(r'name="ticket" value="([^"]+)"')
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _sign_in_form(client: TestClient, next_path: str | None = None) -> str:
    """Follow the portal to Carnet's authorization page; the sign-in form's ticket."""
    params = {"next": next_path} if next_path else {}
    start = client.get("/portal/sign-in", params=params, follow_redirects=False)
    assert start.status_code == 303, start.text
    authorize = urlsplit(start.headers["location"])
    page = client.get(f"{authorize.path}?{authorize.query}")
    assert page.status_code == 200, page.text
    found = _TICKET.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def _finish(client: TestClient, form: dict[str, str]) -> str:
    answer = client.post("/oauth/authorize", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    back = urlsplit(answer.headers["location"])
    landed = client.get(f"{back.path}?{back.query}", follow_redirects=False)
    assert landed.status_code == 303, landed.text
    return str(landed.headers["location"])


def sign_in_patient(
    client: TestClient, login: PatientLogin, clock: Clock, *, next_path: str | None = None
) -> str:
    """Sign a patient in (password and one-time code); where the portal sent them."""
    ticket = _sign_in_form(client, next_path)
    return _finish(
        client,
        {
            "ticket": ticket,
            "method": "patient",
            "identifier": login.identifier,
            "password": PASSWORD,
            "otp": code_now(login.totp, clock),
        },
    )


def sign_in_professional(
    client: TestClient,
    login: ProfessionalLogin,
    clock: Clock,
    *,
    card: bool = True,
    next_path: str | None = None,
) -> str:
    """Sign a professional in with their card and PIN (or password and code)."""
    ticket = _sign_in_form(client, next_path)
    if card:
        form = {
            "ticket": ticket,
            "method": "card",
            "identifier": login.identifier,
            "pin": demo_accounts.DEMO_PIN,
        }
    else:
        form = {
            "ticket": ticket,
            "method": "professional",
            "identifier": login.identifier,
            "password": PASSWORD,
            "otp": code_now(login.totp, clock),
        }
    return _finish(client, form)


def csrf_of(page: str) -> str:
    """The CSRF token of a portal page's forms."""
    found = _CSRF.search(page)
    assert found is not None, page
    return found.group(1)
