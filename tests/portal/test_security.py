"""The Security page and the passkey sign-in, through the portal and the sign-in page.

A software authenticator (``factories.passkeys``) answers the options each page embeds, as
``static/passkeys.js`` would hand them to the browser's authenticator.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.auth.models import PasskeyCredential
from carnet.clock import FrozenClock
from carnet.storage import MasterKeyWrapper
from factories.auth import PASSWORD, PUBLIC_URL, Served, make_patient_login
from factories.passkeys import SoftAuthenticator, embedded_options, unb64url
from factories.portal import csrf_of, sign_in_patient

_STATE = re.compile(r'name="passkey_state" value="([^"]+)"')
_TICKET = re.compile(r'name="ticket" value="([^"]+)"')


def _authenticator() -> SoftAuthenticator:
    host = urlsplit(PUBLIC_URL)
    return SoftAuthenticator(rp_id=host.hostname or "", origin=PUBLIC_URL)


def _add_passkey(client: TestClient, authenticator: SoftAuthenticator, name: str) -> Any:
    page = client.get("/portal/security")
    assert page.status_code == 200, page.text
    state = _STATE.search(page.text)
    assert state is not None
    return client.post(
        "/portal/security/passkeys",
        data={
            "csrf": csrf_of(page.text),
            "passkey_state": state.group(1),
            "credential": authenticator.register(embedded_options(page.text, "passkey-creation")),
            "passkey_name": name,
        },
        follow_redirects=False,
    )


def _passkey_sign_in(client: TestClient, authenticator: SoftAuthenticator, **tamper: Any) -> Any:
    """From the portal's sign-in button to the sign-in page's passkey form, submitted."""
    start = client.get("/portal/sign-in", follow_redirects=False)
    authorize = urlsplit(start.headers["location"])
    page = client.get(f"{authorize.path}?{authorize.query}")
    assert page.status_code == 200, page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    options = embedded_options(page.text, "passkey-request")
    assert options["allowCredentials"] == []  # no identifier: the passkey says whose it is
    ticket = _TICKET.search(page.text)
    assert ticket is not None
    return client.post(
        "/oauth/authorize",
        data={
            "ticket": ticket.group(1),
            "method": "passkey",
            "credential": authenticator.sign(unb64url(options["challenge"]), **tamper),
        },
        follow_redirects=False,
    )


def _sign_out(client: TestClient) -> None:
    page = client.get("/portal/security")
    client.post("/portal/sign-out", data={"csrf": csrf_of(page.text)})


class TestSecurityPage:
    def test_add_sign_out_and_sign_in_with_the_passkey(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(web.client, login, clock)
        authenticator = _authenticator()
        added = _add_passkey(web.client, authenticator, "my phone")
        assert added.status_code == 303, added.text
        page = web.client.get("/portal/security")
        assert "my phone" in page.text
        assert "was added" in page.text
        _sign_out(web.client)
        assert web.client.get("/portal/patient", follow_redirects=False).status_code == 303

        answer = _passkey_sign_in(web.client, authenticator)
        assert answer.status_code == 303, answer.text
        back = urlsplit(answer.headers["location"])
        landed = web.client.get(f"{back.path}?{back.query}", follow_redirects=False)
        assert landed.headers["location"] == "/portal/patient"
        home = web.client.get("/portal/patient")
        assert home.status_code == 200
        # A passkey is a strong sign-in: the dossier's pages open without another step.
        assert web.client.get("/portal/patient/documents").status_code == 200

    def test_a_passkey_for_another_site_is_refused_on_the_sign_in_page(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(web.client, login, clock)
        authenticator = _authenticator()
        assert _add_passkey(web.client, authenticator, "laptop").status_code == 303
        _sign_out(web.client)
        refused = _passkey_sign_in(web.client, authenticator, origin="https://carnet.example.net")
        assert refused.status_code == 401
        assert "passkey-request" in refused.text  # the page again, a passkey can be tried again

    def test_remove_a_passkey(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(web.client, login, clock)
        assert _add_passkey(web.client, _authenticator(), "old key").status_code == 303
        passkey = session.scalar(select(PasskeyCredential))
        assert passkey is not None
        page = web.client.get("/portal/security")
        removed = web.client.post(
            f"/portal/security/passkeys/{passkey.id}/remove",
            data={"csrf": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert removed.status_code == 303
        assert session.scalar(select(PasskeyCredential)) is None
        assert "You have no passkey yet." in web.client.get("/portal/security").text

    def test_a_forged_or_foreign_answer_adds_nothing(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(web.client, login, clock)
        page = web.client.get("/portal/security")
        state = _STATE.search(page.text)
        assert state is not None
        foreign = _authenticator().register(
            embedded_options(page.text, "passkey-creation"), origin="https://carnet.example.net"
        )
        for credential in (foreign, "{not json"):
            answer = web.client.post(
                "/portal/security/passkeys",
                data={
                    "csrf": csrf_of(page.text),
                    "passkey_state": state.group(1),
                    "credential": credential,
                    "passkey_name": "Mon téléphone",
                },
            )
            assert answer.status_code == 200
            assert "could not be added" in answer.text
            # The name typed is kept for the next try.
            assert 'value="Mon téléphone"' in answer.text
        missing_csrf = web.client.post(
            "/portal/security/passkeys",
            data={"passkey_state": state.group(1), "credential": foreign},
        )
        assert missing_csrf.status_code == 403
        assert session.scalar(select(PasskeyCredential)) is None

    def test_a_password_alone_cannot_add_a_passkey(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        start = web.client.get("/portal/sign-in", follow_redirects=False)
        authorize = urlsplit(start.headers["location"])
        form = web.client.get(f"{authorize.path}?{authorize.query}")
        ticket = _TICKET.search(form.text)
        assert ticket is not None
        answer = web.client.post(
            "/oauth/authorize",
            data={
                "ticket": ticket.group(1),
                "method": "patient",
                "identifier": login.identifier,
                "password": PASSWORD,
            },
            follow_redirects=False,
        )
        back = urlsplit(answer.headers["location"])
        web.client.get(f"{back.path}?{back.query}", follow_redirects=False)
        assert web.client.get("/portal/security").status_code == 403
