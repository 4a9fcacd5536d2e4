"""The portals' common ground: sign-in through Carnet's own server, sessions, CSRF, languages."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from carnet.clock import FrozenClock
from carnet.portal import browser_session
from carnet.storage import MasterKeyWrapper
from factories.auth import Served, make_patient_login, make_professional_login
from factories.portal import csrf_of, sign_in_patient, sign_in_professional


class TestSignIn:
    def test_the_landing_page_offers_sign_in(self, web: Served) -> None:
        page = web.client.get("/portal")
        assert page.status_code == 200
        assert 'href="/portal/sign-in"' in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in page.headers["content-security-policy"]

    def test_a_patient_signs_in_through_carnets_own_server_and_lands_home(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        landed = sign_in_patient(web.client, login, clock)
        assert landed == "/portal/patient"
        cookie = web.client.cookies.get(browser_session.SESSION_COOKIE)
        assert cookie is not None
        home = web.client.get(landed)
        assert home.status_code == 200
        assert home.headers["cache-control"] == "no-store"

    def test_the_session_cookie_is_httponly_and_samesite(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        start = web.client.get("/portal/sign-in", follow_redirects=False)
        assert "httponly" in start.headers["set-cookie"].lower()
        sign_in_patient(web.client, login, clock)
        page = web.client.get("/portal/patient")
        set_cookie = page.headers["set-cookie"].lower()
        assert "httponly" in set_cookie
        assert "samesite=lax" in set_cookie

    def test_a_page_asks_for_sign_in_and_comes_back_after(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        answer = web.client.get("/portal/patient", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/portal/sign-in?next=%2Fportal%2Fpatient"
        assert sign_in_patient(web.client, login, clock, next_path="/portal/patient") == (
            "/portal/patient"
        )

    def test_next_never_leads_to_another_site(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        landed = sign_in_patient(web.client, login, clock, next_path="//evil.example/x")
        assert landed == "/portal/patient"

    def test_a_professional_lands_on_the_professional_portal(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_professional_login(session, clock, wrapper)
        assert sign_in_professional(web.client, login, clock) == "/portal/professional"

    def test_a_patient_cannot_open_the_professional_portal(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(web.client, login, clock)
        page = web.client.get("/portal/professional")
        assert page.status_code == 403

    def test_a_callback_without_the_browsers_sign_in_cookie_is_refused(self, web: Served) -> None:
        page = web.client.get("/portal/callback", params={"code": "x", "state": "y"})
        assert page.status_code == 400

    def test_a_forged_session_cookie_counts_as_signed_out(self, web: Served) -> None:
        web.client.cookies.set(browser_session.SESSION_COOKIE, "Zm9yZ2Vk", path="/portal")
        answer = web.client.get("/portal/patient", follow_redirects=False)
        assert answer.status_code == 303


class TestSession:
    def test_an_idle_session_ends_after_thirty_minutes(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(web.client, login, clock)
        clock.advance(dt.timedelta(minutes=31))
        answer = web.client.get("/portal/patient", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/portal/sign-in")

    def test_an_expired_access_token_is_renewed_with_the_refresh_token(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(web.client, login, clock)
        before = web.client.cookies.get(browser_session.SESSION_COOKIE)
        for _ in range(3):  # 3 x 6 minutes: past the access token's 5, within the idle limit
            clock.advance(dt.timedelta(minutes=6))
            assert web.client.get("/portal/patient").status_code == 200
        assert web.client.cookies.get(browser_session.SESSION_COOKIE) != before

    def test_signing_out_revokes_the_tokens(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(web.client, login, clock)
        home = web.client.get("/portal/patient")
        stolen = web.client.cookies.get(browser_session.SESSION_COOKIE)
        out = web.client.post(
            "/portal/sign-out", data={"csrf": csrf_of(home.text)}, follow_redirects=False
        )
        assert out.status_code == 303
        # The copied cookie is worthless: its tokens are revoked.
        web.client.cookies.set(browser_session.SESSION_COOKIE, stolen or "", path="/portal")
        assert web.client.get("/portal/patient", follow_redirects=False).status_code == 303

    def test_a_form_without_the_csrf_token_is_refused(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(web.client, login, clock)
        answer = web.client.post("/portal/sign-out", data={"csrf": "guess"})
        assert answer.status_code == 403
        assert web.client.get("/portal/patient").status_code == 200


class TestLanguages:
    def test_the_browsers_language_is_spoken(self, web: Served) -> None:
        page = web.client.get("/portal", headers={"Accept-Language": "de-LU,de;q=0.9,en;q=0.5"})
        assert '<html lang="de">' in page.text

    def test_the_visitor_can_switch_language(self, web: Served) -> None:
        answer = web.client.get(
            "/portal/language", params={"lang": "fr", "next": "/portal"}, follow_redirects=False
        )
        assert answer.headers["location"] == "/portal"
        page = web.client.get("/portal", headers={"Accept-Language": "de"})
        assert '<html lang="fr">' in page.text

    def test_an_unknown_language_falls_back_to_english(self, web: Served) -> None:
        page = web.client.get("/portal", headers={"Accept-Language": "pt-BR"})
        assert '<html lang="en">' in page.text
