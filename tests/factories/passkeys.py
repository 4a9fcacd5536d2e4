"""A software authenticator: real WebAuthn attestations ("none") and assertions, in Python.

What a phone or security key answers, built byte for byte from WebAuthn Level 3 (section 6.1,
authenticator data; 6.5.4, the "none" attestation; 6.3.3, the assertion signature) with
``cryptography`` and ``cbor2``, so the service's checks run against the real formats rather
than against a mock of the verifier.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.orm import Session

from carnet.auth.models import PasskeyCredential
from carnet.auth.passkeys import PasskeyAccount, begin_registration, finish_registration
from carnet.auth.tokens import TokenAuthority
from carnet.clock import Clock

# Authenticator data flags (WebAuthn section 6.1).
USER_PRESENT = 0x01
USER_VERIFIED = 0x04
BACKUP_ELIGIBLE = 0x08
BACKED_UP = 0x10
ATTESTED = 0x40
# What a registration ceremony is bound to (the session's CSRF token, in the portal).
BINDING = "the-session-csrf-token"


def b64url(data: bytes) -> str:
    """Unpadded base64url, as WebAuthn's JSON encodes bytes."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    """The bytes of unpadded base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftAuthenticator:
    """One passkey on an emulated authenticator, for ``rp_id`` and pages of ``origin``.

    ``counter`` is the signature counter the next assertion carries (after incrementing it),
    None for an authenticator that keeps none (it always reports 0, as synced passkeys do).
    """

    rp_id: str
    origin: str
    counter: int | None = 0
    user_verified: bool = True
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    user_handle: bytes | None = None

    def register(
        self,
        options: str | dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: bytes | None = None,
    ) -> str:
        """The JSON a browser posts after ``navigator.credentials.create`` with ``options``.

        ``origin``, ``rp_id`` and ``challenge`` override what an honest browser would use.
        """
        creation = json.loads(options) if isinstance(options, str) else options
        self.user_handle = unb64url(creation["user"]["id"])
        client_data = self._client_data(
            "webauthn.create", challenge or unb64url(creation["challenge"]), origin
        )
        numbers = self.key.public_key().public_numbers()
        cose_key = cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )
        attested = (
            bytes(16)  # AAGUID: none disclosed
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + cose_key
        )
        auth_data = self._auth_data(rp_id, ATTESTED, count=self.counter or 0) + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "attestationObject": b64url(attestation),
                    "transports": ["internal"],
                },
                "clientExtensionResults": {},
                "authenticatorAttachment": "platform",
            }
        )

    def sign(
        self,
        challenge: bytes,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        counter: int | None = None,
        credential_id: bytes | None = None,
    ) -> str:
        """The JSON a browser posts after ``navigator.credentials.get`` for ``challenge``."""
        if counter is not None:
            self.counter = counter
        elif self.counter is not None:
            self.counter += 1
        auth_data = self._auth_data(rp_id, 0, count=self.counter or 0)
        client_data = self._client_data("webauthn.get", challenge, origin)
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        used = credential_id or self.credential_id
        return json.dumps(
            {
                "id": b64url(used),
                "rawId": b64url(used),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                    "userHandle": b64url(self.user_handle or b""),
                },
                "clientExtensionResults": {},
                "authenticatorAttachment": "platform",
            }
        )

    def _client_data(self, kind: str, challenge: bytes, origin: str | None) -> bytes:
        return json.dumps(
            {
                "type": kind,
                "challenge": b64url(challenge),
                "origin": origin or self.origin,
                "crossOrigin": False,
            }
        ).encode()

    def _auth_data(self, rp_id: str | None, extra_flags: int, *, count: int) -> bytes:
        flags = USER_PRESENT | extra_flags | (USER_VERIFIED if self.user_verified else 0)
        return (
            hashlib.sha256((rp_id or self.rp_id).encode()).digest()
            + bytes([flags])
            + struct.pack(">I", count)
        )


def register(
    session: Session,
    carnet: TokenAuthority,
    clock: Clock,
    account: PasskeyAccount,
    authenticator: SoftAuthenticator,
    *,
    binding: str = BINDING,
    **tamper: object,
) -> PasskeyCredential:
    """The registration ceremony through the service: begin, ``authenticator`` answers (with
    ``tamper``'s overrides of origin, rp_id or challenge), finish; the passkey is named "phone".

    Raises ``PasskeyRefused`` as the service does.
    """
    ceremony = begin_registration(session, carnet, account, binding=binding, clock=clock)
    return finish_registration(
        session,
        carnet,
        state=ceremony.state,
        response=authenticator.register(ceremony.options_json, **tamper),  # type: ignore[arg-type]
        name="phone",
        binding=binding,
        clock=clock,
    )


def embedded_options(page: str, element_id: str) -> dict[str, Any]:
    """The WebAuthn options a page embeds for ``static/passkeys.js`` (creation or request)."""
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', page)
    assert found is not None, page
    options: dict[str, Any] = json.loads(found.group(1))
    return options
