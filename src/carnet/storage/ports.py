"""What the rest of Carnet may rely on from a document store and a key wrapper.

Content keys have the form ``<patient_id>/<sha256 hex of the plaintext>``. Namespacing
by patient keeps a dossier's objects together (a future shard key), makes a per-patient
purge a single prefix deletion, and avoids revealing that two patients hold identical
content (their objects are distinct, under distinct keys and data keys).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from carnet.storage.errors import InvalidContentKey

# Only [0-9a-zA-Z-]: a patient id becomes a path segment (and later an object-store
# prefix), so '.', '/', '\\' and non-ASCII are excluded outright - no '..', no separators,
# no Unicode look-alikes. Explicit ranges rather than \w or \d, which match non-ASCII.
_PATIENT_ID = re.compile(r"[0-9A-Za-z-]{1,128}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def is_valid_patient_id(patient_id: str) -> bool:
    """Tell whether ``patient_id`` is usable as a key namespace (letters, digits, '-')."""
    return _PATIENT_ID.fullmatch(patient_id) is not None


def is_sha256_hex(value: str) -> bool:
    """Tell whether ``value`` is a SHA-256 digest written as 64 lowercase hex digits."""
    return _SHA256_HEX.fullmatch(value) is not None


def content_key(patient_id: str, sha256hex: str) -> str:
    """Build the content key of a patient's object; raise InvalidContentKey if malformed."""
    if not (is_valid_patient_id(patient_id) and is_sha256_hex(sha256hex)):
        raise InvalidContentKey(f"{patient_id}/{sha256hex}")
    return f"{patient_id}/{sha256hex}"


def parse_content_key(key: str) -> tuple[str, str]:
    """Split a content key into ``(patient_id, sha256hex)``; InvalidContentKey if malformed."""
    patient_id, sep, sha256hex = key.partition("/")
    if not (sep and is_valid_patient_id(patient_id) and is_sha256_hex(sha256hex)):
        raise InvalidContentKey(key)
    return patient_id, sha256hex


@dataclass(frozen=True, slots=True)
class StoredContent:
    """Receipt of a successful put: where the content lives and what it is."""

    key: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class ListedObject:
    """An object as a listing of the store saw it: its key, stored size and last write.

    ``modified_at`` is the store's own clock (the file's mtime, S3's LastModified), refreshed
    by every ``put`` of the object's content: the sweeper deletes an object only if it is
    still the one it listed, unwritten since (see ``remove_unchanged``).
    """

    key: str
    size: int
    modified_at: datetime.datetime


@runtime_checkable
class KeyWrapper(Protocol):
    """Wraps per-object data keys under a master key (envelope encryption)."""

    @property
    def key_id(self) -> str:
        """Id of the master key that ``wrap`` uses; recorded in each object's header."""
        ...

    def wrap(self, data_key: bytes) -> bytes:
        """Encrypt ``data_key`` under the current master key."""
        ...

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        """Recover a data key wrapped under master key ``key_id``.

        Raises UnknownKey if ``key_id`` is not held, ContentCorrupted if ``wrapped``
        fails its integrity check.
        """
        ...


@runtime_checkable
class DocumentStore(Protocol):
    """Encrypted, content-addressed storage of health documents."""

    def put(self, patient_id: str, content: bytes) -> StoredContent:
        """Store ``content`` for the patient durably; idempotent for identical content.

        Identical content already stored is not rewritten, but its ``modified_at`` is
        refreshed: a publication re-using an old unreferenced object thereby tells the
        sweeper not to delete it (see ``remove_unchanged``).
        """
        ...

    def get(self, key: str) -> bytes:
        """Return the verified plaintext; ContentNotFound / ContentCorrupted otherwise."""
        ...

    def exists(self, key: str) -> bool:
        """Tell whether an object is stored under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object under ``key``; deleting a missing object is not an error."""
        ...

    def delete_patient(self, patient_id: str) -> int:
        """Remove every object of the patient; return how many objects were removed."""
        ...

    def sweep_temporaries(self, older_than: datetime.timedelta) -> int:
        """Remove leftovers of interrupted writes older than ``older_than``; return the count."""
        ...

    def iter_objects(self, *, start_after: str | None = None) -> Iterator[ListedObject]:
        """Every stored object, in key order, fetched lazily page by page.

        Only content keys are listed (never temporaries). ``start_after`` resumes a listing
        after that key. Objects written or removed during the listing may or may not appear.
        """
        ...

    def remove_unchanged(self, objects: Sequence[ListedObject]) -> list[ListedObject]:
        """Remove each listed object unless it was written again since it was listed.

        "Written again" is a ``modified_at`` other than the listed one (a ``put`` of the same
        content refreshes it). Returns the objects removed; one already gone is skipped.
        """
        ...

    def check(self) -> None:
        """Raise StoreUnavailable unless the store can accept writes right now."""
        ...
