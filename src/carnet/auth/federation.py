"""Carnet as an OpenID Connect relying party: national eID and professional IdPs in the browser.

A provider configured with a ``client_id`` (``CARNET_EXTERNAL_ISSUERS``) signs people in to the
portals and SMART apps: the authorization code flow (OpenID Connect Core 1.0 section 3.1) with
PKCE S256 (RFC 7636), a fresh ``state`` and ``nonce`` per sign-in, the ID token validated as
section 3.1.3.7 requires, its ``acr`` mapped to Carnet's levels of assurance and the person
matched to a Carnet patient (national identifier claim) or directory professional (RPPS…).
Nobody is created here: no match is a refusal.

Only the protocol lives here; the routes, cookies and pages are ``carnet.oauth.federation``. Every
refusal is a ``FederationRefused`` whose ``reason`` the way in shows and audits.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, RSAKey
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind, Assurance
from carnet.auth.errors import FederationRefused
from carnet.auth.external import MAX_JWKS_BYTES, RemoteJwks
from carnet.auth.tokens import CLOCK_SKEW_SECONDS, Principal
from carnet.directory import service as directory
from carnet.errors import CarnetError
from carnet.patients import service as patients
from carnet.settings import ExternalIssuer

log = logging.getLogger(__name__)

# Outbound calls to a provider: a slow or hostile one must not hold a worker, nor fill its memory.
TIMEOUT_SECONDS = 5.0
MAX_RESPONSE_BYTES = MAX_JWKS_BYTES
# Discovery documents change rarely; an hour's cache spares the provider one fetch per sign-in.
DISCOVERY_MAX_AGE = dt.timedelta(hours=1)
# A client assertion (RFC 7523 section 3) is used once, right away.
ASSERTION_SECONDS = 60

Get = Callable[[str], bytes]
Post = Callable[[str, dict[str, str], dict[str, str]], tuple[int, bytes]]


def check_endpoint(url: str) -> str:
    """``url`` if it is https, or http on the loopback (tests); ``FederationRefused`` otherwise.

    OpenID Connect Core section 16.17: every exchange with the provider is over TLS.
    """
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return url
    raise FederationRefused("unavailable", f"not an https endpoint: {url!r}")


def get_json(url: str) -> bytes:
    """GET ``url`` (https, or http on loopback) with a timeout and a size limit."""
    request = urllib.request.Request(  # noqa: S310 — the scheme is checked by check_endpoint
        check_endpoint(url), headers={"Accept": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
        return _bounded(response.read(MAX_RESPONSE_BYTES + 1), url)


def post_form(url: str, fields: dict[str, str], headers: dict[str, str]) -> tuple[int, bytes]:
    """POST a form to ``url``; the status and the (bounded) body, error statuses included."""
    request = urllib.request.Request(  # noqa: S310 — the scheme is checked by check_endpoint
        check_endpoint(url),
        data=urlencode(fields).encode(),
        headers={
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            **headers,
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status, _bounded(response.read(MAX_RESPONSE_BYTES + 1), url)
    except urllib.error.HTTPError as error:
        # RFC 6749 section 5.2: the provider's refusal is a 400/401 with a JSON body.
        return error.code, _bounded(error.read(MAX_RESPONSE_BYTES + 1), url)


def _bounded(body: bytes, url: str) -> bytes:
    if len(body) > MAX_RESPONSE_BYTES:
        raise ValueError(f"the answer of {url} is larger than {MAX_RESPONSE_BYTES} bytes")
    return body


@dataclass(frozen=True)
class PendingSignIn:
    """What one browser's sign-in at a provider must come back with (kept in a signed cookie).

    ``code_verifier`` never leaves Carnet and the browser's own cookie: the provider only sees
    its S256 challenge.
    """

    provider: str
    state: str
    nonce: str
    code_verifier: str

    @classmethod
    def fresh(cls, provider: str) -> PendingSignIn:
        """New, unguessable values (RFC 7636 section 4.1: 32 random octets for the verifier)."""
        return cls(
            provider=provider,
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            code_verifier=secrets.token_urlsafe(32),
        )

    @property
    def code_challenge(self) -> str:
        """The S256 challenge of the verifier (RFC 7636 section 4.2)."""
        digest = hashlib.sha256(self.code_verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class ProviderMetadata:
    """The endpoints Carnet uses, from the provider's discovery document."""

    authorization_endpoint: str
    token_endpoint: str


