"""Tokens of external identity providers, verified with a JWKS served over real HTTP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from pydantic import ValidationError
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind, Assurance
from carnet.access.scopes import parse_scope
from carnet.auth import tokens
from carnet.auth.errors import InvalidToken
from carnet.auth.external import ExternalIssuers, RemoteJwks
from carnet.clock import FrozenClock
from carnet.patients import identifiers
from carnet.settings import ExternalIssuer, Settings
from carnet.storage import MasterKeyWrapper
from factories.auth import JwksServer, authority
from factories.patients import make_matricule, make_patient

EID = "https://eid.example.lu"


@pytest.fixture
def idp() -> Iterator[JwksServer]:
    with JwksServer() as server:
        yield server


def _key(kind: str = "EC") -> Any:
    if kind == "RSA":
        key: Any = RSAKey.generate_key(2048, parameters={"alg": "RS256"}, private=True)
    else:
        key = ECKey.generate_key("P-256", parameters={"alg": "ES256"}, private=True)
    key.ensure_kid()
    return key


def _config(idp: JwksServer, **changes: Any) -> ExternalIssuer:
    fields: dict[str, Any] = {
        "issuer": EID,
        "jwks_url": idp.url,
        "audience": "carnet-lu",
        "actor_kind": "patient",
        "identifier_claim": "national_id",
        "identifier_system": identifiers.LU_MATRICULE,
        "assurance_claim": "loa",
        "assurance_levels": {"eidas-high": "high", "eidas-substantial": "substantial"},
        **changes,
    }
    return ExternalIssuer(**fields)


def _token(key: Any, clock: FrozenClock, **claims: Any) -> str:
    now = int(clock.now().timestamp())
    payload = {"iss": EID, "aud": "carnet-lu", "sub": "eid-1", "iat": now, "exp": now + 300}
    payload.update(claims)
    alg = "RS256" if isinstance(key, RSAKey) else "ES256"
    return jwt.encode({"alg": alg, "kid": key.kid}, payload, key, algorithms=[alg])


def _authenticate(session: Session, clock: FrozenClock, config: ExternalIssuer, token: str) -> Any:
    issuer = authority(MasterKeyWrapper(bytes(32), "k"))
    issuer.external = ExternalIssuers([config])
    return tokens.authenticate(session, issuer, token, clock=clock)


class TestExternalIssuers:
    def test_an_eid_token_becomes_the_patient_it_names(
        self, session: Session, clock: FrozenClock, idp: JwksServer
    ) -> None:
        matricule = make_matricule()
        patient = make_patient(session, clock, matricule=matricule)
        key = _key()
        idp.publish(key)
        token = _token(
            key,
            clock,
            national_id=matricule,
            loa="eidas-substantial",
            scope="openid patient/DocumentReference.rs email",
            jti="eid-jti-1",
        )
        actor = _authenticate(session, clock, _config(idp), token)
        assert actor.kind is ActorKind.PATIENT
        assert actor.person_id == actor.acting_for == patient.id
        assert actor.assurance is Assurance.SUBSTANTIAL
        assert actor.scopes == frozenset({parse_scope("patient/DocumentReference.rs")})
        assert actor.token_id == "eid-jti-1"

    def test_rsa_keys_and_unmapped_levels(
        self, session: Session, clock: FrozenClock, idp: JwksServer
    ) -> None:
        matricule = make_matricule()
        make_patient(session, clock, matricule=matricule)
        key = _key("RSA")
        idp.publish(key)
        token = _token(key, clock, national_id=matricule, loa="basic")
        assert _authenticate(session, clock, _config(idp), token).assurance is Assurance.LOW

    @pytest.mark.parametrize(
        "claims",
        [
            {"aud": "someone-else"},
            {"exp": 0},
            {"national_id": "1980051700000"},  # not a valid matricule
            {"national_id": None},
        ],
    )
    def test_bad_tokens_are_refused(
        self, session: Session, clock: FrozenClock, idp: JwksServer, claims: dict[str, Any]
    ) -> None:
        key = _key()
        idp.publish(key)
        token = _token(key, clock, **{"national_id": make_matricule(), **claims})
        with pytest.raises(InvalidToken):
            _authenticate(session, clock, _config(idp), token)

    def test_an_algorithm_not_configured_is_refused(
        self, session: Session, clock: FrozenClock, idp: JwksServer
    ) -> None:
        key = _key("RSA")
        idp.publish(key)
        token = _token(key, clock, national_id=make_matricule())
        with pytest.raises(InvalidToken):
            _authenticate(session, clock, _config(idp, algorithms=["ES256"]), token)

    @pytest.mark.parametrize("algorithms", [["HS256"], ["none"], []])
    def test_symmetric_or_no_algorithms_cannot_be_configured(
        self, idp: JwksServer, algorithms: list[str]
    ) -> None:
        with pytest.raises(ValidationError):
            _config(idp, algorithms=algorithms)

    def test_settings_read_issuers_as_json(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(
            "CARNET_EXTERNAL_ISSUERS",
            '[{"issuer": "https://pro.example", "jwks_url": "https://pro.example/jwks",'
            ' "audience": "carnet", "actor_kind": "professional",'
            ' "identifier_claim": "rpps", "identifier_system": "urn:oid:1.2.250.1.71.4.2.1"}]',
        )
        (issuer,) = Settings().external_issuers
        assert issuer.actor_kind == "professional"
        assert issuer.algorithms == ["ES256", "RS256"]


class TestRemoteJwks:
    def test_an_unknown_kid_refetches_once_a_minute_at_most(
        self, clock: FrozenClock, idp: JwksServer
    ) -> None:
        old, new = _key(), _key()
        idp.publish(old)
        jwks = RemoteJwks(idp.url)
        assert jwks.key(old.kid, clock.now()) is not None
        assert idp.fetches == 1
        assert jwks.key(old.kid, clock.now()) is not None
        assert idp.fetches == 1  # cached

        idp.publish(old, new)  # the provider rotated its keys a moment ago
        assert jwks.key(new.kid, clock.now()) is None  # refetch refused: too soon
        assert jwks.key("forged", clock.now()) is None
        assert idp.fetches == 1
        clock.advance(dt.timedelta(minutes=1))
        assert jwks.key(new.kid, clock.now()) is not None
        assert idp.fetches == 2
        assert jwks.key("forged", clock.now()) is None
        assert idp.fetches == 2

    def test_keys_are_refreshed_after_an_hour(self, clock: FrozenClock, idp: JwksServer) -> None:
        key = _key()
        idp.publish(key)
        jwks = RemoteJwks(idp.url)
        jwks.key(key.kid, clock.now())
        clock.advance(dt.timedelta(hours=1, seconds=1))
        jwks.key(key.kid, clock.now())
        assert idp.fetches == 2

    def test_an_unreachable_provider_keeps_the_known_keys(self, clock: FrozenClock) -> None:
        with JwksServer() as server:
            key = _key()
            server.publish(key)
            jwks = RemoteJwks(server.url)
            assert jwks.key(key.kid, clock.now()) is not None
        clock.advance(dt.timedelta(hours=2))
        assert jwks.key(key.kid, clock.now()) is not None  # the fetch failed; keys kept

    def test_only_http_urls_are_fetched(self, clock: FrozenClock) -> None:
        assert RemoteJwks("file:///etc/passwd").key("k", clock.now()) is None
