"""Bearer authentication of routes (RFC 6750): every bad token is one indistinct 401.

The challenge is asserted exactly: a missing token gets ``Bearer realm="carnet"`` without an
error (section 3.1: no error code when no credentials were sent); anything wrong with a token
gets ``error="invalid_token"`` with a description that reveals nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import Depends
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy.orm import Session

from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.scopes import Interaction
from carnet.auth import grants, keys, sign_in, tokens
from carnet.clock import FrozenClock
from carnet.settings import ExternalIssuer
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from carnet.web.authentication import require_scope
from factories.auth import (
    PUBLIC_URL,
    JwksServer,
    Served,
    make_patient_login,
    make_professional_login,
    serve,
)

CanCreateDocuments = Annotated[
    Actor, Depends(require_scope("DocumentReference", Interaction.CREATE))
]
INVALID = (
    'Bearer realm="carnet", error="invalid_token", '
    'error_description="The access token is invalid or expired."'
)


def _patient_claims(web: Served, session: Session, clock: FrozenClock) -> dict[str, Any]:
    login = make_patient_login(session, clock, web.platform.key_wrapper)  # type: ignore[arg-type]
    issued = tokens.issue_access_token(
        session,
        web.authority,
        sign_in.principal_for(
            session,
            ActorKind.PATIENT,
            login.patient.id,
            assurance=Assurance.SUBSTANTIAL,
            methods=sign_in.PASSWORD_AND_OTP,
        ),
        scope="patient/*.rs",
        client_id="app",
        clock=clock,
    )
    return issued.claims


def _get(web: Served, token: str | None, path: str = "/oauth/userinfo") -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return web.client.get(path, headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def test_a_valid_token_is_accepted(web: Served, session: Session, clock: FrozenClock) -> None:
    claims = _patient_claims(web, session, clock)
    token = tokens.sign(session, web.authority, claims, typ="at+jwt", clock=clock)
    response = _get(web, token)
    assert response.status_code == 200
    assert response.json()["sub"] == claims["sub"]


def test_a_missing_token_is_challenged_without_an_error(web: Served) -> None:
    response = _get(web, None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="carnet"'


def test_a_malformed_authorization_header_is_invalid_request(web: Served) -> None:
    response = web.client.get("/oauth/userinfo", headers={"Authorization": "Basic dXNlcg=="})
    assert response.status_code == 400
    assert response.headers["www-authenticate"] == 'Bearer realm="carnet", error="invalid_request"'


def _expired(web: Served, session: Session, clock: FrozenClock) -> str:
    token = tokens.sign(
        session, web.authority, _patient_claims(web, session, clock), typ="at+jwt", clock=clock
    )
    clock.advance(dt.timedelta(seconds=300 + tokens.CLOCK_SKEW_SECONDS + 1))
    return token


def _forged(web: Served, session: Session, clock: FrozenClock) -> str:
    token = tokens.sign(
        session, web.authority, _patient_claims(web, session, clock), typ="at+jwt", clock=clock
    )
    head, payload, _signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["carnet_kind"] = "operator"  # the signature no longer covers these claims
    return f"{head}.{_b64(json.dumps(claims).encode())}.{_signature}"


def _resigned(**changes: Any) -> Callable[[Served, Session, FrozenClock], str]:
    def build(web: Served, session: Session, clock: FrozenClock) -> str:
        claims = {**_patient_claims(web, session, clock), **changes}
        return tokens.sign(session, web.authority, claims, typ="at+jwt", clock=clock)

    return build


def _alg_none(web: Served, session: Session, clock: FrozenClock) -> str:
    kid = web.authority.keys.signing_key(session, clock).kid
    header = {"alg": "none", "kid": kid, "typ": "at+jwt"}
    return _unsigned(header, _patient_claims(web, session, clock)) + "."


def _hs256_with_public_key(web: Served, session: Session, clock: FrozenClock) -> str:
    # The classic confusion: HMAC keyed with the server's *public* key, which anyone has.
    key = web.authority.keys.signing_key(session, clock)
    public = ECKey.import_key(key.as_dict(private=False))
    signing_input = _unsigned(
        {"alg": "HS256", "kid": key.kid, "typ": "at+jwt"}, _patient_claims(web, session, clock)
    )
    mac = hmac.new(public.as_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _unknown_kid(web: Served, session: Session, clock: FrozenClock) -> str:
    stranger = ECKey.generate_key("P-256", private=True)
    header = {"alg": "ES256", "kid": "not-a-carnet-key", "typ": "at+jwt"}
    return jwt.encode(header, _patient_claims(web, session, clock), stranger, algorithms=["ES256"])


def _known_kid_wrong_key(web: Served, session: Session, clock: FrozenClock) -> str:
    kid = web.authority.keys.signing_key(session, clock).kid
    stranger = ECKey.generate_key("P-256", private=True)
    header = {"alg": "ES256", "kid": kid, "typ": "at+jwt"}
    return jwt.encode(header, _patient_claims(web, session, clock), stranger, algorithms=["ES256"])


def _not_yet_valid(web: Served, session: Session, clock: FrozenClock) -> str:
    later = int(clock.now().timestamp()) + 600
    return _resigned(nbf=later, exp=later + 300)(web, session, clock)


def _revoked(web: Served, session: Session, clock: FrozenClock) -> str:
    claims = _patient_claims(web, session, clock)
    token = tokens.sign(session, web.authority, claims, typ="at+jwt", clock=clock)
    grants.revoke_access_token(
        session,
        jti=claims["jti"],
        expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
        clock=clock,
    )
    return token


def _id_token_as_access_token(web: Served, session: Session, clock: FrozenClock) -> str:
    claims = {**_patient_claims(web, session, clock), "aud": f"{PUBLIC_URL}/fhir"}
    return tokens.sign(session, web.authority, claims, typ="JWT", clock=clock)


BAD_TOKENS: dict[str, Callable[[Served, Session, FrozenClock], str]] = {
    "expired": _expired,
    "forged": _forged,
    "wrong_issuer": _resigned(iss="https://idp.elsewhere.example"),
    "wrong_audience": _resigned(aud="https://other.example/fhir"),
    "alg_none": _alg_none,
    "hs256_with_public_key": _hs256_with_public_key,
    "unknown_kid": _unknown_kid,
    "known_kid_wrong_key": _known_kid_wrong_key,
    "not_yet_valid": _not_yet_valid,
    "revoked": _revoked,
    "id_token_type": _id_token_as_access_token,
    "not_a_jwt": lambda *_: "not-a-jwt",
    "garbage_segments": lambda *_: "e30.e30.AAAA",
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_every_bad_token_is_the_same_401(
    web: Served, session: Session, clock: FrozenClock, case: str
) -> None:
    token = BAD_TOKENS[case](web, session, clock)
    response = _get(web, token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID
    assert response.json() == {"detail": "The access token is invalid or expired."}


def test_insufficient_scope_is_403(web: Served, session: Session, clock: FrozenClock) -> None:
    def probe(actor: CanCreateDocuments) -> str:
        return actor.subject

    web.client.app.add_api_route("/probe", probe)  # type: ignore[attr-defined]
    claims = _patient_claims(web, session, clock)  # patient/*.rs: read and search only
    token = tokens.sign(session, web.authority, claims, typ="at+jwt", clock=clock)
    response = _get(web, token, "/probe")
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="carnet", error="insufficient_scope", scope="user/DocumentReference.c"'
    )
    allowed = tokens.sign(
        session, web.authority, {**claims, "scope": "patient/*.cruds"}, typ="at+jwt", clock=clock
    )
    assert _get(web, allowed, "/probe").status_code == 200


class TestKeyRotation:
    def test_old_tokens_verify_during_the_overlap_and_not_after(
        self, web: Served, session: Session, clock: FrozenClock
    ) -> None:
        claims = _patient_claims(web, session, clock)
        # Longer-lived than the overlap, so only the key's retirement can refuse it.
        claims["exp"] = claims["iat"] + 3600
        old = tokens.sign(session, web.authority, claims, typ="at+jwt", clock=clock)
        old_kid = web.authority.keys.signing_key(session, clock).kid
        overlap = web.authority.config.key_overlap
        new = keys.rotate_signing_key(
            session, key_wrapper=web.authority.key_wrapper, clock=clock, overlap=overlap
        )

        published = {key["kid"] for key in web.client.get("/oauth/jwks").json()["keys"]}
        assert published == {old_kid, new.kid}
        assert _get(web, old).status_code == 200
        fresh = tokens.sign(
            session, web.authority, {**claims, "jti": "fresh"}, typ="at+jwt", clock=clock
        )
        assert jwt.decode(fresh, ECKey.import_key(new.public_jwk)).header["kid"] == new.kid

        clock.advance(overlap + dt.timedelta(seconds=61))  # past the overlap and the key cache
        assert _get(web, old).status_code == 401
        published = {key["kid"] for key in web.client.get("/oauth/jwks").json()["keys"]}
        assert published == {new.kid}


def test_tokens_of_an_external_issuer_are_accepted(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
) -> None:
    login = make_professional_login(session, clock, wrapper, card=False)
    idp_key = ECKey.generate_key("P-256", parameters={"alg": "ES256"}, private=True)
    idp_key.ensure_kid()
    with JwksServer() as idp:
        idp.publish(idp_key)
        issuer = ExternalIssuer(
            issuer="https://pro-idp.example",
            jwks_url=idp.url,
            audience="carnet",
            actor_kind="professional",
            identifier_claim="rpps",
            identifier_system=login.professional.identifier_system,
            assurance_levels={"eidas3": "high"},
        )
        now = int(clock.now().timestamp())
        token = jwt.encode(
            {"alg": "ES256", "kid": idp_key.kid},
            {
                "iss": issuer.issuer,
                "aud": "carnet",
                "sub": "pro-42",
                "rpps": login.identifier,
                "acr": "eidas3",
                "iat": now,
                "exp": now + 300,
            },
            idp_key,
            algorithms=["ES256"],
        )
        with serve(session, store, clock, wrapper, external_issuers=[issuer]) as served:
            response = _get(served, token)
    assert response.status_code == 200, response.text
    assert response.json()["fhirUser"] == f"Practitioner/{login.professional.id}"
    assert idp.fetches == 1
