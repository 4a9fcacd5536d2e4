"""Carnet's document store: content of health documents, encrypted at rest.

Objects are addressed by ``<patient_id>/<sha256 of the plaintext>`` and sealed with
envelope encryption (AES-256-GCM per object, data keys wrapped by a master key).
"""

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
