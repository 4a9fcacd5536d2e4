"""Errors of the documents domain."""

from __future__ import annotations

from carnet.errors import CarnetError, Conflict, InvalidInput, LimitExceeded, NotFound, StateRefused


class DocumentError(CarnetError):
    """Base of the documents domain's errors."""


class InvalidDocument(DocumentError, InvalidInput):
    """A document's metadata or content breaks a rule; ``field`` names the one at fault."""


class DocumentTooLarge(DocumentError, LimitExceeded):
    """The content is over the configured size limit."""

    def __init__(self, *, size: int, limit: int) -> None:
        super().__init__(
            f"The document is {_megabytes(size)}; the limit is {_megabytes(limit)}.",
            field="content",
        )
        self.size = size
        self.limit = limit


class DocumentNotFound(DocumentError, NotFound):
    """No such document in this dossier (or it may not be revealed)."""

    def __init__(self) -> None:
        super().__init__("No such document in this dossier.")


class DuplicateDocument(DocumentError, Conflict):
    """The master identifier is already used by a document of this dossier."""

    def __init__(self, master_identifier: str) -> None:
        super().__init__(
            f"A document with identifier {master_identifier} is already in this dossier.",
            field="master_identifier",
        )
        self.master_identifier = master_identifier


class DocumentNotCurrent(DocumentError, StateRefused):
    """Only a current document can be replaced or marked entered-in-error."""

    def __init__(self, status: str) -> None:
        super().__init__(f"The document is {status}; only a current document can change.")
        self.status = status


class DossierNotActive(DocumentError, StateRefused):
    """The dossier does not accept documents in its present state."""

    def __init__(self, state: str) -> None:
        super().__init__(
            f"The dossier is {state}: it accepts documents only when active. Nothing was stored."
        )
        self.state = state


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
