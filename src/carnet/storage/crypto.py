"""Envelope encryption of stored documents.

Each object gets a fresh random 256-bit data key (DEK) and a fresh 96-bit nonce and is
encrypted with AES-256-GCM. The DEK is wrapped by a master key (RFC 3394 AES key wrap)
through a ``KeyWrapper``, so rotating the master key never requires re-encrypting
documents, and a compromised DEK exposes a single object.

Sealed object layout (format version 1), all integers big-endian::

    b"CRNT"                      magic
    u8   version                 = 1
    u8   key id length (n)       1..255
    n    key id                  printable ASCII, no spaces
    u16  wrapped DEK length (m)  1..65535
    m    wrapped DEK
    12   nonce
    ...  ciphertext || 16-byte GCM tag

GCM's associated data is ``header || aad``, where ``header`` is everything before the
ciphertext and ``aad`` is supplied by the caller (the store passes the content key).
Editing any header field, or moving the file under another key or patient, therefore
fails authentication. The header is self-delimiting, so the concatenation is unambiguous.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import struct
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from carnet.storage.errors import ContentCorrupted, UnknownKey

if TYPE_CHECKING:
    from collections.abc import Mapping

    from carnet.storage.ports import KeyWrapper

MAGIC = b"CRNT"
FORMAT_VERSION = 1
MASTER_KEY_BYTES = 32
DATA_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16

_KEY_ID = re.compile(r"[\x21-\x7e]{1,255}")
_U16 = struct.Struct(">H")
_PREFIX_BYTES = len(MAGIC) + 2  # magic, version, key id length


def _check_key_id(key_id: str) -> None:
    if _KEY_ID.fullmatch(key_id) is None:
        raise ValueError(
            "A master key id must be 1 to 255 printable ASCII characters without spaces, "
            "e.g. 'master-2025-01'."
        )


class MasterKeyWrapper:
    """Wraps data keys with a 32-byte master key (RFC 3394 AES key wrap).

    ``previous`` maps the ids of retired master keys to their bytes: they are accepted
    for ``unwrap`` only, so objects written before a rotation stay readable while every
    new object is wrapped under ``key_id``.
    """

    def __init__(
        self,
        master_key: bytes,
        key_id: str,
        *,
        previous: Mapping[str, bytes] | None = None,
    ) -> None:
        _check_master_key(master_key, key_id)
        keys: dict[str, bytes] = {}
        for old_id, old_key in (previous or {}).items():
            _check_master_key(old_key, old_id)
            keys[old_id] = bytes(old_key)
        if keys.get(key_id, master_key) != master_key:
            raise ValueError(
                f"Master key id {key_id!r} is given both as current and as a previous key "
                "with different bytes; key ids must name a single key."
            )
        keys[key_id] = bytes(master_key)
        self._key_id = key_id
        self._current = bytes(master_key)
        self._keys = MappingProxyType(keys)

    def __repr__(self) -> str:
        # Explicit so that key bytes can never reach a log through repr().
        retired = sorted(k for k in self._keys if k != self._key_id)
        return f"MasterKeyWrapper(key_id={self._key_id!r}, previous={retired!r})"

    @property
    def key_id(self) -> str:
        """Id of the current master key, used for every new wrap."""
        return self._key_id

    def wrap(self, data_key: bytes) -> bytes:
        """Wrap ``data_key`` under the current master key."""
        return aes_key_wrap(self._current, data_key)

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        """Unwrap a data key wrapped under master key ``key_id`` (current or previous)."""
        master_key = self._keys.get(key_id)
        if master_key is None:
            raise UnknownKey(key_id)
        try:
            return aes_key_unwrap(master_key, wrapped)
        except (InvalidUnwrap, ValueError):
            # Altered wrapped key, or same key id bound to different key bytes.
            raise ContentCorrupted(
                detail="the wrapped data key does not unwrap under the configured master key"
            ) from None


def _check_master_key(master_key: bytes, key_id: str) -> None:
    _check_key_id(key_id)
    if not isinstance(master_key, bytes) or len(master_key) != MASTER_KEY_BYTES:
        raise ValueError(
            f"Master key {key_id!r} must be exactly {MASTER_KEY_BYTES} bytes (AES-256)."
        )


def seal(plaintext: bytes, *, aad: bytes, wrapper: KeyWrapper) -> bytes:
    """Encrypt ``plaintext`` under a fresh data key; return the self-describing sealed blob.

    ``aad`` is authenticated but not stored: the same value must be given to open_sealed.
    """
    key_id = wrapper.key_id
    _check_key_id(key_id)
    data_key = AESGCM.generate_key(bit_length=8 * DATA_KEY_BYTES)
    wrapped = wrapper.wrap(data_key)
    if not 0 < len(wrapped) <= 0xFFFF:
        raise ValueError(f"Key wrapper {key_id!r} returned a wrapped key of unusable length.")
    # A random 96-bit nonce is safe here: each data key encrypts exactly one message.
    nonce = os.urandom(NONCE_BYTES)
    key_id_bytes = key_id.encode("ascii")
    header = b"".join(
        (
            MAGIC,
            bytes((FORMAT_VERSION, len(key_id_bytes))),
            key_id_bytes,
            _U16.pack(len(wrapped)),
            wrapped,
            nonce,
        )
    )
    return header + AESGCM(data_key).encrypt(nonce, plaintext, header + aad)


class _Parsed(NamedTuple):
    header: bytes
    key_id: str
    wrapped: bytes
    nonce: bytes
    body: bytes


def _parse(blob: bytes) -> _Parsed:
    if blob[: len(MAGIC)] != MAGIC:
        raise ContentCorrupted(detail="not a Carnet sealed object (bad magic)")
    if len(blob) < _PREFIX_BYTES:
        raise ContentCorrupted(detail="truncated header")
    version = blob[len(MAGIC)]
    if version != FORMAT_VERSION:
        raise ContentCorrupted(detail=f"unsupported format version {version}")
    pos = _PREFIX_BYTES
    key_id_end = pos + blob[pos - 1]
    if len(blob) < key_id_end + _U16.size:
        raise ContentCorrupted(detail="truncated header")
    key_id = blob[pos:key_id_end].decode("latin-1")
    if _KEY_ID.fullmatch(key_id) is None:
        raise ContentCorrupted(detail="malformed master key id in header")
    (wrapped_len,) = _U16.unpack_from(blob, key_id_end)
    wrapped_start = key_id_end + _U16.size
    nonce_start = wrapped_start + wrapped_len
    body_start = nonce_start + NONCE_BYTES
    if wrapped_len == 0 or len(blob) < body_start + TAG_BYTES:
        raise ContentCorrupted(detail="truncated object")
    return _Parsed(
        header=blob[:body_start],
        key_id=key_id,
        wrapped=blob[wrapped_start:nonce_start],
        nonce=blob[nonce_start:body_start],
        body=blob[body_start:],
    )


def sealed_key_id(blob: bytes) -> str:
    """Return the master key id recorded in a sealed blob's header (for rotation audits).

    The header is only authenticated when the blob is opened: treat the answer as a hint.
    """
    return _parse(blob).key_id


def open_sealed(blob: bytes, *, aad: bytes, wrapper: KeyWrapper) -> bytes:
    """Decrypt and authenticate a blob produced by seal with the same ``aad``.

    Raises ContentCorrupted on bad magic, truncation or any alteration, and UnknownKey
    when the blob names a master key the wrapper does not hold.
    """
    parsed = _parse(blob)
    data_key = wrapper.unwrap(parsed.key_id, parsed.wrapped)
    if len(data_key) != DATA_KEY_BYTES:
        raise ContentCorrupted(detail="the unwrapped data key has the wrong length")
    try:
        return AESGCM(data_key).decrypt(parsed.nonce, parsed.body, parsed.header + aad)
    except InvalidTag:
        raise ContentCorrupted(
            detail="authentication failed: the object was altered, truncated, or moved "
            "from another key"
        ) from None


def load_master_key(value: str) -> bytes:
    """Decode a master key given as base64 (standard or URL-safe, padding optional).

    Raises ValueError, without echoing the value, unless it decodes to exactly 32 bytes.
    """
    text = "".join(value.split())
    if not text:
        raise ValueError("The master key is empty; generate one with generate_master_key().")
    if set(text) & set("+/") and set(text) & set("-_"):
        raise ValueError("The master key mixes standard and URL-safe base64 alphabets.")
    text = text.replace("-", "+").replace("_", "/").rstrip("=")
    text += "=" * (-len(text) % 4)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("The master key is not valid base64.") from None
    if len(key) != MASTER_KEY_BYTES:
        raise ValueError(
            f"The master key must decode to {MASTER_KEY_BYTES} bytes (AES-256); it decodes "
            f"to {len(key)} bytes. Generate one with generate_master_key()."
        )
    return key


def generate_master_key() -> str:
    """Return a new random 32-byte master key as URL-safe base64 (for configuration)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(MASTER_KEY_BYTES)).decode("ascii")
