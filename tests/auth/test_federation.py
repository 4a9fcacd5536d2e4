"""The relying party's ID token validation (OpenID Connect Core 1.0 section 3.1.3.7).

Tokens signed by a test key stand for a provider that misbehaves in ways a well-behaved one
(``tests/web/federation``) cannot be made to: another audience, another signer, another
``azp``. Each refusal names its own reason.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from carnet.access.actors import Assurance
from carnet.auth.errors import FederationRefused
from carnet.auth.federation import FederatedProvider, check_endpoint
from carnet.settings import ExternalIssuer

ISSUER = "https://eid.example"
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
NONCE = "n-0123456789"


@pytest.fixture
def signer() -> ECKey:
    return ECKey.generate_key("P-256", private=True, parameters={"kid": "k1"})


@pytest.fixture
def provider(signer: ECKey) -> FederatedProvider:
    config = ExternalIssuer(
        issuer=ISSUER,
        jwks_url=f"{ISSUER}/jwks",
        actor_kind="patient",
        identifier_claim="matricule",
        identifier_system="http://carnet.health/fhir/sid/lu-matricule",
        name="eid",
        client_id="carnet",
        client_secret="s3cret",
        assurance_levels={"eidas3": "high", "eidas2": "substantial"},
    )
    jwks = json.dumps({"keys": [signer.as_dict(private=False)]}).encode()
    return FederatedProvider(config, get=lambda _url: jwks)


def _token(key: ECKey, **overrides: Any) -> str:
    claims = {
        "iss": ISSUER,
        "sub": "person-1",
        "aud": "carnet",
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 60,
        "nonce": NONCE,
        "acr": "eidas3",
        **overrides,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])


def _reason(provider: FederatedProvider, token: str, *, now: dt.datetime = NOW) -> str:
    with pytest.raises(FederationRefused) as refused:
        provider.validate_id_token(token, nonce=NONCE, now=now)
    return refused.value.reason


class TestIdTokenValidation:
    def test_a_good_token_is_accepted_and_its_acr_mapped(
        self, provider: FederatedProvider, signer: ECKey
    ) -> None:
        claims = provider.validate_id_token(_token(signer), nonce=NONCE, now=NOW)
        assert claims["sub"] == "person-1"
        assert provider.assurance(claims) == ("eidas3", Assurance.HIGH)

    def test_unknown_acr_counts_as_low(self, provider: FederatedProvider, signer: ECKey) -> None:
        claims = provider.validate_id_token(_token(signer, acr="eidas9"), nonce=NONCE, now=NOW)
        assert provider.assurance(claims) == ("eidas9", Assurance.LOW)

    def test_another_audience_is_refused(self, provider: FederatedProvider, signer: ECKey) -> None:
        assert _reason(provider, _token(signer, aud="another-rp")) == "wrong-audience"

    def test_several_audiences_need_carnet_as_azp(
        self, provider: FederatedProvider, signer: ECKey
    ) -> None:
        assert _reason(provider, _token(signer, aud=["carnet", "other"])) == "wrong-audience"
        assert (
            _reason(provider, _token(signer, aud=["carnet", "other"], azp="other"))
            == "wrong-audience"
        )
        accepted = _token(signer, aud=["carnet", "other"], azp="carnet")
        assert provider.validate_id_token(accepted, nonce=NONCE, now=NOW)["azp"] == "carnet"

    def test_another_signer_is_refused(self, provider: FederatedProvider) -> None:
        forger = ECKey.generate_key("P-256", private=True, parameters={"kid": "k1"})
        assert _reason(provider, _token(forger)) == "bad-signature"

    def test_an_algorithm_not_configured_is_refused(
        self, provider: FederatedProvider, signer: ECKey
    ) -> None:
        # An unsigned token (alg "none", RFC 8725 section 2.1) with otherwise good claims.
        payload = _token(signer).split(".")[1]
        unsigned = base64.urlsafe_b64encode(b'{"alg":"none","kid":"k1"}').rstrip(b"=").decode()
        assert _reason(provider, f"{unsigned}.{payload}.") == "bad-signature"

    def test_another_issuer_is_refused(self, provider: FederatedProvider, signer: ECKey) -> None:
        assert _reason(provider, _token(signer, iss="https://evil.example")) == "wrong-issuer"

    def test_expired_beyond_the_leeway_is_refused(
        self, provider: FederatedProvider, signer: ECKey
    ) -> None:
        token = _token(signer)
        within = NOW + dt.timedelta(seconds=60 + 29)
        assert provider.validate_id_token(token, nonce=NONCE, now=within)
        assert _reason(provider, token, now=NOW + dt.timedelta(seconds=60 + 31)) == "expired"

    def test_another_nonce_is_refused(self, provider: FederatedProvider, signer: ECKey) -> None:
        assert _reason(provider, _token(signer, nonce="replayed")) == "wrong-nonce"
        assert _reason(provider, _token(signer, nonce=None)) == "wrong-nonce"


class TestEndpoints:
    @pytest.mark.parametrize(
        "url", ["https://eid.example/token", "http://127.0.0.1:9/token", "http://localhost/x"]
    )
    def test_https_or_loopback_is_used(self, url: str) -> None:
        assert check_endpoint(url) == url

    @pytest.mark.parametrize(
        "url", ["http://eid.example/token", "ftp://eid.example/", "file:///etc/passwd"]
    )
    def test_anything_else_is_refused(self, url: str) -> None:
        with pytest.raises(FederationRefused):
            check_endpoint(url)


class TestConfiguration:
    def test_a_relying_party_needs_its_secret(self) -> None:
        with pytest.raises(ValueError, match="client_secret"):
            ExternalIssuer(
                issuer=ISSUER,
                jwks_url=f"{ISSUER}/jwks",
                actor_kind="patient",
                identifier_claim="matricule",
                identifier_system="x",
                name="eid",
                client_id="carnet",
            )

    def test_an_api_only_issuer_is_unchanged(self) -> None:
        config = ExternalIssuer(
            issuer=ISSUER,
            jwks_url=f"{ISSUER}/jwks",
            audience="carnet-lu",
            actor_kind="professional",
            identifier_claim="rpps",
            identifier_system="x",
        )
        assert config.client_id is None
