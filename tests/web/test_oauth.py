"""The authorization server's browser side over HTTP: authorize, sign-in, code + PKCE.

RFC 6749 (OAuth 2.0) section 4.1, RFC 7636 (PKCE), OpenID Connect Core; the operators' sign-in
and the sign-in page. The token side (discovery, client credentials, refresh, revoke, userinfo)
is ``test_oauth_tokens.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.actors import Assurance
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.auth import accounts
from carnet.clock import FrozenClock
from carnet.demo import accounts as demo_accounts
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.auth import (
    PASSWORD,
    PUBLIC_URL,
    REDIRECT_URI,
    Served,
    authorize_params,
    code_now,
    make_app,
    make_patient_login,
    make_professional_login,
    pkce,
    query_of,
    serve,
    sign_in,
    ticket_of,
)
from factories.oauth import (
    _assert_no_store,
    _claims,
    _redeem,
    _refresh,
    _signed_in_patient,
    _token_for_code,
    _userinfo,
)


class TestAuthorizationCodeFlow:
    def test_patient_with_password_and_totp_gets_substantial_tokens(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        app = make_app(session, clock)
        verifier, challenge = pkce()
        params = authorize_params(app.client_id, challenge)
        fields = {
            "method": "patient",
            "identifier": login.identifier,
            "password": PASSWORD,
            "otp": code_now(login.totp, clock),
        }
        redirect = sign_in(web.client, params, fields)

        assert redirect.status_code == 303
        location = redirect.headers["location"]
        assert location.startswith(REDIRECT_URI + "?")
        back = query_of(location)
        assert back["state"] == params["state"]  # RFC 6749 section 4.1.2
        assert back["iss"] == PUBLIC_URL  # RFC 9207
        response = web.client.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": back["code"],
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
                "client_id": app.client_id,
            },
        )
        assert response.status_code == 200, response.text
        _assert_no_store(response)
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 300
        assert body["patient"] == str(login.patient.id)
        assert body["refresh_token"]
        assert set(body["scope"].split()) == set(params["scope"].split())
        claims = _claims(body["access_token"], web)
        assert claims["sub"] == str(login.patient.id)
        assert claims["fhirUser"] == f"Patient/{login.patient.id}"
        assert claims["acr"] == Assurance.SUBSTANTIAL.acr
        assert claims["amr"] == ["pwd", "otp", "mfa"]
        assert claims["aud"] == f"{PUBLIC_URL}/fhir"
        assert claims["client_id"] == app.client_id
        assert claims["carnet_kind"] == "patient"
        id_token = _claims(body["id_token"], web)
        assert id_token["aud"] == app.client_id
        assert id_token["nonce"] == params["nonce"]
        assert id_token["acr"] == Assurance.SUBSTANTIAL.acr

    def test_professional_card_and_pin_is_high(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_professional_login(session, clock, wrapper)
        app = make_app(session, clock)
        verifier, challenge = pkce()
        redirect = sign_in(
            web.client,
            authorize_params(app.client_id, challenge, scope="openid fhirUser user/*.rs"),
            {"method": "card", "identifier": login.identifier, "pin": demo_accounts.DEMO_PIN},
        )
        assert redirect.status_code == 303, redirect.text
        body = _redeem(web, app.client_id, redirect, verifier)
        claims = _claims(body["access_token"], web)
        assert claims["acr"] == Assurance.HIGH.acr
        assert set(claims["amr"]) == {"sc", "hwk", "pin", "mfa"}
        assert claims["fhirUser"] == f"Practitioner/{login.professional.id}"
        assert claims["carnet_profession"] == "general-practitioner"
        assert claims["carnet_org"] == str(login.professional.organisation_id)
        assert "patient" not in body

    def test_professional_password_alone_is_low(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_professional_login(session, clock, wrapper, card=False)
        app = make_app(session, clock)
        verifier, challenge = pkce()
        redirect = sign_in(
            web.client,
            authorize_params(app.client_id, challenge, scope="user/*.rs"),
            {"method": "professional", "identifier": login.identifier, "password": PASSWORD},
        )
        body = _redeem(web, app.client_id, redirect, verifier)
        claims = _claims(body["access_token"], web)
        assert claims["acr"] == Assurance.LOW.acr
        assert claims["amr"] == ["pwd"]
        assert "refresh_token" not in body  # no offline_access asked
        assert "id_token" not in body  # no openid asked

    def test_wrong_password_shows_the_form_again_with_a_generic_message(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        app = make_app(session, clock)
        response = sign_in(
            web.client,
            authorize_params(app.client_id, pkce()[1]),
            {
                "method": "patient",
                "identifier": login.identifier,
                "password": "wrong",
                "otp": code_now(login.totp, clock),
            },
        )
        assert response.status_code == 401
        assert "The identifier, password, code or PIN is not correct." in response.text
        assert 'name="ticket"' in response.text
        # The identifier is put back in the form that failed, the password is not.
        patient = response.text.split('id="patient-identifier"')[1].split(">")[0]
        assert f'value="{login.identifier}"' in patient
        assert 'value="wrong"' not in response.text
        professional = response.text.split('id="professional-identifier"')[1].split(">")[0]
        assert "value=" not in professional

    def test_a_typed_identifier_comes_back_escaped(
        self, web: Served, session: Session, clock: FrozenClock
    ) -> None:
        app = make_app(session, clock)
        typed = '"><script>alert(1)</script>'
        response = sign_in(
            web.client,
            authorize_params(app.client_id, pkce()[1]),
            {"method": "operator", "identifier": typed, "password": "x", "otp": "123456"},
        )
        assert response.status_code == 401
        assert "<script>alert(1)" not in response.text
        assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in response.text

    def test_a_locked_account_answers_like_a_wrong_password(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_professional_login(session, clock, wrapper, card=False)
        app = make_app(session, clock)
        params = authorize_params(app.client_id, pkce()[1], scope="user/*.rs")
        wrong = {"method": "professional", "identifier": login.identifier, "password": "x"}
        for _ in range(accounts.MAX_FAILED_SIGN_INS):
            assert sign_in(web.client, params, wrong).status_code == 401
        right = sign_in(web.client, params, {**wrong, "password": PASSWORD})
        assert right.status_code == 401
        assert "The identifier, password, code or PIN is not correct." in right.text
        clock.advance(accounts.LOCK_DURATION)
        assert sign_in(web.client, params, {**wrong, "password": PASSWORD}).status_code == 303

    def test_too_many_attempts_from_one_address_are_throttled(
        self, web: Served, session: Session, clock: FrozenClock
    ) -> None:
        app = make_app(session, clock)
        page = web.client.get("/oauth/authorize", params=authorize_params(app.client_id, "x" * 43))
        throttle = web.client.app.state.sign_in_throttle  # type: ignore[attr-defined]
        while throttle.allow("testclient"):
            pass
        response = web.client.post(
            "/oauth/authorize", data={"ticket": ticket_of(page.text), "method": "patient"}
        )
        assert response.status_code == 429
        assert response.headers["retry-after"] == "60"

    def test_wrong_pkce_verifier_is_invalid_grant(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        redirect, app_id, _verifier = _signed_in_patient(web, session, clock, wrapper)
        response = _token_for_code(web, app_id, redirect, pkce()[0])
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
        _assert_no_store(response)

    def test_a_code_is_single_use_and_its_replay_revokes_the_tokens(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        redirect, app_id, verifier = _signed_in_patient(web, session, clock, wrapper)
        first = _token_for_code(web, app_id, redirect, verifier)
        assert first.status_code == 200
        access = first.json()["access_token"]
        assert _userinfo(web, access).status_code == 200

        again = _token_for_code(web, app_id, redirect, verifier)
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"
        assert _userinfo(web, access).status_code == 401
        refreshed = web.client.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": first.json()["refresh_token"],
                "client_id": app_id,
            },
        )
        assert refreshed.json()["error"] == "invalid_grant"

    def test_a_code_expires_after_60_seconds(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        redirect, app_id, verifier = _signed_in_patient(web, session, clock, wrapper)
        clock.advance(dt.timedelta(seconds=61))
        assert _token_for_code(web, app_id, redirect, verifier).json()["error"] == "invalid_grant"

    def test_redirect_uri_must_match_at_the_token_endpoint(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        redirect, app_id, verifier = _signed_in_patient(web, session, clock, wrapper)
        response = _token_for_code(
            web, app_id, redirect, verifier, redirect_uri=REDIRECT_URI + "/other"
        )
        assert response.json()["error"] == "invalid_grant"

    def test_a_code_is_bound_to_its_client(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        redirect, _app_id, verifier = _signed_in_patient(web, session, clock, wrapper)
        other = make_app(session, clock)
        response = _token_for_code(web, other.client_id, redirect, verifier)
        assert response.json()["error"] == "invalid_grant"

    def test_unregistered_redirect_uri_is_an_error_page_not_a_redirect(
        self, web: Served, session: Session, clock: FrozenClock
    ) -> None:
        app = make_app(session, clock)
        params = authorize_params(
            app.client_id, pkce()[1], redirect_uri="https://evil.example/callback"
        )
        response = web.client.get("/oauth/authorize", params=params, follow_redirects=False)
        assert response.status_code == 400
        assert "evil.example" not in response.headers.get("location", "")
        assert "redirect_uri" in response.text

    def test_redirect_uris_are_matched_exactly(
        self, web: Served, session: Session, clock: FrozenClock
    ) -> None:
        app = make_app(session, clock)
        params = authorize_params(app.client_id, pkce()[1], redirect_uri=REDIRECT_URI + "/")
        assert web.client.get("/oauth/authorize", params=params).status_code == 400

    @pytest.mark.parametrize(
        ("change", "error"),
        [
            ({"code_challenge_method": "plain"}, "invalid_request"),
            ({"code_challenge": ""}, "invalid_request"),
            ({"response_type": "token"}, "unsupported_response_type"),
            ({"scope": "patient/Observation.rs nonsense"}, "invalid_scope"),
            ({"scope": "system/*.cruds"}, "invalid_scope"),
            ({"aud": "https://other.example/fhir"}, "invalid_request"),
        ],
    )
    def test_bad_requests_go_back_to_the_client_with_the_state(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        change: dict[str, str],
        error: str,
    ) -> None:
        app = make_app(session, clock)
        params = authorize_params(app.client_id, pkce()[1], **change)
        response = web.client.get("/oauth/authorize", params=params, follow_redirects=False)
        assert response.status_code == 303
        back = query_of(response.headers["location"])
        assert back["error"] == error
        assert back["state"] == params["state"]

    def test_the_sign_in_form_needs_the_browser_it_was_issued_to(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        app = make_app(session, clock)
        page = web.client.get("/oauth/authorize", params=authorize_params(app.client_id, "a" * 43))
        web.client.cookies.clear()
        response = web.client.post(
            "/oauth/authorize",
            data={
                "ticket": ticket_of(page.text),
                "method": "patient",
                "identifier": login.identifier,
                "password": PASSWORD,
                "otp": code_now(login.totp, clock),
            },
        )
        assert response.status_code == 400
        assert "start again" in response.text

    def test_an_altered_ticket_is_refused(
        self, web: Served, session: Session, clock: FrozenClock
    ) -> None:
        app = make_app(session, clock)
        page = web.client.get("/oauth/authorize", params=authorize_params(app.client_id, "a" * 43))
        ticket = ticket_of(page.text)
        forged = ticket[:-4] + ("AAAA" if not ticket.endswith("AAAA") else "BBBB")
        response = web.client.post("/oauth/authorize", data={"ticket": forged, "method": "card"})
        assert response.status_code == 400

    def test_the_sign_in_page_loads_nothing_from_elsewhere(
        self, web: Served, session: Session, clock: FrozenClock
    ) -> None:
        app = make_app(session, clock)
        page = web.client.get("/oauth/authorize", params=authorize_params(app.client_id, "a" * 43))
        assert page.status_code == 200
        # Scripts: Carnet's own passkeys.js, and the passkey options as inert JSON; none inline.
        scripts = re.findall(r"<script[^>]*>", page.text)
        assert scripts == [
            '<script src="/portal/static/passkeys.js" defer>',
            '<script type="application/json" id="passkey-request">',
        ]
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "http" not in page.text.replace('name="viewport"', "")  # no external URL of any kind
        for field in ("patient-identifier", "patient-password", "patient-otp", "card-pin"):
            assert f'<label for="{field}"' in page.text
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "form-action 'self' https://app.example" in policy
        assert page.headers["cache-control"] == "no-store"

    def test_without_the_demo_accounts_still_sign_in_and_the_demo_card_reader_is_gone(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        app = make_app(session, clock)
        login = make_patient_login(session, clock, wrapper)
        professional = make_professional_login(session, clock, wrapper)
        with serve(session, store, clock, wrapper, demo_idp=False) as served:
            _, challenge = pkce()
            params = authorize_params(app.client_id, challenge)
            card = sign_in(
                served.client,
                params,
                {
                    "method": "card",
                    "identifier": professional.identifier,
                    "pin": demo_accounts.DEMO_PIN,
                },
            )
            redirect = sign_in(
                served.client,
                params,
                {
                    "method": "patient",
                    "identifier": login.identifier,
                    "password": PASSWORD,
                    "otp": code_now(login.totp, clock),
                },
            )
        assert card.status_code == 401
        assert redirect.status_code == 303, redirect.text
        assert "code" in query_of(redirect.headers["location"])


# --- agency operators and the page itself ------------------------------------------------------


OPERATOR = "jdupont"


def _operator_totp(session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper) -> Any:
    secret = accounts.create_operator_account(
        session, name=OPERATOR, password=PASSWORD, key_wrapper=wrapper, clock=clock
    )
    return pyotp.TOTP(secret)


class TestOperatorSignIn:
    def test_password_and_code_give_a_substantial_token_naming_the_operator(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        totp = _operator_totp(session, clock, wrapper)
        app = make_app(session, clock)
        verifier, challenge = pkce()
        redirect = sign_in(
            web.client,
            authorize_params(app.client_id, challenge, scope="openid offline_access user/*.rs"),
            {
                "method": "operator",
                "identifier": OPERATOR,
                "password": PASSWORD,
                "otp": code_now(totp, clock),
            },
        )
        assert redirect.status_code == 303, redirect.text
        body = _redeem(web, app.client_id, redirect, verifier)
        claims = _claims(body["access_token"], web)
        assert claims["sub"] == f"operator:{OPERATOR}"
        assert claims["carnet_kind"] == "operator"
        assert claims["acr"] == Assurance.SUBSTANTIAL.acr
        assert "fhirUser" not in claims
        assert _claims(body["id_token"], web)["sub"] == f"operator:{OPERATOR}"
        assert _userinfo(web, body["access_token"]).json()["name"] == OPERATOR
        # The refresh token finds the operator's account again.
        renewed = _refresh(web, app.client_id, body["refresh_token"])
        assert renewed.status_code == 200, renewed.text
        assert _claims(renewed.json()["access_token"], web)["sub"] == f"operator:{OPERATOR}"

    def test_the_password_alone_is_refused(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        _operator_totp(session, clock, wrapper)
        app = make_app(session, clock)
        response = sign_in(
            web.client,
            authorize_params(app.client_id, pkce()[1]),
            {"method": "operator", "identifier": OPERATOR, "password": PASSWORD},
        )
        assert response.status_code == 401
        assert "The identifier, password, code or PIN is not correct." in response.text

    def test_a_locked_operator_answers_like_a_wrong_password(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        totp = _operator_totp(session, clock, wrapper)
        app = make_app(session, clock)
        params = authorize_params(app.client_id, pkce()[1])
        wrong = {"method": "operator", "identifier": OPERATOR, "password": "wrong", "otp": "0"}
        for _ in range(accounts.MAX_FAILED_SIGN_INS):
            assert sign_in(web.client, params, wrong).status_code == 401
        right = {**wrong, "password": PASSWORD, "otp": code_now(totp, clock)}
        assert sign_in(web.client, params, right).status_code == 401
        clock.advance(accounts.LOCK_DURATION)
        right["otp"] = code_now(totp, clock)
        assert sign_in(web.client, params, right).status_code == 303

    def test_operators_sign_ins_are_in_the_audit_trail(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        totp = _operator_totp(session, clock, wrapper)
        app = make_app(session, clock)
        params = authorize_params(app.client_id, pkce()[1])
        fields = {"method": "operator", "identifier": OPERATOR, "password": PASSWORD}
        sign_in(web.client, params, fields)
        sign_in(web.client, params, {**fields, "otp": code_now(totp, clock)})
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == AuditAction.SIGN_IN)
            .order_by(AuditEvent.recorded_at, AuditEvent.seq)
        ).all()
        assert [(e.agent_subject, e.outcome) for e in events] == [
            (f"attempt:{OPERATOR}", AuditOutcome.DENIED),
            (f"operator:{OPERATOR}", AuditOutcome.ALLOWED),
        ]
        assert {e.agent_kind for e in events} == {"operator"}


class TestTheSignInPage:
    def test_it_looks_like_the_portal_and_offers_every_way_in(
        self, web: Served, session: Session, clock: FrozenClock
    ) -> None:
        app = make_app(session, clock)
        page = web.client.get("/oauth/authorize", params=authorize_params(app.client_id, "a" * 43))
        assert '<link rel="stylesheet" href="/portal/static/carnet.css">' in page.text
        assert web.client.get("/portal/static/carnet.css").status_code == 200
        for field in ("operator-identifier", "operator-password", "operator-otp"):
            assert f'<label for="{field}"' in page.text
        assert 'name="method" value="operator"' in page.text
        assert "style-src 'self'" in page.headers["content-security-policy"]
        assert "style=" not in page.text

    @pytest.mark.parametrize(
        ("headers", "cookie", "ui_locales", "language"),
        [
            ({"Accept-Language": "fr-LU,fr;q=0.9,en;q=0.5"}, None, None, "fr"),
            ({"Accept-Language": "fr"}, "de", None, "de"),
            ({"Accept-Language": "fr"}, None, "de en", "de"),
            ({"Accept-Language": "pt"}, None, None, "en"),
        ],
    )
    def test_it_speaks_the_visitors_language(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        headers: dict[str, str],
        cookie: str | None,
        ui_locales: str | None,
        language: str,
    ) -> None:
        app = make_app(session, clock)
        params = authorize_params(app.client_id, "a" * 43)
        if ui_locales:
            params["ui_locales"] = ui_locales
        if cookie:
            web.client.cookies.set("carnet_lang", cookie)
        page = web.client.get("/oauth/authorize", params=params, headers=headers)
        assert page.status_code == 200
        assert f'<html lang="{language}">' in page.text
        # The form shown again after a failure keeps the language the request asked for.
        again = web.client.post(
            "/oauth/authorize",
            data={"ticket": ticket_of(page.text), "method": "patient", "password": "x"},
            headers=headers,
        )
        assert again.status_code == 401
        assert f'<html lang="{language}">' in again.text

    def test_a_refusal_page_is_localized_too(self, web: Served) -> None:
        page = web.client.get(
            "/oauth/authorize", params={"client_id": "nobody"}, headers={"Accept-Language": "de"}
        )
        assert page.status_code == 400
        assert '<html lang="de">' in page.text
        assert "ungültig" in page.text
