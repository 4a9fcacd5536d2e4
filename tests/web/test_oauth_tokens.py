"""The authorization server's token side over HTTP: discovery, client credentials, refresh, revoke.

RFC 6749 (OAuth 2.0), RFC 7523 (private_key_jwt), RFC 7009 (revocation), OpenID Connect Core
(UserInfo) and Discovery, SMART App Launch 2.x.
"""

from __future__ import annotations

import pytest
from joserfc.jwk import ECKey
from sqlalchemy.orm import Session

from carnet.access.actors import Assurance
from carnet.auth import clients
from carnet.clock import FrozenClock
from carnet.storage import MasterKeyWrapper
from factories.auth import (
    PUBLIC_URL,
    JwksServer,
    Served,
    assertion_form,
    client_assertion,
    make_app,
    make_backend,
)
from factories.oauth import (
    _assert_no_store,
    _bad_assertion,
    _claims,
    _refresh,
    _signed_in_patient,
    _token_for_code,
    _userinfo,
)


class TestDiscovery:
    def test_openid_configuration_names_every_endpoint(self, web: Served) -> None:
        document = web.client.get("/.well-known/openid-configuration").json()
        assert document["issuer"] == PUBLIC_URL
        assert document["jwks_uri"] == f"{PUBLIC_URL}/oauth/jwks"
        assert document["authorization_endpoint"] == f"{PUBLIC_URL}/oauth/authorize"
        assert document["token_endpoint"] == f"{PUBLIC_URL}/oauth/token"
        assert document["revocation_endpoint"] == f"{PUBLIC_URL}/oauth/revoke"
        assert document["userinfo_endpoint"] == f"{PUBLIC_URL}/oauth/userinfo"
        assert document["code_challenge_methods_supported"] == ["S256"]
        assert document["response_types_supported"] == ["code"]
        assert document["id_token_signing_alg_values_supported"] == ["ES256"]
        assert "private_key_jwt" in document["token_endpoint_auth_methods_supported"]
        assert Assurance.HIGH.acr in document["acr_values_supported"]

    def test_smart_configuration(self, web: Served) -> None:
        document = web.client.get("/fhir/.well-known/smart-configuration").json()
        assert document["issuer"] == PUBLIC_URL
        assert document["code_challenge_methods_supported"] == ["S256"]
        assert "private_key_jwt" in document["token_endpoint_auth_methods_supported"]
        assert {"authorization_code", "client_credentials", "refresh_token"} <= set(
            document["grant_types_supported"]
        )
        assert {"launch-standalone", "client-public", "client-confidential-asymmetric"} <= set(
            document["capabilities"]
        )
        assert {"openid", "fhirUser", "launch/patient", "patient/*.rs"} <= set(
            document["scopes_supported"]
        )
        assert "ES384" in document["token_endpoint_auth_signing_alg_values_supported"]

    def test_jwks_lists_the_public_signing_key(self, web: Served) -> None:
        response = web.client.get("/oauth/jwks")
        assert response.status_code == 200
        (key,) = response.json()["keys"]
        assert key["kty"] == "EC"
        assert key["crv"] == "P-256"
        assert key["alg"] == "ES256"
        assert key["use"] == "sig"
        assert key["kid"]
        assert "d" not in key


