"""Typed errors of the document store.

Every message is meant to be read by a person (an operator, or a patient through
the web layer) and says what happened and, where possible, what to do. Messages
never include document bytes or key material: they end up in logs and HTTP
responses.
"""

from __future__ import annotations

_MAX_ECHO = 80  # how much of an untrusted key string we echo back in a message


def _echo(value: str) -> str:
    """Quote untrusted text for a message: repr() neutralises control characters
    (no log injection) and truncation keeps a hostile megabyte-long key out of logs."""
    if len(value) > _MAX_ECHO:
        return repr(value[:_MAX_ECHO]) + "..."
    return repr(value)


def _decimal(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def human_size(size: int) -> str:
    """Render a byte count the way people read file sizes (decimal units: 1 MB = 10**6 bytes)."""
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= factor:
            return f"{_decimal(size / factor)} {unit}"
    return "1 byte" if size == 1 else f"{size} bytes"


# The subclasses below are named for what happened, not "...Error" (ruff N818): they
# read as domain outcomes at call sites (``except ContentNotFound``), and StorageError
# already marks the family.
class StorageError(Exception):
    """Base class of every document-store error; ``message`` is fit to show a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ContentTooLarge(StorageError):
    """The document is bigger than the configured limit."""

    def __init__(self, limit: int, size: int) -> None:
        self.limit = limit
        self.size = size
        shown_size, shown_limit = human_size(size), human_size(limit)
        if shown_size == shown_limit:
            # Rounded, "50 MB; the limit is 50 MB" would read as a contradiction.
            shown_size, shown_limit = f"{size:,} bytes", f"{limit:,} bytes"
        super().__init__(f"The document is {shown_size}; the limit is {shown_limit}.")


class EmptyContent(StorageError):
    """The document has no bytes at all (usually a failed upload or a wrong file)."""

    def __init__(self) -> None:
        super().__init__(
            "The document is empty (0 bytes); nothing was stored. Check the file and try again."
        )


class ContentNotFound(StorageError):
    """No object is stored under the key."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"No stored content under key {_echo(key)}; it may have been deleted or never written."
        )


class ContentCorrupted(StorageError):
    """The stored object failed its integrity check: altered, truncated, moved or damaged."""

    def __init__(self, key: str | None = None, *, detail: str | None = None) -> None:
        self.key = key
        self.detail = detail
        where = f"Stored content {_echo(key)}" if key is not None else "Stored content"
        why = f" ({detail})" if detail else ""
        super().__init__(
            f"{where} failed its integrity check{why}. It must not be used; restore it "
            "from a backup."
        )


class InvalidContentKey(StorageError):
    """A key or patient id is not of the form ``<patient_id>/<sha256 hex>``."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"Invalid content key {_echo(key)}: expected '<patient id>/<64 lowercase hex "
            "digits>', where the patient id uses only letters, digits and '-'."
        )


class UnknownKey(StorageError):
    """The object was encrypted under a master key id this process does not hold."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(
            f"The content was encrypted with master key {_echo(key_id)}, which is not "
            "configured. Add that key to the previous (retired) master keys to read it."
        )


class StoreUnavailable(StorageError):
    """The store cannot be used right now (missing directory, read-only disk, disk full...)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"The document store is unavailable: {reason}")
