"""Carnet's document store: content of health documents, encrypted at rest.

Objects are addressed by ``<patient_id>/<sha256 of the plaintext>`` and sealed with
envelope encryption (AES-256-GCM per object, data keys wrapped by a master key).

``S3DocumentStore`` and ``S3Location`` are loaded on first use: importing boto3 takes a few hundred
milliseconds, which deployments on a filesystem store need not pay.
"""

from typing import TYPE_CHECKING, Any

from carnet.storage.crypto import (
    MasterKeyWrapper,
    generate_master_key,
    load_master_key,
    open_sealed,
    seal,
    sealed_key_id,
)
from carnet.storage.errors import (
    ContentCorrupted,
    ContentNotFound,
    ContentTooLarge,
    EmptyContent,
    InvalidContentKey,
    StorageError,
    StoreUnavailable,
    UnknownKey,
)
from carnet.storage.factory import open_store
from carnet.storage.filesystem import FilesystemDocumentStore
from carnet.storage.ports import (
    DocumentStore,
    KeyWrapper,
    StoredContent,
    content_key,
    parse_content_key,
)

if TYPE_CHECKING:
    from carnet.storage.s3 import S3DocumentStore, S3Location

_LAZY = frozenset({"S3DocumentStore", "S3Location"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from carnet.storage import s3  # noqa: PLC0415 — deferred on purpose, see above

        return getattr(s3, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ContentCorrupted",
    "ContentNotFound",
    "ContentTooLarge",
    "DocumentStore",
    "EmptyContent",
    "FilesystemDocumentStore",
    "InvalidContentKey",
    "KeyWrapper",
    "MasterKeyWrapper",
    "S3DocumentStore",
    "S3Location",
    "StorageError",
    "StoreUnavailable",
    "StoredContent",
    "UnknownKey",
    "content_key",
    "generate_master_key",
    "load_master_key",
    "open_sealed",
    "open_store",
    "parse_content_key",
    "seal",
    "sealed_key_id",
]