class FederatedProvider:
    """One configured provider: its metadata and keys (cached), the exchange, the validation."""

    def __init__(
        self, config: ExternalIssuer, *, get: Get = get_json, post: Post = post_form
    ) -> None:
        self.config = config
        try:
            check_endpoint(config.jwks_url)
        except FederationRefused:
            raise ValueError(f"{config.issuer}: jwks_url must be https") from None
        self.jwks = RemoteJwks(config.jwks_url, fetch=get)
        self._get = get
        self._post = post
        self._metadata: ProviderMetadata | None = None
        self._fetched_at: dt.datetime | None = None
        self._lock = threading.Lock()
        self._client_key: Key | None = None
        if config.client_auth == "private_key_jwt" and config.client_key_path is not None:
            self._client_key = _client_key(config.client_key_path.read_bytes())

    @property
    def name(self) -> str:
        """The provider's short name, in Carnet's URLs."""
        return self.config.name

    def label(self, language: str) -> str:
        """The button's label in ``language``, else in English, else the name."""
        labels = self.config.display_name
        return labels.get(language) or labels.get("en") or next(iter(labels.values()), self.name)

    def metadata(self, now: dt.datetime) -> ProviderMetadata:
        """The provider's endpoints (OpenID Connect Discovery 1.0), fetched at most hourly."""
        with self._lock:
            cached = self._metadata
            if (
                cached is not None
                and self._fetched_at
                and now - self._fetched_at < DISCOVERY_MAX_AGE
            ):
                return cached
            url = self.config.discovery_url or (
                f"{self.config.issuer.rstrip('/')}/.well-known/openid-configuration"
            )
            try:
                document = json.loads(self._get(url))
                # Discovery section 4.3: the document must name the issuer it is configured for.
                if document.get("issuer") != self.config.issuer:
                    raise ValueError(f"the document names issuer {document.get('issuer')!r}")
                fresh = ProviderMetadata(
                    authorization_endpoint=check_endpoint(document["authorization_endpoint"]),
                    token_endpoint=check_endpoint(document["token_endpoint"]),
                )
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                if cached is not None:  # the provider's hiccup does not end sign-ins
                    log.warning("discovery of %s failed, keeping the last: %s", url, error)
                    return cached
                raise FederationRefused("unavailable", f"discovery of {url}: {error}") from None
            self._metadata, self._fetched_at = fresh, now
            return fresh

    def authorization_url(
        self, pending: PendingSignIn, *, redirect_uri: str, now: dt.datetime, ui_locales: str | None
    ) -> str:
        """Where to send the browser (OpenID Connect Core section 3.1.2.1)."""
        params = {
            "response_type": "code",
            "client_id": self.config.client_id or "",
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.config.scopes),
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": pending.code_challenge,
            "code_challenge_method": "S256",
        }
        if self.config.acr_values:
            params["acr_values"] = " ".join(self.config.acr_values)
        if ui_locales:
            params["ui_locales"] = ui_locales
        endpoint = self.metadata(now).authorization_endpoint
        separator = "&" if urlsplit(endpoint).query else "?"
        return f"{endpoint}{separator}{urlencode(params)}"

    def redeem(
        self, code: str, pending: PendingSignIn, *, redirect_uri: str, now: dt.datetime
    ) -> dict[str, Any]:
        """Exchange ``code`` at the token endpoint and return the validated ID token's claims."""
        endpoint = self.metadata(now).token_endpoint
        fields = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        headers: dict[str, str] = {}
        client_id = self.config.client_id or ""
        secret = self.config.client_secret.get_secret_value() if self.config.client_secret else ""
        if self.config.client_auth == "client_secret_basic":
            # RFC 6749 section 2.3.1: both halves form-encoded before the Basic encoding.
            pair = f"{_form_encode(client_id)}:{_form_encode(secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif self.config.client_auth == "client_secret_post":
            fields |= {"client_id": client_id, "client_secret": secret}
        else:
            fields |= {
                "client_id": client_id,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": self._client_assertion(endpoint, now),
            }
        try:
            status, body = self._post(endpoint, fields, headers)
            answer = json.loads(body)
        except (OSError, ValueError) as error:
            raise FederationRefused("unavailable", f"token endpoint: {error}") from None
        if status != 200 or not isinstance(answer, dict):
            error_code = answer.get("error") if isinstance(answer, dict) else None
            raise FederationRefused("token-refused", f"token endpoint {status}: {error_code}")
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise FederationRefused("token-refused", "no id_token in the token response")
        return self.validate_id_token(id_token, nonce=pending.nonce, now=now)

    def _client_assertion(self, token_endpoint: str, now: dt.datetime) -> str:
        """A private_key_jwt assertion (RFC 7523 section 3, OpenID Connect Core section 9)."""
        key = self._client_key
        if key is None:
            raise FederationRefused("unavailable", "no client key for private_key_jwt")
        algorithm = "ES256" if isinstance(key, ECKey) else "RS256"
        issued = int(now.timestamp())
        claims = {
            "iss": self.config.client_id,
            "sub": self.config.client_id,
            "aud": token_endpoint,
            "jti": secrets.token_urlsafe(16),
            "iat": issued,
            "exp": issued + ASSERTION_SECONDS,
        }
        header = {"alg": algorithm, "kid": key.thumbprint()}
        return jwt.encode(header, claims, key, algorithms=[algorithm])

    def validate_id_token(self, token: str, *, nonce: str, now: dt.datetime) -> dict[str, Any]:
        """The claims of an ID token, checked as OpenID Connect Core section 3.1.3.7 says.

        Signature with the provider's JWKS and an algorithm configured for it, ``iss``, ``aud``
        (and ``azp``) naming Carnet's client id, ``exp``/``iat`` within a small leeway, the
        ``nonce`` of this sign-in. Each failure has its own ``reason``.
        """
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeEncodeError) as error:
            raise FederationRefused("bad-signature", f"not a JWS: {error}") from None
        algorithm = header.get("alg")
        if algorithm not in self.config.algorithms:
            raise FederationRefused("bad-signature", f"algorithm {algorithm!r} not accepted")
        kid = header.get("kid")
        key = self.jwks.key(kid if isinstance(kid, str) else None, now)
        if key is None:
            raise FederationRefused("bad-signature", f"no key {kid!r} in the provider's JWKS")
        try:
            claims = dict(jwt.decode(token, key, algorithms=[algorithm]).claims)
        except (JoseError, ValueError) as error:
            raise FederationRefused("bad-signature", str(error)) from None
        if claims.get("iss") != self.config.issuer:
            raise FederationRefused("wrong-issuer", f"iss {claims.get('iss')!r}")
        self._check_audience(claims)
        self._check_times(claims, now)
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(
            claims["nonce"].encode(), nonce.encode()
        ):
            # Section 3.1.2.1: the nonce ties the ID token to this browser's sign-in (replay).
            raise FederationRefused("wrong-nonce", "the nonce is not this sign-in's")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise FederationRefused("token-refused", "no sub")
        return claims

    def _check_audience(self, claims: dict[str, Any]) -> None:
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        client_id = self.config.client_id
        if not isinstance(audiences, list) or client_id not in audiences:
            raise FederationRefused("wrong-audience", f"aud {audience!r}")
        azp = claims.get("azp")
        # Several audiences need an azp naming Carnet; an azp naming another client is refused.
        if (len(audiences) > 1 and azp is None) or (azp is not None and azp != client_id):
            raise FederationRefused("wrong-audience", f"azp {azp!r}")

    def _check_times(self, claims: dict[str, Any], now: dt.datetime) -> None:
        moment = now.timestamp()
        expires, issued = _number(claims.get("exp")), _number(claims.get("iat"))
        if expires is None or issued is None:
            raise FederationRefused("token-refused", "exp and iat are required")
        if moment > expires + CLOCK_SKEW_SECONDS:
            raise FederationRefused("expired", f"expired at {expires}")
        if issued > moment + CLOCK_SKEW_SECONDS:
            raise FederationRefused("expired", f"issued in the future ({issued})")

    def assurance(self, claims: dict[str, Any]) -> tuple[str | None, Assurance]:
        """The provider's ``acr`` and the Carnet level it maps to; unmapped values are LOW."""
        raw = claims.get(self.config.assurance_claim)
        acr = raw if isinstance(raw, str) else None
        level = self.config.assurance_levels.get(acr, "low") if acr is not None else "low"
        return acr, Assurance[level.upper()]


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _client_key(pem: bytes) -> Key:
    """Carnet's private_key_jwt key: EC (ES256) or RSA (RS256), from PEM."""
    private = load_pem_private_key(pem, password=None)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return ECKey.import_key(pem)
    if isinstance(private, rsa.RSAPrivateKey):
        return RSAKey.import_key(pem)
    raise ValueError("client_key_path must hold an EC or RSA private key")


