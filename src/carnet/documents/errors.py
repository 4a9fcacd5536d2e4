"""Errors of the documents domain."""

from __future__ import annotations

from carnet.errors import CarnetError, Conflict, InvalidInput, LimitExceeded, NotFound, StateRefused

# Raised at the door (``carnet.access.door``), which sits below this package: a publishing
# purpose tells the dossier's state before the policy is asked.
from carnet.patients.errors import DossierNotActive

__all__ = [
    "DocumentError",
    "DocumentNotCurrent",
    "DocumentNotFound",
    "DocumentTooLarge",
    "DossierNotActive",
    "DuplicateDocument",
    "InvalidDocument",
    "UnresolvedReference",
]


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


class UnresolvedReference(DocumentError, NotFound):
    """An association names an object that is neither in the submission nor in the dossier
    (or that the actor may not see: the two are not told apart)."""

    def __init__(self, reference: str) -> None:
        super().__init__(f"{reference} is not in this submission nor in the dossier.")
        self.reference = reference


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
