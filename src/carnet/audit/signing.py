"""Carnet's audit key: the Ed25519 key that seals chain heads and signs checkpoints.

The hash chains alone prove nothing against whoever can write the tables: the algorithm is
public, so an edited event can be re-hashed to the end of its chain. A chain head signed with a
key the database does not hold can only be moved by Carnet itself; an auditor checks it with the
public key alone (``carnet audit key`` prints it).

The private key comes from ``CARNET_AUDIT_SIGNING_KEY`` (base64 of the 32-byte seed, or PEM), else
from ``CARNET_AUDIT_SIGNING_KEY_FILE`` (default ``<var>/audit-signing.key``, created with mode 0600
when missing, like the master key). Its id is a fingerprint of the public key, so the same key
read from either place is the same key, and every signature names the key that made it: after a
rotation the old public key still verifies what it signed.

How the key reaches ``audit.service.record``: through ``Session.info[SEALER]``, set by the session
factory the Platform builds (``build_platform``). The clock is passed as an argument because
every service chooses its time; the key is not a choice, it is part of how the session writes
the trail (like the group commit writer kept under the same ``info``), and threading it through
the forty callers of ``record`` would change every service signature for no decision any of them
makes. A session without it (tests' own sessions, a hand-built Platform) writes unsigned heads,
which ``carnet audit verify`` reports and a session with the key refuses to extend
(``service.vouch_for_head``) until ``carnet audit seal-unsigned`` seals them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# The key of ``Session.info`` under which the session factory keeps the audit key.
SEALER: Final = "carnet.audit.sealer"
# Domain separation: a head's signature can never be passed off as a checkpoint's, or the reverse.
_HEAD: Final = b"carnet-audit-head/1\n"
_CHECKPOINT: Final = b"carnet-audit-checkpoint/1\n"


class AuditKeyError(ValueError):
    """The audit key (or a public key given to verify with) cannot be read."""


def head_message(chain_id: uuid.UUID, seq: int, last_hash: str) -> bytes:
    """The bytes a chain head's signature covers: the chain, its last number and hash."""
    return _HEAD + f"{chain_id}\n{seq}\n{last_hash}".encode()


def checkpoint_message(canonical_record: bytes) -> bytes:
    """The bytes a checkpoint record's signature covers (its canonical JSON, unsigned)."""
    return _CHECKPOINT + canonical_record


@dataclass(frozen=True)
class PublicAuditKey:
    """A public audit key: what an auditor holds to verify heads and checkpoints."""

    key: Ed25519PublicKey = field(repr=False)

    @cached_property
    def key_id(self) -> str:
        """A fingerprint of the key (48 bits of SHA-256 of its raw bytes): names, never proves."""
        raw = self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "a" + hashlib.sha256(raw).hexdigest()[:12]

    def pem(self) -> str:
        """The key as a PEM ``PUBLIC KEY`` block, to give auditors."""
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def verifies(self, signature: str, message: bytes) -> bool:
        """Whether ``signature`` (base64) is this key's signature of ``message``."""
        try:
            self.key.verify(base64.b64decode(signature, validate=True), message)
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True


@dataclass(frozen=True)
class AuditKey:
    """Carnet's private audit key: seals heads and signs checkpoints.

    ``retired`` holds the public keys of audit keys rotated out
    (``CARNET_AUDIT_RETIRED_PUBLIC_KEYS``): heads they sealed are still extended.
    """

    private: Ed25519PrivateKey = field(repr=False)
    retired: KeyRing = field(default_factory=lambda: KeyRing({}))

    @property
    def public(self) -> PublicAuditKey:
        """The public half."""
        return PublicAuditKey(self.private.public_key())

    @cached_property
    def key_id(self) -> str:
        """The id every signature names (computed once: it is named on every append)."""
        return self.public.key_id

    def sign(self, message: bytes) -> str:
        """Base64 of the Ed25519 signature of ``message`` (88 characters)."""
        return base64.b64encode(self.private.sign(message)).decode()

    def seal_head(self, chain_id: uuid.UUID, seq: int, last_hash: str) -> str:
        """The signature a head at ``(seq, last_hash)`` of ``chain_id`` carries."""
        return self.sign(head_message(chain_id, seq, last_hash))

    def vouches_for(
        self, chain_id: uuid.UUID, seq: int, last_hash: str, signature: str, key_id: str | None
    ) -> bool:
        """Whether this key, or a retired one, sealed the head ``(chain_id, seq, last_hash)``."""
        if key_id == self.key_id:
            # Ed25519 is deterministic: signing again gives the same bytes, at a third of the
            # cost of verifying.
            return signature == self.seal_head(chain_id, seq, last_hash)
        return self.retired.verifies(key_id, signature, head_message(chain_id, seq, last_hash))

    @property
    def ring(self) -> KeyRing:
        """The public keys that verify what this key and the retired ones signed."""
        return KeyRing({**self.retired.keys, self.key_id: self.public})

    @classmethod
    def generate(cls) -> AuditKey:
        """A new random key."""
        return cls(Ed25519PrivateKey.generate())

    def pem(self) -> str:
        """The private key as unencrypted PKCS#8 PEM (what the key file holds)."""
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()


@dataclass(frozen=True)
class KeyRing:
    """The public keys a verifier accepts, by id: the current one and those rotated out."""

    keys: dict[str, PublicAuditKey]

    @classmethod
    def of(cls, keys: Iterable[PublicAuditKey]) -> KeyRing:
        """A ring holding ``keys``."""
        return cls({key.key_id: key for key in keys})

    def verifies(self, key_id: str | None, signature: str | None, message: bytes) -> bool:
        """Whether ``signature`` by the key ``key_id`` covers ``message``; False if unknown."""
        if key_id is None or signature is None:
            return False
        key = self.keys.get(key_id)
        return key is not None and key.verifies(signature, message)


def load_private_key(text: str) -> AuditKey:
    """An audit key from PEM (PKCS#8) or base64 of the 32-byte Ed25519 seed.

    Raises ``AuditKeyError`` for anything else (the error never quotes the secret).
    """
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, UnsupportedAlgorithm, binascii.Error) as error:
        raise AuditKeyError(
            "the audit signing key is neither an Ed25519 PEM key nor base64 of 32 bytes"
        ) from error
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError("the audit signing key must be an Ed25519 key")
    return AuditKey(key)


def load_public_key(text: str) -> PublicAuditKey:
    """A public audit key from PEM, or base64 of its 32 raw bytes; a private key gives its half.

    Raises ``AuditKeyError`` when ``text`` is none of these.
    """
    # What ``carnet audit key`` printed may come with comment lines before the PEM block.
    text = text[text.find("-----BEGIN") :] if "-----BEGIN" in text else text.strip()
    if "PRIVATE KEY" in text:
        return load_private_key(text).public
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, UnsupportedAlgorithm, binascii.Error) as error:
        raise AuditKeyError("not an Ed25519 public key (PEM, or base64 of 32 bytes)") from error
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError("the audit public key must be an Ed25519 key")
    return PublicAuditKey(key)


def read_or_create_key_file(path: Path) -> tuple[AuditKey, bool]:
    """The key in ``path``, made (mode 0600) when missing; and whether it was just made."""
    created = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two workers starting together must not each write a different key.
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as file:
                file.write(AuditKey.generate().pem())
                file.flush()
                os.fsync(file.fileno())
            created = True
    try:
        return load_private_key(path.read_text()), created
    except OSError as error:
        raise AuditKeyError(f"cannot read the audit signing key file {path}: {error}") from error
