"""The roots of Carnet's domain errors.

Each domain raises its own typed errors, carrying a message a person can act on and, where one
field is at fault, its name. They also inherit one of the kinds below, so each way in (FHIR, web,
CLI) translates them once — to a status code, an ``OperationOutcome`` or a form message — without
knowing every domain.
"""

from __future__ import annotations


class CarnetError(Exception):
    """A refusal a person can act on. ``field`` names the input at fault, if one is."""

    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field

    def __str__(self) -> str:
        return self.message


class NotFound(CarnetError):
    """What was asked for does not exist (or may not be revealed)."""


class InvalidInput(CarnetError):
    """The input breaks a rule; nothing was written."""


class Conflict(CarnetError):
    """The input clashes with what is already recorded; nothing was written."""


class LimitExceeded(CarnetError):
    """The input is over a configured limit; nothing was written."""


class StateRefused(CarnetError):
    """The thing is in a state that does not allow this now (e.g. a dossier that is not active)."""


class InvalidValue(InvalidInput):
    """One value cannot be taken as it is: ``reason`` says why, ``field`` names it.

    ``reason`` is ``too-long`` (over its column's length), ``character`` (a control character
    or one no database stores), ``out-of-range`` (an instant outside the years 1 to 9999 in UTC,
    an integer over its column's width) or ``structure`` (JSON nested too deep).
    """

    def __init__(self, message: str, *, field: str, reason: str) -> None:
        super().__init__(message, field=field)
        self.reason = reason
