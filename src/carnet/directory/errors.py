"""Errors of the directory domain."""

from __future__ import annotations

from carnet.errors import CarnetError, Conflict, InvalidInput, NotFound


class DirectoryError(CarnetError):
    """Base of the directory's errors."""


class InvalidDirectoryEntry(DirectoryError, InvalidInput):
    """A professional or organisation breaks a rule; ``field`` names the one at fault."""


class DuplicateDirectoryEntry(DirectoryError, Conflict):
    """An identifier already belongs to another professional or organisation."""

    def __init__(self, *, kind: str, system: str, value: str) -> None:
        super().__init__(
            f"A {kind} with identifier {value} ({system}) is already registered.",
            field="identifier",
        )


class ProfessionalNotFound(DirectoryError, NotFound):
    """No such professional."""

    def __init__(self) -> None:
        super().__init__("No such professional is registered.")


class OrganisationNotFound(DirectoryError, NotFound):
    """No such organisation."""

    def __init__(self) -> None:
        super().__init__("No such organisation is registered.")