class TestClientCredentials:
    def test_private_key_jwt_gets_a_system_token(
        self, web: Served, session: Session, clock: FrozenClock
    ) -> None:
        backend = make_backend(session, clock)
        assertion = client_assertion(backend.key, backend.client.client_id, clock)
        response = web.client.post(
            "/oauth/token",
            data=assertion_form(
                assertion,
                grant_type="client_credentials",
                scope="system/DocumentReference.c system/Patient.r",
            ),
        )
        assert response.status_code == 200, response.text
        _assert_no_store(response)
        body = response.json()
        assert body["scope"] == "system/DocumentReference.c"  # narrowed to what is allowed
        assert "refresh_token" not in body
        claims = _claims(body["access_token"], web)
        assert claims["carnet_kind"] == "feeding-system"
        assert claims["sub"] == backend.client.client_id
        assert claims["carnet_org"] == str(backend.organisation.id)

    @pytest.mark.parametrize(
        "problem", ["expired", "too_long", "wrong_audience", "wrong_key", "not_a_jwt"]
    )
    def test_bad_assertions_are_invalid_client(
        self, web: Served, session: Session, clock: FrozenClock, problem: str
    ) -> None:
        backend = make_backend(session, clock)
        client_id = backend.client.client_id
        assertion = _bad_assertion(problem, backend.key, client_id, clock)
        response = web.client.post(
            "/oauth/token",
            data=assertion_form(assertion, grant_type="client_credentials"),
        )
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        _assert_no_store(response)

    def test_keys_may_be_published_at_a_jwks_url(
        self, web: Served, session: Session, clock: FrozenClock
    ) -> None:
        organisation = make_backend(session, clock).organisation
        key = ECKey.generate_key("P-256", parameters={"alg": "ES256"}, private=True)
        key.ensure_kid()
        with JwksServer() as lis:
            lis.publish(key)
            client = clients.register_backend_client(
                session,
                name="LIS with published keys",
                organisation_identifier=organisation.identifier_value,
                allowed_scopes="system/DocumentReference.c",
                jwks_url=lis.url,
                clock=clock,
                client_id="lis-published",
            )
            assertion = client_assertion(key, client.client_id, clock)
            response = web.client.post(
                "/oauth/token", data=assertion_form(assertion, grant_type="client_credentials")
            )
        assert response.status_code == 200, response.text
        assert lis.fetches == 1

    def test_a_replayed_assertion_is_refused(
        self, web: Served, session: Session, clock: FrozenClock
    ) -> None:
        backend = make_backend(session, clock)
        assertion = client_assertion(backend.key, backend.client.client_id, clock)
        form = assertion_form(assertion, grant_type="client_credentials")
        assert web.client.post("/oauth/token", data=form).status_code == 200
        again = web.client.post("/oauth/token", data=form)
        assert again.status_code == 401
        assert again.json()["error"] == "invalid_client"

    def test_a_public_client_may_not_use_client_credentials(
        self, web: Served, session: Session, clock: FrozenClock
    ) -> None:
        app = make_app(session, clock)
        response = web.client.post(
            "/oauth/token", data={"grant_type": "client_credentials", "client_id": app.client_id}
        )
        assert response.json()["error"] == "unauthorized_client"

    def test_a_backend_client_must_prove_its_key(
        self, web: Served, session: Session, clock: FrozenClock
    ) -> None:
        backend = make_backend(session, clock)
        response = web.client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": backend.client.client_id},
        )
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"

    def test_unknown_scopes_are_invalid_scope(
        self, web: Served, session: Session, clock: FrozenClock
    ) -> None:
        backend = make_backend(session, clock)
        assertion = client_assertion(backend.key, backend.client.client_id, clock)
        response = web.client.post(
            "/oauth/token",
            data=assertion_form(assertion, grant_type="client_credentials", scope="everything"),
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_scope"

    @pytest.mark.parametrize(
        ("data", "error"),
        [
            ({"grant_type": "password", "username": "x"}, "unsupported_grant_type"),
            ({}, "invalid_request"),
        ],
    )
    def test_unsupported_or_missing_grant_types(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        data: dict[str, str],
        error: str,
    ) -> None:
        app = make_app(session, clock)
        response = web.client.post("/oauth/token", data={**data, "client_id": app.client_id})
        assert response.json()["error"] == error

    def test_repeated_parameters_are_refused(self, web: Served) -> None:
        response = web.client.post(
            "/oauth/token",
            content=b"grant_type=client_credentials&grant_type=password",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"


class TestRefreshTokens:
    def test_rotation_and_reuse_detection(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        redirect, app_id, verifier = _signed_in_patient(web, session, clock, wrapper)
        first = _token_for_code(web, app_id, redirect, verifier).json()

        second = _refresh(web, app_id, first["refresh_token"])
        assert second.status_code == 200, second.text
        _assert_no_store(second)
        rotated = second.json()
        assert rotated["refresh_token"] != first["refresh_token"]
        assert _userinfo(web, rotated["access_token"]).status_code == 200

        # The spent token comes back: someone copied it. The whole family goes.
        reused = _refresh(web, app_id, first["refresh_token"])
        assert reused.json()["error"] == "invalid_grant"
        assert _refresh(web, app_id, rotated["refresh_token"]).json()["error"] == "invalid_grant"
        assert _userinfo(web, rotated["access_token"]).status_code == 401
        assert _userinfo(web, first["access_token"]).status_code == 401

    def test_refresh_may_narrow_the_scope(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        redirect, app_id, verifier = _signed_in_patient(web, session, clock, wrapper)
        first = _token_for_code(web, app_id, redirect, verifier).json()
        narrowed = _refresh(web, app_id, first["refresh_token"], scope="patient/Observation.r")
        assert narrowed.json()["scope"] == "patient/Observation.r"

    def test_a_refresh_token_is_bound_to_its_client(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        redirect, app_id, verifier = _signed_in_patient(web, session, clock, wrapper)
        first = _token_for_code(web, app_id, redirect, verifier).json()
        other = make_app(session, clock)
        stolen = _refresh(web, other.client_id, first["refresh_token"])
        assert stolen.json()["error"] == "invalid_grant"


class TestRevocation:
    def test_revoking_an_access_token(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        redirect, app_id, verifier = _signed_in_patient(web, session, clock, wrapper)
        tokens = _token_for_code(web, app_id, redirect, verifier).json()
        response = web.client.post(
            "/oauth/revoke",
            data={"token": tokens["access_token"], "client_id": app_id},
        )
        assert response.status_code == 200
        assert _userinfo(web, tokens["access_token"]).status_code == 401

    def test_revoking_a_refresh_token_ends_its_family(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        redirect, app_id, verifier = _signed_in_patient(web, session, clock, wrapper)
        tokens = _token_for_code(web, app_id, redirect, verifier).json()
        web.client.post(
            "/oauth/revoke",
            data={
                "token": tokens["refresh_token"],
                "token_type_hint": "refresh_token",
                "client_id": app_id,
            },
        )
        assert _refresh(web, app_id, tokens["refresh_token"]).json()["error"] == "invalid_grant"
        assert _userinfo(web, tokens["access_token"]).status_code == 401

    def test_unknown_tokens_and_other_clients_tokens_are_ignored(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        redirect, app_id, verifier = _signed_in_patient(web, session, clock, wrapper)
        tokens = _token_for_code(web, app_id, redirect, verifier).json()
        other = make_app(session, clock)
        for token in ("no-such-token", tokens["access_token"]):
            response = web.client.post(
                "/oauth/revoke", data={"token": token, "client_id": other.client_id}
            )
            assert response.status_code == 200  # RFC 7009 section 2.2
        assert _userinfo(web, tokens["access_token"]).status_code == 200

    def test_an_unknown_client_is_refused(self, web: Served) -> None:
        response = web.client.post("/oauth/revoke", data={"token": "x", "client_id": "nobody"})
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"


class TestUserInfo:
    def test_returns_who_the_token_is_for(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        redirect, app_id, verifier = _signed_in_patient(web, session, clock, wrapper)
        tokens = _token_for_code(web, app_id, redirect, verifier).json()
        response = _userinfo(web, tokens["access_token"])
        assert response.status_code == 200
        body = response.json()
        assert body["fhirUser"] == f"Patient/{body['sub']}"
        assert body["name"] == "Léa Weber"
        assert body["carnet_kind"] == "patient"
        _assert_no_store(response)