def _form_encode(value: str) -> str:
    return urlencode({"": value})[1:]


class Federation:
    """The providers people can sign in with, by name, in configuration order."""

    def __init__(
        self, issuers: Sequence[ExternalIssuer], *, get: Get = get_json, post: Post = post_form
    ) -> None:
        self.providers = {
            issuer.name: FederatedProvider(issuer, get=get, post=post)
            for issuer in issuers
            if issuer.client_id is not None
        }

    def buttons(self, language: str) -> list[tuple[str, str]]:
        """Each provider's name and label in ``language``, for the sign-in page."""
        return [(name, provider.label(language)) for name, provider in self.providers.items()]

    def provider(self, name: str) -> FederatedProvider:
        """The provider called ``name``; ``FederationRefused('unknown-provider')`` if none is."""
        provider = self.providers.get(name)
        if provider is None:
            raise FederationRefused("unknown-provider", f"no provider {name!r}")
        return provider


def principal_for(
    session: Session, provider: FederatedProvider, claims: dict[str, Any], *, now: dt.datetime
) -> Principal:
    """The Carnet patient or professional the validated ``claims`` name, as a ``Principal``.

    Refused (``too-low``) when the provider's ``acr`` maps below the provider's minimum, and
    (``no-identifier``/``unknown-person``) when no identifier or nobody in Carnet matches:
    nothing is created. The principal's assurance is the mapped level; its ``amr`` the
    provider's (RFC 8176 values, as the provider sent them).
    """
    config = provider.config
    acr, assurance = provider.assurance(claims)
    if assurance < Assurance[config.minimum_assurance.upper()]:
        raise FederationRefused("too-low", f"acr {acr!r} is {assurance.name}")
    value = claims.get(config.identifier_claim)
    if not isinstance(value, str) or not value.strip():
        raise FederationRefused("no-identifier", f"no {config.identifier_claim} claim")
    raw_amr = claims.get("amr")
    methods = tuple(
        method
        for method in (raw_amr if isinstance(raw_amr, list) else [])
        if isinstance(method, str) and 0 < len(method) <= 32
    )[:8]
    auth_time = _number(claims.get("auth_time"))
    when = dt.datetime.fromtimestamp(auth_time, dt.UTC) if auth_time is not None else now
    try:
        if config.actor_kind == "patient":
            patient = patients.find_patient(session, config.identifier_system, value)
            if patient is not None:
                return Principal(
                    kind=ActorKind.PATIENT,
                    subject=str(patient.id),
                    assurance=assurance,
                    methods=methods,
                    person_id=patient.id,
                    auth_time=when,
                )
        else:
            professional = directory.find_professional(session, config.identifier_system, value)
            if professional is not None and professional.active:
                return Principal(
                    kind=ActorKind.PROFESSIONAL,
                    subject=str(professional.id),
                    assurance=assurance,
                    methods=methods,
                    professional_id=professional.id,
                    organisation_id=professional.organisation_id,
                    profession=professional.profession.value,
                    auth_time=when,
                )
    except CarnetError as error:  # a malformed identifier names nobody
        raise FederationRefused("unknown-person", str(error)) from None
    raise FederationRefused("unknown-person", f"no {config.identifier_system} match")
