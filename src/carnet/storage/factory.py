"""Build a document store from its configured URL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from carnet.storage.filesystem import FilesystemDocumentStore

if TYPE_CHECKING:
    from carnet.storage.ports import DocumentStore, KeyWrapper


def open_store(url: str, wrapper: KeyWrapper, *, max_bytes: int) -> DocumentStore:
    """Open the store at ``url``: ``file:///absolute/path``, a plain filesystem path, or
    ``s3://bucket[/prefix][?endpoint=...&region=...]`` (see carnet.storage.s3).

    Makes no I/O (``check`` does). Any other scheme, or a malformed URL, raises ValueError.
    """
    if not url.strip():
        raise ValueError(
            "The document store URL is empty; use file:///absolute/path or s3://bucket/prefix."
        )
    parts = urlsplit(url)
    # A one-letter "scheme" is a Windows drive (C:\...), i.e. a plain path.
    if not parts.scheme or len(parts.scheme) == 1:
        return FilesystemDocumentStore(Path(url), wrapper, max_bytes=max_bytes)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(
                f"Store URL {url!r} is not an absolute local file URL; write "
                "file:///absolute/path (three slashes)."
            )
        return FilesystemDocumentStore(Path(unquote(parts.path)), wrapper, max_bytes=max_bytes)
    if parts.scheme == "s3":
        # Imported here: importing boto3 takes a few hundred milliseconds, which
        # deployments on a filesystem store need not pay.
        from carnet.storage.s3 import S3DocumentStore, S3Location  # noqa: PLC0415

        location = S3Location.from_url(url)
        return S3DocumentStore.connect(location, wrapper, max_bytes=max_bytes)
    raise ValueError(
        f"Unsupported store URL scheme {parts.scheme!r}: use file:///absolute/path, a plain "
        "path, or s3://bucket/prefix."
    )
