"""Errors of the essentials domain."""

from __future__ import annotations

from carnet.errors import CarnetError, Conflict, InvalidInput, NotFound


class EssentialsError(CarnetError):
    """Base of the essentials domain's errors."""


class InvalidFact(EssentialsError, InvalidInput):
    """A fact breaks a rule; ``field`` names the input at fault (``text``, ``group``, …)."""


class FactConflict(EssentialsError, Conflict):
    """The fact clashes with one recorded already; ``field`` names the input at fault."""


class FactNotFound(EssentialsError, NotFound):
    """No such live fact in this dossier (or it may not be revealed)."""

    def __init__(self) -> None:
        super().__init__("No such essential fact in this dossier.")
