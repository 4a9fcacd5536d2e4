"""Errors of the directory domain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class RegistryProblem:
    """Why one row cannot be taken, naming the column at fault."""

    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}: {self.reason}"


class InvalidDirectoryFile(DirectoryError, InvalidInput):
    """A registry file the directory refuses whole: ``problems`` says where, line by line.

    Each problem reads ``line N: column: reason``; nothing of the file was written.
    """

    def __init__(self, problems: Sequence[RegistryProblem]) -> None:
        shown = "; ".join(str(problem) for problem in problems[:_SHOWN])
        more = len(problems) - _SHOWN
        super().__init__(
            f"The registry file is refused, nothing was written ({len(problems)} problems): "
            + shown
            + (f"; and {more} more" if more > 0 else ""),
            field="file",
        )
        self.problems = tuple(problems)


# How many problems the one-line message repeats (``problems`` has them all).
_SHOWN = 20
