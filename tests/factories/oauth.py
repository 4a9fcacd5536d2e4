"""OAuth flows driven through a served Carnet, for the authorization server's tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from sqlalchemy.orm import Session

from carnet.clock import FrozenClock
from carnet.storage import MasterKeyWrapper
from factories.auth import (
    PASSWORD,
    REDIRECT_URI,
    Served,
    authorize_params,
    client_assertion,
    code_now,
    make_app,
    make_patient_login,
    pkce,
    query_of,
    sign_in,
)

NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def _claims(token: str, web: Served) -> dict[str, Any]:
    jwks = KeySet.import_key_set(web.client.get("/oauth/jwks").json())
    return dict(jwt.decode(token, jwks, algorithms=["ES256"]).claims)


def _assert_no_store(response: Any) -> None:
    for name, value in NO_STORE.items():
        assert response.headers[name] == value


# --- helpers ---------------------------------------------------------------------------------


def _bad_assertion(problem: str, key: ECKey, client_id: str, clock: FrozenClock) -> str:
    if problem == "expired":
        earlier = clock.now() - dt.timedelta(minutes=10)
        return client_assertion(key, client_id, clock, issued_at=earlier)
    if problem == "too_long":
        return client_assertion(key, client_id, clock, lifetime=dt.timedelta(hours=1))
    if problem == "wrong_audience":
        return client_assertion(key, client_id, clock, audience="https://other.example/token")
    if problem == "wrong_key":
        # Same kid as the registered key, different key: the signature cannot verify.
        impostor = ECKey.generate_key("P-256", parameters={"alg": "ES256", "kid": key.kid or "k"})
        return client_assertion(impostor, client_id, clock)
    return "not.a.jwt"


def _signed_in_patient(
    web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> tuple[Any, str, str]:
    login = make_patient_login(session, clock, wrapper)
    app = make_app(session, clock)
    verifier, challenge = pkce()
    redirect = sign_in(
        web.client,
        authorize_params(app.client_id, challenge),
        {
            "method": "patient",
            "identifier": login.identifier,
            "password": PASSWORD,
            "otp": code_now(login.totp, clock),
        },
    )
    assert redirect.status_code == 303, redirect.text
    return redirect, app.client_id, verifier


def _token_for_code(
    web: Served,
    client_id: str,
    redirect: Any,
    verifier: str,
    *,
    redirect_uri: str = REDIRECT_URI,
) -> Any:
    return web.client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(redirect.headers["location"])["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": client_id,
        },
    )


def _redeem(web: Served, client_id: str, redirect: Any, verifier: str) -> dict[str, Any]:
    response = _token_for_code(web, client_id, redirect, verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _refresh(web: Served, client_id: str, token: str, **extra: str) -> Any:
    return web.client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": client_id,
            **extra,
        },
    )


def _userinfo(web: Served, token: str) -> Any:
    return web.client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {token}"})
